//! binlog-cdc's pipeline: the state payloads ([`contracts`]), planning
//! ([`plan`]), the object store and its keys ([`store`], [`layout`]), the
//! checkpoint and the binlog history it is in ([`checkpoint`], [`history`]),
//! settings and AWS clients ([`config`], [`aws`]), the pipeline's errors and
//! their Step Functions names ([`error`]), metrics and the
//! `RunCommitted` event ([`metrics`], [`notify`]), what every step needs
//! ([`pipeline`]), and the current-rows query over `parquet` objects
//! ([`current_rows`]).
//!
//! The decoder underneath (positions, sources, schema, charsets, decode, event,
//! reader, filter) is its own crate, `binlog-cdc-decoder`, with no AWS
//! dependency; it is re-exported here whole as [`decoder`], so a path says
//! which crate it is in (`binlog_cdc::decoder::source`, `binlog_cdc::plan`).

pub use binlog_decoder as decoder;

pub mod aws;
pub mod catalog;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod contracts;
pub mod current_rows;
pub mod error;
pub mod history;
pub mod layout;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod snapshot_plan;
pub mod store;

pub use decoder::position::BinlogPosition;
pub use error::{Error, Result};
