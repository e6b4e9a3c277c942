//! Small raw-socket test servers with deliberately odd behaviour, for the
//! load generator's tests. Each runs on its own threads and stops when dropped.

#![allow(dead_code)]

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use servelab::load::{Engine, LoadConfig};

thread_local! {
    /// The engine the current test runs on; `None`: the default.
    static ENGINE: Cell<Option<Engine>> = const { Cell::new(None) };
}

/// The engine the current test runs on (set by [`on_engine`]); `None`
/// outside [`on_both_engines!`], where loads take the default.
pub fn engine() -> Option<Engine> {
    ENGINE.get()
}

/// Runs a test body on `engine`: [`config`] and [`engine_args`] pass it on.
/// On io_uring where it cannot run here, says so and passes; but fails
/// under CI (`SERVELAB_REQUIRE_ALL` set, as `common::skip` does), where
/// every test must run.
pub fn on_engine(engine: Engine, body: impl FnOnce()) {
    if engine == Engine::Uring {
        if let Err(why) = Engine::uring_availability() {
            let line = format!("skipped on the uring engine: {why}");
            let required =
                std::env::var_os("SERVELAB_REQUIRE_ALL").is_some_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{line} (SERVELAB_REQUIRE_ALL is set: every test must run)"
            );
            eprintln!("{line}");
            return;
        }
    }
    ENGINE.set(Some(engine));
    body();
}

/// `servelab load` with `args`, on the current test's engine.
pub fn load(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_servelab"))
        .arg("load")
        .args(args)
        .args(engine_args())
        .output()
        .unwrap()
}

/// The `servelab load` flags that select the current test's engine.
pub fn engine_args() -> Vec<String> {
    match engine() {
        Some(engine) => vec!["--engine".into(), engine.name().into()],
        None => Vec::new(),
    }
}

/// Makes each of the named functions (test bodies, without `#[test]`) two
/// tests, one per engine: `name::uring` and `name::epoll`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                $crate::load_support::on_engine(servelab::load::Engine::Uring, super::$name)
            }

            #[test]
            fn epoll() {
                $crate::load_support::on_engine(servelab::load::Engine::Epoll, super::$name)
            }
        }
    )+};
}

/// The response every raw server sends unless told otherwise.
pub const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";

/// A raw server: accepts on a background thread, hands each connection to a
/// thread of its own running `handle`.
pub struct RawServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl RawServer {
    /// Starts a server; `handle` gets each connection and the stop flag.
    /// The listener closes when `handle` sets `close_listener`.
    pub fn start<F>(handle: F) -> RawServer
    where
        F: Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let flag = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_nodelay(true).unwrap();
                        let handle = Arc::clone(&handle);
                        let flag = Arc::clone(&flag);
                        thread::spawn(move || handle(stream, &flag));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => return,
                }
            }
            // Dropping the listener here: later connects are refused.
        });
        RawServer {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    /// The URL of `/` on this server.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops accepting (and lets handlers that watch the flag end).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }

    /// The stop flag, to let a handler close the listener.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads requests off `stream` and calls `on_request` once per complete
/// request head (counted by its blank line); stops when it returns false,
/// at end of stream, or when `stop` is set.
pub fn for_each_request(
    stream: &mut TcpStream,
    stop: &AtomicBool,
    mut on_request: impl FnMut(&mut TcpStream) -> bool,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    let mut tail = [0u8; 3];
    let mut tail_len = 0;
    while !stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        // Scan the previous read's last 3 bytes and this read for CRLFCRLF.
        let mut window: Vec<u8> = tail[..tail_len].to_vec();
        window.extend_from_slice(&buf[..n]);
        let heads = window.windows(4).filter(|w| w == b"\r\n\r\n").count();
        tail_len = window.len().min(3);
        tail[..tail_len].copy_from_slice(&window[window.len() - tail_len..]);
        for _ in 0..heads {
            if !on_request(stream) {
                return;
            }
        }
    }
}

/// A server that answers exactly `k` requests in all, then closes every
/// connection that asks for more and stops listening.
pub fn answers_k_then_closes(k: u64) -> (RawServer, Arc<AtomicU64>) {
    let answered = Arc::new(AtomicU64::new(0));
    let tickets = Arc::clone(&answered);
    let closing: Arc<std::sync::Mutex<Option<Arc<AtomicBool>>>> = Arc::default();
    let closing_in = Arc::clone(&closing);
    let server = RawServer::start(move |mut stream, stop| {
        for_each_request(&mut stream, stop, |s| {
            if tickets.fetch_add(1, Ordering::SeqCst) < k {
                s.write_all(OK).is_ok()
            } else {
                if let Some(flag) = closing_in.lock().unwrap().as_ref() {
                    flag.store(true, Ordering::SeqCst);
                }
                let _ = s.shutdown(std::net::Shutdown::Both);
                false
            }
        });
    });
    *closing.lock().unwrap() = Some(server.stop_flag());
    (server, answered)
}

/// A server that accepts and reads but never answers.
pub fn stalled() -> RawServer {
    RawServer::start(|mut stream, stop| for_each_request(&mut stream, stop, |_| true))
}

/// A server that answers at once, except that from `at` after its start for
/// `length`, every response waits until the stall is over.
pub fn stalls(at: Duration, length: Duration) -> RawServer {
    let begin = Instant::now() + at;
    let end = begin + length;
    RawServer::start(move |mut stream, stop| {
        for_each_request(&mut stream, stop, |s| {
            let now = Instant::now();
            if now >= begin && now < end {
                thread::sleep(end - now);
            }
            s.write_all(OK).is_ok()
        })
    })
}

/// The responses of [`mixed_framing`], in the order it cycles through them.
pub const MIXED: [&[u8]; 3] = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found",
];

/// A server that answers the n-th request of each connection with
/// `MIXED[n % 3]`, each response written in two pieces split mid-head or
/// mid-body, so the client must frame across reads.
pub fn mixed_framing() -> RawServer {
    RawServer::start(|mut stream, stop| {
        let mut n = 0usize;
        for_each_request(&mut stream, stop, |s| {
            let response = MIXED[n % 3];
            let cut = (7 * n + 5) % response.len();
            n += 1;
            s.write_all(&response[..cut]).is_ok() && s.write_all(&response[cut..]).is_ok()
        })
    })
}

/// A config aimed at `url` with `connections`, one thread, for `duration`,
/// on the current test's engine.
pub fn config(url: &str, connections: usize, duration: Duration) -> LoadConfig {
    let mut c = LoadConfig::new(url).unwrap();
    c.engine = engine();
    c.connections = connections;
    c.threads = 1;
    c.duration = duration;
    c
}

/// Every request sent in the window ended exactly one way.
pub fn assert_accounted(r: &servelab::load::LoadReport) {
    let c = &r.counters;
    assert_eq!(
        c.sent,
        c.responses + c.timeouts + c.aborted + c.unanswered,
        "sent = responses + timeouts + aborted + unanswered: {c:?}"
    );
}
