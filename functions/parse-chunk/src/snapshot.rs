//! A snapshot range: its rows read (see `binlog_cdc::decoder::snapshot::read`) and
//! staged as they arrive, each a `SnapshotRowEvent` at the range's position,
//! like a binlog chunk's events, so fan-out and commit treat both alike.
//! Rows the binlog changed while the range was read are then dropped from
//! the staged parts.

use binlog_cdc::contracts::{Chunk, ChunkAck, KeyRange};
use binlog_cdc::decoder::definition::{Tracker, Version};
use binlog_cdc::decoder::schema::TableMeta;
use binlog_cdc::decoder::snapshot::read::{self, RangeSink};
use binlog_cdc::decoder::statement::StatementKind;
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::get_json;

use crate::staging::Staging;

pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
    let started = std::time::Instant::now();
    let key = deps.layout.snapshot_range(&chunk.run_id, chunk.index);
    let range: KeyRange = get_json(deps.store.as_ref(), &key).await?;
    let db = deps.checked_db().await?;
    let timestamp = (binlog_cdc::metrics::now_ms() / 1000) as u32;
    let mut sink = StagingSink {
        staging: Staging::new(deps),
        timestamp,
        chunk: &chunk,
        deps,
    };
    let rules = deps.column_rules().await?;
    let got = read::read_range(&db, &range, &rules, chunk.server_id, timestamp, &mut sink).await?;
    let mut staging = sink.staging;
    if range.after.is_none() {
        // The table's first range: its definition there starts (or goes on
        // with) its schema history.
        staging.schema_versions = record_definition(&got, &db, &chunk, deps).await?;
    }
    staging
        .drop_rows(&got.table.full_name, &got.superseded, &chunk, deps)
        .await?;
    // A range without rows (an empty table's) stages nothing and dates
    // nothing.
    let last = (!got.is_empty()).then_some(timestamp);
    let summary = staging.finish(&chunk, 0, last, None, deps).await?;
    tracing::info!(
        run_id = %chunk.run_id, chunk = chunk.index, table = %got.table.full_name,
        position = %got.position, rows = got.len(), superseded = got.superseded.len(),
        secs = started.elapsed().as_secs_f64(), "snapshot range staged"
    );
    Ok(ChunkAck {
        index: chunk.index,
        events: summary.tables.values().map(|t| t.count).sum(),
        bytes_read: 0,
    })
}

/// The table's definition as the range read it, staged as a version of its
/// schema history at the range's position.
async fn record_definition(
    got: &read::RangeRead,
    db: &binlog_cdc::decoder::source::connect::ConnectOptions,
    chunk: &Chunk,
    deps: &Deps,
) -> Result<Vec<String>> {
    let replay = binlog_cdc::decoder::server_replay::ServerReplay::new(db);
    let mut tracker = Tracker::new(Some(Box::new(replay)), None);
    let t = &got.table;
    let known = tracker
        .from_show_create(&t.schema, &got.create_table)
        .await?;
    let version = Version {
        schema: t.schema.clone(),
        table: t.table.clone(),
        position: got.position.clone(),
        kind: StatementKind::Create,
        after: known,
    };
    let keys = crate::history::stage(vec![version], chunk, deps).await?;
    Ok(keys)
}

/// Stages each row as it is read, writing parts as they fill.
struct StagingSink<'a> {
    staging: Staging,
    timestamp: u32,
    chunk: &'a Chunk,
    deps: &'a Deps,
}

impl RangeSink for StagingSink<'_> {
    fn row(
        &mut self,
        table: &TableMeta,
        pieces: &[&[u8]],
    ) -> impl std::future::Future<Output = binlog_cdc::decoder::Result<()>> + Send {
        self.staging.push(table, self.timestamp, pieces);
        async { Ok(self.staging.flush_if_needed(self.chunk, self.deps).await?) }
    }
}
