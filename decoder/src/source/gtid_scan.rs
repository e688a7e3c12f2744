//! GTID scans over any source (a server's range, local files): the executed
//! set where a file starts, and the first transaction a set lacks.

use crate::error::Result;
use crate::gtid::{file_start, source_and_gno, GtidSet};
use crate::position::BinlogPosition;
use crate::raw::types;
use crate::source::EventSource;

/// The executed set at the start of the file `source` reads from its
/// start: its PREVIOUS_GTIDS, MySQL's second event. `None` where the file
/// has none (MariaDB, MySQL before 5.6).
pub async fn file_start_set<S: EventSource>(source: &mut S) -> Result<Option<GtidSet>> {
    // PREVIOUS_GTIDS follows the format description; any other event there
    // means the file has none.
    while let Some(ev) = source.next_event().await? {
        if let Some(set) = file_start(&ev)? {
            return Ok(Some(set));
        }
        let t = ev.event.header().event_type_raw();
        if t != types::FORMAT_DESCRIPTION && t != types::ROTATE {
            break;
        }
    }
    Ok(None)
}

/// Where the first transaction that `set` lacks starts (its GTID event),
/// reading `source` on; `None` when `set` holds every one read.
pub async fn first_transaction_outside<S: EventSource>(
    source: &mut S,
    set: &GtidSet,
) -> Result<Option<BinlogPosition>> {
    while let Some(ev) = source.next_event().await? {
        let h = ev.event.header();
        let t = h.event_type_raw();
        if (t == types::GTID || t == types::GTID_TAGGED) && h.log_pos() != 0 {
            let (source, gno) = source_and_gno(&ev)?;
            if !set.holds(&source, gno, gno) {
                return Ok(Some(ev.pos));
            }
        }
    }
    Ok(None)
}
