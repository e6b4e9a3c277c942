//! The headline figures of a bench (throughput, p99, server CPU per request,
//! memory per idle connection) row by row, as the report's own [`Column`]s
//! read them: what `bench compare` and the CSV export show.

use super::columns::{columns, Column, Lookup, Read};
use super::results::CellResult;
use super::scenarios::ScenarioId;

/// The headline columns, in the order they are shown, and their keys in
/// CSV headers and JSON (with their units).
pub const HEADLINE: [(Column, &str); 5] = [
    (Column::Rps, "req_per_s"),
    (Column::ConnPerSec, "conn_per_s"),
    (Column::P99, "p99_us"),
    (Column::ServerCpu, "server_cpu_us_per_req"),
    (Column::IdleRss, "rss_bytes_per_conn"),
];

/// A headline column's key.
pub fn key(column: Column) -> &'static str {
    HEADLINE
        .iter()
        .find(|h| h.0 == column)
        .map_or(column.name(), |h| h.1)
}

/// The headline columns of `scenario`'s table: those of [`HEADLINE`] that
/// its table shows.
pub fn of(scenario: ScenarioId) -> Vec<Column> {
    let shown = columns(scenario);
    HEADLINE
        .map(|h| h.0)
        .into_iter()
        .filter(|c| shown.contains(c))
        .collect()
}

/// `column`'s figure in one run, as the report's table reads it; `None` for
/// a column that is not a median of runs, or a run without the figure.
pub fn value(column: Column, cell: &CellResult) -> Option<f64> {
    match column.metric().read {
        Read::Median(f) => f(cell, &Lookup::default()).filter(|v| v.is_finite()),
        Read::Total(_) | Read::Kinds(_) => None,
    }
}
