//! `binlog-cdc parse`: a binlog (local files, or a range of a live server's
//! log) decoded into change events, one JSON object per line on stdout, and
//! a summary on stderr.

use std::io::Write;
use std::time::Instant;

use binlog_cdc::decoder;
use binlog_cdc::decoder::filter::TableFilter;
use binlog_cdc::decoder::reader::{DecodeOptions, Decoder, Lines, RowSink, Stats};
use binlog_cdc::decoder::schema::TableMeta;
use binlog_cdc::decoder::server_replay::ServerReplay;
use binlog_cdc::decoder::source::connect::{connect, ConnectOptions};
use binlog_cdc::decoder::source::file::FileSource;
use binlog_cdc::decoder::source::read_ahead::ReadAhead;
use binlog_cdc::decoder::source::server::{self, InformationSchema, ServerSource};
use binlog_cdc::decoder::source::EventSource;
use binlog_cdc::{BinlogPosition, Error, Result};

use crate::args::ParseArgs;

/// Writes each event as a line to stdout through a large buffer.
struct LineSink<W: Write> {
    out: W,
    last_statement: Option<Vec<u8>>,
}

impl<W: Write> LineSink<W> {
    fn line(&mut self, json: &[u8]) -> decoder::Result<()> {
        self.out
            .write_all(json)
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|e| decoder::Error::io("writing to stdout", e))
    }
}

impl<W: Write> RowSink for LineSink<W> {
    fn row(&mut self, _: &TableMeta, _: u32, json: &[u8]) -> decoder::Result<()> {
        self.line(json)
    }

    /// A rows event's rows, newlines and all, in one write.
    fn rows(&mut self, _: &TableMeta, _: u32, lines: Lines<'_>) -> decoder::Result<()> {
        self.out
            .write_all(lines.text())
            .map_err(|e| decoder::Error::io("writing to stdout", e))
    }

    /// A rename kept under both names is printed once.
    fn statement(&mut self, _: &str, _: &str, _: u32, json: &[u8]) -> decoder::Result<()> {
        if self.last_statement.as_deref() == Some(json) {
            return Ok(());
        }
        self.last_statement = Some(json.to_vec());
        self.line(json)
    }
}

pub(crate) async fn parse(args: ParseArgs) -> Result<()> {
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
            let source = ServerSource::open(&db, &from, args.to, args.server_id).await?;
            let mut source = ReadAhead::spawn(source);
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
            let mut source = ReadAhead::spawn(FileSource::new(&args.files));
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
fn finish<W: Write>(res: decoder::Result<()>, sink: &mut LineSink<W>) -> Result<()> {
    let flushed = sink
        .out
        .flush()
        .map_err(|e| decoder::Error::io("writing to stdout", e));
    res?;
    Ok(flushed?)
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
