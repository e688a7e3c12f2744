//! Reads back what the current-rows query is generated from
//! (`binlog_cdc::current_rows`): a table object's columns, the names of its
//! key (`_cdc_keys`) and its statements (`_cdc_event`), reading only those
//! two columns of its rows.

use std::sync::Arc;

use binlog_cdc::current_rows::TableStatements;
use binlog_cdc::error::{Error, Result};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::record::Field;
use parquet::schema::types::Type;

use super::schema::{EVENT_PREFIX, OLD};

/// Adds one object's columns, key names and statements to `t`.
fn add_object(t: &mut TableStatements, key: &str, body: Vec<u8>) -> Result<()> {
    let pq = |e: parquet::errors::ParquetError| Error::storage_from(key.to_string(), e, false);
    let reader = SerializedFileReader::new(bytes::Bytes::from(body)).map_err(pq)?;
    let schema = reader.metadata().file_metadata().schema();
    let mut wanted = Vec::new();
    for field in schema.get_fields() {
        let name = field.name();
        if name == "_cdc_keys" || name == "_cdc_event" {
            wanted.push(field.clone());
        } else if !name.starts_with(EVENT_PREFIX)
            && name != OLD
            && !t.columns.iter().any(|c| c == name)
        {
            t.columns.push(name.to_string());
        }
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(wanted)
        .build()
        .map_err(pq)?;
    for row in reader.get_row_iter(Some(projection)).map_err(pq)? {
        for (name, field) in row.map_err(pq)?.get_column_iter() {
            match (name.as_str(), field) {
                ("_cdc_event", Field::Str(s)) => {
                    let statement = serde_json::from_str(s).map_err(|e| {
                        Error::storage(
                            key,
                            format!("a statement's _cdc_event is not JSON: {e}"),
                            false,
                        )
                    })?;
                    t.statements.push(statement);
                }
                ("_cdc_keys", Field::ListInternal(list)) if t.keys.is_empty() => {
                    t.keys = list
                        .elements()
                        .iter()
                        .filter_map(|f| match f {
                            Field::Str(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The table's statements and columns, from each of its objects at `keys`
/// in `store` (`.parquet` ones; others are skipped).
pub async fn table_statements(
    store: Arc<dyn binlog_cdc::store::ObjectStore>,
    schema: &str,
    table: &str,
    keys: &[String],
) -> Result<TableStatements> {
    let mut t = TableStatements {
        schema: schema.to_string(),
        table: table.to_string(),
        ..Default::default()
    };
    for key in keys.iter().filter(|k| k.ends_with(".parquet")) {
        let Some(obj) = store.get(key).await? else {
            continue; // gone since it was listed
        };
        add_object(&mut t, key, obj.body)?;
    }
    Ok(t)
}
