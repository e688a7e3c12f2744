//! A chunk's staging: each table's event lines buffered, written as parts
//! (`staging/{runId}/parts/...`) when a buffer passes `PART_BYTES` or all
//! together pass `MAX_BUFFER_BYTES`, one part in flight while decoding goes
//! on, and the chunk's summary of what it staged.

use std::collections::BTreeMap;

use binlog_cdc::contracts::{Chunk, ChunkSummary, TablePart};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::reader::RowSink;
use binlog_cdc::schema::TableMeta;

#[derive(Default)]
pub struct TableBuffer {
    pub part: TablePart,
    buf: Vec<u8>,
}

/// Buffers each table's event lines.
#[derive(Default)]
pub struct Staging {
    pub tables: BTreeMap<String, TableBuffer>,
    pub buffered: usize,
    /// The part being written while decoding goes on (at most one).
    in_flight: Option<tokio::task::JoinHandle<Result<()>>>,
    /// Lines start with a comma (the `json` output format).
    pub leading_comma: bool,
}

impl RowSink for Staging {
    fn row(&mut self, table: &TableMeta, timestamp: u32, json: &[u8]) -> Result<()> {
        self.push(table, timestamp, &[json]);
        Ok(())
    }
}

impl Staging {
    /// Buffers one event line for `table`, given in pieces (a snapshot
    /// row's head and its range's tail), copied once.
    pub fn push(&mut self, table: &TableMeta, timestamp: u32, pieces: &[&[u8]]) {
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
        for piece in pieces {
            t.buf.extend_from_slice(piece);
        }
        t.buf.push(b'\n');
        t.part.count += 1;
        t.part.last_timestamp = timestamp;
        self.buffered += t.buf.len() - before;
    }

    /// Writes `table`'s buffer as its next part.
    pub async fn flush(&mut self, table: &str, chunk: &Chunk, deps: &Deps) -> Result<()> {
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
    pub async fn settle(&mut self) -> Result<()> {
        match self.in_flight.take() {
            Some(h) => h.await.map_err(|e| {
                binlog_cdc::Error::io("staging a part", std::io::Error::other(e.to_string()))
            })?,
            None => Ok(()),
        }
    }

    /// Flushes tables past the part size, then the largest while over the cap.
    pub async fn flush_if_needed(&mut self, chunk: &Chunk, deps: &Deps) -> Result<()> {
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

impl Staging {
    /// An empty staging for the configured output format.
    pub fn new(deps: &Deps) -> Self {
        Self {
            leading_comma: deps.config.format == binlog_cdc::config::OutputFormat::Json,
            ..Default::default()
        }
    }

    /// Writes every buffer left, waits for the last part, and stores the
    /// chunk's summary; returns it.
    pub async fn finish(
        mut self,
        chunk: &Chunk,
        bytes_read: u64,
        last_timestamp: Option<u32>,
        deps: &Deps,
    ) -> Result<ChunkSummary> {
        let tables: Vec<String> = self.tables.keys().cloned().collect();
        for t in &tables {
            self.flush(t, chunk, deps).await?;
        }
        self.settle().await?;
        let summary = ChunkSummary {
            index: chunk.index,
            tables: self.tables.into_iter().map(|(k, t)| (k, t.part)).collect(),
            bytes_read,
            last_timestamp,
        };
        binlog_cdc::store::put_json(
            deps.store.as_ref(),
            &deps.layout.chunk_summary(&chunk.run_id, chunk.index),
            &summary,
        )
        .await?;
        Ok(summary)
    }
}
