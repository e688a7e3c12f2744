//! The pipeline's error type, and the stable names Step Functions sees.
//!
//! A step fails with the decoder's error ([`Error::Decoder`]: decoding,
//! reading the server) or one of the pipeline's own: a setting or input that
//! cannot work, the object store or another AWS service failing, a
//! conditional write losing, another run committing first, the binlog
//! history changing under the checkpoint. [`Error::name`] maps each to one of
//! a few stable [`names`], which the state machine's `Retry` and `Catch`
//! match on; [`Error::is_retryable`] says which of them a retry can fix.

use binlog_decoder::error::ErrorKind;
use binlog_decoder::BinlogPosition;

/// Any error an underlying library returns, kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Stable error names, as seen by Step Functions (`Retry`/`Catch` match on them).
pub mod names {
    /// A passing fault: the network, the server restarting, S3 throttling. Retry.
    pub const TRANSIENT: &str = "Transient";
    /// The checkpoint's binlog file is gone from the server. Definite.
    pub const BINLOG_PURGED: &str = "BinlogPurged";
    /// Bytes or metadata that cannot be decoded exactly. Definite.
    pub const DECODE: &str = "DecodeError";
    /// A setting, flag, input or server configuration that cannot work. Definite.
    pub const CONFIG: &str = "ConfigError";
    /// Another run committed first. Definite; an expected outcome when
    /// runs overlap (the state machine ends such an execution successfully).
    pub const CONCURRENT_RUN: &str = "ConcurrentRun";
    /// The endpoint reaches a read-only instance or a proxy, which cannot
    /// serve the binary log. Definite.
    pub const NOT_THE_WRITER: &str = "NotTheWriter";
    /// The checkpoint's file names another history now (RESET MASTER, a
    /// restore, another server behind the endpoint). Definite.
    pub const BINLOG_HISTORY_CHANGED: &str = "BinlogHistoryChanged";

    /// Every name [`super::Error::name`] can return.
    pub const ALL: [&str; 7] = [
        TRANSIENT,
        BINLOG_PURGED,
        DECODE,
        CONFIG,
        CONCURRENT_RUN,
        NOT_THE_WRITER,
        BINLOG_HISTORY_CHANGED,
    ];
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Decoding, or reading the server or a file.
    #[error(transparent)]
    Decoder(binlog_decoder::Error),

    /// A setting, flag, execution input or payload that cannot work.
    #[error("{0}")]
    Config(String),

    /// A value this version could not write as JSON: a defect, not a setting.
    #[error("encoding {what} as JSON: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// The object store or another AWS service failed (S3, Secrets Manager,
    /// Step Functions, EventBridge, a local directory). `msg` says what came
    /// back; `source`, where there is one, is the client's own error.
    #[error("{context}: {msg}")]
    Storage {
        context: String,
        msg: String,
        retryable: bool,
        #[source]
        source: Option<BoxError>,
    },

    /// A step's task ended without an answer (it panicked or was
    /// cancelled): in AWS, a Lambda that crashed, which a retry can outlive.
    #[error("{step}: {why}")]
    StepLost { step: String, why: &'static str },

    /// A conditional write found the object changed (or present).
    #[error("{key} changed since it was read (another run wrote it)")]
    PreconditionFailed { key: String },

    /// Another run committed first; this one commits nothing.
    #[error("{0}")]
    ConcurrentRun(String),

    /// The checkpoint's position no longer holds the history it was taken
    /// in: reading on from it would skip or mis-decode events.
    #[error("the binlog history changed under the checkpoint {checkpoint}: {what}. Nothing was read. To go on: replay what you need with {{\"from\": \"FILE:POS\", \"to\": \"FILE:POS\", \"commit\": false}}, then restart the stream with the execution input {{\"restartAt\": \"oldest\"}} (or \"latest\", \"FILE:POS\", or \"gtid:STATE\" with the checkpoint's gtid, where a new server has the same transactions; binlog-cdc run --restart-at)")]
    BinlogHistoryChanged {
        checkpoint: BinlogPosition,
        what: String,
    },
}

/// The decoder's error, or ours back from the sink or lookup it was
/// carried through (see [`binlog_decoder::Error::Caller`]).
impl From<binlog_decoder::Error> for Error {
    fn from(e: binlog_decoder::Error) -> Self {
        match e {
            binlog_decoder::Error::Caller(caller) => match caller.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::Decoder(binlog_decoder::Error::Caller(other)),
            },
            e => Error::Decoder(e),
        }
    }
}

/// Ours, carried through the decoder from a sink or lookup we gave it.
impl From<Error> for binlog_decoder::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Decoder(e) => e,
            ours => binlog_decoder::Error::Caller(Box::new(ours)),
        }
    }
}

impl Error {
    /// A storage failure with no client error beneath it (a short body, a
    /// missing object, a refused key).
    pub fn storage(context: impl Into<String>, msg: impl Into<String>, retryable: bool) -> Self {
        Self::Storage {
            context: context.into(),
            msg: msg.into(),
            retryable,
            source: None,
        }
    }

    /// A storage failure caused by a client's error, which stays its source.
    pub fn storage_from(
        context: impl Into<String>,
        source: impl Into<BoxError>,
        retryable: bool,
    ) -> Self {
        let source = source.into();
        Self::Storage {
            context: context.into(),
            msg: source.to_string(),
            retryable,
            source: Some(source),
        }
    }

    /// A value that could not be written as JSON.
    pub fn encode(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Encode {
            what: what.into(),
            source,
        }
    }

    /// A database error outside the decoder (init-db's setup): the decoder
    /// owns the server's vocabulary, so it says whether a retry can help.
    pub fn mysql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        Self::Decoder(binlog_decoder::Error::mysql(context, source))
    }

    /// The decoder's error beneath this one, if it is one.
    pub fn decoder(&self) -> Option<&binlog_decoder::Error> {
        match self {
            Error::Decoder(e) => Some(e),
            _ => None,
        }
    }

    /// The stable name Step Functions sees (one of [`names::ALL`]).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Decoder(e) => match e.kind() {
                ErrorKind::Transient => names::TRANSIENT,
                ErrorKind::Undecodable => names::DECODE,
                ErrorKind::Misconfigured => names::CONFIG,
                ErrorKind::BinlogPurged => names::BINLOG_PURGED,
                ErrorKind::NotTheWriter => names::NOT_THE_WRITER,
                // Ours come back as themselves (see `From`): this is
                // someone else's, which nothing here knows how to retry.
                ErrorKind::Caller => names::CONFIG,
            },
            Error::Config(_) | Error::Encode { .. } => names::CONFIG,
            Error::StepLost { .. } => names::TRANSIENT,
            Error::Storage {
                retryable: true, ..
            } => names::TRANSIENT,
            Error::Storage {
                retryable: false, ..
            } => names::CONFIG,
            Error::PreconditionFailed { .. } | Error::ConcurrentRun(_) => names::CONCURRENT_RUN,
            Error::BinlogHistoryChanged { .. } => names::BINLOG_HISTORY_CHANGED,
        }
    }

    /// Whether running the same step again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.name() == names::TRANSIENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_errors_keep_their_text_and_take_a_name() {
        let at = BinlogPosition::new("binlog.000042", 1234);
        let e: Error = binlog_decoder::Error::Value {
            at,
            table: "shop.orders".into(),
            column: "total".into(),
            msg: "bad".into(),
        }
        .into();
        assert_eq!(e.to_string(), "binlog.000042:1234: shop.orders.total: bad");
        assert_eq!(e.name(), names::DECODE);
        assert!(!e.is_retryable());
        let purged: Error = binlog_decoder::Error::BinlogPurged {
            file: "binlog.000001".into(),
            msg: "gone".into(),
        }
        .into();
        assert_eq!(purged.name(), names::BINLOG_PURGED);
        let io: Error = binlog_decoder::Error::io("stdout", std::io::Error::other("x")).into();
        assert!(io.is_retryable());
    }

    #[test]
    fn storage_keeps_the_client_error_as_its_source() {
        let e = Error::storage_from("GET s3://b/k", std::io::Error::other("reset"), true);
        assert_eq!(e.to_string(), "GET s3://b/k: reset");
        assert_eq!(e.name(), names::TRANSIENT);
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("reset"));
        assert!(!Error::storage("PUT", "refused", false).is_retryable());
    }

    #[test]
    fn ours_come_back_through_the_decoder_as_they_were() {
        let ours = Error::storage("PUT s3://b/k", "SlowDown", true);
        let carried: binlog_decoder::Error = ours.into();
        assert_eq!(carried.kind(), ErrorKind::Caller);
        let back = Error::from(carried);
        assert!(
            matches!(
                &back,
                Error::Storage {
                    retryable: true,
                    ..
                }
            ),
            "{back}"
        );
        assert_eq!(back.to_string(), "PUT s3://b/k: SlowDown");
        let decoded = binlog_decoder::Error::Config("x".into());
        assert!(matches!(Error::from(decoded), Error::Decoder(_)));
    }

    #[test]
    fn every_name_is_listed() {
        let decoder = |e: binlog_decoder::Error| Error::from(e);
        let at = BinlogPosition::new("binlog.000001", 4);
        let errors = [
            decoder(binlog_decoder::Error::malformed(&at, "event", "x")),
            decoder(binlog_decoder::Error::Config("x".into())),
            decoder(binlog_decoder::Error::io("x", std::io::Error::other("x"))),
            decoder(binlog_decoder::Error::BinlogPurged {
                file: "x".into(),
                msg: "x".into(),
            }),
            decoder(binlog_decoder::Error::NotTheWriter {
                endpoint: "x".into(),
                reason: "x".into(),
            }),
            decoder(binlog_decoder::Error::Caller("not ours".into())),
            Error::Config("x".into()),
            Error::storage("c", "m", true),
            Error::storage("c", "m", false),
            Error::PreconditionFailed { key: "k".into() },
            Error::ConcurrentRun("x".into()),
            Error::encode("x", serde_json::Error::io(std::io::Error::other("x"))),
            Error::StepLost {
                step: "x".into(),
                why: "its task panicked",
            },
            Error::BinlogHistoryChanged {
                checkpoint: BinlogPosition::new("binlog.000001", 4),
                what: "x".into(),
            },
        ];
        for e in &errors {
            assert!(names::ALL.contains(&e.name()), "{}", e.name());
        }
        for name in names::ALL {
            assert!(errors.iter().any(|e| e.name() == name), "{name} never made");
        }
    }

    const ASL: &str = include_str!("../../statemachine/binlog-pipeline.asl.json");

    /// Names the service raises itself (a Lambda that crashed or timed
    /// out, a throttled invocation); the definition may match them too.
    fn the_services(name: &str) -> bool {
        ["States.", "Lambda.", "Sandbox."]
            .iter()
            .any(|p| name.starts_with(p))
    }

    fn error_equals(rules: Option<&serde_json::Value>) -> Vec<String> {
        let rules = rules
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        rules
            .iter()
            .flat_map(|r| r["ErrorEquals"].as_array().cloned().unwrap_or_default())
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Each Task state with what it retries and what it, or a Map state
    /// around it, catches.
    fn tasks(
        states: &serde_json::Map<String, serde_json::Value>,
        caught_around: &[String],
        out: &mut Vec<(String, Vec<String>, Vec<String>)>,
    ) {
        for (name, state) in states {
            let mut caught = error_equals(state.get("Catch"));
            caught.extend_from_slice(caught_around);
            match state["Type"].as_str() {
                Some("Task") if crate::contracts::asl::invokes_a_function(state) => {
                    out.push((name.clone(), error_equals(state.get("Retry")), caught))
                }
                Some("Map") => {
                    let inner = &state["ItemProcessor"]["States"];
                    tasks(inner.as_object().expect("a Map's states"), &caught, out);
                }
                _ => {}
            }
        }
    }

    /// The definition and the code agree on the names: every name a
    /// `Retry` or `Catch` matches is one the code can produce, and every
    /// name the code produces is handled at every task: retried, or caught
    /// (ending the execution at `AnotherRunFirst` or `Failed`). A
    /// `Transient` error whose retries run out is deliberately left to fail
    /// the execution: nothing was committed, and the next run redoes it.
    #[test]
    fn the_state_machine_matches_the_names_the_code_produces() {
        let asl: serde_json::Value = serde_json::from_str(ASL).expect("the definition is JSON");
        let mut found = Vec::new();
        tasks(asl["States"].as_object().expect("States"), &[], &mut found);
        assert!(found.len() >= 5, "{found:?}");
        for (task, retried, caught) in &found {
            for name in retried.iter().chain(caught) {
                assert!(
                    the_services(name) || names::ALL.contains(&name.as_str()),
                    "{task} matches {name}, which no error of the code is named"
                );
            }
            for name in names::ALL {
                let is_retried = retried.iter().any(|n| n == name);
                let is_caught = caught.iter().any(|n| n == name);
                assert!(
                    is_retried || is_caught,
                    "{task} neither retries nor catches {name}"
                );
                let definite = name != names::TRANSIENT;
                assert!(
                    !(definite && is_retried),
                    "{task} retries {name}, which is definite"
                );
            }
            assert!(
                retried.iter().any(|n| n == names::TRANSIENT),
                "{task} does not retry Transient"
            );
        }
    }
}
