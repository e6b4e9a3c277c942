//! `--update-readme`: rewrites the block between two marker comments in the
//! README with the summary table and one chart of this run, so that the
//! README's figures come from the command, not from an editor. Everything
//! outside the markers is left byte for byte.

use std::path::{Path, PathBuf};

use super::analysis::Analysis;
use super::export::markdown;
use super::results::BenchResults;

/// The line that opens the block.
pub const BEGIN: &str =
    "<!-- bench:begin (written by `servelab bench --update-readme`; edits here are overwritten) -->";
/// The line that closes it.
pub const END: &str = "<!-- bench:end -->";
/// Where the chart goes, relative to the README's folder.
pub const CHART_DIR: &str = "docs/bench";

/// Replaces what lies between the marker lines of `readme` with `block`.
/// Fails when the markers are missing, repeated or out of order.
pub fn splice(readme: &str, block: &str) -> Result<String, String> {
    let begin = unique(readme, "<!-- bench:begin")?;
    let end = unique(readme, END)?;
    if end < begin {
        return Err(format!("{END} comes before the bench:begin marker"));
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

fn unique(text: &str, marker: &str) -> Result<usize, String> {
    let mut found = text.match_indices(marker).map(|(i, _)| i);
    let first = found.next().ok_or_else(|| {
        format!("no {marker:?} marker line (add the two lines {BEGIN:?} and {END:?} where the block goes)")
    })?;
    if found.next().is_some() {
        return Err(format!("the {marker:?} marker appears more than once"));
    }
    Ok(first)
}

/// Checks, before anything runs, that `readme` can be updated.
pub fn check(readme: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    splice(&text, "").map_err(|e| format!("{}: {e}", readme.display()))?;
    let meta = std::fs::metadata(readme).map_err(|e| e.to_string())?;
    if meta.permissions().readonly() {
        return Err(format!("{} is read-only", readme.display()));
    }
    Ok(())
}

/// The block: where and when it was measured, the summary table, the chart.
pub fn block(results: &BenchResults, analysis: &Analysis, chart: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Written by `servelab bench --update-readme` from a real run, not edited by hand. {}\n\n",
        markdown::provenance(results)
    ));
    if !results.complete {
        out.push_str("**Incomplete: that run was interrupted.**\n\n");
    }
    out.push_str(&markdown::summary_table(&analysis.summary));
    if let Some(chart) = chart {
        out.push_str(&format!("\n![Requests per second per model]({chart})\n"));
    }
    out
}

/// Writes `chart_svg` (if any) under [`CHART_DIR`] next to `readme` and
/// rewrites the README's block; returns the files written.
pub fn update(
    readme: &Path,
    results: &BenchResults,
    analysis: &Analysis,
    chart: Option<(&str, &[u8])>,
) -> Result<Vec<PathBuf>, String> {
    let dir = readme.parent().unwrap_or(Path::new("."));
    let mut written = Vec::new();
    let link = match chart {
        Some((name, svg)) => {
            let folder = dir.join(CHART_DIR);
            std::fs::create_dir_all(&folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
            let path = folder.join(name);
            std::fs::write(&path, svg)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
            Some(format!("{CHART_DIR}/{name}"))
        }
        None => None,
    };
    let text = std::fs::read_to_string(readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    let new = splice(&text, &block(results, analysis, link.as_deref()))?;
    std::fs::write(readme, new).map_err(|e| format!("cannot write {}: {e}", readme.display()))?;
    written.push(readme.to_path_buf());
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> String {
        format!("# Title\n\nBefore.\n\n{BEGIN}\nold table\nold chart\n{END}\n\nAfter.\n")
    }

    #[test]
    fn splice_replaces_only_the_block_and_is_idempotent() {
        let once = splice(&doc(), "new table\n").unwrap();
        assert_eq!(
            once,
            format!("# Title\n\nBefore.\n\n{BEGIN}\nnew table\n{END}\n\nAfter.\n")
        );
        assert_eq!(splice(&once, "new table\n").unwrap(), once);
        let (head, tail) = doc()
            .split_once(BEGIN)
            .map(|(h, t)| (h.to_string(), t.to_string()))
            .unwrap();
        assert!(once.starts_with(&head));
        assert!(once.ends_with(tail.split_once(END).unwrap().1));
        // A block without a final newline still leaves the end marker on its own line.
        assert!(splice(&doc(), "x").unwrap().contains(&format!("x\n{END}")));
    }

    #[test]
    fn splice_refuses_bad_markers() {
        assert!(splice("no markers", "x").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
        assert!(splice(&format!("{BEGIN}\n{BEGIN}\n{END}\n"), "x").is_err());
    }
}
