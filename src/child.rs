//! A server as a child process, as the bench and the black-box tests run
//! one: in a process group of its own (a terminal's Ctrl-C reaches the
//! parent, which stops it, and not the server), killed when its parent
//! dies, its stdout drained and the tail of its stderr kept for the reason
//! of a failure; ready once it prints its listening line (servelab's) or
//! accepts a connection (any other server); stopped with SIGTERM, then
//! SIGKILL.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The tail of a server's stderr kept for failure reasons.
const STDERR_TAIL: usize = 2048;

/// How a started server shows that it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// It prints `servelab NAME listening on http://ADDR/` on stdout
    /// ([`listening_line`]): its address is read from there.
    ListeningLine,
    /// It accepts a connection at this address.
    Accepts(SocketAddr),
}

/// How [`ChildServer::stop`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// How it ended; `None`: it was killed, still running at the timeout.
    pub status: Option<ExitStatus>,
    /// From SIGTERM to its end.
    pub waited: Duration,
    /// What went wrong, if anything (then the stop was not clean).
    pub note: Option<String>,
}

/// A server child process, killed (its whole process group) when dropped.
pub struct ChildServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl ChildServer {
    /// Starts `command` (`shown`: how error messages name it) and waits up
    /// to `timeout` until it is `ready`. Its stdin is closed, its stdout
    /// and stderr are piped here, and it gets a process group of its own
    /// and death with this process (besides whatever the caller prepared
    /// in `command`). Err is why, with the tail of its stderr.
    pub fn start(
        mut command: Command,
        shown: &str,
        ready: Ready,
        timeout: Duration,
    ) -> Result<ChildServer, String> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe, and runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {shown:?}: {e}"))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || keep_tail(pipe, &tail));
        }
        let (tx, rx) = mpsc::channel();
        if let Some(pipe) = child.stdout.take() {
            thread::spawn(move || {
                let mut lines = BufReader::new(pipe).lines();
                let mut read = lines.by_ref().map_while(Result::ok);
                if let Some(addr) = read.find_map(|line| listening_addr(&line)) {
                    let _ = tx.send(addr);
                }
                // Keep draining, so that the server never blocks on stdout.
                lines.for_each(drop);
            });
        }
        let addr = match ready {
            Ready::ListeningLine => SocketAddr::from(([127, 0, 0, 1], 0)),
            Ready::Accepts(addr) => addr,
        };
        let mut server = ChildServer {
            child,
            addr,
            stderr,
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(why) = server.exited("before it was ready") {
                return Err(why);
            }
            let up = match ready {
                Ready::ListeningLine => rx.try_recv().map(|addr| server.addr = addr).is_ok(),
                Ready::Accepts(addr) => {
                    TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
                }
            };
            if up {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                let what = match ready {
                    Ready::ListeningLine => "print its listening line",
                    Ready::Accepts(_) => "accept a connection",
                };
                let tail = server.stderr_tail();
                server.kill();
                let secs = timeout.as_secs();
                return Err(format!("did not {what} within {secs}s{tail}"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its process id (its process group's too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Why, when the server has exited (`when`: "before it was ready"...).
    pub fn exited(&mut self, when: &str) -> Option<String> {
        let status = self.child.try_wait().ok()??;
        Some(self.why(status, &format!("exited {when}"), ""))
    }

    /// Sends `signal` to its process group.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the child's own process group (its pid, set by
        // process_group(0)); no memory involved.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), signal) };
    }

    /// Waits up to `within` for it to exit; `None` if it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                _ => return None,
            }
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`, and how it went: `clean`
    /// says whether an exit status after SIGTERM is a clean stop.
    pub fn stop(mut self, timeout: Duration, clean: impl Fn(ExitStatus) -> bool) -> Stopped {
        let started = Instant::now();
        if let Ok(Some(status)) = self.child.try_wait() {
            let note = self.why(status, "had already exited", "");
            return Stopped {
                status: Some(status),
                waited: Duration::ZERO,
                note: Some(note),
            };
        }
        self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_exit(timeout) {
            let note = (!clean(status)).then(|| self.why(status, "exited", " after SIGTERM"));
            let waited = started.elapsed();
            return Stopped {
                status: Some(status),
                waited,
                note,
            };
        }
        self.kill();
        let secs = timeout.as_secs();
        Stopped {
            status: None,
            waited: started.elapsed(),
            note: Some(format!("still running {secs}s after SIGTERM: killed")),
        }
    }

    /// `{what} ({status}){after}`, then the tail of its stderr.
    fn why(&self, status: ExitStatus, what: &str, after: &str) -> String {
        let (status, tail) = (status_text(status), self.stderr_tail());
        format!("{what} ({status}){after}{tail}")
    }

    fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// The last lines of the server's stderr, as `: text` (empty if none).
    pub fn stderr_tail(&self) -> String {
        // Let the reader thread take in what a server that just exited wrote.
        thread::sleep(Duration::from_millis(20));
        let bytes = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        match text.trim() {
            "" => String::new(),
            text => format!(": {}", text.replace('\n', " / ")),
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn keep_tail(mut pipe: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = pipe.read(&mut buf) {
        if let Ok(mut t) = tail.lock() {
            t.extend_from_slice(&buf[..n]);
            let cut = t.len().saturating_sub(STDERR_TAIL);
            t.drain(..cut);
        }
    }
}

/// The line a servelab server prints once it listens: `servelab NAME
/// listening on http://ADDR/`.
pub fn listening_line(name: &str, addr: SocketAddr) -> String {
    format!("servelab {name} listening on http://{addr}/")
}

/// The address of a [`listening_line`].
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("servelab ")?;
    let (_, url) = rest.split_once(" listening on http://")?;
    url.trim_end().trim_end_matches('/').parse().ok()
}

/// `exit status 1`, `killed by signal 9`.
pub fn status_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "unknown status".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_reads_back() {
        let addr: SocketAddr = "127.0.0.1:9004".parse().unwrap();
        assert_eq!(listening_addr(&listening_line("event", addr)), Some(addr));
        assert_eq!(listening_addr("nginx listening on http://x/"), None);
        assert_eq!(listening_addr("servelab: SIGTERM, shutting down"), None);
    }

    #[test]
    fn a_child_that_exits_early_says_why_with_its_stderr() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo broken >&2; exit 3"]);
        let e = ChildServer::start(command, "sh", Ready::ListeningLine, Duration::from_secs(5));
        let e = e.err().expect("it exited");
        assert!(
            e.contains("exited before it was ready (exit status 3): broken"),
            "{e}"
        );
    }
}
