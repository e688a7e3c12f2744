//! A queried row's values -> the JSON text the binlog path writes for the
//! same values, through the same writers (`decode::*`): a snapshot row and a
//! change event of the same row are byte-identical in their images.
//!
//! The query runs over the binary protocol with `character_set_results =
//! binary` and `time_zone = '+00:00'`, so strings arrive as their stored
//! bytes (decoded from the column's charset here, as for a row image),
//! numbers and temporals as typed values, TIMESTAMP in UTC.

use mysql_common::value::Value;

use super::columns::Read;
use crate::decode::{self, float, int, temporal, text, Bytes, RowImage};
use crate::json;
use crate::schema::{ColumnKind, TableMeta};

/// Writes one queried row as an image of `table` (column order).
pub fn image(
    table: &TableMeta,
    reads: &[Read],
    row: &[Value],
    out: &mut RowImage,
) -> Result<(), String> {
    out.reset(table.columns.len());
    for ((col, read), v) in table.columns.iter().zip(reads).zip(row) {
        out.push_with(|buf| value(&col.kind, *read, v, buf))
            .map_err(|e| format!("{}.{}: {e}", table.full_name, col.name))?;
    }
    Ok(())
}

/// One value of a column of `kind`, read as `read` says.
pub fn value(kind: &ColumnKind, read: Read, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    if *v == Value::NULL {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    match (read, v) {
        (Read::Number, _) => return labels(kind, v, out),
        (Read::Uuid, Value::Bytes(b)) => return base64(&uuid_bytes(b)?, out),
        (Read::Inet6, Value::Bytes(b)) => return base64(b, out),
        (Read::Inet4, _) => return base64(&(unsigned(v)? as u32).to_be_bytes(), out),
        _ => {}
    }
    match (kind, v) {
        (ColumnKind::Int { .. } | ColumnKind::Year, Value::Int(i)) => json::write_i64(out, *i),
        (ColumnKind::Int { .. } | ColumnKind::Year, Value::UInt(u)) => json::write_u64(out, *u),
        (ColumnKind::Bit { bits }, Value::Bytes(b)) => {
            let mut be = vec![0u8; (*bits as usize).div_ceil(8).saturating_sub(b.len())];
            be.extend_from_slice(b);
            return int::bit(&mut Bytes::new(&be), *bits, out);
        }
        (ColumnKind::Float, Value::Float(f)) => {
            return float::float(&mut Bytes::new(&f.to_le_bytes()), out)
        }
        (ColumnKind::Double, Value::Double(d)) => {
            return float::double(&mut Bytes::new(&d.to_le_bytes()), out)
        }
        (ColumnKind::Decimal { .. }, Value::Bytes(b)) => {
            let s = std::str::from_utf8(b).map_err(|e| format!("DECIMAL text: {e}"))?;
            json::write_str(out, s);
        }
        (kind, Value::Date(y, m, d, h, i, s, us)) => {
            let (date, time) = (
                (*y as u64, *m as u64, *d as u64),
                (*h as u64, *i as u64, *s as u64),
            );
            return temporal_value(kind, date, time, *us as u64, out);
        }
        (ColumnKind::Time { .. } | ColumnKind::TimeOld, Value::Time(neg, days, h, i, s, us)) => {
            let hours = *days as u64 * 24 + *h as u64;
            temporal::write_time(
                out,
                *neg,
                (hours, *i as u64, *s as u64),
                *us as u64,
                fsp(kind),
            );
        }
        (
            ColumnKind::String { charset, .. } | ColumnKind::Blob { charset, .. },
            Value::Bytes(b),
        ) => return text::write_text(b, *charset, out),
        (ColumnKind::Geometry { .. }, Value::Bytes(b)) => json::write_base64(out, b),
        (ColumnKind::Json { .. }, Value::Bytes(b)) => return decode::json::json_text(b, out),
        (ColumnKind::Vector { len_bytes }, Value::Bytes(b)) => {
            let mut packed = (b.len() as u64).to_le_bytes()[..*len_bytes as usize].to_vec();
            packed.extend_from_slice(b);
            return float::vector(&mut Bytes::new(&packed), *len_bytes, out);
        }
        (kind, v) => {
            return Err(format!(
                "the query returned {v:?} for a {} column",
                kind.type_name()
            ))
        }
    }
    Ok(())
}

/// DATE, DATETIME and TIMESTAMP (the binary protocol's date value).
fn temporal_value(
    kind: &ColumnKind,
    date: (u64, u64, u64),
    time: (u64, u64, u64),
    micros: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match kind {
        ColumnKind::Date => temporal::write_date(out, date.0, date.1, date.2),
        ColumnKind::DateTime { .. } | ColumnKind::DateTimeOld => {
            temporal::write_datetime(out, date, time, micros, fsp(kind))
        }
        ColumnKind::Timestamp { .. } | ColumnKind::TimestampOld => {
            // The zero TIMESTAMP is stored as 0 seconds; any other is UTC
            // (the session's time zone is +00:00).
            let secs = if date == (0, 0, 0) {
                0
            } else {
                let days = temporal::days_from_civil(date.0 as i64, date.1, date.2);
                (days * 86_400) as u64 + time.0 * 3600 + time.1 * 60 + time.2
            };
            temporal::write_timestamp(out, secs, micros, fsp(kind));
        }
        other => {
            return Err(format!(
                "the query returned a date for a {} column",
                other.type_name()
            ))
        }
    }
    Ok(())
}

fn fsp(kind: &ColumnKind) -> u8 {
    match kind {
        ColumnKind::Time { fsp } | ColumnKind::DateTime { fsp } | ColumnKind::Timestamp { fsp } => {
            *fsp
        }
        _ => 0,
    }
}

fn unsigned(v: &Value) -> Result<u64, String> {
    match v {
        Value::UInt(u) => Ok(*u),
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("expected a number, got {v:?}")),
        other => Err(format!("expected a number, got {other:?}")),
    }
}

/// ENUM's index or SET's bitmask (`CAST(col AS UNSIGNED)`) through the
/// binlog's writers.
fn labels(kind: &ColumnKind, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let n = unsigned(v)?.to_le_bytes();
    match kind {
        ColumnKind::Enum { bytes, labels } => {
            text::enumeration(&mut Bytes::new(&n), *bytes, labels.as_deref(), out)
        }
        ColumnKind::Set { bytes, labels } => {
            text::set(&mut Bytes::new(&n), *bytes, labels.as_deref(), out)
        }
        other => Err(format!("a number read for a {} column", other.type_name())),
    }
}

fn base64(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    json::write_base64(out, bytes);
    Ok(())
}

/// A MariaDB UUID's text (`6ccd780c-baba-1026-9564-5b8c656024db`) -> its 16
/// bytes as the binlog logs them: in the text's order (MariaDB reorders
/// the groups of version 1-5 UUIDs in its index records, not in the row
/// image it logs; tests/tests/type_matrix.rs checks both kinds).
pub(crate) fn uuid_bytes(text: &[u8]) -> Result<[u8; 16], String> {
    let hex: Vec<u8> = text.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return Err(format!(
            "UUID text {:?} is not 32 hex digits",
            String::from_utf8_lossy(text)
        ));
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|e| format!("UUID text: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charset::Charset;

    fn one(kind: ColumnKind, read: Read, v: Value) -> String {
        let mut out = Vec::new();
        value(&kind, read, &v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_as_the_binlog_writes_them() {
        let int = ColumnKind::Int {
            bytes: 8,
            unsigned: Some(true),
        };
        assert_eq!(
            one(int.clone(), Read::Plain, Value::UInt(u64::MAX)),
            "18446744073709551615"
        );
        assert_eq!(one(int, Read::Plain, Value::NULL), "null");
        assert_eq!(
            one(ColumnKind::Float, Read::Plain, Value::Float(1.1754944e-38)),
            "1.1754944e-38"
        );
        assert_eq!(
            one(ColumnKind::Double, Read::Plain, Value::Double(0.1)),
            "0.1"
        );
        assert_eq!(
            one(
                ColumnKind::Bit { bits: 9 },
                Read::Plain,
                Value::Bytes(vec![1, 1])
            ),
            "257"
        );
        let dec = ColumnKind::Decimal {
            precision: 6,
            scale: 4,
        };
        assert_eq!(
            one(dec, Read::Plain, Value::Bytes(b"12.3400".to_vec())),
            "\"12.3400\""
        );
    }

    #[test]
    fn temporals_as_the_binlog_writes_them() {
        let ts = ColumnKind::Timestamp { fsp: 4 };
        assert_eq!(
            one(
                ts.clone(),
                Read::Plain,
                Value::Date(2038, 1, 19, 3, 14, 7, 999_900)
            ),
            "\"2038-01-19T03:14:07.9999Z\""
        );
        assert_eq!(
            one(ts, Read::Plain, Value::Date(0, 0, 0, 0, 0, 0, 0)),
            "\"0000-00-00 00:00:00.0000\""
        );
        let dt = ColumnKind::DateTime { fsp: 2 };
        assert_eq!(
            one(dt, Read::Plain, Value::Date(2020, 0, 0, 0, 0, 0, 0)),
            "\"2020-00-00 00:00:00.00\""
        );
        let tm = ColumnKind::Time { fsp: 3 };
        assert_eq!(
            one(tm, Read::Plain, Value::Time(true, 0, 0, 0, 1, 500_000)),
            "\"-00:00:01.500\""
        );
        let tm = ColumnKind::Time { fsp: 0 };
        assert_eq!(
            one(tm, Read::Plain, Value::Time(false, 34, 22, 59, 59, 0)),
            "\"838:59:59\""
        );
    }

    #[test]
    fn strings_labels_and_mariadb_types() {
        let latin1 = ColumnKind::String {
            max_len: 20,
            fixed: false,
            charset: Charset::Latin1,
        };
        assert_eq!(
            one(latin1, Read::Plain, Value::Bytes(vec![b'c', 0xe9])),
            "\"c\u{e9}\""
        );
        let set = ColumnKind::Set {
            bytes: 8,
            labels: Some(vec!["x".into(), "y".into(), "z".into()]),
        };
        assert_eq!(one(set, Read::Number, Value::UInt(5)), "[\"x\",\"z\"]");
        let e = ColumnKind::Enum {
            bytes: 2,
            labels: Some(vec!["a".into()]),
        };
        assert_eq!(one(e, Read::Number, Value::Int(0)), "\"\"");
        let b4 = ColumnKind::String {
            max_len: 4,
            fixed: true,
            charset: Charset::Binary,
        };
        assert_eq!(
            one(b4, Read::Inet4, Value::UInt(0x7f00_0001)),
            "\"fwAAAQ==\""
        );
    }

    #[test]
    fn uuids_are_their_hex_digits_in_order() {
        let v1 = uuid_bytes(b"6ccd780c-baba-1026-9564-5b8c656024db").unwrap();
        assert_eq!(v1[..4], [0x6c, 0xcd, 0x78, 0x0c]);
        assert_eq!(v1[10..], [0x5b, 0x8c, 0x65, 0x60, 0x24, 0xdb]);
        assert!(uuid_bytes(b"xyz").is_err());
        assert!(uuid_bytes(b"6ccd780c-baba-1026-9564-5b8c656024dg").is_err());
    }

    #[test]
    fn a_mismatched_value_is_an_error() {
        let mut out = Vec::new();
        let err = value(&ColumnKind::Date, Read::Plain, &Value::Int(1), &mut out).unwrap_err();
        assert!(err.contains("DATE"), "{err}");
    }
}
