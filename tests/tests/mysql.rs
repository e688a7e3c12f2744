//! Against Oracle's MySQL itself (the server Aurora MySQL and RDS MySQL
//! run), with GTIDs on and MySQL's defaults where the tests do not set one:
//! - every change committed, run after run, and the checkpoint's GTID set
//!   equal to the server's `@@gtid_executed` at the checkpoint, across a
//!   rotation and a compressed transaction;
//! - `restartAt: gtid:SET` goes on at the first transaction the set lacks;
//! - MySQL's own default `binlog_row_metadata=MINIMAL`, `PARTIAL_JSON` and a
//!   read-only instance are refused by name, by init-db and by every run;
//!   init-db's own statements run on MySQL;
//! - `RESET BINARY LOGS AND GTIDS` under a checkpoint is a changed history.
//!
//! The server is `scripts/ensure-mysql.sh`'s (see `binlog_cdc_tests::mysql`).

use std::sync::Arc;
use std::time::Duration;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{ListBinlogsInput, Meta, RestartAt, RunInput};
use binlog_cdc::error::{names, Error};
use binlog_cdc::event::View;
use binlog_cdc::gtid::GtidSet;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::source::connect::connect;
use binlog_cdc::source::server;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::aws_local::init_db_create;
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::pipeline;
use serde_json::json;

const SCHEMA: &str = "CREATE DATABASE m; \
    CREATE TABLE m.t (id INT PRIMARY KEY, v VARCHAR(40), j JSON, d DATETIME(6));";

fn deps_on(db: &MySql, out: &str) -> Deps {
    Deps::new(
        Arc::new(LocalStore::new(db.dir.join(out))),
        PipelineConfig {
            view: View::Both,
            ..Default::default()
        },
        db.url(),
    )
}

/// One run that must commit; returns the checkpoint.
async fn commit(deps: &Deps, input: RunInput) -> Meta {
    let (plan, commit) = pipeline::run(deps, input).await.expect("a run");
    assert!(commit.expect("something to commit").committed, "{plan:?}");
    pipeline::meta(deps).await.expect("committed").0
}

fn gtid_set(text: &str) -> GtidSet {
    text.parse()
        .unwrap_or_else(|e| panic!("not a GTID set: {text}: {e}"))
}

/// The checkpoint's GTID set is the server's executed set (compared as
/// sets: MySQL prints one with line breaks).
fn assert_gtid_at_checkpoint(meta: &Meta, db: &MySql) {
    let at = meta.position.gtid.as_deref().expect("a GTID set");
    assert_eq!(gtid_set(at), gtid_set(&db.gtid_executed()), "{meta:?}");
}

/// `(type, id)` of each committed event of `m.t`, in order.
async fn changes(deps: &Deps, meta: &Meta) -> Vec<(String, i64)> {
    let events = pipeline::committed_events(deps, meta).await;
    events["m.t"]
        .iter()
        .map(|e| {
            let id = e["keys"]["id"].as_i64().expect("id");
            (e["type"].as_str().expect("type").to_string(), id)
        })
        .collect()
}

fn of(kind: &str, ids: impl IntoIterator<Item = i64>) -> Vec<(String, i64)> {
    ids.into_iter().map(|id| (kind.to_string(), id)).collect()
}

#[tokio::test]
async fn every_change_and_the_executed_gtid_set_run_after_run() {
    let db = MySql::start();
    let deps = deps_on(&db, "out");
    db.sql(&format!(
        "{SCHEMA} \
         INSERT INTO m.t VALUES (1, 'a', '{{\"k\": [1, 2]}}', '2026-12-03 10:00:00.123456'), \
           (2, 'b', NULL, NULL), (3, 'c', '[]', '1999-01-01'); \
         UPDATE m.t SET v = 'b2' WHERE id = 2; DELETE FROM m.t WHERE id = 3;"
    ));
    let first = commit(&deps, RunInput::default()).await;
    assert_gtid_at_checkpoint(&first, &db);
    let mut expected = of("WriteRowsEvent", [1, 2, 3]);
    expected.extend(
        of("UpdateRowsEvent", [2])
            .into_iter()
            .chain(of("DeleteRowsEvent", [3])),
    );
    assert_eq!(changes(&deps, &first).await, expected);
    let events = pipeline::committed_events(&deps, &first).await;
    let one = &events["m.t"][0]["newImage"];
    assert_eq!(one["j"], json!({"k": [1, 2]}), "{one}");
    assert_eq!(one["d"], "2026-12-03 10:00:00.123456", "{one}");
    assert_eq!(one["v"], "a", "column names from FULL row metadata: {one}");

    // The next run goes on mid-file, reads across a rotation and a
    // compressed transaction (a TRANSACTION_PAYLOAD event).
    db.sql(
        "INSERT INTO m.t VALUES (4, 'd', NULL, NULL); FLUSH BINARY LOGS; \
         SET SESSION binlog_transaction_compression = ON; \
         INSERT INTO m.t VALUES (5, 'e', NULL, NULL), (6, 'f', NULL, NULL); \
         SET SESSION binlog_transaction_compression = OFF; \
         UPDATE m.t SET v = 'a2' WHERE id = 1;",
    );
    let second = commit(&deps, RunInput::default()).await;
    assert_eq!(second.from.as_ref(), Some(&first.position.position));
    assert_gtid_at_checkpoint(&second, &db);
    let mut expected = of("WriteRowsEvent", [4, 5, 6]);
    expected.extend(of("UpdateRowsEvent", [1]));
    assert_eq!(changes(&deps, &second).await, expected);
    assert_ne!(second.position.file, first.position.file, "rotated");
}

#[tokio::test]
async fn restart_at_a_gtid_set_goes_on_after_it() {
    let db = MySql::start();
    db.sql(&format!(
        "{SCHEMA} INSERT INTO m.t (id) VALUES (1); INSERT INTO m.t (id) VALUES (2); \
         INSERT INTO m.t (id) VALUES (3);"
    ));
    let set = db.gtid_executed();
    db.sql(
        "INSERT INTO m.t (id) VALUES (4); FLUSH BINARY LOGS; \
         INSERT INTO m.t (id) VALUES (5); UPDATE m.t SET v = 'x' WHERE id = 1;",
    );
    // A new output, as on a promoted replica: the set is all it has.
    let deps = deps_on(&db, "restarted");
    let input = RunInput {
        restart_at: Some(RestartAt::AfterGtid(set.clone())),
        ..Default::default()
    };
    let meta = commit(&deps, input).await;
    let mut expected = of("WriteRowsEvent", [4, 5]);
    expected.extend(of("UpdateRowsEvent", [1]));
    assert_eq!(changes(&deps, &meta).await, expected, "after {set}");
    assert_gtid_at_checkpoint(&meta, &db);

    // The set of every transaction: nothing to read, and nothing lost.
    let input = RunInput {
        restart_at: Some(RestartAt::AfterGtid(db.gtid_executed())),
        ..Default::default()
    };
    let (plan, commit) = pipeline::run(&deps_on(&db, "caught-up"), input)
        .await
        .expect("a restart at the end");
    assert!(commit.is_none_or(|c| c.committed), "{plan:?}");
    assert_eq!(plan.from, plan.to, "{plan:?}");

    // Once the first file is purged, a set that lacks its transactions
    // holds no file's start: a clear error, not a silent gap. (While the
    // server still has them, they come, as to a replica that auto-positions.)
    db.sql("PURGE BINARY LOGS TO 'binlog.000002';");
    let input = RunInput {
        restart_at: Some(RestartAt::AfterGtid(set)),
        ..Default::default()
    };
    let e = pipeline::run(&deps_on(&db, "purged"), input)
        .await
        .expect_err("transactions the set lacks were purged");
    assert_eq!(e.name(), names::CONFIG, "{e}");
    assert!(e.to_string().contains("purged"), "{e}");
}

/// The preflight, init-db and a run all refuse the server with `name`,
/// saying `says`; nothing is committed.
async fn refused_everywhere(db: &MySql, deps: &Deps, name: &str, says: &str) {
    let mut conn = connect(&db.url().into()).await.expect("connect");
    let e = server::preflight(&mut conn).await.expect_err(says);
    drop(conn);
    assert_eq!(e.name(), name, "{e}");
    assert!(e.to_string().contains(says), "{e}");
    let answer = init_db_create(deps).await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("[{name}]")) && reason.contains(says),
        "{reason}"
    );
    let e = list_binlogs::handle(ListBinlogsInput::default(), deps)
        .await
        .expect_err(says);
    assert_eq!(e.name(), name, "{e}");
    assert!(pipeline::meta(deps).await.is_none(), "nothing committed");
}

#[tokio::test]
async fn mysqls_defaults_and_a_replica_are_refused_by_name() {
    // MySQL 8.0 and later, and Aurora MySQL 3, default to MINIMAL.
    let db = MySql::start_with(&["--binlog-row-metadata=MINIMAL"]);
    let deps = deps_on(&db, "out");
    refused_everywhere(&db, &deps, names::CONFIG, "binlog_row_metadata is MINIMAL").await;
    let mut conn = connect(&db.url().into()).await.expect("connect");
    match server::preflight(&mut conn).await {
        Err(Error::InvalidSystemSetting {
            setting,
            expected,
            actual,
            fix,
        }) => {
            assert_eq!(
                (&*setting, &*expected, &*actual),
                ("binlog_row_metadata", "FULL", "MINIMAL")
            );
            assert!(
                fix.contains("parameter group") && fix.contains("reboot the writer"),
                "{fix}"
            );
        }
        other => panic!("not InvalidSystemSetting: {other:?}"),
    }
    drop(conn);

    db.sql("SET GLOBAL binlog_row_metadata = 'FULL'; SET GLOBAL binlog_row_value_options = 'PARTIAL_JSON';");
    refused_everywhere(&db, &deps, names::CONFIG, "PARTIAL_JSON").await;
    db.sql("SET GLOBAL binlog_row_value_options = '';");

    // A read-only instance: what an Aurora replica or an RDS read replica is.
    db.sql("SET GLOBAL super_read_only = ON;");
    refused_everywhere(&db, &deps, names::NOT_THE_WRITER, "read_only=ON").await;
    db.sql("SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF;");

    // All put back: init-db's own statements (the retention, the user, the
    // demo schema) run on MySQL, and a run commits.
    let answer = init_db_create(&deps).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let expire = db.sql("SELECT @@GLOBAL.binlog_expire_logs_seconds");
    assert_eq!(expire.trim(), "86400", "RetentionHours 24");
    db.sql(&format!("{SCHEMA} INSERT INTO m.t (id) VALUES (1);"));
    let meta = commit(&deps, RunInput::default()).await;
    assert_eq!(changes(&deps, &meta).await, of("WriteRowsEvent", [1]));
}

#[tokio::test]
async fn reset_binary_logs_and_gtids_is_a_changed_history() {
    let db = MySql::start();
    let deps = deps_on(&db, "out");
    db.sql(&format!(
        "{SCHEMA} INSERT INTO m.t (id) VALUES (1), (2), (3);"
    ));
    let first = commit(&deps, RunInput::default()).await;

    // The same file name again, written past the old offset.
    std::thread::sleep(Duration::from_millis(1100));
    db.sql(
        "RESET BINARY LOGS AND GTIDS; INSERT INTO m.t (id) VALUES (4), (5), (6), (7), (8), (9);",
    );
    db.sql("INSERT INTO m.t (id) VALUES (10), (11), (12), (13), (14), (15), (16), (17);");
    let e = pipeline::run(&deps, RunInput::default())
        .await
        .expect_err("a changed history is refused");
    assert!(matches!(e, Error::BinlogHistoryChanged { .. }), "{e}");
    assert!(e.to_string().contains("restartAt"), "{e}");
    let (now, _) = pipeline::meta(&deps).await.expect("meta");
    assert_eq!(now.position, first.position, "nothing committed");

    // The documented way on: restart at the oldest binlog.
    let input = RunInput {
        restart_at: Some(RestartAt::Oldest),
        ..Default::default()
    };
    let meta = commit(&deps, input).await;
    assert_eq!(changes(&deps, &meta).await, of("WriteRowsEvent", 4..=17));
    assert_gtid_at_checkpoint(&meta, &db);
}
