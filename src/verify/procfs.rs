//! Reading `/proc` (under a [`super::HostRoot`]): the process table, `status` fields,
//! namespace links and small text files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One process from `/proc/PID/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ProcInfo {
    pub ppid: u32,
    pub comm: String,
    /// The state letter (`S`, `R`, `Z` for a zombie...).
    pub state: char,
}

/// Every process on the host, by PID.
#[derive(Clone, Debug, Default)]
pub(super) struct ProcTable {
    pub procs: BTreeMap<u32, ProcInfo>,
}

impl ProcTable {
    /// Reads `{proc}/*/stat`; processes that vanish or do not parse are left out.
    pub fn read(proc: &Path) -> ProcTable {
        let mut procs = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(proc) else { return ProcTable { procs } };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            if let Some(info) = parse_stat(&stat) {
                procs.insert(pid, info);
            }
        }
        ProcTable { procs }
    }

    /// The command name of `pid`, or `?`.
    pub fn comm(&self, pid: u32) -> &str {
        self.procs.get(&pid).map_or("?", |p| p.comm.as_str())
    }

    /// `root` and all its descendants by parent PID.
    pub fn descendants(&self, root: u32) -> BTreeSet<u32> {
        let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (pid, info) in &self.procs {
            children.entry(info.ppid).or_default().push(*pid);
        }
        let mut out = BTreeSet::from([root]);
        let mut todo = vec![root];
        while let Some(p) = todo.pop() {
            for c in children.get(&p).into_iter().flatten() {
                if out.insert(*c) {
                    todo.push(*c);
                }
            }
        }
        out
    }

    /// The container's processes: `init`, its descendants, and every process in `init`'s
    /// pid namespace when that namespace is not the host's (processes entered with
    /// `virsh lxc-enter-namespace` or `nsenter` are not descendants of the init).
    pub fn container_members(&self, proc: &Path, init: u32) -> BTreeSet<u32> {
        let mut members = self.descendants(init);
        let inner = ns_link(proc, init, "pid");
        let host = ns_link(proc, 1, "pid");
        if let (Ok(inner), Ok(host)) = (&inner, &host) {
            if inner != host {
                for pid in self.procs.keys() {
                    if ns_link(proc, *pid, "pid").as_ref() == Ok(inner) {
                        members.insert(*pid);
                    }
                }
            }
        }
        members
    }
}

/// Parses `/proc/PID/stat`: the command is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted after the *last* `)`. Field 4 is the parent PID.
pub(super) fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcInfo { ppid, comm, state })
}

/// Is the process of `proc_dir` (`/proc/PID`) a zombie (dead, not reaped yet)? False when
/// its `stat` cannot be read or parsed.
pub(crate) fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat")).ok().and_then(|s| parse_stat(&s)).is_some_and(|p| p.state == 'Z')
}

/// The target of `{proc}/PID/ns/KIND`, e.g. `net:[4026531840]`.
pub(super) fn ns_link(proc: &Path, pid: u32, kind: &str) -> Result<String, String> {
    let path = proc.join(pid.to_string()).join("ns").join(kind);
    std::fs::read_link(&path).map(|t| t.to_string_lossy().into_owned()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The inode in a namespace link (`net:[4026531840]` → `4026531840`), or the link itself.
pub(super) fn ns_inode(link: &str) -> &str {
    link.split_once('[').and_then(|(_, r)| r.strip_suffix(']')).unwrap_or(link)
}

/// The host's namespace of `kind`: PID 1's, or, where PID 1's links cannot be read (a
/// sandboxed PID 1), lxcprov's own, which runs in the host's namespaces. Returns the link
/// and the path it was read from.
pub(super) fn host_ns_link(proc: &Path, kind: &str) -> Result<(String, String), String> {
    match ns_link(proc, 1, kind) {
        Ok(l) => Ok((l, format!("{}/1/ns/{kind}", proc.display()))),
        Err(e1) => {
            let path = proc.join("self").join("ns").join(kind);
            std::fs::read_link(&path)
                .map(|t| (t.to_string_lossy().into_owned(), path.display().to_string()))
                .map_err(|e2| format!("{e1}; {}: {e2}", path.display()))
        }
    }
}

/// Compares the init's namespace of `kind` with the host's. Returns `Ok((inner, host))` links
/// or an error naming what could not be read. Evidence lines are appended to `ev`.
pub(super) fn ns_pair(proc: &Path, init: u32, kind: &str, ev: &mut Vec<String>) -> Result<(String, String), String> {
    let inner = ns_link(proc, init, kind)?;
    let (host, from) = host_ns_link(proc, kind)?;
    ev.push(format!("{}/{init}/ns/{kind} -> {inner}", proc.display()));
    ev.push(format!("{from} -> {host}"));
    Ok((inner, host))
}

/// A file's text, trimmed, with the path in the error.
pub(super) fn read_trim(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The value of `Key:` in `/proc/PID/status` text.
pub(super) fn status_field<'s>(status: &'s str, key: &str) -> Option<&'s str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_comm() {
        let info = parse_stat("4242 (a) b (c)) S 100 4242 4242 0 -1").unwrap();
        assert_eq!(info, ProcInfo { ppid: 100, comm: "a) b (c)".into(), state: 'S' });
        assert!(parse_stat("4242 nocomm S 1").is_none());
        assert!(parse_stat("4242 (x) S notanumber").is_none());
    }

    #[test]
    fn descendants_follow_ppid() {
        let mut t = ProcTable::default();
        for (pid, ppid) in [(1, 0), (10, 1), (11, 10), (12, 11), (20, 1)] {
            t.procs.insert(pid, ProcInfo { ppid, comm: "x".into(), state: 'S' });
        }
        assert_eq!(t.descendants(10).into_iter().collect::<Vec<_>>(), [10, 11, 12]);
        assert_eq!(t.descendants(20).into_iter().collect::<Vec<_>>(), [20]);
    }

    #[test]
    fn status_fields_and_ns_inodes() {
        let s = "Name:\tinit\nNSpid:\t4242\t1\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(status_field(s, "NSpid"), Some("4242\t1"));
        assert_eq!(status_field(s, "CapBnd"), Some("000001ffffffffff"));
        assert_eq!(status_field(s, "Pid"), None);
        assert_eq!(ns_inode("net:[4026531840]"), "4026531840");
        assert_eq!(ns_inode("weird"), "weird");
    }
}
