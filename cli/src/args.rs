//! The command line's arguments: each subcommand's flags, and what they
//! read (the hash key, the column rules, the connection options).

use std::path::PathBuf;

use binlog_cdc::decoder::column_rules::{ColumnRules, HashKey};
use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::source::connect::ConnectOptions;
use binlog_cdc::{BinlogPosition, Error, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "binlog-cdc", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Decode a binlog into change events: one JSON object per line on stdout,
    /// in binlog order, and a summary on stderr.
    ///
    /// Read local files with --file, or a live server with --url and --from.
    Parse(ParseArgs),
    /// Run the pipeline in this process until caught up: plan from the
    /// checkpoint within the run budget, parse the chunks (concurrently),
    /// write per-table and all-tables objects, commit meta.json, and go
    /// round again while a run stopped at its budget; the same handlers the
    /// Lambdas run.
    Run(RunArgs),
    /// Where the stream stands: the checkpoint, the last run, lag, bytes
    /// behind, retention headroom and what the next run would plan (nothing
    /// is written). Exit 0 when healthy, 1 with named reasons when not.
    Status(StatusArgs),
    /// Print the SQL that returns a table's current rows from its `parquet`
    /// objects (DuckDB by default; Athena with --source naming its table):
    /// the consumer's rule of docs/EVENTS.md, generated from the table's
    /// statements, so run it again after the table's next one.
    CurrentRows(CurrentRowsArgs),
}

#[derive(Args)]
pub(crate) struct CurrentRowsArgs {
    /// The table, as schema.table.
    #[arg(value_name = "SCHEMA.TABLE")]
    pub(crate) table: String,

    /// Where the outputs are: a directory, or s3://bucket/prefix.
    #[arg(
        long,
        value_name = "DIR|s3://BUCKET/PREFIX",
        default_value = "binlog-cdc-out"
    )]
    pub(crate) out: String,

    /// The SQL relation of the table's events; by default DuckDB's
    /// read_parquet over its objects under --out.
    #[arg(long, value_name = "SQL")]
    pub(crate) source: Option<String>,
}

/// The database and the store, for `run` and `status`.
#[derive(Args)]
pub(crate) struct Target {
    /// The database: mysql://USER:PASS@HOST:PORT (add ?require_ssl=true for TLS).
    #[arg(
        long,
        value_name = "URL",
        env = "BINLOG_CDC_URL",
        hide_env_values = true
    )]
    pub(crate) url: String,

    /// A CA certificate (PEM) to verify the server against, besides the
    /// built-in web roots and Amazon RDS's root CAs; needs TLS on
    /// (`?require_ssl=true`).
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,

    /// Where outputs and the checkpoint go: a directory, or s3://bucket/prefix
    /// (AWS credentials and AWS_ENDPOINT_URL from the environment).
    #[arg(
        long,
        value_name = "DIR|s3://BUCKET/PREFIX",
        default_value = "binlog-cdc-out"
    )]
    pub(crate) out: String,
}

impl Target {
    pub(crate) fn options(&self) -> ConnectOptions {
        ConnectOptions {
            url: self.url.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Print the status as one JSON object (for scripts).
    #[arg(long)]
    pub(crate) json: bool,

    /// Unhealthy when the newest committed event is older than this while
    /// there is binlog to read.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub(crate) max_lag_seconds: u64,

    /// Unhealthy when less than this share of the retention is left before
    /// the server purges the checkpoint's file.
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0)]
    pub(crate) min_headroom_percent: f64,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Replay from here instead of the checkpoint (with --no-commit unless it is the checkpoint).
    #[arg(long, value_name = "FILE:POS")]
    pub(crate) from: Option<BinlogPosition>,

    /// Stop here instead of the server's current position.
    #[arg(long, value_name = "FILE:POS")]
    pub(crate) to: Option<BinlogPosition>,

    /// A replay: write the outputs under `replay/{runId}/`, not their keys,
    /// and do not move the checkpoint.
    #[arg(long)]
    pub(crate) no_commit: bool,

    /// Restart the committed stream here instead of at the checkpoint
    /// (after BinlogHistoryChanged): oldest, latest, FILE:POS, or gtid:STATE
    /// (where another server's binlog goes on after that state: MariaDB's
    /// GTID state, MySQL's executed GTID set).
    #[arg(long, value_name = "oldest|latest|FILE:POS|gtid:STATE")]
    pub(crate) restart_at: Option<binlog_cdc::contracts::RestartAt>,

    /// Snapshot the existing rows of the tables this pattern names (as
    /// --include; repeatable), within the committed stream: each row a
    /// SnapshotRowEvent, ranges read in parallel with the binlog's chunks.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) snapshot: Vec<String>,

    /// Rows per snapshot range.
    #[arg(long, value_name = "N", default_value_t = defaults().snapshot_range_rows)]
    pub(crate) snapshot_range_rows: u64,

    /// Snapshot ranges per run (read beside its binlog chunks).
    #[arg(long, value_name = "N", default_value_t = defaults().snapshot_ranges_per_run)]
    pub(crate) snapshot_ranges_per_run: u32,

    /// Chunks parsed at once (the state machine's Map MaxConcurrency).
    #[arg(long, value_name = "N", default_value_t = defaults().max_concurrency)]
    pub(crate) concurrency: u32,

    /// Files larger than this are split at transaction boundaries.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().chunk_bytes)]
    pub(crate) chunk_bytes: u64,

    /// A run plans at most this much binlog; the rest is the next run's.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().max_run_bytes)]
    pub(crate) max_run_bytes: u64,

    /// A run plans at most this many chunks (at most 256).
    #[arg(long, value_name = "N", default_value_t = defaults().max_run_chunks)]
    pub(crate) max_run_chunks: u32,

    /// Replication server ids: this one to plan, the next ones for chunks.
    #[arg(long, value_name = "N", default_value_t = defaults().server_id_base)]
    pub(crate) server_id_base: u32,

    /// First run without a checkpoint: start at the oldest binlog or the latest position.
    #[arg(long, value_name = "oldest|latest", default_value = "oldest")]
    pub(crate) start_at: String,

    /// Output objects: json (the original's shape), jsonl, jsonl.gz, or parquet
    /// (typed per-table objects; the all-tables one in jsonl.gz).
    #[arg(long, value_name = "FORMAT", default_value_t = defaults().format)]
    pub(crate) format: binlog_cdc::config::OutputFormat,

    /// With --format parquet and --out s3://...: keep a Glue table per
    /// source table in this Glue database, as the stack's GlueTables does.
    #[arg(long, value_name = "DATABASE")]
    pub(crate) glue_database: Option<String>,

    #[command(flatten)]
    pub(crate) events: EventArgs,
}

#[derive(Args)]
pub(crate) struct ParseArgs {
    /// A local binlog file to decode (repeatable; read in the order given).
    #[arg(long = "file", value_name = "PATH", conflicts_with_all = ["url", "from", "to", "server_id"], required_unless_present = "url")]
    pub(crate) files: Vec<PathBuf>,

    /// A server to read over the replication protocol:
    /// mysql://USER:PASS@HOST:PORT (add ?require_ssl=true for TLS). The user
    /// needs REPLICATION SLAVE, REPLICATION CLIENT and SELECT.
    #[arg(
        long,
        value_name = "URL",
        env = "BINLOG_CDC_URL",
        hide_env_values = true
    )]
    pub(crate) url: Option<String>,

    /// A CA certificate (PEM) to verify the server against, besides the
    /// built-in web roots and Amazon RDS's root CAs; needs TLS on
    /// (`?require_ssl=true`).
    #[arg(long, value_name = "PATH", requires = "url")]
    pub(crate) ca_file: Option<PathBuf>,

    /// Where to start, FILE:POS (an event boundary; a transaction boundary to
    /// decode every row). Default: the start of the oldest binlog on the server.
    #[arg(long, value_name = "FILE:POS", requires = "url")]
    pub(crate) from: Option<BinlogPosition>,

    /// Where to stop, FILE:POS, exclusive (an event boundary). Default: the
    /// end of the log when the read starts.
    #[arg(long, value_name = "FILE:POS", requires = "url")]
    pub(crate) to: Option<BinlogPosition>,

    /// The replication server id this reader uses (unique among the server's
    /// replicas and readers; two readers with one id cut each other off).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4_170_000_001,
        requires = "url"
    )]
    pub(crate) server_id: u32,

    #[command(flatten)]
    pub(crate) events: EventArgs,
}

/// What goes into each event, for parse and run alike.
#[derive(Args)]
pub(crate) struct EventArgs {
    /// Which row images each event carries: keys (keys, and the delta of
    /// updates), new (plus newImage), old (plus oldImage), both.
    #[arg(long, value_name = "VIEW", default_value = "keys", value_parser = parse_view)]
    pub(crate) view: View,

    /// Keep only tables matching this schema.table pattern (`*` matches any
    /// characters; repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub(crate) include: Vec<String>,

    /// Drop tables matching this schema.table pattern (repeatable; wins over --include).
    #[arg(long, value_name = "PATTERN")]
    pub(crate) exclude: Vec<String>,

    /// What a column's values become: `schema.table.column=RULE` (`*` as in
    /// --include), RULE exclude, hash, mask, mask(N) or truncate(N); the
    /// first that matches a column applies (repeatable; see docs/EVENTS.md).
    #[arg(long = "column-rule", value_name = "PATTERN=RULE")]
    pub(crate) column_rules: Vec<String>,

    /// The key of hash rules: this file's contents (a final newline dropped).
    #[arg(long, value_name = "FILE", conflicts_with = "hash_key_secret")]
    pub(crate) hash_key_file: Option<std::path::PathBuf>,

    /// The key of hash rules: this Secrets Manager secret's SecretString (as
    /// the stack's parse-chunk reads it).
    #[arg(long, value_name = "ARN")]
    pub(crate) hash_key_secret: Option<String>,
}

impl EventArgs {
    /// The key of hash rules, from --hash-key-file or --hash-key-secret.
    pub(crate) async fn hash_key(&self) -> Result<Option<HashKey>> {
        match (&self.hash_key_file, &self.hash_key_secret) {
            (Some(path), _) => {
                let text = std::fs::read(path).map_err(|e| {
                    Error::Config(format!("--hash-key-file {}: {e}", path.display()))
                })?;
                let text = text.strip_suffix(b"\n").unwrap_or(&text);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                HashKey::new(text).map(Some).map_err(Error::Config)
            }
            (None, Some(arn)) => binlog_cdc::aws::hash_key(arn).await.map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The column rules, hash keyed.
    pub(crate) async fn column_rules(&self) -> Result<ColumnRules> {
        ColumnRules::new(&self.column_rules, self.hash_key().await?).map_err(Error::Config)
    }
}

/// The pipeline's defaults, which the flags of `run` take as theirs.
fn defaults() -> binlog_cdc::config::PipelineConfig {
    binlog_cdc::config::PipelineConfig::default()
}

fn parse_view(s: &str) -> std::result::Result<View, String> {
    s.parse()
}
