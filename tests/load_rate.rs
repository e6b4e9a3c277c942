//! Open loop (`--rate`): pacing, and the coordinated-omission correction.
//! The tests run one at a time: each measures timing on a shared machine.

#[macro_use]
mod load_support;

use std::sync::Mutex;
use std::time::Duration;

use load_support::{assert_accounted, config, stalls};
use servelab::load::{run_load, LatencySummary, LoadSummary};
use servelab::models::{Model, Server, ServerConfig};

static SERIAL: Mutex<()> = Mutex::new(());

fn the_offered_rate_stays_within_two_percent_of_the_target() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(
        Model::Threaded,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let mut cfg = config(
        &format!("http://{}/", server.local_addr()),
        10,
        Duration::from_secs(3),
    );
    cfg.threads = 2;
    cfg.rate = Some(2000.0);
    let r = run_load(&cfg).unwrap();
    let offered = r.offered_rate();
    assert!(
        (offered - 2000.0).abs() <= 2000.0 * 0.02,
        "offered {offered}/s: {:?}",
        r.counters
    );
    // Against a fast server every request is answered, none left behind.
    assert!(r.counters.responses as f64 >= r.counters.sent as f64 * 0.98);
    assert!(r.counters.not_sent <= 10, "{:?}", r.counters);
    assert_accounted(&r);
    assert_eq!(r.fairness.served, 10);
    let spread = r.fairness.max - r.fairness.min;
    assert!(
        spread <= 2,
        "each connection runs at rate/c: {:?}",
        r.fairness
    );
    server.shutdown();
}

/// A 500 ms stall starting 600 ms into a 2 s run.
const STALL_AT: Duration = Duration::from_millis(600);
const STALL: Duration = Duration::from_millis(500);

fn a_stall_raises_the_corrected_p99_but_not_the_uncorrected_figures() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let half_stall = STALL.as_nanos() as u64 / 2;

    let server = stalls(STALL_AT, STALL);
    let mut open = config(&server.url(), 5, Duration::from_secs(2));
    open.rate = Some(1000.0);
    let r = run_load(&open).unwrap();
    assert_accounted(&r);
    let corrected = r.latency.unwrap();
    let uncorrected = r.latency_uncorrected.unwrap();
    eprintln!("open loop: corrected {corrected:?}\nuncorrected {uncorrected:?}");
    // A quarter of the schedule fell in the stall: measured from the
    // intended send times, those requests waited up to the whole stall.
    assert!(
        corrected.p99_ns >= half_stall,
        "corrected p99 {} ns",
        corrected.p99_ns
    );
    // Measured from the actual sends, only the 5 requests in flight when the
    // stall began saw it: under 1% of the samples.
    assert!(
        uncorrected.p99_ns < half_stall,
        "uncorrected p99 {} ns",
        uncorrected.p99_ns
    );
    // The stall is the server's: the client's own lag stays out of it (the
    // requests due in it went out at once or waited for their connection),
    // and the latency without the client's lag keeps it.
    let lag = r.lag.as_ref().unwrap();
    let (client_lag, minus_lag) = (
        LatencySummary::of(&lag.lag).unwrap(),
        LatencySummary::of(&lag.minus_lag).unwrap(),
    );
    eprintln!("client lag {client_lag:?}\nminus lag {minus_lag:?}");
    assert_eq!(client_lag.count, corrected.count);
    assert!(
        client_lag.p99_ns < half_stall / 5,
        "client lag p99 {} ns",
        client_lag.p99_ns
    );
    assert!(
        minus_lag.p99_ns >= half_stall,
        "latency minus lag p99 {} ns",
        minus_lag.p99_ns
    );
    drop(server);

    let server = stalls(STALL_AT, STALL);
    let closed = config(&server.url(), 5, Duration::from_secs(2));
    let r = run_load(&closed).unwrap();
    assert_accounted(&r);
    let l = r.latency.unwrap();
    eprintln!("closed loop: {l:?}");
    assert!(l.count > 1000, "{l:?}");
    // Closed loop hides the stall the same way (wrk's blind spot).
    assert!(l.p99_ns < half_stall, "closed-loop p99 {} ns", l.p99_ns);
    assert!(l.max_ns >= half_stall, "the stall is at least in the max");
}

/// When the client itself stops (SIGSTOP, as a descheduled virtual CPU or a
/// long page fault would stop it), the corrected latency charges the pause
/// to the server; the client's lag shows it as the client's own, and the
/// latency without it stays small.
fn a_paused_client_shows_in_its_lag_not_in_the_servers_share() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const PAUSE: Duration = Duration::from_millis(60);
    let server = Server::start(
        Model::Threaded,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let url = format!("http://{}/", server.local_addr());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_servelab"))
        .args(["load", "-c20", "-d2s", "--rate", "1000", "--json", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(Duration::from_millis(900));
    // SAFETY: kill(2) on the child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    std::thread::sleep(PAUSE);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: LoadSummary = serde_json::from_slice(&out.stdout).unwrap();
    let (corrected, lag, minus_lag) = (
        s.latency_us.unwrap(),
        s.client_lag_us.unwrap(),
        s.latency_minus_lag_us.unwrap(),
    );
    eprintln!("corrected {corrected:?}\nclient lag {lag:?}\nminus lag {minus_lag:?}");
    let pause_us = PAUSE.as_micros() as f64;
    // Some 60 of the 2000 requests were due during the pause.
    assert!(lag.max >= pause_us * 0.8, "client lag max {} us", lag.max);
    assert!(
        corrected.p99 >= pause_us / 3.0,
        "corrected p99 {} us",
        corrected.p99
    );
    assert!(
        minus_lag.p99 < pause_us / 4.0 && minus_lag.p99 < corrected.p99 / 2.0,
        "latency minus the client's lag p99 {} us, corrected p99 {} us",
        minus_lag.p99,
        corrected.p99
    );
    assert!(stderr.contains("warning: the client's own lag"), "{stderr}");
    server.shutdown();
}

on_both_engines!(
    the_offered_rate_stays_within_two_percent_of_the_target,
    a_stall_raises_the_corrected_p99_but_not_the_uncorrected_figures,
    a_paused_client_shows_in_its_lag_not_in_the_servers_share,
);
