//! FLOAT, DOUBLE and MySQL 9's VECTOR: IEEE 754 little-endian, printed as
//! the shortest JSON number that reads back as the same stored value.

use super::Bytes;
use crate::json;

/// FLOAT: 4 bytes. Printed from the `f32` itself, so `0.1` stays `0.1`.
#[inline]
pub(crate) fn float(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let b = r.take(4)?;
    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if !v.is_finite() {
        return Err(format!("FLOAT value {v} is not a finite number"));
    }
    json::write_f32(out, v);
    Ok(())
}

/// VECTOR (MySQL 9, type 242): logged like a BLOB (a little-endian length
/// of `len_bytes`, table-map metadata of one byte, then the bytes), the
/// bytes being the dimensions as little-endian `f32`s. Printed as a JSON
/// array of numbers, each the shortest that reads back as the same `f32`
/// (the server's `VECTOR_TO_STRING` prints the same values as `%.5e`, which
/// can lose digits: `[3.14000e+00]` for 3.14 is `[3.14]` here).
pub fn vector(r: &mut Bytes<'_>, len_bytes: u8, out: &mut Vec<u8>) -> Result<(), String> {
    let len = r.uint_le(len_bytes as usize)? as usize;
    if !len.is_multiple_of(4) {
        return Err(format!(
            "VECTOR value of {len} bytes is not a whole number of 4-byte floats"
        ));
    }
    let mut dims = Bytes::new(r.take(len)?);
    out.push(b'[');
    for i in 0..len / 4 {
        if i > 0 {
            out.push(b',');
        }
        float(&mut dims, out).map_err(|e| format!("VECTOR dimension {i}: {e}"))?;
    }
    out.push(b']');
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vec_of(bytes: &[u8], len_bytes: u8) -> Result<String, String> {
        let mut out = Vec::new();
        vector(&mut Bytes::new(bytes), len_bytes, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// The bytes of `STRING_TO_VECTOR('[3.14,2024,18]')`, as MySQL 9's
    /// manual gives them (0xC3F548400000FD4400009041), after the 4-byte
    /// length a VECTOR column's value has in a rows event.
    #[test]
    fn vector_is_an_array_of_f32() {
        let value = [
            12, 0, 0, 0, 0xc3, 0xf5, 0x48, 0x40, 0x00, 0x00, 0xfd, 0x44, 0x00, 0x00, 0x90, 0x41,
        ];
        assert_eq!(vec_of(&value, 4).unwrap(), "[3.14,2024,18]");
        assert_eq!(vec_of(&[0, 0, 0, 0], 4).unwrap(), "[]");
        let e = vec_of(&[3, 0, 0, 0, 1, 2, 3], 4).unwrap_err();
        assert!(e.contains("not a whole number of 4-byte floats"), "{e}");
        let e = vec_of(&[4, 0, 0, 0, 0, 0, 0xc0, 0x7f], 4).unwrap_err();
        assert!(
            e.contains("dimension 0") && e.contains("not a finite"),
            "{e}"
        );
        assert!(vec_of(&[8, 0, 0, 0, 1, 2, 3, 4], 4).is_err(), "short");
    }
}
