//! End to end on a local stack: MariaDB, moto server (S3 and Secrets
//! Manager), the state machine definition itself run by aws-local-stepfunctions,
//! whose tasks invoke the real function binaries through `cargo lambda watch`.
//!
//! init-db from a custom-resource event (answered to a local ResponseURL),
//! creating a least-privilege replication user that the pipeline then uses;
//! the demo workload; run 1; writes with a rotation and a large transaction;
//! run 2 resumes where run 1 ended. The committed objects hold every event
//! of the whole range exactly once, checked against an independent parse; a
//! replay with commit false moves nothing; a commit on a stale ETag is refused;
//! a snapshot started from the execution's input commits every row once.
//! A follower (`follow`, the low-latency mode) polls while caught up,
//! commits a change written while it polls, and hands over to the next
//! execution when its history has no room left; the next one's overlap
//! check does not count the execution that handed over.
//! The stack is deployed with a hash column rule and a key of its own:
//! parse-chunk reads the key under its role, and the committed events equal
//! an independent parse under the same rule.
//!
//! IAM is enforced: moto checks every call, and each function's process
//! calls with a role carrying only its policy from `infra/template.yaml`
//! (rendered for this stack's parameters); the test itself calls as an
//! administrator. A call a policy does not allow fails the run, and any
//! refusal in a function's log fails the test, naming function, action and
//! resource.

use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::decoder::column_rules::{ColumnRules, HashKey};
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::s3::S3Store;
use binlog_cdc_tests::aws_local::{self, LambdaWatch, LocalAws, ResponseUrl, S3FaultProxy};
use binlog_cdc_tests::{pipeline, MariaDb};
use serde_json::{json, Value};

const BUCKET: &str = "binlog-cdc-e2e";

/// A column rule the stack is deployed with, and its key's secret.
const COLUMN_RULE: &str = "martzcodes.notes.body=hash";
const HASH_KEY: &str = "e2e-column-hash-key-7f3a9c1d";

fn run_state_machine(lambda: &LambdaWatch, input: &Value, execution: &str) -> Value {
    aws_local::run_state_machine(lambda, input, execution, &json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_machine_end_to_end() {
    let db = MariaDb::start();
    let logs = db.dir.clone();
    let aws = LocalAws::start_enforcing(&logs, BUCKET).await;
    let (s3, sm, sfn) = (aws.s3.clone(), aws.secrets.clone(), aws.sfn.clone());
    let admin_arn = aws.db_secret("db-admin", db.port, "cdc", "cdc").await;
    let repl_password = "R3pl-pa55 'w/' \\ spaces!";
    // As the stack makes it: username and password only; the host and port
    // come from init-db (its Data, the functions' DB_HOST and DB_PORT).
    let repl = sm
        .create_secret()
        .name("db-replication")
        .secret_string(json!({"username": "binlog_cdc", "password": repl_password}).to_string())
        .send()
        .await
        .expect("replication secret");

    // The key of a hash column rule, given to the stack (HashKeySecretArn).
    let hash_key = sm
        .create_secret()
        .name("column-hash-key")
        .secret_string(HASH_KEY)
        .send()
        .await
        .expect("hash key secret");
    let hash_key_arn = hash_key.arn().unwrap().to_string();

    // The functions call through a proxy that records each request with
    // its caller's key: which granted actions some call needed.
    let record = logs.join("requests.jsonl");
    let proxy = S3FaultProxy::start_with(&aws.moto.endpoint, &logs, Some(&record));
    let mut env = aws.lambda_env(&proxy.endpoint);
    env.extend([
        ("BUCKET", BUCKET.to_string()),
        ("PREFIX", "cdc".to_string()),
        ("ADMIN_SECRET_ARN", admin_arn.clone()),
        ("DB_SECRET_ARN", repl.arn().unwrap().to_string()),
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", db.port.to_string()),
        ("CHUNK_BYTES", "16384".into()),
        ("PARSE_MAX_CONCURRENCY", "3".into()),
        ("VIEW", "both".into()),
        ("RUST_LOG", "info".into()),
        ("EVENT_BUS_NAME", "default".into()),
        ("SNAPSHOT_RANGE_ROWS", "5000".into()),
        ("COLUMN_RULES", COLUMN_RULE.into()),
        ("HASH_KEY_SECRET_ARN", hash_key_arn.clone()),
    ]);
    // Each function under its own role, as the stack deploys it.
    let parameters = json!({
        "AWS::StackName": "binlog-cdc", "Prefix": "cdc/", "DatabaseSecretArn": admin_arn,
        "CreateReplicationUser": "true", "EventBusName": "default",
        "ColumnRules": COLUMN_RULE, "HashKeySecretArn": hash_key_arn,
    });
    let (lambda, roles) = aws.lambda_under_roles(
        &env,
        BUCKET,
        &parameters,
        &[("ReplicationSecret", repl.arn().unwrap())],
        &logs,
    );
    assert_eq!(roles.len(), 5, "{:?}", roles.keys());
    // Consumers: the README's sample rule, into a queue.
    let rule = std::fs::read_to_string(
        binlog_cdc_tests::workspace_root().join("docs/run-committed-rule.json"),
    )
    .expect("docs/run-committed-rule.json");
    let queue = aws.events_to_queue("run-committed", &rule).await;

    // init-db, as CloudFormation would call it.
    // RDS's retention procedures, as RDS and Aurora have them (what RDS
    // keeps is its own: the server's expire setting stays unset).
    db.sql(
        "CREATE PROCEDURE mysql.rds_set_configuration(name VARCHAR(64), value INT) BEGIN END;
         CREATE PROCEDURE mysql.rds_show_configuration()
           SELECT 'binlog retention hours' AS name, '48' AS value, 'hours' AS description;",
    );
    let cfn = ResponseUrl::start();
    let first = db.position();
    let properties = json!({
        "ServiceToken": "x", "RetentionHours": "48", "CreateReplicationUser": "true",
        "ReplicationUserName": "binlog_cdc", "ReplicationPasswordSecretArn": repl.arn().unwrap(),
        "DemoData": "true", "DemoSchema": "martzcodes"
    });
    // The demo rows once: an update with them would write them again.
    let custom_resource = |kind: &str| {
        let mut properties = properties.clone();
        if kind != "Create" {
            properties["DemoData"] = "false".into();
        }
        json!({
            "RequestType": kind, "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:init-db",
            "ResponseURL": cfn.url, "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": format!("req-{kind}"), "ResourceType": "Custom::InitDb", "LogicalResourceId": "InitDb",
            "PhysicalResourceId": "binlog-cdc-init-cdc",
            "ResourceProperties": properties, "OldResourceProperties": properties,
        })
    };
    let (status, _) = lambda.invoke("init-db", &custom_resource("Create"));
    assert_eq!(status, 200);
    let responses = cfn.bodies.lock().unwrap().clone();
    assert_eq!(responses.len(), 1, "one response PUT to the ResponseURL");
    assert_eq!(responses[0]["Status"], "SUCCESS", "{}", responses[0]);
    assert_eq!(responses[0]["Data"]["serverId"], "1");
    // What the stack passes to the functions as DB_HOST and DB_PORT.
    assert_eq!(responses[0]["Data"]["Host"], "127.0.0.1");
    assert_eq!(responses[0]["Data"]["Port"], db.port.to_string());
    let grants = db.sql("SHOW GRANTS FOR 'binlog_cdc'@'%'");
    assert!(
        grants.contains("REPLICATION SLAVE") && grants.contains("CREATE TEMPORARY TABLES"),
        "{grants}"
    );
    // SELECT only on the schemas the (here: no) include patterns reach,
    // never on the system schemas; in `mysql`, only RDS's retention reading.
    for line in grants.lines() {
        let system = line.contains("`mysql`") || line.contains("`sys`");
        assert!(
            !(line.contains("SELECT") && (line.contains("ON *.*") || system)),
            "{grants}"
        );
    }
    assert!(
        grants.contains("GRANT EXECUTE ON PROCEDURE `mysql`.`rds_show_configuration`"),
        "{grants}"
    );
    assert!(
        grants.contains("GRANT SELECT ON `martzcodes`.*"),
        "{grants}"
    );
    // An update runs it again (the same grants, the same Data); a delete
    // touches nothing. Both under init-db's role.
    for kind in ["Update", "Delete"] {
        let (status, _) = lambda.invoke("init-db", &custom_resource(kind));
        assert_eq!(status, 200);
        let answer = cfn.bodies.lock().unwrap().last().cloned().unwrap();
        assert_eq!(answer["Status"], "SUCCESS", "{kind}: {answer}");
    }
    assert_eq!(db.sql("SHOW GRANTS FOR 'binlog_cdc'@'%'"), grants);
    let store = Arc::new(S3Store::new(s3.clone(), BUCKET));
    let config = PipelineConfig {
        prefix: "cdc/".into(),
        view: View::Both,
        ..Default::default()
    };
    let deps = Deps::new(store.clone(), config, db.url());
    let sid = deps
        .store
        .get("cdc/serverId.json")
        .await
        .unwrap()
        .expect("serverId.json");
    assert_eq!(
        serde_json::from_slice::<Value>(&sid.body).unwrap(),
        json!({"@@server_id": 1})
    );

    // Run 1: the demo workload.
    let r1 = run_state_machine(&lambda, &json!({}), "run-1");
    assert_eq!(r1["status"], "SUCCEEDED", "{r1}");
    assert_eq!(r1["output"]["committed"], true, "{r1}");
    let (meta1, etag1) = pipeline::meta(&deps).await.expect("meta after run 1");
    // The demo's CREATE TABLE and its 7 row events.
    assert_eq!(meta1.counts.get("martzcodes.tasks"), Some(&8));

    // More writes: another table, a rotation, a large transaction.
    db.sql(
        "CREATE TABLE martzcodes.notes (id INT PRIMARY KEY, body TEXT, price DECIMAL(8,2));
         INSERT INTO martzcodes.notes SELECT seq, CONCAT('note ', seq, ' ✓'), seq / 4 FROM martzcodes.seq_1_to_500;
         UPDATE martzcodes.tasks SET done = 1 WHERE task_id > 2;
         FLUSH BINARY LOGS;
         START TRANSACTION;
         INSERT INTO martzcodes.notes SELECT seq, 'bulk', 1.5 FROM martzcodes.seq_1001_to_21000;
         DELETE FROM martzcodes.notes WHERE id <= 100;
         COMMIT;",
    );
    let r2 = run_state_machine(&lambda, &json!({}), "run-2");
    assert_eq!(r2["status"], "SUCCEEDED", "{r2}");
    let (meta2, etag2) = pipeline::meta(&deps).await.expect("meta after run 2");
    assert_ne!(meta2.run_id, meta1.run_id);

    // The functions' metrics: embedded metric format lines in their logs.
    let log = aws_local::function_logs(&logs);
    let emf: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    for name in [
        "BytesBehind",
        "RowEvents",
        "BinlogBytesRead",
        "RunDurationSeconds",
        "LagSeconds",
    ] {
        assert!(
            emf.iter()
                .any(|v| v[name].is_number() && v["Pipeline"] == "binlog-cdc"),
            "no {name} in the functions' EMF lines ({} lines)",
            emf.len()
        );
    }
    // The headroom reads RDS's retention as the replication user (init-db
    // grants it EXECUTE on mysql.rds_show_configuration): 48 hours less the
    // checkpoint file's age.
    assert!(
        emf.iter().any(|v| v["RetentionHeadroomSeconds"]
            .as_f64()
            .is_some_and(|s| s > 47.0 * 3600.0 && s <= 48.0 * 3600.0)),
        "no RetentionHeadroomSeconds from RDS's 48 hours"
    );
    assert!(meta2.position.position > meta1.position.position);

    // Every event of the whole range, exactly once, against an independent parse.
    let mut committed = pipeline::committed_events(&deps, &meta1).await;
    for (t, evs) in pipeline::committed_events(&deps, &meta2).await {
        committed.entry(t).or_default().extend(evs);
    }
    let rules = ColumnRules::new(
        &[COLUMN_RULE.to_string()],
        Some(HashKey::new(HASH_KEY.as_bytes()).expect("a key")),
    )
    .expect("the rule");
    let independent =
        pipeline::independent_under(&db.url(), &first, &meta2.position.position, rules).await;
    pipeline::assert_same_events(&committed, &independent);
    // The ruled column is hashed (parse-chunk read the key under its role).
    let note = &committed["martzcodes.notes"][1];
    let body = note["newImage"]["body"].as_str().expect("a body");
    assert!(
        body.len() == 64 && body.bytes().all(|b| b.is_ascii_hexdigit()),
        "{note}"
    );
    // Its CREATE TABLE, 500 + 20,000 inserts, 100 deletes.
    assert_eq!(independent["martzcodes.notes"].len(), 1 + 500 + 20000 + 100);
    // The all-tables object of run 2 agrees with its per-table objects.
    let all_key = meta2
        .outputs
        .iter()
        .find(|k| k.contains("all/all-binlog-"))
        .expect("all-tables key");
    let all_doc: Value =
        serde_json::from_slice(&deps.store.get(all_key).await.unwrap().unwrap().body).unwrap();
    assert_eq!(all_doc["counts"]["martzcodes.notes"], json!(20601));
    assert_eq!(
        all_doc["tables"]["martzcodes.notes"]
            .as_array()
            .map(|a| a.len()),
        Some(20601)
    );
    assert!(
        deps.store.list("cdc/staging/").await.unwrap().is_empty(),
        "staging removed"
    );

    // A replay with commit false moves nothing.
    let replay =
        json!({"from": meta1.position.position, "to": meta2.position.position, "commit": false});
    let r3 = run_state_machine(&lambda, &replay, "replay");
    assert_eq!(r3["status"], "SUCCEEDED", "{r3}");
    assert_eq!(r3["output"]["committed"], false, "{r3}");
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);

    // Consumers were told of each commit (and not of the replay).
    let received = aws.drain_queue(&queue).await;
    let details: Vec<&Value> = received.iter().map(|e| &e["detail"]).collect();
    assert_eq!(details.len(), 2, "{received:?}");
    for (meta, detail) in [&meta1, &meta2].into_iter().zip(&details) {
        assert_eq!(detail["runId"], meta.run_id.as_str());
        assert_eq!(detail["to"], meta.position.position.to_string());
        assert_eq!(detail["counts"], json!(meta.counts));
        assert_eq!(detail["outputs"], json!(meta.outputs));
        assert_eq!(detail["pipeline"], "binlog-cdc");
    }
    assert_eq!(details[1]["from"], meta1.position.position.to_string());
    assert!(received
        .iter()
        .all(|e| e["source"] == "binlog-cdc" && e["detail-type"] == "RunCommitted"));

    // Nothing new: the run ends early.
    let r4 = run_state_machine(&lambda, &json!({}), "idle");
    assert_eq!(r4["status"], "SUCCEEDED", "{r4}");
    assert_eq!(r4["output"]["status"], "nothing", "{r4}");

    // Another execution already running: this one ends as skipped, nothing moves.
    let other = sfn
        .start_execution()
        .state_machine_arn(&aws.machine_arn)
        .name("long-running")
        .send()
        .await
        .expect("start in moto");
    db.sql("INSERT INTO martzcodes.tasks (title) VALUES ('while another run runs');");
    let r6 = run_state_machine(&lambda, &json!({}), "concurrent");
    assert_eq!(r6["status"], "SUCCEEDED", "{r6}");
    assert_eq!(r6["output"]["status"], "skipped", "{r6}");
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);
    sfn.stop_execution()
        .execution_arn(other.execution_arn())
        .send()
        .await
        .expect("stop");

    // A second commit on a stale ETag is refused: ConcurrentRun, nothing committed.
    let plan = json!({
        "status": "run", "runId": meta2.run_id, "from": meta1.position.position, "to": meta2.position.position,
        "commit": true, "metaEtag": etag1, "chunks": [], "maxConcurrency": 1
    });
    pipeline::stage_empty_fan_out(&deps, &meta2.run_id).await;
    let (status, body) = lambda.invoke("commit-checkpoint", &json!({"plan": plan, "loop": {}}));
    assert_ne!(status, 200, "{body}");
    assert_eq!(body["errorType"], "ConcurrentRun", "{body}");
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);

    // A malformed execution input fails clearly, with a definite error.
    let r5 = run_state_machine(&lambda, &json!({"form": "binlog.000001:4"}), "typo");
    assert_eq!(r5["status"], "FAILED", "{r5}");
    assert_eq!(pipeline::meta(&deps).await.unwrap().1, etag2);

    // A snapshot from the console's input, as the least-privilege user:
    // every existing row of the table once, in ranges of 5,000 rows.
    let r7 = run_state_machine(
        &lambda,
        &json!({"snapshot": ["martzcodes.notes"]}),
        "snapshot",
    );
    assert_eq!(r7["status"], "SUCCEEDED", "{r7}");
    let (meta7, _) = pipeline::meta(&deps)
        .await
        .expect("meta after the snapshot");
    let snap = meta7.snapshot.as_ref().expect("the snapshot in meta.json");
    assert!(snap.progress.done(), "{snap:?}");
    assert_eq!(snap.progress.ranges, 5, "{snap:?}");
    let events = pipeline::committed_events(&deps, &meta7).await;
    let ids: std::collections::BTreeSet<u64> = events["martzcodes.notes"]
        .iter()
        .filter(|e| e["type"] == "SnapshotRowEvent")
        .map(|e| e["keys"]["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 20_400, "every row once");
    assert!(ids.contains(&101) && ids.contains(&21_000) && !ids.contains(&100));

    // A table in a schema made after init-db: the replication user may not
    // read it, and the snapshot fails saying so, with the GRANT to run.
    db.sql("CREATE DATABASE later; CREATE TABLE later.t (id INT PRIMARY KEY); INSERT INTO later.t VALUES (1);");
    let r8 = run_state_machine(
        &lambda,
        &json!({"snapshot": ["later.t"]}),
        "snapshot-denied",
    );
    assert_eq!(r8["status"], "FAILED", "{r8}");
    let text = r8.to_string();
    assert!(
        text.contains("later.t") && text.contains("GRANT SELECT ON `later`.* TO 'binlog_cdc'@'%'"),
        "{r8}"
    );

    // Every Task throttled and failing as often as its retriers allow (6
    // throttles, then 3 or 4 transient errors): the run still commits, and
    // the history it spent, retries included, is within what the loop
    // counted for it (the budget that decides whether to go round again).
    db.sql("INSERT INTO martzcodes.tasks (title) VALUES ('throttled 1'), ('throttled 2');");
    let mut faults = Vec::new();
    for (state, transient, item) in [
        ("ListBinlogs", 3, None),
        ("ParseChunk", 4, Some(0)),
        ("PlanFanOut", 3, None),
        ("FanOutShard", 3, None),
        ("JoinAllTables", 3, None),
        ("CommitCheckpoint", 3, None),
    ] {
        let mut throttled = json!({"state": state, "nth": 1, "times": 6, "kind": "error", "error": "Lambda.TooManyRequestsException"});
        let mut failed = json!({"state": state, "nth": 7, "times": transient, "kind": "error", "error": "Lambda.ServiceException"});
        if let Some(i) = item {
            throttled["item"] = json!(i);
            failed["item"] = json!(i);
        }
        faults.extend([throttled, failed]);
    }
    let r9 =
        aws_local::run_state_machine(&lambda, &json!({}), "throttled", &json!({"faults": faults}));
    assert_eq!(r9["status"], "SUCCEEDED", "{r9}");
    let injected = r9["injected"].as_array().map_or(0, Vec::len);
    assert!(injected >= 6 * 9, "{injected} faults injected");
    let spent = r9["quotas"]["historyEvents"]
        .as_u64()
        .expect("history events");
    let counted = r9["output"]["loop"]["historyEvents"]
        .as_u64()
        .expect("the loop's count");
    assert!(
        spent <= counted,
        "the execution spent {spent} history events; the loop counted {counted}"
    );

    // A restart of the stream at a position, as after BinlogHistoryChanged.
    let at = db.position();
    db.sql("INSERT INTO martzcodes.tasks (title) VALUES ('after the restart');");
    let r10 = run_state_machine(&lambda, &json!({"restartAt": at.to_string()}), "restart");
    assert_eq!(r10["status"], "SUCCEEDED", "{r10}");
    assert_eq!(r10["output"]["committed"], true, "{r10}");

    follow_and_hand_over(&lambda, &db, &deps, &sfn, &aws.machine_arn).await;

    // `binlog-cdc status` with only what the README says it needs.
    let operator = binlog_cdc_tests::iam::user(
        &aws.moto.endpoint,
        aws.admin.as_ref().expect("enforcing"),
        "operator",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{BUCKET}/cdc/meta.json")},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{BUCKET}"),
             "Condition": {"StringEquals": {"s3:prefix": "cdc/meta.json"}}},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{BUCKET}"),
             "Condition": {"StringLike": {"s3:prefix": "cdc/schemas/*"}}},
        ]}),
    );
    let sdk = binlog_cdc::aws::sdk_config()
        .await
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new(
                operator.access_key_id,
                operator.secret_access_key,
                None,
                None,
                "operator",
            ),
        ))
        .build();
    let as_operator = Deps::new(
        Arc::new(S3Store::new(binlog_cdc::aws::s3_client(&sdk), BUCKET)),
        PipelineConfig {
            prefix: "cdc/".into(),
            ..Default::default()
        },
        db.url(),
    );
    let status = pipeline_driver::status::status(&as_operator, Default::default())
        .await
        .expect("status as the operator");
    assert!(status.checkpoint.is_some(), "{status:?}");

    // No function read a missing object: S3 answers that with 404 only to
    // a caller allowed to list the bucket, and whether a ListBucket grant
    // conditioned on s3:prefix counts is not documented (moto answers 404
    // regardless). A missing meta.json is found by listing its key.
    let misses: Vec<String> = std::fs::read_to_string(&record)
        .expect("the recorded requests")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["status"] == 404 && matches!(r["method"].as_str(), Some("GET" | "HEAD")))
        .map(|r| format!("{} {}", r["method"], r["path"]))
        .collect();
    assert!(misses.is_empty(), "objects read while missing: {misses:#?}");

    // Every action a policy grants was needed by some call of its function,
    // but for those listed here with the reason the test does not call them.
    let not_exercised: &[(&str, &str, &str)] = &[
        (
            "fan-out-by-table",
            "s3:AbortMultipartUpload",
            "a multipart upload that fails midway is aborted",
        ),
        (
            "commit-checkpoint",
            "s3:AbortMultipartUpload",
            "publishing an object over 5 GiB is a multipart copy, aborted if it fails",
        ),
    ];
    let usage = binlog_cdc_tests::iam::usage(&roles, &record);
    let mut unused = Vec::new();
    for (function, u) in &usage {
        assert!(!u.needed.is_empty(), "{function} made no call: {u:?}");
        assert!(u.refused.is_empty(), "{function}: {:?}", u.refused);
        for action in &u.unused {
            if !not_exercised
                .iter()
                .any(|(f, a, _)| f == function && a == action)
            {
                unused.push(format!("{function}: {action}"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted, and needed by no call: {unused:#?}\n{usage:#?}"
    );

    // No function was refused a call anywhere, even one it got past.
    for function in roles.keys() {
        let log = std::fs::read_to_string(logs.join(format!("lambda-{function}.log")))
            .unwrap_or_default();
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("AccessDenied") || l.contains("not authorized to perform"))
            .collect();
        assert!(refused.is_empty(), "{function} was refused: {refused:#?}");
    }
}

/// A follower near the end of its history budget (started at ListBinlogs
/// with the loop's count set high, as after many polls): it polls while
/// idle, commits a row written meanwhile, then hands over, asking for the
/// next execution with its own `follow` and `handedOverBy`. That next
/// execution plans instead of skipping while the one that handed over is
/// still RUNNING, and a third, started by the schedule meanwhile, skips.
async fn follow_and_hand_over(
    lambda: &LambdaWatch,
    db: &MariaDb,
    deps: &Deps,
    sfn: &aws_sdk_sfn::Client,
    machine_arn: &str,
) {
    use binlog_cdc::contracts::IDLE_POLL_HISTORY_EVENTS;
    let config = PipelineConfig::default();
    // Room for 20 idle polls, and for no whole iteration after them.
    let spent = config.history_budget
        - config.worst_iteration_history_events()
        - 20 * IDLE_POLL_HISTORY_EVENTS;
    let follow = json!({"pollSeconds": 1});
    let start =
        json!({"input": {"follow": follow}, "loop": {"iteration": 1, "historyEvents": spent}});
    let before = pipeline::meta(deps).await.expect("a checkpoint").0;
    let options = json!({"startAt": "ListBinlogs", "waitMs": 200});
    let f1 = std::thread::scope(|scope| {
        let run =
            scope.spawn(|| aws_local::run_state_machine(lambda, &start, "follower-1", &options));
        std::thread::sleep(std::time::Duration::from_millis(3000));
        db.sql("INSERT INTO martzcodes.tasks (title) VALUES ('while a follower polls');");
        run.join().expect("the follower")
    });
    assert_eq!(f1["status"], "SUCCEEDED", "{f1}");
    // It polled before the write and after it (ListBinlogs each time),
    // committed it in one run, and handed over once out of history.
    let calls = f1["calls"].as_array().expect("calls");
    let count = |state: &str| calls.iter().filter(|c| c["state"] == state).count();
    assert!(count("ListBinlogs") >= 3, "{f1}");
    assert_eq!(count("CommitCheckpoint"), 1, "{f1}");
    assert_eq!(calls.last().map(|c| &c["state"]), Some(&json!("HandOver")));
    assert_eq!(f1["output"]["last"]["loop"]["then"], "handOver", "{f1}");
    let (after, _) = pipeline::meta(deps).await.expect("a checkpoint");
    assert_ne!(after.run_id, before.run_id);
    assert_eq!(after.counts.get("martzcodes.tasks"), Some(&1), "{after:?}");
    let f1_arn = "arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:follower-1";
    let started = f1["startedExecutions"].as_array().expect("started");
    assert_eq!(started.len(), 1, "{f1}");
    assert_eq!(
        started[0]["Input"],
        json!({"follow": follow, "handedOverBy": f1_arn})
    );
    let name = started[0]["Name"].as_str().expect("a name");
    assert!(
        name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    assert_eq!(
        f1["output"]["handedOverTo"]["executionArn"],
        format!("arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:{name}")
    );

    // The next follower's first plan, while follower-1 still shows as
    // RUNNING (it is ending): it plans and polls on; without handedOverBy
    // it would skip.
    let ending = sfn
        .start_execution()
        .state_machine_arn(machine_arn)
        .name("follower-1")
        .send()
        .await
        .expect("start in moto");
    assert_eq!(ending.execution_arn(), f1_arn);
    let plan = |input: Value| {
        let (status, plan) = lambda.invoke(
            "list-binlogs",
            &json!({"input": input, "loop": {}, "stateMachineArn": machine_arn,
                    "executionArn": format!("arn:aws:states:us-east-1:123456789012:execution:binlog-cdc-pipeline:{name}")}),
        );
        assert_eq!(status, 200, "{plan}");
        plan
    };
    let next = plan(started[0]["Input"].clone());
    assert_eq!(next["status"], "nothing", "{next}");
    assert_eq!(next["loop"]["then"], "poll", "{next}");
    let scheduled = plan(json!({"follow": follow}));
    assert_eq!(scheduled["status"], "skipped", "{scheduled}");
    sfn.stop_execution()
        .execution_arn(f1_arn)
        .send()
        .await
        .expect("stop");
}
