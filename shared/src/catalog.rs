//! The Glue tables over the per-table Parquet objects (`GLUE_DATABASE`; the
//! stack's `GlueTables` parameter): one per source table, typed from its
//! objects, partitioned by `dt` through partition projection (no crawler,
//! no `MSCK REPAIR`). The stack cannot know the tables in advance, so
//! CommitCheckpoint creates a table's Glue table when it first publishes
//! an object of it, and updates it when an object brings a column or a
//! type the Glue table does not have.
//!
//! ```text
//! fan-out: the object's Parquet schema ─▶ ObjectSchema (staging, beside it)
//! commit:  GetTable ─▶ merge ─▶ CreateTable | UpdateTable | nothing
//! ```
//!
//! A table's Glue columns are the event's own fields (`_cdc_*`), the
//! table's columns, [`AS_JSON`] and [`OLD`] (a struct of the same columns).
//! The table's columns are every column any of its objects has: a column
//! dropped from the source stays (older objects hold it; newer ones read
//! NULL), a new one is appended, and a column whose type changed takes the
//! new type (docs/EVENTS.md, *Glue tables*, says what Athena then does with
//! the older objects). Athena reads Parquet by name, so objects with
//! different columns read together.
//!
//! Names: `{schema}_{table}`, when both are already lowercase letters,
//! digits and `_`; any other name is made so and suffixed with a hash of
//! the source name, so `Shop.Orders` and `shop.orders` (two tables on a
//! case-sensitive server) stay two Glue tables. Each Glue table records
//! its source (`binlog_cdc.source`); a plain name already taken by another
//! source (`a_b.c` and `a.b_c`) takes the hashed name too.

use std::collections::HashMap;

use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, Table, TableInput};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The prefix of the event's own fields; no table column starts with it.
pub const EVENT_PREFIX: &str = "_cdc_";
/// The struct holding the row before the change.
pub const OLD: &str = "_cdc_old";
/// Values a typed column cannot hold, as JSON text.
pub const AS_JSON: &str = "_cdc_as_json";
/// The table parameter naming the source table (`schema.table`).
pub const SOURCE: &str = "binlog_cdc.source";

/// One column as Glue types it (Hive type names: `bigint`,
/// `decimal(20,0)`, `array<string>`, `struct<...>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlueColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

impl GlueColumn {
    pub fn new(name: &str, ty: impl Into<String>) -> Self {
        // Glue keeps names in lowercase (MySQL's column names are
        // case-insensitive, so no two meet).
        GlueColumn {
            name: name.to_lowercase(),
            ty: ty.into(),
        }
    }
}

/// What fan-out writes beside a table's Parquet object in staging: the
/// object's top-level columns, as Glue types them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectSchema {
    pub columns: Vec<GlueColumn>,
}

/// The Glue table name of `schema.table` (see the module's header).
pub fn table_name(schema: &str, table: &str) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if plain(schema) && plain(table) {
        format!("{schema}_{table}")
    } else {
        hashed_name(schema, table)
    }
}

/// `{schema}_{table}` made of lowercase letters, digits and `_`, suffixed
/// with 8 hex digits of the source name's SHA-256.
pub fn hashed_name(schema: &str, table: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_') => c,
                _ => '_',
            })
            .collect()
    };
    let digest = Sha256::digest(format!("{schema}.{table}").as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}_{}_{hex}", clean(schema), clean(table))
}

/// The Glue table's columns once it covers an object of `object`'s columns
/// too: the object's event fields, the table columns of both (the Glue
/// table's order, new ones appended; the object's type where both have a
/// name), then [`AS_JSON`] and [`OLD`] over those columns.
pub fn merge(existing: &[GlueColumn], object: &[GlueColumn]) -> Vec<GlueColumn> {
    let is_event_field = |c: &&GlueColumn| c.name.starts_with(EVENT_PREFIX);
    let mut columns: Vec<GlueColumn> = existing
        .iter()
        .filter(|c| !is_event_field(c))
        .cloned()
        .collect();
    for c in object.iter().filter(|c| !is_event_field(c)) {
        match columns.iter_mut().find(|k| k.name == c.name) {
            Some(known) => known.ty.clone_from(&c.ty),
            None => columns.push(c.clone()),
        }
    }
    let as_json = object
        .iter()
        .find(|c| c.name == AS_JSON)
        .map_or_else(|| "string".to_string(), |c| c.ty.clone());
    let fields: Vec<String> = columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .chain([format!("{AS_JSON}:{as_json}")])
        .collect();
    let old = GlueColumn::new(OLD, format!("struct<{}>", fields.join(",")));
    object
        .iter()
        .filter(|c| is_event_field(c) && c.name != AS_JSON && c.name != OLD)
        .cloned()
        .chain(columns)
        .chain([GlueColumn::new(AS_JSON, as_json), old])
        .collect()
}

/// What following one object did to its Glue table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    Created,
    Updated,
    Unchanged,
}

/// The Glue database the tables are in, and the bucket their objects are in.
#[derive(Clone)]
pub struct Catalog {
    client: aws_sdk_glue::Client,
    pub database: String,
    bucket: String,
}

impl Catalog {
    pub fn new(client: aws_sdk_glue::Client, database: &str, bucket: &str) -> Self {
        Catalog {
            client,
            database: database.to_string(),
            bucket: bucket.to_string(),
        }
    }

    /// Glue as `conf` reaches it.
    pub fn connect(conf: &aws_config::SdkConfig, database: &str, bucket: &str) -> Self {
        Catalog::new(aws_sdk_glue::Client::new(conf), database, bucket)
    }

    /// From `GLUE_DATABASE` (unset or empty: no Glue tables) and `BUCKET`.
    pub fn from_env(conf: &aws_config::SdkConfig) -> Option<Self> {
        let database = std::env::var("GLUE_DATABASE")
            .ok()
            .filter(|d| !d.is_empty())?;
        let bucket = std::env::var("BUCKET").unwrap_or_default();
        Some(Catalog::connect(conf, &database, &bucket))
    }

    /// Makes `schema.table`'s Glue table cover an object with `object`'s
    /// columns, its objects being under `objects` (a key prefix ending in
    /// `/`, holding `dt=YYYY-MM-DD/`).
    pub async fn follow(
        &self,
        schema: &str,
        table: &str,
        objects: &str,
        object: &ObjectSchema,
    ) -> Result<Followed> {
        if let Some(f) = self.follow_once(schema, table, objects, object).await? {
            return Ok(f);
        }
        // Created meanwhile: by the same run's other table whose plain name
        // is the same (`a_b.c`, `a.b_c`). Once more, as it is now.
        self.follow_once(schema, table, objects, object)
            .await?
            .ok_or_else(|| {
                Error::storage(
                    format!(
                        "CreateTable {}.{}",
                        self.database,
                        table_name(schema, table)
                    ),
                    "the Glue table exists, yet it was not found",
                    true,
                )
            })
    }

    /// [`Catalog::follow`] once; `None` when a table of the name was created
    /// between GetTable and CreateTable.
    async fn follow_once(
        &self,
        schema: &str,
        table: &str,
        objects: &str,
        object: &ObjectSchema,
    ) -> Result<Option<Followed>> {
        let source = format!("{schema}.{table}");
        let mut name = table_name(schema, table);
        let mut found = self.get(&name).await?;
        if found
            .as_ref()
            .is_some_and(|t| source_of(t) != Some(&source))
        {
            name = hashed_name(schema, table);
            found = self.get(&name).await?;
        }
        let existing = found.as_ref().map_or_else(Vec::new, columns_of);
        let columns = merge(&existing, &object.columns);
        let location = format!("s3://{}/{objects}", self.bucket);
        let unchanged = found.as_ref().is_some_and(|t| {
            existing == columns
                && t.storage_descriptor().and_then(|s| s.location()) == Some(&location)
        });
        if unchanged {
            return Ok(Some(Followed::Unchanged));
        }
        let input = table_input(&name, &source, &location, &columns)?;
        let context = format!("Glue table {}.{name} ({source})", self.database);
        if found.is_none() {
            let created = self
                .client
                .create_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await;
            return match created {
                Ok(_) => Ok(Some(Followed::Created)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_already_exists_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(crate::aws::sdk_error(format!("CreateTable {context}"), e)),
            };
        }
        self.client
            .update_table()
            .database_name(&self.database)
            .table_input(input)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error(format!("UpdateTable {context}"), e))?;
        Ok(Some(Followed::Updated))
    }

    /// The Glue table `name`, if there is one.
    async fn get(&self, name: &str) -> Result<Option<Table>> {
        let out = self
            .client
            .get_table()
            .database_name(&self.database)
            .name(name)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(crate::aws::sdk_error(
                format!("GetTable {}.{name}", self.database),
                e,
            )),
        }
    }
}

fn source_of(t: &Table) -> Option<&String> {
    t.parameters().and_then(|p| p.get(SOURCE))
}

fn columns_of(t: &Table) -> Vec<GlueColumn> {
    t.storage_descriptor()
        .map(|s| s.columns())
        .unwrap_or_default()
        .iter()
        .map(|c| GlueColumn::new(c.name(), c.r#type().unwrap_or("string")))
        .collect()
}

/// The table as created or updated: Parquet under `location`, `dt`
/// projected from 2020-01-01 to today.
fn table_input(
    name: &str,
    source: &str,
    location: &str,
    columns: &[GlueColumn],
) -> Result<TableInput> {
    let invalid = |e: aws_sdk_glue::error::BuildError| {
        Error::Config(format!("the Glue table of {source}: {e}"))
    };
    let glue_columns = columns
        .iter()
        .map(|c| Column::builder().name(&c.name).r#type(&c.ty).build())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let parameters: HashMap<String, String> = [
        ("classification", "parquet".to_string()),
        (SOURCE, source.to_string()),
        ("projection.enabled", "true".into()),
        ("projection.dt.type", "date".into()),
        ("projection.dt.format", "yyyy-MM-dd".into()),
        ("projection.dt.range", "2020-01-01,NOW".into()),
        ("projection.dt.interval", "1".into()),
        ("projection.dt.interval.unit", "DAYS".into()),
        (
            "storage.location.template",
            format!("{location}dt=${{dt}}/"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let storage = StorageDescriptor::builder()
        .location(location)
        .set_columns(Some(glue_columns))
        .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
        .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(
                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                )
                .build(),
        )
        .build();
    let dt = Column::builder()
        .name("dt")
        .r#type("string")
        .build()
        .map_err(invalid)?;
    TableInput::builder()
        .name(name)
        .description(format!("binlog-cdc change events of {source}"))
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(parameters))
        .storage_descriptor(storage)
        .partition_keys(dt)
        .build()
        .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[(&str, &str)]) -> Vec<GlueColumn> {
        list.iter().map(|(n, t)| GlueColumn::new(n, *t)).collect()
    }

    #[test]
    fn names_are_plain_or_hashed() {
        assert_eq!(table_name("shop", "orders"), "shop_orders");
        let upper = table_name("Shop", "Orders");
        assert!(
            upper.starts_with("shop_orders_") && upper.len() == 20,
            "{upper}"
        );
        assert_ne!(upper, table_name("shop", "Orders"));
        assert!(table_name("my-db", "a b").starts_with("my_db_a_b_"));
        // Two sources one plain name would join: the hashed names differ.
        assert_eq!(table_name("a_b", "c"), table_name("a", "b_c"));
        assert_ne!(hashed_name("a_b", "c"), hashed_name("a", "b_c"));
    }

    #[test]
    fn merge_keeps_every_column_and_takes_new_types() {
        let first = merge(
            &[],
            &cols(&[
                ("_cdc_type", "string"),
                ("id", "int"),
                ("price", "decimal(10,2)"),
                ("_cdc_as_json", "string"),
                (
                    "_cdc_old",
                    "struct<id:int,price:decimal(10,2),_cdc_as_json:string>",
                ),
            ]),
        );
        assert_eq!(
            first,
            cols(&[
                ("_cdc_type", "string"),
                ("id", "int"),
                ("price", "decimal(10,2)"),
                ("_cdc_as_json", "string"),
                (
                    "_cdc_old",
                    "struct<id:int,price:decimal(10,2),_cdc_as_json:string>"
                ),
            ])
        );
        // A later object: price dropped, id widened, Note added.
        let object = cols(&[
            ("_cdc_type", "string"),
            ("id", "bigint"),
            ("Note", "string"),
            ("_cdc_as_json", "string"),
            (
                "_cdc_old",
                "struct<id:bigint,note:string,_cdc_as_json:string>",
            ),
        ]);
        assert_eq!(
            merge(&first, &object),
            cols(&[
                ("_cdc_type", "string"),
                ("id", "bigint"),
                ("price", "decimal(10,2)"),
                ("note", "string"),
                ("_cdc_as_json", "string"),
                (
                    "_cdc_old",
                    "struct<id:bigint,price:decimal(10,2),note:string,_cdc_as_json:string>"
                ),
            ])
        );
        // The same object again changes nothing.
        let again = merge(&first, &object);
        assert_eq!(merge(&again, &object), again);
    }

    #[test]
    fn the_table_is_parquet_projected_by_day() {
        let input = table_input(
            "shop_orders",
            "shop.orders",
            "s3://b/cdc/shop/orders/",
            &cols(&[("id", "int")]),
        )
        .unwrap();
        let p = input.parameters().unwrap();
        assert_eq!(
            p["storage.location.template"],
            "s3://b/cdc/shop/orders/dt=${dt}/"
        );
        assert_eq!(p[SOURCE], "shop.orders");
        assert_eq!(input.partition_keys()[0].name(), "dt");
        let sd = input.storage_descriptor().unwrap();
        assert_eq!(sd.columns()[0].r#type(), Some("int"));
        assert!(sd
            .serde_info()
            .and_then(|s| s.serialization_library())
            .is_some_and(|l| l.ends_with("ParquetHiveSerDe")));
    }
}
