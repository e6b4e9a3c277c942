//! What `results.json` holds ([`BenchResults`]: every raw cell with its
//! configuration, measurements and latency histogram), and the median with
//! min and max ([`Spread`]) that the tables show of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cpus;
use crate::load::{IdleOutcome, LoadSummary, NoiseOutcome, SlowOutcome};
use crate::procfs::{self, CpuTimes};

use super::machine::{Build, Machine};
use super::scenarios::{Drive, PlannedCell, Point, PointId, Profile, ScenarioId};

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

impl BenchResults {
    /// Reads a saved `results.json`, refusing anything else and other schemas.
    pub fn load(path: &Path) -> Result<BenchResults, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let not = |why: String| format!("{} is not a bench's results.json: {why}", path.display());
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| not(e.to_string()))?;
        let schema = value
            .get("schema")
            .ok_or_else(|| not("it has no \"schema\" field".to_string()))?;
        match schema.as_u64() {
            Some(s) if s == u64::from(SCHEMA) => {}
            Some(s) => {
                return Err(format!(
                    "{} has results.json schema {s}; this servelab reads schema {SCHEMA}",
                    path.display()
                ))
            }
            None => return Err(not(format!("its \"schema\" is {schema}, not a number"))),
        }
        serde_json::from_value(value).map_err(|e| not(e.to_string()))
    }

    /// How `scenario` ran: runs per point, window and warm-up (seconds).
    pub fn timing(&self, scenario: ScenarioId) -> Option<(u32, f64, f64)> {
        let mut cells = self.cells.iter().filter(|c| c.scenario == scenario);
        let first = cells.next()?;
        let runs = cells.map(|c| c.run).fold(first.run, u32::max);
        Some((runs, first.config.duration_s, first.config.warmup_s))
    }
}

/// How a bench ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The timing profile.
    pub profile: Profile,
    /// Scenarios run, in order.
    pub scenarios: Vec<ScenarioId>,
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
    /// What the reader should know of how it ran (pinning, overrides...).
    pub notes: Vec<String>,
    /// `--baseline`: the server CPU per request is compared with.
    #[serde(default)]
    pub baseline: Option<String>,
    /// `--check`: the name of the target set checked.
    #[serde(default)]
    pub check: Option<String>,
    /// What else the machine was doing while the bench ran.
    #[serde(default)]
    pub other_load: Option<OtherLoad>,
}

impl Settings {
    /// Where servers and load ran: `servers on CPU 0, load on CPU 1`.
    pub fn pinning(&self) -> String {
        let (server, client) = (cpus::list(&self.server_cpus), cpus::list(&self.client_cpus));
        match self.pinned {
            true => format!("servers on CPU {server}, load on CPU {client}"),
            false => "unpinned".to_string(),
        }
    }
}

/// How quiet the machine was: the CPU time that went neither to the bench
/// nor to its servers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OtherLoad {
    /// Other processes' CPU time (kernel threads included), as a share.
    pub other_share: f64,
    /// Time the hypervisor gave to other guests (steal), as a share.
    pub steal_share: f64,
}

impl OtherLoad {
    /// The machine's CPU time between `before` and `after` that went neither
    /// to the bench (`own_s`) nor to its servers (each cell's server CPU from
    /// its start to the end of its window), as shares of all the CPUs' time.
    pub fn between(before: CpuTimes, after: CpuTimes, own_s: f64, cells: &[CellResult]) -> Self {
        let usage = cells.iter().filter_map(|c| c.server_usage.as_ref());
        let servers_s: f64 = usage.map(|u| u.loaded.cpu_s).sum();
        let total = (after.total_s - before.total_s).max(f64::MIN_POSITIVE);
        let other = (after.busy_s - before.busy_s - own_s - servers_s).max(0.0);
        OtherLoad {
            other_share: other / total,
            steal_share: (after.steal_s - before.steal_s).max(0.0) / total,
        }
    }
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
    /// Code lines of the model's own source: the complexity column.
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
    /// Not run: it cannot apply (an external server, too few open files).
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
    /// The server's `--body`.
    #[serde(default)]
    pub body: Option<String>,
    /// The server CPUs it was pinned to (`cores`); `None`: all of them.
    #[serde(default)]
    pub cpus: Option<usize>,
    /// The server's `--slow-work`, where long requests were mixed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_work: Option<String>,
    /// The load's `--mix`, where long requests were mixed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<String>,
    /// Open loop: the rate offered, requests/s.
    pub rate: Option<f64>,
    /// The server's command line.
    pub server_command: Vec<String>,
}

impl CellConfig {
    /// What `point` asks of a cell with these windows, before it runs (no
    /// rate, no command line yet).
    pub fn of(point: &Point, warmup: Duration, duration: Duration) -> CellConfig {
        CellConfig {
            drive: point.drive,
            work: point.work.map(str::to_string),
            body: point.body.map(str::to_string),
            cpus: point.cpus,
            slow_work: point.long.map(|long| long.work.to_string()),
            mix: point.long.map(|long| long.mix().to_string()),
            warmup_s: warmup.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
            rate: None,
            server_command: Vec::new(),
        }
    }
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

impl ProcSample {
    /// The /proc figures of `pids`, added up.
    pub fn of(pids: &[u32]) -> ProcSample {
        let mut s = ProcSample::default();
        for &p in pids {
            let Some(threads) = procfs::status(p, "Threads") else {
                continue;
            };
            s.processes += 1;
            s.threads += threads;
            s.cpu_s += procfs::cpu_seconds(p).unwrap_or(0.0);
            s.rss_kib += procfs::status(p, "VmRSS").unwrap_or(0);
            s.fds += procfs::fds(p).map_or(0, |fds| fds.len() as u64);
        }
        s
    }
}

/// What a cell cost the server.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// Right after it was ready, before any load.
    pub empty: ProcSample,
    /// At the end of the recorded window, load still applied.
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
    /// Exited with status 0 after SIGTERM in time (an external server may
    /// also die of it, as a program without a handler does).
    pub clean: bool,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did (15: the bench's SIGTERM).
    #[serde(default)]
    pub signal: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub waited_s: f64,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// One point of one scenario against one server, once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// The scenario.
    pub scenario: ScenarioId,
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
    /// The load generator's summary, as `servelab load --json` prints it.
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
    /// `capacity`: the search, every probe with it.
    #[serde(default)]
    pub capacity: Option<CapacityRecord>,
    /// How the server stopped.
    pub shutdown: Option<ShutdownRecord>,
}

/// A `capacity` search as it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityRecord {
    /// The p99 target the probes were held to, µs.
    pub target_us: f64,
    /// The workload's own target, µs (`target_us` is above it when the floor was).
    pub nominal_target_us: f64,
    /// The floor's least p99 (over its open-loop rates), µs, when it was measured.
    pub floor_p99_us: Option<f64>,
    /// The highest rate probed: the server's peak req/s under the work.
    pub ceiling: f64,
    /// What the search found, and its probes.
    pub found: super::capacity::Found,
}

impl CellResult {
    /// A cell about to run: its configuration, nothing measured yet.
    pub fn planned(cell: &PlannedCell, server: &str, started_at: String) -> CellResult {
        let point = cell.point();
        CellResult {
            scenario: cell.scenario.id,
            point: point.label.to_string(),
            point_index: cell.point,
            server: server.to_string(),
            run: cell.run,
            started_at,
            elapsed_s: 0.0,
            config: CellConfig::of(point, cell.warmup, cell.duration),
            outcome: Outcome::Measured,
            load: None,
            histogram: None,
            server_usage: None,
            client_cpu_s: None,
            idle: None,
            slow: None,
            noise: None,
            capacity: None,
            shutdown: None,
        }
    }

    /// Its point.
    pub fn at(&self) -> PointId {
        self.scenario.at(self.point_index)
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

/// The median of several runs, with the smallest and the largest.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
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

    /// Each of its figures over `by`; `None` unless `by` is above zero.
    pub fn over(self, by: f64) -> Option<Spread> {
        (by > 0.0).then(|| Spread {
            median: self.median / by,
            min: self.min / by,
            max: self.max / by,
            runs: self.runs,
        })
    }
}

/// One point of one scenario against one server: a row of the report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RowId {
    /// The scenario.
    pub scenario: ScenarioId,
    /// The point's label, as the file names it.
    pub point: String,
    /// The server.
    pub server: String,
}

/// The runs of one row.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// The row.
    pub id: RowId,
    /// Its point.
    pub at: PointId,
    /// Every run, measured or not, in the order run.
    pub runs: Vec<&'a CellResult>,
}

impl<'a> Group<'a> {
    /// The runs that were measured.
    pub fn measured(&self) -> impl Iterator<Item = &'a CellResult> + '_ {
        self.runs.iter().copied().filter(|c| c.measured())
    }

    /// `f` over the measured runs: median, min, max.
    pub fn spread(&self, f: impl Fn(&CellResult) -> Option<f64>) -> Option<Spread> {
        Spread::of(&self.measured().filter_map(f).collect::<Vec<_>>())
    }
}

/// The cells of a bench by row, in report order: points in scenario order,
/// servers in the order of the `servers` given (others after them, by name).
pub struct CellIndex<'a> {
    groups: Vec<Group<'a>>,
}

impl<'a> CellIndex<'a> {
    /// Indexes `cells`.
    pub fn of(cells: &'a [CellResult], servers: &[ServerInfo]) -> CellIndex<'a> {
        let order = |name: &str| servers.iter().position(|s| s.name == name);
        let mut map: BTreeMap<_, Group<'a>> = BTreeMap::new();
        for c in cells {
            let key = (
                c.at(),
                order(&c.server).unwrap_or(usize::MAX),
                c.server.as_str(),
            );
            let id = || RowId {
                scenario: c.scenario,
                point: c.point.clone(),
                server: c.server.clone(),
            };
            let group = map.entry(key).or_insert_with(|| Group {
                id: id(),
                at: c.at(),
                runs: Vec::new(),
            });
            group.runs.push(c);
        }
        CellIndex {
            groups: map.into_values().collect(),
        }
    }

    /// Every row, in report order.
    pub fn groups(&self) -> &[Group<'a>] {
        &self.groups
    }

    fn group(&self, at: PointId, server: &str) -> Option<&Group<'a>> {
        self.groups
            .iter()
            .find(|g| g.at == at && g.id.server == server)
    }

    /// Every run of `server` at `at`, measured or not, in the order run.
    pub fn runs(&self, at: PointId, server: &str) -> &[&'a CellResult] {
        self.group(at, server).map_or(&[], |g| &g.runs)
    }

    /// The runs of `server` at `at` that were measured.
    pub fn measured(&self, at: PointId, server: &str) -> impl Iterator<Item = &'a CellResult> + '_ {
        self.runs(at, server)
            .iter()
            .copied()
            .filter(|c| c.measured())
    }

    /// `f` over the measured runs of `server` at `at`: median, min, max.
    pub fn spread(
        &self,
        at: PointId,
        server: &str,
        f: impl Fn(&CellResult) -> Option<f64>,
    ) -> Option<Spread> {
        self.group(at, server)?.spread(f)
    }

    /// The median of [`CellIndex::spread`].
    pub fn median(
        &self,
        at: PointId,
        server: &str,
        f: impl Fn(&CellResult) -> Option<f64>,
    ) -> Option<f64> {
        self.spread(at, server, f).map(|s| s.median)
    }

    /// Whether any cell of `scenario` is there.
    pub fn has(&self, scenario: ScenarioId) -> bool {
        self.groups.iter().any(|g| g.at.scenario == scenario)
    }
}
