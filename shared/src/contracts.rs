//! Every state's input and output, in one place (camelCase JSON), so the
//! state machine definition and the Rust types cannot drift. A test
//! round-trips each through JSON.
//!
//! ```text
//! execution input ─▶ ListBinlogs ─▶ RunPlan
//!   status "run": ParseChunks (Map over plan.chunks: Chunk ─▶ ChunkSummary)
//!                 ─▶ FanOutByTable (FanOutInput ─▶ FanOutOutput)
//!                 ─▶ CommitCheckpoint (CommitInput ─▶ CommitOutput)
//!   status "nothing" or "skipped": succeed
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::position::BinlogPosition;

/// What an execution may be started with (all optional). `{}` is a scheduled
/// run: from the checkpoint to the server's current position, committed.
/// A replay names a range and does not move the checkpoint:
/// `{"from": "binlog.000010:4", "to": "binlog.000012:999", "commit": false}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<BinlogPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BinlogPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<bool>,
}

/// ListBinlogs' input: the execution input plus the execution's identity
/// (from the context object), used to detect concurrent executions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBinlogsInput {
    #[serde(default)]
    pub input: RunInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// There is a range to read.
    Run,
    /// The checkpoint is at the server's position: nothing to do.
    Nothing,
    /// Another execution of this state machine is running.
    Skipped,
}

/// One piece of the range for one ParseChunk: a range of one binlog file
/// starting at a transaction boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chunk {
    pub run_id: String,
    pub index: u32,
    pub from: BinlogPosition,
    pub to: BinlogPosition,
    /// The replication server id this chunk's reader uses.
    pub server_id: u32,
}

/// ListBinlogs' output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPlan {
    pub status: RunStatus,
    pub run_id: String,
    pub from: BinlogPosition,
    pub to: BinlogPosition,
    /// Whether CommitCheckpoint moves the checkpoint (false for replays).
    pub commit: bool,
    /// The ETag of the `meta.json` this plan started from (`None`: first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_etag: Option<String>,
    /// The server's GTID state at `to`, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_gtid: Option<String>,
    pub chunks: Vec<Chunk>,
    /// How many chunks the state machine parses at once (the Map's
    /// `MaxConcurrencyPath`), from the `PARSE_MAX_CONCURRENCY` setting.
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The execution that planned this run (its ARN), carried into
    /// `meta.json` so that a retried CommitCheckpoint can tell its own
    /// earlier, acknowledged-but-lost commit from another run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// What one chunk staged for one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TablePart {
    pub schema: String,
    pub table: String,
    pub count: u64,
    pub parts: u32,
    /// The size of each part in bytes, checked when they are joined.
    #[serde(default)]
    pub sizes: Vec<u64>,
    pub last_timestamp: u32,
}

/// ParseChunk's output: small, whatever the chunk's size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkSummary {
    pub index: u32,
    /// By `schema.table`.
    pub tables: BTreeMap<String, TablePart>,
    pub bytes_read: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<u32>,
}

/// FanOutByTable's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutInput {
    pub plan: RunPlan,
    pub chunks: Vec<ChunkSummary>,
}

/// FanOutByTable's output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutOutput {
    /// Every key written, per-table objects then the all-tables object.
    pub outputs: Vec<String>,
    pub counts: BTreeMap<String, u64>,
    pub last_timestamps: BTreeMap<String, u32>,
    /// The last row event's timestamp in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u32>,
}

/// CommitCheckpoint's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInput {
    pub plan: RunPlan,
    pub fan_out: FanOutOutput,
}

/// CommitCheckpoint's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitOutput {
    pub committed: bool,
    pub run_id: String,
    pub position: BinlogPosition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_etag: Option<String>,
}

/// The checkpoint position inside `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub file: String,
    pub pos: u64,
    /// `file:pos`, the same position as one string.
    pub position: BinlogPosition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

/// `meta.json`: the original's `timestamp`, `lastTimestamps` and `counts`,
/// plus the checkpoint, the run, every key it wrote and when it committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub timestamp: Option<u32>,
    pub last_timestamps: BTreeMap<String, u32>,
    pub counts: BTreeMap<String, u64>,
    pub position: Checkpoint,
    pub run_id: String,
    pub outputs: Vec<String>,
    /// RFC 3339, UTC.
    pub committed_at: String,
    /// The execution that committed it (see [`RunPlan::execution`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: &T,
    ) -> serde_json::Value {
        let json = serde_json::to_value(v).unwrap();
        let back: T = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, v);
        json
    }

    #[test]
    fn every_payload_round_trips_in_camel_case() {
        let p = |s: &str| s.parse::<BinlogPosition>().unwrap();
        let chunk = Chunk {
            run_id: "r".into(),
            index: 0,
            from: p("binlog.000001:4"),
            to: p("binlog.000001:900"),
            server_id: 7,
        };
        let plan = RunPlan {
            status: RunStatus::Run,
            run_id: "r".into(),
            from: p("binlog.000001:4"),
            to: p("binlog.000002:10"),
            commit: true,
            meta_etag: Some("\"e\"".into()),
            to_gtid: Some("0-1-5".into()),
            chunks: vec![chunk.clone()],
            max_concurrency: 4,
            reason: None,
            execution: Some("arn:aws:states:us-east-1:1:execution:m:e".into()),
        };
        let json = round_trip(&plan);
        assert_eq!(
            json["execution"],
            "arn:aws:states:us-east-1:1:execution:m:e"
        );
        assert_eq!(json["metaEtag"], "\"e\"");
        assert_eq!(json["chunks"][0]["serverId"], 7);
        assert_eq!(json["status"], "run");
        round_trip(&chunk);
        let summary = ChunkSummary {
            index: 0,
            tables: [(
                "s.t".to_string(),
                TablePart {
                    schema: "s".into(),
                    table: "t".into(),
                    count: 3,
                    parts: 1,
                    sizes: vec![312],
                    last_timestamp: 9,
                },
            )]
            .into(),
            bytes_read: 100,
            last_timestamp: Some(9),
        };
        assert_eq!(round_trip(&summary)["tables"]["s.t"]["lastTimestamp"], 9);
        assert_eq!(round_trip(&summary)["tables"]["s.t"]["sizes"][0], 312);
        let fan = FanOutOutput {
            outputs: vec!["k".into()],
            counts: [("s.t".to_string(), 3)].into(),
            last_timestamps: [("s.t".to_string(), 9)].into(),
            timestamp: Some(9),
        };
        round_trip(&FanOutInput {
            plan: plan.clone(),
            chunks: vec![summary],
        });
        assert!(round_trip(&CommitInput {
            plan: plan.clone(),
            fan_out: fan
        })
        .get("fanOut")
        .is_some());
        round_trip(&CommitOutput {
            committed: true,
            run_id: "r".into(),
            position: p("binlog.000002:10"),
            meta_etag: None,
        });
        let input: ListBinlogsInput = serde_json::from_str(r#"{"input":{"from":"binlog.000010:4","to":"binlog.000012:999","commit":false},"executionArn":"arn:x"}"#).unwrap();
        assert_eq!(input.input.commit, Some(false));
        round_trip(&input);
        assert!(
            serde_json::from_str::<RunInput>(r#"{"form":"binlog.000001:4"}"#).is_err(),
            "typos are refused"
        );
        round_trip(&Meta {
            timestamp: Some(9),
            last_timestamps: Default::default(),
            counts: Default::default(),
            position: Checkpoint {
                file: "binlog.000002".into(),
                pos: 10,
                position: p("binlog.000002:10"),
                gtid: None,
            },
            run_id: "r".into(),
            outputs: vec![],
            committed_at: "2026-01-01T00:00:00Z".into(),
            execution: None,
        });
    }
}
