//! The progress bar on stderr: which cell is running and about how long is
//! left; where stderr is not a terminal, one line per scenario instead.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::scenarios::PlannedCell;

/// Progress of a bench, in planned milliseconds.
pub struct Progress {
    bar: ProgressBar,
    lines: bool,
    scenario: String,
}

impl Progress {
    /// A bar for a plan expected to take `total`.
    pub fn new(total: Duration) -> Progress {
        // On stderr, which indicatif hides where it is not a terminal.
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {percent:>3}%  {msg}  (about {eta} left)",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        let terminal = std::io::stderr().is_terminal();
        if terminal {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            bar,
            lines: !terminal,
            scenario: String::new(),
        }
    }

    /// `cell` starts against `server`.
    pub fn start(&mut self, cell: &PlannedCell, server: &str) {
        let (scenario, point) = (cell.scenario.id.name(), cell.point().label);
        let (run, runs) = (cell.run, cell.runs);
        let message = format!("{scenario} · {point} · {server} · run {run}/{runs}");
        self.bar.set_message(message);
        if self.lines && self.scenario != scenario {
            eprintln!("servelab bench: {scenario} ...");
        }
        self.scenario = scenario;
    }

    /// A cell planned to take `planned` is done.
    pub fn done(&self, planned: Duration) {
        self.bar.inc(planned.as_millis() as u64);
    }

    /// Prints a line above the bar.
    pub fn note(&self, text: &str) {
        self.bar.suspend(|| eprintln!("servelab bench: {text}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
