//! servelab: one sans-IO HTTP/1.1 core served by several concurrency models,
//! a load generator that hides nothing, and a benchmark harness.

#![warn(missing_docs)]

pub mod bench;
pub mod child;
pub mod cpus;
pub mod fd_limit;
pub mod http;
pub mod load;
pub mod models;
pub mod procfs;
pub mod responder;
pub mod route;
pub mod signal;
pub mod timerfd;
pub mod units;
