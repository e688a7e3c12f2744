//! One value as the JSON events write it (docs/EVENTS.md, *Values*), read
//! back as the typed value a Parquet column holds: pure functions of the
//! value's JSON text, each exact or an error (never a rounded value).
//!
//! A date the server holds but a calendar does not (`0000-00-00`,
//! `2020-00-15`) is [`Cell::NotTyped`]: the writer leaves the typed column
//! NULL and keeps the text in `_cdc_as_json`.

use std::borrow::Cow;

use base64::Engine;
use binlog_cdc::decoder::typed::ValueType;
use serde_json::value::RawValue;

/// A typed value, ready for its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    /// An unscaled decimal (the column says the scale).
    Decimal(i128),
    Float(f32),
    Double(f64),
    Text(Cow<'a, str>),
    Bytes(Vec<u8>),
    /// A geometry: its WKB, and the SRID the server stored before it.
    Geometry {
        srid: u32,
        wkb: Vec<u8>,
    },
    Floats(Vec<f32>),
    Texts(Vec<Cow<'a, str>>),
    /// A value its type's column cannot hold; it is kept as its JSON text.
    NotTyped,
}

/// Decimal digits Parquet readers take (Athena, Spark, DuckDB: 38).
pub const MAX_DECIMAL_DIGITS: u8 = 38;

/// `raw` (one JSON value) as a column of `ty` holds it.
pub fn read<'a>(ty: ValueType, raw: &'a RawValue) -> Result<Cell<'a>, String> {
    let text = raw.get();
    if text == "null" {
        return Ok(Cell::Null);
    }
    Ok(match ty {
        ValueType::Int { .. } | ValueType::Year | ValueType::Bit { .. } => integer(text)?,
        ValueType::Float => Cell::Float(number(text)?),
        ValueType::Double => Cell::Double(number(text)?),
        ValueType::Decimal { precision, scale } if precision <= MAX_DECIMAL_DIGITS => {
            Cell::Decimal(decimal(&string(raw)?, scale)?)
        }
        ValueType::Decimal { .. } | ValueType::Text | ValueType::Enum => Cell::Text(string(raw)?),
        ValueType::Json => Cell::Text(Cow::Borrowed(text)),
        ValueType::Date => date(&string(raw)?)?.map_or(Cell::NotTyped, |d| Cell::Int(d.into())),
        ValueType::DateTime { .. } | ValueType::Timestamp { .. } => {
            datetime(&string(raw)?)?.map_or(Cell::NotTyped, Cell::Int)
        }
        ValueType::Time { .. } => Cell::Int(time(&string(raw)?)?),
        ValueType::Binary => Cell::Bytes(base64(&string(raw)?)?),
        ValueType::Geometry => geometry(base64(&string(raw)?)?)?,
        ValueType::Vector => Cell::Floats(
            array(raw)?
                .iter()
                .map(|v| number(v.get()))
                .collect::<Result<_, _>>()?,
        ),
        ValueType::Set => Cell::Texts(
            array(raw)?
                .into_iter()
                .map(string)
                .collect::<Result<_, _>>()?,
        ),
        ValueType::Null => Cell::Null,
    })
}

/// An integer: a JSON number of at most 64 bits, signed or not (an
/// unsigned one above `i64::MAX` is a [`Cell::Decimal`]).
fn integer(text: &str) -> Result<Cell<'static>, String> {
    if let Ok(v) = text.parse::<i64>() {
        return Ok(Cell::Int(v));
    }
    text.parse::<u64>()
        .map(|v| Cell::Decimal(v.into()))
        .map_err(|_| format!("{text} is not an integer of 64 bits"))
}

/// A float or double from the shortest text that reads back as it: the
/// standard library's parse is correctly rounded, so exact.
fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{text} is not a number"))
}

fn string(raw: &RawValue) -> Result<Cow<'_, str>, String> {
    let s: Cow<'_, str> =
        serde_json::from_str(raw.get()).map_err(|_| format!("{} is not a string", raw.get()))?;
    Ok(s)
}

fn array(raw: &RawValue) -> Result<Vec<&RawValue>, String> {
    serde_json::from_str(raw.get()).map_err(|_| format!("{} is not an array", raw.get()))
}

fn base64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("not base64: {e}"))
}

/// `"-12.3400"` with exactly `scale` fraction digits, unscaled: -123400.
pub fn decimal(s: &str, scale: u8) -> Result<i128, String> {
    let bad = || format!("{s:?} is not a decimal with {scale} fraction digits");
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() != scale as usize
        || int.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() + frac.len() > MAX_DECIMAL_DIGITS as usize
    {
        return Err(bad());
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + i128::from(b - b'0');
    }
    Ok(if negative { -v } else { v })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn field(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a {what}"));
    }
    s.parse().map_err(|_| format!("{s:?} is not a {what}"))
}

/// `"YYYY-MM-DD"` as days since the epoch; `None` for a zero or partly
/// zero date, which no calendar holds.
pub fn date(s: &str) -> Result<Option<i32>, String> {
    let mut it = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("{s:?} is not a date"));
    };
    let (y, m, d) = (field(y, "year")?, field(m, "month")?, field(d, "day")?);
    if m == 0 || d == 0 {
        return Ok(None);
    }
    if m > 12 || d > 31 {
        return Err(format!("{s:?} is not a date"));
    }
    Ok(Some(days_from_civil(y, m, d) as i32))
}

/// `"[-]HH:MM:SS[.f]"` as microseconds (`HH` up to 838).
fn hms_micros(s: &str) -> Result<i64, String> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let (Some(h), Some(m), Some(sec)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("{s:?} is not a time"));
    };
    let (h, m, sec) = (
        field(h, "hour")?,
        field(m, "minute")?,
        field(sec, "second")?,
    );
    if frac.len() > 6 {
        return Err(format!("{s:?} has more than 6 fraction digits"));
    }
    let micros = if frac.is_empty() {
        0
    } else {
        field(frac, "fraction")? * 10i64.pow(6 - frac.len() as u32)
    };
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// TIME as signed microseconds.
pub fn time(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) => Ok(-hms_micros(rest)?),
        None => hms_micros(s),
    }
}

/// DATETIME (`"YYYY-MM-DD HH:MM:SS[.f]"`) or TIMESTAMP
/// (`"YYYY-MM-DDTHH:MM:SS[.f]Z"`) as microseconds since the epoch (local
/// time for DATETIME, UTC for TIMESTAMP); `None` for a zero date.
pub fn datetime(s: &str) -> Result<Option<i64>, String> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let Some((d, t)) = s.split_once([' ', 'T']) else {
        return Err(format!("{s:?} is not a date and time"));
    };
    let Some(days) = date(d)? else {
        return Ok(None);
    };
    Ok(Some(i64::from(days) * 86_400_000_000 + hms_micros(t)?))
}

/// The server's geometry (a little-endian SRID, then WKB).
fn geometry(bytes: Vec<u8>) -> Result<Cell<'static>, String> {
    if bytes.len() < 4 {
        return Err(format!("a geometry of {} bytes has no SRID", bytes.len()));
    }
    let srid = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Ok(Cell::Geometry {
        srid,
        wkb: bytes[4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn cell(ty: ValueType, json: &str) -> Cell<'static> {
        let r = raw(json);
        match read(ty, &r).unwrap() {
            Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
            Cell::Texts(t) => {
                Cell::Texts(t.into_iter().map(|s| Cow::Owned(s.into_owned())).collect())
            }
            Cell::Null => Cell::Null,
            Cell::Int(v) => Cell::Int(v),
            Cell::Decimal(v) => Cell::Decimal(v),
            Cell::Float(v) => Cell::Float(v),
            Cell::Double(v) => Cell::Double(v),
            Cell::Bytes(v) => Cell::Bytes(v),
            Cell::Geometry { srid, wkb } => Cell::Geometry { srid, wkb },
            Cell::Floats(v) => Cell::Floats(v),
            Cell::NotTyped => Cell::NotTyped,
        }
    }

    #[test]
    fn integers_are_exact_past_i64() {
        let big = ValueType::Int {
            bits: 64,
            unsigned: true,
        };
        assert_eq!(
            cell(big, "18446744073709551615"),
            Cell::Decimal(u64::MAX.into())
        );
        assert_eq!(cell(big, "9223372036854775807"), Cell::Int(i64::MAX));
        assert_eq!(cell(big, "-9223372036854775808"), Cell::Int(i64::MIN));
        assert_eq!(cell(ValueType::Year, "0"), Cell::Int(0));
        assert_eq!(cell(ValueType::Bit { bits: 3 }, "5"), Cell::Int(5));
        assert!(read(big, &raw("1.5")).is_err());
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal("12.3400", 4), Ok(123_400));
        assert_eq!(decimal("-0.5", 1), Ok(-5));
        assert_eq!(decimal("42", 0), Ok(42));
        let max38 = "9".repeat(38);
        assert_eq!(decimal(&max38, 0), Ok(10i128.pow(38) - 1));
        assert!(decimal("1.5", 2).is_err(), "the column's digits, exactly");
        assert!(decimal("1e5", 0).is_err());
        assert!(decimal(&"9".repeat(39), 0).is_err());
        let wide = ValueType::Decimal {
            precision: 65,
            scale: 30,
        };
        let v = format!("\"{}.{}\"", "1".repeat(35), "2".repeat(30));
        assert_eq!(
            cell(wide, &v),
            Cell::Text(v.trim_matches('"').to_string().into())
        );
    }

    #[test]
    fn floats_read_back_as_stored() {
        assert_eq!(
            cell(ValueType::Float, "3.40282e38"),
            Cell::Float(3.40282e38f32)
        );
        assert_eq!(cell(ValueType::Float, "0.1"), Cell::Float(0.1f32));
        assert_eq!(cell(ValueType::Double, "0.1"), Cell::Double(0.1));
        assert_eq!(
            cell(ValueType::Double, "1.7976931348623157e308"),
            Cell::Double(f64::MAX)
        );
        assert_eq!(
            cell(ValueType::Vector, "[2.5,2024,18]"),
            Cell::Floats(vec![2.5, 2024.0, 18.0])
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date("1970-01-01"), Ok(Some(0)));
        assert_eq!(date("2000-03-01"), Ok(Some(11_017)));
        assert_eq!(date("1000-01-01"), Ok(Some(-354_285)));
        assert_eq!(date("9999-12-31"), Ok(Some(2_932_896)));
        assert_eq!(date("0000-00-00"), Ok(None));
        assert_eq!(date("2020-00-15"), Ok(None));
        assert!(date("2020-13-01").is_err());
        assert_eq!(time("-838:59:59"), Ok(-3_020_399_000_000));
        assert_eq!(time("00:00:00.5"), Ok(500_000));
        assert_eq!(time("-00:00:01.000001"), Ok(-1_000_001));
        assert_eq!(
            datetime("2026-12-01 23:47:10.123456"),
            Ok(Some(1_796_168_830_123_456))
        );
        assert_eq!(
            datetime("2026-12-01T23:47:10Z"),
            Ok(Some(1_796_168_830_000_000))
        );
        assert_eq!(datetime("0000-00-00 00:00:00"), Ok(None));
        assert_eq!(cell(ValueType::Date, "\"0000-00-00\""), Cell::NotTyped);
    }

    #[test]
    fn strings_bytes_and_labels() {
        assert_eq!(
            cell(ValueType::Text, r#""a\"b é""#),
            Cell::Text("a\"b é".into())
        );
        assert_eq!(
            cell(ValueType::Binary, r#""AAE=""#),
            Cell::Bytes(vec![0, 1])
        );
        assert_eq!(
            cell(ValueType::Set, r#"["x","z"]"#),
            Cell::Texts(vec!["x".into(), "z".into()])
        );
        assert_eq!(
            cell(ValueType::Json, r#"{"a":[1,2]}"#),
            Cell::Text(r#"{"a":[1,2]}"#.into())
        );
        // SRID 4326, then WKB.
        assert_eq!(
            cell(ValueType::Geometry, r#""5hAAAAEB""#),
            Cell::Geometry {
                srid: 4326,
                wkb: vec![1, 1]
            }
        );
        assert_eq!(cell(ValueType::Text, "null"), Cell::Null);
        assert!(read(ValueType::Text, &raw("5")).is_err());
    }
}
