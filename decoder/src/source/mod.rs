//! Where binlog events come from: a live server ([`server`]) or local binlog
//! files ([`file`]), behind one interface, [`EventSource`].
//!
//! A source yields raw events (mysql_common's [`Event`]: header, body, checksum
//! checked) each with the position where it starts. Events that a MySQL
//! `TRANSACTION_PAYLOAD` event carries are yielded one by one after it, each
//! with the payload event's position.

pub mod connect;
pub mod file;
pub mod gtid_scan;
pub mod read_ahead;
pub mod server;

use std::future::Future;

use crate::error::Result;
pub(crate) use crate::raw::guarded;
pub use crate::raw::{types, SourceEvent};

/// A range of raw binlog events, in order. (Its futures are `Send`, so a
/// source can be read on another thread: [`read_ahead`].)
pub trait EventSource {
    /// The next event, or `None` at the end of the range.
    fn next_event(&mut self) -> impl Future<Output = Result<Option<SourceEvent>>> + Send;

    /// Bytes of binlog read so far.
    fn bytes_read(&self) -> u64;
}
