//! The per-connection state machine: request bytes in, response bytes out, and
//! the keep-alive, close and deadline decisions in between.
//!
//! A response is sent as soon as it is decided: the handler sees the head,
//! and its reply goes out before the body (if any) is read; the body is then
//! read and discarded as it arrives. Pipelined requests are still answered
//! strictly in order, because the next head is looked at only once the body
//! before it is drained. Every response is appended to one output buffer, so a
//! model can send a whole batch of pipelined responses with one write.
//!
//! A handler that panics costs its request and its connection, nothing more:
//! the panic is caught here, answered `500` with `Connection: close`, and the
//! thread that called into the core goes on serving its other connections.
//!
//! The buffers are either the connection's own (allocated on first use and
//! kept: the blocking models) or lent by the model from a [`BufferPool`] for
//! as long as bytes are pending ([`Conn::lend`], [`Conn::reclaim`]: the
//! reactor models), so that an idle connection holds none.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::buffers::{BufferPool, INPUT_BUFFER};
use super::chunked::ChunkedDecoder;
use super::date::DateCache;
use super::handler::{Answer, Handler, Ticket};
use super::limits::{Limits, MAX_HEADERS_CAP, MAX_PENDING_OUTPUT};
use super::request::{parse_head, Framing, Head, HeadParse, Version};
use super::response::{encode, ConnectionHeader, Reply};
use super::status::Status;
use super::Now;

/// The largest request body read and thrown away to keep a connection alive
/// after its response was sent (256 KiB; `--max-body` bounds it further).
///
/// A request declaring a longer `Content-Length` is answered with
/// `Connection: close` and its body is not read; a chunked body (whose length
/// is unknown when the response goes out) that decodes past it ends the
/// connection. The figure matches the most a model's lingering close reads
/// anyway, so draining up to it costs no more than closing would, and keeps
/// the connection.
pub const MAX_DISCARD: u64 = 256 * 1024;

/// Where the connection is in the request cycle; it picks the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: nothing of the next request has arrived.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// The head is complete and the body is being read.
    Body,
    /// The handler parked the request ([`Answer::Later`]): its reply is the
    /// server's to give, so no client deadline runs, and the model reads
    /// nothing more until [`Conn::deadline`] wakes it.
    Awaiting,
}

enum Reading {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
}

impl Reading {
    /// How the body announced by `framing` is read (discarded).
    fn body(framing: Framing) -> Reading {
        match framing {
            Framing::None => Reading::Head,
            Framing::Length(n) => Reading::Length(n),
            Framing::Chunked => Reading::Chunked(ChunkedDecoder::default()),
        }
    }
}

/// What a request asked for, as far as its response depends on it: kept
/// while the request is parked, since its head is gone from the buffer.
#[derive(Clone, Copy)]
struct Asked {
    /// The client wants the connection kept and its body (if any) will be
    /// read: the response may keep the connection.
    keep_alive: bool,
    version: Version,
    /// Not HEAD: the response carries its body.
    with_body: bool,
    /// A body follows the head.
    has_body: bool,
}

impl Asked {
    fn of(head: &Head<'_>) -> Asked {
        // The body (if any) is discarded after the response has gone out.
        // It is read only when that keeps the connection: the client wants
        // it kept, the body is short enough to be worth reading, and the
        // client is not waiting for `100 Continue` before sending it. Such a
        // client is never invited: the final response tells it the body is
        // not needed and, with `Connection: close`, that the server will not
        // read it (RFC 9110 §10.1.1), so no body can later be misread as
        // requests.
        let body_read = match head.framing {
            Framing::None => true,
            Framing::Length(n) => n <= MAX_DISCARD && !head.expects_continue,
            Framing::Chunked => !head.expects_continue,
        };
        Asked {
            keep_alive: head.keep_alive && body_read,
            version: head.request.version,
            with_body: head.request.method != "HEAD",
            has_body: head.framing != Framing::None,
        }
    }
}

/// A request its handler parked, until its reply is due.
#[derive(Clone, Copy)]
struct Awaiting {
    asked: Asked,
    ticket: Ticket,
    until: Instant,
}

/// How [`Conn::next_head`]'s loop over a head and its repeats ended.
enum Stop {
    /// Answered.
    Answered,
    /// The handler parked the request.
    Parked,
    /// The handler panicked.
    Panicked,
}

/// One HTTP/1.1 connection, without its socket.
pub struct Conn<H> {
    handler: H,
    limits: Limits,
    /// Bytes read, `start..end` not yet processed. Empty (no allocation)
    /// while no buffer is lent or owned.
    input: Vec<u8>,
    start: usize,
    end: usize,
    reading: Reading,
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
    /// A request whose handler answered [`Answer::Later`], until it replies.
    awaiting: Option<Awaiting>,
}

impl<H: Handler> Conn<H> {
    /// A fresh connection accepted at `now`.
    pub fn new(handler: H, limits: Limits, now: Now) -> Self {
        Conn {
            handler,
            limits,
            input: Vec::new(),
            start: 0,
            end: 0,
            reading: Reading::Head,
            output: Vec::new(),
            output_pos: 0,
            date: DateCache::default(),
            closing: false,
            linger: false,
            phase_since: now.instant,
            write_since: now.instant,
            keep_alive_disabled: false,
            awaiting: None,
        }
    }

    /// Lends the connection whatever buffers it lacks, from `pool`. A model
    /// that lends calls this before every call that reads or can produce
    /// output ([`Conn::read_buf`], [`Conn::commit_read`], [`Conn::on_timeout`])
    /// and [`Conn::reclaim`] after it; without a lent buffer the connection
    /// allocates its own.
    pub fn lend(&mut self, pool: &mut BufferPool) {
        if self.input.is_empty() {
            self.input = pool.take_input();
        }
        if self.output.capacity() == 0 {
            self.output = pool.take_output();
        }
    }

    /// Gives back to `pool` the buffers the connection does not need now: the
    /// input buffer once no partial request is buffered (or the connection
    /// will read no more), the output buffer once all of it is written. An
    /// idle keep-alive connection keeps nothing.
    ///
    /// The output buffer must not be reclaimed while the model still refers
    /// to its bytes (an io_uring send in flight): call this only when no
    /// write of [`Conn::output`] is pending.
    pub fn reclaim(&mut self, pool: &mut BufferPool) {
        if !self.input.is_empty() && (self.start == self.end || self.closing) {
            self.start = 0;
            self.end = 0;
            pool.put_input(std::mem::take(&mut self.input));
        }
        if self.output.capacity() != 0 && self.output_pos == self.output.len() {
            self.output_pos = 0;
            pool.put_output(std::mem::take(&mut self.output));
        }
    }

    /// Gives every buffer back to `pool`, whatever it held: for a connection
    /// the model is about to drop.
    pub fn release(mut self, pool: &mut BufferPool) {
        self.closing = true;
        self.output_pos = self.output.len();
        self.reclaim(pool);
    }

    /// Whether the connection holds a buffer (lent or its own).
    pub fn holds_buffers(&self) -> bool {
        !self.input.is_empty() || self.output.capacity() != 0
    }

    /// Free space to read into; never empty while the connection reads.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.input.is_empty() {
            // Nothing lent: the connection's own buffer, kept from now on.
            // The size of a lent one, so that how much one read can take
            // (and so which of 400 or 414/431 a malformed, oversized head
            // gets) does not depend on who owns the buffer.
            self.input = vec![0; INPUT_BUFFER];
        }
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
    /// the connection finishes what it has answered and closes. A request
    /// still awaiting its reply then is dropped, as nginx and Go drop a
    /// request whose client went away: nobody may be left to read it.
    pub fn commit_read(&mut self, n: usize, now: Now) {
        if n == 0 {
            self.closing = true;
            self.awaiting = None;
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
    /// counts from then (a head's deadline still runs from its first byte),
    /// and requests left buffered at [`MAX_PENDING_OUTPUT`] are answered:
    /// [`Conn::output`] may then hold more to write.
    pub fn consume_output(&mut self, n: usize, now: Now) {
        self.output_pos += n;
        self.write_since = now.instant;
        if self.output_pos == self.output.len() {
            self.output.clear();
            self.output_pos = 0;
            if self.start < self.end && matches!(self.reading, Reading::Head) {
                // Requests held back by the output limit: the client read
                // their predecessors' responses, which is progress.
                self.process(now);
                self.phase_since = now.instant;
            } else if self.phase() != Phase::Head {
                self.phase_since = now.instant;
            }
        }
    }

    /// Response bytes not yet written, counting the copies a batch of
    /// pipelined repeats still owes (`owed`).
    fn pending_output(&self, owed: Option<&Echo>) -> usize {
        let owed = owed.map_or(0, |echo| echo.bytes.len() * echo.owed);
        self.output().len() + owed
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

    /// Whether the socket should now be closed: closing, no reply awaited,
    /// and all output written.
    pub fn is_finished(&self) -> bool {
        self.closing && self.awaiting.is_none() && self.output_pos == self.output.len()
    }

    /// Whether a request awaits its handler's reply ([`Phase::Awaiting`]).
    /// A model reads nothing meanwhile, as it reads nothing while output is
    /// unwritten: the requests behind the parked one wait in the socket, and
    /// an awaiting connection needs no input buffer.
    pub fn is_awaiting(&self) -> bool {
        self.awaiting.is_some()
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
        if self.awaiting.is_some() {
            return Phase::Awaiting;
        }
        match self.reading {
            Reading::Head if self.start == self.end => Phase::Idle,
            Reading::Head => Phase::Head,
            _ => Phase::Body,
        }
    }

    /// When the connection next needs the model: with output pending, after
    /// an idle timeout without write progress; a parked request when its
    /// wait is over (or earlier, when its output stalls); otherwise idle
    /// connections after [`Limits::idle_timeout`], a begun head after
    /// [`Limits::header_read_timeout`], a body after an idle timeout without progress.
    pub fn deadline(&self) -> Instant {
        let write_stall = self.write_since + self.limits.idle_timeout;
        if let Some(awaiting) = self.awaiting {
            return match self.output().is_empty() {
                true => awaiting.until,
                false => awaiting.until.min(write_stall),
            };
        }
        if !self.output().is_empty() {
            return write_stall;
        }
        let allowed = match self.phase() {
            Phase::Head => self.limits.header_read_timeout,
            Phase::Idle | Phase::Body | Phase::Awaiting => self.limits.idle_timeout,
        };
        self.phase_since + allowed
    }

    /// The model saw [`Conn::deadline`] pass: a parked request whose wait is
    /// over is answered (and the requests buffered behind it); a begun head
    /// is answered 408, an idle connection is simply closed, and so is one
    /// whose body stopped arriving (its response has been sent already: a
    /// 408 now would be read as the answer to the next request) or whose
    /// client stopped reading its responses (what it was owed is dropped).
    pub fn on_timeout(&mut self, now: Now) {
        if let Some(awaiting) = self.awaiting {
            if now.instant >= awaiting.until {
                self.wake(awaiting, now);
                return;
            }
        }
        if !self.output().is_empty() {
            self.output.clear();
            self.output_pos = 0;
            self.closing = true;
            self.awaiting = None;
            return;
        }
        if self.closing {
            return;
        }
        match self.phase() {
            Phase::Idle => self.closing = true,
            Phase::Head => self.fail(Status::RequestTimeout, now),
            Phase::Body => self.abandon(),
            Phase::Awaiting => {} // woken early: the wait is not over
        }
    }

    /// Answers the parked request with its handler's reply, then whatever
    /// the bytes buffered behind it complete.
    fn wake(&mut self, awaiting: Awaiting, now: Now) {
        self.awaiting = None;
        let output_was_empty = self.output().is_empty();
        let handler = &mut self.handler;
        let Ok(reply) = catch_unwind(AssertUnwindSafe(|| handler.resume(awaiting.ticket))) else {
            self.fail(Status::InternalServerError, now);
            return;
        };
        let asked = Asked {
            // A body that broke its framing meanwhile closed the connection.
            keep_alive: awaiting.asked.keep_alive && !self.closing,
            ..awaiting.asked
        };
        let (keep_alive, connection, last) =
            self.connection(asked, reply.status, self.start == self.end);
        let date = self.date.get(now.unix_secs);
        encode(&mut self.output, &reply, date, connection, asked.with_body);
        if keep_alive {
            self.process(now);
        } else {
            self.closing = true;
            self.linger |= asked.has_body || self.start < self.end || last;
        }
        self.phase_since = now.instant;
        if output_was_empty {
            self.write_since = now.instant;
        }
    }

    /// Whether the response with `status` to a request that `asked` keeps
    /// the connection, the `Connection` header that says so, and whether it
    /// is the last one because the server is shutting down.
    /// `nothing_after`: no byte of a further request is buffered.
    fn connection(
        &self,
        asked: Asked,
        status: Status,
        nothing_after: bool,
    ) -> (bool, ConnectionHeader, bool) {
        let keep_alive = asked.keep_alive && !status.closes_connection();
        // Shutting down: the request after which nothing more is buffered
        // is the last one; it says so, and its body (if any) is not read.
        let last_before_shutdown =
            self.keep_alive_disabled && keep_alive && (asked.has_body || nothing_after);
        let keep_alive = keep_alive && !last_before_shutdown;
        let connection = match (keep_alive, asked.version) {
            (false, _) => ConnectionHeader::Close,
            (true, Version::Http10) => ConnectionHeader::KeepAlive,
            (true, Version::Http11) => ConnectionHeader::Omit,
        };
        (keep_alive, connection, last_before_shutdown)
    }

    /// Parses and answers as many buffered requests as are complete.
    fn process(&mut self, now: Now) {
        while !self.closing && self.start < self.end {
            match &mut self.reading {
                // Responses go out in request order: nothing after a
                // parked request is parsed before it is answered.
                Reading::Head if self.awaiting.is_some() => return,
                // Enough output is waiting: the rest is answered as it drains.
                Reading::Head if self.output.len() - self.output_pos >= MAX_PENDING_OUTPUT => {
                    return
                }
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
                    self.reading = Reading::Head;
                }
                Reading::Chunked(decoder) => {
                    // Discarded, so held to MAX_DISCARD as well as max_body.
                    let limits = Limits {
                        max_body: self.limits.max_body.min(MAX_DISCARD),
                        ..self.limits
                    };
                    match decoder.decode(&self.input[self.start..self.end], &limits) {
                        Ok(progress) => {
                            self.start += progress.consumed;
                            if !progress.done {
                                return;
                            }
                            self.reading = Reading::Head;
                        }
                        // Malformed, too long or too many trailers: the
                        // response is out already, so there is nothing left
                        // to say, and the stream after it cannot be trusted.
                        Err(_) => self.abandon(),
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

        // A declared length over the limit is refused before the handler
        // runs, so that 413 wins over whatever it would answer.
        if let Framing::Length(n) = head.framing {
            if n > self.limits.max_body {
                self.fail(Status::ContentTooLarge, now);
                return false;
            }
        }
        let asked = Asked::of(&head);
        // Where the head being answered starts: this one, then each
        // pipelined repeat of it (see the end of the loop).
        let mut at = self.start;
        // The last response encoded, while repeats get the same reply: their
        // copies are owed and appended together (see `Echo::pay`).
        let mut last: Option<Echo> = None;
        let mut repeats = Repeats::default();
        let stop = loop {
            let handler = &mut self.handler;
            let reply = match catch_unwind(AssertUnwindSafe(|| handler.handle(&head.request))) {
                Err(_) => break Stop::Panicked,
                Ok(Answer::Now(reply)) => reply,
                Ok(Answer::Later(pending)) => {
                    self.start = at + head.len;
                    // The body, if it is to be read, is read after the wait
                    // (the model reads nothing while the request is parked).
                    if asked.keep_alive {
                        self.reading = Reading::body(head.framing);
                    }
                    self.awaiting = Some(Awaiting {
                        asked,
                        ticket: pending.ticket,
                        until: now.instant + pending.after,
                    });
                    break Stop::Parked;
                }
            };
            let (keep_alive, connection, last_before_shutdown) =
                self.connection(asked, reply.status, at + head.len == self.end);
            self.start = at + head.len;

            match &mut last {
                Some(echo) if echo.repeats(&reply, connection) => {
                    echo.owed += 1;
                }
                _ => {
                    if let Some(echo) = last.take() {
                        echo.pay(&mut self.output);
                    }
                    let encoded_from = self.output.len();
                    let date = self.date.get(now.unix_secs);
                    encode(&mut self.output, &reply, date, connection, asked.with_body);
                    last = Some(Echo {
                        reply,
                        connection,
                        bytes: encoded_from..self.output.len(),
                        owed: 0,
                    });
                }
            }
            if !keep_alive {
                self.closing = true;
                // An unread body, pipelined bytes after a closing request,
                // or a client that did not expect the close and may be
                // sending more.
                self.linger = asked.has_body || self.start < self.end || last_before_shutdown;
                break Stop::Answered;
            }
            self.reading = Reading::body(head.framing);
            if asked.has_body {
                break Stop::Answered;
            }
            // Pipelined repeats: bytes identical to this head are the same
            // request, parsed the same way under the same limits, so they
            // are answered from this parse instead of a new one (the
            // handler is still asked every time).
            if self.pending_output(last.as_ref()) >= MAX_PENDING_OUTPUT
                || !repeats.follows(&self.input[..self.end], at, head.len)
            {
                break Stop::Answered;
            }
            at += head.len;
        };
        if let Some(echo) = last {
            echo.pay(&mut self.output);
        }
        match stop {
            Stop::Answered => true,
            Stop::Parked => false,
            Stop::Panicked => {
                // The handler may have been left half-way: trust nothing
                // more of this connection, but only of this one.
                self.fail(Status::InternalServerError, now);
                false
            }
        }
    }

    /// Stops reading after a response already sent: the request's body
    /// broke its framing, passed a limit or stalled. The connection closes
    /// with no further response.
    fn abandon(&mut self) {
        self.reading = Reading::Head;
        self.closing = true;
        self.linger = true;
        self.start = 0;
        self.end = 0;
    }

    /// Answers `status` with `Connection: close` and stops reading: after an
    /// error the rest of the stream cannot be trusted.
    fn fail(&mut self, status: Status, now: Now) {
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

/// The pipelined-repeat fast path: whether the head after the one at `at`
/// is byte for byte the same. Pipelining clients mostly repeat one request,
/// so this is where pipelined requests cost least: one comparison finds a
/// whole run of repeats, and each of them skips the parser.
#[derive(Default)]
struct Repeats {
    /// Heads still ahead known to repeat the one before them.
    known: usize,
    /// Whether the run was compared already: once per call of `next_head`,
    /// so that a failed try costs one pass over the buffer at most.
    tried: bool,
}

impl Repeats {
    /// Whether `buffered[at + len..]` starts with another copy of the head
    /// `buffered[at..at + len]`.
    fn follows(&mut self, buffered: &[u8], at: usize, len: usize) -> bool {
        let next = at + len;
        if self.known == 0 && !self.tried && buffered.len() - next >= 2 * len {
            // Each head that fits after this one equals the one before it
            // exactly when the run equals itself shifted by one head.
            self.tried = true;
            let run = (buffered.len() - next) / len * len;
            if buffered[at..at + run] == buffered[next..next + run] {
                self.known = run / len;
            }
        }
        if self.known > 0 {
            self.known -= 1;
            return true;
        }
        buffered.len() - next >= len && buffered[next..next + len] == buffered[at..at + len]
    }
}

/// A response just encoded into the output, and the copies of it still
/// owed there: one for each pipelined repeat that got the same reply.
struct Echo {
    reply: Reply,
    connection: ConnectionHeader,
    /// Where the response is in the output; nothing follows it there yet.
    bytes: Range<usize>,
    owed: usize,
}

impl Echo {
    /// Whether `reply` with `connection` encodes to the same bytes. Bodies
    /// and `Allow` lists are compared by address: a handler answers with
    /// static bytes, so a repeat's are the very same (equal bytes elsewhere
    /// are merely encoded again).
    fn repeats(&self, reply: &Reply, connection: ConnectionHeader) -> bool {
        let same_allow = match (self.reply.allow, reply.allow) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        };
        self.reply.status == reply.status
            && std::ptr::eq(self.reply.body, reply.body)
            && same_allow
            && self.connection == connection
    }

    /// Appends the owed copies, doubling what is copied each time: a batch
    /// of repeats costs a few copies, not one per request.
    fn pay(self, output: &mut Vec<u8>) {
        let len = self.bytes.len();
        output.reserve(len * self.owed);
        let mut paid = 0;
        while paid < self.owed {
            let n = (paid + 1).min(self.owed - paid);
            output.extend_from_within(self.bytes.start..self.bytes.start + n * len);
            paid += n;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The state machine driven directly: unit tests of its decisions, and
    //! property tests that input splitting never changes the output and that
    //! no input makes it panic or emit a malformed response.

    use super::*;
    use crate::http::invariants::*;
    use crate::http::Pending;
    use proptest::prelude::*;
    use std::time::Duration;

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
        // The response is out before the body is in.
        assert_eq!(parse_responses(c.output())[0].status, 405);
        let n = c.output().len();
        c.consume_output(n, fixed_now(t2));
        assert_eq!(c.phase(), Phase::Body);
        assert_eq!(c.deadline(), t2 + Duration::from_secs(7));
        let t3 = t0 + Duration::from_secs(3);
        c.feed(b"cd", fixed_now(t3));
        assert_eq!(c.phase(), Phase::Idle);
        assert_eq!(c.deadline(), t3 + Duration::from_secs(7));
        assert!(c.output().is_empty());
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

    /// Feeds `bytes` to a fresh connection and returns it.
    fn fed(bytes: &[u8]) -> Conn<SeedProbe> {
        let now = fixed_now(Instant::now());
        let mut c = conn(Limits::default(), now);
        c.feed(bytes, now);
        c
    }

    /// The (status, close) of each response in the output.
    fn answers<H: Handler>(c: &Conn<H>) -> Vec<(u16, bool)> {
        parse_responses(c.output())
            .iter()
            .map(|p| (p.status, p.close))
            .collect()
    }

    #[test]
    fn response_goes_out_at_head_time_and_the_body_is_then_discarded() {
        let now = fixed_now(Instant::now());
        let mut c = fed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(answers(&c), [(405, false)]);
        assert_eq!(c.phase(), Phase::Body);
        c.feed(b"GET ", now); // body bytes, not a request
        assert_eq!(answers(&c), [(405, false)]);
        c.feed(b"/GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        assert_eq!(answers(&c), [(405, false), (200, false)]);
        assert!(!c.is_closing());

        let mut chunked = fed(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(answers(&chunked), [(404, false)]);
        chunked.feed(
            b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            now,
        );
        assert_eq!(answers(&chunked), [(404, false), (200, false)]);
    }

    /// RFC 9110 §10.1.1: the final response is decided without the body, so
    /// the client is not invited to send it (no `100 Continue`); the response
    /// says the connection closes, and the body is never read.
    #[test]
    fn expect_continue_gets_the_final_response_with_close_and_no_invitation() {
        for framing in ["Content-Length: 2", "Transfer-Encoding: chunked"] {
            let head =
                format!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n{framing}\r\n\r\n");
            let c = fed(head.as_bytes());
            assert_eq!(answers(&c), [(405, true)], "{framing}");
            assert!(c.is_closing() && c.needs_linger());
        }
        // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1); a request
        // without a body has nothing to wait for.
        let old = fed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(answers(&old), [(405, false)]);
        let bodiless = fed(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(answers(&bodiless), [(200, false)]);
    }

    #[test]
    fn a_declared_body_over_max_discard_is_answered_with_close_and_not_read() {
        let head = |n: u64| format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n");
        let drained = fed(head(MAX_DISCARD).as_bytes());
        assert_eq!(answers(&drained), [(405, false)]);
        assert_eq!(drained.phase(), Phase::Body);
        let closed = fed(head(MAX_DISCARD + 1).as_bytes());
        assert_eq!(answers(&closed), [(405, true)]);
        assert!(closed.is_closing() && closed.needs_linger());
        // Over max_body it is 413, decided before the handler.
        let refused = fed(head(Limits::default().max_body + 1).as_bytes());
        assert_eq!(answers(&refused), [(413, true)]);
    }

    #[test]
    fn connection_close_with_a_body_does_not_read_the_body() {
        let c =
            fed(b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(answers(&c), [(405, true)]);
        assert!(c.is_closing() && c.needs_linger());
        let get = fed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(get.is_closing() && !get.needs_linger());
    }

    /// Once the response is out, a body that breaks its framing, passes a
    /// limit or stalls ends the connection without a second response (which
    /// the client would take for the answer to its next request).
    #[test]
    fn a_bad_or_stalled_body_after_its_response_closes_without_another() {
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        let past_discard = format!("{:x}\r\n", MAX_DISCARD + 1);
        for body in [
            "zz\r\n",
            "3\nabc",
            "3\r\nabcX",
            "3;\x01\r\n",
            past_discard.as_str(),
        ] {
            let c = fed(format!("{chunked}{body}GET / HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
            assert_eq!(answers(&c), [(405, false)], "{body:?}");
            assert!(c.is_closing() && c.needs_linger(), "{body:?}");
        }
        // A small max_body bounds the discarding too.
        let now = fixed_now(Instant::now());
        let limits = Limits {
            max_body: 4,
            ..Limits::default()
        };
        let mut small = conn(limits, now);
        small.feed(format!("{chunked}5\r\n").as_bytes(), now);
        assert_eq!(answers(&small), [(405, false)]);
        assert!(small.is_closing());

        let mut stalled = fed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf");
        assert_eq!(answers(&stalled), [(405, false)]);
        let n = stalled.output().len();
        stalled.consume_output(n, now);
        stalled.on_timeout(now);
        assert!(stalled.output().is_empty(), "no 408 after the 405");
        assert!(stalled.is_finished() && stalled.needs_linger());
    }

    #[test]
    fn a_panicking_handler_costs_its_request_and_connection_only() {
        let now = fixed_now(Instant::now());
        let routes = Faulty;
        let mut c = Conn::new(routes, Limits::default(), now);
        c.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /p HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            now,
        );
        assert_eq!(answers(&c), [(200, false), (500, true)]);
        assert!(c.is_closing() && c.needs_linger());
        // The thread goes on: another connection with the same handler works.
        let mut next = Conn::new(routes, Limits::default(), now);
        next.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        assert_eq!(answers(&next), [(200, false)]);
        // 413 is decided before the handler is called.
        let mut big = Conn::new(routes, Limits::default(), now);
        big.feed(
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999\r\n\r\n",
            now,
        );
        assert_eq!(answers(&big), [(413, true)]);
    }

    /// The seed's answers, but a request for `/p` makes it panic.
    #[derive(Clone, Copy)]
    struct Faulty;

    impl Handler for Faulty {
        fn handle(&mut self, request: &crate::http::Request<'_>) -> Answer {
            if request.path == "/p" {
                panic!("injected fault");
            }
            SeedProbe.handle(request)
        }

        fn resume(&mut self, ticket: Ticket) -> Reply {
            SeedProbe.resume(ticket)
        }
    }

    /// Alternates 200 and 404 whatever it is asked, and counts its calls.
    struct Alternating(u32);

    impl Handler for Alternating {
        fn handle(&mut self, request: &crate::http::Request<'_>) -> Answer {
            self.0 += 1;
            match self.0 % 2 {
                1 => SeedProbe.handle(request),
                _ => Answer::Now(Reply::plain(Status::NotFound)),
            }
        }

        fn resume(&mut self, _: Ticket) -> Reply {
            unreachable!("never parks")
        }
    }

    /// The seed's answers, each given after a wait of `.0` (or at once for
    /// every `.1`-th request, when `.1` is not 0), counting its parks.
    struct Parking(Duration, u32, u32);

    const PARK: Duration = Duration::from_millis(10);

    impl Handler for Parking {
        fn handle(&mut self, request: &crate::http::Request<'_>) -> Answer {
            let Answer::Now(reply) = SeedProbe.handle(request) else {
                unreachable!()
            };
            self.2 += 1;
            if self.1 != 0 && self.2.is_multiple_of(self.1) {
                return Answer::Now(reply);
            }
            let ticket = Ticket(u64::from(reply.status.code()));
            Answer::Later(Pending {
                after: self.0,
                ticket,
            })
        }

        fn resume(&mut self, ticket: Ticket) -> Reply {
            match ticket.0 {
                200 => Reply {
                    status: Status::Ok,
                    body: b"OK",
                    allow: None,
                },
                405 => Reply {
                    allow: Some("GET, HEAD"),
                    ..Reply::plain(Status::MethodNotAllowed)
                },
                404 => Reply::plain(Status::NotFound),
                _ => panic!("a ticket it never gave"),
            }
        }
    }

    /// The fast path alone: it finds exactly the heads that repeat the one
    /// before, whatever follows them, with its one run comparison or head by
    /// head.
    #[test]
    fn repeats_are_found_head_by_head_or_in_one_run() {
        let head = b"GET / HTTP/1.1\r\n\r\n";
        let other = b"GET /x HTTP/1.1\r\n\r\n";
        let len = head.len();
        // (buffer, how many heads after the first repeat it in a row)
        let cases: [(Vec<u8>, usize); 6] = [
            (head.to_vec(), 0),
            (head.repeat(2), 1),
            (head.repeat(9), 8),
            ([&head.repeat(4)[..], &other[..], &head[..]].concat(), 3),
            ([&head.repeat(3)[..], &head[..len - 1]].concat(), 2),
            ([&head[..], &other[..], &head.repeat(5)[..]].concat(), 0),
        ];
        for (buffered, expected) in cases {
            let mut repeats = Repeats::default();
            let mut at = 0;
            let mut found = 0;
            while repeats.follows(&buffered, at, len) {
                found += 1;
                at += len;
            }
            assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(&buffered));
        }
    }

    /// A handler whose every reply is a 40 KB body.
    struct Large;

    static LARGE: [u8; 40_000] = [b'x'; 40_000];

    impl Handler for Large {
        fn handle(&mut self, _: &crate::http::Request<'_>) -> Answer {
            Answer::Now(Reply {
                status: Status::Ok,
                body: &LARGE,
                allow: None,
            })
        }

        fn resume(&mut self, _: Ticket) -> Reply {
            unreachable!("never parks")
        }
    }

    /// Pipelined requests for large bodies are answered as their
    /// predecessors' responses are written, not all at once: the output
    /// holds about one body past the limit at most, and every response
    /// still arrives, in order.
    #[test]
    fn buffered_requests_wait_while_output_is_over_the_limit() {
        let now = fixed_now(Instant::now());
        let requests = 10;
        let mut c = Conn::new(Large, Limits::default(), now);
        c.feed(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(requests), now);
        let mut out = Vec::new();
        let mut most = 0;
        while !c.output().is_empty() {
            most = most.max(c.output().len());
            out.extend_from_slice(c.output());
            let n = c.output().len();
            c.consume_output(n, now);
        }
        assert!(
            most < MAX_PENDING_OUTPUT + 2 * LARGE.len(),
            "{most} bytes of output held at once"
        );
        let heads = out
            .windows(17)
            .filter(|w| w == b"HTTP/1.1 200 OK\r\n")
            .count();
        assert_eq!(heads, requests);
        assert_eq!(out.len() % requests, 0, "every response the same length");
        assert!(!c.is_closing() && c.phase() == Phase::Idle);
    }

    /// Wakes `c` at its deadline while it awaits, as a model's timer does;
    /// returns the time it ended at.
    fn wake_while_awaiting<H: Handler>(c: &mut Conn<H>, mut now: Now) -> Now {
        while c.is_awaiting() {
            now.instant = c.deadline();
            c.on_timeout(now);
        }
        now
    }

    #[test]
    fn a_parked_request_is_answered_when_its_wait_is_over_and_in_order() {
        let t0 = Instant::now();
        let limits = Limits {
            idle_timeout: Duration::from_millis(1),
            ..Limits::default()
        };
        let mut c = Conn::new(Parking(PARK, 2, 0), limits, fixed_now(t0));
        // The first request parks, the second (answered at once by the
        // handler) waits behind it unparsed.
        c.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
            fixed_now(t0),
        );
        assert!(c.output().is_empty() && c.is_awaiting());
        assert_eq!(c.phase(), Phase::Awaiting);
        assert_eq!(
            c.handler.2, 1,
            "nothing behind the parked request is handled"
        );
        // Its deadline is the end of the wait, not the (shorter) idle timeout.
        assert_eq!(c.deadline(), t0 + PARK);
        // Woken early (a model's coarse timer): nothing happens.
        c.on_timeout(fixed_now(t0 + PARK / 2));
        assert!(c.output().is_empty() && !c.is_closing());
        let t1 = t0 + PARK;
        c.on_timeout(fixed_now(t1));
        assert_eq!(answers(&c), [(200, false), (404, false)]);
        assert!(!c.is_awaiting() && !c.is_closing());
        assert_eq!(
            c.deadline(),
            t1 + Duration::from_millis(1),
            "write deadline from the wake"
        );
    }

    #[test]
    fn a_parked_request_holds_no_buffer_and_its_body_is_read_after_the_wait() {
        let now = fixed_now(Instant::now());
        let mut pool = BufferPool::new();
        let mut c = Conn::new(Parking(PARK, 0, 0), Limits::default(), now);
        c.lend(&mut pool);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        c.reclaim(&mut pool);
        assert!(
            c.is_awaiting() && !c.holds_buffers(),
            "a parked request holds no buffer"
        );
        let now = wake_while_awaiting(&mut c, now);
        assert_eq!(answers(&c), [(200, false)]);

        // A body behind a parked head is read (and discarded) after the wait.
        let mut body = Conn::new(Parking(PARK, 0, 0), Limits::default(), now);
        body.feed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n",
            now,
        );
        assert!(body.is_awaiting());
        let now = wake_while_awaiting(&mut body, now);
        assert_eq!(answers(&body), [(405, false)]);
        assert_eq!(body.phase(), Phase::Body);
        body.feed(b"abcdGET /x HTTP/1.1\r\nHost: a\r\n\r\n", now);
        assert!(body.is_awaiting(), "the next request parks in turn");
        wake_while_awaiting(&mut body, now);
        assert_eq!(answers(&body), [(405, false), (404, false)]);
    }

    #[test]
    fn a_client_gone_while_its_request_is_parked_drops_it() {
        let now = fixed_now(Instant::now());
        let mut c = Conn::new(Parking(PARK, 0, 0), Limits::default(), now);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        c.commit_read(0, now);
        assert!(c.is_finished() && !c.is_awaiting(), "closed at once");
        c.on_timeout(fixed_now(now.instant + PARK));
        assert!(c.output().is_empty(), "its wait's end is ignored");
    }

    #[test]
    fn a_parked_request_during_shutdown_is_answered_and_closes() {
        let now = fixed_now(Instant::now());
        let mut c = Conn::new(Parking(PARK, 0, 0), Limits::default(), now);
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        c.disable_keep_alive();
        assert!(!c.is_finished(), "shutdown waits for the parked request");
        wake_while_awaiting(&mut c, now);
        assert_eq!(answers(&c), [(200, true)]);
        assert!(c.is_closing() && c.needs_linger());

        // A resume that panics costs the request and the connection.
        struct Broken;
        impl Handler for Broken {
            fn handle(&mut self, _: &crate::http::Request<'_>) -> Answer {
                Answer::Later(Pending {
                    after: PARK,
                    ticket: Ticket(0),
                })
            }
            fn resume(&mut self, _: Ticket) -> Reply {
                panic!("injected fault on resume")
            }
        }
        let mut broken = Conn::new(Broken, Limits::default(), now);
        broken.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            now,
        );
        wake_while_awaiting(&mut broken, now);
        assert_eq!(answers(&broken), [(500, true)]);
    }

    /// A stalled writer is dropped even while a later request is parked.
    #[test]
    fn output_stalled_behind_a_parked_request_still_times_out() {
        let t0 = Instant::now();
        let limits = Limits {
            idle_timeout: Duration::from_millis(5),
            ..Limits::default()
        };
        let mut c = Conn::new(Parking(Duration::from_secs(1), 2, 1), limits, fixed_now(t0));
        // The first is answered at once, the second parks for 1 s.
        c.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            fixed_now(t0),
        );
        assert_eq!(answers(&c), [(200, false)]);
        assert!(c.is_awaiting());
        assert_eq!(c.deadline(), t0 + Duration::from_millis(5));
        c.on_timeout(fixed_now(t0 + Duration::from_millis(5)));
        assert!(c.is_finished() && c.output().is_empty());
    }

    /// Pipelined repeats of one head are answered from its parse, but each
    /// is still a request of its own: the handler is asked every time and
    /// its reply, when it changes, is what is sent.
    #[test]
    fn pipelined_repeats_ask_the_handler_every_time() {
        let now = fixed_now(Instant::now());
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut c = Conn::new(Alternating(0), Limits::default(), now);
        c.feed(&get.repeat(5), now);
        assert_eq!(
            answers(&c),
            [
                (200, false),
                (404, false),
                (200, false),
                (404, false),
                (200, false)
            ]
        );
        assert_eq!(c.handler.0, 5);

        // Byte-identical to answering each request alone: a run of repeats,
        // runs broken by another request (the run's one comparison fails,
        // then heads are compared one by one) or by a partial head.
        let other = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        let runs: [&[&[u8]]; 4] = [
            &[&get[..]; 50],
            &[get, get, get, get, get, other, get, get, get],
            &[get, get, get, other, other, other, other],
            &[get, get, get, get, &get[..10]],
        ];
        for run in runs {
            let mut batch = conn(Limits::default(), now);
            batch.feed(&run.concat(), now);
            let mut one_by_one = conn(Limits::default(), now);
            let mut alone = Vec::new();
            for request in run {
                one_by_one.feed(request, now);
                alone.extend_from_slice(one_by_one.output());
                let n = one_by_one.output().len();
                one_by_one.consume_output(n, now);
            }
            assert_eq!(batch.output(), &alone[..]);
        }

        // A repeat that asks to close is the last one answered.
        let close = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        let mut closing = conn(Limits::default(), now);
        closing.feed(&close.repeat(3), now);
        assert_eq!(answers(&closing), [(200, true)]);
        assert!(closing.needs_linger());

        // Shutting down: the last buffered repeat says close, the others not.
        let mut draining = conn(Limits::default(), now);
        draining.disable_keep_alive();
        draining.feed(&get.repeat(3), now);
        assert_eq!(
            answers(&draining),
            [(200, false), (200, false), (200, true)]
        );

        // A repeat of a panicking request: the first one answers 500.
        let mut faulty = Conn::new(Faulty, Limits::default(), now);
        faulty.feed(&b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n".repeat(3), now);
        assert_eq!(answers(&faulty), [(500, true)]);
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
    fn lent_buffers_come_back_once_nothing_is_pending() {
        let now = fixed_now(Instant::now());
        let mut pool = BufferPool::new();
        let mut c = conn(Limits::default(), now);
        assert!(!c.holds_buffers(), "a new connection holds nothing");
        for _ in 0..100 {
            c.lend(&mut pool);
            c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT", now);
            c.reclaim(&mut pool);
            // A partial head and unwritten output keep both buffers.
            assert!(c.holds_buffers());
            assert_eq!(pool.available(), 0);
            let n = c.output().len();
            c.consume_output(n, now);
            c.reclaim(&mut pool);
            // The output is back; the partial head keeps the input.
            assert_eq!(pool.available(), 1);
            c.lend(&mut pool);
            c.feed(b"TP/1.1\r\nHost: a\r\n\r\n", now);
            assert_eq!(parse_responses(c.output()).len(), 1);
            let n = c.output().len();
            c.consume_output(n, now);
            c.reclaim(&mut pool);
            assert!(!c.holds_buffers());
            assert_eq!(pool.available(), 2);
        }
        assert_eq!(pool.created(), 2, "buffers are reused, not recreated");
    }

    /// A body in progress needs no buffer between reads: only its remaining
    /// length is state. A closing connection gives back its input at once.
    #[test]
    fn body_in_progress_and_closing_connections_keep_no_input() {
        let now = fixed_now(Instant::now());
        let mut pool = BufferPool::new();
        let mut c = conn(Limits::default(), now);
        c.lend(&mut pool);
        c.feed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
            now,
        );
        c.reclaim(&mut pool);
        assert_eq!(c.phase(), Phase::Body);
        c.lend(&mut pool);
        c.feed(b"defghij", now);
        assert_eq!(parse_responses(c.output())[0].status, 405);

        c.feed(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /",
            now,
        );
        assert!(c.is_closing() && c.needs_linger());
        c.reclaim(&mut pool);
        assert_eq!(pool.available(), 1, "input back, output still owed");
        let n = c.output().len();
        c.consume_output(n, now);
        c.reclaim(&mut pool);
        assert!(!c.holds_buffers() && c.is_finished());
    }

    /// Regression (found by the proptests): a lent buffer and a connection's
    /// own buffer differed in size, so under small limits one oversized,
    /// malformed head got 400 through one and 414 through the other. Every
    /// prefix of that stream, with every byte in turn set to NUL, must now
    /// give the same output whoever owns the buffer.
    #[test]
    fn owned_and_lent_buffers_give_the_same_output() {
        let reqs = [
            Req::Head("/?q"),
            Req::Get("/x"),
            Req::Get10KeepAlive("/"),
            Req::Get("/"),
            Req::Get("/?q"),
        ];
        let input = stream(&reqs);
        for keep in 0..=input.len() {
            for at in 0..keep {
                let mut mutated = input[..keep].to_vec();
                mutated[at] = 0;
                check_arbitrary(&mutated, &[], small_limits());
            }
        }
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
        stream_and_head_ends(reqs).0
    }

    /// The encoded stream and, for each request, the offset just past its
    /// head (where its response is decided).
    fn stream_and_head_ends(reqs: &[Req]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut head_ends = Vec::new();
        for r in reqs {
            let start = out.len();
            r.encode(&mut out);
            let head = out[start..].windows(4).position(|w| w == b"\r\n\r\n");
            head_ends.push(start + head.expect("a head") + 4);
        }
        (out, head_ends)
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
        prop_oneof![Just(Limits::default()), Just(small_limits())]
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
            let (lent, lent_closing) =
                run_split_lent(&input, &cuts(&splits, input.len()), Limits::default(), now);
            prop_assert_eq!(&whole, &lent);
            prop_assert!(!lent_closing);
            let parsed = parse_responses(&whole);
            let statuses: Vec<u16> = parsed.iter().map(|p| p.status).collect();
            let expected: Vec<u16> = reqs.iter().map(Req::status).collect();
            prop_assert_eq!(statuses, expected);
            prop_assert!(parsed.iter().all(|p| !p.close));
        }

        /// Each response is out as soon as its head is in: a stream cut
        /// right after request k's head has exactly k+1 responses, whatever
        /// of its body is still to come.
        #[test]
        fn responses_go_out_at_head_time(
            reqs in prop::collection::vec(req(), 1..=8),
        ) {
            let now = fixed_now(Instant::now());
            let (input, head_ends) = stream_and_head_ends(&reqs);
            for (k, &end) in head_ends.iter().enumerate() {
                let (out, closing) = run_whole(&input[..end], Limits::default(), now);
                prop_assert_eq!(parse_responses(&out).len(), k + 1);
                prop_assert!(!closing);
                // One byte short of the head: request k is not answered yet.
                let (out, _) = run_whole(&input[..end - 1], Limits::default(), now);
                prop_assert_eq!(parse_responses(&out).len(), k);
            }
        }

        /// A handler that panics at request k: the k responses before it
        /// are exactly those a sound handler gives, then one `500` with
        /// `Connection: close`, then nothing, however the stream is split.
        #[test]
        fn a_handler_panic_ends_the_stream_with_one_500(
            reqs in prop::collection::vec(req(), 0..=6),
            at in any::<prop::sample::Index>(),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let now = fixed_now(Instant::now());
            let k = at.index(reqs.len() + 1);
            let mut input = stream(&reqs[..k]);
            input.extend_from_slice(b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
            input.extend_from_slice(&stream(&reqs[k..]));
            let mut c = Conn::new(Faulty, Limits::default(), now);
            let mut out = Vec::new();
            let mut from = 0;
            for &cut in cuts(&splits, input.len()).iter().chain([input.len()].iter()) {
                c.feed(&input[from..cut], now);
                write_out(&mut c, &mut out, now);
                from = cut;
            }
            let got: Vec<(u16, bool)> =
                parse_responses(&out).iter().map(|p| (p.status, p.close)).collect();
            let mut expected: Vec<(u16, bool)> =
                reqs[..k].iter().map(|r| (r.status(), false)).collect();
            expected.push((500, true));
            prop_assert_eq!(got, expected);
            prop_assert!(c.is_finished());
        }

        /// A handler that parks some requests gives, once each wait is
        /// over, exactly the bytes one that answers at once gives, however
        /// the stream is split: parking changes when, never what or in
        /// which order.
        #[test]
        fn parking_changes_when_not_what(
            reqs in prop::collection::vec(req(), 0..=6),
            every in 0u32..4,
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let now = fixed_now(Instant::now());
            let input = stream(&reqs);
            let (expected, closing) = run_whole(&input, Limits::default(), now);
            let mut c = Conn::new(Parking(PARK, every, 0), Limits::default(), now);
            let mut out = Vec::new();
            let mut from = 0;
            for &cut in cuts(&splits, input.len()).iter().chain([input.len()].iter()) {
                // A model reads nothing while a request is parked.
                wake_while_awaiting(&mut c, now);
                c.feed(&input[from..cut], now);
                write_out(&mut c, &mut out, now);
                from = cut;
            }
            wake_while_awaiting(&mut c, now);
            out.extend_from_slice(c.output());
            prop_assert_eq!(out, expected);
            prop_assert_eq!(c.is_closing(), closing);
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
            check_arbitrary(&input, &cuts(&splits, input.len()), limits);
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
            check_arbitrary(&input, &cuts(&splits, input.len()), limits);
        }
    }
}
