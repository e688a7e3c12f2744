//! Where a table's ranges end: by value for a dense integer key, else by
//! walking the primary key ([`cut`], [`range_end`]).

use mysql_async::prelude::*;
use mysql_async::{Conn, Params};
use mysql_common::value::Value;

use super::columns::{from_table, quote, SnapshotTable};
use super::keys::{range_condition, KeyValue};
use crate::error::{Error, Result};
use crate::schema::ColumnKind;

/// How a table is cut into ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Walk the primary key: a range ends at the key `rows` rows on.
    Walk,
    /// A single integer key whose values are dense: cut by value, a range
    /// being `(after, after + rows]`. It holds at most `rows` rows (the key
    /// is unique), whatever the estimate said, and planning it reads no row.
    /// `first` and `last`: the key's smallest and largest values when planned
    /// (the last range runs to the table's end, so rows added above `last`
    /// meanwhile are in it).
    ByValue { first: i128, last: i128 },
}

/// A single integer key is cut by value when its span (`last - first + 1`)
/// is at most this many times the rows the server estimates the table holds
/// (InnoDB's `TABLE_ROWS`, an estimate): then ranges hold about `rows / 2`
/// rows or more. A sparser key is walked, so that ranges never come out
/// nearly empty.
const DENSE_SPAN: i128 = 2;

/// How to cut `t` ([`Cut`]): by value when its key is one dense integer
/// column, else by walking the key. Two index lookups and the table's
/// statistics; no row is read.
pub async fn cut(conn: &mut Conn, t: &SnapshotTable) -> Result<Cut> {
    let key = match t.meta.primary_key.as_slice() {
        [k] if matches!(t.meta.columns[*k].kind, ColumnKind::Int { .. }) => {
            quote(&t.meta.columns[*k].name)
        }
        _ => return Ok(Cut::Walk),
    };
    let sql = format!(
        "SELECT MIN({key}), MAX({key}), (SELECT TABLE_ROWS FROM information_schema.TABLES \
           WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) FROM {}",
        from_table(t)
    );
    let row: Option<(Value, Value, Option<u64>)> = conn
        .exec_first(sql, (&t.meta.schema, &t.meta.table))
        .await
        .map_err(|e| Error::mysql(format!("reading the key span of {}", t.meta.full_name), e))?;
    let Some((first, last, estimate)) = row else {
        return Ok(Cut::Walk);
    };
    match (as_int(&first), as_int(&last), estimate) {
        (Some(first), Some(last), Some(rows))
            if rows > 0 && last - first < DENSE_SPAN * i128::from(rows) =>
        {
            Ok(Cut::ByValue { first, last })
        }
        _ => Ok(Cut::Walk),
    }
}

fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        _ => None,
    }
}

/// Where a range that starts after `after` and holds at most `rows` rows
/// ends; `None` when it runs to the table's end. By value for a dense
/// integer key; else the key of its last row, walking the primary key (only
/// that key is sent, but InnoDB reads each skipped record of its clustered
/// index to get there).
pub async fn range_end(
    conn: &mut Conn,
    t: &SnapshotTable,
    cut: Cut,
    after: Option<&[KeyValue]>,
    rows: u64,
) -> Result<Option<Vec<KeyValue>>> {
    if let Cut::ByValue { first, last } = cut {
        if let Some(end) = end_by_value(first, last, after, rows) {
            return Ok(end);
        }
    }
    walk_end(conn, t, after, rows).await
}

/// [`range_end`] by value: `(after, after + rows]`, the first range starting
/// at `first`; `Some(None)` when it reaches `last`; `None` when `after` is
/// not one integer (a progress recorded by a walk of another key).
fn end_by_value(
    first: i128,
    last: i128,
    after: Option<&[KeyValue]>,
    rows: u64,
) -> Option<Option<Vec<KeyValue>>> {
    let start = match after {
        None => first,
        Some([KeyValue::Int(i)]) => i128::from(*i) + 1,
        Some([KeyValue::UInt(u)]) => i128::from(*u) + 1,
        Some(_) => return None,
    };
    let end = start + i128::from(rows.max(1)) - 1;
    Some((end < last).then(|| vec![key_value(end)]))
}

fn key_value(v: i128) -> KeyValue {
    match i64::try_from(v) {
        Ok(i) => KeyValue::Int(i),
        Err(_) => KeyValue::UInt(u64::try_from(v).unwrap_or(u64::MAX)),
    }
}

/// The key of the row `rows` rows after `after`, walking the primary key.
async fn walk_end(
    conn: &mut Conn,
    t: &SnapshotTable,
    after: Option<&[KeyValue]>,
    rows: u64,
) -> Result<Option<Vec<KeyValue>>> {
    let keys = t.key_list().join(", ");
    let sql = format!(
        "SELECT {keys} FROM {}{} ORDER BY {keys} LIMIT 1 OFFSET {}",
        from_table(t),
        range_condition(&keys, t.meta.primary_key.len(), after.is_some(), false),
        rows.saturating_sub(1)
    );
    let params: Vec<Value> = after.unwrap_or_default().iter().map(Value::from).collect();
    let row: Option<mysql_async::Row> = conn
        .exec_first(sql, Params::Positional(params))
        .await
        .map_err(|e| {
            Error::mysql(
                format!("walking the primary key of {}", t.meta.full_name),
                e,
            )
        })?;
    Ok(row.map(|r| r.unwrap().into_iter().map(KeyValue::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dense_key_is_cut_by_value_never_past_its_rows() {
        let (first, last) = (-5, 1_000);
        // The first range starts at the smallest key: -5..=94 is 100 values.
        assert_eq!(
            end_by_value(first, last, None, 100),
            Some(Some(vec![KeyValue::Int(94)]))
        );
        let after = [KeyValue::Int(94)];
        assert_eq!(
            end_by_value(first, last, Some(&after), 100),
            Some(Some(vec![KeyValue::Int(194)]))
        );
        // The range reaching the largest key runs to the table's end.
        let after = [KeyValue::UInt(900)];
        assert_eq!(end_by_value(first, last, Some(&after), 100), Some(None));
        // Past i64: an unsigned key stays unsigned.
        let big = i128::from(u64::MAX);
        let after = [KeyValue::UInt(u64::MAX - 10)];
        assert_eq!(
            end_by_value(0, big, Some(&after), 5),
            Some(Some(vec![KeyValue::UInt(u64::MAX - 5)]))
        );
        // A progress that is not one integer is walked instead.
        let after = [KeyValue::Bytes(b"a".to_vec())];
        assert_eq!(end_by_value(first, last, Some(&after), 100), None);
    }
}
