//! FanOutByTable: joins each table's staged parts, in binlog order (chunk by
//! chunk, part by part), into the table's final object and, in the same pass,
//! into the all-tables object. Streaming: one part in memory at a time, each
//! read once and written as it is (parse-chunk stages `json` events with a
//! leading comma, ready to be array elements); objects go out as multipart
//! uploads.
//!
//! Objects (`json` format, the original's shapes):
//! - per table: `{"count": N, "events": [...], "lastTimestamp": T}`
//! - all tables: `{"counts": {...}, "lastTimestamps": {...}, "tables": {"schema.table": [...]}}`
//!
//! In `jsonl` (and `jsonl.gz`) both hold one event per line.

use std::collections::BTreeMap;
use std::io::Write;

use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::{FanOutInput, FanOutOutput, TablePart};
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::ObjectWriter;

/// Writes an object in the configured format, compressing when asked.
struct Emitter {
    out: Box<dyn ObjectWriter>,
    gz: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Emitter {
    async fn new(deps: &Deps, key: &str) -> Result<Self> {
        let gz = (deps.config.format == OutputFormat::JsonlGz)
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        Ok(Self {
            out: deps.store.writer(key).await?,
            gz,
        })
    }

    async fn write(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.gz {
            None => self.out.write(data).await,
            Some(gz) => {
                gz.write_all(data).map_err(|e| Error::io("gzip", e))?;
                if gz.get_ref().len() >= 1 << 20 {
                    let chunk = std::mem::take(gz.get_mut());
                    self.out.write(&chunk).await?;
                }
                Ok(())
            }
        }
    }

    /// Appends the staged object at `key` from byte `skip` on; returns its
    /// size. Uncompressed, the store copies it (kernel-side for a local
    /// directory); gzip reads it through this process.
    async fn append(&mut self, deps: &Deps, key: &str, skip: u64) -> Result<u64> {
        if self.gz.is_none() {
            return self.out.append_object(key, skip).await;
        }
        let obj = deps
            .store
            .get(key)
            .await?
            .ok_or_else(|| binlog_cdc::store::missing(key))?;
        let data = obj.body.get(skip as usize..).unwrap_or_default();
        self.write(data).await?;
        Ok(data.len() as u64)
    }

    async fn finish(mut self) -> Result<()> {
        if let Some(gz) = self.gz.take() {
            let rest = gz.finish().map_err(|e| Error::io("gzip", e))?;
            self.out.write(&rest).await?;
        }
        self.out.finish().await
    }
}

/// The staged parts of `table`, in binlog order.
fn part_keys(input: &FanOutInput, deps: &Deps, table: &str) -> Vec<String> {
    let mut chunks: Vec<_> = input.chunks.iter().collect();
    chunks.sort_by_key(|c| c.index);
    chunks
        .iter()
        .filter_map(|c| c.tables.get(table).map(|t| (c.index, t.parts)))
        .flat_map(|(idx, parts)| {
            (0..parts).map(move |p| deps.layout.staging_part(&input.plan.run_id, idx, table, p))
        })
        .collect()
}

fn json_map<V: serde::Serialize>(m: &BTreeMap<String, V>) -> Result<String> {
    serde_json::to_string(m).map_err(|e| Error::Config(e.to_string()))
}

pub async fn handle(input: FanOutInput, deps: &Deps) -> Result<FanOutOutput> {
    // Every table with events, with its totals across chunks.
    let mut tables: BTreeMap<String, TablePart> = BTreeMap::new();
    for c in &input.chunks {
        for (name, t) in &c.tables {
            let e = tables.entry(name.clone()).or_insert_with(|| TablePart {
                schema: t.schema.clone(),
                table: t.table.clone(),
                ..Default::default()
            });
            e.count += t.count;
            e.bytes += t.bytes;
            e.last_timestamp = e.last_timestamp.max(t.last_timestamp);
        }
    }
    let timestamp = input.chunks.iter().filter_map(|c| c.last_timestamp).max();
    let mut out = FanOutOutput {
        counts: tables.iter().map(|(k, t)| (k.clone(), t.count)).collect(),
        last_timestamps: tables
            .iter()
            .map(|(k, t)| (k.clone(), t.last_timestamp))
            .collect(),
        timestamp,
        ..Default::default()
    };
    let Some(timestamp) = timestamp else {
        return Ok(out); // no row events in the range: no objects
    };
    let run_id = &input.plan.run_id;
    let json = deps.config.format == OutputFormat::Json;

    // One pass over the staged parts: each part, read once, goes to its
    // table's object and to the all-tables object.
    let all_key = deps.layout.all_output(timestamp, run_id);
    let mut all = Emitter::new(deps, &all_key).await?;
    if json {
        let head = format!(
            "{{\"counts\":{},\"lastTimestamps\":{},\"tables\":{{",
            json_map(&out.counts)?,
            json_map(&out.last_timestamps)?
        );
        all.write(head.as_bytes()).await?;
    }
    for (i, (name, t)) in tables.iter().enumerate() {
        let key = deps
            .layout
            .table_output(&t.schema, &t.table, timestamp, run_id);
        let mut em = Emitter::new(deps, &key).await?;
        if json {
            em.write(format!("{{\"count\":{},\"events\":[", t.count).as_bytes())
                .await?;
            let sep = if i > 0 { "," } else { "" };
            all.write(
                format!("{sep}{}:[", serde_json::to_string(name).unwrap_or_default()).as_bytes(),
            )
            .await?;
        }
        // In `json` format every staged line starts with a comma: the
        // table's first event goes without it.
        let mut skip = u64::from(json);
        let mut n = 0u64;
        for part in part_keys(&input, deps, name) {
            n += em.append(deps, &part, skip).await?;
            all.append(deps, &part, skip).await?;
            skip = 0;
        }
        let want = t.bytes.saturating_sub(u64::from(json));
        if n != want {
            return Err(Error::Storage {
                context: key,
                msg: format!("the staged parts hold {n} bytes, the chunks reported {want}"),
                retryable: false,
            });
        }
        if json {
            em.write(format!("],\"lastTimestamp\":{}}}", t.last_timestamp).as_bytes())
                .await?;
            all.write(b"]").await?;
        }
        em.finish().await?;
        tracing::info!(table = %name, key = %key, events = n, "table object written");
        out.outputs.push(key);
    }
    if json {
        all.write(b"}}").await?;
    }
    all.finish().await?;
    out.outputs.push(all_key);
    Ok(out)
}
