//! ListBinlogs: plans one run of an execution's loop. Skips when another
//! execution of the state machine is running (checked first, before any
//! database work); reads the checkpoint (`meta.json` and its ETag); decides
//! the range `[from, to)` (`to` is the server's position now, or a replay's
//! end); checks the start is still on the server and, for a committed run,
//! still in the history the checkpoint was taken in ([`history::check`]);
//! and plans chunks at
//! transaction boundaries within the run's budget (`MAX_RUN_CHUNKS`,
//! `MAX_RUN_BYTES`), each with its own replication server id. A plan cut by
//! the budget ends early and says `more`: the execution loops back here.

use aws_sdk_sfn::types::ExecutionStatus;
use binlog_cdc::config::StartAt;
use binlog_cdc::contracts::{
    BinlogHistory, Chunk, ChunkKind, Follow, KeyRange, ListBinlogsInput, LoopState, Meta,
    RestartAt, RunInput, RunPlan, RunStatus, SnapshotProgress, SnapshotState,
    IDLE_POLL_HISTORY_EVENTS,
};
use binlog_cdc::decoder::column_rules::ColumnRules;
use binlog_cdc::decoder::source::connect::ConnectOptions;
use binlog_cdc::decoder::source::server;
use binlog_cdc::decoder::Error as DecoderError;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::layout::run_id;
use binlog_cdc::metrics::{self, Headroom, Metric};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::plan::{bytes_between, plan_chunks, Budget, Planned};
use binlog_cdc::snapshot_plan::{self, Wanted};
use binlog_cdc::{checkpoint, history, BinlogPosition};

/// Plans the run, and stores in its staging what its snapshot ranges need.
pub async fn handle(input: ListBinlogsInput, deps: &Deps) -> Result<RunPlan> {
    let (plan, staged) = plan(input, deps).await?;
    for (key, body) in &staged {
        binlog_cdc::store::put_json(deps.store.as_ref(), key, body).await?;
    }
    Ok(plan)
}

/// Objects a plan needs in its run's staging: key and JSON body.
pub type Staged = Vec<(String, serde_json::Value)>;

/// The run's plan, and what [`handle`] stores for it (`binlog-cdc status`
/// plans without storing anything).
pub async fn plan(input: ListBinlogsInput, deps: &Deps) -> Result<(RunPlan, Staged)> {
    check_follow(&input.input)?;
    let stored = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
    let mut plan = skipped(&stored, &input, deps);
    // Only an execution's first iteration can overlap another execution.
    if input.loop_state.iteration == 0 {
        if let Some(reason) = other_execution_running(&input, deps).await? {
            plan.reason = Some(reason);
            return Ok((plan, Staged::new()));
        }
    }

    let mut conn = deps.connect().await?;
    // Every run: a setting changed since init-db would otherwise lose rows.
    server::preflight(&mut conn).await?;
    let files = server::list_binlogs(&mut conn).await?;
    let current = server::current_position(&mut conn).await?;

    let base = deps.config.server_id_base;
    let db = deps.db();
    // A restart starts the stream over on purpose, in the execution's first
    // run only: the old history is not checked (the position may even look
    // the same on another server).
    let restarting = input.input.restart_at.is_some() && input.loop_state.iteration == 0;
    let input = resolve_gtid_restart(input, restarting, &db, base).await?;
    let (from, commit) = start_of_run(&input, plan.from.as_ref(), &files, &current, deps)?;
    if let Some((meta, _)) = stored.as_ref().filter(|_| commit && !restarting) {
        if let (Some(recorded), true) = (&meta.history, meta.position.position == from) {
            history::check(&mut conn, &db, &files, &meta.position, recorded, base).await?;
        }
    }
    let recorded = stored.as_ref().and_then(|(m, _)| m.history.as_ref());
    measure(&mut conn, &files, &from, &current, recorded, &mut plan).await;
    let end = input.input.to.clone().unwrap_or(current);
    check_range(&files, &from, &end)?;
    plan.commit = commit;
    plan.from = Some(from.clone());
    let stored_meta = stored.as_ref().map(|(m, _)| m);
    let snapshot = plan_snapshot(&db, &input, stored_meta, commit, deps).await?;
    if from == end && snapshot.is_none() {
        let _ = conn.disconnect().await;
        plan.status = RunStatus::Nothing;
        plan.to = Some(end);
        plan.reason = Some(format!(
            "the run would start at its end {from}: nothing to read"
        ));
        plan.loop_state = caught_up_loop(&input, deps);
        return Ok((plan, Staged::new()));
    }
    let planned = plan_chunks(&db, &files, &from, &end, budget(deps), base).await?;
    let to = planned.end().cloned().unwrap_or(end);
    plan.to_gtid = history::gtid_at(&mut conn, &to).await;
    if commit {
        plan.to_history = Some(history::mark(&mut conn, &db, to.file(), base).await?);
    }
    let _ = conn.disconnect().await;
    fill_run(&mut plan, planned, to, deps);
    let staged = match snapshot {
        Some(s) => add_snapshot(&mut plan, s, deps)?,
        None => Staged::new(),
    };
    tracing::info!(run_id = %plan.run_id, from = %from, to = ?plan.to, chunks = plan.chunks.len(),
        more = plan.more, commit, iteration = input.loop_state.iteration, "planned");
    Ok((plan, staged))
}

/// The plan before anything is read: from and to at the checkpoint,
/// skipped unless the run goes on.
fn skipped(stored: &Option<(Meta, String)>, input: &ListBinlogsInput, deps: &Deps) -> RunPlan {
    let checkpoint = stored.as_ref().map(|(m, _)| m.position.position.clone());
    RunPlan {
        status: RunStatus::Skipped,
        run_id: String::new(),
        from: checkpoint.clone(),
        to: checkpoint,
        more: false,
        commit: false,
        meta_etag: stored.as_ref().map(|(_, e)| e.clone()),
        to_gtid: None,
        to_history: None,
        planned_at_ms: None,
        behind_bytes: None,
        retention_headroom: None,
        chunks: Vec::new(),
        max_concurrency: deps.config.max_concurrency,
        reason: None,
        execution: input.execution_arn.clone(),
        snapshot: None,
        follow: input.input.follow,
        loop_state: None,
    }
}

/// `follow` is for the committed stream, with a poll of 1 to 300 seconds.
fn check_follow(input: &RunInput) -> Result<()> {
    let Some(f) = input.follow else {
        return Ok(());
    };
    if input.from.is_some() || input.to.is_some() || input.commit == Some(false) {
        return Err(Error::Config(
            "follow keeps the committed stream fresh: it takes no from, to or commit".into(),
        ));
    }
    if !(1..=Follow::MAX_POLL_SECONDS).contains(&f.poll_seconds) {
        return Err(Error::Config(format!(
            "follow.pollSeconds is {}: it must be 1 to {}",
            f.poll_seconds,
            Follow::MAX_POLL_SECONDS
        )));
    }
    Ok(())
}

/// Under `follow`, a caught-up plan's next loop: poll again after this
/// idle iteration, or hand over when the history has no room left.
fn caught_up_loop(input: &ListBinlogsInput, deps: &Deps) -> Option<LoopState> {
    let follow = input.input.follow?;
    let current = &input.loop_state;
    let spent = current.history_events + IDLE_POLL_HISTORY_EVENTS;
    Some(LoopState {
        iteration: current.iteration + 1,
        history_events: spent,
        resume_from: None,
        again: false,
        then: LoopState::follow_on(
            Some(follow),
            false,
            spent,
            deps.config.worst_iteration_history_events(),
            deps.config.history_budget,
        ),
    })
}

/// A run's share of a snapshot: its ranges, the progress once done, and
/// the snapshot's state when this run starts it.
struct SnapshotShare {
    ranges: Vec<KeyRange>,
    progress: SnapshotProgress,
    started: Option<SnapshotState>,
}

/// The snapshot ranges this run reads, if a snapshot is requested (first
/// iteration), configured for a first run, or in progress.
async fn plan_snapshot(
    db: &ConnectOptions,
    input: &ListBinlogsInput,
    meta: Option<&Meta>,
    commit: bool,
    deps: &Deps,
) -> Result<Option<SnapshotShare>> {
    let requested = input
        .input
        .snapshot
        .as_deref()
        .filter(|_| input.loop_state.iteration == 0);
    if requested.is_some_and(|p| !p.is_empty()) && !commit {
        return Err(Error::Config(
            "a snapshot is part of the committed stream: it cannot be replayed (commit: false)"
                .into(),
        ));
    }
    if !commit {
        return Ok(None);
    }
    let cfg = &deps.config;
    let Some(wanted) = snapshot_plan::wanted(requested, meta, &cfg.snapshot_tables) else {
        return Ok(None);
    };
    // Key bounds are read in a session like the ranges' own (UTC).
    let mut conn = binlog_cdc::decoder::snapshot::listing::connect(db, false).await?;
    let started = match &wanted {
        Wanted::New(patterns) => {
            let id = format!("s{}", metrics::now_ms());
            let stream = cfg.table_filter()?;
            let state = snapshot_plan::start(&mut conn, patterns, &stream, &id).await?;
            tracing::info!(snapshot = %id, tables = state.progress.tables, "snapshot started");
            Some(state)
        }
        Wanted::Going(_) => None,
    };
    let state = match (&wanted, &started) {
        (Wanted::Going(s), _) => *s,
        (_, Some(s)) => s,
        (Wanted::New(_), None) => return Ok(None),
    };
    let rules = ColumnRules::for_planning(&cfg.column_rules).map_err(Error::Config)?;
    let (ranges, progress) = snapshot_plan::next_ranges(
        &mut conn,
        state,
        &rules,
        cfg.snapshot_range_rows,
        cfg.snapshot_ranges_per_run,
    )
    .await?;
    let _ = conn.disconnect().await;
    Ok(Some(SnapshotShare {
        ranges,
        progress,
        started,
    }))
}

/// Adds the snapshot's ranges to the run as chunks after its binlog chunks,
/// and the progress the run commits; returns the ranges' plans (and a new
/// snapshot's tables) for the run's staging.
fn add_snapshot(plan: &mut RunPlan, share: SnapshotShare, deps: &Deps) -> Result<Staged> {
    plan.run_id = binlog_cdc::layout::snapshot_run_id(&plan.run_id, &share.progress);
    let mut staged = Staged::new();
    if let Some(state) = &share.started {
        staged.push((deps.layout.snapshot_tables(&plan.run_id), json(state)?));
    }
    let (from, to) = plan.range()?;
    let (from, to) = (from.clone(), to.clone());
    for c in plan.chunks.iter_mut() {
        c.run_id = plan.run_id.clone();
    }
    let base = deps.config.server_id_base;
    for range in share.ranges {
        let index = plan.chunks.len() as u32;
        staged.push((
            deps.layout.snapshot_range(&plan.run_id, index),
            json(&range)?,
        ));
        plan.chunks.push(Chunk {
            run_id: plan.run_id.clone(),
            index,
            from: from.clone(),
            to: to.clone(),
            server_id: base.wrapping_add(1 + index),
            kind: ChunkKind::Snapshot,
            run_from: None,
        });
    }
    plan.status = RunStatus::Run;
    plan.more |= !share.progress.done();
    plan.snapshot = Some(share.progress);
    Ok(staged)
}

/// A staged object's body.
fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::encode("a snapshot plan", e))
}

/// A `restartAt` GTID state becomes the position after it (MariaDB), in the
/// execution's first run.
async fn resolve_gtid_restart(
    mut input: ListBinlogsInput,
    restarting: bool,
    db: &ConnectOptions,
    base: u32,
) -> Result<ListBinlogsInput> {
    if let (Some(RestartAt::AfterGtid(state)), true) = (&input.input.restart_at, restarting) {
        let at = server::position_after_gtid_state(db, state, base).await?;
        tracing::info!(gtid = %state, position = %at, "the GTID state ends here");
        input.input.restart_at = Some(RestartAt::At(at));
    }
    Ok(input)
}

fn budget(deps: &Deps) -> Budget {
    Budget {
        chunk_bytes: deps.config.chunk_bytes,
        max_chunks: deps.config.max_run_chunks,
        max_bytes: deps.config.max_run_bytes,
    }
}

/// The run's id, chunks (each with its replication server id) and end.
fn fill_run(plan: &mut RunPlan, planned: Planned, to: BinlogPosition, deps: &Deps) {
    let from = plan.from.clone().unwrap_or_else(|| to.clone());
    let rid = run_id(&from, &to, &deps.config);
    let base = deps.config.server_id_base;
    plan.status = RunStatus::Run;
    plan.more = planned.more;
    plan.chunks = planned
        .chunks
        .into_iter()
        .enumerate()
        .map(|(i, r)| Chunk {
            run_id: rid.clone(),
            index: i as u32,
            // Its statements apply to what the run's earlier ones left.
            run_from: (r.from != from).then(|| from.clone()),
            from: r.from,
            to: r.to,
            server_id: base.wrapping_add(1 + i as u32),
            kind: ChunkKind::Binlog,
        })
        .collect();
    plan.run_id = rid;
    plan.to = Some(to);
}

/// How far behind the stream is (bytes from the run's start to the server's
/// position) and how long until the server's retention purges the
/// checkpoint's file (its first event's age against the retention): kept in
/// the plan and emitted as metrics (see `binlog_cdc::metrics`).
async fn measure(
    conn: &mut mysql_async::Conn,
    files: &[(String, u64)],
    from: &BinlogPosition,
    current: &BinlogPosition,
    recorded: Option<&BinlogHistory>,
    plan: &mut RunPlan,
) {
    let now = metrics::now_ms();
    plan.planned_at_ms = Some(now);
    let behind = bytes_between(files, from, current);
    plan.behind_bytes = Some(behind);
    let mut figures = vec![Metric::new("BytesBehind", "Bytes", behind as f64)];
    if let Some(h) = recorded.filter(|h| h.file == from.file()) {
        if let Some(retention) = server::binlog_retention_seconds(conn).await {
            let age = (now / 1000).saturating_sub(h.file_created as u64);
            let headroom = Headroom::new(retention, age);
            figures.push(Metric::new(
                "RetentionHeadroomSeconds",
                "Seconds",
                headroom.seconds as f64,
            ));
            figures.push(Metric::new(
                "RetentionHeadroomPercent",
                "Percent",
                headroom.percent,
            ));
            plan.retention_headroom = Some(headroom);
        }
    }
    metrics::emit(&figures);
}

/// Where the run starts, and whether it commits: a replay (`from` or `to`
/// given) commits only when asked; its later iterations resume where the
/// last ended. A committed run starts at the checkpoint; the first at the
/// oldest binlog (or the current position, `START_AT=latest`).
fn start_of_run(
    input: &ListBinlogsInput,
    checkpoint: Option<&BinlogPosition>,
    files: &[(String, u64)],
    current: &BinlogPosition,
    deps: &Deps,
) -> Result<(BinlogPosition, bool)> {
    let replay = input.input.from.is_some() || input.input.to.is_some();
    // A restart applies to the execution's first run only: the later ones
    // go on from the checkpoint it committed.
    if let Some(restart) = input.input.restart_at.as_ref() {
        if replay || input.input.commit == Some(false) {
            return Err(Error::Config(
                "restartAt restarts the committed stream: it takes no from, to or commit".into(),
            ));
        }
        if input.loop_state.iteration == 0 {
            let from = match restart {
                RestartAt::Oldest => first_position(StartAt::Oldest, files, current)?,
                RestartAt::Latest => current.clone(),
                RestartAt::At(p) => p.clone(),
                RestartAt::AfterGtid(state) => {
                    return Err(Error::Config(format!(
                        "restartAt gtid:{state} was not resolved to a position"
                    )))
                }
            };
            tracing::warn!(from = %from, checkpoint = ?checkpoint, "the stream restarts (restartAt)");
            return Ok((from, true));
        }
    }
    let commit = input.input.commit.unwrap_or(!replay);
    let requested = match (&input.loop_state.resume_from, &input.input.from) {
        (Some(r), _) if !commit => Some(r.clone()),
        (_, f) => f.clone(),
    };
    let from = match (requested, checkpoint) {
        (Some(f), _) => f,
        (None, Some(c)) => c.clone(),
        (None, None) => first_position(deps.config.start_at, files, current)?,
    };
    if let Some(c) = checkpoint.filter(|c| commit && **c != from) {
        return Err(Error::Config(format!(
            "a committed run must start at the checkpoint {c}; to read {from} again use \"commit\": false"
        )));
    }
    Ok((from, commit))
}

/// Where a stream without a checkpoint starts: the oldest binlog, or the
/// server's current position.
fn first_position(
    start: StartAt,
    files: &[(String, u64)],
    current: &BinlogPosition,
) -> Result<BinlogPosition> {
    match start {
        StartAt::Latest => Ok(current.clone()),
        StartAt::Oldest => {
            let (first, _) = files.first().ok_or_else(|| {
                Error::Config("the server lists no binary logs (is log_bin on?)".into())
            })?;
            Ok(BinlogPosition::start_of(first.clone()))
        }
    }
}

/// The start must still be on the server (else the events between it and
/// the oldest file are gone), and the end must not be before it.
fn check_range(files: &[(String, u64)], from: &BinlogPosition, to: &BinlogPosition) -> Result<()> {
    if !files.iter().any(|(f, _)| f == from.file()) {
        return Err(DecoderError::BinlogPurged {
            file: from.file().to_string(),
            msg: format!(
                "the run would start at {from}, but the server no longer has that file (binlog retention too short?); \
                 events between it and the oldest file {} are lost to this pipeline",
                files.first().map(|f| f.0.as_str()).unwrap_or("(none)")
            ),
        }
        .into());
    }
    if to < from {
        return Err(Error::Config(format!(
            "the end {to} is before the start {from}"
        )));
    }
    Ok(())
}

/// Another RUNNING execution of this state machine that started before this
/// one (ties broken by ARN) means this one skips; the one that handed over
/// to it (`handedOverBy`), which is ending, does not count.
async fn other_execution_running(input: &ListBinlogsInput, deps: &Deps) -> Result<Option<String>> {
    let (Some(sfn), Some(machine), Some(me)) =
        (&deps.sfn, &input.state_machine_arn, &input.execution_arn)
    else {
        return Ok(None);
    };
    let mut running = Vec::new();
    let mut token = None;
    loop {
        let out = sfn
            .list_executions()
            .state_machine_arn(machine)
            .status_filter(ExecutionStatus::Running)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| binlog_cdc::aws::sdk_error(format!("ListExecutions on {machine}"), e))?;
        for ex in out.executions() {
            running.push((
                ex.start_date().secs(),
                ex.start_date().subsec_nanos(),
                ex.execution_arn().to_string(),
            ));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    // The execution that handed over to this one is ending: not an overlap.
    let predecessor = input.input.handed_over_by.as_ref();
    running.retain(|r| Some(&r.2) != predecessor);
    let mine = running.iter().find(|r| &r.2 == me).cloned();
    let earlier = running.iter().filter(|r| &r.2 != me).find(|r| {
        mine.as_ref()
            .is_none_or(|m| (r.0, r.1, &r.2) < (m.0, m.1, &m.2))
    });
    Ok(earlier.map(|r| format!("execution {} is already running", r.2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_is_for_the_committed_stream_with_a_bounded_poll() {
        let follow = |poll_seconds| Some(Follow { poll_seconds });
        let ok = RunInput {
            follow: follow(5),
            ..Default::default()
        };
        assert!(check_follow(&ok).is_ok());
        assert!(check_follow(&RunInput::default()).is_ok());
        for bad in [
            RunInput {
                follow: follow(0),
                ..Default::default()
            },
            RunInput {
                follow: follow(301),
                ..Default::default()
            },
            RunInput {
                commit: Some(false),
                ..ok.clone()
            },
            RunInput {
                to: Some("binlog.000002:4".parse().unwrap()),
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(check_follow(&bad), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }
}
