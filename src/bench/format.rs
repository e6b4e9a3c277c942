//! How numbers read in the report, the terminal and the charts: one place, so
//! that a latency looks the same in a table, a sentence and an axis.

use super::columns::Unit;
use super::results::Spread;

/// A rate: `123,456` (whole numbers with thousands separators), `12.5` below 100.
pub fn rate(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v.abs() < 100.0 {
        return format!("{v:.1}");
    }
    thousands(v.round() as i64)
}

/// A whole count with thousands separators: `10,000`.
pub fn count(v: u64) -> String {
    thousands(v as i64)
}

fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A duration given in microseconds: `16.9 µs`, `1.23 ms`, `2.00 s`.
pub fn micros(us: f64) -> String {
    if !us.is_finite() {
        "–".to_string()
    } else if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// A size in bytes with binary multiples: `512 B`, `8.6 KiB`, `12.3 MiB`.
pub fn bytes(b: f64) -> String {
    if !b.is_finite() {
        return "–".to_string();
    }
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = b;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// A ratio or small figure: `0.998`, `2.15`, `41.3`.
pub fn ratio(v: f64) -> String {
    if !v.is_finite() {
        "–".to_string()
    } else if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

/// A share as a percentage: `37%`, `2.5%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        "–".to_string()
    } else if share.abs() < 0.1 {
        format!("{:.1}%", share * 100.0)
    } else {
        format!("{:.0}%", share * 100.0)
    }
}

/// Seconds: `0.51 s`, `12.0 s`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "–".to_string()
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A multiple: `4.7×`.
pub fn times(v: f64) -> String {
    if !v.is_finite() {
        "–".to_string()
    } else if v < 10.0 {
        format!("{v:.2}×")
    } else {
        format!("{v:.0}×")
    }
}

/// A multiple to three decimals, for ratios compared with bounds such as
/// 1.05: `0.975×`.
pub fn multiple(v: f64) -> String {
    if !v.is_finite() {
        "–".to_string()
    } else if v < 10.0 {
        format!("{v:.3}×")
    } else {
        format!("{v:.1}×")
    }
}

/// A figure in its column's unit.
pub fn number(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => rate(v),
        Unit::Micros => micros(v),
        Unit::Bytes => bytes(v),
        Unit::Kib => bytes(v * 1024.0),
        Unit::Count if v.fract() == 0.0 && v >= 0.0 => count(v as u64),
        Unit::Count => format!("{v:.1}"),
        Unit::Ratio => ratio(v),
        Unit::Times => multiple(v),
        Unit::Share => percent(v),
        Unit::Seconds => seconds(v),
    }
}

/// A median in its unit, with `(min–max)` when the runs differ.
pub fn spread(s: Spread, unit: Unit) -> String {
    let one = |v: f64| number(v, unit);
    if s.runs > 1 && s.min != s.max {
        format!("{} ({}–{})", one(s.median), one(s.min), one(s.max))
    } else {
        one(s.median)
    }
}
