//! `binlog-cdc status`: where the stream stands, on one screen. The
//! checkpoint and the last committed run (from `meta.json`), what the next
//! run would plan (ListBinlogs' own planning, which writes nothing: bytes
//! behind, retention headroom, chunks), and a verdict with named reasons.

use binlog_cdc::contracts::{ListBinlogsInput, RunStatus, SnapshotProgress};
use binlog_cdc::metrics::{now_ms, Headroom};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::{checkpoint, BinlogPosition, Result};
use serde::Serialize;

/// When the stream counts as unhealthy (the stack's alarms use the same
/// defaults: `LagAlarmSeconds`, `HeadroomAlarmPercent`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub max_lag_seconds: u64,
    pub min_headroom_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_lag_seconds: 1800,
            min_headroom_percent: 25.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub healthy: bool,
    /// Why not: `Name: what`, one per problem.
    pub problems: Vec<String>,
    pub checkpoint: Option<BinlogPosition>,
    pub last_run: Option<LastRun>,
    /// Now minus the newest committed event's timestamp.
    pub lag_seconds: Option<u64>,
    pub behind_bytes: Option<u64>,
    pub retention_headroom: Option<Headroom>,
    pub next_run: Option<NextRun>,
    /// The snapshot in progress or last done (from `meta.json`).
    pub snapshot: Option<SnapshotProgress>,
    pub schema_history: SchemaHistory,
}

/// Where each table's definitions over time are (`schemas/`, see
/// `binlog_cdc::contracts::SchemaVersion`), and how many tables have one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaHistory {
    pub location: String,
    pub tables: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    pub run_id: String,
    pub committed_at: String,
    /// Events committed: rows, and statements about tables.
    pub events: u64,
    pub tables: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextRun {
    pub from: Option<BinlogPosition>,
    pub to: Option<BinlogPosition>,
    pub chunks: usize,
    /// The budget stops it before the server's position.
    pub more: bool,
}

/// Reads the checkpoint, plans the next run without running it, and judges.
pub async fn status(deps: &Deps, limits: Thresholds) -> Result<Status> {
    let stored = checkpoint::read(deps.store.as_ref(), &deps.layout).await?;
    let mut st = Status {
        healthy: true,
        problems: Vec::new(),
        checkpoint: stored.as_ref().map(|(m, _)| m.position.position.clone()),
        last_run: stored.as_ref().map(|(m, _)| LastRun {
            run_id: m.run_id.clone(),
            committed_at: m.committed_at.clone(),
            events: m.counts.values().sum(),
            tables: m.counts.len(),
        }),
        lag_seconds: stored
            .as_ref()
            .and_then(|(m, _)| m.timestamp)
            .map(|t| (now_ms() / 1000).saturating_sub(t as u64)),
        behind_bytes: None,
        retention_headroom: None,
        next_run: None,
        snapshot: stored
            .as_ref()
            .and_then(|(m, _)| m.snapshot.as_ref().map(|s| s.progress.clone())),
        schema_history: schema_history(deps).await?,
    };
    // Planned only: nothing is stored.
    match list_binlogs::plan(ListBinlogsInput::default(), deps).await {
        Ok((plan, _)) => {
            st.behind_bytes = plan.behind_bytes;
            st.retention_headroom = plan.retention_headroom;
            if plan.status == RunStatus::Run {
                st.next_run = Some(NextRun {
                    from: plan.from.clone(),
                    to: plan.to.clone(),
                    chunks: plan.chunks.len(),
                    more: plan.more,
                });
            }
        }
        Err(e) => st.problems.push(format!("{}: {e}", e.name())),
    }
    judge(&mut st, limits);
    Ok(st)
}

async fn schema_history(deps: &Deps) -> Result<SchemaHistory> {
    let prefix = format!("{}schemas/", deps.layout.prefix());
    let keys = deps.store.list(&prefix).await?;
    // schemas/{schema}/{table}/{version}: one table per distinct directory.
    let tables: std::collections::BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| k.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    Ok(SchemaHistory {
        location: format!("{}/{prefix}", deps.store.describe().trim_end_matches('/')),
        tables: tables.len(),
    })
}

/// The verdict: a planning error, too little retention headroom, or a lag
/// past the limit while there is binlog to read (an idle database's newest
/// event is old without anything being wrong).
fn judge(st: &mut Status, limits: Thresholds) {
    if let Some(h) = st.retention_headroom {
        if h.percent < limits.min_headroom_percent {
            st.problems.push(format!(
                "RetentionHeadroomLow: {:.0}% of the retention left ({} s) before the server purges the checkpoint's file",
                h.percent, h.seconds
            ));
        }
    }
    if let (Some(lag), Some(behind)) = (st.lag_seconds, st.behind_bytes) {
        if behind > 0 && lag > limits.max_lag_seconds {
            st.problems.push(format!(
                "Lagging: the newest committed event is {lag} s old with {behind} bytes of binlog still to read"
            ));
        }
    }
    st.healthy = st.problems.is_empty();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(lag: Option<u64>, behind: Option<u64>, headroom: Option<Headroom>) -> Status {
        let mut st = Status {
            healthy: true,
            problems: Vec::new(),
            checkpoint: None,
            last_run: None,
            lag_seconds: lag,
            behind_bytes: behind,
            retention_headroom: headroom,
            next_run: None,
            snapshot: None,
            schema_history: SchemaHistory {
                location: "out/schemas/".into(),
                tables: 0,
            },
        };
        judge(&mut st, Thresholds::default());
        st
    }

    #[test]
    fn the_verdict_names_each_problem() {
        assert!(status(Some(10), Some(100), Some(Headroom::new(86_400, 3_600))).healthy);
        assert!(
            status(Some(99_999), Some(0), None).healthy,
            "idle, caught up"
        );
        let lagging = status(Some(99_999), Some(4096), None);
        assert!(!lagging.healthy && lagging.problems[0].starts_with("Lagging:"));
        let purge = status(None, None, Some(Headroom::new(86_400, 80_000)));
        assert!(!purge.healthy && purge.problems[0].starts_with("RetentionHeadroomLow:"));
    }
}
