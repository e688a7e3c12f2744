//! Against Oracle's MySQL itself (the server Aurora MySQL and RDS MySQL
//! run), with GTIDs on and MySQL's defaults where the tests do not set one:
//! - every change committed, run after run, and the checkpoint's GTID set
//!   equal to the server's `@@gtid_executed` at the checkpoint, across a
//!   rotation, a compressed transaction and a tagged GTID (MySQL 8.4);
//! - `restartAt: gtid:SET` goes on at the first transaction the set lacks;
//! - a session's PARTIAL_JSON diffs decode to the whole documents;
//! - MySQL's own default `binlog_row_metadata=MINIMAL`, `PARTIAL_JSON` and a
//!   read-only instance are refused by name, by init-db and by every run;
//!   init-db's own statements run on MySQL;
//! - `RESET BINARY LOGS AND GTIDS` under a checkpoint, and another server
//!   behind the same URL, are a changed history;
//! - a range planned to the end the server reports while commits go on is
//!   read whole (MySQL reports bytes written before its dump thread serves
//!   them), and leaves no dump thread behind; heartbeats parse;
//! - every MySQL column type (VECTOR and binary JSON included) decodes from
//!   the binlog as the snapshot reads it, and as Oracle's `mysqlbinlog -v`
//!   prints it.
//!
//! The server is `scripts/ensure-mysql.sh`'s (see `binlog_cdc_tests::mysql`).

use std::sync::Arc;
use std::time::Duration;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::{ListBinlogsInput, Meta, RestartAt, RunInput};
use binlog_cdc::decoder::event::View;
use binlog_cdc::decoder::gtid::GtidSet;
use binlog_cdc::decoder::source::connect::{connect, ConnectOptions};
use binlog_cdc::decoder::source::server;
use binlog_cdc::error::{names, Error};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::aws_local::init_db_create;
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::pipeline;
use binlog_cdc_tests::ranged;
use binlog_cdc_tests::types::{mysql_rows, BIG_JSON, MYSQL_COLS, MYSQL_TABLE};
use serde_json::{json, Value};

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

/// `(type, id)` of each committed row event of `m.t`, in order.
async fn changes(deps: &Deps, meta: &Meta) -> Vec<(String, i64)> {
    let events = pipeline::committed_events(deps, meta).await;
    events["m.t"]
        .iter()
        .filter(|e| e["type"] != "SchemaChangeEvent")
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
    // The table's CREATE TABLE, with its definition, then the rows.
    assert_eq!(events["m.t"][0]["kind"], "create");
    assert_eq!(events["m.t"][0]["definition"]["primaryKey"], json!(["id"]));
    let one = &events["m.t"][1]["newImage"];
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
         SET gtid_next = 'AUTOMATIC:etl'; UPDATE m.t SET v = 'a2' WHERE id = 1; \
         SET gtid_next = 'AUTOMATIC';",
    );
    let second = commit(&deps, RunInput::default()).await;
    assert_eq!(second.from.as_ref(), Some(&first.position.position));
    assert_gtid_at_checkpoint(&second, &db);
    let mut expected = of("WriteRowsEvent", [4, 5, 6]);
    expected.extend(of("UpdateRowsEvent", [1]));
    assert_eq!(changes(&deps, &second).await, expected);
    assert_ne!(second.position.file, first.position.file, "rotated");
    // MySQL 8.4's tagged GTIDs: the update's is `uuid:etl:1`.
    let tagged = second.position.gtid.as_deref().unwrap_or_default();
    assert!(tagged.contains(":etl:1"), "{tagged}");
    let events = pipeline::committed_events(&deps, &second).await;
    let gtid = events["m.t"].last().map(|e| e["gtid"].clone());
    assert!(gtid.is_some_and(|g| g.as_str().is_some_and(|g| g.ends_with(":etl:1"))));
}

#[tokio::test]
async fn restart_at_a_gtid_set_goes_on_after_it() {
    let db = MySql::start();
    db.sql(&format!(
        "{SCHEMA} INSERT INTO m.t (id) VALUES (1); SET gtid_next = 'AUTOMATIC:etl'; \
         INSERT INTO m.t (id) VALUES (2); SET gtid_next = 'AUTOMATIC'; \
         INSERT INTO m.t (id) VALUES (3);"
    ));
    let set = db.gtid_executed();
    assert!(set.contains(":etl:1"), "a tagged set: {set}");
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
    let e = Error::from(server::preflight(&mut conn).await.expect_err(says));
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
        Err(binlog_cdc::decoder::Error::InvalidSystemSetting {
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
    // Past the old offset: the file's length alone would not tell.
    db.sql(
        &(18..=30)
            .map(|i| format!("INSERT INTO m.t (id) VALUES ({i});"))
            .collect::<String>(),
    );
    assert!(
        db.position().pos() > first.position.pos,
        "past the old offset"
    );
    let e = pipeline::run(&deps, RunInput::default())
        .await
        .expect_err("a changed history is refused");
    assert!(matches!(e, Error::BinlogHistoryChanged { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("was created again") && msg.contains("restartAt"),
        "{msg}"
    );
    let (now, _) = pipeline::meta(&deps).await.expect("meta");
    assert_eq!(now.position, first.position, "nothing committed");

    // The documented way on: restart at the oldest binlog.
    let input = RunInput {
        restart_at: Some(RestartAt::Oldest),
        ..Default::default()
    };
    let meta = commit(&deps, input).await;
    assert_eq!(changes(&deps, &meta).await, of("WriteRowsEvent", 4..=30));
    assert_gtid_at_checkpoint(&meta, &db);

    // Another server behind the same URL (its own server_uuid), with the
    // same file names: refused by its identity, nothing committed.
    let other = MySql::start();
    other.sql(&format!(
        "{SCHEMA} INSERT INTO m.t (id) VALUES (1), (2), (3);"
    ));
    let elsewhere = Deps::new(
        Arc::new(LocalStore::new(db.dir.join("out"))),
        PipelineConfig::default(),
        other.url(),
    );
    let e = pipeline::run(&elsewhere, RunInput::default())
        .await
        .expect_err("another server is refused");
    assert!(e.to_string().contains("another server"), "{e}");
    let (now, _) = pipeline::meta(&deps).await.expect("meta");
    assert_eq!(now.position, meta.position, "nothing committed");
}

/// Commits single-row inserts into `m.t` until `stop`; returns how many.
async fn insert_until(url: String, stop: Arc<std::sync::atomic::AtomicBool>) -> i64 {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connects");
    let mut id = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        id += 1;
        conn.exec_drop("INSERT INTO m.t (id, v) VALUES (?, 'w')", (id,))
            .await
            .expect("an insert");
    }
    id
}

/// MySQL writes a commit group to the file (what `SHOW BINARY LOG STATUS`
/// and `SHOW BINARY LOGS` report) before it syncs it and its dump thread
/// serves it: a range planned to the reported end, read at once, must wait
/// for the rest, not end short of it (a flake of the snapshot test once).
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_range_to_the_reported_end_is_read_whole_while_commits_go_on() {
    let db = MySql::start();
    db.sql(SCHEMA);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = tokio::spawn(insert_until(db.url(), stop.clone()));
    let options: ConnectOptions = db.url().into();
    let mut conn = connect(&options).await.expect("connect");
    let mut from = server::current_position(&mut conn).await.expect("start");
    let (mut ranges, mut events) = (0, 0);
    let began = std::time::Instant::now();
    while began.elapsed() < Duration::from_secs(8) {
        let to = server::current_position(&mut conn).await.expect("end");
        events += ranged::count_events(&options, &from, &to).await;
        ranges += 1;
        from = to;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let inserts = writes.await.expect("writer");
    let to = server::current_position(&mut conn).await.expect("end");
    events += ranged::count_events(&options, &from, &to).await;
    assert!(
        inserts > 100 && ranges > 20,
        "{inserts} inserts, {ranges} ranges"
    );
    // Each insert is at least its GTID, table map, rows and commit events.
    assert!(events >= 4 * inserts, "{events} events, {inserts} inserts");
}

/// An empty range sends no dump request. One dropped unread can reach the
/// server after the next reader with the same server id has started its
/// dump, and the server then ends that one as a zombie (how the test above
/// once failed: "A replica with the same server_uuid/server_id as this
/// replica has connected"). Seen from outside: an account without
/// REPLICATION SLAVE, refused any dump, reads an empty range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_range_sends_no_dump_request() {
    use binlog_cdc::decoder::source::server::ServerSource;
    use binlog_cdc::decoder::source::EventSource;
    let db = MySql::start();
    db.sql(
        "CREATE USER 'lister'@'%' IDENTIFIED BY 'lister'; \
         GRANT REPLICATION CLIENT ON *.* TO 'lister'@'%';",
    );
    let lister: ConnectOptions = format!(
        "mysql://lister:lister@127.0.0.1:{}?prefer_socket=false",
        db.port
    )
    .into();
    let end = db.position();
    let start = binlog_cdc::BinlogPosition::new(end.file(), 4);
    ServerSource::open(&lister, &start, Some(end.clone()), 4343)
        .await
        .err()
        .expect("a dump request of this account is refused");
    let mut empty = ServerSource::open(&lister, &end, Some(end.clone()), 4343)
        .await
        .expect("an empty range opens without a dump request");
    let event = empty.next_event().await.expect("an empty range reads");
    assert!(event.is_none(), "an empty range has no events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_parse_and_no_dump_thread_outlives_a_range() {
    let db = MySql::start();
    ranged::to_the_end_leaves_no_dump_thread(db.url(), &|q| db.sql(q), &|| db.position()).await;
    ranged::heartbeats_arrive_and_parse(db.url(), db.position()).await;
}

/// Compares one value where mysqlbinlog's text is unambiguous; returns
/// whether it compared anything.
fn cross_check_mysqlbinlog(col: &str, theirs: &str, ours: &Value) -> bool {
    if theirs == "NULL" {
        assert!(ours.is_null(), "{col}: mysqlbinlog NULL, ours {ours}");
        return true;
    }
    let unquoted = theirs.trim_matches('\'');
    match col {
        // Integers: "signed (unsigned)" when the two differ.
        "id" | "ti" | "tiu" | "si" | "miu" | "i" | "iu" | "bi" | "biu" => {
            binlog_cdc_tests::assert_same_integer(col, theirs, ours)
        }
        // mysqlbinlog prints a DATE as 'YYYY:MM:DD'.
        "dt" => assert_eq!(
            Some(unquoted.replace(':', "-").as_str()),
            ours.as_str(),
            "{col}"
        ),
        "d1" | "d2" | "tm6" | "dtt0" | "dtt6" => assert_eq!(Some(unquoted), ours.as_str(), "{col}"),
        // Its JSON is MySQL's own text of the binary document, in a quoted
        // string whose backslashes it doubles.
        "j" => {
            let unquoted = unquoted.replace("\\\\", "\\");
            let theirs: Value = serde_json::from_str(&unquoted)
                .unwrap_or_else(|e| panic!("{col}: mysqlbinlog's {unquoted}: {e}"));
            assert_eq!(&theirs, ours, "{col}");
        }
        // VECTOR_TO_STRING's `%.5e`: the same f32s, rounded.
        "v" => {
            let theirs: Vec<f64> = serde_json::from_str(theirs).expect("a vector");
            let ours: Vec<f64> = serde_json::from_value(ours.clone()).expect("our vector");
            assert_eq!(theirs.len(), ours.len(), "{col}");
            for (a, b) in theirs.iter().zip(&ours) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{col}: {theirs:?} {ours:?}"
                );
            }
        }
        _ => return false,
    }
    true
}

/// Every MySQL column type, VECTOR and binary JSON included: the binlog
/// path's images equal the snapshot's (the binary protocol), value by value;
/// Oracle's mysqlbinlog reads the same integers, decimals, temporals, JSON
/// documents and vectors.
#[tokio::test]
async fn every_mysql_type_decodes_as_the_snapshot_reads_it_and_mysqlbinlog_prints_it() {
    let db = MySql::start();
    db.sql(&format!("CREATE DATABASE m; {MYSQL_TABLE};"));
    let from = db.position();
    for values in mysql_rows() {
        db.sql(&format!(
            "SET time_zone = '+00:00'; INSERT INTO m.types VALUES {values};"
        ));
    }
    let to = db.position();
    let opts = binlog_cdc::decoder::reader::DecodeOptions {
        view: View::Both,
        ..Default::default()
    };
    let (events, _) = binlog_cdc_tests::collect::from_server(&db.url(), &from, Some(to), opts)
        .await
        .expect("decode");
    let binlog: std::collections::BTreeMap<i64, Value> = events
        .iter()
        .map(|e| (e["keys"]["id"].as_i64().expect("id"), e["newImage"].clone()))
        .collect();
    let snapshot = binlog_cdc_tests::collect::snapshot_images(&db.url(), "m", "types").await;
    assert_eq!(binlog.len(), 3);
    for (id, image) in &binlog {
        assert_eq!(image.as_object().map(|o| o.len()), Some(MYSQL_COLS.len()));
        for col in MYSQL_COLS {
            assert_eq!(
                snapshot[id][col], image[col],
                "row {id} column {col}: snapshot and binlog differ"
            );
        }
    }

    // Values by hand where the SQL says what they must be.
    let max = &binlog[&2];
    assert_eq!(
        max["j"],
        serde_json::from_str::<Value>(BIG_JSON).expect("JSON")
    );
    assert_eq!(max["v"], json!([1.5, -2, 0.1]), "shortest forms");
    assert_eq!(binlog[&1]["v"], json!([0, 0, 0]));
    assert_eq!(max["b64"], json!(u64::MAX));
    assert_eq!(max["biu"], json!(u64::MAX));
    assert_eq!((&max["st"], &max["e"]), (&json!(["x", "z"]), &json!("c d")));
    assert_eq!(max["ts6"], "2038-01-19T03:14:07.999999Z");
    assert_eq!(
        (&max["c"], &max["l1"]),
        (&json!("héllo😀"), &json!("café À €"))
    );
    assert_eq!(max["t"], "q\"uote\\ back\nnew\ttab");
    assert_eq!(max["vb"], "AP8A", "base64");
    assert_eq!(
        (&binlog[&3]["f"], &binlog[&3]["db"]),
        (&json!(0.1), &json!(0.1))
    );
    assert!(binlog[&3]["v"].is_null() && binlog[&3]["j"].is_null());

    let text = db.mysqlbinlog_verbose();
    let theirs = binlog_cdc_tests::verbose_rows(&text, "`m`.`types`", MYSQL_COLS.len());
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    let mut checked = 0;
    for (_, values) in &theirs {
        let id: i64 = values[0].parse().expect("id");
        for (n, col) in MYSQL_COLS.iter().enumerate().take(values.len()) {
            if cross_check_mysqlbinlog(col, &values[n], &binlog[&id][*col]) {
                checked += 1;
            }
        }
    }
    assert!(checked >= 45, "cross-checked {checked} values");
}

/// A session's `binlog_row_value_options = PARTIAL_JSON` (the preflight
/// checks only the global value) logs JSON updates as diffs
/// (PARTIAL_UPDATE_ROWS): each decodes to the whole document the server has.
#[tokio::test]
async fn a_sessions_partial_json_updates_decode_to_the_whole_document() {
    let db = MySql::start();
    db.sql(
        "CREATE DATABASE m; CREATE TABLE m.docs (id INT PRIMARY KEY, j JSON, n INT); \
         INSERT INTO m.docs VALUES (1, '{\"a\": 1, \"b\": [1, 2, 3], \"c\": {\"d\": \"x\"}}', 0), \
           (2, '[\"keep\", {\"k\": 1}]', 0);",
    );
    let from = db.position();
    db.sql(
        "SET SESSION binlog_row_value_options = 'PARTIAL_JSON'; \
         UPDATE m.docs SET j = JSON_SET(j, '$.a', 10, '$.c.d', 'yy'), n = 1 WHERE id = 1; \
         UPDATE m.docs SET j = JSON_REPLACE(j, '$[1].k', 2) WHERE id = 2; \
         UPDATE m.docs SET j = JSON_REMOVE(j, '$.b[1]') WHERE id = 1;",
    );
    let to = db.position();
    let text = db.mysqlbinlog_verbose();
    assert!(text.contains("Update_rows_partial"), "diffs were logged");

    let opts = binlog_cdc::decoder::reader::DecodeOptions {
        view: View::Both,
        ..Default::default()
    };
    let (events, _) = binlog_cdc_tests::collect::from_server(&db.url(), &from, Some(to), opts)
        .await
        .expect("decode");
    let after: Vec<(i64, Value)> = events
        .iter()
        .map(|e| {
            (
                e["keys"]["id"].as_i64().expect("id"),
                e["newImage"]["j"].clone(),
            )
        })
        .collect();
    let doc = |s: &str| serde_json::from_str::<Value>(s).expect("JSON");
    assert_eq!(
        after,
        [
            (1, doc(r#"{"a": 10, "b": [1, 2, 3], "c": {"d": "yy"}}"#)),
            (2, doc(r#"["keep", {"k": 2}]"#)),
            (1, doc(r#"{"a": 10, "b": [1, 3], "c": {"d": "yy"}}"#)),
        ]
    );
    for (id, j) in db
        .sql("SELECT id, j FROM m.docs ORDER BY id")
        .lines()
        .map(|l| {
            let (id, j) = l.split_once('\t').expect("two columns");
            (id.parse::<i64>().expect("id"), doc(j))
        })
    {
        let last = after.iter().rev().find(|(i, _)| *i == id).expect("updated");
        assert_eq!(last.1, j, "row {id}: the server's document");
    }
}
