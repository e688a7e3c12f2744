//! Writes one line-format output object (a table's, or the all-tables
//! one, which is `jsonl.gz` under `parquet`): plain, or gzip (compressed
//! here, in pieces of 1 MiB), counting the bytes it stored.

use std::io::Write;

use binlog_cdc::config::OutputFormat;
use binlog_cdc::contracts::TableTotals;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{ObjectWriter, Source};

pub struct Emitter {
    out: Box<dyn ObjectWriter>,
    gz: Option<flate2::write::GzEncoder<Vec<u8>>>,
    /// Bytes handed to the store so far (compressed, for gzip).
    stored: u64,
}

impl Emitter {
    /// An object in the run's format (gzip for `jsonl.gz`, and for the
    /// all-tables object under `parquet`).
    pub async fn new(deps: &Deps, key: &str) -> Result<Self> {
        let gz = (deps.config.format.all_tables() == OutputFormat::JsonlGz)
            .then(|| flate2::write::GzEncoder::new(Vec::new(), level(deps.config.format)));
        Self::with(deps, key, gz).await
    }

    /// An object of bytes that are already in their final form: objects
    /// joined as they are (gzip streams join into one).
    pub async fn joining(deps: &Deps, key: &str) -> Result<Self> {
        Self::with(deps, key, None).await
    }

    async fn with(
        deps: &Deps,
        key: &str,
        gz: Option<flate2::write::GzEncoder<Vec<u8>>>,
    ) -> Result<Self> {
        Ok(Self {
            out: deps.store.writer(key).await?,
            gz,
            stored: 0,
        })
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(gz) = &mut self.gz else {
            self.stored += data.len() as u64;
            return self.out.write(data).await;
        };
        gz.write_all(data)
            .map_err(|e| Error::storage_from("gzip", e, true))?;
        if gz.get_ref().len() >= 1 << 20 {
            let piece = std::mem::take(gz.get_mut());
            self.stored += piece.len() as u64;
            self.out.write(&piece).await?;
        }
        Ok(())
    }

    /// Appends the staged part `src` from byte `skip` on. Uncompressed, the
    /// store copies it (kernel-side for a local directory, by S3 itself for
    /// large parts); gzip reads it through this process.
    pub async fn append(&mut self, deps: &Deps, src: &mut Source, skip: u64) -> Result<()> {
        if self.gz.is_none() {
            self.stored += src.size.saturating_sub(skip);
            return self.out.append_object(src, skip).await;
        }
        let body = src.body(deps.store.as_ref()).await?;
        self.write(body.get(skip as usize..).unwrap_or_default())
            .await
    }

    /// Completes the object; returns its size.
    pub async fn finish(mut self) -> Result<u64> {
        if let Some(gz) = self.gz.take() {
            let rest = gz
                .finish()
                .map_err(|e| Error::storage_from("gzip", e, true))?;
            self.stored += rest.len() as u64;
            self.out.write(&rest).await?;
        }
        self.out.finish().await?;
        Ok(self.stored)
    }
}

/// gzip's level: the default (6) for `jsonl.gz`; 1 for the all-tables
/// object under `parquet`, an event stream beside the typed objects, where
/// level 6 took half the run's time (`run --format parquet`, bench, perf)
/// for about a fifth fewer bytes.
fn level(format: OutputFormat) -> flate2::Compression {
    match format {
        OutputFormat::Parquet => flate2::Compression::fast(),
        _ => flate2::Compression::default(),
    }
}

/// The `json` all-tables object's head: `{"counts":{...},"lastTimestamps":{...},"tables":{`.
pub fn all_tables_head(tables: &[TableTotals]) -> Result<String> {
    let counts: serde_json::Map<String, serde_json::Value> = tables
        .iter()
        .map(|t| (t.name.clone(), t.count.into()))
        .collect();
    let last: serde_json::Map<String, serde_json::Value> = tables
        .iter()
        .map(|t| (t.name.clone(), t.last_timestamp.into()))
        .collect();
    let enc = |m| serde_json::to_string(&m).map_err(|e| Error::encode("the tables' counts", e));
    Ok(format!(
        "{{\"counts\":{},\"lastTimestamps\":{},\"tables\":{{",
        enc(counts)?,
        enc(last)?
    ))
}
