//! How many connections the descriptor limit leaves room for, and raising that limit.

use std::io;

/// Descriptors kept for everything but client connections (listener, epoll, stdio,
/// files), on top of three per database connection (a SQLite connection holds up to
/// three files; a server database one socket).
pub(super) const RESERVED_DESCRIPTORS: usize = 64;
/// The bound actually enforced: the configured one, lowered to what the descriptor limit
/// leaves after `reserved` descriptors (never below 1).
pub fn connection_limit(configured: usize, descriptors: Option<u64>, reserved: usize) -> usize {
    let Some(descriptors) = descriptors else {
        return configured;
    };
    let available = usize::try_from(descriptors)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserved)
        .max(1);
    if available < configured {
        tracing::warn!(
            configured,
            enforced = available,
            descriptor_limit = descriptors,
            "HTTP_MAX_CONNECTIONS is above what the open-file limit allows; lowered"
        );
        available
    } else {
        tracing::info!(max_connections = configured, "connection limit");
        configured
    }
}

/// Raises the soft open-file limit to the hard one (a process may always do so) and
/// returns the soft limit now in force; `None` where it cannot be read.
#[cfg(target_os = "linux")]
pub fn raise_descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "could not read the open-file limit");
        return None;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = before,
                to = raised.rlim_cur,
                "raised the open-file limit to its hard limit"
            );
            return Some(raised.rlim_cur);
        }
        tracing::warn!(error = %io::Error::last_os_error(), soft = before, "could not raise the open-file limit");
    } else {
        tracing::info!(
            limit = before,
            "open-file limit (already at its hard limit)"
        );
    }
    Some(before)
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_descriptor_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_room_for_the_reserved_descriptors() {
        assert_eq!(connection_limit(4096, Some(1024), 94), 930);
        assert_eq!(connection_limit(100, Some(1024), 94), 100);
        assert_eq!(connection_limit(4096, None, 94), 4096);
        assert_eq!(connection_limit(4096, Some(10), 94), 1);
    }
}
