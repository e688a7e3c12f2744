//! Character and byte strings: CHAR, VARCHAR, TEXT (decoded from the column's
//! charset into UTF-8), BINARY, VARBINARY, BLOB, GEOMETRY (base64), and ENUM
//! and SET (their labels).

use mysql_common::collations::{Collation, CollationId};

use super::Bytes;
use crate::charset::Charset;
use crate::json;

/// Writes `bytes` in charset `cs` as a JSON string (or base64 for binary).
#[inline]
pub(crate) fn write_text(bytes: &[u8], cs: Charset, out: &mut Vec<u8>) -> Result<(), String> {
    match cs {
        Charset::Utf8 => {
            // utf8mb3 is a subset of UTF-8; any invalid byte is an error,
            // never a replacement character.
            std::str::from_utf8(bytes).map_err(|e| format!("text is not valid UTF-8: {e}"))?;
            json::write_utf8(out, bytes);
        }
        Charset::Binary => json::write_base64(out, bytes),
        Charset::Latin1 => {
            if bytes.is_ascii() {
                json::write_utf8(out, bytes);
            } else {
                let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
                json::write_str(out, &s);
            }
        }
        Charset::Ascii => {
            if !bytes.is_ascii() {
                return Err("ascii text holds a byte over 0x7f".into());
            }
            json::write_utf8(out, bytes);
        }
        Charset::Utf16Be | Charset::Utf16Le => {
            if !bytes.len().is_multiple_of(2) {
                return Err("UTF-16 text has an odd number of bytes".into());
            }
            let units = bytes.chunks_exact(2).map(|c| match cs {
                Charset::Utf16Be => u16::from_be_bytes([c[0], c[1]]),
                _ => u16::from_le_bytes([c[0], c[1]]),
            });
            let s: String = char::decode_utf16(units)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("text is not valid UTF-16: {e}"))?;
            json::write_str(out, &s);
        }
        Charset::Utf32 => {
            if !bytes.len().is_multiple_of(4) {
                return Err("UTF-32 text is not a multiple of 4 bytes".into());
            }
            let s: String = bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<_>>()
                .ok_or("text is not valid UTF-32")?;
            json::write_str(out, &s);
        }
        Charset::Other(enc) => {
            let s = enc
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| format!("text is not valid {}", enc.name()))?;
            json::write_str(out, &s);
        }
        Charset::NotLogged => {
            return Err("the server did not log this column's charset (set binlog_row_metadata=FULL, \
                 or read from the server so information_schema can tell), so text cannot be told from bytes"
                .into())
        }
        Charset::Unsupported(id) => {
            let name = Collation::from(CollationId::from(id)).collation().to_string();
            return Err(format!("charset of collation {id} ({name}) is not supported"));
        }
    }
    Ok(())
}

/// CHAR/BINARY (`fixed`) and VARCHAR/VARBINARY: a length of 1 byte (max
/// length under 256 bytes) or 2, then the bytes.
///
/// Quirk: the server strips trailing 0x00 bytes of BINARY(n) (and MariaDB's
/// INET6/UUID, which are BINARY(16)) when it logs them; we pad them back to n.
/// CHAR's trailing spaces are stripped too, and the server prints CHAR
/// without them, so they stay stripped.
#[inline]
pub fn string(
    r: &mut Bytes<'_>,
    max_len: u16,
    fixed: bool,
    cs: Charset,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let len = if max_len > 255 {
        r.uint_le(2)?
    } else {
        r.uint_le(1)?
    } as usize;
    let bytes = r.take(len)?;
    if fixed && cs == Charset::Binary && len < max_len as usize {
        let mut padded = bytes.to_vec();
        padded.resize(max_len as usize, 0);
        json::write_base64(out, &padded);
        return Ok(());
    }
    write_text(bytes, cs, out)
}

/// BLOB/TEXT: a little-endian length of 1..4 bytes, then the bytes.
#[inline]
pub fn blob(
    r: &mut Bytes<'_>,
    len_bytes: u8,
    cs: Charset,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let len = r.uint_le(len_bytes as usize)? as usize;
    write_text(r.take(len)?, cs, out)
}

/// GEOMETRY: like a BLOB holding the SRID and WKB; always base64.
pub(crate) fn geometry(r: &mut Bytes<'_>, len_bytes: u8, out: &mut Vec<u8>) -> Result<(), String> {
    blob(r, len_bytes, Charset::Binary, out)
}

/// ENUM: a 1- or 2-byte index into the labels, from 1; 0 is the empty string
/// the server stores for an invalid value.
pub(crate) fn enumeration(
    r: &mut Bytes<'_>,
    bytes: u8,
    labels: Option<&[String]>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let idx = r.uint_le(bytes as usize)? as usize;
    let labels = labels.ok_or("ENUM labels were not logged (binlog_row_metadata=FULL)")?;
    match idx {
        0 => json::write_str(out, ""),
        i => json::write_str(
            out,
            labels
                .get(i - 1)
                .ok_or_else(|| format!("ENUM index {i} is past its {} labels", labels.len()))?,
        ),
    }
    Ok(())
}

/// SET: a little-endian bitmask of 1..8 bytes; bit i = label i.
pub fn set(
    r: &mut Bytes<'_>,
    bytes: u8,
    labels: Option<&[String]>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mask = r.uint_le(bytes as usize)?;
    let labels = labels.ok_or("SET labels were not logged (binlog_row_metadata=FULL)")?;
    if labels.len() < 64 && mask >> labels.len() != 0 {
        return Err(format!(
            "SET bitmask {mask:#x} has bits past its {} labels",
            labels.len()
        ));
    }
    out.push(b'[');
    let mut first = true;
    for (i, label) in labels.iter().enumerate() {
        if mask >> i & 1 == 1 {
            if !first {
                out.push(b',');
            }
            first = false;
            json::write_str(out, label);
        }
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8], cs: Charset) -> Result<String, String> {
        let mut out = Vec::new();
        write_text(bytes, cs, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn charsets() {
        assert_eq!(Charset::from_collation(45), Charset::Utf8);
        assert_eq!(Charset::from_collation(33), Charset::Utf8);
        assert_eq!(Charset::from_collation(8), Charset::Latin1);
        assert_eq!(Charset::from_collation(63), Charset::Binary);
        assert_eq!(
            text(b"caf\xe9 \x80", Charset::Latin1).unwrap(),
            "\"café €\""
        );
        assert_eq!(text("😀".as_bytes(), Charset::Utf8).unwrap(), "\"😀\"");
        assert!(text(b"\xff", Charset::Utf8).is_err());
        assert!(text(b"\xff", Charset::Ascii).is_err());
        assert_eq!(text(b"\x00A", Charset::Utf16Be).unwrap(), "\"A\"");
        assert!(text(b"x", Charset::NotLogged).is_err());
    }

    #[test]
    fn binary_is_padded() {
        let mut out = Vec::new();
        string(
            &mut Bytes::new(&[2, 1, 2]),
            4,
            true,
            Charset::Binary,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"\"AQIAAA==\"");
    }

    #[test]
    fn enum_and_set() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        set(&mut Bytes::new(&[0b101]), 1, Some(&labels), &mut out).unwrap();
        assert_eq!(out, b"[\"a\",\"c\"]");
        out.clear();
        enumeration(&mut Bytes::new(&[2]), 1, Some(&labels), &mut out).unwrap();
        assert_eq!(out, b"\"b\"");
        assert!(enumeration(&mut Bytes::new(&[9]), 1, Some(&labels), &mut out).is_err());
    }
}
