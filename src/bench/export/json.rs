//! `results.json`: the raw results, as serde writes them.

use super::{Exporter, Output, Report};

/// The file name.
pub const FILE: &str = "results.json";

/// Writes `results.json`.
pub struct Json;

impl Exporter for Json {
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String> {
        let mut bytes = serde_json::to_vec_pretty(report.results)
            .map_err(|e| format!("cannot encode {FILE}: {e}"))?;
        bytes.push(b'\n');
        Ok(vec![Output {
            file: FILE.to_string(),
            bytes,
        }])
    }
}
