//! One description of the loop: the driver (`binlog-cdc run`, these tests)
//! runs the definition's states in the definition's order. The states an
//! iteration ran (`Iteration::states`, recorded as the driver calls each
//! handler) must equal the working path of
//! statemachine/binlog-pipeline.asl.json: from `StartAt`, each Task and Map
//! state in turn, through Pass states and each Choice's first branch (the
//! one that works), until a state comes round again. A step added, removed
//! or moved in either fails this test.

use std::collections::HashSet;
use std::sync::Arc;

use binlog_cdc::config::PipelineConfig;
use binlog_cdc::contracts::RunInput;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::local::LocalStore;
use binlog_cdc_tests::{workspace_root, MariaDb};
use serde_json::Value;

/// The Task and Map states an execution runs when there is work, in order.
fn working_path(definition: &Value) -> Vec<String> {
    let states = &definition["States"];
    let mut at = definition["StartAt"].as_str().map(str::to_string);
    let (mut path, mut seen) = (Vec::new(), HashSet::new());
    while let Some(name) = at.take() {
        if !seen.insert(name.clone()) {
            break;
        }
        let state = &states[name.as_str()];
        let next = |v: &Value| v.as_str().map(str::to_string);
        match state["Type"].as_str() {
            Some("Task" | "Map") => {
                path.push(name.clone());
                at = next(&state["Next"]);
            }
            Some("Pass") => at = next(&state["Next"]),
            Some("Choice") => at = next(&state["Choices"][0]["Next"]),
            Some("Succeed" | "Fail") => {}
            other => panic!("state {name}: unexpected type {other:?}"),
        }
    }
    path
}

fn definition() -> Value {
    let path = workspace_root().join("statemachine/binlog-pipeline.asl.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the definition"))
        .expect("the definition is JSON")
}

#[test]
fn the_working_path_is_read_from_the_definition() {
    // The walk itself, on a small definition: a loop, a Choice, a Map.
    let small = serde_json::json!({
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Next": "A"},
            "A": {"Type": "Task", "Next": "Any"},
            "Any": {"Type": "Choice", "Choices": [{"Next": "B"}], "Default": "Done"},
            "B": {"Type": "Map", "Next": "Again"},
            "Again": {"Type": "Choice", "Choices": [{"Next": "Loop"}], "Default": "Done"},
            "Loop": {"Type": "Pass", "Next": "A"},
            "Done": {"Type": "Succeed"}
        }
    });
    assert_eq!(working_path(&small), ["A", "B"]);
    assert_eq!(
        working_path(&definition()),
        [
            "ListBinlogs",
            "ParseChunks",
            "PlanFanOut",
            "FanOutShards",
            "JoinAllTables",
            "CommitCheckpoint"
        ],
        "the definition's steps changed: change the driver (driver/src/lib.rs run_iteration) to match, then this list"
    );
}

#[tokio::test]
async fn the_driver_runs_the_definitions_states_in_its_order() {
    let db = MariaDb::start();
    let deps = Deps::new(
        Arc::new(LocalStore::new(db.dir.join("out"))),
        PipelineConfig::default(),
        db.url(),
    );
    db.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1), (2);");
    let it = pipeline_driver::run_iteration(&deps, RunInput::default(), Default::default())
        .await
        .expect("an iteration");
    assert!(it.commit.is_some(), "the iteration had work and committed");
    assert_eq!(it.states.0, working_path(&definition()));
    // With nothing to read, the definition stops after ListBinlogs, and so
    // does the driver.
    let idle = pipeline_driver::run_iteration(&deps, RunInput::default(), Default::default())
        .await
        .expect("an idle iteration");
    assert!(idle.commit.is_none());
    assert_eq!(idle.states.0, ["ListBinlogs"]);
}
