//! Table definitions over the stream: what each table statement left, at
//! its position.
//!
//! The server keeps only a table's current definition, so the definition
//! in force at a past position cannot be asked for. The [`Tracker`] follows
//! the statements instead, each applied to the definition in force before it,
//! by the server itself: a [`Replayer`] creates a temporary table with the
//! definition before (its own `SHOW CREATE TABLE` text), runs the logged
//! statement on it (rewritten to name it, see
//! [`crate::statement::replay`]) with the session settings the statement was
//! logged with (`sql_mode`, character sets), and reads what the server made
//! of it. Temporary tables are never written to a ROW-format binlog.
//!
//! A chain starts at a table's CREATE in the stream, or at a definition the
//! [`Baseline`] knows (the pipeline's history: a snapshot's reading, or an
//! earlier run's). A table with neither has no known definition, and its
//! statements' events say so (no `definition`); a statement the server
//! refuses on the copy ends the chain the same way.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::statement::columns::ColumnEdits;
use crate::statement::replay::{replay_sql, ReplaySql};
use crate::statement::{StatementKind, TableStatement};

/// A table's definition, as the server shows it. Keys sorted (like every
/// event's), so it is written as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDefinition {
    /// In table order.
    pub columns: Vec<ColumnDefinition>,
    /// The server's `SHOW CREATE TABLE` of it, without foreign keys and
    /// partitioning (which change no column).
    pub create_table: String,
    /// The primary key's columns, in key order (empty: none).
    pub primary_key: Vec<String>,
}

/// One column, as `SHOW FULL COLUMNS` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDefinition {
    /// The collation's character set (`None` for a column without one).
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// The default as the server prints it: a literal's text, or an
    /// expression (`current_timestamp()`; MySQL then says `DEFAULT_GENERATED`
    /// in `extra`); `None` for no default (or DEFAULT NULL).
    pub default: Option<String>,
    /// `auto_increment`, `on update ...`, `VIRTUAL GENERATED`, ...
    pub extra: String,
    pub name: String,
    pub nullable: bool,
    /// The column rule its values are written under (`hash`, `mask(4)`,
    /// ...; see [`crate::column_rules`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The server's column type: `int(11)`, `varchar(20)`, `decimal(12,4)`,
    /// `enum('a','b')`, `bigint unsigned`.
    #[serde(rename = "type")]
    pub column_type: String,
}

/// What the tracker knows of a table at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Defined(Arc<TableDefinition>),
    /// Dropped (or renamed away).
    Gone,
    /// Its definition cannot be known here: why.
    Unknown(String),
}

/// What a table statement left of one table, at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub schema: String,
    pub table: String,
    pub position: crate::BinlogPosition,
    pub kind: StatementKind,
    pub after: Known,
}

/// The session settings a statement was logged with (its Query event's
/// status variables), applied before it is replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub sql_mode: Option<u64>,
    /// character_set_client, collation_connection, collation_server (ids).
    pub charsets: Option<(u16, u16, u16)>,
    pub explicit_defaults_for_timestamp: Option<bool>,
}

/// A row that existed before a statement, as the statement left it: each
/// column's value as an event writes it, by name (see
/// [`Replayer::existing_row`]).
pub(crate) type ExistingRow = Vec<(String, serde_json::Value)>;

/// What a replay gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Defined(TableDefinition),
    /// The server refused a step: its message.
    Refused(String),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs statements on a temporary table named [`Replayer::temporary`] in
/// `schema` and reads its definition (see `server_replay`).
pub trait Replayer: Send {
    /// The quoted, qualified name of the temporary table in `schema`.
    fn temporary(&self, schema: &str) -> String;

    fn replay<'a>(
        &'a mut self,
        schema: &'a str,
        session: &'a Session,
        steps: &'a [String],
    ) -> BoxFuture<'a, Result<Outcome>>;

    /// Replays `steps` (the definition before, then the statement) with one
    /// row inserted between them, every column at its default, and reads
    /// that row after the statement: what a row that existed before holds
    /// in a column the statement added with a constant default. `None` when
    /// the server refuses a step.
    fn existing_row<'a>(
        &'a mut self,
        schema: &'a str,
        session: &'a Session,
        steps: &'a [String],
    ) -> BoxFuture<'a, Result<Option<ExistingRow>>>;
}

/// Where a table's definition comes from when the stream has not shown it:
/// its definition just before the statement at `at` (when known), or `None`
/// when nothing is known.
pub trait Baseline: Send {
    fn before<'a>(
        &'a mut self,
        schema: &'a str,
        table: &'a str,
        at: Option<&'a crate::BinlogPosition>,
    ) -> BoxFuture<'a, Result<Option<Known>>>;
}

/// Follows table statements, keeping each table's definition.
#[derive(Default)]
pub struct Tracker {
    known: HashMap<(String, String), Known>,
    replayer: Option<Box<dyn Replayer>>,
    baseline: Option<Box<dyn Baseline>>,
    /// The position of the statement being followed (see [`Tracker::at`]).
    at: Option<crate::BinlogPosition>,
}

impl Tracker {
    pub fn new(replayer: Option<Box<dyn Replayer>>, baseline: Option<Box<dyn Baseline>>) -> Self {
        Self {
            known: HashMap::new(),
            replayer,
            baseline,
            at: None,
        }
    }

    /// The statements that follow are at `at`: a table the stream has not
    /// shown is asked of the baseline as it was just before.
    pub fn at(&mut self, at: &crate::BinlogPosition) {
        self.at = Some(at.clone());
    }

    /// Every table whose definition this tracker followed, and what it is.
    pub fn known(&self) -> impl Iterator<Item = (&(String, String), &Known)> {
        self.known.iter()
    }

    /// What is known of `schema.table` now.
    pub async fn get(&mut self, schema: &str, table: &str) -> Result<Known> {
        let key = (schema.to_string(), table.to_string());
        if let Some(k) = self.known.get(&key) {
            return Ok(k.clone());
        }
        let found = match self.baseline.as_mut() {
            Some(b) => b.before(schema, table, self.at.as_ref()).await?,
            None => None,
        };
        let k = found.unwrap_or_else(|| Known::Unknown("no definition before it: neither its CREATE TABLE in the stream nor a snapshot of it".into()));
        self.known.insert(key, k.clone());
        Ok(k)
    }

    /// What is known of the first table `st` touches before it (`None` for
    /// a statement about a whole schema).
    pub async fn before(&mut self, st: &TableStatement) -> Result<Option<Known>> {
        match st.tables.first() {
            Some(t) => match t.table.as_deref() {
                Some(table) => Ok(Some(self.get(&t.schema, table).await?)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Applies `st` (logged as `sql`, in `session`); returns the definition
    /// after it of each table it touched (under its new name for a rename).
    pub async fn apply(
        &mut self,
        st: &TableStatement,
        sql: &[u8],
        session: &Session,
    ) -> Result<Vec<Known>> {
        let mut after = Vec::with_capacity(st.tables.len());
        for t in &st.tables {
            let Some(table) = t.table.as_deref() else {
                if st.kind == StatementKind::DropDatabase {
                    self.drop_schema(&t.schema);
                }
                after.push(Known::Gone);
                continue;
            };
            let name = t.renamed_to.as_ref().map_or(table, |(_, n)| n.as_str());
            let k = match st.kind {
                StatementKind::Drop => Known::Gone,
                StatementKind::Create if self.exists(&t.schema, table).await? => {
                    // IF NOT EXISTS on a table that exists: unchanged.
                    self.get(&t.schema, table).await?
                }
                StatementKind::Create | StatementKind::Replace => match &st.like {
                    Some((schema, source)) => self.like(schema, source).await?,
                    None => self.replay(&t.schema, None, sql, st, session).await?,
                },
                _ => {
                    let before = self.get(&t.schema, table).await?;
                    self.replay(&t.schema, Some(before), sql, st, session)
                        .await?
                }
            };
            // A definition reads with the table's (new) name.
            let k = match k {
                Known::Defined(d) if rename_create(&d.create_table, name) != d.create_table => {
                    let mut d = (*d).clone();
                    d.create_table = rename_create(&d.create_table, name);
                    Known::Defined(Arc::new(d))
                }
                k => k,
            };
            let key = (t.schema.clone(), table.to_string());
            match &t.renamed_to {
                Some((s, n)) => {
                    self.known.insert(key, Known::Gone);
                    self.known.insert((s.clone(), n.clone()), k.clone());
                }
                None => {
                    self.known.insert(key, k.clone());
                }
            }
            after.push(k);
        }
        Ok(after)
    }

    /// The definition a `SHOW CREATE TABLE` text of `schema`'s table
    /// describes (a snapshot's reading), as the server makes it.
    pub async fn from_show_create(&mut self, schema: &str, create: &str) -> Result<Known> {
        match crate::statement::classify(create.as_bytes(), schema) {
            crate::statement::Classified::Table(st) if st.kind == StatementKind::Create => {
                let after = self
                    .apply(&st, create.as_bytes(), &Session::default())
                    .await?;
                Ok(after.into_iter().next().unwrap_or(Known::Gone))
            }
            _ => Ok(Known::Unknown("its SHOW CREATE TABLE does not read".into())),
        }
    }

    async fn exists(&mut self, schema: &str, table: &str) -> Result<bool> {
        Ok(matches!(self.get(schema, table).await?, Known::Defined(_)))
    }

    /// Every table of `schema` is gone.
    fn drop_schema(&mut self, schema: &str) {
        for ((s, _), k) in self.known.iter_mut() {
            if s == schema {
                *k = Known::Gone;
            }
        }
    }

    /// CREATE TABLE ... LIKE `schema.source`: the source's definition.
    async fn like(&mut self, schema: &str, source: &str) -> Result<Known> {
        Ok(match self.get(schema, source).await? {
            Known::Defined(d) => Known::Defined(d),
            Known::Gone => Known::Unknown(format!("its source {schema}.{source} does not exist")),
            unknown => unknown,
        })
    }

    /// The definition after `sql`, replayed on a copy of `before` (`None`:
    /// a CREATE, replayed alone).
    async fn replay(
        &mut self,
        schema: &str,
        before: Option<Known>,
        sql: &[u8],
        st: &TableStatement,
        session: &Session,
    ) -> Result<Known> {
        let Some(replayer) = self.replayer.as_mut() else {
            return Ok(Known::Unknown(
                "no server to replay statements on (a local file)".into(),
            ));
        };
        let tmp = replayer.temporary(schema);
        let steps = match plan(&tmp, schema, before, sql, st) {
            Plan::Run(steps) => steps,
            Plan::Known(k) => return Ok(k),
        };
        Ok(match replayer.replay(schema, session, &steps).await? {
            Outcome::Defined(d) => Known::Defined(Arc::new(d)),
            Outcome::Refused(why) => {
                Known::Unknown(format!("the server refused it on a copy: {why}"))
            }
        })
    }

    /// What a row of the first table `st` touches, existing before it (whose
    /// definition was `before`), holds after it (see
    /// [`Replayer::existing_row`]); `None` when that cannot be known here.
    pub(crate) async fn existing_row(
        &mut self,
        st: &TableStatement,
        sql: &[u8],
        session: &Session,
        before: &Known,
    ) -> Result<Option<ExistingRow>> {
        let (Some(replayer), Some(t)) = (self.replayer.as_mut(), st.tables.first()) else {
            return Ok(None);
        };
        let tmp = replayer.temporary(&t.schema);
        match plan(&tmp, &t.schema, Some(before.clone()), sql, st) {
            Plan::Run(steps) if steps.len() == 2 => {
                replayer.existing_row(&t.schema, session, &steps).await
            }
            _ => Ok(None),
        }
    }
}

/// How a statement's definition is found: by these steps on the temporary
/// table, or without a replay.
enum Plan {
    Run(Vec<String>),
    Known(Known),
}

/// The steps that replay `sql` (classified as `st`) on `tmp`, a copy of
/// `before` (`None`: a CREATE, replayed alone).
fn plan(tmp: &str, schema: &str, before: Option<Known>, sql: &[u8], st: &TableStatement) -> Plan {
    let unreadable = || {
        Plan::Known(Known::Unknown(
            "its stored definition does not read back".into(),
        ))
    };
    let mut steps = Vec::new();
    let before = match before {
        None => None,
        Some(Known::Defined(d)) => {
            // The definition before, recreated as the temporary table.
            let crate::statement::Classified::Table(create) =
                crate::statement::classify(d.create_table.as_bytes(), schema)
            else {
                return unreadable();
            };
            let ReplaySql::Run(first) = replay_sql(d.create_table.as_bytes(), &create, tmp) else {
                return unreadable();
            };
            steps.push(first);
            Some(d)
        }
        Some(other) => return Plan::Known(other),
    };
    match replay_sql(sql, st, tmp) {
        ReplaySql::Run(s) => steps.push(s),
        ReplaySql::Unchanged => {
            if let Some(d) = before {
                return Plan::Known(Known::Defined(d));
            }
        }
        ReplaySql::Cannot(why) => return Plan::Known(Known::Unknown(why.to_string())),
    }
    Plan::Run(steps)
}

/// Whether a table's rows are the same under `after` as under `before`:
/// both known, the same columns in the same order (name, type,
/// nullability, character set and collation: defaults and `extra` may
/// differ, they change no stored value) and the same primary key.
pub(crate) fn rows_unchanged(before: &Known, after: &Known) -> bool {
    let (Known::Defined(b), Known::Defined(a)) = (before, after) else {
        return false;
    };
    b.primary_key == a.primary_key
        && b.columns.len() == a.columns.len()
        && b.columns
            .iter()
            .zip(&a.columns)
            .all(|(x, y)| same_column(x, y, &x.name))
}

/// Whether `x`, named `x_name` now, holds its values as `y` does: the same
/// name, type, nullability, character set and collation.
fn same_column(x: &ColumnDefinition, y: &ColumnDefinition, x_name: &str) -> bool {
    (x_name, &x.column_type, x.nullable, &x.charset, &x.collation)
        == (
            y.name.as_str(),
            &y.column_type,
            y.nullable,
            &y.charset,
            &y.collation,
        )
}

/// How the rows a consumer holds follow an ALTER that only adds, drops and
/// renames columns: the dropped columns, the renamed ones (values kept),
/// and each added column with the value every existing row now has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldRows {
    /// By name, sorted (as events write objects).
    pub added: Vec<(String, serde_json::Value)>,
    pub dropped: Vec<String>,
    /// `(old, new)`, sorted by old name.
    pub renamed: Vec<(String, String)>,
}

/// The rule for `edits` between `before` and `after`, when the definitions
/// bear it out (the other columns and the key unchanged) and each added
/// column holds one value in every existing row, read from `existing` (a
/// row that existed before, as the server left it); `None` otherwise (an
/// expression default, an auto-increment or generated column, a TIMESTAMP).
pub(crate) fn held_rows(
    before: &Known,
    after: &Known,
    edits: &ColumnEdits,
    existing: Option<&ExistingRow>,
) -> Option<HeldRows> {
    let (Known::Defined(b), Known::Defined(a)) = (before, after) else {
        return None;
    };
    // A column is named once: a statement that drops, adds or renames the
    // same name twice is left to a snapshot.
    let mut names: Vec<&String> = edits.added.iter().chain(&edits.dropped).collect();
    names.extend(
        edits
            .renamed
            .iter()
            .filter(|(o, n)| o != n)
            .flat_map(|(o, n)| [o, n]),
    );
    let count = names.len();
    names.sort();
    names.dedup();
    if names.len() != count {
        return None;
    }
    let new_name = |old: &String| -> String {
        let renamed = edits.renamed.iter().find(|(o, _)| o == old);
        renamed.map_or(old, |(_, n)| n).clone()
    };
    let same = |x: &ColumnDefinition, y: &ColumnDefinition| same_column(x, y, &new_name(&x.name));
    let kept_before = b
        .columns
        .iter()
        .filter(|c| !edits.dropped.contains(&c.name));
    let kept_after = a.columns.iter().filter(|c| !edits.added.contains(&c.name));
    let kept: Vec<_> = kept_before.zip(kept_after).collect();
    let counts_match = kept.len() + edits.dropped.len() == b.columns.len()
        && kept.len() + edits.added.len() == a.columns.len();
    if b.primary_key != a.primary_key || !counts_match || !kept.iter().all(|(x, y)| same(x, y)) {
        return None;
    }
    let mut added = Vec::with_capacity(edits.added.len());
    for name in &edits.added {
        let c = a.columns.iter().find(|c| &c.name == name)?;
        added.push((name.clone(), existing_value(c, &a.create_table, existing)?));
    }
    added.sort_by(|x, y| x.0.cmp(&y.0));
    let mut renamed: Vec<(String, String)> = edits
        .renamed
        .iter()
        .filter(|(o, n)| o != n)
        .cloned()
        .collect();
    renamed.sort();
    Some(HeldRows {
        added,
        dropped: edits.dropped.clone(),
        renamed,
    })
}

/// What existing rows hold in a column just added, when it is one value
/// for all of them: NULL for a nullable column without a default, else the
/// value the server gave `existing` (a constant default: a literal, or the
/// type's implicit one for a NOT NULL column without a default).
fn existing_value(
    c: &ColumnDefinition,
    create_table: &str,
    existing: Option<&ExistingRow>,
) -> Option<serde_json::Value> {
    let extra = c.extra.to_ascii_lowercase();
    // A value per row: numbered, computed from the row, or an expression
    // (`DEFAULT_GENERATED` is MySQL's mark; MariaDB's shows in the CREATE).
    let per_row = [
        "auto_increment",
        "generated",
        "virtual",
        "stored",
        "persistent",
    ]
    .iter()
    .any(|w| extra.contains(w))
        || (c.default.is_some() && !default_is_literal(&c.name, create_table));
    // A TIMESTAMP's literal default is read in the session's time zone,
    // which the replay does not have.
    let timestamp = c.column_type.to_ascii_lowercase().starts_with("timestamp");
    if per_row || timestamp {
        return None;
    }
    if c.default.is_none() && c.nullable {
        return Some(serde_json::Value::Null);
    }
    existing?
        .iter()
        .find(|(name, _)| name == &c.name)
        .map(|(_, v)| v.clone())
}

/// Whether `SHOW CREATE TABLE` writes the column's default as a literal (a
/// quoted string, a bit or hex literal, or a bare number), not an expression (MariaDB prints
/// both unquoted in SHOW COLUMNS).
fn default_is_literal(column: &str, create_table: &str) -> bool {
    let head = format!("`{}` ", column.replace('`', "``"));
    let Some(line) = create_table
        .lines()
        .find(|l| l.trim_start().starts_with(&head))
    else {
        return false;
    };
    let Some((_, after)) = line.split_once(" DEFAULT ") else {
        return false;
    };
    // A quoted string, a bit or hex literal (`b'101'`), or a number.
    ["'", "b'", "x'", "B'", "X'"]
        .iter()
        .any(|q| after.starts_with(q))
        || after
            .split([' ', ','])
            .next()
            .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
}

/// `CREATE [TEMPORARY] TABLE `x` (...` with the name `table` instead (and
/// without TEMPORARY): how a definition's `createTable` reads.
pub(crate) fn rename_create(create: &str, table: &str) -> String {
    let Some(open) = create.find('(') else {
        return create.to_string();
    };
    let quoted = format!("`{}`", table.replace('`', "``"));
    format!("CREATE TABLE {quoted} {}", &create[open..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, default: Option<&str>) -> ColumnDefinition {
        ColumnDefinition {
            charset: None,
            collation: None,
            default: default.map(str::to_string),
            extra: String::new(),
            name: name.into(),
            nullable: false,
            rule: None,
            column_type: "int".into(),
        }
    }

    fn defined(columns: Vec<ColumnDefinition>, key: &[&str]) -> Known {
        Known::Defined(Arc::new(TableDefinition {
            columns,
            create_table: String::new(),
            primary_key: key.iter().map(|k| k.to_string()).collect(),
        }))
    }

    #[test]
    fn rows_are_unchanged_by_an_index_or_a_default_only() {
        let before = defined(vec![column("a", None), column("b", None)], &["a"]);
        let new_default = defined(vec![column("a", None), column("b", Some("7"))], &["a"]);
        assert!(rows_unchanged(&before, &before));
        assert!(rows_unchanged(&before, &new_default));
        let added = defined(
            vec![column("a", None), column("b", None), column("c", None)],
            &["a"],
        );
        assert!(!rows_unchanged(&before, &added));
        let renamed = defined(vec![column("a", None), column("x", None)], &["a"]);
        assert!(!rows_unchanged(&before, &renamed));
        let new_key = defined(vec![column("a", None), column("b", None)], &["a", "b"]);
        assert!(!rows_unchanged(&before, &new_key));
        assert!(!rows_unchanged(&Known::Unknown("?".into()), &before));
    }

    #[test]
    fn a_definition_reads_with_its_own_name() {
        assert_eq!(
            rename_create(
                "CREATE TEMPORARY TABLE `_binlog_cdc_replay` (\n  `id` int\n)",
                "a`b"
            ),
            "CREATE TABLE `a``b` (\n  `id` int\n)"
        );
    }
}
