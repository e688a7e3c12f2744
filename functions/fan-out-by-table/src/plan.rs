//! PlanFanOut: reads the run's chunk summaries from its staging, totals each
//! table, and groups the tables (in name order) into shards of about
//! `FANOUT_SHARD_BYTES` staged bytes or `FANOUT_SHARD_TABLES` tables, at most
//! [`MAX_FANOUT_SHARDS`]. Stores the run's fan-out plan and one plan per
//! shard; returns the shard list (one small item per shard).

use std::collections::BTreeMap;

use binlog_cdc::contracts::{
    ChunkSummary, FanOutPlan, FanOutPlanned, RunPlan, ShardPlan, ShardTask, StagedParts,
    StatementCounts, TableTotals, MAX_FANOUT_SHARDS,
};
use binlog_cdc::decoder::gtid::GtidTrail;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::pipeline::Deps;
use binlog_cdc::store::{get_json, put_json};
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// Store requests in flight at once when reading or writing summaries.
const IN_FLIGHT: usize = 16;

pub async fn handle(plan: &RunPlan, deps: &Deps) -> Result<FanOutPlanned> {
    let run_id = &plan.run_id;
    let store = deps.store.as_ref();
    let summaries: Vec<ChunkSummary> = stream::iter(&plan.chunks)
        .map(|c| async move { get_json(store, &deps.layout.chunk_summary(run_id, c.index)).await })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    let (mut tables, parts) = totals(&summaries)?;
    let sizes: Vec<u64> = tables.iter().map(|t| t.bytes).collect();
    let shard_of = assign_shards(
        &sizes,
        deps.config.shard_bytes,
        deps.config.shard_tables,
        MAX_FANOUT_SHARDS,
    );
    let shards = shard_of.last().map_or(0, |s| s + 1);
    let mut shard_plans: Vec<ShardPlan> = (0..shards)
        .map(|shard| ShardPlan {
            shard,
            tables: Vec::new(),
        })
        .collect();
    for ((t, s), p) in tables.iter_mut().zip(&shard_of).zip(parts) {
        t.shard = *s;
        shard_plans[*s as usize].tables.push((t.clone(), p));
    }
    stream::iter(&shard_plans)
        .map(|sp| async move { put_json(store, &deps.layout.shard_plan(run_id, sp.shard), sp).await })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let fan = FanOutPlan {
        run_id: run_id.clone(),
        timestamp: summaries.iter().filter_map(|c| c.last_timestamp).max(),
        tables,
        shards,
        bytes_read: summaries.iter().map(|c| c.bytes_read).sum(),
        gtids: run_gtids(&summaries),
        statements: summaries
            .iter()
            .fold(StatementCounts::default(), |mut all, c| {
                all.add(&c.statements);
                all
            }),
        // The summaries are in the plan's chunk order: binlog order.
        schema_versions: summaries
            .iter()
            .flat_map(|c| c.schema_versions.iter().cloned())
            .collect(),
    };
    put_json(store, &deps.layout.fan_out_plan(run_id), &fan).await?;
    tracing::info!(run_id = %run_id, tables = fan.tables.len(), shards, "fan-out planned");
    Ok(FanOutPlanned {
        shards: (0..shards)
            .map(|shard| ShardTask {
                run_id: run_id.clone(),
                shard,
            })
            .collect(),
        tables: fan.tables.len() as u32,
        events: fan.tables.iter().map(|t| t.count).sum(),
    })
}

/// The MySQL GTIDs the run's chunks read, folded in binlog order (chunk by
/// chunk); `None` when none read any.
fn run_gtids(summaries: &[ChunkSummary]) -> Option<GtidTrail> {
    let mut ordered: Vec<&ChunkSummary> = summaries.iter().collect();
    ordered.sort_by_key(|c| c.index);
    ordered
        .into_iter()
        .filter_map(|c| c.gtids.clone())
        .reduce(GtidTrail::then)
}

/// Every table's totals across the chunks (in name order), with its parts in
/// binlog order (chunk by chunk).
fn totals(summaries: &[ChunkSummary]) -> Result<(Vec<TableTotals>, Vec<Vec<StagedParts>>)> {
    let mut by_name: BTreeMap<&str, (TableTotals, Vec<StagedParts>)> = BTreeMap::new();
    let mut ordered: Vec<&ChunkSummary> = summaries.iter().collect();
    ordered.sort_by_key(|c| c.index);
    for c in ordered {
        for (name, t) in &c.tables {
            if t.sizes.len() != t.parts as usize {
                return Err(Error::storage(
                    format!("chunk {} of table {name}", c.index),
                    format!("{} parts but {} sizes", t.parts, t.sizes.len()),
                    false,
                ));
            }
            let (e, parts) = by_name.entry(name).or_insert_with(|| {
                let totals = TableTotals {
                    name: name.clone(),
                    schema: t.schema.clone(),
                    table: t.table.clone(),
                    ..Default::default()
                };
                (totals, Vec::new())
            });
            e.count += t.count;
            e.last_timestamp = e.last_timestamp.max(t.last_timestamp);
            e.bytes += t.sizes.iter().sum::<u64>();
            parts.push(StagedParts {
                chunk: c.index,
                sizes: t.sizes.clone(),
                layouts: t.layouts.clone(),
            });
        }
    }
    Ok(by_name.into_values().unzip())
}

/// The shard of each table (given their sizes, in order): consecutive tables
/// fill a shard up to `max_bytes` bytes and `max_tables` tables (a table
/// larger than `max_bytes` is a shard alone). When that makes more than
/// `max_shards`, both targets double until it does not.
pub fn assign_shards(sizes: &[u64], max_bytes: u64, max_tables: u32, max_shards: u32) -> Vec<u32> {
    let (mut bytes, mut tables) = (max_bytes.max(1), max_tables.max(1));
    loop {
        let mut out = Vec::with_capacity(sizes.len());
        let (mut shard, mut in_bytes, mut in_tables) = (0u32, 0u64, 0u32);
        for &size in sizes {
            if in_tables > 0 && (in_bytes + size > bytes || in_tables >= tables) {
                shard += 1;
                (in_bytes, in_tables) = (0, 0);
            }
            in_bytes += size;
            in_tables += 1;
            out.push(shard);
        }
        if sizes.is_empty() || shard < max_shards {
            return out;
        }
        bytes = bytes.saturating_mul(2);
        tables = tables.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_fill_by_bytes_and_by_tables() {
        assert_eq!(assign_shards(&[], 10, 10, 4), Vec::<u32>::new());
        assert_eq!(assign_shards(&[4, 4, 4, 4], 8, 10, 64), [0, 0, 1, 1]);
        // A table larger than the target is a shard alone.
        assert_eq!(assign_shards(&[1, 30, 1], 8, 10, 64), [0, 1, 2]);
        assert_eq!(assign_shards(&[1, 1, 1, 1, 1], 100, 2, 64), [0, 0, 1, 1, 2]);
    }

    #[test]
    fn the_shard_count_is_capped() {
        let sizes = vec![10u64; 1000];
        let s = assign_shards(&sizes, 10, 1000, 64);
        assert!(*s.last().unwrap() < 64, "{}", s.last().unwrap());
        assert!(s.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
    }

    #[test]
    fn the_runs_gtids_fold_in_chunk_order() {
        const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let summary = |index: u32, start: Option<&str>, txns: &str| ChunkSummary {
            index,
            gtids: Some(GtidTrail {
                file_start: start.map(|s| s.parse().unwrap()),
                transactions: txns.parse().unwrap(),
            }),
            ..Default::default()
        };
        // Read back out of order: chunk 1 read the next file from its start.
        let summaries = [
            summary(2, None, &format!("{U}:9")),
            summary(0, None, &format!("{U}:5-6")),
            summary(1, Some(&format!("{U}:1-6")), &format!("{U}:7-8")),
            ChunkSummary {
                index: 3,
                ..Default::default()
            },
        ];
        let run = run_gtids(&summaries).unwrap();
        assert_eq!(run.executed(None).unwrap().to_string(), format!("{U}:1-9"));
        assert_eq!(run_gtids(&summaries[3..]), None);
    }
}
