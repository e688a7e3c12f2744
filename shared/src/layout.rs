//! Object keys: pure functions of the run, its range and the configuration,
//! never of the clock. Rerunning a range rewrites the same keys; two runs over
//! different ranges never share one.
//!
//! ```text
//! {prefix}serverId.json
//! {prefix}meta.json
//! {prefix}{schema}/{table}/table-binlog-{timestamp}-{runId}.json|jsonl|jsonl.gz
//! {prefix}all/all-binlog-{timestamp}-{runId}.json|jsonl|jsonl.gz
//! {prefix}staging/{runId}/{chunk:05}/{schema}.{table}/part-{n:05}.jsonl
//! {prefix}staging/{runId}/chunks/{chunk:05}.json        what a chunk staged (ChunkSummary)
//! {prefix}staging/{runId}/fanout.json                   every table's totals and shard (FanOutPlan)
//! {prefix}staging/{runId}/shards/{shard:05}.json        a shard's tables and parts (ShardPlan)
//! {prefix}staging/{runId}/shards/{shard:05}.done.json   what it wrote (ShardDone)
//! {prefix}staging/{runId}/all/{shard:05}.part           its slice of the all-tables object
//! ```
//!
//! `{timestamp}` is the last row event's header timestamp in the run (a fact
//! of the range), `{runId}` a hash of the range and the output settings.

use sha2::{Digest, Sha256};

use crate::config::{OutputFormat, PipelineConfig};
use crate::contracts::FanOutPlan;
use crate::position::BinlogPosition;

#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    format: OutputFormat,
}

impl Layout {
    pub fn new(config: &PipelineConfig) -> Self {
        Self {
            prefix: config.prefix.clone(),
            format: config.format,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn meta(&self) -> String {
        format!("{}meta.json", self.prefix)
    }

    pub fn server_id(&self) -> String {
        format!("{}serverId.json", self.prefix)
    }

    pub fn staging_run(&self, run_id: &str) -> String {
        format!("{}staging/{run_id}/", self.prefix)
    }

    pub fn staging_part(&self, run_id: &str, chunk: u32, table: &str, part: u32) -> String {
        format!(
            "{}staging/{run_id}/{chunk:05}/{}/part-{part:05}.jsonl",
            self.prefix,
            safe(table)
        )
    }

    pub fn chunk_summary(&self, run_id: &str, chunk: u32) -> String {
        format!("{}staging/{run_id}/chunks/{chunk:05}.json", self.prefix)
    }

    pub fn fan_out_plan(&self, run_id: &str) -> String {
        format!("{}staging/{run_id}/fanout.json", self.prefix)
    }

    pub fn shard_plan(&self, run_id: &str, shard: u32) -> String {
        format!("{}staging/{run_id}/shards/{shard:05}.json", self.prefix)
    }

    pub fn shard_done(&self, run_id: &str, shard: u32) -> String {
        format!(
            "{}staging/{run_id}/shards/{shard:05}.done.json",
            self.prefix
        )
    }

    pub fn all_slice(&self, run_id: &str, shard: u32) -> String {
        format!("{}staging/{run_id}/all/{shard:05}.part", self.prefix)
    }

    /// `table` is `schema.table`.
    pub fn table_output(&self, schema: &str, table: &str, timestamp: u32, run_id: &str) -> String {
        format!(
            "{}{}/{}/table-binlog-{timestamp}-{run_id}.{}",
            self.prefix,
            safe(schema),
            safe(table),
            self.format.extension()
        )
    }

    /// Every key a run writes: each table's object, then the all-tables
    /// object (none when the run has no row events).
    pub fn run_outputs(&self, fan: &FanOutPlan) -> Vec<String> {
        let Some(ts) = fan.timestamp else {
            return Vec::new();
        };
        let tables = fan
            .tables
            .iter()
            .map(|t| self.table_output(&t.schema, &t.table, ts, &fan.run_id));
        tables.chain([self.all_output(ts, &fan.run_id)]).collect()
    }

    pub fn all_output(&self, timestamp: u32, run_id: &str) -> String {
        format!(
            "{}all/all-binlog-{timestamp}-{run_id}.{}",
            self.prefix,
            self.format.extension()
        )
    }
}

/// MySQL allows `/` in quoted identifiers; keep it out of key segments.
fn safe(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// The run id: 16 hex digits of SHA-256 over the range and output settings.
pub fn run_id(from: &BinlogPosition, to: &BinlogPosition, config: &PipelineConfig) -> String {
    let mut h = Sha256::new();
    h.update(format!("{from}|{to}|{}", config.output_fingerprint()));
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pure_and_distinct() {
        let c = PipelineConfig {
            prefix: "cdc/".into(),
            ..Default::default()
        };
        let a = BinlogPosition::new("binlog.000001", 4);
        let b = BinlogPosition::new("binlog.000001", 900);
        let r1 = run_id(&a, &b, &c);
        assert_eq!(r1, run_id(&a, &b, &c));
        assert_ne!(
            r1,
            run_id(&a, &BinlogPosition::new("binlog.000001", 901), &c)
        );
        assert_eq!(r1.len(), 16);
        let l = Layout::new(&c);
        assert_eq!(l.meta(), "cdc/meta.json");
        assert_eq!(
            l.table_output("shop", "orders", 17, &r1),
            format!("cdc/shop/orders/table-binlog-17-{r1}.json")
        );
        assert_eq!(
            l.staging_part(&r1, 3, "shop.a/b", 2),
            format!("cdc/staging/{r1}/00003/shop.a%2Fb/part-00002.jsonl")
        );
    }
}
