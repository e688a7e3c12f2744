//! DATE, TIME, DATETIME and TIMESTAMP, in both the MySQL 5.6+ packed formats
//! (TIME2/DATETIME2/TIMESTAMP2, which MariaDB writes too) and the old ones.
//!
//! Output: DATE `"YYYY-MM-DD"`; DATETIME `"YYYY-MM-DD HH:MM:SS[.f]"`; TIME
//! `"[-]HH:MM:SS[.f]"`; TIMESTAMP in UTC `"YYYY-MM-DDTHH:MM:SS[.f]Z"`, with as
//! many fraction digits as the column declares. Zero and partly-zero dates
//! print as the server prints them (`"0000-00-00"`).

use super::Bytes;

fn pad(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

fn ymd(out: &mut Vec<u8>, y: u64, m: u64, d: u64) {
    pad(out, y, 4);
    out.push(b'-');
    pad(out, m, 2);
    out.push(b'-');
    pad(out, d, 2);
}

fn hms(out: &mut Vec<u8>, h: u64, m: u64, s: u64) {
    pad(out, h, 2);
    out.push(b':');
    pad(out, m, 2);
    out.push(b':');
    pad(out, s, 2);
}

/// `.ffffff` cut to the column's `fsp` digits (nothing when fsp is 0).
fn fraction(out: &mut Vec<u8>, micros: u64, fsp: u8) {
    if fsp > 0 {
        out.push(b'.');
        pad(out, micros / 10u64.pow(6 - fsp as u32), fsp as usize);
    }
}

/// The fraction bytes of TIME2/DATETIME2/TIMESTAMP2, big-endian, as
/// microseconds: 1 byte for fsp 1-2 (hundredths), 2 for 3-4, 3 for 5-6.
fn frac_micros(r: &mut Bytes<'_>, fsp: u8) -> Result<u64, String> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => r.uint_be(1)? * 10_000,
        3 | 4 => r.uint_be(2)? * 100,
        _ => r.uint_be(3)?,
    })
}

fn check_micros(v: u64) -> Result<u64, String> {
    if v > 999_999 {
        Err(format!("fraction {v} is over 999999 microseconds"))
    } else {
        Ok(v)
    }
}

/// `"YYYY-MM-DD"`: a DATE's text, whether from a row image or a query.
pub(crate) fn write_date(out: &mut Vec<u8>, y: u64, m: u64, d: u64) {
    out.push(b'"');
    ymd(out, y, m, d);
    out.push(b'"');
}

/// `"YYYY-MM-DD HH:MM:SS[.f]"`: a DATETIME's text with `fsp` fraction digits.
pub(crate) fn write_datetime(
    out: &mut Vec<u8>,
    date: (u64, u64, u64),
    time: (u64, u64, u64),
    micros: u64,
    fsp: u8,
) {
    out.push(b'"');
    ymd(out, date.0, date.1, date.2);
    out.push(b' ');
    hms(out, time.0, time.1, time.2);
    fraction(out, micros, fsp);
    out.push(b'"');
}

/// `"[-]HH:MM:SS[.f]"`: a TIME's text (hours up to 838).
pub(crate) fn write_time(
    out: &mut Vec<u8>,
    negative: bool,
    time: (u64, u64, u64),
    micros: u64,
    fsp: u8,
) {
    out.push(b'"');
    if negative {
        out.push(b'-');
    }
    hms(out, time.0, time.1, time.2);
    fraction(out, micros, fsp);
    out.push(b'"');
}

/// DATE: 3 bytes little-endian: day (5 bits), month (4 bits), year (15 bits).
pub fn date(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let v = r.uint_le(3)?;
    write_date(out, v >> 9, (v >> 5) & 0xf, v & 0x1f);
    Ok(())
}

/// DATETIME2: 5 bytes big-endian (offset by 2^39): sign, year*13+month
/// (17 bits), day (5), hour (5), minute (6), second (6); then the fraction.
pub(crate) fn datetime2(r: &mut Bytes<'_>, fsp: u8, out: &mut Vec<u8>) -> Result<(), String> {
    let packed = r.uint_be(5)? as i64 - 0x80_0000_0000;
    let micros = check_micros(frac_micros(r, fsp)?)?;
    if packed < 0 {
        return Err("negative DATETIME".into());
    }
    let packed = packed as u64;
    let ymd_part = packed >> 17;
    let hms_part = packed & 0x1ffff;
    let ym = ymd_part >> 5;
    write_datetime(
        out,
        (ym / 13, ym % 13, ymd_part & 0x1f),
        (hms_part >> 12, (hms_part >> 6) & 0x3f, hms_part & 0x3f),
        micros,
        fsp,
    );
    Ok(())
}

/// TIME2: 3 bytes big-endian (offset by 2^23) holding sign, hours (10 bits),
/// minutes (6), seconds (6), then the fraction.
///
/// Quirk: negative times store the fraction "borrowed" for binary sort order:
/// -00:00:01.5 is intpart -2 with fraction +0.5, so a negative value with a
/// fraction takes one second back and the fraction's complement (as MySQL's
/// `my_time_packed_from_binary` does). fsp 5-6 store all 6 bytes as one number.
pub(crate) fn time2(r: &mut Bytes<'_>, fsp: u8, out: &mut Vec<u8>) -> Result<(), String> {
    let packed: i64 = match fsp {
        0 => (r.uint_be(3)? as i64 - 0x80_0000) << 24,
        1 | 2 => {
            let mut int = r.uint_be(3)? as i64 - 0x80_0000;
            let mut frac = r.uint_be(1)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = r.uint_be(3)? as i64 - 0x80_0000;
            let mut frac = r.uint_be(2)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        _ => r.uint_be(6)? as i64 - 0x8000_0000_0000,
    };
    let negative = packed < 0;
    let abs = packed.unsigned_abs();
    let hms_part = abs >> 24;
    let micros = check_micros(abs & 0xff_ffff)?;
    let hours = (hms_part >> 12) & 0x3ff;
    let time = (hours, (hms_part >> 6) & 0x3f, hms_part & 0x3f);
    write_time(out, negative, time, micros, fsp);
    Ok(())
}

/// Old TIME: 3 bytes little-endian signed, the number HHMMSS.
pub(crate) fn time_old(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let raw = r.uint_le(3)?;
    let v = ((raw << 40) as i64) >> 40;
    let a = v.unsigned_abs();
    out.push(b'"');
    if v < 0 {
        out.push(b'-');
    }
    hms(out, a / 10000, a / 100 % 100, a % 100);
    out.push(b'"');
    Ok(())
}

/// Old DATETIME: 8 bytes little-endian, the number YYYYMMDDhhmmss.
pub(crate) fn datetime_old(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let v = r.uint_le(8)?;
    let (d, t) = (v / 1_000_000, v % 1_000_000);
    out.push(b'"');
    ymd(out, d / 10000, d / 100 % 100, d % 100);
    out.push(b' ');
    hms(out, t / 10000, t / 100 % 100, t % 100);
    out.push(b'"');
    Ok(())
}

/// TIMESTAMP2: 4 bytes big-endian seconds since the epoch (UTC), then the fraction.
pub(crate) fn timestamp2(r: &mut Bytes<'_>, fsp: u8, out: &mut Vec<u8>) -> Result<(), String> {
    let secs = r.uint_be(4)?;
    let micros = check_micros(frac_micros(r, fsp)?)?;
    write_timestamp(out, secs, micros, fsp);
    Ok(())
}

/// Old TIMESTAMP: 4 bytes little-endian seconds.
pub(crate) fn timestamp_old(r: &mut Bytes<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let secs = r.uint_le(4)?;
    write_timestamp(out, secs, 0, 0);
    Ok(())
}

/// Seconds since the epoch as UTC ISO 8601. The zero timestamp is the
/// server's `0000-00-00 00:00:00`, not 1970.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, secs: u64, micros: u64, fsp: u8) {
    out.push(b'"');
    if secs == 0 && micros == 0 {
        ymd(out, 0, 0, 0);
        out.push(b' ');
        hms(out, 0, 0, 0);
        fraction(out, 0, fsp);
        out.push(b'"');
        return;
    }
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    ymd(out, y as u64, m, d);
    out.push(b'T');
    hms(out, rem / 3600, rem / 60 % 60, rem % 60);
    fraction(out, micros, fsp);
    out.extend_from_slice(b"Z\"");
}

/// (year, month, day) -> days since 1970-01-01, the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        f: impl FnOnce(&mut Bytes<'_>, &mut Vec<u8>) -> Result<(), String>,
        data: &[u8],
    ) -> String {
        let mut out = Vec::new();
        f(&mut Bytes::new(data), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(24_855), (2038, 1, 19));
        for days in [-719_468, -1, 0, 11_016, 24_855, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            run(|r, o| timestamp2(r, 0, o), &[0x7f, 0xff, 0xff, 0xff]),
            "\"2038-01-19T03:14:07Z\""
        );
        assert_eq!(
            run(|r, o| timestamp2(r, 6, o), &[0, 0, 0, 1, 0x0f, 0x42, 0x3f]),
            "\"1970-01-01T00:00:01.999999Z\""
        );
        assert_eq!(
            run(|r, o| timestamp2(r, 0, o), &[0, 0, 0, 0]),
            "\"0000-00-00 00:00:00\""
        );
    }

    #[test]
    fn times() {
        // 838:59:59 with fsp 0: int part = (838<<12)|(59<<6)|59, offset 0x800000.
        let v: u32 = 0x80_0000 + ((838 << 12) | (59 << 6) | 59);
        let b = v.to_be_bytes();
        assert_eq!(run(|r, o| time2(r, 0, o), &b[1..]), "\"838:59:59\"");
        let v: u32 = 0x80_0000 - ((838 << 12) | (59 << 6) | 59);
        let b = v.to_be_bytes();
        assert_eq!(run(|r, o| time2(r, 0, o), &b[1..]), "\"-838:59:59\"");
        // -00:00:01.5 at fsp 1: intpart -2, frac 0x100 - 50 = 206.
        let v: u32 = 0x80_0000 - 2;
        let b = v.to_be_bytes();
        assert_eq!(
            run(|r, o| time2(r, 1, o), &[b[1], b[2], b[3], 206]),
            "\"-00:00:01.5\""
        );
    }
}
