//! The hostile clients of `servelab load` (`--slowloris`, `--malformed`),
//! through the command, against a `servelab serve --model event` child, on
//! both engines: every malformed request gets its 4xx and a closed
//! connection while the load is served; the slowloris connections are closed
//! with a 408 at the server's header deadline; the reports carry them only
//! when asked; bad flags exit 2.

#[allow(unused_macros)]
mod common;
#[allow(unused_macros)]
mod load_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::ServeProcess;
use load_support::load;
use servelab::load::{Engine, LoadSummary, MALFORMED};
use servelab::models::Model;

/// `servelab load --json` with `args`, which must succeed: the raw JSON
/// and what it holds.
fn load_json(args: &[&str]) -> (String, LoadSummary) {
    let out = load(&[args, &["--json"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let json = String::from_utf8(out.stdout).unwrap();
    let summary = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    (json, summary)
}

/// The event model on an ephemeral port, with `extra` flags.
fn serve(extra: &[&str]) -> (ServeProcess, String) {
    let server = ServeProcess::start(Model::Event, extra);
    let url = format!("http://{}/", server.addr);
    (server, url)
}

/// The load beside the hostile clients was served, with no failure.
fn assert_served(s: &LoadSummary) {
    assert!(s.responses_2xx_3xx > 0, "{s:?}");
    assert_eq!(s.responses_2xx_3xx, s.responses, "{:?}", s.errors);
    assert_eq!(s.failures(), 0, "{:?}", s.errors);
}

/// Two clients each sending a malformed request every 10 ms for a second:
/// every one got its kind's 4xx and then a closed connection, the kinds in
/// turn, and the load beside them was served.
fn malformed_requests_get_their_4xx_and_a_close() {
    let (_server, url) = serve(&[]);
    let (json, s) = load_json(&[
        "-c",
        "4",
        "-d",
        "1s",
        "--malformed",
        "2",
        "--malformed-interval",
        "10ms",
        &url,
    ]);
    assert!(json.contains(r#""malformed":{"kinds":["#), "{json}");
    assert!(!json.contains(r#""slowloris""#), "{json}");
    assert_served(&s);
    let m = s.malformed.expect("malformed");
    assert!(m.sent() > 0, "{m:?}");
    assert_eq!(m.rejected_and_closed(), m.sent(), "{m:?}");
    assert_eq!(m.kinds.len(), MALFORMED.len());
    for (k, kind) in m.kinds.iter().zip(&MALFORMED) {
        assert_eq!((k.kind.as_str(), k.expected), (kind.name, kind.expected));
        // The kinds in turn: each was sent, and all about as often.
        assert!(k.sent > 0 && k.sent.abs_diff(m.sent() / 3) <= 2, "{m:?}");
        assert_eq!(k.expected_status, k.sent, "{k:?}");
        assert_eq!(
            k.status.get(&kind.expected.to_string()),
            Some(&k.sent),
            "{k:?}"
        );
        assert_eq!((k.left_open, k.wrong_status, k.no_answer), (0, 0, 0));
    }
    // Each malformed request is its own connection: none is a load error.
    assert!(s.errors.status.is_empty(), "{:?}", s.errors);
}

/// Five slowloris connections against a 300 ms header deadline: all
/// connected, and the server closed each with a 408 about then, while the
/// load beside them was served.
fn slowloris_connections_are_closed_at_the_header_deadline() {
    let (_server, url) = serve(&["--header-read-timeout", "300ms"]);
    let (json, s) = load_json(&[
        "-c",
        "2",
        "-d",
        "1s",
        "--slowloris",
        "5",
        "--slowloris-interval",
        "50ms",
        &url,
    ]);
    assert!(json.contains(r#""slowloris":{"connections":5,"#), "{json}");
    assert!(!json.contains(r#""malformed""#), "{json}");
    assert_served(&s);
    let slow = s.slowloris.expect("slowloris");
    assert_eq!(
        (slow.connections, slow.connected, slow.closed_by_server),
        (5, 5, 5),
        "{slow:?}"
    );
    assert_eq!(slow.status.get("408"), Some(&5), "{slow:?}");
    assert_eq!(slow.status.len(), 1, "{slow:?}");
    // Held from the deadline to the next byte after it, give or take a
    // loaded machine; a byte every 50 ms meanwhile.
    assert!(
        slow.held_median_s >= 0.3 && slow.held_max_s < 1.0,
        "{slow:?}"
    );
    assert!(slow.held_median_s <= slow.held_max_s, "{slow:?}");
    assert!(slow.bytes_sent >= 5 * 5, "{slow:?}");
}

/// With the flags the text report has a section for each; without them
/// neither the text nor the JSON mentions them. They end with the run: a
/// `-n` run with them ends once its requests are answered.
fn the_reports_carry_them_only_when_asked() {
    let (_server, url) = serve(&[]);
    let start = Instant::now();
    let out = load(&[
        "-c",
        "2",
        "-n",
        "500",
        "-d",
        "20s",
        "--slowloris",
        "3",
        "--malformed",
        "1",
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the hostile clients outlived the run: {:?}",
        start.elapsed()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "Slowloris: 3 connections, 3 connected, ",
        "held open median ",
        "Malformed requests (each on a new connection",
        "4xx+closed",
        "bad request line (400)",
        "Content-Length with Transfer-Encoding (400)",
        "oversized header (431)",
        "Requests/sec:",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }

    let out = load(&["-c", "2", "-n", "200", &url]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("Slowloris") && !text.contains("Malformed"),
        "{text}"
    );
    let (json, s) = load_json(&["-c", "2", "-n", "200", &url]);
    assert!(
        !json.contains("slowloris") && !json.contains("malformed"),
        "{json}"
    );
    assert_eq!((s.slowloris, s.malformed), (None, None));
}

/// Bad values of the new flags, and an interval without its count, exit 2
/// with a message that names the flag, before anything is sent.
#[test]
fn bad_hostile_flags_exit_2() {
    let nobody = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/", l.local_addr().unwrap().port())
    };
    for (args, expected) in [
        (
            vec!["--slowloris", "2", "--slowloris-interval", "0ms"],
            "'--slowloris-interval <INTERVAL>': must be longer than 0",
        ),
        (
            vec!["--malformed", "2", "--malformed-interval", "0"],
            "'--malformed-interval <INTERVAL>': must be longer than 0",
        ),
        (
            vec!["--slowloris", "2", "--slowloris-interval", "soon"],
            "invalid duration",
        ),
        (vec!["--slowloris-interval", "10ms"], "--slowloris <N>"),
        (vec!["--malformed-interval", "10ms"], "--malformed <N>"),
        (vec!["--slowloris", "0"], "must be at least 1"),
        (vec!["--malformed", "many"], "not a count"),
        (vec!["--malformed", "2k"], "--malformed 2000: at most 1024"),
    ] {
        let out = load(&[&args[..], &[nobody.as_str()]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// Runs `body` on `engine`; where io_uring cannot run here, skips it the
/// way every test does ([`common::skip`]: a failure with
/// `SERVELAB_REQUIRE_ALL` set).
fn on(engine: Engine, test: &str, body: fn()) {
    if engine == Engine::Uring {
        if let Err(why) = Engine::uring_availability() {
            common::skip(&format!("{test} on --engine uring"), &why);
            return;
        }
    }
    load_support::on_engine(engine, body);
}

/// Each named test body, once per engine: `name::uring` and `name::epoll`.
macro_rules! on_each_engine {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                super::on(servelab::load::Engine::Uring, stringify!($name), super::$name)
            }

            #[test]
            fn epoll() {
                super::on(servelab::load::Engine::Epoll, stringify!($name), super::$name)
            }
        }
    )+};
}

on_each_engine!(
    malformed_requests_get_their_4xx_and_a_close,
    slowloris_connections_are_closed_at_the_header_deadline,
    the_reports_carry_them_only_when_asked,
);
