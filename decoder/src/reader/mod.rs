//! The decoding pipeline: raw events in, one JSON change event per row out.
//!
//! [`Decoder`] follows the stream's state (format description, table maps,
//! the current transaction's GTID) event by event, in order; each rows
//! event's rows are decoded against the table's plan (built once per table
//! map, see `schema`) a batch at a time on decoding threads ([`rows`]), and
//! their events handed to a [`RowSink`] in binlog order, before any later
//! statement's. Unknown event types are counted and skipped; events that
//! hold rows we cannot decode are errors, so rows never vanish silently.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mysql_common::binlog::events::{FormatDescriptionEvent, QueryEvent, TableMapEvent};
use serde::Serialize;

use crate::column_rules::{ColumnRules, StatementRules};
use crate::definition::{
    self, Baseline, ExistingRow, HeldRows, Known, Replayer, Session, Tracker, Version,
};
use crate::error::{Error, Result};
use crate::event::{self, RowKind, StatementRef, View};
use crate::filter::TableFilter;
use crate::gtid::GtidTrail;
use crate::position::BinlogPosition;
use crate::raw::{guarded, types, SourceEvent};
use crate::schema::{SchemaLookup, TableMeta};
use crate::source::EventSource;
use crate::statement::columns::ColumnEdits;
use crate::statement::{self, Classified, StatementKind, TableStatement, Touched};

mod rows;

use rows::{inflate, Batch, RowsHeader, RowsJob, RowsShape};

/// Receives each row's change event, and each statement's.
pub trait RowSink {
    /// `json` is one complete event object, without a newline.
    fn row(&mut self, table: &TableMeta, timestamp: u32, json: &[u8]) -> Result<()>;

    /// The events of one rows event's rows, in order (see [`Lines`]); by
    /// default each goes to [`RowSink::row`]. A sink that writes lines may
    /// take them all at once.
    fn rows(&mut self, table: &TableMeta, timestamp: u32, lines: Lines<'_>) -> Result<()> {
        lines
            .iter()
            .try_for_each(|json| self.row(table, timestamp, json))
    }

    /// A `SchemaChangeEvent` for `schema.table`; `table` is [`EVERY_TABLE`]
    /// for a statement about every table of the schema (DROP DATABASE).
    fn statement(&mut self, schema: &str, table: &str, timestamp: u32, json: &[u8]) -> Result<()>;
}

/// Change events one after the other, each followed by a newline (JSON
/// text holds none of its own).
#[derive(Clone, Copy)]
pub struct Lines<'a> {
    text: &'a [u8],
    /// Where the first event starts in `text`.
    start: usize,
    /// Where each event's newline is in `text`.
    ends: &'a [usize],
}

impl<'a> Lines<'a> {
    /// Every event with its newline, back to back.
    pub fn text(&self) -> &'a [u8] {
        match self.ends.last() {
            Some(&end) => &self.text[self.start..=end],
            None => &[],
        }
    }

    /// Each event, without its newline.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (text, mut start) = (self.text, self.start);
        self.ends.iter().map(move |&end| {
            let json = &text[start..end];
            start = end + 1;
            json
        })
    }
}

/// A sink that keeps nothing (a read for its side effects: statements
/// followed, GTIDs counted).
pub struct Discard;

impl RowSink for Discard {
    fn row(&mut self, _: &TableMeta, _: u32, _: &[u8]) -> Result<()> {
        Ok(())
    }

    fn statement(&mut self, _: &str, _: &str, _: u32, _: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// The table name a statement about a whole schema is listed under
/// (`{schema}/*/...` in the outputs, `schema.*` in counts).
pub(crate) const EVERY_TABLE: &str = "*";

/// What to decode and how.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions {
    pub view: View,
    pub filter: TableFilter,
    /// What each column's values become in events (see [`crate::column_rules`]).
    pub rules: ColumnRules,
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
    /// The header timestamp of the last row or statement event.
    pub last_timestamp: Option<u32>,
    /// Statements written as `SchemaChangeEvent`s, by kind (one per
    /// statement, whatever the tables it touched).
    pub statements: BTreeMap<StatementKind, u64>,
    /// Logged statements that change no table (users, grants, views,
    /// routines, ...): skipped, their text never written.
    pub skipped_statements: u64,
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
    gtids: GtidTrail,
    stats: Stats,
    /// A statement's event, written.
    line: Vec<u8>,
    /// Rows events waiting to be decoded (see [`rows`]).
    rows: Batch,
    /// Each table's definition, statement by statement.
    definitions: Tracker,
    /// What each table statement left, in binlog order, until taken.
    versions: Vec<Version>,
    /// Rows events are skipped undecoded (a scan for statements).
    statements_only: bool,
}

impl Decoder {
    pub fn new(opts: DecodeOptions) -> Self {
        Self {
            rows: Batch::new(opts.view, threads()),
            opts,
            lookup: None,
            mariadb: false,
            post_header: Vec::new(),
            tables: HashMap::new(),
            gtid: None,
            gtids: GtidTrail::default(),
            stats: Stats::default(),
            line: Vec::with_capacity(4096),
            definitions: Tracker::default(),
            versions: Vec::new(),
            statements_only: false,
        }
    }

    /// Reads statements only: rows events are skipped without decoding
    /// (to follow definitions through a range, see [`crate::definition`]).
    pub fn statements_only(mut self) -> Self {
        self.statements_only = true;
        self
    }

    /// What each table statement so far left, per table it touched (a
    /// rename: the old name gone, the new one defined), in binlog order.
    pub fn take_versions(&mut self) -> Vec<Version> {
        std::mem::take(&mut self.versions)
    }

    /// Follows table definitions through statements: replayed on the
    /// server by `replayer`, from what `baseline` knows (see
    /// [`crate::definition`]). Without it, statements' events carry no
    /// `definition`.
    pub fn with_definitions(
        mut self,
        replayer: Box<dyn Replayer>,
        baseline: Option<Box<dyn Baseline>>,
    ) -> Self {
        self.definitions = Tracker::new(Some(replayer), baseline);
        self
    }

    /// The definitions followed so far.
    pub fn definitions(&self) -> &Tracker {
        &self.definitions
    }

    /// Fills missing table metadata from information_schema through `lookup`.
    pub fn with_lookup(mut self, lookup: Box<dyn SchemaLookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// What was decoded (after [`Decoder::finish`]: rows events still
    /// waiting are not counted yet).
    pub fn stats(&self) -> &Stats {
        debug_assert!(
            self.rows.is_empty(),
            "rows events wait: call Decoder::finish"
        );
        &self.stats
    }

    /// The MySQL GTIDs decoded so far (see [`GtidTrail`]).
    pub fn gtid_trail(&self) -> &GtidTrail {
        &self.gtids
    }

    /// Decodes every event of `source` into `sink`. What was read before
    /// an error is handed over before the error is returned.
    pub async fn run<S: EventSource, K: RowSink>(
        &mut self,
        source: &mut S,
        sink: &mut K,
    ) -> Result<()> {
        loop {
            match source.next_event().await {
                Ok(Some(ev)) => self.handle(ev, sink).await?,
                Ok(None) => return self.finish(sink),
                Err(e) => {
                    self.finish(sink)?;
                    return Err(e);
                }
            }
        }
    }

    /// Handles one raw event. Rows events are decoded in batches (see
    /// [`rows`]): their change events reach `sink` in order, by the time a
    /// later event needs them (a statement's, an error) or [`Decoder::finish`]
    /// is called. Call it after the last event.
    pub async fn handle<K: RowSink>(&mut self, ev: SourceEvent, sink: &mut K) -> Result<()> {
        match self.dispatch(ev, sink).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // What came before the error is handed over first.
                self.finish(sink)?;
                Err(e)
            }
        }
    }

    /// Decodes the rows events still waiting and hands their change events
    /// to `sink`.
    pub fn finish<K: RowSink>(&mut self, sink: &mut K) -> Result<()> {
        self.rows.flush(sink, &mut self.stats)
    }

    /// One `process_*` per event type that matters.
    async fn dispatch<K: RowSink>(&mut self, ev: SourceEvent, sink: &mut K) -> Result<()> {
        use types::*;
        self.stats.events += 1;
        let t = ev.event.header().event_type_raw();
        match t {
            FORMAT_DESCRIPTION => self.process_format_description(&ev)?,
            TABLE_MAP => self.table_map(&ev).await?,
            WRITE_ROWS_V1 | UPDATE_ROWS_V1 | DELETE_ROWS_V1 | WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS
            | PARTIAL_UPDATE_ROWS | MARIADB_WRITE_ROWS_COMPRESSED_V1 | MARIADB_UPDATE_ROWS_COMPRESSED_V1
            | MARIADB_DELETE_ROWS_COMPRESSED_V1 | MARIADB_WRITE_ROWS_COMPRESSED
            | MARIADB_UPDATE_ROWS_COMPRESSED | MARIADB_DELETE_ROWS_COMPRESSED => {
                if !self.statements_only {
                    self.queue_rows(ev, t, sink)?
                }
            }
            PRE_GA_WRITE_ROWS..=PRE_GA_DELETE_ROWS => {
                return Err(Error::Unsupported {
                    at: ev.pos.clone(),
                    msg: "pre-GA (MySQL 5.1.0-5.1.15) rows events are not supported".into(),
                })
            }
            GTID | GTID_TAGGED => self.process_gtid(&ev)?,
            MARIADB_GTID => self.process_mariadb_gtid(&ev)?,
            ANONYMOUS_GTID | XID => self.gtid = None,
            PREVIOUS_GTIDS => self.gtids.start_file(&ev)?,
            QUERY | MARIADB_QUERY_COMPRESSED => self.process_query(&ev, sink).await?,
            STOP | ROTATE | INTVAR | RAND | USER_VAR | INCIDENT | HEARTBEAT | IGNORABLE | ROWS_QUERY
            | TRANSACTION_PAYLOAD | HEARTBEAT_V2 | BEGIN_LOAD_QUERY
            | EXECUTE_LOAD_QUERY | TRANSACTION_CONTEXT | VIEW_CHANGE | XA_PREPARE
            | MARIADB_ANNOTATE_ROWS | MARIADB_BINLOG_CHECKPOINT | MARIADB_GTID_LIST => {}
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

    fn process_format_description(&mut self, ev: &SourceEvent) -> Result<()> {
        let fde: FormatDescriptionEvent<'_> =
            guarded(&ev.pos, "format description", || ev.event.read_event())?;
        self.mariadb = fde.server_version().contains("MariaDB");
        self.post_header = fde.event_type_header_lengths().to_vec();
        // A new file (or a restarted server): table ids start over.
        self.tables.clear();
        Ok(())
    }

    /// MySQL's GTID: `uuid:gno` (`uuid:tag:gno` when tagged), also added
    /// to the trail.
    fn process_gtid(&mut self, ev: &SourceEvent) -> Result<()> {
        let (source, gno) = crate::gtid::source_and_gno(ev)?;
        self.gtids.transactions.insert(&source, gno);
        self.gtid = Some(format!("{source}:{gno}"));
        Ok(())
    }

    /// MariaDB's GTID: seq_no (8 bytes), domain_id (4), flags (1), printed
    /// `domain-server-seq`.
    fn process_mariadb_gtid(&mut self, ev: &SourceEvent) -> Result<()> {
        let d = ev.event.data();
        if d.len() < 13 {
            return Err(Error::malformed(
                &ev.pos,
                "MariaDB GTID event",
                "shorter than 13 bytes",
            ));
        }
        let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
        let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
        let server = ev.event.header().server_id();
        self.gtid = Some(format!("{domain}-{server}-{seq}"));
        Ok(())
    }

    async fn process_query<K: RowSink>(&mut self, ev: &SourceEvent, sink: &mut K) -> Result<()> {
        let q = self.read_query(ev)?;
        let sql = q.query_raw();
        // A non-transactional statement ends its group with COMMIT.
        if sql.eq_ignore_ascii_case(b"COMMIT") {
            self.gtid = None;
            return Ok(());
        }
        if is_transaction_control(sql) {
            return Ok(());
        }
        // A row change logged as a statement (binlog_format STATEMENT or
        // MIXED, perhaps for one session only): its rows are not in the log.
        // Failing beats skipping it.
        let Some(verb) = statement_logged_change(sql) else {
            let db = String::from_utf8_lossy(q.schema_raw());
            return match statement::classify(sql, &db) {
                // Only the tables the filter keeps are followed.
                Classified::Table(t) if !self.keeps_any(&t) => Ok(()),
                Classified::Table(t) => {
                    let session = logged_session(&q);
                    self.definitions.at(&ev.pos);
                    let before = match t.kind {
                        StatementKind::Alter => self.definitions.before(&t).await?,
                        _ => None,
                    };
                    let after = self.definitions.apply(&t, sql, &session).await?;
                    let edits = match t.kind {
                        StatementKind::Alter => statement::columns::column_edits(sql, &t),
                        _ => None,
                    };
                    // What a row already there holds in the added columns.
                    let existing = match (&edits, &before) {
                        (Some(e), Some(b)) if !e.added.is_empty() => {
                            self.definitions.existing_row(&t, sql, &session, b).await?
                        }
                        _ => None,
                    };
                    let rows = rows_after(
                        t.kind == StatementKind::Alter,
                        before.as_ref(),
                        after.first(),
                        edits.as_ref(),
                        existing.as_ref(),
                    );
                    self.process_table_statement(ev, &t, &after, &rows, sql, sink)
                }
                Classified::Skipped => {
                    self.stats.skipped_statements += 1;
                    Ok(())
                }
            };
        };
        let text = String::from_utf8_lossy(q.query_raw());
        let short: String = text.chars().take(80).collect();
        Err(Error::Unsupported {
            at: ev.pos.clone(),
            msg: format!(
                "a row change logged as a statement ({verb}: {short:?}): binlog_format was STATEMENT or MIXED \
                 when it was written, so its rows are not in the log; set binlog_format=ROW (globally, and for every session)"
            ),
        })
    }

    /// A Query event, or MariaDB's compressed one (`log_bin_compress=ON`):
    /// the same post-header, status variables and schema, then the query
    /// compressed as compressed rows are (see [`rows::inflate`]).
    fn read_query(&self, ev: &SourceEvent) -> Result<QueryEvent<'static>> {
        let t = ev.event.header().event_type_raw();
        if t == types::QUERY {
            let q: QueryEvent<'_> = guarded(&ev.pos, "query event", || ev.event.read_event())?;
            return Ok(q.into_owned());
        }
        let bad = |msg: &str| Error::malformed(&ev.pos, "compressed query event", msg);
        let d = ev.event.data();
        let post_header = self.post_header.get(t as usize - 1).copied().unwrap_or(13) as usize;
        if post_header < 13 || d.len() < post_header {
            return Err(bad("shorter than its post-header"));
        }
        let schema_len = d[8] as usize;
        let status_len = u16::from_le_bytes([d[11], d[12]]) as usize;
        let status_end = post_header + status_len;
        let schema_end = status_end + schema_len;
        // The schema's terminating zero byte, then the compressed query.
        let compressed = d
            .get(schema_end + 1..)
            .ok_or_else(|| bad("shorter than its schema"))?;
        let mut query = Vec::new();
        inflate(compressed, &mut query).map_err(|e| bad(&e))?;
        Ok(QueryEvent::new(
            d[post_header..status_end].to_vec(),
            d[status_end..schema_end].to_vec(),
        )
        .with_query(query))
    }

    /// A statement that changed tables: one `SchemaChangeEvent` per table
    /// it touched, listed under each name the filter keeps (a rename under
    /// its old and its new name).
    fn process_table_statement<K: RowSink>(
        &mut self,
        ev: &SourceEvent,
        st: &TableStatement,
        after: &[Known],
        rows: &RowsAfter,
        sql: &[u8],
        sink: &mut K,
    ) -> Result<()> {
        // The rows before the statement reach the sink before its events.
        self.finish(sink)?;
        let text = String::from_utf8_lossy(sql);
        let logged = Logged {
            kind: st.kind,
            statement: &statement::redact::redact(&text),
            at: &ev.pos,
            position: &ev.pos.to_string(),
            timestamp: ev.event.header().timestamp(),
        };
        let mut written = false;
        for (index, (t, after)) in st.tables.iter().zip(after).enumerate() {
            let (old_kept, new_kept) = self.kept(t);
            if !old_kept && !new_kept {
                continue;
            }
            self.write_touched(&logged, index, t, after, rows, old_kept);
            let table = t.table.as_deref().unwrap_or(EVERY_TABLE);
            if old_kept {
                sink.statement(&t.schema, table, logged.timestamp, &self.line)?;
            }
            if let Some((schema, new)) = t.renamed_to.as_ref().filter(|_| new_kept) {
                sink.statement(schema, new, logged.timestamp, &self.line)?;
            }
            self.record_versions(ev, logged.kind, t, after, old_kept, new_kept);
            written = true;
        }
        if written {
            *self.stats.statements.entry(logged.kind).or_default() += 1;
            self.stats.last_timestamp = Some(logged.timestamp);
            tracing::debug!(pos = %ev.pos, kind = logged.kind.name(), "table statement");
        }
        // The GTID stays: a CREATE TABLE ... SELECT's rows follow in its
        // transaction (the next transaction brings its own GTID).
        Ok(())
    }

    /// The event of one table `logged` touched (the `index`th), into
    /// `line`, written under the column rules of each of its names (see
    /// [`StatementRules`]).
    fn write_touched(
        &mut self,
        logged: &Logged<'_>,
        index: usize,
        t: &Touched,
        after: &Known,
        rows: &RowsAfter,
        old_kept: bool,
    ) {
        let table = t.table.as_deref();
        let old_name = table.map(|n| (t.schema.as_str(), n));
        let new_name = t.renamed_to.as_ref().map(|(s, n)| (s.as_str(), n.as_str()));
        let ruled = StatementRules::new(&self.opts.rules, old_name.into_iter().chain(new_name));
        let held = match rows {
            RowsAfter::Columns(h) => ruled.held_rows(h),
            _ => None,
        };
        // Held rows follow when the stream carries what they become; a
        // rename across column rules leaves values that are not the new
        // name's (the table is read anew).
        let carried = match rows {
            RowsAfter::Unchanged => true,
            RowsAfter::Columns(_) => held.is_some(),
            RowsAfter::NotCarried => false,
        };
        let same_rules = match (old_name, new_name, after) {
            (Some(old), Some(new), Known::Defined(d)) => ruled.same_across(old, new, d),
            _ => true,
        };
        let definition = match after {
            Known::Defined(d) => Some(ruled.definition(d)),
            _ => None,
        };
        if let Known::Unknown(why) = after {
            let why = ruled.statement(why);
            tracing::info!(pos = %logged.at, schema = %t.schema, table = table.unwrap_or(EVERY_TABLE), why = %why, "definition unknown");
        }
        self.line.clear();
        event::write_statement(
            &StatementRef {
                kind: logged.kind,
                schema: &t.schema,
                table,
                renamed_to: new_name,
                // A table renamed into the set: its rows were never streamed.
                snapshot_needed: (logged.kind.needs_snapshot() && !carried)
                    || !old_kept
                    || !same_rules,
                columns: held.as_ref(),
                definition: definition.as_deref(),
                statement: &ruled.statement(logged.statement),
                timestamp: logged.timestamp,
                position: logged.position,
                index: index as u32,
                gtid: self.gtid.as_deref(),
            },
            &mut self.line,
        );
    }

    /// Whether the filter keeps a table a statement touched: under its old
    /// name, under its new one.
    fn kept(&self, t: &Touched) -> (bool, bool) {
        let f = &self.opts.filter;
        let old = match t.table.as_deref() {
            Some(table) => f.keeps(&t.schema, table),
            None => f.keeps_some_table_of(&t.schema),
        };
        let new = t.renamed_to.as_ref().is_some_and(|(s, n)| f.keeps(s, n));
        (old, new)
    }

    fn keeps_any(&self, st: &TableStatement) -> bool {
        st.tables.iter().any(|t| {
            let (old, new) = self.kept(t);
            old || new
        })
    }

    /// The versions a statement left for the kept names it touched.
    fn record_versions(
        &mut self,
        ev: &SourceEvent,
        kind: StatementKind,
        t: &Touched,
        after: &Known,
        old_kept: bool,
        new_kept: bool,
    ) {
        let version = |schema: &str, table: &str, after: Known| Version {
            schema: schema.to_string(),
            table: table.to_string(),
            position: ev.pos.clone(),
            kind,
            after,
        };
        let Some(table) = t.table.as_deref() else {
            return; // a whole schema: its tables' histories say nothing more
        };
        match &t.renamed_to {
            Some((schema, new)) => {
                if old_kept {
                    self.versions.push(version(&t.schema, table, Known::Gone));
                }
                if new_kept {
                    self.versions.push(version(schema, new, after.clone()));
                }
            }
            None => self.versions.push(version(&t.schema, table, after.clone())),
        }
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
        if included {
            meta.rules = self
                .opts
                .rules
                .for_table(&meta)
                .map_err(|msg| Error::Config(format!("{}: {msg}", ev.pos)))?;
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

    /// A rows event: its table now, its rows with the next batch.
    fn queue_rows<K: RowSink>(&mut self, ev: SourceEvent, t: u8, sink: &mut K) -> Result<()> {
        let post_header = self.post_header.get(t as usize - 1).copied();
        let body = ev.event.data();
        let head = RowsHeader::read(body, &RowsShape::of(t), post_header)
            .map_err(|e| Error::malformed(&ev.pos, "rows event", e))?;
        let no_rows = body.len() == head.rows_at;
        let Some(entry) = self.table_of(&head, no_rows, &ev.pos)? else {
            return Ok(());
        };
        let job = RowsJob {
            ev,
            t,
            post_header,
            entry,
            gtid: self.gtid.clone(),
        };
        if self.rows.push(job) {
            self.rows.send(sink, &mut self.stats)?;
        }
        Ok(())
    }

    /// The table a rows event names, or `None` when its rows are skipped: a
    /// table the filter drops, or a dummy end-of-statement event (no table
    /// map, no rows). A column count other than the table map's is an error.
    fn table_of(
        &mut self,
        head: &RowsHeader<'_>,
        no_rows: bool,
        at: &BinlogPosition,
    ) -> Result<Option<Arc<TableEntry>>> {
        let Some(entry) = self.tables.get(&head.table_id).cloned() else {
            if no_rows {
                return Ok(None);
            }
            return Err(Error::Schema {
                at: at.clone(),
                table: format!("id {}", head.table_id),
                msg: "rows event without its table map (a range must start at a transaction boundary)".into(),
            });
        };
        if !entry.included {
            self.stats.filtered_rows_events += 1;
            return Ok(None);
        }
        let columns = entry.meta.columns.len();
        if head.columns != columns {
            return Err(Error::Schema {
                at: at.clone(),
                table: entry.meta.full_name.clone(),
                msg: format!(
                    "rows event has {} columns, its table map {columns}",
                    head.columns
                ),
            });
        }
        Ok(Some(entry))
    }
}

/// How many threads decode a batch of rows events: as many as this
/// process may run at once (its CPU quota counted), up to
/// [`rows::MAX_THREADS`].
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A logged table statement, as its events write it.
struct Logged<'a> {
    kind: StatementKind,
    /// Its text, credentials redacted.
    statement: &'a str,
    at: &'a BinlogPosition,
    position: &'a str,
    timestamp: u32,
}

/// What an ALTER did to the rows a consumer holds, as far as its event can
/// say.
#[derive(Debug, PartialEq)]
enum RowsAfter {
    /// Nothing: every column and the key are as they were (an index, a
    /// default).
    Unchanged,
    /// Columns added (with the value each existing row has) and dropped.
    Columns(HeldRows),
    /// Not carried by the stream (or not an ALTER).
    NotCarried,
}

/// An ALTER's effect on rows, from the definitions before and after it,
/// its column edits and a row that existed before it.
fn rows_after(
    alter: bool,
    before: Option<&Known>,
    after: Option<&Known>,
    edits: Option<&ColumnEdits>,
    existing: Option<&ExistingRow>,
) -> RowsAfter {
    let (true, Some(b), Some(a)) = (alter, before, after) else {
        return RowsAfter::NotCarried;
    };
    if definition::rows_unchanged(b, a) {
        RowsAfter::Unchanged
    } else {
        edits
            .and_then(|e| definition::held_rows(b, a, e, existing))
            .map_or(RowsAfter::NotCarried, RowsAfter::Columns)
    }
}

/// The session settings a statement was logged with, from its status
/// variables (those a replay of it needs).
fn logged_session(q: &QueryEvent<'_>) -> Session {
    use mysql_common::binlog::events::StatusVarVal;
    let mut s = Session::default();
    for var in q.status_vars().iter() {
        match var.get_value() {
            Ok(StatusVarVal::SqlMode(mode)) => s.sql_mode = Some(mode.0),
            Ok(StatusVarVal::Charset {
                charset_client,
                collation_connection,
                collation_server,
            }) => s.charsets = Some((charset_client, collation_connection, collation_server)),
            Ok(StatusVarVal::ExplicitDefaultsForTimestamp(on)) => {
                s.explicit_defaults_for_timestamp = Some(on)
            }
            _ => {}
        }
    }
    s
}

/// BEGIN, XA and savepoints: the frame of a transaction, not a change.
fn is_transaction_control(query: &[u8]) -> bool {
    let head: Vec<u8> = query
        .trim_ascii_start()
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    matches!(
        head.as_slice(),
        b"BEGIN" | b"XA" | b"SAVEPOINT" | b"ROLLBACK" | b"RELEASE"
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
