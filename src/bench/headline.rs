//! The headline figures of a bench (throughput, p99, server CPU per request,
//! memory per idle connection) row by row, as the report's own [`Column`]s
//! read them: what `bench compare` and the CSV export show.

use super::columns::{columns, Column, Lookup, Read};
use super::results::CellResult;
use super::scenarios::ScenarioId;

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
