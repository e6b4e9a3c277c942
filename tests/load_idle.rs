//! Idle keep-alive connections beside the load (`servelab load --idle N`)
//! against servelab's own models, on both engines: each idle connection
//! completes its one request before the load starts and is counted, the
//! load is still served beside them, and a server's cap shows as 503s in
//! the idle connections' count.

#[macro_use]
mod load_support;

use std::process::Command;
use std::time::Duration;

use load_support::{assert_accounted, config};
use servelab::load::{report_json, report_text, run_load};
use servelab::models::{Model, Server, ServerConfig};

/// `model` on an ephemeral port, with at most `max_connections` open.
fn start(model: Model, max_connections: usize) -> Server {
    let config = ServerConfig {
        max_connections,
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap())
    };
    Server::start(model, config).unwrap()
}

/// 300 idle connections held while 4 others load the server: every idle
/// one answered, none failed, and the load served as usual beside them;
/// the text and the JSON report them, and a run without `--idle` has no
/// such key.
fn idle_connections_are_answered_and_held_beside_the_load() {
    let server = start(Model::Event, 10_000);
    let url = format!("http://{}/", server.local_addr());
    let mut c = config(&url, 4, Duration::from_millis(300));
    c.idle = 300;
    let r = run_load(&c).unwrap();
    assert_accounted(&r);
    let idle = r.idle.as_ref().expect("--idle reports its connections");
    assert_eq!(
        (idle.connections, idle.connected, idle.answered, idle.failed),
        (300, 300, 300, 0),
        "{idle:?}"
    );
    assert!(idle.status.is_empty(), "{idle:?}");
    assert!(r.counters.responses > 0, "the load was served: {r:?}");
    assert!(report_text(&r)
        .contains("Idle connections (--idle): 300 of 300 answered and held open until the end"));
    let json: serde_json::Value = serde_json::from_str(&report_json(&r)).unwrap();
    assert_eq!(json["idle"]["answered"], 300);

    let without = run_load(&config(&url, 4, Duration::from_millis(100))).unwrap();
    assert!(without.idle.is_none());
    let json: serde_json::Value = serde_json::from_str(&report_json(&without)).unwrap();
    assert!(json.get("idle").is_none(), "{json}");
}

/// With the server capped at 40 connections, the idle ones past the cap
/// are answered 503 and counted apart from those answered 200.
fn idle_connections_past_a_cap_are_counted_by_status() {
    let server = start(Model::Event, 40);
    let url = format!("http://{}/", server.local_addr());
    let mut c = config(&url, 1, Duration::from_millis(200));
    c.idle = 100;
    let r = run_load(&c).unwrap();
    let idle = r.idle.as_ref().unwrap();
    let refused = idle.status.get("503").copied().unwrap_or(0);
    // The cap holds 40 connections: the idle ones that got in first (the
    // opening probe's may still hold a slot for a moment).
    assert!((35..=40).contains(&idle.answered), "{idle:?}");
    assert_eq!(idle.answered + refused + idle.failed, 100, "{idle:?}");
    assert!(refused > 0, "{idle:?}");
}

on_both_engines!(
    idle_connections_are_answered_and_held_beside_the_load,
    idle_connections_past_a_cap_are_counted_by_status,
);

/// `--idle` takes counts as -c does, and refuses what is not one (exit 2).
#[test]
fn the_idle_flag_takes_a_count() {
    let load = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_servelab"))
            .arg("load")
            .args(args)
            .output()
            .unwrap()
    };
    let out = load(&["--idle", "x", "http://127.0.0.1:1/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a count"), "{stderr}");
    let help = String::from_utf8(load(&["--help"]).stdout).unwrap();
    assert!(help.contains("--idle <N>"), "{help}");
}
