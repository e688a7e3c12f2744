//! MySQL's binary JSON (the JSON column type), and partial JSON updates.
//!
//! The binary format is parsed by mysql_common's `jsonb` module and embedded
//! in the output as the JSON value itself. Quirks: an empty value (length 0)
//! is JSON `null`; opaque values inside a document print as the server's text
//! (dates `"YYYY-MM-DD"`, datetimes with six fraction digits, decimals as
//! strings with their exact digits); other opaque values as
//! `"base64:type<N>:<data>"` (mysql_common's convention).
//!
//! MariaDB stores JSON as LONGTEXT, so its JSON arrives as text (see `text`).

use mysql_common::binlog::jsonb;
use mysql_common::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use mysql_common::io::ParseBuf;
use serde_json::Value;

use super::Bytes;

/// Runs a mysql_common JSON parse, which can panic on malformed bytes (quirk:
/// an opaque DECIMAL whose precision and scale do not fit its bytes panics in
/// `binlog/decimal/mod.rs`; found by tests/tests/fuzz_decoder.rs), and turns
/// a panic into an error.
fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    crate::guard::catch(f).unwrap_or_else(|_| {
        Err("binary JSON is malformed: its bytes do not match its own lengths".into())
    })
}

fn parse_jsonb(bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    no_panic(|| {
        let v: jsonb::Value<'_> = ParseBuf(bytes)
            .parse(())
            .map_err(|e| format!("binary JSON is malformed: {e}"))?;
        let dom = v
            .parse()
            .map_err(|e| format!("binary JSON is malformed: {e}"))?;
        Ok(Value::from(dom))
    })
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    serde_json::to_writer(out, v).map_err(|e| format!("JSON value cannot be written: {e}"))
}

/// A JSON column: a 1..4-byte length, then binary JSON.
pub fn json(r: &mut Bytes<'_>, len_bytes: u8, out: &mut Vec<u8>) -> Result<(), String> {
    let len = r.uint_le(len_bytes as usize)? as usize;
    let v = parse_jsonb(r.take(len)?)?;
    write_value(&v, out)
}

/// A JSON column's value as a query returns it (MySQL's text form), written
/// as [`json`] writes the binary form: parsed, then printed the same way.
pub(crate) fn json_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| format!("JSON text is malformed: {e}"))?;
    write_value(&v, out)
}

/// A JSON column of a PARTIAL_UPDATE_ROWS after-image: a list of diffs
/// (replace, insert, remove at a path), applied to the before-image's value.
pub(crate) fn partial(
    r: &mut Bytes<'_>,
    kind: &crate::schema::ColumnKind,
    base: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let crate::schema::ColumnKind::Json { len_bytes } = kind else {
        return Err("partial update of a column that is not JSON".into());
    };
    let len = r.uint_le(*len_bytes as usize)? as usize;
    let mut buf = ParseBuf(r.take(len)?);
    let base = base.ok_or(
        "partial JSON update, but the before image does not hold the column, so the document cannot be rebuilt \
         (binlog_row_image=MINIMAL with binlog_row_value_options=PARTIAL_JSON; use binlog_row_image=FULL)",
    )?;
    let mut doc: Value =
        serde_json::from_slice(base).map_err(|e| format!("before image JSON: {e}"))?;
    while !buf.is_empty() {
        let (path_str, operation, value) = no_panic(|| {
            let diff: JsonDiff<'_> = buf
                .parse(())
                .map_err(|e| format!("partial JSON diff is malformed: {e}"))?;
            let value = match diff.value() {
                Some(v) => Some(Value::from(
                    v.clone()
                        .parse()
                        .map_err(|e| format!("partial JSON diff value: {e}"))?,
                )),
                None => None,
            };
            Ok((diff.path_str().to_string(), diff.operation(), value))
        })?;
        let path = parse_path(&path_str)?;
        apply(&mut doc, &path, operation, value)
            .map_err(|e| format!("partial JSON diff at {path_str}: {e}"))?;
    }
    write_value(&doc, out)
}

#[derive(Debug, PartialEq)]
enum Leg {
    Key(String),
    Index(usize),
}

/// A MySQL JSON path as written in diffs: `$`, `.key`, `."quoted key"`, `[n]`.
fn parse_path(p: &str) -> Result<Vec<Leg>, String> {
    let bad = || format!("unsupported JSON path {p:?}");
    let rest = p.strip_prefix('$').ok_or_else(bad)?;
    let mut legs = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    loop {
                        match chars.next().ok_or_else(bad)? {
                            '\\' => key.push(chars.next().ok_or_else(bad)?),
                            '"' => break,
                            c => key.push(c),
                        }
                    }
                } else {
                    while let Some(&c) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        key.push(c);
                        chars.next();
                    }
                }
                legs.push(Leg::Key(key));
            }
            '[' => {
                let mut n = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    n.push(c);
                }
                legs.push(Leg::Index(n.trim().parse().map_err(|_| bad())?));
            }
            c if c.is_whitespace() => {}
            _ => return Err(bad()),
        }
    }
    Ok(legs)
}

fn apply(
    doc: &mut Value,
    path: &[Leg],
    op: JsonDiffOperation,
    value: Option<Value>,
) -> Result<(), String> {
    let (last, parents) = match path.split_last() {
        Some(x) => x,
        None => {
            // The whole document.
            return match (op, value) {
                (JsonDiffOperation::REPLACE, Some(v)) => {
                    *doc = v;
                    Ok(())
                }
                _ => Err("cannot insert or remove the whole document".into()),
            };
        }
    };
    let mut cur = doc;
    for leg in parents {
        cur = match (leg, cur) {
            (Leg::Key(k), Value::Object(m)) => m.get_mut(k).ok_or("path not found")?,
            (Leg::Index(i), Value::Array(a)) => a.get_mut(*i).ok_or("path not found")?,
            _ => return Err("path not found".into()),
        };
    }
    match (op, last, cur, value) {
        (JsonDiffOperation::REPLACE, Leg::Key(k), Value::Object(m), Some(v)) => {
            *m.get_mut(k).ok_or("replaced key not found")? = v;
        }
        (JsonDiffOperation::REPLACE, Leg::Index(i), Value::Array(a), Some(v)) => {
            *a.get_mut(*i).ok_or("replaced index not found")? = v;
        }
        (JsonDiffOperation::INSERT, Leg::Key(k), Value::Object(m), Some(v)) => {
            m.insert(k.clone(), v);
        }
        (JsonDiffOperation::INSERT, Leg::Index(i), Value::Array(a), Some(v)) => {
            let i = (*i).min(a.len());
            a.insert(i, v);
        }
        (JsonDiffOperation::REMOVE, Leg::Key(k), Value::Object(m), None) => {
            m.remove(k).ok_or("removed key not found")?;
        }
        (JsonDiffOperation::REMOVE, Leg::Index(i), Value::Array(a), None) => {
            if *i >= a.len() {
                return Err("removed index not found".into());
            }
            a.remove(*i);
        }
        _ => return Err("operation does not fit the document".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("$.a[2].\"b c\"").unwrap(),
            vec![Leg::Key("a".into()), Leg::Index(2), Leg::Key("b c".into())]
        );
        assert!(parse_path("a").is_err());
    }

    #[test]
    fn applies_diffs() {
        let mut d = json!({"a": [1, 2, 3], "b": {"c": 1}});
        apply(
            &mut d,
            &parse_path("$.a[1]").unwrap(),
            JsonDiffOperation::REPLACE,
            Some(json!(9)),
        )
        .unwrap();
        apply(
            &mut d,
            &parse_path("$.b.d").unwrap(),
            JsonDiffOperation::INSERT,
            Some(json!("x")),
        )
        .unwrap();
        apply(
            &mut d,
            &parse_path("$.a[0]").unwrap(),
            JsonDiffOperation::REMOVE,
            None,
        )
        .unwrap();
        assert_eq!(d, json!({"a": [9, 3], "b": {"c": 1, "d": "x"}}));
        assert!(apply(
            &mut d,
            &parse_path("$.zz.y").unwrap(),
            JsonDiffOperation::REMOVE,
            None
        )
        .is_err());
    }
}
