//! `servelab bench compare OLD NEW`: two saved `results.json` side by side,
//! as hyperfine users expect. First what differs between the two runs
//! (machine, kernel, commit, build, profile, settings), then per scenario,
//! point and server present in both the ratio NEW/OLD of each headline
//! figure ([`headline`]), then the rows only one file has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::args::cpu_list;
use super::columns::{Column, Unit};
use super::export::table::Table;
use super::format;
use super::headline::{self, Group};
use super::results::{BenchResults, Spread, SCHEMA};
use super::scenarios::{Profile, ScenarioId};

/// Subcommands of `servelab bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Compare two saved results.json: what differs between the runs, and
    /// the ratio NEW/OLD of the headline figures (req/s, conn/s, p99,
    /// server CPU/req, RSS/conn) of every point and server both have.
    Compare(CompareArgs),
}

/// `servelab bench compare` flags.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run's results.json (the denominator).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The later run's results.json (the numerator).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Print the comparison as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `servelab bench compare`: exit 0, or 2 for a file that cannot be
/// read or is not a bench's results.json.
pub fn run(args: &CompareArgs) -> ExitCode {
    let loaded = load(&args.old).and_then(|old| Ok((old, load(&args.new)?)));
    let (old, new) = match loaded {
        Ok(both) => both,
        Err(e) => {
            eprintln!("servelab bench compare: {e}");
            return ExitCode::from(2);
        }
    };
    let c = Comparison::of((&args.old, &old), (&args.new, &new));
    if args.json {
        match serde_json::to_string_pretty(&c) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("servelab bench compare: cannot encode the comparison: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", c.terminal());
    }
    ExitCode::SUCCESS
}

/// Reads a saved `results.json`, checking that it is one and of the schema
/// this build reads.
pub fn load(path: &Path) -> Result<BenchResults, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let not = |why: String| format!("{} is not a bench's results.json: {why}", path.display());
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| not(e.to_string()))?;
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

/// One point of one scenario against one server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RowId {
    /// The scenario.
    pub scenario: ScenarioId,
    /// The point's label.
    pub point: String,
    /// The server.
    pub server: String,
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
        let old_groups = index(old.1);
        let new_groups = index(new.1);
        let in_old: BTreeMap<&RowId, &Group<'_>> =
            old_groups.iter().map(|(id, g)| (id, g)).collect();
        let in_new: BTreeMap<&RowId, &Group<'_>> =
            new_groups.iter().map(|(id, g)| (id, g)).collect();
        let mut rows = Vec::new();
        let mut only_old = Vec::new();
        for (id, o) in &old_groups {
            match in_new.get(id) {
                Some(n) => rows.push(Row {
                    id: id.clone(),
                    figures: headline::of(id.scenario)
                        .into_iter()
                        .filter_map(|c| figure(c, o, n))
                        .collect(),
                }),
                None => only_old.push(id.clone()),
            }
        }
        let only_new = new_groups
            .iter()
            .filter(|(id, _)| !in_old.contains_key(id))
            .map(|(id, _)| id.clone())
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
        let mut out = String::new();
        let line = |s: &Source| {
            format!(
                "{} ({}, commit {}, {} profile{})",
                s.file,
                s.started_at,
                s.commit,
                s.profile.name(),
                if s.complete { "" } else { ", incomplete" }
            )
        };
        out.push_str(&format!(
            "OLD: {}\nNEW: {}\n\n",
            line(&self.old),
            line(&self.new)
        ));
        if self.differences.is_empty() {
            out.push_str(
                "Same machine, kernel, commit, build, profile and settings in both runs.\n",
            );
        } else {
            out.push_str("The runs differ in:\n");
            let mut t = Table::new(["", "OLD", "NEW"]);
            for d in &self.differences {
                t.row([d.what.as_str(), &d.old, &d.new]);
            }
            out.push_str(&t.terminal());
            out.push('\n');
        }
        out.push_str(&format!("\nRatios: {}.\n", self.definition));
        let mut scenarios: Vec<ScenarioId> = self.rows.iter().map(|r| r.id.scenario).collect();
        scenarios.dedup();
        for s in scenarios {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.id.scenario == s).collect();
            let columns = headline::of(s);
            let mut header = vec!["point".to_string(), "server".to_string()];
            header.extend(columns.iter().map(|c| format!("{} NEW/OLD", c.name())));
            let mut t = Table::new(header);
            for r in rows {
                let mut cells = vec![r.id.point.clone(), r.id.server.clone()];
                for c in &columns {
                    cells.push(r.figures.iter().find(|f| f.column == *c).map_or(
                        "–".to_string(),
                        |f| {
                            let text = format::spread(f.ratio, Unit::Times);
                            match f.basis {
                                Basis::PerRun => format!("{text} †"),
                                Basis::NewOverOldMedian => text,
                            }
                        },
                    ));
                }
                t.row(cells);
            }
            out.push_str(&format!("\n{s}\n{}\n", t.terminal()));
        }
        if self.rows.is_empty() {
            out.push_str("\nNo point and server is in both files.\n");
        }
        for (which, ids) in [("OLD", &self.only_old), ("NEW", &self.only_new)] {
            if ids.is_empty() {
                continue;
            }
            out.push_str(&format!("\nOnly in {which}:\n"));
            for id in ids {
                out.push_str(&format!(
                    "  {} / {} / {}\n",
                    id.scenario, id.point, id.server
                ));
            }
        }
        out
    }
}

/// The groups of a bench by row, in report order.
fn index(results: &BenchResults) -> Vec<(RowId, Group<'_>)> {
    headline::groups(results)
        .into_iter()
        .map(|g| {
            let id = RowId {
                scenario: g.at.scenario,
                point: g.point.clone(),
                server: g.server.clone(),
            };
            (id, g)
        })
        .collect()
}

/// `column`'s figure in both groups and its ratio; `None` when either has
/// no measured run with it, or OLD's is zero.
fn figure(column: Column, old: &Group<'_>, new: &Group<'_>) -> Option<Figure> {
    let (o, n) = (old.spread(column)?, new.spread(column)?);
    let (ratio, basis) = if o.runs > 1 && n.runs > 1 {
        let (or, nr) = (old.by_run(column), new.by_run(column));
        let ratios: Vec<f64> = nr
            .iter()
            .filter_map(|(run, v)| {
                let base = *or.get(run)?;
                (base > 0.0).then(|| v / base)
            })
            .collect();
        match Spread::of(&ratios) {
            Some(s) => (s, Basis::PerRun),
            None => (over_median(n, o)?, Basis::NewOverOldMedian),
        }
    } else {
        (over_median(n, o)?, Basis::NewOverOldMedian)
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

/// NEW's median, min and max over OLD's median.
fn over_median(new: Spread, old: Spread) -> Option<Spread> {
    (old.median > 0.0).then(|| Spread {
        median: new.median / old.median,
        min: new.min / old.median,
        max: new.max / old.median,
        runs: new.runs,
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

/// Where the runs differ, in the order a reader weighs it.
pub fn differences(old: &BenchResults, new: &BenchResults) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut add = |what: &str, o: String, n: String| {
        if o != n {
            out.push(Difference {
                what: what.to_string(),
                old: o,
                new: n,
            });
        }
    };
    let (om, nm) = (&old.machine, &new.machine);
    add("CPU model", om.cpu_model.clone(), nm.cpu_model.clone());
    add("CPUs", om.cpus.to_string(), nm.cpus.to_string());
    add(
        "memory",
        format::bytes(om.memory_bytes as f64),
        format::bytes(nm.memory_bytes as f64),
    );
    add("kernel", om.kernel.clone(), nm.kernel.clone());
    add("commit", old.build.commit.clone(), new.build.commit.clone());
    add(
        "version",
        old.build.version.clone(),
        new.build.version.clone(),
    );
    add(
        "build",
        old.build.profile.clone(),
        new.build.profile.clone(),
    );
    let (os, ns) = (&old.settings, &new.settings);
    add(
        "profile",
        os.profile.name().to_string(),
        ns.profile.name().to_string(),
    );
    let pinning = |s: &super::results::Settings| {
        if s.pinned {
            format!(
                "servers on CPU {}, load on CPU {}",
                cpu_list(&s.server_cpus),
                cpu_list(&s.client_cpus)
            )
        } else {
            "unpinned".to_string()
        }
    };
    add("pinning", pinning(os), pinning(ns));
    add(
        "load threads",
        os.load_threads.to_string(),
        ns.load_threads.to_string(),
    );
    let baseline = |s: &super::results::Settings| s.baseline.clone().unwrap_or("none".into());
    add("baseline", baseline(os), baseline(ns));
    let complete = |r: &BenchResults| {
        if r.complete {
            "complete".to_string()
        } else {
            "incomplete (interrupted)".to_string()
        }
    };
    add("complete", complete(old), complete(new));
    // Windows and runs (a profile overridden with --runs, --duration,
    // --warmup), per scenario both ran.
    let timing = |r: &BenchResults, s: ScenarioId| {
        let cells: Vec<_> = r.cells.iter().filter(|c| c.scenario == s).collect();
        let first = cells.first()?;
        let runs = cells.iter().map(|c| c.run).max().unwrap_or(1);
        Some(format!(
            "{runs} × {} (warm-up {})",
            format::seconds(first.config.duration_s),
            format::seconds(first.config.warmup_s)
        ))
    };
    for s in ScenarioId::all() {
        if let (Some(o), Some(n)) = (timing(old, s), timing(new, s)) {
            add(&format!("{s} runs × window"), o, n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_over_the_median_when_one_side_has_one_run() {
        let old = Spread::of(&[100.0]).unwrap();
        let new = Spread::of(&[90.0, 110.0, 100.0]).unwrap();
        let r = over_median(new, old).unwrap();
        assert_eq!((r.median, r.min, r.max, r.runs), (1.0, 0.9, 1.1, 3));
        assert!(over_median(new, Spread::of(&[0.0]).unwrap()).is_none());
    }
}
