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

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(1);

    /// A server of capacity `mu` req/s whose p99 grows as an M/M/1 queue's
    /// does: ln(100) / (mu - rate), plus a fixed floor; past `mu` it
    /// answers only `mu` of the rate and its p99 explodes.
    fn queue(mu: f64, floor: Duration) -> impl Fn(f64) -> Probe {
        move |rate| {
            if rate >= mu {
                return Probe {
                    rate,
                    p99: Some(Duration::from_secs(1)),
                    answered: mu / rate,
                };
            }
            let wait = 100f64.ln() / (mu - rate);
            Probe {
                rate,
                p99: Some(floor + Duration::from_secs_f64(wait)),
                answered: 1.0,
            }
        }
    }

    /// The rate where the queue's p99 equals the target.
    fn knee(mu: f64, floor: Duration) -> f64 {
        mu - 100f64.ln() / (TARGET - floor).as_secs_f64()
    }

    #[test]
    fn finds_the_knee_within_its_step() {
        for (mu, floor_us) in [(100_000.0, 100), (20_000.0, 300), (300_000.0, 50)] {
            let floor = Duration::from_micros(floor_us);
            let plan = Plan {
                target: TARGET,
                ceiling: mu * 1.2,
                probes: 12,
                precision: 0.02,
            };
            let found = search(plan, queue(mu, floor));
            let (held, failed) = (found.capacity.unwrap(), found.failed.unwrap());
            let knee = knee(mu, floor);
            assert!(
                held <= knee && knee <= failed,
                "{held} .. {failed} misses {knee}"
            );
            assert!(
                failed - held <= 0.02 * failed,
                "step {held} .. {failed} too wide"
            );
            assert!(found.probes.len() <= 12);
            // Every probe that held is below the knee, every other above.
            for p in &found.probes {
                assert_eq!(p.holds(TARGET), p.rate <= knee, "{p:?}");
            }
        }
    }

    #[test]
    fn a_target_below_the_floor_finds_nothing_in_one_probe() {
        let plan = Plan {
            target: TARGET,
            ceiling: 100_000.0,
            probes: 10,
            precision: 0.02,
        };
        let found = search(plan, queue(100_000.0, Duration::from_millis(2)));
        assert_eq!(found.capacity, None);
        assert_eq!(found.probes.len(), 1);
    }

    #[test]
    fn a_server_that_holds_at_the_ceiling_is_given_the_ceiling() {
        let plan = Plan {
            target: TARGET,
            ceiling: 10_000.0,
            probes: 10,
            precision: 0.02,
        };
        let found = search(plan, queue(1_000_000.0, Duration::ZERO));
        assert_eq!((found.capacity, found.failed), (Some(10_000.0), None));
        assert_eq!(found.probes.len(), 2);
    }

    /// Shedding load keeps the p99 of the few answered low: it fails.
    #[test]
    fn a_probe_that_left_requests_unanswered_does_not_hold() {
        let shed = Probe {
            rate: 1000.0,
            p99: Some(Duration::from_micros(10)),
            answered: 0.5,
        };
        assert!(!shed.holds(TARGET));
        let none = Probe {
            rate: 1000.0,
            p99: None,
            answered: 1.0,
        };
        assert!(!none.holds(TARGET));
    }

    #[test]
    fn the_probes_spent_bound_the_search() {
        let plan = Plan {
            target: TARGET,
            ceiling: 120_000.0,
            probes: 4,
            precision: 0.0,
        };
        let found = search(plan, queue(100_000.0, Duration::from_micros(100)));
        assert_eq!(found.probes.len(), 4);
        assert!(found.capacity.unwrap() < found.failed.unwrap());
    }
}
