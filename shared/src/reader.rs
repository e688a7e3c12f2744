//! The decoding pipeline: raw events in, one JSON change event per row out.
//!
//! [`Decoder`] follows the stream's state (format description, table maps,
//! the current transaction's GTID), decodes each rows event against the
//! table's plan (built once per table map, see `schema`), writes each row's
//! event into a reused buffer and hands it to a [`RowSink`]. Unknown event
//! types are counted and skipped; events that hold rows we cannot decode are
//! errors, so rows never vanish silently.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use mysql_common::binlog::events::{FormatDescriptionEvent, GtidEvent, QueryEvent, TableMapEvent};
use serde::Serialize;

use crate::decode::{self, Bytes, ColumnError, RowImage};
use crate::error::{Error, Result};
use crate::event::{EventWriter, RowKind, RowRef, View};
use crate::filter::TableFilter;
use crate::schema::{SchemaLookup, TableMeta};
use crate::source::{guarded, types, EventSource, SourceEvent};

/// Receives each row's change event.
pub trait RowSink {
    /// `json` is one complete event object, without a newline.
    fn row(&mut self, table: &TableMeta, timestamp: u32, json: &[u8]) -> Result<()>;
}

/// What to decode and how.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    pub view: View,
    pub filter: TableFilter,
}

/// Counts of what a decode saw.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Every event read, of any type.
    pub events: u64,
    /// Row events by `schema.table` and type.
    pub rows: BTreeMap<String, BTreeMap<RowKind, u64>>,
    /// Rows events skipped by the table filter.
    pub filtered_rows_events: u64,
    /// Event types we do not know, by type code, counted and skipped.
    pub unknown_events: BTreeMap<u8, u64>,
    /// The header timestamp of the last row event.
    pub last_timestamp: Option<u32>,
}

impl Stats {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().flat_map(|m| m.values()).sum()
    }
}

struct TableEntry {
    meta: TableMeta,
    included: bool,
    /// The table map's body, to reuse the plan when the same map comes again.
    raw: Vec<u8>,
}

/// Decodes a stream of raw events into change events.
pub struct Decoder {
    opts: DecodeOptions,
    lookup: Option<Box<dyn SchemaLookup>>,
    mariadb: bool,
    /// Post-header length per event type (from the format description).
    post_header: Vec<u8>,
    tables: HashMap<u64, Arc<TableEntry>>,
    gtid: Option<String>,
    stats: Stats,
    writer: EventWriter,
    before: RowImage,
    after: RowImage,
    line: Vec<u8>,
    inflated: Vec<u8>,
}

impl Decoder {
    pub fn new(opts: DecodeOptions) -> Self {
        Self {
            opts,
            lookup: None,
            mariadb: false,
            post_header: Vec::new(),
            tables: HashMap::new(),
            gtid: None,
            stats: Stats::default(),
            writer: EventWriter::default(),
            before: RowImage::default(),
            after: RowImage::default(),
            line: Vec::with_capacity(4096),
            inflated: Vec::new(),
        }
    }

    /// Fills missing table metadata from information_schema through `lookup`.
    pub fn with_lookup(mut self, lookup: Box<dyn SchemaLookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Decodes every event of `source` into `sink`.
    pub async fn run<S: EventSource, K: RowSink>(
        &mut self,
        source: &mut S,
        sink: &mut K,
    ) -> Result<()> {
        while let Some(ev) = source.next_event().await? {
            self.handle(&ev, sink).await?;
        }
        Ok(())
    }

    /// Handles one raw event.
    pub async fn handle<K: RowSink>(&mut self, ev: &SourceEvent, sink: &mut K) -> Result<()> {
        use types::*;
        self.stats.events += 1;
        let h = ev.event.header();
        let t = h.event_type_raw();
        match t {
            FORMAT_DESCRIPTION => {
                let fde: FormatDescriptionEvent<'_> = guarded(&ev.pos, "format description", || ev.event.read_event())?;
                self.mariadb = fde.server_version().contains("MariaDB");
                self.post_header = fde.event_type_header_lengths().to_vec();
                // A new file (or a restarted server): table ids start over.
                self.tables.clear();
            }
            TABLE_MAP => self.table_map(ev).await?,
            WRITE_ROWS_V1 | UPDATE_ROWS_V1 | DELETE_ROWS_V1 | WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS
            | PARTIAL_UPDATE_ROWS | MARIADB_WRITE_ROWS_COMPRESSED_V1 | MARIADB_UPDATE_ROWS_COMPRESSED_V1
            | MARIADB_DELETE_ROWS_COMPRESSED_V1 | MARIADB_WRITE_ROWS_COMPRESSED
            | MARIADB_UPDATE_ROWS_COMPRESSED | MARIADB_DELETE_ROWS_COMPRESSED => self.rows(ev, t, sink)?,
            20..=22 => {
                return Err(Error::Unsupported {
                    at: ev.pos.clone(),
                    msg: "pre-GA (MySQL 5.1.0-5.1.15) rows events are not supported".into(),
                })
            }
            GTID | GTID_TAGGED => {
                let g: GtidEvent = guarded(&ev.pos, "GTID event", || ev.event.read_event())?;
                self.gtid = Some(format!("{}:{}", uuid_text(&g.sid()), g.gno()));
            }
            ANONYMOUS_GTID => self.gtid = None,
            MARIADB_GTID => {
                // seq_no (8), domain_id (4), flags (1): printed domain-server-seq.
                let d = ev.event.data();
                if d.len() < 13 {
                    return Err(Error::malformed(&ev.pos, "MariaDB GTID event", "shorter than 13 bytes"));
                }
                let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
                let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
                self.gtid = Some(format!("{domain}-{}-{seq}", h.server_id()));
            }
            XID => self.gtid = None,
            QUERY => {
                // A non-transactional statement ends its group with COMMIT.
                let q: QueryEvent<'_> = guarded(&ev.pos, "query event", || ev.event.read_event())?;
                if q.query_raw().eq_ignore_ascii_case(b"COMMIT") {
                    self.gtid = None;
                }
                // A row change logged as a statement (binlog_format STATEMENT
                // or MIXED, perhaps for one session only): its rows are not in
                // the log. Failing beats skipping it.
                if let Some(verb) = statement_logged_change(q.query_raw()) {
                    let text = String::from_utf8_lossy(q.query_raw());
                    let short: String = text.chars().take(80).collect();
                    return Err(Error::Unsupported {
                        at: ev.pos.clone(),
                        msg: format!(
                            "a row change logged as a statement ({verb}: {short:?}): binlog_format was STATEMENT or MIXED \
                             when it was written, so its rows are not in the log; set binlog_format=ROW (globally, and for every session)"
                        ),
                    });
                }
            }
            STOP | ROTATE | 5 /* INTVAR */ | 13 /* RAND */ | 14 /* USER_VAR */ | INCIDENT | HEARTBEAT
            | IGNORABLE | ROWS_QUERY | PREVIOUS_GTIDS | TRANSACTION_PAYLOAD | HEARTBEAT_V2
            | 17 | 18 /* BEGIN_LOAD_QUERY, EXECUTE_LOAD_QUERY */ | 36..=38 /* context, view change, XA prepare */
            | MARIADB_ANNOTATE_ROWS | MARIADB_BINLOG_CHECKPOINT | MARIADB_GTID_LIST | MARIADB_QUERY_COMPRESSED => {}
            MARIADB_START_ENCRYPTION => {
                return Err(Error::Unsupported {
                    at: ev.pos.clone(),
                    msg: "the binlog is encrypted (MariaDB encrypt_binlog); read it from the server, which decrypts it".into(),
                })
            }
            other => *self.stats.unknown_events.entry(other).or_default() += 1,
        }
        Ok(())
    }

    async fn table_map(&mut self, ev: &SourceEvent) -> Result<()> {
        let raw = ev.event.data();
        let tme: TableMapEvent<'_> = guarded(&ev.pos, "table map", || ev.event.read_event())?;
        let id = tme.table_id();
        if let Some(entry) = self.tables.get(&id) {
            if entry.raw == raw {
                return Ok(());
            }
        }
        let table_name = || {
            format!(
                "{}.{}",
                String::from_utf8_lossy(tme.database_name_raw()),
                String::from_utf8_lossy(tme.table_name_raw())
            )
        };
        let mut meta =
            TableMeta::from_table_map(&tme, self.mariadb).map_err(|msg| Error::Schema {
                at: ev.pos.clone(),
                table: table_name(),
                msg,
            })?;
        let included = self.opts.filter.keeps(&meta.schema, &meta.table);
        if included && meta.needs_information_schema() {
            if let Some(lookup) = self.lookup.as_mut() {
                let info = lookup.columns(&meta.schema, &meta.table).await?;
                meta.apply_information_schema(&info)
                    .map_err(|msg| Error::Schema {
                        at: ev.pos.clone(),
                        table: meta.full_name.clone(),
                        msg,
                    })?;
            }
        }
        tracing::debug!(table = %meta.full_name, table_id = id, pos = %ev.pos, "table map");
        self.tables.insert(
            id,
            Arc::new(TableEntry {
                meta,
                included,
                raw: raw.to_vec(),
            }),
        );
        Ok(())
    }

    fn rows<K: RowSink>(&mut self, ev: &SourceEvent, t: u8, sink: &mut K) -> Result<()> {
        use types::*;
        let at = &ev.pos;
        let bad = |msg: &str| Error::malformed(at, "rows event", msg);
        let (kind, v2, compressed) = match t {
            WRITE_ROWS_V1 => (RowKind::Write, false, false),
            UPDATE_ROWS_V1 => (RowKind::Update, false, false),
            DELETE_ROWS_V1 => (RowKind::Delete, false, false),
            WRITE_ROWS => (RowKind::Write, true, false),
            UPDATE_ROWS | PARTIAL_UPDATE_ROWS => (RowKind::Update, true, false),
            DELETE_ROWS => (RowKind::Delete, true, false),
            MARIADB_WRITE_ROWS_COMPRESSED_V1 => (RowKind::Write, false, true),
            MARIADB_UPDATE_ROWS_COMPRESSED_V1 => (RowKind::Update, false, true),
            MARIADB_DELETE_ROWS_COMPRESSED_V1 => (RowKind::Delete, false, true),
            MARIADB_WRITE_ROWS_COMPRESSED => (RowKind::Write, true, true),
            MARIADB_UPDATE_ROWS_COMPRESSED => (RowKind::Update, true, true),
            _ => (RowKind::Delete, true, true),
        };
        let partial = t == PARTIAL_UPDATE_ROWS;
        let body = ev.event.data();
        let mut r = Bytes::new(body);
        // Post-header: table id (6 bytes; 4 in pre-5.1.4 formats), flags (2),
        // and for v2 events extra data whose length counts itself.
        let post = self
            .post_header
            .get(t as usize - 1)
            .copied()
            .unwrap_or(if v2 { 10 } else { 8 });
        let table_id = if post == 6 {
            r.uint_le(4)
        } else {
            r.uint_le(6)
        }
        .map_err(|e| bad(&e))?;
        let _flags = r.uint_le(2).map_err(|e| bad(&e))?;
        if v2 {
            let extra = r.uint_le(2).map_err(|e| bad(&e))? as usize;
            r.take(extra.saturating_sub(2)).map_err(|e| bad(&e))?;
        }
        let ncols = lenenc(&mut r).map_err(|e| bad(&e))? as usize;
        let bitmap_len = ncols.div_ceil(8);
        let cols_before = match kind {
            RowKind::Write => None,
            _ => Some(r.take(bitmap_len).map_err(|e| bad(&e))?),
        };
        let cols_after = match kind {
            RowKind::Delete => None,
            _ => Some(r.take(bitmap_len).map_err(|e| bad(&e))?),
        };
        let rest = &body[r.position()..];

        let Some(entry) = self.tables.get(&table_id).cloned() else {
            if rest.is_empty() {
                return Ok(()); // a dummy end-of-statement event
            }
            return Err(Error::Schema {
                at: at.clone(),
                table: format!("id {table_id}"),
                msg: "rows event without its table map (a range must start at a transaction boundary)".into(),
            });
        };
        if !entry.included {
            self.stats.filtered_rows_events += 1;
            return Ok(());
        }
        let meta = &entry.meta;
        if ncols != meta.columns.len() {
            return Err(Error::Schema {
                at: at.clone(),
                table: meta.full_name.clone(),
                msg: format!(
                    "rows event has {ncols} columns, its table map {}",
                    meta.columns.len()
                ),
            });
        }

        let rows_data: &[u8] = if compressed {
            inflate(rest, &mut self.inflated).map_err(|e| bad(&e))?;
            &self.inflated
        } else {
            rest
        };
        let position = at.to_string();
        let timestamp = ev.event.header().timestamp();
        let mut r = Bytes::new(rows_data);
        let mut index = 0u32;
        let col_err = |e: ColumnError| match e.column {
            Some(i) => Error::Value {
                at: at.clone(),
                table: meta.full_name.clone(),
                column: meta.columns[i].name.clone(),
                msg: e.msg,
            },
            None => Error::malformed(at, "row image", e.msg),
        };
        while !r.is_empty() {
            // A row whose images name no column takes no bytes: the loop
            // would never end (seen with mutated bytes, never from a server).
            let row_start = r.position();
            let (before, after) = match kind {
                RowKind::Write => {
                    decode::decode_image(
                        meta,
                        cols_after.unwrap_or(&[]),
                        &mut r,
                        &mut self.after,
                        None,
                    )
                    .map_err(col_err)?;
                    (None, Some(&self.after))
                }
                RowKind::Delete => {
                    decode::decode_image(
                        meta,
                        cols_before.unwrap_or(&[]),
                        &mut r,
                        &mut self.before,
                        None,
                    )
                    .map_err(col_err)?;
                    (Some(&self.before), None)
                }
                RowKind::Update => {
                    decode::decode_image(
                        meta,
                        cols_before.unwrap_or(&[]),
                        &mut r,
                        &mut self.before,
                        None,
                    )
                    .map_err(col_err)?;
                    let mut partial_bits: Option<&[u8]> = None;
                    if partial {
                        // value_options (packed int); bit 0 = PARTIAL_JSON_UPDATES,
                        // then one bit per JSON column: is its value a diff.
                        let options = lenenc(&mut r).map_err(|e| bad(&e))?;
                        if options & 1 == 1 {
                            partial_bits =
                                Some(r.take(meta.json_columns.div_ceil(8)).map_err(|e| bad(&e))?);
                        }
                    }
                    let diff = partial_bits.map(|b| (b, &self.before));
                    decode::decode_image(
                        meta,
                        cols_after.unwrap_or(&[]),
                        &mut r,
                        &mut self.after,
                        diff,
                    )
                    .map_err(col_err)?;
                    (Some(&self.before), Some(&self.after))
                }
            };
            if r.position() == row_start {
                return Err(bad(
                    "a row image that names no column, in a rows event with bytes left",
                ));
            }
            self.line.clear();
            self.writer.write(
                &RowRef {
                    table: meta,
                    kind,
                    timestamp,
                    position: &position,
                    index,
                    gtid: self.gtid.as_deref(),
                    before,
                    after,
                },
                self.opts.view,
                &mut self.line,
            );
            sink.row(meta, timestamp, &self.line)?;
            index += 1;
        }
        if index > 0 {
            let per_table = self.stats.rows.entry(meta.full_name.clone()).or_default();
            *per_table.entry(kind).or_default() += index as u64;
            self.stats.last_timestamp = Some(timestamp);
        }
        Ok(())
    }
}

/// A MySQL length-encoded integer.
fn lenenc(r: &mut Bytes<'_>) -> std::result::Result<u64, String> {
    match r.u8()? {
        x @ 0..=0xfa => Ok(x as u64),
        0xfc => r.uint_le(2),
        0xfd => r.uint_le(3),
        0xfe => r.uint_le(8),
        x => Err(format!("bad length-encoded integer prefix {x:#x}")),
    }
}

/// MariaDB's compressed rows: one header byte (0x80 | algorithm << 4 |
/// length-of-length), the uncompressed length big-endian, then zlib data.
fn inflate(src: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let h = *src.first().ok_or("compressed rows are empty")?;
    if h & 0x80 == 0 || (h >> 4) & 0x7 != 0 {
        return Err(format!("unknown compressed rows header {h:#x}"));
    }
    let lenlen = (h & 0x7) as usize;
    if !(1..=4).contains(&lenlen) || src.len() < 1 + lenlen {
        return Err("bad compressed rows length".into());
    }
    let len = src[1..1 + lenlen]
        .iter()
        .fold(0usize, |v, &b| (v << 8) | b as usize);
    out.clear();
    out.reserve(len);
    flate2::read::ZlibDecoder::new(&src[1 + lenlen..])
        .take(len as u64 + 1)
        .read_to_end(out)
        .map_err(|e| format!("compressed rows do not inflate: {e}"))?;
    if out.len() != len {
        return Err(format!(
            "compressed rows inflate to {} bytes, header says {len}",
            out.len()
        ));
    }
    Ok(())
}

fn uuid_text(sid: &[u8; 16]) -> String {
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The verb of a statement that changes rows (`INSERT`, `UPDATE`, `DELETE`,
/// `REPLACE`, `LOAD DATA`), after leading blanks and comments; `None` for
/// everything a ROW-format log writes as a query (BEGIN, COMMIT, DDL, grants).
fn statement_logged_change(query: &[u8]) -> Option<&'static str> {
    let mut q = query;
    loop {
        let trimmed = q.trim_ascii_start();
        if let Some(rest) = trimmed.strip_prefix(b"/*") {
            let end = rest.windows(2).position(|w| w == b"*/")?;
            q = &rest[end + 2..];
        } else if trimmed.starts_with(b"--") || trimmed.starts_with(b"#") {
            let end = trimmed.iter().position(|&b| b == b'\n')?;
            q = &trimmed[end + 1..];
        } else {
            q = trimmed;
            break;
        }
    }
    let word: Vec<u8> = q
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    match word.as_slice() {
        b"INSERT" => Some("INSERT"),
        b"UPDATE" => Some("UPDATE"),
        b"DELETE" => Some("DELETE"),
        b"REPLACE" => Some("REPLACE"),
        b"LOAD" => Some("LOAD DATA"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::statement_logged_change as verb;

    #[test]
    fn statement_logged_row_changes_are_recognised() {
        assert_eq!(verb(b"INSERT INTO t VALUES (1)"), Some("INSERT"));
        assert_eq!(verb(b"  /* app */ update t set a=1"), Some("UPDATE"));
        assert_eq!(verb(b"-- c\nDELETE FROM t"), Some("DELETE"));
        assert_eq!(verb(b"replace into t values (1)"), Some("REPLACE"));
        assert_eq!(
            verb(b"LOAD DATA INFILE 'x' INTO TABLE t"),
            Some("LOAD DATA")
        );
        for q in [
            &b"BEGIN"[..],
            b"COMMIT",
            b"CREATE TABLE t (a INT)",
            b"ALTER TABLE t ADD b INT",
            b"GRANT SELECT ON *.* TO u",
            b"INSERTED",
            b"/* unterminated",
            b"",
        ] {
            assert_eq!(verb(q), None, "{}", String::from_utf8_lossy(q));
        }
    }
}
