//! The `parquet` format end to end: the type matrix (MariaDB and MySQL),
//! a key changed, columns added and a type changed mid-run, a TRUNCATE, and
//! a geometry with an SRID, through the pipeline into typed per-table
//! Parquet objects; then DuckDB (a reader nobody here wrote) reads every
//! object and `scripts/parquet_check.py` compares each typed value with the
//! same event in the all-tables object (`jsonl.gz`), whose values the type
//! matrix checks against the servers. Under both views. Then the current
//! rows: a snapshot during sysbench's writes, schema changes and more
//! writes, and each table's current-rows query (DuckDB standing in for
//! Athena) returns exactly what `SELECT *` does, on MariaDB and MySQL.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use binlog_cdc::config::{OutputFormat, PipelineConfig};
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc::store::ObjectStore;
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::replica::select_rows;
use binlog_cdc_tests::types::{mysql_rows, rows, MYSQL_TABLE, TABLE};
use binlog_cdc_tests::{MariaDb, TestServer, PASSWORD, USER};
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// The checker's report: rows and values compared, by `schema/table`.
fn check(out: &Path) -> Value {
    let report = binlog_cdc_tests::e2e_python("parquet_check.py", &[out]);
    serde_json::from_str(&report).expect("the report")
}

/// Runs the pipeline in `parquet` over everything the server at `url` logged, into
/// `dir/{view}`, and checks the objects; returns the report.
async fn run_and_check(url: String, dir: &Path, view: View) -> Value {
    let out = dir.join(format!("parquet-{view:?}"));
    let config = PipelineConfig {
        format: OutputFormat::Parquet,
        view,
        ..Default::default()
    };
    let deps = Deps::new(Arc::new(LocalStore::new(&out)), config, url);
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the runs");
    check(&out)
}

/// What both servers run after their type rows: a key changed, columns
/// added and a type changed between rows, a TRUNCATE.
const CHANGES: &str = "UPDATE m.types SET ti = 5, vc = 'changed' WHERE id IN (1, 2);
    UPDATE m.types SET id = 30 WHERE id = 3;
    DELETE FROM m.types WHERE id = 2;
    CREATE TABLE m.evolving (id INT PRIMARY KEY, a INT);
    INSERT INTO m.evolving VALUES (1, 1);
    ALTER TABLE m.evolving ADD COLUMN b VARCHAR(10);
    INSERT INTO m.evolving VALUES (2, 2, 'x');
    ALTER TABLE m.evolving ADD COLUMN c INT NOT NULL DEFAULT 7;
    ALTER TABLE m.evolving MODIFY a DECIMAL(10,2);
    INSERT INTO m.evolving VALUES (3, 3.5, 'y', 8);
    UPDATE m.evolving SET b = 'z' WHERE id = 1;
    TRUNCATE m.evolving;
    INSERT INTO m.evolving VALUES (4, 4.25, NULL, 9);
    CREATE TABLE m.geo (id INT PRIMARY KEY, g GEOMETRY);
    INSERT INTO m.geo VALUES (1, ST_GeomFromText('POINT(1 2)', 4326)), (2, ST_GeomFromText('POINT(3 4)'));";

fn assert_report(report: &Value, types_rows: u64) {
    let rows = |t: &str| report[t]["rows"].as_u64().unwrap_or(0);
    assert_eq!(rows("m/types"), types_rows, "{report}");
    // evolving: CREATE, insert, ALTER, insert, two ALTERs, insert, update,
    // TRUNCATE, insert.
    assert_eq!(rows("m/evolving"), 10, "{report}");
    assert_eq!(rows("m/geo"), 3, "{report}");
    for (t, r) in report.as_object().expect("tables") {
        assert!(r["values"].as_u64() > Some(0), "{t}: {r}");
    }
}

#[tokio::test]
async fn mariadb_types_and_schema_changes_land_typed_and_exact() {
    let db = MariaDb::start();
    db.sql(&format!(
        "SET GLOBAL sql_mode=''; SET GLOBAL time_zone='+00:00'; CREATE DATABASE m; {TABLE};"
    ));
    for (values, _) in rows() {
        db.sql(&format!(
            "SET time_zone='+00:00'; SET sql_mode=''; INSERT INTO m.types VALUES {values};"
        ));
    }
    db.sql(CHANGES);
    // CREATE, 4 inserts, 2 updates and a key change, a delete.
    let types_rows = 1 + 4 + 3 + 1;
    for view in [View::Both, View::New] {
        let report = run_and_check(db.url(), &db.dir, view).await;
        assert_report(&report, types_rows);
    }
}

#[tokio::test]
async fn mysql_types_and_schema_changes_land_typed_and_exact() {
    let db = MySql::start();
    db.sql(&format!("CREATE DATABASE m; {MYSQL_TABLE};"));
    for values in mysql_rows() {
        db.sql(&format!(
            "SET time_zone = '+00:00'; INSERT INTO m.types VALUES {values};"
        ));
    }
    db.sql(CHANGES);
    let types_rows = 1 + 3 + 3 + 1;
    for view in [View::Both, View::New] {
        let report = run_and_check(db.url(), &db.dir, view).await;
        assert_report(&report, types_rows);
    }
}

/// Tables of the current-rows test beside sysbench's `sbtest1`: one with a
/// composite key whose column is renamed, one truncated.
const OLTP: &str = "CREATE DATABASE sb;
    CREATE TABLE sb.lines (k1 VARCHAR(10), k2 INT, price DECIMAL(12,2), PRIMARY KEY (k1, k2));
    CREATE TABLE sb.users (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(40), seen DATETIME(3));";

/// Rows per table before the snapshot.
const OLTP_ROWS: u64 = 600;

/// `sysbench oltp_read_write COMMAND` on the server at `port`, one table of
/// [`OLTP_ROWS`] in `sb`.
fn sysbench(port: u16, command: &str, extra: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("sysbench");
    c.arg("oltp_read_write")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-db=sb",
            "--tables=1",
        ])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={USER}"))
        .arg(format!("--mysql-password={PASSWORD}"))
        .arg(format!("--table-size={OLTP_ROWS}"))
        .args(extra)
        .arg(command)
        .stdout(std::process::Stdio::null());
    c
}

fn load_oltp<D: TestServer>(db: &D, port: u16) {
    db.sql(OLTP);
    db.sql(&format!("GRANT ALL ON sb.* TO '{USER}'@'%'"));
    let prepared = sysbench(port, "prepare", &[])
        .status()
        .expect("run sysbench (scripts/ensure-deps.sh installs it)");
    assert!(prepared.success(), "sysbench prepare");
    let rows = |f: &dyn Fn(u64) -> String| (1..=OLTP_ROWS).map(f).collect::<Vec<_>>().join(",");
    db.sql(&format!(
        "INSERT INTO sb.lines VALUES {};
         INSERT INTO sb.users VALUES {};",
        rows(&|i| format!("('k{}', {i}, {}.25)", i % 13, i * 3)),
        rows(&|i| format!(
            "({}, 'user {i}', '2026-01-01 00:00:{:02}.{:03}')",
            u64::MAX - i,
            i % 60,
            i % 1000
        )),
    ));
    // The rows now exist only in the tables, not in any binlog.
    db.sql(D::RESET_BINLOGS);
}

/// Besides sysbench's writes: key changes on every table and updates of
/// the others, until `stop`; returns how many ran.
async fn key_changes(url: String, stop: Arc<AtomicBool>) -> u64 {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = (n * 7919) % OLTP_ROWS + 1;
        let sql = match n % 3 {
            0 => format!("UPDATE IGNORE sb.sbtest1 SET id = id + 100000 WHERE id = {i}"),
            1 => format!("UPDATE IGNORE sb.lines SET k2 = k2 + 100000, price = price + 1 WHERE k1 = 'k{}' AND k2 = {i}", i % 13),
            _ => format!("UPDATE sb.users SET seen = NOW(3), name = 'w{n}' WHERE id = {}", u64::MAX - i),
        };
        conn.query_drop(sql).await.expect("a write");
    }
    n
}

/// The current-rows query of `schema.table` over `out`, run by DuckDB: its
/// rows as JSON texts (values as text), sorted.
async fn current_rows(out: &Path, schema: &str, table: &str) -> Vec<String> {
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(out));
    let prefix = format!("{schema}/{table}/");
    let keys = store.list(&prefix).await.expect("list");
    let t = fan_out_by_table::parquet::read::table_statements(store, schema, table, &keys)
        .await
        .expect("the table's statements");
    let files = out.join(&prefix).join("dt=*/*.parquet");
    let source = binlog_cdc::current_rows::duckdb_source(&files.display().to_string());
    let query = out.join(format!("{schema}.{table}.sql"));
    std::fs::write(&query, binlog_cdc::current_rows::sql(&source, &t)).expect("write the query");
    let mut rows: Vec<String> = binlog_cdc_tests::e2e_python("duckdb_query.py", &[&query])
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    rows
}

/// `SELECT *` with every value as its text, as JSON texts, sorted.
async fn table_rows(url: &str, table: &str) -> Vec<String> {
    let mut rows: Vec<String> = select_rows(url, table)
        .await
        .into_iter()
        .map(|row| {
            let text: serde_json::Map<String, Value> = row
                .as_object()
                .expect("a row")
                .iter()
                .map(|(k, v)| {
                    let t = match v {
                        Value::Null => Value::Null,
                        Value::String(s) => Value::String(s.clone()),
                        other => Value::String(other.to_string()),
                    };
                    (k.clone(), t)
                })
                .collect();
            Value::Object(text).to_string()
        })
        .collect();
    rows.sort();
    rows
}

/// A snapshot taken while sysbench's `oltp_read_write` and key changes
/// run, schema changes (a column added with a default, one renamed, a
/// TRUNCATE) and more writes after; then each table's current-rows query,
/// run by DuckDB over its Parquet objects, returns exactly `SELECT *`.
async fn current_rows_are_the_table(db: impl TestServer, port: u16, dir: &Path) {
    load_oltp(&db, port);
    let out = dir.join("current-rows");
    let config = PipelineConfig {
        format: OutputFormat::Parquet,
        view: View::Both,
        chunk_bytes: 16 << 10,
        snapshot_range_rows: 100,
        ..Default::default()
    };
    let deps = Deps::new(Arc::new(LocalStore::new(&out)), config, db.url());
    let stop = Arc::new(AtomicBool::new(false));
    let mut oltp = sysbench(port, "run", &["--time=0", "--threads=2", "--rand-seed=7"])
        .spawn()
        .expect("start sysbench");
    let writes = tokio::spawn(key_changes(db.url(), stop.clone()));
    let input = RunInput {
        snapshot: Some(vec!["sb.*".into()]),
        ..Default::default()
    };
    pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("the snapshot's runs");
    stop.store(true, Ordering::Relaxed);
    oltp.kill().expect("stop sysbench");
    oltp.wait().expect("sysbench stopped");
    let changes = writes.await.expect("the writer");
    assert!(changes > 50, "{changes} key changes during the snapshot");
    db.sql(
        "ALTER TABLE sb.sbtest1 ADD COLUMN flag INT NOT NULL DEFAULT 3;
         UPDATE sb.sbtest1 SET flag = 4 WHERE id % 5 = 0;
         ALTER TABLE sb.lines RENAME COLUMN price TO amount;
         UPDATE sb.lines SET amount = amount * 2 WHERE k2 % 3 = 0;
         TRUNCATE sb.users;
         INSERT INTO sb.users VALUES (1, 'after the truncate', NULL);",
    );
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the last run");
    // Every value typed as the JSON events have it; sysbench's changes
    // are there beside the snapshot's rows.
    let report = check(&out);
    let events = report["sb/sbtest1"]["rows"].as_u64().unwrap_or(0);
    assert!(events > OLTP_ROWS + 100, "sb.sbtest1: {events} events");
    assert_current_rows(&out, &db.url()).await;
    // Columns added with no row event of the table after them in their
    // run (their values are only in the statement's event), then a row
    // that has them, in the next run.
    db.sql(
        "ALTER TABLE sb.users ADD COLUMN extra INT NOT NULL DEFAULT 5, \
         ADD COLUMN label VARCHAR(8) NOT NULL DEFAULT 'x''y', \
         ADD COLUMN since DATE NOT NULL DEFAULT '2026-12-06', \
         ADD COLUMN fee DECIMAL(8,3) NOT NULL DEFAULT 1.250",
    );
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the run of the ALTER");
    assert_current_rows(&out, &db.url()).await;
    db.sql("INSERT INTO sb.users VALUES (2, 'later', NULL, 6, 'z', '2027-01-02', 2.5)");
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the run after it");
    assert_current_rows(&out, &db.url()).await;
    check(&out);
}

/// Each table's current-rows query over `out` returns what `SELECT *` does.
async fn assert_current_rows(out: &Path, url: &str) {
    for table in ["sbtest1", "lines", "users"] {
        let ours = current_rows(out, "sb", table).await;
        let theirs = table_rows(url, &format!("sb.{table}")).await;
        let only_ours: Vec<_> = ours
            .iter()
            .filter(|r| !theirs.contains(r))
            .take(3)
            .collect();
        let only_theirs: Vec<_> = theirs
            .iter()
            .filter(|r| !ours.contains(r))
            .take(3)
            .collect();
        assert!(
            ours == theirs,
            "sb.{table}: {} rows against {}; only the query's: {only_ours:?}; only the table's: {only_theirs:?}",
            ours.len(),
            theirs.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn current_rows_are_the_table_on_mariadb() {
    let db = MariaDb::start();
    let (dir, port) = (db.dir.clone(), db.port);
    current_rows_are_the_table(db, port, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn current_rows_are_the_table_on_mysql() {
    let db = MySql::start();
    let (dir, port) = (db.dir.clone(), db.port);
    current_rows_are_the_table(db, port, &dir).await;
}

/// Column rules hold in the typed objects too: an excluded column has no
/// column, hashed and masked ones are text holding the ruled values (the
/// checker compares them with the events'), and no clear value is in any
/// value DuckDB reads back from the objects (compressed pages cannot be
/// searched as bytes; their values can).
#[tokio::test]
async fn column_rules_hold_in_parquet() {
    let db = MariaDb::start();
    db.sql(
        "CREATE DATABASE crm;
         CREATE TABLE crm.people (email VARCHAR(80) PRIMARY KEY, password VARCHAR(40), card VARCHAR(19), n INT);
         INSERT INTO crm.people VALUES ('ann.secret@example.com', 'Hunter2-Secret', '4111-1111-1111-1111', 1);
         UPDATE crm.people SET card = '4111-1111-1111-2222', n = 2;",
    );
    let out = db.dir.join("ruled");
    let config = PipelineConfig {
        format: OutputFormat::Parquet,
        view: View::Both,
        column_rules: [
            "crm.people.email=hash",
            "crm.people.password=exclude",
            "crm.people.card=mask",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let mut deps = Deps::new(Arc::new(LocalStore::new(&out)), config, db.url());
    let key =
        binlog_cdc::decoder::column_rules::HashKey::new(b"parquet-rules-test-key").expect("a key");
    deps.column_rules_keyed(Some(key)).await.expect("the rules");
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .expect("the run");
    let report = check(&out);
    assert_eq!(report["crm/people"]["rows"], 3, "{report}");
    let query = out.join("all-values.sql");
    let files = out.join("crm/people/dt=*/*.parquet");
    std::fs::write(
        &query,
        format!(
            "SELECT * FROM read_parquet('{}', union_by_name = true, hive_partitioning = false)",
            files.display()
        ),
    )
    .expect("write the query");
    let values = binlog_cdc_tests::e2e_python("duckdb_query.py", &[&query]);
    assert!(
        values.contains("\"card\":\"*******************\""),
        "{values}"
    );
    assert!(
        !values.contains("\"password\""),
        "an excluded column has no column: {values}"
    );
    for clear in ["ann.secret", "Hunter2", "4111-1111"] {
        assert!(!values.contains(clear), "{clear} in {values}");
    }
}
