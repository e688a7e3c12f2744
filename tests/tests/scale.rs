//! A backlog drains on the local stack within AWS's quotas: the state
//! machine through the runner (which enforces payload, history and timeout
//! quotas), the functions through `cargo lambda watch`, moto, MariaDB.
//!
//! The backlog: `SCALE_FILES` binlog files (rotated with FLUSH BINARY LOGS,
//! default 1,000), `SCALE_TABLES` tables in `SCALE_SCHEMAS` schemas (default
//! 300 in 3), and one file larger than 8 chunks that touches every table.
//! The run budget (`MAX_RUN_CHUNKS` 8) forces many iterations, and a small
//! history budget makes the first execution hand over to the next. Then:
//! no quota is hit, the backlog drains, and every row event is committed
//! exactly once (every per-table object under the prefix, against one
//! independent parse). Prints one line per execution and a summary row for
//! docs/SCALE.md.
//!
//! `SCALE_FILES=4000 SCALE_TABLES=1200 cargo test -p binlog-cdc-tests --test scale -- --nocapture`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::MAX_TASK_RETRIES;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::s3::S3Store;
use binlog_cdc::BinlogPosition;
use binlog_cdc_tests::aws_local::{run_state_machine, LocalAws};
use binlog_cdc_tests::{pipeline, MariaDb};
use serde_json::{json, Value};

const BUCKET: &str = "binlog-cdc-scale";
const CHUNK_BYTES: u64 = 16384;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The backlog: tables, many small files, one file of many chunks.
fn write_backlog(db: &MariaDb, files: usize, tables: usize, schemas: usize) -> Vec<String> {
    let names: Vec<String> = (0..tables)
        .map(|t| format!("s{}.t{t}", t % schemas))
        .collect();
    let mut sql: String = (0..schemas)
        .map(|s| format!("CREATE DATABASE s{s};"))
        .collect();
    for n in &names {
        sql += &format!("CREATE TABLE {n} (id INT PRIMARY KEY, note VARCHAR(200));");
    }
    db.sql(&sql);
    // Many small files: one transaction each, then a rotation.
    let mut sql = String::new();
    for f in 0..files {
        let n = &names[f % tables];
        sql += &format!("INSERT INTO {n} VALUES ({f}, 'file {f}'); FLUSH BINARY LOGS;");
    }
    db.sql(&sql);
    // One large file of more than 8 chunks: a transaction of ~600 bytes
    // per table (at least 400 transactions).
    let mut sql = String::new();
    let pad = "x".repeat(150);
    for k in 0..tables.max(400) {
        let n = &names[k % tables];
        let id = 1_000_000 + 3 * k;
        sql += &format!(
            "INSERT INTO {n} VALUES ({id}, '{pad}'), ({}, '{pad}'), ({}, '{pad}');",
            id + 1,
            id + 2
        );
    }
    db.sql(&sql);
    names
}

/// Every event in every per-table object under the prefix, by table, in
/// binlog order: what a reader of the prefix sees.
async fn every_table_object(deps: &Deps) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for key in deps.store.list("cdc/").await.unwrap() {
        let rest = key.trim_start_matches("cdc/");
        if !rest.contains("/table-binlog-") || rest.starts_with("staging/") {
            continue;
        }
        let body = deps.store.get(&key).await.unwrap().unwrap().body;
        let doc: Value = serde_json::from_slice(&body).unwrap();
        for e in doc["events"].as_array().unwrap() {
            let t = format!(
                "{}.{}",
                e["schema"].as_str().unwrap(),
                e["table"].as_str().unwrap()
            );
            out.entry(t).or_default().push(e.clone());
        }
    }
    let order = |e: &Value| {
        let p: BinlogPosition = e["position"].as_str().unwrap().parse().unwrap();
        (p, e["index"].as_u64().unwrap())
    };
    for evs in out.values_mut() {
        evs.sort_by_key(order);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_drains_within_the_quotas() {
    let files = env_or("SCALE_FILES", 1000);
    let tables = env_or("SCALE_TABLES", 300);
    let schemas = env_or("SCALE_SCHEMAS", 3);
    let db = MariaDb::start();
    let logs = db.dir.clone();
    let aws = LocalAws::start_enforcing(&logs, BUCKET).await;
    let secret = aws.db_secret("scale-db", db.port, "cdc", "cdc").await;
    let first = db.position();
    let started = Instant::now();
    write_backlog(&db, files, tables, schemas);
    let end = db.position();
    let setup = started.elapsed().as_secs_f64();
    let binlogs = db.sql("SHOW BINARY LOGS");
    let last_size: u64 = binlogs
        .lines()
        .last()
        .and_then(|l| l.split('\t').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        last_size > 8 * CHUNK_BYTES,
        "one file of more than 8 chunks: {last_size} bytes"
    );

    let mut env = aws.lambda_env(&aws.moto.endpoint);
    env.extend([
        ("BUCKET", BUCKET.to_string()),
        ("PREFIX", "cdc".to_string()),
        ("DB_SECRET_ARN", secret.clone()),
        ("CHUNK_BYTES", CHUNK_BYTES.to_string()),
        ("MAX_RUN_CHUNKS", "8".into()),
        ("FANOUT_SHARD_TABLES", "64".into()),
        ("PARSE_MAX_CONCURRENCY", "4".into()),
        // Room for two iterations per execution (each counted at its worst,
        // retries included: at most 154 + 37 x (8 chunks + 64 shards) =
        // 2,818): several executions.
        ("EXECUTION_HISTORY_BUDGET", "6000".into()),
        ("VIEW", "both".into()),
        ("RUST_LOG", "warn".into()),
    ]);
    // Each function under its own role, as the stack deploys it (no
    // replication user: the pipeline reads DatabaseSecretArn).
    let parameters = json!({
        "AWS::StackName": "binlog-cdc", "Prefix": "cdc/", "DatabaseSecretArn": secret,
        "CreateReplicationUser": "false", "EventBusName": "",
    });
    let (lambda, _roles) = aws.lambda_under_roles(&env, BUCKET, &parameters, &[], &logs);
    // Each function built and started before the clock runs (an invalid
    // payload: refused at once, nothing done).
    for f in [
        "list-binlogs",
        "parse-chunk",
        "fan-out-by-table",
        "commit-checkpoint",
    ] {
        let (status, _) = lambda.invoke(f, &json!({"input": 0, "plan": 0, "step": 0}));
        assert_ne!(status, 200, "{f} refuses an invalid payload");
    }

    let drain = Instant::now();
    let (mut executions, mut iterations, mut chunks) = (0, 0, 0);
    let (mut largest, mut most_history, mut longest_call) = (0u64, 0u64, 0u64);
    let mut largest_at = String::new();
    loop {
        executions += 1;
        assert!(
            executions <= 200,
            "the backlog did not drain in 200 executions"
        );
        let r = run_state_machine(
            &lambda,
            &json!({}),
            &format!("scale-{executions}"),
            &json!({}),
        );
        assert_eq!(
            r["status"],
            "SUCCEEDED",
            "{}",
            r.to_string().chars().take(2000).collect::<String>()
        );
        let q = &r["quotas"];
        let bytes = q["largestPayload"]["bytes"].as_u64().unwrap();
        if bytes > largest {
            largest = bytes;
            largest_at = format!(
                "{} {}",
                q["largestPayload"]["state"], q["largestPayload"]["what"]
            );
        }
        most_history = most_history.max(q["historyEvents"].as_u64().unwrap());
        let calls = r["calls"].as_array().unwrap();
        chunks += calls.iter().filter(|c| c["state"] == "ParseChunk").count();
        longest_call = longest_call.max(
            calls
                .iter()
                .map(|c| c["ms"].as_u64().unwrap())
                .max()
                .unwrap_or(0),
        );
        let out = &r["output"];
        println!(
            "execution {executions}: {} {} payload max {bytes} B history {} calls {}",
            out["progress"]
                .as_str()
                .or(out["status"].as_str())
                .unwrap_or("?"),
            out["position"],
            q["historyEvents"],
            calls.len()
        );
        if out["status"] == "nothing" {
            break;
        }
        iterations += out["loop"]["iteration"].as_u64().unwrap();
        if r["taskErrors"].as_array().unwrap().is_empty() {
            // The loop counts every Task call at its worst, retried as
            // often as its retriers allow (3 events a retry); without
            // retries, that less is exact: the start (a Pass) and the
            // execution's started and succeeded events aside.
            let retries = 3 * u64::from(MAX_TASK_RETRIES) * calls.len() as u64;
            assert_eq!(
                q["historyEvents"].as_u64().unwrap(),
                out["loop"]["historyEvents"].as_u64().unwrap() - retries + 4,
                "the history the loop counted"
            );
        }
        assert!(q["historyEvents"].as_u64().unwrap() < 25_000);
    }
    let drain_secs = drain.elapsed().as_secs_f64();
    if files >= 1000 {
        // The minimum backlog: the budget forces catch-up, and the
        // history budget hands over between executions.
        assert!(iterations >= 5, "{iterations} iterations");
        assert!(executions >= 3, "{executions} executions");
    }
    assert!(
        largest <= 64 << 10,
        "every payload at most 64 KiB: {largest} at {largest_at}"
    );

    // Exactly once, against one independent parse of the whole range.
    let store = Arc::new(S3Store::new(aws.s3.clone(), BUCKET));
    let config = PipelineConfig {
        prefix: "cdc/".into(),
        view: View::Both,
        ..Default::default()
    };
    let deps = Deps::new(store, config, db.url());
    let (meta, _) = pipeline::meta(&deps).await.expect("committed");
    assert_eq!(meta.position.position, end, "drained to the end");
    let committed = every_table_object(&deps).await;
    let independent = pipeline::independent(&db.url(), &first, &end).await;
    assert_eq!(independent.len(), tables);
    pipeline::assert_same_events(&committed, &independent);
    let events: usize = independent.values().map(Vec::len).sum();
    let binlogs = binlogs.lines().count();
    println!(
        "| {binlogs} files | {chunks} chunks | {tables} tables | {events} events | {largest} B ({largest_at}) | {most_history} | {longest_call} ms | {drain_secs:.0} s ({executions} executions, {iterations} runs) |"
    );
    println!("setup {setup:.1} s");
}
