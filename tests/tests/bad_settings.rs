//! Server settings that would lose data are refused by name, before anything
//! is read (init-db's and every ListBinlogs' preflight); a row change logged
//! as a statement anyway (one session's `binlog_format`) stops the decoder at
//! its position; bad credentials and an unreachable host give the right kind
//! of error; a read-only instance (a replica) is refused as not the writer.
//! Nothing is committed in any of these.

use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{ListBinlogsInput, RunInput};
use binlog_cdc::decoder::error::{Error as DecoderError, ErrorKind};
use binlog_cdc::decoder::source::connect::connect;
use binlog_cdc::decoder::source::server;
use binlog_cdc::error::names;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::aws_local::init_db_create;
use binlog_cdc_tests::{free_port, pipeline, MariaDb};

#[tokio::test]
async fn settings_that_lose_rows_are_refused_by_name() {
    let db = MariaDb::start();
    let dir = db.dir.join("out");
    let deps = Deps::new(
        Arc::new(LocalStore::new(&dir)),
        PipelineConfig::default(),
        db.url(),
    );
    db.sql("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, body TEXT);");

    // Each setting, set globally (new connections see it), then put back.
    for (set, variable, reset) in [
        (
            "binlog_format = 'STATEMENT'",
            "binlog_format is STATEMENT",
            "binlog_format = 'ROW'",
        ),
        (
            "binlog_format = 'MIXED'",
            "binlog_format is MIXED",
            "binlog_format = 'ROW'",
        ),
        (
            "binlog_row_image = 'MINIMAL'",
            "binlog_row_image is MINIMAL",
            "binlog_row_image = 'FULL'",
        ),
        (
            "binlog_row_image = 'NOBLOB'",
            "binlog_row_image is NOBLOB",
            "binlog_row_image = 'FULL'",
        ),
        (
            "binlog_row_metadata = 'MINIMAL'",
            "binlog_row_metadata is MINIMAL",
            "binlog_row_metadata = 'FULL'",
        ),
    ] {
        db.sql(&format!("SET GLOBAL {set};"));
        let mut conn = connect(&db.url().into()).await.expect("connect");
        let e = server::preflight(&mut conn).await.expect_err(set);
        drop(conn);
        assert_eq!(e.kind(), ErrorKind::Misconfigured, "{e}");
        let (name, value) = variable.split_once(" is ").expect("setting is value");
        match &e {
            DecoderError::InvalidSystemSetting {
                setting,
                expected,
                actual,
                fix,
            } => {
                assert_eq!((setting.as_str(), actual.as_str()), (name, value));
                assert!(expected == "ROW" || expected == "FULL", "{e}");
                assert!(
                    fix.contains("parameter group") && fix.contains("reboot the writer"),
                    "{e}"
                );
            }
            other => panic!("{set}: not InvalidSystemSetting: {other}"),
        }

        let answer = init_db_create(&deps).await;
        assert_eq!(answer["Status"], "FAILED", "{set}: {answer}");
        let reason = answer["Reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("[ConfigError]") && reason.contains(variable),
            "{set}: {reason}"
        );

        let e = list_binlogs::handle(ListBinlogsInput::default(), &deps)
            .await
            .expect_err(set);
        assert_eq!(e.name(), names::CONFIG, "{e}");
        assert!(e.to_string().contains(variable), "{set}: {e}");
        assert!(
            pipeline::meta(&deps).await.is_none(),
            "{set}: nothing committed"
        );
        db.sql(&format!("SET GLOBAL {reset};"));
    }
    // A read-only instance (an Aurora replica, an RDS read replica) is not
    // the writer: refused by name, by init-db and by every run.
    db.sql("SET GLOBAL read_only = 1;");
    let mut conn = connect(&db.url().into()).await.expect("connect");
    let e = server::preflight(&mut conn).await.expect_err("read-only");
    drop(conn);
    assert!(matches!(e, DecoderError::NotTheWriter { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotTheWriter);
    assert!(
        e.to_string().contains("read_only=ON") && e.to_string().contains("writer"),
        "{e}"
    );
    let reason = init_db_create(&deps).await["Reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("[NotTheWriter]"), "{reason}");
    let e = list_binlogs::handle(ListBinlogsInput::default(), &deps)
        .await
        .expect_err("read-only");
    assert_eq!(e.name(), names::NOT_THE_WRITER, "{e}");
    assert!(pipeline::meta(&deps).await.is_none(), "nothing committed");
    db.sql("SET GLOBAL read_only = 0;");

    let mut conn = connect(&db.url().into()).await.expect("connect");
    assert!(server::preflight(&mut conn).await.is_ok(), "all put back");
    drop(conn);
    assert_eq!(init_db_create(&deps).await["Status"], "SUCCESS");
    // RDS's retention procedure refusing (not the master user): the stack
    // does not come up with the binlog kept for RDS's default (none).
    db.sql(
        "CREATE PROCEDURE mysql.rds_set_configuration(name VARCHAR(64), value INT) \
         SIGNAL SQLSTATE '42000' SET MESSAGE_TEXT = 'denied: not the master user';",
    );
    let answer = init_db_create(&deps).await;
    db.sql("DROP PROCEDURE mysql.rds_set_configuration;");
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("binlog retention to 24 hours") && reason.contains("not the master user"),
        "{reason}"
    );
    assert_eq!(init_db_create(&deps).await["Status"], "SUCCESS");
    // PARTIAL_JSON is MySQL 8's (binlog_row_value_options); MariaDB has no
    // such variable, which the preflight reads as "not set". Its check is the
    // same code path as the others.

    // One session logging statements while the server says ROW: the decoder
    // stops at that event instead of skipping the rows it does not have.
    db.sql("INSERT INTO s.t VALUES (0, 'before');");
    let (plan, _) = pipeline::run(&deps, RunInput::default())
        .await
        .expect("a first run over the earlier rows");
    db.sql(
        "INSERT INTO s.t VALUES (1, 'row-logged');
         SET SESSION binlog_format = 'STATEMENT'; INSERT INTO s.t VALUES (2, 'statement-logged');",
    );
    let (_, before) = pipeline::meta(&deps).await.expect("committed");
    let e = pipeline::run(&deps, RunInput::default())
        .await
        .expect_err("a statement-logged insert is refused");
    assert_eq!(e.name(), names::DECODE, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("INSERT")
            && msg.contains("binlog_format")
            && msg.contains(plan.to.as_ref().unwrap().file()),
        "{msg}"
    );
    assert_eq!(
        pipeline::meta(&deps).await.expect("meta").1,
        before,
        "nothing committed"
    );
}

#[tokio::test]
async fn bad_credentials_and_unreachable_hosts_are_told_apart() {
    let db = MariaDb::start();
    let dir = db.dir.join("out");
    let with_url = |url: String| {
        Deps::new(
            Arc::new(LocalStore::new(&dir)),
            PipelineConfig::default(),
            url,
        )
    };
    // A wrong password: definite (retrying cannot help), and it says so.
    let deps = with_url(format!("mysql://cdc:wrong-password@127.0.0.1:{}", db.port));
    let e = list_binlogs::handle(ListBinlogsInput::default(), &deps)
        .await
        .expect_err("access denied");
    assert_eq!(e.name(), names::CONFIG, "{e}");
    assert!(
        !e.to_string().contains("wrong-password"),
        "no password in {e}"
    );
    assert!(e.to_string().contains("127.0.0.1"), "names the host: {e}");
    // Nothing listening: transient (a restarting server looks the same).
    let deps = with_url(format!("mysql://cdc:cdc@127.0.0.1:{}", free_port()));
    let e = list_binlogs::handle(ListBinlogsInput::default(), &deps)
        .await
        .expect_err("connection refused");
    assert_eq!(e.name(), names::TRANSIENT, "{e}");
    assert!(e.is_retryable());
    assert!(
        pipeline::meta(&with_url(db.url())).await.is_none(),
        "nothing committed"
    );
}
