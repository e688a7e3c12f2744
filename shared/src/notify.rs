//! `RunCommitted`: after each commit, one event to Amazon EventBridge tells
//! consumers what the run published.
//!
//! ```text
//! source       binlog-cdc
//! detail-type  RunCommitted
//! detail       RunCommitted (below), camelCase
//! ```
//!
//! Delivery is at least once: a retried or redriven commit, or the next
//! run's commit finishing an unfinished one, sends the same detail again.
//! Consumers de-duplicate on `detail.runId` (a pure function of the range
//! and the output settings; EventBridge's own event `id` differs per send).
//! When the detail would pass EventBridge's 256 KB entry limit, the per-table
//! counts and the keys go to a manifest object and the detail names it.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::{Deserialize, Serialize};

use crate::contracts::{FanOutPlan, Meta};
use crate::error::{Error, Result};
use binlog_decoder::position::BinlogPosition;

pub const SOURCE: &str = "binlog-cdc";
pub const DETAIL_TYPE: &str = "RunCommitted";

/// A detail larger than this goes by manifest: the entry limit is 256 KB
/// for source, detail-type, detail and resources together.
pub const MAX_DETAIL_BYTES: usize = 200 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommitted {
    /// The stack (`PIPELINE_NAME`), so one rule can tell pipelines apart.
    pub pipeline: String,
    pub run_id: String,
    /// Where the run started; absent in a commit that finishes an earlier
    /// execution's run whose start was not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<BinlogPosition>,
    pub to: BinlogPosition,
    /// The GTID position at `to`, when known (`meta.json`'s
    /// `position.gtid`: MariaDB's GTID state, MySQL's executed GTID set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    pub committed_at: String,
    /// The newest row event's header timestamp (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<u32>,
    pub tables: u64,
    pub events: u64,
    /// Row events per `schema.table` (empty when `manifest` is set).
    pub counts: BTreeMap<String, u64>,
    /// Every key the run published (empty when `manifest` is set).
    pub outputs: Vec<String>,
    /// The object holding `counts` and `outputs` when they would not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// What a manifest object holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    pub counts: BTreeMap<String, u64>,
    pub outputs: Vec<String>,
}

impl RunCommitted {
    /// The event for a committed `meta` (the run's fan-out plan gives the
    /// totals; `meta` the rest).
    pub fn new(pipeline: &str, meta: &Meta, fan: &FanOutPlan) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            run_id: meta.run_id.clone(),
            from: meta.from.clone(),
            to: meta.position.position.clone(),
            gtid: meta.position.gtid.clone(),
            committed_at: meta.committed_at.clone(),
            last_timestamp: fan.timestamp,
            tables: fan.tables.len() as u64,
            events: fan.tables.iter().map(|t| t.count).sum(),
            counts: meta.counts.clone(),
            outputs: meta.outputs.clone(),
            manifest: None,
        }
    }

    pub fn detail(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::encode("the RunCommitted event", e))
    }

    /// When the detail is too large: the manifest to store at `key`, and
    /// the detail without its lists. `None` when it fits.
    pub fn split_if_large(&mut self, key: &str) -> Result<Option<Manifest>> {
        if self.detail()?.len() <= MAX_DETAIL_BYTES {
            return Ok(None);
        }
        self.manifest = Some(key.to_string());
        Ok(Some(Manifest {
            run_id: self.run_id.clone(),
            // A MySQL executed set grows with the sources a server has had.
            gtid: self.gtid.take(),
            counts: std::mem::take(&mut self.counts),
            outputs: std::mem::take(&mut self.outputs),
        }))
    }
}

/// An EventBridge bus to put events on.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
    /// What `detail.pipeline` says.
    pub pipeline: String,
}

impl EventBus {
    pub fn new(conf: &aws_config::SdkConfig, name: &str, pipeline: &str) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(conf),
            name: name.to_string(),
            pipeline: pipeline.to_string(),
        }
    }

    /// From `EVENT_BUS_NAME` (unset or empty: no events) and `PIPELINE_NAME`
    /// (default `binlog-cdc`).
    pub fn from_env(conf: &aws_config::SdkConfig) -> Option<Self> {
        let pipeline = std::env::var("PIPELINE_NAME").unwrap_or_else(|_| "binlog-cdc".into());
        std::env::var("EVENT_BUS_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .map(|n| Self::new(conf, &n, &pipeline))
    }

    /// Puts one `RunCommitted` event. A failed entry (throttled, an internal
    /// failure) is retryable; the call's own failures as every AWS call's
    /// ([`crate::aws::sdk_error`]).
    pub async fn put(&self, event: &RunCommitted) -> Result<()> {
        let context = format!(
            "PutEvents {DETAIL_TYPE} {} to bus {}",
            event.run_id, self.name
        );
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(event.detail()?)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| crate::aws::sdk_error(context.clone(), e))?;
        if out.failed_entry_count() == 0 {
            tracing::info!(run_id = %event.run_id, bus = %self.name, "RunCommitted sent");
            return Ok(());
        }
        let failed = out.entries().first();
        Err(Error::storage(
            context,
            format!(
                "the entry failed: {} {}",
                failed.and_then(|f| f.error_code()).unwrap_or("unknown"),
                failed.and_then(|f| f.error_message()).unwrap_or("")
            ),
            true,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_detail_moves_its_lists_to_a_manifest() {
        let mut ev = RunCommitted {
            pipeline: "p".into(),
            run_id: "r1".into(),
            from: None,
            to: "binlog.000002:4".parse().unwrap(),
            gtid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9".into()),
            committed_at: "2026-12-01T00:00:00Z".into(),
            last_timestamp: None,
            tables: 1,
            events: 3,
            counts: Default::default(),
            outputs: Vec::new(),
            manifest: None,
        };
        ev.counts.insert("shop.orders".into(), 3);
        ev.outputs.push("cdc/shop/orders/x.json".into());
        assert_eq!(ev.split_if_large("cdc/manifests/r1.json").unwrap(), None);
        for i in 0..5000 {
            ev.outputs.push(format!(
                "cdc/tenant_{i:05}/orders/table-binlog-1-r1.jsonl.gz"
            ));
        }
        let manifest = ev.split_if_large("cdc/manifests/r1.json").unwrap().unwrap();
        assert_eq!(manifest.outputs.len(), 5001);
        assert_eq!(manifest.counts["shop.orders"], 3);
        assert!(manifest.gtid.is_some());
        assert!(ev.outputs.is_empty() && ev.counts.is_empty() && ev.gtid.is_none());
        assert_eq!(ev.manifest.as_deref(), Some("cdc/manifests/r1.json"));
        assert!(ev.detail().unwrap().len() < 1000);
    }
}
