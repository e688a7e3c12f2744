//! JoinAllTables: joins the shards' slices, in shard (so table) order, into
//! the run's all-tables object. The store copies each slice itself (S3:
//! UploadPartCopy for slices of 5 MiB or more; a local directory: kernel
//! copy), so the call moves few bytes through this process whatever the
//! run's size. With one shard, the shard wrote the object itself.

use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::{FanOutPlan, JoinOutput, ShardDone};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{get_json, Source};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::emitter::all_tables_head;

pub async fn handle(run_id: &str, deps: &Deps) -> Result<JoinOutput> {
    let store = deps.store.as_ref();
    let fan: FanOutPlan = get_json(store, &deps.layout.fan_out_plan(run_id)).await?;
    let Some(timestamp) = fan.timestamp else {
        return Ok(JoinOutput::default()); // no row events: no objects
    };
    // Every shard must have finished (a redrive reruns the ones that did not).
    let done: Vec<ShardDone> = stream::iter(0..fan.shards)
        .map(|k| async move { get_json(store, &deps.layout.shard_done(run_id, k)).await })
        .buffered(16)
        .try_collect()
        .await?;
    let key = deps
        .layout
        .staged_output(run_id, &deps.layout.all_output(timestamp, run_id));
    if fan.shards > 1 {
        let json = deps.config.format == OutputFormat::Json;
        let mut out = store.writer(&key).await?;
        if json {
            out.write(all_tables_head(&fan.tables)?.as_bytes()).await?;
        }
        for d in &done {
            if json && d.shard > 0 {
                out.write(b",").await?;
            }
            let mut slice = Source::new(deps.layout.all_slice(run_id, d.shard), d.slice_bytes);
            out.append_object(&mut slice, 0).await?;
        }
        if json {
            out.write(b"}}").await?;
        }
        out.finish().await?;
    }
    tracing::info!(run_id = %run_id, key = %key, slices = fan.shards, "all-tables object written");
    Ok(JoinOutput {
        key: Some(key),
        slices: fan.shards,
    })
}
