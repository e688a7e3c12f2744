//! CommitCheckpoint: writes `meta.json` last, with `If-Match` on the ETag
//! ListBinlogs read (`If-None-Match: *` on a first run), so a run commits all
//! or nothing and of two runs only one commits. Then removes the run's
//! staging objects. A replay (`commit: false`) moves nothing.
//!
//! Retried after its own commit (the write landed but the answer was lost: a
//! Lambda service error, a Step Functions timeout, a redrive), it finds
//! `meta.json` already naming this run and this execution, and succeeds
//! without writing again: exactly once, and the execution does not fail.
//! Any other change to `meta.json` is `ConcurrentRun`.

use binlog_cdc::checkpoint;
use binlog_cdc::contracts::{Checkpoint, CommitInput, CommitOutput, Meta};
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;

pub async fn handle(input: CommitInput, deps: &Deps) -> Result<CommitOutput> {
    let plan = &input.plan;
    let mut out = CommitOutput {
        committed: false,
        run_id: plan.run_id.clone(),
        position: plan.to.clone(),
        meta_etag: None,
    };
    if plan.commit {
        let previous = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
        let meta = Meta {
            timestamp: input
                .fan_out
                .timestamp
                .or(previous.as_ref().and_then(|(m, _)| m.timestamp)),
            last_timestamps: input.fan_out.last_timestamps.clone(),
            counts: input.fan_out.counts.clone(),
            position: Checkpoint {
                file: plan.to.file().to_string(),
                pos: plan.to.pos(),
                position: plan.to.clone(),
                gtid: plan.to_gtid.clone(),
            },
            run_id: plan.run_id.clone(),
            outputs: input.fan_out.outputs.clone(),
            committed_at: checkpoint::now_rfc3339(),
            execution: plan.execution.clone(),
        };
        let etag = match checkpoint::commit(
            deps.store.as_ref(),
            &deps.layout,
            &meta,
            plan.meta_etag.as_deref(),
        )
        .await
        {
            Ok(etag) => {
                tracing::info!(run_id = %plan.run_id, position = %plan.to, "checkpoint committed");
                etag
            }
            Err(Error::ConcurrentRun(msg)) => {
                let Some(etag) = own_earlier_commit(input.plan.clone(), deps).await? else {
                    return Err(Error::ConcurrentRun(msg));
                };
                tracing::info!(run_id = %plan.run_id, position = %plan.to,
                    "checkpoint already committed by this execution (a retry)");
                etag
            }
            Err(e) => return Err(e),
        };
        out.committed = true;
        out.meta_etag = Some(etag);
    }
    // Staging is only scratch; if removing it fails the run still stands (the
    // bucket's lifecycle rule expires staging after a day).
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

/// The ETag of `meta.json` when it is this plan's own commit: the same run
/// (range and configuration) committed by the same execution.
async fn own_earlier_commit(
    plan: binlog_cdc::contracts::RunPlan,
    deps: &Deps,
) -> Result<Option<String>> {
    let Some(execution) = plan.execution else {
        return Ok(None);
    };
    Ok(
        match checkpoint::read(deps.store.as_ref(), &deps.layout).await? {
            Some((m, etag))
                if m.run_id == plan.run_id
                    && m.position.position == plan.to
                    && m.execution.as_deref() == Some(execution.as_str()) =>
            {
                Some(etag)
            }
            _ => None,
        },
    )
}
