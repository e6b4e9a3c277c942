//! One connection slot of a load thread: its read buffer, response parser
//! and the send times of its requests in flight. Its socket (replaced when
//! it ends) belongs to the thread's I/O engine ([`super::engine::Io`]): the
//! slot decides what to send and frames what arrives, the same on every
//! engine; the engine moves the bytes and reports back through the `on_*`
//! methods.
//!
//! Responses on a connection come back in request order (HTTP/1.1), so the
//! in-flight requests form a FIFO queue: each completed response pops the
//! oldest send time. Everything here is allocated once per slot and reused
//! across reconnects.
//!
//! Open loop, each request also gets an *ideal* send time: when it would
//! have gone out had the client never been late, with the server as it was.
//! It is the latest of its intended time, when its connection opened, and
//! when the request `pipeline` places before it would have been answered on
//! that lag-free timeline (its ideal send time plus the time its response
//! actually took from the send). The client's lag is the actual send time
//! minus the ideal one: a pause of the client counts there, and so does the
//! backlog it leaves behind on a busy connection, while a wait for a slow
//! server does not.

use std::collections::VecDeque;

use super::engine::Io;
use super::plan::{Ctx, Plan};
use super::response::{Completed, ResponseParser};

/// Read buffer per connection; a response head must fit in it.
pub const READ_BUF: usize = 16 * 1024;
/// How long to wait before retrying a connection attempt that failed, so that
/// a server that refuses does not turn the generator into a busy loop.
pub const CONNECT_RETRY_NS: u64 = 10_000_000;

/// A request on the wire, waiting for its response.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// When it was meant to go out (open loop) or went out (closed loop), in
    /// ns since the run's start: latency is measured from here.
    intended: u64,
    /// When it was actually written.
    sent: u64,
    /// Open loop: when it would have been written had the client never been
    /// late (see the module's documentation); `sent` minus this is the
    /// client's lag.
    ideal: u64,
    /// Its kind ([`super::mix`]): whose histogram its latency goes to.
    kind: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No socket; open one at `retry_at`.
    Closed { retry_at: u64 },
    /// Nonblocking connect under way since `since`.
    Connecting { since: u64 },
    /// Connected.
    Open,
}

/// One connection slot.
pub struct Conn {
    index: usize,
    state: State,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    parser: ResponseParser,
    inflight: VecDeque<InFlight>,
    /// Bytes `write_from..write_to` of the preencoded requests still to write.
    write_from: usize,
    write_to: usize,
    /// With a mix: requests at the back of `inflight` whose bytes are not
    /// yet handed to the engine. A batch of both kinds goes out as one send
    /// per run of one kind, each after the one before it is out (sends on
    /// one socket must not overtake each other); 0 without a mix, where a
    /// batch is always one send.
    unsent: usize,
    /// Responses completed in the recorded window.
    completed: u64,
    /// Open loop: the next of this connection's schedule slots to send.
    next_slot: u64,
    /// When the current connection opened.
    opened_at: u64,
    /// Open loop: when the last `pipeline` answered requests of the current
    /// connection would have been answered on the lag-free timeline, oldest
    /// first.
    ideal_answers: VecDeque<u64>,
}

impl Conn {
    /// A closed slot, `index` within its thread, to connect at time 0.
    pub fn new(index: usize, pipeline: usize, head_request: bool) -> Conn {
        Conn {
            index,
            state: State::Closed { retry_at: 0 },
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            parser: ResponseParser::new(head_request, READ_BUF),
            inflight: VecDeque::with_capacity(pipeline),
            write_from: 0,
            write_to: 0,
            unsent: 0,
            completed: 0,
            next_slot: 0,
            opened_at: 0,
            ideal_answers: VecDeque::with_capacity(pipeline),
        }
    }

    /// Responses this slot completed in the recorded window.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Leaves the slot closed until `at` (ns after the run's start), when
    /// the next sweep opens it.
    pub fn connect_at(&mut self, at: u64) {
        self.state = State::Closed { retry_at: at };
    }

    /// Whether a connect is under way.
    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting { .. })
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether request bytes wait to be written (or, on io_uring, for their
    /// send to complete).
    pub fn is_sending(&self) -> bool {
        self.write_from < self.write_to
    }

    /// Starts a nonblocking connect.
    pub fn connect<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        match ctx.io.connect(self.index, ctx.plan.addr) {
            Ok(()) => self.state = State::Connecting { since: now },
            Err(_) => self.connect_failed(ctx, now),
        }
    }

    /// The engine's answer to [`Conn::connect`]: connected or not.
    pub fn on_connect<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, connected: bool, now: u64) {
        if !self.is_connecting() {
            return;
        }
        if connected {
            self.state = State::Open;
            self.opened_at = now;
            self.fill(ctx, now);
        } else {
            self.close(ctx);
            self.connect_failed(ctx, now);
        }
    }

    /// `n` more of the pending request bytes went out (io_uring), or more
    /// may go (epoll, `n` = 0): sends the rest, and once all is out, what
    /// fell due meanwhile. False if the connection failed.
    pub fn on_sent<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, n: usize, now: u64) -> bool {
        if !self.is_open() || !self.is_sending() {
            return true;
        }
        self.write_from += n;
        if !self.flush(ctx, now) {
            return false;
        }
        if !self.is_sending() {
            // The server took the pending bytes: send what fell due
            // meanwhile now, not at the next slot or response.
            self.fill(ctx, now);
        }
        true
    }

    /// A send failed: the connection is replaced.
    pub fn on_send_error<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        if now >= ctx.plan.record_from_ns {
            ctx.counters.write_errors += 1;
        }
        self.fail(ctx, now);
    }

    /// Periodic check: timeouts of requests and connects, and retries.
    pub fn sweep<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        let timeout = ctx.plan.timeout_ns;
        match self.state {
            State::Closed { retry_at } if now >= retry_at => self.connect(ctx, now),
            State::Closed { .. } => {}
            State::Connecting { since } if now.saturating_sub(since) >= timeout => {
                self.close(ctx);
                self.connect_failed(ctx, now);
            }
            State::Connecting { .. } => {}
            State::Open => {
                let Some(oldest) = self.inflight.front() else {
                    return;
                };
                if now.saturating_sub(oldest.sent) < timeout {
                    return;
                }
                // The oldest is overdue: the connection is stuck. Requests as
                // old as the timeout are timeouts; younger ones behind them
                // are lost with the connection.
                let record_from = ctx.plan.record_from_ns;
                ctx.outstanding -= self.inflight.len();
                for p in self.inflight.drain(..) {
                    if p.intended >= record_from {
                        if now.saturating_sub(p.sent) >= timeout {
                            ctx.counters.timeouts += 1;
                        } else {
                            ctx.counters.aborted += 1;
                        }
                    }
                }
                self.reconnect(ctx, now);
            }
        }
    }

    /// Sends what this slot may send now: in closed loop, enough to bring
    /// its in-flight requests up to the pipeline depth; in open loop, its
    /// schedule slots that are due, as far as the pipeline depth allows.
    pub fn fill<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        if self.state != State::Open || self.write_from < self.write_to {
            return;
        }
        let mut room = ctx.plan.pipeline - self.inflight.len();
        let record_from = ctx.plan.record_from_ns;
        let mut count = 0;
        match ctx.schedule {
            None => {
                if now >= record_from && room > 0 {
                    room = ctx.plan.claim(room, now);
                }
                while count < room {
                    let kind = ctx.next_kind(now >= record_from);
                    self.inflight.push_back(InFlight {
                        intended: now,
                        sent: now,
                        ideal: now,
                        kind,
                    });
                    count += 1;
                }
                if now >= record_from {
                    ctx.counters.sent += count as u64;
                }
            }
            Some(schedule) => {
                while count < room {
                    let due = schedule.conn_slot_time(self.index, self.next_slot);
                    if due > now || due >= ctx.plan.end_ns {
                        break;
                    }
                    if due >= record_from {
                        if ctx.plan.claim(1, now) == 0 {
                            break;
                        }
                        ctx.counters.sent += 1;
                    }
                    let ideal = self.ideal_send(ctx.plan.pipeline, due).min(now);
                    let kind = ctx.next_kind(due >= record_from);
                    self.inflight.push_back(InFlight {
                        intended: due,
                        sent: now,
                        ideal,
                        kind,
                    });
                    self.next_slot += 1;
                    count += 1;
                }
            }
        }
        if count > 0 {
            ctx.outstanding += count;
            if ctx.plan.mix.is_none() {
                self.write_from = 0;
                self.write_to = count * ctx.plan.request_len;
            } else {
                self.unsent = count;
                self.next_run(ctx.plan);
            }
            self.flush(ctx, now);
        }
    }

    /// With a mix: makes the longest run of one kind at the front of the
    /// unsent requests the bytes to write next.
    fn next_run(&mut self, plan: &Plan) {
        let first = self.inflight.len() - self.unsent;
        let kind = self.inflight[first].kind;
        let run = self
            .inflight
            .range(first..)
            .take_while(|p| p.kind == kind)
            .count();
        self.unsent -= run;
        let bytes = plan.kind_bytes(kind, run);
        self.write_from = bytes.start;
        self.write_to = bytes.end;
    }

    /// When the next request, due at `due`, would have gone out had the
    /// client never been late: not before it is due, nor before the
    /// connection opened, nor before the request `pipeline` places ahead of
    /// it would have been answered.
    #[inline]
    fn ideal_send(&self, pipeline: usize, due: u64) -> u64 {
        let ready = due.max(self.opened_at);
        // Requests in flight are the last ones sent; the one `pipeline`
        // places ahead of the next is the answered one this many back.
        let back = pipeline - self.inflight.len();
        match self.ideal_answers.len().checked_sub(back) {
            Some(i) => ready.max(self.ideal_answers[i]),
            None => ready,
        }
    }

    /// The run is over (at `stop_ns`): requests still in flight are
    /// unanswered, and in open loop, slots in the window due before the stop
    /// that this slot never got to send are counted.
    pub fn finish<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, stop_ns: u64) {
        let record_from = ctx.plan.record_from_ns;
        let unanswered = self
            .inflight
            .iter()
            .filter(|p| p.intended >= record_from)
            .count();
        ctx.counters.unanswered += unanswered as u64;
        ctx.outstanding -= self.inflight.len();
        if let Some(schedule) = ctx.schedule {
            let mut m = self.next_slot;
            loop {
                let due = schedule.conn_slot_time(self.index, m);
                if due >= ctx.plan.end_ns || due >= stop_ns {
                    break;
                }
                if due >= record_from {
                    ctx.counters.not_sent += 1;
                }
                m += 1;
            }
        }
        self.inflight.clear();
        self.close(ctx);
    }

    fn connect_failed<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        if now >= ctx.plan.record_from_ns {
            ctx.counters.connect_errors += 1;
        }
        self.state = State::Closed {
            retry_at: now + CONNECT_RETRY_NS,
        };
    }

    /// Hands pending request bytes to the engine, and with a mix, once a
    /// run of one kind is out, the next run; false if the connection
    /// failed.
    fn flush<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) -> bool {
        loop {
            if self.write_from >= self.write_to {
                if self.unsent == 0 {
                    self.write_from = 0;
                    self.write_to = 0;
                    return true;
                }
                self.next_run(ctx.plan);
            }
            match ctx.io.send(self.index, self.write_from..self.write_to) {
                // Some still to go: the engine calls `on_sent` for them
                // (io_uring takes every send this way).
                Ok(n) if self.write_from + n < self.write_to => {
                    self.write_from += n;
                    return true;
                }
                Ok(_) => self.write_from = self.write_to,
                Err(_) => {
                    self.on_send_error(ctx, now);
                    return false;
                }
            }
        }
    }

    /// Room for the next bytes read, after the unframed ones (moved to the
    /// front when the buffer's end is reached). Empty only when a response
    /// head fills the whole buffer, which the parser refuses first.
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Conn::read_space`]: counts and frames
    /// them. False if the connection was replaced.
    pub fn on_read<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, n: usize, now: u64) -> bool {
        if n == 0 {
            // Unreachable while the parser refuses heads longer than the
            // buffer, but an empty read would look like end of stream.
            ctx.counters.parse_errors += u64::from(now >= ctx.plan.record_from_ns);
            self.fail(ctx, now);
            return false;
        }
        if now >= ctx.plan.record_from_ns {
            ctx.counters.bytes_read += n as u64;
        }
        self.end += n;
        self.process(ctx, now)
    }

    /// Bytes received outside the slot's buffer (io_uring's provided
    /// buffers): copied in and framed, piece by piece if they do not fit.
    /// False if the connection was replaced.
    pub fn on_bytes<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, mut bytes: &[u8], now: u64) -> bool {
        if !self.is_open() {
            return true;
        }
        while !bytes.is_empty() {
            let space = self.read_space();
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if !self.on_read(ctx, n, now) {
                return false;
            }
        }
        true
    }

    /// A read failed: the connection is replaced.
    pub fn on_read_error<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        if now >= ctx.plan.record_from_ns {
            ctx.counters.read_errors += 1;
        }
        self.fail(ctx, now);
    }

    /// Frames the buffered responses; false if the connection was replaced.
    fn process<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) -> bool {
        loop {
            let step = match self.parser.advance(&self.buf[self.start..self.end]) {
                Ok(step) => step,
                Err(_) => {
                    if now >= ctx.plan.record_from_ns {
                        ctx.counters.parse_errors += 1;
                    }
                    self.fail(ctx, now);
                    return false;
                }
            };
            self.start += step.consumed;
            match step.completed {
                Some(done) => {
                    if !self.complete(ctx, done, now) {
                        return false;
                    }
                    if done.close {
                        self.fail(ctx, now);
                        return false;
                    }
                }
                None if step.consumed == 0 => break,
                None => {}
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        true
    }

    /// Matches a response to the oldest request in flight and records it.
    #[inline]
    fn complete<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, done: Completed, now: u64) -> bool {
        // Only a request already written can be answered.
        let oldest = match self.inflight.len() > self.unsent {
            true => self.inflight.pop_front(),
            false => None,
        };
        let Some(request) = oldest else {
            // A response nobody asked for: the stream cannot be trusted.
            if now >= ctx.plan.record_from_ns {
                ctx.counters.parse_errors += 1;
            }
            self.fail(ctx, now);
            return false;
        };
        ctx.outstanding -= 1;
        if let Some(lag) = &mut ctx.lag {
            if self.ideal_answers.len() == ctx.plan.pipeline {
                self.ideal_answers.pop_front();
            }
            let took = now.saturating_sub(request.sent);
            self.ideal_answers.push_back(request.ideal + took);
            if request.intended >= ctx.plan.record_from_ns {
                let latency = now.saturating_sub(request.intended).max(1);
                lag.record(latency, request.sent - request.ideal);
            }
        }
        if request.intended >= ctx.plan.record_from_ns {
            ctx.counters.responses += 1;
            ctx.counters.count_status(done.status);
            self.completed += 1;
            let latency = now.saturating_sub(request.intended).max(1);
            ctx.latency.saturating_record(latency);
            if let Some(uncorrected) = &mut ctx.uncorrected {
                uncorrected.saturating_record(now.saturating_sub(request.sent).max(1));
            }
            // Without a mix there are no kinds to count apart.
            if let Some(kind) = ctx.kinds.get_mut(usize::from(request.kind)) {
                kind.record(latency, done.status);
            }
        }
        true
    }

    /// The server ended the stream: a response framed by its end completes,
    /// and the connection is replaced.
    pub fn on_eof<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        if !self.is_open() {
            return;
        }
        if let Some(done) = self.parser.on_eof() {
            if !self.complete(ctx, done, now) {
                return;
            }
        }
        if !self.inflight.is_empty() && now >= ctx.plan.record_from_ns {
            ctx.counters.read_errors += 1;
        }
        self.fail(ctx, now);
    }

    /// The connection ended or broke: requests in flight are lost, and a new
    /// connection replaces it at once.
    fn fail<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        let record_from = ctx.plan.record_from_ns;
        ctx.outstanding -= self.inflight.len();
        let lost = self
            .inflight
            .drain(..)
            .filter(|p| p.intended >= record_from)
            .count();
        ctx.counters.aborted += lost as u64;
        self.reconnect(ctx, now);
    }

    fn reconnect<I: Io>(&mut self, ctx: &mut Ctx<'_, I>, now: u64) {
        self.close(ctx);
        if now >= ctx.plan.record_from_ns {
            ctx.counters.reconnects += 1;
        }
        self.connect(ctx, now);
    }

    fn close<I: Io>(&mut self, ctx: &mut Ctx<'_, I>) {
        ctx.io.close(self.index);
        self.ideal_answers.clear();
        self.state = State::Closed { retry_at: 0 };
        self.start = 0;
        self.end = 0;
        self.write_from = 0;
        self.write_to = 0;
        self.unsent = 0;
        self.parser.reset();
    }
}
