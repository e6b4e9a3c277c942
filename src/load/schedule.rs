//! Open-loop pacing: when each request is *meant* to go out.
//!
//! A thread with `n` connections and a share `r` of the total rate sends on
//! one evenly spaced schedule, slot `k` at `k / r` seconds after the start,
//! dealt round-robin: slot `k` belongs to connection `k mod n`. So each
//! connection runs at `r / n` (= the total rate / connections) with its phase
//! staggered from its neighbours', and the thread's sends never bunch up.
//! A connection that cannot send a slot on time (its pipeline is full) sends
//! it as soon as it can, and its latency is still measured from the slot's
//! time: that is the coordinated-omission correction.

/// The schedule of one thread.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    offset_ns: f64,
    period_ns: f64,
    connections: u64,
}

impl Schedule {
    /// A schedule at `rate` requests/s dealt over `connections` connections,
    /// starting `offset_ns` after the start of the run (threads start one
    /// total-rate period apart, so that their schedules interleave instead of
    /// all firing together).
    pub fn new(rate: f64, connections: usize, offset_ns: f64) -> Schedule {
        Schedule {
            offset_ns,
            period_ns: 1e9 / rate,
            connections: connections as u64,
        }
    }

    /// Nanoseconds after the start at which thread-wide slot `k` is due.
    #[inline]
    pub fn slot_time(&self, k: u64) -> u64 {
        (self.offset_ns + k as f64 * self.period_ns) as u64
    }

    /// When the `m`-th slot of connection `conn` is due.
    #[inline]
    pub fn conn_slot_time(&self, conn: usize, m: u64) -> u64 {
        self.slot_time(m * self.connections + conn as u64)
    }

    /// The connection that owns thread-wide slot `k`.
    #[inline]
    pub fn owner(&self, k: u64) -> usize {
        (k % self.connections) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dealt_round_robin_at_the_rate() {
        let s = Schedule::new(1000.0, 4, 0.0);
        assert_eq!(s.slot_time(0), 0);
        assert_eq!(s.slot_time(1000), 1_000_000_000);
        assert_eq!(s.owner(6), 2);
        assert_eq!(s.conn_slot_time(2, 1), s.slot_time(6));
        let in_one_second = (0..)
            .take_while(|&k| s.slot_time(k) < 1_000_000_000)
            .count();
        assert_eq!(in_one_second, 1000);
        assert_eq!(Schedule::new(1000.0, 4, 500.0).slot_time(1), 1_000_500);
    }
}
