//! `cgroup`: the resource limits of the live XML are in force for the container's init.
//!
//! The init's `/proc/PID/cgroup` is authoritative (the path is never built from the name).
//! cgroup v1 lines are `N:memory:/machine/lxc-123-web1.libvirt-lxc`, possibly with a comma
//! list of controllers (`N:cpu,cpuacct:/...`) whose mount directory is `cpu,cpuacct` (with a
//! `cpu` symlink on most systems): both spellings are tried. v2 is the single `0::/...` line;
//! a hybrid host (v1 controllers plus an empty v2 hierarchy) is read as v1.
//!
//! libvirt may place the init in a child of the container's cgroup, so each value is looked
//! for in the init's cgroup and then its ancestors, down to depth 2 (a partition such as
//! `/machine` is shared by every domain and never counts). Limits of an ancestor bind its
//! children, so a match there is enforced. On v2, `cpu.shares` and `blkio.weight` become
//! `cpu.weight`/`io.weight` with converted values: they are noted and not compared.

use super::procfs::read_trim;
use super::{Check, Ctx, DomainFacts};
use std::path::{Path, PathBuf};

/// One line of `/proc/PID/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CgLine {
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parses `/proc/PID/cgroup` (`id:controllers:path`; the path may hold `:`).
pub(super) fn parse_proc_cgroup(text: &str) -> Vec<CgLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_id, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let controllers = ctrls.split(',').filter(|c| !c.is_empty()).map(String::from).collect();
            Some(CgLine { controllers, path: path.to_string() })
        })
        .collect()
}

/// Where a setting lives on cgroup v2.
#[derive(Clone, Copy, Debug)]
enum V2 {
    /// A file holding the number.
    File(&'static str),
    /// A field of `cpu.max` (`quota period`; `max` reads as -1).
    CpuMax(usize),
    /// Not compared on v2, with why.
    Skip(&'static str),
}

/// One limit from the live XML.
#[derive(Clone, Debug)]
struct Setting {
    v1_ctrl: &'static str,
    /// Tried in order (`blkio.weight` is `blkio.bfq.weight` with the BFQ scheduler).
    v1_files: &'static [&'static str],
    v2: V2,
    want: i128,
    /// Memory limits read back rounded down to the page size.
    page_rounded: bool,
}

/// The limits the live XML sets.
fn wanted(f: &DomainFacts) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut add = |v1_ctrl, v1_files, v2, want: Option<i128>, page_rounded| {
        if let Some(want) = want {
            out.push(Setting { v1_ctrl, v1_files, v2, want, page_rounded });
        }
    };
    add(
        "memory",
        &["memory.limit_in_bytes"],
        V2::File("memory.max"),
        f.domain.memory_limit_kib.map(|k| i128::from(k) * 1024),
        true,
    );
    add(
        "cpu",
        &["cpu.shares"],
        V2::Skip("cpu.shares is cpu.weight on cgroup v2 (converted by libvirt): not compared"),
        f.domain.cpu_shares.map(i128::from),
        false,
    );
    add("cpu", &["cpu.cfs_period_us"], V2::CpuMax(1), f.domain.cpu_period.map(i128::from), false);
    add("cpu", &["cpu.cfs_quota_us"], V2::CpuMax(0), f.domain.cpu_quota.map(i128::from), false);
    add(
        "blkio",
        &["blkio.weight", "blkio.bfq.weight"],
        V2::Skip("blkio.weight is io.weight on cgroup v2: not compared"),
        f.domain.blkio_weight.map(i128::from),
        false,
    );
    // The process limit lxcprov applies at every start (`pids_max`, in the metadata).
    add(
        "pids",
        &["pids.max"],
        V2::File("pids.max"),
        f.domain.meta.as_ref().and_then(|m| m.pids).map(i128::from),
        false,
    );
    out
}

/// The host's page size, for rounded memory limits.
fn page_size() -> i128 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        i128::from(p)
    } else {
        4096
    }
}

/// Does a file's text equal the setting's value? (`max` reads as -1.)
fn matches(s: &Setting, raw: &str) -> bool {
    let got = if raw == "max" { Some(-1) } else { raw.parse::<i128>().ok() };
    match got {
        Some(v) if v == s.want => true,
        Some(v) if s.page_rounded => v == s.want - s.want % page_size(),
        _ => false,
    }
}

/// The init's cgroup directory and its ancestors down to depth 2, under `mount`.
pub(super) fn candidate_dirs(mount: &Path, cg_path: &str) -> Result<Vec<PathBuf>, String> {
    let parts: Vec<&str> = cg_path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return Err(format!("cgroup path {cg_path:?} is not a plain path"));
    }
    if parts.len() < 2 {
        return Err(format!("the init is in {cg_path:?}, not in a cgroup of its own"));
    }
    Ok((2..=parts.len()).rev().map(|d| mount.join(parts[..d].join("/"))).collect())
}

/// The v1 mount directory of `ctrl` for the line that lists it.
fn v1_mount(cgroot: &Path, line: &CgLine, ctrl: &str) -> Option<PathBuf> {
    [cgroot.join(line.controllers.join(",")), cgroot.join(ctrl)].into_iter().find(|d| d.is_dir())
}

/// Looks for the value in `dirs` (init first); Ok(path) of the match.
fn find_value(
    dirs: &[PathBuf],
    files: &[&str],
    s: &Setting,
    field: Option<usize>,
    ev: &mut Vec<String>,
) -> Result<PathBuf, String> {
    for dir in dirs {
        let Some(path) = files.iter().map(|f| dir.join(f)).find(|p| p.exists()) else { continue };
        let raw = match read_trim(&path) {
            Ok(r) => r,
            Err(e) => {
                ev.push(e);
                continue;
            }
        };
        let value = match field {
            Some(i) => raw.split_whitespace().nth(i).unwrap_or("").to_string(),
            None => raw.clone(),
        };
        ev.push(format!("{}: {raw} (want {})", path.display(), s.want));
        if matches(s, &value) {
            return Ok(path);
        }
    }
    let name = files[0];
    Err(format!(
        "{name} is not {} in the container's cgroup {}",
        s.want,
        dirs.first().map_or(String::new(), |d| d.display().to_string())
    ))
}

/// The check; see the module doc.
pub(super) fn cgroup(cx: &Ctx) -> Check {
    const ID: &str = "cgroup";
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let path = cx.host.proc().join(init.to_string()).join("cgroup");
    let lines = match std::fs::read_to_string(&path) {
        Ok(t) => parse_proc_cgroup(&t),
        Err(e) => return Check::fail(ID, format!("cannot read {}: {e}", path.display()), vec![]),
    };
    let mut ev: Vec<String> =
        lines.iter().map(|l| format!("{}: {}:{}", path.display(), l.controllers.join(","), l.path)).collect();
    let settings = wanted(cx.facts);
    if settings.is_empty() {
        return Check::skip(ID, "the live XML sets no resource limits", ev);
    }
    let cgroot = cx.host.sys().join("fs/cgroup");
    let v1 = lines.iter().any(|l| l.controllers.iter().any(|c| !c.starts_with("name=")));
    let (mut bad, mut found, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for s in &settings {
        let r =
            if v1 { check_v1(&cgroot, &lines, s, &mut ev) } else { check_v2(&cgroot, &lines, s, &mut ev, &mut notes) };
        match r {
            Ok(Some(desc)) => found.push(desc),
            Ok(None) => {}
            Err(e) => bad.push(e),
        }
    }
    let mut ok = format!("{} ({})", found.join(", "), if v1 { "cgroup v1" } else { "cgroup v2" });
    if !notes.is_empty() {
        ok.push_str(&format!("; {}", notes.join("; ")));
    }
    Check::verdict(ID, bad, ok, ev)
}

/// One setting on cgroup v1; Ok(Some(description)) when it matches.
fn check_v1(cgroot: &Path, lines: &[CgLine], s: &Setting, ev: &mut Vec<String>) -> Result<Option<String>, String> {
    let line = lines
        .iter()
        .find(|l| l.controllers.iter().any(|c| c == s.v1_ctrl))
        .ok_or_else(|| format!("the init is in no {} cgroup", s.v1_ctrl))?;
    let mount = v1_mount(cgroot, line, s.v1_ctrl)
        .ok_or_else(|| format!("no {} hierarchy under {}", s.v1_ctrl, cgroot.display()))?;
    let dirs = candidate_dirs(&mount, &line.path)?;
    find_value(&dirs, s.v1_files, s, None, ev)?;
    Ok(Some(format!("{} {}", s.v1_files[0], s.want)))
}

/// One setting on cgroup v2; skipped settings add a note.
fn check_v2(
    cgroot: &Path,
    lines: &[CgLine],
    s: &Setting,
    ev: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let line = lines.iter().find(|l| l.controllers.is_empty()).ok_or("no cgroup v2 line (0::/...) for the init")?;
    let (file, field) = match s.v2 {
        V2::Skip(why) => {
            notes.push(why.to_string());
            return Ok(None);
        }
        V2::File(f) => (f, None),
        V2::CpuMax(i) => ("cpu.max", Some(i)),
    };
    let dirs = candidate_dirs(cgroot, &line.path)?;
    find_value(&dirs, &[file], s, field, ev)?;
    let what = match field {
        Some(0) => "cpu.max quota",
        Some(_) => "cpu.max period",
        None => file,
    };
    Ok(Some(format!("{what} {}", s.want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_v2_and_colons() {
        let l = parse_proc_cgroup("4:cpu,cpuacct:/machine/x\n1:name=systemd:/\n0::/a:b\n");
        assert_eq!(l[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(l[0].path, "/machine/x");
        assert!(l[2].controllers.is_empty());
        assert_eq!(l[2].path, "/a:b");
    }

    #[test]
    fn candidates_stop_above_the_partition() {
        let d = candidate_dirs(Path::new("/m"), "/machine/lxc-1-web1.libvirt-lxc/init").unwrap();
        assert_eq!(
            d,
            [
                PathBuf::from("/m/machine/lxc-1-web1.libvirt-lxc/init"),
                PathBuf::from("/m/machine/lxc-1-web1.libvirt-lxc")
            ]
        );
        assert!(candidate_dirs(Path::new("/m"), "/").unwrap_err().contains("not in a cgroup of its own"));
        assert!(candidate_dirs(Path::new("/m"), "/machine").is_err());
        assert!(candidate_dirs(Path::new("/m"), "/machine/../etc").is_err());
    }

    #[test]
    fn memory_may_read_back_page_rounded() {
        // 1001 KiB is not a whole number of pages: the kernel keeps 1001 KiB rounded down.
        let want = 1001 * 1024;
        let s = Setting {
            v1_ctrl: "memory",
            v1_files: &["memory.limit_in_bytes"],
            v2: V2::File("memory.max"),
            want,
            page_rounded: true,
        };
        assert!(matches(&s, "1025024"));
        assert!(matches(&s, &(want - want % page_size()).to_string()));
        assert!(!matches(&s, "max") && !matches(&s, "1") && !matches(&s, "1025025"));
        let q = Setting {
            v1_ctrl: "cpu",
            v1_files: &["cpu.cfs_quota_us"],
            v2: V2::CpuMax(0),
            want: -1,
            page_rounded: false,
        };
        assert!(matches(&q, "max") && matches(&q, "-1"));
    }
}
