//! A source read on a task of its own ([`ReadAhead`]): its events travel to
//! the decoder in batches over a bounded channel, so the next events are
//! read (from the network, from a file) while the ones before are decoded.
//!
//! A batch goes as soon as the decoder is waiting for one (the channel is
//! empty), else once it holds [`BATCH_BYTES`]: a slow stream is not held
//! back, a fast one travels in few messages. At most [`BATCHES`] batches
//! wait, so what is read ahead stays bounded. The task ends at the end of
//! the range, at an error (sent after the events before it), or when the
//! [`ReadAhead`] is dropped. A task that stops without saying why is an
//! error, never the end of the range.
//!
//! The overlap needs a runtime with a thread for the task (tokio's
//! multi-thread runtime); on a current-thread runtime the task reads only
//! while the decoder waits, as a plain source would.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{EventSource, SourceEvent};
use crate::error::{Error, Result};

/// A batch is sent once it holds this many bytes of events.
const BATCH_BYTES: usize = 256 * 1024;

/// At most this many batches wait for the decoder.
const BATCHES: usize = 4;

enum Message {
    /// Events in order, and the source's bytes read when they were.
    Events(Vec<SourceEvent>, u64),
    /// The end of the range, and the source's bytes read in all.
    End(u64),
    Failed(Error),
}

/// A source whose events are read ahead on a task of their own.
pub struct ReadAhead {
    rx: mpsc::Receiver<Message>,
    events: std::vec::IntoIter<SourceEvent>,
    bytes: u64,
    done: bool,
    task: JoinHandle<()>,
}

impl ReadAhead {
    /// Starts reading `source` on a task of the current runtime.
    pub fn spawn<S: EventSource + Send + 'static>(source: S) -> Self {
        let (tx, rx) = mpsc::channel(BATCHES);
        Self {
            rx,
            events: Vec::new().into_iter(),
            bytes: 0,
            done: false,
            task: tokio::spawn(read(source, tx)),
        }
    }
}

/// Reads `source` to its end (or its first error) into `tx`.
async fn read<S: EventSource>(mut source: S, tx: mpsc::Sender<Message>) {
    let mut events = Vec::new();
    let mut size = 0;
    loop {
        let last = match source.next_event().await {
            Ok(Some(ev)) => {
                size += ev.event.data().len();
                events.push(ev);
                None
            }
            Ok(None) => Some(Message::End(source.bytes_read())),
            Err(e) => Some(Message::Failed(e)),
        };
        let waited_for = tx.capacity() == tx.max_capacity();
        if !events.is_empty() && (last.is_some() || waited_for || size >= BATCH_BYTES) {
            let batch = Message::Events(std::mem::take(&mut events), source.bytes_read());
            size = 0;
            if tx.send(batch).await.is_err() {
                return;
            }
        }
        if let Some(last) = last {
            let _ = tx.send(last).await;
            return;
        }
    }
}

impl EventSource for ReadAhead {
    async fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        loop {
            if let Some(ev) = self.events.next() {
                return Ok(Some(ev));
            }
            if self.done {
                return Ok(None);
            }
            match self.rx.recv().await {
                Some(Message::Events(events, bytes)) => {
                    self.events = events.into_iter();
                    self.bytes = bytes;
                }
                Some(Message::End(bytes)) => {
                    self.bytes = bytes;
                    self.done = true;
                }
                Some(Message::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    let stopped = std::io::Error::other("the reading task stopped before the end");
                    return Err(Error::io("reading ahead", stopped));
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

impl Drop for ReadAhead {
    /// Stops reading: the source (a server's connection) goes with the task.
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::file::FileSource;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    /// Every event's position and size, then the error's text, if any.
    async fn read_all<S: EventSource>(mut source: S) -> (Vec<(String, u32)>, Option<String>, u64) {
        let mut seen = Vec::new();
        loop {
            match source.next_event().await {
                Ok(Some(ev)) => seen.push((ev.pos.to_string(), ev.event.header().event_size())),
                Ok(None) => return (seen, None, source.bytes_read()),
                Err(e) => return (seen, Some(e.to_string()), source.bytes_read()),
            }
        }
    }

    /// Many batches' worth: one real file, read 300 times over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_events_in_the_same_order_as_the_source_alone() {
        let files = vec![fixture("mysql97.000002"); 300];
        let alone = read_all(FileSource::new(&files)).await;
        let ahead = read_all(ReadAhead::spawn(FileSource::new(&files))).await;
        assert!(alone.0.len() > 3000, "{}", alone.0.len());
        assert_eq!(ahead, alone);
    }

    #[tokio::test]
    async fn an_error_comes_after_the_events_before_it() {
        let mut files = vec![fixture("mysql97.000002"); 20];
        files.push(fixture("mysql_common/binlog_truncated_event.000001"));
        let alone = read_all(FileSource::new(&files)).await;
        let ahead = read_all(ReadAhead::spawn(FileSource::new(&files))).await;
        assert!(alone.1.is_some(), "the truncated file fails");
        assert_eq!(ahead.0, alone.0);
        assert_eq!(ahead.1, alone.1);
    }
}
