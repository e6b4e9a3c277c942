//! Targets as data: a named set (`--check NAME`) of bounds on figures of the
//! report's tables, each a column of one server's row at one point, as
//! measured or as a ratio run by run to another server's (as the
//! `--baseline` column is). [`check`] decides every verdict; the writers
//! only print them.

use serde::Serialize;

use super::columns::{columns, problems, Column, Lookup, Read, Reader, Reference, Unit};
use super::format;
use super::results::{BenchResults, CellIndex, Spread};
use super::scenarios::{PointId, ScenarioId, IDLE_10K, LATENCY_75, PIPELINE_16, SEED, SLOW};
use crate::models::Model;

/// Whether a claim or a target holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The numbers agree with the claim.
    Holds,
    /// They do not.
    DoesNotHold,
    /// What it needs was not measured.
    NotMeasured,
}

impl Verdict {
    /// Holds or not, as measured.
    pub fn of(holds: bool) -> Verdict {
        match holds {
            true => Verdict::Holds,
            false => Verdict::DoesNotHold,
        }
    }
}

/// Which side of the bound a figure must fall on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "comparison", content = "bound", rename_all = "snake_case")]
pub enum Bound {
    /// The median must be at most this.
    AtMost(f64),
    /// The median must be at least this.
    AtLeast(f64),
    /// The median must be below this.
    Below(f64),
    /// The median must be within a share (the second figure) of the first.
    Within(f64, f64),
}

impl Bound {
    /// Whether `v` falls within the bound.
    pub fn admits(self, v: f64) -> bool {
        match self {
            Bound::AtMost(b) => v <= b,
            Bound::AtLeast(b) => v >= b,
            Bound::Below(b) => v < b,
            Bound::Within(of, share) => (v / of - 1.0).abs() <= share,
        }
    }

    /// `at most 1.000×`: the bound in words, its figure in `unit`.
    pub fn text(self, unit: Unit) -> String {
        match self {
            Bound::AtMost(b) => format!("at most {}", format::number(b, unit)),
            Bound::AtLeast(b) => format!("at least {}", format::number(b, unit)),
            Bound::Below(b) => format!("below {}", format::number(b, unit)),
            Bound::Within(of, share) => format!(
                "within {} of {}",
                format::percent(share),
                format::number(of, unit)
            ),
        }
    }
}

/// A server a target names: one of servelab's models, or a `--server` by
/// its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRef {
    /// `serve --model`.
    Model(Model),
    /// `--server NAME=...`.
    Named(&'static str),
}

impl ServerRef {
    /// Its name in the results.
    pub fn name(self) -> &'static str {
        match self {
            ServerRef::Model(m) => m.name(),
            ServerRef::Named(name) => name,
        }
    }
}

impl std::fmt::Display for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ServerRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A condition the target's row (or another server's) must meet for its
/// figure to count, e.g. every idle connection answered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// Another server's row than the target's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerRef>,
    /// A column of the scenario's table.
    pub column: Column,
    /// Compare the figure, run by run, with this server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_to: Option<ServerRef>,
    /// What its median must satisfy.
    #[serde(flatten)]
    pub bound: Bound,
}

/// One target: a bound on one figure of one server at one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Target {
    /// What it asks, in words.
    pub label: &'static str,
    /// The server.
    pub server: ServerRef,
    /// The point (`scenario` and `point` label in results.json).
    #[serde(flatten)]
    pub at: PointId,
    /// The column of the scenario's table the figure comes from.
    pub column: Column,
    /// Compare the figure, run by run, with this server's.
    pub relative_to: Option<ServerRef>,
    /// The bound on the median.
    #[serde(flatten)]
    pub bound: Bound,
    /// What the row must also show for the figure to count.
    pub only_if: &'static [Condition],
}

impl Target {
    /// How its figure reads (a ratio reads as a multiple).
    pub fn unit(&self) -> Unit {
        match self.relative_to {
            Some(_) => Unit::Times,
            None => self.column.metric().unit,
        }
    }
}

/// A named set of targets, chosen with `--check NAME`.
#[derive(Debug)]
pub struct TargetSet {
    /// Name for `--check`.
    pub name: &'static str,
    /// What it checks and what the run needs, for `--help` and the report.
    pub about: &'static str,
    /// The targets.
    pub targets: &'static [Target],
}

const CPU: Column = Column::ServerCpu;
const IDLE_RSS: Column = Column::IdleRss;
const URING: ServerRef = ServerRef::Model(Model::Uring);
const EVENT: ServerRef = ServerRef::Model(Model::Event);
const TOKIO: ServerRef = ServerRef::Model(Model::Tokio);
const FLOOR: Option<ServerRef> = Some(ServerRef::Named("floor"));
const ALL_IDLE_ANSWERED: &[Condition] = &[Condition {
    server: None,
    relative_to: None,
    column: Column::IdleAnswered,
    bound: Bound::AtLeast(9_900.0),
}];

/// A reactor's target: at `idle` points, its RSS per idle connection (a
/// figure only when every idle connection was answered); elsewhere, its
/// server CPU per request as a ratio to the floor's; at most `most`.
const fn reactor(label: &'static str, server: ServerRef, at: PointId, most: f64) -> Target {
    let idle = matches!(at.scenario, ScenarioId::Idle);
    Target {
        label,
        server,
        at,
        column: if idle { IDLE_RSS } else { CPU },
        relative_to: if idle { None } else { FLOOR },
        bound: Bound::AtMost(most),
        only_if: if idle { ALL_IDLE_ANSWERED } else { &[] },
    }
}

/// The reactors (v4, v5, v6) against the floor.
pub const FLOOR_VS_REACTORS: TargetSet = TargetSet {
    name: "floor-vs-reactors",
    about: "v5 (uring), v4 (event) and v6 (tokio) against the floor, scripts/floor.c (run \
            as --server floor=...): server CPU per request as ratios measured in the same \
            run, and RSS per idle connection; needs the scenarios seed, pipeline and idle",
    targets: &[
        reactor(
            "v5 server CPU per request at most 1.00× the floor's, unpipelined",
            URING,
            SEED,
            1.00,
        ),
        reactor(
            "moonshot: v5 server CPU per request at most 0.85× the floor's, unpipelined",
            URING,
            SEED,
            0.85,
        ),
        reactor(
            "v5 server CPU per request at most the floor's, pipelined 16 deep",
            URING,
            PIPELINE_16,
            1.00,
        ),
        reactor(
            "v4 server CPU per request at most 1.05× the floor's, unpipelined",
            EVENT,
            SEED,
            1.05,
        ),
        reactor(
            "v5 RSS per idle connection at most 512 B (10,000 open, all answered)",
            URING,
            IDLE_10K,
            512.0,
        ),
        reactor(
            "v4 RSS per idle connection at most 1 KiB (10,000 open, all answered)",
            EVENT,
            IDLE_10K,
            1024.0,
        ),
        reactor(
            "v6 server CPU per request at most 1.10× the floor's, unpipelined",
            TOKIO,
            SEED,
            1.10,
        ),
        reactor(
            "v6 server CPU per request at most 1.25× the floor's, pipelined 16 deep",
            TOKIO,
            PIPELINE_16,
            1.25,
        ),
        reactor(
            "v6 RSS per idle connection at most 1.5 KiB (10,000 open, all answered)",
            TOKIO,
            IDLE_10K,
            1536.0,
        ),
    ],
};

/// The seed's claims: how far a measured ratio may be from the seed's and still "hold".
pub const RATIO_TOLERANCE: f64 = 0.25;
/// Throughputs within this share of each other are "similar".
pub const SIMILAR_THROUGHPUT: f64 = 0.20;
/// A server whose req/s with slow clients falls below this share of its
/// seed req/s was stalled by them.
pub const STALLED_SHARE: f64 = 0.5;

/// The seed's v1.
pub const V1: ServerRef = ServerRef::Model(Model::Sequential);
/// The seed's v2.
pub const V2: ServerRef = ServerRef::Model(Model::Threaded);
/// The seed's v3.
pub const V3: ServerRef = ServerRef::Model(Model::Pool);

/// The seed's claims that are a ratio and a bound (`--check seed-claims`),
/// whose verdicts the report's claims table takes.
pub const SEED_CLAIMS: TargetSet = TargetSet {
    name: "seed-claims",
    about: "the seed's quantitative claims about v1, v2 and v3 (sequential, threaded, pool) \
            that are ratios and bounds, ratios taken run by run; needs the scenarios seed, \
            slow and latency",
    targets: &[
        Target {
            label: "v2 (thread per connection) has about 4.7× v1's throughput",
            server: V2,
            at: SEED,
            column: Column::Rps,
            relative_to: Some(V1),
            bound: Bound::Within(4.7, RATIO_TOLERANCE),
            only_if: &[],
        },
        Target {
            label: "v3 (pool) has about 5× lower average latency than v2 at similar throughput",
            server: V2,
            at: SEED,
            column: Column::Mean,
            relative_to: Some(V3),
            bound: Bound::Within(5.0, RATIO_TOLERANCE),
            only_if: &[Condition {
                server: Some(V3),
                column: Column::Rps,
                relative_to: Some(V2),
                bound: Bound::Within(1.0, SIMILAR_THROUGHPUT),
            }],
        },
        Target {
            label: "v1: a slow client can stall all others",
            server: V1,
            at: SLOW,
            column: Column::VsSeed,
            relative_to: None,
            bound: Bound::Below(STALLED_SHARE),
            only_if: &[],
        },
        Target {
            label: "if low latency is required, consider v3 rather than v2",
            server: V3,
            at: LATENCY_75,
            column: Column::P99,
            relative_to: Some(V2),
            bound: Bound::Below(1.0),
            only_if: &[],
        },
    ],
};

/// Every target set.
pub static SETS: &[TargetSet] = &[FLOOR_VS_REACTORS, SEED_CLAIMS];

/// The set named `name`.
pub fn find(name: &str) -> Option<&'static TargetSet> {
    SETS.iter().find(|s| s.name == name)
}

/// A target, checked against the results.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// The target.
    #[serde(flatten)]
    pub target: Target,
    /// The figure's (or its ratio's) median (min–max) over the runs.
    pub measured: Option<Spread>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was not measured, or what else decided it.
    pub reason: Option<String>,
}

/// The targets of a set, checked.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    /// The set's name.
    pub set: &'static str,
    /// What it checks.
    pub about: &'static str,
    /// One check per target, in the set's order.
    pub checks: Vec<TargetCheck>,
}

/// Checks every target of `set` against `r`.
pub fn check(r: &BenchResults, lookup: &Lookup, set: &'static TargetSet) -> Checked {
    Checked {
        set: set.name,
        about: set.about,
        checks: set.targets.iter().map(|t| evaluate(r, lookup, t)).collect(),
    }
}

/// `column`'s reader per run; Err when `at`'s table lacks it or it is a total.
fn median_column(at: PointId, column: Column) -> Result<Reader, String> {
    let name = column.name();
    match column.metric().read {
        _ if !columns(at.scenario).contains(&column) => {
            Err(format!("the {} table has no column {name:?}", at.scenario))
        }
        Read::Median(f) => Ok(f),
        _ => Err(format!(
            "the column {name:?} is a total, not a figure per run"
        )),
    }
}

/// The note of a target whose smallest or largest run disagrees with its median.
pub const UNSETTLED: &str =
    "runs on both sides of the bound: the median decides, the spread does not settle it";

/// Checks one target: the verdict follows the median over the measured runs.
pub fn evaluate(r: &BenchResults, lookup: &Lookup, t: &Target) -> TargetCheck {
    let cells = CellIndex::of(&r.cells, &r.servers);
    let measure = |f| measure(r, &cells, lookup, f);
    let unmet = |cond: &Condition| {
        let f = Target {
            server: cond.server.unwrap_or(t.server),
            column: cond.column,
            relative_to: cond.relative_to,
            ..*t
        };
        let column = cond.column.name();
        let name = match (cond.server, cond.relative_to) {
            (None, None) => column.to_string(),
            _ => {
                let ratio = f.relative_to.map_or(String::new(), |o| format!(" ÷ {o}'s"));
                format!("{}'s {column}{ratio}", f.server)
            }
        };
        match measure(f) {
            Ok((s, _)) if cond.bound.admits(s.median) => None,
            Ok((s, _)) => Some(format!(
                "{name} {} (needs {})",
                format::number(s.median, f.unit()),
                cond.bound.text(f.unit())
            )),
            Err(_) => Some(format!("{name} not measured")),
        }
    };
    let (measured, verdict, reason) = match measure(*t) {
        Err(reason) => (None, Verdict::NotMeasured, Some(reason)),
        Ok((spread, mut notes)) => {
            let unmet: Vec<String> = t.only_if.iter().filter_map(unmet).collect();
            let verdict = Verdict::of(t.bound.admits(spread.median) && unmet.is_empty());
            let side = |v| t.bound.admits(v) == t.bound.admits(spread.median);
            if !(side(spread.min) && side(spread.max)) {
                notes.push(UNSETTLED.to_string());
            }
            notes.extend(unmet);
            (
                Some(spread),
                verdict,
                (!notes.is_empty()).then(|| notes.join("; ")),
            )
        }
    };
    TargetCheck {
        target: *t,
        measured,
        verdict,
        reason,
    }
}

/// The spread of `f`'s figure over the runs (its label, bound and
/// conditions aside), and notes on runs that gave no figure; `Err` says why
/// there is none.
fn measure(
    r: &BenchResults,
    cells: &CellIndex<'_>,
    lookup: &Lookup,
    f: Target,
) -> Result<(Spread, Vec<String>), String> {
    let server = f.server.name();
    let absent = |s: &ServerRef| !r.servers.iter().any(|x| x.name == s.name());
    if let Some(s) = std::iter::once(f.server).chain(f.relative_to).find(absent) {
        return Err(format!("{s} was not in this run"));
    }
    if !cells.has(f.at.scenario) {
        return Err(format!("the {} scenario was not run", f.at.scenario));
    }
    let read = median_column(f.at, f.column)?;
    let reference = f
        .relative_to
        .map(|other| Reference::of(&r.cells, other.name(), |c| read(c, lookup)));
    let spread = cells.spread(f.at, server, |c| {
        let v = read(c, lookup)?;
        reference
            .as_ref()
            .map_or(Some(v), |reference| reference.ratio(c, v))
    });
    let runs = cells.runs(f.at, server);
    if let Some(spread) = spread {
        let both = f
            .relative_to
            .map_or(String::new(), |o| format!(" for both {server} and {o}"));
        let (gave, of) = (spread.runs, runs.len());
        let note = (gave < of).then(|| format!("{gave} of {of} runs gave a figure{both}"));
        return Ok((spread, note.into_iter().collect()));
    }
    // Say why: this server's runs, or the reference's.
    let mut why = problems(runs);
    if let Some(other) = f.relative_to {
        why.extend(
            problems(cells.runs(f.at, other.name()))
                .into_iter()
                .map(|p| format!("{other}: {p}")),
        );
        if why.is_empty() {
            why.push(format!("no run measured both {server} and {other}"));
        }
    }
    if why.is_empty() {
        why.push(format!("no run of {server} measured {:?}", f.column.name()));
    }
    Err(why.join("; "))
}
