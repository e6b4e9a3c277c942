//! What the report concludes, computed from [`BenchResults`]: the tables, the
//! seed's claims and "which model when" decided from the numbers, the
//! `--baseline` ratios, the `--check` targets and the charts' data. Nothing
//! here formats a file, and nothing in the exporters decides anything.

use clap::ValueEnum;
use hdrhistogram::Histogram;

use super::columns::{
    columns, columns_with_baseline, lat, problems, row, usage, Column, Lookup, Read, Reference,
    Section,
};
use super::floor::Floor;
use super::format;
use super::results::{BenchResults, CellIndex, CellResult, ServerInfo, Spread};
use super::scenarios::{
    self, LongRequests, PointId, Scenario, ScenarioId, BODY_1M, FLOOR_SERVER, LATENCY_75, NOISE,
    SEED, SLOW, SPREAD_LONG, SPREAD_SHORT, SPREAD_WORK, WORK_AWAIT, WORK_CPU, WORK_EXP, WORK_WAIT,
};
pub use super::targets::Verdict;
use super::targets::{
    self, Checked, ServerRef, RATIO_TOLERANCE, SIMILAR_THROUGHPUT, STALLED_SHARE, V1, V2, V3,
};
use crate::load::decode_histogram;
use crate::models::Model;

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
    /// With `--baseline`: `cpu_us` over the baseline's, run by run.
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
    /// The idle point.
    pub at: PointId,
    /// Connections answered (median).
    pub answered: f64,
}

/// One of the seed's quantitative claims, checked.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The seed's words.
    pub claim: &'static str,
    /// The seed's own figure.
    pub seed_figure: &'static str,
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
    /// One group of bars per category (server), one bar per series.
    Bars {
        /// Category labels.
        categories: Vec<String>,
        /// Series: label and one value per category.
        series: Vec<(String, Vec<Option<Spread>>)>,
    },
    /// Lines: one per series (server), through (x, y) points.
    Lines {
        /// X axis label.
        x_label: &'static str,
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
    pub file: &'static str,
    /// Title.
    pub title: &'static str,
    /// Y axis label.
    pub y_label: &'static str,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The scenario it belongs to.
    pub scenario: ScenarioId,
    /// The data.
    pub data: ChartData,
}

/// `--baseline`: each server's CPU per request at each point, and its ratio
/// to the baseline's.
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
    /// `--baseline`: every server's CPU per request against the baseline's.
    pub baseline: Option<BaselineTable>,
    /// `--check`: the targets, checked.
    pub targets: Option<Checked>,
    /// Where the floor was above a `capacity` target.
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

impl Analysis {
    /// Computes the analysis of `r`.
    pub fn of(r: &BenchResults) -> Analysis {
        let servers: Vec<&str> = r.servers.iter().map(|s| s.name.as_str()).collect();
        let cells = CellIndex::of(&r.cells, &r.servers);
        let rps = |s: &&str| Some((s.to_string(), cells.median(SEED, s, CellResult::rps)?));
        let cpu = |c: &CellResult| usage(c)?.cpu_us_per_request;
        let baseline = r.settings.baseline.as_deref();
        let lookup = Lookup {
            seed_rps: servers.iter().filter_map(rps).collect(),
            baseline: baseline.map(|b| Reference::of(&r.cells, b, cpu)),
        };
        let targets = r.settings.check.as_deref().and_then(targets::find);
        let targets = targets.map(|set| targets::check(r, &lookup, set));
        let floor = Floor::of(&cells);
        let a = Ask {
            r,
            servers,
            lookup,
            cells,
            floor,
        };
        let problems = r.cells.iter().flat_map(|c| {
            let (scenario, point, server, run) = (c.scenario, &c.point, &c.server, c.run);
            let at = format!("{scenario} / {point} / {server} / run {run}");
            problems(&[c])
                .into_iter()
                .map(move |p| format!("{at}: {p}"))
        });
        Analysis {
            summary: a.summary(),
            claims: a.claims(),
            guidance: a.guidance(),
            sections: a.sections(),
            charts: a.charts(),
            problems: problems.collect(),
            baseline: a.baseline_table(),
            targets,
            floor_notes: a.floor_notes(),
        }
    }
}

/// Questions asked of the results.
struct Ask<'a> {
    r: &'a BenchResults,
    /// The servers, in table order.
    servers: Vec<&'a str>,
    lookup: Lookup,
    cells: CellIndex<'a>,
    floor: Option<Floor>,
}

/// Connections served in a run.
fn served(c: &CellResult) -> Option<f64> {
    Some(c.load.as_ref()?.fairness.served as f64)
}

impl Ask<'_> {
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

    /// The scenario, if it ran.
    fn ran(&self, scenario: ScenarioId) -> Option<&'static Scenario> {
        self.cells.has(scenario).then(|| scenario.scenario())
    }

    fn sections(&self) -> Vec<Section> {
        let baseline = self.lookup.baseline.as_ref().map(|b| b.server.as_str());
        let ran = scenarios::SCENARIOS.iter().filter(|s| self.cells.has(s.id));
        ran.map(|s| {
            let chosen = match baseline {
                Some(_) => columns_with_baseline(s.id),
                None => columns(s.id),
            };
            let servers = match s.id {
                ScenarioId::Floor => &[FLOOR_SERVER][..],
                _ => &self.servers[..],
            };
            let rows = s.ids().flat_map(|at| {
                let chosen = &chosen;
                servers.iter().filter_map(move |server| {
                    row(self.cells.runs(at, server), chosen, &self.lookup)
                })
            });
            let header = |c: &Column| match baseline {
                Some(b) if *c == Column::BaselineCpu => baseline_header(b),
                _ => c.name().to_string(),
            };
            Section {
                name: s.id,
                rows: rows.collect(),
                columns: chosen.iter().map(header).collect(),
            }
        })
        .collect()
    }

    fn baseline_table(&self) -> Option<BaselineTable> {
        let reference = self.lookup.baseline.as_ref()?;
        let mut entries = Vec::new();
        for s in scenarios::SCENARIOS {
            if !self.cells.has(s.id) || !columns(s.id).contains(&Column::ServerCpu) {
                continue;
            }
            for at in s.ids() {
                for server in &self.servers {
                    let cpu_us = self.spread(at, server, Column::ServerCpu);
                    if cpu_us.is_some() || !self.cells.runs(at, server).is_empty() {
                        entries.push(BaselineEntry {
                            at,
                            server: server.to_string(),
                            cpu_us,
                            ratio: self.spread(at, server, Column::BaselineCpu),
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
        let capacity = ScenarioId::Capacity.at(0);
        let row = |info: &ServerInfo| {
            let s = info.name.as_str();
            let seed = |column| self.spread(SEED, s, column);
            let idle = idle.ids().rev().find_map(|at| {
                Some(IdleCost {
                    bytes: self.spread(at, s, Column::IdleRss)?,
                    at,
                    answered: self.figure(at, s, Column::IdleAnswered)?,
                })
            });
            let seed_cells = self.cells.runs(SEED, s);
            let connections = seed_cells
                .iter()
                .find_map(|c| Some(c.load.as_ref()?.fairness.connections));
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
                cpu_ratio: seed(Column::BaselineCpu),
                served: self
                    .cells
                    .spread(SEED, s, served)
                    .map(|v| (v, connections.unwrap_or(0))),
                source_lines: info.source_lines,
                problems: problems(seed_cells),
            }
        };
        self.r.servers.iter().map(row).collect()
    }

    fn claims(&self) -> Vec<Claim> {
        let rps = |s: ServerRef| self.lookup.seed_rps.get(s.name()).copied();
        let mean = |s: ServerRef| self.figure(SEED, s.name(), Column::Mean);
        let tol = format::percent(RATIO_TOLERANCE);
        // Target `i` of seed-claims decides; `measured` words its median.
        let claim = |i: usize,
                     seed_figure: &'static str,
                     rule: String,
                     needs: &str,
                     measured: &dyn Fn(f64) -> Option<String>| {
            let target = &targets::SEED_CLAIMS.targets[i];
            let c = targets::evaluate(self.r, &self.lookup, target);
            let (measured, verdict) = match c.measured.and_then(|m| measured(m.median)) {
                Some(text) => (text, c.verdict),
                None => not_measured(needs),
            };
            Claim {
                claim: target.label,
                seed_figure,
                measured,
                rule,
                verdict,
            }
        };
        let throughput = claim(
            0,
            "254k vs 54k req/s = 4.7×",
            format!("holds when threaded/sequential seed req/s is within {tol} of 4.7"),
            "seed: threaded and sequential",
            &|ratio| {
                let (v2, v1) = (format::rate(rps(V2)?), format::rate(rps(V1)?));
                Some(format!("{} ({v2} / {v1} req/s)", format::times(ratio)))
            },
        );
        let similar = format::percent(SIMILAR_THROUGHPUT);
        let mean_latency = claim(
            1,
            "207 µs vs 38.9 µs at 254k vs 248k req/s",
            format!("holds when threaded/pool mean latency is within {tol} of 5 and their seed req/s within {similar}"),
            "seed: threaded and pool",
            &|ratio| {
                let (m2, m3, r2, r3) = (mean(V2)?, mean(V3)?, rps(V2)?, rps(V3)?);
                Some(format!(
                    "mean {} (v2) / {} (v3) = {}; throughput v3/v2 = {}{}",
                    format::micros(m2),
                    format::micros(m3),
                    format::times(ratio),
                    format::times(r3 / r2),
                    self.noise(m2, m3, None)
                ))
            },
        );
        let stalled = claim(
            2,
            "stated, not measured",
            format!(
                "holds when sequential's req/s with slowloris clients is below {} of its seed req/s",
                format::percent(STALLED_SHARE)
            ),
            "seed and slow: sequential",
            &|share| {
                let with = format::rate(self.figure(SLOW, V1.name(), Column::Rps)?);
                let without = format::rate(rps(V1)?);
                let share = format::percent(share);
                Some(format!("{with} req/s with slow clients vs {without} without: {share} of its throughput"))
            },
        );
        let p99 = |s: ServerRef| self.figure(LATENCY_75, s.name(), Column::P99);
        let rate = |s: ServerRef| self.cells.median(LATENCY_75, s.name(), |c| c.config.rate);
        let tail = claim(
            3,
            "38.9 µs vs 207 µs average",
            "holds when pool's corrected p99 at 75% of its own seed throughput is below threaded's"
                .to_string(),
            "latency: threaded and pool",
            &|_| {
                let (a, b) = (p99(V2)?, p99(V3)?);
                Some(format!(
                    "p99 at 75% of own peak: {} (v2), {} (v3){}",
                    format::micros(a),
                    format::micros(b),
                    self.noise(a, b, higher(rate(V2), rate(V3)))
                ))
            },
        );
        vec![
            throughput,
            mean_latency,
            self.threads_claim(),
            stalled,
            tail,
        ]
    }

    /// v3's thread count is fixed, v2's grows with connections: the growth
    /// is compared with the connections actually served, since a short
    /// window may end before thousands of connects complete.
    fn threads_claim(&self) -> Claim {
        let sweep = ScenarioId::Connections.scenario();
        let threads = |s: ServerRef| -> Vec<(f64, f64)> {
            let at = |at| {
                let t = self.figure(at, s.name(), Column::Threads)?;
                Some((self.cells.median(at, s.name(), served)?, t))
            };
            sweep.ids().filter_map(at).collect()
        };
        let (t2, t3) = (threads(V2), threads(V3));
        // Pool's thread counts over the sweep (at least two points).
        let pool = Spread::of(&t3.iter().map(|p| p.1).collect::<Vec<_>>());
        let pool = pool.filter(|p| p.runs >= 2);
        let (measured, verdict) = if let (Some(p), [lo2, .., hi2]) = (pool, &t2[..]) {
            let (min3, max3) = (p.min, p.max);
            let fixed = max3 - min3 <= 2.0;
            let grows = hi2.0 > lo2.0 && hi2.1 - lo2.1 >= (hi2.0 - lo2.0) * 0.5;
            let (first, last) = (lo2.1, hi2.1);
            let (lo, hi) = (format::count(lo2.0 as u64), format::count(hi2.0 as u64));
            (
                format!(
                    "pool: {min3}–{max3} threads across the sweep; threaded: {first} threads at its first point ({lo} connections served), {last} at its last ({hi} served)"
                ),
                Verdict::of(fixed && grows),
            )
        } else {
            not_measured("connections: threaded and pool")
        };
        Claim {
            claim: "v3's thread count is fixed while v2's grows with connections",
            seed_figure: "fixed pool vs a thread per connection",
            measured,
            rule: "holds when pool's thread count varies by at most 2 across the connection sweep and threaded's grows by at least half the connections served in addition".to_string(),
            verdict,
        }
    }

    /// `f` of each server that has something to say.
    fn each(&self, f: impl Fn(&str) -> Option<String>) -> Vec<String> {
        self.servers.iter().filter_map(|s| f(s)).collect()
    }

    /// Ranks the servers by `f` at one point, best first; those that left
    /// connections starved at `at` are not ranked but named apart, since
    /// their figures come from the few connections they served.
    fn rank(
        &self,
        at: Option<PointId>,
        lowest: bool,
        f: &dyn Fn(&str) -> Option<f64>,
    ) -> (Vec<(String, f64)>, Vec<String>) {
        let (mut ranked, mut starved) = (Vec::new(), Vec::new());
        for s in &self.servers {
            let Some(v) = f(s) else { continue };
            match at {
                Some(at) if self.figure(at, s, Column::Starved) != Some(0.0) => {
                    starved.push(s.to_string())
                }
                _ => ranked.push((s.to_string(), v)),
            }
        }
        ranked.sort_by(|a: &(String, f64), b| match lowest {
            true => a.1.total_cmp(&b.1),
            false => b.1.total_cmp(&a.1),
        });
        (ranked, starved)
    }

    /// [`lead`] of the servers ranked by `f`, or `None` when none has it.
    fn best(
        &self,
        at: Option<PointId>,
        lowest: bool,
        f: &dyn Fn(&str) -> Option<f64>,
        fmt: impl Fn(f64) -> String,
    ) -> Option<String> {
        let (v, _) = self.rank(at, lowest, f);
        (!v.is_empty()).then(|| lead(&v, lowest, fmt, &|_, _| None))
    }

    /// The floor's p99 at the higher of two servers' offered rates at `at`:
    /// how far apart their latencies there must be to be told apart.
    fn floor_at(&self, at: PointId) -> impl Fn(&str, &str) -> Option<f64> + '_ {
        move |a, b| {
            let rate = |s: &str| self.cells.median(at, s, |c| c.config.rate);
            self.floor.as_ref()?.p99_at(higher(rate(a), rate(b)))
        }
    }

    /// Says so when latencies `a` and `b` (µs) measured at `rate` (`None`:
    /// closed loop) differ within the floor.
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

    /// `server`'s median capacity under `work` (`None`: the seed's handler).
    fn capacity(&self, server: &str, work: Option<&str>) -> Option<f64> {
        let at = ScenarioId::Capacity.scenario().with_work(work)?;
        self.figure(at, server, Column::Capacity)
    }

    /// Where the floor was above a `capacity` target.
    fn floor_notes(&self) -> Vec<String> {
        let raised = |at: PointId| {
            let mut cells = self.r.cells.iter().filter(|c| c.at() == at);
            cells.find_map(|c| {
                c.capacity
                    .as_ref()
                    .filter(|k| k.target_us > k.nominal_target_us)
            })
        };
        let notes = ScenarioId::Capacity.scenario().ids().filter_map(|at| {
            let k = raised(at)?;
            Some(format!(
                "The floor's least p99 ({}) is not below the {} target of `capacity` {}: that target was raised to {}, twice the floor.",
                format::micros(k.floor_p99_us.unwrap_or(0.0)),
                format::micros(k.nominal_target_us),
                at.label(),
                format::micros(k.target_us)
            ))
        });
        notes.collect()
    }

    /// The sentences of `capacity`, `spread` and `body` (issue 14 §5).
    fn capacity_guidance(&self, out: &mut Vec<String>) {
        let within = |work: Option<&str>| {
            let at = ScenarioId::Capacity.scenario().with_work(work);
            let target = at.and_then(|at| {
                let target = |s: &&str| self.figure(at, s, Column::CapacityTarget);
                self.servers.iter().find_map(target)
            });
            target.map_or("the target".to_string(), format::micros)
        };
        if self.cells.has(ScenarioId::Capacity) {
            let seed_handler = ScenarioId::Capacity.at(0);
            let held = |s: &str| self.capacity(s, None);
            let none = self.each(|s| {
                let measured = self.cells.measured(seed_handler, s).next().is_some();
                (held(s).is_none() && measured).then(|| s.to_string())
            });
            let none = match none.is_empty() {
                true => String::new(),
                false => format!("; no rate held it for {}", none.join(", ")),
            };
            out.extend(self.best(None, false, &held, per_sec).map(|lead| {
                format!(
                    "Most load carried with p99 within {} (the seed's handler, open loop): {lead}{none}.",
                    within(None)
                )
            }));
            // Same mean, spread out: the share of the fixed-time capacity kept.
            let (fixed, exp) = (WORK_CPU.label(), WORK_EXP.label());
            let kept =
                |s: &str| Some(self.capacity(s, Some(exp))? / self.capacity(s, Some(fixed))?);
            let kept_fmt = |x| format!("{} kept", format::percent(x));
            out.extend(self.best(None, false, &kept, kept_fmt).map(|lead| {
                format!(
                    "Keeps the most of its capacity when service times spread ({exp} against a fixed {fixed}, the same mean, p99 within {}): {lead}.",
                    within(Some(fixed))
                )
            }));
            let spread = |s: &str| self.capacity(s, Some(SPREAD_WORK));
            out.extend(self.best(None, false, &spread, per_sec).map(|lead| {
                format!(
                    "Most capacity when 1% of requests take 100× the others ({SPREAD_WORK}, p99 within {}): {lead}.",
                    within(Some(SPREAD_WORK))
                )
            }));
        }
        // Async against blocking waits, by capacity where it was searched,
        // by peak req/s otherwise.
        let (wait, park) = (WORK_WAIT.label(), WORK_AWAIT.label());
        let by_capacity = self.servers.iter().any(|s| {
            self.capacity(s, Some(wait)).is_some() && self.capacity(s, Some(park)).is_some()
        });
        let figure = |s: &str, at: PointId| match by_capacity {
            true => self.capacity(s, Some(at.label())),
            false => self.figure(at, s, Column::Rps),
        };
        // The servers by their gain, parking over blocking; the reactors' or the others'.
        let (v, _) = self.rank(None, false, &|s| {
            Some(figure(s, WORK_AWAIT)? / figure(s, WORK_WAIT).filter(|w| *w > 0.0)?)
        });
        let list = |reactors: bool| {
            let gains = v.iter().filter(|(s, _)| {
                let model = Model::from_str(s, false);
                model.is_ok_and(|m| m.parks_without_a_thread()) == reactors
            });
            let text = gains.filter_map(|(s, x)| {
                let (p, w) = (
                    per_sec(figure(s, WORK_AWAIT)?),
                    per_sec(figure(s, WORK_WAIT)?),
                );
                Some(format!("{s} {} ({p} vs {w})", format::times(*x)))
            });
            text.collect::<Vec<_>>().join(", ")
        };
        if !v.is_empty() {
            let measure = match by_capacity {
                true => format!("capacity at p99 within {}", within(Some(wait))),
                false => "peak req/s".to_string(),
            };
            let (reactors, blocking) = (list(true), list(false));
            let mut text = format!(
                "Waiting 1 ms without holding the thread ({park}) against blocking on it ({wait}), in {measure}:"
            );
            if !reactors.is_empty() {
                text.push_str(&format!(" the reactors {reactors}"));
            }
            if !blocking.is_empty() {
                let sep = if reactors.is_empty() { "" } else { ";" };
                text.push_str(&format!(
                    "{sep} the threaded models, which block in both, {blocking}"
                ));
            }
            out.push(text + ".");
        }
        if self.cells.has(ScenarioId::Spread) {
            let at = ScenarioId::Spread.at(1);
            let short_p99 = |s: &str| self.figure(at, s, Column::ShortP99);
            let (v, _) = self.rank(None, true, &short_p99);
            if !v.is_empty() {
                let LongRequests { work, share } = SPREAD_LONG;
                out.push(format!(
                    "Lowest p99 of short requests ({SPREAD_SHORT}) mixed with {share} of long ones \
                     ({work}) at {} (corrected): {}.",
                    at.label(),
                    lead(&v, true, format::micros, &self.floor_at(at))
                ));
            }
        }
        if self.cells.has(ScenarioId::Body) {
            let cpu = |s: &str| self.figure(BODY_1M, s, Column::CpuPerKib);
            let per_kib = |x| format!("{} per KiB", format::micros(x));
            let body = BODY_1M.label();
            out.extend(
                self.best(Some(BODY_1M), true, &cpu, per_kib).map(|lead| {
                    format!("Moves {body} responses with the least server CPU: {lead}.")
                }),
            );
        }
    }

    fn guidance(&self) -> Vec<String> {
        let mut out = Vec::new();
        let rps_at = |at: PointId| move |s: &str| self.figure(at, s, Column::Rps);
        let seed_conns = SEED.point().drive.connections();
        let slowloris = match SLOW.point().drive {
            scenarios::Drive::Slow { slow, .. } => slow,
            _ => 0,
        };
        if self.cells.has(ScenarioId::Seed) {
            let (v, starved) = self.rank(Some(SEED), false, &rps_at(SEED));
            if !v.is_empty() {
                out.push(format!(
                    "Most requests per second under the seed's load ({seed_conns} keep-alive connections): {}{}.",
                    lead(&v, false, per_sec, &|_, _| None),
                    unranked(&starved)
                ));
            }
            let starved = self.each(|s| {
                let n = self.figure(SEED, s, Column::Starved).filter(|n| *n > 0.0)?;
                Some(format!(
                    "{s} left {n} of {seed_conns} connections without a single response"
                ))
            });
            out.push(match starved.is_empty() {
                true => format!("Every server served all {seed_conns} connections of the seed's load."),
                false => format!(
                    "Starved connections under the seed's load: {}; whatever it reaches comes from the connections it did serve.",
                    starved.join("; ")
                ),
            });
            let cpu = |s: &str| self.figure(SEED, s, Column::ServerCpu);
            let per_request = |x| format!("{} per request", format::micros(x));
            out.extend(self.best(None, true, &cpu, per_request).map(|lead| {
                format!("Cheapest per request in server CPU under the seed's load: {lead}.")
            }));
        }
        if self.cells.has(ScenarioId::Latency) {
            // Only a server that delivered the load it was offered has a
            // latency worth ranking.
            let kept_up = |s: &str| {
                self.cells
                    .median(LATENCY_75, s, |c| Some(c.rps()? / c.config.rate?))
            };
            let behind = self.each(|s| {
                let share = kept_up(s).filter(|share| *share < KEPT_UP)?;
                Some(format!("{s} ({} answered)", format::percent(share)))
            });
            let p99 = |s: &str| {
                let p99 = self.figure(LATENCY_75, s, Column::P99);
                p99.filter(|_| kept_up(s).is_some_and(|k| k >= KEPT_UP))
            };
            let (v, _) = self.rank(None, true, &p99);
            let mut text = String::new();
            if !v.is_empty() {
                text = format!(
                    "Lowest tail latency at a steady 75% of each one's own peak (corrected p99): {}.",
                    lead(&v, true, format::micros, &self.floor_at(LATENCY_75))
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
        if let Some(at) = self
            .ran(ScenarioId::Idle)
            .and_then(|idle| idle.ids().last())
        {
            let label = at.label();
            let answered = |s: &str| {
                self.cells.median(at, s, |c| {
                    let i = c.idle.as_ref()?;
                    Some(i.answered as f64 / i.connections.max(1) as f64)
                })
            };
            let rss = |s: &str| {
                let rss = self.figure(at, s, Column::IdleRss);
                rss.filter(|_| answered(s).is_some_and(|a| a >= ANSWERED_ALL))
            };
            let rss_each = |x| format!("{} of RSS each", format::bytes(x));
            out.extend(self.best(None, true, &rss, rss_each).map(|lead| {
                format!(
                    "Cheapest idle keep-alive connection ({label} open, each answered): {lead}."
                )
            }));
            let short = self.each(|s| {
                let a = answered(s).filter(|a| *a < ANSWERED_ALL)?;
                Some(format!("{s} answered {} of them", format::percent(a)))
            });
            if !short.is_empty() {
                out.push(format!(
                    "With {label} idle connections, {}.",
                    short.join("; ")
                ));
            }
        }
        if self.cells.has(ScenarioId::Slow) {
            let shares = |s: &str| self.figure(SLOW, s, Column::VsSeed);
            let stalled = self.each(|s| {
                let x = shares(s).filter(|x| *x < STALLED_SHARE)?;
                Some(format!("{s} ({} of its seed req/s)", format::percent(x)))
            });
            if self.servers.iter().any(|s| shares(s).is_some()) {
                out.push(match stalled.is_empty() {
                    true => format!(
                        "No server was stalled by {slowloris} slowloris clients: each kept at least {} of its seed throughput.",
                        format::percent(STALLED_SHARE)
                    ),
                    false => format!(
                        "Stalled by {slowloris} slowloris clients: {}; avoid it where clients can be slow.",
                        stalled.join(", ")
                    ),
                });
            }
        }
        for (at, what) in [
            (
                WORK_WAIT,
                "blocks 1 ms per request (as a synchronous database call would)",
            ),
            (
                WORK_AWAIT,
                "waits 1 ms per request without holding its thread (as an asynchronous call would)",
            ),
            (WORK_CPU, "burns 50 µs of CPU per request"),
        ] {
            let (v, starved) = self.rank(Some(at), false, &rps_at(at));
            let Some((worst, low)) = v.last() else {
                continue;
            };
            let mut text = format!(
                "When the handler {what}: most req/s from {}",
                lead(&v, false, per_sec, &|_, _| None)
            );
            if v.len() > 2 {
                let share = format::percent(low / v[0].1);
                text.push_str(&format!(
                    ", fewest from {worst} ({}, {share} of the best)",
                    per_sec(*low)
                ));
            }
            out.push(text + &unranked(&starved) + ".");
        }
        if let Some(at) = self
            .ran(ScenarioId::Connections)
            .and_then(|c| c.ids().last())
        {
            let label = at.label();
            let (v, starved) = self.rank(Some(at), false, &rps_at(at));
            if !v.is_empty() {
                out.push(format!(
                    "Most req/s with {label} connections, all of them served: {}{}.",
                    lead(&v, false, per_sec, &|_, _| None),
                    unranked(&starved)
                ));
            } else if !starved.is_empty() {
                out.push(format!(
                    "With {label} connections, every server left some of them starved: {}.",
                    starved.join(", ")
                ));
            }
        }
        if self.cells.has(ScenarioId::Churn) {
            let conns = |s: &str| self.figure(scenarios::CHURN, s, Column::ConnPerSec);
            let per_sec = |x| format!("{} connections/s", format::rate(x));
            out.extend(self.best(None, false, &conns, per_sec).map(|lead| {
                format!("Most new connections per second (one request each): {lead}.")
            }));
        }
        if self.cells.has(ScenarioId::Noise) {
            let sloppy = self.each(|s| {
                let noise = self
                    .cells
                    .measured(NOISE, s)
                    .filter_map(|c| c.noise.as_ref());
                let (sent, ok) = noise.fold((0, 0), |(a, b), n| {
                    (a + n.sent(), b + n.rejected_and_closed())
                });
                (ok < sent).then(|| {
                    let (bad, sent) = (format::count(sent - ok), format::count(sent));
                    format!("{s} ({bad} of {sent} malformed requests)")
                })
            });
            out.push(match sloppy.is_empty() {
                true => {
                    "Every malformed request got its 4xx and a closed connection from every server."
                        .to_string()
                }
                false => format!(
                    "Malformed requests not answered with a 4xx and a close: {}.",
                    sloppy.join(", ")
                ),
            });
        }
        self.capacity_guidance(&mut out);
        out
    }

    /// `server`'s latency histograms at `seed`, all runs merged.
    fn seed_histogram(&self, server: &str) -> Option<Histogram<u64>> {
        let runs = self.cells.measured(SEED, server);
        let histograms = runs.filter_map(|c| decode_histogram(c.histogram.as_deref()?).ok());
        let merged = histograms.reduce(|mut all, h| {
            let _ = all.add(&h);
            all
        });
        merged.filter(|h| !h.is_empty())
    }

    fn charts(&self) -> Vec<Chart> {
        let servers = &self.servers;
        // Per series (label, point), one bar per server: `column` there.
        let bars = |series: Vec<(String, PointId)>, column| ChartData::Bars {
            categories: servers.iter().map(|s| s.to_string()).collect(),
            series: series
                .into_iter()
                .map(|(label, at)| {
                    let bars = servers.iter().map(|s| self.spread(at, s, column));
                    (label, bars.collect())
                })
                .collect(),
        };
        let points = |sc: ScenarioId, suffix: &str| {
            let ids = sc.scenario().ids();
            ids.map(|at| (format!("{}{suffix}", at.label()), at))
                .collect::<Vec<_>>()
        };
        // One line per server through its points of `sc`: (x, y) medians.
        let lines = |sc: ScenarioId,
                     x_label: &'static str,
                     log_x,
                     x: &dyn Fn(&CellResult, PointId) -> Option<f64>,
                     y: fn(&CellResult) -> Option<f64>| {
            let line = |s: &&str| {
                let pts = sc.scenario().ids().filter_map(|at| {
                    let xs = self.cells.median(at, s, |c| x(c, at))?;
                    let ys = self.cells.median(at, s, y)?;
                    (xs > 0.0 && ys > 0.0).then_some((xs, ys))
                });
                (s.to_string(), pts.collect::<Vec<_>>())
            };
            let series = servers.iter().map(line).filter(|(_, pts)| !pts.is_empty());
            ChartData::Lines {
                x_label,
                log_x,
                percentile_x: false,
                series: series.collect(),
            }
        };
        let seed = self.cells.has(ScenarioId::Seed);
        let seed = seed.then(|| ("no work (seed)".to_string(), SEED));
        let connections = |_: &CellResult, at: PointId| Some(at.point().drive.connections() as f64);
        let rate = |c: &CellResult, _| c.config.rate;
        let mut charts = vec![
            Chart {
                file: THROUGHPUT_CHART,
                title: "Requests per second, seed load (median, min–max)",
                y_label: "req/s",
                log_y: false,
                scenario: ScenarioId::Seed,
                data: bars(points(ScenarioId::Seed, ""), Column::Rps),
            },
            Chart {
                file: "connections.svg",
                title: "Requests per second by number of connections",
                y_label: "req/s",
                log_y: false,
                scenario: ScenarioId::Connections,
                data: lines(
                    ScenarioId::Connections,
                    "connections (log scale)",
                    true,
                    &connections,
                    CellResult::rps,
                ),
            },
            Chart {
                file: "latency-vs-load.svg",
                title: "p99 latency (corrected) against offered load",
                y_label: "p99 latency (µs)",
                log_y: true,
                scenario: ScenarioId::Latency,
                data: lines(
                    ScenarioId::Latency,
                    "offered load (req/s)",
                    false,
                    &rate,
                    |c| Some(lat(c)?.p99),
                ),
            },
            Chart {
                file: "idle-memory.svg",
                title: "Server memory per idle connection (RSS growth / connections)",
                y_label: "bytes per connection",
                log_y: false,
                scenario: ScenarioId::Idle,
                data: bars(points(ScenarioId::Idle, " idle"), Column::IdleRss),
            },
            Chart {
                file: "work.svg",
                title: "Requests per second when the handler costs something (log scale)",
                y_label: "req/s",
                log_y: true,
                scenario: ScenarioId::Work,
                data: bars(
                    seed.into_iter()
                        .chain(points(ScenarioId::Work, ""))
                        .collect(),
                    Column::Rps,
                ),
            },
            Chart {
                file: CAPACITY_CHART,
                title: "Load held with p99 within the target, per handler (log scale)",
                y_label: "req/s",
                log_y: true,
                scenario: ScenarioId::Capacity,
                data: bars(points(ScenarioId::Capacity, ""), Column::Capacity),
            },
        ];
        let spectra = servers
            .iter()
            .filter_map(|s| Some((s.to_string(), spectrum(&self.seed_histogram(s)?))));
        let series: Vec<(String, Vec<(f64, f64)>)> = spectra.collect();
        if !series.is_empty() {
            let spectrum = Chart {
                file: "latency-spectrum.svg",
                title: "Latency by percentile, seed load (all runs merged)",
                y_label: "latency (µs)",
                log_y: true,
                scenario: ScenarioId::Seed,
                data: ChartData::Lines {
                    x_label: "percentile",
                    log_x: true,
                    percentile_x: true,
                    series,
                },
            };
            charts.insert(1, spectrum);
        }
        charts.retain(|c| self.cells.has(c.scenario));
        charts
    }
}

/// The chart of the load each model holds under its latency target: the
/// README shows it beside the throughput chart.
pub const CAPACITY_CHART: &str = "capacity.svg";
/// The chart of the seed load's req/s per model.
pub const THROUGHPUT_CHART: &str = "throughput.svg";

/// The header of the baseline column: `CPU/req ÷ floor`.
pub fn baseline_header(baseline: &str) -> String {
    Column::BaselineCpu.name().replace("baseline", baseline)
}

/// The latency (µs) at percentiles 0, 50, 75, 90, 95, 99, ... up to the
/// largest sample, as (1/(1-p), latency) points for a log-log spectrum.
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len() as f64;
    // 1 - 10^(-k/4): 0, 43.8%, 68.4%, 82.2%, 90%, ..., 99%, ...
    let quantiles = (0..).map(|k| 1.0 - 10f64.powf(-(k as f64) / 4.0));
    let mut pts: Vec<(f64, f64)> = quantiles
        .enumerate()
        .take_while(|&(k, q)| k == 0 || (1.0 - q) * n >= 1.0)
        .map(|(_, q)| (1.0 / (1.0 - q), h.value_at_quantile(q) as f64 / 1e3))
        .collect();
    pts.push((n.max(1.0), h.max() as f64 / 1e3));
    pts
}

/// A rate of requests: `12,345 req/s`.
fn per_sec(x: f64) -> String {
    format!("{} req/s", format::rate(x))
}

/// The higher of two rates, either if one is missing (`None`: closed loop).
fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.into_iter().chain(b).reduce(f64::max)
}

/// The best of a ranking, with any ties, and the runner-up, as a phrase.
/// Tied with the best are those within [`TIE`] of it, and those whose
/// figure differs from it by at most `floor(a, b)` (latencies: the floor's
/// p99 at their load, [`Ask::floor_at`]); the runner-up is named only when
/// it lies outside the floor of the last of those, so that no two servers
/// are ranked on a difference the floor does not resolve.
fn lead(
    v: &[(String, f64)],
    lowest: bool,
    fmt: impl Fn(f64) -> String,
    floor: &dyn Fn(&str, &str) -> Option<f64>,
) -> String {
    let noise = |a: &(String, f64), b: &(String, f64)| {
        floor(&a.0, &b.0).is_some_and(|f| (a.1 - b.1).abs() <= f)
    };
    let best = &v[0];
    let tie = |x: f64| match lowest {
        true => x <= best.1 * (1.0 + TIE),
        false => x >= best.1 * (1.0 - TIE),
    };
    let top = v.iter().take_while(|x| tie(x.1) || noise(best, x)).count();
    let tied: Vec<String> = v[..top].iter().map(|(s, _)| s.clone()).collect();
    let figures = v[..top]
        .iter()
        .map(|(_, x)| fmt(*x))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = match top {
        0 | 1 => format!("**{}** ({})", best.0, fmt(best.1)),
        _ if v[1..top].iter().any(|x| noise(best, x)) => format!(
            "{} (indistinguishable on this machine: they differ by no more than the floor's p99 of {} at that load: {figures})",
            names(&tied),
            format::micros(floor(&best.0, &v[top - 1].0).unwrap_or(0.0)),
        ),
        _ => format!("{} (within {} of each other: {figures})", names(&tied), format::percent(TIE)),
    };
    let last = &v[top.saturating_sub(1)];
    if let Some(next) = v.get(top).filter(|next| !noise(last, next)) {
        text.push_str(&format!("; next {} ({})", next.0, fmt(next.1)));
    }
    text
}

/// `" (not ranked: ... left connections starved)"`, or nothing.
fn unranked(starved: &[String]) -> String {
    match starved.is_empty() {
        true => String::new(),
        false => format!(
            " (not ranked, having left connections starved: {})",
            starved.join(", ")
        ),
    }
}

fn not_measured(needs: &str) -> (String, Verdict) {
    (
        format!("not measured (needs {needs})"),
        Verdict::NotMeasured,
    )
}

/// `**a**, **b** and **c**`.
fn names(list: &[String]) -> String {
    let bold: Vec<String> = list.iter().map(|s| format!("**{s}**")).collect();
    match bold.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => bold.concat(),
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
