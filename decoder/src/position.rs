//! The one binlog position type: `binlog.000042:1234`.
//!
//! A position names a binlog file and a byte offset in it. Positions order by
//! the file's numeric suffix first (so `binlog.000010` comes after
//! `binlog.000009`, and after `binlog.999999` comes `binlog.1000000`), then by
//! offset. It prints and parses as `FILE:POS` and serialises as that string.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte offset in a named binlog file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BinlogPosition {
    file: String,
    pos: u64,
}

/// The offset of the first event in every binlog file (after the 4-byte magic).
pub(crate) const FIRST_EVENT_POS: u64 = 4;

impl BinlogPosition {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        Self {
            file: file.into(),
            pos,
        }
    }

    /// The start of a file: its first event.
    pub fn start_of(file: impl Into<String>) -> Self {
        Self::new(file, FIRST_EVENT_POS)
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The same file at another offset.
    pub fn with_pos(&self, pos: u64) -> Self {
        Self::new(self.file.clone(), pos)
    }

    /// The numeric suffix of the file name (`binlog.000042` -> 42), if it has one.
    pub(crate) fn file_number(&self) -> Option<u64> {
        file_number(&self.file)
    }
}

/// The numeric suffix of a binlog file name (`mysql-bin.000042` -> 42).
pub(crate) fn file_number(file: &str) -> Option<u64> {
    let (_, suffix) = file.rsplit_once('.')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    suffix.parse().ok()
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        // Numbered files order by number; a name without a number sorts by name
        // (and after the numbered ones, which never happens on a real server).
        let a = (self.file_number().is_none(), self.file_number(), &self.file);
        let b = (
            other.file_number().is_none(),
            other.file_number(),
            &other.file,
        );
        a.cmp(&b).then(self.pos.cmp(&other.pos))
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Why a string is not a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid binlog position {input:?}: expected FILE:POS, like binlog.000042:1234 ({reason})")]
pub struct ParsePositionError {
    input: String,
    reason: &'static str,
}

impl FromStr for BinlogPosition {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParsePositionError {
            input: s.to_string(),
            reason,
        };
        let (file, pos) = s.rsplit_once(':').ok_or_else(|| err("no ':'"))?;
        if file.is_empty() {
            return Err(err("empty file name"));
        }
        if file.contains('/') {
            return Err(err("the file is a binlog name, not a path"));
        }
        let pos: u64 = pos.parse().map_err(|_| err("POS is not a number"))?;
        if pos < FIRST_EVENT_POS {
            return Err(err("POS is before the first event (4)"));
        }
        Ok(Self::new(file, pos))
    }
}

impl Serialize for BinlogPosition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BinlogPosition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: BinlogPosition = "binlog.000042:1234".parse().unwrap();
        assert_eq!(p.file(), "binlog.000042");
        assert_eq!(p.pos(), 1234);
        assert_eq!(p.to_string(), "binlog.000042:1234");
        assert_eq!(p.file_number(), Some(42));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "binlog.000001",
            "binlog.000001:",
            ":4",
            "binlog.000001:x",
            "binlog.000001:3",
            "a/b.000001:4",
        ] {
            assert!(bad.parse::<BinlogPosition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn orders_by_file_number_then_offset() {
        let p = |s: &str| s.parse::<BinlogPosition>().unwrap();
        assert!(p("binlog.000009:999") < p("binlog.000010:4"));
        assert!(p("binlog.999999:4") < p("binlog.1000000:4"));
        assert!(p("binlog.000010:4") < p("binlog.000010:5"));
        let mut v = vec![p("b.000002:4"), p("b.000001:900"), p("b.000001:4")];
        v.sort();
        assert_eq!(v, vec![p("b.000001:4"), p("b.000001:900"), p("b.000002:4")]);
    }

    #[test]
    fn serde_round_trip() {
        let p = BinlogPosition::new("mysql-bin.000003", 77);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"mysql-bin.000003:77\"");
        assert_eq!(serde_json::from_str::<BinlogPosition>(&json).unwrap(), p);
        assert!(serde_json::from_str::<BinlogPosition>("\"nope\"").is_err());
    }
}
