//! Why a load run could not start. Failures *during* a run are not errors of
//! the run: they are counted in the report.

use std::fmt;
use std::net::SocketAddr;

/// A reason [`super::run_load`] refused to start or could not run.
#[derive(Debug)]
pub enum LoadError {
    /// The URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The scheme is not `http`.
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
        /// What to do instead.
        why: String,
    },
    /// The host does not resolve.
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// The host resolves outside loopback and `allow_remote` is off.
    Remote {
        /// The host name.
        host: String,
        /// What it resolved to.
        addrs: Vec<SocketAddr>,
    },
    /// Not one connection could be opened before the run.
    Connect {
        /// The addresses tried.
        addrs: Vec<SocketAddr>,
        /// The last failure.
        why: String,
    },
    /// A setting is out of range (zero connections, a zero rate, ...).
    InvalidConfig(String),
    /// The operating system refused a resource (epoll, timerfd, a thread).
    Io(std::io::Error),
}

impl LoadError {
    /// Whether the command line itself is wrong (a URL, scheme, setting,
    /// header or method that can never work, or a remote target without
    /// `--allow-remote`), as opposed to the world (a host that does not
    /// resolve or answer, a refused resource). `servelab load` exits 2 for
    /// the first kind, as for any flag clap rejects, and 1 for the second.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LoadError::InvalidUrl { .. }
                | LoadError::UnsupportedScheme { .. }
                | LoadError::Remote { .. }
                | LoadError::InvalidConfig(_)
        )
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::InvalidUrl { url, why } => write!(f, "invalid URL {url:?}: {why}"),
            LoadError::UnsupportedScheme { url, scheme, why } => {
                write!(f, "unsupported scheme {scheme:?} in {url:?}: {why}")
            }
            LoadError::Resolve { host, why } => write!(f, "cannot resolve host {host:?}: {why}"),
            LoadError::Remote { host, addrs } => write!(
                f,
                "refusing to load {host:?}: it resolves to {} outside loopback \
                 (127.0.0.0/8, ::1); pass --allow-remote if you really mean to load another machine",
                join(addrs)
            ),
            LoadError::Connect { addrs, why } => write!(
                f,
                "cannot connect to {}: {why} (is the server running?)",
                join(addrs)
            ),
            LoadError::InvalidConfig(why) => f.write_str(why),
            LoadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> Self {
        LoadError::Io(e)
    }
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
