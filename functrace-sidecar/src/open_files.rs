//! The process's budget of file descriptors. Out of descriptors, everything fails at once:
//! accepts, connections to upstreams, the spans file. So, as HAProxy does, the connection
//! limits are fitted inside the budget: the sidecar runs out of connection places (where
//! idle connections make room and busy ones are refused with 503, `limit.rs`) before it runs
//! out of descriptors.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept for the process itself: standard streams, the runtime's, listeners, the
/// spans file and config, connections to a collector.
const RESERVED: u64 = 64;

/// The kernel's default ceiling (`fs.nr_open`), for a hard limit that says "unlimited".
const NR_OPEN: u64 = 1 << 20;

/// Raises the soft limit of open files to the hard one, as Go's runtime does at start: the
/// soft limit (often 1024) is kept low for programs that use `select`, which this one does
/// not. Answers the soft limit in effect.
pub fn raise_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(NR_OPEN);
    let maximum = limit.maximum.unwrap_or(NR_OPEN);
    if current < maximum {
        let raised = Rlimit {
            current: Some(maximum),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return maximum;
        }
    }
    current
}

/// The soft limit of open files in effect.
pub fn limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(NR_OPEN)
}

/// The proxied connections that fit in `open_files` beside the reserve and the admin
/// listener's connections: each may hold two descriptors, its own and one to an upstream.
pub fn connections_that_fit(open_files: u64, admin_connections: usize) -> usize {
    let admin = u64::try_from(admin_connections).unwrap_or(u64::MAX);
    let spare = open_files.saturating_sub(RESERVED).saturating_sub(admin);
    usize::try_from(spare / 2).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_in_what_is_left_two_descriptors_each() {
        assert_eq!(connections_that_fit(1024, 32), (1024 - 64 - 32) / 2);
        assert_eq!(connections_that_fit(65_536, 32), (65_536 - 64 - 32) / 2);
        // Too few descriptors for anything: one connection still, not none.
        assert_eq!(connections_that_fit(50, 32), 1);
    }

    #[test]
    fn the_raised_limit_is_the_one_in_effect_and_no_lower() {
        let before = limit();
        let raised = raise_limit();
        assert_eq!(raised, limit());
        assert!(raised >= before);
    }
}
