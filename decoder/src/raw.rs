//! A raw binlog event as sources yield it ([`SourceEvent`]: the event and
//! where it starts), the event type codes ([`types`]), and the guarded call
//! that turns a panic of mysql_common's parsers into a positioned error.
//! The sources and the modules that read events (the decoder, `gtid`)
//! build on this; it builds on nothing but errors and positions.

use mysql_common::binlog::events::Event;

use crate::error::{Error, Result};
use crate::position::BinlogPosition;

/// One raw event and where it starts.
#[derive(Debug)]
pub struct SourceEvent {
    /// Where the event starts (for events inside a transaction payload, where
    /// the payload event starts).
    pub pos: BinlogPosition,
    pub event: Event,
}

/// Runs a mysql_common parse that may panic on malformed input (it calls
/// `unwrap()` on short reads) and turns a panic into an error at `at`.
pub(crate) fn guarded<T>(
    at: &BinlogPosition,
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T>,
) -> Result<T> {
    match crate::guard::catch(f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::malformed(at, what, e.to_string())),
        Err(_) => Err(Error::malformed(
            at,
            what,
            "the event's bytes do not match its own lengths",
        )),
    }
}

/// Event type codes used by the sources and the decoder (MySQL's and
/// MariaDB's), and the event header's length: every raw code is named here.
pub mod types {
    /// Every event (v4 format) starts with a 19-byte header.
    pub(crate) const EVENT_HEADER_LEN: usize = 19;

    pub(crate) const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub(crate) const ROTATE: u8 = 4;
    pub(crate) const INTVAR: u8 = 5;
    pub(crate) const RAND: u8 = 13;
    pub(crate) const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub(crate) const BEGIN_LOAD_QUERY: u8 = 17;
    pub(crate) const EXECUTE_LOAD_QUERY: u8 = 18;
    pub(crate) const TABLE_MAP: u8 = 19;
    /// MySQL 5.1.0-5.1.15's rows events (before GA), codes 20 to 22.
    pub(crate) const PRE_GA_WRITE_ROWS: u8 = 20;
    pub(crate) const PRE_GA_DELETE_ROWS: u8 = 22;
    pub(crate) const WRITE_ROWS_V1: u8 = 23;
    pub(crate) const UPDATE_ROWS_V1: u8 = 24;
    pub(crate) const DELETE_ROWS_V1: u8 = 25;
    pub(crate) const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub(crate) const IGNORABLE: u8 = 28;
    pub(crate) const ROWS_QUERY: u8 = 29;
    pub(crate) const WRITE_ROWS: u8 = 30;
    pub(crate) const UPDATE_ROWS: u8 = 31;
    pub(crate) const DELETE_ROWS: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub(crate) const TRANSACTION_CONTEXT: u8 = 36;
    pub(crate) const VIEW_CHANGE: u8 = 37;
    pub(crate) const XA_PREPARE: u8 = 38;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const GTID_TAGGED: u8 = 42;
    pub(crate) const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub(crate) const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub(crate) const MARIADB_GTID_LIST: u8 = 163;
    pub(crate) const MARIADB_START_ENCRYPTION: u8 = 164;
    pub(crate) const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub(crate) const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub(crate) const MARIADB_UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub(crate) const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub(crate) const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 169;
    pub(crate) const MARIADB_UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub(crate) const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 171;
}
