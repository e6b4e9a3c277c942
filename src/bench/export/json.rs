//! `results.json`: the raw results, and beside them the `--baseline` ratios
//! and `--check` verdicts, so that a script need not recompute them.

use serde::Serialize;

use crate::bench::analysis::BaselineTable;
use crate::bench::results::BenchResults;
use crate::bench::targets::Checked;

use super::{Output, Report};

/// The file name.
pub const FILE: &str = "results.json";

/// Every field of [`BenchResults`], then the computed sections.
#[derive(Serialize)]
struct File<'a> {
    #[serde(flatten)]
    results: &'a BenchResults,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a BaselineTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    targets: Option<&'a Checked>,
}

/// Renders `results.json`.
pub fn render(report: &Report<'_>) -> Result<Vec<Output>, String> {
    let file = File {
        results: report.results,
        baseline: report.analysis.baseline.as_ref(),
        targets: report.analysis.targets.as_ref(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&file).map_err(|e| format!("cannot encode {FILE}: {e}"))?;
    bytes.push(b'\n');
    Output::only(FILE, bytes)
}
