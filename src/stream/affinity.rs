//! Pinning the stream's threads to a board profile's cores
//! (`sched_setaffinity(2)` through nix; Linux only, a no-op elsewhere).
//!
//! A core the machine does not have, or a set the kernel refuses, is logged
//! and the thread keeps running where the scheduler puts it: a wrong profile
//! must not stop the stream.

/// The calling thread's affinity before [`pin`], to give back with [`restore`].
#[cfg(target_os = "linux")]
pub struct Previous(Option<nix::sched::CpuSet>);

#[cfg(not(target_os = "linux"))]
pub struct Previous;

/// Pins the calling thread to `cores` (any of them); `None` or an empty
/// list leaves it alone.
#[cfg(target_os = "linux")]
pub fn pin(cores: Option<&[usize]>, thread: &str) -> Previous {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;

    let Some(cores) = cores.filter(|c| !c.is_empty()) else {
        return Previous(None);
    };
    let mut set = CpuSet::new();
    for &c in cores {
        if let Err(e) = set.set(c) {
            log::warn!("{thread} thread: core {c} cannot be pinned ({e}): left unpinned");
            return Previous(None);
        }
    }
    let before = sched_getaffinity(Pid::from_raw(0)).ok();
    match sched_setaffinity(Pid::from_raw(0), &set) {
        Ok(()) => {
            log::info!("{thread} thread pinned to cores {cores:?}");
            Previous(before)
        }
        Err(e) => {
            log::warn!("{thread} thread: pinning to cores {cores:?} failed ({e}): left unpinned");
            Previous(None)
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin(cores: Option<&[usize]>, thread: &str) -> Previous {
    if cores.is_some_and(|c| !c.is_empty()) {
        log::warn!("{thread} thread: pinning needs Linux: left unpinned");
    }
    Previous
}

/// Gives the calling thread back the affinity [`pin`] found.
#[cfg(target_os = "linux")]
pub fn restore(previous: Previous) {
    if let Some(set) = previous.0 {
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
            log::warn!("restoring the inference thread's affinity failed ({e})");
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn restore(_previous: Previous) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use nix::sched::sched_getaffinity;
    use nix::unistd::Pid;

    fn current() -> Vec<usize> {
        let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect()
    }

    #[test]
    fn pins_and_restores_the_calling_thread() {
        std::thread::spawn(|| {
            let before = current();
            let first = before[0];
            let previous = pin(Some(&[first]), "test");
            assert_eq!(current(), [first]);
            restore(previous);
            assert_eq!(current(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_impossible_core_leaves_the_thread_alone() {
        std::thread::spawn(|| {
            let before = current();
            let previous = pin(Some(&[nix::sched::CpuSet::count() + 5]), "test");
            assert_eq!(current(), before);
            restore(previous);
            // none of the machine's cores: the kernel refuses, nothing changes
            let absent = before.iter().max().unwrap() + 1;
            if absent < nix::sched::CpuSet::count() {
                let previous = pin(Some(&[absent]), "test");
                restore(previous);
            }
            assert_eq!(current(), before);
        })
        .join()
        .unwrap();
    }
}
