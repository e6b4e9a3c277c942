//! Open loop (`--rate`): pacing, and the coordinated-omission correction.
//! The tests run one at a time: each measures timing on a shared machine.

mod load_support;

use std::sync::Mutex;
use std::time::Duration;

use load_support::{assert_accounted, config, stalls};
use servelab::load::run_load;
use servelab::models::{Model, Server, ServerConfig};

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
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

#[test]
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
