//! The human-readable report: wrk's layout, so it reads at a glance, plus the
//! sections wrk lacks (errors by kind, unanswered requests, fairness, rate).

use std::fmt::Write;
use std::time::Duration;

use super::hostile::{NoiseOutcome, SlowOutcome};
use super::idle::IdleOutcome;
use super::json::{KindJson, LatencyUs, LoadSummary, LAG_WARN_SHARE};
use super::report::LoadReport;
use crate::units::share_percent;

/// Renders `report` as text.
pub fn render(report: &LoadReport) -> String {
    render_summary(
        &LoadSummary::of(report),
        report.latency.map(|l| l.within_stdev),
    )
}

/// Renders a summary (one run's, or merged ones') as text. `within_stdev` is
/// the share of samples within one standard deviation of the mean (not in
/// the summary: it takes the histogram).
pub fn render_summary(summary: &LoadSummary, within_stdev: Option<f64>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, summary, within_stdev);
    out
}

fn write_report(out: &mut String, r: &LoadSummary, within_stdev: Option<f64>) -> std::fmt::Result {
    let e = &r.errors;
    let window = Duration::from_secs_f64(r.duration_s.max(0.0));
    match r.requests_target {
        Some(n) => writeln!(
            out,
            "Running {n} requests @ {} (time limit {})",
            r.url,
            duration(window)
        )?,
        None => writeln!(out, "Running {} test @ {}", duration(window), r.url)?,
    }
    if r.clients > 1 {
        writeln!(
            out,
            "  Merged from {} runs of servelab load: counts and histograms added, rates summed",
            r.clients
        )?;
    }
    let mode = match r.rate_target {
        Some(rate) => format!("open loop at {rate:.2} req/s"),
        None => "closed loop".to_string(),
    };
    writeln!(
        out,
        "  {} threads and {} connections ({mode}, pipeline {}, timeout {})",
        r.threads,
        r.connections,
        r.pipeline,
        duration(Duration::from_secs_f64(r.timeout_s.max(0.0)))
    )?;
    if r.warmup_s > 0.0 {
        writeln!(
            out,
            "  after a {} warmup (not recorded)",
            duration(Duration::from_secs_f64(r.warmup_s))
        )?;
    }
    if r.interrupted {
        writeln!(
            out,
            "  Run interrupted after {:.2}s of the recorded {}: the figures below cover that part",
            r.elapsed_s,
            duration(window)
        )?;
    } else if r.cut_by_time_limit() {
        writeln!(
            out,
            "  Stopped at the time limit ({}) before all {} requests were answered",
            duration(window),
            r.requests_target.unwrap_or_default()
        )?;
    }
    if r.latency_corrected {
        writeln!(
            out,
            "  Latency measured from each request's intended send time (corrected for coordinated omission)"
        )?;
    }
    match &r.latency_us {
        Some(l) => {
            writeln!(out, "  Thread Stats   Avg      Stdev     Max   +/- Stdev")?;
            writeln!(
                out,
                "    Latency   {:>8}  {:>8}  {:>8}  {:>7.2}%",
                latency(l.mean * 1e3),
                latency(l.stdev * 1e3),
                latency(l.max * 1e3),
                within_stdev.unwrap_or(f64::NAN) * 100.0
            )?;
            writeln!(out, "  Latency Distribution")?;
            write_percentiles(out, l)?;
        }
        None => writeln!(out, "  Latency: no response, no sample")?,
    }
    if let (true, Some(u)) = (r.latency_corrected, &r.latency_uncorrected_us) {
        writeln!(
            out,
            "  Uncorrected (from actual send): p50 {}, p99 {}, max {}",
            latency(u.p50 * 1e3),
            latency(u.p99 * 1e3),
            latency(u.max * 1e3)
        )?;
    }
    if let (true, Some(lag)) = (r.latency_corrected, &r.client_lag_us) {
        writeln!(
            out,
            "  Client lag (the client's own lateness in sending): p50 {}, p99 {}, max {}",
            latency(lag.p50 * 1e3),
            latency(lag.p99 * 1e3),
            latency(lag.max * 1e3)
        )?;
    }
    if let (true, Some(m)) = (r.latency_corrected, &r.latency_minus_lag_us) {
        writeln!(
            out,
            "  Latency minus client lag (the server's share): p50 {}, p99 {}, max {}",
            latency(m.p50 * 1e3),
            latency(m.p99 * 1e3),
            latency(m.max * 1e3)
        )?;
    }
    if let Some(warning) = client_lag_warning(r) {
        writeln!(out, "  Warning: {warning}")?;
    }
    if !r.kinds.is_empty() {
        write_kinds(out, &r.kinds)?;
    }
    writeln!(
        out,
        "  {} requests in {:.2}s, {} read",
        r.responses,
        r.elapsed_s,
        bytes(r.bytes_read as f64)
    )?;
    writeln!(
        out,
        "  Sent {}, answered {} ({} with 2xx/3xx)",
        r.requests_sent, r.responses, r.responses_2xx_3xx
    )?;
    if let Some(rate) = r.rate_target {
        writeln!(
            out,
            "  Rate: target {rate:.2}/s, offered {:.2}/s; {} scheduled requests never sent (every connection's pipeline was full)",
            r.offered_rate,
            r.scheduled_not_sent
        )?;
    }
    writeln!(
        out,
        "  Socket errors: connect {}, read {}, write {}, timeout {}",
        e.connect, e.read, e.write, e.timeout
    )?;
    if !e.status.is_empty() {
        let total: u64 = e.status.values().sum();
        let list: Vec<String> = e.status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        writeln!(
            out,
            "  Non-2xx or 3xx responses: {total} ({})",
            list.join(", ")
        )?;
    }
    writeln!(
        out,
        "  Unanswered: {} (in flight when the run ended); aborted: {} (lost with their connection); unparsable responses: {}; reconnects: {}",
        e.unanswered, e.aborted, e.parse, r.reconnects
    )?;
    if let Some(idle) = &r.idle {
        write_idle(out, idle)?;
    }
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
    if let Some(slow) = &r.slowloris {
        write_slowloris(out, slow)?;
    }
    if let Some(malformed) = &r.malformed {
        write_malformed(out, malformed)?;
    }
    writeln!(out, "Requests/sec: {:>10.2}", r.requests_per_sec)?;
    writeln!(out, "Transfer/sec: {:>10}", bytes(r.bytes_per_sec))
}

/// `--idle`: how many idle connections were answered and held.
fn write_idle(out: &mut String, i: &IdleOutcome) -> std::fmt::Result {
    let others: Vec<String> = i.status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let others = match others.is_empty() {
        true => String::new(),
        false => format!("; other statuses {}", others.join(", ")),
    };
    writeln!(
        out,
        "  Idle connections (--idle): {} of {} answered and held open until the end; {} failed \
         or were closed{others}; opened in {:.2}s",
        i.answered, i.connections, i.failed, i.waited_s
    )
}

/// The kinds of a mixed run, a line each: counts and latency percentiles.
fn write_kinds(out: &mut String, kinds: &[KindJson]) -> std::fmt::Result {
    writeln!(
        out,
        "  By request path (--mix; latency measured as above, each path's requests apart)"
    )?;
    let width = kinds.iter().map(|k| k.path.len()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "    {:<width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
        "path", "share", "sent", "answered", "2xx/3xx", "p50", "p90", "p99", "p99.9", "max"
    )?;
    for k in kinds {
        let share = share_percent(k.share_ppm());
        let figures = match &k.latency_us {
            Some(l) => [l.p50, l.p90, l.p99, l.p99_9, l.max].map(|us| latency(us * 1e3)),
            None => ["-"; 5].map(str::to_string),
        };
        writeln!(
            out,
            "    {:<width$}  {share:>8}  {:>9}  {:>9}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            k.path,
            k.requests_sent,
            k.responses,
            k.responses_2xx_3xx,
            figures[0],
            figures[1],
            figures[2],
            figures[3],
            figures[4]
        )?;
    }
    Ok(())
}

/// The slowloris connections (`--slowloris`): how many the server closed
/// and how long it held them.
fn write_slowloris(out: &mut String, s: &SlowOutcome) -> std::fmt::Result {
    let status = match s.status.is_empty() {
        true => "no status received".to_string(),
        false => {
            let list: Vec<String> = s.status.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            format!("statuses {}", list.join(", "))
        }
    };
    writeln!(
        out,
        "  Slowloris: {} connections, {} connected, {} closed by the server ({status})",
        s.connections, s.connected, s.closed_by_server
    )?;
    writeln!(
        out,
        "    held open median {}, max {}; {} bytes sent",
        latency(s.held_median_s * 1e9),
        latency(s.held_max_s * 1e9),
        s.bytes_sent
    )
}

/// The malformed requests (`--malformed`), a line per kind: what should
/// happen (a 4xx, then the connection closed) and what else did.
fn write_malformed(out: &mut String, m: &NoiseOutcome) -> std::fmt::Result {
    writeln!(
        out,
        "  Malformed requests (each on a new connection; a 4xx and a close expected)"
    )?;
    let names: Vec<String> = m
        .kinds
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.expected))
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "    {:<width$}  {:>8}  {:>10}  {:>15}  {:>9}  {:>12}  {:>9}",
        "kind", "sent", "4xx+closed", "expected status", "left open", "wrong status", "no answer"
    )?;
    for (k, name) in m.kinds.iter().zip(&names) {
        writeln!(
            out,
            "    {name:<width$}  {:>8}  {:>10}  {:>15}  {:>9}  {:>12}  {:>9}",
            k.sent,
            k.rejected_and_closed,
            k.expected_status,
            k.left_open,
            k.wrong_status,
            k.no_answer
        )?;
    }
    Ok(())
}

fn write_percentiles(out: &mut String, l: &LatencyUs) -> std::fmt::Result {
    for (label, value) in [
        ("50%", l.p50),
        ("90%", l.p90),
        ("99%", l.p99),
        ("99.9%", l.p99_9),
        ("99.99%", l.p99_99),
    ] {
        writeln!(out, "  {label:>7}  {:>8}", latency(value * 1e3))?;
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

/// A warning when the client's own lag is a noticeable share (at least
/// [`LAG_WARN_SHARE`]) of the corrected latency's p99: then the corrected
/// tail says as much about the client as about the server.
pub fn client_lag_warning(summary: &LoadSummary) -> Option<String> {
    let (Some(lag), Some(total)) = (&summary.client_lag_us, &summary.latency_us) else {
        return None;
    };
    if !(total.p99 > 0.0 && lag.p99 >= total.p99 * LAG_WARN_SHARE) {
        return None;
    }
    let us = |v: f64| latency(v * 1e3);
    Some(format!(
        "the client's own lag (p99 {}, max {}) is {:.0}% of the corrected p99 ({}): \
         the client was late, not only the server; latency minus client lag has p99 {}; \
         give the client more CPU or threads",
        us(lag.p99),
        us(lag.max),
        lag.p99 / total.p99 * 100.0,
        us(total.p99),
        summary
            .latency_minus_lag_us
            .map_or("n/a".to_string(), |m| us(m.p99)),
    ))
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
