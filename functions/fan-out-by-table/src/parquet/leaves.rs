//! One Parquet leaf column's buffered values with their definition and
//! repetition levels, until its row group is written.
//!
//! Levels, as the spec defines them for our schema: a top-level optional
//! value has definition level 1 when present, 0 when NULL; inside the
//! optional `_cdc_old` group each is one more (the group present, `base`
//! 1). A LIST adds two: the list present (empty), and an element present;
//! its elements after the first repeat at level 1.

use bytes::Bytes;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::errors::Result as PqResult;

/// The values of one leaf, by physical type. Byte strings are kept one
/// after another in one buffer (a row group's strings are then one
/// allocation, each handed to the writer as a slice of it).
#[derive(Debug)]
pub enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Each string ends at its `ends` in `data`.
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    /// Strings of `width` bytes each.
    Fixed {
        data: Vec<u8>,
        width: usize,
    },
}

impl Values {
    pub fn bytes() -> Self {
        Values::Bytes {
            data: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Appends a byte string (to `Bytes`) or a fixed one (to `Fixed`, whose
    /// width it must have).
    pub fn push_bytes(&mut self, b: &[u8]) {
        match self {
            Values::Bytes { data, ends } => {
                data.extend_from_slice(b);
                ends.push(data.len());
            }
            Values::Fixed { data, .. } => data.extend_from_slice(b),
            _ => {}
        }
    }

    /// Moves `other`'s values after these (same physical type).
    fn append(&mut self, other: &mut Values) {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.append(b),
            (Values::I32(a), Values::I32(b)) => a.append(b),
            (Values::I64(a), Values::I64(b)) => a.append(b),
            (Values::F32(a), Values::F32(b)) => a.append(b),
            (Values::F64(a), Values::F64(b)) => a.append(b),
            (Values::Bytes { data, ends }, Values::Bytes { data: d, ends: e }) => {
                let base = data.len();
                ends.extend(e.drain(..).map(|end| base + end));
                data.append(d);
            }
            (Values::Fixed { data, .. }, Values::Fixed { data: d, .. }) => data.append(d),
            _ => {}
        }
    }
}

/// The buffered strings as the writer takes them, slices of one buffer.
/// The buffer goes with them; the next starts at its size, so that it is
/// not copied each time it doubles on the way.
fn slices(data: &mut Vec<u8>, ends: impl Iterator<Item = usize>) -> Vec<ByteArray> {
    let next = Vec::with_capacity(data.len());
    let all = Bytes::from(std::mem::replace(data, next));
    let mut start = 0;
    ends.map(|end| {
        let b = ByteArray::from(all.slice(start..end));
        start = end;
        b
    })
    .collect()
}

#[derive(Debug)]
pub struct Leaf {
    pub values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    /// Whether the leaf has definition levels (it, or a parent, is optional).
    optional: bool,
    /// Whether it is a LIST's element.
    repeated: bool,
}

impl Leaf {
    pub fn new(values: Values, optional: bool, repeated: bool) -> Self {
        Leaf {
            values,
            def: Vec::new(),
            rep: Vec::new(),
            optional,
            repeated,
        }
    }

    /// A NULL (or absent) value, defined to `level`.
    pub fn null(&mut self, level: i16) {
        self.def.push(level);
        if self.repeated {
            self.rep.push(0);
        }
    }

    /// Records the levels of one present value at `level` (its value
    /// already pushed); `first` says whether it starts its row.
    pub fn defined(&mut self, level: i16, first: bool) {
        if self.optional {
            self.def.push(level);
        }
        if self.repeated {
            self.rep.push(if first { 0 } else { 1 });
        }
    }

    /// Moves `other`'s values and levels after these: the rows it holds
    /// follow this leaf's (it is a leaf of the same column).
    pub fn append(&mut self, other: &mut Leaf) {
        self.values.append(&mut other.values);
        self.def.append(&mut other.def);
        self.rep.append(&mut other.rep);
    }

    /// Writes the buffered values into the row group's next column, and
    /// empties the buffers.
    pub fn write(&mut self, col: &mut ColumnWriter<'_>) -> PqResult<()> {
        let def = self.optional.then_some(&self.def[..]);
        let rep = self.repeated.then_some(&self.rep[..]);
        match (&mut self.values, col) {
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(v, def, rep)?;
                v.clear();
            }
            (Values::I32(v), ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(v, def, rep)?;
                v.clear();
            }
            (Values::I64(v), ColumnWriter::Int64ColumnWriter(w)) => {
                w.write_batch(v, def, rep)?;
                v.clear();
            }
            (Values::F32(v), ColumnWriter::FloatColumnWriter(w)) => {
                w.write_batch(v, def, rep)?;
                v.clear();
            }
            (Values::F64(v), ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(v, def, rep)?;
                v.clear();
            }
            (Values::Bytes { data, ends }, ColumnWriter::ByteArrayColumnWriter(w)) => {
                let v = slices(data, ends.iter().copied());
                w.write_batch(&v, def, rep)?;
                ends.clear();
            }
            (Values::Fixed { data, width }, ColumnWriter::FixedLenByteArrayColumnWriter(w)) => {
                let width = (*width).max(1);
                let n = data.len() / width;
                let v: Vec<FixedLenByteArray> = slices(data, (1..=n).map(|k| k * width))
                    .into_iter()
                    .map(FixedLenByteArray::from)
                    .collect();
                w.write_batch(&v, def, rep)?;
            }
            _ => {
                return Err(parquet::errors::ParquetError::General(
                    "a leaf's values do not match its column's physical type".into(),
                ))
            }
        }
        self.def.clear();
        self.rep.clear();
        Ok(())
    }
}
