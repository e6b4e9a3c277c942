//! Tests of the real `servelab` binary: the CLI, the startup line and the
//! exit on SIGTERM after a graceful shutdown.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use servelab::models::Model;

/// A `servelab serve` child process, killed (SIGKILL) if a test drops it
/// without having waited for it, so that a failing test leaks no process.
pub struct ServeProcess {
    child: Child,
    /// The address it printed it listens on.
    pub addr: SocketAddr,
}

impl ServeProcess {
    /// Starts `servelab serve --model <model> --addr 127.0.0.1:0 <extra>` and
    /// reads the listening line from its stdout (bounded wait, on a helper
    /// thread, so that a child that never prints cannot hang the test).
    pub fn start(model: Model, extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_servelab"))
            .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn servelab");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("servelab printed no listening line");
            }
        };
        let prefix = format!("servelab {} listening on http://", model.name());
        let addr = line
            .trim_end()
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
        ServeProcess { child, addr }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) },
            0
        );
    }

    /// Waits up to `within` for the child to exit; `None` if it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        poll(within, || self.child.try_wait().unwrap())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

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

/// The CLI flags reach the server: a tiny --max-request-line gives 414.
fn limit_flags_are_applied(model: Model) {
    let server = ServeProcess::start(model, &["--max-request-line", "16"]);
    let mut c = Client::connect(server.addr);
    let r = c.request(b"GET /0123456789abcdef HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 414);
    c.assert_closed();
}

per_model!(
    serves_then_exits_zero_on_sigterm,
    exits_zero_on_sigint,
    limit_flags_are_applied,
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
