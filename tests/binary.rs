//! Tests of the real `servelab` binary: the CLI, the startup line and the
//! exit on SIGTERM after a graceful shutdown.

#[macro_use]
mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use servelab::models::Model;

/// Serves a GET, then exits 0 within a few seconds of SIGTERM (after the
/// graceful shutdown), with a keep-alive connection still open.
fn serves_then_exits_zero_on_sigterm(model: Model) {
    let mut server = ServeProcess::start(model, &[]);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.request(GET).masked(), OK_RESPONSE);
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("servelab did not exit within 4 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    c.assert_closed();
}

/// SIGINT (Ctrl-C) is a graceful shutdown too.
fn exits_zero_on_sigint(model: Model) {
    let mut server = ServeProcess::start(model, &[]);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.request(GET).status, 200);
    drop(c);
    server.signal(libc::SIGINT);
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("servelab did not exit within 4 s of SIGINT");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// A second SIGTERM ends a graceful shutdown at once, with the shell's
/// status for death by that signal (128 + 15): here the shutdown would
/// otherwise wait out a 10 s grace period for an idle connection.
fn second_sigterm_exits_at_once(model: Model) {
    let flags = ["--shutdown-grace", "10s", "--shutdown-timeout", "10s"];
    let mut server = ServeProcess::start(model, &flags);
    let mut c = Client::connect(server.addr);
    assert_eq!(c.request(GET).status, 200);
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_millis(300)).is_none(),
        "exited within the grace period of an idle connection"
    );
    let second = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(2))
        .expect("servelab did not exit at the second SIGTERM");
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(second.elapsed() < Duration::from_secs(2));
}

/// The CLI flags reach the server: a tiny --max-request-line gives 414.
fn limit_flags_are_applied(model: Model) {
    let server = ServeProcess::start(model, &["--max-request-line", "16"]);
    let mut c = Client::connect(server.addr);
    let r = c.request(b"GET /0123456789abcdef HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 414);
    c.assert_closed();
}

/// `--work wait:D` reaches the handler: every request takes at least D.
fn work_flag_is_applied(model: Model) {
    let server = ServeProcess::start(model, &["--work", "wait:150ms"]);
    let mut c = Client::connect(server.addr);
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(c.request(GET).status, 200);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}

/// `--slow-work` adds `/slow`, a 404 without it: answered as `/` after its
/// own work, which only `/slow` spends (a `/` sent meanwhile on another
/// connection is answered first, where the model serves two connections
/// at once; v1 serves one at a time). `await` is `wait` on v1-v3 and parks
/// the request on v4-v6, whose ticket must bring back the `/slow` route.
fn slow_work_flag_is_applied(model: Model) {
    const SLOW: Duration = Duration::from_millis(300);
    const GET_SLOW: &[u8] = b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    let seed = ServeProcess::start(model, &[]);
    let mut c = Client::connect(seed.addr);
    assert_eq!(c.request(GET_SLOW).status, 404);
    drop((c, seed));

    let server = ServeProcess::start(model, &["--slow-work", "await:300ms"]);
    let mut slow = Client::connect(server.addr);
    let started = Instant::now();
    slow.send(GET_SLOW);
    if !is_sequential(model) {
        let mut quick = Client::connect(server.addr);
        assert_eq!(quick.request(GET).masked(), OK_RESPONSE);
        let quick_took = started.elapsed();
        assert!(
            quick_took < SLOW,
            "GET / took {quick_took:?} behind a GET /slow on another connection"
        );
        let refused = quick.request(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(refused.status, 405);
        assert_eq!(refused.header("Allow"), Some("GET, HEAD"));
    }
    assert_eq!(slow.read_response().masked(), OK_RESPONSE);
    assert!(
        started.elapsed() >= SLOW,
        "GET /slow took {:?}",
        started.elapsed()
    );
    // On v1 the other connection waits for this one: the rest on it.
    let started = Instant::now();
    assert_eq!(slow.request(GET).status, 200);
    assert!(
        started.elapsed() < SLOW,
        "GET / took {:?}",
        started.elapsed()
    );
    slow.send(b"HEAD /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = slow.read_head_response();
    assert_eq!(
        (head.status, head.header("Content-Length")),
        (200, Some("2"))
    );
    assert!(
        started.elapsed() >= SLOW,
        "HEAD /slow took {:?}",
        started.elapsed()
    );
}

/// `--body SIZE` reaches the handler, and a distribution for `--work` is
/// taken: `GET /` answers SIZE bytes, HEAD declares them.
#[test]
fn body_flag_is_applied() {
    let server = ServeProcess::start(
        Model::Event,
        &["--body", "64k", "--work", "cpu:10us|50us@10%"],
    );
    let mut c = Client::connect(server.addr);
    let r = c.request(GET);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 << 10);
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.header("Content-Length"), Some("65536"));
    assert_eq!(c.request(GET).body.len(), 64 << 10);
}

/// A `--body` over 16 MiB, or not a size, is refused with exit code 2.
#[test]
fn bad_body_value_exits_2() {
    for bad in ["17m", "16777217", "1x", "-1"] {
        let out = Command::new(env!("CARGO_BIN_EXE_servelab"))
            .args(["serve", "--body", bad, "--addr", "127.0.0.1:0"])
            .output()
            .expect("run servelab");
        assert_eq!(out.status.code(), Some(2), "--body {bad}");
    }
}

per_model!(
    serves_then_exits_zero_on_sigterm,
    exits_zero_on_sigint,
    second_sigterm_exits_at_once,
    limit_flags_are_applied,
    work_flag_is_applied,
    slow_work_flag_is_applied,
);

/// `servelab serve --help` documents every flag.
#[test]
fn serve_help_mentions_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_servelab"))
        .args(["serve", "--help"])
        .output()
        .expect("run servelab serve --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let missing: Vec<&str> = [
        "--model",
        "--addr",
        "--max-request-line",
        "--max-header-bytes",
        "--max-headers",
        "--max-body",
        "--header-read-timeout",
        "--idle-timeout",
        "--backlog",
        "--max-connections",
        "--thread-stack",
        "--acceptors",
        "--pool-size",
        "--queue",
        "--shutdown-timeout",
        "--shutdown-grace",
        "--work",
        "--body",
    ]
    .into_iter()
    .filter(|flag| !help.contains(&format!("{flag} ")))
    .collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{help}");
}

/// A malformed flag value is refused with a non-zero exit, not ignored.
#[test]
fn bad_flag_value_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_servelab"))
        .args(["serve", "--idle-timeout", "soon", "--addr", "127.0.0.1:0"])
        .output()
        .expect("run servelab");
    assert!(!out.status.success());
}

/// A malformed `--work` is refused with clap's usage exit code 2 and a
/// message naming the accepted forms.
#[test]
fn bad_work_value_exits_2() {
    for bad in [
        "sleep:1ms",
        "cpu:0s",
        "wait:5s",
        "cpu",
        "cpu:exp(0us)",
        "wait:1ms|2ms@100%",
        "await:1ms|2ms",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_servelab"))
            .args(["serve", "--work", bad, "--addr", "127.0.0.1:0"])
            .output()
            .expect("run servelab");
        assert_eq!(out.status.code(), Some(2), "--work {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--work"), "{err}");
    }
}

/// Where io_uring is blocked (here by a seccomp filter, as container
/// runtimes install), `serve --model uring` exits non-zero at once with a
/// message naming the cause, and another model serves under the same filter.
#[test]
fn uring_blocked_by_seccomp_exits_naming_the_cause() {
    let mut uring = ServeProcess::command(Model::Uring, &[]);
    uring.stderr(Stdio::piped());
    // SAFETY: `deny_io_uring` runs in the forked child before exec and only
    // makes two prctl calls on memory of its own stack.
    unsafe { uring.pre_exec(deny_io_uring) };
    let mut child = uring.spawn().expect("spawn servelab");
    let status = poll(Duration::from_secs(5), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("serve --model uring kept running with io_uring blocked");
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(
        stderr.contains("--model uring cannot run here") && stderr.contains("seccomp"),
        "{stderr}"
    );

    let mut event = ServeProcess::command(Model::Event, &[]);
    // SAFETY: as above.
    unsafe { event.pre_exec(deny_io_uring) };
    let server = ServeProcess::spawn(Model::Event, event);
    assert_eq!(Client::connect(server.addr).request(GET).status, 200);
}

/// Installs a seccomp filter on the calling process that fails
/// io_uring_setup with EPERM and allows every other system call.
fn deny_io_uring() -> std::io::Result<()> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    // SAFETY: BPF_STMT/BPF_JUMP only build structs; prctl gets a program
    // that lives on this stack for the duration of the call.
    unsafe {
        let filter = [
            // Load the system call number (offset 0 of seccomp_data).
            libc::BPF_STMT((BPF_LD | BPF_W | BPF_ABS) as u16, 0),
            libc::BPF_JUMP(
                (BPF_JMP | BPF_JEQ | BPF_K) as u16,
                libc::SYS_io_uring_setup as u32,
                0,
                1,
            ),
            libc::BPF_STMT(BPF_RET as u16, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
            libc::BPF_STMT(BPF_RET as u16, libc::SECCOMP_RET_ALLOW),
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
