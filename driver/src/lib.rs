//! The state machine's loop in one process (`binlog-cdc run`, and the
//! tests): the same handlers in the same order as
//! `statemachine/binlog-pipeline.asl.json`, with its Maps as bounded
//! concurrency.
//!
//! ```text
//! loop: ListBinlogs ─▶ ParseChunks ─▶ PlanFanOut ─▶ FanOutShards ─▶ JoinAllTables ─▶ CommitCheckpoint
//!       while the commit says `again`
//! ```

pub mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use binlog_cdc::contracts::{
    ChunkAck, CommitInput, CommitOutput, FanOutPlan, ListBinlogsInput, LoopState, RunInput,
    RunPlan, RunStatus, ShardAck, ShardTask, StatementCounts,
};
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// One iteration: the plan, and the commit when there was a range to read.
#[derive(Debug, Clone)]
pub struct Iteration {
    pub plan: RunPlan,
    pub commit: Option<CommitOutput>,
    /// How long each step took.
    pub steps: StepTimes,
    /// The definition's states it ran, in order.
    pub states: States,
    /// Row events by `schema.table`, and every key published (per-table
    /// objects, then the all-tables object; under `replay/{runId}/` for a
    /// replay).
    pub counts: BTreeMap<String, u64>,
    pub outputs: Vec<String>,
    /// The logged statements the run read: written by kind, and skipped.
    pub statements: StatementCounts,
}

#[derive(Debug, Clone, Default)]
pub struct StepTimes {
    pub list_binlogs: Duration,
    pub parse_chunks: Duration,
    pub fan_out: Duration,
    pub commit_checkpoint: Duration,
}

/// Runs `step` as a task of its own, as each step call is a Lambda of its
/// own on AWS: steps run on every core, not in turns on one. A task that
/// ends without an answer (a panic, or the runtime shutting down) fails the
/// run, which commits nothing and is redone.
fn spawned<T: Send + 'static>(
    what: String,
    step: impl Future<Output = Result<T>> + Send + 'static,
) -> impl Future<Output = Result<T>> {
    let task = tokio::spawn(step);
    async move {
        task.await.unwrap_or_else(|e| {
            let why = if e.is_panic() {
                "its task panicked"
            } else {
                "its task was cancelled"
            };
            Err(binlog_cdc::Error::StepLost { step: what, why })
        })
    }
}

/// Runs one iteration of the loop.
pub async fn run_iteration(
    deps: &Deps,
    input: RunInput,
    loop_state: LoopState,
) -> Result<Iteration> {
    let mut states = States::default();
    let started = Instant::now();
    let list = ListBinlogsInput {
        input,
        loop_state: loop_state.clone(),
        ..Default::default()
    };
    let plan = states
        .run("ListBinlogs", list_binlogs::handle(list, deps))
        .await?;
    let mut steps = StepTimes {
        list_binlogs: started.elapsed(),
        ..Default::default()
    };
    if plan.status != RunStatus::Run {
        return Ok(Iteration {
            plan,
            commit: None,
            steps,
            states,
            counts: BTreeMap::new(),
            outputs: Vec::new(),
            statements: StatementCounts::default(),
        });
    }
    let concurrency = plan.max_concurrency.max(1) as usize;
    let t = Instant::now();
    states
        .run("ParseChunks", parse_chunks(deps, &plan, concurrency))
        .await?;
    steps.parse_chunks = t.elapsed();
    let t = Instant::now();
    let planned = states
        .run("PlanFanOut", fan_out_by_table::plan::handle(&plan, deps))
        .await?;
    states
        .run(
            "FanOutShards",
            fan_out_shards(deps, planned.shards, concurrency),
        )
        .await?;
    states
        .run(
            "JoinAllTables",
            fan_out_by_table::join::handle(&plan.run_id, deps),
        )
        .await?;
    steps.fan_out = t.elapsed();
    // Read before the commit removes the run's staging.
    let fan: FanOutPlan =
        binlog_cdc::store::get_json(deps.store.as_ref(), &deps.layout.fan_out_plan(&plan.run_id))
            .await?;
    let t = Instant::now();
    let commit_input = CommitInput {
        plan: plan.clone(),
        loop_state,
    };
    let commit = states
        .run(
            "CommitCheckpoint",
            commit_checkpoint::handle(commit_input, deps),
        )
        .await?;
    steps.commit_checkpoint = t.elapsed();
    Ok(Iteration {
        outputs: deps
            .layout
            .publications(&fan, plan.commit)
            .into_iter()
            .map(|p| p.key)
            .collect(),
        counts: fan.counts(),
        statements: fan.statements,
        plan,
        commit: Some(commit),
        steps,
        states,
    })
}

/// The ParseChunks Map: each chunk parsed, `concurrency` at a time.
async fn parse_chunks(deps: &Deps, plan: &RunPlan, concurrency: usize) -> Result<Vec<ChunkAck>> {
    stream::iter(plan.chunks.clone())
        .map(|c| {
            let deps = deps.clone();
            spawned(format!("chunk {}", c.index), async move {
                parse_chunk::handle(c, &deps).await
            })
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// The FanOutShards Map: each shard's tables joined, `concurrency` at a time.
async fn fan_out_shards(
    deps: &Deps,
    shards: Vec<ShardTask>,
    concurrency: usize,
) -> Result<Vec<ShardAck>> {
    stream::iter(shards)
        .map(|s| {
            let deps = deps.clone();
            spawned(format!("fan-out shard {}", s.shard), async move {
                fan_out_by_table::shard::handle(&s, &deps).await
            })
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// The definition's states an iteration ran, in order, named as
/// statemachine/binlog-pipeline.asl.json names them: every handler is
/// called through [`States::run`], so the order it records is the order the
/// driver follows (`tests/tests/loop_order.rs` checks it against the
/// definition's).
#[derive(Debug, Clone, Default)]
pub struct States(pub Vec<&'static str>);

impl States {
    async fn run<T>(
        &mut self,
        state: &'static str,
        step: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.0.push(state);
        step.await
    }
}

/// Runs iterations until one is caught up (or has nothing to do); returns
/// them all. Unlike an execution, there is no history to bound it.
pub async fn run_until_caught_up(deps: &Deps, input: RunInput) -> Result<Vec<Iteration>> {
    let mut done = Vec::new();
    let mut loop_state = LoopState::default();
    loop {
        let it = run_iteration(deps, input.clone(), loop_state.clone()).await?;
        let next = it
            .commit
            .as_ref()
            .filter(|c| c.progress == binlog_cdc::contracts::Progress::Behind)
            .map(|c| c.loop_state.clone());
        done.push(it);
        match next {
            Some(l) => loop_state = l,
            None => return Ok(done),
        }
    }
}
