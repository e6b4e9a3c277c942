//! Merging the results of several `servelab load --json` runs into one, in
//! the same layout: N clients driving one server, each on its own machine or
//! process, read as one load.
//!
//! Only runs of the same target (host and port), request (method, path,
//! headers, pipeline depth; no body is ever sent), mix (`--mix`: the same
//! second path at the same share, or none), timeout and schedule (closed
//! loop, or open loop at the same rate per client) are merged; anything
//! else is refused, naming the field and both values. How each figure
//! merges:
//!
//! - counts (sent, responses, bytes, errors by kind, statuses, reconnects,
//!   scheduled sends never made), connections, threads and clients add;
//! - the latency histograms add, count by count, and every latency figure
//!   (min, mean, stdev, max, percentiles) is read from the sum; so do each
//!   kind's of a mixed run, and its counts add;
//! - rates (responses/s, bytes/s, offered rate, and in open loop the target
//!   rate) are the sums of each client's own rate over its own window: the
//!   rate the server saw while all of them ran, the common window;
//! - fairness is computed again over every client's connection slots;
//! - the idle connections (`--idle`) and the hostile clients' outcomes
//!   (`--slowloris`, `--malformed`) add over the inputs that have them (an
//!   input without them had none): counts and
//!   statuses add, malformed ones per kind; the longest slowloris hold is
//!   the longest of all, and the median hold, which needs the hold times
//!   one by one, is the median of the inputs' medians when more than one
//!   has them, as a note says;
//! - the window starts at the earliest start and lasts to the latest end; a
//!   note gives the common window, and a warning says when there is none.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::codec::{decode_histogram, encode_histogram};
use super::hostile::{median_max, MalformedCount, NoiseOutcome, SlowOutcome};
use super::idle::IdleOutcome;
use super::json::{Errors, FairnessJson, KindJson, LatencyUs, LoadSummary, SCHEMA};
use super::report::{Fairness, LatencySummary};
use super::stats::{new_histogram, LagHistograms};
use super::target::Target;
use crate::units::share_percent;

/// A merged result.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The sum, in the layout `servelab load --json` prints.
    pub summary: LoadSummary,
    /// Share of the merged latency samples within one standard deviation of
    /// the mean (for the text report); `None` without samples.
    pub within_stdev: Option<f64>,
    /// What the reader should be warned of (also among the summary's notes).
    pub warnings: Vec<String>,
}

/// One input, checked and decoded.
struct Checked<'a> {
    name: &'a str,
    s: &'a LoadSummary,
    target: String,
    path: String,
    histogram: Histogram<u64>,
    uncorrected: Option<Histogram<u64>>,
    /// Open loop, schema 3 on: the client's lag and the latency without it.
    lag: Option<LagHistograms>,
    /// Schema 4 on, with a mix: each kind's latency histogram, in order.
    kinds: Vec<Histogram<u64>>,
    start_ms: u64,
}

/// Merges `inputs`, each a name (the file it came from) and the summary it
/// holds. The error, for input that cannot be merged, says why.
pub fn merge(inputs: &[(String, LoadSummary)]) -> Result<Merged, String> {
    if inputs.is_empty() {
        return Err("nothing to merge".to_string());
    }
    let checked = inputs
        .iter()
        .map(|(name, s)| check(name, s))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &checked[0];
    for other in &checked[1..] {
        same(first, other)?;
    }

    let mut histogram = new_histogram();
    let mut uncorrected = first.uncorrected.as_ref().map(|_| new_histogram());
    // The client's lag only when every input has it (an older one lacks it).
    let mut lag = checked
        .iter()
        .all(|c| c.lag.is_some())
        .then(LagHistograms::new);
    for c in &checked {
        let fit = |e| {
            format!(
                "{}: its histogram does not fit servelab's bounds: {e:?}",
                c.name
            )
        };
        histogram.add(&c.histogram).map_err(fit)?;
        if let (Some(all), Some(one)) = (&mut uncorrected, &c.uncorrected) {
            all.add(one).map_err(fit)?;
        }
        if let (Some(all), Some(one)) = (&mut lag, &c.lag) {
            all.add(one).map_err(fit)?;
        }
    }
    // Every input has the same kinds (`same` checked it).
    let mut kinds: Vec<KindJson> = Vec::with_capacity(first.kinds.len());
    for (i, kind) in first.s.kinds.iter().enumerate() {
        let mut histogram = new_histogram();
        for c in &checked {
            histogram.add(&c.kinds[i]).map_err(|e| {
                format!(
                    "{}: the histogram of {} does not fit servelab's bounds: {e:?}",
                    c.name, kind.path
                )
            })?;
        }
        let sum = |f: fn(&KindJson) -> u64| checked.iter().map(|c| f(&c.s.kinds[i])).sum();
        kinds.push(KindJson {
            path: kind.path.clone(),
            share_pct: kind.share_pct,
            requests_sent: sum(|k| k.requests_sent),
            responses: sum(|k| k.responses),
            responses_2xx_3xx: sum(|k| k.responses_2xx_3xx),
            latency_us: LatencySummary::of(&histogram).as_ref().map(LatencyUs::of),
            histogram: Some(encode_histogram(&histogram)),
        });
    }
    let latency = LatencySummary::of(&histogram);
    let latency_uncorrected = match &uncorrected {
        Some(h) => LatencySummary::of(h),
        None => latency,
    };

    // Windows, in seconds from the earliest start.
    let base = checked.iter().map(|c| c.start_ms).min().unwrap_or(0);
    let windows: Vec<(f64, f64)> = checked
        .iter()
        .map(|c| {
            let start = (c.start_ms - base) as f64 / 1e3;
            (start, start + c.s.duration_s)
        })
        .collect();
    let span = windows.iter().map(|w| w.1).fold(0.0, f64::max);
    let common = windows.iter().map(|w| w.1).fold(f64::INFINITY, f64::min)
        - windows.iter().map(|w| w.0).fold(0.0, f64::max);

    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    if checked.len() == 1 {
        notes.extend(first.s.notes.iter().cloned());
    } else {
        for c in &checked {
            notes.extend(c.s.notes.iter().map(|n| format!("{}: {n}", c.name)));
        }
        if common > 0.0 {
            notes.push(format!(
                "merged {} results: their recorded windows all overlap for {common:.3}s of the \
                 {span:.3}s they span; requests/sec is the sum of each client's rate",
                checked.len()
            ));
        } else {
            let list: Vec<String> = checked
                .iter()
                .map(|c| {
                    format!(
                        "{} from {} for {}s",
                        c.name,
                        utc_ms(c.start_ms),
                        c.s.duration_s
                    )
                })
                .collect();
            warnings.push(format!(
                "the recorded windows do not overlap ({}): the clients never all ran at once, \
                 so the summed rates are not a rate the server saw",
                list.join(", ")
            ));
        }
    }
    let slow: Vec<&SlowOutcome> = checked
        .iter()
        .filter_map(|c| c.s.slowloris.as_ref())
        .collect();
    if slow.len() > 1 {
        notes.push(format!(
            "slowloris held_median_s is the median of the {} results' medians (the hold \
             times are not kept one by one)",
            slow.len()
        ));
    }
    notes.extend(warnings.iter().cloned());

    let sum = |f: fn(&LoadSummary) -> u64| checked.iter().map(|c| f(c.s)).sum::<u64>();
    let sum_f = |f: fn(&LoadSummary) -> f64| checked.iter().map(|c| f(c.s)).sum::<f64>();
    let mut addrs: Vec<&str> = Vec::new();
    for c in &checked {
        for a in c.s.addr.split(", ") {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
    }
    let mut status: BTreeMap<String, u64> = BTreeMap::new();
    for c in &checked {
        for (code, n) in &c.s.errors.status {
            *status.entry(code.clone()).or_default() += n;
        }
    }
    let per_connection: Vec<u64> = checked
        .iter()
        .flat_map(|c| c.s.per_connection.iter().copied())
        .collect();
    let open = first.uncorrected.is_some();
    let s = first.s;
    let summary = LoadSummary {
        schema: SCHEMA,
        url: s.url.clone(),
        addr: addrs.join(", "),
        method: s.method.clone(),
        headers: s.headers.clone(),
        mode: s.mode.clone(),
        connections: sum(|s| s.connections),
        threads: sum(|s| s.threads),
        pipeline: s.pipeline,
        clients: sum(|s| s.clients),
        started_at_ms: Some(base),
        duration_s: span,
        // Each client's part that ran lies within the span.
        elapsed_s: checked.iter().map(|c| c.s.elapsed_s).fold(0.0, f64::max),
        requests_target: checked
            .iter()
            .map(|c| c.s.requests_target)
            .sum::<Option<u64>>(),
        interrupted: checked.iter().any(|c| c.s.interrupted),
        warmup_s: checked.iter().map(|c| c.s.warmup_s).fold(0.0, f64::max),
        timeout_s: s.timeout_s,
        rate_target: open.then(|| sum_f(|s| s.rate_target.unwrap_or(0.0))),
        notes,
        requests_sent: sum(|s| s.requests_sent),
        responses: sum(|s| s.responses),
        responses_2xx_3xx: sum(|s| s.responses_2xx_3xx),
        bytes_read: sum(|s| s.bytes_read),
        requests_per_sec: sum_f(|s| s.requests_per_sec),
        bytes_per_sec: sum_f(|s| s.bytes_per_sec),
        offered_rate: sum_f(|s| s.offered_rate),
        scheduled_not_sent: sum(|s| s.scheduled_not_sent),
        reconnects: sum(|s| s.reconnects),
        latency_corrected: s.latency_corrected,
        latency_us: latency.as_ref().map(LatencyUs::of),
        latency_uncorrected_us: latency_uncorrected.as_ref().map(LatencyUs::of),
        errors: Errors {
            connect: sum(|s| s.errors.connect),
            read: sum(|s| s.errors.read),
            write: sum(|s| s.errors.write),
            timeout: sum(|s| s.errors.timeout),
            parse: sum(|s| s.errors.parse),
            aborted: sum(|s| s.errors.aborted),
            unanswered: sum(|s| s.errors.unanswered),
            status,
        },
        fairness: FairnessJson::of(&Fairness::of(&per_connection)),
        per_connection,
        histogram: Some(encode_histogram(&histogram)),
        histogram_uncorrected: uncorrected.as_ref().map(encode_histogram),
        client_lag_us: lag
            .as_ref()
            .and_then(|l| LatencySummary::of(&l.lag))
            .as_ref()
            .map(LatencyUs::of),
        latency_minus_lag_us: lag
            .as_ref()
            .and_then(|l| LatencySummary::of(&l.minus_lag))
            .as_ref()
            .map(LatencyUs::of),
        histogram_client_lag: lag.as_ref().map(|l| encode_histogram(&l.lag)),
        histogram_minus_lag: lag.as_ref().map(|l| encode_histogram(&l.minus_lag)),
        kinds,
        idle: add_idle(checked.iter().filter_map(|c| c.s.idle.as_ref())),
        slowloris: add_slowloris(&slow),
        malformed: add_malformed(checked.iter().filter_map(|c| c.s.malformed.as_ref())),
    };
    Ok(Merged {
        summary,
        within_stdev: latency.map(|l| l.within_stdev),
        warnings,
    })
}

/// The idle connections of several clients as one: counts and statuses
/// add, the wait is the longest; `None` without any.
fn add_idle<'a>(all: impl Iterator<Item = &'a IdleOutcome>) -> Option<IdleOutcome> {
    let mut sum: Option<IdleOutcome> = None;
    for one in all {
        let sum = sum.get_or_insert_with(IdleOutcome::default);
        sum.connections += one.connections;
        sum.connected += one.connected;
        sum.failed += one.failed;
        sum.answered += one.answered;
        for (code, n) in &one.status {
            *sum.status.entry(code.clone()).or_default() += n;
        }
        sum.waited_s = sum.waited_s.max(one.waited_s);
    }
    sum
}

/// The slowloris outcomes of several clients as one: counts and statuses
/// add, the longest hold is the longest of all, and the median hold the
/// median of their medians (exact for one); `None` without any.
fn add_slowloris(all: &[&SlowOutcome]) -> Option<SlowOutcome> {
    let mut sum = SlowOutcome::default();
    for one in all {
        sum.connections += one.connections;
        sum.connected += one.connected;
        sum.closed_by_server += one.closed_by_server;
        sum.bytes_sent += one.bytes_sent;
        sum.held_max_s = sum.held_max_s.max(one.held_max_s);
        for (code, n) in &one.status {
            *sum.status.entry(code.clone()).or_default() += n;
        }
    }
    sum.held_median_s = median_max(all.iter().map(|s| s.held_median_s).collect()).0;
    (!all.is_empty()).then_some(sum)
}

/// The malformed-request outcomes of several clients as one: each kind's
/// counts and statuses add, kinds matched by name in the order first met;
/// `None` without any.
fn add_malformed<'a>(all: impl Iterator<Item = &'a NoiseOutcome>) -> Option<NoiseOutcome> {
    let mut sum: Option<NoiseOutcome> = None;
    for one in all {
        let sum = sum.get_or_insert_with(NoiseOutcome::default);
        for kind in &one.kinds {
            let at = match sum.kinds.iter().position(|k| k.kind == kind.kind) {
                Some(at) => at,
                None => {
                    sum.kinds.push(MalformedCount {
                        kind: kind.kind.clone(),
                        expected: kind.expected,
                        ..MalformedCount::default()
                    });
                    sum.kinds.len() - 1
                }
            };
            let k = &mut sum.kinds[at];
            k.sent += kind.sent;
            k.rejected_and_closed += kind.rejected_and_closed;
            k.expected_status += kind.expected_status;
            k.left_open += kind.left_open;
            k.wrong_status += kind.wrong_status;
            k.no_answer += kind.no_answer;
            for (code, n) in &kind.status {
                *k.status.entry(code.clone()).or_default() += n;
            }
        }
    }
    sum
}

/// Checks that `s` is a whole result that can be merged, and decodes it.
fn check<'a>(name: &'a str, s: &'a LoadSummary) -> Result<Checked<'a>, String> {
    let bad = |why: String| Err(format!("{name}: {why}"));
    if s.schema < 2 {
        return bad(format!(
            "written by an older servelab load (schema {}, without latency histograms): \
             run it again with this version to merge it",
            s.schema
        ));
    }
    if s.schema > SCHEMA {
        return bad(format!(
            "written by a newer servelab (schema {}; this one reads up to {SCHEMA})",
            s.schema
        ));
    }
    let target = match Target::parse(&s.url) {
        Ok(t) => t,
        Err(e) => return bad(format!("not a load result: its url is invalid: {e}")),
    };
    let Some(start_ms) = s.started_at_ms else {
        return bad("not a load result: started_at_ms is missing".to_string());
    };
    let histogram = match s.histogram.as_deref().map(decode_histogram) {
        Some(Ok(h)) => h,
        Some(Err(e)) => return bad(format!("its histogram is unreadable: {e}")),
        None => return bad("not a load result: histogram is missing".to_string()),
    };
    let count = s.latency_us.map_or(0, |l| l.count);
    if histogram.len() != count {
        return bad(format!(
            "inconsistent: its histogram holds {} samples, latency_us.count says {count}",
            histogram.len()
        ));
    }
    let uncorrected = match (s.mode.as_str(), s.rate_target) {
        ("closed", None) => None,
        ("open", Some(rate)) if rate.is_finite() && rate > 0.0 => {
            match s.histogram_uncorrected.as_deref().map(decode_histogram) {
                Some(Ok(h)) => Some(h),
                Some(Err(e)) => {
                    return bad(format!("its uncorrected histogram is unreadable: {e}"))
                }
                None => {
                    return bad(
                        "not a load result: an open-loop run without histogram_uncorrected"
                            .to_string(),
                    )
                }
            }
        }
        (mode, rate) => {
            return bad(format!(
                "not a load result: mode {mode:?} with rate_target {rate:?}"
            ))
        }
    };
    let lag = match (&s.histogram_client_lag, &s.histogram_minus_lag) {
        (Some(l), Some(m)) if uncorrected.is_some() => {
            match (decode_histogram(l), decode_histogram(m)) {
                (Ok(lag), Ok(minus_lag)) if lag.len() == count && minus_lag.len() == count => {
                    Some(LagHistograms { lag, minus_lag })
                }
                (Ok(_), Ok(_)) => {
                    return bad(format!(
                        "inconsistent: its client-lag histograms do not hold the \
                         {count} samples of latency_us"
                    ))
                }
                (Err(e), _) | (_, Err(e)) => {
                    return bad(format!("its client-lag histogram is unreadable: {e}"))
                }
            }
        }
        _ => None,
    };
    let mut kinds = Vec::with_capacity(s.kinds.len());
    for kind in &s.kinds {
        let histogram = match kind.histogram.as_deref().map(decode_histogram) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                return bad(format!(
                    "the histogram of its kind {} is unreadable: {e}",
                    kind.path
                ))
            }
            None => {
                return bad(format!(
                    "not a load result: its kind {} has no histogram",
                    kind.path
                ))
            }
        };
        let count = kind.latency_us.map_or(0, |l| l.count);
        if histogram.len() != count || count != kind.responses {
            return bad(format!(
                "inconsistent: the histogram of its kind {} holds {} samples for {} responses",
                kind.path,
                histogram.len(),
                kind.responses
            ));
        }
        kinds.push(histogram);
    }
    if s.per_connection.len() as u64 != s.fairness.connections || s.clients == 0 {
        return bad(format!(
            "inconsistent: {} per-connection counts for {} connections, {} clients",
            s.per_connection.len(),
            s.fairness.connections,
            s.clients
        ));
    }
    let host = target.host.to_ascii_lowercase();
    let target_text = if host.contains(':') {
        format!("[{host}]:{}", target.port)
    } else {
        format!("{host}:{}", target.port)
    };
    Ok(Checked {
        name,
        s,
        target: target_text,
        path: target.path,
        histogram,
        uncorrected,
        lag,
        kinds,
        start_ms,
    })
}

/// Refuses `b` unless it loaded the same target with the same request and
/// schedule as `a`.
fn same(a: &Checked, b: &Checked) -> Result<(), String> {
    let differ = |field: &str, x: String, y: String| {
        Err(format!(
            "{} and {} differ in {field}: {x} ({}) vs {y} ({}); only runs of the same target, \
             request and schedule can be merged",
            a.name, b.name, a.name, b.name
        ))
    };
    if a.target != b.target {
        return differ("target", a.target.clone(), b.target.clone());
    }
    if a.path != b.path {
        return differ("path", format!("{:?}", a.path), format!("{:?}", b.path));
    }
    if a.s.method != b.s.method {
        return differ(
            "method",
            format!("{:?}", a.s.method),
            format!("{:?}", b.s.method),
        );
    }
    if a.s.headers != b.s.headers {
        return differ(
            "headers",
            format!("{:?}", a.s.headers),
            format!("{:?}", b.s.headers),
        );
    }
    if a.s.pipeline != b.s.pipeline {
        return differ(
            "pipeline",
            a.s.pipeline.to_string(),
            b.s.pipeline.to_string(),
        );
    }
    let mix = |s: &LoadSummary| {
        let kinds: Vec<String> = s
            .kinds
            .iter()
            .map(|k| format!("{} {}", k.path, share_percent(k.share_ppm())))
            .collect();
        match kinds.is_empty() {
            true => "none".to_string(),
            false => kinds.join(", "),
        }
    };
    let kinds = |s: &LoadSummary| -> Vec<(String, u32)> {
        s.kinds
            .iter()
            .map(|k| (k.path.clone(), k.share_ppm()))
            .collect()
    };
    if kinds(a.s) != kinds(b.s) {
        return differ("mix", mix(a.s), mix(b.s));
    }
    if a.s.timeout_s != b.s.timeout_s {
        return differ(
            "timeout",
            format!("{}s", a.s.timeout_s),
            format!("{}s", b.s.timeout_s),
        );
    }
    match (per_client_rate(a.s), per_client_rate(b.s)) {
        (None, None) => Ok(()),
        (Some(x), Some(y)) if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) => Ok(()),
        (Some(x), Some(y)) => differ(
            "rate",
            format!("{x} req/s per client"),
            format!("{y} req/s per client"),
        ),
        (x, y) => differ("schedule", schedule(x), schedule(y)),
    }
}

/// The target rate of one client of `s` (a merged result's is the sum).
fn per_client_rate(s: &LoadSummary) -> Option<f64> {
    s.rate_target.map(|r| r / s.clients as f64)
}

fn schedule(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("open loop at {r} req/s per client"),
        None => "closed loop".to_string(),
    }
}

/// Unix milliseconds as `2026-01-31T12:34:56.789Z`.
fn utc_ms(ms: u64) -> String {
    let secs = crate::units::utc(ms / 1000);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[u64], rate: Option<f64>, start_ms: u64) -> LoadSummary {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        let latency = LatencySummary::of(&h).as_ref().map(LatencyUs::of);
        let n = values.len() as u64;
        LoadSummary {
            schema: SCHEMA,
            url: "http://127.0.0.1:9/".to_string(),
            addr: "127.0.0.1:9".to_string(),
            method: "GET".to_string(),
            headers: Vec::new(),
            mode: if rate.is_some() { "open" } else { "closed" }.to_string(),
            connections: 2,
            threads: 1,
            pipeline: 1,
            clients: 1,
            started_at_ms: Some(start_ms),
            duration_s: 1.0,
            elapsed_s: 1.0,
            requests_target: None,
            interrupted: false,
            warmup_s: 0.0,
            timeout_s: 2.0,
            rate_target: rate,
            notes: Vec::new(),
            requests_sent: n + 1,
            responses: n,
            responses_2xx_3xx: n,
            bytes_read: n * 10,
            requests_per_sec: n as f64,
            bytes_per_sec: n as f64 * 10.0,
            offered_rate: n as f64 + 1.0,
            scheduled_not_sent: 0,
            reconnects: 1,
            latency_corrected: rate.is_some(),
            latency_us: latency,
            latency_uncorrected_us: latency,
            errors: Errors {
                unanswered: 1,
                status: BTreeMap::from([("404".to_string(), 1)]),
                ..Errors::default()
            },
            fairness: FairnessJson::of(&Fairness::of(&[n, 0])),
            per_connection: vec![n, 0],
            histogram: Some(encode_histogram(&h)),
            histogram_uncorrected: rate.map(|_| encode_histogram(&h)),
            client_lag_us: rate.and(latency),
            latency_minus_lag_us: rate.and(latency),
            histogram_client_lag: rate.map(|_| encode_histogram(&h)),
            histogram_minus_lag: rate.map(|_| encode_histogram(&h)),
            kinds: Vec::new(),
            idle: None,
            slowloris: None,
            malformed: None,
        }
    }

    #[test]
    fn the_client_lag_merges_only_when_every_input_has_it() {
        let a = summary(&[1000, 2000], Some(100.0), 0);
        let b = summary(&[3000], Some(100.0), 0);
        let both = [("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let m = merge(&both).unwrap().summary;
        assert_eq!(m.client_lag_us.unwrap().count, 3);
        assert_eq!(m.latency_minus_lag_us.unwrap().count, 3);
        let mut old = b;
        old.schema = 2;
        old.client_lag_us = None;
        old.latency_minus_lag_us = None;
        old.histogram_client_lag = None;
        old.histogram_minus_lag = None;
        let m = merge(&[("a".to_string(), a.clone()), ("b".to_string(), old)])
            .unwrap()
            .summary;
        assert_eq!((m.client_lag_us, m.histogram_client_lag), (None, None));
        let mut short = a;
        short.histogram_minus_lag = Some(encode_histogram(&new_histogram()));
        let e = merge(&[("s".to_string(), short)]).unwrap_err();
        assert!(e.contains("client-lag"), "{e}");
    }

    fn named(list: &[LoadSummary]) -> Vec<(String, LoadSummary)> {
        list.iter()
            .enumerate()
            .map(|(i, s)| (format!("r{i}.json"), s.clone()))
            .collect()
    }

    #[test]
    fn idle_connections_add_over_the_inputs_that_have_them() {
        let idle = |answered: u64, refused: u64| IdleOutcome {
            connections: answered + refused,
            connected: answered + refused,
            answered,
            status: [("503".to_string(), refused)].into_iter().collect(),
            waited_s: answered as f64 / 1000.0,
            ..IdleOutcome::default()
        };
        let (mut a, mut b) = (summary(&[1000], None, 0), summary(&[2000], None, 0));
        (a.idle, b.idle) = (Some(idle(100, 0)), Some(idle(40, 60)));
        let m = merge(&named(&[a.clone(), b]))
            .unwrap()
            .summary
            .idle
            .unwrap();
        assert_eq!((m.connections, m.answered, m.status["503"]), (200, 140, 60));
        assert_eq!(m.waited_s, 0.1);
        let without = summary(&[1000], None, 0);
        let m = merge(&named(&[a, without.clone()])).unwrap().summary;
        assert_eq!(
            m.idle.map(|i| (i.connections, i.answered)),
            Some((100, 100))
        );
        let m = merge(&named(&[without.clone(), without])).unwrap().summary;
        assert_eq!(m.idle, None);
    }

    #[test]
    fn one_result_merges_into_itself() {
        let a = summary(&[1000, 2000, 3000], Some(100.0), 5_000);
        let m = merge(&named(std::slice::from_ref(&a))).unwrap();
        assert_eq!(m.summary, a);
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn counts_histograms_and_rates_add() {
        // Under 2048 ns a histogram of 3 significant digits is exact.
        let a = summary(&[100, 200, 300], None, 10_000);
        let b = summary(&[400, 500], None, 10_250);
        let m = merge(&named(&[a, b])).unwrap();
        let s = &m.summary;
        assert_eq!(
            (
                s.clients,
                s.connections,
                s.threads,
                s.responses,
                s.requests_sent
            ),
            (2, 4, 2, 5, 7)
        );
        assert_eq!(
            (s.requests_per_sec, s.bytes_read, s.reconnects),
            (5.0, 50, 2)
        );
        assert_eq!((s.errors.unanswered, s.errors.status["404"]), (2, 2));
        assert_eq!(s.started_at_ms, Some(10_000));
        assert_eq!(s.duration_s, 1.25);
        let l = s.latency_us.unwrap();
        assert_eq!((l.count, l.min, l.max), (5, 0.1, 0.5));
        assert_eq!(l.p50, 0.3);
        assert_eq!(s.fairness.connections, 4);
        assert_eq!((s.fairness.served, s.fairness.starved), (2, 2));
        assert_eq!(s.per_connection, vec![3, 0, 2, 0]);
        assert!(m.warnings.is_empty());
        assert!(
            s.notes[0].contains("overlap for 0.750s of the 1.250s"),
            "{:?}",
            s.notes
        );
        // And again: a merged result merges like any other.
        let c = summary(&[600], None, 10_500);
        let again = merge(&named(&[m.summary.clone(), c])).unwrap().summary;
        assert_eq!((again.clients, again.responses), (3, 6));
        assert_eq!(again.latency_us.unwrap().max, 0.6);
    }

    #[test]
    fn open_loop_rates_add_and_must_match_per_client() {
        let a = summary(&[1000], Some(100.0), 0);
        let b = summary(&[2000], Some(100.0), 0);
        let m = merge(&named(&[a, b])).unwrap().summary;
        assert_eq!((m.rate_target, m.offered_rate), (Some(200.0), 4.0));
        let c = summary(&[3000], Some(100.0), 0);
        let three = merge(&named(&[m, c])).unwrap().summary;
        assert_eq!(three.rate_target, Some(300.0));
        let d = summary(&[3000], Some(150.0), 0);
        let e = merge(&named(&[three, d])).unwrap_err();
        assert!(e.contains("differ in rate: 100 req/s per client"), "{e}");
        let closed = summary(&[3000], None, 0);
        let e = merge(&named(&[summary(&[1], Some(100.0), 0), closed])).unwrap_err();
        assert!(e.contains("differ in schedule"), "{e}");
    }

    #[test]
    fn hostile_clients_add_over_the_results_that_have_them() {
        let slow = |n: u64, median: f64, max: f64| SlowOutcome {
            connections: n,
            connected: n,
            closed_by_server: n,
            status: BTreeMap::from([("408".to_string(), n)]),
            held_median_s: median,
            held_max_s: max,
            bytes_sent: 10 * n,
        };
        let kind = |name: &str, sent: u64| MalformedCount {
            kind: name.to_string(),
            expected: 400,
            sent,
            rejected_and_closed: sent,
            expected_status: sent,
            status: BTreeMap::from([("400".to_string(), sent)]),
            ..MalformedCount::default()
        };
        let mut a = summary(&[1000], None, 0);
        a.slowloris = Some(slow(5, 1.0, 2.0));
        a.malformed = Some(NoiseOutcome {
            kinds: vec![kind("x", 3), kind("y", 4)],
        });
        // Merged into itself, unchanged; without them, none.
        assert_eq!(merge(&named(std::slice::from_ref(&a))).unwrap().summary, a);
        let plain = summary(&[1000], None, 0);
        let m = merge(&named(&[plain.clone(), plain.clone()]))
            .unwrap()
            .summary;
        assert_eq!((m.slowloris, m.malformed), (None, None));
        // An input without them had none: the others' are the sum.
        let m = merge(&named(&[a.clone(), plain])).unwrap().summary;
        assert_eq!(m.slowloris, a.slowloris);
        assert_eq!(m.malformed, a.malformed);
        let mut b = summary(&[1000], None, 0);
        b.slowloris = Some(slow(3, 3.0, 5.0));
        b.malformed = Some(NoiseOutcome {
            kinds: vec![kind("y", 1), kind("z", 2)],
        });
        let m = merge(&named(&[a, b])).unwrap().summary;
        let s = m.slowloris.unwrap();
        assert_eq!(
            (s.connections, s.closed_by_server, s.bytes_sent),
            (8, 8, 80)
        );
        assert_eq!(
            (s.status["408"], s.held_median_s, s.held_max_s),
            (8, 2.0, 5.0)
        );
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("median of the 2 results' medians")),
            "{:?}",
            m.notes
        );
        let kinds: Vec<(&str, u64, u64)> = m
            .malformed
            .as_ref()
            .unwrap()
            .kinds
            .iter()
            .map(|k| (k.kind.as_str(), k.sent, k.status["400"]))
            .collect();
        assert_eq!(kinds, [("x", 3, 3), ("y", 5, 5), ("z", 2, 2)]);
    }

    #[test]
    fn windows_that_do_not_overlap_are_warned_of() {
        let a = summary(&[1000], None, 1_000_000);
        let b = summary(&[1000], None, 1_000_000 + 1_000);
        let m = merge(&named(&[a, b])).unwrap();
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("do not overlap"), "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("1970-01-01T00:16:41.000Z"),
            "{:?}",
            m.warnings
        );
        assert!(m.summary.notes.contains(&m.warnings[0]));
    }

    #[test]
    fn different_runs_and_broken_ones_are_refused() {
        let a = summary(&[1000], None, 0);
        let refused = |b: LoadSummary, field: &str| {
            let e = merge(&named(&[a.clone(), b])).unwrap_err();
            assert!(e.contains(&format!("differ in {field}:")), "{e}");
        };
        let mut b = a.clone();
        b.url = "http://127.0.0.1:10/".to_string();
        refused(b, "target");
        let mut b = a.clone();
        b.url = "http://127.0.0.1:9/x".to_string();
        refused(b, "path");
        let mut b = a.clone();
        b.method = "HEAD".to_string();
        refused(b, "method");
        let mut b = a.clone();
        b.headers = vec!["X-A: 1".to_string()];
        refused(b, "headers");
        let mut b = a.clone();
        b.pipeline = 2;
        refused(b, "pipeline");
        let mut b = a.clone();
        b.timeout_s = 1.0;
        refused(b, "timeout");

        let mut old = a.clone();
        old.schema = 1;
        old.histogram = None;
        let e = merge(&named(&[old])).unwrap_err();
        assert!(e.contains("older servelab load"), "{e}");
        let mut lying = a.clone();
        lying.latency_us.as_mut().unwrap().count = 7;
        let e = merge(&named(&[lying])).unwrap_err();
        assert!(e.contains("inconsistent"), "{e}");
        let mut garbled = a.clone();
        garbled.histogram = Some("AAAA".to_string());
        assert!(merge(&named(&[garbled]))
            .unwrap_err()
            .contains("unreadable"));
    }
}
