//! Object keys: pure functions of the run, its range and the configuration,
//! never of the clock. Rerunning a range rewrites the same keys; two runs over
//! different ranges never share one.
//!
//! ```text
//! {prefix}serverId.json
//! {prefix}meta.json
//! {prefix}{schema}/{table}/table-binlog-{timestamp}-{runId}.json
//! {prefix}{schema}/{table}/dt={YYYY-MM-DD}/table-binlog-{timestamp}-{runId}.jsonl|jsonl.gz|parquet
//! {prefix}all/all-binlog-{timestamp}-{runId}.json
//! {prefix}all/dt={YYYY-MM-DD}/all-binlog-{timestamp}-{runId}.jsonl|jsonl.gz (jsonl.gz under parquet)
//! {prefix}schemas/{schema}/{table}/{file}-{pos:020}.json  a table's definition from a position on (SchemaVersion)
//! {prefix}replay/{runId}/...                            a replay's objects, keyed as above
//! {prefix}manifests/{runId}.json                        a RunCommitted event's lists, when too large
//! {prefix}staging/{runId}/{chunk:05}/{schema}.{table}/part-{n:05}.jsonl
//! {prefix}staging/{runId}/chunks/{chunk:05}.json        what a chunk staged (ChunkSummary)
//! {prefix}staging/{runId}/fanout.json                   every table's totals and shard (FanOutPlan)
//! {prefix}staging/{runId}/shards/{shard:05}.json        a shard's tables and parts (ShardPlan)
//! {prefix}staging/{runId}/shards/{shard:05}.done.json   what it wrote (ShardDone)
//! {prefix}staging/{runId}/all/{shard:05}.part           its slice of the all-tables object
//! {prefix}staging/{runId}/out/...                       the run's objects until commit publishes them
//! ```
//!
//! `{timestamp}` is the last row event's header timestamp in the run (a fact
//! of the range), `{runId}` a hash of the range and the output settings.
//! `dt=` is that timestamp's UTC day, a partition for Athena (the `json`
//! format keeps the original's keys). Fan-out writes a run's objects under
//! its staging; CommitCheckpoint publishes them ([`Layout::publications`]):
//! to their keys after `meta.json` names the run, under `replay/{runId}/`
//! for a replay.

use sha2::{Digest, Sha256};

use crate::clock;
use crate::config::{OutputFormat, PipelineConfig};
use crate::contracts::FanOutPlan;
use binlog_decoder::position::BinlogPosition;

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

    /// A run's `RunCommitted` manifest, when its lists would not fit the event.
    pub fn manifest(&self, run_id: &str) -> String {
        format!("{}manifests/{run_id}.json", self.prefix)
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

    /// A snapshot range's [`crate::contracts::KeyRange`] (chunk `chunk` of the run).
    pub fn snapshot_range(&self, run_id: &str, chunk: u32) -> String {
        format!("{}staging/{run_id}/snapshot/{chunk:05}.json", self.prefix)
    }

    /// The tables of a snapshot the run starts, for its commit.
    pub fn snapshot_tables(&self, run_id: &str) -> String {
        format!("{}staging/{run_id}/snapshot/tables.json", self.prefix)
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

    pub fn table_output(&self, schema: &str, table: &str, timestamp: u32, run_id: &str) -> String {
        format!(
            "{}{}table-binlog-{timestamp}-{run_id}.{}",
            self.table_objects(schema, table),
            self.day(timestamp),
            self.format.extension()
        )
    }

    /// The prefix of every object of `schema.table`.
    pub fn table_objects(&self, schema: &str, table: &str) -> String {
        format!("{}{}/{}/", self.prefix, safe(schema), safe(table))
    }

    /// `dt=YYYY-MM-DD/` for the line formats, nothing for `json`.
    fn day(&self, timestamp: u32) -> String {
        match self.format {
            OutputFormat::Json => String::new(),
            OutputFormat::Jsonl | OutputFormat::JsonlGz | OutputFormat::Parquet => {
                format!("dt={}/", clock::date(i64::from(timestamp)))
            }
        }
    }

    /// Where fan-out writes the object that is published at `key`.
    pub fn staged_output(&self, run_id: &str, key: &str) -> String {
        format!("{}staging/{run_id}/out/{}", self.prefix, self.relative(key))
    }

    /// Where fan-out records a table's Parquet object's columns for
    /// CommitCheckpoint's Glue table (`binlog_cdc::catalog::ObjectSchema`).
    pub fn staged_object_schema(&self, run_id: &str, schema: &str, table: &str) -> String {
        format!(
            "{}staging/{run_id}/glue/{}/{}.json",
            self.prefix,
            safe(schema),
            safe(table)
        )
    }

    /// Where a replay publishes the object a committed run would publish at `key`.
    pub fn replay_output(&self, run_id: &str, key: &str) -> String {
        format!("{}replay/{run_id}/{}", self.prefix, self.relative(key))
    }

    fn relative<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(&self.prefix).unwrap_or(key)
    }

    /// Each of a run's objects: where fan-out staged it, and where commit
    /// publishes it (its key, or under `replay/{runId}/` when the run does
    /// not commit).
    pub fn publications(&self, fan: &FanOutPlan, commit: bool) -> Vec<Publication> {
        self.run_outputs(fan)
            .into_iter()
            .map(|key| Publication {
                staged: self.staged_output(&fan.run_id, &key),
                key: if commit {
                    key
                } else {
                    self.replay_output(&fan.run_id, &key)
                },
            })
            .collect()
    }

    /// Every key a run writes: each table's object, then the all-tables
    /// object (none when the run has no events), then its schema history
    /// versions.
    pub fn run_outputs(&self, fan: &FanOutPlan) -> Vec<String> {
        let Some(ts) = fan.timestamp else {
            return Vec::new();
        };
        let tables = fan
            .tables
            .iter()
            .map(|t| self.table_output(&t.schema, &t.table, ts, &fan.run_id));
        tables
            .chain([self.all_output(ts, &fan.run_id)])
            .chain(fan.schema_versions.iter().cloned())
            .collect()
    }

    /// Where one table's schema history is: one object per version.
    pub fn schema_history(&self, schema: &str, table: &str) -> String {
        format!("{}schemas/{}/{}/", self.prefix, safe(schema), safe(table))
    }

    /// The version of `schema.table` from `position` on. Keys sort as
    /// positions do (file names, then offsets zero-padded).
    pub fn schema_version(&self, schema: &str, table: &str, position: &BinlogPosition) -> String {
        format!(
            "{}{}-{:020}.json",
            self.schema_history(schema, table),
            safe(position.file()),
            position.pos()
        )
    }

    pub fn all_output(&self, timestamp: u32, run_id: &str) -> String {
        format!(
            "{}all/{}all-binlog-{timestamp}-{run_id}.{}",
            self.prefix,
            self.day(timestamp),
            self.format.all_tables().extension()
        )
    }
}

/// One object of a run: staged by fan-out, published by commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub staged: String,
    pub key: String,
}

/// MySQL allows `/` in quoted identifiers; keep it out of key segments.
fn safe(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// The run id: 16 hex digits of SHA-256 over the range and output settings.
pub fn run_id(from: &BinlogPosition, to: &BinlogPosition, config: &PipelineConfig) -> String {
    short_hash(&format!("{from}|{to}|{}", config.output_fingerprint()))
}

/// The id of a run with snapshot ranges: its range's id and where the
/// snapshot stands (a snapshot run may read no binlog: `from == to`).
pub fn snapshot_run_id(run_id: &str, p: &crate::contracts::SnapshotProgress) -> String {
    short_hash(&format!("{run_id}|{}|{}", p.id, p.ranges))
}

/// The first 8 bytes of `text`'s SHA-256, in hex: a run id.
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
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

    #[test]
    fn line_formats_partition_by_day_and_runs_publish_from_staging() {
        let c = PipelineConfig {
            prefix: "cdc/".into(),
            format: OutputFormat::JsonlGz,
            ..Default::default()
        };
        let l = Layout::new(&c);
        let ts = 1_796_168_830; // 2026-12-01T23:47:10Z
        let key = l.table_output("shop", "orders", ts, "r1");
        assert_eq!(
            key,
            "cdc/shop/orders/dt=2026-12-01/table-binlog-1796168830-r1.jsonl.gz"
        );
        assert_eq!(
            l.all_output(ts, "r1"),
            "cdc/all/dt=2026-12-01/all-binlog-1796168830-r1.jsonl.gz"
        );
        assert_eq!(
            l.staged_output("r1", &key),
            "cdc/staging/r1/out/shop/orders/dt=2026-12-01/table-binlog-1796168830-r1.jsonl.gz"
        );
        assert_eq!(
            l.replay_output("r1", &key),
            "cdc/replay/r1/shop/orders/dt=2026-12-01/table-binlog-1796168830-r1.jsonl.gz"
        );
        let fan = FanOutPlan {
            run_id: "r1".into(),
            timestamp: Some(ts),
            ..Default::default()
        };
        let live = l.publications(&fan, true);
        assert_eq!(live.len(), 1, "no tables: the all-tables object only");
        assert_eq!(live[0].key, l.all_output(ts, "r1"));
        assert_eq!(live[0].staged, l.staged_output("r1", &live[0].key));
        let replay = l.publications(&fan, false);
        assert_eq!(replay[0].key, l.replay_output("r1", &live[0].key));
    }

    #[test]
    fn parquet_writes_tables_in_parquet_and_every_table_in_jsonl_gz() {
        let c = PipelineConfig {
            prefix: "cdc/".into(),
            format: OutputFormat::Parquet,
            ..Default::default()
        };
        let l = Layout::new(&c);
        let ts = 1_796_168_830;
        assert_eq!(
            l.table_output("shop", "orders", ts, "r1"),
            "cdc/shop/orders/dt=2026-12-01/table-binlog-1796168830-r1.parquet"
        );
        assert_eq!(
            l.all_output(ts, "r1"),
            "cdc/all/dt=2026-12-01/all-binlog-1796168830-r1.jsonl.gz"
        );
    }
}
