//! The machine-readable report of a run: [`LoadSummary`], one serde object.
//! `servelab load --json` prints it, and `servelab bench` stores one per run
//! in its `results.json` (the same type, so the two read alike). Times are in
//! microseconds (`_us`), rates per second; whole numbers print without a
//! fraction, non-finite ones as `null`.
//!
//! Schema 2 added `schema`, `headers`, `clients`, `started_at_ms`,
//! `per_connection` and the two histograms, so that results can be merged
//! (`servelab merge`); an object without them reads as schema 1. Schema 3
//! added the client's lag in open loop (`client_lag_us`,
//! `latency_minus_lag_us` and their histograms); they are `null` in closed
//! loop and absent from older objects. Schema 4 added `kinds`, each kind of
//! request of a mixed run (`--mix`) apart; absent without a mix, so a run
//! without one prints what schema 3 did but for the number. Later, still
//! schema 4, came `slowloris` and `malformed`, what the hostile clients
//! saw (`--slowloris`, `--malformed`); absent without them, so a run
//! without them prints what it did before, byte for byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use super::codec::encode_histogram;
use super::hostile::{NoiseOutcome, SlowOutcome};
use super::idle::IdleOutcome;
use super::report::{Fairness, KindReport, LatencySummary, LoadReport};

/// Version of the `--json` layout written now.
pub const SCHEMA: u32 = 4;

/// The client's lag p99 is worth a warning from this share of the corrected
/// latency p99 on.
pub const LAG_WARN_SHARE: f64 = 0.25;

/// Everything a load run measured, in the form `--json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Layout version ([`SCHEMA`]); 1 when absent.
    #[serde(default = "schema_1")]
    pub schema: u32,
    /// The URL loaded.
    pub url: String,
    /// The address connected to (merged: each distinct one, comma-separated).
    pub addr: String,
    /// Request method.
    pub method: String,
    /// Extra request headers as sent, `Name: value` (no body is ever sent).
    #[serde(default)]
    pub headers: Vec<String>,
    /// `closed` (each connection sends when its responses are in) or `open`
    /// (sends at `rate_target`).
    pub mode: String,
    /// Connection slots.
    pub connections: u64,
    /// Load threads actually used.
    pub threads: u64,
    /// Requests in flight per connection.
    pub pipeline: u64,
    /// Runs of `servelab load` this result holds: 1, or more once merged.
    #[serde(default = "one")]
    pub clients: u64,
    /// When the recorded window began (after the warm-up), Unix time in
    /// milliseconds; merged: the earliest start.
    #[serde(default)]
    pub started_at_ms: Option<u64>,
    /// Recorded window as planned (with `-n`, its time limit), seconds;
    /// merged: from the earliest start to the latest end.
    #[serde(serialize_with = "number")]
    pub duration_s: f64,
    /// The part of it that ran, seconds: less than `duration_s` when the run
    /// was interrupted or a `-n` count was done sooner. Rates are per second
    /// of this.
    #[serde(serialize_with = "number", default)]
    pub elapsed_s: f64,
    /// `-n`: requests to send; `null` for a timed run.
    #[serde(default)]
    pub requests_target: Option<u64>,
    /// Whether the run was interrupted (Ctrl-C) before its end: the figures
    /// cover the part that ran.
    #[serde(default)]
    pub interrupted: bool,
    /// Unrecorded warm-up before it, seconds.
    #[serde(serialize_with = "number")]
    pub warmup_s: f64,
    /// Per-request timeout, seconds.
    #[serde(serialize_with = "number")]
    pub timeout_s: f64,
    /// Open loop: the target rate, requests/s (merged: the sum over the
    /// clients); `null` in closed loop.
    #[serde(serialize_with = "opt_number")]
    pub rate_target: Option<f64>,
    /// Adjustments made to the configuration.
    pub notes: Vec<String>,
    /// Requests written in the recorded window.
    pub requests_sent: u64,
    /// Responses received, any status.
    pub responses: u64,
    /// Responses with a 2xx or 3xx status.
    pub responses_2xx_3xx: u64,
    /// Bytes read while recording.
    pub bytes_read: u64,
    /// Responses per second (merged: the sum of each client's).
    #[serde(serialize_with = "number")]
    pub requests_per_sec: f64,
    /// Bytes read per second (merged: the sum of each client's).
    #[serde(serialize_with = "number")]
    pub bytes_per_sec: f64,
    /// Requests sent per second (open loop: by intended send time).
    #[serde(serialize_with = "number")]
    pub offered_rate: f64,
    /// Open loop: scheduled sends that never went out (pipeline full).
    pub scheduled_not_sent: u64,
    /// Connections opened again after one ended.
    pub reconnects: u64,
    /// Whether `latency_us` is measured from intended send times.
    pub latency_corrected: bool,
    /// Latency (corrected in open loop); `null` when nothing was answered.
    pub latency_us: Option<LatencyUs>,
    /// Latency from the actual send; the same as `latency_us` in closed loop.
    pub latency_uncorrected_us: Option<LatencyUs>,
    /// Failures by kind.
    pub errors: Errors,
    /// How evenly the connections were served.
    pub fairness: FairnessJson,
    /// Responses completed per connection slot, in slot order (merged: each
    /// client's slots in turn).
    #[serde(default)]
    pub per_connection: Vec<u64>,
    /// The latency histogram (ns) behind `latency_us`: HdrHistogram V2
    /// serialization, DEFLATE-compressed, base64.
    #[serde(default)]
    pub histogram: Option<String>,
    /// Open loop: the histogram behind `latency_uncorrected_us`, encoded the
    /// same way; `null` in closed loop, where it is `histogram`.
    #[serde(default)]
    pub histogram_uncorrected: Option<String>,
    /// Open loop: the client's own lateness in sending each answered
    /// request (from when it could have gone out, its intended time or when
    /// its connection became free, to when it did); `null` in closed loop or
    /// when nothing was answered. Schema 3.
    #[serde(default)]
    pub client_lag_us: Option<LatencyUs>,
    /// Open loop: each answered request's corrected latency minus its client
    /// lag, the server's share of it; `null` in closed loop. Schema 3.
    #[serde(default)]
    pub latency_minus_lag_us: Option<LatencyUs>,
    /// Open loop: the histogram (ns) behind `client_lag_us`, encoded as
    /// `histogram`; `null` in closed loop. Schema 3.
    #[serde(default)]
    pub histogram_client_lag: Option<String>,
    /// Open loop: the histogram (ns) behind `latency_minus_lag_us`; `null`
    /// in closed loop. Schema 3.
    #[serde(default)]
    pub histogram_minus_lag: Option<String>,
    /// `--mix`: each kind of request apart, the URL's path first (the
    /// figures above are of all requests together); absent (empty) without
    /// a mix. Schema 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindJson>,
    /// `--idle`: what the idle connections held beside the load achieved;
    /// absent without them. Schema 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleOutcome>,
    /// `--slowloris`: what the slowloris connections saw; absent without
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowloris: Option<SlowOutcome>,
    /// `--malformed`: how the malformed requests were treated, per kind;
    /// absent without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<NoiseOutcome>,
}

/// One kind of request of a mixed run: its path, its share and what its
/// requests counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindJson {
    /// The request target its requests named (the URL's path, or the mix's).
    pub path: String,
    /// Its share of the requests, in percent (up to 4 decimals).
    #[serde(serialize_with = "number")]
    pub share_pct: f64,
    /// Requests of this kind written in the recorded window.
    pub requests_sent: u64,
    /// Responses to them, any status.
    pub responses: u64,
    /// Responses to them with a 2xx or 3xx status.
    pub responses_2xx_3xx: u64,
    /// Their latency, measured as `latency_us` is (corrected in open loop);
    /// `null` when none was answered.
    pub latency_us: Option<LatencyUs>,
    /// The histogram (ns) behind `latency_us`, encoded as `histogram`.
    pub histogram: Option<String>,
}

impl KindJson {
    /// `k` as printed.
    pub fn of(k: &KindReport) -> KindJson {
        KindJson {
            path: k.path.clone(),
            share_pct: share_pct(k.share_ppm),
            requests_sent: k.sent,
            responses: k.responses,
            responses_2xx_3xx: k.ok_responses,
            latency_us: k.latency.as_ref().map(LatencyUs::of),
            histogram: Some(encode_histogram(&k.histogram)),
        }
    }

    /// The share in parts per million (`share_pct` holds at most 4
    /// decimals, so this is exact).
    pub fn share_ppm(&self) -> u32 {
        (self.share_pct * 1e4).round().clamp(0.0, 1e6) as u32
    }
}

/// A share in parts per million as a percentage.
fn share_pct(ppm: u32) -> f64 {
    f64::from(ppm) / 1e4
}

fn schema_1() -> u32 {
    1
}

fn one() -> u64 {
    1
}

/// A latency summary in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Samples.
    pub count: u64,
    /// Smallest.
    #[serde(serialize_with = "number")]
    pub min: f64,
    /// Mean.
    #[serde(serialize_with = "number")]
    pub mean: f64,
    /// Standard deviation.
    #[serde(serialize_with = "number")]
    pub stdev: f64,
    /// Largest.
    #[serde(serialize_with = "number")]
    pub max: f64,
    /// Median.
    #[serde(serialize_with = "number")]
    pub p50: f64,
    /// 90th percentile.
    #[serde(serialize_with = "number")]
    pub p90: f64,
    /// 99th percentile.
    #[serde(serialize_with = "number")]
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(serialize_with = "number")]
    pub p99_9: f64,
    /// 99.99th percentile.
    #[serde(serialize_with = "number")]
    pub p99_99: f64,
}

/// Failures of a run, by kind (every request sent ends as a response, a
/// timeout, an aborted one or an unanswered one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Connection attempts that failed.
    pub connect: u64,
    /// Reads that failed, or streams that ended with requests in flight.
    pub read: u64,
    /// Writes that failed.
    pub write: u64,
    /// Requests not answered within the timeout.
    pub timeout: u64,
    /// Response streams that could not be framed.
    pub parse: u64,
    /// Requests lost with their connection.
    pub aborted: u64,
    /// Requests still in flight at the end.
    pub unanswered: u64,
    /// Responses outside 2xx/3xx, by status code.
    pub status: BTreeMap<String, u64>,
}

/// Fairness over the connection slots.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FairnessJson {
    /// Connection slots.
    pub connections: u64,
    /// Slots that completed at least one request.
    pub served: u64,
    /// Slots that completed none.
    pub starved: u64,
    /// Fewest requests one slot completed.
    pub min: u64,
    /// Median requests per slot.
    #[serde(serialize_with = "number")]
    pub median: f64,
    /// Most requests one slot completed.
    pub max: u64,
    /// Jain's fairness index; `null` when nothing completed.
    #[serde(serialize_with = "opt_number")]
    pub jain: Option<f64>,
}

impl LoadSummary {
    /// Whether a `-n` run stopped at its time limit before every request
    /// was answered (or timed out, or was lost with its connection).
    pub fn cut_by_time_limit(&self) -> bool {
        let e = &self.errors;
        !self.interrupted
            && self
                .requests_target
                .is_some_and(|n| self.responses + e.timeout + e.aborted < n)
    }

    /// The summary of `r`.
    pub fn of(r: &LoadReport) -> LoadSummary {
        let c = &r.counters;
        LoadSummary {
            schema: SCHEMA,
            url: r.url.clone(),
            addr: r.addr.to_string(),
            method: r.method.clone(),
            headers: r
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect(),
            mode: if r.rate.is_some() { "open" } else { "closed" }.to_string(),
            connections: r.connections as u64,
            threads: r.threads as u64,
            pipeline: r.pipeline as u64,
            clients: 1,
            started_at_ms: r
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            duration_s: r.duration.as_secs_f64(),
            elapsed_s: r.elapsed.as_secs_f64(),
            requests_target: r.requests,
            interrupted: r.interrupted,
            warmup_s: r.warmup.as_secs_f64(),
            timeout_s: r.timeout.as_secs_f64(),
            rate_target: r.rate,
            notes: r.notes.clone(),
            requests_sent: c.sent,
            responses: c.responses,
            responses_2xx_3xx: r.ok_responses(),
            bytes_read: c.bytes_read,
            requests_per_sec: r.requests_per_sec(),
            bytes_per_sec: r.bytes_per_sec(),
            offered_rate: r.offered_rate(),
            scheduled_not_sent: c.not_sent,
            reconnects: c.reconnects,
            latency_corrected: r.corrected(),
            latency_us: r.latency.as_ref().map(LatencyUs::of),
            latency_uncorrected_us: r.latency_uncorrected.as_ref().map(LatencyUs::of),
            errors: Errors {
                connect: c.connect_errors,
                read: c.read_errors,
                write: c.write_errors,
                timeout: c.timeouts,
                parse: c.parse_errors,
                aborted: c.aborted,
                unanswered: c.unanswered,
                status: r
                    .error_statuses()
                    .into_iter()
                    .map(|(code, n)| (code.to_string(), n))
                    .collect(),
            },
            fairness: FairnessJson::of(&r.fairness),
            per_connection: r.per_connection.clone(),
            histogram: Some(encode_histogram(&r.histogram)),
            histogram_uncorrected: r.histogram_uncorrected.as_ref().map(encode_histogram),
            client_lag_us: r
                .lag
                .as_ref()
                .and_then(|l| LatencySummary::of(&l.lag))
                .as_ref()
                .map(LatencyUs::of),
            latency_minus_lag_us: r
                .lag
                .as_ref()
                .and_then(|l| LatencySummary::of(&l.minus_lag))
                .as_ref()
                .map(LatencyUs::of),
            histogram_client_lag: r.lag.as_ref().map(|l| encode_histogram(&l.lag)),
            histogram_minus_lag: r.lag.as_ref().map(|l| encode_histogram(&l.minus_lag)),
            kinds: r.kinds.iter().map(KindJson::of).collect(),
            idle: r.idle.clone(),
            slowloris: r.slowloris.clone(),
            malformed: r.malformed.clone(),
        }
    }

    /// Connect, read, write, timeout and parse failures and aborted requests
    /// together (unanswered requests and error statuses are counted apart).
    pub fn failures(&self) -> u64 {
        let e = &self.errors;
        e.connect + e.read + e.write + e.timeout + e.parse + e.aborted
    }
}

impl FairnessJson {
    /// `f` as printed.
    pub fn of(f: &Fairness) -> FairnessJson {
        FairnessJson {
            connections: f.connections as u64,
            served: f.served as u64,
            starved: f.starved as u64,
            min: f.min,
            median: f.median,
            max: f.max,
            jain: f.jain,
        }
    }
}

impl LatencyUs {
    /// `l` in microseconds.
    pub fn of(l: &LatencySummary) -> LatencyUs {
        let us = |ns: f64| ns / 1e3;
        LatencyUs {
            count: l.count,
            min: us(l.min_ns as f64),
            mean: us(l.mean_ns),
            stdev: us(l.stdev_ns),
            max: us(l.max_ns as f64),
            p50: us(l.p50_ns as f64),
            p90: us(l.p90_ns as f64),
            p99: us(l.p99_ns as f64),
            p99_9: us(l.p99_9_ns as f64),
            p99_99: us(l.p99_99_ns as f64),
        }
    }
}

/// Renders `report` as one JSON object (no trailing newline).
pub fn render(report: &LoadReport) -> String {
    serde_json::to_string(&LoadSummary::of(report)).expect("a load summary always serializes")
}

/// Serializes a whole `f64` as an integer (`500`, not `500.0`), any other
/// finite one in full precision, and a non-finite one as `null`.
pub fn number<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    let v = *value;
    if !v.is_finite() {
        s.serialize_none()
    } else if v.fract() == 0.0 && v.abs() < 9e15 {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

/// [`number`] for an optional value; `None` is `null`.
pub fn opt_number<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => number(v, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Numbers {
        #[serde(serialize_with = "number")]
        i: f64,
        #[serde(serialize_with = "number")]
        f: f64,
        #[serde(serialize_with = "number")]
        n: f64,
        #[serde(serialize_with = "opt_number")]
        none: Option<f64>,
    }

    #[test]
    fn whole_numbers_print_without_a_fraction() {
        let n = Numbers {
            i: 3.0,
            f: 0.125,
            n: f64::NAN,
            none: None,
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"i":3,"f":0.125,"n":null,"none":null}"#
        );
    }
}
