//! Helpers shared by the integration tests: starting a server, a raw HTTP/1.1
//! client that parses responses instead of sleeping, and the macro that runs
//! one test function against every model.
//!
//! Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use servelab::child::{ChildServer, Ready};
use servelab::http::Limits;
use servelab::models::{Model, Server, ServerConfig};

/// How long any single read may block before the test fails as hung. Long
/// enough for a loaded 2-core CI machine, short enough that a hang is a quick
/// failure rather than a stuck CI job.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The placeholder that [`mask_date`] puts where a valid `Date` value was.
pub const DATE_MASK: &str = "<date>";

/// Generates `mod sequential`, `mod threaded`, `mod pool`, `mod event`,
/// `mod uring` and `mod tokio`, each with one `#[test]` per listed function
/// `fn name(model: Model)`, so that a single suite runs against every model
/// and `cargo test` names each pair. Where io_uring cannot be used, the
/// `uring` tests print why and pass without running, or fail with
/// `SERVELAB_REQUIRE_ALL` set (see [`skip_unavailable`]).
#[allow(unused_macros)] // not every test binary that compiles this module uses it
macro_rules! per_model {
    ($($name:ident),* $(,)?) => {
        mod sequential {
            $( #[test] fn $name() { super::$name(servelab::models::Model::Sequential) } )*
        }
        mod threaded {
            $( #[test] fn $name() { super::$name(servelab::models::Model::Threaded) } )*
        }
        mod pool {
            $( #[test] fn $name() { super::$name(servelab::models::Model::Pool) } )*
        }
        per_reactor!($($name),*);
    };
}

/// [`per_model`] for the models that serve many connections per thread
/// only: `mod event`, `mod uring` and `mod tokio`.
#[allow(unused_macros)]
macro_rules! per_reactor {
    ($($name:ident),* $(,)?) => {
        mod event {
            $( #[test] fn $name() { super::$name(servelab::models::Model::Event) } )*
        }
        mod uring {
            $( #[test] fn $name() {
                let model = servelab::models::Model::Uring;
                if !$crate::common::skip_unavailable(model, stringify!($name)) {
                    super::$name(model)
                }
            } )*
        }
        mod tokio {
            $( #[test] fn $name() { super::$name(servelab::models::Model::Tokio) } )*
        }
    };
}

/// Writes `line` to the real stderr in one write, past the test harness's
/// output capture, so that it shows in every run and is not interleaved.
pub fn say(line: &str) {
    let _ = io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The environment variable that turns every skip into a failure
/// ([`skip`]): `.ci/run` sets it, so that a test that could not run on the
/// CI machine fails there instead of reading as a pass.
pub const REQUIRE_ALL: &str = "SERVELAB_REQUIRE_ALL";

/// The one way a test skips: says on stderr which test is skipped and why
/// (see [`say`]), and the caller returns without running it. With
/// `SERVELAB_REQUIRE_ALL` set (to anything but empty or `0`) it panics with
/// the same reason instead: the test fails.
pub fn skip(test: &str, why: &str) {
    let line = format!("skipped {test}: {why}");
    let required = std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0");
    if required {
        panic!("{line} ({REQUIRE_ALL} is set: every test must run)");
    }
    say(&line);
}

/// Whether `model` cannot run on this machine; if so, skips `test` with the
/// reason ([`skip`]).
pub fn skip_unavailable(model: Model, test: &str) -> bool {
    match model.availability() {
        Ok(()) => false,
        Err(why) => {
            skip(&format!("{test} on --model {}", model.name()), &why);
            true
        }
    }
}

/// Raises the open-file soft limit to the hard limit
/// ([`servelab::fd_limit::raise_to`]); whether that is still below `needed`,
/// in which case `test` is skipped ([`skip`]).
pub fn skip_below_fd_limit(test: &str, needed: u64) -> bool {
    let limit = servelab::fd_limit::raise_to(None);
    if limit >= needed {
        return false;
    }
    skip(
        test,
        &format!("RLIMIT_NOFILE hard limit {limit} is below {needed} (raise it: ulimit -Hn)"),
    );
    true
}

/// The configuration the tests start from: an ephemeral loopback port and
/// small thread counts, because the tests of one binary run in parallel on a
/// 2-core machine and each starts its own server.
pub fn config() -> ServerConfig {
    ServerConfig {
        acceptors: 2,
        pool_size: 4,
        queue: 64,
        shutdown_timeout: Duration::from_secs(3),
        // Short, so that a test dropping its server with a connection still
        // open does not wait the default second.
        shutdown_grace: Duration::from_millis(250),
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap())
    }
}

/// [`config`] with other protocol limits.
pub fn config_with(limits: Limits) -> ServerConfig {
    ServerConfig { limits, ..config() }
}

/// A server that is shut down when dropped, so that a test (even a failing
/// one) does not leave its threads running for the rest of the test binary.
pub struct TestServer {
    server: Option<Server>,
    addr: SocketAddr,
}

impl TestServer {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new client connection to this server.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Shuts the server down now and returns what [`Server::shutdown`] did.
    pub fn shutdown(mut self) -> bool {
        self.server.take().unwrap().shutdown()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

/// Starts `model` with [`config`].
pub fn start(model: Model) -> TestServer {
    start_with(model, config())
}

/// Starts `model` with `config`.
pub fn start_with(model: Model, config: ServerConfig) -> TestServer {
    let server = Server::start(model, config).expect("server starts");
    TestServer {
        addr: server.local_addr(),
        server: Some(server),
    }
}

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    /// The response exactly as received: head and body.
    pub raw: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// Header fields in order, as (name, value).
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD and 1xx).
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw response with its Date value checked and masked, as a string
    /// for readable assertion failures.
    pub fn masked(&self) -> String {
        mask_date(&self.raw)
    }
}

/// A raw HTTP/1.1 client over one TCP connection. Bytes read past the end of
/// a response are kept for the next one, so pipelined responses parse exactly.
pub struct Client {
    /// The socket, for tests that need it directly.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects with TCP_NODELAY (so byte-at-a-time writes really go out one
    /// by one) and a read timeout of [`IO_TIMEOUT`] as the hang guard.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// Writes `bytes` and reads one response to it.
    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
        self.read_response()
    }

    /// Half-closes the write side: the server reads EOF after what was sent.
    pub fn finish_writing(&mut self) {
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// Reads more bytes into the buffer; panics on EOF, error or timeout,
    /// since callers need them to complete a response.
    fn fill(&mut self, what: &str) {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed while reading {what}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "read failed while reading {what}: {e}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads one response whose body length is its Content-Length (none for 1xx).
    pub fn read_response(&mut self) -> Response {
        self.read_response_inner(false)
    }

    /// Reads one response to a HEAD request: the head declares a length but
    /// no body follows.
    pub fn read_head_response(&mut self) -> Response {
        self.read_response_inner(true)
    }

    fn read_response_inner(&mut self, head_only: bool) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill("a response head");
        };
        let head = std::str::from_utf8(&self.buf[..head_end - 4])
            .expect("response head is ASCII")
            .to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("bad header line {line:?}"));
                (name.to_string(), value.to_string())
            })
            .collect();
        let body_len = if head_only || (100..200).contains(&status) {
            0
        } else {
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
            length.1.parse::<usize>().expect("numeric Content-Length")
        };
        while self.buf.len() < head_end + body_len {
            self.fill("a response body");
        }
        let raw: Vec<u8> = self.buf.drain(..head_end + body_len).collect();
        Response {
            body: raw[head_end..].to_vec(),
            raw,
            status,
            headers,
        }
    }

    /// Reads until the server closes; returns everything not yet parsed. A
    /// reset after the data counts as the close.
    pub fn read_until_close(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "read failed before close: {e}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Asserts that the server closed the connection with nothing more to
    /// say: no unparsed bytes, and a read returns EOF or ECONNRESET (not a
    /// timeout, which would mean the server kept it open).
    pub fn assert_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Ok(n) => panic!(
                "expected close, got bytes {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("expected close, read failed: {e} (connection left open?)"),
        }
    }

    /// Asserts that the connection is still usable: a further `GET /` on it
    /// is answered 200 without `Connection: close`.
    pub fn assert_open(&mut self) {
        let response = self.request(GET);
        assert_eq!(response.status, 200, "{}", response.masked());
        assert_eq!(response.header("Connection"), None);
    }

    /// Asserts that nothing arrives for `window`: used where a response must
    /// not come yet. It cannot prove "never", only "not within the window",
    /// so callers follow it with a positive check of what unblocks it.
    pub fn assert_silent(&mut self, window: Duration) {
        assert!(self.buf.is_empty(), "unexpected buffered bytes");
        self.stream.set_read_timeout(Some(window)).unwrap();
        let mut chunk = [0u8; 1024];
        let result = self.stream.read(&mut chunk);
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(0) => panic!("connection closed, expected it open and silent"),
            Ok(n) => panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("expected silence, read failed: {e}"),
        }
    }
}

/// The plainest valid request: `GET /` over HTTP/1.1, kept alive.
pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// The exact `200 OK` response to `GET /`, Date masked.
pub const OK_RESPONSE: &str = "HTTP/1.1 200 OK\r\nDate: <date>\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";

/// The exact response servelab sends for `code` with its reason phrase as
/// body, the optional `Allow` list and `Connection` header, Date masked.
pub fn plain_response(
    code: u16,
    reason: &str,
    allow: Option<&str>,
    connection: Option<&str>,
) -> String {
    let mut s = format!(
        "HTTP/1.1 {code} {reason}\r\nDate: {DATE_MASK}\r\n\
Content-Type: text/plain\r\nContent-Length: {}\r\n",
        reason.len()
    );
    if let Some(allow) = allow {
        s.push_str(&format!("Allow: {allow}\r\n"));
    }
    if let Some(connection) = connection {
        s.push_str(&format!("Connection: {connection}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(reason);
    s
}

/// Replaces every `Date` header value in `raw` by [`DATE_MASK`], after
/// checking that it is a valid 29-byte IMF-fixdate followed by CRLF; returns
/// the result as a (lossy) string. Everything else is kept byte for byte.
pub fn mask_date(raw: &[u8]) -> String {
    const KEY: &[u8] = b"\r\nDate: ";
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = find(rest, KEY) {
        let value_start = i + KEY.len();
        let value = rest
            .get(value_start..value_start + 29)
            .unwrap_or_else(|| panic!("truncated Date in {:?}", String::from_utf8_lossy(raw)));
        assert!(
            is_imf_fixdate(value),
            "invalid Date value {:?}",
            String::from_utf8_lossy(value)
        );
        assert_eq!(
            rest.get(value_start + 29..value_start + 31),
            Some(&b"\r\n"[..]),
            "Date value is not exactly 29 bytes"
        );
        out.extend_from_slice(&rest[..value_start]);
        out.extend_from_slice(DATE_MASK.as_bytes());
        rest = &rest[value_start + 29..];
    }
    out.extend_from_slice(rest);
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `v` is an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`, with plausible field ranges.
pub fn is_imf_fixdate(v: &[u8]) -> bool {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = &v[r];
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(s).unwrap().parse().unwrap())
    };
    v.len() == 29
        && DAYS.contains(&&v[0..3])
        && &v[3..5] == b", "
        && num(5..7).is_some_and(|d| (1..=31).contains(&d))
        && v[7] == b' '
        && MONTHS.contains(&&v[8..11])
        && v[11] == b' '
        && num(12..16).is_some()
        && v[16] == b' '
        && num(17..19).is_some_and(|h| h < 24)
        && v[19] == b':'
        && num(20..22).is_some_and(|m| m < 60)
        && v[22] == b':'
        && num(23..25).is_some_and(|s| s < 61)
        && &v[25..29] == b" GMT"
}

/// The first position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Calls `attempt` until it returns `Some` or `within` passes, pausing
/// briefly between tries: for conditions that become true asynchronously
/// (a server thread noticing a close) without a fixed sleep.
pub fn poll<T>(within: Duration, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `model` is the v1 model, whose single thread serves one
/// connection at a time (tests that hold two connections must know).
pub fn is_sequential(model: Model) -> bool {
    model == Model::Sequential
}

/// A `servelab serve` child process ([`ChildServer`]: killed if a test
/// drops it without having waited for it, so that a failing test leaks no
/// process).
pub struct ServeProcess {
    server: ChildServer,
    /// The address it printed it listens on.
    pub addr: SocketAddr,
}

impl ServeProcess {
    /// Starts `servelab serve --model <model> --addr 127.0.0.1:0 <extra>` and
    /// reads the listening line from its stdout (a bounded wait, so that a
    /// child that never prints cannot hang the test).
    pub fn start(model: Model, extra: &[&str]) -> ServeProcess {
        Self::spawn(model, Self::command(model, extra))
    }

    /// [`ServeProcess::start`], with the child's RLIMIT_NOFILE (soft and
    /// hard) set to `fd_limit`: for running out of descriptors.
    pub fn start_with_fd_limit(model: Model, extra: &[&str], fd_limit: u64) -> ServeProcess {
        let mut command = Self::command(model, extra);
        let lim = libc::rlimit {
            rlim_cur: fd_limit,
            rlim_max: fd_limit,
        };
        // SAFETY: runs in the forked child before exec, and only calls
        // setrlimit, which is async-signal-safe, on a copied struct.
        unsafe {
            command.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &lim) {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            });
        }
        Self::spawn(model, command)
    }

    /// The command line [`ServeProcess::start`] runs, for a caller to adjust
    /// before [`ServeProcess::spawn`].
    pub fn command(model: Model, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_servelab"));
        command
            .args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
            .args(extra);
        command
    }

    /// Starts `command` (from [`ServeProcess::command`]) and reads its
    /// listening line; panics with the reason (and the server's stderr)
    /// when it does not come.
    pub fn spawn(model: Model, command: Command) -> ServeProcess {
        let shown = format!("servelab serve --model {}", model.name());
        let server = ChildServer::start(command, &shown, Ready::ListeningLine, IO_TIMEOUT)
            .unwrap_or_else(|why| panic!("{shown}: {why}"));
        ServeProcess {
            addr: server.addr,
            server,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: libc::c_int) {
        self.server.signal(signal)
    }

    /// Waits up to `within` for the child to exit; `None` if it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        self.server.wait_exit(within)
    }
}

/// Sets the soft open-file limit of process `pid` (prlimit(2)), keeping its
/// hard limit: lowering it below the descriptors in use makes the next
/// accept() fail with EMFILE.
pub fn set_fd_soft_limit(pid: u32, soft: u64) {
    // SAFETY: prlimit with valid pointers to locals.
    unsafe {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let none = std::ptr::null_mut();
        let pid = pid as libc::pid_t;
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old),
            0
        );
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, none), 0);
    }
}
