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
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
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
        let phase_before = self.phase();
        self.end += n;
        self.process(now);
        if self.phase() != phase_before || self.phase() == Phase::Body {
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

    /// Records that the first `n` bytes of [`Conn::output`] were written.
    pub fn consume_output(&mut self, n: usize) {
        self.output_pos += n;
        if self.output_pos == self.output.len() {
            self.output.clear();
            self.output_pos = 0;
        }
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

    /// When the current phase times out: idle connections after
    /// [`Limits::idle_timeout`], a begun head after
    /// [`Limits::header_read_timeout`], a body after an idle timeout without progress.
    pub fn deadline(&self) -> Instant {
        let allowed = match self.phase() {
            Phase::Head => self.limits.header_read_timeout,
            Phase::Idle | Phase::Body => self.limits.idle_timeout,
        };
        self.phase_since + allowed
    }

    /// The model saw [`Conn::deadline`] pass: a begun request is answered 408,
    /// an idle connection is simply closed.
    pub fn on_timeout(&mut self, now: Now) {
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
        let Some(d) = self.deferred.take() else {
            return;
        };
        let date = self.date.get(now.unix_secs);
        encode(&mut self.output, &d.reply, date, d.connection, d.with_body);
        if !d.keep_alive {
            self.closing = true;
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
