//! The columns of the scenario tables, as data: each [`Metric`] says what it
//! reads from a cell, how its numbers read and what it means; [`columns`]
//! picks them per scenario; `row` turns the runs of one point against one
//! server into medians, totals and problems.

use std::collections::BTreeMap;

use crate::load::LatencyUs;

use super::results::{CellResult, Outcome, ProcSample, ServerUsage, ShutdownRecord, Spread};
use super::scenarios::{PointId, ScenarioId};

/// How a column's numbers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Per second.
    PerSecond,
    /// Microseconds.
    Micros,
    /// Bytes.
    Bytes,
    /// KiB.
    Kib,
    /// A count.
    Count,
    /// A plain ratio.
    Ratio,
    /// A multiple of another figure: `0.975×`.
    Times,
    /// A share, shown as a percentage.
    Share,
    /// Seconds.
    Seconds,
}

/// A column's figure in one run.
pub type Reader = fn(&CellResult, &Lookup) -> Option<f64>;

/// How a column reads a cell.
#[derive(Clone, Copy)]
pub enum Read {
    /// A number per run; the table shows the median with min–max.
    Median(Reader),
    /// A count per run; the table shows the total over the runs.
    Total(fn(&CellResult) -> Option<u64>),
    /// Counts by kind per run; the table lists the non-zero totals.
    Kinds(fn(&CellResult) -> Vec<(String, u64)>),
}

/// A table column.
#[derive(Clone, Copy)]
pub struct Metric {
    /// Header.
    pub name: &'static str,
    /// How its numbers read.
    pub unit: Unit,
    /// What it means (the README's column guide is checked against these).
    pub about: &'static str,
    /// How it reads a cell.
    pub read: Read,
}

/// Figures from other tables that a column compares with.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    /// Median `seed` req/s per server.
    pub seed_rps: BTreeMap<String, f64>,
    /// `--baseline`: the baseline's server CPU per request in each run.
    pub baseline: Option<Reference>,
}

/// One server's figure in every measured run, to divide other servers'
/// figures by, run by run: run `r` of a point is compared with run `r` of
/// the same point, which the interleaved plan ran seconds apart.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// The server.
    pub server: String,
    /// Its figure by (scenario, point index, run).
    pub runs: BTreeMap<(PointId, u32), f64>,
}

impl Reference {
    /// `server`'s figure `f` in each of its measured runs.
    pub fn of(
        cells: &[CellResult],
        server: &str,
        f: impl Fn(&CellResult) -> Option<f64>,
    ) -> Reference {
        let runs = cells
            .iter()
            .filter(|c| c.server == server && c.measured())
            .filter_map(|c| Some(((c.at(), c.run), f(c)?)))
            .collect();
        Reference {
            server: server.to_string(),
            runs,
        }
    }

    /// `value`, measured in cell `c`, over the reference's figure in the
    /// same run of the same point; `None` when that run has none.
    pub fn ratio(&self, c: &CellResult, value: f64) -> Option<f64> {
        let base = *self.runs.get(&(c.at(), c.run))?;
        (base > 0.0 && value.is_finite()).then(|| value / base)
    }
}

pub(crate) fn lat(c: &CellResult) -> Option<&LatencyUs> {
    c.load.as_ref()?.latency_us.as_ref()
}

/// The latency of one kind of request of a mixed load: 0 the short (the
/// URL's path), 1 the long (the mix's).
pub(crate) fn kind_lat(c: &CellResult, kind: usize) -> Option<&LatencyUs> {
    c.load.as_ref()?.kinds.get(kind)?.latency_us.as_ref()
}

pub(crate) fn usage(c: &CellResult) -> Option<&ServerUsage> {
    c.server_usage.as_ref()
}

pub(crate) fn idle_per_connection(c: &CellResult, field: fn(&ProcSample) -> f64) -> Option<f64> {
    let u = usage(c)?;
    let n = c.idle.as_ref()?.connections;
    (n > 0).then(|| (field(&u.loaded) - field(&u.empty)) / n as f64)
}

fn error_kinds(c: &CellResult) -> Vec<(String, u64)> {
    let Some(l) = &c.load else { return Vec::new() };
    let e = &l.errors;
    let mut kinds = vec![
        ("connect".to_string(), e.connect),
        ("read".to_string(), e.read),
        ("write".to_string(), e.write),
        ("timeout".to_string(), e.timeout),
        ("parse".to_string(), e.parse),
        ("aborted".to_string(), e.aborted),
    ];
    kinds.extend(e.status.iter().map(|(code, n)| (code.clone(), *n)));
    kinds
}

fn conn_per_sec(c: &CellResult, _: &Lookup) -> Option<f64> {
    let l = c.load.as_ref()?;
    Some(l.reconnects as f64 / l.duration_s)
}

fn cpu_per_kib(c: &CellResult, _: &Lookup) -> Option<f64> {
    let kib = c.load.as_ref()?.bytes_read as f64 / 1024.0;
    (kib > 0.0).then(|| usage(c).map(|u| u.cpu_s * 1e6 / kib))?
}

fn idle_problems(c: &CellResult) -> Vec<(String, u64)> {
    let Some(i) = &c.idle else { return Vec::new() };
    let silent = i
        .connections
        .saturating_sub(i.answered + i.failed + i.status.values().sum::<u64>());
    let mut kinds = vec![
        ("failed".to_string(), i.failed),
        ("no answer".to_string(), silent),
    ];
    kinds.extend(i.status.iter().map(|(code, n)| (code.clone(), *n)));
    kinds
}

fn noise_bad(c: &CellResult) -> Vec<(String, u64)> {
    let Some(n) = &c.noise else { return Vec::new() };
    let sum = |f: fn(&crate::load::MalformedCount) -> u64| n.kinds.iter().map(f).sum::<u64>();
    vec![
        ("left open".to_string(), sum(|k| k.left_open)),
        ("not 4xx".to_string(), sum(|k| k.wrong_status)),
        ("no answer".to_string(), sum(|k| k.no_answer)),
    ]
}

/// A column of the scenario tables: its identity, wherever one is chosen,
/// compared or named by a target; [`Column::metric`] says what it reads, its
/// header and what it means.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    Rps,
    Mean,
    Stdev,
    P50,
    P90,
    P99,
    P999,
    Max,
    P99Uncorrected,
    /// A mixed load: the short requests' p50.
    ShortP50,
    /// A mixed load: the short requests' p99.
    ShortP99,
    /// A mixed load: the short requests' p99.9.
    ShortP999,
    /// A mixed load: the long requests' p99.
    LongP99,
    /// Open loop: p99 of the load generator's own lateness.
    P99ClientLag,
    Offered,
    NotSent,
    ServerCpu,
    BaselineCpu,
    ClientCpu,
    Rss,
    Threads,
    Fds,
    Starved,
    Jain,
    Errors,
    Unanswered,
    ConnPerSec,
    VsSeed,
    SlowHeld,
    SlowClosed,
    IdleAnswered,
    IdleRss,
    IdleThreads,
    IdleFds,
    IdleProblems,
    NoiseSent,
    NoiseRejected,
    NoiseBad,
    /// `capacity`: the highest rate that held the target.
    Capacity,
    CapacityTarget,
    CapacityCeiling,
    CapacityFailed,
    Probes,
    /// `body`: bytes read per second.
    BytesPerSec,
    /// `body`: server CPU per KiB of response.
    CpuPerKib,
}

/// `metric!("header" Unit Read(f), "meaning")`: one column, on one line.
macro_rules! metric {
    ($name:literal $unit:ident $read:ident($f:expr), $about:literal) => {
        Metric {
            name: $name,
            unit: Unit::$unit,
            about: $about,
            read: Read::$read($f),
        }
    };
}

impl Column {
    /// What it reads and how (`--baseline`'s header names the baseline
    /// where this says `baseline`).
    #[rustfmt::skip]
    pub fn metric(self) -> Metric {
        use Column::*;
        match self {
            Rps => metric!("req/s" PerSecond Median(|c, _| c.rps()), "responses per second in the recorded window"),
            Mean => metric!("mean" Micros Median(|c, _| Some(lat(c)?.mean)), "mean latency"),
            Stdev => metric!("stdev" Micros Median(|c, _| Some(lat(c)?.stdev)), "standard deviation of the latency"),
            P50 => metric!("p50" Micros Median(|c, _| Some(lat(c)?.p50)), "median latency"),
            P90 => metric!("p90" Micros Median(|c, _| Some(lat(c)?.p90)), "90th percentile latency"),
            P99 => metric!("p99" Micros Median(|c, _| Some(lat(c)?.p99)), "99th percentile latency (open loop: from the intended send time)"),
            P999 => metric!("p99.9" Micros Median(|c, _| Some(lat(c)?.p99_9)), "99.9th percentile latency"),
            Max => metric!("max" Micros Median(|c, _| Some(lat(c)?.max)), "largest latency"),
            ShortP50 => metric!("short p50" Micros Median(|c, _| Some(kind_lat(c, 0)?.p50)), "spread: median latency of the short requests (GET /), apart from the long ones"),
            ShortP99 => metric!("short p99" Micros Median(|c, _| Some(kind_lat(c, 0)?.p99)), "spread: 99th percentile latency of the short requests (corrected): it rises when they queue behind long ones"),
            ShortP999 => metric!("short p99.9" Micros Median(|c, _| Some(kind_lat(c, 0)?.p99_9)), "spread: 99.9th percentile latency of the short requests"),
            LongP99 => metric!("long p99" Micros Median(|c, _| Some(kind_lat(c, 1)?.p99)), "spread: 99th percentile latency of the long requests (GET /slow)"),
            P99Uncorrected => metric!("p99 uncorrected" Micros Median(|c, _| Some(c.load.as_ref()?.latency_uncorrected_us.as_ref()?.p99)), "open loop: 99th percentile from the actual send, as a closed-loop tool would report it"),
            P99ClientLag => metric!("p99 client lag" Micros Median(|c, _| Some(c.load.as_ref()?.client_lag_us.as_ref()?.p99)), "open loop: 99th percentile of the load generator's own lateness in sending (included in p99; see docs/load.md)"),
            Offered => metric!("offered/s" PerSecond Median(|c, _| c.config.rate), "open loop: the rate offered (a share of the server's own seed req/s)"),
            NotSent => metric!("not sent" Count Total(|c| Some(c.load.as_ref()?.scheduled_not_sent)), "open loop: scheduled requests never sent because every connection had a request in flight, over all runs"),
            ServerCpu => metric!("server CPU/req" Micros Median(|c, _| usage(c)?.cpu_us_per_request), "server utime+stime in the window (every thread) per response"),
            BaselineCpu => metric!("CPU/req ÷ baseline" Times Median(|c, k| k.baseline.as_ref()?.ratio(c, usage(c)?.cpu_us_per_request?)), "server CPU/req over the baseline's (--baseline) in the same run of the same point; median (min–max) of those per-run ratios"),
            ClientCpu => metric!("client CPU/req" Micros Median(|c, _| c.client_cpu_us_per_request()), "the bench's own CPU time (the load generator) per response"),
            Rss => metric!("RSS" Kib Median(|c, _| Some(usage(c)?.loaded.rss_kib as f64)), "server resident memory at the end of the window"),
            Threads => metric!("threads" Count Median(|c, _| Some(usage(c)?.loaded.threads as f64)), "server threads at the end of the window"),
            Fds => metric!("fds" Count Median(|c, _| Some(usage(c)?.loaded.fds as f64)), "server open file descriptors at the end of the window"),
            Starved => metric!("starved" Count Median(|c, _| Some(c.load.as_ref()?.fairness.starved as f64)), "connections that completed no request in the window"),
            Jain => metric!("Jain" Ratio Median(|c, _| c.load.as_ref()?.fairness.jain), "Jain's fairness index over the connections' completed requests: 1 = all equal, 1/n = one got everything"),
            Errors => metric!("errors" Count Kinds(error_kinds), "errors over all runs by kind: connect, read, write, timeout, parse, aborted, and status codes outside 2xx/3xx"),
            Unanswered => metric!("unanswered" Count Total(|c| Some(c.load.as_ref()?.errors.unanswered)), "requests still in flight at the end of the window, over all runs (up to connections × pipeline is the normal tail)"),
            ConnPerSec => metric!("conn/s" PerSecond Median(conn_per_sec), "churn: connections completed per second (one request each)"),
            VsSeed => metric!("of seed req/s" Share Median(|c, k| Some(c.rps()? / k.seed_rps.get(&c.server)?)), "slow: req/s as a share of the same server's seed req/s"),
            SlowHeld => metric!("slow held" Seconds Median(|c, _| Some(c.slow.as_ref()?.held_median_s)), "slow: median time a slowloris connection was kept open (those still open count their time so far)"),
            SlowClosed => metric!("slow closed" Count Total(|c| Some(c.slow.as_ref()?.closed_by_server)), "slow: slowloris connections the server closed before the end, over all runs"),
            IdleAnswered => metric!("answered" Count Median(|c, _| Some(c.idle.as_ref()?.answered as f64)), "idle: connections whose request was answered with 2xx"),
            IdleRss => metric!("RSS/conn" Bytes Median(|c, _| idle_per_connection(c, |s| s.rss_kib as f64 * 1024.0)), "idle: growth of the server's RSS over the empty server, per connection"),
            IdleThreads => metric!("threads/conn" Ratio Median(|c, _| idle_per_connection(c, |s| s.threads as f64)), "idle: growth of the server's thread count per connection"),
            IdleFds => metric!("fds/conn" Ratio Median(|c, _| idle_per_connection(c, |s| s.fds as f64)), "idle: growth of the server's open descriptors per connection"),
            IdleProblems => metric!("not answered" Count Kinds(idle_problems), "idle: connections that failed, or were answered with another status (by code), over all runs"),
            NoiseSent => metric!("malformed" Count Total(|c| Some(c.noise.as_ref()?.sent())), "noise: malformed requests sent, over all runs"),
            NoiseRejected => metric!("4xx + closed" Count Total(|c| Some(c.noise.as_ref()?.rejected_and_closed())), "noise: malformed requests answered with a 4xx and then a closed connection"),
            NoiseBad => metric!("mistreated" Count Kinds(noise_bad), "noise: malformed requests left open after the 4xx, answered outside 4xx, or not answered"),
            Capacity => metric!("req/s at p99 ≤ target" PerSecond Median(|c, _| c.capacity.as_ref()?.found.capacity), "capacity: the highest rate offered (open loop, corrected) whose probe kept p99 at or under the target with at least 99% answered; empty when even the lowest probe (1/16 of the peak) did not"),
            CapacityTarget => metric!("p99 target" Micros Median(|c, _| Some(c.capacity.as_ref()?.target_us)), "capacity: the p99 target (1 ms for the seed's handler, 10× the mean service time for the others, 2× the rare duration of a bimodal one; twice the floor's p99 where the floor is above that)"),
            CapacityCeiling => metric!("peak req/s" PerSecond Median(|c, _| Some(c.capacity.as_ref()?.ceiling)), "capacity: the highest rate probed, the model's closed-loop req/s under that handler (seed or work)"),
            CapacityFailed => metric!("failed at" PerSecond Median(|c, _| c.capacity.as_ref()?.found.failed), "capacity: the lowest rate whose probe did not hold: the capacity lies between the two"),
            Probes => metric!("probes" Count Total(|c| Some(c.capacity.as_ref()?.found.probes.len() as u64)), "capacity: probes run (each a warm-up and a short window; every probe is in results.json)"),
            BytesPerSec => metric!("bytes/s" Bytes Median(|c, _| Some(c.load.as_ref()?.bytes_per_sec)), "body: response bytes read per second (headers included)"),
            CpuPerKib => metric!("server CPU/KiB" Micros Median(cpu_per_kib), "body: server utime+stime in the window per KiB of response read"),
        }
    }

    /// Its header (for `--baseline`, before the baseline's name is put in).
    pub fn name(self) -> &'static str {
        self.metric().name
    }
}

/// A target names its column by the column's header.
impl serde::Serialize for Column {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The columns of a scenario's table.
pub fn columns(scenario: ScenarioId) -> Vec<Column> {
    use Column::*;
    match scenario {
        ScenarioId::Seed => vec![
            Rps, Mean, Stdev, P50, P90, P99, P999, Max, ServerCpu, ClientCpu, Rss, Threads, Fds,
            Starved, Jain, Errors, Unanswered,
        ],
        ScenarioId::Connections => vec![
            Rps, P99, ServerCpu, Threads, Rss, Starved, Jain, Errors, Unanswered,
        ],
        ScenarioId::Pipeline => vec![
            Rps, P50, P99, ServerCpu, ClientCpu, Starved, Errors, Unanswered,
        ],
        ScenarioId::Latency => vec![
            Offered,
            Rps,
            P50,
            P99,
            P999,
            Max,
            P99Uncorrected,
            P99ClientLag,
            NotSent,
            Errors,
            Unanswered,
        ],
        ScenarioId::Idle => vec![
            IdleAnswered,
            IdleRss,
            IdleThreads,
            IdleFds,
            Rss,
            Threads,
            IdleProblems,
        ],
        ScenarioId::Churn => vec![ConnPerSec, P50, P99, ServerCpu, Errors],
        ScenarioId::Slow => vec![Rps, VsSeed, P99, Starved, Errors, SlowHeld, SlowClosed],
        ScenarioId::Noise => vec![
            Rps,
            P99,
            Starved,
            NoiseSent,
            NoiseRejected,
            NoiseBad,
            Errors,
        ],
        ScenarioId::Work => vec![
            Rps, Mean, P99, ServerCpu, Threads, Starved, Errors, Unanswered,
        ],
        ScenarioId::Floor => vec![
            Offered,
            Rps,
            P50,
            P99,
            P999,
            Max,
            P99ClientLag,
            NotSent,
            Errors,
        ],
        ScenarioId::Capacity => vec![
            Capacity,
            CapacityTarget,
            CapacityCeiling,
            CapacityFailed,
            Probes,
            P50,
            P99,
        ],
        ScenarioId::Spread => vec![
            Offered, Rps, ShortP50, ShortP99, ShortP999, LongP99, P99, NotSent, Errors, Unanswered,
        ],
        ScenarioId::Body => vec![Rps, BytesPerSec, CpuPerKib, ServerCpu, P99, Errors],
        ScenarioId::Cores => vec![Rps, ServerCpu, P99, Threads, Starved, Errors],
    }
}

/// The columns of a scenario's table when a baseline is set: [`columns`]
/// with [`Column::BaselineCpu`] after the server CPU column.
pub fn columns_with_baseline(scenario: ScenarioId) -> Vec<Column> {
    let with = |c| match c {
        Column::ServerCpu => vec![c, Column::BaselineCpu],
        _ => vec![c],
    };
    columns(scenario).into_iter().flat_map(with).collect()
}

/// One table entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Median of the runs, with min and max.
    Number(Spread, Unit),
    /// Total over the runs.
    Total(u64),
    /// Non-zero totals by kind (empty: none).
    Kinds(Vec<(String, u64)>),
    /// Not measured in any run.
    Missing,
}

/// One row: one point against one server.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Server name.
    pub server: String,
    /// Point label.
    pub point: String,
    /// One value per column.
    pub values: Vec<Value>,
    /// Runs that were measured.
    pub measured_runs: usize,
    /// What went wrong: failed or skipped runs, unclean shutdowns.
    pub problems: Vec<String>,
}

/// A scenario's table.
#[derive(Clone, Debug)]
pub struct Section {
    /// The scenario (its title and question are the report's heading).
    pub name: ScenarioId,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, point by point, server by server.
    pub rows: Vec<Row>,
}

pub(crate) fn row(group: &[&CellResult], columns: &[Column], lookup: &Lookup) -> Option<Row> {
    let first = group.first()?;
    let measured: Vec<&CellResult> = group.iter().copied().filter(|c| c.measured()).collect();
    let value = |c: &Column| match c.metric().read {
        _ if measured.is_empty() => Value::Missing,
        Read::Median(f) => {
            let v: Vec<f64> = measured.iter().filter_map(|c| f(c, lookup)).collect();
            Spread::of(&v).map_or(Value::Missing, |s| Value::Number(s, c.metric().unit))
        }
        Read::Total(f) => {
            let total = measured.iter().filter_map(|c| f(c)).reduce(|a, b| a + b);
            total.map_or(Value::Missing, Value::Total)
        }
        Read::Kinds(f) => {
            let mut totals: BTreeMap<String, u64> = BTreeMap::new();
            for c in &measured {
                for (kind, n) in f(c) {
                    *totals.entry(kind).or_default() += n;
                }
            }
            Value::Kinds(totals.into_iter().filter(|(_, n)| *n > 0).collect())
        }
    };
    let values = columns.iter().map(value).collect();
    Some(Row {
        server: first.server.clone(),
        point: first.point.clone(),
        values,
        measured_runs: measured.len(),
        problems: problems(group),
    })
}

/// What went wrong in a group of runs, each reason once with its count.
pub(crate) fn problems(group: &[&CellResult]) -> Vec<String> {
    let mut reasons: Vec<(String, usize)> = Vec::new();
    let mut add = |text: String| match reasons.iter_mut().find(|(r, _)| *r == text) {
        Some((_, n)) => *n += 1,
        None => reasons.push((text, 1)),
    };
    for c in group {
        match &c.outcome {
            Outcome::Measured => {}
            Outcome::Failed { reason } => add(format!("failed: {reason}")),
            Outcome::Skipped { reason } => add(format!("not run: {reason}")),
            Outcome::Interrupted => add("interrupted (Ctrl-C)".to_string()),
        }
        if let Some(ShutdownRecord {
            clean: false,
            note: Some(note),
            ..
        }) = &c.shutdown
        {
            add(format!("unclean shutdown: {note}"));
        }
    }
    let runs = group.len();
    reasons
        .into_iter()
        .map(|(text, n)| {
            if runs > 1 {
                format!("{text} ({n} of {runs} runs)")
            } else {
                text
            }
        })
        .collect()
}
