//! A text column's character set: which one the binlog's table map (or
//! information_schema) names, and how its bytes become UTF-8
//! (`decode::text` writes them). Table metadata (`schema`) holds one per
//! text column.

use encoding_rs::Encoding;
use mysql_common::collations::{Collation, CollationId};

/// How a text column's bytes become UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// The server did not log the charset and nothing else told us.
    NotLogged,
    /// `binary`: the bytes themselves (base64 in JSON).
    Binary,
    /// utf8mb4 and utf8mb3: validated UTF-8.
    Utf8,
    /// MySQL's latin1 is Windows-1252 (with the five undefined bytes mapped to
    /// the C1 controls, as WHATWG's windows-1252 does).
    Latin1,
    /// ASCII: bytes over 0x7f are an error.
    Ascii,
    /// ucs2 and utf16 (big-endian).
    Utf16Be,
    Utf16Le,
    /// utf32 (big-endian, 4 bytes per character).
    Utf32,
    /// Another charset that encoding_rs decodes exactly.
    Other(&'static Encoding),
    /// A charset we cannot decode exactly: its collation id.
    Unsupported(u16),
}

impl Charset {
    /// From a collation id as logged in the table map.
    pub(crate) fn from_collation(id: u16) -> Self {
        let collation = Collation::from(CollationId::from(id));
        match Self::from_name(collation.charset()) {
            Charset::Unsupported(_) => Charset::Unsupported(id),
            cs => cs,
        }
    }

    /// From a charset name (`utf8mb4`, `latin1`, ...).
    pub(crate) fn from_name(name: &str) -> Self {
        let enc = |label: &str| Encoding::for_label(label.as_bytes()).map(Charset::Other);
        let cs = match name {
            "binary" => Some(Charset::Binary),
            "utf8mb4" | "utf8mb3" | "utf8" => Some(Charset::Utf8),
            "latin1" => Some(Charset::Latin1),
            "ascii" => Some(Charset::Ascii),
            "ucs2" | "utf16" => Some(Charset::Utf16Be),
            "utf16le" => Some(Charset::Utf16Le),
            "utf32" => Some(Charset::Utf32),
            // Single-byte charsets whose WHATWG tables match MySQL's byte for byte.
            "cp1250" => enc("windows-1250"),
            "cp1251" => enc("windows-1251"),
            "cp1256" => enc("windows-1256"),
            "cp1257" => enc("windows-1257"),
            "latin2" => enc("iso-8859-2"),
            "greek" => enc("iso-8859-7"),
            "hebrew" => enc("iso-8859-8"),
            "latin7" => enc("iso-8859-13"),
            "koi8r" => enc("koi8-r"),
            "koi8u" => enc("koi8-u"),
            "cp866" => enc("ibm866"),
            "macroman" => enc("macintosh"),
            // Multi-byte Asian charsets.
            "sjis" | "cp932" => enc("shift_jis"),
            "ujis" | "eucjpms" => enc("euc-jp"),
            "euckr" => enc("euc-kr"),
            "gbk" | "gb2312" => enc("gbk"),
            "gb18030" => enc("gb18030"),
            "big5" => enc("big5"),
            _ => None,
        };
        cs.unwrap_or(Charset::Unsupported(0))
    }
}
