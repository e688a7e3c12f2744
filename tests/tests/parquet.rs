//! The `parquet` format end to end: the type matrix (MariaDB and MySQL),
//! a key changed, columns added and a type changed mid-run, a TRUNCATE, and
//! a geometry with an SRID, through the pipeline into typed per-table
//! Parquet objects; then DuckDB (a reader nobody here wrote) reads every
//! object and `scripts/parquet_check.py` compares each typed value with the
//! same event in the all-tables object (`jsonl.gz`), whose values the type
//! matrix checks against the servers. Under both views.

use std::path::Path;
use std::sync::Arc;

use binlog_cdc::config::{OutputFormat, PipelineConfig};
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::mysql::MySql;
use binlog_cdc_tests::types::{mysql_rows, rows, MYSQL_TABLE, TABLE};
use binlog_cdc_tests::MariaDb;
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
    ALTER TABLE m.evolving MODIFY a DECIMAL(10,2);
    INSERT INTO m.evolving VALUES (3, 3.5, 'y');
    UPDATE m.evolving SET b = 'z' WHERE id = 1;
    TRUNCATE m.evolving;
    INSERT INTO m.evolving VALUES (4, 4.25, NULL);
    CREATE TABLE m.geo (id INT PRIMARY KEY, g GEOMETRY);
    INSERT INTO m.geo VALUES (1, ST_GeomFromText('POINT(1 2)', 4326)), (2, ST_GeomFromText('POINT(3 4)'));";

fn assert_report(report: &Value, types_rows: u64) {
    let rows = |t: &str| report[t]["rows"].as_u64().unwrap_or(0);
    assert_eq!(rows("m/types"), types_rows, "{report}");
    // evolving: CREATE, insert, ALTER, insert, ALTER, insert, update,
    // TRUNCATE, insert.
    assert_eq!(rows("m/evolving"), 9, "{report}");
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
