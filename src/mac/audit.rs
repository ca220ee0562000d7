//! `audit`: every MCS level in use on the host, by process and by root filesystem, with
//! collisions (one two-category level used by two different owners) and dominating labels
//! (a container workload whose level covers another owner's categories) flagged.
//! Reads `/proc/*/attr/current`, `/proc/*/cgroup` and the labels of the pool's root
//! filesystems; needs root to see every process.

use crate::mcs::{split_context, Level};
use crate::verify::{HostRoot, LabelSource};
use std::collections::BTreeMap;
use std::path::Path;

/// Types of container and VM workloads: these must never share or dominate categories.
pub const WORKLOAD_TYPES: &[&str] = &[
    "container_t",
    "svirt_lxc_net_t",
    "svirt_t",
    "svirt_tcg_t",
    "spc_t",
    "container_init_t",
    "svirt_sandbox_file_t",
    "container_file_t",
    "svirt_image_t",
];

/// Who holds a label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Use {
    /// The container name (from the cgroup path or the rootfs directory), or `host`.
    pub owner: String,
    /// `process PID (comm)` or `rootfs PATH`.
    pub what: String,
    pub label: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Audit {
    /// level -> its uses
    pub levels: BTreeMap<String, Vec<Use>>,
    pub problems: Vec<String>,
}

pub use crate::facts::container_of;

/// Judges a list of label uses.
pub fn judge(uses: Vec<Use>) -> Audit {
    let mut a = Audit::default();
    let mut workloads: Vec<(Use, Level)> = vec![];
    for u in uses {
        let Some((ty, level_text)) = split_context(&u.label) else { continue };
        let Ok((_, high)) = Level::parse_range(level_text) else { continue };
        if WORKLOAD_TYPES.contains(&ty) {
            if u.what.starts_with("process") && high.categories.len() < 2 {
                a.problems.push(format!("{} {} runs as {} with fewer than two categories", u.owner, u.what, u.label));
            }
            workloads.push((u.clone(), high.clone()));
        }
        a.levels.entry(high.to_string()).or_default().push(u);
    }
    for (level, uses) in &a.levels {
        let owners: std::collections::BTreeSet<&str> = uses.iter().map(|u| u.owner.as_str()).collect();
        let cats = Level::parse(level).map(|l| l.categories.len()).unwrap_or(0);
        if cats >= 2 && owners.len() > 1 {
            a.problems
                .push(format!("collision: {level} is used by {}", owners.into_iter().collect::<Vec<_>>().join(", ")));
        }
    }
    for (u, high) in &workloads {
        for (v, other) in &workloads {
            if u.owner != v.owner && other.categories.len() >= 2 && high != other && high.dominates(other) {
                let p = format!("dominance: {} ({}, {}) dominates {} ({})", u.owner, u.what, u.label, v.owner, v.label);
                if !a.problems.contains(&p) {
                    a.problems.push(p);
                }
            }
        }
    }
    a
}

/// Collects the label uses on the host: every process with a label, and every root
/// filesystem directly under `pool`.
pub fn collect(host: &HostRoot, labels: &dyn LabelSource, pool: &Path) -> Vec<Use> {
    let mut uses = vec![];
    if let Ok(entries) = std::fs::read_dir(host.proc()) {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Some(label) = labels.process_label(pid) else { continue };
            let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            uses.push(Use {
                owner: container_of(&cgroup).unwrap_or_else(|| "host".into()),
                what: format!("process {pid} ({})", comm.trim()),
                label,
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(pool) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().is_dir() {
                continue;
            }
            if let Some(label) = labels.file_label(&e.path()) {
                uses.push(Use { owner: name, what: format!("rootfs {}", e.path().display()), label });
            }
        }
    }
    uses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(owner: &str, what: &str, label: &str) -> Use {
        Use { owner: owner.into(), what: what.into(), label: label.into() }
    }

    #[test]
    fn finds_container_from_cgroup() {
        assert_eq!(container_of("4:memory:/machine/lxc-123-web1.libvirt-lxc\n").as_deref(), Some("web1"));
        assert_eq!(
            container_of("0::/machine.slice/machine-lxc\\x2d1121\\x2dl\\x2ds01.scope/init.scope\n").as_deref(),
            Some("l-s01")
        );
        assert_eq!(container_of("0::/system.slice/sshd.service\n"), None);
        assert_eq!(container_of("4:memory:/\n"), None);
    }

    #[test]
    fn clean_host_has_no_problems() {
        let a = judge(vec![
            u("a", "process 10 (init)", "system_u:system_r:container_t:s0:c1,c2"),
            u("a", "rootfs /p/a", "system_u:object_r:container_file_t:s0:c1,c2"),
            u("b", "process 20 (init)", "system_u:system_r:container_t:s0:c1,c3"),
            u("host", "process 1 (systemd)", "system_u:system_r:init_t:s0-s0:c0.c1023"),
        ]);
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        assert_eq!(a.levels["s0:c1,c2"].len(), 2);
    }

    #[test]
    fn flags_collisions_dominance_and_single_categories() {
        let a = judge(vec![
            u("a", "process 10 (init)", "system_u:system_r:container_t:s0:c1,c2"),
            u("b", "process 20 (init)", "system_u:system_r:container_t:s0:c1,c2"),
            u("c", "process 30 (sh)", "system_u:system_r:container_t:s0:c0.c1023"),
            u("d", "process 40 (sh)", "system_u:system_r:container_t:s0:c5"),
        ]);
        let p = a.problems.join("\n");
        assert!(p.contains("collision: s0:c1,c2 is used by a, b"), "{p}");
        assert!(p.contains("dominance: c"), "{p}");
        assert!(p.contains("d process 40 (sh) runs as") && p.contains("fewer than two"), "{p}");
    }
}
