//! Which tables a snapshot reads, whether it may read them, and their
//! definitions; the connection its queries use.

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::columns::{quote, InfoRow, SnapshotTable};
use crate::error::{Error, Result};
use crate::filter::TableFilter;
use crate::source::connect::ConnectOptions;
use crate::source::server;

/// A connection for the snapshot's queries: UTC, and (for reading rows)
/// strings as their stored bytes.
pub async fn connect(db: &ConnectOptions, raw_strings: bool) -> Result<Conn> {
    let mut conn = crate::source::connect::connect(db).await?;
    let set = if raw_strings {
        "SET time_zone = '+00:00', character_set_results = binary"
    } else {
        "SET time_zone = '+00:00'"
    };
    conn.query_drop(set)
        .await
        .map_err(|e| Error::mysql("setting the snapshot session", e))?;
    Ok(conn)
}

/// The base tables that `wanted` and the stream's `filter` both keep, in
/// name order (never the system schemas; a filter never keeps the
/// snapshot's own, [`SIGNAL_SCHEMA`]).
pub async fn tables(
    conn: &mut Conn,
    wanted: &TableFilter,
    filter: &TableFilter,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN \
             ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(|e| Error::mysql("listing tables to snapshot", e))?;
    Ok(rows
        .into_iter()
        .filter(|(s, t)| wanted.keeps(s, t) && filter.keeps(s, t))
        .collect())
}

/// Whether this connection's user may read `schema.table`: an error
/// naming the table when it does not exist, or when the user lacks SELECT
/// on it (with the GRANT an administrator runs).
pub async fn readable(conn: &mut Conn, schema: &str, table: &str) -> Result<()> {
    use crate::error::server_codes::{
        ER_DBACCESS_DENIED_ERROR, ER_NO_SUCH_TABLE, ER_TABLEACCESS_DENIED_ERROR,
    };
    let refuse = |msg: String| Error::Snapshot {
        table: format!("{schema}.{table}"),
        msg,
    };
    let sql = format!("SELECT 1 FROM {}.{} LIMIT 0", quote(schema), quote(table));
    match conn.query_drop(sql).await {
        Ok(()) => Ok(()),
        Err(mysql_async::Error::Server(e))
            if e.code == ER_TABLEACCESS_DENIED_ERROR || e.code == ER_DBACCESS_DENIED_ERROR =>
        {
            let user: Option<String> = conn
                .query_first("SELECT CURRENT_USER()")
                .await
                .map_err(|e| Error::mysql("SELECT CURRENT_USER()", e))?;
            let user = user.unwrap_or_default();
            let (name, host) = user.rsplit_once('@').unwrap_or((&user, "%"));
            Err(refuse(format!(
                "binlog-cdc's database user may not read it; as an administrator, run: \
                 GRANT SELECT ON {}.* TO '{name}'@'{host}' (or update the stack, whose init-db \
                 grants SELECT on the schemas the include patterns reach)",
                quote(schema)
            )))
        }
        Err(mysql_async::Error::Server(e)) if e.code == ER_NO_SUCH_TABLE => {
            Err(refuse("the table does not exist".into()))
        }
        Err(e) => Err(Error::mysql(format!("reading {schema}.{table}"), e)),
    }
}

/// The table's columns and key; a table without a primary key is refused
/// (its rows could not be told apart from the stream's changes).
pub async fn describe(conn: &mut Conn, schema: &str, table: &str) -> Result<SnapshotTable> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );
    let rows: Vec<Row> = conn
        .exec(
            "SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE, c.CHARACTER_SET_NAME, \
               c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, k.ORDINAL_POSITION \
             FROM information_schema.COLUMNS c LEFT JOIN information_schema.KEY_COLUMN_USAGE k \
               ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME \
               AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY' \
             WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION",
            (schema, table),
        )
        .await
        .map_err(|e| Error::mysql(format!("reading the columns of {schema}.{table}"), e))?;
    let info: Vec<InfoRow> = rows
        .into_iter()
        .map(
            |(name, data_type, column_type, charset, p, s, d, k)| InfoRow {
                name,
                data_type,
                column_type,
                charset,
                numeric_precision: p,
                numeric_scale: s,
                datetime_precision: d,
                key_ordinal: k,
            },
        )
        .collect();
    let refuse = |msg: String| Error::Snapshot {
        table: format!("{schema}.{table}"),
        msg,
    };
    if info.is_empty() {
        // information_schema shows a table only to a user who may use it.
        readable(conn, schema, table).await?;
        return Err(refuse("the table is gone".into()));
    }
    let mariadb = server::is_mariadb(conn).await?;
    let t = SnapshotTable::new(schema, table, &info, mariadb).map_err(refuse)?;
    if t.meta.primary_key.is_empty() {
        return Err(refuse(
            "the table has no primary key: a snapshot orders rows against the stream by key; \
             add one, or leave the table out of the snapshot's patterns"
                .into(),
        ));
    }
    Ok(t)
}
