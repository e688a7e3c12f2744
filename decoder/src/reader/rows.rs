//! Rows events: each one's rows decoded into change events, a batch of
//! events at a time on threads of their own, and handed to the sink in
//! binlog order.
//!
//! The stream's state a rows event needs (its table's plan, the GTID, the
//! format's post-header length) is taken when the event comes, in order
//! ([`RowsJob`]); what is left is pure work on the event's bytes. A full
//! batch is cut into one contiguous share per decoding thread and sent off
//! ([`Batch::send`]); while the threads decode it, the next batch's events
//! are read, and the batch before is handed to the sink, share after share:
//! the same bytes, in the same order, as one thread writes. An error stops
//! its share; the events before it are still handed over, then the error is
//! returned, and nothing after it. On one core the rows are decoded where
//! they come, a batch at a time.

use std::io::Read;
use std::ops::Range;
use std::sync::{mpsc, Arc};

use super::{Lines, RowSink, Stats, TableEntry};
use crate::decode::{self, Bytes, ColumnError, RowImage};
use crate::error::{Error, Result};
use crate::event::{EventWriter, RowKind, RowRef, View};
use crate::position::BinlogPosition;
use crate::raw::{types, SourceEvent};
use crate::schema::TableMeta;

/// A batch is sent off once its events hold this many bytes (or when the
/// stream needs it: a statement, an error, the end).
const BATCH_BYTES: usize = 256 * 1024;

/// At most this many threads decode rows events.
pub(super) const MAX_THREADS: usize = 4;

/// A rows event waiting to be decoded, with what of the stream's state it
/// needs.
pub(super) struct RowsJob {
    pub ev: SourceEvent,
    /// Its type code.
    pub t: u8,
    /// The format description's post-header length for its type.
    pub post_header: Option<u8>,
    pub entry: Arc<TableEntry>,
    /// The transaction's GTID, if it has one.
    pub gtid: Option<String>,
}

/// Rows events on their way: the batch being filled, the one being decoded,
/// and the threads that decode them.
pub(super) struct Batch {
    view: View,
    threads: usize,
    jobs: Vec<RowsJob>,
    bytes: usize,
    /// The decoding threads (none on one core), started with the first batch.
    pool: Vec<Worker>,
    /// How many of `pool` hold a share of the batch sent last, not yet
    /// handed over.
    in_flight: usize,
    /// Where rows are decoded on one core.
    here: Option<RowsDecoder>,
    /// Output buffers handed over, for the next shares.
    spare: Vec<Share>,
}

/// A decoding thread: shares go in, the same shares decoded come out, in
/// the order they went in.
struct Worker {
    to: mpsc::Sender<Work>,
    from: mpsc::Receiver<Work>,
}

/// One thread's share of a batch: its rows events, and their change events
/// once decoded.
struct Work {
    jobs: Vec<RowsJob>,
    share: Share,
}

/// Decoded rows events: every change event in `text`, each followed by a
/// newline, where each newline is, and per rows event how many events it
/// wrote and the error that stopped it.
#[derive(Default)]
struct Share {
    text: Vec<u8>,
    ends: Vec<usize>,
    outcomes: Vec<Outcome>,
}

struct Outcome {
    events: usize,
    error: Option<Error>,
}

impl Batch {
    /// Rows decoded on `threads` threads (1: where the events come).
    pub(super) fn new(view: View, threads: usize) -> Self {
        Self {
            view,
            threads: threads.clamp(1, MAX_THREADS),
            jobs: Vec::new(),
            bytes: 0,
            pool: Vec::new(),
            in_flight: 0,
            here: None,
            spare: Vec::new(),
        }
    }

    /// Nothing queued, nothing in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.in_flight == 0
    }

    /// Queues `job`; true when the batch is full (time to [`Batch::send`]).
    pub(super) fn push(&mut self, job: RowsJob) -> bool {
        self.bytes += job.ev.event.data().len();
        self.jobs.push(job);
        self.bytes >= BATCH_BYTES
    }

    /// Sends the queued events off to be decoded, then hands the batch sent
    /// before (decoded meanwhile) to `sink`, counting its events in `stats`.
    pub(super) fn send<K: RowSink>(&mut self, sink: &mut K, stats: &mut Stats) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        let jobs = std::mem::take(&mut self.jobs);
        let bytes = std::mem::replace(&mut self.bytes, 0);
        if self.threads == 1 {
            let decoder = self.here.get_or_insert_with(|| RowsDecoder::new(self.view));
            let mut share = self.spare.pop().unwrap_or_default();
            decoder.decode_share(&jobs, &mut share);
            return self.hand_over(Work { jobs, share }, sink, stats);
        }
        let before = std::mem::replace(&mut self.in_flight, 0);
        self.dispatch(jobs, bytes)?;
        self.hand_over_in_flight(before, sink, stats)
    }

    /// Hands everything over: the batch in flight, then the queued events.
    pub(super) fn flush<K: RowSink>(&mut self, sink: &mut K, stats: &mut Stats) -> Result<()> {
        self.send(sink, stats)?;
        let last = std::mem::replace(&mut self.in_flight, 0);
        self.hand_over_in_flight(last, sink, stats)
    }

    /// `jobs` cut into one share per thread, each sent to its thread.
    fn dispatch(&mut self, mut jobs: Vec<RowsJob>, bytes: usize) -> Result<()> {
        if self.pool.is_empty() {
            self.pool = (0..self.threads)
                .map(|_| Worker::start(self.view))
                .collect::<std::io::Result<_>>()
                .map_err(|e| Error::io("starting the threads that decode rows events", e))?;
        }
        let cuts = cuts(&jobs, self.pool.len(), bytes);
        let mut shares: Vec<Vec<RowsJob>> = cuts
            .iter()
            .rev()
            .map(|range| jobs.split_off(range.start))
            .collect();
        shares.reverse();
        for (worker, jobs) in self.pool.iter().zip(shares) {
            let share = self.spare.pop().unwrap_or_default();
            worker
                .to
                .send(Work { jobs, share })
                .map_err(|_| stopped())?;
            self.in_flight += 1;
        }
        Ok(())
    }

    /// The first `shares` threads' decoded shares to `sink`, in order.
    fn hand_over_in_flight<K: RowSink>(
        &mut self,
        shares: usize,
        sink: &mut K,
        stats: &mut Stats,
    ) -> Result<()> {
        for i in 0..shares {
            let work = self.pool[i].from.recv().map_err(|_| stopped())?;
            if let Err(e) = self.hand_over(work, sink, stats) {
                self.discard();
                return Err(e);
            }
        }
        Ok(())
    }

    /// One decoded share's events to `sink`, up to its first error.
    fn hand_over<K: RowSink>(&mut self, work: Work, sink: &mut K, stats: &mut Stats) -> Result<()> {
        let Work { jobs, mut share } = work;
        let (mut line, mut start) = (0, 0);
        let mut result = Ok(());
        for (outcome, job) in share.outcomes.iter_mut().zip(&jobs) {
            let meta = &job.entry.meta;
            let timestamp = job.ev.event.header().timestamp();
            let ends = &share.ends[line..line + outcome.events];
            if let Some(&last) = ends.last() {
                let lines = Lines {
                    text: &share.text,
                    start,
                    ends,
                };
                result = sink.rows(meta, timestamp, lines);
                start = last + 1;
            }
            if let Some(e) = outcome.error.take().filter(|_| result.is_ok()) {
                result = Err(e);
            }
            if result.is_err() {
                break;
            }
            line += outcome.events;
            if outcome.events > 0 {
                let kind = RowsShape::of(job.t).kind;
                let per_table = stats.rows.entry(meta.full_name.clone()).or_default();
                *per_table.entry(kind).or_default() += outcome.events as u64;
                stats.last_timestamp = Some(timestamp);
            }
        }
        self.spare.push(share);
        result
    }

    /// After an error: what is in flight or queued comes after it, and is
    /// dropped undelivered.
    fn discard(&mut self) {
        for i in 0..std::mem::replace(&mut self.in_flight, 0) {
            let _ = self.pool[i].from.recv();
        }
        self.jobs.clear();
        self.bytes = 0;
    }
}

impl Worker {
    /// A thread that decodes shares until its batch is dropped.
    fn start(view: View) -> std::io::Result<Self> {
        let (to, work) = mpsc::channel::<Work>();
        let (done, from) = mpsc::channel();
        std::thread::Builder::new()
            .name("binlog-decode".into())
            .spawn(move || {
                let mut decoder = RowsDecoder::new(view);
                while let Ok(mut w) = work.recv() {
                    decoder.decode_share(&w.jobs, &mut w.share);
                    if done.send(w).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self { to, from })
    }
}

/// A decoding thread ended without its share: a defect (it panicked).
fn stopped() -> Error {
    let stopped = std::io::Error::other("a thread decoding rows events stopped");
    Error::io("decoding rows events", stopped)
}

/// `jobs` cut into at most `n` contiguous ranges of about equal bytes.
fn cuts(jobs: &[RowsJob], n: usize, total: usize) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(n);
    let (mut start, mut bytes) = (0, 0);
    for (i, job) in jobs.iter().enumerate() {
        bytes += job.ev.event.data().len();
        if out.len() + 1 < n && bytes * n >= total * (out.len() + 1) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < jobs.len() {
        out.push(start..jobs.len());
    }
    out
}

/// One thread's decoder: its images and event writer, reused row after row.
struct RowsDecoder {
    view: View,
    writer: EventWriter,
    before: RowImage,
    after: RowImage,
    inflated: Vec<u8>,
}

impl RowsDecoder {
    fn new(view: View) -> Self {
        Self {
            view,
            writer: EventWriter::default(),
            before: RowImage::default(),
            after: RowImage::default(),
            inflated: Vec::new(),
        }
    }

    /// Decodes `jobs` into `share`, stopping at the first error.
    fn decode_share(&mut self, jobs: &[RowsJob], share: &mut Share) {
        share.text.clear();
        share.ends.clear();
        share.outcomes.clear();
        for job in jobs {
            let before = share.ends.len();
            let error = self.decode(job, share).err();
            let stop = error.is_some();
            share.outcomes.push(Outcome {
                events: share.ends.len() - before,
                error,
            });
            if stop {
                break;
            }
        }
    }

    /// Decodes one rows event's rows, each row's change event into `share`.
    fn decode(&mut self, job: &RowsJob, share: &mut Share) -> Result<()> {
        let at = &job.ev.pos;
        let shape = RowsShape::of(job.t);
        let body = job.ev.event.data();
        // Read again (the decoder read it to find the table): a few bytes,
        // and a job holds no borrow of its own event.
        let head = RowsHeader::read(body, &shape, job.post_header)
            .map_err(|e| Error::malformed(at, "rows event", e))?;
        let rest = &body[head.rows_at..];
        let rows_data: &[u8] = if shape.compressed {
            inflate(rest, &mut self.inflated).map_err(|e| Error::malformed(at, "rows event", e))?;
            &self.inflated
        } else {
            rest
        };
        let meta = &job.entry.meta;
        let position = at.to_string();
        let timestamp = job.ev.event.header().timestamp();
        let mut r = Bytes::new(rows_data);
        let mut index = 0u32;
        while !r.is_empty() {
            // A row whose images name no column takes no bytes: the loop
            // would never end (seen with mutated bytes, never from a server).
            let row_start = r.position();
            decode_row(
                meta,
                &shape,
                &head,
                &mut r,
                &mut self.before,
                &mut self.after,
            )
            .map_err(|e| e.at(at, meta))?;
            if r.position() == row_start {
                return Err(Error::malformed(
                    at,
                    "rows event",
                    "a row image that names no column, in a rows event with bytes left",
                ));
            }
            let (before, after) = match shape.kind {
                // (The binlog has no snapshot rows; a snapshot row is an insert's shape.)
                RowKind::Write | RowKind::Snapshot => (None, Some(&self.after)),
                RowKind::Delete => (Some(&self.before), None),
                RowKind::Update => (Some(&self.before), Some(&self.after)),
            };
            let row = RowRef {
                table: meta,
                kind: shape.kind,
                timestamp,
                position: &position,
                index,
                gtid: job.gtid.as_deref(),
                before,
                after,
            };
            self.writer.write(&row, self.view, &mut share.text);
            share.ends.push(share.text.len());
            share.text.push(b'\n');
            index += 1;
        }
        Ok(())
    }
}

/// What a rows event's type code says about it.
pub(super) struct RowsShape {
    kind: RowKind,
    /// Version 2 (MySQL 5.6+): extra data after the flags.
    v2: bool,
    /// MariaDB's compressed rows events: the rows are zlib data.
    compressed: bool,
    /// MySQL's PARTIAL_UPDATE_ROWS: JSON columns may be diffs.
    partial: bool,
}

impl RowsShape {
    pub(super) fn of(t: u8) -> Self {
        use types::*;
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
        Self {
            kind,
            v2,
            compressed,
            partial: t == PARTIAL_UPDATE_ROWS,
        }
    }
}

/// A rows event's post-header (table id, flags, v2 extra data) and column
/// bitmaps: which columns each image holds.
pub(super) struct RowsHeader<'a> {
    pub(super) table_id: u64,
    pub(super) columns: usize,
    /// Columns in the before image (updates, deletes).
    before_cols: &'a [u8],
    /// Columns in the after image (inserts, updates).
    after_cols: &'a [u8],
    /// Where the rows start in the body.
    pub(super) rows_at: usize,
}

/// The table id's length in a post-header: 6 bytes, 4 in pre-5.1.4 formats
/// (whose post-header is 6 bytes long in all).
const TABLE_ID_LEN: usize = 6;
const OLD_TABLE_ID_LEN: usize = 4;
const OLD_ROWS_POST_HEADER_LEN: u8 = 6;
const FLAGS_LEN: usize = 2;
/// Post-header lengths when the format description gives none.
const ROWS_POST_HEADER_LEN: u8 = 8;
const ROWS_V2_POST_HEADER_LEN: u8 = 10;

impl<'a> RowsHeader<'a> {
    /// `post_header` is the format description's length for this type.
    pub(super) fn read(
        body: &'a [u8],
        shape: &RowsShape,
        post_header: Option<u8>,
    ) -> std::result::Result<Self, String> {
        let mut r = Bytes::new(body);
        let default = if shape.v2 {
            ROWS_V2_POST_HEADER_LEN
        } else {
            ROWS_POST_HEADER_LEN
        };
        let id_len = match post_header.unwrap_or(default) {
            OLD_ROWS_POST_HEADER_LEN => OLD_TABLE_ID_LEN,
            _ => TABLE_ID_LEN,
        };
        let table_id = r.uint_le(id_len)?;
        r.take(FLAGS_LEN)?;
        if shape.v2 {
            // Extra data, whose length counts its own two bytes.
            let extra = r.uint_le(2)? as usize;
            r.take(extra.saturating_sub(2))?;
        }
        let columns = lenenc(&mut r)? as usize;
        let bitmap = columns.div_ceil(8);
        let before_cols = match shape.kind {
            RowKind::Write | RowKind::Snapshot => &[][..],
            _ => r.take(bitmap)?,
        };
        let after_cols = match shape.kind {
            RowKind::Delete => &[][..],
            _ => r.take(bitmap)?,
        };
        Ok(Self {
            table_id,
            columns,
            before_cols,
            after_cols,
            rows_at: r.position(),
        })
    }
}

/// Why a row could not be decoded: a column's value, or the image's bytes.
enum RowError {
    Column(ColumnError),
    Bytes(String),
}

impl RowError {
    fn at(self, at: &BinlogPosition, meta: &TableMeta) -> Error {
        match self {
            RowError::Column(ColumnError {
                column: Some(i),
                msg,
            }) => Error::Value {
                at: at.clone(),
                table: meta.full_name.clone(),
                column: meta.columns[i].name.clone(),
                msg,
            },
            RowError::Column(ColumnError { column: None, msg }) => {
                Error::malformed(at, "row image", msg)
            }
            RowError::Bytes(msg) => Error::malformed(at, "rows event", msg),
        }
    }
}

/// Decodes one row's images (as its kind has them) into `before` and `after`.
fn decode_row(
    meta: &TableMeta,
    shape: &RowsShape,
    head: &RowsHeader<'_>,
    r: &mut Bytes<'_>,
    before: &mut RowImage,
    after: &mut RowImage,
) -> std::result::Result<(), RowError> {
    if shape.kind != RowKind::Write {
        decode::decode_image(meta, head.before_cols, r, before, None).map_err(RowError::Column)?;
    }
    if shape.kind == RowKind::Delete {
        return Ok(());
    }
    let mut partial_bits: Option<&[u8]> = None;
    if shape.partial {
        // value_options (packed int); bit 0 = PARTIAL_JSON_UPDATES, then one
        // bit per JSON column: is its value a diff.
        let options = lenenc(r).map_err(RowError::Bytes)?;
        if options & 1 == 1 {
            partial_bits = Some(
                r.take(meta.json_columns.div_ceil(8))
                    .map_err(RowError::Bytes)?,
            );
        }
    }
    let diff = partial_bits.map(|b| (b, &*before));
    decode::decode_image(meta, head.after_cols, r, after, diff).map_err(RowError::Column)
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
pub(super) fn inflate(src: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
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
