//! `servelab bench` as a command: a `--quick` run on two models (every
//! scenario, with a baseline and a target set), an external server that
//! dies of the bench's SIGTERM, and the bad input it refuses before anything
//! runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use servelab::bench::readme;
use servelab::bench::results::{BenchResults, Outcome};
use servelab::bench::scenarios::ScenarioId;
use servelab::load::decode_histogram;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servelab"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run servelab bench")
}

/// A fresh directory of this test's own under the system's temp directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("servelab-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn quick_bench_writes_report_json_charts_and_the_readme_block() {
    let dir = scratch("quick");
    let out = dir.join("report");
    let readme_path = dir.join("README.md");
    let before = format!(
        "# Title\n\nIntro.\n\n{}\nold\n{}\n\nAfter.\n",
        readme::BEGIN,
        readme::END
    );
    std::fs::write(&readme_path, &before).unwrap();
    let run = bench(&[
        "--quick",
        "--models",
        "sequential,event",
        "--out",
        out.to_str().unwrap(),
        "--update-readme",
        readme_path.to_str().unwrap(),
        "--baseline",
        "event",
        "--check",
        "floor-vs-reactors",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("planned about"), "{stderr}");
    assert!(
        stdout.contains("model") && stdout.contains("concurrency model"),
        "{stdout}"
    );

    // results.json: every cell, the seed's measured values non-zero.
    let results: BenchResults = serde_json::from_str(&read(&out.join("results.json"))).unwrap();
    assert!(results.complete);
    assert_eq!(results.servers.len(), 2);
    let planned = servelab::bench::scenarios::Plan::new(
        &servelab::bench::scenarios::quick_set(),
        2,
        servelab::bench::scenarios::Profile::Quick,
        servelab::bench::scenarios::Overrides {
            server_cpus: Some(results.settings.server_cpus.len()),
            ..Default::default()
        },
    );
    assert_eq!(results.cells.len(), planned.cells.len());
    // The floor ran first, against the responder alone.
    assert_eq!(results.cells[0].scenario, ScenarioId::Floor);
    assert_eq!(results.cells[0].server, "responder");
    assert_eq!(results.cells[0].outcome, Outcome::Measured);
    assert!(results
        .cells
        .iter()
        .any(|c| c.scenario == ScenarioId::Capacity && c.capacity.is_some()));
    for server in ["sequential", "event"] {
        let seed = results
            .cells
            .iter()
            .find(|c| c.scenario == ScenarioId::Seed && c.server == server)
            .unwrap();
        assert_eq!(seed.outcome, Outcome::Measured, "{seed:?}");
        let load = seed.load.as_ref().unwrap();
        assert!(
            load.responses > 0 && load.requests_per_sec > 0.0,
            "{load:?}"
        );
        assert!(load.latency_us.unwrap().p99 > 0.0);
        let usage = seed.server_usage.unwrap();
        assert!(usage.loaded.rss_kib > 0 && usage.loaded.threads > 0 && usage.loaded.fds > 0);
        assert!(seed.shutdown.as_ref().unwrap().clean, "{:?}", seed.shutdown);
        let served = load.fairness.served;
        if server == "sequential" {
            assert_eq!(
                (served, load.fairness.starved),
                (1, 99),
                "v1 serves one connection"
            );
        } else {
            assert_eq!(served, 100);
        }
    }
    // CPU time is counted in clock ticks: one short window may see none on a
    // busy machine, the whole run cannot.
    let server_cpu: f64 = results
        .cells
        .iter()
        .filter_map(|c| c.server_usage)
        .map(|u| u.cpu_s)
        .sum();
    let client_cpu: f64 = results.cells.iter().filter_map(|c| c.client_cpu_s).sum();
    assert!(
        server_cpu > 0.0 && client_cpu > 0.0,
        "{server_cpu} {client_cpu}"
    );
    // Every histogram decodes, with as many samples as the summary counts.
    let mut histograms = 0;
    for c in &results.cells {
        if let (Some(text), Some(load)) = (&c.histogram, &c.load) {
            let h = decode_histogram(text).expect("a V2 histogram");
            assert_eq!(h.len(), load.latency_us.map_or(0, |l| l.count));
            histograms += 1;
        }
    }
    assert!(histograms >= 20, "{histograms}");
    // The scenario-specific clients measured something.
    let cell = |scenario: ScenarioId, server: &str| {
        results
            .cells
            .iter()
            .find(|c| c.scenario == scenario && c.server == server && c.measured())
            .unwrap_or_else(|| panic!("{scenario}/{server} not measured"))
    };
    let idle = cell(ScenarioId::Idle, "event").idle.clone().unwrap();
    assert!(idle.answered > 0, "{idle:?}");
    let slow = cell(ScenarioId::Slow, "event").slow.clone().unwrap();
    assert_eq!(slow.connected, 50);
    let noise = cell(ScenarioId::Noise, "event").noise.clone().unwrap();
    assert!(noise.sent() > 0);
    assert_eq!(noise.rejected_and_closed(), noise.sent(), "{noise:?}");
    assert!(
        cell(ScenarioId::Churn, "event")
            .load
            .as_ref()
            .unwrap()
            .reconnects
            > 0
    );

    // At least five charts, each well-formed SVG.
    let svgs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(svgs.len() >= 5, "{svgs:?}");
    for svg in &svgs {
        let text = read(svg);
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(doc.descendants().any(|n| n.has_tag_name("text")));
    }

    // The baseline ratios and the targets, computed and written.
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("results.json"))).unwrap();
    assert_eq!(json["settings"]["baseline"], "event");
    let other = json["settings"]["other_load"]["other_share"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&other), "{other}");
    let entries = json["baseline"]["entries"].as_array().unwrap();
    let ratio = |server: &str| {
        entries
            .iter()
            .find(|e| e["scenario"] == "seed" && e["server"] == server)
            .map(|e| e["ratio"]["median"].as_f64())
            .unwrap_or_else(|| panic!("no seed entry for {server}: {entries:?}"))
    };
    assert_eq!(ratio("event"), Some(1.0), "the baseline over itself");
    assert!(ratio("sequential").is_some_and(|r| r > 0.0));
    let checks = json["targets"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9);
    for c in checks {
        if c["server"] != "event" || c["relative_to"] == "floor" {
            assert_eq!(c["verdict"], "not_measured", "{c}");
            assert!(
                c["reason"]
                    .as_str()
                    .unwrap()
                    .ends_with("was not in this run"),
                "{c}"
            );
        } else {
            // v4's memory per idle connection: measured, whichever way it went.
            assert_ne!(c["verdict"], "not_measured", "{c}");
            assert!(c["measured"]["median"].as_f64().is_some(), "{c}");
        }
    }

    // The report has every table.
    let report = read(&out.join("REPORT.md"));
    for text in [
        "| server CPU/req | CPU/req ÷ event |",
        "## Server CPU per request against event",
        "## Targets: `floor-vs-reactors`",
        "| target | measured | bound | verdict | notes |",
    ] {
        assert!(report.contains(text), "no {text:?} in the report");
    }
    for heading in [
        "## Machine and settings",
        "## Summary: the seed's table, measured",
        "## The seed's claims, checked",
        "## Which model when",
        "## Problems",
        "## The machine's latency floor",
        "| point | server | offered/s | req/s | p50 | p99 |",
        "| model | concurrency model | req/s | req/s at p99 ≤ ",
        "| the seed says | its figures | measured here | verdict | rule |",
    ] {
        assert!(report.contains(heading), "no {heading:?} in the report");
    }
    for s in servelab::bench::scenarios::quick_set()
        .into_iter()
        .filter(|s| s.id != ScenarioId::Floor)
    {
        assert!(
            report.contains(&format!("### `{}`", s.id)),
            "no {} section",
            s.id
        );
    }
    assert!(report.contains("sequential left 99 of 100 connections without a single response"));
    for svg in &svgs {
        let name = svg.file_name().unwrap().to_str().unwrap();
        assert!(report.contains(&format!("]({name})")), "{name} not linked");
    }

    // The README block was rewritten, and nothing else.
    let after = read(&readme_path);
    assert!(after.starts_with(&format!(
        "# Title\n\nIntro.\n\n{}\nWritten by `servelab bench --update-readme` from a real run",
        readme::BEGIN
    )));
    assert!(after.ends_with(&format!("{}\n\nAfter.\n", readme::END)));
    assert!(!after.contains("\nold\n"));
    assert!(after.contains("(docs/bench/throughput.svg)"));
    assert!(after.contains("| CPU/req ÷ event |") && after.contains("Targets `floor-vs-reactors`"));
    assert!(dir.join("docs/bench/throughput.svg").exists());
    // The quick run searched capacity for the seed's handler: its chart too.
    assert!(after.contains("(docs/bench/capacity.svg)"), "{after}");
    assert!(dir.join("docs/bench/capacity.svg").exists());

    // --from writes the same report again from results.json, running nothing.
    let again = dir.join("again");
    let from = bench(&[
        "--from",
        out.join("results.json").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&from.stderr);
    assert!(from.status.success(), "{stderr}");
    assert!(!stderr.contains("planned about"), "{stderr}");
    for file in ["REPORT.md", "results.json", "throughput.svg"] {
        assert_eq!(
            read(&out.join(file)),
            read(&again.join(file)),
            "{file} differs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_refuses_what_it_cannot_read_and_flags_that_would_run() {
    let dir = scratch("from");
    let missing = dir.join("missing.json");
    refused(
        &["--from", missing.to_str().unwrap()],
        &["cannot read", "missing.json"],
    );
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{}").unwrap();
    refused(
        &["--from", garbage.to_str().unwrap()],
        &["is not a bench's results.json"],
    );
    refused(
        &["--from", garbage.to_str().unwrap(), "--quick"],
        &["--quick"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs a bench that must be refused: exit 2, a message, nothing measured.
fn refused(args: &[&str], expected: &[&str]) {
    let dir = scratch("refused");
    let out = dir.join("never");
    let mut all: Vec<&str> = args.to_vec();
    let out_arg = out.to_str().unwrap().to_string();
    if !args.contains(&"--out") {
        all.extend(["--out", &out_arg]);
    }
    let run = bench(&all);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(run.stdout.is_empty(), "{args:?} printed a report");
    assert!(
        !stderr.contains("planned about"),
        "{args:?} started: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{args:?}: no {text:?} in {stderr}");
    }
    assert!(!out.join("results.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_before_anything_runs() {
    refused(
        &["--models", "sequential,nosuch"],
        &["nosuch", "sequential", "threaded", "pool", "event"],
    );
    refused(
        &["--scenarios", "seed,warp"],
        &["warp", "seed", "connections", "latency", "noise", "work"],
    );
    refused(&["--server", "nginx"], &["NAME=CMD"]);
    refused(&["--server", "nginx=nginx -g daemon"], &["{port}"]);
    refused(&["--server", "event=true {port}"], &["model's name"]);
    refused(&["--server-cpus", "4096"], &["CPU 4096 does not exist"]);
    refused(&["--client-cpus", "0-x"], &["CPU numbers"]);
    refused(&["--quick", "--full"], &["--full"]);
    refused(&["--runs", "0"], &["--runs"]);
    refused(&["--duration", "0s"], &["longer than 0"]);
    refused(
        &["--models", "event,pool", "--baseline", "floor"],
        &["--baseline \"floor\"", "event, pool"],
    );
    refused(
        &[
            "--models",
            "event",
            "--server",
            "floor=true {port}",
            "--baseline",
            "nginx",
        ],
        &["event, floor"],
    );
    refused(&["--check", "issue9"], &["issue9", "floor-vs-reactors"]);
    refused(&["--readme-block", "floor"], &["--update-readme"]);
}

#[test]
fn unwritable_output_and_readme_without_markers_are_refused() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let inside = file.join("report");
    refused(
        &["--out", inside.to_str().unwrap()],
        &["cannot create the output directory"],
    );
    let readme = dir.join("README.md");
    std::fs::write(&readme, "# no markers\n").unwrap();
    refused(
        &["--update-readme", readme.to_str().unwrap()],
        &["bench:begin"],
    );
    std::fs::write(&readme, format!("{}\n{}\n", readme::BEGIN, readme::END)).unwrap();
    refused(
        &[
            "--update-readme",
            readme.to_str().unwrap(),
            "--readme-block",
            "floor",
        ],
        &["bench:begin:floor"],
    );
    let missing = dir.join("missing.md");
    refused(
        &["--update-readme", missing.to_str().unwrap()],
        &["cannot read"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_names_every_flag() {
    let out = bench(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--quick",
        "--full",
        "--models",
        "--scenarios",
        "--out",
        "--runs",
        "--duration",
        "--warmup",
        "--server",
        "--server-cpus",
        "--client-cpus",
        "--update-readme",
        "--readme-block",
        "--baseline",
        "--check",
        "--from",
        "floor-vs-reactors",
        "[default: bench-report]",
        "5 minutes",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

/// A server that cannot start (as v5 where io_uring is disabled) is a failed
/// cell with its own words as the reason, and the bench goes on. An external
/// server that dies of the bench's SIGTERM (as floor.c does) stopped cleanly.
#[test]
fn a_server_that_cannot_start_is_a_failed_cell_with_its_reason() {
    let dir = scratch("broken");
    // A shell waiting on a servelab server: the SIGTERM to its process group
    // kills the shell (no handler) while the server shuts down.
    let dies_of_sigterm = format!(
        "dies={} serve --model event --addr 127.0.0.1:{{port}} & wait",
        env!("CARGO_BIN_EXE_servelab")
    );
    let run = bench(&[
        "--quick",
        "--models",
        "event",
        "--scenarios",
        "churn,noise",
        "--server",
        "broken=echo 'io_uring is disabled here' >&2; exit 3 # {port}",
        "--server",
        &dies_of_sigterm,
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let results: BenchResults = serde_json::from_str(&read(&dir.join("results.json"))).unwrap();
    for c in &results.cells {
        match c.server.as_str() {
            "event" => assert_eq!(c.outcome, Outcome::Measured, "{c:?}"),
            "dies" => {
                assert_eq!(c.outcome, Outcome::Measured, "{c:?}");
                let stop = c.shutdown.as_ref().unwrap();
                assert!(stop.clean, "{stop:?}");
                assert_eq!(stop.signal, Some(15), "{stop:?}");
            }
            _ => match &c.outcome {
                Outcome::Failed { reason } => assert!(
                    reason.contains(
                        "exited before it was ready (exit status 3): io_uring is disabled here"
                    ) || reason.contains("not started: it failed to start 2 times"),
                    "{reason}"
                ),
                other => panic!("{other:?}"),
            },
        }
    }
    let report = read(&dir.join("REPORT.md"));
    assert!(report.contains("| broken | – |"), "{report}");
    assert!(report.contains("io_uring is disabled here"));
    assert!(!report.contains("unclean shutdown"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
