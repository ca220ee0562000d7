//! cgroup v1 housekeeping for hosts whose PID 1 is not systemd but which mount a
//! `name=systemd` hierarchy (this project's CI machines).

use crate::host::HostRoot;
use std::path::{Path, PathBuf};

/// On a host whose PID 1 is not systemd but which mounts a `name=systemd` cgroup hierarchy
/// (this project's CI machines), libvirt 9.0 puts every container at that hierarchy's root
/// and chowns it to the container's mapped root. A user-namespaced systemd in the container
/// then creates `init.scope` and friends there, owned by its uid, and they stay after it
/// stops: the next container with another map fails with "Failed to create /init.scope
/// control group: Permission denied". Before such a start, remove the empty cgroups that a
/// user-namespaced container left there (owned by a uid >= 65536, no processes). Nothing
/// else is touched; on systemd hosts this does nothing.
pub fn prune_stale_systemd_cgroups(host: &HostRoot) -> usize {
    stale_systemd_cgroups(host).iter().filter(|p| std::fs::remove_dir(p).is_ok()).count()
}

/// The cgroups [`prune_stale_systemd_cgroups`] removes, deepest first: directories under the
/// `name=systemd` root owned by a uid >= 65536 whose `cgroup.procs` is empty and whose
/// subdirectories are all stale too. Empty on systemd hosts.
pub fn stale_systemd_cgroups(host: &HostRoot) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if crate::host::pid1_is_systemd(&host.proc()) {
        return vec![];
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        let mut all_stale = true;
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && !walk(&e.path(), out) {
                all_stale = false;
            }
        }
        let stale = all_stale
            && std::fs::read_to_string(dir.join("cgroup.procs")).map(|s| s.trim().is_empty()).unwrap_or(false)
            && std::fs::metadata(dir).map(|m| m.uid() >= 65536).unwrap_or(false);
        if stale {
            out.push(dir.to_path_buf());
        }
        stale
    }
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(host.sys().join("fs/cgroup/systemd")) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), &mut out);
            }
        }
    }
    out
}

/// On such a host (see [`prune_stale_systemd_cgroups`]), a running user-namespaced
/// container whose map differs from `uid` owns the shared `name=systemd` cgroups, and a
/// systemd started with another map cannot use them. Returns who holds them.
pub fn systemd_cgroup_holder(host: &HostRoot, uid: u32) -> Option<String> {
    if crate::host::pid1_is_systemd(&host.proc()) {
        return None;
    }
    let root = host.sys().join("fs/cgroup/systemd");
    for e in std::fs::read_dir(&root).ok()?.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().map(str::trim).filter(|p| !p.is_empty()) {
            let proc_dir = host.proc().join(pid);
            // The holder's user namespace: the host uid its root maps to.
            let map = std::fs::read_to_string(proc_dir.join("uid_map")).unwrap_or_default();
            let Some(target) =
                map.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            if target == 0 || target == uid {
                continue;
            }
            let cg = std::fs::read_to_string(proc_dir.join("cgroup")).unwrap_or_default();
            let who = crate::facts::container_of(&cg).unwrap_or_else(|| format!("process {pid}"));
            return Some(format!("{who} (user namespace at host uid {target})"));
        }
    }
    None
}
