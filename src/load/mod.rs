//! `servelab load`: the load generator (placeholder until it lands).

use std::process::ExitCode;

/// Command-line arguments of `servelab load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Target URL, e.g. http://127.0.0.1:9001/
    pub url: String,
}

/// Runs the load generator.
pub fn run(_args: LoadArgs) -> ExitCode {
    eprintln!("servelab load: not implemented yet");
    ExitCode::FAILURE
}
