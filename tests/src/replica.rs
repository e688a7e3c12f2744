//! The consumer's rule of docs/EVENTS.md, implemented once: every test
//! that rebuilds tables from committed events applies them here.
//!
//! Events of every table are ordered by `(position, index)` (positions as
//! binlog positions) and applied in that order:
//! - `SnapshotRowEvent`, `WriteRowsEvent`: the row with this key is `newImage`;
//! - `UpdateRowsEvent`: remove the row with the old key, set the new one;
//! - `DeleteRowsEvent`: remove the row with this key;
//! - `SchemaChangeEvent` by `kind`: `create` makes the table known (rows
//!   held under the name stay: only `IF NOT EXISTS` can name a table that
//!   exists); `replace` and `truncate` empty it; `drop` removes it;
//!   `drop-database` removes every table of the schema; with `newSchema`
//!   and `newTable` (a rename) the rows move to the new name; with
//!   `columnsAdded`/`columnsDropped`/`columnsRenamed` every held row loses
//!   each dropped column, renames each renamed one (its value kept) and
//!   gains each added column with its value. With `snapshotNeeded` the
//!   table's rows are removed and marked as needing a snapshot: its
//!   `SnapshotRowEvent`s (and later changes) bring them back.
//!
//! A statement about a rename is listed under both names: it is applied
//! once.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use binlog_cdc::BinlogPosition;
use serde_json::Value;

/// Tables by `schema.table`, each its rows by key (key values joined by `|`).
#[derive(Debug, Default)]
pub struct Replica {
    pub tables: BTreeMap<String, BTreeMap<String, Value>>,
    /// Tables a statement left needing a snapshot, not yet taken.
    pub needs_snapshot: BTreeSet<String>,
}

impl Replica {
    /// Applies `events` (of any tables, in any order) by the rule.
    pub fn rebuild(mut events: Vec<Value>) -> Self {
        events.sort_by_key(order);
        let mut replica = Replica::default();
        let mut seen = HashSet::new();
        for e in &events {
            if e["type"] == "SchemaChangeEvent" && !seen.insert(e.to_string()) {
                continue;
            }
            replica.apply(e);
        }
        replica
    }

    /// One table's rows (empty when it is not held).
    pub fn rows(&self, table: &str) -> BTreeMap<String, Value> {
        self.tables.get(table).cloned().unwrap_or_default()
    }

    fn apply(&mut self, e: &Value) {
        let name = format!("{}.{}", s(e, "schema"), s(e, "table"));
        match s(e, "type") {
            "SnapshotRowEvent" | "WriteRowsEvent" => {
                if e["type"] == "SnapshotRowEvent" {
                    self.needs_snapshot.remove(&name);
                }
                let rows = self.tables.entry(name).or_default();
                rows.insert(key(&e["newImage"], e), e["newImage"].clone());
            }
            "UpdateRowsEvent" => {
                let rows = self.tables.entry(name).or_default();
                rows.remove(&key(&e["oldImage"], e));
                rows.insert(key(&e["newImage"], e), e["newImage"].clone());
            }
            "DeleteRowsEvent" => {
                let rows = self.tables.entry(name).or_default();
                rows.remove(&key(&e["oldImage"], e));
            }
            "SchemaChangeEvent" => self.apply_statement(e, name),
            t => panic!("unexpected event type {t}: {e}"),
        }
    }

    fn apply_statement(&mut self, e: &Value, name: String) {
        let schema = s(e, "schema");
        match s(e, "kind") {
            "create" => {
                self.tables.entry(name.clone()).or_default();
            }
            "replace" | "truncate" => {
                self.tables.insert(name.clone(), BTreeMap::new());
            }
            "drop" => {
                self.tables.remove(&name);
            }
            "drop-database" => {
                let prefix = format!("{schema}.");
                self.tables.retain(|t, _| !t.starts_with(&prefix));
                self.needs_snapshot.retain(|t| !t.starts_with(&prefix));
            }
            _ => {}
        }
        let name = match (e.get("newSchema"), e.get("newTable")) {
            (Some(ns), Some(nt)) => {
                let to = format!("{}.{}", ns.as_str().unwrap(), nt.as_str().unwrap());
                let rows = self.tables.remove(&name).unwrap_or_default();
                self.tables.insert(to.clone(), rows);
                if self.needs_snapshot.remove(&name) {
                    self.needs_snapshot.insert(to.clone());
                }
                to
            }
            _ => name,
        };
        if let Some(added) = e.get("columnsAdded").and_then(Value::as_object) {
            let dropped = e["columnsDropped"].as_array().cloned().unwrap_or_default();
            let renamed = e["columnsRenamed"].as_object().cloned().unwrap_or_default();
            for row in self.tables.entry(name.clone()).or_default().values_mut() {
                let Some(row) = row.as_object_mut() else {
                    continue;
                };
                for column in &dropped {
                    row.remove(column.as_str().unwrap_or_default());
                }
                for (old, new) in &renamed {
                    if let Some(v) = row.remove(old) {
                        row.insert(new.as_str().unwrap_or_default().to_string(), v);
                    }
                }
                for (column, value) in added {
                    row.insert(column.clone(), value.clone());
                }
            }
        }
        if e["snapshotNeeded"] == true {
            if e.get("table").is_some() {
                self.tables.insert(name.clone(), BTreeMap::new());
                self.needs_snapshot.insert(name);
            } else {
                // Some table of the schema: every one of them.
                let prefix = format!("{schema}.");
                for (t, rows) in self
                    .tables
                    .iter_mut()
                    .filter(|(t, _)| t.starts_with(&prefix))
                {
                    rows.clear();
                    self.needs_snapshot.insert(t.clone());
                }
            }
        }
    }
}

fn s<'a>(e: &'a Value, field: &str) -> &'a str {
    e[field].as_str().unwrap_or("")
}

/// `(position, index)`, positions compared as binlog positions.
fn order(e: &Value) -> (BinlogPosition, u64) {
    let pos: BinlogPosition = s(e, "position").parse().expect("a position");
    (pos, e["index"].as_u64().expect("an index"))
}

/// The row's key: its `keys` columns' values in `img`, joined by `|`.
fn key(img: &Value, e: &Value) -> String {
    let names: Vec<&String> = e["keys"].as_object().expect("keys").keys().collect();
    names
        .iter()
        .map(|n| img[n.as_str()].to_string())
        .collect::<Vec<_>>()
        .join("|")
}

/// `SELECT * FROM table` as JSON objects the way events write them (numbers
/// as numbers, text as strings; the text protocol gives both as text), sorted
/// by their JSON text: what a rebuilt table is compared with.
pub async fn select_rows(url: &str, table: &str) -> Vec<Value> {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let rows: Vec<mysql_async::Row> =
        mysql_async::prelude::Queryable::query(&mut conn, format!("SELECT * FROM {table}"))
            .await
            .expect("select");
    let mut out: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let mut obj = serde_json::Map::new();
            for (i, col) in row.columns_ref().iter().enumerate() {
                let v = match row.as_ref(i).expect("value") {
                    mysql_async::Value::NULL => Value::Null,
                    mysql_async::Value::Bytes(b) => {
                        let s = String::from_utf8(b.clone()).expect("utf8");
                        s.parse::<u64>()
                            .map(Value::from)
                            .or_else(|_| s.parse::<i64>().map(Value::from))
                            .unwrap_or(Value::String(s))
                    }
                    other => panic!("unexpected {other:?}"),
                };
                obj.insert(col.name_str().to_string(), v);
            }
            Value::Object(obj)
        })
        .collect();
    out.sort_by_key(|v| v.to_string());
    out
}
