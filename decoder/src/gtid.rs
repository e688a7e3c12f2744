//! MySQL's GTID sets (`@@gtid_executed`: `uuid:1-5:7,uuid2:1-3`, and MySQL
//! 8.4's tagged `uuid:1-5:tag:1-3`): parse, print, grow, and whether one set
//! holds another ([`GtidSet`]); and the GTIDs one read of the binlog passed
//! ([`GtidTrail`]), from which a run's checkpoint gets the executed GTID set
//! at its exact position.
//!
//! ```text
//! PREVIOUS_GTIDS (each file's 2nd event: the set before the file)
//!   ─▶ GtidTrail.file_start, transactions cleared
//! GTID events ─▶ GtidTrail.transactions
//! chunks in order ─▶ GtidTrail::then ─▶ executed(the set at the run's start)
//! ```
//!
//! A server's executed set only grows along one history, so a set recorded
//! with a checkpoint that the server's set no longer holds means the history
//! changed (`RESET MASTER` clears it, a restore takes it back).

use std::collections::BTreeMap;

use mysql_common::binlog::events::GtidEvent;
use mysql_common::io::ParseBuf;
use mysql_common::misc::read_varlen_uint;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::raw::{guarded, types, SourceEvent};

/// A GTID set: per source (the UUID in lower case, then `:tag` for a tagged
/// one), sorted, disjoint intervals of transaction numbers, each
/// `[start, end]` inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet(BTreeMap<String, Vec<(u64, u64)>>);

impl std::str::FromStr for GtidSet {
    type Err = String;

    /// MySQL's text form; whitespace and newlines (the server wraps long
    /// sets) are ignored, as is an empty set.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = GtidSet::default();
        let text: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 {
                return Err(format!("{part:?}: not UUID:INTERVALS"));
            }
            let mut source = uuid.clone();
            for field in fields {
                if !field.starts_with(|c: char| c.is_ascii_digit()) {
                    // A tag (MySQL 8.4): the intervals after it are its own.
                    source = format!("{uuid}:{}", field.to_ascii_lowercase());
                    continue;
                }
                let (a, b) = field.split_once('-').unwrap_or((field, field));
                let parse = |n: &str| {
                    n.parse::<u64>()
                        .map_err(|_| format!("{part:?}: {field:?} is not N or N-M"))
                };
                let (a, b) = (parse(a)?, parse(b)?);
                if a == 0 || b < a {
                    return Err(format!("{part:?}: {field:?} is not an interval"));
                }
                set.0.entry(source.clone()).or_default().push((a, b));
            }
        }
        set.0.values_mut().for_each(merge);
        Ok(set)
    }
}

/// Sorts `intervals` and joins those that overlap or touch.
fn merge(intervals: &mut Vec<(u64, u64)>) {
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for &(a, b) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *intervals = merged;
}

impl std::fmt::Display for GtidSet {
    /// MySQL's text form: sources by UUID, a UUID's tags after its untagged
    /// intervals (`uuid:1-5:tag:1-3`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last_uuid: Option<&str> = None;
        for (source, intervals) in &self.0 {
            let (uuid, tag) = source.split_at(36.min(source.len()));
            if last_uuid != Some(uuid) {
                if last_uuid.is_some() {
                    f.write_str(",")?;
                }
                f.write_str(uuid)?;
                last_uuid = Some(uuid);
            }
            f.write_str(tag)?;
            for &(a, b) in intervals {
                match a == b {
                    true => write!(f, ":{a}")?,
                    false => write!(f, ":{a}-{b}")?,
                }
            }
        }
        Ok(())
    }
}

impl Serialize for GtidSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GtidSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every transaction of `other` is in this set.
    pub fn contains(&self, other: &GtidSet) -> bool {
        other
            .0
            .iter()
            .all(|(source, theirs)| theirs.iter().all(|&(a, b)| self.holds(source, a, b)))
    }

    /// Whether transactions `a..=b` of `source` are all in this set.
    pub(crate) fn holds(&self, source: &str, a: u64, b: u64) -> bool {
        let ours = self.0.get(source).map(Vec::as_slice).unwrap_or_default();
        ours.iter().any(|&(x, y)| x <= a && b <= y)
    }

    /// Adds one transaction (in binlog order it extends the last interval).
    pub fn insert(&mut self, source: &str, gno: u64) {
        let intervals = match self.0.get_mut(source) {
            Some(v) => v,
            None => self.0.entry(source.to_string()).or_default(),
        };
        match intervals.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(gno) => last.1 = gno,
            Some(last) if last.0 <= gno && gno <= last.1 => {}
            _ => {
                intervals.push((gno, gno));
                merge(intervals);
            }
        }
    }

    /// Adds every transaction of `other`.
    pub fn extend(&mut self, other: &GtidSet) {
        for (source, theirs) in &other.0 {
            let ours = self.0.entry(source.clone()).or_default();
            ours.extend_from_slice(theirs);
            merge(ours);
        }
    }
}

/// A GTID event's source (as [`GtidSet`] keys it) and transaction number.
pub(crate) fn source_and_gno(ev: &SourceEvent) -> Result<(String, u64)> {
    let g: GtidEvent = guarded(&ev.pos, "GTID event", || ev.event.read_event())?;
    Ok((source_key(&g.sid(), g.tag().map(|t| &**t)), g.gno()))
}

/// The set a file's own PREVIOUS_GTIDS event holds: the executed set where
/// the file starts. `None` for any other event, and for one without its
/// place in the file (`log_pos` 0), which would not be the set where the
/// read is; MySQL sends none when a dump starts mid-file (only the format
/// description, with `log_pos` 0).
pub(crate) fn file_start(ev: &SourceEvent) -> Result<Option<GtidSet>> {
    let h = ev.event.header();
    if h.event_type_raw() != types::PREVIOUS_GTIDS || h.log_pos() == 0 {
        return Ok(None);
    }
    parse_previous_gtids(ev.event.data())
        .map(Some)
        .map_err(|msg| Error::malformed(&ev.pos, "previous GTIDs event", msg))
}

/// Reads a PREVIOUS_GTIDS body here, not with mysql_common: its parser
/// reserves memory for the counts an event claims before reading them, so a
/// corrupt count aborts the process (found by `tests/fuzz_decoder.rs`). Here
/// every count is only a loop bound, and a short body is an error.
///
/// Layout: a u64 header (the number of sources; in MySQL 8.4's tagged form
/// the format is in the top byte and the number in bits 8-55), then per
/// source its UUID (16 bytes), its tag when tagged (a varlen length, then
/// the text; empty: untagged), its number of intervals (u64) and each
/// interval (u64 start, u64 end, `[start, end)`), all little-endian.
fn parse_previous_gtids(body: &[u8]) -> Result<GtidSet, String> {
    let mut buf = ParseBuf(body);
    let header = take_u64(&mut buf)?;
    let tagged = header >> 56 != 0;
    let sources = match tagged {
        true => (header >> 8) & ((1 << 48) - 1),
        false => header & ((1 << 56) - 1),
    };
    let mut set = GtidSet::default();
    for _ in 0..sources {
        let uuid: [u8; 16] = take(&mut buf, 16)?.try_into().unwrap_or_default();
        let tag = match tagged {
            true => {
                let len = read_varlen_uint(&mut buf).map_err(|e| e.to_string())?;
                let text = take(&mut buf, len)?;
                Some(std::str::from_utf8(text).map_err(|_| "a tag is not UTF-8")?)
            }
            false => None,
        };
        let source = source_key(&uuid, tag.filter(|t| !t.is_empty()));
        for _ in 0..take_u64(&mut buf)? {
            let (start, end) = (take_u64(&mut buf)?, take_u64(&mut buf)?);
            if start == 0 || end <= start {
                return Err(format!("{source}: [{start}, {end}) is not an interval"));
            }
            set.0
                .entry(source.clone())
                .or_default()
                .push((start, end - 1));
        }
    }
    set.0.values_mut().for_each(merge);
    Ok(set)
}

/// The next `n` bytes of `buf`.
fn take<'a>(buf: &mut ParseBuf<'a>, n: u64) -> Result<&'a [u8], String> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if buf.0.len() < n {
        return Err(format!("the body ends {} bytes short", n - buf.0.len()));
    }
    let (head, rest) = buf.0.split_at(n);
    buf.0 = rest;
    Ok(head)
}

fn take_u64(buf: &mut ParseBuf<'_>) -> Result<u64, String> {
    Ok(u64::from_le_bytes(
        take(buf, 8)?.try_into().unwrap_or_default(),
    ))
}

/// How a [`GtidSet`] keys a source: `uuid`, or `uuid:tag` (tags are
/// case-insensitive, kept in lower case).
fn source_key(uuid: &[u8; 16], tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{}:{}", uuid_text(uuid), tag.to_ascii_lowercase()),
        None => uuid_text(uuid),
    }
}

/// A UUID in its text form (`3e11fa47-71ca-11e1-9e33-c80aa9429562`).
fn uuid_text(sid: &[u8; 16]) -> String {
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The MySQL GTIDs one read of the binlog passed: where it read a file from
/// its start, that file's PREVIOUS_GTIDS (the executed set there); and the
/// transactions after it (after the read's start, when it read no file from
/// its start). Reads end at transaction boundaries, so each GTID here is a
/// whole transaction. MariaDB's binlog has neither event: its trail is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GtidTrail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_start: Option<GtidSet>,
    #[serde(default, skip_serializing_if = "GtidSet::is_empty")]
    pub transactions: GtidSet,
}

impl GtidTrail {
    pub fn is_empty(&self) -> bool {
        self.file_start.is_none() && self.transactions.is_empty()
    }

    /// A file's PREVIOUS_GTIDS event (see [`file_start`]): the trail starts
    /// over at that file's set; other events leave it as it is.
    pub(crate) fn start_file(&mut self, ev: &SourceEvent) -> Result<()> {
        if let Some(set) = file_start(ev)? {
            self.file_start = Some(set);
            self.transactions = GtidSet::default();
        }
        Ok(())
    }

    /// This trail followed by `later`'s (the next range of the binlog).
    pub fn then(mut self, later: GtidTrail) -> GtidTrail {
        if later.file_start.is_some() {
            return later;
        }
        self.transactions.extend(&later.transactions);
        self
    }

    /// The executed GTID set where the trail ends, given the set where it
    /// started (`None`: unknown). Unknown when the trail read no file from
    /// its start and the set at its start is unknown.
    pub fn executed(&self, at_start: Option<&GtidSet>) -> Option<GtidSet> {
        let mut set = self.file_start.as_ref().or(at_start)?.clone();
        set.extend(&self.transactions);
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a";

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_mysqls_text_and_merges_intervals() {
        let s = set(&format!("{A}:1-5:6-9:12,\n{}:3", B.to_uppercase()));
        assert_eq!(s.0[A], vec![(1, 9), (12, 12)]);
        assert_eq!(s.0[B], vec![(3, 3)]);
        assert_eq!(set(""), GtidSet::default());
        assert!(format!("{A}:0").parse::<GtidSet>().is_err());
        assert!(format!("{A}:5-3").parse::<GtidSet>().is_err());
        assert!("nope:1".parse::<GtidSet>().is_err());
    }

    #[test]
    fn prints_mysqls_text_with_tags_after_the_untagged() {
        let text = format!("{A}:1-9:12:Blue:1-3,{B}:3");
        let s = set(&text);
        assert_eq!(s.0[&format!("{A}:blue")], vec![(1, 3)]);
        assert_eq!(s.to_string(), format!("{A}:1-9:12:blue:1-3,{B}:3"));
        assert_eq!(set(&s.to_string()), s, "what it prints parses back");
        assert_eq!(GtidSet::default().to_string(), "");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<GtidSet>(&json).unwrap(), s);
    }

    #[test]
    fn a_set_holds_what_came_before_it_in_the_same_history() {
        let then = set(&format!("{A}:1-100"));
        assert!(set(&format!("{A}:1-250,{B}:1-3")).contains(&then), "grown");
        assert!(set(&format!("{A}:1-100")).contains(&then), "unchanged");
        assert!(!set("").contains(&then), "RESET MASTER cleared it");
        assert!(
            !set(&format!("{A}:1-60")).contains(&then),
            "a restore took it back"
        );
        assert!(!set(&format!("{A}:1-50:52-300")).contains(&then), "a hole");
        assert!(set(&format!("{B}:1")).contains(&GtidSet::default()));
        assert!(!set(&format!("{A}:1-100")).contains(&set(&format!("{A}:t:1"))));
    }

    /// A source of a PREVIOUS_GTIDS body: UUID, tag, `[start, end)` intervals.
    type Source<'a> = ([u8; 16], Option<&'a str>, &'a [(u64, u64)]);

    /// A PREVIOUS_GTIDS body, in the untagged form when no source has a tag.
    fn body(sources: &[Source<'_>]) -> Vec<u8> {
        let tagged = sources.iter().any(|s| s.1.is_some());
        let n = sources.len() as u64;
        let header = if tagged { (1 << 56) | (n << 8) } else { n };
        let mut b = header.to_le_bytes().to_vec();
        for (uuid, tag, intervals) in sources {
            b.extend_from_slice(uuid);
            if tagged {
                let t = tag.unwrap_or_default();
                b.push((t.len() as u8) << 1); // varlen: one byte, low bit 0
                b.extend_from_slice(t.as_bytes());
            }
            b.extend_from_slice(&(intervals.len() as u64).to_le_bytes());
            for (start, end) in *intervals {
                b.extend_from_slice(&start.to_le_bytes());
                b.extend_from_slice(&end.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn previous_gtids_bodies_read_untagged_and_tagged() {
        let u = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        let untagged = body(&[(u, None, &[(1, 6), (8, 9)])]);
        assert_eq!(
            parse_previous_gtids(&untagged),
            Ok(set(&format!("{A}:1-5:8")))
        );
        let tagged = body(&[(u, None, &[(1, 3)]), (u, Some("Blue"), &[(1, 2)])]);
        assert_eq!(
            parse_previous_gtids(&tagged),
            Ok(set(&format!("{A}:1-2:blue:1")))
        );
        assert_eq!(parse_previous_gtids(&body(&[])), Ok(GtidSet::default()));
    }

    #[test]
    fn a_corrupt_previous_gtids_body_is_an_error_not_an_allocation() {
        let u = [7u8; 16];
        let mut huge = body(&[(u, None, &[(1, 2)])]);
        huge[..8].copy_from_slice(&(1u64 << 55).to_le_bytes());
        assert!(parse_previous_gtids(&huge).unwrap_err().contains("short"));
        let mut intervals = body(&[(u, None, &[(1, 2)])]);
        intervals[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_previous_gtids(&intervals).is_err());
        let empty = body(&[(u, None, &[(5, 5)])]);
        assert!(parse_previous_gtids(&empty)
            .unwrap_err()
            .contains("not an interval"));
        assert!(parse_previous_gtids(&[1, 2, 3]).is_err());
    }

    #[test]
    fn transactions_added_one_by_one_become_intervals() {
        let mut s = GtidSet::default();
        for gno in [1, 2, 3, 7, 5, 6, 2] {
            s.insert(A, gno);
        }
        s.insert(B, 9);
        assert_eq!(s, set(&format!("{A}:1-3:5-7,{B}:9")));
        s.extend(&set(&format!("{A}:4:8-10")));
        assert_eq!(s, set(&format!("{A}:1-10,{B}:9")));
    }

    #[test]
    fn a_trail_starts_over_at_a_file_start_and_folds_onto_the_set_before_it() {
        let trail = |start: Option<&str>, txns: &str| GtidTrail {
            file_start: start.map(set),
            transactions: set(txns),
        };
        let before = set(&format!("{A}:1-10"));
        // A chunk inside one file: the set before it, plus its transactions.
        let mid = trail(None, &format!("{A}:11-12"));
        assert_eq!(mid.executed(Some(&before)), Some(set(&format!("{A}:1-12"))));
        assert_eq!(mid.executed(None), None, "unknown start, no file start");
        // The next chunk reads the next file from its start: that file's
        // PREVIOUS_GTIDS is the set, whatever came before.
        let next = trail(Some(&format!("{A}:1-13")), &format!("{A}:14,{B}:1"));
        let run = mid.clone().then(next.clone());
        assert_eq!(run, next);
        assert_eq!(run.executed(None), Some(set(&format!("{A}:1-14,{B}:1"))));
        // A chunk after it, with no file start, adds its transactions.
        let run = run.then(trail(None, &format!("{A}:15")));
        assert_eq!(run.executed(None), Some(set(&format!("{A}:1-15,{B}:1"))));
        assert!(GtidTrail::default().then(GtidTrail::default()).is_empty());
    }
}
