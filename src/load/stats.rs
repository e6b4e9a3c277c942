//! What one load thread counts, preallocated so that recording a response
//! never allocates; merged across threads at the end.

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, 3 significant digits, up to an hour
/// (a longer latency is recorded as an hour).
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Status codes are three digits: one counter per possible code.
const STATUS_SLOTS: usize = 1000;

/// A fresh latency histogram with the load generator's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("constant histogram bounds are valid")
}

/// Counts of one thread (or, merged, of the whole run). Only requests whose
/// intended send time falls in the recorded window are counted.
#[derive(Clone, Debug)]
pub struct Counters {
    /// Requests written.
    pub sent: u64,
    /// Responses received, any status.
    pub responses: u64,
    /// Bytes read from sockets while recording.
    pub bytes_read: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
    /// Reads that failed, or ended the stream while requests were in flight.
    pub read_errors: u64,
    /// Writes that failed.
    pub write_errors: u64,
    /// Requests that got no response within the timeout.
    pub timeouts: u64,
    /// Response streams that could not be framed (the connection is dropped).
    pub parse_errors: u64,
    /// Requests lost because their connection closed or failed before they
    /// were answered (other than by their own timeout).
    pub aborted: u64,
    /// Requests still in flight when the run ended.
    pub unanswered: u64,
    /// Connections opened again after one ended.
    pub reconnects: u64,
    /// Open loop: scheduled sends in the window that never went out because
    /// the connection had `pipeline` requests in flight until the end.
    pub not_sent: u64,
    /// Responses per status code (index = code).
    pub status: Vec<u64>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            sent: 0,
            responses: 0,
            bytes_read: 0,
            connect_errors: 0,
            read_errors: 0,
            write_errors: 0,
            timeouts: 0,
            parse_errors: 0,
            aborted: 0,
            unanswered: 0,
            reconnects: 0,
            not_sent: 0,
            status: vec![0; STATUS_SLOTS],
        }
    }
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        self.sent += other.sent;
        self.responses += other.responses;
        self.bytes_read += other.bytes_read;
        self.connect_errors += other.connect_errors;
        self.read_errors += other.read_errors;
        self.write_errors += other.write_errors;
        self.timeouts += other.timeouts;
        self.parse_errors += other.parse_errors;
        self.aborted += other.aborted;
        self.unanswered += other.unanswered;
        self.reconnects += other.reconnects;
        self.not_sent += other.not_sent;
        for (mine, theirs) in self.status.iter_mut().zip(&other.status) {
            *mine += theirs;
        }
    }

    /// Counts one response with `status`.
    #[inline]
    pub fn count_status(&mut self, status: u16) {
        if let Some(slot) = self.status.get_mut(status as usize) {
            *slot += 1;
        }
    }
}

/// Open loop: the client's own lateness, apart from the server's.
///
/// A request goes out late (after its intended send time) either because its
/// connection was still waiting for earlier responses (the server's doing:
/// that is what the coordinated-omission correction is for) or because the
/// client itself was late while the connection was free (its thread was
/// descheduled, paused, busy with other connections): the client's *lag*,
/// the time from when the request could have gone out (its intended time, or
/// when its connection became free if later) to when it did. Both histograms
/// hold one sample per response counted in `latency`.
#[derive(Clone, Debug)]
pub struct LagHistograms {
    /// The client's lag of each answered request.
    pub lag: Histogram<u64>,
    /// Its corrected latency minus its lag: the part of the latency that is
    /// the server's (waiting for the connection, then for the response).
    pub minus_lag: Histogram<u64>,
}

impl LagHistograms {
    /// Empty histograms.
    pub fn new() -> LagHistograms {
        LagHistograms {
            lag: new_histogram(),
            minus_lag: new_histogram(),
        }
    }

    /// Records one response: `latency` from its intended send time, of
    /// which `lag` was the client's.
    #[inline]
    pub fn record(&mut self, latency: u64, lag: u64) {
        self.lag.saturating_record(lag);
        self.minus_lag
            .saturating_record(latency.saturating_sub(lag).max(1));
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &LagHistograms) -> Result<(), hdrhistogram::AdditionError> {
        self.lag.add(&other.lag)?;
        self.minus_lag.add(&other.minus_lag)
    }
}

impl Default for LagHistograms {
    fn default() -> Self {
        LagHistograms::new()
    }
}

/// What one kind of request (`--mix`) counted, in the recorded window: the
/// kind's share of [`Counters`] and its own latency histogram.
#[derive(Clone, Debug)]
pub struct KindStats {
    /// Requests of this kind written.
    pub sent: u64,
    /// Responses to them, any status.
    pub responses: u64,
    /// Responses to them with a 2xx or 3xx status.
    pub ok: u64,
    /// Their latency, measured as the run's (corrected in open loop).
    pub latency: Histogram<u64>,
}

impl KindStats {
    /// Nothing counted yet.
    pub fn new() -> KindStats {
        KindStats {
            sent: 0,
            responses: 0,
            ok: 0,
            latency: new_histogram(),
        }
    }

    /// Counts one response with `status`, `latency_ns` after its request.
    #[inline]
    pub fn record(&mut self, latency_ns: u64, status: u16) {
        self.responses += 1;
        self.ok += u64::from((200..400).contains(&status));
        self.latency.saturating_record(latency_ns);
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &KindStats) -> Result<(), hdrhistogram::AdditionError> {
        self.sent += other.sent;
        self.responses += other.responses;
        self.ok += other.ok;
        self.latency.add(&other.latency)
    }
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats::new()
    }
}

/// Everything one thread brings back.
#[derive(Clone, Debug)]
pub struct ThreadStats {
    /// Counters.
    pub counters: Counters,
    /// Latency from the intended send time (open loop) or the send (closed loop).
    pub latency: Histogram<u64>,
    /// Open loop only: latency from the actual send.
    pub uncorrected: Option<Histogram<u64>>,
    /// Open loop only: the client's lag, and the latency without it.
    pub lag: Option<LagHistograms>,
    /// With a mix: what each kind counted, by kind; empty without one.
    pub kinds: Vec<KindStats>,
    /// Responses completed per connection, in connection order.
    pub per_connection: Vec<u64>,
    /// When the thread stopped, ns after the run's start (at most the
    /// planned end; earlier when cancelled or when a `-n` count was done).
    pub ended_ns: u64,
}
