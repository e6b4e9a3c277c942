//! The result of a run: counts, rates, latency summaries and fairness, built
//! from the threads' merged statistics.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::engine::Engine;
use super::hostile::{NoiseOutcome, SlowOutcome};
use super::idle::IdleOutcome;
use super::stats::{Counters, KindStats, LagHistograms};

/// Latency figures of one histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Standard deviation.
    pub stdev_ns: f64,
    /// Largest.
    pub max_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p99_9_ns: u64,
    /// 99.99th percentile.
    pub p99_99_ns: u64,
    /// Share of samples within one standard deviation of the mean (wrk's
    /// `+/- Stdev` column), 0..=1.
    pub within_stdev: f64,
}

impl LatencySummary {
    /// Summarizes `hist`; `None` when it holds no sample.
    pub fn of(hist: &Histogram<u64>) -> Option<LatencySummary> {
        let count = hist.len();
        if count == 0 {
            return None;
        }
        let mean = hist.mean();
        let stdev = hist.stdev();
        let (lo, hi) = (mean - stdev, mean + stdev);
        let within: u64 = hist
            .iter_recorded()
            .filter(|v| {
                let value = v.value_iterated_to() as f64;
                value >= lo && value <= hi
            })
            .map(|v| v.count_at_value())
            .sum();
        Some(LatencySummary {
            count,
            min_ns: hist.min(),
            mean_ns: mean,
            stdev_ns: stdev,
            max_ns: hist.max(),
            p50_ns: hist.value_at_quantile(0.5),
            p90_ns: hist.value_at_quantile(0.9),
            p99_ns: hist.value_at_quantile(0.99),
            p99_9_ns: hist.value_at_quantile(0.999),
            p99_99_ns: hist.value_at_quantile(0.9999),
            within_stdev: within as f64 / count as f64,
        })
    }
}

/// How evenly the connections were served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fairness {
    /// Connection slots.
    pub connections: usize,
    /// Slots that completed at least one request.
    pub served: usize,
    /// Slots that completed none.
    pub starved: usize,
    /// Fewest requests one slot completed.
    pub min: u64,
    /// Median requests per slot.
    pub median: f64,
    /// Most requests one slot completed.
    pub max: u64,
    /// Jain's fairness index, (Σx)² / (n·Σx²): 1 when every slot completed as
    /// many as every other, 1/n when one slot got everything. `None` when
    /// nothing completed.
    pub jain: Option<f64>,
}

impl Fairness {
    /// Computes the fairness of per-slot completed counts.
    pub fn of(per_connection: &[u64]) -> Fairness {
        let n = per_connection.len();
        let mut sorted = per_connection.to_vec();
        sorted.sort_unstable();
        let served = sorted.iter().filter(|&&x| x > 0).count();
        let median = match n {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2] as f64,
            n => (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0,
        };
        let sum: f64 = sorted.iter().map(|&x| x as f64).sum();
        let sum_sq: f64 = sorted.iter().map(|&x| (x as f64) * (x as f64)).sum();
        Fairness {
            connections: n,
            served,
            starved: n - served,
            min: sorted.first().copied().unwrap_or(0),
            median,
            max: sorted.last().copied().unwrap_or(0),
            jain: (sum_sq > 0.0).then(|| sum * sum / (n as f64 * sum_sq)),
        }
    }
}

/// One kind of request of a mixed run (`--mix`): its path and share, and
/// what its requests counted.
#[derive(Clone, Debug)]
pub struct KindReport {
    /// The request target its requests named.
    pub path: String,
    /// Requests in a million that were of this kind.
    pub share_ppm: u32,
    /// Requests of this kind written in the recorded window.
    pub sent: u64,
    /// Responses to them, any status.
    pub responses: u64,
    /// Responses to them with a 2xx or 3xx status.
    pub ok_responses: u64,
    /// Their latency, measured as the run's; `None` without a response.
    pub latency: Option<LatencySummary>,
    /// The histogram behind `latency`, in nanoseconds.
    pub histogram: Histogram<u64>,
}

impl KindReport {
    /// The report of the kind of `path` at `share_ppm` that counted `stats`.
    pub fn of(path: String, share_ppm: u32, stats: KindStats) -> KindReport {
        KindReport {
            path,
            share_ppm,
            sent: stats.sent,
            responses: stats.responses,
            ok_responses: stats.ok,
            latency: LatencySummary::of(&stats.latency),
            histogram: stats.latency,
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// The URL loaded.
    pub url: String,
    /// The address connected to.
    pub addr: SocketAddr,
    /// Request method.
    pub method: String,
    /// Extra request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Connection slots.
    pub connections: usize,
    /// Threads actually used.
    pub threads: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// When the recorded window began (after the warm-up).
    pub started_at: SystemTime,
    /// Recorded window as planned (with `requests`, its time limit).
    pub duration: Duration,
    /// The part of the recorded window that ran: `duration`, or less when
    /// the run was interrupted or its `requests` were all answered sooner.
    /// Rates are per second of this.
    pub elapsed: Duration,
    /// `-n`: the requests to send; `None` for a timed run.
    pub requests: Option<u64>,
    /// Whether the run was cancelled ([`super::LoadConfig::cancel`], Ctrl-C
    /// for `servelab load`) before its end.
    pub interrupted: bool,
    /// Unrecorded warmup before it.
    pub warmup: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Open-loop target rate (requests/s), `None` in closed loop.
    pub rate: Option<f64>,
    /// The I/O engine the threads ran on.
    pub engine: Engine,
    /// Why that engine: asked for, or the default and why.
    pub engine_reason: String,
    /// Adjustments made to the configuration (e.g. threads clamped).
    pub notes: Vec<String>,
    /// Raw counts over the recorded window.
    pub counters: Counters,
    /// Latency: from the intended send time in open loop (corrected for
    /// coordinated omission), from the send in closed loop.
    pub latency: Option<LatencySummary>,
    /// Latency from the actual send. In closed loop the same as `latency`.
    pub latency_uncorrected: Option<LatencySummary>,
    /// The merged latency histogram behind `latency`, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Open loop: the merged histogram behind `latency_uncorrected`.
    pub histogram_uncorrected: Option<Histogram<u64>>,
    /// Open loop: the merged histograms of the client's own lag and of the
    /// latency without it, one sample per response in `histogram`.
    pub lag: Option<LagHistograms>,
    /// With `--mix`: each kind of request apart, the URL's path first; the
    /// figures above are of all of them together. Empty without a mix.
    pub kinds: Vec<KindReport>,
    /// Responses completed per connection slot.
    pub per_connection: Vec<u64>,
    /// Fairness over `per_connection`.
    pub fairness: Fairness,
    /// `--idle`: what the idle connections achieved (they closed with the run).
    pub idle: Option<IdleOutcome>,
    /// With [`super::LoadConfig::slowloris`]: what the slowloris connections
    /// saw, from their start before the load to its end.
    pub slowloris: Option<SlowOutcome>,
    /// With [`super::LoadConfig::malformed`]: how the malformed requests
    /// were treated, per kind, from the load's start (warm-up included) to
    /// its end.
    pub malformed: Option<NoiseOutcome>,
}

impl LoadReport {
    /// Responses per second of the recorded window (the part that ran).
    pub fn requests_per_sec(&self) -> f64 {
        self.per_second(self.counters.responses)
    }

    /// Bytes read per second of the recorded window.
    pub fn bytes_per_sec(&self) -> f64 {
        self.per_second(self.counters.bytes_read)
    }

    /// Requests sent per second of the recorded window (open loop: counted by
    /// intended send time, so this is the rate actually offered).
    pub fn offered_rate(&self) -> f64 {
        self.per_second(self.counters.sent)
    }

    /// `n` per second of [`LoadReport::elapsed`]; 0 when nothing was
    /// recorded (interrupted during the warmup).
    fn per_second(&self, n: u64) -> f64 {
        match self.elapsed.as_secs_f64() {
            s if s > 0.0 => n as f64 / s,
            _ => 0.0,
        }
    }

    /// Responses with a status outside 2xx/3xx, per code, ascending.
    pub fn error_statuses(&self) -> Vec<(u16, u64)> {
        self.counters
            .status
            .iter()
            .enumerate()
            .filter(|&(code, &n)| n > 0 && !(200..400).contains(&code))
            .map(|(code, &n)| (code as u16, n))
            .collect()
    }

    /// Responses with a 2xx or 3xx status.
    pub fn ok_responses(&self) -> u64 {
        self.counters.status[200..400].iter().sum()
    }

    /// Whether the latency is measured from intended send times.
    pub fn corrected(&self) -> bool {
        self.rate.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairness_of_even_and_starved_loads() {
        let even = Fairness::of(&[5, 5, 5, 5]);
        assert_eq!(
            (even.served, even.starved, even.min, even.max),
            (4, 0, 5, 5)
        );
        assert!((even.jain.unwrap() - 1.0).abs() < 1e-12);
        let one = Fairness::of(&[0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!((one.served, one.starved, one.median), (1, 9, 0.0));
        assert!((one.jain.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(Fairness::of(&[0, 0]).jain, None);
        assert_eq!(Fairness::of(&[1, 2, 3, 10]).median, 2.5);
    }

    #[test]
    fn latency_summary_percentiles() {
        let mut h = super::super::stats::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = LatencySummary::of(&h).unwrap();
        assert_eq!(s.count, 10_000);
        let close = |a: u64, b: u64| (a as f64 - b as f64).abs() <= b as f64 * 0.001;
        assert!(close(s.p50_ns, 5_000_000), "{}", s.p50_ns);
        assert!(close(s.p99_ns, 9_900_000), "{}", s.p99_ns);
        assert!(close(s.max_ns, 10_000_000));
        assert!(s.within_stdev > 0.5 && s.within_stdev < 0.7);
        assert!(LatencySummary::of(&super::super::stats::new_histogram()).is_none());
    }
}
