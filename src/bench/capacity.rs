//! The `capacity` search: the highest offered rate at which a server's p99
//! stays under a target, found by bisection over rates, each probe a short
//! open-loop window corrected for coordinated omission.
//!
//! Peak req/s (a closed loop at full speed) says how much a server can
//! push; what a service can promise is the load it carries while its tail
//! latency holds, which is lower and depends on the shape of the work. The
//! search is pure: it is given the measurement as a function, so it is
//! tested on synthetic latency curves, and the bench gives it real runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one probe measured at one offered rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Offered rate, requests per second.
    pub rate: f64,
    /// Corrected p99 latency, if any response came back.
    pub p99: Option<Duration>,
    /// Share of the offered requests answered in the window (0 to 1).
    pub answered: f64,
}

/// The least share of offered requests a probe must get answered to hold:
/// a server that sheds load keeps a low p99 for the few it answers.
pub const ANSWERED_SHARE: f64 = 0.99;

impl Probe {
    /// Whether the server held the target at this rate: p99 at most
    /// `target` and nearly every request answered.
    pub fn holds(&self, target: Duration) -> bool {
        self.answered >= ANSWERED_SHARE && self.p99.is_some_and(|p99| p99 <= target)
    }
}

/// How a search is run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// The p99 the server must stay under.
    pub target: Duration,
    /// The highest rate tried: above what the server can do at all (its
    /// peak closed-loop req/s, say, with a margin).
    pub ceiling: f64,
    /// The most probes.
    pub probes: usize,
    /// Stop once the bracket is this share of its upper end or narrower.
    pub precision: f64,
}

/// What a search found, and every probe on the way (for results.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The highest rate that held; `None` when even the lowest probe did
    /// not (the target is below what this server, or this machine, gives).
    pub capacity: Option<f64>,
    /// The lowest rate that failed, if one did: the capacity lies between
    /// the two (`capacity..failed` is the search's step).
    pub failed: Option<f64>,
    /// The probes in the order they ran.
    pub probes: Vec<Probe>,
}

/// Searches for the highest rate whose probe holds the target.
///
/// The first probe is at a low rate (1/16 of the ceiling): if that does not
/// hold, nothing will, and the search stops. The second is at the ceiling:
/// if it holds, the ceiling is the answer (raise it). Between them the
/// bracket is halved, probe by probe, until it is narrower than the plan's
/// precision or the probes are spent. Latency need not grow smoothly with
/// rate for this to end: a probe that holds raises the lower end, one that
/// fails lowers the upper end, whatever the noise.
pub fn search(plan: Plan, mut measure: impl FnMut(f64) -> Probe) -> Found {
    let mut probes = Vec::new();
    let mut probe = |rate: f64, probes: &mut Vec<Probe>| {
        let p = measure(rate);
        probes.push(p);
        p.holds(plan.target)
    };
    let floor = plan.ceiling / 16.0;
    if plan.probes == 0 || !probe(floor, &mut probes) {
        return Found {
            capacity: None,
            failed: probes.first().map(|p| p.rate),
            probes,
        };
    }
    let (mut held, mut failed) = (floor, None);
    if probes.len() < plan.probes {
        match probe(plan.ceiling, &mut probes) {
            true => held = plan.ceiling,
            false => failed = Some(plan.ceiling),
        }
    }
    while let Some(upper) = failed {
        if probes.len() >= plan.probes || (upper - held) <= plan.precision * upper {
            break;
        }
        let mid = (held + upper) / 2.0;
        match probe(mid, &mut probes) {
            true => held = mid,
            false => failed = Some(mid),
        }
    }
    Found {
        capacity: Some(held),
        failed,
        probes,
    }
}
