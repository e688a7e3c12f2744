//! Where the stream goes on after a GTID position, on another server that
//! has the same transactions: MariaDB's GTID state (the server finds it) and
//! MySQL's executed GTID set (read here, file by file).

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use mysql_common::binlog::events::RotateEvent;

use super::queries::{current_position, is_mariadb, list_binlogs};
use super::{stream_error, ServerSource, ARTIFICIAL};
use crate::error::{Error, Result};
use crate::gtid::GtidSet;
use crate::position::BinlogPosition;
use crate::source::connect::{connect, ConnectOptions};
use crate::source::gtid_scan::{file_start_set, first_transaction_outside};
use crate::source::{guarded, types};

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
        let before = file_start_set(&mut source).await;
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
        let found = first_transaction_outside(&mut source, &set).await;
        source.close().await;
        return Ok(found?.unwrap_or(to.unwrap_or(end)));
    }
    Err(refused(format!(
        "every binlog on the server, from the oldest ({}), starts after transactions the set lacks: they were purged, or the set is of another history",
        files.first().map_or("none", |(f, _)| f.as_str())
    )))
}
