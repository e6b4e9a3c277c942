//! One table value for every table the bench writes, and its two writers:
//! Markdown (REPORT.md, the README block) and the terminal (comfy-table).

use comfy_table::presets::UTF8_FULL_CONDENSED;

/// A header and rows of cell texts, as they read (the writers escape them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// The header's cells (all empty: a table without a header line's text).
    pub header: Vec<String>,
    /// The rows, each as wide as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header and no rows yet.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as Markdown, cells escaped.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            if cells.iter().all(String::is_empty) {
                format!("|{}\n", " |".repeat(cells.len()))
            } else {
                let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
                format!("| {} |\n", cells.join(" | "))
            }
        };
        let mut out = line(&self.header);
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// The table for a terminal: aligned, without Markdown's `**`.
    pub fn terminal(&self) -> String {
        let plain = |cells: &[String]| -> Vec<String> {
            cells.iter().map(|c| c.replace("**", "")).collect()
        };
        let mut t = comfy_table::Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_header(plain(&self.header));
        for row in &self.rows {
            t.add_row(plain(row));
        }
        t.to_string()
    }
}

/// Text made safe for a Markdown table cell.
pub fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
