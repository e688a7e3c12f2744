//! A key range of one table, as a snapshot's plan stores it: its bounds'
//! values ([`KeyValue`], each a `mysql_common` value that survives JSON) and
//! the SQL condition that selects it.

use mysql_common::value::Value;
use serde::{Deserialize, Serialize};

/// One value of a key bound, as stored in a range's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Text or bytes as the server returned them (UTF-8 for text); base64
    /// in JSON.
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    Date(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u32, u8, u8, u8, u32),
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text).map_err(serde::de::Error::custom)
    }
}

impl From<Value> for KeyValue {
    fn from(v: Value) -> Self {
        match v {
            Value::NULL => KeyValue::Null,
            Value::Int(i) => KeyValue::Int(i),
            Value::UInt(u) => KeyValue::UInt(u),
            Value::Float(f) => KeyValue::Float(f),
            Value::Double(d) => KeyValue::Double(d),
            Value::Bytes(b) => KeyValue::Bytes(b),
            Value::Date(y, m, d, h, i, s, us) => KeyValue::Date(y, m, d, h, i, s, us),
            Value::Time(n, d, h, i, s, us) => KeyValue::Time(n, d, h, i, s, us),
        }
    }
}

impl From<&KeyValue> for Value {
    fn from(v: &KeyValue) -> Self {
        match v.clone() {
            KeyValue::Null => Value::NULL,
            KeyValue::Int(i) => Value::Int(i),
            KeyValue::UInt(u) => Value::UInt(u),
            KeyValue::Float(f) => Value::Float(f),
            KeyValue::Double(d) => Value::Double(d),
            KeyValue::Bytes(b) => Value::Bytes(b),
            KeyValue::Date(y, m, d, h, i, s, us) => Value::Date(y, m, d, h, i, s, us),
            KeyValue::Time(n, d, h, i, s, us) => Value::Time(n, d, h, i, s, us),
        }
    }
}

/// A key range of one table: rows with key `> after` and `<= upto` (`None`:
/// unbounded on that side), in key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRange {
    pub schema: String,
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<Vec<KeyValue>>,
}

/// `WHERE (k1, k2) > (?, ?)` / `<= (?, ?)` for a range's bounds, over the
/// `n` key columns `keys`.
pub(super) fn range_condition(keys: &str, n: usize, after: bool, upto: bool) -> String {
    let marks = vec!["?"; n].join(", ");
    let mut parts = Vec::new();
    if after {
        parts.push(format!("({keys}) > ({marks})"));
    }
    if upto {
        parts.push(format!("({keys}) <= ({marks})"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_conditions() {
        assert_eq!(range_condition("`a`", 1, false, false), "");
        assert_eq!(
            range_condition("`a`, `b`", 2, true, false),
            " WHERE (`a`, `b`) > (?, ?)"
        );
        assert_eq!(
            range_condition("`a`", 1, true, true),
            " WHERE (`a`) > (?) AND (`a`) <= (?)"
        );
    }

    #[test]
    fn key_values_round_trip_through_serde() {
        let k = vec![
            KeyValue::Bytes(b"x".to_vec()),
            KeyValue::Date(2020, 1, 2, 3, 4, 5, 6),
        ];
        let text = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<Vec<KeyValue>>(&text).unwrap(), k);
        assert_eq!(
            KeyValue::from(Value::from(&KeyValue::Int(-1))),
            KeyValue::Int(-1)
        );
    }
}
