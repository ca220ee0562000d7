//! `doctor`: what this host has and lacks for lxcprov, each problem with its fix.
//! Reads host files and asks libvirt; changes nothing.

use crate::exec::which;
use crate::libvirt::{Hypervisor, VirtHypervisor};
use serde::Serialize;

#[derive(Serialize, PartialEq, Eq, Clone, Copy, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Serialize, Debug)]
pub struct Item {
    pub id: &'static str,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn item(id: &'static str, level: Level, detail: impl Into<String>, fix: Option<&str>) -> Item {
    Item { id, level, detail: detail.into(), fix: fix.map(str::to_string) }
}

/// Reads `key = value` from libvirt's lxc.conf (commented lines are defaults).
fn lxc_conf_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// The cgroup layout: v1, v2 or hybrid.
/// The host's cgroup layout, from /proc/self/mounts: `v2 (unified)`, `v1`, hybrid, unknown.
pub fn cgroup_layout() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let v2_root =
        mounts.lines().any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup") && l.split(' ').nth(2) == Some("cgroup2"));
    let v1 = mounts.lines().any(|l| l.split(' ').nth(2) == Some("cgroup"));
    let unified = mounts.lines().any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup/unified"));
    match (v2_root, v1, unified) {
        (true, _, _) => "v2 (unified)".into(),
        (false, true, true) => "v1 with an empty cgroup2 at /sys/fs/cgroup/unified (hybrid)".into(),
        (false, true, false) => "v1".into(),
        _ => "unknown".into(),
    }
}

pub fn checks(uri: &str) -> Vec<Item> {
    let mut v = vec![];
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    v.push(if root {
        item("root", Level::Ok, "running as root", None)
    } else {
        item("root", Level::Fail, "not root: bootstrap, create and verify need root", Some("run lxcprov with sudo"))
    });
    match VirtHypervisor::connect(uri) {
        Ok(hv) => {
            v.push(item("libvirtd", Level::Ok, format!("libvirtd answers on {uri}"), None));
            match hv.secmodel() {
                Ok(m) if m == "selinux" || m == "apparmor" => {
                    v.push(item("secmodel", Level::Ok, format!("libvirt security model: {m}"), None))
                }
                Ok(m) => v.push(item(
                    "secmodel",
                    Level::Warn,
                    format!("libvirt security model: {m}: containers run without sVirt (only --security none works)"),
                    Some("use a SELinux host (scripts/selinux-lab.sh) for the paper's MCS separation"),
                )),
                Err(e) => v.push(item("secmodel", Level::Fail, format!("cannot read capabilities: {e:#}"), None)),
            }
            match hv.nwfilter_exists("clean-traffic") {
                Ok(true) => v.push(item("nwfilter", Level::Ok, "nwfilter clean-traffic is defined", None)),
                _ => v.push(item(
                    "nwfilter",
                    Level::Fail,
                    "nwfilter clean-traffic is not defined (the web and hardened profiles use it)",
                    Some("apt-get install libvirt-daemon-config-nwfilter ebtables, then scripts/setup-host.sh"),
                )),
            }
        }
        Err(e) => v.push(item(
            "libvirtd",
            Level::Fail,
            format!("{e:#}"),
            Some("scripts/setup-host.sh starts libvirtd (or `systemctl start libvirtd`)"),
        )),
    }
    v.push(match selinux::current_mode() {
        selinux::SELinuxMode::Enforcing => item("selinux", Level::Ok, "SELinux enforcing", None),
        selinux::SELinuxMode::Permissive => {
            item("selinux", Level::Warn, "SELinux permissive: denials are logged, not enforced", Some("setenforce 1"))
        }
        _ => item(
            "selinux",
            Level::Warn,
            "SELinux is not running: SELinux profiles are refused; use --security none or a SELinux host",
            Some("scripts/selinux-lab.sh shows sVirt on a SELinux guest"),
        ),
    });
    let lxc_contexts = crate::host::lxc_contexts_path(std::path::Path::new("/etc")).display().to_string();
    if std::path::Path::new(&lxc_contexts).exists() {
        v.push(item("lxc_contexts", Level::Ok, format!("{lxc_contexts} present"), None));
    } else if crate::host::selinux_enabled() {
        v.push(item(
            "lxc_contexts",
            Level::Fail,
            format!("{lxc_contexts} missing"),
            Some("install the policy's container module"),
        ));
    } else {
        v.push(item("lxc_contexts", Level::Warn, format!("{lxc_contexts} missing (SELinux is off)"), None));
    }
    let layout = cgroup_layout();
    v.push(item("cgroups", Level::Ok, format!("cgroup layout: {layout}"), None));
    v.push(if layout.starts_with("v2") {
        item(
            "centos7",
            Level::Warn,
            "CentOS 7's systemd 219 needs cgroup v1: on this cgroup v2-only host a centos7 container does not boot",
            Some("use centos-stream9 or almalinux9 here, or boot the host with systemd.unified_cgroup_hierarchy=0"),
        )
    } else {
        item("centos7", Level::Ok, "cgroup v1 present: CentOS 7 (systemd 219) containers can boot", None)
    });
    if !crate::host::pid1_is_systemd(std::path::Path::new("/proc"))
        && std::path::Path::new("/sys/fs/cgroup/systemd/cgroup.procs").exists()
    {
        v.push(item(
            "name=systemd",
            Level::Warn,
            "PID 1 is not systemd but a name=systemd hierarchy is mounted: libvirt puts every container in its root, so systemd containers with different user-namespace maps cannot run side by side",
            Some("use the same idmap for containers that must run together (a lab's do), or a systemd host"),
        ));
    }
    let conf = std::fs::read_to_string("/etc/libvirt/lxc.conf").unwrap_or_default();
    let dc = lxc_conf_value(&conf, "security_default_confined").unwrap_or_else(|| "1 (default)".into());
    let rc = lxc_conf_value(&conf, "security_require_confined").unwrap_or_else(|| "0 (default)".into());
    let level = if dc.starts_with('0') { Level::Warn } else { Level::Ok };
    v.push(item(
        "lxc.conf",
        level,
        format!("security_default_confined = {dc}, security_require_confined = {rc}"),
        (level == Level::Warn).then_some(
            "set security_default_confined = 1 in /etc/libvirt/lxc.conf so no container starts unconfined by accident",
        ),
    ));
    for (tool, why, pkg) in [
        ("debootstrap", "Debian and Ubuntu root filesystems", "debootstrap"),
        ("dnf", "CentOS, Alma, Rocky and Fedora root filesystems", "dnf"),
        ("virsh", "lxcprov console", "libvirt-clients"),
        ("cp", "copying cached root filesystems", "coreutils"),
        ("tar", "--rootfs-from TARBALL", "tar"),
    ] {
        v.push(match which(tool) {
            Some(p) => item("tool", Level::Ok, format!("{tool}: {} ({why})", p.display()), None),
            None => Item {
                id: "tool",
                level: Level::Fail,
                detail: format!("{tool} missing ({why})"),
                fix: Some(format!("apt-get install {pkg}")),
            },
        });
    }
    for (keyring, pkg) in [
        ("/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"),
        ("/usr/share/keyrings/ubuntu-archive-keyring.gpg", "ubuntu-keyring (Ubuntu hosts, Debian 13 and later)"),
    ] {
        v.push(if std::path::Path::new(keyring).exists() {
            item("keyring", Level::Ok, format!("{keyring} present"), None)
        } else {
            Item {
                id: "keyring",
                level: Level::Warn,
                detail: format!("{keyring} missing: that distro cannot be verified"),
                fix: Some(format!("install {pkg}")),
            }
        });
    }
    v
}

/// Storage: the libvirt hook that materialises overlay containers at every start, and the
/// mode new containers get in `pool`, with why.
/// `uri` is libvirt's (for the hook probe), `state` lxcprov's state directory (where the
/// probe's scratch directory goes).
pub fn storage_checks(
    pool: &std::path::Path,
    choice: crate::storage::Choice,
    uri: &str,
    state: &std::path::Path,
) -> Vec<Item> {
    use crate::storage::hook::{self, Status};
    let mut v = vec![];
    let path = std::path::Path::new(hook::HOOK_PATH);
    let fix_install = "scripts/setup-host.sh writes the hook before it starts libvirtd, and starts libvirtd so that it shares mounts with the host; elsewhere run `lxcprov hook install`, then restart libvirtd";
    let st = hook::status(path);
    v.push(match &st {
        // This file is newer than libvirtd. libvirtd calls a hook if one existed when it
        // started, whatever file is there now (an older one may have been replaced), so the
        // file's age alone proves nothing: a probe domain's start tells.
        Status::Current(bin) => match libvirtd_predates(path) {
            Some(true) => hook_probe_item(path, bin, uri, state),
            _ => item("lxc_hook", Level::Ok, format!("{} runs {} hook lxc", path.display(), bin.display()), None),
        },
        Status::Foreign => item(
            "lxc_hook",
            Level::Warn,
            format!("{} is someone else's hook; lxcprov never replaces it, so overlay containers are mounted only by `lxcprov start`", path.display()),
            Some("add `lxcprov hook lxc \"$@\" || exit $?` to it"),
        ),
        s => item("lxc_hook", Level::Warn, format!("the libvirt hook {} is {}", path.display(), s.describe()), Some(fix_install)),
    });
    v.push(match crate::storage::for_new_containers(choice, pool) {
        Ok((true, why)) => item("storage", Level::Ok, format!("new containers in {}: {why}", pool.display()), None),
        Ok((false, why)) => item(
            "storage",
            Level::Warn,
            format!("new containers in {}: {why} (every container a full copy)", pool.display()),
            Some(fix_install),
        ),
        Err(e) => item("storage", Level::Fail, format!("{e:#}"), Some("use --storage copy")),
    });
    v
}

/// Fair shares: the containers' own `/proc` views (lxcfs) and the pids controller their
/// process limits need.
pub fn share_checks(host: &crate::host::HostRoot, lxcfs: &std::path::Path) -> Vec<Item> {
    let mut v = vec![];
    v.push(match crate::host::lxcfs_state(lxcfs) {
        crate::host::Lxcfs::Live => item("lxcfs", Level::Ok, format!("lxcfs is mounted at {}: containers see their own uptime, load, CPUs and /proc/stat (resources.proc_views: auto)", lxcfs.display()), None),
        crate::host::Lxcfs::Stale => item(
            "lxcfs",
            Level::Warn,
            format!("lxcfs's mount at {} is stale: its daemon is gone, and containers started while it ran read errors from /proc/uptime, /proc/stat and the rest", lxcfs.display()),
            Some("scripts/setup-host.sh mounts lxcfs again (umount -l the old mount, then lxcfs -l --enable-cfs); then restart the containers that use it"),
        ),
        crate::host::Lxcfs::Absent => item(
            "lxcfs",
            Level::Warn,
            format!("lxcfs is not mounted at {}: containers see the host's uptime, load and CPUs", lxcfs.display()),
            Some("scripts/setup-host.sh installs and starts lxcfs (apt-get install lxcfs; lxcfs -l --enable-cfs /var/lib/lxcfs)"),
        ),
    });
    let mkfs = ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"].iter().any(|p| std::path::Path::new(p).is_file());
    let loops = host.root.join("dev/loop-control").exists();
    v.push(if mkfs && loops {
        item("disk_quota", Level::Ok, "disk quotas (resources.disk, --disk) apply to overlay containers: their layer becomes a loop-mounted ext4 of that size of their own; copy storage has none", None)
    } else {
        item(
            "disk_quota",
            Level::Warn,
            format!("disk quotas cannot be made here ({})", if mkfs { "no /dev/loop-control" } else { "no mkfs.ext4" }),
            Some("apt-get install e2fsprogs, and load the loop module (modprobe loop)"),
        )
    });
    let tree = crate::cgroups::Tree::of(host);
    let pids_ok = match &tree {
        crate::cgroups::Tree::V1 { root } => root.join("pids/cgroup.procs").is_file(),
        crate::cgroups::Tree::V2 { root } | crate::cgroups::Tree::Systemd { root } => {
            std::fs::read_to_string(root.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "pids"))
        }
    };
    v.push(if pids_ok {
        item(
            "pids",
            Level::Ok,
            format!(
                "the pids controller is there ({}): pids_max and lab ceilings apply",
                match tree {
                    crate::cgroups::Tree::V1 { .. } => "cgroup v1",
                    crate::cgroups::Tree::V2 { .. } => "cgroup v2",
                    crate::cgroups::Tree::Systemd { .. } => "cgroup v2 under systemd",
                }
            ),
            None,
        )
    } else {
        item(
            "pids",
            Level::Warn,
            "the pids controller is missing: pids_max cannot be applied (containers with it fail to start)",
            Some("mount the pids cgroup controller"),
        )
    });
    v
}

/// User namespaces: whether isolated id maps (one range per container) apply on this host,
/// and the state of their registry in `state_dir`.
pub fn idmap_checks(host: &crate::host::HostRoot, state_dir: &std::path::Path, pool: &std::path::Path) -> Vec<Item> {
    let path = crate::idmap::registry_path(state_dir);
    let reg = match crate::idmap::read(&path) {
        Ok(r) => r,
        Err(e) => {
            return vec![item(
                "idmap",
                Level::Fail,
                format!("{e:#}"),
                Some("move the file aside; lxcprov starts a new registry (the containers keep their shifted trees)"),
            )];
        }
    };
    let n = reg.ranges.len();
    // Overlay storage shares one unshifted base among isolated maps through id-mapped
    // mounts: tried for real on the pool (root only).
    let existing = crate::storage::nearest_existing(pool);
    // SAFETY: geteuid has no preconditions.
    let mapped = match (crate::storage::idmapped_lower_impossible(pool), unsafe { libc::geteuid() } == 0) {
        (Some(why), _) => Some(item(
            "idmapped",
            Level::Warn,
            format!("isolated maps in overlay storage get a shifted base each: {why}"),
            None,
        )),
        (None, true) => Some(match crate::storage::idmapped::supported(&existing) {
            Ok(()) => item(
                "idmapped",
                Level::Ok,
                format!(
                    "isolated maps in overlay storage share the unshifted base through id-mapped mounts (tried on {})",
                    existing.display()
                ),
                None,
            ),
            Err(e) => item(
                "idmapped",
                Level::Warn,
                format!("isolated maps in overlay storage would need id-mapped mounts, which fail here: {e:#}"),
                Some("keep the pool on ext4, xfs or btrfs with Linux 5.19 or later"),
            ),
        }),
        (None, false) => None,
    };
    let mut v: Vec<Item> = mapped.into_iter().collect();
    v.insert(0, if crate::idmap::isolated_maps_run_side_by_side(host) {
        item(
            "idmap",
            Level::Ok,
            format!(
                "isolated id maps apply: labs give every student a 65536-id range of its own (create: --idmap isolated or security.idmap: isolated); {n} range(s) allocated in {}",
                path.display()
            ),
            None,
        )
    } else {
        item(
            "idmap",
            Level::Ok,
            format!(
                "shared id maps apply: on this host (cgroup v1 with a name=systemd hierarchy, PID 1 not systemd) systemd containers with different maps cannot run side by side, so labs share their profile's map; containers whose init is not systemd may still take isolated maps (--idmap isolated), and a systemd one is refused while a container with another map runs; {n} isolated range(s) allocated"
            ),
            None,
        )
    });
    v
}

/// The `lxc_hook` item when the hook file is newer than the running libvirtd: what a probe
/// domain's start shows ([`crate::storage::hook::probe`]), or, when no probe can run (not
/// root, libvirt unreachable), that it is not known. Never "not called" without the probe.
fn hook_probe_item(path: &std::path::Path, bin: &std::path::Path, uri: &str, state: &std::path::Path) -> Item {
    use crate::storage::hook::{probe, Probe};
    let restart = Some("restart libvirtd (running containers survive it)");
    let newer = format!("{} runs {}; the file is newer than the running libvirtd, which calls hooks only if one existed when it started", path.display(), bin.display());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return item(
            "lxc_hook",
            Level::Warn,
            format!("{newer}: run doctor as root to prove whether it calls this one (a probe domain)"),
            restart,
        );
    }
    let hv = match VirtHypervisor::connect(uri) {
        Ok(hv) => hv,
        Err(e) => {
            return item(
                "lxc_hook",
                Level::Warn,
                format!("{newer}: whether it calls this one is not known (libvirt: {e})"),
                restart,
            );
        }
    };
    let scratch = crate::storage::nearest_existing(state);
    let r = probe(&scratch, &|xml| hv.create_transient(xml).map_err(|e| e.to_string()), &|name| {
        let _ = hv.destroy_domain(name);
    });
    match r {
        Ok(Probe::Called(evidence)) => item(
            "lxc_hook",
            Level::Ok,
            format!("{} runs {} hook lxc; libvirtd calls it (a probe domain's start failed in the hook, as it must: {evidence})", path.display(), bin.display()),
            None,
        ),
        Ok(Probe::NotCalled(evidence)) => item(
            "lxc_hook",
            Level::Warn,
            format!("{} runs {}, but libvirtd does not call it: a probe domain the hook refuses got past the hook ({evidence}); libvirtd started before any hook existed", path.display(), bin.display()),
            restart,
        ),
        Ok(Probe::Unknown(why)) => item("lxc_hook", Level::Warn, format!("{newer}: the probe domain showed nothing either way ({why})"), restart),
        Err(e) => item("lxc_hook", Level::Warn, format!("{newer}: the probe could not run ({e:#})"), restart),
    }
}

/// Did the running libvirtd start before the hook file was created? `None` when unknown.
fn libvirtd_predates(hook: &std::path::Path) -> Option<bool> {
    let pid: u32 = std::fs::read_to_string("/run/libvirtd.pid").ok()?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let started = btime + ticks / hz;
    let born = std::fs::metadata(hook).ok()?.created().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(born > started)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reads_lxc_conf_values() {
        let t = "#security_default_confined = 0\nsecurity_require_confined = 1\n";
        assert_eq!(lxc_conf_value(t, "security_default_confined"), None);
        assert_eq!(lxc_conf_value(t, "security_require_confined").as_deref(), Some("1"));
    }
}
