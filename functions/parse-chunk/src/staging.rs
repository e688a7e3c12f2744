//! A chunk's staging: each table's event lines buffered, written as parts
//! (`staging/{runId}/parts/...`) when a buffer passes `PART_BYTES` or all
//! together pass `MAX_BUFFER_BYTES`, one part in flight while decoding goes
//! on, and the chunk's summary of what it staged.

use std::collections::BTreeMap;

use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::{Chunk, ChunkSummary, StatementCounts, TablePart};
use binlog_cdc::decoder;
use binlog_cdc::decoder::gtid::GtidTrail;
use binlog_cdc::decoder::reader::RowSink;
use binlog_cdc::decoder::schema::TableMeta;
use binlog_cdc::decoder::typed;
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{PutCondition, Source};

#[derive(Default)]
pub struct TableBuffer {
    pub part: TablePart,
    buf: Vec<u8>,
}

impl TableBuffer {
    fn new(schema: &str, table: &str) -> Self {
        let part = TablePart {
            schema: schema.to_string(),
            table: table.to_string(),
            ..Default::default()
        };
        Self {
            part,
            buf: Vec::new(),
        }
    }
}

/// Buffers each table's event lines.
#[derive(Default)]
pub struct Staging {
    pub tables: BTreeMap<String, TableBuffer>,
    pub buffered: usize,
    /// The part being written while decoding goes on (at most one); it
    /// hands its buffer back where the store allows.
    in_flight: Option<tokio::task::JoinHandle<Result<Option<Vec<u8>>>>>,
    /// A written part's buffer, emptied, for the next part: a new buffer's
    /// pages are each faulted in as it fills (a 1,000,000-row snapshot:
    /// 41,000 page faults, 17,500 with reuse).
    spare: Option<Vec<u8>>,
    /// Lines start with a comma (the `json` output format).
    pub leading_comma: bool,
    /// Each table's columns are recorded (the `parquet` output format: see
    /// [`TablePart::layouts`]).
    pub typed: bool,
    /// The statements the chunk read, for its summary.
    pub statements: StatementCounts,
    /// The schema history versions the chunk staged (output keys).
    pub schema_versions: Vec<String>,
}

impl RowSink for Staging {
    fn row(&mut self, table: &TableMeta, timestamp: u32, json: &[u8]) -> decoder::Result<()> {
        self.push(table, timestamp, &[json]);
        Ok(())
    }

    fn statement(
        &mut self,
        schema: &str,
        table: &str,
        timestamp: u32,
        json: &[u8],
    ) -> decoder::Result<()> {
        let name = format!("{schema}.{table}");
        self.push_named(&name, schema, table, timestamp, &[json]);
        Ok(())
    }
}

impl Staging {
    /// Buffers one event line for `table`, given in pieces (a snapshot
    /// row's head and its range's tail), copied once.
    pub fn push(&mut self, table: &TableMeta, timestamp: u32, pieces: &[&[u8]]) {
        if self.typed {
            self.record_layout(table);
        }
        self.push_named(
            &table.full_name,
            &table.schema,
            &table.table,
            timestamp,
            pieces,
        )
    }

    /// Records `table`'s columns when they are not those of its last event.
    fn record_layout(&mut self, table: &TableMeta) {
        let part = self.tables.get(&table.full_name).map(|t| &t.part);
        let last = part.and_then(|p| p.layouts.last());
        if last.is_some_and(|l| typed::same_columns(l, table)) {
            return;
        }
        let layout = typed::columns(table);
        self.tables
            .entry(table.full_name.clone())
            .or_insert_with(|| TableBuffer::new(&table.schema, &table.table))
            .part
            .layouts
            .push(layout);
    }

    /// [`Staging::push`] for `schema.table` named by `full_name`.
    fn push_named(
        &mut self,
        full_name: &str,
        schema: &str,
        table: &str,
        timestamp: u32,
        pieces: &[&[u8]],
    ) {
        let t = match self.tables.get_mut(full_name) {
            Some(t) => t,
            None => self
                .tables
                .entry(full_name.to_string())
                .or_insert_with(|| TableBuffer::new(schema, table)),
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
        if self.tables.get(table).is_none_or(|t| t.buf.is_empty()) {
            return Ok(());
        }
        // Written in the background while the next events are decoded; the
        // write before it must have landed first (one part in flight).
        self.settle().await?;
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let key = deps
            .layout
            .staging_part(&chunk.run_id, chunk.index, table, t.part.parts);
        // The next buffer starts at the size this one reached: a table that
        // filled one part usually fills the next, and a buffer grown from
        // empty by doubling copies itself several times over on the way.
        // A written buffer goes only to a table that fills whole parts (a
        // small table would keep its pages resident).
        let capacity = t.buf.capacity();
        let reuse = |spare: &mut Vec<u8>| {
            capacity >= deps.config.part_bytes && spare.capacity() >= capacity
        };
        let next = match self.spare.take_if(reuse) {
            Some(spare) => spare,
            None => Vec::with_capacity(capacity),
        };
        let body = std::mem::replace(&mut t.buf, next);
        self.buffered -= body.len();
        t.part.parts += 1;
        t.part.sizes.push(body.len() as u64);
        let store = deps.store.clone();
        self.in_flight = Some(tokio::spawn(
            async move { store.put_part(&key, body).await },
        ));
        Ok(())
    }

    /// Waits for the part in flight, if any, and keeps its buffer.
    pub async fn settle(&mut self) -> Result<()> {
        let Some(h) = self.in_flight.take() else {
            return Ok(());
        };
        let emptied = h
            .await
            .map_err(|e| binlog_cdc::Error::storage_from("staging a part", e, true))??;
        self.spare = emptied.or(self.spare.take());
        Ok(())
    }

    /// Flushes tables past the part size, then the largest while over the cap.
    pub async fn flush_if_needed(&mut self, chunk: &Chunk, deps: &Deps) -> Result<()> {
        // Called for every row: no table's buffer can be full while all of
        // them together hold less than a part.
        if self.buffered < deps.config.part_bytes && self.buffered <= deps.config.max_buffer_bytes {
            return Ok(());
        }
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
    /// Drops `table`'s lines numbered `rows` (ascending; 0 is the first line
    /// this chunk staged for it), writing again each part that held one.
    /// Buffers are written first.
    pub async fn drop_rows(
        &mut self,
        table: &str,
        rows: &[u64],
        chunk: &Chunk,
        deps: &Deps,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.flush(table, chunk, deps).await?;
        self.settle().await?;
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let (mut dropped, mut line) = (rows.iter().copied().peekable(), 0u64);
        for p in 0..t.part.parts {
            let key = deps
                .layout
                .staging_part(&chunk.run_id, chunk.index, table, p);
            let mut part = Source::new(key.clone(), t.part.sizes[p as usize]);
            let body = part.body(deps.store.as_ref()).await?;
            let mut kept = Vec::with_capacity(body.len());
            // One event a line: JSON text escapes every newline it holds.
            for event in body.split_inclusive(|&b| b == b'\n') {
                if dropped.next_if_eq(&line).is_some() {
                    t.part.count -= 1;
                } else {
                    kept.extend_from_slice(event);
                }
                line += 1;
            }
            if kept.len() < body.len() {
                t.part.sizes[p as usize] = kept.len() as u64;
                deps.store.put(&key, kept, PutCondition::None).await?;
            }
        }
        Ok(())
    }

    /// An empty staging for the configured output format.
    pub fn new(deps: &Deps) -> Self {
        Self {
            leading_comma: deps.config.format == OutputFormat::Json,
            typed: deps.config.format == OutputFormat::Parquet,
            ..Default::default()
        }
    }

    /// Writes every buffer left, waits for the last part, and stores the
    /// chunk's summary (with the MySQL GTIDs it read, if any); returns it.
    pub async fn finish(
        mut self,
        chunk: &Chunk,
        bytes_read: u64,
        last_timestamp: Option<u32>,
        gtids: Option<GtidTrail>,
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
            gtids,
            statements: self.statements,
            schema_versions: self.schema_versions,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use binlog_cdc::config::{OutputFormat, PipelineConfig};
    use binlog_cdc::store::local::LocalStore;
    use binlog_cdc::store::ObjectStore;

    use super::*;

    fn table() -> TableMeta {
        TableMeta {
            schema: "s".into(),
            table: "t".into(),
            full_name: "s.t".into(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            has_names: true,
            by_name: Vec::new(),
            json_names: Vec::new(),
            key_by_name: Vec::new(),
            json_columns: 0,
            rules: None,
        }
    }

    fn chunk(index: u32) -> Chunk {
        Chunk {
            run_id: "r".into(),
            index,
            from: "binlog.000001:4".parse().unwrap(),
            to: "binlog.000001:4".parse().unwrap(),
            server_id: 1,
            kind: Default::default(),
            run_from: None,
        }
    }

    /// A table that fills whole parts gets the last written part's buffer
    /// back for its next one; a small table gets a new one.
    #[tokio::test]
    async fn a_written_buffer_is_reused_by_a_table_that_fills_parts() {
        let dir = std::env::temp_dir().join(format!("staging-reuse-{}", std::process::id()));
        let config = PipelineConfig {
            format: OutputFormat::Jsonl,
            part_bytes: 12, // two 8-byte lines a part
            ..Default::default()
        };
        let deps = Deps::new(
            Arc::new(LocalStore::new(&dir)),
            config,
            "mysql://u@127.0.0.1:1",
        );
        let chunk = chunk(0);
        let mut staging = Staging::new(&deps);
        let mut first = None;
        for i in 0..4 {
            staging.push(&table(), 9, &[format!("{{\"i\":{i}}}").as_bytes()]);
            if i == 1 {
                first = Some(staging.tables["s.t"].buf.as_ptr()); // part 0's
            }
            staging.flush_if_needed(&chunk, &deps).await.unwrap();
        }
        // Part 0 went out in the first buffer; part 1's flush took it back.
        assert_eq!(staging.tables["s.t"].part.parts, 2);
        assert_eq!(staging.tables["s.t"].buf.as_ptr(), first.unwrap());
        // Part 1's buffer, back once a small table (below a part) flushes,
        // is not given to it: it stays for a table that fills parts.
        let mut small = table();
        small.full_name = "s.small".into();
        staging.push(&small, 9, &[b"{}"]);
        staging.flush("s.small", &chunk, &deps).await.unwrap();
        assert!(staging.spare.as_ref().is_some_and(|b| b.capacity() >= 16));
        staging.settle().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Rows dropped after their parts were written: each part holding one
    /// is written again without it (the first one empty here), the others
    /// are left, and the sizes and count say what is left.
    #[tokio::test]
    async fn dropped_rows_leave_their_parts() {
        let dir = std::env::temp_dir().join(format!("staging-drop-{}", std::process::id()));
        let store = Arc::new(LocalStore::new(&dir));
        let config = PipelineConfig {
            format: OutputFormat::Json,
            part_bytes: 12, // two 9-byte lines a part
            ..Default::default()
        };
        let deps = Deps::new(store.clone(), config, "mysql://u@127.0.0.1:1");
        let chunk = chunk(2);
        let mut staging = Staging::new(&deps);
        for i in 0..5 {
            staging.push(&table(), 9, &[format!("{{\"i\":{i}}}").as_bytes()]);
            staging.flush_if_needed(&chunk, &deps).await.unwrap();
        }
        staging
            .drop_rows("s.t", &[0, 1, 3], &chunk, &deps)
            .await
            .unwrap();
        let part = &staging.tables["s.t"].part;
        assert_eq!((part.count, part.parts), (2, 3));
        assert_eq!(part.sizes, [0, 9, 9]);
        let mut bodies = Vec::new();
        for p in 0..3 {
            let key = deps.layout.staging_part("r", 2, "s.t", p);
            bodies.push(String::from_utf8(store.get(&key).await.unwrap().unwrap().body).unwrap());
        }
        assert_eq!(bodies, ["", ",{\"i\":2}\n", ",{\"i\":4}\n"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Under `parquet`, each table's column lists are recorded as they
    /// change, once per change; other formats record none.
    #[test]
    fn parquet_records_each_tables_columns_as_they_change() {
        use binlog_cdc::decoder::schema::{ColumnKind, ColumnMeta};
        let mut staging = Staging {
            typed: true,
            ..Default::default()
        };
        let mut plain = Staging::default();
        let mut t = table();
        t.columns = vec![ColumnMeta {
            name: "id".into(),
            kind: ColumnKind::Int {
                bytes: 4,
                unsigned: Some(false),
            },
        }];
        let mut wider = t.clone();
        wider.columns.push(ColumnMeta {
            name: "note".into(),
            kind: ColumnKind::Year,
        });
        for meta in [&t, &t, &wider, &wider, &t] {
            staging.push(meta, 9, &[b"{}"]);
            plain.push(meta, 9, &[b"{}"]);
        }
        let layouts = &staging.tables["s.t"].part.layouts;
        let names: Vec<Vec<&str>> = layouts
            .iter()
            .map(|l| l.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["id"], vec!["id", "note"], vec!["id"]]);
        assert!(plain.tables["s.t"].part.layouts.is_empty());
    }
}
