//! `results.csv`: one row per scenario, point and server with the headline
//! figures' median, min and max over the measured runs (RFC 4180).

use crate::bench::headline::{self, HEADLINE};
use crate::bench::results::CellIndex;

use super::{Exporter, Output, Report};

/// The file name.
pub const FILE: &str = "results.csv";

/// Writes `results.csv`.
pub struct Csv;

/// The header: the row, its runs, and each headline figure's median, min, max.
pub fn header() -> Vec<String> {
    let mut h: Vec<String> = ["scenario", "point", "server", "runs", "measured_runs"]
        .map(String::from)
        .to_vec();
    for c in HEADLINE {
        for stat in ["median", "min", "max"] {
            h.push(format!("{}_{stat}", headline::key(c)));
        }
    }
    h
}

impl Exporter for Csv {
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String> {
        let err = |e: ::csv::Error| format!("cannot encode {FILE}: {e}");
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(header()).map_err(err)?;
        let r = report.results;
        for g in CellIndex::of(&r.cells, &r.servers).groups() {
            let shown = headline::of(g.id.scenario);
            let mut record = vec![
                g.id.scenario.name().to_string(),
                g.id.point.clone(),
                g.id.server.clone(),
                g.runs.len().to_string(),
                g.measured().count().to_string(),
            ];
            for c in HEADLINE {
                match shown
                    .contains(&c)
                    .then(|| g.spread(|r| headline::value(c, r)))
                    .flatten()
                {
                    Some(s) => record.extend([s.median, s.min, s.max].map(|v| v.to_string())),
                    None => record.extend([""; 3].map(String::from)),
                }
            }
            w.write_record(&record).map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| format!("cannot encode {FILE}: {e}"))?;
        Ok(vec![Output {
            file: FILE.to_string(),
            bytes,
        }])
    }
}
