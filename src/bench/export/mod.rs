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

impl Output {
    /// A writer's one file.
    fn only(file: &str, bytes: Vec<u8>) -> Result<Vec<Output>, String> {
        let file = file.to_string();
        Ok(vec![Output { file, bytes }])
    }
}

/// A report format: renders the report as its files.
pub type Writer = fn(&Report<'_>) -> Result<Vec<Output>, String>;

/// Every writer the bench runs: Markdown, JSON, CSV, SVG.
pub const WRITERS: [Writer; 4] = [markdown::render, json::render, csv::render, svg::render];

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
