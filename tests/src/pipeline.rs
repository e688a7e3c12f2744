//! Runs the pipeline's handlers in order, in-process (what `binlog-cdc run`
//! does), and reads back what a run committed.

use binlog_cdc::contracts::{CommitOutput, Meta, RunInput, RunPlan};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::Result;
use serde_json::Value;

/// An independent reading of `[from, to)` on the server (`binlog-cdc
/// parse`'s decoder, both images), by `schema.table`: what committed
/// outputs are checked against.
pub async fn independent(
    url: &str,
    from: &binlog_cdc::BinlogPosition,
    to: &binlog_cdc::BinlogPosition,
) -> std::collections::BTreeMap<String, Vec<Value>> {
    independent_under(url, from, to, Default::default()).await
}

/// [`independent`] under column rules.
pub async fn independent_under(
    url: &str,
    from: &binlog_cdc::BinlogPosition,
    to: &binlog_cdc::BinlogPosition,
    rules: binlog_cdc::decoder::column_rules::ColumnRules,
) -> std::collections::BTreeMap<String, Vec<Value>> {
    let (all, _) = super::collect::from_server(
        url,
        from,
        Some(to.clone()),
        binlog_cdc::decoder::reader::DecodeOptions {
            view: binlog_cdc::decoder::event::View::Both,
            rules,
            ..Default::default()
        },
    )
    .await
    .expect("independent parse");
    by_table(all)
}

/// One iteration (one budgeted run); returns the plan and the commit
/// (None when nothing to do).
pub async fn run(deps: &Deps, input: RunInput) -> Result<(RunPlan, Option<CommitOutput>)> {
    let it = pipeline_driver::run_iteration(deps, input, Default::default()).await?;
    Ok((it.plan, it.commit))
}

/// Stages an empty fan-out plan for `run_id`, so that CommitCheckpoint
/// can be called for a run whose staging is gone (to test its checks).
pub async fn stage_empty_fan_out(deps: &Deps, run_id: &str) {
    let fan = binlog_cdc::contracts::FanOutPlan {
        run_id: run_id.to_string(),
        ..Default::default()
    };
    let key = deps.layout.fan_out_plan(run_id);
    binlog_cdc::store::put_json(deps.store.as_ref(), &key, &fan)
        .await
        .expect("stage a fan-out plan");
}

/// The committed checkpoint.
pub async fn meta(deps: &Deps) -> Option<(Meta, String)> {
    binlog_cdc::checkpoint::read(deps.store.as_ref(), &deps.layout)
        .await
        .expect("read meta")
}

/// Events grouped by `schema.table`, order kept.
pub fn by_table(events: Vec<Value>) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut m: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for e in events {
        // A statement about a whole schema is listed under `schema.*`.
        let table = format!(
            "{}.{}",
            e["schema"].as_str().expect("schema"),
            e["table"].as_str().unwrap_or("*")
        );
        m.entry(table).or_default().push(e);
    }
    m
}

/// Committed events equal an independent reading, table by table, in order.
pub fn assert_same_events(
    committed: &std::collections::BTreeMap<String, Vec<Value>>,
    independent: &std::collections::BTreeMap<String, Vec<Value>>,
) {
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        independent.keys().collect::<Vec<_>>()
    );
    for (t, evs) in independent {
        assert_eq!(committed[t].len(), evs.len(), "{t}: count");
        assert!(committed[t] == *evs, "{t}: events differ");
    }
}

/// Every event in the per-table objects a meta.json names, by `schema.table`.
pub async fn committed_events(
    deps: &Deps,
    meta: &Meta,
) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut out = std::collections::BTreeMap::new();
    for key in meta.outputs.iter().filter(|k| k.contains("table-binlog-")) {
        let obj = deps
            .store
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{key} is missing"));
        let doc: Value = serde_json::from_slice(&obj.body).expect("a JSON object");
        let events = doc["events"].as_array().expect("events").clone();
        assert_eq!(
            doc["count"].as_u64(),
            Some(events.len() as u64),
            "{key} count"
        );
        // The object's table, from its key (a rename's event in the
        // new name's object names the old one).
        let relative = key.strip_prefix(deps.layout.prefix()).unwrap_or(key);
        let mut segments = relative.split('/');
        let (schema, table) = (segments.next().unwrap(), segments.next().unwrap());
        out.entry(format!("{schema}.{table}"))
            .or_insert_with(Vec::new)
            .extend(events);
    }
    out
}
