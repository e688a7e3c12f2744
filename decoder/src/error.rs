//! The decoder's error type: decoding and reading sources.
//!
//! Every error says where it happened: a binlog position (`binlog.000042:1234`),
//! a table (`shop.orders`) or a column (`shop.orders.total`) where one applies.
//! [`Error::kind`] sorts each one into what a caller can do about it
//! ([`ErrorKind`]: retry, fix a setting, or nothing); the pipeline above maps
//! the kinds to the names its state machine matches on.

use crate::position::BinlogPosition;

/// What a caller can do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A passing fault (the network, the server restarting, a lock wait):
    /// the same read again can succeed.
    Transient,
    /// Bytes, metadata or a value that cannot be decoded exactly. Definite.
    Undecodable,
    /// A setting, flag, input or server configuration that cannot work. Definite.
    Misconfigured,
    /// The binlog file asked for is gone from the server. Definite.
    BinlogPurged,
    /// The endpoint reaches a read-only instance or a proxy, which cannot
    /// serve the binary log. Definite.
    NotTheWriter,
    /// Not the decoder's: what the caller's sink or lookup returned
    /// ([`Error::Caller`]), which the caller classifies.
    Caller,
}

/// Any error a caller's sink or lookup returns, carried through untouched.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    /// A snapshot cannot read a table, or a value of it, exactly (no primary
    /// key, a type it cannot write as the binlog would).
    #[error("snapshot of {table}: {msg}")]
    Snapshot { table: String, msg: String },

    /// What a caller's [`RowSink`](crate::reader::RowSink),
    /// [`RangeSink`](crate::snapshot::RangeSink) or
    /// [`Baseline`](crate::definition::Baseline) returned (a write to the
    /// object store failing), for the caller to take back as it was.
    #[error(transparent)]
    Caller(BoxError),
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

    /// What a caller can do about it (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed { .. }
            | Error::Value { .. }
            | Error::Schema { .. }
            | Error::Unsupported { .. }
            | Error::Snapshot { .. } => ErrorKind::Undecodable,
            Error::BinlogPurged { .. } => ErrorKind::BinlogPurged,
            Error::BadPosition { .. } | Error::Config(_) | Error::InvalidSystemSetting { .. } => {
                ErrorKind::Misconfigured
            }
            Error::NotTheWriter { .. } => ErrorKind::NotTheWriter,
            Error::Mysql { source, .. } if mysql_is_transient(source) => ErrorKind::Transient,
            Error::Mysql { .. } => ErrorKind::Misconfigured,
            Error::Io { .. } => ErrorKind::Transient,
            Error::Caller(_) => ErrorKind::Caller,
        }
    }

    /// Whether reading the same thing again can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
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
        assert_eq!(e.kind(), ErrorKind::Undecodable);
        assert!(!e.is_transient());
        let io = Error::io("stdout", std::io::Error::other("x"));
        assert!(io.is_transient());
        let purged = Error::BinlogPurged {
            file: "binlog.000001".into(),
            msg: "gone".into(),
        };
        assert_eq!(purged.kind(), ErrorKind::BinlogPurged);
    }
}
