//! Calendar conversions for the formats S3 speaks: ISO 8601 (`2026-11-26T13:51:25.000Z`) in XML
//! and `x-amz-date` (`20261126T135125Z`). Civil-from-days after H. Hinnant's algorithm.

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-26T13:51:25.123Z`
pub fn iso8601(millis: u64) -> String {
    let secs = (millis / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        millis % 1000
    )
}

/// Parses `YYYYMMDDTHHMMSSZ` into seconds since the epoch.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Parses an ISO 8601 date or time into milliseconds since the epoch: `2026-11-26`,
/// `2026-11-26T13:51:25Z`, with a fraction of a second, with `Z` or an offset (`+01:00`).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> {
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if date.len() != 10 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32).checked_mul(86_400_000)?;
    if let Some(t) = time {
        let (clock, offset_ms) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = t.rfind(['+', '-']) {
            let (c, off) = t.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
            let (oh, om) = (num(oh)?, num(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            (c, sign * (oh * 3600 + om * 60) * 1000)
        } else {
            (t, 0)
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (clock, None),
        };
        let mut tp = hms.splitn(3, ':');
        let (h, mi) = (num(tp.next()?)?, num(tp.next()?)?);
        let se = match tp.next() {
            Some(x) => num(x)?,
            None => 0,
        };
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let frac_ms = match frac {
            Some(f) => {
                let digits: String = f.chars().take(3).collect();
                if !f.bytes().all(|c| c.is_ascii_digit()) || digits.is_empty() {
                    return None;
                }
                num(&format!("{digits:0<3}"))?
            }
            None => 0,
        };
        ms = ms.checked_add((h * 3600 + mi * 60 + se) * 1000 + frac_ms - offset_ms)?;
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_701_085_123), "2026-11-26T13:51:25.123Z");
        assert_eq!(parse_amz_date("20261126T135125Z"), Some(1_795_701_085));
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        assert_eq!(parse_amz_date("2026-11-26"), None);
        assert_eq!(parse_amz_date("20261326T135125Z"), None);
        assert_eq!(parse_iso8601("2026-11-26T13:51:25.123Z"), Some(1_795_701_085_123));
        assert_eq!(parse_iso8601("2026-11-26T13:51:25Z"), Some(1_795_701_085_000));
        assert_eq!(parse_iso8601("2026-11-26T14:51:25+01:00"), Some(1_795_701_085_000));
        assert_eq!(parse_iso8601("2026-11-26"), Some(1_795_651_200_000));
        for bad in [
            "2026-13-01",
            "2026-11-26T25:00:00Z",
            "x",
            "",
            "2026-11-26T13:51:25.Z",
            "2026-1-2",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn iso8601_roundtrip(ms in 0u64..8_000_000_000_000) {
            proptest::prop_assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms as i64));
        }

        #[test]
        fn iso8601_never_panics(s in "\\PC{0,40}") {
            let _ = parse_iso8601(&s);
        }

        #[test]
        fn days_roundtrip(z in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(z);
            proptest::prop_assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
