//! How numbers read in the report, the terminal and the charts: one place, so
//! that a latency looks the same in a table, a sentence and an axis.

use super::columns::Unit;
use super::results::Spread;

/// `f(v)`, or a dash where `v` is not a number.
fn finite(v: f64, f: impl Fn(f64) -> String) -> String {
    match v.is_finite() {
        true => f(v),
        false => "–".to_string(),
    }
}

/// A rate: `123,456` (whole numbers with thousands separators), `12.5` below 100.
pub fn rate(v: f64) -> String {
    finite(v, |v| match v.abs() < 100.0 {
        true => format!("{v:.1}"),
        false => thousands(v.round() as i64),
    })
}

/// A whole count with thousands separators: `10,000`.
pub fn count(v: u64) -> String {
    thousands(v as i64)
}

fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::from(if v < 0 { "-" } else { "" });
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A duration given in microseconds: `16.9 µs`, `1.23 ms`, `2.00 s`.
pub fn micros(us: f64) -> String {
    finite(us, |us| match us {
        us if us < 10.0 => format!("{us:.2} µs"),
        us if us < 1000.0 => format!("{us:.1} µs"),
        us if us < 1e6 => format!("{:.2} ms", us / 1e3),
        us => format!("{:.2} s", us / 1e6),
    })
}

/// A size in bytes with binary multiples: `512 B`, `8.6 KiB`, `12.3 MiB`.
pub fn bytes(b: f64) -> String {
    finite(b, |b| {
        let units = ["B", "KiB", "MiB", "GiB"];
        let (mut v, mut unit) = (b, 0);
        while v.abs() >= 1024.0 && unit + 1 < units.len() {
            v /= 1024.0;
            unit += 1;
        }
        match unit {
            0 => format!("{v:.0} B"),
            _ => format!("{v:.1} {}", units[unit]),
        }
    })
}

/// A ratio or small figure: `0.998`, `2.15`, `41.3`.
pub fn ratio(v: f64) -> String {
    finite(v, |v| match v.abs() < 10.0 {
        true => format!("{v:.3}"),
        false => format!("{v:.1}"),
    })
}

/// A share as a percentage: `37%`, `2.5%`.
pub fn percent(share: f64) -> String {
    finite(share * 100.0, |p| match share.abs() < 0.1 {
        true => format!("{p:.1}%"),
        false => format!("{p:.0}%"),
    })
}

/// Seconds: `0.51 s`, `12.0 s`.
pub fn seconds(s: f64) -> String {
    finite(s, |s| match s < 10.0 {
        true => format!("{s:.2} s"),
        false => format!("{s:.1} s"),
    })
}

/// A multiple: `4.7×`.
pub fn times(v: f64) -> String {
    finite(v, |v| match v < 10.0 {
        true => format!("{v:.2}×"),
        false => format!("{v:.0}×"),
    })
}

/// A multiple to three decimals, for ratios compared with bounds such as
/// 1.05: `0.975×`.
pub fn multiple(v: f64) -> String {
    finite(v, |v| match v < 10.0 {
        true => format!("{v:.3}×"),
        false => format!("{v:.1}×"),
    })
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

/// A median in its unit, with `(min–max)` when the runs differ; a dash for none.
pub fn maybe(s: Option<Spread>, unit: Unit) -> String {
    s.map_or("–".to_string(), |s| spread(s, unit))
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

/// A tick of a percentile axis whose values are 1/(1-p): `0%`, `90%`, `99.9%`.
pub fn percentile_tick(x: f64) -> String {
    if x < 1.0 {
        return String::new();
    }
    let p = (1.0 - 1.0 / x) * 100.0;
    let whole =
        |digits: &i32| ((p * 10f64.powi(*digits)).round() - p * 10f64.powi(*digits)).abs() <= 1e-6;
    let digits = (0..6).find(whole).unwrap_or(6);
    format!("{p:.*}%", digits as usize)
}

/// A chart axis's tick: `120k`, `1.5M`, `250`, `0.5`.
pub fn axis(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{}M", trim(v / 1e6)),
        a if a >= 1e3 => format!("{}k", trim(v / 1e3)),
        a if a >= 1.0 || a == 0.0 => trim(v),
        _ => ratio(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}
