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

/// Writes one table's object.
pub struct TableWriter {
    out: Box<dyn ObjectWriter>,
    file: SerializedFileWriter<Vec<u8>>,
    rows: Rows,
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

    /// Adds a staged part's events (one a line).
    pub async fn push_part(&mut self, body: &[u8]) -> Result<()> {
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line)
                .map_err(|_| Error::storage(&self.key, "a staged event is not UTF-8", false))?;
            self.rows.add(text).map_err(|b| self.bad_value(b))?;
            self.buffered += line.len();
            if self.buffered >= ROW_GROUP_BYTES {
                self.write_row_group().await?;
            }
        }
        Ok(())
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
