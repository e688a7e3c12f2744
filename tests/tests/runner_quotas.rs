//! The local runner enforces Step Functions' and Lambda's quotas as AWS
//! does: each limit fails a small definition built to exceed it, and a
//! definition just under each limit succeeds. The tasks call the runner's
//! built-in `runner-test` function (it echoes, pads its answer, sleeps), so
//! these tests need no Lambda emulator.

use binlog_cdc_tests::aws_local::run_definition;
use serde_json::{json, Value};

const TEST_FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:runner-test";
const LIMIT: usize = 262_144;

fn run(name: &str, definition: Value, input: Value, options: Value) -> Value {
    let dir = std::env::temp_dir().join(format!("binlog-cdc-quotas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.asl.json"));
    std::fs::write(&path, definition.to_string()).unwrap();
    let out = run_definition(&path, "http://127.0.0.1:9", &input, name, &options);
    println!("{name}: {out}");
    out
}

fn task(pad: usize, next: Option<&str>) -> Value {
    let mut t = json!({
        "Type": "Task", "Resource": TEST_FN,
        "Parameters": {"padBytes": pad},
        "TimeoutSeconds": 60,
    });
    match next {
        Some(n) => t["Next"] = json!(n),
        None => t["End"] = json!(true),
    }
    t
}

fn assert_failed(out: &Value, error: &str) {
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], error, "{out}");
}

#[test]
fn a_state_output_over_256_kib_fails_the_execution_even_with_catch_all() {
    // The task's result alone is under the limit... twice it is not: the
    // Pass state's output (Parameters) holds it twice.
    let half = LIMIT / 2 + 100;
    let def = json!({
        "StartAt": "Pad",
        "States": {
            "Pad": task(half, Some("Twice")),
            "Twice": {
                "Type": "Pass", "Parameters": {"a.$": "$.pad", "b.$": "$.pad"}, "Next": "After",
            },
            "After": task(0, None),
        }
    });
    let out = run("output", def.clone(), json!({}), json!({}));
    assert_failed(&out, "States.DataLimitExceeded");
    assert!(out["cause"].as_str().unwrap().contains("Twice"), "{out}");
    assert_eq!(out["failedState"], "Twice", "{out}");
    let called: Vec<&Value> = out["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["state"])
        .collect();
    assert_eq!(
        called,
        [&json!("Pad")],
        "no function is called after the limit is passed"
    );

    // A Catch on States.ALL and a Retry do not handle it.
    let def = json!({
        "StartAt": "Big",
        "States": {
            "Big": {
                "Type": "Task", "Resource": TEST_FN, "Parameters": {"padBytes": LIMIT},
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recovered"}],
                "End": true,
            },
            "Recovered": {"Type": "Succeed"},
        }
    });
    let out = run("task-result", def, json!({}), json!({}));
    assert_failed(&out, "States.DataLimitExceeded");
    assert_eq!(
        out["quotas"]["largestPayload"]["what"], "task result",
        "{out}"
    );
    assert!(out["quotas"]["largestPayload"]["bytes"].as_u64().unwrap() > LIMIT as u64);
}

#[test]
fn an_execution_input_over_the_limit_fails() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let out = run("input", def, json!({"blob": "y".repeat(LIMIT)}), json!({}));
    assert_failed(&out, "States.DataLimitExceeded");
}

#[test]
fn a_map_whose_whole_result_passes_256_kib_fails_though_each_item_is_small() {
    // 40 items of 8 KiB: each small, the result array 320 KiB.
    let def = json!({
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 8,
                "ItemSelector": {"padBytes.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Item",
                    "States": {"Item": {"Type": "Task", "Resource": TEST_FN, "TimeoutSeconds": 60, "End": true}},
                },
                "ResultPath": null,
                "End": true,
            }
        }
    });
    let out = run(
        "map-result",
        def.clone(),
        json!({"items": vec![8192; 40]}),
        json!({}),
    );
    assert_failed(&out, "States.DataLimitExceeded");
    assert!(
        out["cause"]
            .as_str()
            .unwrap()
            .contains("result of Map state Fan"),
        "{out}"
    );
    // 20 such items fit, and ResultPath null keeps them out of the output.
    let ok = run(
        "map-result-ok",
        def,
        json!({"items": vec![8192; 20]}),
        json!({}),
    );
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["quotas"]["largestPayload"]["state"], "Fan", "{ok}");
    // 1 + Map (4) + 20 iterations x 7 + 1
    assert_eq!(ok["quotas"]["historyEvents"], 146, "{ok}");
}

#[test]
fn a_lambda_response_over_6_mb_is_a_lambda_failure() {
    let def = json!({
        "StartAt": "Huge",
        "States": {
            "Huge": {
                "Type": "Task", "Resource": TEST_FN, "Parameters": {"padBytes": 6_300_000},
                "Catch": [{"ErrorEquals": ["Lambda.ServiceException"], "Next": "Caught"}],
                "End": true,
            },
            "Caught": {"Type": "Pass", "Result": "caught", "End": true},
        }
    });
    let out = run("lambda-response", def, json!({}), json!({}));
    assert_eq!(
        out["status"], "SUCCEEDED",
        "a Lambda error can be caught: {out}"
    );
    assert_eq!(out["output"], "caught");
    assert_eq!(
        out["taskErrors"],
        json!([{"state": "Huge", "error": "Lambda.ServiceException"}])
    );
}

#[test]
fn the_history_quota_ends_a_loop_at_25000_events() {
    // Pass (2) + Choice (2) per turn: 6,250 turns reach 25,000.
    let def = json!({
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"n": 0}, "ResultPath": "$.c", "Next": "Count"},
            "Count": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.c.n, 1)"},
                "ResultPath": "$.c", "Next": "More",
            },
            "More": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.c.n", "NumericLessThan": 100000, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        }
    });
    let out = run("history", def.clone(), json!({}), json!({}));
    assert_failed(&out, "States.Runtime");
    assert!(out["cause"].as_str().unwrap().contains("25000"), "{out}");
    assert!(out["quotas"]["historyEvents"].as_u64().unwrap() > 25_000);

    // 100 turns: 1 + 2 + 100 x 4 + 2 + 1 events.
    let mut small = def;
    small["States"]["More"]["Choices"][0]["NumericLessThan"] = json!(100);
    let ok = run("history-ok", small, json!({}), json!({}));
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["quotas"]["historyEvents"], 406, "{ok}");
}

#[test]
fn task_timeouts_and_function_timeouts_fail_the_task() {
    let def = |timeout: u32| {
        json!({
            "StartAt": "Slow",
            "States": {
                "Slow": {
                    "Type": "Task", "Resource": TEST_FN, "Parameters": {"sleepMs": 3000},
                    "TimeoutSeconds": timeout, "End": true,
                },
            }
        })
    };
    let out = run("task-timeout", def(1), json!({}), json!({}));
    assert_failed(&out, "States.Timeout");
    // The function's own timeout (here 1 s) comes first: a Lambda failure.
    let out = run(
        "function-timeout",
        def(60),
        json!({}),
        json!({"functionTimeoutsMs": {"runner-test": 1000}}),
    );
    assert_failed(&out, "Sandbox.Timedout");
    // Retried where the definition retries it.
    let mut retried = def(60);
    retried["States"]["Slow"]["Retry"] =
        json!([{"ErrorEquals": ["Sandbox.Timedout"], "MaxAttempts": 1}]);
    let out = run(
        "function-timeout-retried",
        retried,
        json!({}),
        json!({"functionTimeoutsMs": {"runner-test": 1000}}),
    );
    assert_eq!(out["taskErrors"].as_array().unwrap().len(), 2, "{out}");
    // History: started, entered, 2 x (scheduled, started, timed out), failed.
    assert_eq!(out["quotas"]["historyEvents"], 9, "{out}");
}
