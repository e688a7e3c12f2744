//! The server-side checks that no row can be lost or mangled
//! ([`preflight`]): the writer instance, and the binlog settings that make
//! the log hold full rows.

use mysql_async::Conn;

use super::queries::variable;
use crate::error::{Error, Result};
use crate::source::connect::endpoint;

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
