//! What a load thread and its connections share: the run's [`Plan`] (read
//! by every thread) and a thread's [`Ctx`] (lent to its connections), apart
//! from both so that neither `worker` nor `conn` depends on the other for it.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::mix::{Mixer, MAIN, MIXED};
use super::schedule::Schedule;
use super::stats::{Counters, KindStats, LagHistograms};

/// What every thread shares, read-only: the run as decided before it starts.
#[derive(Debug)]
pub struct Plan {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// `pipeline` copies of the encoded request, back to back, so that any
    /// number of requests up to the depth is one contiguous write; with a
    /// mix, followed by `pipeline` copies of the mix's request
    /// ([`PlanMix::offset`]).
    pub requests: Vec<u8>,
    /// Bytes of one request.
    pub request_len: usize,
    /// `--mix`: the second kind of request; `None` sends one kind.
    pub mix: Option<PlanMix>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Whether the method is HEAD (responses carry no body).
    pub head_request: bool,
    /// The run's time origin; every time below is ns after it.
    pub base: Instant,
    /// Start of the recorded window (end of the warmup).
    pub record_from_ns: u64,
    /// End of the run.
    pub end_ns: u64,
    /// Per-request timeout.
    pub timeout_ns: u64,
    /// Set to end the run early.
    pub cancel: Option<Arc<AtomicBool>>,
    /// `-n`: requests the recorded window may still send, all threads
    /// together; `None` without a count.
    pub budget: Option<AtomicU64>,
    /// When the last request of the budget was taken (ns after the start;
    /// `u64::MAX` until then): open-loop slots due after it went unsent for
    /// want of budget, not of pipeline room, and are not counted as such.
    pub budget_spent_ns: AtomicU64,
}

/// Where the mix's requests are in [`Plan::requests`] (which request is
/// of which kind is each thread's [`Mixer`]'s to say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanMix {
    /// Where its `pipeline` copies start.
    pub offset: usize,
    /// Bytes of one of them.
    pub request_len: usize,
}

impl Plan {
    /// The bytes of `count` requests of `kind` ([`super::mix::MAIN`] or
    /// [`super::mix::MIXED`]), back to back: a range of
    /// [`Plan::requests`].
    #[inline]
    pub fn kind_bytes(&self, kind: u8, count: usize) -> Range<usize> {
        match (kind, &self.mix) {
            (MIXED, Some(mix)) => mix.offset..mix.offset + count * mix.request_len,
            _ => 0..count * self.request_len,
        }
    }

    /// Whether the run was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    /// Takes up to `wanted` requests from the budget (all of them without
    /// one) at `now`; returns how many may be sent.
    pub fn claim(&self, wanted: usize, now: u64) -> usize {
        let Some(budget) = &self.budget else {
            return wanted;
        };
        let mut left = budget.load(Ordering::Relaxed);
        loop {
            let take = left.min(wanted as u64);
            if take == 0 {
                return 0;
            }
            match budget.compare_exchange_weak(
                left,
                left - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if take == left {
                        self.budget_spent_ns.fetch_min(now, Ordering::Relaxed);
                    }
                    return take as usize;
                }
                Err(now) => left = now,
            }
        }
    }

    /// Whether a budget was given and is spent.
    pub fn budget_spent(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|b| b.load(Ordering::Relaxed) == 0)
    }
}

/// A thread's mutable context, lent to its connections.
pub struct Ctx<'a, I> {
    /// The shared plan.
    pub plan: &'a Plan,
    /// The thread's I/O engine: its sockets.
    pub io: I,
    /// Open loop: the thread's schedule.
    pub schedule: Option<Schedule>,
    /// Counters.
    pub counters: Counters,
    /// Latency (corrected in open loop).
    pub latency: Histogram<u64>,
    /// Open loop: latency from the actual send.
    pub uncorrected: Option<Histogram<u64>>,
    /// Requests in flight on all of the thread's connections.
    pub outstanding: usize,
    /// Open loop: the client's lag, and the latency without it.
    pub lag: Option<LagHistograms>,
    /// With a mix: the thread's choice of each request's kind.
    pub mixer: Option<Mixer>,
    /// With a mix: what each kind counted, by kind; empty without one.
    pub kinds: Vec<KindStats>,
}

impl<I> Ctx<'_, I> {
    /// Nanoseconds since the run's start (a vDSO clock read, no syscall).
    #[inline]
    pub fn now(&self) -> u64 {
        self.plan.base.elapsed().as_nanos() as u64
    }

    /// The kind of the next request sent (always [`super::mix::MAIN`]
    /// without a mix), counted as sent in its kind when `recorded`.
    #[inline]
    pub fn next_kind(&mut self, recorded: bool) -> u8 {
        let Some(mixer) = &mut self.mixer else {
            return MAIN;
        };
        let kind = mixer.next_kind();
        if recorded {
            if let Some(stats) = self.kinds.get_mut(usize::from(kind)) {
                stats.sent += 1;
            }
        }
        kind
    }
}
