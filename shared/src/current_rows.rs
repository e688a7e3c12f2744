//! The current rows of a table, one query away: SQL (Athena's and DuckDB's
//! common dialect) over a table's `parquet` objects that applies the
//! consumer's rule (docs/EVENTS.md) and returns the table as it stands
//! after the last committed run.
//!
//! What the query does, in the rule's order:
//! - events at or before the table's last emptying statement (TRUNCATE,
//!   `CREATE OR REPLACE`, DROP, DROP DATABASE, a rename away, or any
//!   statement with `snapshotNeeded`) are left out;
//! - of the rest, each key's latest event by `(position, index)` wins
//!   (snapshot rows, inserts and updates hold the row; a delete removes
//!   it), and an update that changed the key removes the old one;
//! - a column added after a row's latest event holds the value the
//!   statement gave every existing row (its `SchemaChangeEvent` row holds it,
//!   typed); a column renamed after it holds the value under its old name.
//!
//! That last part depends on the table's statements since it was last
//! emptied, so the query is generated from them ([`sql`]); it stays right
//! until the table's next statement. Positions compare as `_cdc_file` then
//! `_cdc_pos` (binlog file names of one server sort as their sequence).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::decoder::BinlogPosition;

/// What the query is generated from: one table's statements and columns.
#[derive(Debug, Default)]
pub struct TableStatements {
    pub schema: String,
    pub table: String,
    /// Its `SchemaChangeEvent`s, as written, in any order.
    pub statements: Vec<Value>,
    /// The columns its objects hold (the union of their schemas): the
    /// current columns when no definition is known, and which old names a
    /// query may read.
    pub columns: Vec<String>,
    /// Its key's columns, as its events' `keys` name them (`_cdc_keys`):
    /// used when no definition is known.
    pub keys: Vec<String>,
}

/// A statement's place: (file, pos, index).
type At = (String, u64, u32);

/// A column change after the last emptying statement.
#[derive(Debug)]
enum Change {
    /// `value`: what every existing row got, as the statement's event
    /// writes it (`columnsAdded`).
    Added {
        name: String,
        value: Value,
        /// Its type after the statement (the definition's `type`).
        ty: Option<String>,
        at: At,
    },
    Renamed {
        old: String,
        new: String,
        at: At,
    },
}

/// The SQL returning `t`'s current rows from `source`, a relation of its
/// events (`read_parquet('out/shop/orders/dt=*/*.parquet', union_by_name =
/// true)` in DuckDB; the table's Glue table in Athena).
pub fn sql(source: &str, t: &TableStatements) -> String {
    let statements = ordered(&t.statements);
    let reset = statements
        .iter()
        .rposition(|(_, s)| empties(s, &t.schema, &t.table));
    let after_reset = &statements[reset.map_or(0, |r| r + 1)..];
    let (columns, key) = current_columns(&statements, t);
    let changes = column_changes(after_reset);
    let available: BTreeSet<&str> = t.columns.iter().map(String::as_str).collect();

    let reset_filter = match reset.map(|r| &statements[r].0) {
        Some(at) => format!("\n    AND {}", after("", at)),
        None => String::new(),
    };
    // Each key column (quoted) through `f`, joined by `sep`.
    let per_key = |f: &dyn Fn(&str) -> String, sep: &str| {
        key.iter()
            .map(|k| f(&ident(k)))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let key_cols = per_key(&|k| k.to_string(), ", ");
    let same_key = per_key(
        &|k| format!("{k} IS NOT DISTINCT FROM _cdc_old.{k}"),
        " AND ",
    );
    let old_key = per_key(&|k| format!("_cdc_old.{k} AS {k}"), ", ");
    let moved_match = per_key(&|k| format!("m.{k} IS NOT DISTINCT FROM l.{k}"), " AND ");
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            let v = value(c, changes.len(), &changes, &available);
            format!("  {v} AS {}", ident(c))
        })
        .collect();
    format!(
        "-- The current rows of {schema}.{table} (binlog-cdc, docs/EVENTS.md \
         \"The current rows\"): regenerate after the table's next statement.\n\
         WITH ev AS (\n  SELECT * FROM {source}\n),\n\
         live AS (\n  SELECT * FROM ev\n  WHERE _cdc_type <> 'SchemaChangeEvent'{reset_filter}\n),\n\
         moved AS (\n  SELECT {old_key}, _cdc_file, _cdc_pos, _cdc_index FROM live\n  \
         WHERE _cdc_type = 'UpdateRowsEvent' AND NOT ({same_key})\n),\n\
         latest AS (\n  SELECT *, row_number() OVER (PARTITION BY {key_cols} \
         ORDER BY _cdc_file DESC, _cdc_pos DESC, _cdc_index DESC) AS _cdc_rank\n  FROM live\n)\n\
         SELECT\n{values}\nFROM latest l\n\
         WHERE l._cdc_rank = 1 AND l._cdc_type <> 'DeleteRowsEvent'\n  \
         AND NOT EXISTS (SELECT 1 FROM moved m WHERE {moved_match}\n    \
         AND (m._cdc_file > l._cdc_file OR (m._cdc_file = l._cdc_file AND (m._cdc_pos > l._cdc_pos \
         OR (m._cdc_pos = l._cdc_pos AND m._cdc_index > l._cdc_index)))))\n",
        schema = t.schema,
        table = t.table,
        values = values.join(",\n"),
    )
}

/// DuckDB's relation of the Parquet objects matching `files` (a glob), read
/// together by column name.
pub fn duckdb_source(files: &str) -> String {
    format!(
        "read_parquet({}, union_by_name = true, hive_partitioning = false)",
        literal(files)
    )
}

/// The statements in binlog order, each with its place.
fn ordered(statements: &[Value]) -> Vec<(At, &Value)> {
    let mut out: Vec<(BinlogPosition, u32, &Value)> = statements
        .iter()
        .filter_map(|s| {
            let pos: BinlogPosition = s["position"].as_str()?.parse().ok()?;
            Some((pos, s["index"].as_u64().unwrap_or(0) as u32, s))
        })
        .collect();
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out.into_iter()
        .map(|(p, i, s)| ((p.file().to_string(), p.pos(), i), s))
        .collect()
}

/// Whether statement `s` leaves `schema.table` without rows (the rule's
/// `replace`, `truncate`, `drop`, `drop-database`, `snapshotNeeded`, and a
/// rename in either direction: the rows move to the new name).
fn empties(s: &Value, schema: &str, table: &str) -> bool {
    let kind = s["kind"].as_str().unwrap_or_default();
    let renamed = s.get("newTable").is_some()
        && (s["newSchema"] != s["schema"] || s["newTable"] != s["table"]);
    matches!(kind, "replace" | "truncate" | "drop" | "drop-database")
        || s["snapshotNeeded"] == true
        || (renamed
            && (s["schema"] == schema && s["table"] == table
                || s["newSchema"] == schema && s["newTable"] == table))
}

/// The current columns (a column a rule excludes is in no event) and the
/// key: from the last definition, else from the objects.
fn current_columns(statements: &[(At, &Value)], t: &TableStatements) -> (Vec<String>, Vec<String>) {
    let definition = statements
        .iter()
        .rev()
        .find_map(|(_, s)| s.get("definition").filter(|d| d.is_object()));
    let Some(d) = definition else {
        let key = if t.keys.is_empty() {
            t.columns.clone()
        } else {
            t.keys.clone()
        };
        return (t.columns.clone(), key);
    };
    let names = |v: &Value, skip_excluded: bool| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|c| !(skip_excluded && c["rule"] == "exclude"))
            .filter_map(|c| c.get("name").unwrap_or(c).as_str().map(str::to_string))
            .collect()
    };
    let columns = names(&d["columns"], true);
    let key = names(&d["primaryKey"], false);
    let key = if key.is_empty() { columns.clone() } else { key };
    (columns, key)
}

/// The columns added and renamed by `statements`, in order.
fn column_changes(statements: &[(At, &Value)]) -> Vec<Change> {
    let mut out = Vec::new();
    for (at, s) in statements {
        for (old, new) in s["columnsRenamed"].as_object().into_iter().flatten() {
            if let Some(new) = new.as_str() {
                out.push(Change::Renamed {
                    old: old.clone(),
                    new: new.to_string(),
                    at: at.clone(),
                });
            }
        }
        for (name, value) in s["columnsAdded"].as_object().into_iter().flatten() {
            let ty = s["definition"]["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == name.as_str())
                .and_then(|c| c["type"].as_str())
                .map(str::to_lowercase);
            out.push(Change::Added {
                name: name.clone(),
                value: value.clone(),
                ty,
                at: at.clone(),
            });
        }
    }
    out
}

/// The value of column `name` for a row, given the changes before index
/// `before`: the newest change that made `name` decides what a row written
/// before it holds.
fn value(name: &str, before: usize, changes: &[Change], available: &BTreeSet<&str>) -> String {
    let here = if available.contains(name) {
        format!("l.{}", ident(name))
    } else {
        "NULL".to_string()
    };
    for (k, c) in changes[..before].iter().enumerate().rev() {
        match c {
            Change::Added {
                name: n,
                value,
                ty,
                at,
            } if n == name => {
                let added = added_value(name, &typed_literal(value, ty.as_deref()), at, available);
                return format!("CASE WHEN {} THEN {here} ELSE {added} END", after("l.", at));
            }
            Change::Renamed { old, new, at } if new == name => {
                let older = value(old, k, changes, available);
                return format!("CASE WHEN {} THEN {here} ELSE {older} END", after("l.", at));
            }
            _ => {}
        }
    }
    here
}

/// The value a column added at `at` gave every existing row: typed, from
/// the statement's own row; its object may lack the column (no row event
/// of the table followed the statement in its run), so the event's value
/// as a literal stands in, and is the whole answer when no object has the
/// column at all.
fn added_value(name: &str, written: &str, at: &At, available: &BTreeSet<&str>) -> String {
    if !available.contains(name) {
        return written.to_string();
    }
    format!(
        "COALESCE((SELECT {} FROM ev WHERE _cdc_type = 'SchemaChangeEvent' \
         AND _cdc_file = {} AND _cdc_pos = {} AND _cdc_index = {} LIMIT 1), {written})",
        ident(name),
        literal(&at.0),
        at.1,
        at.2
    )
}

/// The value a statement gave every existing row, as an SQL literal of
/// its column's type `ty` (the definition's): the events write a DATE, a
/// DATETIME and a DECIMAL as text, which DuckDB casts to the column's type
/// by itself but Athena does not, so the literal is cast here; a zero date
/// is NULL, as in its typed column.
fn typed_literal(value: &Value, ty: Option<&str>) -> String {
    let (Value::String(text), Some((sql_type, a_date))) = (value, ty.and_then(cast_type)) else {
        return json_literal(value);
    };
    // `0000-00-00`, `2020-00-00 ...`, `2020-01-00 ...`.
    let zero = text.starts_with("0000") || text.get(4..10).is_some_and(|md| md.contains("-00"));
    if a_date && zero {
        return "NULL".into();
    }
    format!("CAST({} AS {sql_type})", literal(text))
}

/// The SQL type a literal of the server's column type `ty` is cast to, and
/// whether it is a date; `None` for the types a literal needs no cast for.
fn cast_type(ty: &str) -> Option<(String, bool)> {
    if ty == "date" {
        return Some(("DATE".into(), true));
    }
    if ty.starts_with("datetime") {
        return Some(("TIMESTAMP".into(), true));
    }
    // `decimal(p,s)`, `decimal(p,s) unsigned`; past 38 digits the column is
    // text (docs/EVENTS.md, *Parquet*).
    let digits: Vec<u32> = ty
        .strip_prefix("decimal")?
        .trim_start_matches('(')
        .split([',', ')'])
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    match digits[..] {
        [p, s] if p <= 38 => Some((format!("DECIMAL({p},{s})"), false)),
        _ => None,
    }
}

/// A value as the events write it, as an SQL literal: numbers and
/// booleans as they are, text quoted (the engine casts it to the column's
/// type), a SET's labels as an ARRAY, a JSON document as its text.
fn json_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string().to_uppercase(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => literal(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(json_literal).collect();
            format!("ARRAY[{}]", items.join(", "))
        }
        Value::Object(_) => literal(&v.to_string()),
    }
}

/// The condition that a row (columns prefixed `p`) comes after `at`.
fn after(p: &str, at: &At) -> String {
    format!(
        "({p}_cdc_file > {f} OR ({p}_cdc_file = {f} AND {p}_cdc_pos > {pos}))",
        f = literal(&at.0),
        pos = at.1
    )
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn statement(pos: &str, extra: Value) -> Value {
        let mut s = json!({"type": "SchemaChangeEvent", "schema": "shop", "table": "orders",
            "position": pos, "index": 0, "kind": "alter", "snapshotNeeded": false});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    }

    fn orders(statements: Vec<Value>) -> TableStatements {
        TableStatements {
            schema: "shop".into(),
            table: "orders".into(),
            statements,
            columns: ["id", "qty", "note", "memo"].map(String::from).to_vec(),
            keys: vec!["id".into()],
        }
    }

    #[test]
    fn the_last_emptying_statement_starts_the_rows() {
        let t = orders(vec![
            statement("binlog.000002:300", json!({"kind": "truncate"})),
            statement("binlog.000001:100", json!({"kind": "truncate"})),
            statement(
                "binlog.000002:900",
                json!({"kind": "alter", "snapshotNeeded": false}),
            ),
        ]);
        let q = sql("t", &t);
        assert!(q.contains("AND (_cdc_file > 'binlog.000002' OR (_cdc_file = 'binlog.000002' AND _cdc_pos > 300))"), "{q}");
        assert!(q.contains("PARTITION BY \"id\""), "{q}");
        assert!(q.contains("  l.\"note\" AS \"note\""), "{q}");
    }

    #[test]
    fn added_and_renamed_columns_read_what_rows_before_them_hold() {
        let definition = json!({"columns": [{"name": "id"}, {"name": "qty"}, {"name": "memo"},
            {"name": "secret", "rule": "exclude"}], "primaryKey": ["id"]});
        let t = orders(vec![
            statement(
                "binlog.000001:100",
                json!({"columnsRenamed": {"note": "memo"}}),
            ),
            statement(
                "binlog.000001:200",
                json!({"columnsAdded": {"qty": 7}, "definition": definition}),
            ),
        ]);
        let q = sql("t", &t);
        let memo = "  CASE WHEN (l._cdc_file > 'binlog.000001' OR (l._cdc_file = 'binlog.000001' \
                    AND l._cdc_pos > 100)) THEN l.\"memo\" ELSE l.\"note\" END AS \"memo\"";
        assert!(q.contains(memo), "{q}");
        assert!(q.contains("ELSE COALESCE((SELECT \"qty\" FROM ev WHERE _cdc_type = 'SchemaChangeEvent' AND _cdc_file = 'binlog.000001' AND _cdc_pos = 200 AND _cdc_index = 0 LIMIT 1), 7) END AS \"qty\""), "{q}");
        assert!(
            !q.contains("secret"),
            "an excluded column is in no event: {q}"
        );
        assert!(
            !q.contains("AND (_cdc_file >"),
            "nothing emptied the table: {q}"
        );
    }

    #[test]
    fn added_dates_and_decimals_are_cast_for_athena() {
        let definition = json!({"columns": [{"name": "id", "type": "int"},
            {"name": "since", "type": "date"}, {"name": "at", "type": "datetime(3)"},
            {"name": "fee", "type": "decimal(8,3) unsigned"}, {"name": "big", "type": "decimal(60,2)"},
            {"name": "zero", "type": "date"}, {"name": "label", "type": "varchar(8)"}],
            "primaryKey": ["id"]});
        let added = json!({"since": "2026-12-06", "at": "2026-12-06 10:00:00.125",
            "fee": "1.250", "big": "12.50", "zero": "0000-00-00", "label": "x'y"});
        let mut t = orders(vec![statement(
            "binlog.000001:200",
            json!({"columnsAdded": added, "definition": definition}),
        )]);
        t.columns = vec!["id".into(), "since".into()];
        let q = sql("t", &t);
        for want in [
            "LIMIT 1), CAST('2026-12-06' AS DATE)) END AS \"since\"",
            "ELSE CAST('2026-12-06 10:00:00.125' AS TIMESTAMP) END AS \"at\"",
            "ELSE CAST('1.250' AS DECIMAL(8,3)) END AS \"fee\"",
            "ELSE '12.50' END AS \"big\"",
            "ELSE NULL END AS \"zero\"",
            "ELSE 'x''y' END AS \"label\"",
        ] {
            assert!(q.contains(want), "{want} in {q}");
        }
    }

    #[test]
    fn a_rename_away_and_a_snapshot_needed_empty_the_table() {
        let away = statement(
            "binlog.000003:5",
            json!({"kind": "rename", "newSchema": "shop", "newTable": "old_orders"}),
        );
        assert!(empties(&away, "shop", "orders"));
        assert!(empties(&away, "shop", "old_orders"));
        assert!(!empties(&away, "shop", "lines"));
        let snap = statement("binlog.000003:9", json!({"snapshotNeeded": true}));
        assert!(empties(&snap, "shop", "orders"));
        let index = statement("binlog.000003:9", json!({}));
        assert!(!empties(&index, "shop", "orders"));
    }
}
