//! Facts about the host: where its `/proc`, `/sys` and `/etc` are, and its security modules.

use std::path::{Path, PathBuf};

/// Where `/proc`, `/sys` and `/etc` are: `/` in production, a tempdir in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoot {
    pub root: PathBuf,
}

impl HostRoot {
    /// The real host: `/`.
    pub fn real() -> HostRoot {
        HostRoot { root: PathBuf::from("/") }
    }

    /// A host tree rooted at `root` (a fixture in tests).
    pub fn new(root: impl Into<PathBuf>) -> HostRoot {
        HostRoot { root: root.into() }
    }

    /// `{root}/proc`.
    pub fn proc(&self) -> PathBuf {
        self.root.join("proc")
    }

    /// `{root}/sys`.
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// `{root}/etc`.
    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }
}

/// Is SELinux enabled (enforcing or permissive)?
pub fn selinux_enabled() -> bool {
    !matches!(selinux::current_mode(), selinux::SELinuxMode::NotRunning)
}

/// Is AppArmor enabled?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y").unwrap_or(false)
        && std::fs::read_to_string("/sys/kernel/security/lsm").map(|s| s.contains("apparmor")).unwrap_or(false)
}

/// Is PID 1 systemd (read from `{proc}/1/comm`)?
pub fn pid1_is_systemd(proc: &std::path::Path) -> bool {
    std::fs::read_to_string(proc.join("1/comm")).is_ok_and(|c| c.trim() == "systemd")
}

/// The SELinux policy type from `{etc}/selinux/config` (`SELINUXTYPE=`), default `default`.
pub fn selinux_type(etc: &std::path::Path) -> String {
    std::fs::read_to_string(etc.join("selinux/config"))
        .ok()
        .and_then(|t| parse_selinux_type(&t))
        .unwrap_or_else(|| "default".into())
}

/// `SELINUXTYPE=...` from the text of `/etc/selinux/config` (comments and quotes allowed).
/// A value that is not a plain directory name (`..`, slashes) counts as unset.
pub fn parse_selinux_type(config: &str) -> Option<String> {
    let value = config.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "SELINUXTYPE").then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })?;
    let valid = !value.is_empty()
        && value != "."
        && value != ".."
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then_some(value)
}

/// `{etc}/selinux/TYPE/contexts/lxc_contexts`.
pub fn lxc_contexts_path(etc: &std::path::Path) -> std::path::PathBuf {
    etc.join("selinux").join(selinux_type(etc)).join("contexts/lxc_contexts")
}

/// A `key = "value"` entry of `lxc_contexts` (keys: process, file, content, sandbox_*).
pub fn lxc_context(text: &str, key: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The label a container's root filesystem needs: the `file` context of `lxc_contexts`
/// (readable by every container: dynamic labels), or that type with the container's own
/// level (static labels: files separated as well as processes).
pub fn rootfs_label(lxc_contexts: &str, static_label: Option<&str>) -> Option<String> {
    let file = lxc_context(lxc_contexts, "file")?;
    match static_label {
        None => Some(file),
        Some(l) => {
            let (_, level) = crate::mcs::split_context(l)?;
            let mut parts: Vec<&str> = file.splitn(4, ':').collect();
            parts.truncate(3);
            Some(format!("{}:{level}", parts.join(":")))
        }
    }
}

/// Host files read for ids (`passwd`, `group`, `login.defs`, `subuid`) are at most this big.
pub const MAX_HOST_FILE: u64 = 64 << 20;

/// The first id of a regular account: `UID_MIN` (or `GID_MIN`) in `etc/login.defs`, 1000
/// when it says nothing.
pub fn first_regular_id(etc: &Path, gid: bool) -> u64 {
    let key = if gid { "GID_MIN" } else { "UID_MIN" };
    crate::fsutil::read_regular_bounded_to_string(&etc.join("login.defs"), MAX_HOST_FILE, "login.defs")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse::<u64>().ok())).flatten()
            })
        })
        .unwrap_or(1000)
}

/// The host accounts a fixed map's host ids `[target, target + count)` would make container
/// ids of: a reason naming the first one met, or `None`. Ids below the first regular id
/// (`UID_MIN`) are the system's own accounts whether or not they are listed; above it,
/// every uid in `etc/passwd` (for `gid`: every gid in `etc/group` and every primary gid in
/// `etc/passwd`) counts.
pub fn host_accounts_met(etc: &Path, gid: bool, target: u32, count: u32) -> Option<String> {
    let (lo, hi) = (u64::from(target), u64::from(target) + u64::from(count));
    let what = if gid { "gid" } else { "uid" };
    let min = first_regular_id(etc, gid);
    if lo < min {
        return Some(format!(
            "host {what} {lo} is below the first regular {what} ({min}, {} in {}/login.defs): a system account's",
            if gid { "GID_MIN" } else { "UID_MIN" },
            etc.display()
        ));
    }
    let read = |f: &str| crate::fsutil::read_regular_bounded_to_string(&etc.join(f), MAX_HOST_FILE, "a host id file");
    let sources: &[(&str, usize)] = if gid { &[("group", 2), ("passwd", 3)] } else { &[("passwd", 2)] };
    for (file, field) in sources {
        for line in read(file).unwrap_or_default().lines() {
            let mut f = line.split(':');
            let name = f.next().unwrap_or_default();
            if let Some(Ok(id)) = f.nth(field - 1).map(|s| s.trim().parse::<u64>()) {
                if (lo..hi).contains(&id) {
                    let name = crate::text::for_terminal(&name.chars().take(32).collect::<String>()).into_owned();
                    return Some(format!("host {what} {id} is {name:?}'s in {}/{file}", etc.display()));
                }
            }
        }
    }
    None
}

/// What is at the lxcfs mount point `dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lxcfs {
    /// A `fuse.lxcfs` mount whose daemon answers (its `/proc` files are there).
    Live,
    /// A `fuse.lxcfs` mount whose daemon is gone: every read answers "Transport endpoint is
    /// not connected" (the daemon crashed or was killed; the mount outlives it).
    Stale,
    /// No lxcfs mount there.
    Absent,
}

/// Is lxcfs mounted at `dir`, and does its daemon answer?
pub fn lxcfs_state(dir: &std::path::Path) -> Lxcfs {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Lxcfs::Absent };
    let want = dir.display().to_string();
    let mounted = info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let fstype = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1));
        f.get(4) == Some(&want.as_str()) && fstype.is_some_and(|t| *t == "fuse.lxcfs")
    });
    match (mounted, dir.join("proc/uptime").is_file()) {
        (false, _) => Lxcfs::Absent,
        (true, true) => Lxcfs::Live,
        (true, false) => Lxcfs::Stale,
    }
}

/// Is lxcfs mounted at `dir` with its daemon answering?
pub fn lxcfs_mounted(dir: &std::path::Path) -> bool {
    lxcfs_state(dir) == Lxcfs::Live
}

#[cfg(test)]
mod tests {
    use super::*;

    const LXC: &str = "process = \"system_u:system_r:container_t:s0\"\ncontent = \"system_u:object_r:virt_var_lib_t:s0\"\nfile = \"system_u:object_r:container_file_t:s0\"\n";

    #[test]
    fn a_plain_directory_with_lxcfs_files_is_no_lxcfs_mount() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc")).unwrap();
        std::fs::write(d.path().join("proc/uptime"), "1.00 1.00\n").unwrap();
        assert_eq!(lxcfs_state(d.path()), Lxcfs::Absent);
        assert!(!lxcfs_mounted(d.path()));
    }

    #[test]
    fn rootfs_labels() {
        assert_eq!(rootfs_label(LXC, None).as_deref(), Some("system_u:object_r:container_file_t:s0"));
        assert_eq!(
            rootfs_label(LXC, Some("system_u:system_r:container_t:s0:c10,c20")).as_deref(),
            Some("system_u:object_r:container_file_t:s0:c10,c20")
        );
        assert_eq!(rootfs_label("", None), None);
    }

    #[test]
    fn reads_policy_type() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("selinux")).unwrap();
        std::fs::write(d.path().join("selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n").unwrap();
        assert_eq!(lxc_contexts_path(d.path()), d.path().join("selinux/targeted/contexts/lxc_contexts"));
    }
}
