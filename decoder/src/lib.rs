//! The binlog decoder: MySQL/MariaDB binlog -> exact change events, with no
//! AWS dependency (the pipeline is `binlog-cdc-shared`, on top of it).
//!
//! How a row travels: a [`source`] yields raw events (a live server over the
//! replication protocol, or local binlog files); [`schema`] turns each table
//! map into a decoding plan; [`decode`] turns row images into JSON values, one
//! function per type family; [`event`] writes each row's change event (the
//! contract in docs/EVENTS.md); [`reader`] drives it all and hands events to
//! a sink, and follows MySQL's GTIDs as it goes ([`gtid`]: the executed set a
//! checkpoint records). Table statements are followed through [`definition`]
//! (what each one left of its table), replayed on the server by
//! [`server_replay`]; [`snapshot`] reads the rows that exist already.
//! [`typed`] says what each column's values are, for typed outputs.
//! [`position`] is the one `file:pos` type; [`error`] names every failure and
//! sorts it by what a caller can do about it.

pub mod charset;
pub mod column_rules;
pub mod decode;
pub mod definition;
pub mod error;
pub mod event;
pub mod filter;
pub mod gtid;
pub mod guard;
pub mod json;
pub mod position;
pub mod raw;
pub mod reader;
pub mod schema;
pub mod server_replay;
pub mod snapshot;
pub mod source;
pub mod statement;
pub mod table_rules;
pub mod typed;

pub use error::{Error, Result};
pub use position::BinlogPosition;
