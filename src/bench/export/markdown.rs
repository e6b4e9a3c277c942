//! `REPORT.md`: the machine and settings, the seed's summary table measured,
//! the `--check` targets, the seed's claims checked, "which model when", one
//! section per scenario with its table and charts, and every problem.

use std::fmt::Write;

use crate::bench::analysis::{baseline_header, Analysis, BaselineTable, Verdict};
use crate::bench::columns::{Section, Unit, Value};
use crate::bench::format::{self, maybe, number, spread};
use crate::bench::results::{BenchResults, OtherLoad};
use crate::bench::scenarios::{PointId, ScenarioId};
use crate::bench::targets::Checked;

use super::table::{escape, Table};
use super::{Output, Report};

/// The file name.
pub const FILE: &str = "REPORT.md";

/// Renders `REPORT.md`.
pub fn render(report: &Report<'_>) -> Result<Vec<Output>, String> {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, report.results, report.analysis);
    Output::only(FILE, out.into_bytes())
}

fn write_report(out: &mut String, r: &BenchResults, a: &Analysis) -> std::fmt::Result {
    writeln!(out, "# servelab bench report\n")?;
    if !r.complete {
        writeln!(
            out,
            "**Incomplete: the bench was interrupted.** The tables hold what was measured until then.\n"
        )?;
    }
    writeln!(out, "{}\n", provenance(r))?;
    write_floor(out, a)?;
    writeln!(out, "## Machine and settings\n")?;
    write_settings(out, r)?;
    writeln!(out, "\n## Summary: the seed's table, measured\n")?;
    out.push_str(&summary_table(a).markdown());
    if let Some(chart) = a.charts.iter().find(|c| c.scenario == ScenarioId::Seed) {
        writeln!(out, "\n![{}]({})", chart.title, chart.file)?;
    }
    if let Some(b) = &a.baseline {
        writeln!(out, "\n## Server CPU per request against {}\n", b.baseline)?;
        writeln!(out, "Ratios: {}.\n", b.definition)?;
        out.push_str(&baseline_table(b).markdown());
    }
    if let Some(t) = &a.targets {
        writeln!(out, "\n## Targets: `{}`\n", t.set)?;
        writeln!(out, "{}.\n", t.about)?;
        out.push_str(&targets_table(t).markdown());
    }
    writeln!(out, "\n## The seed's claims, checked\n")?;
    let mut claims = Table::new([
        "the seed says",
        "its figures",
        "measured here",
        "verdict",
        "rule",
    ]);
    for c in &a.claims {
        claims.row([
            c.claim,
            c.seed_figure,
            &c.measured,
            verdict_text(c.verdict),
            &c.rule,
        ]);
    }
    out.push_str(&claims.markdown());
    writeln!(out, "\n## Which model when\n")?;
    if a.guidance.is_empty() {
        writeln!(out, "Nothing was measured to choose from.")?;
    }
    for g in &a.guidance {
        writeln!(out, "- {g}")?;
    }
    writeln!(out, "\n## Scenarios")?;
    for s in a.sections.iter().filter(|s| s.name != ScenarioId::Floor) {
        let scenario = s.name.scenario();
        writeln!(out, "\n### `{}`: {}\n", s.name, scenario.title)?;
        writeln!(out, "{}\n", scenario.question)?;
        if let Some(t) = timing_of(r, s.name) {
            writeln!(out, "{t}\n")?;
        }
        out.push_str(&section_table(s).markdown());
        for chart in a.charts.iter().filter(|c| c.scenario == s.name) {
            writeln!(out, "\n![{}]({})", chart.title, chart.file)?;
        }
    }
    writeln!(out, "\n## Problems\n")?;
    if a.problems.is_empty() {
        writeln!(
            out,
            "None: every cell ran, and every server stopped cleanly on SIGTERM."
        )?;
    }
    for p in &a.problems {
        writeln!(out, "- {}", escape(p))?;
    }
    writeln!(
        out,
        "\nEvery figure is in `results.json` with each run's latency histogram; the README's \
         \"Reading the bench report\" explains every column."
    )
}

/// The report's first section: the machine's latency floor and its rule.
fn write_floor(out: &mut String, a: &Analysis) -> std::fmt::Result {
    writeln!(out, "## The machine's latency floor\n")?;
    let Some(section) = a.sections.iter().find(|s| s.name == ScenarioId::Floor) else {
        return writeln!(
            out,
            "Not measured (the `floor` scenario did not run): latency differences are ranked \
             as measured, with no floor to tell them from the machine's noise.\n"
        );
    };
    writeln!(out, "{}\n", ScenarioId::Floor.scenario().question)?;
    writeln!(out, "{}\n", crate::bench::analysis::FLOOR_RULE)?;
    out.push_str(&section_table(section).markdown());
    for n in &a.floor_notes {
        writeln!(out, "\n{n}")?;
    }
    writeln!(out)
}

/// Where, when and how the results were measured, in one line.
pub fn provenance(r: &BenchResults) -> String {
    let mut line = format!(
        "Measured by `servelab bench` ({} profile) on {} ({} CPUs, {}), {}, servelab {} at commit {} ({} build).",
        r.settings.profile.name(),
        r.machine.cpu_model,
        r.machine.cpus,
        format::bytes(r.machine.memory_bytes as f64),
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.build.version,
        r.build.commit,
        r.build.profile
    );
    if let Some(o) = &r.settings.other_load {
        line.push_str(&format!(" Other load: {}.", other_load(o)));
    }
    line
}

fn write_settings(out: &mut String, r: &BenchResults) -> std::fmt::Result {
    let (s, m, b) = (&r.settings, &r.machine, &r.build);
    let baseline = s.baseline.as_ref().map(|b| {
        let header = baseline_header(b);
        format!("{b}: `{header}` is each run's server CPU/req over {b}'s in the same run of the same point")
    });
    let (planned, took) = (format::seconds(s.planned_s), format::seconds(s.elapsed_s));
    let servelab = format!("{} at commit {} ({} build)", b.version, b.commit, b.profile);
    let servers = r
        .servers
        .iter()
        .map(|s| format!("{} ({})", s.name, s.description));
    let rows = [
        ("CPU", Some(format!("{} × {}", m.cpu_model, m.cpus))),
        ("memory", Some(format::bytes(m.memory_bytes as f64))),
        ("kernel", Some(m.kernel.clone())),
        ("servelab", Some(servelab)),
        ("started", Some(r.started_at.clone())),
        ("finished", Some(r.finished_at.clone())),
        ("pinning", Some(s.pinning())),
        ("other load", s.other_load.as_ref().map(other_load)),
        ("baseline", baseline),
        ("load threads", Some(s.load_threads.to_string())),
        ("open-files limit", Some(format::count(m.fd_limit))),
        ("profile", Some(s.profile.name())),
        ("time", Some(format!("planned {planned}, took {took}"))),
        ("servers", Some(servers.collect::<Vec<_>>().join("; "))),
    ];
    let mut t = Table::new(["", ""]);
    for (what, value) in rows {
        t.rows.extend(value.map(|v| vec![what.to_string(), v]));
    }
    out.push_str(&t.markdown());
    if !s.notes.is_empty() {
        writeln!(out)?;
    }
    s.notes.iter().try_for_each(|n| writeln!(out, "- {n}"))
}

/// How a scenario ran: runs, window, warm-up (from its cells).
fn timing_of(r: &BenchResults, scenario: ScenarioId) -> Option<String> {
    let (runs, window, warmup) = r.timing(scenario)?;
    let window = match scenario {
        ScenarioId::Idle => format!(
            "waiting at most {} for the answers",
            format::seconds(window)
        ),
        _ => format!(
            "{} recorded after {} of warm-up",
            format::seconds(window),
            format::seconds(warmup)
        ),
    };
    let (s, spread) = match runs {
        1 => ("", "one run: no spread"),
        _ => ("s", "median (min–max) over the runs, totals for counts"),
    };
    Some(format!("{runs} run{s} per point, {window}; {spread}."))
}

/// How busy the machine was with other work, in words.
pub fn other_load(o: &OtherLoad) -> String {
    format!(
        "{} of the CPUs' time went to other processes (kernel threads included) while it ran, {} was stolen by the hypervisor",
        format::percent(o.other_share),
        format::percent(o.steal_share)
    )
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "**holds**",
        Verdict::DoesNotHold => "**does not hold**",
        Verdict::NotMeasured => "not measured",
    }
}

/// The checked targets: target, measured, bound, verdict, notes.
pub fn targets_table(t: &Checked) -> Table {
    let mut table = Table::new(["target", "measured", "bound", "verdict", "notes"]);
    for c in &t.checks {
        let tg = &c.target;
        let (server, column) = (tg.server, tg.column.name());
        let what = match tg.relative_to {
            Some(other) => format!("{server}'s {column} ÷ {other}'s, per run"),
            None => format!("{server}'s {column}"),
        };
        let measured = c.measured.map_or("–".to_string(), |m| {
            let runs = if m.runs == 1 { "run" } else { "runs" };
            format!("{} ({what}, {} {runs})", spread(m, tg.unit()), m.runs)
        });
        let bound = tg.bound.text(tg.unit());
        let reason = c.reason.as_deref().unwrap_or("");
        table.row([tg.label, &measured, &bound, verdict_text(c.verdict), reason]);
    }
    table
}

/// Server CPU per request and its ratio to the baseline's: one row per
/// server, two columns per point.
pub fn baseline_table(b: &BaselineTable) -> Table {
    let (mut points, mut servers): (Vec<PointId>, Vec<&str>) = (Vec::new(), Vec::new());
    for e in &b.entries {
        if !points.contains(&e.at) {
            points.push(e.at);
        }
        if !servers.contains(&e.server.as_str()) {
            servers.push(&e.server);
        }
    }
    let columns = points.iter().flat_map(|at| {
        let (scenario, point) = (at.scenario, at.label());
        let ratio = format!("`{scenario}` {point}: ÷ {}", b.baseline);
        [format!("`{scenario}` {point}: CPU/req"), ratio]
    });
    let mut table = Table::new(std::iter::once("server".to_string()).chain(columns));
    for server in servers {
        let figures = points.iter().flat_map(|at| {
            let e = b.entries.iter().find(|e| e.server == server && e.at == *at);
            let (cpu, ratio) = (e.and_then(|e| e.cpu_us), e.and_then(|e| e.ratio));
            [maybe(cpu, Unit::Micros), maybe(ratio, Unit::Times)]
        });
        table.row(std::iter::once(server.to_string()).chain(figures));
    }
    table
}

/// The seed's summary table, measured.
pub fn summary_table(a: &Analysis) -> Table {
    let baseline = a.baseline.as_ref().map(|b| b.baseline.as_str());
    let capacity = a.summary.iter().find_map(|r| r.capacity_target_us);
    let capacity = capacity.map_or("target".to_string(), format::micros);
    let capacity = format!("req/s at p99 ≤ {capacity}");
    let mut header = vec!["model", "concurrency model", "req/s", capacity.as_str()];
    header.extend(["avg latency", "p99", "memory per idle connection"]);
    header.extend(["threads", "server CPU/req"]);
    let ratio = baseline.map(baseline_header);
    header.extend(ratio.as_deref());
    header.extend(["connections served", "complexity"]);
    let mut table = Table::new(header);
    for r in &a.summary {
        let idle = r.idle.as_ref().map_or("–".to_string(), |i| {
            let answered = match i.answered < i.at.point().drive.connections() as f64 {
                true => format!(", {} answered", number(i.answered, Unit::Count)),
                false => String::new(),
            };
            let (bytes, at) = (spread(i.bytes, Unit::Bytes), i.at.label());
            format!("{bytes} (at {at}{answered})")
        });
        let problems = match r.problems.is_empty() {
            true => String::new(),
            false => format!(" ({})", r.problems.join("; ")),
        };
        let mut row = vec![
            r.server.clone(),
            format!("{}{problems}", r.description),
            maybe(r.rps, Unit::PerSecond),
            maybe(r.capacity, Unit::PerSecond),
            maybe(r.mean_us, Unit::Micros),
            maybe(r.p99_us, Unit::Micros),
            idle,
            maybe(r.threads, Unit::Count),
            maybe(r.cpu_us, Unit::Micros),
        ];
        row.extend(baseline.map(|_| maybe(r.cpu_ratio, Unit::Times)));
        row.push(r.served.map_or("–".to_string(), |(s, of)| {
            format!("{} of {}", spread(s, Unit::Count), format::count(of))
        }));
        let lines = r.source_lines.map(|n| format!("{n} lines"));
        row.push(lines.unwrap_or("–".to_string()));
        table.row(row);
    }
    table
}

fn section_table(s: &Section) -> Table {
    let first = s.rows.first().map(|r| &r.point);
    let many_points = s.rows.iter().any(|r| Some(&r.point) != first);
    let point = many_points.then(|| "point".to_string());
    let columns = s.columns.iter().cloned();
    let header = point
        .into_iter()
        .chain(["server".to_string()])
        .chain(columns);
    let mut table = Table::new(header.chain(["notes".to_string()]));
    for row in &s.rows {
        let point = many_points.then(|| row.point.clone());
        let mut cells: Vec<String> = point.into_iter().chain([row.server.clone()]).collect();
        cells.extend(row.values.iter().map(value));
        let mut notes = row.problems.clone();
        if row.measured_runs == 0 && notes.is_empty() {
            notes.push("no run measured".to_string());
        }
        cells.push(notes.join("; "));
        table.row(cells);
    }
    table
}

fn value(v: &Value) -> String {
    match v {
        Value::Number(s, unit) => spread(*s, *unit),
        Value::Total(n) => format::count(*n),
        Value::Kinds(kinds) if kinds.is_empty() => "0".to_string(),
        Value::Kinds(kinds) => {
            let kinds = kinds
                .iter()
                .map(|(k, n)| format!("{k}: {}", format::count(*n)));
            kinds.collect::<Vec<_>>().join(", ")
        }
        Value::Missing => "–".to_string(),
    }
}
