//! The results model and everything computed from it.
//!
//! [`BenchResults`] is what `results.json` holds: every raw cell with its
//! configuration, timestamps, measurements and latency histogram. From it,
//! [`Analysis::of`] computes what the report shows: the medians (with min and
//! max) per table, the seed's summary table, the seed's claims with a verdict
//! decided from the numbers, the "which model when" sentences, and the data
//! of every chart. Nothing here formats a file; nothing in the exporters
//! decides anything.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::LoadSummary;

use super::clients::{IdleOutcome, NoiseOutcome, SlowOutcome};
use super::format;
use super::machine::{Build, Machine};
use super::scenarios::{self, Drive, PlannedCell, Profile};

/// Version of the `results.json` layout.
pub const SCHEMA: u32 = 1;

/// Everything a bench measured: the content of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    /// [`SCHEMA`].
    pub schema: u32,
    /// False when the bench was interrupted before its last cell.
    pub complete: bool,
    /// When the bench started (UTC, RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// What ran it.
    pub build: Build,
    /// How it ran.
    pub settings: Settings,
    /// The servers, in table order.
    pub servers: Vec<ServerInfo>,
    /// Every cell, in the order run.
    pub cells: Vec<CellResult>,
}

/// How a bench ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The timing profile.
    pub profile: Profile,
    /// Scenarios run, in order.
    pub scenarios: Vec<String>,
    /// Whether server and load ran on separate CPUs.
    pub pinned: bool,
    /// CPUs of the servers (empty when unpinned).
    pub server_cpus: Vec<usize>,
    /// CPUs of the load (empty when unpinned).
    pub client_cpus: Vec<usize>,
    /// Load-generator threads per run.
    pub load_threads: usize,
    /// The time the plan expected, seconds.
    pub planned_s: f64,
    /// The time it took, seconds.
    pub elapsed_s: f64,
    /// Anything the reader should know about how it ran (pinning,
    /// scenarios added, overrides).
    pub notes: Vec<String>,
}

/// One server of the bench.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Name in tables.
    pub name: String,
    /// `model` (servelab serve --model) or `external` (--server).
    pub kind: String,
    /// What it is: a model's one-line description, or the command.
    pub description: String,
    /// Code lines of the model's own source file (non-blank, non-comment):
    /// the complexity column. `None` for an external server or when the
    /// source is not at hand.
    pub source_lines: Option<u64>,
    /// That file, relative to the repository.
    pub source_file: Option<String>,
}

/// How a cell ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Ran and measured.
    Measured,
    /// Could not run or did not finish properly; the reason says why.
    Failed {
        /// Why.
        reason: String,
    },
    /// Not run: it cannot apply (an option an external server lacks, an
    /// open-files limit too low).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Cut short by Ctrl-C; not used in tables.
    Interrupted,
}

/// What a cell was asked to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellConfig {
    /// The load.
    pub drive: Drive,
    /// The server's `--work`.
    pub work: Option<String>,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Recorded window, seconds.
    pub duration_s: f64,
    /// Open loop: the rate offered, requests/s.
    pub rate: Option<f64>,
    /// The server's command line.
    pub server_command: Vec<String>,
}

/// The /proc figures of a server (all its processes added up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// utime+stime since the server started, seconds.
    pub cpu_s: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Processes (1 for a servelab model).
    pub processes: u64,
}

/// What a cell cost the server.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// Right after it was ready, before any load.
    pub empty: ProcSample,
    /// At the end of the recorded window, load still applied (idle: with
    /// the idle connections open).
    pub loaded: ProcSample,
    /// utime+stime within the recorded window, seconds.
    pub cpu_s: f64,
    /// `cpu_s` per response, microseconds.
    pub cpu_us_per_request: Option<f64>,
}

impl ServerUsage {
    /// The usage from the two samples and the window's CPU time.
    pub fn new(empty: ProcSample, cpu_s: f64, loaded: ProcSample, responses: u64) -> ServerUsage {
        ServerUsage {
            empty,
            loaded,
            cpu_s,
            cpu_us_per_request: (responses > 0).then(|| cpu_s * 1e6 / responses as f64),
        }
    }
}

/// How the server's stop went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShutdownRecord {
    /// Exited with status 0 within the shutdown timeout after SIGTERM.
    pub clean: bool,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub waited_s: f64,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// One point of one scenario against one server, once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Scenario name.
    pub scenario: String,
    /// Point label.
    pub point: String,
    /// Point index within the scenario.
    pub point_index: usize,
    /// Server name.
    pub server: String,
    /// Run number, from 1.
    pub run: u32,
    /// When it started (UTC).
    pub started_at: String,
    /// Seconds it took, server start to exit.
    pub elapsed_s: f64,
    /// What it was asked to do.
    pub config: CellConfig,
    /// How it ended.
    pub outcome: Outcome,
    /// The load generator's summary (the object `servelab load --json`
    /// prints).
    pub load: Option<LoadSummary>,
    /// The latency histogram (ns) behind `load.latency_us`: HdrHistogram V2
    /// serialization, DEFLATE-compressed, base64 (as in HdrHistogram logs).
    pub histogram: Option<String>,
    /// What it cost the server.
    pub server_usage: Option<ServerUsage>,
    /// CPU time of the bench process (the load) within the window, seconds.
    pub client_cpu_s: Option<f64>,
    /// Idle points: what the idle connections achieved.
    pub idle: Option<IdleOutcome>,
    /// Slow points: what the slowloris connections saw.
    pub slow: Option<SlowOutcome>,
    /// Noise points: how the malformed requests were treated.
    pub noise: Option<NoiseOutcome>,
    /// How the server stopped.
    pub shutdown: Option<ShutdownRecord>,
}

impl CellResult {
    /// A cell about to run: its configuration, nothing measured yet.
    pub fn planned(cell: &PlannedCell, server: &str, started_at: String) -> CellResult {
        let point = cell.point();
        CellResult {
            scenario: cell.scenario.name.to_string(),
            point: point.label.to_string(),
            point_index: cell.point,
            server: server.to_string(),
            run: cell.run,
            started_at,
            elapsed_s: 0.0,
            config: CellConfig {
                drive: point.drive,
                work: point.work.map(str::to_string),
                warmup_s: cell.warmup.as_secs_f64(),
                duration_s: cell.duration.as_secs_f64(),
                rate: None,
                server_command: Vec::new(),
            },
            outcome: Outcome::Measured,
            load: None,
            histogram: None,
            server_usage: None,
            client_cpu_s: None,
            idle: None,
            slow: None,
            noise: None,
            shutdown: None,
        }
    }

    /// Whether the cell's numbers count.
    pub fn measured(&self) -> bool {
        self.outcome == Outcome::Measured
    }

    /// Responses per second.
    pub fn rps(&self) -> Option<f64> {
        self.load.as_ref().map(|l| l.requests_per_sec)
    }

    /// Client CPU per response, microseconds.
    pub fn client_cpu_us_per_request(&self) -> Option<f64> {
        let responses = self.load.as_ref()?.responses;
        let cpu = self.client_cpu_s?;
        (responses > 0).then(|| cpu * 1e6 / responses as f64)
    }
}

/// Encodes a histogram as base64 of its compressed V2 serialization.
pub fn encode_histogram(h: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes what [`encode_histogram`] wrote.
pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

// ---------------------------------------------------------------------------
// Medians.

/// The median of several runs, with the smallest and the largest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Runs it comes from.
    pub runs: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if !n.is_multiple_of(2) {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }
}

// ---------------------------------------------------------------------------
// Table columns, as data.

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
    /// A share, shown as a percentage.
    Share,
    /// Seconds.
    Seconds,
}

/// How a column reads a cell.
#[derive(Clone, Copy)]
pub enum Read {
    /// A number per run; the table shows the median with min–max.
    Median(fn(&CellResult, &Lookup) -> Option<f64>),
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
}

fn lat(c: &CellResult) -> Option<&crate::load::LatencyUs> {
    c.load.as_ref()?.latency_us.as_ref()
}

fn usage(c: &CellResult) -> Option<&ServerUsage> {
    c.server_usage.as_ref()
}

fn idle_per_connection(c: &CellResult, field: fn(&ProcSample) -> f64) -> Option<f64> {
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

macro_rules! metric {
    ($name:expr, $unit:ident, $about:expr, median $f:expr) => {
        Metric {
            name: $name,
            unit: Unit::$unit,
            about: $about,
            read: Read::Median($f),
        }
    };
    ($name:expr, $unit:ident, $about:expr, total $f:expr) => {
        Metric {
            name: $name,
            unit: Unit::$unit,
            about: $about,
            read: Read::Total($f),
        }
    };
    ($name:expr, $about:expr, kinds $f:expr) => {
        Metric {
            name: $name,
            unit: Unit::Count,
            about: $about,
            read: Read::Kinds($f),
        }
    };
}

/// Responses per second.
pub const RPS: Metric = metric!(
    "req/s",
    PerSecond,
    "responses per second in the recorded window",
    median | c,
    _ | c.rps()
);
const MEAN: Metric = metric!(
    "mean",
    Micros,
    "mean latency",
    median | c,
    _ | Some(lat(c)?.mean)
);
const STDEV: Metric = metric!(
    "stdev",
    Micros,
    "standard deviation of the latency",
    median | c,
    _ | Some(lat(c)?.stdev)
);
const P50: Metric = metric!(
    "p50",
    Micros,
    "median latency",
    median | c,
    _ | Some(lat(c)?.p50)
);
const P90: Metric = metric!(
    "p90",
    Micros,
    "90th percentile latency",
    median | c,
    _ | Some(lat(c)?.p90)
);
const P99: Metric = metric!(
    "p99",
    Micros,
    "99th percentile latency (open loop: from the intended send time)",
    median | c,
    _ | Some(lat(c)?.p99)
);
const P999: Metric = metric!(
    "p99.9",
    Micros,
    "99.9th percentile latency",
    median | c,
    _ | Some(lat(c)?.p99_9)
);
const MAX: Metric = metric!(
    "max",
    Micros,
    "largest latency",
    median | c,
    _ | Some(lat(c)?.max)
);
const P99_UNCORRECTED: Metric = metric!(
    "p99 uncorrected",
    Micros,
    "open loop: 99th percentile from the actual send, as a closed-loop tool would report it",
    median | c,
    _ | Some(c.load.as_ref()?.latency_uncorrected_us.as_ref()?.p99)
);
const TARGET: Metric = metric!(
    "offered/s",
    PerSecond,
    "open loop: the rate offered (a share of the server's own seed req/s)",
    median | c,
    _ | c.config.rate
);
const NOT_SENT: Metric = metric!("not sent", Count, "open loop: scheduled requests never sent because every connection had a request in flight, over all runs", total |c| Some(c.load.as_ref()?.scheduled_not_sent));
const SERVER_CPU: Metric = metric!(
    "server CPU/req",
    Micros,
    "server utime+stime in the window (every thread) per response",
    median | c,
    _ | usage(c)?.cpu_us_per_request
);
const CLIENT_CPU: Metric = metric!(
    "client CPU/req",
    Micros,
    "the bench's own CPU time (the load generator) per response",
    median | c,
    _ | c.client_cpu_us_per_request()
);
const RSS: Metric = metric!(
    "RSS",
    Kib,
    "server resident memory at the end of the window",
    median | c,
    _ | Some(usage(c)?.loaded.rss_kib as f64)
);
const THREADS: Metric = metric!(
    "threads",
    Count,
    "server threads at the end of the window",
    median | c,
    _ | Some(usage(c)?.loaded.threads as f64)
);
const FDS: Metric = metric!(
    "fds",
    Count,
    "server open file descriptors at the end of the window",
    median | c,
    _ | Some(usage(c)?.loaded.fds as f64)
);
const STARVED: Metric = metric!(
    "starved",
    Count,
    "connections that completed no request in the window",
    median | c,
    _ | Some(c.load.as_ref()?.fairness.starved as f64)
);
const JAIN: Metric = metric!("Jain", Ratio, "Jain's fairness index over the connections' completed requests: 1 = all equal, 1/n = one got everything", median |c, _| c.load.as_ref()?.fairness.jain);
const ERRORS: Metric = metric!("errors", "errors over all runs by kind: connect, read, write, timeout, parse, aborted, and status codes outside 2xx/3xx", kinds error_kinds);
const UNANSWERED: Metric = metric!("unanswered", Count, "requests still in flight at the end of the window, over all runs (up to connections × pipeline is the normal tail)", total |c| Some(c.load.as_ref()?.errors.unanswered));
const CONNECTIONS_PER_SEC: Metric = metric!(
    "conn/s",
    PerSecond,
    "churn: connections completed per second (one request each)",
    median | c,
    _ | {
        let l = c.load.as_ref()?;
        Some(l.reconnects as f64 / l.duration_s)
    }
);
const VS_SEED: Metric = metric!(
    "of seed req/s",
    Share,
    "slow: req/s as a share of the same server's seed req/s",
    median | c,
    k | Some(c.rps()? / k.seed_rps.get(&c.server)?)
);
const SLOW_HELD: Metric = metric!("slow held", Seconds, "slow: median time a slowloris connection was kept open (those still open count their time so far)", median |c, _| Some(c.slow.as_ref()?.held_median_s));
const SLOW_CLOSED: Metric = metric!(
    "slow closed",
    Count,
    "slow: slowloris connections the server closed before the end, over all runs",
    total | c | Some(c.slow.as_ref()?.closed_by_server)
);
const IDLE_ANSWERED: Metric = metric!(
    "answered",
    Count,
    "idle: connections whose request was answered with 2xx",
    median | c,
    _ | Some(c.idle.as_ref()?.answered as f64)
);
const IDLE_RSS: Metric = metric!(
    "RSS/conn",
    Bytes,
    "idle: growth of the server's RSS over the empty server, per connection",
    median | c,
    _ | idle_per_connection(c, |s| s.rss_kib as f64 * 1024.0)
);
const IDLE_THREADS: Metric = metric!(
    "threads/conn",
    Ratio,
    "idle: growth of the server's thread count per connection",
    median | c,
    _ | idle_per_connection(c, |s| s.threads as f64)
);
const IDLE_FDS: Metric = metric!(
    "fds/conn",
    Ratio,
    "idle: growth of the server's open descriptors per connection",
    median | c,
    _ | idle_per_connection(c, |s| s.fds as f64)
);
const IDLE_PROBLEMS: Metric = metric!(
    "not answered",
    "idle: connections that failed, or were answered with another status (by code), over all runs",
    kinds | c | {
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
);
const NOISE_SENT: Metric = metric!(
    "malformed",
    Count,
    "noise: malformed requests sent, over all runs",
    total | c | Some(c.noise.as_ref()?.sent())
);
const NOISE_REJECTED: Metric = metric!(
    "4xx + closed",
    Count,
    "noise: malformed requests answered with a 4xx and then a closed connection",
    total | c | Some(c.noise.as_ref()?.rejected_and_closed())
);
const NOISE_BAD: Metric = metric!(
    "mistreated",
    "noise: malformed requests left open after the 4xx, answered outside 4xx, or not answered",
    kinds | c | {
        let Some(n) = &c.noise else { return Vec::new() };
        let sum =
            |f: fn(&super::clients::MalformedCount) -> u64| n.kinds.iter().map(f).sum::<u64>();
        vec![
            ("left open".to_string(), sum(|k| k.left_open)),
            ("not 4xx".to_string(), sum(|k| k.wrong_status)),
            ("no answer".to_string(), sum(|k| k.no_answer)),
        ]
    }
);

/// The columns of a scenario's table.
pub fn columns(scenario: &str) -> Vec<Metric> {
    match scenario {
        "seed" => vec![
            RPS, MEAN, STDEV, P50, P90, P99, P999, MAX, SERVER_CPU, CLIENT_CPU, RSS, THREADS, FDS,
            STARVED, JAIN, ERRORS, UNANSWERED,
        ],
        "connections" => vec![
            RPS, P99, SERVER_CPU, THREADS, RSS, STARVED, JAIN, ERRORS, UNANSWERED,
        ],
        "pipeline" => vec![
            RPS, P50, P99, SERVER_CPU, CLIENT_CPU, STARVED, ERRORS, UNANSWERED,
        ],
        "latency" => vec![
            TARGET,
            RPS,
            P50,
            P99,
            P999,
            MAX,
            P99_UNCORRECTED,
            NOT_SENT,
            ERRORS,
            UNANSWERED,
        ],
        "idle" => vec![
            IDLE_ANSWERED,
            IDLE_RSS,
            IDLE_THREADS,
            IDLE_FDS,
            RSS,
            THREADS,
            IDLE_PROBLEMS,
        ],
        "churn" => vec![CONNECTIONS_PER_SEC, P50, P99, SERVER_CPU, ERRORS],
        "slow" => vec![RPS, VS_SEED, P99, STARVED, ERRORS, SLOW_HELD, SLOW_CLOSED],
        "noise" => vec![
            RPS,
            P99,
            STARVED,
            NOISE_SENT,
            NOISE_REJECTED,
            NOISE_BAD,
            ERRORS,
        ],
        _ => vec![
            RPS, MEAN, P99, SERVER_CPU, THREADS, STARVED, ERRORS, UNANSWERED,
        ],
    }
}

/// Every column any table can have, for the README's guide.
pub fn all_metrics() -> Vec<Metric> {
    let mut all: Vec<Metric> = Vec::new();
    for s in scenarios::SCENARIOS {
        for m in columns(s.name) {
            if !all.iter().any(|a| a.name == m.name) {
                all.push(m);
            }
        }
    }
    all
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
    /// Runs that were measured, of those planned.
    pub measured_runs: usize,
    /// Runs there were.
    pub runs: usize,
    /// What went wrong: failed or skipped runs, unclean shutdowns.
    pub problems: Vec<String>,
}

/// A scenario's table.
#[derive(Clone, Debug)]
pub struct Section {
    /// Scenario name.
    pub name: String,
    /// Heading.
    pub title: String,
    /// What it shows.
    pub question: String,
    /// Column headers.
    pub columns: Vec<(&'static str, Unit)>,
    /// Rows, point by point, server by server.
    pub rows: Vec<Row>,
}

fn group<'a>(
    cells: &'a [CellResult],
    scenario: &str,
    point: usize,
    server: &str,
) -> Vec<&'a CellResult> {
    cells
        .iter()
        .filter(|c| c.scenario == scenario && c.point_index == point && c.server == server)
        .collect()
}

fn row(group: &[&CellResult], metrics: &[Metric], lookup: &Lookup) -> Option<Row> {
    let first = group.first()?;
    let measured: Vec<&CellResult> = group.iter().copied().filter(|c| c.measured()).collect();
    let values = metrics
        .iter()
        .map(|m| {
            if measured.is_empty() {
                return Value::Missing;
            }
            match m.read {
                Read::Median(f) => {
                    let v: Vec<f64> = measured.iter().filter_map(|c| f(c, lookup)).collect();
                    Spread::of(&v).map_or(Value::Missing, |s| Value::Number(s, m.unit))
                }
                Read::Total(f) => {
                    let v: Vec<u64> = measured.iter().filter_map(|c| f(c)).collect();
                    if v.is_empty() {
                        Value::Missing
                    } else {
                        Value::Total(v.iter().sum())
                    }
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
            }
        })
        .collect();
    Some(Row {
        server: first.server.clone(),
        point: first.point.clone(),
        values,
        measured_runs: measured.len(),
        runs: group.len(),
        problems: problems(group),
    })
}

/// What went wrong in a group of runs, each reason once with its count.
fn problems(group: &[&CellResult]) -> Vec<String> {
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

// ---------------------------------------------------------------------------
// The analysis.

/// The seed's summary table, one row per server, measured.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// Server name.
    pub server: String,
    /// What it is.
    pub description: String,
    /// `seed` req/s.
    pub rps: Option<Spread>,
    /// `seed` mean latency, µs.
    pub mean_us: Option<Spread>,
    /// `seed` p99, µs.
    pub p99_us: Option<Spread>,
    /// RSS growth per idle connection (bytes) at the largest idle point
    /// measured, and that point's label.
    pub idle_bytes: Option<(Spread, String)>,
    /// Server threads under the `seed` load.
    pub threads: Option<Spread>,
    /// Server CPU per request under the `seed` load, µs.
    pub cpu_us: Option<Spread>,
    /// Connections served in `seed`, and the connections there were.
    pub served: Option<(Spread, u64)>,
    /// Code lines of its source file.
    pub source_lines: Option<u64>,
    /// Why numbers are missing, if they are.
    pub problems: Vec<String>,
}

/// Whether a claim holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The numbers agree with the claim.
    Holds,
    /// They do not.
    DoesNotHold,
    /// What it needs was not measured.
    NotMeasured,
}

/// One of the seed's quantitative claims, checked.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The seed's words.
    pub claim: &'static str,
    /// The seed's own figure.
    pub seed_figure: String,
    /// What was measured here.
    pub measured: String,
    /// The rule the verdict follows.
    pub rule: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// A chart's data.
#[derive(Clone, Debug)]
pub enum ChartData {
    /// Grouped bars: one group per category (server), one bar per series,
    /// with min–max whiskers.
    Bars {
        /// Category labels.
        categories: Vec<String>,
        /// Series: label and one value per category.
        series: Vec<(String, Vec<Option<Spread>>)>,
    },
    /// Lines: one per series (server), through (x, y) points.
    Lines {
        /// X axis label.
        x_label: String,
        /// Logarithmic x axis.
        log_x: bool,
        /// Series: label and points.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
}

/// A chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name (`.svg`).
    pub file: String,
    /// Title.
    pub title: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The scenario it belongs to.
    pub scenario: String,
    /// The data.
    pub data: ChartData,
}

/// Everything the report shows, computed from [`BenchResults`].
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The seed's summary table.
    pub summary: Vec<SummaryRow>,
    /// The seed's claims, checked.
    pub claims: Vec<Claim>,
    /// "Which model when".
    pub guidance: Vec<String>,
    /// One section per scenario run.
    pub sections: Vec<Section>,
    /// The charts.
    pub charts: Vec<Chart>,
    /// Every failed, skipped or interrupted cell and unclean shutdown.
    pub problems: Vec<String>,
}

/// How far a measured ratio may be from the seed's and still "hold".
pub const RATIO_TOLERANCE: f64 = 0.25;
/// Throughputs within this share of each other are "similar".
pub const SIMILAR_THROUGHPUT: f64 = 0.20;
/// A server whose req/s with slow clients falls below this share of its
/// seed req/s was stalled by them.
pub const STALLED_SHARE: f64 = 0.5;
/// Results within this share of the best are a tie.
pub const TIE: f64 = 0.05;

const V1: &str = "sequential";
const V2: &str = "threaded";
const V3: &str = "pool";

impl Analysis {
    /// Computes the analysis of `r`.
    pub fn of(r: &BenchResults) -> Analysis {
        let servers: Vec<&str> = r.servers.iter().map(|s| s.name.as_str()).collect();
        let mut lookup = Lookup::default();
        for s in &servers {
            if let Some(v) = median_of(r, "seed", 0, s, |c| c.rps()) {
                lookup.seed_rps.insert((*s).to_string(), v.median);
            }
        }
        let a = Ask { r, lookup };
        let sections = a.sections(&servers);
        let summary = a.summary();
        let claims = a.claims();
        let guidance = a.guidance(&servers);
        let charts = a.charts(&servers);
        let problems = r
            .cells
            .iter()
            .flat_map(|c| {
                problems(&[c]).into_iter().map(move |p| {
                    format!(
                        "{} / {} / {} / run {}: {p}",
                        c.scenario, c.point, c.server, c.run
                    )
                })
            })
            .collect();
        Analysis {
            summary,
            claims,
            guidance,
            sections,
            charts,
            problems,
        }
    }
}

/// The median over the measured runs of one point of one server.
fn median_of(
    r: &BenchResults,
    scenario: &str,
    point: usize,
    server: &str,
    f: impl Fn(&CellResult) -> Option<f64>,
) -> Option<Spread> {
    let v: Vec<f64> = group(&r.cells, scenario, point, server)
        .into_iter()
        .filter(|c| c.measured())
        .filter_map(f)
        .collect();
    Spread::of(&v)
}

/// Questions asked of the results.
struct Ask<'a> {
    r: &'a BenchResults,
    lookup: Lookup,
}

impl Ask<'_> {
    fn median(
        &self,
        scenario: &str,
        point: usize,
        server: &str,
        f: impl Fn(&CellResult) -> Option<f64>,
    ) -> Option<f64> {
        median_of(self.r, scenario, point, server, f).map(|s| s.median)
    }

    fn point_index(&self, scenario: &str, label: &str) -> Option<usize> {
        scenarios::find(scenario)?
            .points
            .iter()
            .position(|p| p.label == label)
    }

    fn has_scenario(&self, scenario: &str) -> bool {
        self.r.cells.iter().any(|c| c.scenario == scenario)
    }

    fn sections(&self, servers: &[&str]) -> Vec<Section> {
        let mut out = Vec::new();
        for s in scenarios::SCENARIOS {
            if !self.has_scenario(s.name) {
                continue;
            }
            let metrics = columns(s.name);
            let mut rows = Vec::new();
            for point in 0..s.points.len() {
                for server in servers {
                    if let Some(row) = row(
                        &group(&self.r.cells, s.name, point, server),
                        &metrics,
                        &self.lookup,
                    ) {
                        rows.push(row);
                    }
                }
            }
            out.push(Section {
                name: s.name.to_string(),
                title: s.title.to_string(),
                question: s.question.to_string(),
                columns: metrics.iter().map(|m| (m.name, m.unit)).collect(),
                rows,
            });
        }
        out
    }

    fn summary(&self) -> Vec<SummaryRow> {
        let idle_points = scenarios::find("idle").map_or(0, |s| s.points.len());
        self.r
            .servers
            .iter()
            .map(|info| {
                let s = info.name.as_str();
                let seed = |f: fn(&CellResult) -> Option<f64>| median_of(self.r, "seed", 0, s, f);
                let idle_bytes = (0..idle_points).rev().find_map(|p| {
                    let spread = median_of(self.r, "idle", p, s, |c| {
                        idle_per_connection(c, |x| x.rss_kib as f64 * 1024.0)
                    })?;
                    let label = scenarios::find("idle")?.points[p].label.to_string();
                    Some((spread, label))
                });
                let seed_cells = group(&self.r.cells, "seed", 0, s);
                let connections = seed_cells
                    .iter()
                    .find_map(|c| c.load.as_ref().map(|l| l.fairness.connections))
                    .unwrap_or(0);
                SummaryRow {
                    server: info.name.clone(),
                    description: info.description.clone(),
                    rps: seed(|c| c.rps()),
                    mean_us: seed(|c| Some(lat(c)?.mean)),
                    p99_us: seed(|c| Some(lat(c)?.p99)),
                    idle_bytes,
                    threads: seed(|c| Some(usage(c)?.loaded.threads as f64)),
                    cpu_us: seed(|c| usage(c)?.cpu_us_per_request),
                    served: seed(|c| Some(c.load.as_ref()?.fairness.served as f64))
                        .map(|v| (v, connections)),
                    source_lines: info.source_lines,
                    problems: problems(&seed_cells),
                }
            })
            .collect()
    }

    fn claims(&self) -> Vec<Claim> {
        let rps = |s: &str| self.lookup.seed_rps.get(s).copied();
        let mean = |s: &str| self.median("seed", 0, s, |c| Some(lat(c)?.mean));
        let within =
            |measured: f64, claimed: f64| (measured / claimed - 1.0).abs() <= RATIO_TOLERANCE;
        let tol = format::percent(RATIO_TOLERANCE);
        let mut claims = Vec::new();

        // 1. v2 about 4.7x v1's throughput.
        let (measured, verdict) = match (rps(V2), rps(V1)) {
            (Some(v2), Some(v1)) if v1 > 0.0 => {
                let ratio = v2 / v1;
                (
                    format!(
                        "{} ({} / {} req/s)",
                        format::times(ratio),
                        format::rate(v2),
                        format::rate(v1)
                    ),
                    judge(within(ratio, 4.7)),
                )
            }
            _ => not_measured(&["seed: threaded and sequential"]),
        };
        claims.push(Claim {
            claim: "v2 (thread per connection) has about 4.7× v1's throughput",
            seed_figure: "254k vs 54k req/s = 4.7×".to_string(),
            measured,
            rule: format!("holds when threaded/sequential seed req/s is within {tol} of 4.7"),
            verdict,
        });

        // 2. v3 about 5x lower mean latency than v2 at similar throughput.
        let (measured, verdict) = match (mean(V2), mean(V3), rps(V2), rps(V3)) {
            (Some(m2), Some(m3), Some(r2), Some(r3)) if m3 > 0.0 && r2 > 0.0 => {
                let ratio = m2 / m3;
                let similar = (r3 / r2 - 1.0).abs() <= SIMILAR_THROUGHPUT;
                (
                    format!(
                        "mean {} (v2) / {} (v3) = {}; throughput v3/v2 = {}",
                        format::micros(m2),
                        format::micros(m3),
                        format::times(ratio),
                        format::times(r3 / r2)
                    ),
                    judge(within(ratio, 5.0) && similar),
                )
            }
            _ => not_measured(&["seed: threaded and pool"]),
        };
        claims.push(Claim {
            claim: "v3 (pool) has about 5× lower average latency than v2 at similar throughput",
            seed_figure: "207 µs vs 38.9 µs at 254k vs 248k req/s".to_string(),
            measured,
            rule: format!(
                "holds when threaded/pool mean latency is within {tol} of 5 and their seed req/s within {}",
                format::percent(SIMILAR_THROUGHPUT)
            ),
            verdict,
        });

        // 3. v3's thread count fixed, v2's grows with connections.
        let sweep = scenarios::find("connections").map(|s| s.points);
        let threads = |server: &str| -> Vec<(f64, f64)> {
            let Some(points) = sweep else {
                return Vec::new();
            };
            points
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let t = self.median("connections", i, server, |c| {
                        Some(usage(c)?.loaded.threads as f64)
                    })?;
                    Some((p.drive.connections() as f64, t))
                })
                .collect()
        };
        let (t2, t3) = (threads(V2), threads(V3));
        let (measured, verdict) = if t2.len() >= 2 && t3.len() >= 2 {
            let (lo2, hi2) = (t2[0], t2[t2.len() - 1]);
            let min3 = t3.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let max3 = t3.iter().map(|p| p.1).fold(0.0, f64::max);
            let fixed = max3 - min3 <= 2.0;
            let grows = hi2.1 - lo2.1 >= (hi2.0 - lo2.0) * 0.5;
            (
                format!(
                    "pool: {}–{} threads from {} to {} connections; threaded: {} → {}",
                    min3,
                    max3,
                    format::count(t3[0].0 as u64),
                    format::count(t3[t3.len() - 1].0 as u64),
                    lo2.1,
                    hi2.1
                ),
                judge(fixed && grows),
            )
        } else {
            not_measured(&["connections: threaded and pool"])
        };
        claims.push(Claim {
            claim: "v3's thread count is fixed while v2's grows with connections",
            seed_figure: "fixed pool vs a thread per connection".to_string(),
            measured,
            rule: "holds when pool's thread count varies by at most 2 across the connection sweep and threaded's grows by at least half the added connections".to_string(),
            verdict,
        });

        // 4. v1 is stalled by one slow client.
        let slow = self.median("slow", 0, V1, |c| c.rps());
        let (measured, verdict) = match (slow, rps(V1)) {
            (Some(with), Some(without)) if without > 0.0 => {
                let share = with / without;
                (
                    format!(
                        "{} req/s with slow clients vs {} without: {} of its throughput",
                        format::rate(with),
                        format::rate(without),
                        format::percent(share)
                    ),
                    judge(share < STALLED_SHARE),
                )
            }
            _ => not_measured(&["seed and slow: sequential"]),
        };
        claims.push(Claim {
            claim: "v1: a slow client can stall all others",
            seed_figure: "stated, not measured".to_string(),
            measured,
            rule: format!(
                "holds when sequential's req/s with slowloris clients is below {} of its seed req/s",
                format::percent(STALLED_SHARE)
            ),
            verdict,
        });

        // 5. v3 for latency-sensitive services.
        let p75 = self.point_index("latency", "75%");
        let p99 = |s: &str| p75.and_then(|p| self.median("latency", p, s, |c| Some(lat(c)?.p99)));
        let (measured, verdict) = match (p99(V2), p99(V3)) {
            (Some(a), Some(b)) => (
                format!(
                    "p99 at 75% of own peak: {} (v2), {} (v3)",
                    format::micros(a),
                    format::micros(b)
                ),
                judge(b < a),
            ),
            _ => not_measured(&["latency: threaded and pool"]),
        };
        claims.push(Claim {
            claim: "if low latency is required, consider v3 rather than v2",
            seed_figure: "38.9 µs vs 207 µs average".to_string(),
            measured,
            rule: "holds when pool's corrected p99 at 75% of its own seed throughput is below threaded's".to_string(),
            verdict,
        });
        claims
    }

    fn guidance(&self, servers: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let pick = |values: Vec<(&str, f64)>, lowest: bool| -> Option<Vec<(String, f64)>> {
            let mut v: Vec<(String, f64)> = values
                .into_iter()
                .map(|(s, x)| (s.to_string(), x))
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(|a, b| {
                if lowest {
                    a.1.total_cmp(&b.1)
                } else {
                    b.1.total_cmp(&a.1)
                }
            });
            Some(v)
        };
        let each = |f: &dyn Fn(&str) -> Option<f64>| -> Vec<(&str, f64)> {
            servers.iter().filter_map(|s| Some((*s, f(s)?))).collect()
        };
        let tie = |v: &[(String, f64)], lowest: bool| -> Vec<String> {
            let best = v[0].1;
            v.iter()
                .take_while(|(_, x)| {
                    if lowest {
                        *x <= best * (1.0 + TIE)
                    } else {
                        *x >= best * (1.0 - TIE)
                    }
                })
                .map(|(s, _)| s.clone())
                .collect()
        };
        let lead = |v: &[(String, f64)], lowest: bool, fmt: fn(f64) -> String| -> String {
            let top = tie(v, lowest);
            let runner_up = v.get(top.len());
            let mut text = if top.len() > 1 {
                format!(
                    "{} (within {} of each other: {})",
                    names(&top),
                    format::percent(TIE),
                    v.iter()
                        .take(top.len())
                        .map(|(_, x)| fmt(*x))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!("**{}** ({})", v[0].0, fmt(v[0].1))
            };
            if let Some((s, x)) = runner_up {
                text.push_str(&format!("; next {s} ({})", fmt(*x)));
            }
            text
        };

        if let Some(v) = pick(each(&|s| self.lookup.seed_rps.get(s).copied()), false) {
            out.push(format!(
                "Most requests per second under the seed's load (100 keep-alive connections): {}.",
                lead(&v, false, |x| format!("{} req/s", format::rate(x)))
            ));
        }
        if let Some(p) = self.point_index("latency", "75%") {
            if let Some(v) = pick(
                each(&|s| self.median("latency", p, s, |c| Some(lat(c)?.p99))),
                true,
            ) {
                out.push(format!(
                    "Lowest tail latency at a steady 75% of each one's own peak (corrected p99): {}.",
                    lead(&v, true, format::micros)
                ));
            }
        }
        if let Some(v) = pick(
            each(&|s| self.median("seed", 0, s, |c| usage(c)?.cpu_us_per_request)),
            true,
        ) {
            out.push(format!(
                "Cheapest per request in server CPU under the seed's load: {}.",
                lead(&v, true, |x| format!("{} per request", format::micros(x)))
            ));
        }
        let starved: Vec<String> = servers
            .iter()
            .filter_map(|s| {
                let n = self.median("seed", 0, s, |c| {
                    Some(c.load.as_ref()?.fairness.starved as f64)
                })?;
                (n > 0.0).then(|| {
                    format!(
                        "{s} left {} of 100 connections without a single response",
                        n
                    )
                })
            })
            .collect();
        if self.has_scenario("seed") {
            out.push(if starved.is_empty() {
                "Every server served all 100 connections of the seed's load.".to_string()
            } else {
                format!("Starved connections under the seed's load: {}; its req/s comes from the connections it did serve.", starved.join("; "))
            });
        }
        if let Some(idle) = scenarios::find("idle") {
            let p = idle.points.len() - 1;
            let label = idle.points[p].label;
            let answered_all = |s: &str| {
                self.median("idle", p, s, |c| {
                    let i = c.idle.as_ref()?;
                    Some(i.answered as f64 / i.connections.max(1) as f64)
                })
            };
            let full: Vec<(&str, f64)> = servers
                .iter()
                .filter(|s| answered_all(s).is_some_and(|a| a >= 0.99))
                .filter_map(|s| {
                    Some((
                        *s,
                        self.median("idle", p, s, |c| {
                            idle_per_connection(c, |x| x.rss_kib as f64 * 1024.0)
                        })?,
                    ))
                })
                .collect();
            if let Some(v) = pick(full, true) {
                out.push(format!(
                    "Cheapest idle keep-alive connection ({label} open, each answered): {}.",
                    lead(&v, true, |x| format!("{} of RSS each", format::bytes(x)))
                ));
            }
            let short: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let a = answered_all(s)?;
                    (a < 0.99).then(|| format!("{s} answered {} of them", format::percent(a)))
                })
                .collect();
            if !short.is_empty() {
                out.push(format!(
                    "With {label} idle connections, {}.",
                    short.join("; ")
                ));
            }
        }
        if self.has_scenario("slow") {
            let shares: Vec<(&str, f64)> = each(&|s| {
                Some(self.median("slow", 0, s, |c| c.rps())? / self.lookup.seed_rps.get(s)?)
            });
            let stalled: Vec<String> = shares
                .iter()
                .filter(|(_, x)| *x < STALLED_SHARE)
                .map(|(s, x)| format!("{s} ({} of its seed req/s)", format::percent(*x)))
                .collect();
            if !shares.is_empty() {
                out.push(if stalled.is_empty() {
                    format!(
                        "No server was stalled by 50 slowloris clients (each kept at least {} of its seed throughput).",
                        format::percent(STALLED_SHARE)
                    )
                } else {
                    format!("Stalled by 50 slowloris clients: {}; avoid them where clients can be slow.", stalled.join(", "))
                });
            }
        }
        for (label, what) in [
            ("wait:1ms", "blocks 1 ms per request (a database call)"),
            ("cpu:50us", "burns 50 µs of CPU per request"),
        ] {
            let Some(p) = self.point_index("work", label) else {
                continue;
            };
            let Some(v) = pick(each(&|s| self.median("work", p, s, |c| c.rps())), false) else {
                continue;
            };
            let (worst, low) = &v[v.len() - 1];
            let mut text = format!(
                "When the handler {what}: most req/s from {}",
                lead(&v, false, |x| format!("{} req/s", format::rate(x)))
            );
            if v.len() > 2 && *low < v[0].1 {
                text.push_str(&format!(
                    ", fewest from {worst} ({} req/s, {} of the best)",
                    format::rate(*low),
                    format::percent(low / v[0].1)
                ));
            }
            text.push('.');
            out.push(text);
        }
        if let Some(sweep) = scenarios::find("connections") {
            let p = sweep.points.len() - 1;
            let label = sweep.points[p].label;
            if let Some(v) = pick(
                each(&|s| self.median("connections", p, s, |c| c.rps())),
                false,
            ) {
                out.push(format!(
                    "Most req/s with {label} connections: {}.",
                    lead(&v, false, |x| format!("{} req/s", format::rate(x)))
                ));
            }
        }
        if self.has_scenario("noise") {
            let sloppy: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let cells = group(&self.r.cells, "noise", 0, s);
                    let (sent, ok) = cells
                        .iter()
                        .filter(|c| c.measured())
                        .filter_map(|c| c.noise.as_ref())
                        .fold((0, 0), |(a, b), n| {
                            (a + n.sent(), b + n.rejected_and_closed())
                        });
                    (sent > 0 && ok < sent).then(|| {
                        format!(
                            "{s} ({} of {} malformed requests)",
                            format::count(sent - ok),
                            format::count(sent)
                        )
                    })
                })
                .collect();
            out.push(if sloppy.is_empty() {
                "Every malformed request got its 4xx and a closed connection from every server."
                    .to_string()
            } else {
                format!(
                    "Malformed requests not answered with a 4xx and a close: {}.",
                    sloppy.join(", ")
                )
            });
        }
        out
    }

    fn charts(&self, servers: &[&str]) -> Vec<Chart> {
        let mut charts = Vec::new();
        let names: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        if self.has_scenario("seed") {
            charts.push(Chart {
                file: "throughput.svg".to_string(),
                title: "Requests per second, seed load (median, min–max)".to_string(),
                y_label: "req/s".to_string(),
                log_y: false,
                scenario: "seed".to_string(),
                data: ChartData::Bars {
                    categories: names.clone(),
                    series: vec![(
                        "100 connections".to_string(),
                        servers
                            .iter()
                            .map(|s| median_of(self.r, "seed", 0, s, |c| c.rps()))
                            .collect(),
                    )],
                },
            });
            let series: Vec<(String, Vec<(f64, f64)>)> = servers
                .iter()
                .filter_map(|s| {
                    let mut merged: Option<Histogram<u64>> = None;
                    for c in group(&self.r.cells, "seed", 0, s)
                        .into_iter()
                        .filter(|c| c.measured())
                    {
                        let Some(h) = c.histogram.as_deref().and_then(decode_histogram) else {
                            continue;
                        };
                        match &mut merged {
                            Some(m) => {
                                let _ = m.add(&h);
                            }
                            None => merged = Some(h),
                        }
                    }
                    let h = merged.filter(|h| !h.is_empty())?;
                    Some((s.to_string(), spectrum(&h)))
                })
                .collect();
            if !series.is_empty() {
                charts.push(Chart {
                    file: "latency-spectrum.svg".to_string(),
                    title: "Latency by percentile, seed load (all runs merged)".to_string(),
                    y_label: "latency (µs)".to_string(),
                    log_y: true,
                    scenario: "seed".to_string(),
                    data: ChartData::Lines {
                        x_label: "percentile (log scale of 1/(1-p): 90%, 99%, 99.9%…)".to_string(),
                        log_x: true,
                        series,
                    },
                });
            }
        }
        let line_chart = |scenario: &str,
                          x: &dyn Fn(&CellResult, &scenarios::Point) -> Option<f64>,
                          y: fn(&CellResult) -> Option<f64>|
         -> Vec<(String, Vec<(f64, f64)>)> {
            let Some(sc) = scenarios::find(scenario) else {
                return Vec::new();
            };
            servers
                .iter()
                .map(|s| {
                    let pts = sc
                        .points
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| {
                            let xs = median_of(self.r, scenario, i, s, |c| x(c, p))?;
                            let ys = median_of(self.r, scenario, i, s, y)?;
                            (xs.median > 0.0 && ys.median > 0.0).then_some((xs.median, ys.median))
                        })
                        .collect();
                    (s.to_string(), pts)
                })
                .filter(|(_, pts): &(String, Vec<(f64, f64)>)| !pts.is_empty())
                .collect()
        };
        if self.has_scenario("connections") {
            charts.push(Chart {
                file: "connections.svg".to_string(),
                title: "Requests per second by number of connections".to_string(),
                y_label: "req/s".to_string(),
                log_y: false,
                scenario: "connections".to_string(),
                data: ChartData::Lines {
                    x_label: "connections (log scale)".to_string(),
                    log_x: true,
                    series: line_chart(
                        "connections",
                        &|_, p| Some(p.drive.connections() as f64),
                        |c| c.rps(),
                    ),
                },
            });
        }
        if self.has_scenario("latency") {
            charts.push(Chart {
                file: "latency-vs-load.svg".to_string(),
                title: "p99 latency (corrected) against offered load".to_string(),
                y_label: "p99 latency (µs)".to_string(),
                log_y: true,
                scenario: "latency".to_string(),
                data: ChartData::Lines {
                    x_label: "offered load (req/s)".to_string(),
                    log_x: false,
                    series: line_chart("latency", &|c, _| c.config.rate, |c| Some(lat(c)?.p99)),
                },
            });
        }
        if let Some(idle) = scenarios::find("idle").filter(|_| self.has_scenario("idle")) {
            charts.push(Chart {
                file: "idle-memory.svg".to_string(),
                title: "Server memory per idle connection (RSS growth / connections)".to_string(),
                y_label: "bytes per connection".to_string(),
                log_y: false,
                scenario: "idle".to_string(),
                data: ChartData::Bars {
                    categories: names.clone(),
                    series: idle
                        .points
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            (
                                format!("{} idle", p.label),
                                servers
                                    .iter()
                                    .map(|s| {
                                        median_of(self.r, "idle", i, s, |c| {
                                            idle_per_connection(c, |x| x.rss_kib as f64 * 1024.0)
                                        })
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                },
            });
        }
        if let Some(work) = scenarios::find("work").filter(|_| self.has_scenario("work")) {
            let mut series = Vec::new();
            if self.has_scenario("seed") {
                series.push((
                    "no work (seed)".to_string(),
                    servers
                        .iter()
                        .map(|s| median_of(self.r, "seed", 0, s, |c| c.rps()))
                        .collect(),
                ));
            }
            for (i, p) in work.points.iter().enumerate() {
                series.push((
                    p.label.to_string(),
                    servers
                        .iter()
                        .map(|s| median_of(self.r, "work", i, s, |c| c.rps()))
                        .collect(),
                ));
            }
            charts.push(Chart {
                file: "work.svg".to_string(),
                title: "Requests per second when the handler costs something".to_string(),
                y_label: "req/s".to_string(),
                log_y: false,
                scenario: "work".to_string(),
                data: ChartData::Bars {
                    categories: names,
                    series,
                },
            });
        }
        charts
    }
}

/// The latency (µs) at percentiles 0, 50, 75, 90, 95, 99, ... up to the
/// largest sample, as (1/(1-p), latency) points for a log-log spectrum.
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    let n = h.len() as f64;
    let mut k = 0;
    loop {
        // 1 - 10^(-k/4): 0, 43.8%, 68.4%, 82.2%, 90%, ..., 99%, ...
        let q = 1.0 - 10f64.powf(-(k as f64) / 4.0);
        if k > 0 && (1.0 - q) * n < 1.0 {
            break;
        }
        pts.push((1.0 / (1.0 - q), h.value_at_quantile(q) as f64 / 1e3));
        k += 1;
    }
    pts.push((n.max(1.0), h.max() as f64 / 1e3));
    pts
}

fn judge(holds: bool) -> Verdict {
    if holds {
        Verdict::Holds
    } else {
        Verdict::DoesNotHold
    }
}

fn not_measured(needs: &[&str]) -> (String, Verdict) {
    (
        format!("not measured (needs {})", needs.join(", ")),
        Verdict::NotMeasured,
    )
}

fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => format!("**{one}**"),
        _ => {
            let (last, rest) = list.split_last().expect("not empty");
            format!(
                "{} and **{last}**",
                rest.iter()
                    .map(|s| format!("**{s}**"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[1.0, 4.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = crate::load::new_histogram();
        for v in [1_000u64, 2_000, 50_000, 7_000_000] {
            h.record(v).unwrap();
        }
        let text = encode_histogram(&h).unwrap();
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
        let pts = spectrum(&back);
        assert_eq!(pts[0].0, 1.0);
        assert!(
            pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{pts:?}"
        );
    }

    #[test]
    fn every_scenario_has_columns_and_every_column_a_meaning() {
        for s in scenarios::SCENARIOS {
            assert!(!columns(s.name).is_empty());
        }
        assert!(all_metrics().iter().all(|m| !m.about.is_empty()));
    }
}
