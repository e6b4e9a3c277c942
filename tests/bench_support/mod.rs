//! Made-up bench results for the tests that read them (bench_report,
//! bench_compare): one run of one server at one point, as a cell.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use servelab::bench::machine::{Build, Machine};
use servelab::bench::results::{
    BenchResults, CellConfig, CellResult, Outcome, ProcSample, ServerInfo, ServerUsage, Settings,
};
use servelab::bench::scenarios::ScenarioId as S;
use servelab::bench::scenarios::{Point, Profile};
use servelab::load::{Errors, FairnessJson, KindJson, LatencyUs, LoadSummary};

/// What one made-up run measured.
#[derive(Clone, Copy)]
pub struct Fake {
    /// Requests per second.
    pub rps: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// p99 latency, µs.
    pub p99_us: f64,
    /// Connections that completed nothing.
    pub starved: u64,
    /// Server threads.
    pub threads: u64,
}

/// A latency summary with this mean and p99.
pub fn latency(mean: f64, p99: f64) -> LatencyUs {
    LatencyUs {
        count: 1000,
        min: mean / 4.0,
        mean,
        stdev: mean / 2.0,
        max: p99 * 3.0,
        p50: mean,
        p90: (mean + p99) / 2.0,
        p99,
        p99_9: p99 * 2.0,
        p99_99: p99 * 2.5,
    }
}

/// A point with long requests mixed in: the short kind measured as `f`
/// says, the long ones (1%) ten times slower; no kinds otherwise.
fn kinds(p: &Point, f: Fake, responses: u64) -> Vec<KindJson> {
    let Some(long) = p.long else {
        return Vec::new();
    };
    let kind = |path: &str, share_pct: f64, latency_us: LatencyUs| {
        let responses = (responses as f64 * share_pct / 100.0) as u64;
        KindJson {
            path: path.to_string(),
            share_pct,
            requests_sent: responses,
            responses,
            responses_2xx_3xx: responses,
            latency_us: Some(latency_us),
            histogram: None,
        }
    };
    let share = long.mix().share_ppm as f64 / 10_000.0;
    vec![
        kind("/", 100.0 - share, latency(f.mean_us, f.p99_us)),
        kind("/slow", share, latency(f.mean_us * 10.0, f.p99_us * 10.0)),
    ]
}

/// One measured run of `server` at `scenario`'s point `point`.
pub fn cell(scenario: S, point: usize, server: &str, f: Fake, rate: Option<f64>) -> CellResult {
    let s = scenario.scenario();
    let p = &s.points[point];
    let connections = p.drive.connections() as u64;
    let responses = (f.rps * 2.0) as u64;
    CellResult {
        scenario,
        point: p.label.to_string(),
        point_index: point,
        server: server.to_string(),
        run: 1,
        started_at: "2026-01-01T00:00:00Z".to_string(),
        elapsed_s: 2.5,
        config: CellConfig {
            rate,
            server_command: vec!["servelab".to_string()],
            ..CellConfig::of(p, Duration::from_millis(500), Duration::from_secs(2))
        },
        outcome: Outcome::Measured,
        load: Some(LoadSummary {
            schema: servelab::load::SCHEMA,
            url: "http://127.0.0.1:1/".to_string(),
            addr: "127.0.0.1:1".to_string(),
            method: "GET".to_string(),
            headers: Vec::new(),
            mode: if rate.is_some() { "open" } else { "closed" }.to_string(),
            connections,
            threads: 1,
            pipeline: 1,
            clients: 1,
            started_at_ms: None,
            duration_s: 2.0,
            elapsed_s: 2.0,
            requests_target: None,
            interrupted: false,
            warmup_s: 0.5,
            timeout_s: 2.0,
            rate_target: rate,
            notes: Vec::new(),
            requests_sent: responses,
            responses,
            responses_2xx_3xx: responses,
            bytes_read: responses * 100,
            requests_per_sec: f.rps,
            bytes_per_sec: f.rps * 100.0,
            offered_rate: rate.unwrap_or(f.rps),
            scheduled_not_sent: 0,
            reconnects: 0,
            latency_corrected: rate.is_some(),
            latency_us: Some(latency(f.mean_us, f.p99_us)),
            latency_uncorrected_us: Some(latency(f.mean_us, f.p99_us)),
            errors: Errors::default(),
            fairness: FairnessJson {
                connections,
                served: connections - f.starved,
                starved: f.starved,
                min: 0,
                median: 1.0,
                max: 10,
                jain: Some(1.0),
            },
            per_connection: Vec::new(),
            histogram: None,
            histogram_uncorrected: None,
            client_lag_us: None,
            latency_minus_lag_us: None,
            histogram_client_lag: None,
            histogram_minus_lag: None,
            kinds: kinds(p, f, responses),
            idle: None,
            slowloris: None,
            malformed: None,
        }),
        histogram: None,
        server_usage: Some(ServerUsage::new(
            ProcSample {
                cpu_s: 0.0,
                rss_kib: 1000,
                threads: 2,
                fds: 5,
                processes: 1,
            },
            responses as f64 * 10e-6,
            ProcSample {
                cpu_s: 1.0,
                rss_kib: 2000,
                threads: f.threads,
                fds: 5 + connections,
                processes: 1,
            },
            responses,
        )),
        client_cpu_s: Some(1.0),
        idle: None,
        slow: None,
        noise: None,
        capacity: None,
        shutdown: None,
    }
}

/// A made-up bench of `servers` over `scenarios` with `cells`, no
/// baseline, no targets, on a default machine.
pub fn bench_of(servers: &[&str], scenarios: Vec<S>, cells: Vec<CellResult>) -> BenchResults {
    BenchResults {
        schema: 1,
        complete: true,
        started_at: "2026-01-01T00:00:00Z".to_string(),
        finished_at: "2026-01-01T00:04:00Z".to_string(),
        machine: Machine::default(),
        build: Build::default(),
        settings: Settings {
            profile: Profile::Default,
            scenarios,
            pinned: true,
            server_cpus: vec![0],
            client_cpus: vec![1],
            load_threads: 1,
            planned_s: 200.0,
            elapsed_s: 190.0,
            notes: Vec::new(),
            baseline: None,
            check: None,
            other_load: None,
        },
        servers: servers
            .iter()
            .map(|s| ServerInfo {
                name: s.to_string(),
                kind: "model".to_string(),
                description: format!("the {s} model"),
                source_lines: Some(50),
                source_file: None,
            })
            .collect(),
        cells,
    }
}

/// The 10,000-connection idle point of `server`: its RSS grew by
/// `growth_kib`, and `answered` connections were answered.
pub fn idle_cell(server: &str, growth_kib: u64, answered: u64) -> CellResult {
    let nothing = Fake {
        rps: 0.0,
        mean_us: 0.0,
        p99_us: 0.0,
        starved: 0,
        threads: 3,
    };
    let mut idle = cell(S::Idle, 1, server, nothing, None);
    idle.load = None;
    idle.idle = Some(servelab::load::IdleOutcome {
        connections: 10_000,
        connected: 10_000,
        answered,
        failed: 0,
        status: BTreeMap::new(),
        waited_s: 1.0,
    });
    let u = idle.server_usage.as_mut().unwrap();
    u.loaded.rss_kib = u.empty.rss_kib + growth_kib;
    idle
}
