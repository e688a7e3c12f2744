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
use binlog_cdc::store::{ObjectWriter, Source};

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

    /// Appends the staged part `src` from byte `skip` on. Uncompressed, the
    /// store copies it (kernel-side for a local directory, by S3 itself for
    /// large parts); gzip reads it through this process.
    async fn append(&mut self, deps: &Deps, src: &mut Source, skip: u64) -> Result<()> {
        if self.gz.is_none() {
            return self.out.append_object(src, skip).await;
        }
        let body = src.body(deps.store.as_ref()).await?;
        let data = body.get(skip as usize..).unwrap_or_default().to_vec();
        self.write(&data).await
    }

    async fn finish(mut self) -> Result<()> {
        if let Some(gz) = self.gz.take() {
            let rest = gz.finish().map_err(|e| Error::io("gzip", e))?;
            self.out.write(&rest).await?;
        }
        self.out.finish().await
    }
}

/// The staged parts of `table`, in binlog order, with their sizes.
fn parts(input: &FanOutInput, deps: &Deps, table: &str) -> Result<Vec<Source>> {
    let mut chunks: Vec<_> = input.chunks.iter().collect();
    chunks.sort_by_key(|c| c.index);
    let mut out = Vec::new();
    for c in chunks {
        let Some(t) = c.tables.get(table) else {
            continue;
        };
        if t.sizes.len() != t.parts as usize {
            return Err(Error::Storage {
                context: format!("chunk {} of table {table}", c.index),
                msg: format!("{} parts but {} sizes", t.parts, t.sizes.len()),
                retryable: false,
            });
        }
        for (p, size) in t.sizes.iter().enumerate() {
            let key = deps
                .layout
                .staging_part(&input.plan.run_id, c.index, table, p as u32);
            out.push(Source::new(key, *size));
        }
    }
    Ok(out)
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
        for mut part in parts(&input, deps, name)? {
            em.append(deps, &mut part, skip).await?;
            all.append(deps, &mut part, skip).await?;
            skip = 0;
        }
        if json {
            em.write(format!("],\"lastTimestamp\":{}}}", t.last_timestamp).as_bytes())
                .await?;
            all.write(b"]").await?;
        }
        em.finish().await?;
        tracing::info!(table = %name, key = %key, events = t.count, "table object written");
        out.outputs.push(key);
    }
    if json {
        all.write(b"}}").await?;
    }
    all.finish().await?;
    out.outputs.push(all_key);
    Ok(out)
}
