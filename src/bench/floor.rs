//! The machine's latency floor, read from the `floor` scenario's cells (the
//! load generator against `servelab responder`), and the rule
//! ([`super::analysis::FLOOR_RULE`]) that decides when two latencies are
//! indistinguishable: the responder is the cheapest server there is, so what
//! it shows at a load is what the machine adds to any server there.

use super::results::CellIndex;
use super::scenarios::{ScenarioId, FLOOR_CLOSED, FLOOR_SERVER};

/// What the floor measured, µs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Floor {
    /// Closed-loop p99 (100 connections).
    pub closed_p99: Option<f64>,
    /// Open-loop points: (offered rate, corrected p99), by rate.
    pub open: Vec<(f64, f64)>,
}

impl Floor {
    /// The floor of a bench's cells; `None` when it was not measured.
    pub fn of(cells: &CellIndex<'_>) -> Option<Floor> {
        let sc = ScenarioId::Floor.scenario();
        let p99 = |i| {
            cells.median(sc.id.at(i), FLOOR_SERVER, |c| {
                Some(c.load.as_ref()?.latency_us?.p99)
            })
        };
        let mut open: Vec<(f64, f64)> = (1..sc.points.len())
            .filter_map(|i| {
                let rate = cells.median(sc.id.at(i), FLOOR_SERVER, |c| c.config.rate)?;
                Some((rate, p99(i)?))
            })
            .collect();
        open.sort_by(|a, b| a.0.total_cmp(&b.0));
        let floor = Floor {
            closed_p99: p99(FLOOR_CLOSED.index),
            open,
        };
        (floor.closed_p99.is_some() || !floor.open.is_empty()).then_some(floor)
    }

    /// The floor's p99 under a load: closed loop (`None`), or at `rate`.
    pub fn p99_at(&self, rate: Option<f64>) -> Option<f64> {
        match rate {
            None => self.closed_p99,
            Some(r) => self
                .open
                .iter()
                .find(|(at, _)| *at >= r)
                .or(self.open.last())
                .map(|p| p.1),
        }
    }

    /// The least p99 the floor showed at any open-loop rate: the least
    /// latency a server can show here (the closed loop's when there is
    /// none). The least, not the lowest rate's: one stall of the machine in
    /// one short window (a 100 ms pause in a 5% window of a default run was
    /// seen) would otherwise raise every `capacity` target built on it.
    pub fn lowest_p99(&self) -> Option<f64> {
        let open = self.open.iter().map(|p| p.1);
        open.reduce(f64::min).or(self.closed_p99)
    }

    /// Whether latencies `a` and `b` (µs) differ within the floor under
    /// the load `rate`; false where the floor was not measured.
    pub fn within(&self, a: f64, b: f64, rate: Option<f64>) -> bool {
        self.p99_at(rate).is_some_and(|f| (a - b).abs() <= f)
    }
}
