//! Replays table statements on a temporary table of the server's, over a
//! plain connection, and reads the definition the server made of them (the
//! [`Replayer`] of `crate::definition`), and a row in it as the snapshot
//! reads rows (`crate::snapshot`'s columns and encoding). It stands above
//! both, so neither imports up to it.
//!
//! A temporary table lives in this session only, is never written to a
//! ROW-format binlog, and needs only the CREATE TEMPORARY TABLES privilege
//! on its schema; the server applies each statement with its own rules, so
//! types, defaults, collations and keys are the server's, not a parser's
//! guess.

use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use crate::definition::{
    ColumnDefinition, ExistingRow, Outcome, Replayer, Session, TableDefinition,
};
use crate::error::{Error, Result};
use crate::snapshot::columns::{InfoRow, SnapshotTable};
use crate::snapshot::encode;
use crate::source::connect::{connect, ConnectOptions};
use crate::statement::redact::redact;

/// The temporary table's name, in the schema of the table replayed.
const TEMPORARY: &str = "_binlog_cdc_replay";

/// Connects on its first replay: most ranges have no table statement.
pub struct ServerReplay {
    db: ConnectOptions,
    conn: Option<Conn>,
}

impl ServerReplay {
    pub fn new(db: &ConnectOptions) -> Self {
        Self {
            db: db.clone(),
            conn: None,
        }
    }

    async fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.db).await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Config("the replay connection is gone".into()))
    }

    async fn run(&mut self, schema: &str, session: &Session, steps: &[String]) -> Result<Outcome> {
        let tmp = quoted(schema, TEMPORARY);
        self.exec(&format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
            .await?;
        if let Some(refused) = self.set_session(session).await? {
            return Ok(refused);
        }
        for step in steps {
            if let Err(e) = self.conn().await?.query_drop(step).await {
                return refused_or_err(e, "replaying a table statement");
            }
        }
        let definition = self.definition(&tmp).await;
        self.exec(&format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
            .await?;
        definition.map(Outcome::Defined)
    }

    /// [`Replayer::existing_row`]: the steps with a row of defaults
    /// inserted after the first (`INSERT IGNORE`, so that strict mode gives
    /// a NOT NULL column without a default its implicit value, as it does
    /// to the rows an ALTER finds), then that row read as a snapshot reads
    /// one and written as events write it.
    async fn existing(
        &mut self,
        schema: &str,
        session: &Session,
        steps: &[String],
    ) -> Result<Option<ExistingRow>> {
        let tmp = quoted(schema, TEMPORARY);
        let Some((create, statement)) = steps.split_first() else {
            return Ok(None);
        };
        self.exec(&format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
            .await?;
        if self.set_session(session).await?.is_some() {
            return Ok(None);
        }
        let insert = format!("INSERT IGNORE INTO {tmp} () VALUES ()");
        let mut run = vec![create.as_str(), insert.as_str()];
        run.extend(statement.iter().map(String::as_str));
        for step in run {
            if let Err(e) = self.conn().await?.query_drop(step).await {
                return refused_or_err(e, "replaying a table statement").map(|_| None);
            }
        }
        let row = self.read_row(&tmp).await;
        self.exec(&format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
            .await?;
        row
    }

    /// The one row of `tmp`, each column as an event writes it.
    async fn read_row(&mut self, tmp: &str) -> Result<Option<ExistingRow>> {
        let definition = self.definition(tmp).await?;
        let info: Vec<InfoRow> = definition
            .columns
            .iter()
            .map(InfoRow::from_definition)
            .collect();
        // Shown types say JSON only on MySQL (MariaDB's is LONGTEXT).
        let Ok(table) = SnapshotTable::new("", TEMPORARY, &info, false) else {
            return Ok(None);
        };
        let conn = self.conn().await?;
        // As the snapshot reads rows: stored bytes, TIMESTAMP in UTC; then
        // the session as the connection began it (utf8mb4 results, the
        // server's time zone) for the next replay.
        let read = "SET SESSION character_set_results = binary, time_zone = '+00:00'";
        conn.query_drop(read)
            .await
            .map_err(|e| Error::mysql("reading a replayed row", e))?;
        let row: Option<Row> = conn
            .exec_first(format!("SELECT {} FROM {tmp}", table.select_list()), ())
            .await
            .map_err(|e| Error::mysql("reading a replayed row", e))?;
        conn.query_drop("SET SESSION character_set_results = utf8mb4, time_zone = DEFAULT")
            .await
            .map_err(|e| Error::mysql("reading a replayed row", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let values: Vec<mysql_async::Value> = row
            .unwrap_raw()
            .into_iter()
            .map(|v| v.unwrap_or(mysql_async::Value::NULL))
            .collect();
        let mut out = Vec::with_capacity(values.len());
        for ((col, read), v) in table.meta.columns.iter().zip(&table.reads).zip(&values) {
            let mut buf = Vec::new();
            if encode::value(&col.kind, *read, v, &mut buf).is_err() {
                return Ok(None);
            }
            let Ok(json) = serde_json::from_slice(&buf) else {
                return Ok(None);
            };
            out.push((col.name.clone(), json));
        }
        Ok(Some(out))
    }

    /// The statement's `sql_mode` and character sets, as logged.
    async fn set_session(&mut self, s: &Session) -> Result<Option<Outcome>> {
        let mut sets = Vec::new();
        if let Some(mode) = s.sql_mode {
            sets.push(format!("sql_mode = {mode}"));
        }
        if let Some((client, connection, server)) = s.charsets {
            sets.push(format!(
                "character_set_client = {client}, collation_connection = {connection}, collation_server = {server}"
            ));
        }
        if let Some(explicit) = s.explicit_defaults_for_timestamp {
            sets.push(format!(
                "explicit_defaults_for_timestamp = {}",
                u8::from(explicit)
            ));
        }
        if sets.is_empty() {
            return Ok(None);
        }
        let set = format!("SET SESSION {}", sets.join(", "));
        match self.conn().await?.query_drop(set).await {
            Ok(()) => Ok(None),
            Err(e) => refused_or_err(e, "setting a statement's session").map(Some),
        }
    }

    async fn definition(&mut self, tmp: &str) -> Result<TableDefinition> {
        let conn = self.conn().await?;
        let create: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE {tmp}"))
            .await
            .map_err(|e| Error::mysql("reading a replayed definition", e))?;
        let rows: Vec<Row> = conn
            .query(format!("SHOW FULL COLUMNS FROM {tmp}"))
            .await
            .map_err(|e| Error::mysql("reading a replayed definition's columns", e))?;
        let columns = rows.into_iter().map(column).collect::<Result<Vec<_>>>()?;
        let keys: Vec<Row> = conn
            .query(format!("SHOW KEYS FROM {tmp} WHERE Key_name = 'PRIMARY'"))
            .await
            .map_err(|e| Error::mysql("reading a replayed definition's key", e))?;
        let mut primary: Vec<(u64, String)> = keys
            .into_iter()
            .map(|r| Ok((text::<u64>(&r, "Seq_in_index")?, text(&r, "Column_name")?)))
            .collect::<Result<_>>()?;
        primary.sort();
        Ok(TableDefinition {
            columns,
            create_table: create
                .map(|(_, c)| redact(&c).into_owned())
                .unwrap_or_default(),
            primary_key: primary.into_iter().map(|(_, c)| c).collect(),
        })
    }

    async fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn()
            .await?
            .query_drop(sql)
            .await
            .map_err(|e| Error::mysql("dropping the replay's temporary table", e))
    }
}

impl Replayer for ServerReplay {
    fn temporary(&self, schema: &str) -> String {
        quoted(schema, TEMPORARY)
    }

    fn replay<'a>(
        &'a mut self,
        schema: &'a str,
        session: &'a Session,
        steps: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>> {
        Box::pin(self.run(schema, session, steps))
    }

    fn existing_row<'a>(
        &'a mut self,
        schema: &'a str,
        session: &'a Session,
        steps: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<ExistingRow>>> + Send + 'a>>
    {
        Box::pin(self.existing(schema, session, steps))
    }
}

/// A server's refusal is the replay's outcome (the definition is then not
/// known); anything else (the connection) is an error.
fn refused_or_err(e: mysql_async::Error, context: &str) -> Result<Outcome> {
    match e {
        mysql_async::Error::Server(s) => {
            // The message may quote the statement.
            Ok(Outcome::Refused(format!(
                "{} ({})",
                redact(&s.message),
                s.code
            )))
        }
        other => Err(Error::mysql(context, other)),
    }
}

/// One row of `SHOW FULL COLUMNS`.
fn column(r: Row) -> Result<ColumnDefinition> {
    let collation: Option<String> = text(&r, "Collation")?;
    Ok(ColumnDefinition {
        // A collation's name starts with its character set's (no character
        // set's name has an underscore): `utf8mb4_general_ci`, `binary`.
        charset: collation
            .as_deref()
            .map(|c| c.split('_').next().unwrap_or(c).to_string()),
        collation,
        default: text(&r, "Default")?,
        extra: text::<Option<String>>(&r, "Extra")?.unwrap_or_default(),
        name: text(&r, "Field")?,
        nullable: text::<String>(&r, "Null")? == "YES",
        rule: None,
        column_type: text(&r, "Type")?,
    })
}

fn text<T: FromValue>(r: &Row, column: &str) -> Result<T> {
    r.get_opt::<T, _>(column)
        .and_then(|v| v.ok())
        .ok_or_else(|| Error::Config(format!("the server's SHOW output has no readable {column}")))
}

fn quoted(schema: &str, table: &str) -> String {
    format!(
        "`{}`.`{}`",
        schema.replace('`', "``"),
        table.replace('`', "``")
    )
}
