//! Integers (TINYINT..BIGINT), YEAR and BIT.

use super::Bytes;
use crate::json;

/// A little-endian integer of 1, 2, 3, 4 or 8 bytes.
///
/// Quirk: MEDIUMINT is 3 bytes; a signed one must be sign-extended from bit
/// 23 (mysql_common does not, and prints -1 as 16777215).
///
/// When the server did not log signedness (`binlog_row_metadata` below
/// MINIMAL on MariaDB) and information_schema was not available, a value whose
/// top bit is clear reads the same either way; one whose top bit is set is
/// ambiguous and is an error, never a guess.
#[inline]
pub fn integer(
    r: &mut Bytes<'_>,
    bytes: u8,
    unsigned: Option<bool>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let n = bytes as usize;
    let raw = r.uint_le(n)?;
    let bits = 8 * n as u32;
    let top_bit_set = raw >> (bits - 1) & 1 == 1;
    match unsigned {
        Some(true) => json::write_u64(out, raw),
        _ if !top_bit_set => json::write_u64(out, raw),
        Some(false) => {
            // Sign-extend from the column's width.
            let shift = 64 - bits;
            json::write_i64(out, ((raw << shift) as i64) >> shift);
        }
        None => {
            return Err(format!(
                "signedness was not logged (binlog_row_metadata=FULL) and the value {raw:#x} \
                 reads differently signed and unsigned"
            ))
        }
    }
    Ok(())
}

/// YEAR: one byte, 0 for the year 0000, else the year minus 1900.
/// Quirk: mysql_common (and mariadb-binlog) print 0000 as 1900; the server
/// stores and prints 0000, and so do we.
#[inline]
pub fn year(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let v = r.u8()?;
    json::write_u64(out, if v == 0 { 0 } else { 1900 + v as u64 });
    Ok(())
}

/// BIT(n): (n+7)/8 bytes, big-endian, as an integer.
#[inline]
pub fn bit(r: &mut Bytes<'_>, bits: u16, out: &mut Vec<u8>) -> Result<(), String> {
    let v = r.uint_be(bits.div_ceil(8) as usize)?;
    if bits < 64 && v >> bits != 0 {
        return Err(format!("BIT({bits}) value {v:#x} has bits past its width"));
    }
    json::write_u64(out, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(data: &[u8], bytes: u8, unsigned: Option<bool>) -> Result<String, String> {
        let mut out = Vec::new();
        integer(&mut Bytes::new(data), bytes, unsigned, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn widths_and_signs() {
        assert_eq!(dec(&[0xff], 1, Some(false)).unwrap(), "-1");
        assert_eq!(dec(&[0xff], 1, Some(true)).unwrap(), "255");
        assert_eq!(dec(&[0xff, 0xff, 0xff], 3, Some(false)).unwrap(), "-1");
        assert_eq!(
            dec(&[0x00, 0x00, 0x80], 3, Some(false)).unwrap(),
            "-8388608"
        );
        assert_eq!(dec(&[0xff, 0xff, 0x7f], 3, Some(false)).unwrap(), "8388607");
        assert_eq!(
            dec(&[0xff; 8], 8, Some(true)).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(
            dec(&[0, 0, 0, 0, 0, 0, 0, 0x80], 8, Some(false)).unwrap(),
            "-9223372036854775808"
        );
        assert_eq!(dec(&[5, 0], 2, None).unwrap(), "5");
        assert!(dec(&[0xff, 0xff], 2, None).is_err());
        assert!(dec(&[0xff], 2, Some(true)).is_err());
    }

    #[test]
    fn bits_and_years() {
        let mut out = Vec::new();
        bit(&mut Bytes::new(&[0x01, 0x02]), 10, &mut out).unwrap();
        assert_eq!(out, b"258");
        out.clear();
        year(&mut Bytes::new(&[0]), &mut out).unwrap();
        assert_eq!(out, b"0");
        out.clear();
        year(&mut Bytes::new(&[255]), &mut out).unwrap();
        assert_eq!(out, b"2155");
    }
}
