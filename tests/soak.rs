//! A bounded soak of every model, over the real binary (a child process, so
//! that its descriptors and memory are its own): rounds of requests over 50
//! connections at once, with random pipelining depth, a random mix of
//! requests and a random `Connection: close`.
//!
//! Every request gets exactly one response, byte for byte the right one, in
//! order; after each round the server's open descriptors are back to what
//! they were before the first; and, after a warm-up round, its resident
//! memory after the second identical round is not above the peak of the
//! first by more than [`RSS_SLACK_KIB`] (no growth per round).
//!
//! Size: [`REQUESTS_PER_ROUND`] = 200,000 requests per round (the issue's
//! figure), three rounds per model. A debug build serves and checks them at
//! 40,000-100,000 requests a second on a shared 2-core machine (v1, one
//! connection at a time, is the slowest), so the whole file takes 25-30 s
//! of a debug `cargo test` there, and each connection sees 4,000 requests
//! and over a hundred reconnects per round.
//! `cargo test --test soak -- --nocapture` prints each round's figures.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use servelab::models::Model;
use servelab::{fd_limit, procfs};

/// Requests per round, over all connections.
const REQUESTS_PER_ROUND: usize = 200_000;
/// Connections open at once.
const CONNECTIONS: usize = 50;
/// Deepest pipeline a connection sends in one write.
const MAX_DEPTH: u64 = 8;
/// One batch in this many ends with `Connection: close`.
const CLOSE_ONE_IN: u64 = 8;
/// How far the resident memory after round 2 may exceed round 1's peak:
/// 5 bytes per request. A leak per request of a few bytes, or per
/// connection of a couple of hundred (a read buffer is 4 KiB), exceeds it.
///
/// Rounds 1 and 2 follow a warm-up round (round 0) that is not compared:
/// glibc's per-thread arenas and its cache of thread stacks take more than
/// one round to reach their working size. Measured over six rounds with no
/// warm-up, v3 grew by 1,052, 332, 40, 32 and 12 KiB from one round to the
/// next, v2 by 140, 8, 16, 48 and 0 KiB: growth that stops, not a leak.
const RSS_SLACK_KIB: u64 = 1024;

/// The requests a batch mixes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Get,
    Missing,
    Head,
    Post,
}

impl Kind {
    fn pick(rng: &mut Rng) -> Kind {
        [Kind::Get, Kind::Missing, Kind::Head, Kind::Post][rng.below(4) as usize]
    }

    fn encode(self, close: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(match self {
            Kind::Get => b"GET / HTTP/1.1\r\nHost: soak\r\n",
            Kind::Missing => b"GET /missing HTTP/1.1\r\nHost: soak\r\n",
            Kind::Head => b"HEAD / HTTP/1.1\r\nHost: soak\r\n",
            Kind::Post => b"POST / HTTP/1.1\r\nHost: soak\r\nContent-Length: 5\r\n",
        });
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Kind::Post = self {
            out.extend_from_slice(b"hello");
        }
    }

    /// The exact response (Date masked).
    fn expected(self, close: bool) -> String {
        let connection = close.then_some("close");
        match self {
            Kind::Get => plain_response(200, "OK", None, connection),
            Kind::Missing => plain_response(404, "Not Found", None, connection),
            Kind::Head => {
                let full = plain_response(200, "OK", None, connection);
                full.strip_suffix("OK").unwrap().to_string()
            }
            Kind::Post => plain_response(405, "Method Not Allowed", Some("GET, HEAD"), connection),
        }
    }
}

/// xorshift64*: a small deterministic generator, so that both rounds send
/// exactly the same requests.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// What one connection slot did in a round.
#[derive(Default)]
struct SlotCount {
    requests: usize,
    connections: usize,
}

/// One client slot: `quota` requests in random batches, reconnecting after
/// each `Connection: close`; every response checked byte for byte.
fn run_slot(addr: SocketAddr, seed: u64, quota: usize) -> SlotCount {
    let mut rng = Rng::new(seed);
    let mut count = SlotCount::default();
    let mut client: Option<Client> = None;
    let mut batch = Vec::with_capacity(1024);
    let mut kinds = Vec::with_capacity(MAX_DEPTH as usize);
    while count.requests < quota {
        let c = client.get_or_insert_with(|| {
            count.connections += 1;
            Client::connect(addr)
        });
        let depth = (rng.below(MAX_DEPTH) as usize + 1).min(quota - count.requests);
        let close = rng.below(CLOSE_ONE_IN) == 0;
        batch.clear();
        kinds.clear();
        for i in 0..depth {
            let kind = Kind::pick(&mut rng);
            kind.encode(close && i == depth - 1, &mut batch);
            kinds.push(kind);
        }
        c.send(&batch);
        for (i, &kind) in kinds.iter().enumerate() {
            let last_closes = close && i == depth - 1;
            let r = match kind {
                Kind::Head => c.read_head_response(),
                _ => c.read_response(),
            };
            let want = kind.expected(last_closes);
            assert_eq!(
                r.masked(),
                want,
                "request {} of connection {} of slot {seed}",
                count.requests + i,
                count.connections
            );
        }
        count.requests += depth;
        if close {
            c.assert_closed();
            client = None;
        }
    }
    if let Some(c) = client.as_mut() {
        // Nothing beyond the responses asked for.
        c.stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let extra = std::io::Read::read(&mut c.stream, &mut byte);
        assert!(
            matches!(&extra, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "slot {seed}: unexpected {extra:?} after its last response"
        );
    }
    count
}

/// One round: every slot on its own thread, the same seeds every round.
fn run_round(addr: SocketAddr) -> SlotCount {
    let quota = REQUESTS_PER_ROUND / CONNECTIONS;
    let slots: Vec<_> = (0..CONNECTIONS as u64)
        .map(|seed| std::thread::spawn(move || run_slot(addr, seed, quota)))
        .collect();
    let mut total = SlotCount::default();
    for slot in slots {
        let count = slot.join().expect("a soak slot failed");
        total.requests += count.requests;
        total.connections += count.connections;
    }
    total
}

fn soak(model: Model) {
    fd_limit::raise_to(None);
    // v3's workers each warm a stack and an allocator arena the first time
    // they serve: with more workers than connections, rounds would keep
    // bringing in workers that had not served yet, and RSS would climb
    // (by less each round) for that reason alone. Sized to the connections,
    // every worker serves from the first round on.
    let server = ServeProcess::start(model, &["--pool-size", &CONNECTIONS.to_string()]);
    let pid = server.pid();
    let baseline_fds = procfs::fds(pid).unwrap();
    let mut first_peak_kib = 0;
    for round in 0..=2 {
        let started = Instant::now();
        let done = run_round(server.addr);
        let took = started.elapsed();
        assert_eq!(
            done.requests,
            REQUESTS_PER_ROUND / CONNECTIONS * CONNECTIONS
        );
        // Closing takes the server a moment (a lingering close up to 500 ms).
        let settled = poll(Duration::from_secs(5), || {
            (procfs::fds(pid).unwrap() == baseline_fds).then_some(())
        });
        let fds = procfs::fds(pid).unwrap();
        let (rss, peak) = (
            procfs::status(pid, "VmRSS").unwrap(),
            procfs::status(pid, "VmHWM").unwrap(),
        );
        eprintln!(
            "{model:?} soak round {round}: {} requests over {} connections in {:.2} s; \
             descriptors {} (baseline {}); RSS {rss} KiB, peak {peak} KiB",
            done.requests,
            done.connections,
            took.as_secs_f64(),
            fds.len(),
            baseline_fds.len(),
        );
        assert!(
            settled.is_some(),
            "round {round}: descriptors {fds:?}, before the soak {baseline_fds:?}"
        );
        if round == 0 {
            continue; // the warm-up round
        }
        if round == 1 {
            first_peak_kib = peak;
        } else {
            assert!(
                rss <= first_peak_kib + RSS_SLACK_KIB,
                "RSS after round 2 ({rss} KiB) above the peak of round 1 ({first_peak_kib} KiB) \
                 by more than {RSS_SLACK_KIB} KiB"
            );
        }
    }
}

per_model!(soak);
