//! The `parquet` format end to end: the type matrix (MariaDB and MySQL),
//! a key changed, columns added and a type changed mid-run, a TRUNCATE, and
//! a geometry with an SRID, through the pipeline into typed per-table
//! Parquet objects; then DuckDB (a reader nobody here wrote) reads every
//! object and `scripts/parquet_check.py` compares each typed value with the
//! same event in the all-tables object (`jsonl.gz`), whose values the type
//! matrix checks against the servers. Under both views. Then the current
//! rows: a snapshot during sysbench-style writes, schema changes and more
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
use binlog_cdc_tests::{MariaDb, TestServer};
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

/// Tables of the current-rows test: a sysbench `oltp` table, one with a
/// composite key, one whose column is renamed and one added, one
/// truncated.
const OLTP: &str = "CREATE DATABASE sb;
    CREATE TABLE sb.sbtest1 (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,
      c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k));
    CREATE TABLE sb.lines (k1 VARCHAR(10), k2 INT, price DECIMAL(12,2), PRIMARY KEY (k1, k2));
    CREATE TABLE sb.users (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(40), seen DATETIME(3));";

/// Rows per table before the snapshot.
const OLTP_ROWS: u64 = 600;

fn load_oltp<D: TestServer>(db: &D) {
    db.sql(OLTP);
    let rows = |f: &dyn Fn(u64) -> String| (1..=OLTP_ROWS).map(f).collect::<Vec<_>>().join(",");
    db.sql(&format!(
        "INSERT INTO sb.sbtest1 (k, c, pad) VALUES {};
         INSERT INTO sb.lines VALUES {};
         INSERT INTO sb.users VALUES {};",
        rows(&|i| format!("({}, '{i:011}-{:011}', 'p{i}')", i % 97, i * 7)),
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

/// sysbench's `oltp_read_write` writes (index and non-index updates,
/// delete then insert of the same id) and key changes on every table,
/// until `stop`; returns how many transactions ran.
async fn oltp_writes(url: String, stop: Arc<AtomicBool>) -> u64 {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = (n * 7919) % OLTP_ROWS + 1;
        let sql = match n % 6 {
            0 => format!("UPDATE sb.sbtest1 SET k = k + 1 WHERE id = {i}"),
            1 => format!("UPDATE sb.sbtest1 SET c = '{n:011}-changed' WHERE id = {i}"),
            2 => format!(
                "BEGIN; DELETE FROM sb.sbtest1 WHERE id = {i}; \
                 INSERT INTO sb.sbtest1 (id, k, c, pad) VALUES ({i}, {n}, 'again', 'p'); COMMIT"
            ),
            3 => format!("UPDATE IGNORE sb.sbtest1 SET id = id + 100000 WHERE id = {i}"),
            4 => format!("UPDATE IGNORE sb.lines SET k2 = k2 + 100000, price = price + 1 WHERE k1 = 'k{}' AND k2 = {i}", i % 13),
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
    let source = format!(
        "read_parquet('{}', union_by_name = true, hive_partitioning = false)",
        files.display()
    );
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

/// A snapshot taken while sysbench-style writes run, schema changes (a
/// column added with a default, one renamed, a TRUNCATE) and more writes
/// after; then each table's current-rows query, run by DuckDB over its
/// Parquet objects, returns exactly `SELECT *`.
async fn current_rows_are_the_table(db: impl TestServer, dir: &Path) {
    load_oltp(&db);
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
    let writes = tokio::spawn(oltp_writes(db.url(), stop.clone()));
    let input = RunInput {
        snapshot: Some(vec!["sb.*".into()]),
        ..Default::default()
    };
    pipeline_driver::run_until_caught_up(&deps, input)
        .await
        .expect("the snapshot's runs");
    stop.store(true, Ordering::Relaxed);
    let transactions = writes.await.expect("the writer");
    assert!(
        transactions > 50,
        "{transactions} writes during the snapshot"
    );
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
    for table in ["sbtest1", "lines", "users"] {
        let ours = current_rows(&out, "sb", table).await;
        let theirs = table_rows(&db.url(), &format!("sb.{table}")).await;
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
    let dir = db.dir.clone();
    current_rows_are_the_table(db, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn current_rows_are_the_table_on_mysql() {
    let db = MySql::start();
    let dir = db.dir.clone();
    current_rows_are_the_table(db, &dir).await;
}
