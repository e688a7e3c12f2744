//! The binlog history a checkpoint is in: recorded at each commit
//! ([`mark`], into `meta.json`'s `history`) and checked before a committed
//! run reads on from the checkpoint ([`check`]).
//!
//! A checkpoint is a file name and an offset. After `RESET MASTER`, a restore
//! from a snapshot or a copy of the data directory, a failover to a new
//! cluster, a Blue/Green switchover or another server behind the same
//! endpoint, the same names can hold other events; reading on from the old
//! offset would then skip them, or decode from the middle of one. A GTID
//! alone does not tell (MariaDB restarts at `0-1-1` after `RESET MASTER`), so
//! the check compares, in order:
//!
//! 1. the server's identity (MySQL `@@server_uuid`; MariaDB `@@server_id` and
//!    `@@gtid_domain_id`);
//! 2. the checkpoint's file: still at least as long as the offset, and created
//!    at the same second (its format description event's timestamp: a file
//!    made again by `RESET MASTER` or by another server has a new one);
//! 3. where the server has GTIDs: MariaDB's GTID state at the offset
//!    (`BINLOG_GTID_POS`) against the one recorded at commit; MySQL's
//!    executed GTID set (`gtid_mode=ON`), which must still hold the one
//!    recorded when the checkpoint's run was planned (it only grows along
//!    one history: `RESET MASTER` clears it, a restore takes it back).
//!
//! Any difference is a definite [`Error::BinlogHistoryChanged`] naming it.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::contracts::{BinlogHistory, Checkpoint};
use crate::error::{Error, Result};
use crate::BinlogPosition;
use binlog_decoder::gtid::GtidSet;
use binlog_decoder::source::connect::ConnectOptions;
use binlog_decoder::source::server::{self, ServerSource};
use binlog_decoder::source::EventSource;

/// The server's identity: `server_uuid:…` (MySQL), else
/// `server_id:…,gtid_domain_id:…` (MariaDB, which has no UUID).
pub async fn server_identity(conn: &mut Conn) -> Result<String> {
    if let Some(uuid) = server::variable(conn, "server_uuid").await? {
        return Ok(format!("server_uuid:{uuid}"));
    }
    let id = server::variable(conn, "server_id")
        .await?
        .unwrap_or_default();
    let domain = server::variable(conn, "gtid_domain_id")
        .await?
        .unwrap_or_default();
    Ok(format!("server_id:{id},gtid_domain_id:{domain}"))
}

/// When the server created `file`: the timestamp of the format description
/// event it starts with, read over a short dump (replication id `server_id`).
pub async fn file_created(db: &ConnectOptions, file: &str, server_id: u32) -> Result<u32> {
    let start = BinlogPosition::start_of(file.to_string());
    let mut source = ServerSource::open(db, &start, None, server_id).await?;
    let first = source.next_event().await?;
    source.close().await;
    match first {
        Some(ev)
            if ev.event.header().event_type_raw()
                == binlog_decoder::source::types::FORMAT_DESCRIPTION =>
        {
            Ok(ev.event.header().timestamp())
        }
        _ => Err(binlog_decoder::Error::malformed(
            &start,
            "binlog file",
            "it does not start with a format description event",
        )
        .into()),
    }
}

/// The largest executed GTID set recorded with a checkpoint: it travels in
/// the execution's state (the plan), and it grows with the sources the
/// server has had (a UUID each, after failovers). Past this, the set is not
/// recorded and that one check is skipped (the others still hold).
pub const MAX_RECORDED_GTID_SET: usize = 8 << 10;

/// The history `file` is in now.
pub async fn mark(
    conn: &mut Conn,
    db: &ConnectOptions,
    file: &str,
    server_id: u32,
) -> Result<BinlogHistory> {
    let gtid_executed = gtid_executed(conn).await?.filter(|set| {
        let fits = set.len() <= MAX_RECORDED_GTID_SET;
        if !fits {
            tracing::warn!(
                bytes = set.len(),
                "gtid_executed is too large to record with the checkpoint"
            );
        }
        fits
    });
    Ok(BinlogHistory {
        server: server_identity(conn).await?,
        file: file.to_string(),
        file_created: file_created(db, file, server_id).await?,
        gtid_executed,
    })
}

/// At most `max` characters of `s` (an error's cause travels in the state).
fn abbreviated(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// MySQL's `@@GLOBAL.gtid_executed`, when it has GTIDs (MariaDB has no such
/// variable; `gtid_mode=OFF` leaves it empty).
async fn gtid_executed(conn: &mut Conn) -> Result<Option<String>> {
    Ok(server::variable(conn, "gtid_executed")
        .await?
        .map(|s| s.split_whitespace().collect::<String>())
        .filter(|s| !s.is_empty()))
}

/// MariaDB's GTID state at a position (`BINLOG_GTID_POS`); `None` where the
/// server has no such function, or no state there.
pub async fn gtid_at(conn: &mut Conn, pos: &BinlogPosition) -> Option<String> {
    conn.exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, ?)", (pos.file(), pos.pos()))
        .await
        .ok()
        .flatten()
        .flatten()
        .filter(|g| !g.is_empty())
}

/// Checks that `checkpoint` is still in the history `recorded` (see the
/// module docs); `files` is the server's `SHOW BINARY LOGS`. A checkpoint
/// file the server no longer lists is left to the purge check.
pub async fn check(
    conn: &mut Conn,
    db: &ConnectOptions,
    files: &[(String, u64)],
    checkpoint: &Checkpoint,
    recorded: &BinlogHistory,
    server_id: u32,
) -> Result<()> {
    let at = &checkpoint.position;
    let changed = |what: String| Error::BinlogHistoryChanged {
        checkpoint: at.clone(),
        what,
    };
    let server = server_identity(conn).await?;
    if server != recorded.server {
        return Err(changed(format!(
            "the endpoint now reaches another server ({server}; the checkpoint was taken on {})",
            recorded.server
        )));
    }
    let Some((_, size)) = files.iter().find(|(f, _)| f == at.file()) else {
        return Ok(());
    };
    if *size < at.pos() {
        return Err(changed(format!(
            "{} is now {size} bytes, shorter than the checkpoint's offset {} (RESET MASTER or RESET BINARY LOGS AND GTIDS, or a restore of an earlier copy)",
            at.file(),
            at.pos()
        )));
    }
    if recorded.file == at.file() {
        let created = file_created(db, at.file(), server_id).await?;
        if created != recorded.file_created {
            return Err(changed(format!(
                "{} was created again (its format description event says {created}, the checkpoint's file said {}: RESET MASTER or RESET BINARY LOGS AND GTIDS, or another server)",
                at.file(),
                recorded.file_created
            )));
        }
    }
    if let Some(was) = &recorded.gtid_executed {
        let now = gtid_executed(conn).await?.unwrap_or_default();
        let parse = |s: &str| {
            s.parse::<GtidSet>()
                .map_err(|e| changed(format!("gtid_executed: {e}")))
        };
        if !parse(&now)?.contains(&parse(was)?) {
            return Err(changed(format!(
                "the server's executed GTID set ({:?}) no longer holds the one recorded with the checkpoint ({})",
                abbreviated(&now, 300),
                abbreviated(was, 300)
            )));
        }
    }
    if let (Some(was), Some(now)) = (&checkpoint.gtid, gtid_at(conn, at).await) {
        if *was != now {
            return Err(changed(format!(
                "the GTID state at the checkpoint is now {now}, it was {was}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sets_are_cut_in_messages() {
        assert_eq!(abbreviated("abc", 5), "abc");
        assert_eq!(abbreviated("abcdef", 3), "abc...");
        assert_eq!(abbreviated("ééé", 2), "éé...");
    }
}
