//! FLOAT and DOUBLE: IEEE 754 little-endian, printed as the shortest JSON
//! number that reads back as the same stored value.

use super::Bytes;
use crate::json;

/// FLOAT: 4 bytes. Printed from the `f32` itself, so `0.1` stays `0.1`.
#[inline]
pub fn float(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let b = r.take(4)?;
    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if !v.is_finite() {
        return Err(format!("FLOAT value {v} is not a finite number"));
    }
    json::write_f32(out, v);
    Ok(())
}

/// DOUBLE: 8 bytes.
#[inline]
pub fn double(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let b = r.take(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    let v = f64::from_le_bytes(a);
    if !v.is_finite() {
        return Err(format!("DOUBLE value {v} is not a finite number"));
    }
    json::write_f64(out, v);
    Ok(())
}
