//! The report's writers, one per format behind one trait. They format what
//! [`Analysis`] computed and what [`BenchResults`] holds; they decide nothing.

pub mod csv;
pub mod json;
pub mod markdown;
pub mod svg;
pub mod table;

use std::path::{Path, PathBuf};

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

/// Every writer the bench runs: Markdown, JSON, CSV, SVG.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(markdown::Markdown),
        Box::new(json::Json),
        Box::new(csv::Csv),
        Box::new(svg::Svg),
    ]
}

/// `--export-*`: which file of the report also goes where.
pub type Exports = Vec<(&'static str, PathBuf)>;

/// Checks, before anything runs, that every export path can be a file.
pub fn check_exports(exports: &Exports) -> Result<(), String> {
    for (_, path) in exports {
        if path.is_dir() {
            return Err(format!(
                "cannot export to {}: it is a directory",
                path.display()
            ));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(format!(
                "cannot export to {}: the directory {} does not exist",
                path.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Writes the outputs named in `exports` to their paths; returns the paths.
pub fn write_exports(outputs: &[Output], exports: &Exports) -> Result<Vec<PathBuf>, String> {
    let write = |(file, path): &(&str, PathBuf)| {
        let o = outputs.iter().find(|o| o.file == *file);
        let o = o.ok_or_else(|| format!("no {file} was rendered to export"))?;
        std::fs::write(path, &o.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.clone())
    };
    exports.iter().map(write).collect()
}
