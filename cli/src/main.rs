//! `binlog-cdc`: the command line.
//!
//! `binlog-cdc parse` decodes a binlog (local files, or a range of a live
//! server's log) into change events, one JSON object per line on stdout, with
//! a summary on stderr. `binlog-cdc run` runs the pipeline in this process;
//! `binlog-cdc status` says where the stream stands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use binlog_cdc::column_rules::{ColumnRules, HashKey};
use binlog_cdc::event::View;
use binlog_cdc::filter::TableFilter;
use binlog_cdc::reader::{DecodeOptions, Decoder, RowSink, Stats};
use binlog_cdc::schema::TableMeta;
use binlog_cdc::source::connect::{connect, ConnectOptions};
use binlog_cdc::source::file::FileSource;
use binlog_cdc::source::replay::ServerReplay;
use binlog_cdc::source::server::{self, InformationSchema, ServerSource};
use binlog_cdc::source::EventSource;
use binlog_cdc::{BinlogPosition, Error, Result};
use clap::{Args, Parser, Subcommand};

/// Serverless change data capture for MySQL and MariaDB binlogs.
#[derive(Parser)]
#[command(name = "binlog-cdc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

/// The database and the store, for `run` and `status`.
#[derive(Args)]
struct Target {
    /// The database: mysql://USER:PASS@HOST:PORT (add ?require_ssl=true for TLS).
    #[arg(
        long,
        value_name = "URL",
        env = "BINLOG_CDC_URL",
        hide_env_values = true
    )]
    url: String,

    /// A CA certificate (PEM) to verify the server against, besides the
    /// built-in web roots and Amazon RDS's root CAs; needs TLS on
    /// (`?require_ssl=true`).
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,

    /// Where outputs and the checkpoint go: a directory, or s3://bucket/prefix
    /// (AWS credentials and AWS_ENDPOINT_URL from the environment).
    #[arg(
        long,
        value_name = "DIR|s3://BUCKET/PREFIX",
        default_value = "binlog-cdc-out"
    )]
    out: String,
}

impl Target {
    fn options(&self) -> ConnectOptions {
        ConnectOptions {
            url: self.url.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    target: Target,

    /// Print the status as one JSON object (for scripts).
    #[arg(long)]
    json: bool,

    /// Unhealthy when the newest committed event is older than this while
    /// there is binlog to read.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    max_lag_seconds: u64,

    /// Unhealthy when less than this share of the retention is left before
    /// the server purges the checkpoint's file.
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0)]
    min_headroom_percent: f64,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,

    /// Replay from here instead of the checkpoint (with --no-commit unless it is the checkpoint).
    #[arg(long, value_name = "FILE:POS")]
    from: Option<BinlogPosition>,

    /// Stop here instead of the server's current position.
    #[arg(long, value_name = "FILE:POS")]
    to: Option<BinlogPosition>,

    /// A replay: write the outputs under `replay/{runId}/`, not their keys,
    /// and do not move the checkpoint.
    #[arg(long)]
    no_commit: bool,

    /// Restart the committed stream here instead of at the checkpoint
    /// (after BinlogHistoryChanged): oldest, latest, FILE:POS, or gtid:STATE
    /// (where another server's binlog goes on after that state: MariaDB's
    /// GTID state, MySQL's executed GTID set).
    #[arg(long, value_name = "oldest|latest|FILE:POS|gtid:STATE")]
    restart_at: Option<binlog_cdc::contracts::RestartAt>,

    /// Snapshot the existing rows of the tables this pattern names (as
    /// --include; repeatable), within the committed stream: each row a
    /// SnapshotRowEvent, ranges read in parallel with the binlog's chunks.
    #[arg(long, value_name = "PATTERN")]
    snapshot: Vec<String>,

    /// Rows per snapshot range.
    #[arg(long, value_name = "N", default_value_t = defaults().snapshot_range_rows)]
    snapshot_range_rows: u64,

    /// Snapshot ranges per run (read beside its binlog chunks).
    #[arg(long, value_name = "N", default_value_t = defaults().snapshot_ranges_per_run)]
    snapshot_ranges_per_run: u32,

    /// Chunks parsed at once (the state machine's Map MaxConcurrency).
    #[arg(long, value_name = "N", default_value_t = defaults().max_concurrency)]
    concurrency: u32,

    /// Files larger than this are split at transaction boundaries.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().chunk_bytes)]
    chunk_bytes: u64,

    /// A run plans at most this much binlog; the rest is the next run's.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().max_run_bytes)]
    max_run_bytes: u64,

    /// A run plans at most this many chunks (at most 256).
    #[arg(long, value_name = "N", default_value_t = defaults().max_run_chunks)]
    max_run_chunks: u32,

    /// Replication server ids: this one to plan, the next ones for chunks.
    #[arg(long, value_name = "N", default_value_t = defaults().server_id_base)]
    server_id_base: u32,

    /// First run without a checkpoint: start at the oldest binlog or the latest position.
    #[arg(long, value_name = "oldest|latest", default_value = "oldest")]
    start_at: String,

    /// Output objects: json (the original's shape), jsonl, or jsonl.gz.
    #[arg(long, value_name = "FORMAT", default_value_t = defaults().format)]
    format: binlog_cdc::config::OutputFormat,

    #[command(flatten)]
    events: EventArgs,
}

#[derive(Args)]
struct ParseArgs {
    /// A local binlog file to decode (repeatable; read in the order given).
    #[arg(long = "file", value_name = "PATH", conflicts_with_all = ["url", "from", "to", "server_id"], required_unless_present = "url")]
    files: Vec<PathBuf>,

    /// A server to read over the replication protocol:
    /// mysql://USER:PASS@HOST:PORT (add ?require_ssl=true for TLS). The user
    /// needs REPLICATION SLAVE, REPLICATION CLIENT and SELECT.
    #[arg(
        long,
        value_name = "URL",
        env = "BINLOG_CDC_URL",
        hide_env_values = true
    )]
    url: Option<String>,

    /// A CA certificate (PEM) to verify the server against, besides the
    /// built-in web roots and Amazon RDS's root CAs; needs TLS on
    /// (`?require_ssl=true`).
    #[arg(long, value_name = "PATH", requires = "url")]
    ca_file: Option<PathBuf>,

    /// Where to start, FILE:POS (an event boundary; a transaction boundary to
    /// decode every row). Default: the start of the oldest binlog on the server.
    #[arg(long, value_name = "FILE:POS", requires = "url")]
    from: Option<BinlogPosition>,

    /// Where to stop, FILE:POS, exclusive (an event boundary). Default: the
    /// end of the log when the read starts.
    #[arg(long, value_name = "FILE:POS", requires = "url")]
    to: Option<BinlogPosition>,

    /// The replication server id this reader uses (unique among the server's
    /// replicas and readers; two readers with one id cut each other off).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4_170_000_001,
        requires = "url"
    )]
    server_id: u32,

    #[command(flatten)]
    events: EventArgs,
}

/// What goes into each event, for parse and run alike.
#[derive(Args)]
struct EventArgs {
    /// Which row images each event carries: keys (keys, and the delta of
    /// updates), new (plus newImage), old (plus oldImage), both.
    #[arg(long, value_name = "VIEW", default_value = "keys", value_parser = parse_view)]
    view: View,

    /// Keep only tables matching this schema.table pattern (`*` matches any
    /// characters; repeatable).
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,

    /// Drop tables matching this schema.table pattern (repeatable; wins over --include).
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,

    /// What a column's values become: `schema.table.column=RULE` (`*` as in
    /// --include), RULE exclude, hash, mask, mask(N) or truncate(N); the
    /// first that matches a column applies (repeatable; see docs/EVENTS.md).
    #[arg(long = "column-rule", value_name = "PATTERN=RULE")]
    column_rules: Vec<String>,

    /// The key of hash rules: this file's contents (a final newline dropped).
    #[arg(long, value_name = "FILE", conflicts_with = "hash_key_secret")]
    hash_key_file: Option<std::path::PathBuf>,

    /// The key of hash rules: this Secrets Manager secret's SecretString (as
    /// the stack's parse-chunk reads it).
    #[arg(long, value_name = "ARN")]
    hash_key_secret: Option<String>,
}

impl EventArgs {
    /// The key of hash rules, from --hash-key-file or --hash-key-secret.
    async fn hash_key(&self) -> Result<Option<HashKey>> {
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
    async fn column_rules(&self) -> Result<ColumnRules> {
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

/// Writes each event as a line to stdout through a large buffer.
struct LineSink<W: Write> {
    out: W,
    last_statement: Option<Vec<u8>>,
}

impl<W: Write> LineSink<W> {
    fn line(&mut self, json: &[u8]) -> Result<()> {
        self.out
            .write_all(json)
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|e| Error::io("writing to stdout", e))
    }
}

impl<W: Write> RowSink for LineSink<W> {
    fn row(&mut self, _: &TableMeta, _: u32, json: &[u8]) -> Result<()> {
        self.line(json)
    }

    /// A rename kept under both names is printed once.
    fn statement(&mut self, _: &str, _: &str, _: u32, json: &[u8]) -> Result<()> {
        if self.last_statement.as_deref() == Some(json) {
            return Ok(());
        }
        self.last_statement = Some(json.to_vec());
        self.line(json)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BINLOG_CDC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // parse decodes on one core; run's file I/O may use the blocking pool
    // while a chunk decodes.
    let runtime = match &cli.command {
        Command::Parse(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Run(_) | Command::Status(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("binlog-cdc: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Parse(args) => runtime.block_on(parse(args)),
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Status(args) => match runtime.block_on(status(args)) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("binlog-cdc: error [{}]: {e}", e.name());
            ExitCode::FAILURE
        }
    }
}

async fn parse(args: ParseArgs) -> Result<()> {
    let rules = args.events.column_rules().await?;
    let filter =
        TableFilter::new(args.events.include, args.events.exclude).map_err(Error::Config)?;
    let opts = DecodeOptions {
        view: args.events.view,
        filter,
        rules,
    };
    let started = Instant::now();
    let stdout = std::io::stdout().lock();
    let mut sink = LineSink {
        out: std::io::BufWriter::with_capacity(256 * 1024, stdout),
        last_statement: None,
    };
    let (stats, bytes) = match args.url {
        Some(url) => {
            let db = ConnectOptions {
                url,
                ca_file: args.ca_file,
            };
            let from = match args.from {
                Some(f) => f,
                None => {
                    let mut conn = connect(&db).await?;
                    let files = server::list_binlogs(&mut conn).await?;
                    let first = files
                        .first()
                        .ok_or_else(|| Error::Config("the server lists no binary logs".into()))?;
                    BinlogPosition::start_of(first.0.clone())
                }
            };
            let mut source = ServerSource::open(&db, &from, args.to, args.server_id).await?;
            let lookup = InformationSchema::connect(&db).await?;
            let replay = ServerReplay::new(&db);
            let mut decoder = Decoder::new(opts)
                .with_lookup(Box::new(lookup))
                .with_definitions(Box::new(replay), None);
            let res = decoder.run(&mut source, &mut sink).await;
            finish(res, &mut sink)?;
            (decoder.stats().clone(), source.bytes_read())
        }
        None => {
            let mut source = FileSource::new(&args.files);
            let mut decoder = Decoder::new(opts);
            let res = decoder.run(&mut source, &mut sink).await;
            finish(res, &mut sink)?;
            (decoder.stats().clone(), source.bytes_read())
        }
    };
    summary(&stats, bytes, started.elapsed().as_secs_f64());
    Ok(())
}

/// Flushes what was decoded; on an error, the events before it are still written.
fn finish<W: Write>(res: Result<()>, sink: &mut LineSink<W>) -> Result<()> {
    let flushed = sink
        .out
        .flush()
        .map_err(|e| Error::io("writing to stdout", e));
    res?;
    flushed
}

fn summary(stats: &Stats, bytes: u64, secs: f64) {
    let rows = stats.total_rows();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "binlog-cdc parse: {rows} row events from {} events, {bytes} bytes, in {secs:.3} s ({:.0} rows/s)",
        stats.events,
        rows as f64 / secs.max(1e-9)
    );
    for (table, kinds) in &stats.rows {
        let parts: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let _ = writeln!(err, "  {table}: {}", parts.join(", "));
    }
    if stats.filtered_rows_events > 0 {
        let _ = writeln!(
            err,
            "  rows events skipped by the table filter: {}",
            stats.filtered_rows_events
        );
    }
    for (kind, n) in &stats.statements {
        let _ = writeln!(err, "  SchemaChangeEvent {}: {n}", kind.name());
    }
    if stats.skipped_statements > 0 {
        let _ = writeln!(
            err,
            "  statements about no table (users, grants, views, ...): {} skipped, not written",
            stats.skipped_statements
        );
    }
    for (t, n) in &stats.unknown_events {
        let _ = writeln!(err, "  unknown event type {t}: {n} skipped");
    }
}

/// What `binlog-cdc run` prints: the runs it made, and their totals (the
/// range from the first run's start to the last run's end).
fn run_report(
    iterations: &[pipeline_driver::Iteration],
    store: &str,
    elapsed: std::time::Duration,
) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut statements = binlog_cdc::contracts::StatementCounts::default();
    let mut outputs = Vec::new();
    let mut steps = [0f64; 4];
    let runs: Vec<serde_json::Value> = iterations
        .iter()
        .map(|it| {
            for (t, n) in &it.counts {
                *counts.entry(t.clone()).or_default() += n;
            }
            statements.add(&it.statements);
            outputs.extend(it.outputs.iter().cloned());
            let s = &it.steps;
            let secs = [
                s.list_binlogs,
                s.parse_chunks,
                s.fan_out,
                s.commit_checkpoint,
            ];
            for (total, d) in steps.iter_mut().zip(secs) {
                *total += d.as_secs_f64();
            }
            let p = &it.plan;
            serde_json::json!({
                "status": p.status, "runId": p.run_id, "from": p.from, "to": p.to,
                "chunks": p.chunks.len(), "reason": p.reason,
                "committed": it.commit.as_ref().map(|c| c.committed),
                "progress": it.commit.as_ref().map(|c| c.progress),
                "counts": it.counts, "statements": it.statements,
            })
        })
        .collect();
    let first = iterations.first().map(|it| &it.plan);
    let last = iterations.last().map(|it| &it.plan);
    serde_json::json!({
        "status": last.map(|p| p.status), "from": first.and_then(|p| p.from.clone()),
        "to": last.and_then(|p| p.to.clone()),
        "chunks": iterations.iter().map(|it| it.plan.chunks.len()).sum::<usize>(),
        "committed": iterations.iter().any(|it| it.commit.as_ref().is_some_and(|c| c.committed)),
        "counts": counts, "statements": statements, "outputs": outputs, "runs": runs, "store": store,
        "seconds": elapsed.as_secs_f64(),
        "stepSeconds": {
            "listBinlogs": steps[0], "parseChunks": steps[1], "fanOut": steps[2], "commitCheckpoint": steps[3],
        },
    })
}

/// Prints the status; `Ok(healthy)`.
async fn status(args: StatusArgs) -> Result<bool> {
    use binlog_cdc::config::PipelineConfig;
    use binlog_cdc::pipeline::Deps;
    use pipeline_driver::status::Thresholds;

    let (store, prefix) = open_store(&args.target.out).await;
    // Its own replication server id, below the pipeline's: a server drops an
    // older dump when another connects with the same id, and status may run
    // while a scheduled run plans.
    let defaults = PipelineConfig::default();
    let config = PipelineConfig {
        prefix: binlog_cdc::config::normalize_prefix(&prefix),
        server_id_base: defaults.server_id_base - 1,
        ..defaults
    };
    let deps = Deps::new(store, config, args.target.options());
    let limits = Thresholds {
        max_lag_seconds: args.max_lag_seconds,
        min_headroom_percent: args.min_headroom_percent,
    };
    let st = pipeline_driver::status::status(&deps, limits).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
    } else {
        print_status(&st);
    }
    Ok(st.healthy)
}

fn print_status(st: &pipeline_driver::status::Status) {
    let or = |v: Option<String>, none: &str| v.unwrap_or_else(|| none.to_string());
    println!("{}", if st.healthy { "healthy" } else { "UNHEALTHY" });
    for p in &st.problems {
        println!("  {p}");
    }
    println!(
        "checkpoint          {}",
        or(
            st.checkpoint.as_ref().map(|c| c.to_string()),
            "(none: no run committed yet)"
        )
    );
    if let Some(r) = &st.last_run {
        let tables = if r.tables == 1 { "table" } else { "tables" };
        println!(
            "last run            {} at {}: {} events in {} {tables}",
            r.run_id, r.committed_at, r.events, r.tables
        );
    }
    println!(
        "lag                 {}",
        or(
            st.lag_seconds
                .map(|s| format!("{s} s (newest committed event)")),
            "-"
        )
    );
    println!(
        "bytes behind        {}",
        or(st.behind_bytes.map(|b| b.to_string()), "-")
    );
    println!(
        "retention headroom  {}",
        or(
            st.retention_headroom
                .map(|h| format!("{} s ({:.0}% of the retention)", h.seconds, h.percent)),
            "- (no time limit, or no recorded history)"
        )
    );
    println!(
        "schema history      {} ({} tables)",
        st.schema_history.location, st.schema_history.tables
    );
    if let Some(s) = &st.snapshot {
        println!(
            "snapshot            {}: {} of {} tables, {} ranges{}",
            s.id,
            s.tables_done,
            s.tables,
            s.ranges,
            if s.done() { ", done" } else { ", going on" }
        );
    }
    match &st.next_run {
        Some(n) => println!(
            "next run            {} .. {} in {} chunks{}",
            or(n.from.as_ref().map(|p| p.to_string()), "?"),
            or(n.to.as_ref().map(|p| p.to_string()), "?"),
            n.chunks,
            if n.more { ", then more (budget)" } else { "" }
        ),
        None => println!("next run            nothing to read"),
    }
}

/// The store `--out` names, and its key prefix.
async fn open_store(out: &str) -> (std::sync::Arc<dyn binlog_cdc::store::ObjectStore>, String) {
    use binlog_cdc::store::{local::LocalStore, s3::S3Store};
    use std::sync::Arc;
    match out.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let sdk = binlog_cdc::aws::sdk_config().await;
            (
                Arc::new(S3Store::new(binlog_cdc::aws::s3_client(&sdk), bucket)),
                prefix.to_string(),
            )
        }
        None => (Arc::new(LocalStore::new(out)), String::new()),
    }
}

async fn run(args: RunArgs) -> Result<()> {
    use binlog_cdc::config::{PipelineConfig, StartAt};
    use binlog_cdc::contracts::RunInput;
    use binlog_cdc::pipeline::Deps;

    let (store, prefix) = open_store(&args.target.out).await;
    let hash_key = args.events.hash_key().await?;
    let config = PipelineConfig {
        prefix: binlog_cdc::config::normalize_prefix(&prefix),
        chunk_bytes: args.chunk_bytes,
        max_run_bytes: args.max_run_bytes,
        max_run_chunks: args.max_run_chunks,
        server_id_base: args.server_id_base,
        start_at: match args.start_at.as_str() {
            "oldest" => StartAt::Oldest,
            "latest" => StartAt::Latest,
            o => {
                return Err(Error::Config(format!(
                    "--start-at {o:?}: expected oldest or latest"
                )))
            }
        },
        format: args.format,
        view: args.events.view,
        include: args.events.include,
        exclude: args.events.exclude,
        column_rules: args.events.column_rules,
        max_concurrency: args.concurrency.max(1),
        snapshot_range_rows: args.snapshot_range_rows,
        snapshot_ranges_per_run: args.snapshot_ranges_per_run,
        ..Default::default()
    };
    config.validate()?;
    let mut deps = Deps::new(store, config, args.target.options());
    deps.column_rules_keyed(hash_key).await?;
    let started = Instant::now();
    let input = RunInput {
        from: args.from,
        to: args.to,
        commit: args.no_commit.then_some(false),
        restart_at: args.restart_at,
        snapshot: (!args.snapshot.is_empty()).then_some(args.snapshot),
    };
    let iterations = pipeline_driver::run_until_caught_up(&deps, input).await?;
    let report = run_report(&iterations, &deps.store.describe(), started.elapsed());
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
