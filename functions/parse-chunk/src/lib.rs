//! ParseChunk: reads one chunk of the run and stages its events in the
//! object store, one JSON Lines part per table at a time, under the run's
//! staging prefix ([`staging`]). A chunk is a range of the binlog, decoded
//! with the shared decoder ([`binlog`]), or a snapshot range of a table
//! ([`snapshot`]).
//!
//! What it staged, per table (parts and their sizes), goes into the run's
//! staging as the chunk's summary (`staging/{runId}/chunks/{index}.json`,
//! read by fan-out); the state gets only a few numbers ([`ChunkAck`]).
//!
//! A part is one event per line. For the `json` output format every line
//! starts with a comma (`,{...}`), so that fan-out-by-table can write parts
//! straight into a JSON array without copying them (it skips the first comma
//! of a table's first part).
//!
//! Memory is bounded: a table's buffer becomes a part when it passes
//! `PART_BYTES`, and when all buffers together pass `MAX_BUFFER_BYTES` the
//! largest is flushed. A part is written while the next events are decoded,
//! one part at a time. The flush decisions depend only on the events, so
//! running a chunk twice writes the same objects.

pub mod history;
pub mod snapshot;
pub mod staging;

use binlog_cdc::contracts::{Chunk, ChunkAck, ChunkKind};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;

pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
    match chunk.kind {
        ChunkKind::Binlog => binlog::handle(chunk, deps).await,
        ChunkKind::Snapshot => snapshot::handle(chunk, deps).await,
    }
}

pub mod binlog {
    //! A range of the binlog, decoded and staged.

    use binlog_cdc::contracts::{Chunk, ChunkAck, StatementCounts};
    use binlog_cdc::decoder::reader::{DecodeOptions, Decoder};
    use binlog_cdc::decoder::server_replay::ServerReplay;
    use binlog_cdc::decoder::source::server::{InformationSchema, ServerSource};
    use binlog_cdc::decoder::source::EventSource;
    use binlog_cdc::error::Result;
    use binlog_cdc::pipeline::Deps;

    use crate::history::{self, StoredHistory};
    use crate::staging::Staging;

    pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
        let started = std::time::Instant::now();
        let opts = DecodeOptions {
            view: deps.config.view,
            filter: deps.config.table_filter()?,
            rules: deps.column_rules().await?,
        };
        let db = deps.checked_db().await?;
        let mut source =
            ServerSource::open(&db, &chunk.from, Some(chunk.to.clone()), chunk.server_id).await?;
        let lookup = InformationSchema::connect(&db).await?;
        let replay = ServerReplay::new(&db);
        let history = StoredHistory::for_chunk(&chunk, deps);
        let mut decoder = Decoder::new(opts)
            .with_lookup(Box::new(lookup))
            .with_definitions(Box::new(replay), Some(Box::new(history)));
        let mut staging = Staging::new(deps);
        while let Some(ev) = source.next_event().await? {
            decoder.handle(ev, &mut staging).await?;
            if staging.buffered > 0 {
                staging.flush_if_needed(&chunk, deps).await?;
            }
        }
        decoder.finish(&mut staging)?;
        let last = decoder.stats().last_timestamp;
        staging.statements = StatementCounts::of(decoder.stats());
        staging.schema_versions = history::stage(decoder.take_versions(), &chunk, deps).await?;
        let gtids = Some(decoder.gtid_trail().clone()).filter(|t| !t.is_empty());
        let summary = staging
            .finish(&chunk, source.bytes_read(), last, gtids, deps)
            .await?;
        let ack = ChunkAck {
            index: chunk.index,
            events: summary.tables.values().map(|t| t.count).sum(),
            bytes_read: summary.bytes_read,
        };
        tracing::info!(
            run_id = %chunk.run_id, chunk = chunk.index, binlog_file = chunk.from.file(), pos = chunk.from.pos(),
            events = ack.events, bytes = ack.bytes_read, statements = summary.statements.written.values().sum::<u64>(),
            skipped_statements = summary.statements.skipped, secs = started.elapsed().as_secs_f64(),
            "chunk staged"
        );
        Ok(ack)
    }
}
