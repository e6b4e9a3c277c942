//! The per-connection state machine: request bytes in, response bytes out, and
//! the keep-alive, close and deadline decisions in between.
//!
//! Pipelined requests are answered strictly in order: each request is parsed,
//! routed and its body drained before the next head is looked at, and every
//! response is appended to one output buffer, so a model can send a whole batch
//! of pipelined responses with one write.

use std::mem::MaybeUninit;
use std::time::Instant;

use super::chunked::ChunkedDecoder;
use super::date::DateCache;
use super::limits::{Limits, MAX_HEADERS_CAP};
use super::request::{parse_head, Framing, HeadParse, Version};
use super::response::{encode, encode_continue, ConnectionHeader, Reply};
use super::status::Status;
use super::Now;
use crate::route::Handler;

/// Initial read buffer size; it grows (doubling) only while a single request
/// head needs more, up to [`Limits::max_head_bytes`].
pub const INITIAL_READ_BUFFER: usize = 4096;
/// Initial output buffer capacity; grows to the largest batch of responses.
pub const INITIAL_OUTPUT_BUFFER: usize = 4096;

/// Where the connection is in the request cycle; it picks the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: nothing of the next request has arrived.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// The head is complete and the body is being read.
    Body,
}

enum Reading {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// A response decided at head time, sent once its request's body is drained.
#[derive(Clone, Copy)]
struct Deferred {
    reply: Reply,
    connection: ConnectionHeader,
    with_body: bool,
    keep_alive: bool,
}

/// One HTTP/1.1 connection, without its socket.
pub struct Conn<H> {
    handler: H,
    limits: Limits,
    input: Vec<u8>,
    start: usize,
    end: usize,
    reading: Reading,
    deferred: Option<Deferred>,
    output: Vec<u8>,
    output_pos: usize,
    date: DateCache,
    closing: bool,
    linger: bool,
    phase_since: Instant,
    /// When output last made progress (or became pending): a client that
    /// stops reading its responses is given up on after an idle timeout.
    write_since: Instant,
    /// Set by [`Conn::disable_keep_alive`] (graceful shutdown).
    keep_alive_disabled: bool,
}

impl<H: Handler> Conn<H> {
    /// A fresh connection accepted at `now`.
    pub fn new(handler: H, limits: Limits, now: Now) -> Self {
        Conn {
            handler,
            limits,
            input: vec![0; INITIAL_READ_BUFFER.min(limits.max_head_bytes())],
            start: 0,
            end: 0,
            reading: Reading::Head,
            deferred: None,
            output: Vec::with_capacity(INITIAL_OUTPUT_BUFFER),
            output_pos: 0,
            date: DateCache::default(),
            closing: false,
            linger: false,
            phase_since: now.instant,
            write_since: now.instant,
            keep_alive_disabled: false,
        }
    }

    /// Free space to read into; never empty while the connection reads.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.end == self.input.len() {
            if self.start > 0 {
                self.input.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // Only a head can fill the buffer (bodies are drained as they
                // come), and process() rejects heads past the cap.
                let grown = (self.input.len() * 2).min(self.limits.max_head_bytes());
                self.input.resize(grown.max(self.input.len() + 1), 0);
            }
        }
        &mut self.input[self.end..]
    }

    /// Records that `n` bytes were read into [`Conn::read_buf`] at `now` and
    /// answers every request they complete. `n == 0` means the peer sent EOF:
    /// the connection finishes what it has answered and closes.
    pub fn commit_read(&mut self, n: usize, now: Now) {
        if n == 0 {
            self.closing = true;
            return;
        }
        if self.closing {
            return; // the stream is no longer read; see `linger`
        }
        // Read the phase before counting the new bytes: they are what turns
        // Idle into Head, and that transition must start the head deadline.
        let (phase_before, answered_before) = (self.phase(), self.output.len());
        let output_was_empty = self.output().is_empty();
        self.end += n;
        self.process(now);
        if output_was_empty {
            self.write_since = now.instant;
        }
        // A head's deadline runs from its first byte; every other phase's from
        // the latest progress (a request answered, body bytes read).
        let same_head = phase_before == Phase::Head
            && self.phase() == Phase::Head
            && self.output.len() == answered_before;
        if !same_head {
            self.phase_since = now.instant;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Copies `bytes` in through [`Conn::read_buf`] and commits them: the
    /// whole read path in one call, for tests and in-memory drivers.
    pub fn feed(&mut self, mut bytes: &[u8], now: Now) {
        while !bytes.is_empty() && !self.closing {
            let buf = self.read_buf();
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.commit_read(n, now);
        }
    }

    /// Response bytes not yet written.
    pub fn output(&self) -> &[u8] {
        &self.output[self.output_pos..]
    }

    /// Records that the first `n` bytes of [`Conn::output`] were written at
    /// `now`. Once all output is written, an idle connection's idle time
    /// counts from then (a head's deadline still runs from its first byte).
    pub fn consume_output(&mut self, n: usize, now: Now) {
        self.output_pos += n;
        self.write_since = now.instant;
        if self.output_pos == self.output.len() {
            self.output.clear();
            self.output_pos = 0;
            if self.phase() != Phase::Head {
                self.phase_since = now.instant;
            }
        }
    }

    /// Ends keep-alive without cutting a request short, for a server that is
    /// shutting down gracefully: requests already buffered are still
    /// answered, and the response after which no further input is buffered
    /// (with none buffered: the next response) says `Connection: close`;
    /// nothing is read after it, and [`Conn::needs_linger`] is then true,
    /// since the client may be sending its next request already. A
    /// connection with nothing in progress is the model's to close.
    pub fn disable_keep_alive(&mut self) {
        self.keep_alive_disabled = true;
    }

    /// Whether the connection will read no more requests.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the socket should now be closed: closing and all output written.
    pub fn is_finished(&self) -> bool {
        self.closing && self.output_pos == self.output.len()
    }

    /// Whether the peer may still be sending bytes that were never read (after
    /// an error response). Closing a socket with unread input makes the kernel
    /// send RST, which can destroy the response before the client reads it, so
    /// a model should shut down its write side and drain input briefly first.
    pub fn needs_linger(&self) -> bool {
        self.linger
    }

    /// Where the connection is in the request cycle.
    pub fn phase(&self) -> Phase {
        match self.reading {
            Reading::Head if self.start == self.end => Phase::Idle,
            Reading::Head => Phase::Head,
            _ => Phase::Body,
        }
    }

    /// When the connection times out: with output pending, after an idle
    /// timeout without write progress; otherwise idle connections after
    /// [`Limits::idle_timeout`], a begun head after
    /// [`Limits::header_read_timeout`], a body after an idle timeout without progress.
    pub fn deadline(&self) -> Instant {
        if !self.output().is_empty() {
            return self.write_since + self.limits.idle_timeout;
        }
        let allowed = match self.phase() {
            Phase::Head => self.limits.header_read_timeout,
            Phase::Idle | Phase::Body => self.limits.idle_timeout,
        };
        self.phase_since + allowed
    }

    /// The model saw [`Conn::deadline`] pass: a begun request is answered 408,
    /// an idle connection is simply closed, and so is one whose client stopped
    /// reading its responses (what it was owed is dropped).
    pub fn on_timeout(&mut self, now: Now) {
        if !self.output().is_empty() {
            self.output.clear();
            self.output_pos = 0;
            self.closing = true;
            return;
        }
        if self.closing {
            return;
        }
        if self.phase() == Phase::Idle {
            self.closing = true;
        } else {
            self.fail(Status::RequestTimeout, now);
        }
    }

    /// Parses and answers as many buffered requests as are complete.
    fn process(&mut self, now: Now) {
        while !self.closing && self.start < self.end {
            match &mut self.reading {
                Reading::Head => {
                    if !self.next_head(now) {
                        return;
                    }
                }
                Reading::Length(remaining) => {
                    let take = (*remaining).min((self.end - self.start) as u64);
                    self.start += take as usize;
                    *remaining -= take;
                    if *remaining > 0 {
                        return;
                    }
                    self.finish_request(now);
                }
                Reading::Chunked(decoder) => {
                    match decoder.decode(&self.input[self.start..self.end], &self.limits) {
                        Ok(progress) => {
                            self.start += progress.consumed;
                            if !progress.done {
                                return;
                            }
                            self.finish_request(now);
                        }
                        Err(status) => self.fail(status, now),
                    }
                }
            }
        }
    }

    /// Handles the head at `start`, if complete. Returns false when more bytes
    /// are needed.
    fn next_head(&mut self, now: Now) -> bool {
        // RFC 9112 §2.2: ignore empty lines before a request line. Dropping them
        // here keeps an endless stream of CRLF from filling the buffer.
        while let [b'\r', b'\n', ..] | [b'\n', ..] = self.input[self.start..self.end] {
            self.start += if self.input[self.start] == b'\n' {
                1
            } else {
                2
            };
        }
        if self.start == self.end {
            return false;
        }
        let slots = self.limits.max_headers.min(MAX_HEADERS_CAP);
        let mut headers = [MaybeUninit::uninit(); MAX_HEADERS_CAP];
        let buffered = &self.input[self.start..self.end];
        let head = match parse_head(buffered, &mut headers[..slots], &self.limits) {
            HeadParse::Complete(head) => head,
            HeadParse::Partial => {
                if buffered.len() >= self.limits.max_head_bytes() {
                    // Only reachable through bytes the limits above miss, such
                    // as a lone CR at the end of a full buffer.
                    self.fail(Status::HeaderFieldsTooLarge, now);
                }
                return false;
            }
            HeadParse::Invalid(status) => {
                self.fail(status, now);
                return false;
            }
        };

        let reply = self.handler.handle(&head.request);
        let keep_alive = head.keep_alive && !reply.status.closes_connection();
        let deferred = Deferred {
            reply,
            connection: match (keep_alive, head.request.version) {
                (false, _) => ConnectionHeader::Close,
                (true, Version::Http10) => ConnectionHeader::KeepAlive,
                (true, Version::Http11) => ConnectionHeader::Omit,
            },
            with_body: head.request.method != "HEAD",
            keep_alive,
        };
        let (framing, expects_continue) = (head.framing, head.expects_continue);
        self.start += head.len;

        match framing {
            Framing::None => {
                self.deferred = Some(deferred);
                self.finish_request(now);
            }
            Framing::Length(n) if n > self.limits.max_body => {
                self.fail(Status::ContentTooLarge, now);
            }
            Framing::Length(n) => {
                if expects_continue && self.start == self.end {
                    encode_continue(&mut self.output);
                }
                self.deferred = Some(deferred);
                self.reading = Reading::Length(n);
            }
            Framing::Chunked => {
                if expects_continue && self.start == self.end {
                    encode_continue(&mut self.output);
                }
                self.deferred = Some(deferred);
                self.reading = Reading::Chunked(ChunkedDecoder::default());
            }
        }
        true
    }

    /// The body of the current request is drained: send its response.
    fn finish_request(&mut self, now: Now) {
        self.reading = Reading::Head;
        let Some(mut d) = self.deferred.take() else {
            return;
        };
        let last_before_shutdown =
            self.keep_alive_disabled && d.keep_alive && self.start == self.end;
        if last_before_shutdown {
            d.keep_alive = false;
            d.connection = ConnectionHeader::Close;
        }
        let date = self.date.get(now.unix_secs);
        encode(&mut self.output, &d.reply, date, d.connection, d.with_body);
        if !d.keep_alive {
            self.closing = true;
            // Pipelined bytes after a closing request are never read.
            self.linger = self.start < self.end || last_before_shutdown;
        }
    }

    /// Answers `status` with `Connection: close` and stops reading: after an
    /// error the rest of the stream cannot be trusted.
    fn fail(&mut self, status: Status, now: Now) {
        self.deferred = None;
        self.reading = Reading::Head;
        let date = self.date.get(now.unix_secs);
        encode(
            &mut self.output,
            &Reply::plain(status),
            date,
            ConnectionHeader::Close,
            true,
        );
        self.closing = true;
        self.linger = true;
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    //! The state machine driven directly: unit tests of its decisions, and
    //! property tests that input splitting never changes the output and that
    //! no input makes it panic or emit a malformed response.

    use super::*;
    use crate::route::SeedRoutes;
    use proptest::prelude::*;
    use std::time::Duration;

    /// RFC 9110's example instant, so every Date is the same.
    const UNIX_SECS: u64 = 784_111_777;

    /// A fixed `Now`: equal Date headers whatever the feeding pattern.
    fn fixed_now(instant: Instant) -> Now {
        Now {
            instant,
            unix_secs: UNIX_SECS,
        }
    }

    fn conn(limits: Limits, now: Now) -> Conn<SeedRoutes> {
        Conn::new(SeedRoutes, limits, now)
    }

    /// Feeds `input` in one piece and returns (output, closing).
    fn run_whole(input: &[u8], limits: Limits, now: Now) -> (Vec<u8>, bool) {
        let mut c = conn(limits, now);
        c.feed(input, now);
        (c.output().to_vec(), c.is_closing())
    }

    /// Feeds `input` split at `cuts` (sorted positions), draining the output
    /// after every piece as a model would, and returns (output, closing).
    fn run_split(input: &[u8], cuts: &[usize], limits: Limits, now: Now) -> (Vec<u8>, bool) {
        let mut c = conn(limits, now);
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            c.feed(&input[from..cut], now);
            out.extend_from_slice(c.output());
            let n = c.output().len();
            c.consume_output(n, now);
            from = cut;
        }
        (out, c.is_closing())
    }

    /// One response as parsed back from the output.
    #[derive(Debug)]
    struct Parsed {
        status: u16,
        close: bool,
        /// Offset of the response's first byte in the output.
        start: usize,
    }

    /// Parses `out` as a sequence of complete responses, each: a status line
    /// servelab can send, `Server`, a 29-byte `Date`, `Content-Type`,
    /// `Content-Length` (then `Allow` and `Connection` when present), CRLF,
    /// and a body that is either absent (HEAD) or matches the length. A
    /// `100 Continue` interim response is accepted and skipped. Panics with a
    /// description on anything else.
    fn parse_responses(all: &[u8]) -> Vec<Parsed> {
        let mut parsed = Vec::new();
        let mut out = all;
        while !out.is_empty() {
            let start = all.len() - out.len();
            if let Some(rest) = out.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n") {
                out = rest;
                continue;
            }
            let end = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or_else(|| panic!("incomplete head {:?}", String::from_utf8_lossy(out)));
            let head = std::str::from_utf8(&out[..end]).expect("ASCII head");
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap();
            let code: u16 = status_line[9..12].parse().expect("status code");
            let status = [
                Status::Ok,
                Status::BadRequest,
                Status::NotFound,
                Status::MethodNotAllowed,
                Status::RequestTimeout,
                Status::ContentTooLarge,
                Status::UriTooLong,
                Status::HeaderFieldsTooLarge,
                Status::NotImplemented,
                Status::VersionNotSupported,
            ]
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or_else(|| panic!("unexpected status {status_line:?}"));
            assert_eq!(
                format!("{status_line}\r\n").as_bytes(),
                status.status_line()
            );
            assert_eq!(lines.next(), Some("Server: servelab"));
            let date = lines.next().unwrap().strip_prefix("Date: ").expect("Date");
            assert_eq!(date.as_bytes(), &crate::http::render_date(UNIX_SECS));
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
                    "Connection: close" => close = true,
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

    // --- unit tests -------------------------------------------------------

    #[test]
    fn phases_and_deadlines_follow_the_request_cycle() {
        let t0 = Instant::now();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(7),
            ..Limits::default()
        };
        let mut c = conn(limits, fixed_now(t0));
        assert_eq!(c.phase(), Phase::Idle);
        assert_eq!(c.deadline(), t0 + Duration::from_secs(7));
        let t1 = t0 + Duration::from_secs(1);
        c.feed(b"POST / HTTP/1.1\r\nHo", fixed_now(t1));
        assert_eq!(c.phase(), Phase::Head);
        assert_eq!(c.deadline(), t1 + Duration::from_secs(2));
        // More head bytes do not move the head deadline (slowloris).
        c.feed(b"st: a\r\n", fixed_now(t1 + Duration::from_millis(500)));
        assert_eq!(c.deadline(), t1 + Duration::from_secs(2));
        let t2 = t0 + Duration::from_secs(2);
        c.feed(b"Content-Length: 4\r\n\r\nab", fixed_now(t2));
        assert_eq!(c.phase(), Phase::Body);
        assert_eq!(c.deadline(), t2 + Duration::from_secs(7));
        let t3 = t0 + Duration::from_secs(3);
        c.feed(b"cd", fixed_now(t3));
        assert_eq!(c.phase(), Phase::Idle);
        assert_eq!(c.deadline(), t3 + Duration::from_secs(7));
        assert_eq!(parse_responses(c.output())[0].status, 405);
    }

    #[test]
    fn timeout_when_idle_closes_silently_and_mid_head_answers_408() {
        let now = fixed_now(Instant::now());
        let mut idle = conn(Limits::default(), now);
        idle.on_timeout(now);
        assert!(idle.is_finished());
        assert!(idle.output().is_empty());

        let mut head = conn(Limits::default(), now);
        head.feed(b"GET / HT", now);
        head.on_timeout(now);
        let parsed = parse_responses(head.output());
        assert_eq!(parsed.len(), 1);
        assert_eq!((parsed[0].status, parsed[0].close), (408, true));
        assert!(head.is_closing() && !head.is_finished());
        assert!(head.needs_linger());
        let n = head.output().len();
        head.consume_output(n, now);
        assert!(head.is_finished());
    }

    /// With output pending the deadline follows write progress; a client that
    /// stops reading is dropped without its responses; once all output is
    /// written the idle time counts from the last write.
    #[test]
    fn stalled_writes_time_out_and_idle_time_starts_after_the_last_write() {
        let limits = Limits {
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut c = conn(limits, fixed_now(t0));
        let t1 = t0 + Duration::from_secs(1);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", fixed_now(t1));
        assert_eq!(c.deadline(), t1 + Duration::from_secs(5));
        let t2 = t0 + Duration::from_secs(3);
        c.consume_output(10, fixed_now(t2));
        assert_eq!(c.deadline(), t2 + Duration::from_secs(5));
        let t3 = t0 + Duration::from_secs(4);
        let rest = c.output().len();
        c.consume_output(rest, fixed_now(t3));
        assert_eq!(c.phase(), Phase::Idle);
        assert_eq!(c.deadline(), t3 + Duration::from_secs(5));

        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", fixed_now(t3));
        c.on_timeout(fixed_now(t3 + Duration::from_secs(5)));
        assert!(c.output().is_empty() && c.is_finished());
    }

    #[test]
    fn continue_is_sent_only_while_the_body_is_withheld() {
        let now = fixed_now(Instant::now());
        let head =
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let mut waiting = conn(Limits::default(), now);
        waiting.feed(head, now);
        assert_eq!(waiting.output(), b"HTTP/1.1 100 Continue\r\n\r\n");
        waiting.feed(b"hi", now);
        assert_eq!(parse_responses(waiting.output())[0].status, 405);

        let mut eager = conn(Limits::default(), now);
        eager.feed(&[&head[..], b"hi"].concat(), now);
        assert!(eager.output().starts_with(b"HTTP/1.1 405 "));
    }

    #[test]
    fn eof_finishes_after_answered_requests_and_error_stops_reading() {
        let now = fixed_now(Instant::now());
        let mut c = conn(Limits::default(), now);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        c.commit_read(0, now);
        assert!(c.is_closing() && !c.is_finished());
        assert!(!c.needs_linger());

        let mut bad = conn(Limits::default(), now);
        bad.feed(
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            now,
        );
        let parsed = parse_responses(bad.output());
        assert_eq!(parsed.len(), 1, "nothing is answered after an error");
        assert_eq!((parsed[0].status, parsed[0].close), (400, true));
    }

    #[test]
    fn endless_empty_lines_do_not_fill_the_buffer() {
        let now = fixed_now(Instant::now());
        let mut c = conn(Limits::default(), now);
        for _ in 0..10_000 {
            c.feed(b"\r\n", now);
        }
        assert!(!c.is_closing());
        assert_eq!(c.phase(), Phase::Idle);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        assert_eq!(parse_responses(c.output())[0].status, 200);
    }

    /// Graceful shutdown: every request already buffered is answered, only
    /// the last one says `Connection: close`, and nothing is read after it.
    #[test]
    fn disabled_keep_alive_closes_after_the_buffered_requests() {
        let now = fixed_now(Instant::now());
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

        // Idle: the next request is the last.
        let mut idle = conn(Limits::default(), now);
        idle.disable_keep_alive();
        assert!(
            !idle.is_closing(),
            "an idle connection is the model's to close"
        );
        idle.feed(&[&get[..], &get[..]].concat(), now);
        let parsed = parse_responses(idle.output());
        let closes: Vec<bool> = parsed.iter().map(|p| p.close).collect();
        assert_eq!(closes, vec![false, true], "both buffered requests answered");
        assert!(idle.is_closing() && idle.needs_linger());
        let n = idle.output().len();
        idle.feed(get, now);
        assert_eq!(idle.output().len(), n, "nothing read after the close");

        // A partial request behind a complete one is waited for and is the
        // one that closes.
        let mut partial = conn(Limits::default(), now);
        partial.disable_keep_alive();
        partial.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HT", now);
        assert!(!parse_responses(partial.output())[0].close);
        assert!(!partial.is_closing());
        partial.feed(b"TP/1.1\r\nHost: a\r\n\r\n", now);
        let parsed = parse_responses(partial.output());
        assert_eq!((parsed[1].status, parsed[1].close), (404, true));
        assert!(partial.is_closing());

        // A request with a body closes once its body is read; HTTP/1.0
        // keep-alive ends too.
        let mut body = conn(Limits::default(), now);
        body.disable_keep_alive();
        body.feed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab",
            now,
        );
        body.feed(b"cd", now);
        let parsed = parse_responses(body.output());
        assert_eq!((parsed[0].status, parsed[0].close), (405, true));
        let mut old = conn(Limits::default(), now);
        old.disable_keep_alive();
        old.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", now);
        assert!(old.output().ends_with(b"Connection: close\r\n\r\nOK"));
    }

    // --- property tests ---------------------------------------------------

    /// One request of the small grammar the property tests pipeline.
    #[derive(Clone, Debug)]
    enum Req {
        Get(&'static str),
        Head(&'static str),
        PostLength(&'static str, Vec<u8>),
        PostChunked(&'static str, Vec<Vec<u8>>, bool),
        Get10KeepAlive(&'static str),
    }

    impl Req {
        fn encode(&self, out: &mut Vec<u8>) {
            let line = |out: &mut Vec<u8>, method: &str, path: &str, version: &str| {
                out.extend_from_slice(format!("{method} {path} HTTP/{version}\r\n").as_bytes());
            };
            match self {
                Req::Get(p) => {
                    line(out, "GET", p, "1.1");
                    out.extend_from_slice(b"Host: h\r\n\r\n");
                }
                Req::Head(p) => {
                    line(out, "HEAD", p, "1.1");
                    out.extend_from_slice(b"Host: h\r\n\r\n");
                }
                Req::PostLength(p, body) => {
                    line(out, "POST", p, "1.1");
                    let head = format!("Host: h\r\nContent-Length: {}\r\n\r\n", body.len());
                    out.extend_from_slice(head.as_bytes());
                    out.extend_from_slice(body);
                }
                Req::PostChunked(p, chunks, trailer) => {
                    line(out, "POST", p, "1.1");
                    out.extend_from_slice(b"Host: h\r\nTransfer-Encoding: chunked\r\n\r\n");
                    for (i, chunk) in chunks.iter().enumerate() {
                        let ext = if i % 2 == 1 { ";e=1" } else { "" };
                        out.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
                        out.extend_from_slice(chunk);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n");
                    if *trailer {
                        out.extend_from_slice(b"X-T: 1\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                Req::Get10KeepAlive(p) => {
                    line(out, "GET", p, "1.0");
                    out.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
                }
            }
        }

        /// The status the seed routes give it.
        fn status(&self) -> u16 {
            let (path, get) = match self {
                Req::Get(p) | Req::Head(p) | Req::Get10KeepAlive(p) => (p, true),
                Req::PostLength(p, _) | Req::PostChunked(p, _, _) => (p, false),
            };
            match (*path, get) {
                ("/x", _) => 404,
                (_, true) => 200,
                (_, false) => 405,
            }
        }
    }

    fn req() -> impl Strategy<Value = Req> {
        let path = prop::sample::select(vec!["/", "/x", "/?q"]);
        let body = prop::collection::vec(any::<u8>(), 0..24);
        let chunks = prop::collection::vec(prop::collection::vec(any::<u8>(), 1..12), 0..4);
        prop_oneof![
            path.clone().prop_map(Req::Get),
            path.clone().prop_map(Req::Head),
            (path.clone(), body).prop_map(|(p, b)| Req::PostLength(p, b)),
            (path.clone(), chunks, any::<bool>()).prop_map(|(p, c, t)| Req::PostChunked(p, c, t)),
            path.prop_map(Req::Get10KeepAlive),
        ]
    }

    fn stream(reqs: &[Req]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in reqs {
            r.encode(&mut out);
        }
        out
    }

    /// Split positions in `0..=len`, sorted.
    fn cuts(indices: &[prop::sample::Index], len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    /// Random limits: the defaults, or small ones that the random inputs
    /// actually run into.
    fn limits() -> impl Strategy<Value = Limits> {
        prop_oneof![
            Just(Limits::default()),
            Just(Limits {
                max_request_line: 24,
                max_header_bytes: 48,
                max_headers: 3,
                max_body: 16,
                ..Limits::default()
            }),
        ]
    }

    proptest! {
        /// Any split of a valid pipelined stream gives byte-identical output
        /// to feeding it whole, with one response per request, in order.
        #[test]
        fn any_split_gives_identical_output(
            reqs in prop::collection::vec(req(), 1..=8),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let now = fixed_now(Instant::now());
            let input = stream(&reqs);
            let (whole, whole_closing) = run_whole(&input, Limits::default(), now);
            let (split, split_closing) =
                run_split(&input, &cuts(&splits, input.len()), Limits::default(), now);
            prop_assert_eq!(&whole, &split);
            prop_assert!(!whole_closing && !split_closing);
            let parsed = parse_responses(&whole);
            let statuses: Vec<u16> = parsed.iter().map(|p| p.status).collect();
            let expected: Vec<u16> = reqs.iter().map(Req::status).collect();
            prop_assert_eq!(statuses, expected);
            prop_assert!(parsed.iter().all(|p| !p.close));
        }

        /// Arbitrary bytes never panic, every byte of output is a
        /// well-formed response, an error response is the last one and
        /// closes, and a timeout always ends the connection.
        #[test]
        fn arbitrary_bytes_give_well_formed_responses_or_close(
            input in prop::collection::vec(any::<u8>(), 0..400),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            limits in limits(),
        ) {
            check_arbitrary(&input, &cuts(&splits, input.len()), limits)?;
        }

        /// Prefixes of valid streams with some bytes mutated: close to valid,
        /// so they reach deep into the parser and the body decoders.
        #[test]
        fn mutated_valid_streams_give_well_formed_responses_or_close(
            reqs in prop::collection::vec(req(), 1..=6),
            keep in any::<prop::sample::Index>(),
            mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            limits in limits(),
        ) {
            let mut input = stream(&reqs);
            input.truncate(keep.index(input.len() + 1));
            if !input.is_empty() {
                for (at, byte) in &mutations {
                    let i = at.index(input.len());
                    input[i] = *byte;
                }
            }
            check_arbitrary(&input, &cuts(&splits, input.len()), limits)?;
        }
    }

    fn is_error(status: u16) -> bool {
        !matches!(status, 200 | 404 | 405)
    }

    /// The output before the first error response, and whether one follows.
    fn before_error<'a>(out: &'a [u8], parsed: &[Parsed]) -> (&'a [u8], bool) {
        match parsed.iter().find(|p| is_error(p.status)) {
            Some(p) => (&out[..p.start], true),
            None => (out, false),
        }
    }

    fn check_arbitrary(input: &[u8], cuts: &[usize], limits: Limits) -> Result<(), TestCaseError> {
        let now = fixed_now(Instant::now());
        let (whole, closing) = run_whole(input, limits, now);
        let (split, split_closing) = run_split(input, cuts, limits, now);
        let parsed = parse_responses(&whole);
        for (i, p) in parsed.iter().enumerate() {
            if is_error(p.status) || p.close {
                prop_assert!(p.close, "error {} without Connection: close", p.status);
                prop_assert_eq!(i, parsed.len() - 1, "a response after a close");
                prop_assert!(closing, "Connection: close but still reading");
            }
        }
        // Splitting must not change the responses, except which error a
        // malformed stream gets: bytes that are both malformed and over a
        // limit are 400 or 414/431 depending on how much had arrived when
        // the parser saw them. Whether there is an error does not change.
        let split_parsed = parse_responses(&split);
        prop_assert_eq!(
            before_error(&whole, &parsed),
            before_error(&split, &split_parsed),
            "splitting changed the output"
        );
        prop_assert_eq!(closing, split_closing);
        let mut c = conn(limits, now);
        c.feed(input, now);
        c.on_timeout(now);
        prop_assert!(c.is_closing());
        parse_responses(c.output());
        Ok(())
    }
}
