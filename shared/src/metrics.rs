//! A run's figures for operators, as CloudWatch embedded metric format (EMF):
//! one JSON line on stdout per step, which CloudWatch Logs turns into metrics
//! (no API call, no permission). Namespace [`NAMESPACE`], one dimension,
//! `Pipeline` (the stack's name, `PIPELINE_NAME`), so the stack's alarms can
//! name the metrics of their own pipeline.
//!
//! | metric | unit | from | what |
//! |---|---|---|---|
//! | `BytesBehind` | Bytes | ListBinlogs | binlog between the run's start and the server's position at planning |
//! | `RetentionHeadroomSeconds`, `RetentionHeadroomPercent` | Seconds, Percent | ListBinlogs | how long until the server's retention would purge the checkpoint's file (its age against the retention setting) |
//! | `RowEvents`, `BinlogBytesRead` | Count, Bytes | CommitCheckpoint | what the committed run read (its events: rows, and statements about tables) |
//! | `RunDurationSeconds` | Seconds | CommitCheckpoint | from planning to commit |
//! | `LagSeconds` | Seconds | CommitCheckpoint | now minus the newest committed event's timestamp |

use serde::{Deserialize, Serialize};

/// The metrics' CloudWatch namespace.
pub const NAMESPACE: &str = "binlog-cdc";

/// One figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &'static str, unit: &'static str, value: f64) -> Self {
        Self { name, unit, value }
    }
}

/// How long until the checkpoint's binlog file is purged by the server's
/// retention: `seconds` (negative: overdue) and `percent` of the retention.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Headroom {
    pub seconds: i64,
    pub percent: f64,
}

impl Headroom {
    /// From the retention (seconds) and the age of the file's first event.
    pub fn new(retention_secs: u64, file_age_secs: u64) -> Self {
        let seconds = retention_secs as i64 - file_age_secs as i64;
        let percent = if retention_secs == 0 {
            0.0
        } else {
            (seconds as f64 / retention_secs as f64 * 100.0).clamp(0.0, 100.0)
        };
        Self { seconds, percent }
    }
}

/// The EMF document for `metrics` of `pipeline` at `timestamp_ms`.
pub fn emf(pipeline: &str, metrics: &[Metric], timestamp_ms: u64) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Pipeline"]],
                "Metrics": metrics
                    .iter()
                    .map(|m| serde_json::json!({"Name": m.name, "Unit": m.unit}))
                    .collect::<Vec<_>>(),
            }],
        },
        "Pipeline": pipeline,
    });
    for m in metrics {
        doc[m.name] = serde_json::json!(m.value);
    }
    doc
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes `metrics` as one EMF line on stdout, inside a Lambda (where stdout
/// is the function's log); elsewhere (the CLI, whose stdout is its report;
/// the tests) they go to the debug log.
pub fn emit(metrics: &[Metric]) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        tracing::debug!(?metrics, "metrics");
        return;
    }
    if metrics.is_empty() {
        return;
    }
    let pipeline = std::env::var("PIPELINE_NAME").unwrap_or_else(|_| NAMESPACE.to_string());
    println!("{}", emf(&pipeline, metrics, now_ms()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_each_metric_and_carries_its_value() {
        let doc = emf(
            "shop-cdc",
            &[
                Metric::new("LagSeconds", "Seconds", 42.0),
                Metric::new("RowEvents", "Count", 7.0),
            ],
            1_790_000_000_123,
        );
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_790_000_000_123u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Pipeline"]]));
        assert_eq!(
            directive["Metrics"][0],
            serde_json::json!({"Name": "LagSeconds", "Unit": "Seconds"})
        );
        // Every dimension and metric named in the directive is a member.
        assert_eq!(doc["Pipeline"], "shop-cdc");
        assert_eq!(doc["LagSeconds"], 42.0);
        assert_eq!(doc["RowEvents"], 7.0);
        assert!(!doc.to_string().contains('\n'), "one line");
    }

    #[test]
    fn headroom_is_what_is_left_of_the_retention() {
        let h = Headroom::new(86_400, 21_600);
        assert_eq!(h.seconds, 64_800);
        assert!((h.percent - 75.0).abs() < 1e-9);
        let overdue = Headroom::new(3_600, 7_200);
        assert_eq!((overdue.seconds, overdue.percent), (-3_600, 0.0));
    }
}
