//! The headline figures of a bench (throughput, p99, server CPU per request,
//! memory per idle connection) row by row, as the report's own [`Column`]s
//! read them: what `bench compare` and the CSV export show.

use std::collections::BTreeMap;

use serde::Serialize;

use super::columns::{columns, Column, Lookup, Read};
use super::results::{BenchResults, CellResult, Spread};
use super::scenarios::{PointId, ScenarioId};

/// The headline columns, in the order they are shown.
pub const HEADLINE: [Column; 5] = [
    Column::Rps,
    Column::ConnPerSec,
    Column::P99,
    Column::ServerCpu,
    Column::IdleRss,
];

/// A headline column's key in CSV headers and JSON, with its unit.
pub fn key(column: Column) -> &'static str {
    match column {
        Column::Rps => "req_per_s",
        Column::ConnPerSec => "conn_per_s",
        Column::P99 => "p99_us",
        Column::ServerCpu => "server_cpu_us_per_req",
        Column::IdleRss => "rss_bytes_per_conn",
        other => other.name(),
    }
}

/// The headline columns of `scenario`'s table: those of [`HEADLINE`] that
/// its table shows.
pub fn of(scenario: ScenarioId) -> Vec<Column> {
    let shown = columns(scenario);
    HEADLINE.into_iter().filter(|c| shown.contains(c)).collect()
}

/// `column`'s figure in one run, as the report's table reads it; `None` for
/// a column that is not a median of runs, or a run without the figure.
pub fn value(column: Column, cell: &CellResult) -> Option<f64> {
    match column.metric().read {
        Read::Median(f) => f(cell, &Lookup::default()).filter(|v| v.is_finite()),
        Read::Total(_) | Read::Kinds(_) => None,
    }
}

/// One point of one scenario against one server: a row of the report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RowId {
    /// The scenario.
    pub scenario: ScenarioId,
    /// The point's label, as the file names it.
    pub point: String,
    /// The server.
    pub server: String,
}

/// The runs of one row.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// The row.
    pub id: RowId,
    /// Every run, measured or not, in the order run.
    pub runs: Vec<&'a CellResult>,
}

impl Group<'_> {
    /// The runs that were measured.
    pub fn measured(&self) -> impl Iterator<Item = &CellResult> + '_ {
        self.runs.iter().copied().filter(|c| c.measured())
    }

    /// `column` over the measured runs: median, min, max.
    pub fn spread(&self, column: Column) -> Option<Spread> {
        let v: Vec<f64> = self.measured().filter_map(|c| value(column, c)).collect();
        Spread::of(&v)
    }

    /// `column` in each measured run, by run number.
    pub fn by_run(&self, column: Column) -> BTreeMap<u32, f64> {
        self.measured()
            .filter_map(|c| Some((c.run, value(column, c)?)))
            .collect()
    }
}

/// The cells of `results` by row: points in scenario order, servers in the
/// order of `results.servers` (others after them, by name).
pub fn groups(results: &BenchResults) -> Vec<Group<'_>> {
    let order = |server: &str| {
        results
            .servers
            .iter()
            .position(|s| s.name == server)
            .unwrap_or(usize::MAX)
    };
    let mut map: BTreeMap<(PointId, usize, String), Group<'_>> = BTreeMap::new();
    for c in &results.cells {
        map.entry((c.at(), order(&c.server), c.server.clone()))
            .or_insert_with(|| Group {
                id: RowId {
                    scenario: c.scenario,
                    point: c.point.clone(),
                    server: c.server.clone(),
                },
                runs: Vec::new(),
            })
            .runs
            .push(c);
    }
    map.into_values().collect()
}
