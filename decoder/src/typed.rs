//! What each column's values are, for a writer of typed outputs (the
//! pipeline's Parquet): a table's columns as its events carry them, after
//! column rules, each with the [`ValueType`] that says how its JSON value
//! (docs/EVENTS.md, *Values*) reads back as a typed value. Pure data, built
//! from a [`TableMeta`], so the writer needs nothing of the binlog.

use serde::{Deserialize, Serialize};

use crate::charset::Charset;
use crate::schema::{ColumnKind, TableMeta};
use crate::table_rules::Rule;

/// A column's values, as its events write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ValueType {
    /// A JSON number: TINYINT (8), SMALLINT (16), MEDIUMINT (24), INT (32),
    /// BIGINT (64).
    Int {
        bits: u8,
        unsigned: bool,
    },
    Year,
    Float,
    Double,
    /// A string of exactly the column's digits.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    Time {
        fsp: u8,
    },
    DateTime {
        fsp: u8,
    },
    /// UTC, `...Z`.
    Timestamp {
        fsp: u8,
    },
    /// Text decoded to UTF-8; also every ruled (hashed, masked, truncated)
    /// column, and MariaDB's JSON (LONGTEXT).
    Text,
    /// Bytes, base64 in JSON.
    Binary,
    /// The server's bytes (a 4-byte SRID, then WKB), base64 in JSON.
    Geometry,
    /// An array of 32-bit floats.
    Vector,
    /// MySQL's JSON: the document itself.
    Json,
    Enum,
    /// An array of labels.
    Set,
    /// A JSON number of up to `bits` bits.
    Bit {
        bits: u16,
    },
    /// A column of type NULL.
    Null,
}

/// One column of a table's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedColumn {
    pub name: String,
    #[serde(flatten)]
    pub value: ValueType,
}

impl ValueType {
    /// How a column of `kind` is written without a rule.
    pub fn of(kind: &ColumnKind) -> Self {
        match kind {
            ColumnKind::Int { bytes, unsigned } => ValueType::Int {
                bits: bytes * 8,
                // Unknown signedness is an error when a value needs it (see
                // `decode::int`); what is written is signed.
                unsigned: unsigned.unwrap_or(false),
            },
            ColumnKind::Year => ValueType::Year,
            ColumnKind::Float => ValueType::Float,
            ColumnKind::Double => ValueType::Double,
            ColumnKind::Decimal { precision, scale } => ValueType::Decimal {
                precision: *precision,
                scale: *scale,
            },
            ColumnKind::Date => ValueType::Date,
            ColumnKind::Time { fsp } => ValueType::Time { fsp: *fsp },
            ColumnKind::TimeOld => ValueType::Time { fsp: 0 },
            ColumnKind::DateTime { fsp } => ValueType::DateTime { fsp: *fsp },
            ColumnKind::DateTimeOld => ValueType::DateTime { fsp: 0 },
            ColumnKind::Timestamp { fsp } => ValueType::Timestamp { fsp: *fsp },
            ColumnKind::TimestampOld => ValueType::Timestamp { fsp: 0 },
            ColumnKind::String { charset, .. } | ColumnKind::Blob { charset, .. } => {
                if *charset == Charset::Binary {
                    ValueType::Binary
                } else {
                    ValueType::Text
                }
            }
            ColumnKind::Geometry { .. } => ValueType::Geometry,
            ColumnKind::Vector { .. } => ValueType::Vector,
            ColumnKind::Json { .. } => ValueType::Json,
            ColumnKind::Enum { .. } => ValueType::Enum,
            ColumnKind::Set { .. } => ValueType::Set,
            ColumnKind::Bit { bits } => ValueType::Bit { bits: *bits },
            ColumnKind::Null => ValueType::Null,
        }
    }
}

/// The rule on column `i` of `t`, if any.
fn rule_of(t: &TableMeta, i: usize) -> Option<Rule> {
    let rules = t.rules.as_ref()?;
    rules.ruled.iter().find(|(c, _)| *c == i).map(|(_, r)| *r)
}

/// `t`'s columns as its events carry them, in table order: an excluded
/// column is absent, a hashed, masked or truncated one is text.
pub fn columns(t: &TableMeta) -> Vec<TypedColumn> {
    t.columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let value = match rule_of(t, i) {
                Some(Rule::Exclude) => return None,
                Some(_) => ValueType::Text,
                None => ValueType::of(&c.kind),
            };
            Some(TypedColumn {
                name: c.name.clone(),
                value,
            })
        })
        .collect()
}

/// Whether `t`'s events carry exactly `cols`: checked for each row, without
/// building anything.
pub fn same_columns(cols: &[TypedColumn], t: &TableMeta) -> bool {
    let mut want = cols.iter();
    for (i, c) in t.columns.iter().enumerate() {
        let value = match rule_of(t, i) {
            Some(Rule::Exclude) => continue,
            Some(_) => ValueType::Text,
            None => ValueType::of(&c.kind),
        };
        match want.next() {
            Some(w) if w.name == c.name && w.value == value => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnMeta;

    fn table(cols: Vec<(&str, ColumnKind)>) -> TableMeta {
        let cols = cols
            .into_iter()
            .map(|(n, kind)| ColumnMeta {
                name: n.to_string(),
                kind,
            })
            .collect();
        TableMeta::from_columns("shop", "orders", cols, vec![0])
    }

    #[test]
    fn each_kind_is_written_as_its_type_says() {
        let t = table(vec![
            (
                "id",
                ColumnKind::Int {
                    bytes: 8,
                    unsigned: Some(true),
                },
            ),
            (
                "body",
                ColumnKind::Blob {
                    len_bytes: 2,
                    charset: Charset::Utf8,
                },
            ),
            (
                "raw",
                ColumnKind::String {
                    max_len: 16,
                    fixed: true,
                    charset: Charset::Binary,
                },
            ),
            ("at", ColumnKind::TimestampOld),
        ]);
        let cols = columns(&t);
        let values: Vec<_> = cols.iter().map(|c| c.value).collect();
        assert_eq!(
            values,
            [
                ValueType::Int {
                    bits: 64,
                    unsigned: true
                },
                ValueType::Text,
                ValueType::Binary,
                ValueType::Timestamp { fsp: 0 }
            ]
        );
        assert!(same_columns(&cols, &t));
        assert!(!same_columns(&cols[..3], &t));
        let mut renamed = cols.clone();
        renamed[1].name = "text".into();
        assert!(!same_columns(&renamed, &t));
        assert_eq!(
            serde_json::to_string(&cols[0]).unwrap(),
            r#"{"name":"id","type":"int","bits":64,"unsigned":true}"#
        );
    }

    #[test]
    fn an_excluded_column_is_absent_and_a_ruled_one_is_text() {
        let int = ColumnKind::Int {
            bytes: 4,
            unsigned: Some(false),
        };
        let mut t = table(vec![
            ("id", int.clone()),
            ("card", int.clone()),
            ("pin", int),
        ]);
        let entries = ["*.card=mask".to_string(), "*.pin=exclude".to_string()];
        t.rules = crate::column_rules::ColumnRules::new(&entries, None)
            .unwrap()
            .for_table(&t)
            .unwrap();
        let cols = columns(&t);
        let names: Vec<_> = cols.iter().map(|c| (c.name.as_str(), c.value)).collect();
        assert_eq!(
            names,
            [
                (
                    "id",
                    ValueType::Int {
                        bits: 32,
                        unsigned: false
                    }
                ),
                ("card", ValueType::Text)
            ]
        );
        assert!(same_columns(&cols, &t));
    }
}
