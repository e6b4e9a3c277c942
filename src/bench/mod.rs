//! `servelab bench`: the seed's analysis, measured on the user's own machine.
//! Every model (and any `--server`) runs as a child process through the
//! [`scenarios`]; the [`runner`] measures each cell into [`results`], from
//! which [`analysis`] decides the tables, claims, guidance and [`targets`],
//! and the [`export`] writers format REPORT.md, results.json and the charts.

pub mod analysis;
pub mod args;
pub mod capacity;
pub mod columns;
pub mod compare;
pub mod export;
pub mod floor;
pub mod format;
pub mod given;
pub mod headline;
pub mod machine;
pub mod progress;
pub mod readme;
pub mod results;
pub mod runner;
pub mod scenarios;
pub mod targets;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::ValueEnum;

use crate::cpus;
use crate::models::Model;
use crate::procfs::{self, CpuTimes};
use crate::signal::Interrupts;

pub use args::BenchArgs;

use crate::units::utc_now;
use analysis::Analysis;
use export::table::Table;
use export::{Output, Report};
use given::Given;
use machine::{Build, Machine};
use progress::Progress;
use results::{BenchResults, OtherLoad, ServerInfo, Settings};
use runner::{CellContext, Pinning, ServerKind, ServerSpec};
use scenarios::{Overrides, Plan, PlannedCell, Profile, Scenario, ScenarioId};

/// What the flags decided, checked.
struct Setup {
    servers: Vec<ServerSpec>,
    scenarios: Vec<&'static Scenario>,
    profile: Profile,
    overrides: Overrides,
    pinning: Pinning,
    notes: Vec<String>,
}

impl Setup {
    fn from_args(args: &BenchArgs) -> Result<Setup, String> {
        let profile = match (args.quick, args.full) {
            (true, _) => Profile::Quick,
            (_, true) => Profile::Full,
            _ => Profile::Default,
        };
        let mut notes = Vec::new();
        let models = match args.models.is_empty() {
            true => &Model::ALL[..],
            false => &args.models,
        };
        let mut servers: Vec<ServerSpec> = Vec::new();
        for &m in models {
            let (name, kind) = (m.name().to_string(), ServerKind::Model(m));
            if !servers.iter().any(|s| s.name == name) {
                servers.push(ServerSpec { name, kind });
            }
        }
        for (name, command) in &args.servers {
            if servers.iter().any(|s| &s.name == name) {
                return Err(format!("--server {name:?} is given twice"));
            }
            if name == scenarios::FLOOR_SERVER {
                return Err(format!(
                    "--server {name:?}: the name is taken by the floor's built-in responder"
                ));
            }
            let command = command.clone();
            let (name, kind) = (name.clone(), ServerKind::External { command });
            servers.push(ServerSpec { name, kind });
        }
        let mut chosen: Vec<&'static Scenario> = match (args.scenarios.is_empty(), profile) {
            (true, Profile::Quick) => {
                notes.push(quick_note());
                scenarios::quick_set()
            }
            (true, _) => scenarios::SCENARIOS.iter().collect(),
            (false, _) => args.scenarios.iter().map(|s| s.scenario()).collect(),
        };
        let added = scenarios::with_dependencies(&mut chosen);
        if !added.is_empty() {
            let names: Vec<String> = added.iter().map(|s| s.name()).collect();
            notes.push(format!(
                "{}{} added: the rates of latency, capacity and spread scale from earlier scenarios \
                 (the floor, seed and work peaks, capacity), and slow compares with seed",
                names.join(", "),
                if added.len() == 1 { " was" } else { " were" }
            ));
        }
        if args.runs.is_some() || args.duration.is_some() || args.warmup.is_some() {
            let planned = |d: Option<String>| d.unwrap_or("as planned".into());
            notes.push(format!(
                "the profile's timings were overridden: runs {}, window {}, warm-up {}",
                planned(args.runs.map(|r| r.to_string())),
                planned(args.duration.map(|d| format!("{d:?}"))),
                planned(args.warmup.map(|d| format!("{d:?}")))
            ));
        }
        let pinning = pinning(args, &mut notes);
        let overrides = Overrides {
            runs: args.runs,
            duration: args.duration,
            warmup: args.warmup,
            chosen: !args.scenarios.is_empty(),
            server_cpus: pinning.server.as_ref().map(Vec::len),
        };
        if chosen.iter().any(|s| s.id == ScenarioId::Cores)
            && overrides.server_cpus.unwrap_or(1) < 2
        {
            notes.push(format!(
                "cores ran its 1-CPU point only: {} for the servers, so there is no curve to draw",
                match &pinning.server {
                    Some(set) => format!("one CPU is set aside (CPU {})", cpus::list(set)),
                    None => "no CPU is set aside".to_string(),
                }
            ));
        }
        let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        let whose = format!("this run (its servers: {})", names.join(", "));
        check_outputs(args, &names, &whose)?;
        Ok(Setup {
            servers,
            scenarios: chosen,
            profile,
            overrides,
            pinning,
            notes,
        })
    }
}

/// Checks, before anything runs, that `--baseline` names one of `servers`
/// (of `whose`) and that every file of the report can be written.
fn check_outputs(args: &BenchArgs, servers: &[&str], whose: &str) -> Result<(), String> {
    let unknown = args
        .baseline
        .as_ref()
        .filter(|b| !servers.contains(&b.as_str()));
    if let Some(b) = unknown {
        return Err(format!("--baseline {b:?} is not a server of {whose}"));
    }
    let dir = &args.out;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the output directory {}: {e}", dir.display()))?;
    let probe = dir.join(".servelab-bench-probe");
    let written = std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe));
    written.map_err(|e| {
        format!(
            "cannot write in the output directory {}: {e}",
            dir.display()
        )
    })?;
    export::check_exports(&args.exports())?;
    match &args.update_readme {
        Some(readme) => readme::check(readme, args.readme_block.as_deref()),
        None => Ok(()),
    }
}

/// Decides the CPUs: as given, or half each; unpinned on one CPU. What the
/// report should say of them goes to `notes`.
fn pinning(args: &BenchArgs, notes: &mut Vec<String>) -> Pinning {
    let given = |cpus: &Option<args::CpuList>| cpus.as_ref().map(|c| c.0.clone());
    let allowed = cpus::allowed();
    let rest = |taken: &[usize]| -> Vec<usize> {
        allowed
            .iter()
            .copied()
            .filter(|c| !taken.contains(c))
            .collect()
    };
    let (server, client) = match (given(&args.server_cpus), given(&args.client_cpus)) {
        (Some(s), c) => {
            let c = c.unwrap_or_else(|| rest(&s));
            (s, c)
        }
        (None, Some(c)) => (rest(&c), c),
        (None, None) if allowed.len() < 2 => {
            let n = allowed.len();
            notes.push(format!(
                "only {n} CPU available: servers and load ran unpinned, sharing it"
            ));
            return Pinning::default();
        }
        (None, None) => {
            let (s, c) = allowed.split_at(allowed.len() / 2);
            (s.to_vec(), c.to_vec())
        }
    };
    let shared: Vec<usize> = server
        .iter()
        .copied()
        .filter(|x| client.contains(x))
        .collect();
    if !shared.is_empty() {
        notes.push(format!(
            "servers and load share CPU {}: they compete for it, and the numbers show it",
            cpus::list(&shared)
        ));
    }
    if server.is_empty() || client.is_empty() {
        notes.push("no CPU was left for one side: it ran unpinned".to_string());
    }
    Pinning {
        server: (!server.is_empty()).then_some(server),
        client: (!client.is_empty()).then_some(client),
    }
}
/// A model's code lines (non-blank, non-comment) and where they are.
fn model_source_lines(model: Model) -> (String, u64) {
    let code = |l: &&str| !l.is_empty() && !l.starts_with("//");
    let (place, files) = model.source();
    let lines = files.iter().flat_map(|text| text.lines().map(str::trim));
    (place.to_string(), lines.filter(code).count() as u64)
}

fn server_info(spec: &ServerSpec) -> ServerInfo {
    let (kind, description, source) = match &spec.kind {
        ServerKind::Model(m) => {
            let help = m
                .to_possible_value()
                .and_then(|v| Some(v.get_help()?.to_string()));
            let source = Some(model_source_lines(*m));
            ("model", help.unwrap_or_default(), source)
        }
        ServerKind::External { command } => ("external", format!("external: {command}"), None),
        ServerKind::Responder => {
            let what = "servelab responder: the machine's floor";
            ("responder", what.to_string(), None)
        }
    };
    ServerInfo {
        name: spec.name.clone(),
        kind: kind.to_string(),
        description,
        source_lines: source.as_ref().map(|s| s.1),
        source_file: source.map(|s| s.0),
    }
}

/// Runs `servelab bench`: exit 0 when it ran to the end, 2 for bad input
/// (before anything runs), 1 when the report cannot be written, 130 when
/// interrupted (after writing what was measured).
pub fn run(args: BenchArgs) -> ExitCode {
    if let Some(args::BenchCommand::Compare(c)) = &args.command {
        return compare::run(c);
    }
    let done = match &args.from {
        Some(from) => rerender(from, &args).map(|()| ExitCode::SUCCESS),
        None => bench(&args),
    };
    done.unwrap_or_else(|(code, e)| {
        eprintln!("servelab bench: {e}");
        ExitCode::from(code)
    })
}

/// `--dry-run`'s table: what each scenario will run and for how long.
fn plan_table(plan: &Plan, scenarios: &[&Scenario]) -> Table {
    let seconds = |d: std::time::Duration| format::seconds(d.as_secs_f64());
    let mut table = Table::new([
        "scenario", "cells", "runs", "points", "servers", "window", "warm-up", "time",
    ]);
    for s in scenarios {
        let cells: Vec<_> = plan
            .cells
            .iter()
            .filter(|c| c.scenario.id == s.id)
            .collect();
        let Some(c) = cells.first() else { continue };
        let mut servers: Vec<usize> = cells.iter().map(|c| c.server).collect();
        servers.sort_unstable();
        servers.dedup();
        table.row([
            s.id.to_string(),
            cells.len().to_string(),
            c.runs.to_string(),
            (cells.len() / c.runs as usize / servers.len().max(1)).to_string(),
            servers.len().to_string(),
            seconds(c.duration),
            seconds(c.warmup),
            seconds(cells.iter().map(|c| c.estimate()).sum()),
        ]);
    }
    table
}

/// Plans, runs and reports a bench; Err carries the exit status and why.
fn bench(args: &BenchArgs) -> Result<ExitCode, (u8, String)> {
    let mut setup = Setup::from_args(args).map_err(|e| (2, e))?;
    let fd_limit = crate::fd_limit::raise_to(None);
    if let Some(client) = &setup.pinning.client {
        if let Err(e) = cpus::pin(&cpus::mask(client)) {
            setup.notes.push(format!(
                "could not pin the load to CPU {}: {e}",
                cpus::list(client)
            ));
        }
    }
    let plan = Plan::new(
        &setup.scenarios,
        setup.servers.len(),
        setup.profile,
        setup.overrides,
    );
    let planned = plan.estimate();
    // The floor's responder runs after the servers in the list (the plan
    // gives its cells the index one past them); it is no row of the tables.
    let mut specs = setup.servers.clone();
    let (name, kind) = (scenarios::FLOOR_SERVER.to_string(), ServerKind::Responder);
    specs.push(ServerSpec { name, kind });
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "servelab bench: {} cells ({} scenarios × {} servers: {}), planned about {}; report in {}",
        plan.cells.len(),
        setup.scenarios.len(),
        setup.servers.len(),
        names[..setup.servers.len()].join(", "),
        format::seconds(planned.as_secs_f64()),
        args.out.display()
    );
    if args.dry_run {
        println!("{}", plan_table(&plan, &setup.scenarios).terminal());
        return Ok(ExitCode::SUCCESS);
    }
    // The first SIGINT or SIGTERM stops the bench after the current cell
    // (the load of a cell under way is cut short) and writes what was
    // measured; a second one ends it at once (its server children die with it).
    let interrupts =
        Interrupts::catch().map_err(|e| (1, format!("cannot catch SIGINT/SIGTERM: {e}")))?;
    let interrupted_flag: &AtomicBool = interrupts.flag();
    let started_at = utc_now();
    let clock = Instant::now();
    let machine_before = CpuTimes::now();
    let own_before = procfs::own_cpu_seconds();
    let load_threads = setup.pinning.client.as_ref().map_or(1, Vec::len).max(1);
    let ctx = CellContext {
        servers: &specs,
        server_cpus: setup.pinning.server.as_deref(),
        load_threads,
        fd_limit,
        interrupted: interrupted_flag,
    };
    let mut progress = Progress::new(planned);
    let mut run = |cell: &PlannedCell, _: &str, given: &Given| runner::run_cell(cell, &ctx, given);
    let cells = runner::run_plan(&plan, &names, &mut run, interrupted_flag, &mut progress);
    progress.finish();
    let other_load = machine_before.zip(CpuTimes::now()).map(|(before, after)| {
        let own_s = procfs::own_cpu_seconds() - own_before;
        OtherLoad::between(before, after, own_s, &cells)
    });
    let interrupted = interrupts.received();
    let results = BenchResults {
        schema: results::SCHEMA,
        complete: interrupted.is_none() && cells.len() == plan.cells.len(),
        started_at,
        finished_at: utc_now(),
        machine: Machine::detect(fd_limit),
        build: Build::detect(),
        settings: Settings {
            profile: setup.profile,
            scenarios: setup.scenarios.iter().map(|s| s.id).collect(),
            pinned: setup.pinning.server.is_some() && setup.pinning.client.is_some(),
            server_cpus: setup.pinning.server.clone().unwrap_or_default(),
            client_cpus: setup.pinning.client.clone().unwrap_or_default(),
            load_threads,
            planned_s: planned.as_secs_f64(),
            elapsed_s: clock.elapsed().as_secs_f64(),
            notes: setup.notes,
            baseline: args.baseline.clone(),
            check: args.check.clone(),
            other_load,
        },
        servers: setup.servers.iter().map(server_info).collect(),
        cells,
    };
    write_report(&results, args).map_err(|e| (1, e))?;
    Ok(interrupted.map_or(ExitCode::SUCCESS, |signal| {
        ExitCode::from(signal.exit_status())
    }))
}

/// `--from`: writes the report of a saved `results.json` again, running
/// nothing. Err carries the exit status and why.
fn rerender(from: &Path, args: &BenchArgs) -> Result<(), (u8, String)> {
    let mut results = BenchResults::load(from).map_err(|e| (2, e))?;
    let names: Vec<&str> = results.servers.iter().map(|s| s.name.as_str()).collect();
    check_outputs(args, &names, &from.display().to_string()).map_err(|e| (2, e))?;
    if args.baseline.is_some() {
        results.settings.baseline = args.baseline.clone();
    }
    if args.check.is_some() {
        results.settings.check = args.check.clone();
    }
    write_report(&results, args).map_err(|e| (1, e))
}

/// Which points `--quick` without `--scenarios` runs where it runs fewer.
fn quick_note() -> String {
    let fewer: Vec<String> = scenarios::SCENARIOS
        .iter()
        .filter_map(|s| match s.quick {
            scenarios::Quick::All => None,
            scenarios::Quick::Only(points) => {
                let labels: Vec<&str> = points.iter().map(|&i| s.points[i].label).collect();
                let (n, total) = (points.len(), s.points.len());
                Some(format!("{}: {} ({n} of {total})", s.id, labels.join(", ")))
            }
        })
        .collect();
    format!(
        "--quick runs only some points of a scenario to stay within 60 s ({}); name a scenario with --scenarios to run it whole",
        fewer.join("; ")
    )
}

/// Writes the report, the exports and the README block, and the summary on stdout.
fn write_report(results: &BenchResults, args: &BenchArgs) -> Result<(), String> {
    let analysis = Analysis::of(results);
    let report = Report {
        results,
        analysis: &analysis,
    };
    let mut outputs: Vec<Output> = Vec::new();
    for render in export::WRITERS {
        outputs.extend(render(&report)?);
    }
    // Every file goes to --out, and those named by --export-* there too.
    let mut exported = Vec::new();
    for o in &outputs {
        let to = args
            .exports()
            .into_iter()
            .filter(|(file, _)| *file == o.file);
        let to: Vec<_> = to.map(|(_, path)| path).collect();
        for path in std::iter::once(args.out.join(&o.file)).chain(to.iter().cloned()) {
            std::fs::write(&path, &o.bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        exported.extend(to);
    }
    println!("{}\n", export::markdown::provenance(results));
    if !results.complete {
        println!("Incomplete: interrupted.\n");
    }
    println!("{}", export::markdown::summary_table(&analysis).terminal());
    for c in &analysis.claims {
        println!("{:?}: {} ({})", c.verdict, c.claim, c.measured);
    }
    if let Some(b) = &analysis.baseline {
        println!(
            "\nServer CPU per request against {} ({}):\n",
            b.baseline, b.definition
        );
        println!("{}", export::markdown::baseline_table(b).terminal());
    }
    if let Some(t) = &analysis.targets {
        println!("\nTargets {}:\n", t.set);
        println!("{}", export::markdown::targets_table(t).terminal());
    }
    if !analysis.problems.is_empty() {
        println!("\n{} problems: see REPORT.md", analysis.problems.len());
    }
    let report = args.out.join(export::markdown::FILE);
    println!("\nReport: {} ({} files)", report.display(), outputs.len());
    for path in exported {
        println!("Exported {}", path.display());
    }
    if let Some(readme) = &args.update_readme {
        let charts: Vec<_> = readme::CHARTS
            .iter()
            .filter_map(|&(file, _)| outputs.iter().find(|o| o.file == file))
            .map(|c| (c.file.as_str(), c.bytes.as_slice()))
            .collect();
        let block = args.readme_block.as_deref();
        for path in readme::update(readme, block, results, &analysis, &charts)? {
            println!("Updated {}", path.display());
        }
    }
    Ok(())
}
