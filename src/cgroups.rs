//! Fair shares in the host's cgroups, beyond what libvirt's domain XML carries:
//! - a container's **process limit** (`pids_max`): libvirt 9.0's LXC driver leaves the pids
//!   controller alone (on cgroup v1 its containers sit in the root pids cgroup), so lxcprov
//!   puts a started container's processes into a pids cgroup of its own (v1) or writes
//!   `pids.max` into the container's cgroup (v2), at every start (its own, and `virsh start`
//!   through the libvirt hook);
//! - a **lab partition** (`<resource><partition>/machine/lxcprov-LAB</partition>`): one
//!   cgroup above every student of a lab, carrying the lab's ceilings (memory, processes,
//!   CPUs) for all of them together. libvirt does not create a partition: lxcprov makes it
//!   (`machine/lxcprov-LAB.partition` in every v1 hierarchy, or in the v2 tree) and writes
//!   the ceilings; under systemd the partition is the slice `machine-lxcprov\x2dLAB.slice`
//!   and the ceilings are its runtime properties (`systemctl set-property --runtime`).

use crate::exec::{Cmd, Runner};
use crate::host::HostRoot;
use crate::name::Name;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A lab's ceilings, for all its students together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceilings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
}

impl Ceilings {
    pub fn is_empty(&self) -> bool {
        *self == Ceilings::default()
    }

    /// `memory=B,pids=N,cpus=N` (the domain metadata's form; absent ones left out).
    pub fn to_attr(&self) -> String {
        let mut v = vec![];
        if let Some(m) = self.memory_bytes {
            v.push(format!("memory={m}"));
        }
        if let Some(p) = self.pids {
            v.push(format!("pids={p}"));
        }
        if let Some(c) = self.cpus {
            v.push(format!("cpus={c}"));
        }
        v.join(",")
    }

    /// Parses [`Self::to_attr`]'s form; anything else is refused.
    pub fn from_attr(s: &str) -> Result<Ceilings> {
        let mut c = Ceilings::default();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let bad = || anyhow::anyhow!("the lab ceilings {:?} are not lxcprov's", crate::text::for_terminal(s));
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            match k {
                "memory" => c.memory_bytes = Some(v.parse().map_err(|_| bad())?),
                "pids" => c.pids = Some(v.parse().map_err(|_| bad())?),
                "cpus" => c.cpus = Some(v.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        Ok(c)
    }
}

/// The lab a partition of [`partition`]'s form belongs to.
pub fn lab_of_partition(p: &str) -> Option<Name> {
    p.strip_prefix("/machine/lxcprov-").and_then(|l| Name::parse(l).ok())
}

/// Does lab `lab`'s partition exist (after a host reboot it does not)?
pub fn partition_exists(tree: &Tree, lab: &Name) -> bool {
    match tree {
        Tree::V1 { root } => root.join("memory/machine").join(dir_name(lab)).is_dir(),
        Tree::V2 { root } => root.join("machine").join(dir_name(lab)).is_dir(),
        // systemd makes slices as they are used; the runtime properties go with a reboot.
        Tree::Systemd { .. } => false,
    }
}

impl std::fmt::Display for Ceilings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if let Some(m) = self.memory_bytes {
            parts.push(format!("memory {} MiB", m >> 20));
        }
        if let Some(p) = self.pids {
            parts.push(format!("{p} processes"));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("{c} CPUs"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The partition of lab `lab` in the domain XML.
pub fn partition(lab: &Name) -> String {
    format!("/machine/lxcprov-{lab}")
}

/// How the host's cgroups are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tree {
    /// cgroup v1: one hierarchy per controller under `root` (`root/memory`, `root/pids`).
    V1 { root: PathBuf },
    /// cgroup v2 without systemd as PID 1: lxcprov writes the files itself.
    V2 { root: PathBuf },
    /// cgroup v2 under systemd: partitions are slices, set through systemctl.
    Systemd { root: PathBuf },
}

impl Tree {
    pub fn of(host: &HostRoot) -> Tree {
        let root = host.sys().join("fs/cgroup");
        if !root.join("cgroup.controllers").is_file() {
            Tree::V1 { root }
        } else if crate::host::pid1_is_systemd(&host.proc()) {
            Tree::Systemd { root }
        } else {
            Tree::V2 { root }
        }
    }
}

/// The systemd slice of lab `lab`'s partition (libvirt's name for it: `-` escaped).
pub fn slice(lab: &Name) -> String {
    let esc: String =
        format!("lxcprov-{lab}").chars().map(|c| if c == '-' { "\\x2d".into() } else { c.to_string() }).collect();
    format!("machine-{esc}.slice")
}

fn dir_name(lab: &Name) -> String {
    format!("lxcprov-{lab}.partition")
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// The v1 hierarchies libvirt places containers in: every directory under `root` that is
/// a cgroup v1 mount (it has `cgroup.procs` and is not the v2 `unified` tree).
fn v1_hierarchies(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").is_file() && !p.join("cgroup.controllers").is_file())
        .filter(|p| !std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
        .collect();
    v.sort();
    v
}

/// Makes lab `lab`'s partition and writes its ceilings (an absent one is lifted); what it
/// set, for the teacher.
pub fn prepare_partition(tree: &Tree, runner: &dyn Runner, lab: &Name, c: &Ceilings) -> Result<String> {
    match tree {
        Tree::V1 { root } => {
            for h in v1_hierarchies(root) {
                let machine = h.join("machine");
                let dir = machine.join(dir_name(lab));
                for d in [&machine, &dir] {
                    if !d.is_dir() {
                        std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
                    }
                    // A new cpuset group has no CPUs or memory nodes until given its parent's.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let own = d.join(f);
                        if own.is_file() && std::fs::read_to_string(&own)?.trim().is_empty() {
                            let parent = std::fs::read_to_string(d.parent().unwrap_or(d).join(f))?;
                            write(&own, parent.trim())?;
                        }
                    }
                }
            }
            let part = |ctl: &str| root.join(ctl).join("machine").join(dir_name(lab));
            let mem = part("memory");
            write(&mem.join("memory.limit_in_bytes"), &c.memory_bytes.map_or("-1".into(), |b| b.to_string()))?;
            let pids = part("pids");
            if !pids.is_dir() {
                bail!(
                    "the pids controller is not mounted on this host ({}): a lab's process ceiling needs it",
                    pids.display()
                );
            }
            write(&pids.join("pids.max"), &c.pids.map_or("max".into(), |n| n.to_string()))?;
            let cpu = part("cpu");
            write(&cpu.join("cpu.cfs_period_us"), "100000")?;
            write(
                &cpu.join("cpu.cfs_quota_us"),
                &c.cpus.map_or("-1".into(), |n| (u64::from(n) * 100_000).to_string()),
            )?;
            Ok(format!("cgroup v1 partition machine/{}", dir_name(lab)))
        }
        Tree::V2 { root } => {
            let machine = root.join("machine");
            let dir = machine.join(dir_name(lab));
            for d in [&machine, &dir] {
                if !d.is_dir() {
                    std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
                }
            }
            for d in [root, &machine, &dir] {
                // Controllers are handed down to the students' cgroups below.
                let _ = write(&d.join("cgroup.subtree_control"), "+memory +pids +cpu");
            }
            write(&dir.join("memory.max"), &c.memory_bytes.map_or("max".into(), |b| b.to_string()))?;
            write(&dir.join("pids.max"), &c.pids.map_or("max".into(), |n| n.to_string()))?;
            write(
                &dir.join("cpu.max"),
                &c.cpus.map_or("max 100000".into(), |n| format!("{} 100000", u64::from(n) * 100_000)),
            )?;
            Ok(format!("cgroup v2 partition machine/{}", dir_name(lab)))
        }
        Tree::Systemd { .. } => {
            let unit = slice(lab);
            let cmd = Cmd::new("systemctl").args(["set-property", "--runtime", "--", &unit]).args([
                format!("MemoryMax={}", c.memory_bytes.map_or("infinity".into(), |b| b.to_string())),
                format!("TasksMax={}", c.pids.map_or("infinity".into(), |n| n.to_string())),
                format!("CPUQuota={}", c.cpus.map_or(String::new(), |n| format!("{}%", u64::from(n) * 100))),
            ]);
            runner.run(&cmd, &mut |_| {}).with_context(|| format!("setting the ceilings of {unit}"))?;
            Ok(format!("systemd slice {unit}"))
        }
    }
}

/// Removes lab `lab`'s partition once its students are gone (a busy one is left, and said).
pub fn remove_partition(tree: &Tree, runner: &dyn Runner, lab: &Name) -> Result<()> {
    if let Tree::V1 { root } = tree {
        // lxcprov's own pids groups of the students, empty once they are down.
        let pids = root.join("pids").join("machine").join(dir_name(lab));
        for e in std::fs::read_dir(&pids).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    let dirs: Vec<PathBuf> = match tree {
        Tree::V1 { root } => v1_hierarchies(root).into_iter().map(|h| h.join("machine").join(dir_name(lab))).collect(),
        Tree::V2 { root } => vec![root.join("machine").join(dir_name(lab))],
        Tree::Systemd { .. } => {
            let _ = runner.run(&Cmd::new("systemctl").args(["revert", "--", &slice(lab)]), &mut |_| {});
            vec![]
        }
    };
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing the lab partition {}", d.display())),
        }
    }
    Ok(())
}

/// The cgroup path of `pid` in the hierarchy whose `/proc/PID/cgroup` line names
/// `controller` (v1), or its v2 path (`controller` empty).
fn cgroup_of(proc: &Path, pid: u32, controller: &str) -> Result<String> {
    let p = proc.join(pid.to_string()).join("cgroup");
    let text = crate::fsutil::read_regular_bounded_to_string(&p, 64 << 10, "a process's cgroups")?;
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctls, path) = (it.next()?, it.next()?, it.next()?);
            let hit = if controller.is_empty() { ctls.is_empty() } else { ctls.split(',').any(|c| c == controller) };
            hit.then(|| path.to_string())
        })
        .next()
        .with_context(|| {
            format!("{} names no {} cgroup", p.display(), if controller.is_empty() { "v2" } else { controller })
        })
}

/// A path from `/proc/PID/cgroup` under a hierarchy's mount, refused if it leaves it.
fn under(mount: &Path, path: &str) -> Result<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == ".." || c == ".") {
        bail!("refusing the cgroup path {path:?}");
    }
    Ok(mount.join(rel))
}

/// Bounds the processes of the container whose init is `init_pid` to `max`: its own pids
/// cgroup beside libvirt's (v1: the same path in the pids hierarchy, every one of its
/// processes moved in), or `pids.max` of its cgroup (v2). Returns the cgroup it bounded.
pub fn apply_pids(tree: &Tree, runner: &dyn Runner, proc: &Path, init_pid: u32, max: u32) -> Result<PathBuf> {
    match tree {
        Tree::V1 { root } => {
            let path = cgroup_of(proc, init_pid, "memory")?;
            let mem = under(&root.join("memory"), &path)?;
            let pids_root = root.join("pids");
            if !pids_root.join("cgroup.procs").is_file() {
                bail!(
                    "the pids controller is not mounted on this host ({}): pids_max cannot be applied",
                    pids_root.display()
                );
            }
            let dir = under(&pids_root, &path)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            write(&dir.join("pids.max"), &max.to_string())?;
            // Twice: a process forked while the first pass moved its parent is caught by the second.
            for _ in 0..2 {
                for pid in procs_below(&mem)? {
                    match std::fs::write(dir.join("cgroup.procs"), pid.to_string()) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("moving process {pid} into {}", dir.display()))
                        }
                    }
                }
            }
            Ok(dir)
        }
        Tree::Systemd { root } => {
            // systemd owns the tree: the container's scope gets the limit as its TasksMax.
            let path = cgroup_of(proc, init_pid, "")?;
            // The machine's own scope (`machine-lxc\x2dPID\x2dNAME.scope`), not a cgroup inside
            // it (libvirt puts the init in `libvirt/init.scope` below, a name the host's systemd
            // also has for itself).
            let unit =
                path.split('/').find(|u| u.starts_with("machine-") && u.ends_with(".scope")).with_context(|| {
                    format!("the container's cgroup {path} is in no machine scope: pids_max cannot be applied")
                })?;
            let dir = under(root, &path[..path.find(unit).map_or(path.len(), |i| i + unit.len())])?;
            let cmd = Cmd::new("systemctl").args(["set-property", "--runtime", "--", unit, &format!("TasksMax={max}")]);
            runner.run(&cmd, &mut |_| {}).with_context(|| format!("setting TasksMax of {unit}"))?;
            Ok(dir)
        }
        Tree::V2 { root } => {
            let dir = under(root, &cgroup_of(proc, init_pid, "")?)?;
            let f = dir.join("pids.max");
            if !f.is_file() {
                bail!("the pids controller is not enabled for {}: pids_max cannot be applied", dir.display());
            }
            write(&f, &max.to_string())?;
            Ok(dir)
        }
    }
}

/// Every process in `dir` and the cgroups below it (bounded: a container's tree).
fn procs_below(dir: &Path) -> Result<Vec<u32>> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        seen += 1;
        if seen > 10_000 {
            bail!("{} holds more than 10000 cgroups", dir.display());
        }
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        out.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    Ok(out)
}

/// A process of the running container `name`, found by its cgroup (libvirt's
/// `lxc-PID-NAME.libvirt-lxc`, or under systemd `machine-lxc\x2dPID\x2dNAME.scope`), for
/// the hook, which cannot ask libvirt (it runs inside libvirtd's call).
pub fn process_of(tree: &Tree, name: &Name) -> Option<u32> {
    let (top, suffixes) = match tree {
        Tree::V1 { root } => (root.join("memory"), vec![format!("-{name}.libvirt-lxc")]),
        Tree::V2 { root } | Tree::Systemd { root } => {
            let esc: String =
                name.as_str().chars().map(|c| if c == '-' { "\\x2d".into() } else { c.to_string() }).collect();
            (root.clone(), vec![format!("-{name}.libvirt-lxc"), format!("\\x2d{esc}.scope")])
        }
    };
    let mut stack = vec![(top, 0)];
    while let Some((d, depth)) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains("lxc") && suffixes.iter().any(|s| n.ends_with(s.as_str())) {
                if let Some(pid) = first_process(&e.path(), 4) {
                    return Some(pid);
                }
            } else if depth < 3 && (n.starts_with("machine") || n.ends_with(".partition") || n.ends_with(".slice")) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    None
}

/// A process in the cgroup `dir` or below it (at most `depth` levels): under systemd with
/// cgroup v2, libvirt 9.0 leaves the machine's scope itself empty and puts the container's
/// processes in `libvirt/...` below it (and a systemd inside moves them further down).
fn first_process(dir: &Path, depth: u32) -> Option<u32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    if let Some(pid) = procs.lines().find_map(|l| l.trim().parse::<u32>().ok()) {
        return Some(pid);
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| first_process(&e.path(), depth - 1))
}

/// The limit and the use of the pids cgroup `init_pid` is in: `(max, current)`, `max` None
/// for "max" (v1: the pids hierarchy's line of `/proc/PID/cgroup`).
pub fn pids_of(tree: &Tree, proc: &Path, init_pid: u32) -> Result<(Option<u64>, u64, String)> {
    let (mount, path) = match tree {
        Tree::V1 { root } => (root.join("pids"), cgroup_of(proc, init_pid, "pids")?),
        Tree::V2 { root } | Tree::Systemd { root } => (root.clone(), cgroup_of(proc, init_pid, "")?),
    };
    let dir = under(&mount, &path)?;
    let max = std::fs::read_to_string(dir.join("pids.max")).unwrap_or_else(|_| "max".into());
    let cur = std::fs::read_to_string(dir.join("pids.current")).unwrap_or_default();
    Ok((max.trim().parse().ok(), cur.trim().parse().unwrap_or(0), path))
}

/// Removes the empty pids cgroups lxcprov made for earlier starts of `name` (v1: libvirt
/// removes its own groups at a stop, not lxcprov's).
pub fn forget_pids(tree: &Tree, name: &Name) {
    let Tree::V1 { root } = tree else { return };
    let machine = root.join("pids").join("machine");
    let suffix = format!("-{name}.libvirt-lxc");
    let mut parents = vec![machine.clone()];
    parents.extend(
        std::fs::read_dir(&machine)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "partition")),
    );
    for p in parents {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("lxc-") && n.ends_with(&suffix) {
                // Only an empty group goes (rmdir refuses one with processes).
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// `SIZE` of `--total-memory`: bytes, or a number with K, M, G or T (powers of 1024, an
/// optional `iB` or `B`).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 =
        num.parse().map_err(|_| anyhow::anyhow!("size {s:?}: expected a number with K, M, G or T, such as 8G"))?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => bail!("size {s:?}: expected a number with K, M, G or T, such as 8G"),
    };
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).context("size too large")?;
    if bytes < 16 << 20 {
        bail!("size {s:?} is below 16 MiB");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("33554432").unwrap(), 32 << 20);
        for bad in ["", "G", "8X", "-1G", "1.5G", "1K", "99999999999T", "8 G G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ceilings_round_trip_through_the_metadata_and_nothing_else_is_read() {
        let c = Ceilings { memory_bytes: Some(1 << 30), pids: Some(300), cpus: None };
        assert_eq!(c.to_attr(), "memory=1073741824,pids=300");
        assert_eq!(Ceilings::from_attr(&c.to_attr()).unwrap(), c);
        for bad in ["memory", "memory=x", "disk=5", "pids=-1", "memory=1;id"] {
            assert!(Ceilings::from_attr(bad).is_err(), "{bad:?}");
        }
        assert_eq!(lab_of_partition("/machine/lxcprov-intro").unwrap().as_str(), "intro");
        assert!(lab_of_partition("/machine/other").is_none());
        assert!(lab_of_partition("/machine/lxcprov-../../x").is_none());
    }

    /// Under systemd the machine's scope gets TasksMax, never the init's `init.scope` inside
    /// it (the host's own PID 1 has a unit of that name).
    #[test]
    fn under_systemd_the_machine_scope_gets_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("sys/fs/cgroup");
        let proc = d.path().join("proc");
        std::fs::create_dir_all(proc.join("7")).unwrap();
        let scope = "machine-lxc\\x2d5\\x2dweb1.scope";
        std::fs::write(proc.join("7/cgroup"), format!("0::/machine.slice/{scope}/libvirt/init.scope\n")).unwrap();
        struct Rec(std::sync::Mutex<Vec<String>>);
        impl Runner for Rec {
            fn run(&self, c: &Cmd, _: &mut dyn FnMut(&str)) -> Result<(), crate::exec::CommandError> {
                self.0.lock().unwrap().push(c.to_string());
                Ok(())
            }
        }
        let r = Rec(Default::default());
        let dir = apply_pids(&Tree::Systemd { root: root.clone() }, &r, &proc, 7, 512).unwrap();
        assert_eq!(dir, root.join("machine.slice").join(scope));
        let ran = r.0.lock().unwrap().clone();
        assert_eq!(ran.len(), 1);
        assert!(ran[0].contains(scope) && ran[0].contains("TasksMax=512") && !ran[0].contains("init.scope"), "{ran:?}");
    }

    #[test]
    fn the_hook_finds_a_process_below_an_empty_machine_scope() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let scope = root.join("machine.slice/machine-lxc\\x2d812\\x2dweb1.scope");
        std::fs::create_dir_all(scope.join("libvirt/init.scope")).unwrap();
        std::fs::write(scope.join("cgroup.procs"), "").unwrap();
        std::fs::write(scope.join("libvirt/cgroup.procs"), "").unwrap();
        std::fs::write(scope.join("libvirt/init.scope/cgroup.procs"), "815\n").unwrap();
        let n = Name::parse("web1").unwrap();
        assert_eq!(process_of(&Tree::Systemd { root: root.clone() }, &n), Some(815));
        assert_eq!(process_of(&Tree::Systemd { root }, &Name::parse("web2").unwrap()), None);
    }

    #[test]
    fn slices_and_partitions_are_named_as_libvirt_names_them() {
        let lab = Name::parse("intro-2").unwrap();
        assert_eq!(partition(&lab), "/machine/lxcprov-intro-2");
        assert_eq!(slice(&lab), "machine-lxcprov\\x2dintro\\x2d2.slice");
        assert_eq!(dir_name(&lab), "lxcprov-intro-2.partition");
    }

    /// A fake v1 tree: the partition in every hierarchy, the cpuset inherited, the ceilings
    /// written, an absent one lifted; a container's processes moved into its pids group.
    #[test]
    fn a_v1_partition_carries_the_ceilings_and_a_container_gets_its_pids_group() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("sys/fs/cgroup");
        for h in ["memory", "pids", "cpu", "cpuset"] {
            std::fs::create_dir_all(root.join(h).join("machine")).unwrap();
            std::fs::write(root.join(h).join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(root.join("cpuset/machine/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(root.join("cpuset/machine/cpuset.mems"), "0\n").unwrap();
        // What the kernel would show in a new group.
        let lab = Name::parse("l1").unwrap();
        std::fs::create_dir(root.join("cpuset/machine/lxcprov-l1.partition")).unwrap();
        std::fs::write(root.join("cpuset/machine/lxcprov-l1.partition/cpuset.cpus"), "\n").unwrap();
        std::fs::write(root.join("cpuset/machine/lxcprov-l1.partition/cpuset.mems"), "\n").unwrap();
        let tree = Tree::V1 { root: root.clone() };
        let c = Ceilings { memory_bytes: Some(1 << 30), pids: Some(300), cpus: None };
        let r = crate::exec::SystemRunner::default();
        prepare_partition(&tree, &r, &lab, &c).unwrap();
        let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(rd("memory/machine/lxcprov-l1.partition/memory.limit_in_bytes"), "1073741824");
        assert_eq!(rd("pids/machine/lxcprov-l1.partition/pids.max"), "300");
        assert_eq!(rd("cpu/machine/lxcprov-l1.partition/cpu.cfs_quota_us"), "-1");
        assert_eq!(rd("cpuset/machine/lxcprov-l1.partition/cpuset.cpus"), "0-1");
        // A container in it: its processes go into a pids group at the same path.
        let proc = d.path().join("proc");
        std::fs::create_dir_all(proc.join("42")).unwrap();
        let cg = "/machine/lxcprov-l1.partition/lxc-41-l1-s01.libvirt-lxc";
        std::fs::write(proc.join("42/cgroup"), format!("8:pids:/\n4:memory:{cg}\n0::/\n")).unwrap();
        let mem = root.join("memory").join(&cg[1..]);
        std::fs::create_dir_all(mem.join("sub")).unwrap();
        std::fs::write(mem.join("cgroup.procs"), "42\n43\n").unwrap();
        std::fs::write(mem.join("sub/cgroup.procs"), "44\n").unwrap();
        let dir = apply_pids(&tree, &r, &proc, 42, 128).unwrap();
        assert_eq!(dir, root.join("pids").join(&cg[1..]));
        assert_eq!(rd(&format!("pids{cg}/pids.max")), "128");
        // (A regular file keeps the last write: the kernel file would hold all three.)
        assert_eq!(rd(&format!("pids{cg}/cgroup.procs")), "44");
        // A hostile path in /proc is refused.
        std::fs::write(proc.join("42/cgroup"), "4:memory:/machine/../../etc\n").unwrap();
        assert!(apply_pids(&tree, &r, &proc, 42, 128).is_err());
    }
}
