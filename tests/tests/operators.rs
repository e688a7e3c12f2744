//! The figures operators watch, which the functions also write as metrics
//! (CloudWatch embedded metric format, `binlog_cdc::metrics`): how far
//! behind the stream is and how long until retention purges the
//! checkpoint's file, at planning; the lag, at commit.

use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::RunInput;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::{pipeline, MariaDb};

#[tokio::test]
async fn runs_report_bytes_behind_retention_headroom_and_lag() {
    let db = MariaDb::start();
    db.sql(
        "SET GLOBAL binlog_expire_logs_seconds = 86400;
         CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY, v VARCHAR(50));
         INSERT INTO m.t SELECT seq, 'first' FROM m.seq_1_to_100;",
    );
    let deps = Deps::new(
        Arc::new(LocalStore::new(db.dir.join("out"))),
        PipelineConfig::default(),
        db.url(),
    );
    let (plan, commit) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    let (from, to) = plan.range().unwrap();
    assert_eq!(from.file(), to.file(), "one file");
    assert_eq!(plan.behind_bytes, Some(to.pos() - from.pos()));
    assert_eq!(
        plan.retention_headroom, None,
        "no history recorded before the first commit"
    );
    let lag = commit
        .unwrap()
        .lag_seconds
        .expect("a committed run with rows has a lag");
    assert!(lag < 300, "{lag} s");

    db.sql("INSERT INTO m.t SELECT seq, 'second' FROM m.seq_101_to_150;");
    let now = db.position();
    let (plan2, _) = pipeline::run(&deps, RunInput::default()).await.unwrap();
    assert_eq!(
        plan2.behind_bytes,
        Some(now.pos() - plan.to.as_ref().unwrap().pos())
    );
    let headroom = plan2.retention_headroom.expect("headroom");
    assert!(
        headroom.seconds > 86_400 - 600 && headroom.seconds <= 86_400,
        "{headroom:?}: the file was made moments ago, its retention is a day"
    );
    assert!(
        headroom.percent > 99.0 && headroom.percent <= 100.0,
        "{headroom:?}"
    );
    assert!(plan2.planned_at_ms.is_some());
}
