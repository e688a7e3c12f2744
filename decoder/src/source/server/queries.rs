//! Queries a live server answers over a plain connection: which server it
//! is, its binlog files, its write position, its retention, a global
//! variable.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::server_codes::ER_UNKNOWN_SYSTEM_VARIABLE;
use crate::error::{Error, Result};
use crate::position::BinlogPosition;

/// Whether the server is MariaDB.
pub(crate) async fn is_mariadb(conn: &mut Conn) -> Result<bool> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| Error::mysql("SELECT VERSION()", e))?;
    Ok(v.unwrap_or_default().contains("MariaDB"))
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

/// A global system variable's value; `None` where the server does not have
/// the setting.
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
