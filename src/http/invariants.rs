//! What every output of [`Conn`] must satisfy, whatever bytes it is fed: the
//! checks shared by the property tests in `conn.rs` and the fuzz target in
//! `fuzz/` (which builds servelab with the `invariants` feature).
//!
//! Every check panics with a description when violated: both proptest and
//! libFuzzer report a panic as a failing input.

use std::time::Instant;

use super::{
    render_date, Answer, BufferPool, Conn, Handler, Limits, Now, Phase, Reply, Request, Status,
    Ticket,
};

/// The seed's routing as these checks expect it: `GET|HEAD /` (or `*`) ->
/// 200 `OK`; `/` with another method -> 405 with `Allow: GET, HEAD`; any
/// other path -> 404. The core cannot import the application it serves
/// (`route::SeedRoutes`), so the checks drive it with this probe, and a test
/// in `route.rs` holds the real routes to the same answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedProbe;

impl Handler for SeedProbe {
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        let root = request.path == "/" || request.path == "*";
        Answer::Now(match (root, request.method) {
            (false, _) => Reply::plain(Status::NotFound),
            (true, "GET" | "HEAD") => Reply {
                status: Status::Ok,
                body: b"OK",
                allow: None,
            },
            (true, _) => Reply {
                allow: Some("GET, HEAD"),
                ..Reply::plain(Status::MethodNotAllowed)
            },
        })
    }

    fn resume(&mut self, _: Ticket) -> Reply {
        unreachable!("the probe answers every request at once")
    }
}

/// RFC 9110's example instant, so every Date is the same.
pub const UNIX_SECS: u64 = 784_111_777;

/// A fixed `Now`: equal Date headers whatever the feeding pattern.
pub fn fixed_now(instant: Instant) -> Now {
    Now {
        instant,
        unix_secs: UNIX_SECS,
    }
}

/// Limits small enough that short random inputs run into every one of them.
pub fn small_limits() -> Limits {
    Limits {
        max_request_line: 24,
        max_header_bytes: 48,
        max_headers: 3,
        max_body: 16,
        ..Limits::default()
    }
}

/// A connection serving the seed's routes.
pub fn conn(limits: Limits, now: Now) -> Conn<SeedProbe> {
    Conn::new(SeedProbe, limits, now)
}

/// Feeds `input` in one piece and returns (output, closing).
pub fn run_whole(input: &[u8], limits: Limits, now: Now) -> (Vec<u8>, bool) {
    let mut c = conn(limits, now);
    c.feed(input, now);
    (c.output().to_vec(), c.is_closing())
}

/// Feeds `input` split at `cuts` (sorted positions), draining the output
/// after every piece as a model would, and returns (output, closing).
pub fn run_split(input: &[u8], cuts: &[usize], limits: Limits, now: Now) -> (Vec<u8>, bool) {
    let mut c = conn(limits, now);
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        c.feed(&input[from..cut], now);
        write_out(&mut c, &mut out, now);
        from = cut;
    }
    (out, c.is_closing())
}

/// [`run_split`] as a reactor drives it: buffers lent from a pool for each
/// piece and reclaimed after it. Also checks that an idle connection keeps
/// no buffer and that one connection never needs more than one pair.
pub fn run_split_lent(input: &[u8], cuts: &[usize], limits: Limits, now: Now) -> (Vec<u8>, bool) {
    let mut pool = BufferPool::new();
    let mut c = conn(limits, now);
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        c.lend(&mut pool);
        c.feed(&input[from..cut], now);
        write_out(&mut c, &mut out, now);
        c.reclaim(&mut pool);
        if c.phase() == Phase::Idle {
            assert!(!c.holds_buffers(), "an idle connection kept a buffer");
        }
        assert!(
            pool.created() <= 2,
            "one connection needed more than one pair"
        );
        from = cut;
    }
    (out, c.is_closing())
}

/// Writes all of `c`'s output to `out`, as a model does: writing it may
/// let the connection answer requests it held back at
/// [`super::MAX_PENDING_OUTPUT`], whose responses are written too.
pub fn write_out<H: Handler>(c: &mut Conn<H>, out: &mut Vec<u8>, now: Now) {
    while !c.output().is_empty() {
        out.extend_from_slice(c.output());
        let n = c.output().len();
        c.consume_output(n, now);
    }
}

/// One response as parsed back from the output.
#[derive(Debug)]
pub struct Parsed {
    /// The status code.
    pub status: u16,
    /// Whether it says `Connection: close`.
    pub close: bool,
    /// Offset of the response's first byte in the output.
    pub start: usize,
}

/// Parses `all` as a sequence of complete responses, each: a status line
/// servelab can send ([`Status::ALL`]), `Server`, the `Date` of
/// [`UNIX_SECS`], `Content-Type`, `Content-Length` (then `Allow` on a 405 and
/// `Connection` when present), CRLF, and a body that is either absent (HEAD)
/// or the one the status has (`OK`, or the reason phrase). Panics with a
/// description on anything else.
pub fn parse_responses(all: &[u8]) -> Vec<Parsed> {
    let mut parsed = Vec::new();
    let mut out = all;
    while !out.is_empty() {
        let start = all.len() - out.len();
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("incomplete head {:?}", String::from_utf8_lossy(out)));
        let head = std::str::from_utf8(&out[..end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let code: u16 = status_line
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let status = Status::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or_else(|| panic!("unexpected status {status_line:?}"));
        assert_eq!(
            format!("{status_line}\r\n").as_bytes(),
            status.status_line()
        );
        let date = lines
            .next()
            .and_then(|l| l.strip_prefix("Date: "))
            .expect("Date");
        assert_eq!(date.as_bytes(), &render_date(UNIX_SECS));
        assert_eq!(lines.next(), Some("Content-Type: text/plain"));
        let length: usize = lines
            .next()
            .and_then(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .unwrap();
        let mut close = false;
        for line in lines {
            match line {
                "Allow: GET, HEAD" if code == 405 => {}
                "Connection: close" if !close => close = true,
                "Connection: keep-alive" => {}
                other => panic!("unexpected header line {other:?}"),
            }
        }
        let body: &[u8] = if code == 200 {
            b"OK"
        } else {
            status.reason().as_bytes()
        };
        assert_eq!(length, body.len());
        out = &out[end + 4..];
        // HEAD responses carry no body; a body never starts "HTTP/".
        if let Some(rest) = out.strip_prefix(body) {
            out = rest;
        }
        parsed.push(Parsed {
            status: code,
            close,
            start,
        });
    }
    parsed
}

/// Whether `status` is an error the core answers and closes after (anything
/// the seed's routes do not answer themselves).
pub fn is_error(status: u16) -> bool {
    !matches!(status, 200 | 404 | 405)
}

/// The output before the first error response, and whether one follows.
pub fn before_error<'a>(out: &'a [u8], parsed: &[Parsed]) -> (&'a [u8], bool) {
    match parsed.iter().find(|p| is_error(p.status)) {
        Some(p) => (&out[..p.start], true),
        None => (out, false),
    }
}

/// The properties of any input, fed whole and split at `cuts`:
/// - no panic, and every byte of output is a well-formed response;
/// - an error response says `Connection: close`, and a response that says
///   it is the last one and leaves the connection closing;
/// - lending the buffers from a pool for each piece changes nothing;
/// - splitting does not change the output, except which error a stream that
///   is both malformed and over a limit gets (400, or 414/431, depending on
///   how much had arrived when the parser saw it); whether there is one
///   does not change, nor whether the connection is closing;
/// - once closing, further input adds nothing;
/// - a timeout always ends the connection, with at most a well-formed 408.
pub fn check_arbitrary(input: &[u8], cuts: &[usize], limits: Limits) {
    let now = fixed_now(Instant::now());
    let (whole, closing) = run_whole(input, limits, now);
    let (split, split_closing) = run_split(input, cuts, limits, now);
    let parsed = parse_responses(&whole);
    for (i, p) in parsed.iter().enumerate() {
        if is_error(p.status) || p.close {
            assert!(p.close, "error {} without Connection: close", p.status);
            assert_eq!(i, parsed.len() - 1, "a response after a close");
            assert!(closing, "Connection: close but still reading");
        }
    }
    let split_parsed = parse_responses(&split);
    assert_eq!(
        before_error(&whole, &parsed),
        before_error(&split, &split_parsed),
        "splitting changed the output"
    );
    assert_eq!(closing, split_closing, "splitting changed the close");
    let (lent, lent_closing) = run_split_lent(input, cuts, limits, now);
    assert_eq!(split, lent, "lent buffers changed the output");
    assert_eq!(closing, lent_closing, "lent buffers changed the close");

    let mut c = conn(limits, now);
    c.feed(input, now);
    if c.is_closing() {
        let before = c.output().len();
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        assert_eq!(c.output().len(), before, "answered after closing");
    }
    let before = c.output().len();
    c.on_timeout(now);
    assert!(c.is_closing(), "a timeout left the connection open");
    let after = parse_responses(c.output());
    if c.output().len() > before {
        let last = after.last().expect("a response");
        assert_eq!((last.status, last.close), (408, true));
    }
}
