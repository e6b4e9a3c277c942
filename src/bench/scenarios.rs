//! The scenarios, as data: what load each point of a scenario applies, what
//! the server is started with, and how long and how often it runs under each
//! profile. The runner interprets these entries; nothing here runs anything.
//!
//! The time budget lives here too: [`Plan::estimate`] adds up the planned
//! cells, and a test holds the default profile to 5 minutes and `--quick` to
//! 60 s with every model on the machine the timing constants were taken on.

use std::time::Duration;

/// How a point loads the server.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Drive {
    /// Closed loop (each connection sends again as soon as its responses are
    /// in), `pipeline` requests in flight per connection.
    Closed {
        /// Connections kept open.
        connections: usize,
        /// Requests in flight per connection.
        pipeline: usize,
    },
    /// Open loop at `fraction` of this server's own median `seed` throughput,
    /// latency measured from the intended send times.
    Open {
        /// Connections the rate is spread over.
        connections: usize,
        /// Share of the server's `seed` req/s offered.
        fraction: f64,
    },
    /// `connections` keep-alive connections that each complete one request
    /// and then sit idle while the server's footprint is read.
    Idle {
        /// Idle connections opened.
        connections: usize,
    },
    /// Closed loop with `Connection: close` on every request: one new
    /// connection per request.
    Churn {
        /// Connections (each replaced after every request).
        connections: usize,
    },
    /// The closed-loop load while `slow` connections send one header byte
    /// every `interval` (slowloris).
    Slow {
        /// Normal connections.
        connections: usize,
        /// Slowloris connections.
        slow: usize,
        /// Time between two bytes of a slow connection.
        interval: Duration,
    },
    /// The closed-loop load while `noisy` connections each send one
    /// malformed request every `interval` (each on a new connection).
    Noise {
        /// Connections sending valid requests.
        connections: usize,
        /// Connections sending malformed ones.
        noisy: usize,
        /// Time between two malformed requests of one noisy connection.
        interval: Duration,
    },
}

impl Drive {
    /// Connections this drive holds open at once on the client side (the
    /// server holds as many): what the open-files limit must allow.
    pub fn connections(&self) -> usize {
        match *self {
            Drive::Closed { connections, .. }
            | Drive::Open { connections, .. }
            | Drive::Idle { connections }
            | Drive::Churn { connections } => connections,
            Drive::Slow {
                connections, slow, ..
            } => connections + slow,
            Drive::Noise {
                connections, noisy, ..
            } => connections + noisy,
        }
    }
}

/// One point of a scenario: one load against one server configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Short label for tables and charts ("100 connections", "75%").
    pub label: &'static str,
    /// The load.
    pub drive: Drive,
    /// The server's `--work` for this point (`None`: the default, no work).
    /// Only servelab's own models take it.
    pub work: Option<&'static str>,
}

/// How long and how often a scenario runs under one profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Runs of every point against every server (interleaved).
    pub runs: u32,
    /// Load applied before the recorded window, not recorded.
    pub warmup: Duration,
    /// The recorded window; for `idle`, the longest wait for the answers.
    pub duration: Duration,
}

const fn timing(runs: u32, warmup_ms: u64, duration_ms: u64) -> Timing {
    Timing {
        runs,
        warmup: Duration::from_millis(warmup_ms),
        duration: Duration::from_millis(duration_ms),
    }
}

/// Which set of timings a bench uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// `--quick`: short windows, one run; at most 60 s with every model.
    Quick,
    /// No flag: at most 5 minutes with every model.
    Default,
    /// `--full`: the seed's own 10 s windows (for `seed` and `slow`; 5 s
    /// for the others) and 3-5 runs, for a publishable report.
    Full,
}

impl Profile {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Default => "default",
            Profile::Full => "full",
        }
    }
}

/// Which scenario: its identity everywhere (plan, results, tables, targets);
/// [`ScenarioId::name`] is its name for `--scenarios` and results.json.
/// Declared in the order of [`SCENARIOS`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ScenarioId {
    /// The seed's wrk run.
    Seed,
    /// The connection sweep.
    Connections,
    /// 16 requests in flight per connection.
    Pipeline,
    /// Open loop at shares of the seed throughput.
    Latency,
    /// Idle keep-alive connections.
    Idle,
    /// A new connection per request.
    Churn,
    /// Slowloris clients beside the seed load.
    Slow,
    /// Malformed requests beside valid ones.
    Noise,
    /// Handlers that cost something.
    Work,
}

impl ScenarioId {
    /// Every scenario, in order.
    pub fn all() -> impl Iterator<Item = ScenarioId> {
        SCENARIOS.iter().map(|s| s.id)
    }

    /// Its name for `--scenarios`, results.json and the report.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioId::Seed => "seed",
            ScenarioId::Connections => "connections",
            ScenarioId::Pipeline => "pipeline",
            ScenarioId::Latency => "latency",
            ScenarioId::Idle => "idle",
            ScenarioId::Churn => "churn",
            ScenarioId::Slow => "slow",
            ScenarioId::Noise => "noise",
            ScenarioId::Work => "work",
        }
    }

    /// Its declaration.
    pub fn scenario(self) -> &'static Scenario {
        &SCENARIOS[self as usize]
    }

    /// Its point number `index` (from 0).
    pub const fn at(self, index: usize) -> PointId {
        PointId {
            scenario: self,
            index,
        }
    }
}

impl std::fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One point of one scenario: what a table row, a chart value or a target
/// is read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointId {
    /// The scenario.
    pub scenario: ScenarioId,
    /// The point's index in it.
    pub index: usize,
}

impl PointId {
    /// Its declaration.
    pub fn point(self) -> &'static Point {
        &self.scenario.scenario().points[self.index]
    }

    /// Its label.
    pub fn label(self) -> &'static str {
        self.point().label
    }
}

/// results.json and the targets name a point by its scenario's name and its
/// label.
impl serde::Serialize for PointId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("PointId", 2)?;
        out.serialize_field("scenario", &self.scenario)?;
        out.serialize_field("point", self.label())?;
        out.end()
    }
}

/// The points the analysis and the targets read by name.
pub const SEED: PointId = ScenarioId::Seed.at(0);
/// `pipeline`, 16 deep.
pub const PIPELINE_16: PointId = ScenarioId::Pipeline.at(0);
/// `latency` at 75% of the server's own seed throughput.
pub const LATENCY_75: PointId = ScenarioId::Latency.at(2);
/// `slow`: the seed load with slowloris clients.
pub const SLOW: PointId = ScenarioId::Slow.at(0);
/// `churn`.
pub const CHURN: PointId = ScenarioId::Churn.at(0);
/// `noise`.
pub const NOISE: PointId = ScenarioId::Noise.at(0);
/// `idle` at 10,000 connections.
pub const IDLE_10K: PointId = ScenarioId::Idle.at(1);

/// A named group of points that answers one question.
#[derive(Debug)]
pub struct Scenario {
    /// Which one.
    pub id: ScenarioId,
    /// Heading in the report.
    pub title: &'static str,
    /// What it shows, one or two sentences for the report.
    pub question: &'static str,
    /// The points, run in this order.
    pub points: &'static [Point],
    /// Timings for [`Profile::Quick`], [`Profile::Default`], [`Profile::Full`].
    pub timings: [Timing; 3],
    /// Whether it needs this server's `seed` results (rates scale from its
    /// throughput, or its numbers are compared with it).
    pub needs_seed: bool,
}

impl Scenario {
    /// Its name for `--scenarios`.
    pub fn name(&self) -> &'static str {
        self.id.name()
    }

    /// Its point number `index`.
    pub fn at(&self, index: usize) -> PointId {
        self.id.at(index)
    }

    /// The timing under `profile`.
    pub fn timing(&self, profile: Profile) -> Timing {
        self.timings[profile as usize]
    }
}

const SEED_CONNECTIONS: usize = 100;

/// The timings of most scenarios: 0.2 s / 1.5 s / 5 s windows.
const SHORT: [Timing; 3] = [
    timing(1, 50, 200),
    timing(1, 300, 1500),
    timing(3, 1000, 5000),
];

const fn closed(label: &'static str, connections: usize, pipeline: usize) -> Point {
    Point {
        label,
        drive: Drive::Closed {
            connections,
            pipeline,
        },
        work: None,
    }
}

const fn open(label: &'static str, fraction: f64) -> Point {
    Point {
        label,
        drive: Drive::Open {
            connections: SEED_CONNECTIONS,
            fraction,
        },
        work: None,
    }
}

const fn idle(label: &'static str, connections: usize) -> Point {
    Point {
        label,
        drive: Drive::Idle { connections },
        work: None,
    }
}

const fn with_work(label: &'static str, work: &'static str) -> Point {
    Point {
        label,
        drive: Drive::Closed {
            connections: SEED_CONNECTIONS,
            pipeline: 1,
        },
        work: Some(work),
    }
}

/// Every scenario, in the order they run and appear in the report. `seed`
/// comes first: later scenarios scale from or compare with it.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        id: ScenarioId::Seed,
        title: "The seed's benchmark",
        question: "wrk -c100 as the seed ran it: closed loop, 100 keep-alive connections. \
                   Throughput, latency, and how many of the 100 connections were served at all.",
        points: &[closed("100 connections", SEED_CONNECTIONS, 1)],
        timings: [
            timing(1, 200, 1400),
            timing(3, 500, 3000),
            timing(5, 1000, 10_000),
        ],
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Connections,
        title: "Connection sweep",
        question: "Closed loop with 1 to 10,000 connections: does throughput hold, what does \
                   a request cost, and are all connections served as they multiply?",
        points: &[
            closed("1", 1, 1),
            closed("10", 10, 1),
            closed("100", 100, 1),
            closed("1,000", 1000, 1),
            closed("10,000", 10_000, 1),
        ],
        timings: SHORT,
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Pipeline,
        title: "Pipelining",
        question: "16 requests in flight per connection, 100 connections: how well a model \
                   batches pipelined requests and responses.",
        points: &[closed("depth 16", SEED_CONNECTIONS, 16)],
        timings: [
            timing(1, 50, 200),
            timing(2, 300, 1500),
            timing(3, 1000, 5000),
        ],
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Latency,
        title: "Latency under steady load",
        question: "Open loop at 25%, 50%, 75% and 90% of each server's own seed throughput, \
                   latency measured from each request's intended send time (corrected for \
                   coordinated omission; uncorrected beside it). Where \"v3 for low latency\" \
                   is confirmed or refuted.",
        points: &[
            open("25%", 0.25),
            open("50%", 0.50),
            open("75%", 0.75),
            open("90%", 0.90),
        ],
        timings: SHORT,
        needs_seed: true,
    },
    Scenario {
        id: ScenarioId::Idle,
        title: "Idle connections",
        question: "1,000 and 10,000 keep-alive connections, each having completed one request, \
                   then idle: what each costs the server in memory, threads and descriptors \
                   (growth over the empty server), and how many were answered at all.",
        points: &[idle("1,000", 1000), idle("10,000", 10_000)],
        timings: [timing(1, 0, 500), timing(1, 0, 2000), timing(3, 0, 5000)],
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Churn,
        title: "Connection churn",
        question: "A new connection for every request (Connection: close), 100 at a time: \
                   connections per second, what each costs, and the errors.",
        points: &[Point {
            label: "close per request",
            drive: Drive::Churn {
                connections: SEED_CONNECTIONS,
            },
            work: None,
        }],
        timings: SHORT,
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Slow,
        title: "Slow clients",
        question: "The seed load while 50 slowloris connections, opened first, send one header \
                   byte every 500 ms: the normal clients' throughput and p99 against the seed \
                   run without them, and how long the slow ones were held.",
        points: &[Point {
            label: "50 slowloris",
            drive: Drive::Slow {
                connections: SEED_CONNECTIONS,
                slow: 50,
                interval: Duration::from_millis(500),
            },
            work: None,
        }],
        timings: [
            timing(1, 50, 500),
            timing(1, 300, 2000),
            timing(3, 1000, 10_000),
        ],
        needs_seed: true,
    },
    Scenario {
        id: ScenarioId::Noise,
        title: "Malformed requests",
        question: "90 connections send valid requests while 10 others each send a malformed \
                   one every 10 ms on a new connection (bad request line, Content-Length with \
                   Transfer-Encoding, oversized header): the valid throughput, and whether every \
                   malformed request got its 4xx and a closed connection.",
        points: &[Point {
            label: "10 noisy of 100",
            drive: Drive::Noise {
                connections: 90,
                noisy: 10,
                interval: Duration::from_millis(10),
            },
            work: None,
        }],
        timings: SHORT,
        needs_seed: false,
    },
    Scenario {
        id: ScenarioId::Work,
        title: "Handlers that cost something",
        question: "The seed load with a handler that burns 50 µs of CPU per request \
                   (serve --work cpu:50us), one that blocks 1 ms per request as a synchronous \
                   database call would (serve --work wait:1ms), and one that waits 1 ms without \
                   holding its thread as an asynchronous call would (serve --work await:1ms): \
                   what a blocking wait does to a reactor compared with the threaded models, \
                   and what parking the request instead gives back.",
        points: &[
            with_work("cpu:50us", "cpu:50us"),
            with_work("wait:1ms", "wait:1ms"),
            with_work("await:1ms", "await:1ms"),
        ],
        timings: SHORT,
        needs_seed: false,
    },
];

/// Time a cell takes beyond its warm-up and window: starting the server,
/// waiting for its listening line, reading /proc, SIGTERM and the exit.
/// Measured on a 2-core VM (see the README's time budget).
pub const CELL_OVERHEAD: Duration = Duration::from_millis(120);
/// Time to open one idle connection and complete its request.
pub const IDLE_CONNECTION_COST: Duration = Duration::from_micros(60);
/// How long slowloris connections are given to connect before the load.
pub const SLOW_SETUP: Duration = Duration::from_millis(100);

/// One cell of a plan: one point of one scenario against one server, once.
#[derive(Clone, Copy, Debug)]
pub struct PlannedCell {
    /// The scenario.
    pub scenario: &'static Scenario,
    /// Index of the point in the scenario.
    pub point: usize,
    /// Index of the server in the bench's server list.
    pub server: usize,
    /// Run number, from 1.
    pub run: u32,
    /// Runs of this scenario.
    pub runs: u32,
    /// Warm-up.
    pub warmup: Duration,
    /// Recorded window.
    pub duration: Duration,
}

impl PlannedCell {
    /// The point.
    pub fn point(&self) -> &'static Point {
        &self.scenario.points[self.point]
    }

    /// Which point.
    pub fn at(&self) -> PointId {
        self.scenario.at(self.point)
    }

    /// How long this cell is expected to take.
    pub fn estimate(&self) -> Duration {
        let extra = match self.point().drive {
            Drive::Idle { connections } => IDLE_CONNECTION_COST * connections as u32,
            Drive::Slow { .. } => SLOW_SETUP,
            _ => Duration::ZERO,
        };
        self.warmup + self.duration + CELL_OVERHEAD + extra
    }
}

/// Overrides of the profile's timings from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    /// `--runs`.
    pub runs: Option<u32>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--warmup`.
    pub warmup: Option<Duration>,
}

/// Every cell a bench will run, in order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The cells: scenario by scenario; within one, run by run; within a
    /// run, point by point; within a point, server by server, so that the
    /// servers alternate instead of one running all its runs back to back.
    pub cells: Vec<PlannedCell>,
}

impl Plan {
    /// Plans `scenarios` (in [`SCENARIOS`] order whatever the order given)
    /// against `servers` servers.
    pub fn new(
        scenarios: &[&'static Scenario],
        servers: usize,
        profile: Profile,
        overrides: Overrides,
    ) -> Plan {
        let mut cells = Vec::new();
        for scenario in SCENARIOS {
            if !scenarios.iter().any(|s| std::ptr::eq(*s, scenario)) {
                continue;
            }
            let t = scenario.timing(profile);
            let runs = overrides.runs.unwrap_or(t.runs);
            let warmup = if t.warmup.is_zero() {
                Duration::ZERO
            } else {
                overrides.warmup.unwrap_or(t.warmup)
            };
            let duration = overrides.duration.unwrap_or(t.duration);
            for run in 1..=runs {
                for point in 0..scenario.points.len() {
                    for server in 0..servers {
                        cells.push(PlannedCell {
                            scenario,
                            point,
                            server,
                            run,
                            runs,
                            warmup,
                            duration,
                        });
                    }
                }
            }
        }
        Plan { cells }
    }

    /// The expected time of the whole bench.
    pub fn estimate(&self) -> Duration {
        self.cells.iter().map(PlannedCell::estimate).sum()
    }
}

/// Adds `seed` to `chosen` when a chosen scenario needs it; returns whether
/// it was added.
pub fn with_dependencies(chosen: &mut Vec<&'static Scenario>) -> bool {
    let needs = chosen.iter().any(|s| s.needs_seed);
    let has = chosen.iter().any(|s| s.id == ScenarioId::Seed);
    if needs && !has {
        chosen.insert(0, &SCENARIOS[0]);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static Scenario> {
        SCENARIOS.iter().collect()
    }

    #[test]
    fn the_time_budget_holds_with_every_model() {
        let models = crate::models::Model::ALL.len();
        let default = Plan::new(&all(), models, Profile::Default, Overrides::default()).estimate();
        assert!(default <= Duration::from_secs(300), "{default:?}");
        let quick = Plan::new(&all(), models, Profile::Quick, Overrides::default()).estimate();
        assert!(quick <= Duration::from_secs(60), "{quick:?}");
        let full = Plan::new(&all(), models, Profile::Full, Overrides::default()).estimate();
        assert!(full > default);
    }

    #[test]
    fn servers_alternate_and_seed_comes_first() {
        let chosen = vec![ScenarioId::Latency.scenario(), ScenarioId::Seed.scenario()];
        let plan = Plan::new(&chosen, 2, Profile::Default, Overrides::default());
        let order: Vec<(ScenarioId, usize, u32)> = plan
            .cells
            .iter()
            .map(|c| (c.scenario.id, c.server, c.run))
            .collect();
        assert_eq!(
            &order[..4],
            &[
                (ScenarioId::Seed, 0, 1),
                (ScenarioId::Seed, 1, 1),
                (ScenarioId::Seed, 0, 2),
                (ScenarioId::Seed, 1, 2)
            ]
        );
        assert_eq!(order.iter().filter(|o| o.0 == ScenarioId::Seed).count(), 6);
        assert_eq!(
            order.iter().filter(|o| o.0 == ScenarioId::Latency).count(),
            8
        );
        assert!(order[6..].iter().all(|o| o.0 == ScenarioId::Latency));
    }

    #[test]
    fn overrides_and_dependencies() {
        let over = Overrides {
            runs: Some(2),
            duration: Some(Duration::from_millis(100)),
            warmup: Some(Duration::from_millis(10)),
        };
        let plan = Plan::new(
            &[ScenarioId::Connections.scenario()],
            1,
            Profile::Full,
            over,
        );
        assert_eq!(plan.cells.len(), 10);
        assert!(plan
            .cells
            .iter()
            .all(|c| c.duration == Duration::from_millis(100)
                && c.warmup == Duration::from_millis(10)));
        let mut chosen = vec![ScenarioId::Slow.scenario()];
        assert!(with_dependencies(&mut chosen));
        assert_eq!(chosen[0].id, ScenarioId::Seed);
        assert!(!with_dependencies(&mut chosen));
        let mut chosen = vec![ScenarioId::Churn.scenario()];
        assert!(!with_dependencies(&mut chosen));
    }

    #[test]
    fn ids_follow_the_declarations_and_named_points_their_labels() {
        use clap::ValueEnum;
        assert_eq!(ScenarioId::value_variants().len(), SCENARIOS.len());
        for (id, s) in ScenarioId::value_variants().iter().zip(SCENARIOS) {
            assert_eq!(*id, s.id);
            assert_eq!(id.scenario().id, *id);
            assert!(!s.points.is_empty());
            let json = serde_json::to_string(id).unwrap();
            assert_eq!(json, format!("{:?}", id.name()));
        }
        for (at, label) in [
            (SEED, "100 connections"),
            (PIPELINE_16, "depth 16"),
            (LATENCY_75, "75%"),
            (SLOW, "50 slowloris"),
            (CHURN, "close per request"),
            (NOISE, "10 noisy of 100"),
            (IDLE_10K, "10,000"),
        ] {
            assert_eq!(at.label(), label);
        }
    }
}
