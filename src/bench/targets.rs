//! Targets as data: a named set (`--check NAME`) of bounds on figures of the
//! report's tables, each read from one server at one point of one scenario,
//! either as measured or as a ratio to another server's figure in the same
//! runs. One function, [`check`], decides every verdict from the results;
//! the writers only print them.
//!
//! A target reads a column of the scenario's table by its header (the
//! README's column guide says what each means), so a target can bound any
//! figure a table shows as a median. Its ratio to another server is taken
//! run by run, as the `--baseline` column is: run `r` of the server over run
//! `r` of the reference, at the same point, then the median of those
//! ratios.

use serde::Serialize;

use super::analysis::Verdict;
use super::columns::{columns, group, problems, Lookup, Read, Reference, Unit};
use super::format;
use super::results::{BenchResults, CellResult, Spread};
use super::scenarios;

/// Which side of the bound a figure must fall on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "comparison", content = "bound", rename_all = "snake_case")]
pub enum Bound {
    /// The median must be at most this.
    AtMost(f64),
    /// The median must be at least this.
    AtLeast(f64),
}

impl Bound {
    /// Whether `v` falls within the bound.
    pub fn admits(self, v: f64) -> bool {
        match self {
            Bound::AtMost(b) => v <= b,
            Bound::AtLeast(b) => v >= b,
        }
    }

    /// The bound's value.
    pub fn value(self) -> f64 {
        match self {
            Bound::AtMost(b) | Bound::AtLeast(b) => b,
        }
    }

    /// `at most` or `at least`.
    pub fn words(self) -> &'static str {
        match self {
            Bound::AtMost(_) => "at most",
            Bound::AtLeast(_) => "at least",
        }
    }
}

/// A condition the same server's row must meet for its figure to count
/// (e.g. every idle connection answered before its memory is judged).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// A column of the scenario's table.
    pub column: &'static str,
    /// What its median must satisfy.
    #[serde(flatten)]
    pub bound: Bound,
}

/// One target: a bound on one figure of one server at one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Target {
    /// What it asks, in words.
    pub label: &'static str,
    /// The server (a model's name or a `--server` name).
    pub server: &'static str,
    /// The scenario.
    pub scenario: &'static str,
    /// The point's label in that scenario.
    pub point: &'static str,
    /// The column of the scenario's table the figure comes from.
    pub column: &'static str,
    /// Compare the figure, run by run, with this server's.
    pub relative_to: Option<&'static str>,
    /// The bound on the median.
    #[serde(flatten)]
    pub bound: Bound,
    /// What the row must also show for the figure to count.
    pub only_if: &'static [Condition],
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

const CPU: &str = "server CPU/req";
const IDLE_RSS: &str = "RSS/conn";
const ALL_IDLE_ANSWERED: &[Condition] = &[Condition {
    column: "answered",
    bound: Bound::AtLeast(9_900.0),
}];

/// Every target set.
pub static SETS: &[TargetSet] = &[
    TargetSet {
        name: "issue9",
        about: "issue 9's targets for v5 (uring) and v4 (event) against floor.c (run as \
            --server floor=...), as ratios measured in the same run; needs the scenarios \
            seed, pipeline and idle",
        targets: &[
            Target {
                label: "v5 server CPU per request at most 1.00× the floor's, unpipelined",
                server: "uring",
                scenario: "seed",
                point: "100 connections",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(1.00),
                only_if: &[],
            },
            Target {
                label: "moonshot: v5 server CPU per request at most 0.85× the floor's, unpipelined",
                server: "uring",
                scenario: "seed",
                point: "100 connections",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(0.85),
                only_if: &[],
            },
            Target {
                label: "v5 server CPU per request at most the floor's, pipelined 16 deep",
                server: "uring",
                scenario: "pipeline",
                point: "depth 16",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(1.00),
                only_if: &[],
            },
            Target {
                label: "v4 server CPU per request at most 1.05× the floor's, unpipelined",
                server: "event",
                scenario: "seed",
                point: "100 connections",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(1.05),
                only_if: &[],
            },
            Target {
                label: "v5 RSS per idle connection at most 512 B (10,000 open, all answered)",
                server: "uring",
                scenario: "idle",
                point: "10,000",
                column: IDLE_RSS,
                relative_to: None,
                bound: Bound::AtMost(512.0),
                only_if: ALL_IDLE_ANSWERED,
            },
            Target {
                label: "v4 RSS per idle connection at most 1 KiB (10,000 open, all answered)",
                server: "event",
                scenario: "idle",
                point: "10,000",
                column: IDLE_RSS,
                relative_to: None,
                bound: Bound::AtMost(1024.0),
                only_if: ALL_IDLE_ANSWERED,
            },
        ],
    },
    TargetSet {
        name: "v6",
        about: "v6 (tokio)'s targets against floor.c (run as --server floor=...), as ratios \
            measured in the same run; needs the scenarios seed and pipeline (idle for its \
            memory)",
        targets: &[
            Target {
                label: "v6 server CPU per request at most 1.10× the floor's, unpipelined",
                server: "tokio",
                scenario: "seed",
                point: "100 connections",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(1.10),
                only_if: &[],
            },
            Target {
                label: "v6 server CPU per request at most 1.25× the floor's, pipelined 16 deep",
                server: "tokio",
                scenario: "pipeline",
                point: "depth 16",
                column: CPU,
                relative_to: Some("floor"),
                bound: Bound::AtMost(1.25),
                only_if: &[],
            },
            Target {
                label: "v6 RSS per idle connection at most 1.5 KiB (10,000 open, all answered)",
                server: "tokio",
                scenario: "idle",
                point: "10,000",
                column: IDLE_RSS,
                relative_to: None,
                bound: Bound::AtMost(1536.0),
                only_if: ALL_IDLE_ANSWERED,
            },
        ],
    },
];

/// The set named `name`.
pub fn find(name: &str) -> Option<&'static TargetSet> {
    SETS.iter().find(|s| s.name == name)
}

/// Every set's name.
pub fn names() -> Vec<&'static str> {
    SETS.iter().map(|s| s.name).collect()
}

/// A target, checked against the results.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// The target.
    #[serde(flatten)]
    pub target: Target,
    /// The median (min–max) over the runs: the figure, or its ratio to
    /// `relative_to`'s.
    pub measured: Option<Spread>,
    /// How the figure reads (a ratio reads as a multiple).
    #[serde(skip)]
    pub unit: Unit,
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

/// A column of `scenario`'s table read per run, with its unit.
type Reader = (fn(&CellResult, &Lookup) -> Option<f64>, Unit);

fn median_column(scenario: &str, name: &str) -> Result<Reader, String> {
    let metric = columns(scenario)
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| format!("the {scenario} table has no column {name:?}"))?;
    match metric.read {
        Read::Median(f) => Ok((f, metric.unit)),
        _ => Err(format!(
            "the column {name:?} is a total, not a figure per run"
        )),
    }
}

/// Checks one target: the verdict follows the median over the measured runs.
pub fn evaluate(r: &BenchResults, lookup: &Lookup, t: &Target) -> TargetCheck {
    let unit = match (t.relative_to, median_column(t.scenario, t.column)) {
        (Some(_), _) => Unit::Times,
        (None, Ok((_, unit))) => unit,
        (None, Err(_)) => Unit::Count,
    };
    let mut out = TargetCheck {
        target: *t,
        measured: None,
        unit,
        verdict: Verdict::NotMeasured,
        reason: None,
    };
    match measure(r, lookup, t) {
        Ok((spread, mut notes)) => {
            out.measured = Some(spread);
            let unmet = unmet_conditions(r, lookup, t);
            out.verdict = if t.bound.admits(spread.median) && unmet.is_empty() {
                Verdict::Holds
            } else {
                Verdict::DoesNotHold
            };
            notes.extend(unmet);
            if !notes.is_empty() {
                out.reason = Some(notes.join("; "));
            }
        }
        Err(reason) => out.reason = Some(reason),
    }
    out
}

/// The figure's spread over the runs, and notes on runs that gave no
/// figure; `Err` says why there is none.
fn measure(r: &BenchResults, lookup: &Lookup, t: &Target) -> Result<(Spread, Vec<String>), String> {
    for server in std::iter::once(t.server).chain(t.relative_to) {
        if !r.servers.iter().any(|s| s.name == server) {
            return Err(format!("{server} was not in this run"));
        }
    }
    if !r.cells.iter().any(|c| c.scenario == t.scenario) {
        return Err(format!("the {} scenario was not run", t.scenario));
    }
    let point = scenarios::find(t.scenario)
        .and_then(|s| s.points.iter().position(|p| p.label == t.point))
        .ok_or_else(|| format!("the {} scenario has no point {:?}", t.scenario, t.point))?;
    let (read, _) = median_column(t.scenario, t.column)?;
    let reference = t
        .relative_to
        .map(|other| Reference::of(&r.cells, other, |c| read(c, lookup)));
    let cells = group(&r.cells, t.scenario, point, t.server);
    let values: Vec<f64> = cells
        .iter()
        .filter(|c| c.measured())
        .filter_map(|c| {
            let v = read(c, lookup)?;
            match &reference {
                Some(reference) => reference.ratio(c, v),
                None => Some(v),
            }
        })
        .collect();
    if let Some(spread) = Spread::of(&values) {
        let runs = cells.len();
        let mut notes = Vec::new();
        if spread.runs < runs {
            notes.push(format!(
                "{} of {runs} runs gave a figure{}",
                spread.runs,
                match t.relative_to {
                    Some(other) => format!(" for both {} and {other}", t.server),
                    None => String::new(),
                }
            ));
        }
        return Ok((spread, notes));
    }
    // Say why: this server's runs, or the reference's.
    let mut why = problems(&cells);
    if let Some(other) = t.relative_to {
        why.extend(
            problems(&group(&r.cells, t.scenario, point, other))
                .into_iter()
                .map(|p| format!("{other}: {p}")),
        );
        if why.is_empty() {
            why.push(format!("no run measured both {} and {other}", t.server));
        }
    }
    if why.is_empty() {
        why.push(format!("no run of {} measured {:?}", t.server, t.column));
    }
    Err(why.join("; "))
}

/// The conditions of `t` its server's row does not meet, in words.
fn unmet_conditions(r: &BenchResults, lookup: &Lookup, t: &Target) -> Vec<String> {
    let Some(point) =
        scenarios::find(t.scenario).and_then(|s| s.points.iter().position(|p| p.label == t.point))
    else {
        return Vec::new();
    };
    let cells = group(&r.cells, t.scenario, point, t.server);
    t.only_if
        .iter()
        .filter_map(|cond| {
            let (read, unit) = match median_column(t.scenario, cond.column) {
                Ok(reader) => reader,
                Err(e) => return Some(e),
            };
            let v: Vec<f64> = cells
                .iter()
                .filter(|c| c.measured())
                .filter_map(|c| read(c, lookup))
                .collect();
            match Spread::of(&v) {
                Some(s) if cond.bound.admits(s.median) => None,
                Some(s) => Some(format!(
                    "{} {} (needs {} {})",
                    cond.column,
                    format::number(s.median, unit),
                    cond.bound.words(),
                    format::number(cond.bound.value(), unit)
                )),
                None => Some(format!("{} not measured", cond.column)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_names_a_real_point_and_a_median_column() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETS.len());
        for set in SETS {
            assert!(!set.targets.is_empty());
            for t in set.targets {
                let s = scenarios::find(t.scenario).expect(t.scenario);
                assert!(
                    s.points.iter().any(|p| p.label == t.point),
                    "{}: no point {}",
                    t.label,
                    t.point
                );
                assert!(median_column(t.scenario, t.column).is_ok(), "{}", t.label);
                for c in t.only_if {
                    assert!(median_column(t.scenario, c.column).is_ok(), "{}", t.label);
                }
            }
        }
    }

    #[test]
    fn bounds() {
        assert!(Bound::AtMost(1.0).admits(1.0) && !Bound::AtMost(1.0).admits(1.01));
        assert!(Bound::AtLeast(2.0).admits(2.0) && !Bound::AtLeast(2.0).admits(1.99));
    }
}
