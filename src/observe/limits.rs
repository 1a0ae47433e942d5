//! Process limits set at start.

/// Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit,
/// best effort: more room for sessions, exports and LLM calls next to the
/// metrics server's connections. Returns the (old, new) soft limit when it
/// was raised, `None` when it already was at the hard limit or could not be
/// changed. Unix only; elsewhere it does nothing.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let old = limit.rlim_cur;
    let wanted = limit.rlim_max;
    // macOS refuses RLIM_INFINITY for this limit; OPEN_MAX is its ceiling.
    #[cfg(target_os = "macos")]
    let wanted = wanted.min(libc::OPEN_MAX as libc::rlim_t);
    if wanted <= old {
        return None;
    }
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        tracing::debug!(target: "metrics", error = %std::io::Error::last_os_error(), "cannot raise RLIMIT_NOFILE");
        return None;
    }
    tracing::info!(target: "metrics", from = old, to = wanted, "raised the open files limit");
    #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
    Some((u64::from(old), u64::from(wanted)))
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        raise_open_files_limit();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        if cfg!(target_os = "linux") {
            assert_eq!(limit.rlim_cur, limit.rlim_max);
        }
        // Again: nothing left to raise.
        assert_eq!(raise_open_files_limit(), None);
    }
}
