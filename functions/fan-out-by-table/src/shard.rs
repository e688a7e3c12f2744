//! FanOutShard: joins one shard's tables. Each table's staged parts, in
//! binlog order (chunk by chunk, part by part), go into the table's object
//! and, in the same pass, into the shard's slice of the all-tables object.
//! Streaming: one part in memory at a time, each read at most once
//! (parse-chunk stages `json` events with a leading comma, ready to be array
//! elements). A run with one shard writes the all-tables object itself;
//! otherwise JoinAllTables joins the slices. A run of one table in `jsonl`
//! or `jsonl.gz` has an all-tables object of the same bytes as the table's:
//! the store duplicates it (a hard link, a server-side copy).
//!
//! Objects (`json` format, the original's shapes):
//! - per table: `{"count": N, "events": [...], "lastTimestamp": T}`
//! - all tables: `{"counts": {...}, "lastTimestamps": {...}, "tables": {"schema.table": [...]}}`;
//!   a slice is its part of `tables`: `"s.a":[...],"s.b":[...]`
//!
//! In `jsonl` (and `jsonl.gz`) both hold one event per line. A `jsonl.gz`
//! table object is one gzip stream, and gzip streams join into one: a
//! slice is its tables' objects joined as they are (each event compressed
//! once), and the all-tables object its slices joined.
//!
//! Every object goes under the run's staging; CommitCheckpoint publishes it.

use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::{
    FanOutPlan, ShardAck, ShardDone, ShardPlan, ShardTask, StagedParts, TableTotals,
};
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{get_json, put_json, Source};

use crate::emitter::{all_tables_head, Emitter};
use crate::parquet::TableWriter;

pub async fn handle(task: &ShardTask, deps: &Deps) -> Result<ShardAck> {
    let run_id = &task.run_id;
    let store = deps.store.as_ref();
    let fan: FanOutPlan = get_json(store, &deps.layout.fan_out_plan(run_id)).await?;
    let plan: ShardPlan = get_json(store, &deps.layout.shard_plan(run_id, task.shard)).await?;
    let timestamp = fan.timestamp.ok_or_else(|| {
        Error::storage(
            deps.layout.fan_out_plan(run_id),
            format!(
                "shard {} has tables but the run has no row events",
                task.shard
            ),
            false,
        )
    })?;
    let json = deps.config.format == OutputFormat::Json;
    let whole = fan.shards == 1;
    let slice_key = if whole {
        let key = deps.layout.all_output(timestamp, run_id);
        deps.layout.staged_output(run_id, &key)
    } else {
        deps.layout.all_slice(run_id, task.shard)
    };
    // A run of one table, in a format of one event a line: the all-tables
    // object is the same bytes as the table's, so the store duplicates that
    // (a hard link in a directory, a server-side copy on S3) instead of
    // writing them twice.
    let lines = deps.config.format != OutputFormat::Parquet;
    if whole && !json && lines && plan.tables.len() == 1 {
        let (t, parts) = &plan.tables[0];
        let (key, slice_bytes) = write_table(deps, run_id, timestamp, t, parts, None).await?;
        if !store.duplicate(&key, &slice_key).await? {
            return Err(Error::storage(
                key,
                "the table's object, just written, is gone: it could not be \
                      duplicated as the all-tables object",
                true,
            ));
        }
        return finish_shard(task, &plan, slice_bytes, deps).await;
    }
    // In `jsonl.gz` each table's object is one gzip stream: the slice joins
    // those as they are (the store copies them) instead of compressing every
    // event a second time.
    let members = deps.config.format == OutputFormat::JsonlGz;
    let mut all = if members {
        Emitter::joining(deps, &slice_key).await?
    } else {
        Emitter::new(deps, &slice_key).await?
    };
    if json && whole {
        all.write(all_tables_head(&fan.tables)?.as_bytes()).await?;
    }
    for (i, (t, parts)) in plan.tables.iter().enumerate() {
        if json {
            let sep = if i > 0 { "," } else { "" };
            let name = serde_json::to_string(&t.name).unwrap_or_default();
            all.write(format!("{sep}{name}:[").as_bytes()).await?;
        }
        if members {
            let (key, size) = write_table(deps, run_id, timestamp, t, parts, None).await?;
            all.append(deps, &mut Source::new(key, size), 0).await?;
        } else {
            write_table(deps, run_id, timestamp, t, parts, Some(&mut all)).await?;
        }
        if json {
            all.write(b"]").await?;
        }
    }
    if json && whole {
        all.write(b"}}").await?;
    }
    let slice_bytes = all.finish().await?;
    finish_shard(task, &plan, slice_bytes, deps).await
}

/// Records the shard done (its slice's size, for JoinAllTables).
async fn finish_shard(
    task: &ShardTask,
    plan: &ShardPlan,
    slice_bytes: u64,
    deps: &Deps,
) -> Result<ShardAck> {
    let done = ShardDone {
        shard: task.shard,
        slice_bytes,
    };
    let key = deps.layout.shard_done(&task.run_id, task.shard);
    put_json(deps.store.as_ref(), &key, &done).await?;
    Ok(ShardAck {
        shard: task.shard,
        tables: plan.tables.len() as u32,
        events: plan.tables.iter().map(|(t, _)| t.count).sum(),
    })
}

/// Writes one table's object from its parts, appending each part to `all`
/// too (if given); returns the object's key and size.
async fn write_table(
    deps: &Deps,
    run_id: &str,
    timestamp: u32,
    t: &TableTotals,
    parts: &[StagedParts],
    mut all: Option<&mut Emitter>,
) -> Result<(String, u64)> {
    let json = deps.config.format == OutputFormat::Json;
    let key = deps.layout.staged_output(
        run_id,
        &deps
            .layout
            .table_output(&t.schema, &t.table, timestamp, run_id),
    );
    if deps.config.format == OutputFormat::Parquet {
        return write_parquet(deps, run_id, t, parts, all, key).await;
    }
    let mut em = Emitter::new(deps, &key).await?;
    if json {
        em.write(format!("{{\"count\":{},\"events\":[", t.count).as_bytes())
            .await?;
    }
    // In `json` format every staged line starts with a comma: the table's
    // first event goes without it.
    let mut skip = u64::from(json);
    for mut part in sources(deps, run_id, t, parts) {
        em.append(deps, &mut part, skip).await?;
        if let Some(all) = all.as_mut() {
            all.append(deps, &mut part, skip).await?;
        }
        skip = 0;
    }
    if json {
        em.write(format!("],\"lastTimestamp\":{}}}", t.last_timestamp).as_bytes())
            .await?;
    }
    let size = em.finish().await?;
    tracing::info!(table = %t.name, key = %key, events = t.count, "table object written");
    Ok((key, size))
}

/// [`write_table`] in `parquet`: each part read once, into the table's
/// typed rows and (as it is) into the all-tables object.
async fn write_parquet(
    deps: &Deps,
    run_id: &str,
    t: &TableTotals,
    parts: &[StagedParts],
    mut all: Option<&mut Emitter>,
    key: String,
) -> Result<(String, u64)> {
    let layouts = parts
        .iter()
        .flat_map(|p| p.layouts.iter().map(Vec::as_slice));
    let out = deps.store.writer(&key).await?;
    let mut table = TableWriter::new(out, &t.name, &key, layouts)?;
    for mut part in sources(deps, run_id, t, parts) {
        table
            .push_part(part.body(deps.store.as_ref()).await?)
            .await?;
        if let Some(all) = all.as_mut() {
            all.append(deps, &mut part, 0).await?;
        }
    }
    // Its columns, beside it, for its Glue table (CommitCheckpoint).
    let columns = deps
        .layout
        .staged_object_schema(run_id, &t.schema, &t.table);
    put_json(deps.store.as_ref(), &columns, table.glue_schema()).await?;
    let size = table.finish().await?;
    tracing::info!(table = %t.name, key = %key, events = t.count, "table object written");
    Ok((key, size))
}

/// A table's staged parts in binlog order, as sources to read. A part
/// whose every row a snapshot range dropped is empty, and left out (in
/// `json`, the first event's comma is then in the next one).
fn sources<'a>(
    deps: &'a Deps,
    run_id: &'a str,
    t: &'a TableTotals,
    parts: &'a [StagedParts],
) -> impl Iterator<Item = Source> + 'a {
    parts.iter().flat_map(move |staged| {
        staged
            .sizes
            .iter()
            .enumerate()
            .filter(|(_, size)| **size > 0)
            .map(move |(p, size)| {
                let key = deps
                    .layout
                    .staging_part(run_id, staged.chunk, &t.name, p as u32);
                Source::new(key, *size)
            })
    })
}
