//! The open-files limit (`RLIMIT_NOFILE`): every connection holds a
//! descriptor, so the bench, its servers, the load generator and the tests
//! raise the soft limit, which is often 1024, towards the hard one.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft open-files limit to `wanted` (`None`: the hard limit),
/// never past the hard limit and never lower than it is; returns the soft
/// limit now in force (`u64::MAX`: unlimited). Async-signal-safe, two
/// system calls and no allocation: the bench's server children call it
/// between fork and exec.
pub fn raise_to(wanted: Option<u64>) -> u64 {
    let limit = getrlimit(Resource::Nofile);
    // rustix's None is RLIM_INFINITY, which is u64::MAX.
    let soft = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let target = wanted.map_or(hard, |w| w.min(hard));
    if soft >= target {
        return soft;
    }
    let raised = Rlimit {
        current: Some(target),
        ..limit
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_towards_the_wanted_count_and_no_further() {
        let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
        let soft = raise_to(Some(1));
        assert!(soft >= 1, "never lowered");
        assert_eq!(raise_to(None), hard);
        assert_eq!(raise_to(Some(hard.saturating_add(1))), hard);
    }
}
