//! RFC 3339 UTC timestamps with microseconds (`2026-05-22T02:14:33.123456Z`).
//!
//! The date-and-seconds part is cached per thread and recomputed only when the
//! second changes, so a line pays for six digits, not a calendar conversion.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// `YYYY-MM-DDTHH:MM:SS.` for a whole number of seconds since the epoch.
fn prefix(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let mut out = *b"0000-00-00T00:00:00.";
    two(&mut out[0..2], y / 100);
    two(&mut out[2..4], y % 100);
    two(&mut out[5..7], m);
    two(&mut out[8..10], d);
    two(&mut out[11..13], rem / 3600);
    two(&mut out[14..16], (rem / 60) % 60);
    two(&mut out[17..19], rem % 60);
    out
}

/// Appends `time` as RFC 3339, UTC, microseconds, `Z`. Times before the epoch
/// are written as the epoch.
#[inline]
pub(crate) fn write_rfc3339_micros(buf: &mut Vec<u8>, time: SystemTime) {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (cached_secs, cached) = CACHE.with(Cell::get);
    let p = if cached_secs == secs {
        cached
    } else {
        let p = prefix(secs);
        CACHE.with(|c| c.set((secs, p)));
        p
    };
    buf.extend_from_slice(&p);
    let micros = d.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut v = micros;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&digits);
    buf.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(t: SystemTime) -> String {
        let mut b = Vec::new();
        write_rfc3339_micros(&mut b, t);
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn known_instants() {
        assert_eq!(fmt(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2026-05-22T02:14:33.123456Z
        let t = UNIX_EPOCH + Duration::new(1_779_416_073, 123_456_789);
        assert_eq!(fmt(t), "2026-05-22T02:14:33.123456Z");
        // Leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(fmt(t), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn cache_tracks_second_changes() {
        let t = UNIX_EPOCH + Duration::new(1_779_416_073, 0);
        assert_eq!(fmt(t), "2026-05-22T02:14:33.000000Z");
        assert_eq!(
            fmt(t + Duration::from_secs(1)),
            "2026-05-22T02:14:34.000000Z"
        );
        assert_eq!(fmt(t), "2026-05-22T02:14:33.000000Z");
    }
}
