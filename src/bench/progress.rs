//! The progress bar on stderr: which cell is running and about how long is
//! left; where stderr is not a terminal, one line per scenario instead.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of a bench, in planned milliseconds.
pub struct Progress {
    bar: ProgressBar,
    lines: bool,
    scenario: String,
}

impl Progress {
    /// A bar for a plan expected to take `total`.
    pub fn new(total: Duration) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total.as_millis() as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {percent:>3}%  {msg}  (about {eta} left)",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        if terminal {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            bar,
            lines: !terminal,
            scenario: String::new(),
        }
    }

    /// A cell starts: `scenario`, its point and server, run `run` of `runs`.
    pub fn start(&mut self, scenario: &str, point: &str, server: &str, run: u32, runs: u32) {
        self.bar.set_message(format!(
            "{scenario} · {point} · {server} · run {run}/{runs}"
        ));
        if self.lines && self.scenario != scenario {
            eprintln!("servelab bench: {scenario} ...");
        }
        self.scenario = scenario.to_string();
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
