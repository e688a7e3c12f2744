//! Faults, end to end on the local stack (MariaDB, moto server behind a
//! fault-injecting proxy, the state machine definition run by
//! aws-local-stepfunctions, the real function binaries under `cargo lambda
//! watch`), and the promise checked after all of them: the committed outputs
//! (the objects each `meta.json` names, run by run) hold every row event of
//! the whole range exactly once, against one independent parse of it.
//!
//! Broken on purpose, one run each, with new writes before every run: each
//! step failing by an injected error (its work done, its answer lost), by its
//! process killed mid-way, and by a timeout (the function outliving its
//! task); then retried by the definition's Retry, redriven from the failed
//! state, or rerun as a new execution, as Step Functions would. Also: two
//! executions at once, a follower (the low-latency mode) whose commit's
//! answer is lost before it hands over, the database crashing during a run (with a rotation
//! and 100,000- and 120,000-row transactions), the S3 API failing requests, a rotated and
//! a wrong database password, an unreachable database, purged binlogs. The
//! functions log at debug level, and no log line may hold a password.
//!
//! Prints a table of what was tried and what happened (docs/RELIABILITY.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::Meta;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::s3::S3Store;
use binlog_cdc_tests::aws_local::{run_state_machine, LambdaWatch, LocalAws, S3FaultProxy};
use binlog_cdc_tests::{free_port, pipeline, workspace_root, MariaDb};
use serde_json::{json, Value};

const BUCKET: &str = "binlog-cdc-faults";
const ADMIN_PASSWORD: &str = "Adm1n-f4ults-Qz7";
const REPL_PASSWORD: &str = "R3pl-f4ults-Wk9";
const ROTATED_PASSWORD: &str = "R0tated-f4ults-Hm2";
const WRONG_PASSWORD: &str = "Wr0ng-f4ults-Jc5";

struct Stack {
    /// moto and its clients: kept for as long as the stack.
    _aws: LocalAws,
    /// Where the first run started.
    first: binlog_cdc::BinlogPosition,
    db: MariaDb,
    lambda: Option<LambdaWatch>,
    lambda_starts: u32,
    /// What `lambda` was started with, to start it again: the common
    /// settings, and each function's role credentials.
    lambda_env: Vec<(&'static str, String)>,
    own: BTreeMap<String, Vec<(&'static str, String)>>,
    logs: std::path::PathBuf,
    proxy: S3FaultProxy,
    deps: Deps,
    secrets: aws_sdk_secretsmanager::Client,
    repl_secret: String,
    /// Every checkpoint committed, by run id.
    metas: BTreeMap<String, Meta>,
    round: u32,
}

impl Stack {
    /// New rows in several transactions (several 16 KiB chunks per run),
    /// plus updates and deletes.
    fn writes(&mut self) {
        self.round += 1;
        let r = self.round;
        let mut sql = String::new();
        for t in 0..12 {
            let base = r * 1000 + t * 25;
            sql += &format!(
                "INSERT INTO faults.items (id, round, note) SELECT {base} + seq, {r}, \
                 CONCAT('round {r} row ', seq, ' ', REPEAT('é', 60)) FROM faults.seq_1_to_25;"
            );
        }
        sql += &format!(
            "UPDATE faults.items SET note = 'updated' WHERE round = {r} AND id % 7 = 0;
             DELETE FROM faults.items WHERE round = {r} AND id % 11 = 0;"
        );
        self.db.sql(&sql);
    }

    fn exec(&self, name: &str, input: &Value, options: &Value) -> Value {
        let mut options = options.clone();
        options["binaries"] = json!(workspace_root().join("target/debug"));
        run_state_machine(
            self.lambda.as_ref().expect("cargo lambda watch"),
            input,
            name,
            &options,
        )
    }

    /// Starts `cargo lambda watch` again: once a function's process is
    /// killed it does not start that function again (its calls hang), where
    /// Lambda would start a new one on the next call. Each start logs to its
    /// own directory.
    fn restart_lambda(&mut self) {
        self.lambda = None; // stops the old one's process group
        self.lambda_starts += 1;
        let dir = self.logs.join(format!("lambda-{}", self.lambda_starts));
        std::fs::create_dir_all(&dir).expect("log dir");
        self.lambda = Some(LambdaWatch::per_function(&self.lambda_env, &self.own, &dir));
    }

    /// Remembers the checkpoint, if a run committed a new one.
    async fn record(&mut self) {
        if let Some((m, _)) = pipeline::meta(&self.deps).await {
            if !self.metas.contains_key(&m.run_id) {
                self.metas.insert(m.run_id.clone(), m);
            }
        }
    }

    /// Prints one row of the published table (docs/RELIABILITY.md).
    fn row(&self, what: &str, how: &str, outcome: String) {
        println!("| {what} | {how} | {outcome} |");
    }

    async fn set_repl_password(&self, password: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(&self.repl_secret)
            .secret_string(
                json!({"host": "127.0.0.1", "port": self.db.port, "username": "binlog_cdc", "password": password})
                    .to_string(),
            )
            .send()
            .await
            .expect("put secret value");
    }

    async fn set_repl_port(&self, port: u16) {
        self.secrets
            .put_secret_value()
            .secret_id(&self.repl_secret)
            .secret_string(
                json!({"host": "127.0.0.1", "port": port, "username": "binlog_cdc", "password": ROTATED_PASSWORD})
                    .to_string(),
            )
            .send()
            .await
            .expect("put secret value");
    }

    async fn staged(&self) -> Vec<String> {
        self.deps
            .store
            .list("cdc/staging/")
            .await
            .unwrap_or_default()
    }

    /// Waits until a run has staged something not in `before` (it is past
    /// ListBinlogs and parsing).
    async fn wait_for_staging(&self, before: &[String]) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.staged().await.iter().any(|k| !before.contains(k)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no run staged anything within 60 s");
    }
}

/// How a broken run is expected to end, and what follows.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// The state's Retry absorbs the fault: the execution succeeds.
    Retried,
    /// The execution fails at that state; it is redriven from there.
    Redrive,
    /// The execution fails; a new execution (after more writes) runs instead.
    Rerun,
}

struct Case {
    state: &'static str,
    top: &'static str,
    kind: &'static str,
    nth: u32,
    times: u32,
    error: &'static str,
    delay_ms: u64,
    then: Then,
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let c = |state, top, kind, nth, times, error, delay_ms, then| Case { state, top, kind, nth, times, error, delay_ms, then };
    use Then::*;
    // ParseChunk's faults hit the run's second chunk (its "nth" call); a kill,
    // the first, which holds 30,000 rows.
    vec![
        c("ListBinlogs", "ListBinlogs", "error", 1, 1, "Lambda.ServiceException", 0, Retried),
        c("ListBinlogs", "ListBinlogs", "error", 1, 4, "Lambda.ServiceException", 0, Rerun),
        c("ListBinlogs", "ListBinlogs", "kill", 1, 1, "", 5, Redrive),
        c("ListBinlogs", "ListBinlogs", "timeout", 1, 1, "", 0, Retried),
        c("ParseChunk", "ParseChunks", "error", 1, 1, "Transient", 0, Retried),
        c("ParseChunk", "ParseChunks", "kill", 1, 1, "", 60, Redrive),
        c("ParseChunk", "ParseChunks", "timeout", 1, 5, "", 20, Rerun),
        c("PlanFanOut", "PlanFanOut", "timeout", 1, 1, "", 0, Retried),
        c("FanOutShard", "FanOutShards", "error", 1, 4, "Lambda.ServiceException", 0, Redrive),
        c("FanOutShard", "FanOutShards", "kill", 1, 1, "", 60, Redrive),
        c("FanOutShard", "FanOutShards", "timeout", 1, 1, "", 0, Retried),
        c("JoinAllTables", "JoinAllTables", "error", 1, 4, "Lambda.ServiceException", 0, Redrive),
        c("CommitCheckpoint", "CommitCheckpoint", "error", 1, 1, "Lambda.ServiceException", 0, Retried),
        c("CommitCheckpoint", "CommitCheckpoint", "kill", 1, 1, "", 5, Redrive),
        c("CommitCheckpoint", "CommitCheckpoint", "timeout", 1, 1, "", 0, Retried),
        c("CommitCheckpoint", "CommitCheckpoint", "error", 1, 4, "Sandbox.Timedout", 0, Redrive),
    ]
}

/// Events lost and doubled, keyed by (position, index).
fn lost_and_doubled(
    committed: &BTreeMap<String, Vec<Value>>,
    independent: &BTreeMap<String, Vec<Value>>,
) -> (usize, usize) {
    let key = |e: &Value| format!("{}#{}", e["position"], e["index"]);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in committed.values().flatten() {
        *seen.entry(key(e)).or_default() += 1;
    }
    let lost = independent
        .values()
        .flatten()
        .filter(|e| !seen.contains_key(&key(e)))
        .count();
    let doubled = seen.values().map(|n| n.saturating_sub(1)).sum();
    (lost, doubled)
}

/// One stack for every scenario, in order: each leaves new committed runs
/// behind, and the promise (exactly once) is checked over all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_survived_exactly_once() {
    let mut st = start().await;
    println!("| fault | where | outcome |\n|---|---|---|");
    warm_up(&mut st).await;
    let only: Option<Vec<usize>> = std::env::var("FAULT_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect());
    for (i, c) in cases().iter().enumerate() {
        if only.as_ref().is_none_or(|o| o.contains(&i)) {
            step_fault(&mut st, i, c).await;
        }
    }
    two_executions_at_once(&mut st).await;
    following(&mut st).await;
    database_crash(&mut st).await;
    s3_failing(&mut st).await;
    password_rotated(&mut st).await;
    wrong_password(&mut st).await;
    unreachable_database(&mut st).await;
    missing_secret(&mut st).await;
    let last = exactly_once(&st).await;
    binlogs_purged(&mut st, &last).await;
    no_password_in_logs(&st);
}

/// MariaDB, moto behind the fault proxy, cargo lambda watch at debug level;
/// init-db makes the replication user.
async fn start() -> Stack {
    let db = MariaDb::start();
    let logs = db.dir.clone();
    let aws = LocalAws::start_enforcing(&logs, BUCKET).await;
    let proxy = S3FaultProxy::start(&aws.moto.endpoint, &logs);
    db.sql(&format!(
        "CREATE USER 'admin'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';
         GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
         CREATE DATABASE faults;
         CREATE TABLE faults.items (id INT PRIMARY KEY, round INT NOT NULL, note VARCHAR(200));"
    ));
    let admin = aws
        .db_secret("faults-admin", db.port, "admin", ADMIN_PASSWORD)
        .await;
    let repl = aws
        .db_secret("faults-replication", db.port, "binlog_cdc", REPL_PASSWORD)
        .await;
    // Every AWS call of the functions goes through the fault proxy.
    let mut env = aws.lambda_env(&proxy.endpoint);
    env.extend([
        ("BUCKET", BUCKET.to_string()),
        ("PREFIX", "cdc".to_string()),
        ("ADMIN_SECRET_ARN", admin.clone()),
        ("DB_SECRET_ARN", repl.clone()),
        ("CHUNK_BYTES", "16384".into()),
        ("PARSE_MAX_CONCURRENCY", "2".into()),
        ("VIEW", "both".into()),
        ("RUST_LOG", "debug".into()),
    ]);
    // Each function under its own role, as the stack deploys it.
    let parameters = json!({
        "AWS::StackName": "binlog-cdc", "Prefix": "cdc/", "DatabaseSecretArn": admin,
        "CreateReplicationUser": "true", "EventBusName": "",
    });
    let (lambda, roles) = aws.lambda_under_roles(
        &env,
        BUCKET,
        &parameters,
        &[("ReplicationSecret", &repl)],
        &logs,
    );
    let own = binlog_cdc_tests::iam::credentials_env(&roles);
    let env: Vec<(&'static str, String)> = env;
    // The first run reads from the oldest binlog's start (no checkpoint
    // yet): its CREATE TABLE is an event of the range.
    let first = binlog_cdc::BinlogPosition::start_of(db.position().file().to_string());
    // init-db makes the replication user from its secret.
    let cfn = binlog_cdc_tests::aws_local::ResponseUrl::start();
    let (status, _) = lambda.invoke(
        "init-db",
        &json!({
            "RequestType": "Create", "ServiceToken": "x", "ResponseURL": cfn.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", "RequestId": "r",
            "ResourceType": "Custom::InitDb", "LogicalResourceId": "InitDb",
            "ResourceProperties": {"ServiceToken": "x", "CreateReplicationUser": "true",
                "ReplicationUserName": "binlog_cdc", "ReplicationPasswordSecretArn": repl}
        }),
    );
    assert_eq!(status, 200);
    let answer = cfn.bodies.lock().expect("lock")[0].clone();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");

    let store = Arc::new(S3Store::new(aws.s3.clone(), BUCKET));
    let config = PipelineConfig {
        prefix: "cdc/".into(),
        view: View::Both,
        ..Default::default()
    };
    Stack {
        first,
        deps: Deps::new(store, config, db.url()),
        db,
        lambda: Some(lambda),
        lambda_starts: 0,
        lambda_env: env,
        own,
        logs: logs.clone(),
        proxy,
        secrets: aws.secrets.clone(),
        _aws: aws,
        repl_secret: repl,
        metas: BTreeMap::new(),
        round: 0,
    }
}

/// A clean run first: every binary is built and warm.
async fn warm_up(st: &mut Stack) {
    st.writes();
    let r = st.exec("warm-up", &json!({}), &json!({}));
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    st.record().await;
}

/// One step broken one way: run, then retried, redriven or rerun.
async fn step_fault(st: &mut Stack, i: usize, c: &Case) {
    if c.kind == "kill" {
        // Enough work that the kill lands mid-call: a 30,000-row
        // transaction, alone in the run's first chunk.
        st.db.sql(&format!(
            "INSERT INTO faults.items (id, round, note) SELECT {} + seq, 0, 'big' FROM faults.seq_1_to_30000;",
            3_000_000 + 100_000 * i
        ));
    }
    st.writes();
    let name = format!("case-{i}");
    let error = if c.error.is_empty() {
        Value::Null
    } else {
        json!(c.error)
    };
    let mut fault = json!({"state": c.state, "nth": c.nth, "times": c.times,
        "kind": c.kind, "error": error, "delayMs": c.delay_ms});
    let item = if c.kind == "kill" { 0 } else { 1 };
    if c.state == "ParseChunk" {
        fault["item"] = json!(item);
    }
    let options = json!({ "faults": [fault] });
    let r = st.exec(&name, &json!({}), &options);
    println!("case {i}: {r}");
    st.record().await;
    let injected = r["injected"].as_array().map(|a| a.len()).unwrap_or(0);
    if c.kind == "kill" {
        assert_eq!(
            r["injected"][0]["late"], false,
            "case {i}: killed mid-call: {r}"
        );
        assert_eq!(
            r["injected"][0]["killed"], 1,
            "case {i}: one process killed: {r}"
        );
    }
    assert!(injected >= 1, "case {i}: the fault was injected: {r}");
    let (what, how) = describe(c, item);
    let outcome = follow_up(st, c, i, &name, &r, &what, &how).await;
    st.row(&what, &how, outcome);
}

/// What was broken, and where (the table's first two columns).
fn describe(c: &Case, item: u32) -> (String, String) {
    let how = format!(
        "{}{} #{}{}",
        c.state,
        match (c.state, item) {
            ("ParseChunk", 0) => " (the 1st chunk, 30,000 rows)",
            ("ParseChunk", _) => " (the 2nd chunk)",
            _ => "",
        },
        c.nth,
        if c.times > 1 {
            format!(", {} times", c.times)
        } else {
            String::new()
        }
    );
    let what = match c.kind {
        "error" => format!("answer lost ({})", c.error),
        "kill" => "process killed (SIGKILL) mid-call".to_string(),
        "timeout" => "task timed out, function still running".to_string(),
        k => k.to_string(),
    };
    (what, how)
}

/// Checks how the broken execution ended and does what follows (a redrive
/// from the failed state, or a new execution); returns the outcome.
async fn follow_up(
    st: &mut Stack,
    c: &Case,
    i: usize,
    name: &str,
    r: &Value,
    what: &str,
    how: &str,
) -> String {
    let injected = r["injected"].as_array().map(|a| a.len()).unwrap_or(0);
    match c.then {
        Then::Retried => {
            assert_eq!(r["status"], "SUCCEEDED", "case {i} ({what} at {how}): {r}");
            assert_eq!(r["output"]["committed"], true, "{r}");
            format!("retried by the definition ({injected} faulty attempts), committed")
        }
        Then::Redrive => {
            assert_eq!(r["status"], "FAILED", "case {i} ({what} at {how}): {r}");
            assert_eq!(r["failedState"], c.top, "{r}");
            if c.kind == "kill" {
                st.restart_lambda();
            }
            let again = st.exec(
                name,
                &r["redriveInput"],
                &json!({"startAt": r["failedState"]}),
            );
            st.record().await;
            assert_eq!(again["status"], "SUCCEEDED", "case {i} redriven: {again}");
            assert_eq!(again["output"]["committed"], true, "{again}");
            format!(
                "failed at {} ({}); redriven: committed",
                c.top,
                r["error"].as_str().unwrap_or("?")
            )
        }
        Then::Rerun => {
            assert_eq!(r["status"], "FAILED", "case {i} ({what} at {how}): {r}");
            st.writes();
            let again = st.exec(&format!("{name}-rerun"), &json!({}), &json!({}));
            st.record().await;
            assert_eq!(again["status"], "SUCCEEDED", "case {i} rerun: {again}");
            format!(
                "failed at {} ({}); a new execution committed its range and more",
                c.top,
                r["error"].as_str().unwrap_or("?")
            )
        }
    }
}

/// Two executions at once: A holds before its commit while B plans a
/// longer range and commits; A's commit is refused.
async fn two_executions_at_once(st: &mut Stack) {
    st.writes();
    let before = st.staged().await;
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            st.exec(
                "concurrent-a",
                &json!({}),
                &json!({"faults": [{"state": "CommitCheckpoint", "nth": 1, "kind": "delay", "delayMs": 8000}]}),
            )
        });
        let rt = tokio::runtime::Handle::current();
        std::thread::sleep(Duration::from_millis(50));
        tokio::task::block_in_place(|| rt.block_on(st.wait_for_staging(&before)));
        st.db.sql("INSERT INTO faults.items (id, round, note) VALUES (999999, 0, 'written while A runs');");
        let b = st.exec("concurrent-b", &json!({}), &json!({}));
        (a.join().expect("execution A"), b)
    });
    st.record().await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    assert_eq!(b["output"]["committed"], true, "{b}");
    // An expected outcome, not an incident: A ends successfully (the failure
    // alarm counts failed executions) and says what happened.
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    assert_eq!(a["output"]["committed"], false, "{a}");
    assert_eq!(a["output"]["outcome"], "ConcurrentRun", "{a}");
    assert_eq!(a["output"]["error"]["Error"], "ConcurrentRun", "{a}");
    st.row(
        "two executions at once",
        "A waits before CommitCheckpoint; B plans a longer range and commits",
        "B committed; A's commit was refused (ConcurrentRun): it committed nothing and ended SUCCEEDED with outcome ConcurrentRun, so the alarm stays quiet".into(),
    );
}

/// Low-latency mode: a follower near the end of its history budget
/// (started at ListBinlogs with the loop's count set high, as after many
/// polls) reads the round's writes; CommitCheckpoint's first answer is
/// lost and its retry finds its own commit; then it polls while idle and
/// hands over, asking for the next execution.
async fn following(st: &mut Stack) {
    use binlog_cdc::contracts::IDLE_POLL_HISTORY_EVENTS;
    st.writes();
    let config = PipelineConfig::default();
    let spent = config.history_budget
        - config.worst_iteration_history_events()
        - 3 * IDLE_POLL_HISTORY_EVENTS;
    let r = st.exec(
        "follower",
        &json!({"input": {"follow": {"pollSeconds": 1}}, "loop": {"iteration": 1, "historyEvents": spent}}),
        &json!({"startAt": "ListBinlogs", "waitMs": 100,
                "faults": [{"state": "CommitCheckpoint", "nth": 1, "kind": "error"}]}),
    );
    st.record().await;
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["injected"].as_array().map(Vec::len), Some(1), "{r}");
    let started = r["startedExecutions"].as_array().expect("started");
    assert_eq!(started.len(), 1, "{r}");
    assert_eq!(started[0]["Input"]["follow"]["pollSeconds"], 1, "{r}");
    st.row(
        "a follower's commit answer lost",
        "low-latency mode, near its history budget: CommitCheckpoint's first answer lost",
        "the retry found its own commit; the follower handed over to the next execution and ended SUCCEEDED".into(),
    );
}

/// The database crashes during a run that reads a 100,000-row
/// transaction; after the restart, while the run retries, a rotation and
/// a 120,000-row transaction (read by the next run).
async fn database_crash(st: &mut Stack) {
    st.writes();
    st.db.sql(
        "FLUSH BINARY LOGS;
         START TRANSACTION;
         INSERT INTO faults.items (id, round, note) SELECT 1000000 + seq, 0, 'bulk' FROM faults.seq_1_to_100000;
         COMMIT;",
    );
    let before = st.staged().await;
    let r = std::thread::scope(|scope| {
        let run =
            scope.spawn(|| st.exec("db-crash", &json!({}), &json!({"retryIntervalMs": 3000})));
        let rt = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| rt.block_on(st.wait_for_staging(&before)));
        st.db.crash_and_restart();
        st.db.sql(
            "FLUSH BINARY LOGS;
             START TRANSACTION;
             INSERT INTO faults.items (id, round, note) SELECT 2000000 + seq, 0, 'during' FROM faults.seq_1_to_120000;
             COMMIT;",
        );
        run.join().expect("db-crash run")
    });
    st.record().await;
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    let failed_calls = r["taskErrors"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["state"] == "ParseChunk").count())
        .unwrap_or(0);
    st.row(
        "database killed (SIGKILL) and restarted mid-run (reading a 100,000-row transaction); a rotation and a 120,000-row transaction while the run retries",
        "ParseChunks",
        format!("{failed_calls} ParseChunk calls failed and were retried after the restart; committed; the next run read the rest"),
    );
}

/// The S3 API failing every 3rd request (503, 500, or the connection
/// dropped after the request took effect).
async fn s3_failing(st: &mut Stack) {
    st.writes();
    let before = st.proxy.fail_every(3);
    let r = st.exec("s3-faults", &json!({}), &json!({}));
    let after = st.proxy.fail_every(0);
    st.record().await;
    let count = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    let (failed_requests, requests) = (count("faults"), count("requests"));
    assert!(failed_requests > 0, "{before} {after}");
    let outcome = if r["status"] == "SUCCEEDED" {
        format!(
            "{failed_requests} of {requests} requests failed; the SDK's retries absorbed them; committed"
        )
    } else {
        assert_eq!(r["status"], "FAILED", "{r}");
        let again = st.exec(
            "s3-faults",
            &r["redriveInput"],
            &json!({"startAt": r["failedState"]}),
        );
        st.record().await;
        assert_eq!(again["status"], "SUCCEEDED", "{again}");
        format!(
            "{failed_requests} of {requests} requests failed; failed at {} ({}); redriven: committed",
            r["failedState"], r["error"]
        )
    };
    st.row(
        "S3 API (and Secrets Manager, Step Functions) failing every 3rd request",
        "every step",
        outcome,
    );
}

/// The replication password rotated (user and secret): warm functions
/// read the secret again when the server refuses the old one.
async fn password_rotated(st: &mut Stack) {
    st.writes();
    st.db.sql(&format!(
        "ALTER USER 'binlog_cdc'@'%' IDENTIFIED BY '{ROTATED_PASSWORD}';"
    ));
    st.set_repl_password(ROTATED_PASSWORD).await;
    let r = st.exec("rotated", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    st.row(
        "database password rotated (user and secret)",
        "ListBinlogs, ParseChunk (warm)",
        "secret read again on refusal; committed".into(),
    );
}

/// A wrong password in the secret: a definite error; fixed, a rerun commits.
async fn wrong_password(st: &mut Stack) {
    st.writes();
    st.set_repl_password(WRONG_PASSWORD).await;
    st.restart_lambda(); // cold starts read the secret
    let r = st.exec("wrong-password", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "ConfigError", "{r}");
    st.set_repl_password(ROTATED_PASSWORD).await;
    let again = st.exec("wrong-password-fixed", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    st.row(
        "wrong password in the secret",
        "ListBinlogs",
        "ConfigError (definite, not retried), nothing committed; fixed: a rerun committed".into(),
    );
}

/// An unreachable database: transient, retried, then failed at the step;
/// reachable again, redriven.
async fn unreachable_database(st: &mut Stack) {
    st.writes();
    st.set_repl_port(free_port()).await;
    st.restart_lambda(); // cold starts read the secret
    let r = st.exec("unreachable", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "Transient", "{r}");
    assert_eq!(r["failedState"], "ListBinlogs", "{r}");
    st.set_repl_port(st.db.port).await;
    st.restart_lambda(); // cold starts read the secret
    let again = st.exec(
        "unreachable",
        &r["redriveInput"],
        &json!({"startAt": "ListBinlogs"}),
    );
    st.record().await;
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    st.row(
        "database unreachable (nothing listening)",
        "ListBinlogs",
        "Transient, retried 3 times, failed at the step, nothing committed; redriven: committed"
            .into(),
    );
}

/// A secret that does not exist: the functions answer with ConfigError
/// (definite), nothing is committed; with the right one again, a rerun
/// commits.
async fn missing_secret(st: &mut Stack) {
    st.writes();
    let saved = st.lambda_env.clone();
    for (k, v) in st.lambda_env.iter_mut() {
        if *k == "DB_SECRET_ARN" || *k == "ADMIN_SECRET_ARN" {
            *v = "arn:aws:secretsmanager:us-east-1:123456789012:secret:binlog-cdc-missing-AbCdEf"
                .into();
        }
    }
    st.restart_lambda();
    let r = st.exec("missing-secret", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "ConfigError", "{r}");
    assert!(
        r["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("binlog-cdc-missing"),
        "{r}"
    );
    // init-db cannot start either, and still answers CloudFormation.
    let cfn = binlog_cdc_tests::aws_local::ResponseUrl::start();
    let (status, _) = st.lambda.as_ref().expect("lambda").invoke(
        "init-db",
        &json!({
            "RequestType": "Create", "ServiceToken": "x", "ResponseURL": cfn.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", "RequestId": "r2",
            "ResourceType": "Custom::InitDb", "LogicalResourceId": "InitDb",
            "ResourceProperties": {"ServiceToken": "x"}
        }),
    );
    assert_eq!(status, 200);
    let answer = cfn.bodies.lock().expect("lock")[0].clone();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("[ConfigError]") && reason.contains("binlog-cdc-missing"),
        "{reason}"
    );
    st.lambda_env = saved;
    st.restart_lambda();
    let again = st.exec("missing-secret-fixed", &json!({}), &json!({}));
    st.record().await;
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    st.row(
        "the database secret does not exist",
        "ListBinlogs and init-db (at their cold start)",
        "ConfigError naming the secret (definite), nothing committed; init-db answered CloudFormation FAILED, naming it; fixed: a rerun committed"
            .into(),
    );
}

/// The promise: every event of the whole range exactly once.
async fn exactly_once(st: &Stack) -> Meta {
    let last = pipeline::meta(&st.deps).await.expect("meta").0;
    let mut committed: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut metas: Vec<&Meta> = st.metas.values().collect();
    metas.sort_by(|a, b| a.position.position.cmp(&b.position.position));
    for m in &metas {
        for (t, evs) in pipeline::committed_events(&st.deps, m).await {
            committed.entry(t).or_default().extend(evs);
        }
    }
    let independent = pipeline::independent(&st.db.url(), &st.first, &last.position.position).await;
    let (lost, doubled) = lost_and_doubled(&committed, &independent);
    let total: usize = independent.values().map(|v| v.len()).sum();
    println!(
        "exactly once: {} committed runs, {total} row events in the range, lost {lost}, doubled {doubled}",
        metas.len()
    );
    assert_eq!((lost, doubled), (0, 0));
    pipeline::assert_same_events(&committed, &independent);
    assert!(total > 100_000, "{total}");
    last
}

/// Binlogs purged past the checkpoint: BinlogPurged, nothing committed.
async fn binlogs_purged(st: &mut Stack, last: &Meta) {
    st.writes();
    // The server keeps a file that crash recovery may still need (and
    // PURGE only warns): flush and purge until the checkpoint's file is gone.
    let gone = |db: &MariaDb| {
        !db.sql("SHOW BINARY LOGS")
            .lines()
            .any(|l| l.starts_with(&format!("{}\t", last.position.file)))
    };
    let started = Instant::now();
    while !gone(&st.db) && started.elapsed() < Duration::from_secs(30) {
        st.db.sql("FLUSH BINARY LOGS; FLUSH ENGINE LOGS;");
        let newest = st.db.position();
        st.db
            .sql(&format!("PURGE BINARY LOGS TO '{}';", newest.file()));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(gone(&st.db), "{} purged", last.position.file);
    let (_, etag) = pipeline::meta(&st.deps).await.expect("meta");
    let r = st.exec("purged", &json!({}), &json!({}));
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "BinlogPurged", "{r}");
    assert!(
        r["cause"]
            .as_str()
            .unwrap_or_default()
            .contains(last.position.file.as_str()),
        "{r}"
    );
    assert_eq!(
        pipeline::meta(&st.deps).await.expect("meta").1,
        etag,
        "nothing committed"
    );
    st.row(
        "binlogs purged past the checkpoint",
        "ListBinlogs",
        "BinlogPurged naming the file, nothing committed".into(),
    );
}

/// No password in any log line, at debug level.
fn no_password_in_logs(st: &Stack) {
    let mut log = binlog_cdc_tests::aws_local::function_logs(&st.logs);
    for n in 1..=st.lambda_starts {
        log += &binlog_cdc_tests::aws_local::function_logs(&st.logs.join(format!("lambda-{n}")));
    }
    assert!(!log.is_empty(), "no function log");
    let lines = log.lines().count();
    for secret in [
        ADMIN_PASSWORD,
        REPL_PASSWORD,
        ROTATED_PASSWORD,
        WRONG_PASSWORD,
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "a password in the logs: {hits:?}");
    }
    assert!(lines > 1000, "debug logs were written: {lines} lines");
    println!("secrets: none of 4 passwords in {lines} log lines at debug level");
}
