//! A table's columns for a snapshot, from information_schema: each column's
//! [`ColumnKind`] (what the binlog path decodes it as) and how the query
//! reads it ([`Read`]), so a queried value is written as the binlog writes it.

use crate::charset::Charset;
use crate::definition::ColumnDefinition;
use crate::schema::{parse_labels, ColumnKind, ColumnMeta, TableMeta};

/// How the snapshot's SELECT reads a column, where its plain value is not
/// the bytes the binlog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Plain,
    /// ENUM and SET as their index or bitmask (`CAST(col AS UNSIGNED)`),
    /// as the binlog stores them: the labels then come from the same list.
    /// (Not `col+0`: MySQL types that DOUBLE, which cannot hold a bitmask of
    /// a SET with more than 53 members; MariaDB types it INT.)
    Number,
    /// MariaDB's UUID: a query prints it as text; the binlog holds its 16
    /// bytes (see `encode::uuid_bytes`).
    Uuid,
    /// MariaDB's INET6/INET4: `INET6_ATON`/`INET_ATON` give the stored bytes.
    Inet6,
    Inet4,
}

/// One column as information_schema lists it.
#[derive(Debug, Clone)]
pub struct InfoRow {
    pub name: String,
    /// `DATA_TYPE`, lower case.
    pub data_type: String,
    /// `COLUMN_TYPE` as declared (labels keep their case).
    pub column_type: String,
    pub charset: Option<String>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    /// Position in the primary key (1-based), if in it.
    pub key_ordinal: Option<u64>,
}

impl InfoRow {
    /// The same facts from a column as `SHOW FULL COLUMNS` prints it (a
    /// temporary table is not in information_schema): `decimal(12,4)`
    /// gives precision and scale, `datetime(6)` the fraction's digits,
    /// `bit(3)` the bits.
    pub(crate) fn from_definition(c: &ColumnDefinition) -> Self {
        let t = c.column_type.to_ascii_lowercase();
        let data_type = t.split(['(', ' ']).next().unwrap_or("").to_string();
        let args: Vec<u64> = t
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let arg = |i: usize| args.get(i).copied();
        let temporal = matches!(data_type.as_str(), "time" | "datetime" | "timestamp");
        Self {
            name: c.name.clone(),
            numeric_precision: if temporal { None } else { arg(0) },
            numeric_scale: if temporal { None } else { arg(1) },
            datetime_precision: if temporal {
                Some(arg(0).unwrap_or(0))
            } else {
                None
            },
            data_type,
            column_type: c.column_type.clone(),
            charset: c.charset.clone(),
            key_ordinal: None,
        }
    }
}

/// The table as the snapshot reads it: the decoder's metadata (for the
/// event writer) and how each column is selected.
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    pub meta: TableMeta,
    pub reads: Vec<Read>,
}

impl SnapshotTable {
    /// From information_schema's rows (in column order). `mariadb` decides
    /// JSON: MariaDB's is text (LONGTEXT), MySQL's binary.
    pub fn new(schema: &str, table: &str, info: &[InfoRow], mariadb: bool) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(info.len());
        let mut reads = Vec::with_capacity(info.len());
        for c in info {
            let (kind, read) =
                kind_of(c, mariadb).map_err(|e| format!("{schema}.{table}.{}: {e}", c.name))?;
            columns.push(ColumnMeta {
                name: c.name.clone(),
                kind,
            });
            reads.push(read);
        }
        let mut key: Vec<(u64, usize)> = info
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.key_ordinal.map(|k| (k, i)))
            .collect();
        key.sort();
        let primary_key = key.into_iter().map(|(_, i)| i).collect();
        Ok(Self {
            meta: TableMeta::from_columns(schema, table, columns, primary_key),
            reads,
        })
    }

    /// The SELECT list: every column in order, as [`Read`] says.
    pub(crate) fn select_list(&self) -> String {
        self.meta
            .columns
            .iter()
            .zip(&self.reads)
            .map(|(c, r)| {
                let q = quote(&c.name);
                match r {
                    Read::Plain | Read::Uuid => q,
                    Read::Number => format!("CAST({q} AS UNSIGNED)"),
                    Read::Inet6 => format!("INET6_ATON({q})"),
                    Read::Inet4 => format!("INET_ATON({q})"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The primary key's columns, quoted, in key order.
    pub(crate) fn key_list(&self) -> Vec<String> {
        self.meta
            .primary_key
            .iter()
            .map(|&i| quote(&self.meta.columns[i].name))
            .collect()
    }
}

/// `` `name` `` with backticks doubled.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn digits(v: Option<u64>) -> u8 {
    v.unwrap_or(0).min(255) as u8
}

/// A column's kind as the binlog path knows it, and how to read it.
fn kind_of(c: &InfoRow, mariadb: bool) -> Result<(ColumnKind, Read), String> {
    let unsigned = Some(c.column_type.to_ascii_lowercase().contains("unsigned"));
    let charset = match &c.charset {
        Some(name) => Charset::from_name(name),
        None => Charset::Binary,
    };
    let fsp = digits(c.datetime_precision);
    let plain = |k| Ok((k, Read::Plain));
    match c.data_type.as_str() {
        "tinyint" | "bool" | "boolean" => plain(ColumnKind::Int { bytes: 1, unsigned }),
        "smallint" => plain(ColumnKind::Int { bytes: 2, unsigned }),
        "mediumint" => plain(ColumnKind::Int { bytes: 3, unsigned }),
        "int" | "integer" => plain(ColumnKind::Int { bytes: 4, unsigned }),
        "bigint" => plain(ColumnKind::Int { bytes: 8, unsigned }),
        "year" => plain(ColumnKind::Year),
        "float" => plain(ColumnKind::Float),
        "double" | "real" | "double precision" => plain(ColumnKind::Double),
        "decimal" | "numeric" => plain(ColumnKind::Decimal {
            precision: digits(c.numeric_precision),
            scale: digits(c.numeric_scale),
        }),
        "date" => plain(ColumnKind::Date),
        "time" => plain(ColumnKind::Time { fsp }),
        "datetime" => plain(ColumnKind::DateTime { fsp }),
        "timestamp" => plain(ColumnKind::Timestamp { fsp }),
        "char" | "binary" => plain(ColumnKind::String {
            max_len: 0,
            fixed: true,
            charset,
        }),
        "varchar" | "varbinary" => plain(ColumnKind::String {
            max_len: 0,
            fixed: false,
            charset,
        }),
        "uuid" => Ok((binary_fixed(16), Read::Uuid)),
        "inet6" => Ok((binary_fixed(16), Read::Inet6)),
        "inet4" => Ok((binary_fixed(4), Read::Inet4)),
        "json" if !mariadb => plain(ColumnKind::Json { len_bytes: 4 }),
        "json" => plain(ColumnKind::Blob {
            len_bytes: 4,
            charset,
        }),
        t if t.ends_with("blob") || t.ends_with("text") => plain(ColumnKind::Blob {
            len_bytes: 4,
            charset,
        }),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            plain(ColumnKind::Geometry { len_bytes: 4 })
        }
        "vector" => plain(ColumnKind::Vector { len_bytes: 4 }),
        "enum" => Ok((
            ColumnKind::Enum {
                bytes: 2,
                labels: Some(parse_labels(&c.column_type)),
            },
            Read::Number,
        )),
        "set" => Ok((
            ColumnKind::Set {
                bytes: 8,
                labels: Some(parse_labels(&c.column_type)),
            },
            Read::Number,
        )),
        "bit" => plain(ColumnKind::Bit {
            bits: c.numeric_precision.unwrap_or(1).min(64) as u16,
        }),
        other => Err(format!(
            "type {other} ({}) cannot be snapshotted",
            c.column_type
        )),
    }
}

/// MariaDB's UUID/INET6 (16 bytes) and INET4 (4) are fixed binary strings
/// in the binlog.
fn binary_fixed(len: u16) -> ColumnKind {
    ColumnKind::String {
        max_len: len,
        fixed: true,
        charset: Charset::Binary,
    }
}

/// `schema`.`table`, quoted for a query.
pub(super) fn from_table(t: &SnapshotTable) -> String {
    format!("{}.{}", quote(&t.meta.schema), quote(&t.meta.table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, data_type: &str, column_type: &str, key: Option<u64>) -> InfoRow {
        InfoRow {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: None,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            key_ordinal: key,
        }
    }

    #[test]
    fn a_shown_column_type_gives_its_digits() {
        let shown = |t: &str| {
            InfoRow::from_definition(&ColumnDefinition {
                charset: Some("utf8mb4".into()),
                collation: Some("utf8mb4_general_ci".into()),
                default: None,
                extra: String::new(),
                name: "c".into(),
                nullable: false,
                rule: None,
                column_type: t.into(),
            })
        };
        let d = shown("decimal(12,4) unsigned");
        assert_eq!(d.data_type, "decimal");
        assert_eq!((d.numeric_precision, d.numeric_scale), (Some(12), Some(4)));
        let t = shown("datetime(6)");
        assert_eq!(
            (t.data_type.as_str(), t.datetime_precision),
            ("datetime", Some(6))
        );
        assert_eq!(t.numeric_precision, None);
        assert_eq!(shown("time").datetime_precision, Some(0));
        assert_eq!(shown("bit(3)").numeric_precision, Some(3));
        let e = shown("enum('a','b,c')");
        assert_eq!(
            (e.data_type.as_str(), e.column_type.as_str()),
            ("enum", "enum('a','b,c')")
        );
        assert_eq!(shown("int unsigned").data_type, "int");
    }

    #[test]
    fn kinds_reads_and_key_order() {
        let info = vec![
            row("b", "int", "int(10) unsigned", Some(2)),
            row("a", "enum", "enum('X','y')", Some(1)),
            row("u", "uuid", "uuid", None),
        ];
        let t = SnapshotTable::new("s", "t", &info, true).unwrap();
        assert_eq!(t.meta.primary_key, vec![1, 0]);
        assert_eq!(t.key_list(), vec!["`a`", "`b`"]);
        assert_eq!(t.select_list(), "`b`, CAST(`a` AS UNSIGNED), `u`");
        assert_eq!(
            t.meta.columns[0].kind,
            ColumnKind::Int {
                bytes: 4,
                unsigned: Some(true)
            }
        );
        assert!(matches!(&t.meta.columns[1].kind,
            ColumnKind::Enum { labels: Some(l), .. } if l == &["X".to_string(), "y".to_string()]));
        assert_eq!(t.reads[2], Read::Uuid);
    }

    #[test]
    fn an_unknown_type_names_the_column() {
        let err = SnapshotTable::new("s", "t", &[row("c", "hyperloglog", "hll", None)], true)
            .unwrap_err();
        assert!(err.contains("s.t.c"), "{err}");
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote("we`ird"), "`we``ird`");
    }
}
