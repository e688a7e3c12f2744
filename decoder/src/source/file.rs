//! Local binlog files, read in order, one event at a time.
//!
//! The framing is ours (so a truncated or lying length is an error naming the
//! position, never a panic or a huge allocation); each complete event is then
//! handed to mysql_common's `EventStreamReader`, which tracks the format
//! description, strips and checks checksums. TRANSACTION_PAYLOAD events are
//! expanded here into the events they carry.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::TransactionPayloadEvent;
use mysql_common::binlog::EventStreamReader;

use super::{guarded, types, EventSource, SourceEvent};
use crate::error::{Error, Result};
use crate::position::{BinlogPosition, FIRST_EVENT_POS};

const MAGIC: &[u8; 4] = b"\xfebin";

struct OpenFile {
    name: String,
    reader: BufReader<File>,
    /// Offset of the next event.
    offset: u64,
    len: u64,
}

/// Reads a list of binlog files whole, in the order given.
pub struct FileSource {
    pending: VecDeque<PathBuf>,
    current: Option<OpenFile>,
    esr: EventStreamReader,
    payload: VecDeque<SourceEvent>,
    buf: Vec<u8>,
    bytes: u64,
}

impl FileSource {
    pub fn new(paths: impl IntoIterator<Item = impl AsRef<Path>>) -> Self {
        Self {
            pending: paths
                .into_iter()
                .map(|p| p.as_ref().to_path_buf())
                .collect(),
            current: None,
            esr: EventStreamReader::new(BinlogVersion::Version4),
            payload: VecDeque::new(),
            buf: Vec::new(),
            bytes: 0,
        }
    }

    fn open(path: &Path) -> Result<OpenFile> {
        let ctx = || path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(ctx(), e))?;
        let len = file.metadata().map_err(|e| Error::io(ctx(), e))?.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(ctx);
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut magic = [0u8; 4];
        let at = BinlogPosition::new(name.clone(), 0);
        if len < 4 || reader.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(Error::malformed(
                &at,
                "binlog file",
                "it does not start with the binlog magic bytes fe 62 69 6e",
            ));
        }
        Ok(OpenFile {
            name,
            reader,
            offset: FIRST_EVENT_POS,
            len,
        })
    }

    /// Expands a TRANSACTION_PAYLOAD event into the events it carries.
    fn expand_payload(&mut self, outer: &SourceEvent) -> Result<()> {
        let at = &outer.pos;
        let tpe: TransactionPayloadEvent<'_> =
            guarded(at, "transaction payload", || outer.event.read_event())?;
        let mut reader = guarded(at, "transaction payload", || tpe.decompressed())?;
        loop {
            // mysql_common allocates an event's declared size before reading
            // it: a corrupt length would allocate gigabytes (found by
            // tests/tests/fuzz_decoder.rs). So each inner event's bytes are
            // read here first, as far as the payload really holds them.
            let Some(bytes) = read_inner_event(&mut reader, at)? else {
                return Ok(());
            };
            let next = guarded(at, "event inside a transaction payload", || {
                self.esr.read_decompressed(&bytes[..])
            })?;
            match next {
                Some(event) => self.payload.push_back(SourceEvent {
                    pos: at.clone(),
                    event,
                }),
                None => return Ok(()),
            }
        }
    }
}

impl EventSource for FileSource {
    async fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        if let Some(ev) = self.payload.pop_front() {
            return Ok(Some(ev));
        }
        loop {
            if self.current.is_none() {
                let Some(path) = self.pending.pop_front() else {
                    return Ok(None);
                };
                self.current = Some(Self::open(&path)?);
                // Each file starts with its own format description.
                self.esr = EventStreamReader::new(BinlogVersion::Version4);
            }
            let Some(f) = self.current.as_mut() else {
                continue;
            };
            let at = BinlogPosition::new(f.name.clone(), f.offset);
            if f.offset >= f.len {
                self.current = None;
                continue;
            }
            let left = f.len - f.offset;
            if left < types::EVENT_HEADER_LEN as u64 {
                return Err(Error::malformed(
                    &at,
                    "event",
                    format!("the file ends {left} bytes into an event header (truncated file)"),
                ));
            }
            self.buf.resize(types::EVENT_HEADER_LEN, 0);
            f.reader
                .read_exact(&mut self.buf[..types::EVENT_HEADER_LEN])
                .map_err(|e| Error::io(at.to_string(), e))?;
            let size =
                u32::from_le_bytes([self.buf[9], self.buf[10], self.buf[11], self.buf[12]]) as u64;
            if size < types::EVENT_HEADER_LEN as u64 {
                return Err(Error::malformed(
                    &at,
                    "event",
                    format!("its header says it is {size} bytes, less than a header"),
                ));
            }
            if size > left {
                return Err(Error::malformed(
                    &at,
                    "event",
                    format!("its header says it is {size} bytes but only {left} remain (truncated file)"),
                ));
            }
            self.buf.resize(size as usize, 0);
            f.reader
                .read_exact(&mut self.buf[types::EVENT_HEADER_LEN..])
                .map_err(|e| Error::io(at.to_string(), e))?;
            f.offset += size;
            self.bytes += size;
            let esr = &mut self.esr;
            let buf = &self.buf[..];
            let event = guarded(&at, "event", || esr.read(buf))?
                .ok_or_else(|| Error::malformed(&at, "event", "empty event"))?;
            let ev = SourceEvent { pos: at, event };
            if ev.event.header().event_type_raw() == types::TRANSACTION_PAYLOAD {
                self.expand_payload(&ev)?;
            }
            return Ok(Some(ev));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// The next event inside a decompressed transaction payload, as bytes
/// (header included), or `None` at its end. The buffer grows only with bytes
/// actually read, whatever the header claims.
fn read_inner_event(reader: &mut impl Read, at: &BinlogPosition) -> Result<Option<Vec<u8>>> {
    let bad = |msg: String| Error::malformed(at, "event inside a transaction payload", msg);
    let mut header = [0u8; types::EVENT_HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(bad("the payload ends inside an event header".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as u64;
    if size < header.len() as u64 {
        return Err(bad(format!("an event length of {size} bytes")));
    }
    let mut bytes = header.to_vec();
    reader
        .take(size - header.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 != size {
        return Err(bad(format!(
            "an event of {size} bytes, but the payload holds only {} more",
            bytes.len()
        )));
    }
    Ok(Some(bytes))
}
