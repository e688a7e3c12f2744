//! Planning a run's share of a snapshot: starting one (which tables), and
//! the next ranges from where `meta.json` says it stands, at most
//! `SNAPSHOT_RANGES_PER_RUN` of `SNAPSHOT_RANGE_ROWS` rows each. The ranges
//! go into the run's staging; the plan carries the progress the run
//! commits. A run that fails commits nothing, and the next plans the same
//! ranges again from the same progress.

use mysql_async::Conn;

use crate::contracts::{KeyRange, Meta, SnapshotProgress, SnapshotState};
use crate::error::{Error, Result};
use binlog_decoder::column_rules::ColumnRules;
use binlog_decoder::filter::TableFilter;
use binlog_decoder::snapshot::{listing, ranges, SnapshotTable};

/// The snapshot a run goes on with: the one requested (a new one), or the
/// one in `meta.json` if not done, or on a first run the configured one.
pub enum Wanted<'a> {
    New(Vec<String>),
    Going(&'a SnapshotState),
}

/// Which snapshot this run works on, if any.
pub fn wanted<'a>(
    requested: Option<&[String]>,
    meta: Option<&'a Meta>,
    first_run_tables: &[String],
) -> Option<Wanted<'a>> {
    if let Some(patterns) = requested.filter(|p| !p.is_empty()) {
        return Some(Wanted::New(patterns.to_vec()));
    }
    match meta {
        Some(m) => m
            .snapshot
            .as_ref()
            .filter(|s| !s.progress.done())
            .map(Wanted::Going),
        None if !first_run_tables.is_empty() => Some(Wanted::New(first_run_tables.to_vec())),
        None => None,
    }
}

/// The tables a new snapshot covers (`schema.table`, in name order).
pub async fn start(
    conn: &mut Conn,
    patterns: &[String],
    stream: &TableFilter,
    id: &str,
) -> Result<SnapshotState> {
    let wanted = TableFilter::new(patterns.to_vec(), Vec::new())
        .map_err(|e| Error::Config(format!("snapshot patterns: {e}")))?;
    let names: Vec<String> = listing::tables(conn, &wanted, stream)
        .await?
        .into_iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    // A table named outright that the listing does not show: gone, or
    // hidden from this user (information_schema lists only what a user
    // may use): say which.
    for p in patterns.iter().filter(|p| !p.contains('*')) {
        if let Some((schema, table)) = p.split_once('.') {
            if !names.contains(p) && stream.keeps(schema, table) {
                listing::readable(conn, schema, table).await?;
            }
        }
    }
    if names.is_empty() {
        return Err(Error::Config(format!(
            "the snapshot patterns {patterns:?} name no table the stream keeps (INCLUDE/EXCLUDE)"
        )));
    }
    Ok(SnapshotState {
        progress: SnapshotProgress {
            id: id.to_string(),
            tables: names.len() as u32,
            tables_done: 0,
            after: None,
            ranges: 0,
        },
        table_names: names,
    })
}

/// Up to `max` ranges from where `state` stands, and the progress once
/// they are done. Each range holds at most `rows` rows ([`ranges::range_end`]:
/// by value for a dense integer key, else walking the key), the last of a
/// table running to its end. A table whose key has a column rule is one
/// range: a bound is a key's clear value, and the plan and `meta.json`
/// would hold it.
pub async fn next_ranges(
    conn: &mut Conn,
    state: &SnapshotState,
    rules: &ColumnRules,
    rows: u64,
    max: u32,
) -> Result<(Vec<KeyRange>, SnapshotProgress)> {
    let mut p = state.progress.clone();
    let mut ranges = Vec::new();
    // Described once per table, however many of its ranges this run takes.
    let mut described: Option<(u32, SnapshotTable, ranges::Cut)> = None;
    while !p.done() && (ranges.len() as u32) < max {
        if described.as_ref().map(|(i, _, _)| *i) != Some(p.tables_done) {
            let name = &state.table_names[p.tables_done as usize];
            let (schema, table) = name.split_once('.').ok_or_else(|| {
                Error::Config(format!("snapshot table {name:?} is not schema.table"))
            })?;
            let t = listing::describe(conn, schema, table).await?;
            let cut = ranges::cut(conn, &t).await?;
            described = Some((p.tables_done, t, cut));
        }
        let Some((_, t, cut)) = described.as_ref() else {
            break;
        };
        let upto = match rules.rules_key(&t.meta) {
            true => None,
            false => ranges::range_end(conn, t, *cut, p.after.as_deref(), rows).await?,
        };
        ranges.push(KeyRange {
            schema: t.meta.schema.clone(),
            table: t.meta.table.clone(),
            after: p.after.take(),
            upto: upto.clone(),
        });
        p.ranges += 1;
        match upto {
            Some(key) => p.after = Some(key),
            None => p.tables_done += 1,
        }
    }
    Ok((ranges, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_with(done: bool) -> Meta {
        let m: Meta = serde_json::from_value(serde_json::json!({
            "lastTimestamps": {}, "counts": {}, "runId": "r", "outputs": [], "committedAt": "t",
            "position": {"file": "b.000001", "pos": 4, "position": "b.000001:4"},
            "snapshot": {"id": "r0", "tables": 2, "tablesDone": if done { 2 } else { 1 },
                         "ranges": 3, "tableNames": ["a.b", "a.c"]}
        }))
        .unwrap();
        m
    }

    #[test]
    fn which_snapshot_a_run_works_on() {
        let going = meta_with(false);
        let done = meta_with(true);
        let req = vec!["s.*".to_string()];
        assert!(matches!(wanted(Some(&req), Some(&going), &[]), Some(Wanted::New(p)) if p == req));
        assert!(
            matches!(wanted(None, Some(&going), &[]), Some(Wanted::Going(s)) if s.progress.ranges == 3)
        );
        assert!(
            wanted(None, Some(&done), &req).is_none(),
            "first-run tables apply only before any commit"
        );
        assert!(matches!(wanted(None, None, &req), Some(Wanted::New(_))));
        assert!(wanted(Some(&[]), None, &[]).is_none());
    }
}
