//! DECIMAL (NEWDECIMAL): MySQL's packed binary decimal, printed as a JSON
//! string with exactly the column's digits (`"12.3400"` for DECIMAL(6,4)).
//!
//! Format: digits are grouped by nine into big-endian 4-byte words, with a
//! shorter leading integer group and trailing fraction group (see
//! `DIG2BYTES`). The sign is the top bit of the first byte, flipped; negative
//! numbers have every byte inverted.

use super::Bytes;

/// Bytes needed for 0..=9 leftover digits.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// The size in bytes of a DECIMAL(precision, scale) value.
pub fn size(precision: u8, scale: u8) -> usize {
    let intg = (precision - scale) as usize;
    let frac = scale as usize;
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9]
}

pub(crate) fn decimal(
    r: &mut Bytes<'_>,
    precision: u8,
    scale: u8,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let raw = r.take(size(precision, scale))?;
    let mut buf = [0u8; 32]; // 65 digits fit in 30 bytes
    let bytes = &mut buf[..raw.len()];
    bytes.copy_from_slice(raw);
    let negative = bytes[0] & 0x80 == 0;
    bytes[0] ^= 0x80;
    if negative {
        for b in bytes.iter_mut() {
            *b = !*b;
        }
    }
    let digits = Digits::unpack(bytes, precision, scale)?;
    digits.write(negative, out);
    Ok(())
}

/// A decimal's digits, every group zero-padded (`int_len` of them before
/// the point).
struct Digits {
    d: [u8; 96],
    len: usize,
    int_len: usize,
}

impl Digits {
    /// The digits of a DECIMAL(precision, scale) value's bytes (sign
    /// already removed), group by group.
    fn unpack(bytes: &[u8], precision: u8, scale: u8) -> Result<Self, String> {
        let intg = (precision - scale) as usize;
        let frac = scale as usize;
        let mut pos = 0;
        // Reads one big-endian group of `n` bytes holding at most `digits` digits.
        let mut group = |n: usize, digits: usize| -> Result<u32, String> {
            let v = bytes[pos..pos + n]
                .iter()
                .fold(0u32, |v, &b| (v << 8) | b as u32);
            pos += n;
            if digits < 10 && v >= POW10[digits] {
                return Err(format!(
                    "DECIMAL({precision},{scale}) bytes hold a group {v} wider than {digits} digits"
                ));
            }
            Ok(v)
        };
        let mut me = Self {
            d: [0u8; 96],
            len: 0,
            int_len: 0,
        };
        let lead = intg % 9;
        if lead > 0 {
            me.push(group(DIG2BYTES[lead], lead)?, lead);
        }
        for _ in 0..intg / 9 {
            me.push(group(4, 9)?, 9);
        }
        me.int_len = me.len;
        for _ in 0..frac / 9 {
            me.push(group(4, 9)?, 9);
        }
        let tail = frac % 9;
        if tail > 0 {
            me.push(group(DIG2BYTES[tail], tail)?, tail);
        }
        Ok(me)
    }

    /// Appends `v` zero-padded to `width` digits.
    fn push(&mut self, v: u32, width: usize) {
        let mut b = itoa::Buffer::new();
        let s = b.format(v).as_bytes();
        for _ in s.len()..width {
            self.d[self.len] = b'0';
            self.len += 1;
        }
        self.d[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Writes the value as a JSON string: the integer part without its
    /// leading zeros (`0` when nothing is left), then every fraction digit.
    fn write(&self, negative: bool, out: &mut Vec<u8>) {
        let int_digits = &self.d[..self.int_len];
        let frac_digits = &self.d[self.int_len..self.len];
        let first_nonzero = int_digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(self.int_len);
        let all_zero = self.d[..self.len].iter().all(|&d| d == b'0');
        out.push(b'"');
        // The server never stores -0; an all-zero negative pattern prints as 0.
        if negative && !all_zero {
            out.push(b'-');
        }
        if first_nonzero == self.int_len {
            out.push(b'0');
        } else {
            out.extend_from_slice(&int_digits[first_nonzero..]);
        }
        if !frac_digits.is_empty() {
            out.push(b'.');
            out.extend_from_slice(frac_digits);
        }
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], p: u8, s: u8) -> String {
        let mut out = Vec::new();
        decimal(&mut Bytes::new(bytes), p, s, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_encodings() {
        // From the MySQL manual: 1234567890.1234 as DECIMAL(14,4).
        // 1234567890.1234 = int groups "1" + "234567890", frac "1234".
        let b = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(size(14, 4), 7);
        assert_eq!(dec(&b, 14, 4), "\"1234567890.1234\"");
        // The same, negative: every byte inverted.
        let n: Vec<u8> = b.iter().map(|x| !x).collect();
        assert_eq!(dec(&n, 14, 4), "\"-1234567890.1234\"");
        // 0.00 as DECIMAL(5,2): 3 int digits (2 bytes) + 2 frac digits (1 byte).
        assert_eq!(dec(&[0x80, 0x00, 0x00], 5, 2), "\"0.00\"");
        // 12.34 DECIMAL(4,2): int 12 (1 byte), frac 34 (1 byte).
        assert_eq!(dec(&[0x80 | 12, 34], 4, 2), "\"12.34\"");
        // DECIMAL(4,0) 7
        assert_eq!(dec(&[0x80, 7], 4, 0), "\"7\"");
    }
}
