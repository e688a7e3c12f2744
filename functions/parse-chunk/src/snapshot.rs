//! A snapshot range: its rows read (see `binlog_cdc::snapshot::read`), each
//! written as a `SnapshotRowEvent` at the range's position, and staged like
//! a binlog chunk's events, so fan-out and commit treat both alike.

use binlog_cdc::contracts::{Chunk, ChunkAck, KeyRange};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::snapshot::read;
use binlog_cdc::store::get_json;

use crate::staging::Staging;

pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
    let started = std::time::Instant::now();
    let key = deps.layout.snapshot_range(&chunk.run_id, chunk.index);
    let range: KeyRange = get_json(deps.store.as_ref(), &key).await?;
    let db = deps.checked_db().await?;
    let got = read::read_range(&db, &range, chunk.server_id).await?;
    let timestamp = (binlog_cdc::metrics::now_ms() / 1000) as u32;
    let tail = got.tail(timestamp);
    let mut staging = Staging::new(deps);
    for head in got.heads() {
        staging.push(&got.table, timestamp, &[head, &tail]);
        staging.flush_if_needed(&chunk, deps).await?;
    }
    // A range without rows (an empty table's) stages nothing and dates
    // nothing.
    let last = (!got.is_empty()).then_some(timestamp);
    let summary = staging.finish(&chunk, 0, last, deps).await?;
    tracing::info!(
        run_id = %chunk.run_id, chunk = chunk.index, table = %got.table.full_name,
        position = %got.position, rows = got.len(), superseded = got.superseded,
        secs = started.elapsed().as_secs_f64(), "snapshot range staged"
    );
    Ok(ChunkAck {
        index: chunk.index,
        events: summary.tables.values().map(|t| t.count).sum(),
        bytes_read: 0,
    })
}
