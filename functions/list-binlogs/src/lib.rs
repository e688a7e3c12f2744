//! ListBinlogs: plans a run. Reads the checkpoint (`meta.json` and its ETag),
//! decides the range `[from, to)` (`to` is the server's position now), checks
//! the start is still on the server, skips when another execution of the
//! state machine is running, and cuts the range into chunks at transaction
//! boundaries, each with its own replication server id.

use aws_sdk_sfn::types::ExecutionStatus;
use binlog_cdc::config::StartAt;
use binlog_cdc::contracts::{Chunk, ListBinlogsInput, RunPlan, RunStatus};
use binlog_cdc::error::{Error, Result};
use binlog_cdc::layout::run_id;
use binlog_cdc::pipeline::Deps;
use binlog_cdc::plan::plan_chunks;
use binlog_cdc::source::server;
use binlog_cdc::{checkpoint, BinlogPosition};
use mysql_async::prelude::Queryable;

pub async fn handle(input: ListBinlogsInput, deps: &Deps) -> Result<RunPlan> {
    let stored = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
    let meta_etag = stored.as_ref().map(|(_, e)| e.clone());
    let checkpoint = stored.as_ref().map(|(m, _)| m.position.position.clone());

    let mut conn = deps.connect().await?;
    // Every run: a setting changed since init-db would otherwise lose rows.
    server::preflight(&mut conn).await?;
    let files = server::list_binlogs(&mut conn).await?;
    let current = server::current_position(&mut conn).await?;

    let replay = input.input.from.is_some() || input.input.to.is_some();
    let commit = input.input.commit.unwrap_or(!replay);
    let from = match (&input.input.from, &checkpoint) {
        (Some(f), _) => f.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => match deps.config.start_at {
            StartAt::Latest => current.clone(),
            StartAt::Oldest => {
                let (first, _) = files.first().ok_or_else(|| {
                    Error::Config("the server lists no binary logs (is log_bin on?)".into())
                })?;
                BinlogPosition::start_of(first.clone())
            }
        },
    };
    if commit && checkpoint.as_ref().is_some_and(|c| *c != from) {
        return Err(Error::Config(format!(
            "a committed run must start at the checkpoint {}; to read {from} again use \"commit\": false",
            checkpoint.as_ref().map(|c| c.to_string()).unwrap_or_default()
        )));
    }
    let to = input.input.to.clone().unwrap_or(current);
    if !files.iter().any(|(f, _)| f == from.file()) {
        return Err(Error::BinlogPurged {
            file: from.file().to_string(),
            msg: format!(
                "the run would start at {from}, but the server no longer has that file (binlog retention too short?); \
                 events between it and the oldest file {} are lost to this pipeline",
                files.first().map(|f| f.0.as_str()).unwrap_or("(none)")
            ),
        });
    }
    if to < from {
        return Err(Error::Config(format!(
            "the end {to} is before the start {from}"
        )));
    }
    let rid = run_id(&from, &to, &deps.config);
    let mut plan = RunPlan {
        status: RunStatus::Run,
        run_id: rid.clone(),
        from: from.clone(),
        to: to.clone(),
        commit,
        meta_etag,
        to_gtid: gtid_at(&mut conn, &to).await,
        chunks: Vec::new(),
        max_concurrency: deps.config.max_concurrency,
        reason: None,
        execution: input.execution_arn.clone(),
    };
    let _ = conn.disconnect().await;

    if let Some(reason) = other_execution_running(&input, deps).await? {
        plan.status = RunStatus::Skipped;
        plan.reason = Some(reason);
        return Ok(plan);
    }
    if from == to {
        plan.status = RunStatus::Nothing;
        plan.reason = Some(format!("the checkpoint {from} is the server's position"));
        return Ok(plan);
    }
    let base = deps.config.server_id_base;
    let ranges = plan_chunks(
        &deps.db_url(),
        &files,
        &from,
        &to,
        deps.config.chunk_bytes,
        base,
    )
    .await?;
    plan.chunks = ranges
        .into_iter()
        .enumerate()
        .map(|(i, r)| Chunk {
            run_id: rid.clone(),
            index: i as u32,
            from: r.from,
            to: r.to,
            server_id: base.wrapping_add(1 + i as u32),
        })
        .collect();
    tracing::info!(run_id = %rid, from = %from, to = %to, chunks = plan.chunks.len(), commit, "planned");
    Ok(plan)
}

/// MariaDB's GTID state at a position (`BINLOG_GTID_POS`); `None` elsewhere.
async fn gtid_at(conn: &mut mysql_async::Conn, pos: &BinlogPosition) -> Option<String> {
    conn.exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, ?)", (pos.file(), pos.pos()))
        .await
        .ok()
        .flatten()
        .flatten()
        .filter(|g| !g.is_empty())
}

/// Another RUNNING execution of this state machine that started before this
/// one (ties broken by ARN) means this one skips.
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
            .map_err(|e| {
                use aws_sdk_sfn::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or("no response").to_string();
                Error::Storage {
                    context: format!("ListExecutions on {machine}"),
                    retryable: !matches!(
                        code.as_str(),
                        "StateMachineDoesNotExist" | "InvalidArn" | "AccessDeniedException"
                    ),
                    msg: format!("{code}: {}", e.message().unwrap_or_default()),
                }
            })?;
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
    let mine = running.iter().find(|r| &r.2 == me).cloned();
    let earlier = running.iter().filter(|r| &r.2 != me).find(|r| {
        mine.as_ref()
            .is_none_or(|m| (r.0, r.1, &r.2) < (m.0, m.1, &m.2))
    });
    Ok(earlier.map(|r| format!("execution {} is already running", r.2)))
}
