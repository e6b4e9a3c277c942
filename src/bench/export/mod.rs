//! The report's writers, one per format behind one trait. They format what
//! [`Analysis`] computed and what [`BenchResults`] holds; they decide nothing.

pub mod json;
pub mod markdown;
pub mod svg;
pub mod table;

use super::analysis::Analysis;
use super::results::BenchResults;

/// What a writer is given.
pub struct Report<'a> {
    /// The raw results.
    pub results: &'a BenchResults,
    /// What was computed from them.
    pub analysis: &'a Analysis,
}

/// One file a writer produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// File name within the output directory.
    pub file: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A report format.
pub trait Exporter {
    /// Renders the report as the files of this format.
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String>;
}

/// Every writer the bench runs: Markdown, JSON, SVG.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(markdown::Markdown),
        Box::new(json::Json),
        Box::new(svg::Svg),
    ]
}
