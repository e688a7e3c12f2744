//! The `parquet` format's per-table object: the table's change events as
//! typed rows (docs/EVENTS.md, *Parquet*), written in row groups as its
//! staged parts are read, so memory holds one row group, never the object.
//!
//! ```text
//! layouts (parse-chunk) ─▶ ObjectColumns (schema.rs) ─▶ Parquet schema
//! staged lines ─▶ Rows (rows.rs: event ─▶ leaves, values.rs: JSON ─▶ typed)
//!              ─▶ a row group per ROW_GROUP_BYTES ─▶ the store's writer
//! objects ─▶ columns, key names, statements (read.rs) ─▶ the current-rows query
//! ```

mod glue;
mod leaves;
pub mod read;
mod rows;
mod schema;
mod values;

use std::sync::Arc;

use binlog_cdc::catalog::ObjectSchema;
use binlog_cdc::decoder::typed::TypedColumn;
use binlog_cdc::decoder::BinlogPosition;
use binlog_cdc::error::{Error, Result};
use binlog_cdc::store::ObjectWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use rows::{BadValue, Rows};
pub use schema::ObjectColumns;

/// JSON bytes of events read into one row group before it is written: the
/// row group's typed values take about as much, so a table object of any
/// size is written in about twice this (docs/SCALE.md).
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// The fewest lines worth reading on two threads (a thread costs tens of
/// microseconds; a line, about two).
const MIN_SPLIT_LINES: usize = 256;

/// Why a staged line could not be read as a row.
enum LineError {
    NotUtf8,
    Bad(BadValue),
    /// The thread reading it ended without an answer (it panicked).
    Lost,
}

/// Adds each of `lines` to `rows`, in order.
fn add_all(rows: &mut Rows, lines: &[&[u8]]) -> std::result::Result<(), LineError> {
    for line in lines {
        let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
        rows.add(text).map_err(LineError::Bad)?;
    }
    Ok(())
}

/// `body`'s lines (its events), empty ones left out. Line ends are found
/// by `memchr`: split byte by byte, they were 3% of a parquet run's time,
/// all of it before a part's events go to two threads.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let line = body.get(start..end).unwrap_or_default();
            start = end + 1;
            line
        })
        .filter(|line| !line.is_empty())
}

/// Whether this process may run on more than one core.
fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// Writes one table's object.
pub struct TableWriter {
    out: Box<dyn ObjectWriter>,
    file: SerializedFileWriter<Vec<u8>>,
    rows: Rows,
    /// Rows of the same columns, read on a second thread (when there is a
    /// second core) and appended to `rows`; empty between.
    twin: Option<Rows>,
    /// `schema.table`, for errors.
    table: String,
    /// The object's key, for errors.
    key: String,
    /// JSON bytes in the row group being built.
    buffered: usize,
    stored: u64,
    /// The object's columns as its Glue table types them.
    glue: ObjectSchema,
}

impl TableWriter {
    /// A writer of `table`'s object at `key` into `out`, with a column for
    /// every name its `layouts` carry.
    pub fn new<'a>(
        out: Box<dyn ObjectWriter>,
        table: &str,
        key: &str,
        layouts: impl IntoIterator<Item = &'a [TypedColumn]>,
    ) -> Result<Self> {
        let columns =
            ObjectColumns::union(layouts).map_err(|m| Error::Config(format!("{table}: {m}")))?;
        let schema = columns
            .parquet_schema()
            .map_err(|e| parquet_error(key, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("binlog-cdc {}", env!("CARGO_PKG_VERSION")))
            .build();
        let glue = ObjectSchema {
            columns: glue::columns(&schema),
        };
        let file = SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))
            .map_err(|e| parquet_error(key, e))?;
        Ok(TableWriter {
            out,
            file,
            twin: two_cores().then(|| Rows::new(columns.clone())),
            rows: Rows::new(columns),
            table: table.to_string(),
            key: key.to_string(),
            buffered: 0,
            stored: 0,
            glue,
        })
    }

    /// The object's columns as its Glue table types them.
    pub fn glue_schema(&self) -> &ObjectSchema {
        &self.glue
    }

    /// Adds a staged part's events (one a line), a row group's share at a
    /// time.
    pub async fn push_part(&mut self, body: &[u8]) -> Result<()> {
        let mut lines = lines(body);
        loop {
            // The lines up to the row group's end, or the part's.
            let mut share = Vec::new();
            for line in lines.by_ref() {
                share.push(line);
                self.buffered += line.len();
                if self.buffered >= ROW_GROUP_BYTES {
                    break;
                }
            }
            if share.is_empty() {
                return Ok(());
            }
            self.add_lines(&share)?;
            if self.buffered >= ROW_GROUP_BYTES {
                self.write_row_group().await?;
            }
        }
    }

    /// Adds `lines` to the row group's rows: with a second core, the first
    /// half here and the second into `twin` on a thread of its own, then
    /// appended (reading events is most of the writer's time).
    fn add_lines(&mut self, lines: &[&[u8]]) -> Result<()> {
        let (rows, twin) = (&mut self.rows, &mut self.twin);
        let read = match twin {
            Some(twin) if lines.len() >= MIN_SPLIT_LINES => {
                let (first, second) = lines.split_at(lines.len() / 2);
                let (a, b) = std::thread::scope(|s| {
                    let other = s.spawn(|| add_all(twin, second));
                    (add_all(rows, first), other.join())
                });
                let b = b.unwrap_or(Err(LineError::Lost));
                a.and(b).map(|()| rows.append(twin))
            }
            _ => add_all(rows, lines),
        };
        read.map_err(|e| self.line_error(e))
    }

    /// The object's error for a line that could not be read.
    fn line_error(&self, e: LineError) -> Error {
        match e {
            LineError::NotUtf8 => Error::storage(&self.key, "a staged event is not UTF-8", false),
            LineError::Lost => Error::storage(
                &self.key,
                "the thread reading half of a part's events stopped without an answer",
                false,
            ),
            LineError::Bad(b) => self.bad_value(b),
        }
    }

    /// Writes the rows buffered as a row group, and hands its bytes to the
    /// store.
    async fn write_row_group(&mut self) -> Result<()> {
        if self.rows.count == 0 {
            return Ok(());
        }
        let key = self.key.clone();
        let pq = |e| parquet_error(&key, e);
        let mut group = self.file.next_row_group().map_err(pq)?;
        for leaf in self.rows.leaves() {
            let Some(mut col) = group.next_column().map_err(pq)? else {
                return Err(Error::storage(
                    &key,
                    "the schema has fewer columns than the rows",
                    false,
                ));
            };
            leaf.write(col.untyped()).map_err(pq)?;
            col.close().map_err(pq)?;
        }
        group.close().map_err(pq)?;
        self.rows.count = 0;
        self.buffered = 0;
        self.file
            .flush()
            .map_err(|e| Error::storage_from(&key, e, false))?;
        let bytes = std::mem::take(self.file.inner_mut());
        self.stored += bytes.len() as u64;
        self.out.write(&bytes).await
    }

    /// Writes the last row group and the footer; returns the object's size.
    pub async fn finish(mut self) -> Result<u64> {
        self.write_row_group().await?;
        let rest = self
            .file
            .into_inner()
            .map_err(|e| parquet_error(&self.key, e))?;
        self.stored += rest.len() as u64;
        self.out.write(&rest).await?;
        self.out.finish().await?;
        Ok(self.stored)
    }

    /// A value no column can take: a decoder error naming the table, the
    /// column and the event's position, when they are known.
    fn bad_value(&self, b: BadValue) -> Error {
        let Ok(at) = b.position.parse::<BinlogPosition>() else {
            return Error::storage(&self.key, format!("{}: {}", self.table, b.msg), false);
        };
        binlog_cdc::decoder::Error::Value {
            at,
            table: self.table.clone(),
            column: b.column.unwrap_or_else(|| "(event)".into()),
            msg: b.msg,
        }
        .into()
    }
}

fn parquet_error(key: &str, e: parquet::errors::ParquetError) -> Error {
    Error::storage_from(key.to_string(), e, false)
}

#[cfg(test)]
mod tests {
    use binlog_cdc::decoder::typed::ValueType;
    use binlog_cdc::store::local::LocalStore;
    use binlog_cdc::store::ObjectStore;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn layout() -> Vec<TypedColumn> {
        let col = |name: &str, value| TypedColumn {
            name: name.into(),
            value,
        };
        vec![
            col(
                "id",
                ValueType::Int {
                    bits: 64,
                    unsigned: true,
                },
            ),
            col("note", ValueType::Text),
            col(
                "price",
                ValueType::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
        ]
    }

    /// `n` events as the decoder writes them: inserts, updates with both
    /// images and deletes, every third note NULL.
    fn events(n: usize) -> String {
        let mut out = String::new();
        for i in 0..n {
            let note = if i % 3 == 0 {
                "null".to_string()
            } else {
                format!("\"n{i} é\"")
            };
            let image = format!("{{\"id\":{i},\"note\":{note},\"price\":\"{i}.25\"}}");
            let head = format!(
                "\"gtid\":\"0-1-{i}\",\"index\":0,\"keys\":{{\"id\":{i}}},\"position\":\"binlog.000001:{}\",\"timestamp\":1700000000",
                100 + i
            );
            let line = match i % 5 {
                3 => format!("{{\"type\":\"UpdateRowsEvent\",{head},\"newImage\":{image},\"oldImage\":{image}}}"),
                4 => format!("{{\"type\":\"DeleteRowsEvent\",{head},\"oldImage\":{image}}}"),
                _ => format!("{{\"type\":\"WriteRowsEvent\",{head},\"newImage\":{image}}}"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn lines_are_those_between_newlines() {
        let split = |b: &[u8]| lines(b).map(|l| l.to_vec()).collect::<Vec<_>>();
        assert_eq!(split(b"a\nbc\n"), [b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(split(b"\na\n\nbc"), [b"a".to_vec(), b"bc".to_vec()]);
        assert!(split(b"").is_empty() && split(b"\n\n").is_empty());
        let body = events(50);
        let std_split: Vec<&[u8]> = body
            .as_bytes()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines(body.as_bytes()).collect::<Vec<_>>(), std_split);
    }

    /// Reading a part's events on two threads writes the same object, byte
    /// for byte, as reading them on one, across parts and row groups.
    #[tokio::test]
    async fn two_threads_write_the_object_one_writes() {
        let dir = std::env::temp_dir().join(format!("parquet-twin-{}", std::process::id()));
        let store = LocalStore::new(&dir);
        let layout = layout();
        let body = events(3000);
        // Three parts: 1,000 events, one (too few to split), 1,999.
        let ends: Vec<usize> = body.match_indices('\n').map(|(i, _)| i + 1).collect();
        let parts = [
            &body[..ends[999]],
            &body[ends[999]..ends[1000]],
            &body[ends[1000]..],
        ];
        let mut objects = Vec::new();
        for twin in [false, true] {
            let key = format!("t-{twin}.parquet");
            let out = store.writer(&key).await.unwrap();
            let mut w = TableWriter::new(out, "s.t", &key, [&layout[..]]).unwrap();
            w.twin = twin.then(|| Rows::new(ObjectColumns::union([&layout[..]]).unwrap()));
            for (k, part) in parts.iter().enumerate() {
                if k == 2 {
                    // The row group ends after about 500 of its events.
                    w.buffered = ROW_GROUP_BYTES - (ends[1500] - ends[1000]);
                }
                w.push_part(part.as_bytes()).await.unwrap();
            }
            w.finish().await.unwrap();
            objects.push(store.get(&key).await.unwrap().unwrap().body);
        }
        assert_eq!(objects[0], objects[1], "the objects differ");
        let reader = SerializedFileReader::new(bytes::Bytes::from(objects.remove(1))).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3000);
        assert_eq!(reader.metadata().num_row_groups(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
