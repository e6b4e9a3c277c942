//! What the report concludes, computed from [`BenchResults`]: the tables of
//! every scenario, the seed's summary table, the seed's claims with a verdict
//! decided from the numbers, the "which model when" sentences, the ratios to
//! the `--baseline` server, the `--check` targets ([`super::targets`]), and
//! the data of every chart. Nothing here formats a file, and nothing in the
//! exporters decides anything.

use hdrhistogram::Histogram;

use super::columns::{
    columns, columns_with_baseline, lat, problems, row, usage, Column, Lookup, Read, Reference,
    Section,
};
use super::floor::Floor;
use super::format;
use super::results::{BenchResults, CellIndex, CellResult, Spread};
use super::scenarios::{
    self, PointId, ScenarioId, BODY_1M, FLOOR_SERVER, LATENCY_75, NOISE, SEED, SLOW, SPREAD_WORK,
    WORK_AWAIT, WORK_CPU, WORK_EXP, WORK_WAIT,
};
pub use super::targets::Verdict;
use super::targets::{
    self, Checked, ServerRef, RATIO_TOLERANCE, SIMILAR_THROUGHPUT, STALLED_SHARE,
};
use crate::load::decode_histogram;

/// The seed's summary table, one row per server, measured.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// Server name.
    pub server: String,
    /// What it is.
    pub description: String,
    /// `seed` req/s.
    pub rps: Option<Spread>,
    /// `capacity` with the seed's handler: req/s at p99 within the target.
    pub capacity: Option<Spread>,
    /// That target, µs.
    pub capacity_target_us: Option<f64>,
    /// `seed` mean latency, µs.
    pub mean_us: Option<Spread>,
    /// `seed` p99, µs.
    pub p99_us: Option<Spread>,
    /// Memory per idle connection at the largest idle point measured.
    pub idle: Option<IdleCost>,
    /// Server threads under the `seed` load.
    pub threads: Option<Spread>,
    /// Server CPU per request under the `seed` load, µs.
    pub cpu_us: Option<Spread>,
    /// With `--baseline`: `cpu_us` over the baseline's, run by run (median,
    /// min–max of the per-run ratios).
    pub cpu_ratio: Option<Spread>,
    /// Connections served in `seed`, and the connections there were.
    pub served: Option<(Spread, u64)>,
    /// Code lines of its source file.
    pub source_lines: Option<u64>,
    /// Why numbers are missing, if they are.
    pub problems: Vec<String>,
}

/// What an idle connection cost a server.
#[derive(Clone, Debug)]
pub struct IdleCost {
    /// RSS growth over the empty server per connection, bytes.
    pub bytes: Spread,
    /// The idle point's label.
    pub point: String,
    /// Connections answered (median).
    pub answered: f64,
    /// Connections opened.
    pub connections: u64,
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
        /// The x values are 1/(1-p) for percentile p: ticks read as percentiles.
        percentile_x: bool,
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
    pub scenario: ScenarioId,
    /// The data.
    pub data: ChartData,
}

/// `--baseline`: each server's CPU per request at each point, beside its
/// ratio to the baseline's (taken run by run, see [`Reference`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BaselineTable {
    /// The baseline server.
    pub baseline: String,
    /// How the ratios are taken.
    pub definition: &'static str,
    /// One entry per point and server, point by point.
    pub entries: Vec<BaselineEntry>,
}

/// One server at one point, against the baseline.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BaselineEntry {
    /// The point (`scenario` and `point` label in results.json).
    #[serde(flatten)]
    pub at: PointId,
    /// The server.
    pub server: String,
    /// Its server CPU per request, µs: median (min–max) over the runs.
    pub cpu_us: Option<Spread>,
    /// Its per-run ratios to the baseline's: median (min–max).
    pub ratio: Option<Spread>,
}

/// How the baseline ratios are taken, for the report and results.json.
pub const BASELINE_DEFINITION: &str = "each run's server CPU per request divided by the \
    baseline's in the same run of the same point (the interleaved plan runs them seconds \
    apart, so drift of a shared machine cancels); median (min–max) of those ratios over the runs";

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
    /// `--baseline`: every server's CPU per request and its ratio to the
    /// baseline's, at every point that measures it.
    pub baseline: Option<BaselineTable>,
    /// `--check`: the targets, checked.
    pub targets: Option<Checked>,
    /// The machine's latency floor, when `floor` ran.
    pub floor: Option<Floor>,
    /// What the report says about the floor: its rule, and where it is
    /// above a `capacity` target.
    pub floor_notes: Vec<String>,
}

/// How the report states the floor's rule.
pub const FLOOR_RULE: &str = "Two latencies measured under the same load are \
    indistinguishable on this machine when they differ by at most the floor's p99 under that \
    load (closed loop: the floor's closed-loop p99; open loop at a rate R, the higher of the \
    two rates compared: the floor's p99 at the lowest rate it was measured at that is at least \
    R, or at its highest rate). Such a comparison is reported as a tie, and a claim or a \
    sentence that rests on one says so.";

/// Results within this share of the best are a tie.
pub const TIE: f64 = 0.05;
/// An open-loop run that answered less than this share of the rate offered
/// did not keep up, and its latency is not ranked.
pub const KEPT_UP: f64 = 0.9;
/// Idle connections count as all answered from this share on.
pub const ANSWERED_ALL: f64 = 0.99;

const V1: ServerRef = targets::V1;
const V2: ServerRef = targets::V2;
const V3: ServerRef = targets::V3;

impl Analysis {
    /// Computes the analysis of `r`.
    pub fn of(r: &BenchResults) -> Analysis {
        let servers: Vec<&str> = r.servers.iter().map(|s| s.name.as_str()).collect();
        let cells = CellIndex::of(&r.cells);
        let mut lookup = Lookup::default();
        for s in &servers {
            if let Some(v) = cells.median(SEED, s, |c| c.rps()) {
                lookup.seed_rps.insert((*s).to_string(), v);
            }
        }
        lookup.baseline = r
            .settings
            .baseline
            .as_deref()
            .map(|b| Reference::of(&r.cells, b, |c| usage(c)?.cpu_us_per_request));
        let targets = r
            .settings
            .check
            .as_deref()
            .and_then(targets::find)
            .map(|set| targets::check(r, &lookup, set));
        let floor = Floor::of(&cells);
        let a = Ask {
            r,
            lookup,
            cells,
            floor,
        };
        let sections = a.sections(&servers);
        let floor_notes = a.floor_notes();
        let baseline = a.baseline_table(&servers);
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
            baseline,
            targets,
            floor: a.floor,
            floor_notes,
        }
    }
}

/// Questions asked of the results.
struct Ask<'a> {
    r: &'a BenchResults,
    lookup: Lookup,
    cells: CellIndex<'a>,
    floor: Option<Floor>,
}

impl Ask<'_> {
    fn median(
        &self,
        at: PointId,
        server: &str,
        f: impl Fn(&CellResult) -> Option<f64>,
    ) -> Option<f64> {
        self.cells.median(at, server, f)
    }

    /// `column`'s median (min–max) over the measured runs of `server` at `at`.
    fn spread(&self, at: PointId, server: &str, column: Column) -> Option<Spread> {
        let Read::Median(f) = column.metric().read else {
            return None;
        };
        self.cells.spread(at, server, |c| f(c, &self.lookup))
    }

    /// Its median.
    fn figure(&self, at: PointId, server: &str, column: Column) -> Option<f64> {
        self.spread(at, server, column).map(|s| s.median)
    }

    fn has_scenario(&self, scenario: ScenarioId) -> bool {
        self.cells.has(scenario)
    }

    /// The scenario, if it ran.
    fn ran(&self, scenario: ScenarioId) -> Option<&'static scenarios::Scenario> {
        self.has_scenario(scenario).then(|| scenario.scenario())
    }

    fn sections(&self, servers: &[&str]) -> Vec<Section> {
        let mut out = Vec::new();
        for s in scenarios::SCENARIOS {
            if !self.has_scenario(s.id) {
                continue;
            }
            let baseline = self.lookup.baseline.as_ref().map(|b| b.server.as_str());
            let chosen = match baseline {
                Some(_) => columns_with_baseline(s.id),
                None => columns(s.id),
            };
            let mut rows = Vec::new();
            let servers = match s.id {
                ScenarioId::Floor => &[FLOOR_SERVER][..],
                _ => servers,
            };
            for point in 0..s.points.len() {
                for server in servers {
                    rows.extend(row(
                        self.cells.runs(s.at(point), server),
                        &chosen,
                        &self.lookup,
                    ));
                }
            }
            out.push(Section {
                name: s.id,
                title: s.title.to_string(),
                question: s.question.to_string(),
                columns: chosen
                    .iter()
                    .map(|c| match baseline {
                        Some(b) if *c == Column::BaselineCpu => {
                            (baseline_header(b), c.metric().unit)
                        }
                        _ => (c.name().to_string(), c.metric().unit),
                    })
                    .collect(),
                rows,
            });
        }
        out
    }

    fn baseline_table(&self, servers: &[&str]) -> Option<BaselineTable> {
        let reference = self.lookup.baseline.as_ref()?;
        let mut entries = Vec::new();
        for s in scenarios::SCENARIOS {
            if !self.has_scenario(s.id) || !columns(s.id).contains(&Column::ServerCpu) {
                continue;
            }
            for i in 0..s.points.len() {
                for server in servers {
                    let cpu_us = self.spread(s.at(i), server, Column::ServerCpu);
                    if cpu_us.is_some() || !self.cells.runs(s.at(i), server).is_empty() {
                        entries.push(BaselineEntry {
                            at: s.at(i),
                            server: server.to_string(),
                            cpu_us,
                            ratio: self.spread(s.at(i), server, Column::BaselineCpu),
                        });
                    }
                }
            }
        }
        Some(BaselineTable {
            baseline: reference.server.clone(),
            definition: BASELINE_DEFINITION,
            entries,
        })
    }

    fn summary(&self) -> Vec<SummaryRow> {
        let idle = ScenarioId::Idle.scenario();
        self.r
            .servers
            .iter()
            .map(|info| {
                let s = info.name.as_str();
                let seed = |column| self.spread(SEED, s, column);
                let idle = (0..idle.points.len()).rev().find_map(|p| {
                    let bytes = self.spread(idle.at(p), s, Column::IdleRss)?;
                    let point = idle.points[p];
                    Some(IdleCost {
                        bytes,
                        point: point.label.to_string(),
                        answered: self
                            .median(idle.at(p), s, |c| Some(c.idle.as_ref()?.answered as f64))?,
                        connections: point.drive.connections() as u64,
                    })
                });
                let seed_cells = self.cells.runs(SEED, s);
                let connections = seed_cells
                    .iter()
                    .find_map(|c| c.load.as_ref().map(|l| l.fairness.connections))
                    .unwrap_or(0);
                let capacity = ScenarioId::Capacity.at(0);
                SummaryRow {
                    server: info.name.clone(),
                    description: info.description.clone(),
                    rps: seed(Column::Rps),
                    capacity: self.spread(capacity, s, Column::Capacity),
                    capacity_target_us: self.figure(capacity, s, Column::CapacityTarget),
                    mean_us: seed(Column::Mean),
                    p99_us: seed(Column::P99),
                    idle,
                    threads: seed(Column::Threads),
                    cpu_us: seed(Column::ServerCpu),
                    cpu_ratio: self.spread(SEED, s, Column::BaselineCpu),
                    served: self
                        .cells
                        .spread(SEED, s, |c| Some(c.load.as_ref()?.fairness.served as f64))
                        .map(|v| (v, connections)),
                    source_lines: info.source_lines,
                    problems: problems(seed_cells),
                }
            })
            .collect()
    }

    fn claims(&self) -> Vec<Claim> {
        let rps = |s: ServerRef| self.lookup.seed_rps.get(s.name()).copied();
        let mean = |s: ServerRef| self.figure(SEED, s.name(), Column::Mean);
        let tol = format::percent(RATIO_TOLERANCE);
        let check = |i: usize| {
            let c = targets::evaluate(self.r, &self.lookup, &targets::SEED_CLAIMS.targets[i]);
            (c.measured.map(|m| m.median), c.verdict)
        };
        let claim = |i: usize, seed_figure: &str, rule: String, (measured, verdict)| Claim {
            claim: targets::SEED_CLAIMS.targets[i].label,
            seed_figure: seed_figure.to_string(),
            measured,
            rule,
            verdict,
        };
        let mut claims = Vec::new();

        // 1. v2 about 4.7x v1's throughput.
        let measured = match (check(0), rps(V2), rps(V1)) {
            ((Some(ratio), verdict), Some(v2), Some(v1)) => (
                format!(
                    "{} ({} / {} req/s)",
                    format::times(ratio),
                    format::rate(v2),
                    format::rate(v1)
                ),
                verdict,
            ),
            _ => not_measured(&["seed: threaded and sequential"]),
        };
        claims.push(claim(
            0,
            "254k vs 54k req/s = 4.7×",
            format!("holds when threaded/sequential seed req/s is within {tol} of 4.7"),
            measured,
        ));

        // 2. v3 about 5x lower mean latency than v2 at similar throughput.
        let measured = match (check(1), mean(V2), mean(V3), rps(V2), rps(V3)) {
            ((Some(ratio), verdict), Some(m2), Some(m3), Some(r2), Some(r3)) => (
                format!(
                    "mean {} (v2) / {} (v3) = {}; throughput v3/v2 = {}{}",
                    format::micros(m2),
                    format::micros(m3),
                    format::times(ratio),
                    format::times(r3 / r2),
                    self.noise(m2, m3, None)
                ),
                verdict,
            ),
            _ => not_measured(&["seed: threaded and pool"]),
        };
        claims.push(claim(
            1,
            "207 µs vs 38.9 µs at 254k vs 248k req/s",
            format!(
                "holds when threaded/pool mean latency is within {tol} of 5 and their seed req/s within {}",
                format::percent(SIMILAR_THROUGHPUT)
            ),
            measured,
        ));

        // 3. v3's thread count fixed, v2's grows with connections. The
        // growth is compared with the connections actually served, since a
        // short window may end before thousands of connects complete.
        let sweep = ScenarioId::Connections.scenario().points.len();
        let threads = |server: &str| -> Vec<(f64, f64)> {
            (0..sweep)
                .filter_map(|i| {
                    let served = self.median(ScenarioId::Connections.at(i), server, |c| {
                        Some(c.load.as_ref()?.fairness.served as f64)
                    })?;
                    let t = self.figure(ScenarioId::Connections.at(i), server, Column::Threads)?;
                    Some((served, t))
                })
                .collect()
        };
        let (t2, t3) = (threads(V2.name()), threads(V3.name()));
        let (measured, verdict) = if t2.len() >= 2 && t3.len() >= 2 {
            let (lo2, hi2) = (t2[0], t2[t2.len() - 1]);
            let min3 = t3.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let max3 = t3.iter().map(|p| p.1).fold(0.0, f64::max);
            let fixed = max3 - min3 <= 2.0;
            let grows = hi2.0 > lo2.0 && hi2.1 - lo2.1 >= (hi2.0 - lo2.0) * 0.5;
            (
                format!(
                    "pool: {}–{} threads across the sweep; threaded: {} threads at its first point ({} connections served), {} at its last ({} served)",
                    min3,
                    max3,
                    lo2.1,
                    format::count(lo2.0 as u64),
                    hi2.1,
                    format::count(hi2.0 as u64)
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
            rule: "holds when pool's thread count varies by at most 2 across the connection sweep and threaded's grows by at least half the connections served in addition".to_string(),
            verdict,
        });

        // 4. v1 is stalled by one slow client.
        let slow = self.figure(SLOW, V1.name(), Column::Rps);
        let measured = match (check(2), slow, rps(V1)) {
            ((Some(share), verdict), Some(with), Some(without)) => (
                format!(
                    "{} req/s with slow clients vs {} without: {} of its throughput",
                    format::rate(with),
                    format::rate(without),
                    format::percent(share)
                ),
                verdict,
            ),
            _ => not_measured(&["seed and slow: sequential"]),
        };
        claims.push(claim(
            2,
            "stated, not measured",
            format!(
                "holds when sequential's req/s with slowloris clients is below {} of its seed req/s",
                format::percent(STALLED_SHARE)
            ),
            measured,
        ));

        // 5. v3 for latency-sensitive services.
        let p99 = |s: ServerRef| self.figure(LATENCY_75, s.name(), Column::P99);
        let rate = |s: ServerRef| self.median(LATENCY_75, s.name(), |c| c.config.rate);
        let measured = match (check(3), p99(V2), p99(V3)) {
            ((Some(_), verdict), Some(a), Some(b)) => (
                format!(
                    "p99 at 75% of own peak: {} (v2), {} (v3){}",
                    format::micros(a),
                    format::micros(b),
                    self.noise(a, b, higher(rate(V2), rate(V3)))
                ),
                verdict,
            ),
            _ => not_measured(&["latency: threaded and pool"]),
        };
        claims.push(claim(
            3,
            "38.9 µs vs 207 µs average",
            "holds when pool's corrected p99 at 75% of its own seed throughput is below threaded's"
                .to_string(),
            measured,
        ));
        claims
    }

    /// Whether `server` served every connection of a point (median starved 0).
    fn served_all(&self, at: PointId, server: &str) -> bool {
        self.figure(at, server, Column::Starved) == Some(0.0)
    }

    /// Ranks the servers by `f` at one point, best first; those that left
    /// connections starved there are not ranked but named apart, since
    /// their figures come from the few connections they served.
    fn rank(
        &self,
        servers: &[&str],
        at: Option<PointId>,
        lowest: bool,
        f: &dyn Fn(&str) -> Option<f64>,
    ) -> (Vec<(String, f64)>, Vec<String>) {
        let mut ranked = Vec::new();
        let mut starved = Vec::new();
        for s in servers {
            let Some(v) = f(s) else { continue };
            match at {
                Some(at) if !self.served_all(at, s) => starved.push((*s).to_string()),
                _ => ranked.push(((*s).to_string(), v)),
            }
        }
        ranked.sort_by(|a, b| {
            if lowest {
                a.1.total_cmp(&b.1)
            } else {
                b.1.total_cmp(&a.1)
            }
        });
        (ranked, starved)
    }

    /// `"; the difference, X, is within the floor's p99 ..."` when latencies
    /// `a` and `b` (µs) measured at `rate` (`None`: closed loop) differ within
    /// the floor, or nothing.
    fn noise(&self, a: f64, b: f64, rate: Option<f64>) -> String {
        match &self.floor {
            Some(f) if f.within(a, b, rate) => format!(
                "; the difference, {}, is within the floor's p99 of {} at that load: \
                 indistinguishable on this machine, the verdict is inside the noise",
                format::micros((a - b).abs()),
                format::micros(f.p99_at(rate).unwrap_or(0.0))
            ),
            _ => String::new(),
        }
    }

    /// [`lead`] for latencies ranked lowest first, measured at `at` (each
    /// server at its own offered rate there): the best is tied with every
    /// server within [`TIE`] of it or within the floor of it, and the
    /// runner-up is named only when it lies outside the floor of the last
    /// of those, so that no two servers are ranked on a difference the
    /// floor does not resolve.
    fn lead_latency(&self, v: &[(String, f64)], at: PointId) -> String {
        let rate = |s: &str| self.median(at, s, |c| c.config.rate);
        let noise = |a: &(String, f64), b: &(String, f64)| {
            self.floor
                .as_ref()
                .is_some_and(|f| f.within(a.1, b.1, higher(rate(&a.0), rate(&b.0))))
        };
        let best = &v[0];
        let top = v
            .iter()
            .take_while(|x| x.1 <= best.1 * (1.0 + TIE) || noise(best, x))
            .count();
        let figures = |list: &[(String, f64)]| {
            list.iter()
                .map(|(_, x)| format::micros(*x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = if top > 1 {
            let tied: Vec<String> = v[..top].iter().map(|(s, _)| s.clone()).collect();
            let last = &v[top - 1];
            if v[1..top].iter().any(|x| noise(best, x)) {
                let floor = self
                    .floor
                    .as_ref()
                    .and_then(|f| f.p99_at(higher(rate(&best.0), rate(&last.0))));
                format!(
                    "{} (indistinguishable on this machine: they differ by no more than the floor's p99 of {} at that load: {})",
                    names(&tied),
                    format::micros(floor.unwrap_or(0.0)),
                    figures(&v[..top])
                )
            } else {
                format!(
                    "{} (within {} of each other: {})",
                    names(&tied),
                    format::percent(TIE),
                    figures(&v[..top])
                )
            }
        } else {
            format!("**{}** ({})", best.0, format::micros(best.1))
        };
        if let Some(next) = v.get(top) {
            if !noise(&v[top - 1], next) {
                text.push_str(&format!("; next {} ({})", next.0, format::micros(next.1)));
            }
        }
        text
    }

    /// `server`'s median capacity under `work` (`None`: the seed's handler).
    fn capacity(&self, server: &str, work: Option<&str>) -> Option<f64> {
        let sc = ScenarioId::Capacity.scenario();
        let i = sc.points.iter().position(|p| p.work == work)?;
        self.figure(sc.at(i), server, Column::Capacity)
    }

    /// The p99 target of the `capacity` search under `work`, µs.
    fn capacity_target(&self, servers: &[&str], work: Option<&str>) -> Option<f64> {
        let sc = ScenarioId::Capacity.scenario();
        let i = sc.points.iter().position(|p| p.work == work)?;
        servers
            .iter()
            .find_map(|s| self.figure(sc.at(i), s, Column::CapacityTarget))
    }

    /// Where the floor was above a `capacity` target.
    fn floor_notes(&self) -> Vec<String> {
        let sc = ScenarioId::Capacity.scenario();
        let mut out = Vec::new();
        for (i, p) in sc.points.iter().enumerate() {
            let raised = self
                .r
                .cells
                .iter()
                .filter(|c| c.at() == sc.at(i))
                .find_map(|c| {
                    c.capacity
                        .as_ref()
                        .filter(|k| k.target_us > k.nominal_target_us)
                });
            if let Some(k) = raised {
                out.push(format!(
                    "The floor's p99 at its lowest rate ({}) is not below the {} target of `capacity` {}: that target was raised to {}, twice the floor.",
                    format::micros(k.floor_p99_us.unwrap_or(0.0)),
                    format::micros(k.nominal_target_us),
                    p.label,
                    format::micros(k.target_us)
                ));
            }
        }
        out
    }

    /// The sentences of `capacity`, `spread` and `body` (issue 14 §5).
    fn capacity_guidance(&self, servers: &[&str], out: &mut Vec<String>) {
        let per_sec = |x: f64| format!("{} req/s", format::rate(x));
        let within = |work: Option<&str>| {
            self.capacity_target(servers, work)
                .map_or("the target".to_string(), format::micros)
        };
        if self.has_scenario(ScenarioId::Capacity) {
            let (v, _) = self.rank(servers, None, false, &|s| self.capacity(s, None));
            let none: Vec<&str> = servers
                .iter()
                .copied()
                .filter(|s| {
                    self.capacity(s, None).is_none()
                        && self
                            .cells
                            .measured(ScenarioId::Capacity.at(0), s)
                            .next()
                            .is_some()
                })
                .collect();
            if !v.is_empty() {
                let mut text = format!(
                    "Most load carried with p99 within {} (the seed's handler, open loop): {}",
                    within(None),
                    lead(&v, false, per_sec)
                );
                if !none.is_empty() {
                    text.push_str(&format!("; no rate held it for {}", none.join(", ")));
                }
                text.push('.');
                out.push(text);
            }
            // Same mean, spread out: the share of the fixed-time capacity kept.
            let fixed = WORK_CPU.label();
            let exp = WORK_EXP.label();
            let (v, _) = self.rank(servers, None, false, &|s| {
                Some(self.capacity(s, Some(exp))? / self.capacity(s, Some(fixed))?)
            });
            if !v.is_empty() {
                out.push(format!(
                    "Keeps the most of its capacity when service times spread ({exp} against a fixed {fixed}, the same mean, p99 within {}): {}.",
                    within(Some(fixed)),
                    lead(&v, false, |x| format!("{} kept", format::percent(x)))
                ));
            }
            let (v, _) = self.rank(servers, None, false, &|s| {
                self.capacity(s, Some(SPREAD_WORK))
            });
            if !v.is_empty() {
                out.push(format!(
                    "Most capacity when 1% of requests take 100× the others ({SPREAD_WORK}, p99 within {}): {}.",
                    within(Some(SPREAD_WORK)),
                    lead(&v, false, per_sec)
                ));
            }
        }
        // Async against blocking waits, by capacity where it was searched,
        // by peak req/s otherwise.
        let (wait, park) = (WORK_WAIT.label(), WORK_AWAIT.label());
        let by_capacity = servers.iter().any(|s| {
            self.capacity(s, Some(wait)).is_some() && self.capacity(s, Some(park)).is_some()
        });
        let figure = |s: &str, at: PointId| match by_capacity {
            true => self.capacity(s, Some(at.label())),
            false => self.figure(at, s, Column::Rps),
        };
        let mut gains: Vec<(String, f64, f64, f64)> = servers
            .iter()
            .filter_map(|s| {
                let (w, p) = (figure(s, WORK_WAIT)?, figure(s, WORK_AWAIT)?);
                (w > 0.0).then(|| (s.to_string(), p / w, p, w))
            })
            .collect();
        if !gains.is_empty() {
            gains.sort_by(|a, b| b.1.total_cmp(&a.1));
            let reactor = |s: &str| {
                crate::models::Model::ALL
                    .iter()
                    .find(|m| m.name() == s)
                    .is_some_and(|m| m.parks_without_a_thread())
            };
            let list = |want: bool| {
                gains
                    .iter()
                    .filter(|g| reactor(&g.0) == want)
                    .map(|(s, x, p, w)| {
                        format!(
                            "{s} {} ({} vs {})",
                            format::times(*x),
                            per_sec(*p),
                            per_sec(*w)
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let measure = match by_capacity {
                true => format!("capacity at p99 within {}", within(Some(wait))),
                false => "peak req/s".to_string(),
            };
            let (reactors, blocking) = (list(true), list(false));
            let mut text = format!(
                "Waiting 1 ms without holding the thread ({park}) against blocking on it ({wait}), in {measure}:"
            );
            if !reactors.is_empty() {
                text.push_str(&format!(" the reactors {}", reactors.join(", ")));
            }
            if !blocking.is_empty() {
                text.push_str(&format!(
                    "{} the threaded models, which block in both, {}",
                    if reactors.is_empty() { "" } else { ";" },
                    blocking.join(", ")
                ));
            }
            text.push('.');
            out.push(text);
        }
        if self.has_scenario(ScenarioId::Spread) {
            let at = ScenarioId::Spread.at(1);
            let (v, _) = self.rank(servers, None, true, &|s| self.figure(at, s, Column::P99));
            if !v.is_empty() {
                out.push(format!(
                    "Lowest p99 with {SPREAD_WORK} at {} (corrected, all requests): {}.",
                    at.label(),
                    self.lead_latency(&v, at)
                ));
            }
        }
        if self.has_scenario(ScenarioId::Body) {
            let (v, _) = self.rank(servers, Some(BODY_1M), true, &|s| {
                self.figure(BODY_1M, s, Column::CpuPerKib)
            });
            if !v.is_empty() {
                out.push(format!(
                    "Moves {} responses with the least server CPU: {}.",
                    BODY_1M.label(),
                    lead(&v, true, |x| format!("{} per KiB", format::micros(x)))
                ));
            }
        }
    }

    fn guidance(&self, servers: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let per_sec = |x: f64| format!("{} req/s", format::rate(x));
        let rps_at = |at: PointId| move |s: &str| self.figure(at, s, Column::Rps);
        let seed_conns = SEED.point().drive.connections();
        let slowloris = match SLOW.point().drive {
            scenarios::Drive::Slow { slow, .. } => slow,
            _ => 0,
        };

        if self.has_scenario(ScenarioId::Seed) {
            let (v, starved) = self.rank(servers, Some(SEED), false, &rps_at(SEED));
            if !v.is_empty() {
                out.push(format!(
                    "Most requests per second under the seed's load ({seed_conns} keep-alive connections): {}{}.",
                    lead(&v, false, per_sec),
                    unranked(&starved)
                ));
            }
            let starved: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let n = self.figure(SEED, s, Column::Starved)?;
                    (n > 0.0).then(|| {
                        format!(
                            "{s} left {n} of {seed_conns} connections without a single response"
                        )
                    })
                })
                .collect();
            out.push(if starved.is_empty() {
                format!("Every server served all {seed_conns} connections of the seed's load.")
            } else {
                format!(
                    "Starved connections under the seed's load: {}; whatever it reaches comes from the connections it did serve.",
                    starved.join("; ")
                )
            });
            let (v, _) = self.rank(servers, None, true, &|s| {
                self.figure(SEED, s, Column::ServerCpu)
            });
            if !v.is_empty() {
                out.push(format!(
                    "Cheapest per request in server CPU under the seed's load: {}.",
                    lead(&v, true, |x| format!("{} per request", format::micros(x)))
                ));
            }
        }
        if self.has_scenario(ScenarioId::Latency) {
            // Only a server that delivered the load it was offered has a
            // latency worth ranking.
            let kept_up = |s: &str| self.median(LATENCY_75, s, |c| Some(c.rps()? / c.config.rate?));
            let behind: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let share = kept_up(s)?;
                    (share < KEPT_UP).then(|| format!("{s} ({} answered)", format::percent(share)))
                })
                .collect();
            let (v, _) = self.rank(servers, None, true, &|s| {
                if kept_up(s)? < KEPT_UP {
                    return None;
                }
                self.figure(LATENCY_75, s, Column::P99)
            });
            let mut text = String::new();
            if !v.is_empty() {
                text = format!(
                    "Lowest tail latency at a steady 75% of each one's own peak (corrected p99): {}.",
                    self.lead_latency(&v, LATENCY_75)
                );
            }
            if !behind.is_empty() {
                text.push_str(&format!(
                    " Not ranked, having answered less than {} of the load offered at 75%: {}.",
                    format::percent(KEPT_UP),
                    behind.join(", ")
                ));
            }
            if !text.is_empty() {
                out.push(text.trim().to_string());
            }
        }
        if let Some(idle) = self.ran(ScenarioId::Idle) {
            let p = idle.points.len() - 1;
            let label = idle.points[p].label;
            let answered = |s: &str| {
                self.median(idle.at(p), s, |c| {
                    let i = c.idle.as_ref()?;
                    Some(i.answered as f64 / i.connections.max(1) as f64)
                })
            };
            let (v, _) = self.rank(servers, None, true, &|s| {
                if answered(s)? < ANSWERED_ALL {
                    return None;
                }
                self.figure(idle.at(p), s, Column::IdleRss)
            });
            if !v.is_empty() {
                out.push(format!(
                    "Cheapest idle keep-alive connection ({label} open, each answered): {}.",
                    lead(&v, true, |x| format!("{} of RSS each", format::bytes(x)))
                ));
            }
            let short: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let a = answered(s)?;
                    (a < ANSWERED_ALL)
                        .then(|| format!("{s} answered {} of them", format::percent(a)))
                })
                .collect();
            if !short.is_empty() {
                out.push(format!(
                    "With {label} idle connections, {}.",
                    short.join("; ")
                ));
            }
        }
        if self.has_scenario(ScenarioId::Slow) {
            let shares: Vec<(&str, f64)> = servers
                .iter()
                .filter_map(|s| Some((*s, self.figure(SLOW, s, Column::VsSeed)?)))
                .collect();
            let stalled: Vec<String> = shares
                .iter()
                .filter(|(_, x)| *x < STALLED_SHARE)
                .map(|(s, x)| format!("{s} ({} of its seed req/s)", format::percent(*x)))
                .collect();
            if !shares.is_empty() {
                out.push(if stalled.is_empty() {
                    format!(
                        "No server was stalled by {slowloris} slowloris clients: each kept at least {} of its seed throughput.",
                        format::percent(STALLED_SHARE)
                    )
                } else {
                    format!(
                        "Stalled by {slowloris} slowloris clients: {}; avoid it where clients can be slow.",
                        stalled.join(", ")
                    )
                });
            }
        }
        let work = ScenarioId::Work;
        for (at, what) in [
            (
                work.at(1),
                "blocks 1 ms per request (as a synchronous database call would)",
            ),
            (
                work.at(2),
                "waits 1 ms per request without holding its thread (as an asynchronous call would)",
            ),
            (work.at(0), "burns 50 µs of CPU per request"),
        ] {
            let (v, starved) = self.rank(servers, Some(at), false, &rps_at(at));
            if v.is_empty() {
                continue;
            }
            let mut text = format!(
                "When the handler {what}: most req/s from {}",
                lead(&v, false, per_sec)
            );
            if v.len() > 2 {
                let (worst, low) = &v[v.len() - 1];
                text.push_str(&format!(
                    ", fewest from {worst} ({}, {} of the best)",
                    per_sec(*low),
                    format::percent(low / v[0].1)
                ));
            }
            text.push_str(&unranked(&starved));
            text.push('.');
            out.push(text);
        }
        if let Some(sweep) = self.ran(ScenarioId::Connections) {
            let p = sweep.points.len() - 1;
            let label = sweep.points[p].label;
            let (v, starved) = self.rank(servers, Some(sweep.at(p)), false, &rps_at(sweep.at(p)));
            if !v.is_empty() || !starved.is_empty() {
                out.push(if v.is_empty() {
                    format!(
                        "With {label} connections, every server left some of them starved: {}.",
                        starved.join(", ")
                    )
                } else {
                    format!(
                        "Most req/s with {label} connections, all of them served: {}{}.",
                        lead(&v, false, per_sec),
                        unranked(&starved)
                    )
                });
            }
        }
        if self.has_scenario(ScenarioId::Churn) {
            let (v, _) = self.rank(servers, None, false, &|s| {
                self.figure(scenarios::CHURN, s, Column::ConnPerSec)
            });
            if !v.is_empty() {
                out.push(format!(
                    "Most new connections per second (one request each): {}.",
                    lead(&v, false, |x| format!("{} connections/s", format::rate(x)))
                ));
            }
        }
        if self.has_scenario(ScenarioId::Noise) {
            let sloppy: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let (sent, ok) = self
                        .cells
                        .runs(NOISE, s)
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
        self.capacity_guidance(servers, &mut out);
        out
    }

    fn charts(&self, servers: &[&str]) -> Vec<Chart> {
        let mut charts = Vec::new();
        let names: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        let chart = |file: &str, title: &str, y_label: &str, log_y, scenario, data| Chart {
            file: file.to_string(),
            title: title.to_string(),
            y_label: y_label.to_string(),
            log_y,
            scenario,
            data,
        };
        let bars = |series| ChartData::Bars {
            categories: names.clone(),
            series,
        };
        // One bar per server: `f`'s median (min–max) at `at`.
        let per_server = |label: String, at: PointId, column| {
            (
                label,
                servers.iter().map(|s| self.spread(at, s, column)).collect(),
            )
        };
        // One line per server through its points of `sc`: (x, y) medians.
        let lines = |sc: &scenarios::Scenario,
                     x: &dyn Fn(&CellResult, &scenarios::Point) -> Option<f64>,
                     y: fn(&CellResult) -> Option<f64>| {
            servers
                .iter()
                .map(|s| {
                    let pts = (0..sc.points.len()).filter_map(|i| {
                        let xs = self.median(sc.at(i), s, |c| x(c, &sc.points[i]))?;
                        let ys = self.median(sc.at(i), s, y)?;
                        (xs > 0.0 && ys > 0.0).then_some((xs, ys))
                    });
                    (s.to_string(), pts.collect::<Vec<_>>())
                })
                .filter(|(_, pts)| !pts.is_empty())
                .collect()
        };
        let line_data = |x_label: &str, log_x, series| ChartData::Lines {
            x_label: x_label.to_string(),
            log_x,
            percentile_x: false,
            series,
        };
        if self.has_scenario(ScenarioId::Seed) {
            let title = "Requests per second, seed load (median, min–max)";
            let rps = per_server(SEED.label().to_string(), SEED, Column::Rps);
            charts.push(chart(
                "throughput.svg",
                title,
                "req/s",
                false,
                ScenarioId::Seed,
                bars(vec![rps]),
            ));
            let series: Vec<(String, Vec<(f64, f64)>)> = servers
                .iter()
                .filter_map(|s| {
                    let mut merged: Option<Histogram<u64>> = None;
                    for c in self.cells.measured(SEED, s) {
                        let Some(Ok(h)) = c.histogram.as_deref().map(decode_histogram) else {
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
                let data = ChartData::Lines {
                    x_label: "percentile".to_string(),
                    log_x: true,
                    percentile_x: true,
                    series,
                };
                let title = "Latency by percentile, seed load (all runs merged)";
                charts.push(chart(
                    "latency-spectrum.svg",
                    title,
                    "latency (µs)",
                    true,
                    ScenarioId::Seed,
                    data,
                ));
            }
        }
        if let Some(sc) = self.ran(ScenarioId::Connections) {
            let series = lines(sc, &|_, p| Some(p.drive.connections() as f64), |c| c.rps());
            let data = line_data("connections (log scale)", true, series);
            let title = "Requests per second by number of connections";
            charts.push(chart("connections.svg", title, "req/s", false, sc.id, data));
        }
        if let Some(sc) = self.ran(ScenarioId::Latency) {
            let series = lines(sc, &|c, _| c.config.rate, |c| Some(lat(c)?.p99));
            let data = line_data("offered load (req/s)", false, series);
            let title = "p99 latency (corrected) against offered load";
            charts.push(chart(
                "latency-vs-load.svg",
                title,
                "p99 latency (µs)",
                true,
                sc.id,
                data,
            ));
        }
        if let Some(idle) = self.ran(ScenarioId::Idle) {
            let series =
                idle.points.iter().enumerate().map(|(i, p)| {
                    per_server(format!("{} idle", p.label), idle.at(i), Column::IdleRss)
                });
            let title = "Server memory per idle connection (RSS growth / connections)";
            let data = bars(series.collect());
            charts.push(chart(
                "idle-memory.svg",
                title,
                "bytes per connection",
                false,
                idle.id,
                data,
            ));
        }
        if let Some(work) = self.ran(ScenarioId::Work) {
            let mut series = Vec::new();
            if self.has_scenario(ScenarioId::Seed) {
                series.push(per_server("no work (seed)".to_string(), SEED, Column::Rps));
            }
            for (i, p) in work.points.iter().enumerate() {
                series.push(per_server(p.label.to_string(), work.at(i), Column::Rps));
            }
            let title = "Requests per second when the handler costs something (log scale)";
            charts.push(chart(
                "work.svg",
                title,
                "req/s",
                true,
                work.id,
                bars(series),
            ));
        }
        charts
    }
}

/// The header of the baseline column: `CPU/req ÷ floor`.
pub fn baseline_header(baseline: &str) -> String {
    Column::BaselineCpu.name().replace("baseline", baseline)
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

/// The higher of two rates, either if one is missing (`None`: closed loop).
fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The best of a ranking (with any ties) and the runner-up, as a phrase.
fn lead(v: &[(String, f64)], lowest: bool, fmt: impl Fn(f64) -> String) -> String {
    let best = v[0].1;
    let top = v
        .iter()
        .take_while(|(_, x)| {
            if lowest {
                *x <= best * (1.0 + TIE)
            } else {
                *x >= best * (1.0 - TIE)
            }
        })
        .count();
    let mut text = if top > 1 {
        let tied: Vec<String> = v[..top].iter().map(|(s, _)| s.clone()).collect();
        format!(
            "{} (within {} of each other: {})",
            names(&tied),
            format::percent(TIE),
            v[..top]
                .iter()
                .map(|(_, x)| fmt(*x))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("**{}** ({})", v[0].0, fmt(v[0].1))
    };
    if let Some((s, x)) = v.get(top) {
        text.push_str(&format!("; next {s} ({})", fmt(*x)));
    }
    text
}

/// `" (not ranked: ... left connections starved)"`, or nothing.
fn unranked(starved: &[String]) -> String {
    if starved.is_empty() {
        String::new()
    } else {
        format!(
            " (not ranked, having left connections starved: {})",
            starved.join(", ")
        )
    }
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
    fn spectrum_rises_with_the_percentile() {
        let mut h = crate::load::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap();
        }
        let pts = spectrum(&h);
        assert_eq!(pts[0].0, 1.0);
        assert!(
            pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{pts:?}"
        );
        assert_eq!(pts.last().unwrap().1, h.max() as f64 / 1e3);
    }
}
