//! Steady-state requests allocate nothing: neither in the protocol core nor
//! anywhere in a model's serving loop.
//!
//! This binary installs a global allocator that counts every allocation
//! (realloc included) in the whole process. Since the count is process-wide,
//! the binary runs without the libtest harness (`harness = false` in
//! Cargo.toml): the harness's own threads allocate (its table of running
//! tests, its output) whenever they happen to run, which on a loaded machine
//! can be inside a measured window. `main` measures each variant in turn.
//!
//! To find an allocation, run with `SERVELAB_ALLOC_TRACE=1`: every allocation
//! inside a measured window then prints a backtrace to stderr.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use servelab::http::{Conn, Limits, Now};
use servelab::models::{Model, ServerConfig};
use servelab::route::{Routes, SeedRoutes, Work};

/// The wait of a parked request (`--work await`) in the parking variants.
const PARKED: Duration = Duration::from_micros(200);

/// Passes everything through to [`System`], counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Print a backtrace per allocation (set only inside measured windows).
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while this thread prints a backtrace, whose own allocations must
    /// not recurse into another backtrace.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if !TRACE.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // Tracing: count and print this allocation, but not the ones the
    // backtrace itself makes.
    let _ = IN_TRACE.try_with(|busy| {
        if !busy.replace(true) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "allocation in measured window:\n{}",
                Backtrace::force_capture()
            );
            busy.set(false);
        }
    });
}

// SAFETY: every call is forwarded unchanged to the System allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: usize = 100;
const MEASURED: usize = 1_000;
/// Pipelined requests per `Conn::feed` in the core variant.
const BATCH: usize = 16;

/// Allocations made while `work` runs (the window traced if asked to).
fn allocations_during(trace: bool, work: impl FnOnce()) -> u64 {
    TRACE.store(trace, Ordering::SeqCst);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    work();
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    TRACE.store(false, Ordering::SeqCst);
    after - before
}

/// Reads exactly one response into `buf` without allocating: the head up to
/// CRLFCRLF, then Content-Length body bytes. Returns the status code. The
/// client sends one request at a time, so no byte of a next response can
/// arrive early; any surplus is a failure.
fn read_one_response(stream: &mut TcpStream, buf: &mut [u8; 1024]) -> u16 {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).expect("read response");
        assert!(n > 0, "server closed the connection");
        filled += n;
        let Some(head_end) = buf[..filled]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
        else {
            continue;
        };
        let total = head_end + content_length(&buf[..head_end]);
        if filled >= total {
            assert_eq!(filled, total, "bytes after the response");
            return parse_status(buf);
        }
    }
}

/// The Content-Length value of a response head, parsed without allocating.
fn content_length(head: &[u8]) -> usize {
    const NAME: &[u8] = b"\r\nContent-Length: ";
    let at = find(head, NAME).expect("Content-Length") + NAME.len();
    head[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, &d| n * 10 + usize::from(d - b'0'))
}

fn parse_status(buf: &[u8]) -> u16 {
    assert!(buf.starts_with(b"HTTP/1.1 "), "bad status line");
    buf[9..12]
        .iter()
        .fold(0, |n, &d| n * 10 + u16::from(d - b'0'))
}

/// One keep-alive connection to `model` whose handler does `work`: 100
/// warm-up requests, then the allocations made (by client and server
/// together) over 1,000 more.
fn model_allocations(model: Model, work: Work, trace: bool) -> u64 {
    // One acceptor and one worker (one reactor): serving the warm-up
    // requests proves every server thread has started. A thread that the
    // OS had not yet run would allocate its thread-startup state (name,
    // TLS) inside the window.
    let config = ServerConfig {
        acceptors: 1,
        pool_size: 1,
        reactors: 1,
        limits: Limits {
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        routes: Routes {
            work,
            ..Routes::default()
        },
        ..config()
    };
    let server = start_with(model, config);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 1024];
    let mut exchange = |stream: &mut TcpStream| {
        stream.write_all(GET).expect("write request");
        let status = read_one_response(stream, &mut buf);
        assert_eq!(status, 200);
    };
    for _ in 0..WARM_UP {
        exchange(&mut stream);
    }
    let count = allocations_during(trace, || {
        for _ in 0..MEASURED {
            exchange(&mut stream);
        }
    });
    drop(stream);
    assert!(server.shutdown());
    count
}

/// Requests of every framing, pipelined: each is parsed on its own (a
/// batch of one repeated head is answered from its first parse).
const MIXED: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n\
POST /y HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n";

/// The core alone: batches of 16 pipelined requests through `Conn::feed`,
/// all alike (`batch`) or of every framing.
fn core_allocations(trace: bool, batch: &[u8]) -> u64 {
    let mut conn = Conn::new(SeedRoutes, Limits::default(), Now::read());
    let round = |conn: &mut Conn<SeedRoutes>| {
        conn.feed(batch, Now::read());
        let out = conn.output();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let n = out.len();
        conn.consume_output(n, Now::read());
        assert!(!conn.is_closing());
    };
    for _ in 0..WARM_UP {
        round(&mut conn);
    }
    allocations_during(trace, || {
        for _ in 0..MEASURED {
            round(&mut conn);
        }
    })
}

/// The core alone, every `request` parked by its handler (`routes`) and
/// woken at its deadline, as a reactor's timer does.
fn core_parked_allocations(trace: bool, routes: Routes, request: &[u8]) -> u64 {
    let mut conn = Conn::new(routes, Limits::default(), Now::read());
    let round = |conn: &mut Conn<Routes>| {
        conn.feed(request, Now::read());
        assert!(conn.is_awaiting() && conn.output().is_empty());
        let now = Now {
            instant: conn.deadline(),
            ..Now::read()
        };
        conn.on_timeout(now);
        let out = conn.output();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let n = out.len();
        conn.consume_output(n, now);
    };
    for _ in 0..WARM_UP {
        round(&mut conn);
    }
    allocations_during(trace, || {
        for _ in 0..MEASURED {
            round(&mut conn);
        }
    })
}

fn main() {
    print!("test steady_state_requests_allocate_nothing ... ");
    steady_state_requests_allocate_nothing();
    println!("ok\n\ntest result: ok. 1 passed; 0 failed");
}

fn steady_state_requests_allocate_nothing() {
    let trace = std::env::var_os("SERVELAB_ALLOC_TRACE").is_some();
    let mut results = vec![
        (
            "core (Conn::feed, batches of 16 GETs)".to_string(),
            core_allocations(trace, &GET.repeat(BATCH)),
        ),
        (
            "core (Conn::feed, batches of GET, POST with Content-Length, HEAD, POST chunked)"
                .to_string(),
            core_allocations(trace, &MIXED.repeat(BATCH / 4)),
        ),
        (
            "core (Conn::feed, each request parked, then woken)".to_string(),
            core_parked_allocations(
                trace,
                Routes {
                    work: Work::Await(PARKED.into()),
                    ..Routes::default()
                },
                GET,
            ),
        ),
        (
            "core (Conn::feed, each GET /slow parked by --slow-work, then woken)".to_string(),
            core_parked_allocations(
                trace,
                Routes {
                    slow_work: Some(Work::Await(PARKED.into())),
                    ..Routes::default()
                },
                b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n",
            ),
        ),
    ];
    for model in Model::ALL {
        if skip_unavailable(model, "steady_state_requests_allocate_nothing") {
            continue;
        }
        results.push((
            model.name().to_string(),
            model_allocations(model, Work::None, trace),
        ));
        if model.parks_without_a_thread() {
            let parked = model_allocations(model, Work::Await(PARKED.into()), trace);
            results.push((format!("{} (every request parked)", model.name()), parked));
        }
    }
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, count)| *count != 0)
        .map(|(name, count)| format!("{name}: {count} allocations in {MEASURED} measured rounds"))
        .collect();
    assert!(
        failures.is_empty(),
        "{}\n(a round is one request, or one batch for the core; \
         rerun with SERVELAB_ALLOC_TRACE=1 for backtraces)",
        failures.join("\n")
    );
}
