//! A snapshot range: its rows read (see `binlog_cdc::snapshot::read`), each
//! written as a `SnapshotRowEvent` at the range's position, and staged like
//! a binlog chunk's events, so fan-out and commit treat both alike.

use binlog_cdc::contracts::{Chunk, ChunkAck, KeyRange};
use binlog_cdc::error::Result;
use binlog_cdc::event::{EventWriter, RowKind, RowRef};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::reader::RowSink;
use binlog_cdc::snapshot::read;
use binlog_cdc::store::get_json;

use crate::staging::Staging;

pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
    let started = std::time::Instant::now();
    let key = deps.layout.snapshot_range(&chunk.run_id, chunk.index);
    let range: KeyRange = get_json(deps.store.as_ref(), &key).await?;
    let url = deps.checked_db_url().await?;
    let got = read::read_range(&url, &range, chunk.server_id).await?;
    let timestamp = (binlog_cdc::metrics::now_ms() / 1000) as u32;
    let position = got.position.to_string();
    let mut staging = Staging::new(deps);
    let (mut writer, mut line) = (EventWriter::default(), Vec::new());
    for (index, img) in got.rows.iter().enumerate() {
        line.clear();
        let row = RowRef {
            table: &got.table,
            kind: RowKind::Snapshot,
            timestamp,
            position: &position,
            index: index as u32,
            gtid: None,
            before: None,
            after: Some(img),
        };
        writer.write(&row, deps.config.view, &mut line);
        staging.row(&got.table, timestamp, &line)?;
        staging.flush_if_needed(&chunk, deps).await?;
    }
    let summary = staging.finish(&chunk, 0, Some(timestamp), deps).await?;
    tracing::info!(
        run_id = %chunk.run_id, chunk = chunk.index, table = %got.table.full_name,
        position = %position, rows = got.rows.len(), superseded = got.superseded,
        secs = started.elapsed().as_secs_f64(), "snapshot range staged"
    );
    Ok(ChunkAck {
        index: chunk.index,
        events: summary.tables.values().map(|t| t.count).sum(),
        bytes_read: 0,
    })
}
