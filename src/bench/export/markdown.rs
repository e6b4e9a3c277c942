//! `REPORT.md`: the machine and settings, the seed's summary table measured,
//! the seed's claims checked, "which model when", one section per scenario
//! with its table and charts, and every problem.

use std::fmt::Write;

use crate::bench::analysis::{Analysis, SummaryRow, Verdict};
use crate::bench::columns::{Row, Section, Unit, Value};
use crate::bench::format;
use crate::bench::results::{BenchResults, Spread};

use super::{Exporter, Output, Report};

/// The file name.
pub const FILE: &str = "REPORT.md";

/// Writes `REPORT.md`.
pub struct Markdown;

impl Exporter for Markdown {
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String> {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write_report(&mut out, report.results, report.analysis);
        Ok(vec![Output {
            file: FILE.to_string(),
            bytes: out.into_bytes(),
        }])
    }
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
    writeln!(out, "## Machine and settings\n")?;
    write_settings(out, r)?;
    writeln!(out, "\n## Summary: the seed's table, measured\n")?;
    out.push_str(&summary_table(&a.summary));
    if let Some(chart) = a.charts.iter().find(|c| c.scenario == "seed") {
        writeln!(out, "\n![{}]({})", chart.title, chart.file)?;
    }
    writeln!(out, "\n## The seed's claims, checked\n")?;
    writeln!(
        out,
        "| the seed says | its figures | measured here | verdict | rule |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for c in &a.claims {
        let verdict = match c.verdict {
            Verdict::Holds => "**holds**",
            Verdict::DoesNotHold => "**does not hold**",
            Verdict::NotMeasured => "not measured",
        };
        writeln!(
            out,
            "| {} | {} | {} | {verdict} | {} |",
            cell(c.claim),
            cell(&c.seed_figure),
            cell(&c.measured),
            cell(&c.rule)
        )?;
    }
    writeln!(out, "\n## Which model when\n")?;
    if a.guidance.is_empty() {
        writeln!(out, "Nothing was measured to choose from.")?;
    }
    for g in &a.guidance {
        writeln!(out, "- {g}")?;
    }
    writeln!(out, "\n## Scenarios")?;
    for s in &a.sections {
        writeln!(out, "\n### `{}`: {}\n", s.name, s.title)?;
        writeln!(out, "{}\n", s.question)?;
        if let Some(t) = timing_of(r, &s.name) {
            writeln!(out, "{t}\n")?;
        }
        out.push_str(&section_table(s));
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
        writeln!(out, "- {}", cell(p))?;
    }
    writeln!(
        out,
        "\nEvery figure is in `results.json` with each run's latency histogram; the README's \
         \"Reading the bench report\" explains every column."
    )
}

/// One line saying where, when and how the results were measured.
pub fn provenance(r: &BenchResults) -> String {
    format!(
        "Measured by `servelab bench` ({} profile) on {} ({} CPUs, {}), {}, servelab {} at commit {} ({} build).",
        r.settings.profile.name(),
        r.machine.cpu_model,
        r.machine.cpus,
        format::bytes(r.machine.memory_bytes as f64),
        r.started_at.get(..10).unwrap_or(&r.started_at),
        r.build.version,
        r.build.commit,
        r.build.profile
    )
}

fn write_settings(out: &mut String, r: &BenchResults) -> std::fmt::Result {
    let s = &r.settings;
    let m = &r.machine;
    let cpus = |list: &[usize]| {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let pinning = if s.pinned {
        format!(
            "servers on CPU {}, load on CPU {}",
            cpus(&s.server_cpus),
            cpus(&s.client_cpus)
        )
    } else {
        "unpinned".to_string()
    };
    writeln!(out, "| | |\n|---|---|")?;
    writeln!(out, "| CPU | {} × {} |", cell(&m.cpu_model), m.cpus)?;
    writeln!(out, "| memory | {} |", format::bytes(m.memory_bytes as f64))?;
    writeln!(out, "| kernel | {} |", cell(&m.kernel))?;
    writeln!(
        out,
        "| servelab | {} at commit {} ({} build) |",
        r.build.version, r.build.commit, r.build.profile
    )?;
    writeln!(out, "| started | {} |", r.started_at)?;
    writeln!(out, "| finished | {} |", r.finished_at)?;
    writeln!(out, "| pinning | {pinning} |")?;
    writeln!(out, "| load threads | {} |", s.load_threads)?;
    writeln!(out, "| open-files limit | {} |", format::count(m.fd_limit))?;
    writeln!(out, "| profile | {} |", s.profile.name())?;
    writeln!(
        out,
        "| time | planned {}, took {} |",
        format::seconds(s.planned_s),
        format::seconds(s.elapsed_s)
    )?;
    writeln!(
        out,
        "| servers | {} |",
        r.servers
            .iter()
            .map(|s| format!("{} ({})", s.name, cell(&s.description)))
            .collect::<Vec<_>>()
            .join("; ")
    )?;
    if !s.notes.is_empty() {
        writeln!(out)?;
        for n in &s.notes {
            writeln!(out, "- {n}")?;
        }
    }
    Ok(())
}

/// How a scenario ran: runs, window, warm-up (from its cells).
fn timing_of(r: &BenchResults, scenario: &str) -> Option<String> {
    let cells: Vec<_> = r.cells.iter().filter(|c| c.scenario == scenario).collect();
    let first = cells.first()?;
    let runs = cells.iter().map(|c| c.run).max().unwrap_or(1);
    let window = if scenario == "idle" {
        format!(
            "waiting at most {} for the answers",
            format::seconds(first.config.duration_s)
        )
    } else {
        format!(
            "{} recorded after {} of warm-up",
            format::seconds(first.config.duration_s),
            format::seconds(first.config.warmup_s)
        )
    };
    Some(format!(
        "{runs} run{} per point, {window}; {}.",
        if runs == 1 { "" } else { "s" },
        if runs > 1 {
            "median (min–max) over the runs, totals for counts"
        } else {
            "one run: no spread"
        }
    ))
}

/// The seed's summary table as Markdown.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    out.push_str(
        "| model | concurrency model | req/s | avg latency | p99 | memory per idle connection \
         | threads | server CPU/req | connections served | complexity |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let opt = |s: Option<Spread>, unit: Unit| s.map_or("–".to_string(), |s| spread(s, unit));
        let idle = r.idle.as_ref().map_or("–".to_string(), |i| {
            let mut text = format!("{} (at {}", spread(i.bytes, Unit::Bytes), i.point);
            if i.answered < i.connections as f64 {
                text.push_str(&format!(", {} answered", number(i.answered, Unit::Count)));
            }
            text + ")"
        });
        let served = r.served.map_or("–".to_string(), |(s, of)| {
            format!("{} of {}", spread(s, Unit::Count), format::count(of))
        });
        let lines = r
            .source_lines
            .map_or("–".to_string(), |n| format!("{n} lines"));
        let mut desc = cell(&r.description);
        if !r.problems.is_empty() {
            desc.push_str(&format!(" ({})", cell(&r.problems.join("; "))));
        }
        let _ = writeln!(
            out,
            "| {} | {desc} | {} | {} | {} | {idle} | {} | {} | {served} | {lines} |",
            r.server,
            opt(r.rps, Unit::PerSecond),
            opt(r.mean_us, Unit::Micros),
            opt(r.p99_us, Unit::Micros),
            opt(r.threads, Unit::Count),
            opt(r.cpu_us, Unit::Micros),
        );
    }
    out
}

fn section_table(s: &Section) -> String {
    let many_points = s
        .rows
        .iter()
        .any(|r| s.rows.first().is_some_and(|f| f.point != r.point));
    let mut out = String::new();
    let mut header = vec!["server"];
    if many_points {
        header.insert(0, "point");
    }
    header.extend(s.columns.iter().map(|c| c.0));
    header.push("notes");
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in &s.rows {
        out.push_str(&table_row(row, many_points));
    }
    out
}

fn table_row(row: &Row, with_point: bool) -> String {
    let mut cells: Vec<String> = Vec::new();
    if with_point {
        cells.push(row.point.clone());
    }
    cells.push(row.server.clone());
    cells.extend(row.values.iter().map(value));
    let mut notes = row.problems.clone();
    if row.measured_runs == 0 && notes.is_empty() {
        notes.push("no run measured".to_string());
    }
    cells.push(cell(&notes.join("; ")));
    format!("| {} |\n", cells.join(" | "))
}

fn value(v: &Value) -> String {
    match v {
        Value::Number(s, unit) => spread(*s, *unit),
        Value::Total(n) => format::count(*n),
        Value::Kinds(kinds) if kinds.is_empty() => "0".to_string(),
        Value::Kinds(kinds) => kinds
            .iter()
            .map(|(k, n)| format!("{k}: {}", format::count(*n)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Missing => "–".to_string(),
    }
}

/// A median, with `(min–max)` when the runs differ.
fn spread(s: Spread, unit: Unit) -> String {
    let one = |v: f64| number(v, unit);
    if s.runs > 1 && s.min != s.max {
        format!("{} ({}–{})", one(s.median), one(s.min), one(s.max))
    } else {
        one(s.median)
    }
}

fn number(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => format::rate(v),
        Unit::Micros => format::micros(v),
        Unit::Bytes => format::bytes(v),
        Unit::Kib => format::bytes(v * 1024.0),
        Unit::Count if v.fract() == 0.0 => format::count(v as u64),
        Unit::Count => format!("{v:.1}"),
        Unit::Ratio => format::ratio(v),
        Unit::Share => format::percent(v),
        Unit::Seconds => format::seconds(v),
    }
}

/// Text made safe for a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
