//! The initial snapshot: a table's existing rows as `SnapshotRowEvent`s,
//! read in primary-key ranges in parallel, with no lock and no transaction
//! longer than one SELECT, and ordered against the change stream.
//!
//! ```text
//! listing::tables ─▶ ranges::cut ─▶ ranges::range_end (where each range ends: by
//!   value for a dense integer key, else walking the key)
//!   per range: read::read_range
//!     low = position ─▶ low watermark write ─▶ binlog [low, ..): where it is
//!     ─▶ SELECT range, each row encoded (each value as the binlog path
//!        writes it) and handed on as an event at the low watermark
//!     ─▶ high watermark write ─▶ high = position
//!     ─▶ binlog [low, high): keys changed there ─▶ the caller drops those rows
//! ```
//!
//! The rule a consumer applies (docs/EVENTS.md): order a table's events by
//! `(position, index)`; a snapshot row is the row's whole state at its
//! position (insert or replace), and every change after it applies on top.
//! A row the binlog changed while its range was read is not in the
//! snapshot: the change events in `[low, high)` carry it.

pub mod columns;
pub mod encode;
pub mod keys;
pub mod listing;
pub mod ranges;
pub mod read;

pub use columns::SnapshotTable;
pub use keys::{KeyRange, KeyValue};
pub use read::{RangeRead, RangeSink};
