//! The scenarios, as data: what load each point applies, what the server is
//! started with, and how long and how often it runs under each profile; the
//! [`Plan`] of a bench and its time budget. Nothing here runs anything.

use std::time::Duration;

use clap::ValueEnum;

use crate::load::Mix;
use crate::route::SLOW_PATH;
use crate::units::parse_share_ppm;
use serde::{Deserialize, Serialize};

/// How a point loads the server.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Drive {
    /// Closed loop: each connection sends again once its responses are in.
    Closed {
        /// Connections kept open.
        connections: usize,
        /// Requests in flight per connection.
        pipeline: usize,
    },
    /// Open loop at a share of a rate this server reached earlier
    /// ([`ScenarioId::rate_base`]), latency from the intended send times.
    Open {
        /// Connections the rate is spread over.
        connections: usize,
        /// Share of the base rate offered.
        fraction: f64,
    },
    /// Open loop at the rates of a bisection ([`super::capacity::search`]).
    Capacity {
        /// Connections the rate is spread over.
        connections: usize,
    },
    /// Keep-alive connections that complete one request, then sit idle.
    Idle {
        /// Idle connections opened.
        connections: usize,
    },
    /// Closed loop with `Connection: close`: a new connection per request.
    Churn {
        /// Connections (each replaced after every request).
        connections: usize,
    },
    /// The closed-loop load beside slowloris connections.
    Slow {
        /// Normal connections.
        connections: usize,
        /// Slowloris connections, each sending one header byte per `interval`.
        slow: usize,
        /// Time between two bytes of a slow connection.
        interval: Duration,
    },
    /// The closed-loop load beside connections sending malformed requests.
    Noise {
        /// Connections sending valid requests.
        connections: usize,
        /// Connections each sending a malformed request per `interval`.
        noisy: usize,
        /// Time between two malformed requests of one noisy connection.
        interval: Duration,
    },
}

impl Drive {
    /// Connections held open at once: what the open-files limit must allow.
    pub fn connections(&self) -> usize {
        match *self {
            Drive::Closed { connections, .. }
            | Drive::Open { connections, .. }
            | Drive::Capacity { connections }
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
    /// The server's `--work` (`None`: no work); servelab's models only.
    pub work: Option<&'static str>,
    /// The server's `--body` (`None`: the seed's "OK"); servelab's models only.
    pub body: Option<&'static str>,
    /// The server CPUs it is pinned to (`None`: all); not planned beyond them.
    pub cpus: Option<usize>,
    /// Long requests mixed into the load (`None`: one kind of request);
    /// servelab's models only.
    pub long: Option<LongRequests>,
}

/// Long requests mixed into a point's load: `share` of its requests go to
/// [`SLOW_PATH`](crate::route::SLOW_PATH), which the server answers after
/// `work` (`serve --slow-work`, `load --mix`), so that the latency of the
/// short requests behind them is measured apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongRequests {
    /// The server's `--slow-work`.
    pub work: &'static str,
    /// Their share of the requests, as `load --mix` takes it (`1%`).
    pub share: &'static str,
}

impl LongRequests {
    /// The load generator's `--mix` for them.
    pub fn mix(self) -> Mix {
        Mix {
            path: SLOW_PATH.to_string(),
            share_ppm: parse_share_ppm(self.share).expect("a scenario's share parses"),
        }
    }
}

impl Point {
    /// A point with the seed's handler and body, on every server CPU.
    pub const fn new(label: &'static str, drive: Drive) -> Point {
        Point {
            label,
            drive,
            work: None,
            body: None,
            cpus: None,
            long: None,
        }
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// `--quick`: short windows, one run; at most 60 s with every model.
    Quick,
    /// No flag: at most 6 minutes with every model.
    Default,
    /// `--full`: the seed's 10 s windows and 3-5 runs, for publishing.
    Full,
}

impl Profile {
    /// The name the report uses: the identifier in lower case, as serde
    /// spells it.
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Which scenario, wherever one is named (plan, results, tables, targets);
/// declared in the order of [`SCENARIOS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum ScenarioId {
    /// The machine's latency floor: the load generator against `servelab
    /// responder`.
    Floor,
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
    /// The highest rate at which p99 stays under a target, per workload.
    Capacity,
    /// Spread service times at shares of the capacity.
    Spread,
    /// Large response bodies.
    Body,
    /// The seed load on 1, 2, 4, ... server CPUs.
    Cores,
}

impl ScenarioId {
    /// Every scenario, in order.
    pub fn all() -> impl Iterator<Item = ScenarioId> {
        SCENARIOS.iter().map(|s| s.id)
    }

    /// Its name for `--scenarios`, results.json and the report: the
    /// identifier in lower case, as serde and clap spell it.
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// The scenarios its rates scale from or its figures compare with.
    pub fn needs(self) -> &'static [ScenarioId] {
        use ScenarioId::*;
        match self {
            Latency => &[Floor, Seed],
            Slow => &[Seed],
            Capacity => &[Floor, Seed, Work],
            Spread => &[Floor, Seed, Work, Capacity],
            _ => &[],
        }
    }

    /// What an open-loop point's `fraction` (or a search's ceiling) is of.
    pub fn rate_base(self) -> RateBase {
        match self {
            ScenarioId::Floor => RateBase::Point(FLOOR_CLOSED),
            ScenarioId::Spread => RateBase::Capacity(SPREAD_WORK),
            ScenarioId::Capacity => RateBase::Peak,
            _ => RateBase::Point(SEED),
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
        f.write_str(&self.name())
    }
}

/// One point of one scenario: what a row, a chart value or a target reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

/// results.json and the targets name a point by its scenario and its label.
impl Serialize for PointId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("PointId", 2)?;
        out.serialize_field("scenario", &self.scenario)?;
        out.serialize_field("point", self.label())?;
        out.end()
    }
}

/// What an open-loop rate scales from, in the same server's earlier cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateBase {
    /// Its median req/s at this point.
    Point(PointId),
    /// Its closed-loop peak under the point's own work (`work`, or `seed`).
    Peak,
    /// Its capacity (the `capacity` search) under this work.
    Capacity(&'static str),
}

/// `seed`, which later scenarios scale from or compare with.
pub const SEED: PointId = ScenarioId::Seed.at(0);
/// The floor's closed loop: the responder's peak, its open loop's base.
pub const FLOOR_CLOSED: PointId = ScenarioId::Floor.at(0);
/// The server `floor` runs against (no row of the other tables).
pub const FLOOR_SERVER: &str = "responder";
/// The service times of `spread`: 10 µs, but 1 ms for 1% of requests, as
/// one handler (`work` and `capacity` run it; `spread`'s rates scale from
/// the capacity under it).
pub const SPREAD_WORK: &str = "cpu:10us|1ms@1%";
/// `spread`'s short requests: [`SPREAD_WORK`] but for its long ones.
pub const SPREAD_SHORT: &str = "cpu:10us";
/// `spread`'s long requests, on their own path so that the load generator
/// tells them from the short ones: the same service times as
/// [`SPREAD_WORK`].
pub const SPREAD_LONG: LongRequests = LongRequests {
    work: "cpu:1ms",
    share: "1%",
};
/// `work`: 50 µs of CPU per request.
pub const WORK_CPU: PointId = ScenarioId::Work.at(0);
/// `work`: a blocking 1 ms wait.
pub const WORK_WAIT: PointId = ScenarioId::Work.at(1);
/// `work`: a 1 ms wait that parks the request.
pub const WORK_AWAIT: PointId = ScenarioId::Work.at(2);
/// `work`: exponential service times around 50 µs of CPU.
pub const WORK_EXP: PointId = ScenarioId::Work.at(3);
/// `body`: 1 MiB responses.
pub const BODY_1M: PointId = ScenarioId::Body.at(1);
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
    /// Its points run by `--quick` without `--scenarios`.
    pub quick: Quick,
}

/// The points of a scenario that `--quick` runs without `--scenarios`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quick {
    /// Every point.
    All,
    /// These points (by index), so that every scenario is in a quick run
    /// and the run stays within 60 s.
    Only(&'static [usize]),
}

impl Quick {
    /// Whether point `index` runs.
    pub fn runs(self, index: usize) -> bool {
        match self {
            Quick::All => true,
            Quick::Only(points) => points.contains(&index),
        }
    }
}

impl Scenario {
    /// Its points, in order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = PointId> + '_ {
        (0..self.points.len()).map(|i| self.id.at(i))
    }

    /// Its point whose server runs `work` (`None`: the seed's handler).
    pub fn with_work(&self, work: Option<&str>) -> Option<PointId> {
        self.ids().find(|at| at.point().work == work)
    }

    /// The timing under `profile`.
    pub fn timing(&self, profile: Profile) -> Timing {
        self.timings[profile as usize]
    }
}

const SEED_CONNECTIONS: usize = 100;

/// The timings of most scenarios: 0.15 s / 1.1 s / 5 s windows.
const SHORT: [Timing; 3] = [
    timing(1, 50, 150),
    timing(1, 250, 1100),
    timing(3, 1000, 5000),
];

const fn closed(label: &'static str, connections: usize, pipeline: usize) -> Point {
    Point::new(
        label,
        Drive::Closed {
            connections,
            pipeline,
        },
    )
}

const fn open(label: &'static str, fraction: f64) -> Point {
    Point::new(
        label,
        Drive::Open {
            connections: SEED_CONNECTIONS,
            fraction,
        },
    )
}

const fn idle(label: &'static str, connections: usize) -> Point {
    Point::new(label, Drive::Idle { connections })
}

const fn with_work(label: &'static str, work: &'static str) -> Point {
    Point {
        work: Some(work),
        ..closed(label, SEED_CONNECTIONS, 1)
    }
}

const fn capacity(label: &'static str, work: Option<&'static str>) -> Point {
    Point {
        work,
        ..Point::new(
            label,
            Drive::Capacity {
                connections: SEED_CONNECTIONS,
            },
        )
    }
}

const fn spread(label: &'static str, fraction: f64) -> Point {
    Point {
        work: Some(SPREAD_SHORT),
        long: Some(SPREAD_LONG),
        ..open(label, fraction)
    }
}

const fn body(label: &'static str, size: &'static str) -> Point {
    Point {
        body: Some(size),
        ..closed(label, SEED_CONNECTIONS, 1)
    }
}

const fn cores(label: &'static str, cpus: usize) -> Point {
    Point {
        cpus: Some(cpus),
        ..closed(label, SEED_CONNECTIONS, 1)
    }
}

/// Probes of one `capacity` search, per profile.
pub const CAPACITY_PROBES: [usize; 3] = [3, 4, 8];
/// A `capacity` search stops once its bracket is this share of its upper end.
pub const CAPACITY_PRECISION: f64 = 0.05;

/// The timings of `floor`, `spread`, `body` and `cores`: 0.2 s / 0.8 s / 5 s windows.
const BRIEF: [Timing; 3] = [
    timing(1, 50, 200),
    timing(1, 200, 800),
    timing(3, 1000, 5000),
];

/// Every scenario, in the order they run and appear in the report. `seed`
/// comes first: later scenarios scale from or compare with it.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        id: ScenarioId::Floor,
        title: "The machine's latency floor",
        question: "The load generator against `servelab responder` (one epoll thread that parses \
                   nothing and answers every request with the same bytes), pinned like the \
                   servers: closed loop with 100 connections, then open loop at 5% to 90% of the \
                   responder's own closed-loop req/s. No server can show less latency on this \
                   machine at that load: two servers whose latencies differ by less than the \
                   floor's p99 there are indistinguishable here.",
        points: &[
            closed("closed loop", SEED_CONNECTIONS, 1),
            open("5%", 0.05),
            open("25%", 0.25),
            open("50%", 0.50),
            open("75%", 0.75),
            open("90%", 0.90),
        ],
        timings: BRIEF,
        quick: Quick::All,
    },
    Scenario {
        id: ScenarioId::Seed,
        title: "The seed's benchmark",
        question: "wrk -c100 as the seed ran it: closed loop, 100 keep-alive connections. \
                   Throughput, latency, and how many of the 100 connections were served at all.",
        points: &[closed("100 connections", SEED_CONNECTIONS, 1)],
        timings: [
            timing(1, 200, 1200),
            timing(3, 500, 2500),
            timing(5, 1000, 10_000),
        ],
        quick: Quick::All,
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
        quick: Quick::Only(&[0, 2, 3]),
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
        quick: Quick::All,
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
        quick: Quick::Only(&[0, 2]),
    },
    Scenario {
        id: ScenarioId::Idle,
        title: "Idle connections",
        question: "1,000 and 10,000 keep-alive connections, each having completed one request, \
                   then idle: what each costs the server in memory, threads and descriptors \
                   (growth over the empty server), and how many were answered at all.",
        points: &[idle("1,000", 1000), idle("10,000", 10_000)],
        timings: [timing(1, 0, 500), timing(1, 0, 2000), timing(3, 0, 5000)],
        quick: Quick::Only(&[1]),
    },
    Scenario {
        id: ScenarioId::Churn,
        title: "Connection churn",
        question: "A new connection for every request (Connection: close), 100 at a time: \
                   connections per second, what each costs, and the errors.",
        points: &[Point::new(
            "close per request",
            Drive::Churn {
                connections: SEED_CONNECTIONS,
            },
        )],
        timings: SHORT,
        quick: Quick::All,
    },
    Scenario {
        id: ScenarioId::Slow,
        title: "Slow clients",
        question: "The seed load while 50 slowloris connections, opened first, send one header \
                   byte every 500 ms: the normal clients' throughput and p99 against the seed \
                   run without them, and how long the slow ones were held.",
        points: &[Point::new(
            "50 slowloris",
            Drive::Slow {
                connections: SEED_CONNECTIONS,
                slow: 50,
                interval: Duration::from_millis(500),
            },
        )],
        timings: [
            timing(1, 50, 500),
            timing(1, 300, 2000),
            timing(3, 1000, 10_000),
        ],
        quick: Quick::All,
    },
    Scenario {
        id: ScenarioId::Noise,
        title: "Malformed requests",
        question: "90 connections send valid requests while 10 others each send a malformed \
                   one every 10 ms on a new connection (bad request line, Content-Length with \
                   Transfer-Encoding, oversized header): the valid throughput, and whether every \
                   malformed request got its 4xx and a closed connection.",
        points: &[Point::new(
            "10 noisy of 100",
            Drive::Noise {
                connections: 90,
                noisy: 10,
                interval: Duration::from_millis(10),
            },
        )],
        timings: SHORT,
        quick: Quick::All,
    },
    Scenario {
        id: ScenarioId::Work,
        title: "Handlers that cost something",
        question: "The seed load with a handler that burns 50 µs of CPU per request \
                   (serve --work cpu:50us), one that blocks 1 ms per request as a synchronous \
                   database call would (serve --work wait:1ms), one that waits 1 ms without \
                   holding its thread as an asynchronous call would (serve --work await:1ms), \
                   and two whose CPU time spreads: exponential around 50 µs (cpu:exp(50us)) and \
                   10 µs but 1 ms for 1% of requests (cpu:10us|1ms@1%, the work of `spread`): \
                   what a blocking wait does to a reactor compared with the threaded models, \
                   what parking the request instead gives back, and each model's peak under \
                   each handler (the ceiling of its `capacity` search).",
        points: &[
            with_work("cpu:50us", "cpu:50us"),
            with_work("wait:1ms", "wait:1ms"),
            with_work("await:1ms", "await:1ms"),
            with_work("cpu:exp(50us)", "cpu:exp(50us)"),
            with_work(SPREAD_WORK, SPREAD_WORK),
        ],
        timings: SHORT,
        quick: Quick::Only(&[0, 1, 2, 4]),
    },
    Scenario {
        id: ScenarioId::Capacity,
        title: "Capacity: the load each model carries within a latency target",
        question: "For the seed's handler and each handler of `work`: the highest rate offered \
                   (open loop, latency from the intended send times) at which p99 stays at or \
                   under a target and at least 99% of the requests are answered, found by \
                   bisection between 1/16 of the model's peak req/s under that handler and the \
                   peak itself, each probe a short window on the same server. The target is 1 ms \
                   for the seed's handler and 10× the mean service time for the others (2× the \
                   rare duration for a bimodal one, whose p99 is that duration), raised to twice \
                   the floor's p99 where the floor itself is above it.",
        points: &[
            capacity("seed handler", None),
            capacity("cpu:50us", Some("cpu:50us")),
            capacity("wait:1ms", Some("wait:1ms")),
            capacity("await:1ms", Some("await:1ms")),
            capacity("cpu:exp(50us)", Some("cpu:exp(50us)")),
            capacity(SPREAD_WORK, Some(SPREAD_WORK)),
        ],
        timings: [timing(1, 20, 100), timing(1, 80, 220), timing(1, 300, 1000)],
        quick: Quick::Only(&[0, 5]),
    },
    Scenario {
        id: ScenarioId::Spread,
        title: "Spread service times",
        question: "Short requests (GET /, 10 µs of CPU: serve --work cpu:10us) mixed with 1% \
                   of long ones (GET /slow, 1 ms of CPU: serve --slow-work cpu:1ms, load --mix \
                   /slow:1%), offered open loop at 50% and 80% of each model's own capacity \
                   under the same service times (cpu:10us|1ms@1%): the short requests' p50, p99 \
                   and p99.9 and the long ones' p99, apart. A short request queued behind a long \
                   one waits for it: head-of-line blocking shows as the short p99 rising.",
        points: &[
            spread("50% of capacity", 0.5),
            spread("80% of capacity", 0.8),
        ],
        timings: BRIEF,
        quick: Quick::Only(&[1]),
    },
    Scenario {
        id: ScenarioId::Body,
        title: "Large responses",
        question: "The seed load (100 connections, closed loop) with 16 KiB and 1 MiB response \
                   bodies (serve --body): req/s, MB/s, and server CPU per KiB sent.",
        points: &[body("16 KiB", "16k"), body("1 MiB", "1m")],
        timings: BRIEF,
        quick: Quick::Only(&[1]),
    },
    Scenario {
        id: ScenarioId::Cores,
        title: "Cores",
        question: "The seed load with the server pinned to 1, 2, 4, ... of the CPUs set aside for \
                   the servers (v3's acceptors and v4's and v5's reactors follow: one per CPU): \
                   req/s and CPU per request as cores are added. Points beyond the server CPUs \
                   are not run; with one server CPU there is one point and no curve.",
        points: &[
            cores("1 CPU", 1),
            cores("2 CPUs", 2),
            cores("4 CPUs", 4),
            cores("8 CPUs", 8),
            cores("16 CPUs", 16),
            cores("32 CPUs", 32),
            cores("64 CPUs", 64),
        ],
        timings: BRIEF,
        quick: Quick::Only(&[0]),
    },
];

/// Time a cell takes beyond its warm-up and window (start, /proc, stop),
/// measured on a 2-core VM (see the README's time budget).
pub const CELL_OVERHEAD: Duration = Duration::from_millis(120);
/// Time to open one idle connection and complete its request.
pub const IDLE_CONNECTION_COST: Duration = Duration::from_micros(60);

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
    /// Recorded window (`capacity`: of each probe).
    pub duration: Duration,
    /// `capacity`: the most probes of its search; 0 for the others.
    pub probes: usize,
}

impl PlannedCell {
    /// The point.
    pub fn point(&self) -> &'static Point {
        &self.scenario.points[self.point]
    }

    /// How long this cell is expected to take.
    pub fn estimate(&self) -> Duration {
        let extra = match self.point().drive {
            Drive::Idle { connections } => IDLE_CONNECTION_COST * connections as u32,
            Drive::Slow { .. } => crate::load::SLOWLORIS_SETUP,
            _ => Duration::ZERO,
        };
        let windows = (self.warmup + self.duration) * self.probes.max(1) as u32;
        windows + CELL_OVERHEAD + extra
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
    /// `--scenarios` was given: every point runs, `--quick` or not.
    pub chosen: bool,
    /// CPUs set aside for the servers (`cores` plans up to it; `None`: one).
    pub server_cpus: Option<usize>,
}

/// Every cell a bench will run, in order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Scenario by scenario, run by run, point by point, server by server:
    /// the servers alternate, so that drift hits them all alike.
    pub cells: Vec<PlannedCell>,
}

impl Plan {
    /// Plans `scenarios` (in [`SCENARIOS`] order) against `servers` servers.
    pub fn new(
        scenarios: &[&'static Scenario],
        servers: usize,
        profile: Profile,
        overrides: Overrides,
    ) -> Plan {
        let mut cells = Vec::new();
        for scenario in SCENARIOS
            .iter()
            .filter(|s| scenarios.iter().any(|c| c.id == s.id))
        {
            let t = scenario.timing(profile);
            let runs = overrides.runs.unwrap_or(t.runs);
            let warmup = match t.warmup.is_zero() {
                true => Duration::ZERO,
                false => overrides.warmup.unwrap_or(t.warmup),
            };
            let duration = overrides.duration.unwrap_or(t.duration);
            let probes = match scenario.id {
                ScenarioId::Capacity => CAPACITY_PROBES[profile as usize],
                _ => 0,
            };
            let cpus = overrides.server_cpus.unwrap_or(1).max(1);
            let quick = match (profile, overrides.chosen) {
                (Profile::Quick, false) => scenario.quick,
                _ => Quick::All,
            };
            let points: Vec<usize> = (0..scenario.points.len())
                .filter(|&i| quick.runs(i))
                .filter(|&i| scenario.points[i].cpus.is_none_or(|k| k <= cpus))
                .collect();
            // The floor runs against the responder alone: one past the
            // servers in the bench's list.
            let against = match scenario.id {
                ScenarioId::Floor => servers..servers + 1,
                _ => 0..servers,
            };
            for run in 1..=runs {
                for &point in &points {
                    for server in against.clone() {
                        cells.push(PlannedCell {
                            scenario,
                            point,
                            server,
                            run,
                            runs,
                            warmup,
                            duration,
                            probes,
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

/// Adds to `chosen` the scenarios a chosen one needs ([`ScenarioId::needs`]),
/// in [`SCENARIOS`] order; returns those added.
pub fn with_dependencies(chosen: &mut Vec<&'static Scenario>) -> Vec<ScenarioId> {
    let mut added = Vec::new();
    while let Some(&n) = chosen
        .iter()
        .flat_map(|s| s.id.needs())
        .find(|n| !chosen.iter().any(|s| s.id == **n))
    {
        chosen.push(n.scenario());
        added.push(n);
    }
    chosen.sort_by_key(|s| s.id);
    added.sort();
    added
}

/// The scenarios `--quick` runs when `--scenarios` is not given: every one,
/// some with fewer points ([`Scenario::quick`]).
pub fn quick_set() -> Vec<&'static Scenario> {
    SCENARIOS.iter().collect()
}
