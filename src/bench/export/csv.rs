//! `results.csv`: one row per scenario, point and server with the headline
//! figures' median, min and max over the measured runs (RFC 4180).

use crate::bench::headline::{self, HEADLINE};
use crate::bench::results::CellIndex;

use super::{Output, Report};

/// The file name.
pub const FILE: &str = "results.csv";

/// The header: the row, its runs, and each headline figure's median, min, max.
pub fn header() -> Vec<String> {
    let mut h: Vec<String> = ["scenario", "point", "server", "runs", "measured_runs"]
        .map(String::from)
        .to_vec();
    for (_, key) in HEADLINE {
        h.extend(["median", "min", "max"].map(|stat| format!("{key}_{stat}")));
    }
    h
}

/// Renders `results.csv`.
pub fn render(report: &Report<'_>) -> Result<Vec<Output>, String> {
    let err = |e: ::csv::Error| format!("cannot encode {FILE}: {e}");
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header()).map_err(err)?;
    let r = report.results;
    for g in CellIndex::of(&r.cells, &r.servers).groups() {
        let shown = headline::of(g.id.scenario);
        let mut record = vec![
            g.id.scenario.name(),
            g.id.point.clone(),
            g.id.server.clone(),
            g.runs.len().to_string(),
            g.measured().count().to_string(),
        ];
        for (c, _) in HEADLINE {
            let s = shown
                .contains(&c)
                .then(|| g.spread(|r| headline::value(c, r)));
            let figures = s
                .flatten()
                .map(|s| [s.median, s.min, s.max].map(|v| v.to_string()));
            record.extend(figures.unwrap_or_default());
        }
        w.write_record(&record).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| format!("cannot encode {FILE}: {e}"))?;
    Output::only(FILE, bytes)
}
