//! The error type of the whole library, and its stable Step Functions names.
//!
//! Every error says where it happened: a binlog position (`binlog.000042:1234`),
//! a table (`shop.orders`) or a column (`shop.orders.total`) where one applies.
//! [`Error::name`] maps each variant to one of a few stable names that the
//! state machine matches on; [`Error::is_retryable`] says which of them a retry
//! can fix.

use crate::position::BinlogPosition;

/// Stable error names, as seen by Step Functions (`Retry`/`Catch` match on them).
pub mod names {
    /// A passing fault: the network, the server restarting, S3 throttling. Retry.
    pub const TRANSIENT: &str = "Transient";
    /// The checkpoint's binlog file is gone from the server. Definite.
    pub(crate) const BINLOG_PURGED: &str = "BinlogPurged";
    /// Bytes or metadata that cannot be decoded exactly. Definite.
    pub const DECODE: &str = "DecodeError";
    /// A setting, flag, input or server configuration that cannot work. Definite.
    pub const CONFIG: &str = "ConfigError";
    /// Another run committed first. Definite; an expected outcome when
    /// runs overlap (the state machine ends such an execution successfully).
    pub(crate) const CONCURRENT_RUN: &str = "ConcurrentRun";
    /// The endpoint reaches a read-only instance or a proxy, which cannot
    /// serve the binary log. Definite.
    pub const NOT_THE_WRITER: &str = "NotTheWriter";
    /// The checkpoint's file names another history now (RESET MASTER, a
    /// restore, another server behind the endpoint). Definite.
    pub const BINLOG_HISTORY_CHANGED: &str = "BinlogHistoryChanged";
}

/// The MySQL/MariaDB server error codes the pipeline branches on
/// (`ServerError::code`), by their server names.
pub mod server_codes {
    pub(crate) const ER_CON_COUNT_ERROR: u16 = 1040;
    pub(crate) const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
    pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
    /// A command the server (or a proxy in front of it) does not know.
    pub(crate) const ER_UNKNOWN_COM_ERROR: u16 = 1047;
    pub const ER_BAD_DB_ERROR: u16 = 1049;
    pub(crate) const ER_SERVER_SHUTDOWN: u16 = 1053;
    pub(crate) const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    /// A table privilege missing (SELECT command denied ...).
    pub(crate) const ER_TABLEACCESS_DENIED_ERROR: u16 = 1142;
    pub(crate) const ER_NO_SUCH_TABLE: u16 = 1146;
    pub(crate) const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub(crate) const ER_LOCK_DEADLOCK: u16 = 1213;
    /// The binlog dump refused: a purged file, a bad offset, a truncated log.
    pub(crate) const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;
    pub const ER_SP_DOES_NOT_EXIST: u16 = 1305;
    pub(crate) const ER_QUERY_INTERRUPTED: u16 = 1317;
    pub(crate) const ER_CONNECTION_KILLED: u16 = 1927;
    /// Client-side codes the driver may report as server errors.
    pub(crate) const CR_SERVER_GONE_ERROR: u16 = 2006;
    pub(crate) const CR_SERVER_LOST: u16 = 2013;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes of an event are not what their header or format says.
    #[error("{at}: malformed {what}: {msg}")]
    Malformed {
        at: BinlogPosition,
        what: &'static str,
        msg: String,
    },

    /// One column's value cannot be represented exactly.
    #[error("{at}: {table}.{column}: {msg}")]
    Value {
        at: BinlogPosition,
        table: String,
        column: String,
        msg: String,
    },

    /// The table's metadata does not fit the row events (the table changed,
    /// or the server did not log what is needed to decode it).
    #[error("{at}: table {table}: {msg}")]
    Schema {
        at: BinlogPosition,
        table: String,
        msg: String,
    },

    /// An event this version cannot decode: failing is better than losing rows.
    #[error("{at}: {msg}")]
    Unsupported { at: BinlogPosition, msg: String },

    /// The requested binlog file is no longer on the server.
    #[error("binlog file {file} is not on the server (purged, or never existed): {msg}")]
    BinlogPurged { file: String, msg: String },

    /// The requested range is not readable as asked (not an event boundary, past the end).
    #[error("{at}: {msg}")]
    BadPosition { at: BinlogPosition, msg: String },

    /// A MySQL protocol or connection error, with what we were doing.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },

    /// A local I/O error, with the path or stream.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A bad flag, setting or input.
    #[error("{0}")]
    Config(String),

    /// A server setting that would lose or mangle rows (init-db's and every
    /// ListBinlogs' preflight), with what it is, what it must be and how to
    /// change it.
    #[error("PreflightFailed: {setting} is {actual}, needs {expected}: {fix}")]
    InvalidSystemSetting {
        setting: String,
        expected: String,
        actual: String,
        fix: String,
    },

    /// The endpoint does not reach the writer's binary log: a reader
    /// (Aurora replica, read replica, `cluster-ro` endpoint), an RDS Proxy
    /// (not supported), or something in front of the server that refuses
    /// the replication request.
    #[error("{endpoint} cannot serve the binary log: {reason}. Only the writer (primary) instance streams it: use the cluster (writer) endpoint itself, not a reader endpoint, an Aurora replica or a proxy")]
    NotTheWriter { endpoint: String, reason: String },

    /// The checkpoint's position no longer holds the history it was taken
    /// in: reading on from it would skip or mis-decode events.
    #[error("the binlog history changed under the checkpoint {checkpoint}: {what}. Nothing was read. To go on: replay what you need with {{\"from\": \"FILE:POS\", \"to\": \"FILE:POS\", \"commit\": false}}, then restart the stream with the execution input {{\"restartAt\": \"oldest\"}} (or \"latest\", \"FILE:POS\", or \"gtid:STATE\" with the checkpoint's gtid, where a new server has the same transactions; binlog-cdc run --restart-at)")]
    BinlogHistoryChanged {
        checkpoint: BinlogPosition,
        what: String,
    },

    /// The object store failed (S3, Secrets Manager, a directory).
    #[error("{context}: {msg}")]
    Storage {
        context: String,
        msg: String,
        retryable: bool,
    },

    /// A conditional write found the object changed (or present).
    #[error("{key} changed since it was read (another run wrote it)")]
    PreconditionFailed { key: String },

    /// A snapshot cannot read a table, or a value of it, exactly (no primary
    /// key, a type it cannot write as the binlog would).
    #[error("snapshot of {table}: {msg}")]
    Snapshot { table: String, msg: String },

    /// Another run committed first; this one commits nothing.
    #[error("{0}")]
    ConcurrentRun(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn mysql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        Self::Mysql {
            context: context.into(),
            source,
        }
    }

    pub fn malformed(at: &BinlogPosition, what: &'static str, msg: impl Into<String>) -> Self {
        Self::Malformed {
            at: at.clone(),
            what,
            msg: msg.into(),
        }
    }

    /// The stable name Step Functions sees (see [`names`]).
    pub fn name(&self) -> &'static str {
        match self {
            Error::Malformed { .. }
            | Error::Value { .. }
            | Error::Schema { .. }
            | Error::Unsupported { .. }
            | Error::Snapshot { .. } => names::DECODE,
            Error::BinlogPurged { .. } => names::BINLOG_PURGED,
            Error::BadPosition { .. } | Error::Config(_) | Error::InvalidSystemSetting { .. } => {
                names::CONFIG
            }
            Error::NotTheWriter { .. } => names::NOT_THE_WRITER,
            Error::BinlogHistoryChanged { .. } => names::BINLOG_HISTORY_CHANGED,
            Error::Mysql { source, .. } => {
                if mysql_is_transient(source) {
                    names::TRANSIENT
                } else {
                    names::CONFIG
                }
            }
            Error::Io { .. } => names::TRANSIENT,
            Error::Storage {
                retryable: true, ..
            } => names::TRANSIENT,
            Error::Storage {
                retryable: false, ..
            } => names::CONFIG,
            Error::PreconditionFailed { .. } | Error::ConcurrentRun(_) => names::CONCURRENT_RUN,
        }
    }

    /// Whether running the same step again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.name() == names::TRANSIENT
    }
}

/// Network faults and the server errors a retry can outlive are transient;
/// every other server error (access denied, syntax, unknown table) is not,
/// nor is a certificate that fails verification.
fn mysql_is_transient(e: &mysql_async::Error) -> bool {
    match e {
        // A certificate that does not verify (rustls reports it as invalid
        // data) or a TLS failure will not pass by itself.
        mysql_async::Error::Io(mysql_async::IoError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            false
        }
        #[allow(unreachable_patterns)]
        mysql_async::Error::Io(mysql_async::IoError::Tls(_)) => false,
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => {
            use server_codes::*;
            matches!(
                s.code,
                ER_CON_COUNT_ERROR
                    | ER_SERVER_SHUTDOWN
                    | ER_LOCK_WAIT_TIMEOUT
                    | ER_LOCK_DEADLOCK
                    | ER_QUERY_INTERRUPTED
                    | ER_CONNECTION_KILLED
                    | CR_SERVER_GONE_ERROR
                    | CR_SERVER_LOST
            )
        }
        mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_place() {
        let at = BinlogPosition::new("binlog.000042", 1234);
        let e = Error::Value {
            at: at.clone(),
            table: "shop.orders".into(),
            column: "total".into(),
            msg: "bad".into(),
        };
        assert_eq!(e.to_string(), "binlog.000042:1234: shop.orders.total: bad");
        assert_eq!(e.name(), names::DECODE);
        assert!(!e.is_retryable());
        let io = Error::io("stdout", std::io::Error::other("x"));
        assert!(io.is_retryable());
        let purged = Error::BinlogPurged {
            file: "binlog.000001".into(),
            msg: "gone".into(),
        };
        assert_eq!(purged.name(), names::BINLOG_PURGED);
    }
}
