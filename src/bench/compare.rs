//! `servelab bench compare OLD NEW`: two saved `results.json` side by side,
//! as hyperfine users expect: what differs between the runs, then the ratio
//! NEW/OLD of each [`headline`] figure of every row both have, then the rows
//! only one file has.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::args::CompareArgs;
use super::columns::{Column, Unit};
use super::export::table::Table;
use super::format;
use super::headline;
use super::results::{BenchResults, CellIndex, CellResult, Group, RowId, Spread};
use super::scenarios::{Profile, ScenarioId};

/// Runs `servelab bench compare`: exit 0, or 2 for a file that cannot be
/// read or is not a bench's results.json.
pub fn run(args: &CompareArgs) -> ExitCode {
    let loaded =
        BenchResults::load(&args.old).and_then(|old| Ok((old, BenchResults::load(&args.new)?)));
    let (old, new) = match loaded {
        Ok(both) => both,
        Err(e) => {
            eprintln!("servelab bench compare: {e}");
            return ExitCode::from(2);
        }
    };
    let c = Comparison::of((&args.old, &old), (&args.new, &new));
    match args.json {
        // Strings and numbers (a NaN is written null): it cannot fail.
        true => println!(
            "{}",
            serde_json::to_string_pretty(&c).expect("a comparison serializes")
        ),
        false => print!("{}", c.terminal()),
    }
    ExitCode::SUCCESS
}

/// One of the two runs.
#[derive(Clone, Debug, Serialize)]
pub struct Source {
    /// The file it was read from.
    pub file: String,
    /// When it started.
    pub started_at: String,
    /// The commit it was built from.
    pub commit: String,
    /// Its profile.
    pub profile: Profile,
    /// False when it was interrupted.
    pub complete: bool,
}

/// Something that differs between the two runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    /// What: `CPU model`, `kernel`, `commit`, `pinning`...
    pub what: String,
    /// OLD's.
    pub old: String,
    /// NEW's.
    pub new: String,
}

/// How a ratio's min–max was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Both have several runs: run `r` of NEW over run `r` of OLD; the ratio
    /// is the median of those, with their min and max.
    PerRun,
    /// Otherwise: NEW's median, min and max over OLD's median.
    NewOverOldMedian,
}

/// One headline figure of a row, in both runs and as a ratio.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// The column, named by its header.
    pub column: Column,
    /// Its key in the CSV export.
    pub key: &'static str,
    /// OLD's runs: median, min, max.
    pub old: Spread,
    /// NEW's.
    pub new: Spread,
    /// NEW/OLD: median, min, max (runs: how many ratios).
    pub ratio: Spread,
    /// How `ratio` was taken.
    pub basis: Basis,
}

/// A row both runs have, with its headline figures.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Which row.
    #[serde(flatten)]
    pub id: RowId,
    /// The figures both measured, in column order.
    pub figures: Vec<Figure>,
}

/// Two runs compared.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The earlier run (the denominator).
    pub old: Source,
    /// The later run (the numerator).
    pub new: Source,
    /// What differs between them (empty: nothing).
    pub differences: Vec<Difference>,
    /// How the ratios are taken.
    pub definition: &'static str,
    /// The rows both have.
    pub rows: Vec<Row>,
    /// Rows only OLD has.
    pub only_old: Vec<RowId>,
    /// Rows only NEW has.
    pub only_new: Vec<RowId>,
}

/// What [`Comparison::definition`] says.
pub const DEFINITION: &str = "NEW/OLD; where both runs have several runs of a point, the median \
(min–max) of the ratios run by run (run r of NEW over run r of OLD, marked †); otherwise NEW's \
median (min–max) over OLD's median";

impl Comparison {
    /// Compares `new` with `old`.
    pub fn of(old: (&Path, &BenchResults), new: (&Path, &BenchResults)) -> Comparison {
        let (olds, news) = (
            CellIndex::of(&old.1.cells, &old.1.servers),
            CellIndex::of(&new.1.cells, &new.1.servers),
        );
        let (olds, news) = (olds.groups(), news.groups());
        let in_new: BTreeMap<&RowId, &Group<'_>> = news.iter().map(|g| (&g.id, g)).collect();
        let (mut rows, mut only_old) = (Vec::new(), Vec::new());
        for o in olds {
            match in_new.get(&o.id) {
                Some(n) => rows.push(Row {
                    id: o.id.clone(),
                    figures: headline::of(o.id.scenario)
                        .into_iter()
                        .filter_map(|c| figure(c, o, n))
                        .collect(),
                }),
                None => only_old.push(o.id.clone()),
            }
        }
        let only_new = news
            .iter()
            .filter(|n| !olds.iter().any(|o| o.id == n.id))
            .map(|n| n.id.clone())
            .collect();
        Comparison {
            old: source(old.0, old.1),
            new: source(new.0, new.1),
            differences: differences(old.1, new.1),
            definition: DEFINITION,
            rows,
            only_old,
            only_new,
        }
    }

    /// The comparison for a terminal: the differences, one table per
    /// scenario, and the rows only one file has.
    pub fn terminal(&self) -> String {
        let line = |s: &Source| {
            let incomplete = if s.complete { "" } else { ", incomplete" };
            let profile = s.profile.name();
            format!(
                "{} ({}, commit {}, {profile} profile{incomplete})",
                s.file, s.started_at, s.commit
            )
        };
        let mut out = format!("OLD: {}\nNEW: {}\n\n", line(&self.old), line(&self.new));
        if self.differences.is_empty() {
            out.push_str(
                "Same machine, kernel, commit, build, profile and settings in both runs.\n",
            );
        } else {
            let mut t = Table::new(["", "OLD", "NEW"]);
            for d in &self.differences {
                t.row([d.what.as_str(), &d.old, &d.new]);
            }
            out.push_str(&format!("The runs differ in:\n{}\n", t.terminal()));
        }
        out.push_str(&format!("\nRatios: {}.\n", self.definition));
        let mut scenarios: Vec<ScenarioId> = self.rows.iter().map(|r| r.id.scenario).collect();
        scenarios.dedup();
        for s in scenarios {
            let columns = headline::of(s);
            let header = columns.iter().map(|c| format!("{} NEW/OLD", c.name()));
            let mut t = Table::new(
                ["point", "server"]
                    .map(String::from)
                    .into_iter()
                    .chain(header),
            );
            for r in self.rows.iter().filter(|r| r.id.scenario == s) {
                let ratio = |c: &Column| match r.figures.iter().find(|f| f.column == *c) {
                    None => "–".to_string(),
                    Some(f) if f.basis == Basis::PerRun => {
                        format!("{} †", format::spread(f.ratio, Unit::Times))
                    }
                    Some(f) => format::spread(f.ratio, Unit::Times),
                };
                let id = [r.id.point.clone(), r.id.server.clone()];
                t.row(id.into_iter().chain(columns.iter().map(ratio)));
            }
            out.push_str(&format!("\n{s}\n{}\n", t.terminal()));
        }
        if self.rows.is_empty() {
            out.push_str("\nNo point and server is in both files.\n");
        }
        for (which, ids) in [("OLD", &self.only_old), ("NEW", &self.only_new)] {
            if !ids.is_empty() {
                out.push_str(&format!("\nOnly in {which}:\n"));
            }
            for RowId {
                scenario,
                point,
                server,
            } in ids
            {
                out.push_str(&format!("  {scenario} / {point} / {server}\n"));
            }
        }
        out
    }
}

/// `column`'s figure in both groups and its ratio; `None` when either has
/// no measured run with it, or OLD's is zero.
fn figure(column: Column, old: &Group<'_>, new: &Group<'_>) -> Option<Figure> {
    let value = |c: &CellResult| headline::value(column, c);
    let (o, n) = (old.spread(value)?, new.spread(value)?);
    let per_run = (o.runs > 1 && n.runs > 1).then(|| {
        let by_run = |g: &Group<'_>| -> BTreeMap<u32, f64> {
            g.measured()
                .filter_map(|c| Some((c.run, value(c)?)))
                .collect()
        };
        let or = by_run(old);
        let ratios: Vec<f64> = by_run(new)
            .iter()
            .filter_map(|(run, v)| or.get(run).filter(|b| **b > 0.0).map(|b| v / b))
            .collect();
        Spread::of(&ratios)
    });
    let (ratio, basis) = match per_run.flatten() {
        Some(s) => (s, Basis::PerRun),
        None => (n.over(o.median)?, Basis::NewOverOldMedian),
    };
    Some(Figure {
        column,
        key: headline::key(column),
        old: o,
        new: n,
        ratio,
        basis,
    })
}

fn source(path: &Path, r: &BenchResults) -> Source {
    Source {
        file: path.display().to_string(),
        started_at: r.started_at.clone(),
        commit: r.build.commit.clone(),
        profile: r.settings.profile,
        complete: r.complete,
    }
}

/// A fact about a run that [`differences`] compares.
type Fact = (&'static str, fn(&BenchResults) -> String);

/// What a reader weighs first when two runs differ, in that order.
const FACTS: [Fact; 12] = [
    ("CPU model", |r| r.machine.cpu_model.clone()),
    ("CPUs", |r| r.machine.cpus.to_string()),
    ("memory", |r| format::bytes(r.machine.memory_bytes as f64)),
    ("kernel", |r| r.machine.kernel.clone()),
    ("commit", |r| r.build.commit.clone()),
    ("version", |r| r.build.version.clone()),
    ("build", |r| r.build.profile.clone()),
    ("profile", |r| r.settings.profile.name()),
    ("pinning", |r| r.settings.pinning()),
    ("load threads", |r| r.settings.load_threads.to_string()),
    ("baseline", |r| {
        r.settings.baseline.clone().unwrap_or("none".into())
    }),
    ("complete", |r| match r.complete {
        true => "complete".to_string(),
        false => "incomplete (interrupted)".to_string(),
    }),
];

/// Where the runs differ: the `FACTS`, then the runs and window of every
/// scenario both ran (a profile overridden with --runs, --duration, --warmup).
pub fn differences(old: &BenchResults, new: &BenchResults) -> Vec<Difference> {
    let timing = |r: &BenchResults, s| {
        let (runs, window, warmup) = r.timing(s)?;
        let (window, warmup) = (format::seconds(window), format::seconds(warmup));
        Some(format!("{runs} × {window} (warm-up {warmup})"))
    };
    let facts = FACTS
        .iter()
        .map(|(what, f)| (what.to_string(), f(old), f(new)));
    let timings = ScenarioId::all().filter_map(|s| {
        Some((
            format!("{s} runs × window"),
            timing(old, s)?,
            timing(new, s)?,
        ))
    });
    facts
        .chain(timings)
        .filter(|(_, old, new)| old != new)
        .map(|(what, old, new)| Difference { what, old, new })
        .collect()
}
