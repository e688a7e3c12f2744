//! A changed binlog history under the checkpoint is a named error, never read
//! as the old one: `RESET MASTER` between two runs, another server behind the
//! same URL, and a restore of an earlier copy of the data directory each give
//! `BinlogHistoryChanged` with nothing committed; then the documented way on
//! (`restartAt`) commits the new history from its start, every event once.
//! A promoted replica goes on after the checkpoint's GTID state
//! (`restartAt: gtid:STATE`), every event after it once and none before.

use std::sync::Arc;
use std::time::Duration;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{RestartAt, RunInput};
use binlog_cdc::error::names;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::Error;
use binlog_cdc_tests::{pipeline, MariaDb, PASSWORD, USER};

const SCHEMA: &str = "CREATE DATABASE h; CREATE TABLE h.t (id INT PRIMARY KEY, v VARCHAR(200));";

/// `n` rows from `first` on, each about 200 bytes of binlog.
fn inserts(first: u32, n: u32) -> String {
    format!(
        "INSERT INTO h.t SELECT seq, REPEAT('x', 150) FROM h.seq_{first}_to_{};",
        first + n - 1
    )
}

fn deps_on(url: String, out: &std::path::Path) -> Deps {
    Deps::new(
        Arc::new(LocalStore::new(out)),
        PipelineConfig::default(),
        url,
    )
}

/// The schema and three rows, committed by a first run into `out`.
async fn first_run(db: &MariaDb, out: &std::path::Path) -> binlog_cdc::contracts::Meta {
    db.sql(&format!("{SCHEMA} {}", inserts(1, 3)));
    let deps = deps_on(db.url(), out);
    let (_, commit) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert!(commit.unwrap().committed);
    pipeline::meta(&deps).await.expect("committed").0
}

/// Runs once, expecting `BinlogHistoryChanged` whose message has `says`, and
/// nothing committed.
async fn refused(deps: &Deps, says: &str) {
    let before = pipeline::meta(deps).await.expect("a checkpoint").1;
    let e = pipeline::run(deps, RunInput::default())
        .await
        .expect_err("a changed history is refused");
    assert!(matches!(e, Error::BinlogHistoryChanged { .. }), "{e}");
    assert_eq!(e.name(), names::BINLOG_HISTORY_CHANGED);
    let msg = e.to_string();
    assert!(msg.contains(says) && msg.contains("restartAt"), "{msg}");
    assert_eq!(
        pipeline::meta(deps).await.expect("meta").1,
        before,
        "nothing committed"
    );
}

/// Restarts at the oldest binlog; returns the rows the restarted run committed.
async fn restart(deps: &Deps) -> u64 {
    let input = RunInput {
        restart_at: Some(RestartAt::Oldest),
        ..Default::default()
    };
    let (plan, commit) = pipeline::run(deps, input).await.expect("restart");
    assert!(commit.expect("committed").committed, "{plan:?}");
    let (meta, _) = pipeline::meta(deps).await.expect("meta");
    assert!(
        meta.history.is_some(),
        "the new checkpoint records its history"
    );
    // And the stream goes on from there as usual.
    let (next, _) = pipeline::run(deps, RunInput::default())
        .await
        .expect("the run after the restart");
    assert_eq!(next.from, plan.to);
    meta.counts.get("h.t").copied().unwrap_or(0)
}

#[tokio::test]
async fn reset_master_between_two_runs() {
    let db = MariaDb::start();
    let deps = deps_on(db.url(), &db.dir.join("out"));
    let meta = first_run(&db, &db.dir.join("out")).await;
    let history = meta.history.expect("the checkpoint records its history");
    assert!(history.server.starts_with("server_id:1"), "{history:?}");

    // The file is made again a second later, and written past the old
    // offset, so the offset alone would look valid.
    std::thread::sleep(Duration::from_millis(1100));
    db.sql(&format!("RESET MASTER; {}", inserts(1001, 40)));
    assert!(
        db.position().pos() > meta.position.pos,
        "past the old offset"
    );
    refused(&deps, "was created again").await;
    assert_eq!(
        restart(&deps).await,
        40,
        "the new history, every event once"
    );
}

#[tokio::test]
async fn another_server_behind_the_same_url() {
    let a = MariaDb::start();
    let out = a.dir.join("out");
    first_run(&a, &out).await;

    // Another server with the same file names: by its identity...
    let b = MariaDb::start_with(&["--server-id=2"]);
    b.sql(&format!("{SCHEMA} {}", inserts(1, 40)));
    refused(&deps_on(b.url(), &out), "another server").await;

    // ...or, with the same server id, by its files.
    let c = MariaDb::start();
    c.sql(&format!("{SCHEMA} {}", inserts(1, 40)));
    let deps = deps_on(c.url(), &out);
    refused(&deps, "binlog.000001").await;
    // Its 40 rows and its table's CREATE TABLE.
    assert_eq!(restart(&deps).await, 41);
}

#[tokio::test]
async fn a_restore_of_an_earlier_copy() {
    let db = MariaDb::start();
    let deps = deps_on(db.url(), &db.dir.join("out"));
    db.sql(&format!("{SCHEMA} {}", inserts(1, 3)));
    let copy = db.copy_data("data-before");
    db.sql(&inserts(101, 20));
    let (_, commit) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert!(commit.unwrap().committed);

    db.restore_data(&copy);
    db.sql(&inserts(201, 5));
    refused(&deps, "shorter than the checkpoint's offset").await;
    // The restored server has the 3 rows of the copy and the 5 written
    // since, and the table's CREATE TABLE.
    assert_eq!(restart(&deps).await, 9);
}

#[tokio::test]
async fn a_promoted_replica_goes_on_after_the_checkpoints_gtid() {
    let a = MariaDb::start();
    let b = MariaDb::start_with(&["--server-id=2", "--log-slave-updates"]);
    b.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='{USER}', \
         MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=slave_pos; START SLAVE;",
        a.port
    ));
    let out = a.dir.join("out");
    let meta = first_run(&a, &out).await;
    let state = meta
        .position
        .gtid
        .clone()
        .expect("MariaDB's GTID state at the checkpoint");

    // Seven more rows on A reach B; then B is promoted and takes two writes.
    a.sql(&inserts(101, 7));
    let started = std::time::Instant::now();
    while b.sql("SELECT COUNT(*) FROM h.t;").trim() != "10" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replication did not catch up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.sql(&format!("STOP SLAVE; {}", inserts(201, 2)));

    let deps = deps_on(b.url(), &out);
    refused(&deps, "another server").await;
    let input = RunInput {
        restart_at: Some(RestartAt::AfterGtid(state)),
        ..Default::default()
    };
    let (plan, commit) = pipeline::run(&deps, input).await.expect("restart by GTID");
    assert!(commit.expect("committed").committed, "{plan:?}");
    let (meta, _) = pipeline::meta(&deps).await.unwrap();
    assert_eq!(
        meta.counts.get("h.t"),
        Some(&9),
        "the 7 rows after the checkpoint and B's 2, none of the 3 before"
    );
}
