//! The `capacity` search: the highest offered rate at which a server's p99
//! stays under a target, by bisection over short open-loop probes. Peak
//! req/s says how much a server can push; what a service can promise is the
//! load it carries while its tail holds. The search is given the
//! measurement as a function, so that tests can give it synthetic curves.

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
    /// The highest rate tried: the server's peak.
    pub ceiling: f64,
    /// The most probes.
    pub probes: usize,
    /// Stop once the bracket is this share of its upper end or narrower.
    pub precision: f64,
}

/// What a search found, and every probe on the way (for results.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The highest rate that held; `None` when even the lowest did not.
    pub capacity: Option<f64>,
    /// The lowest rate that failed, if one did: the capacity lies between.
    pub failed: Option<f64>,
    /// The probes in the order they ran.
    pub probes: Vec<Probe>,
}

/// Searches for the highest rate whose probe holds the target: 1/16 of the
/// ceiling first (if that fails twice, nothing will), then the ceiling, then the
/// bracket halved until it is narrow enough or the probes are spent. Noise
/// cannot stop it ending: each probe moves one end of the bracket.
pub fn search(plan: Plan, mut measure: impl FnMut(f64) -> Probe) -> Found {
    let mut probes = Vec::new();
    let mut probe = |rate: f64, probes: &mut Vec<Probe>| {
        let p = measure(rate);
        probes.push(p);
        p.holds(plan.target)
    };
    let floor = plan.ceiling / 16.0;
    // Twice before nothing holds: one stall of a virtual machine (100 ms
    // pauses are seen) in one short window must not decide that.
    if !(0..plan.probes.min(2)).any(|_| probe(floor, &mut probes)) {
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
