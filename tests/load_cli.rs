//! `servelab load` as a command: flags, bad input, output forms.

use std::net::TcpListener;
use std::process::{Command, Output};

use servelab::models::{Model, Server, ServerConfig};

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servelab"))
        .arg("load")
        .args(args)
        .output()
        .unwrap()
}

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
        "--header",
        "-H,",
        "--method",
        "--timeout",
        "--pipeline",
        "--rate",
        "--warmup",
        "--json",
        "--allow-remote",
        "[default: 100]",
        "[default: 10s]",
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
    ] {
        let stderr = refused(&args, code);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
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
        r#"{"schema":3,"#,
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
