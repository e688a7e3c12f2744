//! The state machine definition read against these types: one iteration's
//! data flow through `statemachine/binlog-pipeline.asl.json` (Parameters,
//! ItemsPath, ItemSelector, ResultSelector, ResultPath, OutputPath, Choice
//! variables), each task's effective input decoded as the type its function
//! takes, each result placed where the definition puts it. A path the
//! definition names that the types do not have fails here.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::*;

const ASL: &str = include_str!("../../statemachine/binlog-pipeline.asl.json");

/// `$.a.b` in `doc` (`$` itself too); `$$.` names the context object.
fn path<'a>(doc: &'a Value, ctx: &'a Value, p: &str) -> &'a Value {
    lookup(doc, ctx, p).unwrap_or_else(|| panic!("{p}: not in {doc}"))
}

/// `$.a.b` in `doc`, if it is there.
fn lookup<'a>(doc: &'a Value, ctx: &'a Value, p: &str) -> Option<&'a Value> {
    let (root, rest) = match p.strip_prefix("$$") {
        Some(rest) => (ctx, rest),
        None => (doc, p.strip_prefix('$').expect("a path starts with $")),
    };
    rest.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(root, |v, key| v.get(key))
}

/// The state a Choice goes to: its rules (`StringEquals`, `BooleanEquals`,
/// `IsPresent`) in order, else its `Default`.
fn next_of<'a>(choice: &'a Value, doc: &Value, ctx: &Value) -> &'a str {
    let matches = |rule: &Value| {
        let v = lookup(doc, ctx, rule["Variable"].as_str().expect("a Variable"));
        if let Some(present) = rule.get("IsPresent") {
            return v.is_some() == present.as_bool().expect("IsPresent: bool");
        }
        let want = rule.get("StringEquals").or(rule.get("BooleanEquals"));
        want.is_some_and(|w| v == Some(w))
    };
    choice["Choices"]
        .as_array()
        .expect("Choices")
        .iter()
        .find(|r| matches(r))
        .map_or(&choice["Default"], |r| &r["Next"])
        .as_str()
        .expect("a Next state")
}

/// A Parameters / ItemSelector / ResultSelector template applied.
fn template(t: &Value, doc: &Value, ctx: &Value) -> Value {
    match t {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.strip_suffix(".$"), v.as_str()) {
                    // An intrinsic function: its value is the service's.
                    (Some(k), Some(f)) if f.starts_with("States.") => (k.to_string(), json!(f)),
                    (Some(k), _) => (
                        k.to_string(),
                        path(doc, ctx, v.as_str().expect("a path")).clone(),
                    ),
                    (None, _) => (k.clone(), template(v, doc, ctx)),
                })
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// `doc` with `result` at `ResultPath` (`null`: discarded).
fn place(doc: &Value, st: &Value, result: Value) -> Value {
    match st.get("ResultPath") {
        Some(Value::Null) => doc.clone(),
        None => result,
        Some(Value::String(p)) => {
            let key = p.strip_prefix("$.").expect("ResultPath $.key");
            let mut out = doc.clone();
            out[key] = result;
            out
        }
        Some(other) => panic!("ResultPath {other}"),
    }
}

fn effective_input(st: &Value, doc: &Value, ctx: &Value) -> Value {
    st.get("Parameters")
        .map_or_else(|| doc.clone(), |t| template(t, doc, ctx))
}

/// The task's effective input, decoded as `T` (fails on a missing or
/// misnamed field, or a path the document does not have).
fn task_input<T: DeserializeOwned>(st: &Value, doc: &Value, ctx: &Value) -> T {
    let input = effective_input(st, doc, ctx);
    serde_json::from_value(input.clone()).unwrap_or_else(|e| panic!("{e}: {input}"))
}

fn task_result<T: Serialize>(st: &Value, doc: &Value, result: &T, ctx: &Value) -> Value {
    let raw = serde_json::to_value(result).unwrap();
    let selected = st
        .get("ResultSelector")
        .map_or(raw.clone(), |t| template(t, &raw, ctx));
    place(doc, st, selected)
}

#[test]
fn one_iteration_flows_through_the_definition_as_the_types_say() {
    let asl: Value = serde_json::from_str(ASL).unwrap();
    let states = &asl["States"];
    let ctx = json!({"Execution": {"Id": "arn:aws:states:r:1:execution:m:e"},
                     "StateMachine": {"Id": "arn:aws:states:r:1:stateMachine:m"}});
    let p = |s: &str| s.parse::<BinlogPosition>().unwrap();

    let mut doc = template(
        &states["Start"]["Parameters"],
        &json!({"restartAt": "oldest"}),
        &ctx,
    );
    let list: ListBinlogsInput = task_input(&states["ListBinlogs"], &doc, &ctx);
    assert_eq!(list.input.restart_at, Some(RestartAt::Oldest));
    assert_eq!(
        list.execution_arn.as_deref(),
        Some("arn:aws:states:r:1:execution:m:e")
    );
    assert_eq!(list.loop_state.iteration, 0);

    let plan = RunPlan {
        max_concurrency: 3,
        execution: list.execution_arn.clone(),
        ..super::tests::sample_plan()
    };
    let chunk = plan.chunks[0].clone();
    doc = task_result(&states["ListBinlogs"], &doc, &plan, &ctx);
    assert_eq!(
        path(&doc, &ctx, choice_variable(&states["AnythingToDo"])),
        "run"
    );

    let parse = &states["ParseChunks"];
    assert_eq!(
        path(&doc, &ctx, parse["MaxConcurrencyPath"].as_str().unwrap()),
        3
    );
    let items: Vec<Chunk> =
        serde_json::from_value(path(&doc, &ctx, parse["ItemsPath"].as_str().unwrap()).clone())
            .unwrap();
    assert_eq!(items, [chunk]);
    doc = place(&doc, parse, Value::Null);

    let request: FanOutRequest = task_input(&states["PlanFanOut"], &doc, &ctx);
    assert_eq!(
        request,
        FanOutRequest::Plan {
            plan: Box::new(plan.clone())
        }
    );
    let planned = FanOutPlanned {
        shards: vec![ShardTask {
            run_id: plan.run_id.clone(),
            shard: 0,
        }],
        tables: 2,
        events: 9,
    };
    doc = task_result(&states["PlanFanOut"], &doc, &planned, &ctx);

    let shards = &states["FanOutShards"];
    let items = path(&doc, &ctx, shards["ItemsPath"].as_str().unwrap())
        .as_array()
        .unwrap()
        .clone();
    for item in items {
        let item_ctx = json!({"Map": {"Item": {"Value": item}}});
        let request: FanOutRequest =
            serde_json::from_value(template(&shards["ItemSelector"], &doc, &item_ctx)).unwrap();
        assert_eq!(
            request,
            FanOutRequest::Shard {
                shard: planned.shards[0].clone()
            }
        );
    }
    doc = place(&doc, shards, Value::Null);

    let join: FanOutRequest = task_input(&states["JoinAllTables"], &doc, &ctx);
    assert_eq!(
        join,
        FanOutRequest::Join {
            run_id: plan.run_id.clone()
        }
    );
    doc = place(
        &doc,
        &states["JoinAllTables"],
        serde_json::to_value(JoinOutput::default()).unwrap(),
    );

    let commit: CommitInput = task_input(&states["CommitCheckpoint"], &doc, &ctx);
    assert_eq!(commit.plan, plan);
    let out = CommitOutput {
        committed: true,
        run_id: plan.run_id.clone(),
        position: p("binlog.000001:900"),
        meta_etag: Some("\"e\"".into()),
        progress: Progress::Behind,
        lag_seconds: Some(1),
        loop_state: LoopState {
            iteration: 1,
            history_events: 40,
            resume_from: None,
            again: true,
            then: None,
        },
    };
    doc = task_result(&states["CommitCheckpoint"], &doc, &out, &ctx);
    assert_eq!(path(&doc, &ctx, choice_variable(&states["MoreToDo"])), true);

    // Round again: ListBinlogs sees the same execution input and the new loop.
    doc = effective_input(&states["NextIteration"], &doc, &ctx);
    let again: ListBinlogsInput = task_input(&states["ListBinlogs"], &doc, &ctx);
    assert_eq!(again.input, list.input);
    assert_eq!(again.loop_state, out.loop_state);

    // The execution's output is the last commit, as the README shows it.
    let done = path(
        &task_result(&states["CommitCheckpoint"], &doc, &out, &ctx),
        &ctx,
        states["Done"]["OutputPath"].as_str().unwrap(),
    )
    .clone();
    assert_eq!(serde_json::from_value::<CommitOutput>(done).unwrap(), out);
}

/// Under `follow`: a caught-up plan polls (the wait reads `pollSeconds`;
/// ListBinlogs then sees the execution input and the plan's loop), and a
/// commit with no history left hands over, starting the next execution
/// with an input `RunInput` reads.
#[test]
fn a_follower_polls_and_hands_over_as_the_types_say() {
    let asl: Value = serde_json::from_str(ASL).unwrap();
    let states = &asl["States"];
    let me = "arn:aws:states:r:1:execution:m:e";
    let ctx = json!({"Execution": {"Id": me}, "StateMachine": {"Id": "arn:aws:states:r:1:stateMachine:m"}});
    let follow = Follow { poll_seconds: 5 };
    let input = RunInput {
        follow: Some(follow),
        ..Default::default()
    };
    let start = serde_json::to_value(&input).unwrap();
    let mut doc = template(&states["Start"]["Parameters"], &start, &ctx);
    let list: ListBinlogsInput = task_input(&states["ListBinlogs"], &doc, &ctx);
    assert_eq!(list.input, input);

    let polled = LoopState {
        iteration: 1,
        history_events: IDLE_POLL_HISTORY_EVENTS,
        then: Some(Then::Poll),
        ..Default::default()
    };
    let plan = RunPlan {
        status: RunStatus::Nothing,
        chunks: Vec::new(),
        follow: Some(follow),
        loop_state: Some(polled.clone()),
        ..super::tests::sample_plan()
    };
    doc = task_result(&states["ListBinlogs"], &doc, &plan, &ctx);
    assert_eq!(next_of(&states["AnythingToDo"], &doc, &ctx), "CaughtUp");
    doc = effective_input(&states["CaughtUp"], &doc, &ctx);
    assert_eq!(next_of(&states["FollowOn"], &doc, &ctx), "WaitToPoll");
    let wait = states["WaitToPoll"]["SecondsPath"].as_str().unwrap();
    assert_eq!(path(&doc, &ctx, wait), 5);
    assert_eq!(states["WaitToPoll"]["Next"], "ListBinlogs");
    let again: ListBinlogsInput = task_input(&states["ListBinlogs"], &doc, &ctx);
    assert_eq!((again.input, again.loop_state), (input.clone(), polled));

    // Without follow, a plan with nothing to do ends the execution.
    let idle = RunPlan {
        loop_state: None,
        ..plan.clone()
    };
    let alone = task_result(&states["ListBinlogs"], &doc, &idle, &ctx);
    assert_eq!(
        next_of(&states["AnythingToDo"], &alone, &ctx),
        "NothingToDo"
    );

    let out = CommitOutput {
        committed: true,
        run_id: plan.run_id.clone(),
        position: "binlog.000001:900".parse().unwrap(),
        meta_etag: None,
        progress: Progress::CaughtUp,
        lag_seconds: None,
        loop_state: LoopState {
            then: Some(Then::HandOver),
            ..Default::default()
        },
    };
    doc = task_result(&states["CommitCheckpoint"], &doc, &out, &ctx);
    assert_eq!(next_of(&states["MoreToDo"], &doc, &ctx), "Committed");
    doc = effective_input(&states["Committed"], &doc, &ctx);
    assert_eq!(next_of(&states["FollowOn"], &doc, &ctx), "HandOver");
    let started = effective_input(&states["HandOver"], &doc, &ctx);
    let next: RunInput = serde_json::from_value(started["Input"].clone()).unwrap();
    let want = RunInput {
        follow: Some(follow),
        handed_over_by: Some(me.into()),
        ..Default::default()
    };
    assert_eq!(next, want);
    assert_eq!(started["StateMachineArn"], ctx["StateMachine"]["Id"]);
    // A failed hand-over still ends the execution successfully.
    assert_eq!(states["HandOver"]["Catch"][0]["Next"], "Followed");
}

fn choice_variable(st: &Value) -> &str {
    st["Choices"][0]["Variable"]
        .as_str()
        .expect("a Choice on a variable")
}

/// Every Task state of the definition that invokes a function (those in
/// Maps too), by name.
fn tasks(states: &Value, out: &mut Vec<(String, Value)>) {
    for (name, st) in states.as_object().expect("States") {
        match st["Type"].as_str() {
            Some("Task") if invokes_a_function(st) => out.push((name.clone(), st.clone())),
            Some("Map") => tasks(&st["ItemProcessor"]["States"], out),
            _ => {}
        }
    }
}

/// A Task whose Resource is one of the stack's functions (`HandOver`
/// starts an execution instead).
pub(crate) fn invokes_a_function(st: &Value) -> bool {
    st["Resource"]
        .as_str()
        .is_some_and(|r| r.ends_with("FunctionArn}"))
}

#[test]
fn every_task_retries_what_aws_advises_within_the_history_budget() {
    let doc: Value = serde_json::from_str(ASL).unwrap();
    let mut all = Vec::new();
    tasks(&doc["States"], &mut all);
    assert_eq!(
        all.len(),
        6,
        "{:?}",
        all.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // AWS's recommended set for a Lambda task, and throttling on its own.
    let advised = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.TooManyRequestsException",
    ];
    for (name, st) in &all {
        let retriers = st["Retry"].as_array().expect("a Retry list");
        let retried: Vec<&str> = retriers
            .iter()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
            .map(|e| e.as_str().unwrap())
            .collect();
        for error in advised {
            assert!(retried.contains(&error), "{name} does not retry {error}");
        }
        let attempts: u64 = retriers
            .iter()
            .map(|r| {
                assert_eq!(r["JitterStrategy"], "FULL", "{name}");
                assert!(r["MaxDelaySeconds"].as_u64().is_some(), "{name}");
                r["MaxAttempts"].as_u64().unwrap_or(3)
            })
            .sum();
        // The history budget counts this many retries of every Task.
        assert!(
            attempts <= u64::from(MAX_TASK_RETRIES),
            "{name} may retry {attempts} times; the budget counts {MAX_TASK_RETRIES}"
        );
        // Throttling waits longer than 14 s in all before it fails a run.
        let throttled = retriers
            .iter()
            .find(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "Lambda.TooManyRequestsException")
            })
            .unwrap();
        let (mut wait, mut interval) = (0.0, throttled["IntervalSeconds"].as_f64().unwrap());
        for _ in 0..throttled["MaxAttempts"].as_u64().unwrap() {
            wait += interval.min(throttled["MaxDelaySeconds"].as_f64().unwrap());
            interval *= throttled["BackoffRate"].as_f64().unwrap();
        }
        assert!(wait >= 120.0, "{name}: throttling gets {wait} s");
    }
}
