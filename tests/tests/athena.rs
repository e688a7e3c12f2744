//! The README's three Athena queries, verbatim, on the pipeline's own
//! `jsonl` output, with DuckDB standing in for Athena
//! (`scripts/athena_local.py`: a view with the Glue table's columns over
//! `all/dt=*/`): events per table per day match what was written; the latest
//! image of each row is the table as it is; one row's changes come in order;
//! the table's schema changes come in order with their definitions.

use std::sync::Arc;

use binlog_cdc::config::{OutputFormat, PipelineConfig};
use binlog_cdc::contracts::RunInput;
use binlog_cdc::decoder::event::View;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::{workspace_root, MariaDb};
use serde_json::Value;

/// Each README query's rows.
fn readme_queries(out: &std::path::Path) -> Vec<Vec<Value>> {
    let readme = workspace_root().join("README.md");
    binlog_cdc_tests::e2e_python("athena_local.py", &[out, &readme])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_readme_queries_answer_from_the_outputs() {
    let db = MariaDb::start();
    let out = db.dir.join("out");
    let config = PipelineConfig {
        format: OutputFormat::Jsonl,
        view: View::Both,
        ..Default::default()
    };
    let deps = Deps::new(Arc::new(LocalStore::new(&out)), config, db.url());
    db.sql(
        "CREATE DATABASE martzcodes;
         CREATE TABLE martzcodes.tasks (task_id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(40), done TINYINT);
         INSERT INTO martzcodes.tasks (title, done) VALUES ('a', 0), ('b', 0), ('c', 0), ('d', 0), ('e', 0);
         UPDATE martzcodes.tasks SET done = 1, title = 'd2' WHERE task_id = 4;",
    );
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .unwrap();
    // A second run: the queries read across runs' objects.
    db.sql(
        "DELETE FROM martzcodes.tasks WHERE task_id = 2;
         CREATE INDEX by_title ON martzcodes.tasks (title);
         UPDATE martzcodes.tasks SET title = 'd3' WHERE task_id = 4;",
    );
    pipeline_driver::run_until_caught_up(&deps, RunInput::default())
        .await
        .unwrap();

    let answers = readme_queries(&out);
    assert_eq!(answers.len(), 4, "four example queries in the README");

    let per_type: Vec<(String, u64)> = answers[0]
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_type,
        [
            ("DeleteRowsEvent".to_string(), 1),
            ("SchemaChangeEvent".to_string(), 2),
            ("UpdateRowsEvent".to_string(), 2),
            ("WriteRowsEvent".to_string(), 5)
        ]
    );

    let mut latest: Vec<Value> = answers[1]
        .iter()
        .map(|r| serde_json::from_str(r["newimage"].as_str().unwrap()).unwrap())
        .collect();
    latest.sort_by_key(|v| v["task_id"].as_i64());
    let table: Vec<Value> = db
        .sql("SELECT JSON_OBJECT('done', done, 'task_id', task_id, 'title', title) FROM martzcodes.tasks ORDER BY task_id")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(latest, table, "the latest image of each row is the table");

    let changes: Vec<(&str, Value)> = answers[2]
        .iter()
        .map(|r| {
            let image: Value = serde_json::from_str(r["newimage"].as_str().unwrap()).unwrap();
            (r["type"].as_str().unwrap(), image["title"].clone())
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("WriteRowsEvent", "d".into()),
            ("UpdateRowsEvent", "d2".into()),
            ("UpdateRowsEvent", "d3".into())
        ]
    );

    let statements: Vec<(&str, Value, Value)> = answers[3]
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["snapshotneeded"].clone(),
                r["columns"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statements,
        [
            ("create", false.into(), 3.into()),
            // An index: every row stays as it was.
            ("alter", false.into(), 3.into())
        ]
    );
}
