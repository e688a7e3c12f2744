//! binlog-cdc's pipeline: the state payloads ([`contracts`]), planning
//! ([`plan`]), the object store and its keys ([`store`], [`layout`]), the
//! checkpoint and the binlog history it is in ([`checkpoint`], [`history`]),
//! settings and AWS clients ([`config`], [`aws`]), metrics and the
//! `RunCommitted` event ([`metrics`], [`notify`]), and what every step needs
//! ([`pipeline`]).
//!
//! The decoder underneath (positions, sources, schema, charsets, decode, event,
//! reader, filter, errors) is its own crate, `binlog-cdc-decoder`, with no
//! AWS dependency; its modules are re-exported here under the same names.

pub use binlog_decoder::{
    charset, column_rules, decode, definition, error, event, filter, gtid, guard, json, position,
    reader, schema, snapshot, source, statement,
};

pub mod aws;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod contracts;
pub mod history;
pub mod layout;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod snapshot_plan;
pub mod store;

pub use error::{Error, Result};
pub use position::BinlogPosition;
