//! `servelab bench compare` and the `--export-*` flags: two made-up
//! results.json compared (the ratio table, the named differences, the rows
//! only one file has), bad input refused with exit 2, and the CSV export
//! read back with a CSV reader.

mod bench_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bench_support::{bench_of, cell, idle_cell, Fake};
use servelab::bench::analysis::Analysis;
use servelab::bench::columns::Column;
use servelab::bench::compare::{Basis, Comparison};
use servelab::bench::export::{self, Report};
use servelab::bench::machine::{Build, Machine};
use servelab::bench::results::{BenchResults, CellResult};
use servelab::bench::scenarios::{Profile, ScenarioId as S};

fn fake(rps: f64, p99_us: f64) -> Fake {
    Fake {
        rps,
        mean_us: p99_us / 4.0,
        p99_us,
        starved: 0,
        threads: 3,
    }
}

/// Run `run` of `server` at `scenario`'s point `point`, with `rps` req/s, a
/// p99 of `p99_us` and `cpu_us` of server CPU per request.
fn run_cell(
    scenario: S,
    point: usize,
    server: &str,
    run: u32,
    (rps, p99_us, cpu_us): (f64, f64, f64),
) -> CellResult {
    let mut c = cell(scenario, point, server, fake(rps, p99_us), None);
    c.run = run;
    let u = c.server_usage.as_mut().unwrap();
    let responses = c.load.as_ref().unwrap().responses;
    u.cpu_s = cpu_us * responses as f64 / 1e6;
    u.cpu_us_per_request = Some(cpu_us);
    c
}

/// OLD: event with three seed runs, pool with one, event's idle memory, and
/// pool at the first connection point (which NEW lacks).
/// The scenarios the made-up benches of this file ran.
const COMPARE_SCENARIOS: [S; 3] = [S::Seed, S::Connections, S::Idle];

/// `r` on a named machine and build, so that a comparison has something
/// to name when they differ.
fn on_test_machine(mut r: BenchResults) -> BenchResults {
    r.machine = Machine {
        cpu_model: "Test CPU".to_string(),
        cpus: 2,
        memory_bytes: 8 << 30,
        kernel: "6.1.0".to_string(),
        fd_limit: 65536,
    };
    r.build = Build {
        version: "0.1.0".to_string(),
        commit: "aaaaaaaaaaaa".to_string(),
        profile: "release".to_string(),
    };
    r
}

/// The idle point of `server` with every connection answered.
fn idle_cell_all(server: &str, growth_kib: u64) -> CellResult {
    idle_cell(server, growth_kib, 10_000)
}

fn old() -> BenchResults {
    let mut cells = Vec::new();
    for (run, rps) in [(1, 100_000.0), (2, 110_000.0), (3, 90_000.0)] {
        cells.push(run_cell(S::Seed, 0, "event", run, (rps, 400.0, 10.0)));
    }
    cells.push(run_cell(S::Seed, 0, "pool", 1, (50_000.0, 800.0, 20.0)));
    cells.push(idle_cell_all("event", 10_000));
    cells.push(run_cell(
        S::Connections,
        0,
        "pool",
        1,
        (40_000.0, 900.0, 20.0),
    ));
    on_test_machine(bench_of(
        &["event", "pool"],
        COMPARE_SCENARIOS.to_vec(),
        cells,
    ))
}

/// NEW: every event seed run 10% faster with a p99 halved; pool's seed
/// with three runs, the median 60,000; idle memory doubled; uring added;
/// another kernel, commit and profile, unpinned.
fn new() -> BenchResults {
    let mut cells = Vec::new();
    for (run, rps) in [(1, 110_000.0), (2, 121_000.0), (3, 99_000.0)] {
        cells.push(run_cell(S::Seed, 0, "event", run, (rps, 200.0, 10.0)));
    }
    for (run, rps) in [(1, 55_000.0), (2, 60_000.0), (3, 65_000.0)] {
        cells.push(run_cell(S::Seed, 0, "pool", run, (rps, 800.0, 15.0)));
    }
    cells.push(idle_cell_all("event", 20_000));
    cells.push(run_cell(S::Seed, 0, "uring", 1, (130_000.0, 150.0, 8.0)));
    let mut r = on_test_machine(bench_of(
        &["event", "pool", "uring"],
        COMPARE_SCENARIOS.to_vec(),
        cells,
    ));
    r.machine.kernel = "6.8.0".to_string();
    r.build.commit = "bbbbbbbbbbbb".to_string();
    r.settings.profile = Profile::Full;
    r.settings.pinned = false;
    r.settings.server_cpus.clear();
    r.settings.client_cpus.clear();
    r
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn ratios_are_new_over_old_run_by_run_or_over_the_median() {
    let (o, n) = (old(), new());
    let c = Comparison::of((Path::new("old.json"), &o), (Path::new("new.json"), &n));
    let ids: Vec<(S, &str)> = c
        .rows
        .iter()
        .map(|r| (r.id.scenario, r.id.server.as_str()))
        .collect();
    assert_eq!(
        ids,
        [(S::Seed, "event"), (S::Seed, "pool"), (S::Idle, "event")]
    );
    let figure = |server: &str, scenario: S, column: Column| {
        let row = c
            .rows
            .iter()
            .find(|r| r.id.server == server && r.id.scenario == scenario)
            .unwrap();
        row.figures
            .iter()
            .find(|f| f.column == column)
            .unwrap()
            .clone()
    };
    // Both with three runs: run by run, every ratio 1.1.
    let rps = figure("event", S::Seed, Column::Rps);
    assert_eq!(rps.basis, Basis::PerRun);
    assert!(close(rps.ratio.median, 1.1) && close(rps.ratio.min, 1.1) && close(rps.ratio.max, 1.1));
    assert_eq!(rps.ratio.runs, 3);
    assert!(close(
        figure("event", S::Seed, Column::P99).ratio.median,
        0.5
    ));
    // OLD has one run: NEW's median (min–max) over OLD's median.
    let pool = figure("pool", S::Seed, Column::Rps);
    assert_eq!(pool.basis, Basis::NewOverOldMedian);
    assert!(
        close(pool.ratio.median, 1.2) && close(pool.ratio.min, 1.1) && close(pool.ratio.max, 1.3)
    );
    assert!(close(
        figure("pool", S::Seed, Column::ServerCpu).ratio.median,
        0.75
    ));
    assert!(close(
        figure("event", S::Idle, Column::IdleRss).ratio.median,
        2.0
    ));
    // The seed table has no RSS/conn; idle has no req/s.
    assert!(c.rows[0]
        .figures
        .iter()
        .all(|f| f.column != Column::IdleRss));
    assert!(c.rows[2].figures.iter().all(|f| f.column != Column::Rps));
    // Rows only in one file.
    assert_eq!(c.only_old.len(), 1);
    assert_eq!(
        (c.only_old[0].scenario, c.only_old[0].server.as_str()),
        (S::Connections, "pool")
    );
    assert_eq!(c.only_new.len(), 1);
    assert_eq!(c.only_new[0].server, "uring");
    // What differs, named; what does not, not.
    let what: Vec<&str> = c.differences.iter().map(|d| d.what.as_str()).collect();
    for expected in ["kernel", "commit", "profile", "pinning"] {
        assert!(what.contains(&expected), "{what:?}");
    }
    for same in ["CPU model", "CPUs", "memory", "build", "baseline"] {
        assert!(!what.contains(&same), "{what:?}");
    }
    let kernel = c.differences.iter().find(|d| d.what == "kernel").unwrap();
    assert_eq!(
        (kernel.old.as_str(), kernel.new.as_str()),
        ("6.1.0", "6.8.0")
    );
    // The same file against itself: nothing differs, every ratio 1.
    let same = Comparison::of((Path::new("a"), &o), (Path::new("a"), &o));
    assert!(same.differences.is_empty());
    assert!(same.only_old.is_empty() && same.only_new.is_empty());
    assert!(same
        .rows
        .iter()
        .flat_map(|r| &r.figures)
        .all(|f| close(f.ratio.median, 1.0)));
    let text = same.terminal();
    assert!(text.contains("Same machine"), "{text}");
}

fn servelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servelab"))
        .args(args)
        .output()
        .expect("run servelab")
}

/// A fresh directory of this test's own under the system's temp directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("servelab-compare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn save(path: &Path, r: &BenchResults) {
    std::fs::write(path, serde_json::to_vec_pretty(r).unwrap()).unwrap();
}

#[test]
fn compare_prints_the_differences_and_the_ratio_table() {
    let dir = scratch("cli");
    let (o, n) = (dir.join("old.json"), dir.join("new.json"));
    save(&o, &old());
    save(&n, &new());
    let run = servelab(&["bench", "compare", o.to_str().unwrap(), n.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let differ = stdout.find("The runs differ in").expect(&stdout);
    let table = stdout.find("req/s NEW/OLD").expect(&stdout);
    assert!(differ < table, "the differences come first:\n{stdout}");
    for text in [
        "6.1.0",
        "6.8.0",
        "aaaaaaaaaaaa",
        "bbbbbbbbbbbb",
        "full",
        "unpinned",
        "1.100× †",
        "1.200× (1.100×–1.300×)",
        "RSS/conn NEW/OLD",
        "2.000×",
        "Only in OLD",
        "connections / 1 / pool",
        "Only in NEW",
        "seed / 100 connections / uring",
    ] {
        assert!(stdout.contains(text), "no {text:?} in:\n{stdout}");
    }
    let run = servelab(&[
        "bench",
        "compare",
        "--json",
        o.to_str().unwrap(),
        n.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["rows"][0]["scenario"], "seed");
    assert_eq!(json["rows"][0]["server"], "event");
    assert_eq!(json["rows"][0]["figures"][0]["column"], "req/s");
    assert_eq!(json["rows"][0]["figures"][0]["basis"], "per_run");
    assert!(close(
        json["rows"][0]["figures"][0]["ratio"]["median"]
            .as_f64()
            .unwrap(),
        1.1
    ));
    assert_eq!(json["only_new"][0]["server"], "uring");
    let kernel = json["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["what"] == "kernel")
        .unwrap();
    assert_eq!(kernel["new"], "6.8.0");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `servelab bench compare` that must be refused: exit 2 and the message.
fn refused(args: &[&str], expected: &str) {
    let mut all = vec!["bench"];
    all.extend(args);
    let run = servelab(&all);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(run.stdout.is_empty(), "{args:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: no {expected:?} in {stderr}"
    );
}

#[test]
fn bad_input_exits_2() {
    let dir = scratch("bad");
    let good = dir.join("good.json");
    save(&good, &old());
    let good = good.to_str().unwrap();
    let path = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let missing = dir.join("missing.json");
    refused(&["compare", missing.to_str().unwrap(), good], "cannot read");
    refused(
        &["compare", good, &path("text.json", "not json")],
        "is not a bench's results.json",
    );
    refused(
        &["compare", good, &path("empty.json", "{}")],
        "no \"schema\" field",
    );
    refused(
        &[
            "compare",
            good,
            &path("future.json", r#"{"schema": 99, "cells": []}"#),
        ],
        "schema 99; this servelab reads schema 1",
    );
    refused(
        &[
            "compare",
            &path("load.json", r#"{"schema": 1, "url": "http://x/"}"#),
            good,
        ],
        "load.json is not a bench's results.json",
    );
    refused(&["compare", good], "NEW");
    refused(&["--quick", "compare", good, good], "compare");
    // An export path in a directory that does not exist is refused before
    // anything runs.
    let nowhere = dir.join("no-such-dir").join("r.csv");
    refused(
        &[
            "--from",
            good,
            "--out",
            dir.join("out").to_str().unwrap(),
            "--export-csv",
            nowhere.to_str().unwrap(),
        ],
        "does not exist",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One CSV file read back: its header and its records.
fn read_csv(bytes: &[u8]) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let records = r.records().map(Result::unwrap).collect();
    (header, records)
}

#[test]
fn the_csv_has_one_row_per_point_and_server_with_median_min_max() {
    let mut r = new();
    // A point label with a comma and a quote is quoted per RFC 4180.
    r.cells[0].point = "100 \"connections\", seed".to_string();
    let a = Analysis::of(&r);
    let out = export::csv::render(&Report {
        results: &r,
        analysis: &a,
    })
    .unwrap();
    assert_eq!(out[0].file, "results.csv");
    let text = String::from_utf8(out[0].bytes.clone()).unwrap();
    assert!(text.contains("\"100 \"\"connections\"\", seed\""), "{text}");
    let (header, records) = read_csv(&out[0].bytes);
    assert_eq!(
        &header[..8],
        [
            "scenario",
            "point",
            "server",
            "runs",
            "measured_runs",
            "req_per_s_median",
            "req_per_s_min",
            "req_per_s_max"
        ]
    );
    for key in [
        "p99_us_median",
        "server_cpu_us_per_req_max",
        "rss_bytes_per_conn_min",
        "conn_per_s_median",
    ] {
        assert!(header.iter().any(|h| h == key), "{header:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // One row each: event (labelled by its first run), pool, uring, idle.
    assert_eq!(records.len(), 4);
    let pool = records
        .iter()
        .find(|r| &r[col("server")] == "pool" && &r[col("scenario")] == "seed")
        .unwrap();
    assert_eq!(&pool[col("runs")], "3");
    assert_eq!(&pool[col("measured_runs")], "3");
    assert_eq!(
        pool[col("req_per_s_median")].parse::<f64>().unwrap(),
        60_000.0
    );
    assert_eq!(pool[col("req_per_s_min")].parse::<f64>().unwrap(), 55_000.0);
    assert_eq!(pool[col("req_per_s_max")].parse::<f64>().unwrap(), 65_000.0);
    assert_eq!(
        pool[col("server_cpu_us_per_req_median")]
            .parse::<f64>()
            .unwrap(),
        15.0
    );
    assert_eq!(&pool[col("rss_bytes_per_conn_median")], "");
    let idle = records
        .iter()
        .find(|r| &r[col("scenario")] == "idle")
        .unwrap();
    assert_eq!(
        idle[col("rss_bytes_per_conn_median")]
            .parse::<f64>()
            .unwrap(),
        20_000.0 * 1024.0 / 10_000.0
    );
    assert_eq!(&idle[col("req_per_s_median")], "");
    assert!(records.iter().all(|r| r.len() == header.len()));
}

#[test]
fn export_flags_write_the_report_files_where_asked_besides_out() {
    let dir = scratch("export");
    let saved = dir.join("saved.json");
    save(&saved, &new());
    let out = dir.join("out");
    let (md, json, csv) = (dir.join("r.md"), dir.join("r.json"), dir.join("r.csv"));
    let run = servelab(&[
        "bench",
        "--from",
        saved.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--export-markdown",
        md.to_str().unwrap(),
        "--export-json",
        json.to_str().unwrap(),
        "--export-csv",
        csv.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(read(&md), read(&out.join("REPORT.md")));
    assert_eq!(read(&json), read(&out.join("results.json")));
    assert_eq!(read(&csv), read(&out.join("results.csv")));
    let (header, records) = read_csv(&read(&csv));
    assert_eq!(header[0], "scenario");
    let uring = records.iter().find(|r| &r[2] == "uring").unwrap();
    assert_eq!(
        uring[header.iter().position(|h| h == "req_per_s_median").unwrap()]
            .parse::<f64>()
            .unwrap(),
        130_000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
