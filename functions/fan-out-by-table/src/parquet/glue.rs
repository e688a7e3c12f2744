//! A table object's Parquet schema as Glue (Hive) column types, for the
//! table's Glue table (`binlog_cdc::catalog`): read off the schema the
//! object is written with, so the two cannot disagree.

use binlog_cdc::catalog::GlueColumn;
use parquet::basic::{LogicalType, Type as Physical};
use parquet::schema::types::Type;

/// The schema's top-level columns, as Glue types them.
pub fn columns(schema: &Type) -> Vec<GlueColumn> {
    schema
        .get_fields()
        .iter()
        .map(|f| GlueColumn::new(f.name(), hive_type(f)))
        .collect()
}

/// The Hive type Athena reads a Parquet field as.
fn hive_type(field: &Type) -> String {
    let logical = field.get_basic_info().logical_type_ref();
    match field {
        Type::GroupType { fields, .. } => match logical {
            // LIST: the group `list`, repeated, holds the element.
            Some(LogicalType::List) => {
                let element = fields
                    .first()
                    .and_then(|l| l.get_fields().first())
                    .map_or_else(|| "string".to_string(), |e| hive_type(e));
                format!("array<{element}>")
            }
            _ => {
                let members: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name().to_lowercase(), hive_type(f)))
                    .collect();
                format!("struct<{}>", members.join(","))
            }
        },
        Type::PrimitiveType {
            physical_type,
            precision,
            scale,
            ..
        } => match (logical, physical_type) {
            (Some(LogicalType::Integer(i)), _) if i.bit_width == 8 => "tinyint".into(),
            (Some(LogicalType::Integer(i)), _) if i.bit_width == 16 => "smallint".into(),
            (Some(LogicalType::Integer(i)), _) if i.bit_width == 32 => "int".into(),
            (Some(LogicalType::Decimal { .. }), _) => format!("decimal({precision},{scale})"),
            (Some(LogicalType::Date), _) => "date".into(),
            (Some(LogicalType::Timestamp { .. }), _) => "timestamp".into(),
            (Some(LogicalType::String | LogicalType::Json), _) => "string".into(),
            (_, Physical::BOOLEAN) => "boolean".into(),
            (_, Physical::INT32) => "int".into(),
            (_, Physical::FLOAT) => "float".into(),
            (_, Physical::DOUBLE) => "double".into(),
            (_, Physical::BYTE_ARRAY | Physical::FIXED_LEN_BYTE_ARRAY) => "binary".into(),
            // INT64 (BIGINT, TIME's microseconds) and INT96.
            _ => "bigint".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::ObjectColumns;
    use super::*;
    use binlog_cdc::decoder::typed::{TypedColumn, ValueType};

    #[test]
    fn every_storage_has_the_type_athena_reads() {
        let cols = [
            (
                "tiny",
                ValueType::Int {
                    bits: 8,
                    unsigned: false,
                },
            ),
            (
                "small",
                ValueType::Int {
                    bits: 8,
                    unsigned: true,
                },
            ),
            (
                "big",
                ValueType::Int {
                    bits: 64,
                    unsigned: false,
                },
            ),
            (
                "ubig",
                ValueType::Int {
                    bits: 64,
                    unsigned: true,
                },
            ),
            (
                "price",
                ValueType::Decimal {
                    precision: 12,
                    scale: 4,
                },
            ),
            (
                "wide",
                ValueType::Decimal {
                    precision: 60,
                    scale: 0,
                },
            ),
            ("day", ValueType::Date),
            ("at", ValueType::DateTime { fsp: 6 }),
            ("span", ValueType::Time { fsp: 0 }),
            ("tags", ValueType::Set),
            ("vec", ValueType::Vector),
            ("doc", ValueType::Json),
            ("raw", ValueType::Binary),
            ("f", ValueType::Float),
        ];
        let typed: Vec<TypedColumn> = cols
            .iter()
            .map(|(n, v)| TypedColumn {
                name: n.to_string(),
                value: *v,
            })
            .collect();
        let schema = ObjectColumns::union([&typed[..]])
            .unwrap()
            .parquet_schema()
            .unwrap();
        let got = columns(&schema);
        let ty = |name: &str| {
            got.iter()
                .find(|c| c.name == name)
                .map(|c| c.ty.as_str())
                .unwrap_or("missing")
        };
        assert_eq!(ty("_cdc_pos"), "bigint");
        assert_eq!(ty("_cdc_keys"), "array<string>");
        assert_eq!(ty("_cdc_timestamp"), "timestamp");
        assert_eq!(ty("_cdc_partial"), "boolean");
        assert_eq!(ty("tiny"), "tinyint");
        assert_eq!(ty("small"), "smallint");
        assert_eq!(ty("big"), "bigint");
        assert_eq!(ty("ubig"), "decimal(20,0)");
        assert_eq!(ty("price"), "decimal(12,4)");
        assert_eq!(ty("wide"), "string");
        assert_eq!(ty("day"), "date");
        assert_eq!(ty("at"), "timestamp");
        assert_eq!(ty("span"), "bigint");
        assert_eq!(ty("tags"), "array<string>");
        assert_eq!(ty("vec"), "array<float>");
        assert_eq!(ty("doc"), "string");
        assert_eq!(ty("raw"), "binary");
        assert_eq!(ty("f"), "float");
        assert!(ty("_cdc_old").starts_with("struct<tiny:tinyint,small:smallint,"));
        assert!(ty("_cdc_old").ends_with(",_cdc_as_json:string>"));
    }
}
