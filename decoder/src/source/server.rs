//! A live server, read over the replication protocol (mysql_async's binlog
//! stream). A read to the end of the log asks for a non-blocking dump, so it
//! ends; a read to a position `to` asks for a blocking one, and stops at `to`
//! itself.
//!
//! A reader reads `[from, to)`: it starts at `from` (which must be an event
//! boundary; a transaction boundary if rows are to decode), and stops exactly
//! at `to`, or at the end of the log when `to` is `None`. Each reader needs
//! its own replication server id: the server drops the older of two streams
//! with the same id, "older" by when it handled their requests. So an empty
//! range sends no request: one dropped unread could be handled after the next
//! reader's, and end that one.
//!
//! Quirks handled here: MariaDB rewrites its GTID events into plain queries
//! unless the client says `@mariadb_slave_capability=4`; the first Rotate's
//! file name carries four stray checksum bytes (mysql_async issue #189), so
//! the file name comes from our own request; the dump protocol has no end
//! position, so the reader stops at `to` itself. A non-blocking dump ends
//! where the server's dump thread has the log synced, which on MySQL can be
//! a commit group short of the size `SHOW BINARY LOGS` and `SHOW BINARY LOG
//! STATUS` report (the file is written before it is synced): a range planned
//! to the reported end would find the log ended short of it, so ranged reads
//! block until the server sends the rest, bounded by [`RANGE_IDLE_TIMEOUT`].
//! A blocking dump thread outlives its reader until it next writes (an idle
//! server's would wait for the next commit, holding a connection), so ranged
//! reads ask for a heartbeat a second, and skip them.
//!
//! Also here: the server-side checks ([`preflight`]) that the log holds
//! full rows.

use std::future::Future;

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use mysql_common::binlog::events::{Event, RotateEvent, TransactionPayloadEvent};

use super::connect::{connect, endpoint, ConnectOptions};
use super::{guarded, types, EventSource, SourceEvent};
use crate::error::server_codes::{
    ER_MASTER_FATAL_ERROR_READING_BINLOG, ER_UNKNOWN_COM_ERROR, ER_UNKNOWN_SYSTEM_VARIABLE,
};
use crate::error::{Error, Result};
use crate::gtid::{self, GtidSet};
use crate::position::BinlogPosition;

/// `LOG_EVENT_ARTIFICIAL_F`: the server made this event up for the stream.
const ARTIFICIAL: u16 = 0x20;

/// How long a ranged read waits for the server's next event before giving up
/// (a transient error: the step is retried). The events up to `to` are
/// already in the file, so the wait is a sync's, not a commit's.
pub const RANGE_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the server of a blocking dump sends a heartbeat while it has
/// nothing to send (the reader skips them).
pub const HEARTBEAT_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the server is MariaDB.
pub async fn is_mariadb(conn: &mut Conn) -> Result<bool> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| Error::mysql("SELECT VERSION()", e))?;
    Ok(v.unwrap_or_default().contains("MariaDB"))
}

/// Where a MariaDB server's binlog goes on after the GTID state `state`
/// (`0-1-5`, one GTID per domain, comma-separated): the position of the first
/// transaction past it (its GTID event), or the end of the log when there is
/// none yet. The server finds it (a dump with `@slave_connect_state`, as a
/// replica connecting by GTID), in whichever file it is: this is how a stream
/// goes on on another server that has the same transactions (a promoted
/// replica, a new cluster fed by replication). On MySQL `state` is an
/// executed GTID set, see [`position_after_gtid_set`].
pub async fn position_after_gtid_state(
    db: &ConnectOptions,
    state: &str,
    server_id: u32,
) -> Result<BinlogPosition> {
    let mut conn = connect(db).await?;
    if !is_mariadb(&mut conn).await? {
        let _ = conn.disconnect().await;
        return position_after_gtid_set(db, state, server_id).await;
    }
    let end = current_position(&mut conn).await?;
    let files = list_binlogs(&mut conn).await?;
    conn.exec_drop("SET @slave_connect_state = ?", (state,))
        .await
        .map_err(|e| {
            Error::Config(format!(
                "restartAt gtid:{state}: the server refused the GTID state: {e}"
            ))
        })?;
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .map_err(|e| Error::mysql("SET @mariadb_slave_capability", e))?;
    let request = BinlogStreamRequest::new(server_id)
        .with_filename(&b""[..])
        .with_pos(4u64)
        .with_non_blocking();
    let at = BinlogPosition::new(format!("gtid:{state}"), 4);
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| stream_error(e, &at))?;
    let mut file = String::new();
    let found = loop {
        let Some(item) = stream.next().await else {
            break None;
        };
        let event = item.map_err(|e| stream_error(e, &at))?;
        let h = event.header();
        if h.event_type_raw() == types::ROTATE {
            let rotate: RotateEvent<'_> = guarded(&at, "rotate event", || event.read_event())?;
            // Quirk: the first (artificial) rotate comes before the format
            // description, so its name carries the checksum's 4 bytes: the
            // file is the longest listed name it starts with.
            let name = rotate.name();
            file = files
                .iter()
                .map(|(f, _)| f)
                .filter(|f| name.starts_with(f.as_str()))
                .max_by_key(|f| f.len())
                .cloned()
                .unwrap_or_else(|| name.into_owned());
            continue;
        }
        let artificial = h.flags_raw() & ARTIFICIAL != 0 || h.log_pos() == 0;
        if h.event_type_raw() == types::MARIADB_GTID && !artificial {
            let start = h.log_pos().saturating_sub(h.event_size());
            break Some(BinlogPosition::new(file.clone(), start as u64));
        }
    };
    let _ = stream.close().await;
    Ok(found.unwrap_or(end))
}

/// Where a MySQL server's binlog goes on after the executed GTID set `text`
/// (`uuid:1-100,…`, as a checkpoint records it): the position of the first
/// transaction the set lacks, in the newest file whose PREVIOUS_GTIDS the
/// set holds; the end of the log when it holds them all. Read here, file by
/// file, rather than asked of the server (a dump by GTID set), so that the
/// stream goes on by file and offset as everywhere else. A set with a hole
/// (it lacks a transaction but holds later ones) goes on at the hole: the
/// later transactions it holds come again (twice, never lost).
async fn position_after_gtid_set(
    db: &ConnectOptions,
    text: &str,
    server_id: u32,
) -> Result<BinlogPosition> {
    let refused = |msg: String| Error::Config(format!("restartAt gtid:{text}: {msg}"));
    let set: GtidSet = text.parse().map_err(refused)?;
    let mut conn = connect(db).await?;
    let files = list_binlogs(&mut conn).await?;
    let end = current_position(&mut conn).await?;
    let _ = conn.disconnect().await;
    for (i, (file, _)) in files.iter().enumerate().rev() {
        let start = BinlogPosition::start_of(file.clone());
        let mut source = ServerSource::open(db, &start, None, server_id).await?;
        let before = gtid::file_start_set(&mut source).await;
        source.close().await;
        let Some(before) = before? else {
            return Err(refused(format!(
                "{file} has no PREVIOUS_GTIDS event: the server does not keep GTIDs"
            )));
        };
        if !set.contains(&before) {
            continue;
        }
        let to = files
            .get(i + 1)
            .map(|(f, _)| BinlogPosition::start_of(f.clone()));
        let mut source = ServerSource::open(db, &start, to.clone(), server_id).await?;
        let found = gtid::first_transaction_outside(&mut source, &set).await;
        source.close().await;
        return Ok(found?.unwrap_or(to.unwrap_or(end)));
    }
    Err(refused(format!(
        "every binlog on the server, from the oldest ({}), starts after transactions the set lacks: they were purged, or the set is of another history",
        files.first().map_or("none", |(f, _)| f.as_str())
    )))
}

/// How long the server keeps binlog files, in seconds; `None` when it does
/// not purge them by age, or cannot say. RDS and Aurora: the 'binlog
/// retention hours' of `mysql.rds_show_configuration` (NULL there means
/// purged as soon as possible: 0); elsewhere `binlog_expire_logs_seconds`,
/// else `expire_logs_days`. Only for metrics: it never fails a run.
pub async fn binlog_retention_seconds(conn: &mut Conn) -> Option<u64> {
    match conn
        .query::<mysql_async::Row, _>("CALL mysql.rds_show_configuration")
        .await
    {
        Ok(rows) => {
            for row in rows {
                let name: Option<String> = row.get(0).flatten();
                if name.as_deref() == Some("binlog retention hours") {
                    let hours: Option<String> = row.get(1).flatten();
                    return Some(
                        hours
                            .and_then(|h| h.trim().parse::<u64>().ok())
                            .unwrap_or(0)
                            * 3600,
                    );
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "no mysql.rds_show_configuration"),
    }
    let number = |v: Option<String>| {
        v.and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
    };
    if let Some(secs) = number(
        variable(conn, "binlog_expire_logs_seconds")
            .await
            .ok()
            .flatten(),
    ) {
        return Some(secs);
    }
    number(variable(conn, "expire_logs_days").await.ok().flatten()).map(|d| d * 86_400)
}

/// `SHOW BINARY LOGS`: every binlog file on the server with its size, oldest first.
pub async fn list_binlogs(conn: &mut Conn) -> Result<Vec<(String, u64)>> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| Error::mysql("SHOW BINARY LOGS", e))?;
    rows.into_iter()
        .map(|row| {
            let name: Option<String> = row.get(0);
            let size: Option<u64> = row.get(1);
            match (name, size) {
                (Some(n), Some(s)) => Ok((n, s)),
                _ => Err(Error::Config(
                    "SHOW BINARY LOGS returned an unexpected row".into(),
                )),
            }
        })
        .collect()
}

/// The server's current write position (`SHOW MASTER STATUS`, or `SHOW BINARY
/// LOG STATUS` on MySQL 8.4+ where the old statement is gone).
pub async fn current_position(conn: &mut Conn) -> Result<BinlogPosition> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| Error::mysql("SHOW BINARY LOG STATUS", e))?,
    };
    let row = row.ok_or_else(|| {
        Error::Config("binary logging is off on this server (SHOW MASTER STATUS is empty)".into())
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    match (file, pos) {
        (Some(f), Some(p)) => Ok(BinlogPosition::new(f, p)),
        _ => Err(Error::Config(
            "SHOW MASTER STATUS returned an unexpected row".into(),
        )),
    }
}

/// Checks that `pos` names a file on the server and an offset inside it.
fn check_on_server(files: &[(String, u64)], pos: &BinlogPosition, what: &str) -> Result<()> {
    let Some((_, size)) = files.iter().find(|(f, _)| f == pos.file()) else {
        return Err(Error::BinlogPurged {
            file: pos.file().to_string(),
            msg: format!("the {what} position {pos} names a file SHOW BINARY LOGS does not list"),
        });
    };
    if pos.pos() > *size {
        return Err(Error::BadPosition {
            at: pos.clone(),
            msg: format!("the {what} position is past the end of the file ({size} bytes)"),
        });
    }
    Ok(())
}

/// A range of a live server's binlog.
pub struct ServerSource {
    stream: Option<BinlogStream>,
    file: String,
    to: Option<BinlogPosition>,
    done: bool,
    bytes: u64,
    /// Where the next event starts.
    next: BinlogPosition,
    /// Events still to come out of the last TRANSACTION_PAYLOAD event
    /// (mysql_async expands them itself), and its position.
    payload_left: usize,
    payload_pos: Option<BinlogPosition>,
}

impl ServerSource {
    /// Starts reading `[from, to)` with replication server id `server_id`.
    pub async fn open(
        db: &ConnectOptions,
        from: &BinlogPosition,
        to: Option<BinlogPosition>,
        server_id: u32,
    ) -> Result<Self> {
        if let Some(to) = &to {
            if to < from {
                return Err(Error::Config(format!("--to {to} is before --from {from}")));
            }
        }
        let mut conn = connect(db).await?;
        let files = list_binlogs(&mut conn).await?;
        check_on_server(&files, from, "start")?;
        if let Some(to) = &to {
            check_on_server(&files, to, "end")?;
        }
        // An empty range asks for no dump. A dump request dropped unread may
        // reach the server after the next reader with the same server id has
        // started its dump; the server then ends that one as a zombie ("A
        // replica with the same server_uuid/server_id ... has connected").
        let stream = if to.as_ref() == Some(from) {
            let _ = conn.disconnect().await;
            None
        } else {
            Some(request_dump(conn, from, to.is_some(), server_id).await?)
        };
        Ok(Self {
            done: stream.is_none(),
            stream,
            file: from.file().to_string(),
            to,
            bytes: 0,
            next: from.clone(),
            payload_left: 0,
            payload_pos: None,
        })
    }

    /// The stream's next raw event, heartbeats skipped; `None` at the end of
    /// the server's log, which is an error while `to` is not reached.
    async fn next_raw(&mut self) -> Result<Option<Event>> {
        let deadline = tokio::time::Instant::now() + RANGE_IDLE_TIMEOUT;
        loop {
            let event = self.next_raw_until(deadline).await?;
            let heartbeat = event.as_ref().is_some_and(|e| {
                let t = e.header().event_type_raw();
                t == types::HEARTBEAT || t == types::HEARTBEAT_V2
            });
            if !heartbeat {
                return Ok(event);
            }
        }
    }

    /// The stream's next raw event, waiting until `deadline` in a ranged read.
    async fn next_raw_until(&mut self, deadline: tokio::time::Instant) -> Result<Option<Event>> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        // mysql_async expands TRANSACTION_PAYLOAD events itself, through
        // mysql_common, which may panic on corrupt ones: caught quietly.
        let mut next = std::pin::pin!(stream.next());
        let polled = futures_util::future::poll_fn(|cx| {
            match crate::guard::catch(|| next.as_mut().poll(cx)) {
                Ok(p) => p.map(Ok),
                Err(_) => std::task::Poll::Ready(Err(())),
            }
        });
        let polled = match &self.to {
            None => polled.await,
            Some(to) => tokio::time::timeout_at(deadline, polled)
                .await
                .map_err(|_| {
                    let msg = format!(
                        "the server sent no event for {} s before the end position {to}",
                        RANGE_IDLE_TIMEOUT.as_secs()
                    );
                    let io = std::io::Error::new(std::io::ErrorKind::TimedOut, msg);
                    Error::io(format!("reading the binlog at {}", self.next), io)
                })?,
        };
        let Ok(item) = polled else {
            return Err(Error::malformed(
                &self.next,
                "event",
                "the server sent an event shorter than its own header says",
            ));
        };
        match item {
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(e)) => Err(stream_error(e, &self.next)),
            None => {
                self.done = true;
                self.close().await;
                match &self.to {
                    // A blocking dump ends only when the connection does.
                    Some(to) => Err(Error::io(
                        format!("reading the binlog at {}", self.next),
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the server ended the stream before the end position {to}"),
                        ),
                    )),
                    None => Ok(None),
                }
            }
        }
    }

    /// Whether the event at `start` (ending at `end`) is where the range
    /// stops; an error when `to` is not an event boundary, or was passed.
    fn reached_end(&self, start: &BinlogPosition, end: u64) -> Result<bool> {
        let Some(to) = &self.to else {
            return Ok(false);
        };
        let bad = |msg: String| Error::BadPosition {
            at: to.clone(),
            msg,
        };
        let same_file = start.file() == to.file();
        if same_file && start.pos() == to.pos() {
            return Ok(true);
        }
        if same_file && start.pos() > to.pos() {
            return Err(bad(format!(
                "the end position is not an event boundary (an event starts at {start})"
            )));
        }
        if same_file && end > to.pos() {
            return Err(bad(format!(
                "the end position is inside the event at {start}"
            )));
        }
        if start > to {
            return Err(bad(format!(
                "the end position was passed without being reached (now at {start})"
            )));
        }
        Ok(false)
    }

    /// Ends the dump (reading to the end of the range does it too).
    pub async fn close(&mut self) {
        if let Some(s) = self.stream.take() {
            // Closing a finished stream, or one that would block, may report
            // a broken pipe; nothing is lost.
            let _ = s.close().await;
        }
    }
}

/// Asks for the binlog from `from` on `conn`: a blocking dump for a ranged
/// read (its reader stops at the end itself), a non-blocking one to the end
/// of the log.
async fn request_dump(
    mut conn: Conn,
    from: &BinlogPosition,
    ranged: bool,
    server_id: u32,
) -> Result<BinlogStream> {
    if is_mariadb(&mut conn).await? {
        // Ask for MariaDB's own events (GTID, annotate) as they are.
        conn.query_drop("SET @mariadb_slave_capability=4")
            .await
            .map_err(|e| Error::mysql("SET @mariadb_slave_capability", e))?;
    }
    let mut request = BinlogStreamRequest::new(server_id)
        .with_filename(from.file().as_bytes())
        .with_pos(from.pos());
    if ranged {
        // A blocking dump thread whose reader has gone waits for the next
        // commit before it finds out; heartbeats end it within a period.
        let ns = HEARTBEAT_PERIOD.as_nanos();
        conn.query_drop(format!(
            "SET @master_heartbeat_period = {ns}, @source_heartbeat_period = {ns}"
        ))
        .await
        .map_err(|e| Error::mysql("SET @master_heartbeat_period", e))?;
    } else {
        request = request.with_non_blocking();
    }
    let endpoint = endpoint(conn.opts());
    conn.get_binlog_stream(request)
        .await
        .map_err(|e| dump_request_error(e, from, &endpoint))
}

/// Maps a failed dump request to a clear error. A server that does not know
/// the replication commands at all (`ER_UNKNOWN_COM_ERROR`, where a MySQL or
/// MariaDB server always knows them) is refused by something in front of the
/// server: [`Error::NotTheWriter`]. Otherwise as [`stream_error`].
fn dump_request_error(e: mysql_async::Error, at: &BinlogPosition, endpoint: &str) -> Error {
    match &e {
        mysql_async::Error::Server(s) if s.code == ER_UNKNOWN_COM_ERROR => Error::NotTheWriter {
            endpoint: endpoint.to_string(),
            reason: format!(
                "the replication request was refused as an unknown command ({e}): something in front of the server refused it"
            ),
        },
        _ => stream_error(e, at),
    }
}

/// Maps the server's refusals of a dump request to clear errors. One code,
/// `ER_MASTER_FATAL_ERROR_READING_BINLOG`, covers every refusal; the
/// server's own message says which (a purged file, or a bad offset).
fn stream_error(e: mysql_async::Error, at: &BinlogPosition) -> Error {
    let refusal = match &e {
        mysql_async::Error::Server(s) if s.code == ER_MASTER_FATAL_ERROR_READING_BINLOG => {
            s.message.clone()
        }
        _ => return Error::mysql(format!("reading the binlog at {at}"), e),
    };
    if refusal.contains("Could not find first log file name")
        || refusal.contains("could not find next log")
    {
        return Error::BinlogPurged {
            file: at.file().to_string(),
            msg: e.to_string(),
        };
    }
    Error::BadPosition {
        at: at.clone(),
        msg: format!(
            "the server cannot start reading here (not an event boundary, or past the end): {e}"
        ),
    }
}

impl EventSource for ServerSource {
    async fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        loop {
            // The payload's events come before the stop, even at `to`.
            if self.done && self.payload_left == 0 {
                self.close().await;
                return Ok(None);
            }
            let Some(event) = self.next_raw().await? else {
                return Ok(None);
            };
            let h = event.header();
            let size = h.event_size() as u64;
            self.bytes += size;

            // Events mysql_async unpacked from a TRANSACTION_PAYLOAD.
            if self.payload_left > 0 {
                self.payload_left -= 1;
                let pos = self
                    .payload_pos
                    .clone()
                    .unwrap_or_else(|| self.next.clone());
                return Ok(Some(SourceEvent { pos, event }));
            }

            let artificial = h.flags_raw() & ARTIFICIAL != 0 || h.log_pos() == 0;
            if h.event_type_raw() == types::ROTATE {
                let rotate: RotateEvent<'_> =
                    guarded(&self.next, "rotate event", || event.read_event())?;
                if artificial {
                    // The stream (re)starts in this file. The first one's name
                    // has stray bytes: it is the file we asked for.
                    if self.bytes != size {
                        self.file = rotate.name().into_owned();
                    }
                    self.next = BinlogPosition::new(self.file.clone(), rotate.position());
                    continue;
                }
            }
            if artificial {
                // The format description the server replays when a stream
                // starts mid-file: the decoder needs it, it has no position
                // of its own.
                let pos = self.next.clone();
                return Ok(Some(SourceEvent { pos, event }));
            }
            let end = h.log_pos() as u64;
            let start = BinlogPosition::new(self.file.clone(), end.saturating_sub(size));
            if self.reached_end(&start, end)? {
                self.done = true;
                continue;
            }
            self.next = start.with_pos(end);
            if self.to.as_ref() == Some(&self.next) {
                self.done = true;
            }
            if h.event_type_raw() == types::TRANSACTION_PAYLOAD {
                // mysql_async unpacks the payload and yields its events next;
                // count them ourselves so none can go missing silently.
                let tpe: TransactionPayloadEvent<'_> =
                    guarded(&start, "transaction payload", || event.read_event())?;
                self.payload_left = count_payload_events(&tpe, &start)?;
                self.payload_pos = Some(start.clone());
            }
            return Ok(Some(SourceEvent { pos: start, event }));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// How many events a transaction payload holds.
fn count_payload_events(tpe: &TransactionPayloadEvent<'_>, at: &BinlogPosition) -> Result<usize> {
    use std::io::Read;
    let mut reader = guarded(at, "transaction payload", || tpe.decompressed())?;
    let mut all = Vec::new();
    reader
        .read_to_end(&mut all)
        .map_err(|e| Error::malformed(at, "transaction payload", e.to_string()))?;
    let mut n = 0;
    let mut off = 0usize;
    while off < all.len() {
        if all.len() - off < types::EVENT_HEADER_LEN {
            return Err(Error::malformed(
                at,
                "transaction payload",
                "it ends inside an event header",
            ));
        }
        let size = u32::from_le_bytes([all[off + 9], all[off + 10], all[off + 11], all[off + 12]])
            as usize;
        if size < types::EVENT_HEADER_LEN || size > all.len() - off {
            return Err(Error::malformed(
                at,
                "transaction payload",
                "an event inside it has a bad length",
            ));
        }
        off += size;
        n += 1;
    }
    Ok(n)
}

/// information_schema lookups over a plain connection, for table maps that
/// lack names, signedness or charsets.
pub struct InformationSchema {
    conn: Conn,
}

impl InformationSchema {
    pub async fn connect(db: &ConnectOptions) -> Result<Self> {
        Ok(Self {
            conn: connect(db).await?,
        })
    }
}

impl crate::schema::SchemaLookup for InformationSchema {
    fn columns<'a>(
        &'a mut self,
        schema: &'a str,
        table: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<crate::schema::InfoColumn>>> + Send + 'a>,
    > {
        Box::pin(async move {
            type Row = (String, String, String, Option<String>, String);
            let rows: Vec<Row> = self
                .conn
                .exec(
                    "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), CHARACTER_SET_NAME, COLUMN_KEY \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                     ORDER BY ORDINAL_POSITION",
                    (schema, table),
                )
                .await
                .map_err(|e| Error::mysql(format!("reading information_schema for {schema}.{table}"), e))?;
            Ok(rows
                .into_iter()
                .map(
                    |(name, data_type, column_type, charset, key)| crate::schema::InfoColumn {
                        name,
                        data_type,
                        column_type,
                        charset,
                        is_primary_key: key == "PRI",
                    },
                )
                .collect())
        })
    }
}

pub async fn variable(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    match conn
        .query_first::<Option<String>, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
    {
        Ok(v) => Ok(v.flatten()),
        // Unknown system variable: this server does not have the setting.
        Err(mysql_async::Error::Server(e)) if e.code == ER_UNKNOWN_SYSTEM_VARIABLE => Ok(None),
        Err(e) => Err(Error::mysql(format!("SELECT @@{name}"), e)),
    }
}

/// How to change a binlog setting on a managed server: a reboot is what
/// makes the replication stream pick it up everywhere.
const PARAMETER_GROUP_FIX: &str = "set it in the DB cluster parameter group (Aurora) or the DB parameter group (RDS), then reboot the writer instance; on a self-managed server, set it in my.cnf (or SET PERSIST) and reconnect";

fn invalid(setting: &str, expected: &str, actual: &str, why: &str) -> Error {
    Error::InvalidSystemSetting {
        setting: setting.into(),
        expected: expected.into(),
        actual: actual.into(),
        fix: format!("{why}; {PARAMETER_GROUP_FIX}"),
    }
}

/// Refuses a read-only instance (an Aurora replica has
/// `innodb_read_only=ON`; an RDS read replica `read_only=ON`): its binary log,
/// if any, is not the cluster's stream of commits.
async fn check_writer(conn: &mut Conn) -> Result<()> {
    for setting in ["innodb_read_only", "read_only"] {
        let v = variable(conn, setting).await?.unwrap_or_default();
        if matches!(v.to_ascii_uppercase().as_str(), "1" | "ON") {
            return Err(Error::NotTheWriter {
                endpoint: endpoint(conn.opts()),
                reason: format!("the instance is read-only ({setting}=ON: a replica)"),
            });
        }
    }
    Ok(())
}

/// The checks that make sure no row can be lost or mangled, run by init-db
/// and by every ListBinlogs: the writer instance, binary logging on,
/// `binlog_format=ROW`, `binlog_row_image=FULL`, `binlog_row_metadata=FULL`
/// where the server has it (Aurora MySQL 3 and MySQL 8.0 default it to
/// MINIMAL), no `PARTIAL_JSON`. Each failure is definite: `NotTheWriter`, or
/// [`Error::InvalidSystemSetting`] naming the setting, its value, the value
/// needed and how to change it. Returns notes (settings this server does not
/// have).
pub async fn preflight(conn: &mut Conn) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    check_writer(conn).await?;
    let log_bin = variable(conn, "log_bin").await?.unwrap_or_default();
    if !matches!(log_bin.as_str(), "1" | "ON") {
        return Err(invalid("log_bin", "ON", "OFF", "there is no binary log (on RDS and Aurora it is on when automated backups are, with binlog_format set in the parameter group)"));
    }
    let format = variable(conn, "binlog_format").await?.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(invalid(
            "binlog_format",
            "ROW",
            &format,
            "STATEMENT and MIXED log statements, not rows",
        ));
    }
    let image = variable(conn, "binlog_row_image")
        .await?
        .unwrap_or_else(|| "FULL".into());
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(invalid(
            "binlog_row_image",
            "FULL",
            &image,
            "MINIMAL and NOBLOB leave columns out of the images",
        ));
    }
    match variable(conn, "binlog_row_metadata").await? {
        Some(m) if !m.eq_ignore_ascii_case("FULL") => {
            return Err(invalid("binlog_row_metadata", "FULL", &m, "column names, signedness and charsets must be in every table map (Aurora MySQL 3 and MySQL 8.0 default to MINIMAL)"))
        }
        Some(_) => {}
        None => notes.push("binlog_row_metadata does not exist here: metadata comes from information_schema".to_string()),
    }
    if let Some(v) = variable(conn, "binlog_row_value_options").await? {
        if v.to_ascii_uppercase().contains("PARTIAL_JSON") {
            return Err(invalid(
                "binlog_row_value_options",
                "'' (empty)",
                &v,
                "JSON diffs need the whole document",
            ));
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn a_dump_request_refused_as_an_unknown_command_is_not_the_writer() {
        let at = BinlogPosition::new("binlog.000042", 1234);
        let endpoint = "shop.example.com:3306";
        let e = dump_request_error(server_error(1047, "Unknown command"), &at, endpoint);
        assert!(matches!(e, Error::NotTheWriter { .. }), "{e}");
        assert_eq!(e.name(), "NotTheWriter");
        assert!(e.to_string().contains(endpoint), "{e}");
        // The server's own refusals keep their meaning.
        let purged = "Could not find first log file name in binary log index file";
        let e = dump_request_error(server_error(1236, purged), &at, endpoint);
        assert!(matches!(e, Error::BinlogPurged { .. }), "{e}");
        let e = dump_request_error(server_error(1236, "bogus data in log event"), &at, endpoint);
        assert!(matches!(e, Error::BadPosition { .. }), "{e}");
        let e = dump_request_error(server_error(1227, "Access denied"), &at, endpoint);
        assert!(matches!(e, Error::Mysql { .. }), "{e}");
    }
}
