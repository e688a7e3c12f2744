//! Row images: bytes of a rows event -> one JSON value per column.
//!
//! All MySQL/MariaDB type decoding lives under this module, one file per type
//! family: [`int`] (integers, YEAR, BIT), [`float`] (with VECTOR), [`decimal`], [`temporal`],
//! [`text`] (CHAR/VARCHAR/TEXT/BLOB/BINARY, ENUM, SET, GEOMETRY) and [`json`].
//! Each value is written as JSON text straight into the image's buffer; an
//! image remembers where each column's text starts and ends, so the event
//! writer can copy keys, images and deltas without decoding twice.

pub mod decimal;
pub mod float;
pub mod int;
pub mod json;
pub mod temporal;
pub mod text;

use crate::schema::{ColumnKind, TableMeta};

/// A cursor over the bytes of a row image.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next `n` bytes, or an error naming how many were missing.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        match self.data.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(format!(
                "row image ends early: {} bytes wanted at offset {}, {} left",
                n,
                self.pos,
                self.data.len() - self.pos
            )),
        }
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian unsigned integer of `n` (1..=8) bytes.
    #[inline]
    pub(crate) fn uint_le(&mut self, n: usize) -> Result<u64, String> {
        // n comes from table-map metadata (length bytes of a BLOB, say): a
        // corrupt one must not shift past 64 bits.
        if n > 8 {
            return Err(format!("a {n}-byte integer (at most 8)"));
        }
        let b = self.take(n)?;
        let mut v = 0u64;
        for (i, &x) in b.iter().enumerate() {
            v |= (x as u64) << (8 * i);
        }
        Ok(v)
    }

    /// A big-endian unsigned integer of `n` (1..=8) bytes.
    #[inline]
    pub(crate) fn uint_be(&mut self, n: usize) -> Result<u64, String> {
        if n > 8 {
            return Err(format!("a {n}-byte integer (at most 8)"));
        }
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |v, &x| (v << 8) | x as u64))
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }
}

/// Where a column's JSON text sits in [`RowImage::buf`]; `ABSENT` when the
/// column is not in the image (MINIMAL/NOBLOB row images).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

const ABSENT: Span = Span {
    start: u32::MAX,
    end: u32::MAX,
};

/// Column texts by index: a decoded image, or one as column rules write it
/// (`column_rules::Ruled`).
pub trait Columns {
    /// The JSON text of column `i`, or `None` if the image does not hold it.
    fn get(&self, i: usize) -> Option<&[u8]>;
}

impl Columns for RowImage {
    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        RowImage::get(self, i)
    }
}

/// One decoded row image: every present column as JSON text.
#[derive(Default, Debug)]
pub struct RowImage {
    pub buf: Vec<u8>,
    spans: Vec<Span>,
    /// Whether some column is absent (a partial image).
    pub partial: bool,
}

impl RowImage {
    /// The JSON text of column `i`, or `None` if the image does not hold it.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let s = *self.spans.get(i)?;
        if s == ABSENT {
            None
        } else {
            Some(&self.buf[s.start as usize..s.end as usize])
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Starts an image of `n` columns built value by value (a queried row:
    /// see `snapshot::encode`), each with [`RowImage::push_with`].
    pub fn reset(&mut self, n: usize) {
        self.clear(n);
    }

    /// Appends the next column's JSON text, written by `write`.
    pub(crate) fn push_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let start = self.buf.len() as u32;
        write(&mut self.buf)?;
        self.spans.push(Span {
            start,
            end: self.buf.len() as u32,
        });
        Ok(())
    }

    /// Column `i` is not in the image (for tests of partial images).
    #[cfg(test)]
    pub(crate) fn set_absent(&mut self, i: usize) {
        if let Some(s) = self.spans.get_mut(i) {
            *s = ABSENT;
        }
    }

    fn clear(&mut self, n: usize) {
        self.buf.clear();
        self.spans.clear();
        self.spans.reserve(n);
        self.partial = false;
    }
}

/// Why one column failed: its index and the reason.
#[derive(Debug)]
pub(crate) struct ColumnError {
    pub column: Option<usize>,
    pub msg: String,
}

/// Decodes one row image starting at `r`: a NULL bitmap over the present
/// columns, then each present non-NULL value.
///
/// `present` is the event's column bitmap (bit i = column i is in the image).
/// `partial_json` (PARTIAL_UPDATE_ROWS after-images only) marks JSON columns
/// whose value is a diff, applied to `before`'s value.
pub(crate) fn decode_image(
    table: &TableMeta,
    present: &[u8],
    r: &mut Bytes<'_>,
    out: &mut RowImage,
    partial_json: Option<(&[u8], &RowImage)>,
) -> Result<(), ColumnError> {
    let n = table.columns.len();
    out.clear(n);
    let n_present = (0..n).filter(|&i| bit(present, i)).count();
    let nulls = r
        .take(n_present.div_ceil(8))
        .map_err(|msg| ColumnError { column: None, msg })?;
    let mut k = 0; // index among present columns
    let mut json_idx = 0; // index among JSON columns
    for (i, col) in table.columns.iter().enumerate() {
        let is_json = matches!(col.kind, ColumnKind::Json { .. });
        if !bit(present, i) {
            out.spans.push(ABSENT);
            out.partial = true;
            if is_json {
                json_idx += 1;
            }
            continue;
        }
        let start = out.buf.len() as u32;
        if bit(nulls, k) {
            out.buf.extend_from_slice(b"null");
        } else {
            let diff_base = match partial_json {
                Some((bits, before)) if is_json && bit(bits, json_idx) => Some(before.get(i)),
                _ => None,
            };
            let res = match diff_base {
                Some(base) => json::partial(r, &col.kind, base, &mut out.buf),
                None => decode_value(r, &col.kind, &mut out.buf),
            };
            res.map_err(|msg| ColumnError {
                column: Some(i),
                msg,
            })?;
        }
        if is_json {
            json_idx += 1;
        }
        k += 1;
        out.spans.push(Span {
            start,
            end: out.buf.len() as u32,
        });
    }
    Ok(())
}

/// Bit `i` of a little-endian bitmap (the binlog's bitmap order).
#[inline]
pub fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// One non-NULL value: dispatch to its type family.
#[inline]
pub(crate) fn decode_value(
    r: &mut Bytes<'_>,
    kind: &ColumnKind,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match kind {
        ColumnKind::Int { bytes, unsigned } => int::integer(r, *bytes, *unsigned, out),
        ColumnKind::Year => int::year(r, out),
        ColumnKind::Bit { bits } => int::bit(r, *bits, out),
        ColumnKind::Float => float::float(r, out),
        ColumnKind::Double => float::double(r, out),
        ColumnKind::Decimal { precision, scale } => decimal::decimal(r, *precision, *scale, out),
        ColumnKind::Date => temporal::date(r, out),
        ColumnKind::Time { fsp } => temporal::time2(r, *fsp, out),
        ColumnKind::TimeOld => temporal::time_old(r, out),
        ColumnKind::DateTime { fsp } => temporal::datetime2(r, *fsp, out),
        ColumnKind::DateTimeOld => temporal::datetime_old(r, out),
        ColumnKind::Timestamp { fsp } => temporal::timestamp2(r, *fsp, out),
        ColumnKind::TimestampOld => temporal::timestamp_old(r, out),
        ColumnKind::String {
            max_len,
            fixed,
            charset,
        } => text::string(r, *max_len, *fixed, *charset, out),
        ColumnKind::Blob { len_bytes, charset } => text::blob(r, *len_bytes, *charset, out),
        ColumnKind::Geometry { len_bytes } => text::geometry(r, *len_bytes, out),
        ColumnKind::Vector { len_bytes } => float::vector(r, *len_bytes, out),
        ColumnKind::Enum { bytes, labels } => text::enumeration(r, *bytes, labels.as_deref(), out),
        ColumnKind::Set { bytes, labels } => text::set(r, *bytes, labels.as_deref(), out),
        ColumnKind::Json { len_bytes } => json::json(r, *len_bytes, out),
        ColumnKind::Null => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}
