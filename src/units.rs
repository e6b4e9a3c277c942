//! The human units: the durations, byte sizes and shares of requests the CLI
//! takes, and the UTC timestamps the reports write.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `10s`, `500ms`, `1m`, `2h`, `250us` or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 10s, 500ms, 1m"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use us, ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale)
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// [`parse_duration`], refusing zero: for a window or a timeout.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("must be longer than 0".to_string());
    }
    Ok(d)
}

/// Parses a byte size: `65536`, `64k`, `64KiB`, `1m`, `1MiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 8192, 64k, 1MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {text:?}: use k, m or g"
            ))
        }
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a share of requests: a percentage above 0 and below 100 with up
/// to 4 decimals and its `%` (`1%`, `0.5%`, `12.25%`), in parts per
/// million. One syntax for every share the CLI takes (`serve --work`'s
/// bimodal `@SHARE%`, `load --mix PATH:SHARE%`), exact in integers so that
/// a share prints back as given.
pub fn parse_share_ppm(text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "invalid share {text:?}: expected a percentage above 0 and below 100 \
             with up to 4 decimals, e.g. 1% or 0.5%"
        )
    };
    let number = text.strip_suffix('%').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || whole.len() > 2 || fraction.len() > 4 {
        return Err(bad());
    }
    if number.contains('.') && !digits(fraction) {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = format!("{fraction:0<4}").parse().map_err(|_| bad())?;
    let ppm = whole * 10_000 + fraction;
    if ppm == 0 || ppm >= 1_000_000 {
        return Err(bad());
    }
    Ok(ppm)
}

/// A share in parts per million as [`parse_share_ppm`] reads it back:
/// `1%`, `0.05%`, `99.9999%` (no trailing zeros); any ppm up to a million
/// prints (`100%`).
pub fn share_percent(ppm: u32) -> String {
    let fraction = format!("{:04}", ppm % 10_000);
    let fraction = fraction.trim_end_matches('0');
    match fraction {
        "" => format!("{}%", ppm / 10_000),
        _ => format!("{}.{fraction}%", ppm / 10_000),
    }
}

/// Now, as `2026-01-31T12:34:56Z`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` after the Unix epoch as an RFC 3339 UTC timestamp.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(positive_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(positive_duration("0s").is_err());
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_790_000_000), "2026-09-21T14:13:20Z");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("99999999999999g").is_err());
    }

    #[test]
    fn shares_parse_in_ppm_and_print_back() {
        assert_eq!(parse_share_ppm("1%"), Ok(10_000));
        assert_eq!(parse_share_ppm("0.5%"), Ok(5_000));
        assert_eq!(parse_share_ppm("12.25%"), Ok(122_500));
        assert_eq!(parse_share_ppm("99.9999%"), Ok(999_999));
        assert_eq!(parse_share_ppm("0.0001%"), Ok(1));
        for bad in [
            "", "1", "0%", "100%", "0.00001%", "1.%", ".5%", "-1%", "1e1%", "0.01",
        ] {
            assert!(parse_share_ppm(bad).is_err(), "{bad:?} parsed");
        }
        for ppm in [1, 5_000, 10_000, 122_500, 999_999, 1_000_000] {
            let text = share_percent(ppm);
            if ppm < 1_000_000 {
                assert_eq!(parse_share_ppm(&text), Ok(ppm), "{text}");
            }
        }
        assert_eq!(share_percent(500), "0.05%");
        assert_eq!(share_percent(990_000), "99%");
        assert_eq!(share_percent(1_000_000), "100%");
    }
}
