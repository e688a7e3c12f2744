//! Chunk planning: cut `[from, to)` into ranges of one binlog file each, every
//! one starting at a transaction boundary, none (where the log allows) larger
//! than `chunk_bytes`. Small files are one chunk; a larger file is streamed
//! once, events only, to find its transaction boundaries (the start of each
//! GTID event, and the end of each XID event), and cut there.

use crate::error::{Error, Result};
use crate::position::BinlogPosition;
use crate::source::server::ServerSource;
use crate::source::{types, EventSource};

/// One planned range: `[from, to)` within one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRange {
    pub from: BinlogPosition,
    pub to: BinlogPosition,
}

/// Plans `[from, to)` over `files` (`SHOW BINARY LOGS`: name and size, oldest
/// first). `probe_server_id` is the replication id used to find boundaries.
pub async fn plan_chunks(
    url: &str,
    files: &[(String, u64)],
    from: &BinlogPosition,
    to: &BinlogPosition,
    chunk_bytes: u64,
    probe_server_id: u32,
) -> Result<Vec<ChunkRange>> {
    let mut chunks = Vec::new();
    for (file, size) in files {
        let start = BinlogPosition::new(
            file.clone(),
            if file == from.file() { from.pos() } else { 4 },
        );
        let end = BinlogPosition::new(
            file.clone(),
            if file == to.file() { to.pos() } else { *size },
        );
        if start < *from || start >= *to || end.pos() <= start.pos() {
            continue;
        }
        if end.pos() - start.pos() <= chunk_bytes {
            chunks.push(ChunkRange {
                from: start,
                to: end,
            });
            continue;
        }
        let bounds = transaction_boundaries(url, &start, &end, probe_server_id).await?;
        let mut cur = start.clone();
        for b in bounds {
            if b > cur.pos() && b < end.pos() && b - cur.pos() >= chunk_bytes {
                let next = BinlogPosition::new(file.clone(), b);
                chunks.push(ChunkRange {
                    from: cur,
                    to: next.clone(),
                });
                cur = next;
            }
        }
        chunks.push(ChunkRange { from: cur, to: end });
    }
    if chunks.is_empty() && from < to {
        return Err(Error::Config(format!(
            "no binlog file on the server covers {from}..{to}"
        )));
    }
    Ok(chunks)
}

/// Offsets in `[start, end)` where a transaction begins.
async fn transaction_boundaries(
    url: &str,
    start: &BinlogPosition,
    end: &BinlogPosition,
    server_id: u32,
) -> Result<Vec<u64>> {
    let mut src = ServerSource::open(url, start, Some(end.clone()), server_id).await?;
    let mut out = Vec::new();
    while let Some(ev) = src.next_event().await? {
        let h = ev.event.header();
        match h.event_type_raw() {
            types::GTID | types::ANONYMOUS_GTID | types::GTID_TAGGED | types::MARIADB_GTID => {
                out.push(ev.pos.pos())
            }
            types::XID => out.push(ev.pos.pos() + h.event_size() as u64),
            _ => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
