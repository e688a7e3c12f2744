//! The Glue tables of a committed run's tables (`GLUE_DATABASE`, `parquet`
//! only; see `binlog_cdc::catalog`): after its objects are published, each
//! table's Glue table is made to cover its new object, from the columns
//! fan-out recorded beside it in staging.
//!
//! Like publication, this runs again whole after a commit that stopped
//! part-way (the next commit finishes it, staging still there), and
//! following an object a Glue table already covers changes nothing.

use binlog_cdc::catalog::{Catalog, Followed, ObjectSchema};
use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::{FanOutPlan, TableTotals};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::get_json;
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// Tables followed at once: three calls at most each.
const CONCURRENCY: usize = 8;

/// Follows the Glue table of each table `fan` wrote; returns how many were
/// created or updated.
pub async fn follow(fan: &FanOutPlan, deps: &Deps) -> Result<usize> {
    let Some(catalog) = &deps.catalog else {
        return Ok(0);
    };
    if deps.config.format != OutputFormat::Parquet || fan.timestamp.is_none() {
        return Ok(0);
    }
    let changed = stream::iter(&fan.tables)
        .map(|t| follow_one(catalog, &fan.run_id, t, deps))
        .buffer_unordered(CONCURRENCY)
        .try_fold(0, |n, f| async move {
            Ok(n + usize::from(f != Followed::Unchanged))
        })
        .await?;
    tracing::info!(
        run_id = %fan.run_id, database = %catalog.database, tables = fan.tables.len(), changed,
        "Glue tables followed"
    );
    Ok(changed)
}

async fn follow_one(
    catalog: &Catalog,
    run_id: &str,
    t: &TableTotals,
    deps: &Deps,
) -> Result<Followed> {
    let key = deps
        .layout
        .staged_object_schema(run_id, &t.schema, &t.table);
    let object: ObjectSchema = get_json(deps.store.as_ref(), &key).await?;
    let objects = deps.layout.table_objects(&t.schema, &t.table);
    let followed = catalog
        .follow(&t.schema, &t.table, &objects, &object)
        .await?;
    if followed != Followed::Unchanged {
        tracing::info!(table = %t.name, ?followed, "Glue table");
    }
    Ok(followed)
}
