//! Every state's input and output, in one place (camelCase JSON), and the
//! summaries the steps leave in the run's staging for each other. A test
//! round-trips each through JSON; another (`contracts_asl.rs`) runs one
//! iteration's data through the state machine definition's paths with these
//! types, so the two cannot drift apart unnoticed.
//!
//! ```text
//! execution input ─▶ Start {input, loop} ─▶ ListBinlogs (ListBinlogsInput ─▶ RunPlan)
//!   status "run": ParseChunks (Map: Chunk ─▶ ChunkAck; ChunkSummary stored)
//!                 ─▶ PlanFanOut (FanOutRequest::Plan ─▶ FanOutPlanned; FanOutPlan, ShardPlan stored)
//!                 ─▶ FanOutShards (Map: FanOutRequest::Shard ─▶ ShardAck; ShardDone stored)
//!                 ─▶ JoinAllTables (FanOutRequest::Join ─▶ JoinOutput)
//!                 ─▶ CommitCheckpoint (CommitInput ─▶ CommitOutput, with the next LoopState)
//!                 ─▶ MoreToDo: loop.again ─▶ ListBinlogs; loop.then "poll" ─▶
//!                    WaitToPoll ─▶ ListBinlogs; loop.then "handOver" ─▶ HandOver
//!                    (StartExecution of the next follower) ─▶ succeed; else succeed
//!   status "nothing": CaughtUp: plan.loop.then as after a commit, else succeed
//!   status "skipped": succeed
//! ```
//!
//! `then` is set only under `follow` (an execution that keeps polling once
//! caught up, [`Follow`]); the functions decide it ([`LoopState::follow_on`]).
//!
//! What travels in the state is O(1) per chunk and per shard, and nothing per
//! table: the plan holds at most `MAX_RUN_CHUNKS` (≤ 256) chunks, each fan-out
//! shard is an index; per-table data lives in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use binlog_decoder::gtid::GtidTrail;
use binlog_decoder::position::BinlogPosition;
pub use binlog_decoder::snapshot::{KeyRange, KeyValue};

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
    /// Restarts the committed stream somewhere else than the checkpoint,
    /// after `BinlogHistoryChanged`: `"oldest"`, `"latest"` or `"FILE:POS"`.
    /// The execution's first run starts there and commits; the rest of it
    /// goes on from the new checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<RestartAt>,
    /// Starts a snapshot of the tables these patterns name (as include
    /// patterns: `["shop.*", "crm.customers"]`), replacing one in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Vec<String>>,
    /// Low-latency mode: once caught up, wait this long and poll again,
    /// and hand over to a new execution before the history quota
    /// (committed runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<Follow>,
    /// The execution that handed over to this one: it is ending, so the
    /// overlap check does not count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over_by: Option<String>,
}

/// [`RunInput::follow`]: `{"pollSeconds": 5}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Follow {
    /// The wait between polls while caught up: 1 to 300 seconds.
    pub poll_seconds: u32,
}

impl Follow {
    pub const MAX_POLL_SECONDS: u32 = 300;
}

/// Where [`RunInput::restart_at`] restarts the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartAt {
    Oldest,
    Latest,
    At(BinlogPosition),
    /// After a MariaDB GTID state (`gtid:0-1-5`): on another server with
    /// the same transactions, where the stream goes on.
    AfterGtid(String),
}

impl std::str::FromStr for RestartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oldest" => Ok(Self::Oldest),
            "latest" => Ok(Self::Latest),
            p => match p.strip_prefix("gtid:").map(str::trim) {
                Some(state) if !state.is_empty() => Ok(Self::AfterGtid(state.into())),
                _ => p.parse().map(Self::At).map_err(|e| {
                    format!(
                        "restartAt {p:?}: expected oldest, latest, FILE:POS or gtid:STATE ({e})"
                    )
                }),
            },
        }
    }
}

impl std::fmt::Display for RestartAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Oldest => f.write_str("oldest"),
            Self::Latest => f.write_str("latest"),
            Self::At(p) => p.fmt(f),
            Self::AfterGtid(state) => write!(f, "gtid:{state}"),
        }
    }
}

impl Serialize for RestartAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RestartAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What identifies the binlog history a checkpoint is in, recorded with it
/// and checked before a run reads on from it: after `RESET MASTER`, a restore,
/// a failover to a new cluster or another server behind the same endpoint,
/// the same file names can hold other events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BinlogHistory {
    /// The server: MySQL's `server_uuid`, or MariaDB's `server_id` and GTID
    /// domain.
    pub server: String,
    /// The checkpoint's file, and when the server created it (its format
    /// description event's timestamp, Unix seconds).
    pub file: String,
    pub file_created: u32,
    /// MySQL with `gtid_mode=ON`: the server's executed GTID set when the
    /// run was planned (it holds every transaction up to the checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_executed: Option<String>,
}

/// An execution's loop over budgeted runs: which iteration this is, the
/// history events spent so far (an upper bound, see
/// [`iteration_history_events`]), and whether to go round again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopState {
    #[serde(default)]
    pub iteration: u32,
    #[serde(default)]
    pub history_events: u32,
    /// Where a replay's next iteration starts (a committed run starts at
    /// the checkpoint instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<BinlogPosition>,
    /// Go round again: the last run stopped at its budget, and the
    /// execution's history has room for another.
    #[serde(default)]
    pub again: bool,
    /// Under `follow`, what a caught-up execution does next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<Then>,
}

/// What a following execution does once caught up (or out of history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Then {
    /// Wait `pollSeconds`, then plan again.
    Poll,
    /// Start the next execution with the same `follow`, and end.
    HandOver,
}

/// History events an idle poll may cost at its worst: WaitToPoll,
/// ListBinlogs (retried as often as it may be), AnythingToDo, CaughtUp (the
/// Pass) and FollowOn (the Choice before the wait).
pub const IDLE_POLL_HISTORY_EVENTS: u32 = 2 + (5 + 3 * MAX_TASK_RETRIES) + 2 + 2 + 2;

impl LoopState {
    /// Under `follow`, after an iteration that spent `spent` history
    /// events in all: poll again while the execution's history has room
    /// for an idle poll and then a whole iteration of `worst_next` events,
    /// else hand over. `None` without `follow`, or while `again` goes
    /// round without waiting.
    pub fn follow_on(
        follow: Option<Follow>,
        again: bool,
        spent: u32,
        worst_next: u32,
        budget: u32,
    ) -> Option<Then> {
        match follow {
            None => None,
            Some(_) if again => None,
            Some(_) if spent + IDLE_POLL_HISTORY_EVENTS + worst_next <= budget => Some(Then::Poll),
            Some(_) => Some(Then::HandOver),
        }
    }
}

/// The history events a Standard execution may spend on its iterations
/// before it ends and leaves the rest to the next execution (the quota is
/// 25,000; iterations are counted at their worst, retries included, so the
/// rest is room for the execution's own start and end).
pub const HISTORY_EVENT_BUDGET: u32 = 20_000;

/// The most fan-out shards a run plans (each Map iteration costs history).
pub const MAX_FANOUT_SHARDS: u32 = 64;

/// The most retries one Task state may take: the sum of its retriers'
/// `MaxAttempts` in the definition (4 for transient errors, 6 for
/// throttling; `contracts_asl.rs` checks the definition against it).
pub const MAX_TASK_RETRIES: u32 = 10;

/// History events one iteration of the definition may cost, as a Standard
/// workflow counts them, every Task retried as often as its retriers allow:
/// a Task state 5 (entered, scheduled, started, succeeded, exited) and 3
/// per retry (scheduled, started, failed), a Pass or Choice state 2, a Map
/// state 4 plus, per item, 2 (iteration started and succeeded) around its
/// Task. One iteration: ListBinlogs, AnythingToDo, ParseChunks, PlanFanOut,
/// FanOutShards, JoinAllTables, CommitCheckpoint, MoreToDo, NextIteration.
pub fn iteration_history_events(chunks: u32, shards: u32) -> u32 {
    let task = 5 + 3 * MAX_TASK_RETRIES;
    let item = 2 + task;
    task + 2 + (4 + item * chunks) + task + (4 + item * shards) + task + task + 2 + 2
}

/// ListBinlogs' input: the execution input, the loop, and the execution's
/// identity (from the context object), used to detect concurrent executions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBinlogsInput {
    #[serde(default)]
    pub input: RunInput,
    #[serde(default, rename = "loop")]
    pub loop_state: LoopState,
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

/// One piece of the range for one ParseChunk: a range of the binlog starting
/// at a transaction boundary (it may cross files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chunk {
    pub run_id: String,
    pub index: u32,
    pub from: BinlogPosition,
    pub to: BinlogPosition,
    /// The replication server id this chunk's reader uses.
    pub server_id: u32,
    /// A range of the binlog, or a snapshot range (its [`KeyRange`] is in
    /// the run's staging; `from` and `to` are then the run's).
    #[serde(default, skip_serializing_if = "ChunkKind::is_binlog")]
    pub kind: ChunkKind,
    /// Where the run starts, for a binlog chunk that does not: a table
    /// statement in the chunk reads the run's statements before it, to know
    /// the definition it applies to (see `binlog_decoder::definition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_from: Option<BinlogPosition>,
}

/// What a [`Chunk`] reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChunkKind {
    #[default]
    Binlog,
    Snapshot,
}

impl ChunkKind {
    pub fn is_binlog(&self) -> bool {
        *self == ChunkKind::Binlog
    }
}

/// Where a snapshot stands: which table its next range starts in, and after
/// which key. In `meta.json` (with the table list, [`SnapshotState`]) and,
/// as it will be once a run commits, in the run's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotProgress {
    /// The run that started it.
    pub id: String,
    /// Tables in the snapshot, and how many are done.
    pub tables: u32,
    pub tables_done: u32,
    /// The last key of the last range done in table `tables_done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyValue>>,
    /// Ranges and rows done so far.
    pub ranges: u32,
}

impl SnapshotProgress {
    pub fn done(&self) -> bool {
        self.tables_done >= self.tables
    }
}

/// A snapshot in `meta.json`: its progress and its tables (`schema.table`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotState {
    #[serde(flatten)]
    pub progress: SnapshotProgress,
    pub table_names: Vec<String>,
}

/// ListBinlogs' output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPlan {
    pub status: RunStatus,
    pub run_id: String,
    /// Skipped: both are the checkpoint (or absent before the first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<BinlogPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BinlogPosition>,
    /// The run's budget ended it before the server's position (or the
    /// replay's end): more is waiting.
    #[serde(default)]
    pub more: bool,
    /// Whether CommitCheckpoint moves the checkpoint (false for replays).
    pub commit: bool,
    /// The ETag of the `meta.json` this plan started from (`None`: first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_etag: Option<String>,
    /// The server's GTID state at `to`, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_gtid: Option<String>,
    /// The history `to` is in, for the checkpoint (committed runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_history: Option<BinlogHistory>,
    /// When the run was planned (Unix ms), for its duration at commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_at_ms: Option<u64>,
    /// Binlog bytes between the run's start and the server's position at
    /// planning: how far behind the stream is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind_bytes: Option<u64>,
    /// How long until the server's retention purges the checkpoint's file
    /// (`None`: the server keeps binlogs without a time limit, or the
    /// checkpoint has no recorded history yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_headroom: Option<crate::metrics::Headroom>,
    pub chunks: Vec<Chunk>,
    /// How many chunks (and fan-out shards) the state machine runs at once
    /// (the Maps' `MaxConcurrencyPath`), from `PARSE_MAX_CONCURRENCY`.
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The execution that planned this run (its ARN), carried into
    /// `meta.json` so that a retried CommitCheckpoint can tell its own
    /// earlier, acknowledged-but-lost commit from another run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The snapshot as it stands once this run commits (its ranges are
    /// among `chunks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotProgress>,
    /// The execution's `follow`, for CommitCheckpoint's next loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<Follow>,
    /// With status `nothing` under `follow`: the loop's next state
    /// (`then`: poll or hand over).
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_state: Option<LoopState>,
}

impl RunPlan {
    /// The planned range, for a plan with status `run`.
    pub fn range(&self) -> crate::Result<(&BinlogPosition, &BinlogPosition)> {
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => Ok((f, t)),
            _ => Err(crate::Error::Config(format!(
                "run {}: the plan has no range (status {:?})",
                self.run_id, self.status
            ))),
        }
    }
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
    /// The columns its events carry (each table map's, after column
    /// rules), as they changed: the `parquet` format only, whose objects
    /// have a column for each name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<Vec<binlog_decoder::typed::TypedColumn>>,
}

/// What a chunk staged, per table: stored by ParseChunk at
/// `staging/{runId}/chunks/{index}.json`, read by PlanFanOut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkSummary {
    pub index: u32,
    /// By `schema.table`.
    pub tables: BTreeMap<String, TablePart>,
    pub bytes_read: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<u32>,
    /// The MySQL GTIDs the chunk read (none on MariaDB, or without GTIDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtids: Option<GtidTrail>,
    #[serde(default, skip_serializing_if = "StatementCounts::is_empty")]
    pub statements: StatementCounts,
    /// The schema history versions the chunk staged ([`SchemaVersion`], by
    /// their output keys), in binlog order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_versions: Vec<String>,
}

/// One version of a table's schema history: what the table was from
/// `position` on, stored at `schemas/{schema}/{table}/{position}.json` and
/// published with the run that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaVersion {
    pub schema: String,
    pub table: String,
    pub position: BinlogPosition,
    /// The statement's kind (`create`, `alter`, ...), or `snapshot` for the
    /// definition a snapshot read.
    pub cause: String,
    /// The definition from `position` on (absent: gone, or not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<binlog_decoder::definition::TableDefinition>,
    /// The table is gone (dropped, or renamed away).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// Why the definition is not known, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl SchemaVersion {
    pub fn new(
        schema: &str,
        table: &str,
        position: BinlogPosition,
        cause: &str,
        known: &binlog_decoder::definition::Known,
    ) -> Self {
        use binlog_decoder::definition::Known;
        Self {
            schema: schema.to_string(),
            table: table.to_string(),
            position,
            cause: cause.to_string(),
            definition: match known {
                Known::Defined(d) => Some((**d).clone()),
                _ => None,
            },
            gone: *known == Known::Gone,
            unknown: match known {
                Known::Unknown(why) => Some(why.clone()),
                _ => None,
            },
        }
    }

    /// What the tracker knows from it.
    pub fn known(&self) -> binlog_decoder::definition::Known {
        use binlog_decoder::definition::Known;
        match (&self.definition, self.gone, &self.unknown) {
            (Some(d), _, _) => Known::Defined(std::sync::Arc::new(d.clone())),
            (None, true, _) => Known::Gone,
            (None, false, why) => Known::Unknown(why.clone().unwrap_or_default()),
        }
    }
}

/// Logged statements a chunk or run read: those about tables (written as
/// `SchemaChangeEvent`s) by kind, and the others (skipped, never written).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementCounts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StatementCounts {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.skipped == 0
    }

    /// What a decode counted.
    pub fn of(stats: &binlog_decoder::reader::Stats) -> Self {
        Self {
            written: stats
                .statements
                .iter()
                .map(|(k, n)| (k.name().to_string(), *n))
                .collect(),
            skipped: stats.skipped_statements,
        }
    }

    pub fn add(&mut self, other: &Self) {
        for (k, n) in &other.written {
            *self.written.entry(k.clone()).or_default() += n;
        }
        self.skipped += other.skipped;
    }
}

/// ParseChunk's output: a few numbers, whatever the chunk holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkAck {
    pub index: u32,
    pub events: u64,
    pub bytes_read: u64,
}

/// FanOutByTable's three steps (one function; `step` says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum FanOutRequest {
    /// Read the chunk summaries, group the tables into shards by bytes.
    Plan { plan: Box<RunPlan> },
    /// Join one shard's tables into their objects and its slice of the
    /// all-tables object.
    Shard { shard: ShardTask },
    /// Join the shards' slices into the all-tables object.
    Join {
        #[serde(rename = "runId")]
        run_id: String,
    },
}

/// One fan-out shard to join (an item of the FanOutShards Map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardTask {
    pub run_id: String,
    pub shard: u32,
}

/// PlanFanOut's output: the shards (at most [`MAX_FANOUT_SHARDS`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutPlanned {
    pub shards: Vec<ShardTask>,
    pub tables: u32,
    pub events: u64,
}

/// A shard's output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardAck {
    pub shard: u32,
    pub tables: u32,
    pub events: u64,
}

/// JoinAllTables' output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinOutput {
    /// The all-tables object in the run's staging (none when the run has
    /// no row events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub slices: u32,
}

/// A table's totals in a run, and the shard that joins it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableTotals {
    /// `schema.table`.
    pub name: String,
    pub schema: String,
    pub table: String,
    pub count: u64,
    pub last_timestamp: u32,
    /// Staged bytes.
    pub bytes: u64,
    pub shard: u32,
}

/// The run's fan-out, stored by PlanFanOut at `staging/{runId}/fanout.json`:
/// every table's totals (in name order) and the shard count. Read by the
/// shards, the join and the commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOutPlan {
    pub run_id: String,
    /// The last row event's timestamp in the run (`None`: no row events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u32>,
    pub tables: Vec<TableTotals>,
    pub shards: u32,
    /// Binlog bytes the run's chunks read.
    #[serde(default)]
    pub bytes_read: u64,
    /// The MySQL GTIDs the run's chunks read, in order: with the set at the
    /// run's start, the executed set at its end (the checkpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtids: Option<GtidTrail>,
    /// The statements the run's chunks read.
    #[serde(default, skip_serializing_if = "StatementCounts::is_empty")]
    pub statements: StatementCounts,
    /// The schema history versions the run's chunks staged (output keys),
    /// in binlog order: published with the run's objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_versions: Vec<String>,
}

impl FanOutPlan {
    /// Row events by `schema.table`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.tables
            .iter()
            .map(|t| (t.name.clone(), t.count))
            .collect()
    }
}

/// One table's staged parts in one chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedParts {
    pub chunk: u32,
    pub sizes: Vec<u64>,
    /// [`TablePart::layouts`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layouts: Vec<Vec<binlog_decoder::typed::TypedColumn>>,
}

/// A shard's tables with their parts, in binlog order: stored by PlanFanOut
/// at `staging/{runId}/shards/{shard}.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardPlan {
    pub shard: u32,
    pub tables: Vec<(TableTotals, Vec<StagedParts>)>,
}

/// What a shard wrote: stored at `staging/{runId}/shards/{shard}.done.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardDone {
    pub shard: u32,
    /// The size of its slice of the all-tables object.
    pub slice_bytes: u64,
}

/// CommitCheckpoint's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInput {
    pub plan: RunPlan,
    #[serde(default, rename = "loop")]
    pub loop_state: LoopState,
}

/// Where an execution stands after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Progress {
    /// The run reached the server's position (or the replay's end).
    CaughtUp,
    /// The run stopped at its budget: more is waiting for the next
    /// iteration, or the next execution.
    Behind,
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
    pub progress: Progress,
    /// Now minus the newest committed event's timestamp, in seconds (a
    /// committed run with row events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// The loop's next state (`again`: go round).
    #[serde(rename = "loop")]
    pub loop_state: LoopState,
}

/// The checkpoint position inside `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub file: String,
    pub pos: u64,
    /// `file:pos`, the same position as one string.
    pub position: BinlogPosition,
    /// The GTID position there: MariaDB's GTID state (`0-1-5`), MySQL's
    /// executed GTID set (`uuid:1-100`; absent until known, see
    /// CommitCheckpoint). What `restartAt: "gtid:…"` takes.
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
    /// Where the committed run started (absent in checkpoints of earlier
    /// versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<BinlogPosition>,
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
    /// The binlog history the position is in (absent in checkpoints of
    /// earlier versions: then the next commit records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<BinlogHistory>,
    /// The snapshot in progress or last finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
}

#[cfg(test)]
#[path = "contracts_asl.rs"]
pub(crate) mod asl;

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

    /// A plan with every field set and one chunk (the round trips here, and
    /// the definition's data flow in `contracts_asl.rs`).
    pub(super) fn sample_plan() -> RunPlan {
        let p = |s: &str| s.parse::<BinlogPosition>().unwrap();
        let chunk = Chunk {
            run_id: "r".into(),
            index: 0,
            from: p("binlog.000001:4"),
            to: p("binlog.000001:900"),
            server_id: 7,
            kind: ChunkKind::Binlog,
            run_from: None,
        };
        RunPlan {
            status: RunStatus::Run,
            run_id: "r".into(),
            from: Some(p("binlog.000001:4")),
            to: Some(p("binlog.000002:10")),
            more: true,
            commit: true,
            meta_etag: Some("\"e\"".into()),
            to_gtid: Some("0-1-5".into()),
            to_history: Some(BinlogHistory {
                server: "server_id:1,gtid_domain_id:0".into(),
                file: "binlog.000002".into(),
                file_created: 1_790_000_000,
                gtid_executed: None,
            }),
            planned_at_ms: Some(1_790_000_000_000),
            behind_bytes: Some(1 << 30),
            retention_headroom: Some(crate::metrics::Headroom::new(86_400, 3_600)),
            chunks: vec![chunk],
            max_concurrency: 4,
            reason: None,
            execution: Some("arn:aws:states:us-east-1:1:execution:m:e".into()),
            snapshot: Some(SnapshotProgress {
                id: "s1".into(),
                tables: 3,
                tables_done: 1,
                after: Some(vec![KeyValue::UInt(7)]),
                ranges: 2,
            }),
            follow: None,
            loop_state: None,
        }
    }

    #[test]
    fn every_payload_round_trips_in_camel_case() {
        let p = |s: &str| s.parse::<BinlogPosition>().unwrap();
        let plan = sample_plan();
        let chunk = plan.chunks[0].clone();
        let json = round_trip(&plan);
        assert_eq!(
            json["execution"],
            "arn:aws:states:us-east-1:1:execution:m:e"
        );
        assert_eq!(json["metaEtag"], "\"e\"");
        assert_eq!(json["toHistory"]["fileCreated"], 1_790_000_000);
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
                    layouts: vec![vec![binlog_decoder::typed::TypedColumn {
                        name: "id".into(),
                        value: binlog_decoder::typed::ValueType::Int {
                            bits: 32,
                            unsigned: false,
                        },
                    }]],
                },
            )]
            .into(),
            bytes_read: 100,
            last_timestamp: Some(9),
            gtids: Some(GtidTrail {
                file_start: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".parse().unwrap()),
                transactions: "3e11fa47-71ca-11e1-9e33-c80aa9429562:6".parse().unwrap(),
            }),
            statements: StatementCounts {
                written: [("truncate".to_string(), 2)].into(),
                skipped: 1,
            },
            schema_versions: vec!["schemas/s/t/binlog.000001-00000000000000000123.json".into()],
        };
        assert_eq!(round_trip(&summary)["tables"]["s.t"]["lastTimestamp"], 9);
        assert_eq!(round_trip(&summary)["statements"]["written"]["truncate"], 2);
        assert_eq!(round_trip(&summary)["statements"]["skipped"], 1);
        assert_eq!(
            round_trip(&summary)["gtids"]["fileStart"],
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"
        );
        assert_eq!(round_trip(&summary)["tables"]["s.t"]["sizes"][0], 312);
        round_trip(&ChunkAck {
            index: 3,
            events: 10,
            bytes_read: 99,
        });
        let shard = FanOutRequest::Shard {
            shard: ShardTask {
                run_id: "r".into(),
                shard: 2,
            },
        };
        let json = round_trip(&shard);
        assert_eq!(json["step"], "shard");
        assert_eq!(json["shard"]["runId"], "r");
        assert_eq!(
            round_trip(&FanOutRequest::Join { run_id: "r".into() })["runId"],
            "r"
        );
        assert_eq!(
            round_trip(&FanOutRequest::Plan {
                plan: Box::new(plan.clone())
            })["plan"]["more"],
            true
        );
        let totals = TableTotals {
            name: "s.t".into(),
            schema: "s".into(),
            table: "t".into(),
            count: 3,
            last_timestamp: 9,
            bytes: 312,
            shard: 0,
        };
        round_trip(&FanOutPlan {
            run_id: "r".into(),
            timestamp: Some(9),
            tables: vec![totals.clone()],
            shards: 1,
            bytes_read: 4096,
            gtids: summary.gtids.clone(),
            statements: summary.statements.clone(),
            schema_versions: summary.schema_versions.clone(),
        });
        let parts = StagedParts {
            chunk: 0,
            sizes: vec![312],
            layouts: summary.tables["s.t"].layouts.clone(),
        };
        round_trip(&ShardPlan {
            shard: 0,
            tables: vec![(totals, vec![parts])],
        });
        round_trip(&ShardDone {
            shard: 0,
            slice_bytes: 312,
        });
        round_trip(&FanOutPlanned::default());
        round_trip(&ShardAck::default());
        round_trip(&JoinOutput::default());
        let loop_state = LoopState {
            iteration: 1,
            history_events: 100,
            resume_from: Some(p("binlog.000002:10")),
            again: true,
            then: Some(Then::Poll),
        };
        assert!(round_trip(&CommitInput {
            plan: plan.clone(),
            loop_state: loop_state.clone(),
        })
        .get("loop")
        .is_some());
        let out = CommitOutput {
            committed: true,
            run_id: "r".into(),
            position: p("binlog.000002:10"),
            meta_etag: None,
            progress: Progress::Behind,
            lag_seconds: Some(42),
            loop_state,
        };
        let json = round_trip(&out);
        assert_eq!(json["lagSeconds"], 42);
        assert_eq!(json["progress"], "behind");
        assert_eq!(json["loop"]["again"], true);
        let input: ListBinlogsInput = serde_json::from_str(r#"{"input":{"from":"binlog.000010:4","to":"binlog.000012:999","commit":false},"executionArn":"arn:x"}"#).unwrap();
        assert_eq!(input.input.commit, Some(false));
        round_trip(&input);
        assert!(
            serde_json::from_str::<RunInput>(r#"{"form":"binlog.000001:4"}"#).is_err(),
            "typos are refused"
        );
        round_trip(&Meta {
            timestamp: Some(9),
            from: Some(p("binlog.000001:4")),
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
            history: None,
            snapshot: Some(SnapshotState {
                progress: SnapshotProgress {
                    id: "s1".into(),
                    tables: 2,
                    tables_done: 1,
                    after: Some(vec![KeyValue::Int(5), KeyValue::Bytes(b"k".to_vec())]),
                    ranges: 3,
                },
                table_names: vec!["a.b".into(), "a.c".into()],
            }),
        });
        for (text, want) in [
            ("oldest", RestartAt::Oldest),
            ("latest", RestartAt::Latest),
            ("binlog.000001:4", RestartAt::At(p("binlog.000001:4"))),
            (
                "gtid:0-1-5,1-2-7",
                RestartAt::AfterGtid("0-1-5,1-2-7".into()),
            ),
        ] {
            let input: RunInput =
                serde_json::from_value(serde_json::json!({ "restartAt": text })).unwrap();
            assert_eq!(input.restart_at.as_ref(), Some(&want));
            assert_eq!(round_trip(&input)["restartAt"], text);
        }
        assert!(serde_json::from_str::<RunInput>(r#"{"restartAt":"newest"}"#).is_err());
    }

    /// The largest state the definition can hold (at CommitCheckpoint: the
    /// input, the loop, the plan at MAX_RUN_CHUNKS_LIMIT chunks with long
    /// names, and MAX_FANOUT_SHARDS shards) stays under 64 KiB.
    #[test]
    fn the_largest_state_stays_under_64_kib() {
        let p = |s: &str| s.parse::<BinlogPosition>().unwrap();
        let chunks: Vec<Chunk> = (0..crate::config::MAX_RUN_CHUNKS_LIMIT)
            .map(|i| Chunk {
                run_id: "0123456789abcdef".into(),
                index: i,
                from: p("mysql-bin-changelog.123456:4294967295"),
                to: p("mysql-bin-changelog.123457:4294967295"),
                server_id: 4_294_967_295,
                kind: ChunkKind::Snapshot,
                run_from: None,
            })
            .collect();
        let plan = RunPlan {
            status: RunStatus::Run,
            run_id: "0123456789abcdef".into(),
            from: Some(p("mysql-bin-changelog.123456:4294967295")),
            to: Some(p("mysql-bin-changelog.123457:4294967295")),
            more: true,
            commit: true,
            meta_etag: Some("\"0123456789abcdef0123456789abcdef-1234\"".into()),
            to_gtid: Some("0-4294967295-18446744073709551615".repeat(4)),
            to_history: Some(BinlogHistory {
                server: format!("server_uuid:{}", "f".repeat(36)),
                file: "mysql-bin-changelog.123457".into(),
                file_created: u32::MAX,
                // The largest set a checkpoint records (many failovers'
                // UUIDs): larger ones are not recorded.
                gtid_executed: Some("f".repeat(crate::history::MAX_RECORDED_GTID_SET)),
            }),
            planned_at_ms: Some(u64::MAX),
            behind_bytes: Some(u64::MAX),
            retention_headroom: Some(crate::metrics::Headroom::new(u64::MAX / 4, 0)),
            chunks,
            max_concurrency: 40,
            reason: None,
            execution: Some(format!(
                "arn:aws:states:us-east-1:123456789012:execution:{}:{}",
                "m".repeat(80),
                "e".repeat(80)
            )),
            // A snapshot inside a table whose key is as long as InnoDB
            // allows (3072 bytes).
            snapshot: Some(SnapshotProgress {
                id: "s1790000000000".into(),
                tables: u32::MAX,
                tables_done: u32::MAX - 1,
                after: Some(vec![KeyValue::Bytes(vec![0xff; 3072])]),
                ranges: u32::MAX,
            }),
            follow: None,
            loop_state: None,
        };
        let shards: Vec<ShardTask> = (0..MAX_FANOUT_SHARDS)
            .map(|shard| ShardTask {
                run_id: "0123456789abcdef".into(),
                shard,
            })
            .collect();
        let state = serde_json::json!({
            "input": {"from": "mysql-bin-changelog.123456:4", "to": "mysql-bin-changelog.123457:4", "commit": false},
            "loop": LoopState { iteration: 99, history_events: 19_999, resume_from: plan.to.clone(), again: true, then: None },
            "plan": plan,
            "fanOut": FanOutPlanned { shards, tables: u32::MAX, events: u64::MAX },
        });
        let bytes = serde_json::to_vec(&state).unwrap().len();
        assert!(bytes <= 64 << 10, "{bytes} bytes");
    }

    #[test]
    fn a_follower_polls_while_its_history_has_room_then_hands_over() {
        let f = Some(Follow { poll_seconds: 5 });
        let (worst, budget) = (5_000, 20_000);
        let room = budget - worst - IDLE_POLL_HISTORY_EVENTS;
        assert_eq!(
            LoopState::follow_on(f, false, room, worst, budget),
            Some(Then::Poll)
        );
        assert_eq!(
            LoopState::follow_on(f, false, room + 1, worst, budget),
            Some(Then::HandOver)
        );
        // Going round at once (a backlog) needs no wait; without follow, nothing.
        assert_eq!(LoopState::follow_on(f, true, 0, worst, budget), None);
        assert_eq!(LoopState::follow_on(None, false, 0, worst, budget), None);
        // An idle poll: WaitToPoll, ListBinlogs with its retries, AnythingToDo, CaughtUp, FollowOn.
        assert_eq!(IDLE_POLL_HISTORY_EVENTS, 2 + 35 + 2 + 2 + 2);
    }

    #[test]
    fn an_iteration_costs_what_the_definition_spends() {
        // 4 Tasks (35 each, retries included), 2 Choices and a Pass (6), 2
        // Maps (8); 37 per item.
        assert_eq!(iteration_history_events(0, 0), 154);
        assert_eq!(iteration_history_events(8, 64), 154 + 37 * 72);
        // The largest iteration the settings allow fits the budget (an
        // execution's first iteration always runs); at the defaults (64
        // chunks and 8 snapshot ranges) an execution runs three.
        let largest =
            iteration_history_events(crate::config::MAX_RUN_CHUNKS_LIMIT, MAX_FANOUT_SHARDS);
        assert!(largest <= HISTORY_EVENT_BUDGET, "{largest}");
        let default = iteration_history_events(64 + 8, MAX_FANOUT_SHARDS);
        assert!(3 * default <= HISTORY_EVENT_BUDGET, "{default}");
    }
}
