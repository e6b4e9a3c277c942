//! `--update-readme`: rewrites the block between two marker comments in the
//! README with this run's summary table and chart (and its `--baseline` and
//! `--check` tables), so that the README's figures come from the command,
//! not from an editor; the rest is left byte for byte. Named blocks
//! (`--readme-block NAME`) hold runs of other servers or scenarios.

use std::path::{Path, PathBuf};

use super::analysis::{Analysis, CAPACITY_CHART, THROUGHPUT_CHART};
use super::export::markdown;
use super::results::BenchResults;

/// The line that opens the main block.
pub const BEGIN: &str =
    "<!-- bench:begin (written by `servelab bench --update-readme`; edits here are overwritten) -->";
/// The line that closes it.
pub const END: &str = "<!-- bench:end -->";
/// Where the chart goes, relative to the README's folder.
pub const CHART_DIR: &str = "docs/bench";

/// The marker lines of a block: the main one (`None`) or a named one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Markers {
    /// The whole opening line, as it should be written.
    pub begin: String,
    /// What the opening line starts with, followed by a space.
    begin_prefix: String,
    /// The closing line.
    pub end: String,
    /// The command that writes the block.
    pub command: String,
}

impl Markers {
    /// The markers of the main block, or of the block called `name`.
    pub fn of(name: Option<&str>) -> Markers {
        let tag = name.map_or(String::new(), |name| format!(":{name}"));
        let block = name.map_or(String::new(), |name| format!(" --readme-block {name}"));
        let command = format!("servelab bench --update-readme{block}");
        Markers {
            begin: format!(
                "<!-- bench:begin{tag} (written by `{command}`; edits here are overwritten) -->"
            ),
            begin_prefix: format!("<!-- bench:begin{tag} "),
            end: format!("<!-- bench:end{tag} -->"),
            command,
        }
    }
}

/// Replaces what lies between the marker lines of `readme` with `block`.
/// Fails when the markers are missing, repeated or out of order.
pub fn splice(readme: &str, markers: &Markers, block: &str) -> Result<String, String> {
    let begin = unique(readme, &markers.begin_prefix, markers)?;
    let end = unique(readme, &markers.end, markers)?;
    if end < begin {
        return Err(format!(
            "{} comes before its {:?} marker",
            markers.end,
            markers.begin_prefix.trim_end()
        ));
    }
    let after_begin = readme[begin..]
        .find('\n')
        .map_or(readme.len(), |i| begin + i + 1);
    let mut out = String::with_capacity(readme.len() + block.len());
    out.push_str(&readme[..after_begin]);
    out.push_str(block);
    if !block.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&readme[end..]);
    Ok(out)
}

fn unique(text: &str, marker: &str, markers: &Markers) -> Result<usize, String> {
    let mut found = text.match_indices(marker).map(|(i, _)| i);
    let first = found.next().ok_or_else(|| {
        format!(
            "no {:?} marker line (add the two lines {:?} and {:?} where the block goes)",
            marker.trim_end(),
            markers.begin,
            markers.end
        )
    })?;
    if found.next().is_some() {
        return Err(format!(
            "the {:?} marker appears more than once",
            marker.trim_end()
        ));
    }
    Ok(first)
}

/// Checks, before anything runs, that `readme` can be updated.
pub fn check(readme: &Path, name: Option<&str>) -> Result<(), String> {
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    splice(&text, &Markers::of(name), "").map_err(|e| format!("{}: {e}", readme.display()))?;
    let meta = std::fs::metadata(readme).map_err(|e| e.to_string())?;
    if meta.permissions().readonly() {
        return Err(format!("{} is read-only", readme.display()));
    }
    Ok(())
}

/// The charts the block shows, when the run drew them: file and alt text.
pub const CHARTS: [(&str, &str); 2] = [
    (THROUGHPUT_CHART, "Requests per second per model"),
    (
        CAPACITY_CHART,
        "Load each model holds with p99 within the target",
    ),
];

/// The block: where and when it was measured, the summary table, the
/// baseline ratios and the targets if the run had them, the charts (alt
/// text, and path relative to the README).
pub fn block(
    results: &BenchResults,
    analysis: &Analysis,
    markers: &Markers,
    charts: &[(&str, String)],
) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Written by `{}` from a real run, not edited by hand. {}\n\n",
        markers.command,
        markdown::provenance(results)
    ));
    if !results.complete {
        out.push_str("**Incomplete: that run was interrupted.**\n\n");
    }
    out.push_str(&markdown::summary_table(analysis).markdown());
    if let Some(b) = &analysis.baseline {
        out.push_str(&format!(
            "\nServer CPU per request against {} (ratios: {}):\n\n",
            b.baseline, b.definition
        ));
        out.push_str(&markdown::baseline_table(b).markdown());
    }
    if let Some(t) = &analysis.targets {
        out.push_str(&format!("\nTargets `{}` ({}):\n\n", t.set, t.about));
        out.push_str(&markdown::targets_table(t).markdown());
    }
    for (what, chart) in charts {
        out.push_str(&format!("\n![{what}]({chart})\n"));
    }
    out
}

/// Writes `charts` (file name, SVG: those of [`CHARTS`]) under
/// [`CHART_DIR`] next to `readme` and rewrites the README's block (the main one, or the one called
/// `name`); returns the files written.
pub fn update(
    readme: &Path,
    name: Option<&str>,
    results: &BenchResults,
    analysis: &Analysis,
    charts: &[(&str, &[u8])],
) -> Result<Vec<PathBuf>, String> {
    let markers = Markers::of(name);
    let dir = readme.parent().unwrap_or(Path::new("."));
    let mut written = Vec::new();
    let mut links = Vec::new();
    if !charts.is_empty() {
        let folder = dir.join(CHART_DIR);
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        for (file, svg) in charts {
            let alt = CHARTS.iter().find(|(f, _)| f == file).map_or("", |c| c.1);
            let file = name.map_or(file.to_string(), |name| format!("{name}-{file}"));
            let path = folder.join(&file);
            std::fs::write(&path, svg)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
            links.push((alt, format!("{CHART_DIR}/{file}")));
        }
    }
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    let new = splice(&text, &markers, &block(results, analysis, &markers, &links))?;
    std::fs::write(readme, new).map_err(|e| format!("cannot write {}: {e}", readme.display()))?;
    written.push(readme.to_path_buf());
    Ok(written)
}
