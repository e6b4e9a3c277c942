//! `results.json`: the raw results, as serde writes them, and beside them
//! what was computed for `--baseline` and `--check` (so that a script can
//! read the ratios and verdicts without recomputing them).

use serde::Serialize;

use crate::bench::analysis::BaselineTable;
use crate::bench::results::BenchResults;
use crate::bench::targets::Checked;

use super::{Exporter, Output, Report};

/// The file name.
pub const FILE: &str = "results.json";

/// Writes `results.json`.
pub struct Json;

/// The file's content: every field of [`BenchResults`], then the computed
/// sections (absent when the run had no `--baseline` or `--check`).
#[derive(Serialize)]
struct File<'a> {
    #[serde(flatten)]
    results: &'a BenchResults,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<&'a BaselineTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    targets: Option<&'a Checked>,
}

impl Exporter for Json {
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String> {
        let file = File {
            results: report.results,
            baseline: report.analysis.baseline.as_ref(),
            targets: report.analysis.targets.as_ref(),
        };
        let mut bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| format!("cannot encode {FILE}: {e}"))?;
        bytes.push(b'\n');
        Ok(vec![Output {
            file: FILE.to_string(),
            bytes,
        }])
    }
}
