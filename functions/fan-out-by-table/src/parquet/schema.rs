//! A table object's Parquet schema: the event's own fields (`_cdc_*`), then
//! a column for each of the table's columns, then `_cdc_old`, a group of
//! the same columns holding the row before the change. The table's columns
//! are every name its events carried in the run (the union of the layouts
//! parse-chunk recorded, in order of first appearance), each stored as
//! [`Storage`] says; a name carried with two types in one run is stored as
//! its values' JSON text (docs/EVENTS.md, *Parquet*).

use std::collections::HashMap;
use std::sync::Arc;

use binlog_cdc::decoder::typed::{TypedColumn, ValueType};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::errors::Result as PqResult;
use parquet::schema::types::{Type, TypePtr};

use super::values::MAX_DECIMAL_DIGITS;

/// The event fields' prefix, the group holding the row before the change,
/// and the column of values a typed column cannot hold (as JSON text, at
/// top level and in [`OLD`]): named where the Glue tables read them too.
pub use binlog_cdc::catalog::{AS_JSON, EVENT_PREFIX, OLD};

const OPTIONAL: Repetition = Repetition::OPTIONAL;
const REQUIRED: Repetition = Repetition::REQUIRED;

/// How one table column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// INT32 with an integer logical type of these bits (signed).
    Int32(i8),
    /// INT64 (signed).
    Int64,
    Date,
    /// INT64 microseconds: TIMESTAMP (UTC, `true`) or DATETIME (local).
    Timestamp(bool),
    /// INT64 signed microseconds (TIME: negative, and past 24 hours).
    Micros,
    /// DECIMAL(precision, scale) in a fixed-length byte array.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float,
    Double,
    /// UTF-8 text.
    Text,
    /// A JSON document's text.
    Json,
    Bytes,
    /// A geometry's WKB (its SRID, when not 0, in `_cdc_as_json`).
    Wkb,
    /// LIST<FLOAT> (VECTOR).
    Floats,
    /// LIST<STRING> (SET).
    Texts,
}

impl Storage {
    /// How a column of `ty` is stored: exact, and readable by Athena,
    /// Spark and DuckDB (unsigned types are widened to a signed one that
    /// holds them, BIGINT UNSIGNED to DECIMAL(20,0)).
    pub fn of(ty: ValueType) -> Self {
        let u64_decimal = Storage::Decimal {
            precision: 20,
            scale: 0,
        };
        match ty {
            ValueType::Int { bits, unsigned } => match (bits, unsigned) {
                (8, false) => Storage::Int32(8),
                (8, true) | (16, false) => Storage::Int32(16),
                (16 | 24, true) | (24 | 32, false) => Storage::Int32(32),
                (64, true) => u64_decimal,
                _ => Storage::Int64,
            },
            ValueType::Year => Storage::Int32(16),
            ValueType::Bit { bits } if bits < 64 => Storage::Int64,
            ValueType::Bit { .. } => u64_decimal,
            ValueType::Float => Storage::Float,
            ValueType::Double => Storage::Double,
            ValueType::Decimal { precision, scale } if precision <= MAX_DECIMAL_DIGITS => {
                Storage::Decimal { precision, scale }
            }
            ValueType::Decimal { .. } | ValueType::Text | ValueType::Enum | ValueType::Null => {
                Storage::Text
            }
            ValueType::Date => Storage::Date,
            ValueType::DateTime { .. } => Storage::Timestamp(false),
            ValueType::Timestamp { .. } => Storage::Timestamp(true),
            ValueType::Time { .. } => Storage::Micros,
            ValueType::Json => Storage::Json,
            ValueType::Binary => Storage::Bytes,
            ValueType::Geometry => Storage::Wkb,
            ValueType::Vector => Storage::Floats,
            ValueType::Set => Storage::Texts,
        }
    }

    /// The bytes of a DECIMAL(precision) two's complement.
    pub fn decimal_bytes(precision: u8) -> usize {
        // The smallest n with 2^(8n-1) > 10^precision.
        let bits = (f64::from(precision) * std::f64::consts::LOG2_10).ceil() as usize + 1;
        bits.div_ceil(8)
    }
}

/// One table column of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectColumn {
    pub name: String,
    /// How its values read (`None`: as JSON text, two types met).
    pub value: Option<ValueType>,
    pub storage: Storage,
}

/// The table columns of one object, in order.
#[derive(Debug, Default, Clone)]
pub struct ObjectColumns {
    pub columns: Vec<ObjectColumn>,
    by_name: HashMap<String, usize>,
}

impl ObjectColumns {
    /// The union of `layouts` by name; an error names a column the event
    /// fields' prefix would shadow.
    pub fn union<'a>(layouts: impl IntoIterator<Item = &'a [TypedColumn]>) -> Result<Self, String> {
        let mut out = ObjectColumns::default();
        for c in layouts.into_iter().flatten() {
            if c.name.starts_with(EVENT_PREFIX) {
                return Err(format!(
                    "column {:?} starts with {EVENT_PREFIX:?}, which the Parquet format keeps for the event's own fields",
                    c.name
                ));
            }
            match out.by_name.get(&c.name) {
                Some(&i) => {
                    let known = &mut out.columns[i];
                    if known.value.is_some_and(|v| v != c.value) {
                        known.value = None;
                        known.storage = Storage::Json;
                    }
                }
                None => {
                    out.by_name.insert(c.name.clone(), out.columns.len());
                    out.columns.push(ObjectColumn {
                        name: c.name.clone(),
                        value: Some(c.value),
                        storage: Storage::of(c.value),
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The object's Parquet schema.
    pub fn parquet_schema(&self) -> PqResult<TypePtr> {
        let mut fields = event_fields()?;
        for c in &self.columns {
            fields.push(column(&c.name, c.storage)?);
        }
        fields.push(text(AS_JSON, OPTIONAL, Some(LogicalType::Json))?);
        let mut old = Vec::with_capacity(self.columns.len() + 1);
        for c in &self.columns {
            old.push(column(&c.name, c.storage)?);
        }
        old.push(text(AS_JSON, OPTIONAL, Some(LogicalType::Json))?);
        fields.push(Arc::new(
            Type::group_type_builder(OLD)
                .with_repetition(Repetition::OPTIONAL)
                .with_fields(old)
                .build()?,
        ));
        Ok(Arc::new(
            Type::group_type_builder("change_event")
                .with_fields(fields)
                .build()?,
        ))
    }
}

fn primitive(
    name: &str,
    physical: Physical,
    repetition: Repetition,
    logical: Option<LogicalType>,
) -> PqResult<TypePtr> {
    Ok(Arc::new(
        Type::primitive_type_builder(name, physical)
            .with_repetition(repetition)
            .with_logical_type(logical)
            .build()?,
    ))
}

fn text(name: &str, repetition: Repetition, logical: Option<LogicalType>) -> PqResult<TypePtr> {
    primitive(name, Physical::BYTE_ARRAY, repetition, logical)
}

/// The event's own fields, in the order [`super::leaves`] fills them.
fn event_fields() -> PqResult<Vec<TypePtr>> {
    let string = || Some(LogicalType::String);
    Ok(vec![
        text("_cdc_type", REQUIRED, string())?,
        text("_cdc_file", REQUIRED, string())?,
        primitive("_cdc_pos", Physical::INT64, REQUIRED, None)?,
        primitive("_cdc_index", Physical::INT64, REQUIRED, None)?,
        list("_cdc_keys", text("element", REQUIRED, string())?)?,
        text("_cdc_gtid", OPTIONAL, string())?,
        primitive(
            "_cdc_timestamp",
            Physical::INT64,
            REQUIRED,
            Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
        )?,
        list("_cdc_columns_changed", text("element", REQUIRED, string())?)?,
        primitive("_cdc_partial", Physical::BOOLEAN, REQUIRED, None)?,
        text("_cdc_kind", OPTIONAL, string())?,
        primitive("_cdc_snapshot_needed", Physical::BOOLEAN, OPTIONAL, None)?,
        text("_cdc_new_schema", OPTIONAL, string())?,
        text("_cdc_new_table", OPTIONAL, string())?,
        text("_cdc_event", OPTIONAL, Some(LogicalType::Json))?,
    ])
}

/// An optional LIST of `element` (the three-level form the spec asks for).
fn list(name: &str, element: TypePtr) -> PqResult<TypePtr> {
    let repeated = Type::group_type_builder("list")
        .with_repetition(Repetition::REPEATED)
        .with_fields(vec![element])
        .build()?;
    Ok(Arc::new(
        Type::group_type_builder(name)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(Some(LogicalType::List))
            .with_fields(vec![Arc::new(repeated)])
            .build()?,
    ))
}

/// A table column, optional: NULL, or absent from the event.
fn column(name: &str, storage: Storage) -> PqResult<TypePtr> {
    let int64 = |logical| primitive(name, Physical::INT64, OPTIONAL, logical);
    match storage {
        Storage::Int32(bits) => primitive(
            name,
            Physical::INT32,
            OPTIONAL,
            Some(LogicalType::integer(bits, true)),
        ),
        Storage::Int64 => int64(Some(LogicalType::integer(64, true))),
        Storage::Micros => int64(None),
        Storage::Date => primitive(name, Physical::INT32, OPTIONAL, Some(LogicalType::Date)),
        Storage::Timestamp(utc) => int64(Some(LogicalType::timestamp(utc, TimeUnit::MICROS))),
        Storage::Decimal { precision, scale } => Ok(Arc::new(
            Type::primitive_type_builder(name, Physical::FIXED_LEN_BYTE_ARRAY)
                .with_repetition(OPTIONAL)
                .with_length(Storage::decimal_bytes(precision) as i32)
                .with_logical_type(Some(LogicalType::decimal(
                    i32::from(scale),
                    i32::from(precision),
                )))
                .with_precision(i32::from(precision))
                .with_scale(i32::from(scale))
                .build()?,
        )),
        Storage::Float => primitive(name, Physical::FLOAT, OPTIONAL, None),
        Storage::Double => primitive(name, Physical::DOUBLE, OPTIONAL, None),
        Storage::Text => text(name, OPTIONAL, Some(LogicalType::String)),
        Storage::Json => text(name, OPTIONAL, Some(LogicalType::Json)),
        Storage::Bytes | Storage::Wkb => text(name, OPTIONAL, None),
        Storage::Floats => list(name, primitive("element", Physical::FLOAT, REQUIRED, None)?),
        Storage::Texts => list(name, text("element", REQUIRED, Some(LogicalType::String))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, value: ValueType) -> TypedColumn {
        TypedColumn {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn decimal_widths() {
        assert_eq!(Storage::decimal_bytes(2), 1);
        assert_eq!(Storage::decimal_bytes(9), 4);
        assert_eq!(Storage::decimal_bytes(18), 8);
        assert_eq!(Storage::decimal_bytes(20), 9);
        assert_eq!(Storage::decimal_bytes(38), 16);
    }

    #[test]
    fn columns_join_by_name_and_two_types_make_json() {
        let int = ValueType::Int {
            bits: 32,
            unsigned: false,
        };
        let v1 = [col("id", int), col("price", int)];
        let v2 = [
            col("id", int),
            col(
                "price",
                ValueType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            col("note", ValueType::Text),
        ];
        let u = ObjectColumns::union([&v1[..], &v2[..]]).unwrap();
        let got: Vec<_> = u
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.storage))
            .collect();
        assert_eq!(
            got,
            [
                ("id", Storage::Int32(32)),
                ("price", Storage::Json),
                ("note", Storage::Text)
            ]
        );
        assert_eq!(u.index("note"), Some(2));
        let schema = u.parquet_schema().unwrap();
        let names: Vec<_> = schema
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names.len(), 14 + 3 + 2);
        assert_eq!(names.last().map(String::as_str), Some(OLD));
        let shadow = [col("_cdc_type", int)];
        assert!(ObjectColumns::union([&shadow[..]]).is_err());
    }
}
