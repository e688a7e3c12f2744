//! MySQL's GTID sets (`@@gtid_executed`: `uuid:1-5:7,uuid2:1-3`): parse, and
//! whether one set holds another. A server's executed set only grows along
//! one history, so a set recorded with a checkpoint that the server's set no
//! longer holds means the history changed (`RESET MASTER` clears it, a
//! restore takes it back).

use std::collections::BTreeMap;

/// A GTID set: per source UUID (lower case), sorted, disjoint intervals of
/// transaction numbers, each `[start, end]` inclusive.
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
            let intervals = set.0.entry(uuid).or_default();
            for iv in fields {
                let (a, b) = iv.split_once('-').unwrap_or((iv, iv));
                let parse = |n: &str| {
                    n.parse::<u64>()
                        .map_err(|_| format!("{part:?}: {iv:?} is not N or N-M"))
                };
                let (a, b) = (parse(a)?, parse(b)?);
                if a == 0 || b < a {
                    return Err(format!("{part:?}: {iv:?} is not an interval"));
                }
                intervals.push((a, b));
            }
        }
        for intervals in set.0.values_mut() {
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
        set.0.retain(|_, v| !v.is_empty());
        Ok(set)
    }
}

impl GtidSet {
    /// Whether every transaction of `other` is in this set.
    pub fn contains(&self, other: &GtidSet) -> bool {
        other.0.iter().all(|(uuid, theirs)| {
            let ours = self.0.get(uuid).map(Vec::as_slice).unwrap_or_default();
            theirs
                .iter()
                .all(|&(a, b)| ours.iter().any(|&(x, y)| x <= a && b <= y))
        })
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
    }
}
