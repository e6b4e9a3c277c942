//! `servelab bench`: the seed's analysis, measured on the user's own machine.
//! Every model (and any `--server`) runs as a child process through the
//! [`scenarios`]; the [`runner`] measures each cell into [`results`], from
//! which [`analysis`] decides the tables, claims, guidance and [`targets`],
//! and the [`export`] writers format REPORT.md, results.json and the charts.

pub mod analysis;
pub mod args;
pub mod capacity;
pub mod clients;
pub mod columns;
pub mod compare;
pub mod export;
pub mod floor;
pub mod format;
pub mod given;
pub mod headline;
pub mod machine;
pub mod procfs;
pub mod progress;
pub mod readme;
pub mod results;
pub mod runner;
pub mod scenarios;
pub mod targets;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::ValueEnum;

use crate::models::Model;
use crate::signal::Interrupts;

pub use args::BenchArgs;

use crate::units::utc_now;
use analysis::{Analysis, CAPACITY_CHART, THROUGHPUT_CHART};
use args::cpu_list;
use export::table::Table;
use export::{Output, Report};
use given::Given;
use machine::{Build, CpuTimes, Machine};
use progress::Progress;
use results::{BenchResults, CellResult, OtherLoad, Outcome, ServerInfo, Settings};
use runner::{CellContext, Pinning, Ran, ServerKind, ServerSpec};
use scenarios::{Overrides, Plan, PlannedCell, Profile, Scenario, ScenarioId};

/// A server that failed to start this many times in a row is not tried again.
const START_ATTEMPTS: usize = 2;

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
        let mut models: Vec<Model> = Vec::new();
        for m in if args.models.is_empty() {
            &Model::ALL[..]
        } else {
            &args.models
        } {
            if !models.contains(m) {
                models.push(*m);
            }
        }
        let mut servers: Vec<ServerSpec> = models
            .iter()
            .map(|&m| ServerSpec {
                name: m.name().to_string(),
                kind: ServerKind::Model(m),
            })
            .collect();
        for (name, command) in &args.servers {
            if servers.iter().any(|s| &s.name == name) {
                return Err(format!("--server {name:?} is given twice"));
            }
            if name == scenarios::FLOOR_SERVER {
                return Err(format!(
                    "--server {name:?}: the name is taken by the floor's built-in responder"
                ));
            }
            let kind = ServerKind::External {
                command: command.clone(),
            };
            servers.push(ServerSpec {
                name: name.clone(),
                kind,
            });
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
            let names: Vec<&str> = added.iter().map(|s| s.name()).collect();
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
        let cpus = |list: &Option<args::CpuList>| list.as_ref().map(|c| c.0.clone());
        let (pinning, pin_notes) = pinning(cpus(&args.server_cpus), cpus(&args.client_cpus));
        notes.extend(pin_notes);
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
                    Some(cpus) => format!("one CPU is set aside (CPU {})", cpu_list(cpus)),
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
    if let Some(b) = args
        .baseline
        .as_ref()
        .filter(|b| !servers.contains(&b.as_str()))
    {
        return Err(format!("--baseline {b:?} is not a server of {whose}"));
    }
    let dir = &args.out;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the output directory {}: {e}", dir.display()))?;
    let probe = dir.join(".servelab-bench-probe");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
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

/// Decides the CPUs: as given, or half each; unpinned on one CPU.
fn pinning(server: Option<Vec<usize>>, client: Option<Vec<usize>>) -> (Pinning, Vec<String>) {
    let allowed = runner::allowed_cpus();
    let rest = |taken: &[usize]| -> Vec<usize> {
        allowed
            .iter()
            .copied()
            .filter(|c| !taken.contains(c))
            .collect()
    };
    let (server, client) = match (server, client) {
        (Some(s), c) => {
            let c = c.unwrap_or_else(|| rest(&s));
            (s, c)
        }
        (None, Some(c)) => (rest(&c), c),
        (None, None) if allowed.len() < 2 => {
            let note = format!(
                "only {} CPU available: servers and load ran unpinned, sharing it",
                allowed.len()
            );
            let unpinned = Pinning {
                server: None,
                client: None,
            };
            return (unpinned, vec![note]);
        }
        (None, None) => {
            let (s, c) = allowed.split_at(allowed.len() / 2);
            (s.to_vec(), c.to_vec())
        }
    };
    let mut notes = Vec::new();
    let shared: Vec<usize> = server
        .iter()
        .copied()
        .filter(|x| client.contains(x))
        .collect();
    if !shared.is_empty() {
        notes.push(format!(
            "servers and load share CPU {}: they compete for it, and the numbers show it",
            cpu_list(&shared)
        ));
    }
    if server.is_empty() || client.is_empty() {
        notes.push("no CPU was left for one side: it ran unpinned".to_string());
    }
    let pinning = Pinning {
        server: (!server.is_empty()).then_some(server),
        client: (!client.is_empty()).then_some(client),
    };
    (pinning, notes)
}
/// Code lines (non-blank, non-comment) of `src/models/NAME.rs` or of every
/// file of `src/models/NAME/`.
fn model_source_lines(name: &str) -> Option<(String, u64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let count = |text: &str| {
        let code = |l: &&str| !l.is_empty() && !l.starts_with("//");
        text.lines().map(str::trim).filter(code).count() as u64
    };
    let file = format!("src/models/{name}.rs");
    if let Ok(text) = std::fs::read_to_string(root.join(&file)) {
        return Some((file, count(&text)));
    }
    let folder = format!("src/models/{name}/");
    let mut total = 0;
    for entry in std::fs::read_dir(root.join(&folder)).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            total += count(&std::fs::read_to_string(path).ok()?);
        }
    }
    Some((folder, total))
}

fn server_info(spec: &ServerSpec) -> ServerInfo {
    let (kind, description, source) = match &spec.kind {
        ServerKind::Model(m) => {
            let help = m
                .to_possible_value()
                .and_then(|v| v.get_help().map(ToString::to_string));
            (
                "model",
                help.unwrap_or_default(),
                model_source_lines(m.name()),
            )
        }
        ServerKind::External { command } => ("external", format!("external: {command}"), None),
        ServerKind::Responder => {
            let what = "servelab responder: the machine's floor".to_string();
            ("responder", what, None)
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
            s.name().to_string(),
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
    let setup = Setup::from_args(args).map_err(|e| (2, e))?;
    let fd_limit = runner::raise_fd_limit();
    let mut notes = setup.notes.clone();
    if let Some(cpus) = &setup.pinning.client {
        if let Err(e) = runner::pin_current(cpus) {
            notes.push(format!(
                "could not pin the load to CPU {}: {e}",
                cpu_list(cpus)
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
    let names: Vec<&str> = setup.servers.iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "servelab bench: {} cells ({} scenarios × {} servers: {}), planned about {}; report in {}",
        plan.cells.len(),
        setup.scenarios.len(),
        setup.servers.len(),
        names.join(", "),
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
    // The floor's responder runs after the servers in the list (the plan
    // gives its cells the index one past them); it is no row of the tables.
    let mut specs = setup.servers.clone();
    specs.push(ServerSpec::responder());
    let ctx = CellContext {
        servers: &specs,
        server_cpus: setup.pinning.server.as_deref(),
        load_threads,
        fd_limit,
        interrupted: interrupted_flag,
    };
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut progress = Progress::new(planned);
    let mut run = |cell: &PlannedCell, _: &str, given: &Given| runner::run_cell(cell, &ctx, given);
    let cells = run_plan(&plan, &names, &mut run, interrupted_flag, &mut progress);
    progress.finish();
    let other_load = machine_before.zip(CpuTimes::now()).map(|(before, after)| {
        let own_s = procfs::own_cpu_seconds() - own_before;
        other_load(before, after, own_s, &cells)
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
            notes,
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

/// Runs the cells of `plan` in order with `run` until the end or an
/// interrupt; a server that failed to start [`START_ATTEMPTS`] times in a
/// row is not tried again, and its cells are failed with the reason.
fn run_plan(
    plan: &Plan,
    servers: &[&str],
    run: &mut dyn FnMut(&PlannedCell, &str, &Given) -> Ran,
    interrupted: &AtomicBool,
    progress: &mut Progress,
) -> Vec<CellResult> {
    let mut cells: Vec<CellResult> = Vec::with_capacity(plan.cells.len());
    let mut start_failures: Vec<(usize, String)> = vec![(0, String::new()); servers.len()];
    for cell in &plan.cells {
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
        let name = servers[cell.server];
        let (scenario, point) = (cell.scenario.name(), cell.point().label);
        progress.start(scenario, point, name, cell.run, cell.runs);
        let (failures, last) = &mut start_failures[cell.server];
        let result = if *failures >= START_ATTEMPTS {
            let mut r = CellResult::planned(cell, name, utc_now());
            r.outcome = Outcome::Failed {
                reason: format!("not started: it failed to start {failures} times ({last})"),
            };
            r
        } else {
            let given = given::given(&cells, cell, name);
            let (result, start_failure) = run(cell, name, &given);
            match start_failure {
                Some(reason) => {
                    *failures += 1;
                    if *failures == START_ATTEMPTS {
                        progress.note(&format!("{name} failed to start: {reason}"));
                    }
                    *last = reason;
                }
                None => *failures = 0,
            }
            result
        };
        progress.done(cell.estimate());
        cells.push(result);
    }
    cells
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

/// The machine's CPU time between `before` and `after` that went neither to
/// the bench (`own_s`) nor to its servers (each cell's server CPU from its
/// start to the end of its window), as shares of all the CPUs' time.
fn other_load(before: CpuTimes, after: CpuTimes, own_s: f64, cells: &[CellResult]) -> OtherLoad {
    let usage = cells.iter().filter_map(|c| c.server_usage.as_ref());
    let servers_s: f64 = usage.map(|u| u.loaded.cpu_s).sum();
    let total = (after.total_s - before.total_s).max(f64::MIN_POSITIVE);
    let other = (after.busy_s - before.busy_s - own_s - servers_s).max(0.0);
    OtherLoad {
        other_share: other / total,
        steal_share: (after.steal_s - before.steal_s).max(0.0) / total,
    }
}

/// Why `--quick` without `--scenarios` leaves scenarios (and points) out.
fn quick_note() -> String {
    let left_out: Vec<String> = scenarios::SCENARIOS
        .iter()
        .filter(|s| s.quick_points < s.points.len())
        .map(|s| match s.quick_points {
            0 => format!("{} (all of it)", s.name()),
            n => {
                let plural = if n == 1 { "" } else { "s" };
                format!("{} (all but its first {n} point{plural})", s.name())
            }
        })
        .collect();
    format!(
        "--quick leaves out {} to stay within 60 s; name them with --scenarios to run them whole",
        left_out.join(", ")
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
    for exporter in export::all() {
        outputs.extend(exporter.render(&report)?);
    }
    for o in &outputs {
        let path = args.out.join(&o.file);
        std::fs::write(&path, &o.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let exported = export::write_exports(&outputs, &args.exports())?;
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
        let charts: Vec<_> = [THROUGHPUT_CHART, CAPACITY_CHART]
            .iter()
            .filter_map(|&file| outputs.iter().find(|o| o.file == file))
            .map(|c| (c.file.as_str(), c.bytes.as_slice()))
            .collect();
        let block = args.readme_block.as_deref();
        for path in readme::update(readme, block, results, &analysis, &charts)? {
            println!("Updated {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use results::{ProcSample, ServerUsage};
    use std::time::Duration;

    fn plan(scenarios: &[ScenarioId], servers: usize) -> Plan {
        let chosen: Vec<_> = scenarios.iter().map(|s| s.scenario()).collect();
        Plan::new(&chosen, servers, Profile::Default, Overrides::default())
    }

    type Seen = Vec<(ScenarioId, usize, String, u32)>;

    /// Runs `plan` starting nothing: the cells it was given, in order, and
    /// their planned time; the servers named in `broken` fail to start, and
    /// the interrupt flag rises after `interrupt_after` cells.
    fn run_mock(
        plan: &Plan,
        servers: &[&str],
        broken: &[&str],
        interrupt_after: Option<usize>,
    ) -> (Vec<CellResult>, Seen, Duration) {
        let flag = AtomicBool::new(false);
        let (mut seen, mut planned) = (Seen::new(), Duration::ZERO);
        let mut run = |cell: &PlannedCell, server: &str, _: &Given| {
            seen.push((cell.scenario.id, cell.point, server.to_string(), cell.run));
            planned += cell.estimate();
            if interrupt_after == Some(seen.len()) {
                flag.store(true, Ordering::Relaxed);
            }
            let mut r = CellResult::planned(cell, server, utc_now());
            if !broken.contains(&server) {
                return (r, None);
            }
            r.outcome = Outcome::Failed {
                reason: "the server exited before it was ready".to_string(),
            };
            (r, Some("exited before it was ready".to_string()))
        };
        let mut progress = Progress::new(plan.estimate());
        let cells = run_plan(plan, servers, &mut run, &flag, &mut progress);
        (cells, seen, planned)
    }

    #[test]
    fn the_plan_runs_every_cell_in_order_within_its_budget() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Idle], 2);
        let (cells, seen, planned) = run_mock(&plan, &["a", "b"], &[], None);
        assert_eq!(cells.len(), plan.cells.len());
        assert_eq!(seen.len(), plan.cells.len());
        assert_eq!(planned, plan.estimate());
        let order: Vec<_> = seen.iter().map(|s| (s.0, s.2.as_str(), s.3)).collect();
        assert_eq!(
            &order[..4],
            &[
                (ScenarioId::Seed, "a", 1),
                (ScenarioId::Seed, "b", 1),
                (ScenarioId::Seed, "a", 2),
                (ScenarioId::Seed, "b", 2)
            ]
        );
        assert!(cells.iter().all(CellResult::measured));
    }

    #[test]
    fn an_interrupt_ends_the_plan_after_the_cell_under_way() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Churn], 2);
        let (cells, seen, _) = run_mock(&plan, &["a", "b"], &[], Some(3));
        assert_eq!(seen.len(), 3);
        assert_eq!(cells.len(), 3);
        assert!(cells.len() < plan.cells.len());
    }

    #[test]
    fn a_server_that_fails_to_start_twice_is_not_tried_again() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Connections], 2);
        let (cells, seen, _) = run_mock(&plan, &["ok", "broken"], &["broken"], None);
        assert_eq!(cells.len(), plan.cells.len());
        let tried = seen.iter().filter(|s| s.2 == "broken").count();
        assert_eq!(tried, START_ATTEMPTS);
        let broken: Vec<&CellResult> = cells.iter().filter(|c| c.server == "broken").collect();
        assert!(broken.iter().all(|c| !c.measured()));
        match &broken.last().unwrap().outcome {
            Outcome::Failed { reason } => assert!(
                reason.starts_with("not started: it failed to start 2 times (exited before"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(cells
            .iter()
            .filter(|c| c.server == "ok")
            .all(CellResult::measured));
    }

    #[test]
    fn other_load_is_what_neither_the_bench_nor_its_servers_used() {
        let before = CpuTimes {
            busy_s: 10.0,
            steal_s: 1.0,
            total_s: 100.0,
        };
        let after = CpuTimes {
            busy_s: 18.0,
            steal_s: 1.5,
            total_s: 120.0,
        };
        let mut cell = CellResult::planned(
            &Plan::new(
                &[scenarios::ScenarioId::Seed.scenario()],
                1,
                Profile::Quick,
                Overrides::default(),
            )
            .cells[0],
            "event",
            utc_now(),
        );
        let loaded = ProcSample {
            cpu_s: 3.0,
            ..ProcSample::default()
        };
        cell.server_usage = Some(ServerUsage::new(ProcSample::default(), 2.0, loaded, 1));
        // 8 s busy: 2 s the bench, 3 s the server, 3 s someone else.
        let o = other_load(before, after, 2.0, &[cell.clone()]);
        assert!((o.other_share - 3.0 / 20.0).abs() < 1e-9, "{o:?}");
        assert!((o.steal_share - 0.5 / 20.0).abs() < 1e-9, "{o:?}");
        // Never below zero, whatever the clocks say.
        let o = other_load(before, after, 7.0, &[cell]);
        assert_eq!(o.other_share, 0.0);
    }
}
