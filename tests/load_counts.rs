//! The load generator's counts against servelab's own models and raw test
//! servers, over real sockets: every request sent is accounted for.

#[macro_use]
mod load_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use load_support::{
    answers_k_then_closes, assert_accounted, config, mixed_framing, stalled, MIXED,
};
use servelab::load::{report_json, report_text, run_load};
use servelab::models::{Model, Server, ServerConfig};

fn start(model: Model) -> Server {
    Server::start(model, ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap()
}

fn a_server_that_answers_k_then_closes_gives_exactly_k_responses() {
    const K: u64 = 300;
    let (server, answered) = answers_k_then_closes(K);
    let mut cfg = config(&server.url(), 4, Duration::from_millis(1200));
    cfg.threads = 2;
    let r = run_load(&cfg).unwrap();
    assert_eq!(r.counters.responses, K, "{:?}", r.counters);
    assert_eq!(r.ok_responses(), K);
    assert!(
        answered.load(Ordering::SeqCst) > K,
        "the client asked for more"
    );
    assert!(r.counters.sent > K);
    assert_accounted(&r);
    // Requests past K were lost with their connections, and the server's
    // closed listener refuses the reconnects.
    assert!(
        r.counters.aborted + r.counters.unanswered > 0,
        "{:?}",
        r.counters
    );
    assert!(r.counters.connect_errors > 0, "{:?}", r.counters);
}

fn a_stalled_server_yields_timeouts_and_unanswered_requests() {
    let server = stalled();
    let mut cfg = config(&server.url(), 3, Duration::from_millis(1300));
    cfg.timeout = Duration::from_millis(300);
    let r = run_load(&cfg).unwrap();
    assert_eq!(r.counters.responses, 0);
    assert!(r.latency.is_none());
    // Each connection times out about every 300 ms, then starts over.
    assert!(r.counters.timeouts >= 3, "{:?}", r.counters);
    assert!(r.counters.unanswered >= 1, "{:?}", r.counters);
    assert!(r.counters.reconnects >= 3, "{:?}", r.counters);
    assert_accounted(&r);
    assert_eq!(r.fairness.starved, 3);
    let text = report_text(&r);
    assert!(
        text.contains(&format!("timeout {}", r.counters.timeouts)),
        "{text}"
    );
    assert!(text.contains("3 of 3 connections were starved"), "{text}");
}

fn the_sequential_model_under_ten_connections_starves_nine() {
    let server = start(Model::Sequential);
    let cfg = config(
        &format!("http://{}/", server.local_addr()),
        10,
        Duration::from_secs(1),
    );
    let r = run_load(&cfg).unwrap();
    assert_eq!(r.fairness.served, 1, "{:?}", r.fairness);
    assert_eq!(r.fairness.starved, 9);
    assert!(r.counters.responses > 0);
    // The nine queued connections each sent a request nobody answered.
    assert!(r.counters.unanswered >= 9, "{:?}", r.counters);
    assert_eq!(r.counters.timeouts, 0);
    assert_accounted(&r);
    let text = report_text(&r);
    assert!(
        text.contains("9 of 10 connections were starved (completed no request)"),
        "{text}"
    );
    assert!(report_json(&r).contains(r#""starved":9"#));
    server.shutdown();
}

fn pipelined_responses_are_framed_in_order_across_split_writes() {
    let server = mixed_framing();
    let mut cfg = config(&server.url(), 1, Duration::from_millis(800));
    cfg.pipeline = 16;
    let r = run_load(&cfg).unwrap();
    let c = &r.counters;
    assert!(c.responses > 16, "{c:?}");
    assert_eq!(
        (c.parse_errors, c.read_errors, c.aborted),
        (0, 0, 0),
        "{c:?}"
    );
    assert_accounted(&r);
    assert!(c.unanswered <= 16);
    // The server cycles through MIXED (200, 200 chunked, 404) on the one
    // connection: the
    // responses received are a prefix of that cycle only if each one was
    // framed where it really ends and matched in order.
    let expected_404 = c.responses / MIXED.len() as u64;
    assert_eq!(r.error_statuses(), vec![(404, expected_404)], "{c:?}");
    assert_eq!(r.ok_responses(), c.responses - expected_404);
}

fn pipelined_load_on_the_threaded_model_gets_every_response() {
    let server = start(Model::Threaded);
    let mut cfg = config(
        &format!("http://{}/", server.local_addr()),
        4,
        Duration::from_millis(700),
    );
    cfg.threads = 2;
    cfg.pipeline = 16;
    let r = run_load(&cfg).unwrap();
    let c = &r.counters;
    assert!(c.responses > 0);
    assert_eq!(r.ok_responses(), c.responses);
    assert_eq!(
        (
            c.parse_errors,
            c.read_errors,
            c.write_errors,
            c.aborted,
            c.timeouts
        ),
        (0, 0, 0, 0, 0),
        "{c:?}"
    );
    assert!(c.unanswered <= 4 * 16);
    assert_accounted(&r);
    assert_eq!(r.fairness.served, 4);
    server.shutdown();
}

fn statuses_outside_2xx_3xx_are_counted_per_code() {
    let server = start(Model::Pool);
    let mut cfg = config(
        &format!("http://{}/missing", server.local_addr()),
        2,
        Duration::from_millis(400),
    );
    let r = run_load(&cfg).unwrap();
    assert!(r.counters.responses > 0);
    assert_eq!(r.error_statuses(), vec![(404, r.counters.responses)]);
    assert_eq!(r.ok_responses(), 0);
    cfg.target =
        servelab::load::Target::parse(&format!("http://{}/", server.local_addr())).unwrap();
    cfg.method = "DELETE".into();
    let r = run_load(&cfg).unwrap();
    assert_eq!(r.error_statuses(), vec![(405, r.counters.responses)]);
    let json = report_json(&r);
    assert!(
        json.contains(&format!(r#""status":{{"405":{}}}"#, r.counters.responses)),
        "{json}"
    );
    server.shutdown();
}

fn the_warmup_is_not_recorded() {
    // All 50 answers fall in the warmup: the recorded window sees none.
    let (server, answered) = answers_k_then_closes(50);
    let mut cfg = config(&server.url(), 2, Duration::from_millis(300));
    cfg.warmup = Duration::from_millis(500);
    let r = run_load(&cfg).unwrap();
    assert!(answered.load(Ordering::SeqCst) >= 50);
    assert_eq!(r.counters.responses, 0, "{:?}", r.counters);
    assert_eq!(r.counters.sent, 0, "{:?}", r.counters);
    assert!(r.counters.connect_errors > 0, "{:?}", r.counters);
}

fn threads_beyond_connections_are_clamped_with_a_note() {
    let server = start(Model::Threaded);
    let mut cfg = config(
        &format!("http://{}/", server.local_addr()),
        2,
        Duration::from_millis(300),
    );
    cfg.threads = 5;
    let r = run_load(&cfg).unwrap();
    assert_eq!(r.threads, 2);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert_eq!(r.fairness.served, 2);
    assert_accounted(&r);
    server.shutdown();
}

on_both_engines!(
    a_server_that_answers_k_then_closes_gives_exactly_k_responses,
    a_stalled_server_yields_timeouts_and_unanswered_requests,
    the_sequential_model_under_ten_connections_starves_nine,
    pipelined_responses_are_framed_in_order_across_split_writes,
    pipelined_load_on_the_threaded_model_gets_every_response,
    statuses_outside_2xx_3xx_are_counted_per_code,
    the_warmup_is_not_recorded,
    threads_beyond_connections_are_clamped_with_a_note,
);
