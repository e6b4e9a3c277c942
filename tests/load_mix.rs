//! Two kinds of request in one load (`servelab load --mix PATH:SHARE%`)
//! against servelab's own models, over real sockets, on both engines: each
//! kind is sent at its share, each answer is counted in its request's kind,
//! and a long kind's latency shows in the short kind's when they share a
//! connection.

#[macro_use]
mod load_support;

use std::time::Duration;

use load_support::{assert_accounted, config};
use servelab::load::{report_json, report_text, run_load, KindReport, LoadReport, Mix};
use servelab::models::{Model, Server, ServerConfig};
use servelab::route::{Routes, Work};

/// `model` with `routes`, on an ephemeral port.
fn start(model: Model, routes: Routes) -> Server {
    let config = ServerConfig {
        routes,
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap())
    };
    Server::start(model, config).unwrap()
}

fn mix(text: &str) -> Option<Mix> {
    Some(text.parse().unwrap())
}

/// The report's two kinds, the URL's path first.
fn kinds(r: &LoadReport) -> (&KindReport, &KindReport) {
    assert_eq!(r.kinds.len(), 2, "{:?}", r.kinds);
    (&r.kinds[0], &r.kinds[1])
}

/// Against a server without `/slow` work, the mix's path is a 404 and the
/// URL's a 200: every answer counted in its request's kind (none
/// misattributed, also 4 deep in a pipeline), the kinds' counts adding up
/// to the run's, and the mix's path sent at its share to within one (one
/// thread: its count is rounded to the nearest).
fn each_kind_is_sent_at_its_share_and_answered_as_itself() {
    let server = start(Model::Event, Routes::default());
    let url = format!("http://{}/", server.local_addr());
    for (pipeline, rate, n, share, expected) in [
        (1, None, 1000, "/x:10%", 100),
        (4, None, 1000, "/x:10%", 100),
        (4, None, 2000, "/x:0.5%", 10),
        (3, None, 999, "/x?q=1:33.3333%", 333),
        (1, Some(4000.0), 400, "/x:5%", 20),
        (2, Some(4000.0), 400, "/x:50%", 200),
    ] {
        let mut cfg = config(&url, 4, Duration::from_secs(20));
        cfg.pipeline = pipeline;
        cfg.rate = rate;
        cfg.requests = Some(n);
        cfg.mix = mix(share);
        let r = run_load(&cfg).unwrap();
        let case = format!("--mix {share} --pipeline {pipeline} -R {rate:?} -n {n}");
        let c = &r.counters;
        assert_eq!((c.sent, c.responses), (n, n), "{case}: {c:?}");
        assert_accounted(&r);
        let (main, other) = kinds(&r);
        assert_eq!(main.path, "/");
        assert!(other.path.starts_with("/x"), "{case}");
        assert_eq!(main.share_ppm + other.share_ppm, 1_000_000);
        assert!(
            other.sent.abs_diff(expected) <= 1,
            "{case}: {} of {n} to {}",
            other.sent,
            other.path
        );
        assert_eq!(main.sent + other.sent, n, "{case}");
        assert_eq!(
            (main.responses, other.responses),
            (main.sent, other.sent),
            "{case}"
        );
        // Every answer in its request's kind: the 404s are the mix's.
        assert_eq!(main.ok_responses, main.responses, "{case}");
        assert_eq!(other.ok_responses, 0, "{case}");
        assert_eq!(c.status[404], other.responses, "{case}");
        // Each kind's histogram holds its own responses, and together the
        // run's.
        assert_eq!(main.histogram.len(), main.responses, "{case}");
        assert_eq!(other.histogram.len(), other.responses, "{case}");
        assert_eq!(r.histogram.len(), n, "{case}");
    }
    server.shutdown();
}

/// `/slow` waits 5 ms (on its connection's own thread, v2): its kind's
/// latency is the higher, and `/`'s is not raised by it on connections of
/// their own; pipelined 4 deep, the short requests behind a long one wait
/// for it, and their tail shows it (head-of-line blocking).
fn the_slow_kind_is_the_slower_and_holds_up_short_ones_behind_it() {
    const SLOW: Duration = Duration::from_millis(5);
    let routes = Routes {
        slow_work: Some(Work::Wait(SLOW.into())),
        ..Routes::default()
    };
    let server = start(Model::Threaded, routes);
    let url = format!("http://{}/", server.local_addr());
    let slow_ns = SLOW.as_nanos() as u64;

    let mut cfg = config(&url, 4, Duration::from_millis(800));
    cfg.mix = mix("/slow:10%");
    let r = run_load(&cfg).unwrap();
    assert_accounted(&r);
    assert_eq!(r.ok_responses(), r.counters.responses, "{:?}", r.counters);
    let (main, slow) = kinds(&r);
    let (main_l, slow_l) = (main.latency.unwrap(), slow.latency.unwrap());
    assert!(slow_l.min_ns >= slow_ns, "{slow_l:?}");
    assert!(
        main_l.p50_ns < slow_ns && main_l.p50_ns < slow_l.p50_ns,
        "/ {main_l:?}, /slow {slow_l:?}"
    );
    // About one request in ten is slow (closed loop, each thread to within
    // one of its share).
    let share = slow.sent as f64 / (main.sent + slow.sent) as f64;
    assert!((share - 0.1).abs() < 0.01, "{share}");

    cfg.pipeline = 4;
    let r = run_load(&cfg).unwrap();
    assert_accounted(&r);
    let (main, slow) = kinds(&r);
    let (main_l, slow_l) = (main.latency.unwrap(), slow.latency.unwrap());
    assert!(slow_l.min_ns >= slow_ns, "{slow_l:?}");
    // Up to three short requests ride behind each long one (one in ten):
    // more than 1% of them wait for a good part of its 5 ms.
    assert!(main_l.p99_ns >= slow_ns / 4, "/ {main_l:?}");
    assert!(
        main_l.p50_ns < slow_l.p50_ns,
        "/ {main_l:?}, /slow {slow_l:?}"
    );
    server.shutdown();
}

/// The text report gives a line per kind, the JSON a `kinds` list; a run
/// without a mix prints neither.
fn the_reports_give_each_kind_apart() {
    let server = start(Model::Event, Routes::default());
    let url = format!("http://{}/", server.local_addr());
    let mut cfg = config(&url, 2, Duration::from_secs(20));
    cfg.requests = Some(200);
    let r = run_load(&cfg).unwrap();
    let (text, json) = (report_text(&r), report_json(&r));
    assert!(!text.contains("By request path"), "{text}");
    assert!(!json.contains("\"kinds\""), "{json}");
    assert!(json.starts_with("{\"schema\":4,"), "{json}");

    cfg.mix = mix("/other:25%");
    let r = run_load(&cfg).unwrap();
    let text = report_text(&r);
    assert!(text.contains("By request path (--mix"), "{text}");
    let line = |path: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{path} ")))
            .unwrap_or_else(|| panic!("no line for {path} in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // path, share, sent, answered, 2xx/3xx, then the percentiles.
    assert_eq!(line("/")[..5], ["/", "75%", "150", "150", "150"], "{text}");
    assert_eq!(line("/other")[..5], ["/other", "25%", "50", "50", "0"]);
    let v: serde_json::Value = serde_json::from_str(&report_json(&r)).unwrap();
    let kinds = v["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 2);
    for (kind, path, share, sent, ok) in [
        (&kinds[0], "/", 75, 150, 150),
        (&kinds[1], "/other", 25, 50, 0),
    ] {
        assert_eq!(kind["path"], path);
        assert_eq!(kind["share_pct"], share);
        assert_eq!(kind["requests_sent"], sent);
        assert_eq!(kind["responses"], sent);
        assert_eq!(kind["responses_2xx_3xx"], ok);
        assert_eq!(kind["latency_us"]["count"], sent);
        assert!(kind["latency_us"]["p99_9"].is_number(), "{kind}");
        assert!(kind["histogram"].is_string(), "{kind}");
    }
    server.shutdown();
}

on_both_engines!(
    each_kind_is_sent_at_its_share_and_answered_as_itself,
    the_slow_kind_is_the_slower_and_holds_up_short_ones_behind_it,
    the_reports_give_each_kind_apart,
);
