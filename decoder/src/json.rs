//! Small, fast JSON writers into a byte buffer.
//!
//! The decoder writes every value as JSON text straight into a reused buffer
//! (no `serde_json::Value` per row); these are its primitives.

use base64::Engine;

/// Bytes that need escaping in a JSON string: `"`, `\` and controls.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Writes `s` as a JSON string, quotes included.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_utf8(out, s.as_bytes())
}

/// Writes UTF-8 bytes (already validated) as a JSON string, quotes included.
#[inline]
pub(crate) fn write_utf8(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped_body(out, s);
    out.push(b'"');
}

/// Writes the escaped body of a JSON string (no quotes).
#[inline]
pub(crate) fn write_escaped_body(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
    }
    out.extend_from_slice(&s[start..]);
}

#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The shortest text that reads back as the same `f64`.
/// MySQL cannot store NaN or infinities, so every value is finite here.
#[inline]
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(trim_point_zero(b.format_finite(v)).as_bytes());
}

/// The shortest text that reads back as the same `f32` (not the `f64`
/// widening, which would print `0.1f32` as `0.10000000149011612`).
#[inline]
pub(crate) fn write_f32(out: &mut Vec<u8>, v: f32) {
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(trim_point_zero(b.format_finite(v)).as_bytes());
}

/// ryu prints integral values as `1.0`; `1` is the same JSON number, shorter.
#[inline]
fn trim_point_zero(s: &str) -> &str {
    s.strip_suffix(".0").unwrap_or(s)
}

/// Writes bytes as a base64 JSON string.
#[inline]
pub(crate) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let n = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + n, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes() {
        assert_eq!(
            s(|o| write_str(o, "a\"b\\c\n\u{1}é😀")),
            "\"a\\\"b\\\\c\\n\\u0001é😀\""
        );
        let back: String = serde_json::from_str(&s(|o| write_str(o, "\u{7f}\t\r\u{1f}"))).unwrap();
        assert_eq!(back, "\u{7f}\t\r\u{1f}");
    }

    #[test]
    fn floats_round_trip() {
        assert_eq!(s(|o| write_f32(o, 0.1)), "0.1");
        assert_eq!(s(|o| write_f64(o, 1.0)), "1");
        assert_eq!(
            s(|o| write_f64(o, -1.7976931348623157e308)),
            "-1.7976931348623157e308"
        );
        for v in [f64::MIN_POSITIVE, 5e-324, 123.456, -0.0] {
            let t = s(|o| write_f64(o, v));
            assert_eq!(t.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{t}");
        }
        for v in [f32::MAX, f32::MIN_POSITIVE, 3.4e38, 1.175_494_4e-38] {
            let t = s(|o| write_f32(o, v));
            assert_eq!(t.parse::<f32>().unwrap(), v, "{t}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(s(|o| write_base64(o, b"\x00\xff\x10")), "\"AP8Q\"");
        assert_eq!(s(|o| write_base64(o, b"")), "\"\"");
    }
}
