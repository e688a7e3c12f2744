//! Pipeline settings: from environment variables (the Lambdas) or flags (the
//! CLI), with defaults that suit a scheduled run.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BUCKET` | (none) | the output bucket (Lambdas) |
//! | `PREFIX` | `` | key prefix for every object, e.g. `cdc/` |
//! | `DATABASE_URL` / `DB_SECRET_ARN` | (one required) | a `mysql://` URL, or a Secrets Manager secret in the RDS format |
//! | `DB_HOST`, `DB_PORT` | (none), 3306 | the database endpoint when the secret has none (an RDS-managed master secret holds only `username` and `password`) |
//! | `ADMIN_DATABASE_URL` / `ADMIN_SECRET_ARN` | the above | init-db only: an account that may change settings and create users |
//! | `DB_TLS` | `off` | `off`, `require` (encrypt, do not verify) or `verify` (verify the server certificate against the built-in web roots and Amazon RDS's root CAs, which the build ships) |
//! | `DB_CA_FILE` | (none) | verify: a PEM file of further CAs to trust (a self-managed server's own CA) |
//! | `CHUNK_BYTES` | 67108864 | files larger than this are split at transaction boundaries |
//! | `SERVER_ID_BASE` | 4170100000 | replication server ids: base and base+1 (planning, done before any chunk starts), base+1+i (chunk i) |
//! | `START_AT` | `oldest` | first run: `oldest` binlog, or `latest` (the current position) |
//! | `OUTPUT_FORMAT` | `json` | `json`, `jsonl`, `jsonl.gz` or `parquet` (per-table objects; the all-tables one `jsonl.gz`) |
//! | `VIEW` | `keys` | `keys`, `new`, `old` or `both` |
//! | `INCLUDE`, `EXCLUDE` | (none) | comma-separated `schema.table` patterns |
//! | `COLUMN_RULES` | (none) | comma-separated `schema.table.column=rule`, rule `exclude`, `hash`, `mask`, `mask(N)` or `truncate(N)`; the first match applies (see `column_rules`) |
//! | `HASH_KEY_SECRET_ARN` | (none) | parse-chunk: the Secrets Manager secret whose `SecretString` keys `hash` rules |
//! | `MAX_BUFFER_BYTES` | 12582912 | parse-chunk: cap on buffered output before parts are flushed |
//! | `PART_BYTES` | 6291456 | parse-chunk: a table's buffer is flushed as a part past this (6 MiB: S3 copies a part of 5 MiB or more itself when fan-out joins them) |
//! | `PARSE_MAX_CONCURRENCY` | 4 | chunks parsed (and fan-out shards joined) at once (the Map states' concurrency) |
//! | `MAX_RUN_BYTES` | 2147483648 | a run plans at most this much binlog from its start; the rest is the next iteration's |
//! | `MAX_RUN_CHUNKS` | 64 | a run plans at most this many chunks (at most 256, so that the plan stays under 64 KiB) |
//! | `FANOUT_SHARD_BYTES` | 1073741824 | fan-out: one call joins tables of at most this many staged bytes (a larger table is a shard alone) |
//! | `FANOUT_SHARD_TABLES` | 1000 | fan-out: one call joins at most this many tables |
//! | `EXECUTION_HISTORY_BUDGET` | 20000 | an execution goes round again only while its history events (an upper bound) stay under this; the quota is 25,000 |

mod database;

pub use database::{url_from_secrets, DbSource, DbTls, Endpoint};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use binlog_decoder::column_rules::{ColumnRules, HashKey};
use binlog_decoder::event::View;

/// Where the first run starts when there is no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Oldest,
    Latest,
}

/// The shape of the per-table and all-tables objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OutputFormat {
    /// `{"count", "events": [...], "lastTimestamp"}`, the original's shape.
    #[default]
    #[serde(rename = "json")]
    Json,
    /// One event per line (Athena, Glue).
    #[serde(rename = "jsonl")]
    Jsonl,
    /// One event per line, gzip-compressed.
    #[serde(rename = "jsonl.gz")]
    JsonlGz,
    /// Per-table objects in typed Parquet (docs/EVENTS.md, *Parquet*); the
    /// all-tables object in `jsonl.gz`.
    #[serde(rename = "parquet")]
    Parquet,
}

impl OutputFormat {
    /// The per-table objects' extension (the format's name).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::JsonlGz => "jsonl.gz",
            OutputFormat::Parquet => "parquet",
        }
    }

    /// The all-tables object's format: an event stream for consumers, so
    /// `jsonl.gz` under `parquet`.
    pub fn all_tables(self) -> Self {
        match self {
            OutputFormat::Parquet => OutputFormat::JsonlGz,
            f => f,
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "json" => Ok(Self::Json),
            "jsonl" => Ok(Self::Jsonl),
            "jsonl.gz" => Ok(Self::JsonlGz),
            "parquet" => Ok(Self::Parquet),
            o => Err(format!(
                "unknown output format {o:?}: expected json, jsonl, jsonl.gz or parquet"
            )),
        }
    }
}

/// Everything that shapes a run's plan and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineConfig {
    pub prefix: String,
    pub chunk_bytes: u64,
    pub server_id_base: u32,
    pub start_at: StartAt,
    pub format: OutputFormat,
    pub view: View,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_buffer_bytes: usize,
    pub part_bytes: usize,
    pub max_concurrency: u32,
    pub max_run_bytes: u64,
    pub max_run_chunks: u32,
    pub shard_bytes: u64,
    pub shard_tables: u32,
    pub history_budget: u32,
    /// Patterns of the tables a first run snapshots (`SNAPSHOT_TABLES`).
    #[serde(default)]
    pub snapshot_tables: Vec<String>,
    /// Rows per snapshot range (`SNAPSHOT_RANGE_ROWS`).
    #[serde(default)]
    pub snapshot_range_rows: u64,
    /// Snapshot ranges per run (`SNAPSHOT_RANGES_PER_RUN`), beside its chunks.
    #[serde(default)]
    pub snapshot_ranges_per_run: u32,
    /// `schema.table.column=rule` entries (`COLUMN_RULES`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub column_rules: Vec<String>,
}

/// The most chunks a run may plan: 256 chunks of ~150 bytes keep the plan,
/// which travels in the execution's state, under 64 KiB (a quarter of Step
/// Functions' 256 KiB payload limit).
pub const MAX_RUN_CHUNKS_LIMIT: u32 = 256;

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            chunk_bytes: 64 << 20,
            server_id_base: 4_170_100_000,
            start_at: StartAt::Oldest,
            format: OutputFormat::Json,
            view: View::Keys,
            include: Vec::new(),
            exclude: Vec::new(),
            max_buffer_bytes: 12 << 20,
            part_bytes: 6 << 20,
            max_concurrency: 4,
            max_run_bytes: 2 << 30,
            max_run_chunks: 64,
            shard_bytes: 1 << 30,
            shard_tables: 1000,
            history_budget: crate::contracts::HISTORY_EVENT_BUDGET,
            snapshot_tables: Vec::new(),
            snapshot_range_rows: 100_000,
            snapshot_ranges_per_run: 8,
            column_rules: Vec::new(),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| Error::Config(format!("{name}={v:?}: {e}"))),
    }
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl PipelineConfig {
    /// History events the largest iteration these settings allow may cost
    /// (every chunk and snapshot range, the most fan-out shards).
    pub fn worst_iteration_history_events(&self) -> u32 {
        crate::contracts::iteration_history_events(
            self.max_run_chunks + self.snapshot_ranges_per_run,
            crate::contracts::MAX_FANOUT_SHARDS,
        )
    }

    /// Reads the settings from the environment (see the module docs).
    pub fn from_env() -> Result<Self> {
        let d = Self::default();
        let start_at = match env("START_AT").as_deref() {
            None | Some("oldest") => StartAt::Oldest,
            Some("latest") => StartAt::Latest,
            Some(o) => {
                return Err(Error::Config(format!(
                    "START_AT={o:?}: expected oldest or latest"
                )))
            }
        };
        let cfg = Self {
            prefix: normalize_prefix(&env("PREFIX").unwrap_or_default()),
            chunk_bytes: parse_env("CHUNK_BYTES", d.chunk_bytes)?,
            server_id_base: parse_env("SERVER_ID_BASE", d.server_id_base)?,
            start_at,
            format: parse_env("OUTPUT_FORMAT", d.format)?,
            view: parse_env("VIEW", d.view)?,
            include: list(env("INCLUDE")),
            exclude: list(env("EXCLUDE")),
            max_buffer_bytes: parse_env("MAX_BUFFER_BYTES", d.max_buffer_bytes)?,
            part_bytes: parse_env("PART_BYTES", d.part_bytes)?,
            max_concurrency: parse_env("PARSE_MAX_CONCURRENCY", d.max_concurrency)?,
            max_run_bytes: parse_env("MAX_RUN_BYTES", d.max_run_bytes)?,
            max_run_chunks: parse_env("MAX_RUN_CHUNKS", d.max_run_chunks)?,
            shard_bytes: parse_env("FANOUT_SHARD_BYTES", d.shard_bytes)?,
            shard_tables: parse_env("FANOUT_SHARD_TABLES", d.shard_tables)?,
            history_budget: parse_env("EXECUTION_HISTORY_BUDGET", d.history_budget)?,
            snapshot_tables: list(env("SNAPSHOT_TABLES")),
            snapshot_range_rows: parse_env("SNAPSHOT_RANGE_ROWS", d.snapshot_range_rows)?,
            snapshot_ranges_per_run: parse_env(
                "SNAPSHOT_RANGES_PER_RUN",
                d.snapshot_ranges_per_run,
            )?,
            column_rules: list(env("COLUMN_RULES")),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The stream's include/exclude filter.
    pub fn table_filter(&self) -> Result<binlog_decoder::filter::TableFilter> {
        binlog_decoder::filter::TableFilter::new(self.include.clone(), self.exclude.clone())
            .map_err(Error::Config)
    }

    pub fn validate(&self) -> Result<()> {
        if self.chunk_bytes < 4096 {
            return Err(Error::Config("CHUNK_BYTES must be at least 4096".into()));
        }
        if self.part_bytes == 0 || self.max_buffer_bytes < self.part_bytes {
            return Err(Error::Config(
                "MAX_BUFFER_BYTES must be at least PART_BYTES, and both above 0".into(),
            ));
        }
        if self.max_concurrency == 0 {
            return Err(Error::Config(
                "PARSE_MAX_CONCURRENCY must be at least 1".into(),
            ));
        }
        if self.max_run_chunks == 0
            || self.max_run_chunks + self.snapshot_ranges_per_run > MAX_RUN_CHUNKS_LIMIT
        {
            return Err(Error::Config(format!(
                "MAX_RUN_CHUNKS must be at least 1, and with SNAPSHOT_RANGES_PER_RUN at most {MAX_RUN_CHUNKS_LIMIT} (the plan travels in the execution's state)"
            )));
        }
        if self.snapshot_range_rows == 0 || self.snapshot_ranges_per_run == 0 {
            return Err(Error::Config(
                "SNAPSHOT_RANGE_ROWS and SNAPSHOT_RANGES_PER_RUN must be above 0".into(),
            ));
        }
        if self.history_budget > crate::contracts::HISTORY_EVENT_BUDGET {
            return Err(Error::Config(format!(
                "EXECUTION_HISTORY_BUDGET must be at most {} (Step Functions' quota is 25,000 events; the rest is room for retries)",
                crate::contracts::HISTORY_EVENT_BUDGET
            )));
        }
        if self.max_run_bytes == 0 || self.shard_bytes == 0 || self.shard_tables == 0 {
            return Err(Error::Config(
                "MAX_RUN_BYTES, FANOUT_SHARD_BYTES and FANOUT_SHARD_TABLES must be above 0".into(),
            ));
        }
        self.table_filter()?;
        ColumnRules::for_planning(&self.column_rules).map_err(Error::Config)?;
        Ok(())
    }

    /// The column rules, `hash` keyed by `key` (see [`ColumnRules::new`]).
    pub fn column_rules(&self, key: Option<HashKey>) -> Result<ColumnRules> {
        ColumnRules::new(&self.column_rules, key).map_err(Error::Config)
    }

    /// What of the settings changes the outputs (for the run id): not the
    /// memory and chunking knobs, which change how, not what.
    pub fn output_fingerprint(&self) -> String {
        let mut f = format!(
            "prefix={}|format={}|view={:?}|include={}|exclude={}",
            self.prefix,
            self.format.extension(),
            self.view,
            self.include.join(","),
            self.exclude.join(",")
        );
        if !self.column_rules.is_empty() {
            f.push_str("|columns=");
            f.push_str(&self.column_rules.join(","));
        }
        f
    }
}

/// `""` stays empty; anything else ends with exactly one `/` and has no leading `/`.
pub fn normalize_prefix(p: &str) -> String {
    let p = p.trim().trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/cdc/"), "cdc/");
        assert_eq!(normalize_prefix("a/b"), "a/b/");
    }
}
