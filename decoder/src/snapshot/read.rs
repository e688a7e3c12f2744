//! The snapshot's work on the server: which tables, where each range of a
//! table ends (walking the primary key), and reading one range so that it
//! is ordered against the binlog (see the module map in `snapshot`).

use std::collections::HashSet;

use mysql_async::prelude::*;
use mysql_async::{Conn, Params};
use mysql_common::value::Value;

use super::columns::{from_table, quote, SnapshotTable};
use super::encode;
use super::keys::{range_condition, KeyRange};
use super::listing::{connect, describe};
use crate::column_rules::ColumnRules;
use crate::decode::RowImage;
use crate::error::{server_codes, Error, Result};
use crate::event::{EventWriter, RowKind, RowRef, View};
use crate::filter::{TableFilter, SIGNAL_SCHEMA};
use crate::position::BinlogPosition;
use crate::reader::{DecodeOptions, Decoder, RowSink, EVERY_TABLE};
use crate::schema::TableMeta;
use crate::source::connect::ConnectOptions;
use crate::source::server::{self, InformationSchema, ServerSource};
use crate::source::EventSource;

/// The table each range writes its low watermark into (see [`read_range`]).
pub const SIGNAL_TABLE: &str = "snapshot_signal";

/// Where a range's rows go as they are read: one event line each (given in
/// pieces, without a newline), in key order.
pub trait RangeSink {
    fn row(
        &mut self,
        table: &TableMeta,
        pieces: &[&[u8]],
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

/// Collects the lines (for tests and small reads).
impl RangeSink for Vec<Vec<u8>> {
    fn row(
        &mut self,
        _table: &TableMeta,
        pieces: &[&[u8]],
    ) -> impl std::future::Future<Output = Result<()>> + Send {
        self.push(pieces.concat());
        std::future::ready(Ok(()))
    }
}

/// What reading one range gave, once its rows went to the sink.
#[derive(Debug)]
pub struct RangeRead {
    pub table: TableMeta,
    /// The range's low watermark: the position of its own write to the
    /// signal table, which no change event shares. Every row is written at
    /// it.
    pub position: BinlogPosition,
    /// Rows read (each given to the sink, `index` 0, 1, ... in key order).
    pub read: u64,
    /// The indexes of the rows the binlog changed while the range was read:
    /// the caller must drop them from what it was given (rarely any: only
    /// keys written during the SELECT).
    pub superseded: Vec<u64>,
    /// The table's `SHOW CREATE TABLE`, read inside the range's window (a
    /// statement on the table in the window fails the range): its
    /// definition at `position`.
    pub create_table: String,
}

impl RangeRead {
    /// How many rows the range emits.
    pub fn len(&self) -> u64 {
        self.read - self.superseded.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rest of every event of a range, from its `position` field on.
fn tail(table: &TableMeta, position: &BinlogPosition, timestamp: u32) -> Vec<u8> {
    let position = position.to_string();
    let mut out = Vec::new();
    EventWriter::write_tail(
        &snapshot_row(table, &position, timestamp, 0, None),
        &mut out,
    );
    out
}

fn snapshot_row<'a>(
    table: &'a TableMeta,
    position: &'a str,
    timestamp: u32,
    index: u32,
    after: Option<&'a RowImage>,
) -> RowRef<'a> {
    RowRef {
        table,
        kind: RowKind::Snapshot,
        timestamp,
        position,
        index,
        gtid: None,
        before: None,
        after,
    }
}

/// Each selected row's key (a JSON array of its key columns, in key order),
/// back to back: a few bytes a row, kept until the binlog window is read.
#[derive(Default)]
struct Keys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Keys {
    fn push(&mut self, t: &TableMeta, img: &RowImage) {
        self.bytes.push(b'[');
        for (n, &i) in t.primary_key.iter().enumerate() {
            if n > 0 {
                self.bytes.push(b',');
            }
            self.bytes.extend_from_slice(img.get(i).unwrap_or(b"null"));
        }
        self.bytes.push(b']');
        self.ends.push(self.bytes.len());
    }

    /// Row `i`'s key as comparable text: parsed and printed again, so the
    /// binlog's text and the query's compare equal.
    fn get(&self, i: usize) -> Option<String> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let v: serde_json::Value = serde_json::from_slice(&self.bytes[start..self.ends[i]]).ok()?;
        Some(v.to_string())
    }

    /// The rows whose key is in `changed`.
    fn superseded(&self, changed: &HashSet<String>) -> Vec<u64> {
        if changed.is_empty() {
            return Vec::new();
        }
        (0..self.ends.len())
            .filter(|&i| self.get(i).is_some_and(|k| changed.contains(&k)))
            .map(|i| i as u64)
            .collect()
    }
}

/// Reads one range into `sink`, ordered against the binlog without locks:
///
/// 1. `low` = the server's position; then the low watermark, a write to the
///    signal table, committed, and `low_end` = the position after it.
///    Commits are ordered as the binlog is (MariaDB always; MySQL with
///    `binlog_order_commits`, checked), so every transaction before `low` is
///    visible to what follows. The binlog `[low, low_end)` says where the
///    low watermark is: the rows' position.
/// 2. One SELECT of the range (one statement: one consistent read), each
///    row written to `sink` as it arrives, at the low watermark's position.
/// 3. The high watermark, a write with a mark of its own, then `high` = the
///    server's position: every transaction the SELECT saw is before the
///    high watermark.
/// 4. The binlog `[low, high)`: any key of this table changed there may be
///    seen by the SELECT or not, so its row is superseded (the change events
///    there carry its state); the caller drops it. Every other row was not
///    changed between the watermarks, so it is the table's state at both,
///    and at the low watermark's position.
pub async fn read_range<S: RangeSink + Send>(
    db: &ConnectOptions,
    range: &KeyRange,
    rules: &ColumnRules,
    server_id: u32,
    timestamp: u32,
    sink: &mut S,
) -> Result<RangeRead> {
    let mut conn = connect(db, true).await?;
    let mut t = describe(&mut conn, &range.schema, &range.table).await?;
    t.meta.rules = rules.for_table(&t.meta).map_err(Error::Config)?;
    check_commit_order(&mut conn).await?;
    let low = server::current_position(&mut conn).await?;
    let low_mark = unique_mark("low", server_id);
    watermark(&mut conn, server_id, &low_mark).await?;
    let low_end = server::current_position(&mut conn).await?;
    let position = read_window(db, &t.meta, &low, &low_end, server_id, &low_mark)
        .await?
        .mark_at(&low, &low_end)?;
    let keys = select(
        &mut conn,
        &t,
        range,
        &tail(&t.meta, &position, timestamp),
        sink,
    )
    .await?;
    let create_table = show_create(&mut conn, &t.meta).await?;
    let high_mark = unique_mark("high", server_id);
    watermark(&mut conn, server_id, &high_mark).await?;
    let high = server::current_position(&mut conn).await?;
    let _ = conn.disconnect().await;
    let window = read_window(db, &t.meta, &low, &high, server_id, &high_mark).await?;
    window.mark_at(&low, &high)?;
    Ok(RangeRead {
        read: keys.ends.len() as u64,
        superseded: keys.superseded(&window.keys),
        table: t.meta,
        position,
        create_table,
    })
}

/// The table's `SHOW CREATE TABLE` text.
async fn show_create(conn: &mut Conn, t: &TableMeta) -> Result<String> {
    let sql = format!("SHOW CREATE TABLE {}.{}", quote(&t.schema), quote(&t.table));
    let row: Option<(String, String)> = conn
        .query_first(sql)
        .await
        .map_err(|e| Error::mysql(format!("reading the definition of {}", t.full_name), e))?;
    Ok(row.map(|(_, create)| create).unwrap_or_default())
}

/// A mark no other watermark has: which one, the range's server id and the
/// time.
fn unique_mark(which: &str, server_id: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{which}-{server_id}-{nanos}")
}

/// MySQL can commit out of binlog order when `binlog_order_commits` is OFF;
/// the watermark then proves nothing.
async fn check_commit_order(conn: &mut Conn) -> Result<()> {
    match server::variable(conn, "binlog_order_commits").await? {
        Some(v) if v != "1" && !v.eq_ignore_ascii_case("ON") => Err(Error::InvalidSystemSetting {
            setting: "binlog_order_commits".into(),
            expected: "ON".into(),
            actual: v,
            fix: "a snapshot orders its rows against the binlog by commit order; set it in the \
                  DB parameter group (it is dynamic)"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// A watermark: one committed write of `mark` to the signal table (the
/// range's own row; the table is created here if init-db has not).
async fn watermark(conn: &mut Conn, server_id: u32, mark: &str) -> Result<()> {
    let write = format!(
        "INSERT INTO {}.{SIGNAL_TABLE} (id, mark, at) VALUES ({server_id}, '{mark}', NOW(6)) \
         ON DUPLICATE KEY UPDATE mark = VALUES(mark), at = VALUES(at)",
        quote(SIGNAL_SCHEMA)
    );
    match write_retrying_deadlocks(conn, &write).await {
        Err(mysql_async::Error::Server(e))
            if matches!(e.code, server_codes::ER_NO_SUCH_TABLE | server_codes::ER_BAD_DB_ERROR) =>
        {
            create_signal_table(conn).await?;
            write_retrying_deadlocks(conn, &write)
                .await
                .map_err(|e| Error::mysql("writing the snapshot's watermark", e))
        }
        other => other.map_err(|e| Error::mysql(format!("writing the snapshot's watermark into {SIGNAL_SCHEMA}.{SIGNAL_TABLE} (init-db creates it and grants INSERT, UPDATE on it)"), e)),
    }
}

/// Concurrent ranges' watermark writes (an INSERT ... ON DUPLICATE KEY
/// UPDATE each, of its own row) can deadlock on MySQL's gap locks; the
/// write is idempotent, so it is tried again a few times before the
/// deadlock is the range's (transient) error.
async fn write_retrying_deadlocks(
    conn: &mut Conn,
    write: &str,
) -> std::result::Result<(), mysql_async::Error> {
    let mut attempt = 0u64;
    loop {
        match conn.query_drop(write).await {
            Err(mysql_async::Error::Server(e))
                if attempt < 4
                    && matches!(
                        e.code,
                        server_codes::ER_LOCK_DEADLOCK | server_codes::ER_LOCK_WAIT_TIMEOUT
                    ) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// The signal table (init-db creates it; this is for a user who may).
pub async fn create_signal_table(conn: &mut Conn) -> Result<()> {
    let schema = quote(SIGNAL_SCHEMA);
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {schema}.{SIGNAL_TABLE} \
         (id INT UNSIGNED PRIMARY KEY, mark VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL)"
    ))
    .await
    .map_err(|e| Error::mysql(format!("creating {SIGNAL_SCHEMA}.{SIGNAL_TABLE}"), e))
}

/// The range's rows, in key order, each written to `sink` as an event
/// (its head, then `tail`) as it arrives; returns their keys.
async fn select<S: RangeSink + Send>(
    conn: &mut Conn,
    t: &SnapshotTable,
    range: &KeyRange,
    tail: &[u8],
    sink: &mut S,
) -> Result<Keys> {
    let keys = t.key_list().join(", ");
    let sql = format!(
        "SELECT {} FROM {}{} ORDER BY {keys}",
        t.select_list(),
        from_table(t),
        range_condition(
            &keys,
            t.meta.primary_key.len(),
            range.after.is_some(),
            range.upto.is_some()
        )
    );
    let params: Vec<Value> = range
        .after
        .iter()
        .chain(range.upto.iter())
        .flatten()
        .map(Value::from)
        .collect();
    let context = || format!("reading a range of {}", t.meta.full_name);
    let mut result = conn
        .exec_iter(sql, Params::Positional(params))
        .await
        .map_err(|e| Error::mysql(context(), e))?;
    let (mut keys, mut img) = (Keys::default(), RowImage::default());
    let (mut writer, mut head) = (EventWriter::default(), Vec::new());
    while let Some(row) = result
        .next()
        .await
        .map_err(|e| Error::mysql(context(), e))?
    {
        encode::image(&t.meta, &t.reads, &row.unwrap(), &mut img).map_err(|msg| {
            Error::Snapshot {
                table: t.meta.full_name.clone(),
                msg,
            }
        })?;
        // The head needs neither the position nor the time: they are in
        // the tail.
        let event = snapshot_row(&t.meta, "", 0, keys.ends.len() as u32, Some(&img));
        head.clear();
        writer.write_head(&event, View::Keys, &mut head);
        keys.push(&t.meta, &img);
        sink.row(&t.meta, &[&head, tail]).await?;
    }
    Ok(keys)
}

/// What the binlog between two positions says: the keys of the table its
/// row events changed (before and after), and where a watermark is.
struct Window<'a> {
    table: &'a TableMeta,
    mark: &'a str,
    keys: HashSet<String>,
    found_at: Option<BinlogPosition>,
}

impl Window<'_> {
    /// The watermark's position; its absence from the window read is an
    /// error (the range cannot be ordered).
    fn mark_at(&self, from: &BinlogPosition, to: &BinlogPosition) -> Result<BinlogPosition> {
        self.found_at.clone().ok_or_else(|| Error::Snapshot {
            table: self.table.full_name.clone(),
            msg: format!(
                "its watermark {:?} is not in the binlog between {from} and {to}",
                self.mark
            ),
        })
    }

    fn watermark(&mut self, event: &serde_json::Value) -> Result<()> {
        if event["newImage"]["mark"].as_str() == Some(self.mark) {
            let at = event["position"].as_str().unwrap_or_default();
            self.found_at = Some(at.parse().map_err(|e| Error::Config(format!("{e}")))?);
        }
        Ok(())
    }

    fn changed(&mut self, event: &serde_json::Value) {
        for image in ["newImage", "oldImage"] {
            let Some(img) = event.get(image) else {
                continue;
            };
            let key: Vec<serde_json::Value> = self
                .table
                .primary_key
                .iter()
                .map(|&i| {
                    img.get(&self.table.columns[i].name)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            self.keys.insert(serde_json::Value::Array(key).to_string());
        }
    }
}

impl RowSink for Window<'_> {
    /// A statement on the table (or its schema) during the window: the
    /// rows read may predate it. The range fails as transient, and its
    /// retry reads it anew, after the statement.
    fn statement(
        &mut self,
        schema: &str,
        table: &str,
        _timestamp: u32,
        _json: &[u8],
    ) -> Result<()> {
        let t = self.table;
        if schema == t.schema && (table == t.table || table == EVERY_TABLE) {
            return Err(Error::io(
                format!("reading a snapshot range of {}", t.full_name),
                std::io::Error::other(
                    "the table's definition changed while the range was read; the range is read again",
                ),
            ));
        }
        Ok(())
    }

    fn row(&mut self, table: &TableMeta, _timestamp: u32, json: &[u8]) -> Result<()> {
        let event: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| Error::io("reading back a change event", std::io::Error::other(e)))?;
        if table.schema == SIGNAL_SCHEMA && table.table == SIGNAL_TABLE {
            self.watermark(&event)
        } else {
            self.changed(&event);
            Ok(())
        }
    }
}

/// Reads the binlog `[from, to)` for the table's changes and where `mark`
/// was written.
async fn read_window<'a>(
    db: &ConnectOptions,
    t: &'a TableMeta,
    from: &BinlogPosition,
    to: &BinlogPosition,
    server_id: u32,
    mark: &'a str,
) -> Result<Window<'a>> {
    let mut window = Window {
        table: t,
        mark,
        keys: HashSet::new(),
        found_at: None,
    };
    let signal = format!("{SIGNAL_SCHEMA}.{SIGNAL_TABLE}");
    let filter = TableFilter::new(vec![t.full_name.clone(), signal], Vec::new())
        .map_err(Error::Config)?
        .with_signal();
    // No column rules: the keys changed in the window are compared, in
    // memory, with the range's own clear keys.
    let opts = DecodeOptions {
        view: View::Both,
        filter,
        ..Default::default()
    };
    let mut source = ServerSource::open(db, from, Some(to.clone()), server_id).await?;
    let lookup = InformationSchema::connect(db).await?;
    let mut decoder = Decoder::new(opts).with_lookup(Box::new(lookup));
    while let Some(ev) = source.next_event().await? {
        decoder.handle(ev, &mut window).await?;
    }
    decoder.finish(&mut window)?;
    source.close().await;
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement on the range's table (or its whole schema) in the
    /// window fails the range as transient: its retry reads it anew.
    #[test]
    fn a_statement_on_the_table_in_the_window_reads_the_range_again() {
        let t = TableMeta::from_columns("shop", "orders", Vec::new(), Vec::new());
        let mut window = Window {
            table: &t,
            mark: "m",
            keys: HashSet::new(),
            found_at: None,
        };
        let err = window.statement("shop", "orders", 0, b"{}").unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(window.statement("shop", EVERY_TABLE, 0, b"{}").is_err());
        assert!(window.statement("shop", "lines", 0, b"{}").is_ok());
        assert!(window.statement("crm", "orders", 0, b"{}").is_ok());
    }
}
