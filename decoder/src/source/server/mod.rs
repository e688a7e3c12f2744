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
//! Beside the stream: the queries a plain connection answers (`queries`),
//! where a GTID position goes on (`gtid_position`), information_schema
//! lookups (`lookup`) and the server-side checks that the log holds full
//! rows (`preflight`).

mod gtid_position;
mod lookup;
mod preflight;
mod queries;

pub use gtid_position::position_after_gtid_state;
pub use lookup::InformationSchema;
pub use preflight::preflight;
pub(crate) use queries::is_mariadb;
pub use queries::{binlog_retention_seconds, current_position, list_binlogs, variable};

use std::future::Future;

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use mysql_common::binlog::events::{Event, RotateEvent, TransactionPayloadEvent};

use super::connect::{connect, endpoint, ConnectOptions};
use super::{guarded, types, EventSource, SourceEvent};
use crate::error::server_codes::{ER_MASTER_FATAL_ERROR_READING_BINLOG, ER_UNKNOWN_COM_ERROR};
use crate::error::{Error, Result};
use crate::position::BinlogPosition;

/// `LOG_EVENT_ARTIFICIAL_F`: the server made this event up for the stream.
const ARTIFICIAL: u16 = 0x20;

/// How long a ranged read waits for the server's next event before giving up
/// (a transient error: the step is retried). The events up to `to` are
/// already in the file, so the wait is a sync's, not a commit's.
pub(crate) const RANGE_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the server of a blocking dump sends a heartbeat while it has
/// nothing to send (the reader skips them).
pub const HEARTBEAT_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

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
        assert_eq!(e.kind(), crate::error::ErrorKind::NotTheWriter);
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
