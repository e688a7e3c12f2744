//! CommitCheckpoint: writes `meta.json`, with `If-Match` on the ETag
//! ListBinlogs read (`If-None-Match: *` on a first run), so a run commits all
//! or nothing and of two runs only one commits. Then publishes the run's
//! objects from its staging to their keys ([`publish`]) and removes the
//! staging. A replay (`commit: false`) moves nothing and publishes under
//! `replay/{runId}/`.
//!
//! ```text
//! finish the last committed run's publication (if it stopped part-way)
//!   ─▶ meta.json (conditional) ─▶ publish ─▶ Glue tables ─▶ RunCommitted
//!   ─▶ remove staging
//! ```
//!
//! Retried after its own commit (the write landed but the answer was lost: a
//! Lambda service error, a Step Functions timeout, a redrive), it finds
//! `meta.json` already naming this run and this execution, and succeeds
//! without writing again: exactly once, and the execution does not fail.
//! Any other change to `meta.json` is `ConcurrentRun`.
//!
//! What it commits (counts, last timestamps, the keys written) comes from
//! the run's fan-out plan in staging, not from the state. It also says
//! whether the execution goes round again ([`LoopState::again`]): the run
//! stopped at its budget, and the execution's history has room.

use binlog_cdc::checkpoint;
use binlog_cdc::contracts::{
    iteration_history_events, Checkpoint, CommitInput, CommitOutput, FanOutPlan, LoopState, Meta,
    Progress, RunPlan, SnapshotState, MAX_FANOUT_SHARDS,
};
use binlog_cdc::decoder::gtid::GtidSet;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::metrics::{self, Metric};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{find_json, get_json};

pub mod publish;
pub mod tables;

pub async fn handle(input: CommitInput, deps: &Deps) -> Result<CommitOutput> {
    let plan = &input.plan;
    let (_, to) = plan.range()?;
    let key = deps.layout.fan_out_plan(&plan.run_id);
    let fan: Option<FanOutPlan> = find_json(deps.store.as_ref(), &key).await?;
    let mut out = CommitOutput {
        committed: false,
        run_id: plan.run_id.clone(),
        position: to.clone(),
        meta_etag: None,
        progress: if plan.more {
            Progress::Behind
        } else {
            Progress::CaughtUp
        },
        lag_seconds: None,
        loop_state: next_loop(
            &input.loop_state,
            plan,
            fan.as_ref().map_or(MAX_FANOUT_SHARDS, |f| f.shards),
            deps,
        ),
    };
    match (&fan, plan.commit) {
        (Some(fan), true) => {
            let (meta, etag) = commit(plan, fan, deps).await?;
            publish::publish(fan, true, deps).await?;
            tables::follow(fan, deps).await?;
            publish::announce(&meta, fan, deps).await?;
            out.meta_etag = Some(etag);
        }
        // Staging is gone: this execution committed (and published) already
        // and the answer was lost (a retry or a redrive), another execution
        // of the same range committed it, or the run is broken.
        (None, true) => match own_earlier_commit(plan, deps).await? {
            Some((_, etag)) => out.meta_etag = Some(etag),
            None => return Err(without_plan(plan, &key, deps).await?),
        },
        (Some(fan), false) => {
            publish::publish(fan, false, deps).await?;
        }
        (None, false) => {}
    }
    if plan.commit {
        out.committed = true;
        out.lag_seconds = report(plan, fan.as_ref());
    }
    // Staging is only scratch once published; if removing it fails the run
    // still stands (the bucket's lifecycle rule expires staging).
    match deps
        .store
        .delete_prefix(&deps.layout.staging_run(&plan.run_id))
        .await
    {
        Ok(n) => tracing::info!(run_id = %plan.run_id, objects = n, "staging removed"),
        Err(e) => tracing::warn!(run_id = %plan.run_id, error = %e, "staging not removed"),
    }
    Ok(out)
}

/// Emits the committed run's metrics (see `binlog_cdc::metrics`); returns
/// its lag.
fn report(plan: &RunPlan, fan: Option<&FanOutPlan>) -> Option<u64> {
    let now = metrics::now_ms();
    let lag = fan
        .and_then(|f| f.timestamp)
        .map(|t| (now / 1000).saturating_sub(t as u64));
    let mut figures = Vec::new();
    if let Some(f) = fan {
        let events: u64 = f.tables.iter().map(|t| t.count).sum();
        figures.push(Metric::new("RowEvents", "Count", events as f64));
        figures.push(Metric::new("BinlogBytesRead", "Bytes", f.bytes_read as f64));
    }
    if let Some(at) = plan.planned_at_ms {
        let secs = now.saturating_sub(at) as f64 / 1000.0;
        figures.push(Metric::new("RunDurationSeconds", "Seconds", secs));
    }
    if let Some(lag) = lag {
        figures.push(Metric::new("LagSeconds", "Seconds", lag as f64));
    }
    metrics::emit(&figures);
    lag
}

/// The error for a commit whose fan-out plan is gone and that is not this
/// execution's own: `ConcurrentRun` when the checkpoint moved since planning
/// (another execution committed, and removed the shared staging), else the
/// missing plan.
async fn without_plan(plan: &RunPlan, key: &str, deps: &Deps) -> Result<Error> {
    let now = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
    if now.map(|(_, etag)| etag) != plan.meta_etag {
        return Ok(Error::ConcurrentRun(format!(
            "{} changed since run {} read it: another run committed first; this run commits nothing",
            deps.layout.meta(),
            plan.run_id
        )));
    }
    Ok(Error::storage(
        key.to_string(),
        "the run's fan-out plan is missing (fan-out did not finish, or staging was removed)",
        false,
    ))
}

/// Writes `meta.json` for the run (or finds this execution's own earlier
/// commit of it); returns it with its ETag.
async fn commit(plan: &RunPlan, fan: &FanOutPlan, deps: &Deps) -> Result<(Meta, String)> {
    let (_, to) = plan.range()?;
    let previous = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
    // The run before may have committed and stopped before publishing all of
    // its objects; they go out before this run's.
    if let Some((m, _)) = previous.as_ref().filter(|(m, _)| m.run_id != plan.run_id) {
        publish::finish_committed(m, deps).await?;
    }
    let snapshot = snapshot_state(plan, previous.as_ref().map(|(m, _)| m), deps).await?;
    let meta = Meta {
        snapshot,
        from: plan.from.clone(),
        timestamp: fan
            .timestamp
            .or(previous.as_ref().and_then(|(m, _)| m.timestamp)),
        last_timestamps: fan
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.last_timestamp))
            .collect(),
        counts: fan.counts(),
        position: Checkpoint {
            file: to.file().to_string(),
            pos: to.pos(),
            position: to.clone(),
            gtid: checkpoint_gtid(plan, fan, previous.as_ref().map(|(m, _)| m)),
        },
        run_id: plan.run_id.clone(),
        outputs: deps.layout.run_outputs(fan),
        committed_at: binlog_cdc::clock::now_rfc3339(),
        execution: plan.execution.clone(),
        history: plan.to_history.clone(),
    };
    match checkpoint::commit(
        deps.store.as_ref(),
        &deps.layout,
        &meta,
        plan.meta_etag.as_deref(),
    )
    .await
    {
        Ok(etag) => {
            tracing::info!(run_id = %plan.run_id, position = %to, "checkpoint committed");
            Ok((meta, etag))
        }
        Err(Error::ConcurrentRun(msg)) => {
            let Some(earlier) = own_earlier_commit(plan, deps).await? else {
                return Err(Error::ConcurrentRun(msg));
            };
            tracing::info!(run_id = %plan.run_id, position = %to,
                "checkpoint already committed by this execution (a retry)");
            Ok(earlier)
        }
        Err(e) => Err(e),
    }
}

/// The GTID position at the checkpoint: MariaDB's GTID state at `to` (from
/// the plan); MySQL's executed GTID set there, folded from the GTIDs the
/// run's chunks read onto the last checkpoint's set (when this run starts at
/// it) or onto the PREVIOUS_GTIDS of the last file the run read from its
/// start. Unknown (`None`) until a run starts a file or follows a known set.
fn checkpoint_gtid(plan: &RunPlan, fan: &FanOutPlan, previous: Option<&Meta>) -> Option<String> {
    if plan.to_gtid.is_some() {
        return plan.to_gtid.clone();
    }
    let at_start = previous
        .filter(|m| Some(&m.position.position) == plan.from.as_ref())
        .and_then(|m| m.position.gtid.as_deref())
        .and_then(|g| g.parse::<GtidSet>().ok());
    let executed = match &fan.gtids {
        Some(trail) => trail.executed(at_start.as_ref()),
        None => at_start,
    };
    executed.filter(|s| !s.is_empty()).map(|s| s.to_string())
}

/// The snapshot once this run commits: the plan's progress with the
/// snapshot's tables (from the last `meta.json`, or from staging when this
/// run started it); without snapshot ranges, the last one unchanged.
async fn snapshot_state(
    plan: &RunPlan,
    previous: Option<&Meta>,
    deps: &Deps,
) -> Result<Option<SnapshotState>> {
    let before = previous.and_then(|m| m.snapshot.clone());
    let Some(progress) = plan.snapshot.clone() else {
        return Ok(before);
    };
    let table_names = match before {
        Some(s) if s.progress.id == progress.id => s.table_names,
        _ => {
            let key = deps.layout.snapshot_tables(&plan.run_id);
            get_json::<SnapshotState>(deps.store.as_ref(), &key)
                .await?
                .table_names
        }
    };
    Ok(Some(SnapshotState {
        progress,
        table_names,
    }))
}

/// The loop after this run: go round again when the run stopped at its
/// budget and the execution's history has room for a whole further
/// iteration at the largest size the settings allow. Under `follow`, an
/// execution that is not going round polls again or hands over
/// ([`LoopState::follow_on`]).
fn next_loop(current: &LoopState, plan: &RunPlan, shards: u32, deps: &Deps) -> LoopState {
    let spent = current.history_events + iteration_history_events(plan.chunks.len() as u32, shards);
    let worst_next = deps.config.worst_iteration_history_events();
    let budget = deps.config.history_budget;
    let again = plan.more && spent + worst_next <= budget;
    LoopState {
        iteration: current.iteration + 1,
        history_events: spent,
        resume_from: plan.to.clone(),
        again,
        then: LoopState::follow_on(plan.follow, again, spent, worst_next, budget),
    }
}

/// `meta.json` and its ETag when it is this plan's own commit: the same run
/// (range and configuration) committed by the same execution.
async fn own_earlier_commit(plan: &RunPlan, deps: &Deps) -> Result<Option<(Meta, String)>> {
    let Some(execution) = &plan.execution else {
        return Ok(None);
    };
    Ok(
        match checkpoint::read(deps.store.as_ref(), &deps.layout).await? {
            Some((m, etag))
                if m.run_id == plan.run_id
                    && Some(&m.position.position) == plan.to.as_ref()
                    && m.execution.as_deref() == Some(execution.as_str()) =>
            {
                Some((m, etag))
            }
            _ => None,
        },
    )
}

#[cfg(test)]
mod tests {
    use binlog_cdc::decoder::gtid::GtidTrail;
    use serde_json::json;

    use super::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    fn plan(from: &str, to_gtid: Option<&str>) -> RunPlan {
        serde_json::from_value(json!({
            "status": "run", "runId": "r2", "from": from, "to": "binlog.000002:900",
            "commit": true, "chunks": [], "maxConcurrency": 1, "toGtid": to_gtid,
        }))
        .unwrap()
    }

    fn previous(position: &str, gtid: &str) -> Meta {
        let (file, pos) = position.split_once(':').unwrap();
        serde_json::from_value(json!({
            "lastTimestamps": {}, "counts": {}, "runId": "r1", "outputs": [],
            "committedAt": "2026-12-03T00:00:00Z",
            "position": {"file": file, "pos": pos.parse::<u64>().unwrap(), "position": position, "gtid": gtid},
        }))
        .unwrap()
    }

    fn fan(start: Option<&str>, txns: &str) -> FanOutPlan {
        FanOutPlan {
            gtids: Some(GtidTrail {
                file_start: start.map(|s| s.parse().unwrap()),
                transactions: txns.parse().unwrap(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn mysqls_set_at_the_checkpoint_folds_the_runs_gtids_onto_the_last_one() {
        let last = previous("binlog.000002:500", &format!("{U}:1-10"));
        let mid = fan(None, &format!("{U}:11-12"));
        let got = |p: &RunPlan, f: &FanOutPlan, m: Option<&Meta>| checkpoint_gtid(p, f, m);
        // The run starts at the last checkpoint: its set, and the run's.
        let next = plan("binlog.000002:500", None);
        assert_eq!(got(&next, &mid, Some(&last)), Some(format!("{U}:1-12")));
        // No GTIDs read: the last set holds.
        let idle = FanOutPlan::default();
        assert_eq!(got(&next, &idle, Some(&last)), Some(format!("{U}:1-10")));
        // A run restarted elsewhere does not take the last checkpoint's set…
        let elsewhere = plan("binlog.000001:4", None);
        assert_eq!(got(&elsewhere, &mid, Some(&last)), None);
        // …but a file it read from its start gives the set there.
        let started = fan(Some(&format!("{U}:1-20")), &format!("{U}:21"));
        assert_eq!(
            got(&elsewhere, &started, Some(&last)),
            Some(format!("{U}:1-21"))
        );
        // MariaDB: the GTID state the plan read at `to`.
        let maria = plan("binlog.000002:500", Some("0-1-7"));
        assert_eq!(got(&maria, &idle, Some(&last)), Some("0-1-7".into()));
        // gtid_mode=OFF: every file's PREVIOUS_GTIDS is empty, and so is the set.
        assert_eq!(got(&elsewhere, &fan(Some(""), ""), None), None);
    }
}
