//! ParseChunk: decodes one chunk of the binlog with the shared decoder and
//! stages its events in the object store, one JSON Lines part per table at a
//! time, under the run's staging prefix.
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

use std::collections::BTreeMap;

use binlog_cdc::contracts::{Chunk, ChunkAck, ChunkSummary, TablePart};
use binlog_cdc::error::Result;
use binlog_cdc::filter::TableFilter;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::reader::{DecodeOptions, Decoder, RowSink};
use binlog_cdc::schema::TableMeta;
use binlog_cdc::source::server::{InformationSchema, ServerSource};
use binlog_cdc::source::EventSource;

#[derive(Default)]
struct TableBuffer {
    part: TablePart,
    buf: Vec<u8>,
}

/// Buffers each table's event lines.
#[derive(Default)]
struct Staging {
    tables: BTreeMap<String, TableBuffer>,
    buffered: usize,
    /// The part being written while decoding goes on (at most one).
    in_flight: Option<tokio::task::JoinHandle<Result<()>>>,
    /// Lines start with a comma (the `json` output format).
    leading_comma: bool,
}

impl RowSink for Staging {
    fn row(&mut self, table: &TableMeta, timestamp: u32, json: &[u8]) -> Result<()> {
        let t = match self.tables.get_mut(&table.full_name) {
            Some(t) => t,
            None => self
                .tables
                .entry(table.full_name.clone())
                .or_insert_with(|| TableBuffer {
                    part: TablePart {
                        schema: table.schema.clone(),
                        table: table.table.clone(),
                        ..Default::default()
                    },
                    buf: Vec::new(),
                }),
        };
        let before = t.buf.len();
        if self.leading_comma {
            t.buf.push(b',');
        }
        t.buf.extend_from_slice(json);
        t.buf.push(b'\n');
        t.part.count += 1;
        t.part.last_timestamp = timestamp;
        self.buffered += t.buf.len() - before;
        Ok(())
    }
}

impl Staging {
    /// Writes `table`'s buffer as its next part.
    async fn flush(&mut self, table: &str, chunk: &Chunk, deps: &Deps) -> Result<()> {
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        if t.buf.is_empty() {
            return Ok(());
        }
        let key = deps
            .layout
            .staging_part(&chunk.run_id, chunk.index, table, t.part.parts);
        // The next buffer starts at the size this one reached: a table that
        // filled one part usually fills the next, and a buffer grown from
        // empty by doubling copies itself several times over on the way.
        let capacity = t.buf.capacity();
        let body = std::mem::replace(&mut t.buf, Vec::with_capacity(capacity));
        self.buffered -= body.len();
        t.part.parts += 1;
        t.part.sizes.push(body.len() as u64);
        // Written in the background while the next events are decoded; the
        // write before it must have landed first (one part in flight).
        self.settle().await?;
        let store = deps.store.clone();
        self.in_flight = Some(tokio::spawn(async move {
            store
                .put(&key, body, binlog_cdc::store::PutCondition::None)
                .await
                .map(|_| ())
        }));
        Ok(())
    }

    /// Waits for the part in flight, if any.
    async fn settle(&mut self) -> Result<()> {
        match self.in_flight.take() {
            Some(h) => h.await.map_err(|e| {
                binlog_cdc::Error::io("staging a part", std::io::Error::other(e.to_string()))
            })?,
            None => Ok(()),
        }
    }

    /// Flushes tables past the part size, then the largest while over the cap.
    async fn flush_if_needed(&mut self, chunk: &Chunk, deps: &Deps) -> Result<()> {
        let full: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, t)| t.buf.len() >= deps.config.part_bytes)
            .map(|(k, _)| k.clone())
            .collect();
        for t in full {
            self.flush(&t, chunk, deps).await?;
        }
        while self.buffered > deps.config.max_buffer_bytes {
            let Some(largest) = self
                .tables
                .iter()
                .max_by_key(|(_, t)| t.buf.len())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.flush(&largest, chunk, deps).await?;
        }
        Ok(())
    }
}

pub async fn handle(chunk: Chunk, deps: &Deps) -> Result<ChunkAck> {
    let started = std::time::Instant::now();
    let opts = DecodeOptions {
        view: deps.config.view,
        filter: TableFilter::new(deps.config.include.clone(), deps.config.exclude.clone())
            .map_err(binlog_cdc::Error::Config)?,
    };
    let url = deps.checked_db_url().await?;
    let mut source =
        ServerSource::open(&url, &chunk.from, Some(chunk.to.clone()), chunk.server_id).await?;
    let lookup = InformationSchema::connect(&url).await?;
    let mut decoder = Decoder::new(opts).with_lookup(Box::new(lookup));
    let mut staging = Staging {
        leading_comma: deps.config.format == binlog_cdc::config::OutputFormat::Json,
        ..Default::default()
    };
    while let Some(ev) = source.next_event().await? {
        decoder.handle(&ev, &mut staging).await?;
        if staging.buffered > 0 {
            staging.flush_if_needed(&chunk, deps).await?;
        }
    }
    let tables: Vec<String> = staging.tables.keys().cloned().collect();
    for t in &tables {
        staging.flush(t, &chunk, deps).await?;
    }
    staging.settle().await?;
    let summary = ChunkSummary {
        index: chunk.index,
        tables: staging
            .tables
            .into_iter()
            .map(|(k, t)| (k, t.part))
            .collect(),
        bytes_read: source.bytes_read(),
        last_timestamp: decoder.stats().last_timestamp,
    };
    binlog_cdc::store::put_json(
        deps.store.as_ref(),
        &deps.layout.chunk_summary(&chunk.run_id, chunk.index),
        &summary,
    )
    .await?;
    let ack = ChunkAck {
        index: chunk.index,
        events: summary.tables.values().map(|t| t.count).sum(),
        bytes_read: summary.bytes_read,
    };
    tracing::info!(
        run_id = %chunk.run_id, chunk = chunk.index, binlog_file = chunk.from.file(), pos = chunk.from.pos(),
        rows = ack.events, bytes = ack.bytes_read, secs = started.elapsed().as_secs_f64(),
        "chunk staged"
    );
    Ok(ack)
}
