//! What a cell takes from the cells run before it: the rate an open-loop
//! point scales from ([`ScenarioId::rate_base`]), and a `capacity`
//! search's ceiling and p99 target. Pure: read from the results so far.

use std::str::FromStr;
use std::time::Duration;

use crate::route::{ServiceTime, Work};

use super::floor::Floor;
use super::results::{CellIndex, CellResult};
use super::scenarios::{Drive, PlannedCell, RateBase, ScenarioId, SEED};

/// What a cell is given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Given {
    /// The rate the point's share is of (`capacity`: the search's ceiling).
    pub base_rps: Option<f64>,
    /// `capacity`: the p99 target.
    pub target: Option<Target>,
}

/// A `capacity` search's p99 target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// The target the probes are held to.
    pub target: Duration,
    /// The workload's own target ([`nominal_target`]).
    pub nominal: Duration,
    /// The floor's least p99 (over its open-loop rates), if measured.
    pub floor_p99: Option<Duration>,
}

/// The seed handler's p99 target.
pub const SEED_TARGET: Duration = Duration::from_millis(1);
/// The target is this many times a handler's mean service time.
pub const MEAN_TIMES: u32 = 10;
/// A target at or below the floor is raised to this many times the floor.
pub const FLOOR_TIMES: u32 = 2;

/// The p99 target of a workload: 1 ms for the seed's handler (`None`),
/// [`MEAN_TIMES`] the mean service time otherwise, and at least twice the
/// rare duration of a bimodal one (whose p99 is that duration).
pub fn nominal_target(work: Option<&str>) -> Duration {
    let time = match work.map(Work::from_str) {
        Some(Ok(Work::Cpu(t) | Work::Wait(t) | Work::Await(t))) => t,
        _ => return SEED_TARGET,
    };
    let target = time.mean() * MEAN_TIMES;
    match time {
        ServiceTime::Bimodal { rare, .. } => target.max(rare * 2),
        _ => target,
    }
}

/// The target of `work` above `floor`: the nominal one, or
/// [`FLOOR_TIMES`] the floor's lowest p99 when that is not below it.
pub fn target(work: Option<&str>, floor: Option<&Floor>) -> Target {
    let nominal = nominal_target(work);
    let floor_p99 = floor
        .and_then(Floor::lowest_p99)
        .map(|us| Duration::from_secs_f64(us / 1e6));
    let target = match floor_p99 {
        Some(f) if f >= nominal => f * FLOOR_TIMES,
        _ => nominal,
    };
    Target {
        target,
        nominal,
        floor_p99,
    }
}

/// What `cell` (against `server`) is given by `cells`, run before it.
pub fn given(cells: &[CellResult], cell: &PlannedCell, server: &str) -> Given {
    let point = cell.point();
    if !matches!(point.drive, Drive::Open { .. } | Drive::Capacity { .. }) {
        return Given::default();
    }
    let index = CellIndex::of(cells, &[]);
    let rps = |at| index.median(at, server, CellResult::rps);
    let base_rps = match cell.scenario.id.rate_base() {
        RateBase::Point(at) => rps(at),
        RateBase::Peak => match point.work {
            None => rps(SEED),
            work => ScenarioId::Work.scenario().with_work(work).and_then(rps),
        },
        RateBase::Capacity(work) => {
            let at = ScenarioId::Capacity.scenario().with_work(Some(work));
            at.and_then(|at| index.median(at, server, |c| c.capacity.as_ref()?.found.capacity))
        }
    };
    let target = matches!(point.drive, Drive::Capacity { .. })
        .then(|| target(point.work, Floor::of(&index).as_ref()));
    Given { base_rps, target }
}

/// Why a cell has no base rate, for its failure.
pub fn missing_base(scenario: ScenarioId) -> &'static str {
    match scenario.rate_base() {
        RateBase::Point(at) if at.scenario == ScenarioId::Floor => {
            "no closed-loop req/s of the responder to scale the rate from (its floor cell failed)"
        }
        RateBase::Point(_) => {
            "no seed throughput to scale the rate from (its seed cells failed or did not run)"
        }
        RateBase::Peak => {
            "no peak req/s under this work to search below (its seed or work cell failed or did not run)"
        }
        RateBase::Capacity(_) => {
            "no capacity under this work to scale the rate from (its capacity search failed, found none, or did not run)"
        }
    }
}
