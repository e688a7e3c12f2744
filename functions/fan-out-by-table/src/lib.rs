//! FanOutByTable: turns a run's staged parts into its outputs, in three
//! steps that keep every call and every payload bounded, whatever the
//! number of tables or bytes:
//!
//! ```text
//! plan  (PlanFanOut)     chunk summaries ─▶ table totals, shards by bytes   (plan.rs)
//! shard (FanOutShards)   one shard's tables ─▶ their objects + an all-tables slice (shard.rs)
//! join  (JoinAllTables)  slices ─▶ the all-tables object, copied by the store (join.rs)
//! ```
//!
//! Everything per table lives in the run's staging; the state machine sees
//! shard indices and counts. Under `parquet`, a table's object is typed
//! rows (parquet/); the all-tables object stays an event stream.

mod emitter;
pub mod join;
pub mod parquet;
pub mod plan;
pub mod shard;

use binlog_cdc::contracts::FanOutRequest;
use binlog_cdc::error::Result;
use binlog_cdc::pipeline::Deps;

pub async fn handle(request: FanOutRequest, deps: &Deps) -> Result<serde_json::Value> {
    let out = match &request {
        FanOutRequest::Plan { plan } => serde_json::to_value(plan::handle(plan, deps).await?),
        FanOutRequest::Shard { shard } => serde_json::to_value(shard::handle(shard, deps).await?),
        FanOutRequest::Join { run_id } => serde_json::to_value(join::handle(run_id, deps).await?),
    };
    out.map_err(|e| binlog_cdc::Error::encode("the fan-out answer", e))
}
