//! `servelab load` as a command: flags, bad input, output forms, the
//! command lines of wrk, wrk2, oha and hey, and Ctrl-C.

#[allow(unused_macros)]
mod common;
#[macro_use]
mod load_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use load_support::{load, RawServer, OK};
use servelab::models::{Model, Server, ServerConfig};

/// Runs a command that must fail with exit status `code`, and returns its
/// stderr.
fn refused(args: &[&str], code: i32) -> String {
    let out = load(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed a report");
    stderr
}

#[test]
fn help_documents_every_flag_and_default() {
    let out = load(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--connections",
        "-c,",
        "--threads",
        "-t,",
        "--duration",
        "-d,",
        "[alias: -z]",
        "-n, --requests",
        "-m, --method",
        "-b, --body",
        "-D, --body-file",
        "-R, --rate",
        "--latency",
        "-s, --script",
        "--header",
        "-H,",
        "--method",
        "--timeout",
        "--pipeline",
        "--rate",
        "--mix <PATH:SHARE%>",
        "--slowloris <N>",
        "--slowloris-interval <INTERVAL>",
        "[default: 500ms]",
        "--malformed <N>",
        "--malformed-interval <INTERVAL>",
        "[default: 10ms]",
        "--warmup",
        "--json",
        "--allow-remote",
        "[default: 100]",
        "[default: 10s",
        "[default: 2s]",
        "[default: GET]",
        "[default: closed loop]",
        "loopback",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failing_exit() {
    let free_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nobody = format!("http://127.0.0.1:{free_port}/");
    // Bad input exits 2; a world that does not cooperate (no such host,
    // nobody listening) exits 1.
    for (args, expected, code) in [
        (vec!["not a url"], "invalid URL", 2),
        (vec!["http://127.0.0.1:99999/"], "invalid port", 2),
        (
            vec!["https://127.0.0.1/"],
            "https (TLS) is not supported",
            2,
        ),
        (vec!["ftp://127.0.0.1/"], "only http:// is supported", 2),
        (
            vec!["http://no-such-host.invalid/"],
            "cannot resolve host",
            1,
        ),
        (vec!["http://10.1.2.3/"], "outside loopback", 2),
        (vec![nobody.as_str()], "cannot connect", 1),
        (vec!["-c", "0", nobody.as_str()], "--connections", 2),
        (vec!["-t", "0", nobody.as_str()], "--threads", 2),
        (vec!["--rate", "0", nobody.as_str()], "more than 0", 2),
        (vec!["--rate", "fast", nobody.as_str()], "invalid rate", 2),
        (vec!["--pipeline", "0", nobody.as_str()], "--pipeline", 2),
        (vec!["-d", "0s", nobody.as_str()], "longer than 0", 2),
        (vec!["-d", "ten", nobody.as_str()], "invalid duration", 2),
        (vec!["-H", "NoColon", nobody.as_str()], "invalid header", 2),
        (
            vec!["--method", "G T", nobody.as_str()],
            "invalid method",
            2,
        ),
        (vec!["-n", "0", nobody.as_str()], "at least 1", 2),
        (vec!["-c", "1x", nobody.as_str()], "not a count", 2),
        (vec!["-c", "2M", nobody.as_str()], "at most 1000000", 2),
        (
            vec!["--idle", "1000001", nobody.as_str()],
            "at most 1000000",
            2,
        ),
        (vec!["--warmup", "3", nobody.as_str()], "no unit", 2),
        (
            vec!["--mix", "/slow", nobody.as_str()],
            "invalid mix \"/slow\": expected PATH:SHARE%",
            2,
        ),
        (
            vec!["--mix", "/slow:0.01", nobody.as_str()],
            "expected a percentage above 0 and below 100",
            2,
        ),
        (vec!["--mix", "/slow:0%", nobody.as_str()], "above 0", 2),
        (vec!["--mix", "/slow:100%", nobody.as_str()], "below 100", 2),
        (
            vec!["--mix", "slow:1%", nobody.as_str()],
            "must start with /",
            2,
        ),
        (
            vec!["--mix", "/a b:1%", nobody.as_str()],
            "percent-encode",
            2,
        ),
        (
            vec!["--mix", "/:10%", nobody.as_str()],
            "--mix /:10%: / is the URL's own path",
            2,
        ),
        (vec!["http://::1/"], "brackets, as http://[::1]/", 2),
        (vec!["http://::1:8080/"], "brackets", 2),
        (vec!["http://[::1/"], "unclosed [", 2),
        (vec!["http://[nope]/"], "not an IPv6 address", 2),
        (
            vec!["-b", "x", "-D", "/dev/null", nobody.as_str()],
            "cannot be used with",
            2,
        ),
        (
            vec!["-D", "/no/such/file", nobody.as_str()],
            "cannot read",
            2,
        ),
        (
            vec!["-b", "x", "-H", "Content-Length: 1", nobody.as_str()],
            "Content-Length itself",
            2,
        ),
        // wrk's, wrk2's and oha's spellings are accepted (the run then fails
        // for want of a server, not of the flags).
        (
            vec![
                "-c",
                "1k",
                "-t",
                "1",
                "--latency",
                "-R",
                "2k",
                "-z",
                "1s",
                "-m",
                "POST",
                nobody.as_str(),
            ],
            "cannot connect",
            1,
        ),
    ] {
        let stderr = refused(&args, code);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

fn human_and_json_reports() {
    let server = Server::start(
        Model::Threaded,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let url = format!("http://{}/", server.local_addr());

    let out = load(&["-c", "4", "-t", "8", "-d", "300ms", "-H", "X-Test: 1", &url]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "Running 300ms test @ ",
        "8 threads",
        "Latency Distribution",
        "99.99%",
        "Socket errors: connect 0, read 0, write 0, timeout 0",
        "Unanswered:",
        "Connections: 4 of 4 completed a request",
        "Jain's fairness",
        "Requests/sec:",
        "Transfer/sec:",
    ] {
        if line == "8 threads" {
            // -t 8 with -c 4 is clamped, said on stderr.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("using 4"), "{stderr}");
            assert!(text.contains("4 threads and 4 connections"), "{text}");
            continue;
        }
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }

    let out = load(&["-c", "2", "-d", "300ms", "--rate", "500", "--json", &url]);
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(json.lines().count(), 1, "{json}");
    let json = json.trim_end();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    for key in [
        r#""mode":"open""#,
        r#""rate_target":500"#,
        r#""latency_corrected":true"#,
        r#""latency_us":{"count":"#,
        r#""latency_uncorrected_us":{"#,
        r#""p99_99":"#,
        r#""errors":{"connect":0"#,
        r#""unanswered":"#,
        r#""fairness":{"connections":2,"served":2,"starved":0"#,
        r#""jain":"#,
        r#""requests_per_sec":"#,
        r#""offered_rate":"#,
        r#"{"schema":4,"#,
        r#""headers":[],"#,
        r#""clients":1,"started_at_ms":1"#,
        r#""per_connection":["#,
        r#""histogram":""#,
        r#""histogram_uncorrected":""#,
        r#""client_lag_us":{"count":"#,
        r#""latency_minus_lag_us":{"count":"#,
        r#""histogram_client_lag":""#,
        r#""histogram_minus_lag":""#,
    ] {
        assert!(json.contains(key), "no {key} in {json}");
    }
    server.shutdown();
}

/// wrk's `-s script.lua` is refused with the flags that do its usual jobs.
#[test]
fn a_wrk_script_is_refused_with_its_equivalents() {
    let stderr = refused(&["-s", "pipeline.lua", "http://127.0.0.1:9/"], 2);
    for word in ["Lua", "--pipeline", "--method", "--body", "-D FILE"] {
        assert!(stderr.contains(word), "no {word:?} in: {stderr}");
    }
}

/// A raw server that keeps every byte it receives and answers each request
/// head (counted by its blank line, across reads) with 200 OK.
fn recording_server() -> (RawServer, Arc<Mutex<Vec<u8>>>, Arc<AtomicU64>) {
    let bytes: Arc<Mutex<Vec<u8>>> = Arc::default();
    let heads = Arc::new(AtomicU64::new(0));
    let (bytes_in, heads_in) = (Arc::clone(&bytes), Arc::clone(&heads));
    let server = RawServer::start(move |mut stream: TcpStream, stop: &AtomicBool| {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 16 * 1024];
        let mut matched = 0;
        while !stop.load(Ordering::SeqCst) {
            let n = match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => return,
            };
            bytes_in.lock().unwrap().extend_from_slice(&buf[..n]);
            let mut answers = Vec::new();
            for &b in &buf[..n] {
                matched = match (matched, b) {
                    (0 | 2, b'\r') => matched + 1,
                    (1 | 3, b'\n') => matched + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                if matched == 4 {
                    matched = 0;
                    heads_in.fetch_add(1, Ordering::SeqCst);
                    answers.extend_from_slice(OK);
                }
            }
            if stream.write_all(&answers).is_err() {
                return;
            }
        }
    });
    (server, bytes, heads)
}

fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    &rest[..rest.find([',', '}']).unwrap()]
}

/// oha's and hey's `-n N`: exactly N requests reach the server, each is
/// answered, and the run ends when they are (long before the time limit).
fn n_sends_exactly_n_requests_and_ends_when_they_are_answered() {
    let (server, _, heads) = recording_server();
    let start = Instant::now();
    let out = load(&[
        "-n",
        "1k",
        "-c",
        "7",
        "-t",
        "2",
        "--pipeline",
        "4",
        "--json",
        &server.url(),
    ]);
    let took = start.elapsed();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    for (key, value) in [
        ("requests_target", "1000"),
        ("requests_sent", "1000"),
        ("responses", "1000"),
        ("responses_2xx_3xx", "1000"),
        ("unanswered", "0"),
        ("interrupted", "false"),
    ] {
        assert_eq!(json_field(&json, key), value, "{key} in {json}");
    }
    let elapsed: f64 = json_field(&json, "elapsed_s").parse().unwrap();
    assert!(elapsed > 0.0 && elapsed < 20.0, "{json}");
    // Nothing more arrives after the run.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(heads.load(Ordering::SeqCst), 1000);

    // Open loop (wrk2's -R) too: the count ends the schedule, and the slots
    // after it are not "never sent".
    let out = load(&[
        "-n",
        "100",
        "-R",
        "2k",
        "-c",
        "4",
        "-t",
        "2",
        "--json",
        &server.url(),
    ]);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    for (key, value) in [("requests_sent", "100"), ("responses", "100")] {
        assert_eq!(json_field(&json, key), value, "{key} in {json}");
    }
    // Slots can go unsent for want of pipeline room while the count is
    // not yet reached (a server slowed by a busy machine keeps connections
    // busy), but only those due before the run ended: counted, the rest of
    // the default 60 s schedule would be about 120,000.
    let not_sent: f64 = json_field(&json, "scheduled_not_sent").parse().unwrap();
    let elapsed: f64 = json_field(&json, "elapsed_s").parse().unwrap();
    assert!(elapsed < 30.0, "{json}");
    assert!(
        not_sent <= elapsed * 2000.0 + 4.0,
        "scheduled_not_sent in {json}"
    );

    let out = load(&["-n", "10", "-c", "2", &server.url()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("Running 10 requests @ "), "{text}");
    assert!(text.contains("  10 requests in "), "{text}");
    assert!(text.contains("Sent 10, answered 10"), "{text}");
}

/// `--mix`: the mix's requests reach the server at their share, in the
/// even pattern the load thread chooses (25% on one connection: every
/// fourth request, the same in every run), pipelined too, with the same
/// headers as the URL's; the JSON counts each kind.
fn the_mix_reaches_the_server_in_its_pattern() {
    let (server, bytes, heads) = recording_server();
    let out = load(&[
        "-n",
        "200",
        "-c",
        "1",
        "--pipeline",
        "4",
        "--mix",
        "/x?a=1:25%",
        "-H",
        "X-Test: 1",
        "--json",
        &server.url(),
    ]);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{json}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(heads.load(Ordering::SeqCst), 200);
    let received = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
    let heads: Vec<&str> = received
        .split("\r\n\r\n")
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(heads.len(), 200);
    for (i, head) in heads.iter().enumerate() {
        let path = if i % 4 == 1 { "/x?a=1" } else { "/" };
        let host = server.addr.to_string();
        let expected = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Test: 1");
        assert_eq!(*head, expected, "request {i}");
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kinds"][0]["path"], "/");
    assert_eq!(v["kinds"][0]["requests_sent"], 150);
    assert_eq!(v["kinds"][1]["path"], "/x?a=1");
    assert_eq!(v["kinds"][1]["share_pct"], 25);
    assert_eq!(v["kinds"][1]["responses"], 50);
}

/// `-n` against a server that never answers stops at the time limit, and
/// says so.
fn n_is_bounded_by_the_time_limit() {
    let server = load_support::stalled();
    let start = Instant::now();
    let out = load(&["-n", "5", "-c", "1", "-d", "300ms", &server.url()]);
    assert!(start.elapsed() < Duration::from_secs(10));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Stopped at the time limit (300ms) before all 5 requests were answered"),
        "{text}"
    );
}

/// oha's `-m` and `-b`, hey's `-D FILE`: the body goes out with its
/// Content-Length, on every request.
fn method_and_body_are_sent_with_a_content_length() {
    let (server, bytes, _) = recording_server();
    let out = load(&[
        "-n",
        "3",
        "-c",
        "1",
        "-m",
        "PUT",
        "-b",
        "hello",
        &server.url(),
    ]);
    assert!(out.status.success());
    let host = server.addr.to_string();
    let one = format!("PUT / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        String::from_utf8(bytes.lock().unwrap().clone()).unwrap(),
        one.repeat(3)
    );

    bytes.lock().unwrap().clear();
    let file = std::env::temp_dir().join(format!("servelab-body-{}", std::process::id()));
    std::fs::write(&file, b"{\"a\":1}\n").unwrap();
    let out = load(&[
        "-n",
        "1",
        "-c",
        "1",
        "-m",
        "POST",
        "-D",
        file.to_str().unwrap(),
        &server.url(),
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(bytes.lock().unwrap().clone()).unwrap(),
        format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 8\r\n\r\n{{\"a\":1}}\n")
    );
}

/// `http://[::1]:PORT/` loads an IPv6 loopback server (where the machine
/// has IPv6).
fn ipv6_loopback_in_brackets() {
    let server = match Server::start(Model::Event, ServerConfig::new("[::1]:0".parse().unwrap())) {
        Ok(server) => server,
        Err(e) => {
            let why = format!("no IPv6 loopback here ({e})");
            common::skip("ipv6_loopback_in_brackets", &why);
            return;
        }
    };
    let url = format!("http://[::1]:{}/", server.local_addr().port());
    let out = load(&["-n", "10", "-c", "2", &url]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Sent 10, answered 10 (10 with 2xx/3xx)"),
        "{text}"
    );
    server.shutdown();
}

/// The descriptors of process `pid`, as /proc names them
/// (`anon_inode:[io_uring]`, `socket:[...]`, ...).
fn descriptors(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|target| target.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `--engine` (and `SERVELAB_LOAD_ENGINE`) pick the engine, the process
/// runs on that one (an epoll instance or an io_uring among its
/// descriptors, not the other), and stderr names it and why.
#[test]
fn the_engine_asked_for_is_the_one_that_runs_and_it_is_named() {
    let server = Server::start(
        Model::Threaded,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let url = format!("http://{}/", server.local_addr());
    let uring = servelab::load::Engine::uring_availability();
    let mut cases = vec![
        (
            vec!["--engine", "epoll"],
            None,
            "engine: epoll (asked for with --engine)",
        ),
        (
            vec![],
            Some("epoll"),
            "engine: epoll (asked for with --engine)",
        ),
    ];
    match &uring {
        Ok(()) => {
            cases.push((
                vec!["--engine", "uring"],
                None,
                "engine: uring (asked for with --engine)",
            ));
            cases.push((
                vec![],
                None,
                "engine: uring (the default where io_uring is available",
            ));
        }
        Err(_) => cases.push((vec![], None, "engine: epoll (io_uring is not available: ")),
    }
    for (args, env, named) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_servelab"));
        command
            .args(["load", "-c", "2", "-d", "1500ms"])
            .args(&args)
            .arg(&url)
            .env_remove("SERVELAB_LOAD_ENGINE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(engine) = env {
            command.env("SERVELAB_LOAD_ENGINE", engine);
        }
        let child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let fds = descriptors(child.id());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
        let ran_uring = named.contains("engine: uring");
        let has = |kind: &str| fds.iter().any(|fd| fd.contains(kind));
        assert_eq!(has("[io_uring]"), ran_uring, "{args:?} {env:?}: {fds:?}");
        assert_eq!(has("[eventpoll]"), !ran_uring, "{args:?} {env:?}: {fds:?}");
    }
    if let Err(why) = uring {
        let stderr = refused(&["--engine", "uring", &url], 1);
        assert!(stderr.contains(&why), "{stderr}");
    }
    server.shutdown();
}

/// Runs a 10 s load, sends SIGINT after 300 ms, and returns its exit status
/// and stdout.
fn interrupted(extra: &[&str]) -> (Option<i32>, String) {
    let server = Server::start(
        Model::Event,
        ServerConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let url = format!("http://{}/", server.local_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_servelab"))
        .args(["load", "-c", "2", "-d", "10s"])
        .args(load_support::engine_args())
        .args(extra)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill only sends a signal to the child just spawned.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "it ran on after SIGINT"
    );
    server.shutdown();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// Ctrl-C prints the report of what was measured so far, marked
/// interrupted, and exits 130, as wrk and oha do.
fn ctrl_c_prints_the_partial_report_and_exits_130() {
    let (code, text) = interrupted(&[]);
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("Run interrupted after "), "{text}");
    assert!(text.contains("Requests/sec:"), "{text}");
    let answered: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_suffix(" read"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {text}"));
    assert!(answered > 0, "{text}");

    let (code, json) = interrupted(&["--json"]);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json_field(&json, "interrupted"), "true", "{json}");
    let elapsed: f64 = json_field(&json, "elapsed_s").parse().unwrap();
    assert!(elapsed > 0.0 && elapsed < 5.0, "{json}");
    assert_eq!(json_field(&json, "duration_s"), "10", "{json}");
}

on_both_engines!(
    human_and_json_reports,
    n_sends_exactly_n_requests_and_ends_when_they_are_answered,
    the_mix_reaches_the_server_in_its_pattern,
    n_is_bounded_by_the_time_limit,
    method_and_body_are_sent_with_a_content_length,
    ipv6_loopback_in_brackets,
    ctrl_c_prints_the_partial_report_and_exits_130,
);
