//! Table metadata: what each column of a table map is, and how to decode it.
//!
//! A `TABLE_MAP` event carries each column's binlog type and type metadata
//! (lengths, precision, fraction digits). With `binlog_row_metadata=FULL` it
//! also carries names, signedness, charsets, ENUM/SET labels and the primary
//! key. [`TableMeta::from_table_map`] turns that into a decoding plan built
//! once per table map. Where the server did not log names, signedness or
//! charsets, [`TableMeta::apply_information_schema`] fills them in from
//! `information_schema.COLUMNS`, after checking that the live table still has
//! the same column count and compatible types (a mismatch means the table
//! changed since the event, and is an error, never a shifted mapping).

use mysql_common::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_common::constants::ColumnType;

use crate::charset::Charset;

/// Looks up a table's columns in information_schema (live sources only:
/// `source::server::InformationSchema`); what the decoder asks for when a
/// table map lacks names or types' details.
pub trait SchemaLookup: Send {
    fn columns<'a>(
        &'a mut self,
        schema: &'a str,
        table: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::Result<Vec<InfoColumn>>> + Send + 'a>,
    >;
}

/// One column of a table map.
#[derive(Debug, Clone)]
pub struct ColumnMeta {
    pub name: String,
    pub kind: ColumnKind,
}

/// How a column is stored in a row image (one variant per type family).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// TINYINT (1), SMALLINT (2), MEDIUMINT (3), INT (4), BIGINT (8).
    /// `unsigned` is `None` when the server did not log signedness.
    Int {
        bytes: u8,
        unsigned: Option<bool>,
    },
    Year,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// TIME2 with its fraction digits.
    Time {
        fsp: u8,
    },
    /// The pre-5.6 TIME (3 bytes, HHMMSS).
    TimeOld,
    DateTime {
        fsp: u8,
    },
    DateTimeOld,
    Timestamp {
        fsp: u8,
    },
    TimestampOld,
    /// CHAR/BINARY (`fixed`) and VARCHAR/VARBINARY: a 1- or 2-byte length, then bytes.
    String {
        max_len: u16,
        fixed: bool,
        charset: Charset,
    },
    /// BLOB/TEXT of every size: a 1..4-byte length, then bytes.
    Blob {
        len_bytes: u8,
        charset: Charset,
    },
    /// GEOMETRY: a length, then WKB with a 4-byte SRID prefix.
    Geometry {
        len_bytes: u8,
    },
    /// MySQL 9's VECTOR: a length, then little-endian `f32` dimensions.
    Vector {
        len_bytes: u8,
    },
    /// MySQL's binary JSON.
    Json {
        len_bytes: u8,
    },
    Enum {
        bytes: u8,
        labels: Option<Vec<String>>,
    },
    Set {
        bytes: u8,
        labels: Option<Vec<String>>,
    },
    Bit {
        bits: u16,
    },
    /// A column of type NULL: no bytes.
    Null,
}

impl ColumnKind {
    /// Columns whose charset the table map lists in DEFAULT_CHARSET/COLUMN_CHARSET.
    fn takes_charset(&self, mariadb: bool) -> bool {
        matches!(self, ColumnKind::String { .. } | ColumnKind::Blob { .. })
            // MariaDB counts GEOMETRY among the character columns (it has a
            // charset, binary); MySQL does not.
            || (mariadb && matches!(self, ColumnKind::Geometry { .. }))
            // MySQL 9 counts VECTOR (binary, as a BLOB): read off MySQL
            // 9.7, whose table map of an INT and a VECTOR column lists
            // DEFAULT_CHARSET 63 (binary), and of an INT and a GEOMETRY none.
            || matches!(self, ColumnKind::Vector { .. })
    }

    fn set_charset(&mut self, cs: Charset) {
        match self {
            ColumnKind::String { charset, .. } | ColumnKind::Blob { charset, .. } => *charset = cs,
            _ => {}
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(
            self,
            ColumnKind::Int { .. }
                | ColumnKind::Year
                | ColumnKind::Float
                | ColumnKind::Double
                | ColumnKind::Decimal { .. }
        )
    }
}

/// A table as a table map describes it, prepared for decoding.
#[derive(Debug, Clone)]
pub struct TableMeta {
    pub schema: String,
    pub table: String,
    /// `schema.table`.
    pub full_name: String,
    pub columns: Vec<ColumnMeta>,
    /// Primary-key column indexes, in key order. Empty when the table has none
    /// (or the server did not log it).
    pub primary_key: Vec<usize>,
    /// Whether the names came from the binlog or information_schema (`false`
    /// means the columns are named `@1`, `@2`, ... like `mariadb-binlog -v`).
    pub has_names: bool,
    /// Column indexes ordered by column name (the JSON key order).
    pub by_name: Vec<usize>,
    /// `"name"` of each column, JSON-escaped, ready to copy into output.
    pub json_names: Vec<Vec<u8>>,
    /// Primary-key column indexes ordered by name (the `keys` object's order).
    pub key_by_name: Vec<usize>,
    /// Number of JSON columns (PARTIAL_UPDATE_ROWS bitmaps count them).
    pub json_columns: usize,
    /// The column rules its events are written under, if any apply (see
    /// [`crate::column_rules`]).
    pub rules: Option<std::sync::Arc<crate::table_rules::TableRules>>,
}

/// What information_schema says about one column.
#[derive(Debug, Clone)]
pub struct InfoColumn {
    pub name: String,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `enum`, ...
    pub data_type: String,
    /// `COLUMN_TYPE`: `int(10) unsigned`, `enum('a','b')`, ...
    pub column_type: String,
    /// The collation's charset (`CHARACTER_SET_NAME`), if a text column.
    pub charset: Option<String>,
    pub is_primary_key: bool,
}

/// Each column's type from a table map, named `@1`, `@2`, ... until its
/// names (if logged) replace them.
fn column_kinds(tme: &TableMapEvent<'_>) -> Result<Vec<ColumnMeta>, String> {
    (0..tme.columns_count() as usize)
        .map(|i| {
            let raw = tme
                .get_raw_column_type(i)
                .map_err(|e| format!("column {}: {e}", i + 1))?
                .ok_or_else(|| format!("column {} has no type", i + 1))?;
            let meta = tme.get_column_metadata(i).unwrap_or(&[]);
            let kind = kind_from_binlog(raw, meta).map_err(|e| format!("column {}: {e}", i + 1))?;
            Ok(ColumnMeta {
                name: format!("@{}", i + 1),
                kind,
            })
        })
        .collect()
}

/// What a table map's optional metadata (`binlog_row_metadata`) says.
/// ENUM/SET labels are decoded as UTF-8: the server logs them in the
/// column's charset, which for every label we can print is ASCII or UTF-8.
#[derive(Default)]
struct OptionalMeta {
    names: Option<Vec<String>>,
    primary_key: Vec<usize>,
    enum_labels: Vec<Vec<String>>,
    set_labels: Vec<Vec<String>>,
    /// One per text column.
    charsets: Option<Vec<u16>>,
    /// One per numeric column: UNSIGNED.
    signedness: Option<Vec<bool>>,
}

impl OptionalMeta {
    /// `text_columns`: how many columns take a charset.
    fn read(tme: &TableMapEvent<'_>, text_columns: usize) -> Result<Self, String> {
        let mut out = Self::default();
        for field in tme.iter_optional_meta() {
            let field = field.map_err(|e| format!("optional metadata: {e}"))?;
            match field {
                // One bit per numeric column, set = UNSIGNED.
                OptionalMetadataField::Signedness(bits) => {
                    out.signedness = Some(bits.iter().by_vals().collect());
                }
                OptionalMetadataField::DefaultCharset(dc) => {
                    let mut v = vec![dc.default_charset(); text_columns];
                    for nd in dc.iter_non_default() {
                        let nd = nd.map_err(|e| format!("charset metadata: {e}"))?;
                        *v.get_mut(nd.column_index() as usize)
                            .ok_or("charset metadata names a column past the end")? = nd.charset();
                    }
                    out.charsets = Some(v);
                }
                OptionalMetadataField::ColumnCharset(cc) => {
                    let v = cc
                        .iter_charsets()
                        .collect::<Result<Vec<u16>, _>>()
                        .map_err(|e| format!("charset metadata: {e}"))?;
                    out.charsets = Some(v);
                }
                OptionalMetadataField::ColumnName(names) => {
                    let names = names
                        .iter_names()
                        .map(|n| n.map(|n| String::from_utf8_lossy(n.name_raw()).into_owned()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("column names: {e}"))?;
                    out.names = Some(names);
                }
                OptionalMetadataField::EnumStrValue(values) => {
                    for labels in values.iter_values() {
                        let labels = labels.map_err(|e| format!("ENUM labels: {e}"))?;
                        let texts = labels.values().iter().map(|v| v.value().into_owned());
                        out.enum_labels.push(texts.collect());
                    }
                }
                OptionalMetadataField::SetStrValue(values) => {
                    for labels in values.iter_values() {
                        let labels = labels.map_err(|e| format!("SET labels: {e}"))?;
                        let texts = labels.values().iter().map(|v| v.value().into_owned());
                        out.set_labels.push(texts.collect());
                    }
                }
                OptionalMetadataField::SimplePrimaryKey(pk) => {
                    for idx in pk.iter_indexes() {
                        out.primary_key
                            .push(idx.map_err(|e| format!("primary key: {e}"))? as usize);
                    }
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                    for key in pk.iter_keys() {
                        let key = key.map_err(|e| format!("primary key: {e}"))?;
                        out.primary_key.push(key.column_index() as usize);
                    }
                }
                // Geometry subtypes, visibility and vector sizes do not change
                // how values decode.
                _ => {}
            }
        }
        Ok(out)
    }
}

/// One flag per numeric column, in column order.
fn apply_signedness(columns: &mut [ColumnMeta], flags: Vec<bool>) {
    let numeric = columns.iter_mut().filter(|c| c.kind.is_numeric());
    for (col, unsigned) in numeric.zip(flags) {
        if let ColumnKind::Int { unsigned: u, .. } = &mut col.kind {
            *u = Some(unsigned);
        }
    }
}

/// One collation id per text column (`char_cols`), in column order.
fn apply_charsets(
    columns: &mut [ColumnMeta],
    char_cols: &[usize],
    cs: Vec<u16>,
) -> Result<(), String> {
    if cs.len() != char_cols.len() {
        return Err(format!(
            "the table map lists {} charsets for {} text columns",
            cs.len(),
            char_cols.len()
        ));
    }
    for (&i, id) in char_cols.iter().zip(cs) {
        columns[i].kind.set_charset(Charset::from_collation(id));
    }
    Ok(())
}

/// The ENUM columns' labels, then the SET columns', each in column order.
fn apply_labels(columns: &mut [ColumnMeta], enums: Vec<Vec<String>>, sets: Vec<Vec<String>>) {
    let (mut enums, mut sets) = (enums.into_iter(), sets.into_iter());
    for col in columns {
        match &mut col.kind {
            ColumnKind::Enum { labels, .. } => *labels = enums.next(),
            ColumnKind::Set { labels, .. } => *labels = sets.next(),
            _ => {}
        }
    }
}

impl TableMeta {
    /// Builds the decoding plan from a table map. `mariadb` says which server
    /// wrote it (their optional metadata differ slightly).
    pub(crate) fn from_table_map(tme: &TableMapEvent<'_>, mariadb: bool) -> Result<Self, String> {
        // mysql_common's optional-metadata iterators can panic on corrupt
        // lengths (capacity overflow in EnumStrValues; found by
        // tests/tests/fuzz_decoder.rs): a corrupt table map is an error.
        crate::guard::catch(|| Self::from_table_map_unguarded(tme, mariadb)).unwrap_or_else(|_| {
            Err("the table map's metadata does not match its own lengths".into())
        })
    }

    fn from_table_map_unguarded(tme: &TableMapEvent<'_>, mariadb: bool) -> Result<Self, String> {
        let mut columns = column_kinds(tme)?;
        let n = columns.len();
        let char_cols: Vec<usize> = (0..n)
            .filter(|&i| columns[i].kind.takes_charset(mariadb))
            .collect();
        let optional = OptionalMeta::read(tme, char_cols.len())?;
        let has_names = optional.names.is_some();
        if let Some(names) = optional.names {
            if names.len() != n {
                return Err(format!("{} column names for {n} columns", names.len()));
            }
            for (col, name) in columns.iter_mut().zip(names) {
                col.name = name;
            }
        }
        if let Some(flags) = optional.signedness {
            apply_signedness(&mut columns, flags);
        }
        if let Some(cs) = optional.charsets {
            apply_charsets(&mut columns, &char_cols, cs)?;
        }
        apply_labels(&mut columns, optional.enum_labels, optional.set_labels);
        if optional.primary_key.iter().any(|&i| i >= n) {
            return Err("primary key names a column past the end".into());
        }
        let schema = String::from_utf8_lossy(tme.database_name_raw()).into_owned();
        let table = String::from_utf8_lossy(tme.table_name_raw()).into_owned();
        let mut meta = TableMeta {
            full_name: format!("{schema}.{table}"),
            schema,
            table,
            columns,
            primary_key: optional.primary_key,
            has_names,
            by_name: Vec::new(),
            key_by_name: Vec::new(),
            json_names: Vec::new(),
            json_columns: 0,
            rules: None,
        };
        meta.finish();
        Ok(meta)
    }

    /// A table from its columns (named) and primary key, as information_schema
    /// describes it (see `snapshot::columns`).
    pub(crate) fn from_columns(
        schema: &str,
        table: &str,
        columns: Vec<ColumnMeta>,
        primary_key: Vec<usize>,
    ) -> Self {
        let mut meta = TableMeta {
            full_name: format!("{schema}.{table}"),
            schema: schema.to_string(),
            table: table.to_string(),
            columns,
            primary_key,
            has_names: true,
            by_name: Vec::new(),
            key_by_name: Vec::new(),
            json_names: Vec::new(),
            json_columns: 0,
            rules: None,
        };
        meta.finish();
        meta
    }

    /// Recomputes the derived fields after names or kinds changed.
    fn finish(&mut self) {
        let mut by_name: Vec<usize> = (0..self.columns.len()).collect();
        by_name.sort_by(|&a, &b| self.columns[a].name.cmp(&self.columns[b].name));
        self.key_by_name = by_name
            .iter()
            .copied()
            .filter(|i| self.primary_key.contains(i))
            .collect();
        self.by_name = by_name;
        self.json_names = self
            .columns
            .iter()
            .map(|c| {
                let mut v = Vec::with_capacity(c.name.len() + 2);
                crate::json::write_str(&mut v, &c.name);
                v
            })
            .collect();
        self.json_columns = self
            .columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Json { .. }))
            .count();
    }

    /// Whether anything needed to decode exactly is missing from the table map.
    pub(crate) fn needs_information_schema(&self) -> bool {
        !self.has_names
            || self.columns.iter().any(|c| match &c.kind {
                ColumnKind::Int { unsigned, .. } => unsigned.is_none(),
                ColumnKind::String { charset, .. } | ColumnKind::Blob { charset, .. } => {
                    *charset == Charset::NotLogged
                }
                ColumnKind::Enum { labels, .. } | ColumnKind::Set { labels, .. } => {
                    labels.is_none()
                }
                _ => false,
            })
    }

    /// Fills what the table map lacked from information_schema, after checking
    /// that the live table still matches the table map column by column.
    pub(crate) fn apply_information_schema(&mut self, info: &[InfoColumn]) -> Result<(), String> {
        if info.len() != self.columns.len() {
            return Err(format!(
                "the table map has {} columns but the table now has {} (it changed since this event; \
                 enable binlog_row_metadata=FULL to decode it)",
                self.columns.len(),
                info.len()
            ));
        }
        for (col, ic) in self.columns.iter_mut().zip(info) {
            if !compatible(&col.kind, &ic.data_type) {
                return Err(format!(
                    "column {} is {} in the table map but {} ({}) in the table now \
                     (it changed since this event; enable binlog_row_metadata=FULL to decode it)",
                    ic.name,
                    col.kind.type_name(),
                    ic.data_type,
                    ic.column_type
                ));
            }
        }
        for (col, ic) in self.columns.iter_mut().zip(info) {
            if !self.has_names {
                col.name = ic.name.clone();
            }
            let unsigned_now = ic.column_type.contains("unsigned");
            match &mut col.kind {
                ColumnKind::Int { unsigned, .. } if unsigned.is_none() => {
                    *unsigned = Some(unsigned_now)
                }
                ColumnKind::String { charset, .. } | ColumnKind::Blob { charset, .. }
                    if *charset == Charset::NotLogged =>
                {
                    *charset = match &ic.charset {
                        Some(name) => Charset::from_name(name),
                        None => Charset::Binary,
                    };
                }
                ColumnKind::Enum { labels, .. } | ColumnKind::Set { labels, .. }
                    if labels.is_none() =>
                {
                    *labels = Some(parse_labels(&ic.column_type));
                }
                _ => {}
            }
        }
        if self.primary_key.is_empty() {
            self.primary_key = info
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_primary_key)
                .map(|(i, _)| i)
                .collect();
        }
        self.has_names = true;
        self.finish();
        Ok(())
    }
}

impl ColumnKind {
    /// A short SQL-ish name for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            ColumnKind::Int { bytes: 1, .. } => "TINYINT",
            ColumnKind::Int { bytes: 2, .. } => "SMALLINT",
            ColumnKind::Int { bytes: 3, .. } => "MEDIUMINT",
            ColumnKind::Int { bytes: 4, .. } => "INT",
            ColumnKind::Int { .. } => "BIGINT",
            ColumnKind::Year => "YEAR",
            ColumnKind::Float => "FLOAT",
            ColumnKind::Double => "DOUBLE",
            ColumnKind::Decimal { .. } => "DECIMAL",
            ColumnKind::Date => "DATE",
            ColumnKind::Time { .. } | ColumnKind::TimeOld => "TIME",
            ColumnKind::DateTime { .. } | ColumnKind::DateTimeOld => "DATETIME",
            ColumnKind::Timestamp { .. } | ColumnKind::TimestampOld => "TIMESTAMP",
            ColumnKind::String { fixed: true, .. } => "CHAR",
            ColumnKind::String { .. } => "VARCHAR",
            ColumnKind::Blob { .. } => "BLOB",
            ColumnKind::Geometry { .. } => "GEOMETRY",
            ColumnKind::Vector { .. } => "VECTOR",
            ColumnKind::Json { .. } => "JSON",
            ColumnKind::Enum { .. } => "ENUM",
            ColumnKind::Set { .. } => "SET",
            ColumnKind::Bit { .. } => "BIT",
            ColumnKind::Null => "NULL",
        }
    }
}

/// Whether an information_schema DATA_TYPE can be what the table map logged.
fn compatible(kind: &ColumnKind, data_type: &str) -> bool {
    let t = data_type;
    match kind {
        ColumnKind::Int { bytes: 1, .. } => matches!(t, "tinyint" | "bool" | "boolean"),
        ColumnKind::Int { bytes: 2, .. } => t == "smallint",
        ColumnKind::Int { bytes: 3, .. } => t == "mediumint",
        ColumnKind::Int { bytes: 4, .. } => matches!(t, "int" | "integer"),
        ColumnKind::Int { .. } => t == "bigint",
        ColumnKind::Year => t == "year",
        ColumnKind::Float => t == "float",
        ColumnKind::Double => matches!(t, "double" | "real" | "double precision"),
        ColumnKind::Decimal { .. } => matches!(t, "decimal" | "numeric"),
        ColumnKind::Date => t == "date",
        ColumnKind::Time { .. } | ColumnKind::TimeOld => t == "time",
        ColumnKind::DateTime { .. } | ColumnKind::DateTimeOld => t == "datetime",
        ColumnKind::Timestamp { .. } | ColumnKind::TimestampOld => t == "timestamp",
        // MariaDB's INET6 and UUID are BINARY(16) in the binlog, INET4 is BINARY(4).
        ColumnKind::String { fixed: true, .. } => {
            matches!(t, "char" | "binary" | "inet6" | "inet4" | "uuid")
        }
        ColumnKind::String { .. } => matches!(t, "varchar" | "varbinary"),
        ColumnKind::Blob { .. } => t.ends_with("blob") || t.ends_with("text") || t == "json",
        ColumnKind::Geometry { .. } => matches!(
            t,
            "geometry"
                | "point"
                | "linestring"
                | "polygon"
                | "multipoint"
                | "multilinestring"
                | "multipolygon"
                | "geometrycollection"
                | "geomcollection"
        ),
        ColumnKind::Json { .. } => t == "json",
        ColumnKind::Vector { .. } => t == "vector",
        ColumnKind::Enum { .. } => t == "enum",
        ColumnKind::Set { .. } => t == "set",
        ColumnKind::Bit { .. } => t == "bit",
        ColumnKind::Null => false,
    }
}

/// `enum('a','b''c')` -> `["a", "b'c"]`.
pub(crate) fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[start + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

/// A column's binlog type and type metadata -> how to decode it.
fn kind_from_binlog(raw: ColumnType, meta: &[u8]) -> Result<ColumnKind, String> {
    use ColumnType::*;
    let m = |i: usize| meta.get(i).copied().unwrap_or(0);
    let int = |bytes| ColumnKind::Int {
        bytes,
        unsigned: None,
    };
    Ok(match raw {
        MYSQL_TYPE_TINY => int(1),
        MYSQL_TYPE_SHORT => int(2),
        MYSQL_TYPE_INT24 => int(3),
        MYSQL_TYPE_LONG => int(4),
        MYSQL_TYPE_LONGLONG => int(8),
        MYSQL_TYPE_YEAR => ColumnKind::Year,
        MYSQL_TYPE_FLOAT => ColumnKind::Float,
        MYSQL_TYPE_DOUBLE => ColumnKind::Double,
        MYSQL_TYPE_NEWDECIMAL => decimal_kind(m(0), m(1))?,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => ColumnKind::Date,
        MYSQL_TYPE_TIME => ColumnKind::TimeOld,
        MYSQL_TYPE_TIME2 => ColumnKind::Time { fsp: fsp(m(0))? },
        MYSQL_TYPE_DATETIME => ColumnKind::DateTimeOld,
        MYSQL_TYPE_DATETIME2 => ColumnKind::DateTime { fsp: fsp(m(0))? },
        MYSQL_TYPE_TIMESTAMP => ColumnKind::TimestampOld,
        MYSQL_TYPE_TIMESTAMP2 => ColumnKind::Timestamp { fsp: fsp(m(0))? },
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => ColumnKind::String {
            max_len: u16::from_le_bytes([m(0), m(1)]),
            fixed: false,
            charset: Charset::NotLogged,
        },
        MYSQL_TYPE_STRING => string_kind(m(0), m(1))?,
        MYSQL_TYPE_ENUM => ColumnKind::Enum {
            bytes: m(1).max(1),
            labels: None,
        },
        MYSQL_TYPE_SET => ColumnKind::Set {
            bytes: m(1).max(1),
            labels: None,
        },
        MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB => {
            ColumnKind::Blob {
                len_bytes: len_bytes(m(0))?,
                charset: Charset::NotLogged,
            }
        }
        MYSQL_TYPE_GEOMETRY => ColumnKind::Geometry {
            len_bytes: len_bytes(m(0))?,
        },
        MYSQL_TYPE_JSON => ColumnKind::Json {
            len_bytes: len_bytes(m(0))?,
        },
        // One byte of metadata, the length's size, as for a BLOB (MySQL's
        // Field_vector is a Field_blob; mysql_common reads it the same way).
        MYSQL_TYPE_VECTOR => ColumnKind::Vector {
            len_bytes: len_bytes(m(0))?,
        },
        MYSQL_TYPE_BIT => bit_kind(m(0), m(1))?,
        MYSQL_TYPE_NULL => ColumnKind::Null,
        other => return Err(format!("binlog column type {other:?} is not supported")),
    })
}

/// DECIMAL: metadata is precision, then scale.
fn decimal_kind(precision: u8, scale: u8) -> Result<ColumnKind, String> {
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return Err(format!(
            "DECIMAL({precision},{scale}) is not a valid decimal type"
        ));
    }
    Ok(ColumnKind::Decimal { precision, scale })
}

/// MYSQL_TYPE_STRING: CHAR, ENUM or SET.
///
/// Quirk: CHAR, ENUM and SET all log as MYSQL_TYPE_STRING. The first
/// metadata byte is the real type; for CHAR longer than 255 bytes, bits 4-5
/// of it are the inverted high bits of the length.
fn string_kind(b0: u8, b1: u8) -> Result<ColumnKind, String> {
    use ColumnType::*;
    let (real, len) = if b0 & 0x30 != 0x30 {
        (b0 | 0x30, ((((b0 & 0x30) ^ 0x30) as u16) << 4) | b1 as u16)
    } else {
        (b0, b1 as u16)
    };
    Ok(match real {
        x if x == MYSQL_TYPE_ENUM as u8 => ColumnKind::Enum {
            bytes: b1,
            labels: None,
        },
        x if x == MYSQL_TYPE_SET as u8 => ColumnKind::Set {
            bytes: b1,
            labels: None,
        },
        x if x == MYSQL_TYPE_STRING as u8 => ColumnKind::String {
            max_len: len,
            fixed: true,
            charset: Charset::NotLogged,
        },
        other => return Err(format!("unknown real type {other} for a CHAR column")),
    })
}

/// BIT: metadata is the bits in the last byte, then whole bytes.
fn bit_kind(last_bits: u8, bytes: u8) -> Result<ColumnKind, String> {
    let bits = bytes as u16 * 8 + last_bits as u16;
    if bits == 0 || bits > 64 {
        return Err(format!("BIT({bits}) is not a valid BIT type"));
    }
    Ok(ColumnKind::Bit { bits })
}

fn fsp(v: u8) -> Result<u8, String> {
    if v > 6 {
        Err(format!("fraction digits {v} > 6"))
    } else {
        Ok(v)
    }
}

fn len_bytes(v: u8) -> Result<u8, String> {
    if (1..=4).contains(&v) {
        Ok(v)
    } else {
        Err(format!("length size {v} is not 1..4"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enum_labels() {
        assert_eq!(parse_labels("enum('a','b''c','')"), vec!["a", "b'c", ""]);
        assert_eq!(parse_labels("set('x,y','z')"), vec!["x,y", "z"]);
    }

    #[test]
    fn char_real_type_and_long_length() {
        // CHAR(255) utf8mb4 = 1020 bytes: real type 0xfe with inverted high bits.
        let k = kind_from_binlog(ColumnType::MYSQL_TYPE_STRING, &[0xce, 0xfc]).unwrap();
        assert_eq!(
            k,
            ColumnKind::String {
                max_len: 1020,
                fixed: true,
                charset: Charset::NotLogged
            }
        );
        let e = kind_from_binlog(ColumnType::MYSQL_TYPE_STRING, &[0xf7, 1]).unwrap();
        assert!(matches!(e, ColumnKind::Enum { bytes: 1, .. }));
    }

    #[test]
    fn vector_takes_a_blobs_metadata() {
        let k = kind_from_binlog(ColumnType::MYSQL_TYPE_VECTOR, &[4]).unwrap();
        assert_eq!(k, ColumnKind::Vector { len_bytes: 4 });
        assert_eq!(k.type_name(), "VECTOR");
        assert!(compatible(&k, "vector"));
        assert!(kind_from_binlog(ColumnType::MYSQL_TYPE_VECTOR, &[9]).is_err());
        // A character column in the table map's charset lists (binary).
        assert!(k.takes_charset(false));
        let geometry = ColumnKind::Geometry { len_bytes: 4 };
        assert!(!geometry.takes_charset(false) && geometry.takes_charset(true));
    }
}
