//! The human-readable report: wrk's layout, so it reads at a glance, plus the
//! sections wrk lacks (errors by kind, unanswered requests, fairness, rate).

use std::fmt::Write;
use std::time::Duration;

use super::report::{LatencySummary, LoadReport};

/// Renders `report` as text.
pub fn render(report: &LoadReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, report);
    out
}

fn write_report(out: &mut String, r: &LoadReport) -> std::fmt::Result {
    let c = &r.counters;
    match r.requests {
        Some(n) => writeln!(
            out,
            "Running {n} requests @ {} (time limit {})",
            r.url,
            duration(r.duration)
        )?,
        None => writeln!(out, "Running {} test @ {}", duration(r.duration), r.url)?,
    }
    let mode = match r.rate {
        Some(rate) => format!("open loop at {rate:.2} req/s"),
        None => "closed loop".to_string(),
    };
    writeln!(
        out,
        "  {} threads and {} connections ({mode}, pipeline {}, timeout {})",
        r.threads,
        r.connections,
        r.pipeline,
        duration(r.timeout)
    )?;
    if !r.warmup.is_zero() {
        writeln!(
            out,
            "  after a {} warmup (not recorded)",
            duration(r.warmup)
        )?;
    }
    if r.interrupted {
        writeln!(
            out,
            "  Run interrupted after {:.2}s of the recorded {}: the figures below cover that part",
            r.elapsed.as_secs_f64(),
            duration(r.duration)
        )?;
    } else if r.cut_by_time_limit() {
        writeln!(
            out,
            "  Stopped at the time limit ({}) before all {} requests were answered",
            duration(r.duration),
            r.requests.unwrap_or_default()
        )?;
    }
    if r.corrected() {
        writeln!(
            out,
            "  Latency measured from each request's intended send time (corrected for coordinated omission)"
        )?;
    }
    match &r.latency {
        Some(l) => {
            writeln!(out, "  Thread Stats   Avg      Stdev     Max   +/- Stdev")?;
            writeln!(
                out,
                "    Latency   {:>8}  {:>8}  {:>8}  {:>7.2}%",
                latency(l.mean_ns),
                latency(l.stdev_ns),
                latency(l.max_ns as f64),
                l.within_stdev * 100.0
            )?;
            writeln!(out, "  Latency Distribution")?;
            write_percentiles(out, l)?;
        }
        None => writeln!(out, "  Latency: no response, no sample")?,
    }
    if let (true, Some(u)) = (r.corrected(), &r.latency_uncorrected) {
        writeln!(
            out,
            "  Uncorrected (from actual send): p50 {}, p99 {}, max {}",
            latency(u.p50_ns as f64),
            latency(u.p99_ns as f64),
            latency(u.max_ns as f64)
        )?;
    }
    writeln!(
        out,
        "  {} requests in {:.2}s, {} read",
        c.responses,
        r.elapsed.as_secs_f64(),
        bytes(c.bytes_read as f64)
    )?;
    writeln!(
        out,
        "  Sent {}, answered {} ({} with 2xx/3xx)",
        c.sent,
        c.responses,
        r.ok_responses()
    )?;
    if let Some(rate) = r.rate {
        writeln!(
            out,
            "  Rate: target {rate:.2}/s, offered {:.2}/s; {} scheduled requests never sent (every connection's pipeline was full)",
            r.offered_rate(),
            c.not_sent
        )?;
    }
    writeln!(
        out,
        "  Socket errors: connect {}, read {}, write {}, timeout {}",
        c.connect_errors, c.read_errors, c.write_errors, c.timeouts
    )?;
    let statuses = r.error_statuses();
    if !statuses.is_empty() {
        let total: u64 = statuses.iter().map(|s| s.1).sum();
        let list: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        writeln!(
            out,
            "  Non-2xx or 3xx responses: {total} ({})",
            list.join(", ")
        )?;
    }
    writeln!(
        out,
        "  Unanswered: {} (in flight when the run ended); aborted: {} (lost with their connection); unparsable responses: {}; reconnects: {}",
        c.unanswered, c.aborted, c.parse_errors, c.reconnects
    )?;
    let f = &r.fairness;
    let jain = f.jain.map_or("n/a".to_string(), |j| format!("{j:.4}"));
    writeln!(
        out,
        "  Connections: {} of {} completed a request; per connection min {}, median {}, max {}; Jain's fairness {jain}",
        f.served, f.connections, f.min, f.median, f.max
    )?;
    if f.starved > 0 {
        writeln!(
            out,
            "  {} of {} connections were starved (completed no request)",
            f.starved, f.connections
        )?;
    }
    writeln!(out, "Requests/sec: {:>10.2}", r.requests_per_sec())?;
    writeln!(out, "Transfer/sec: {:>10}", bytes(r.bytes_per_sec()))
}

fn write_percentiles(out: &mut String, l: &LatencySummary) -> std::fmt::Result {
    for (label, value) in [
        ("50%", l.p50_ns),
        ("90%", l.p90_ns),
        ("99%", l.p99_ns),
        ("99.9%", l.p99_9_ns),
        ("99.99%", l.p99_99_ns),
    ] {
        writeln!(out, "  {label:>7}  {:>8}", latency(value as f64))?;
    }
    Ok(())
}

/// Formats nanoseconds the way wrk does: `612.00us`, `1.23ms`, `2.00s`.
pub fn latency(ns: f64) -> String {
    if ns < 1e6 {
        format!("{:.2}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2}ms", ns / 1e6)
    } else {
        format!("{:.2}s", ns / 1e9)
    }
}

/// Formats a byte count with binary multiples: `512.00B`, `1.50KB`, `12.34MB`.
pub fn bytes(n: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", units[unit])
}

/// Formats a duration the way it would be typed: `10s`, `500ms`, `1.5s`.
pub fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_wrk() {
        assert_eq!(latency(612_000.0), "612.00us");
        assert_eq!(latency(1_230_000.0), "1.23ms");
        assert_eq!(latency(2e9), "2.00s");
        assert_eq!(bytes(512.0), "512.00B");
        assert_eq!(bytes(1536.0), "1.50KB");
        assert_eq!(duration(Duration::from_secs(10)), "10s");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
    }
}
