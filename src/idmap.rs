//! Isolated id maps (`security.idmap: isolated`): a 65536-id range of its own for every
//! container, the same for uids and gids, kept in `STATE/idmap-registry.json` and updated
//! atomically (temp file + rename) under an exclusive lock, like the MCS registry: two runs
//! never hand out overlapping ranges, and a crash mid-write leaves the previous registry.
//!
//! A range is never handed out when it meets, in the uid or the gid space, anything the
//! host already uses ([`host_taken`]): `/etc/subuid` and `/etc/subgid` ranges, the ids of
//! `/etc/passwd` and `/etc/group`, the ids of running processes, every user namespace's map
//! in `/proc/*/uid_map` and `gid_map`, and the maps lxcprov's own containers were shifted for.
//! Ranges start at 16 × 65536 (1048576), above the built-in profiles' fixed maps and the ids
//! distributions give users, and stop before the top block, which holds the "no id" 2^32-1.

use crate::profile::{IdRange, Idmap};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Ids per isolated map: a full 16-bit id space, as systemd and `/etc/subuid` expect.
pub const SIZE: u32 = crate::profile::ISOLATED_IDS;
/// First and last blocks of [`SIZE`] ids handed out.
const FIRST_BLOCK: u32 = 16;
const LAST_BLOCK: u32 = 65534;
/// The registry file is small (tens of bytes a container); this bounds a hostile one.
const MAX_REGISTRY: u64 = 8 << 20;
/// Host files read for taken ids (`/etc/passwd` of a directory-backed host can be large).
use crate::host::MAX_HOST_FILE;

/// A half-open interval of ids `[start, end)`.
pub type Span = (u64, u64);

#[derive(Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// container name -> the first host id of its range (uid and gid alike)
    pub ranges: BTreeMap<String, u32>,
}

pub use crate::profile::isolated_map_at as map_at;

/// The host ids a map uses, uid and gid spans.
pub fn spans_of(m: &Idmap) -> [Span; 2] {
    let s = |r: IdRange| (u64::from(r.target), u64::from(r.target) + u64::from(r.count));
    [s(m.uid), s(m.gid)]
}

fn overlaps(a: Span, b: Span) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl Registry {
    /// Parses and checks a registry file's text: every range a valid block, none shared.
    pub fn parse(text: &str) -> Result<Registry, String> {
        let r: Registry = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = BTreeMap::new();
        for (name, &start) in &r.ranges {
            crate::name::Name::parse(name).map_err(|e| format!("entry {name:?}: {e:#}"))?;
            if start % SIZE != 0 || !(FIRST_BLOCK..=LAST_BLOCK).contains(&(start / SIZE)) {
                return Err(format!("entry {name:?}: {start} is not the start of a range lxcprov hands out"));
            }
            if let Some(other) = seen.insert(start, name) {
                return Err(format!("{other} and {name} share the range at {start}"));
            }
        }
        Ok(r)
    }

    /// The isolated map of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<Idmap> {
        self.ranges.get(name).map(|&s| map_at(s))
    }

    /// The map of `name`: its own if it has one, else the lowest free range, recorded.
    /// Returns the map and whether this call allocated it.
    pub fn allocate(&mut self, name: &str, taken: &[Span]) -> Result<(Idmap, bool)> {
        if let Some(m) = self.get(name) {
            return Ok((m, false));
        }
        let start = self.lowest_free(taken)?;
        self.ranges.insert(name.to_string(), start);
        Ok((map_at(start), true))
    }

    /// What [`Registry::allocate`] would give `name`, without recording it.
    pub fn peek(&self, name: &str, taken: &[Span]) -> Result<Idmap> {
        match self.get(name) {
            Some(m) => Ok(m),
            None => self.lowest_free(taken).map(map_at),
        }
    }

    fn lowest_free(&self, taken: &[Span]) -> Result<u32> {
        let mut all: Vec<Span> = taken.to_vec();
        all.extend(self.ranges.values().map(|&s| (u64::from(s), u64::from(s) + u64::from(SIZE))));
        all.sort_unstable();
        let mut block = u64::from(FIRST_BLOCK);
        for (a, b) in all {
            let (lo, hi) = (block * u64::from(SIZE), (block + 1) * u64::from(SIZE));
            if b <= lo {
                continue;
            }
            if a >= hi {
                break;
            }
            // This span meets the candidate block: the next candidate starts after it.
            block = b.div_ceil(u64::from(SIZE));
        }
        if block > u64::from(LAST_BLOCK) {
            bail!(
                "no free 65536-id range is left for an isolated id map ({} allocated); destroy --purge containers you no longer need",
                self.ranges.len()
            );
        }
        Ok(block as u32 * SIZE)
    }

    /// Another container whose isolated range meets `m` (a fixed map about to be used).
    pub fn overlapping(&self, m: &Idmap, except: &str) -> Option<(String, Idmap)> {
        self.ranges.iter().filter(|(n, _)| n.as_str() != except).find_map(|(n, &s)| {
            let theirs = map_at(s);
            let meets = spans_of(m).iter().any(|&a| spans_of(&theirs).iter().any(|&b| overlaps(a, b)));
            meets.then(|| (n.clone(), theirs))
        })
    }

    pub fn release(&mut self, name: &str) -> Option<Idmap> {
        self.ranges.remove(name).map(map_at)
    }
}

/// The registry, locked for as long as this value lives.
pub type Locked = crate::state::Locked<Registry>;

impl crate::state::RegistryFile for Registry {
    const BASE: &'static str = "idmap-registry";
    const WHAT: &'static str = "id-map registry";
    const MAX: u64 = MAX_REGISTRY;
    fn parse(text: &str) -> std::result::Result<Registry, String> {
        Registry::parse(text)
    }
}

pub fn registry_path(state_dir: &Path) -> PathBuf {
    crate::state::registry_path::<Registry>(state_dir)
}

/// Opens and locks the registry in `state_dir` (created if missing).
pub fn open(state_dir: &Path) -> Result<Locked> {
    crate::state::open_registry(state_dir)
}

/// Reads the registry at `path` (`STATE/idmap-registry.json`) without taking its lock.
pub fn read(path: &Path) -> Result<Registry> {
    crate::state::read_registry(path.parent().unwrap_or(Path::new(".")))
}

/// Gives back `name`'s range, if it has one (its tree is gone, or was never made).
pub fn release(state_dir: &Path, name: &str) -> Result<Option<Idmap>> {
    let mut l = open(state_dir)?;
    let m = l.reg.release(name);
    if m.is_some() {
        l.save()?;
    }
    Ok(m)
}

/// Ids the host uses, which no isolated range may meet: `/etc/subuid`, `/etc/subgid`,
/// `/etc/passwd` and `/etc/group` under `etc`; running processes' ids and user-namespace
/// maps under `proc`; and the maps in lxcprov's container records under `records`.
pub fn host_taken(etc: &Path, proc_: &Path, records: &Path) -> Vec<Span> {
    let mut v = vec![];
    let read = |p: &Path| crate::fsutil::read_regular_bounded_to_string(p, MAX_HOST_FILE, "a host id file").ok();
    for f in ["subuid", "subgid"] {
        for line in read(&etc.join(f)).unwrap_or_default().lines() {
            let mut it = line.trim().split(':');
            let (_, Some(a), Some(n)) = (it.next(), it.next(), it.next()) else { continue };
            if let (Ok(a), Ok(n)) = (a.trim().parse::<u64>(), n.trim().parse::<u64>()) {
                v.push((a, a.saturating_add(n)));
            }
        }
    }
    for f in ["passwd", "group"] {
        for line in read(&etc.join(f)).unwrap_or_default().lines() {
            if let Some(Ok(id)) = line.split(':').nth(2).map(|s| s.trim().parse::<u64>()) {
                v.push((id, id + 1));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(proc_) {
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let dir = e.path();
            for f in ["uid_map", "gid_map"] {
                for line in std::fs::read_to_string(dir.join(f)).unwrap_or_default().lines() {
                    let n: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                    // The initial namespace's identity map covers everything: not a container's.
                    if let [inside, outside, count] = n[..] {
                        if !(inside == 0 && outside == 0 && count >= u64::from(u32::MAX)) {
                            v.push((outside, outside.saturating_add(count)));
                        }
                    }
                }
            }
            for line in std::fs::read_to_string(dir.join("status")).unwrap_or_default().lines() {
                if let Some(rest) = line.strip_prefix("Uid:").or_else(|| line.strip_prefix("Gid:")) {
                    v.extend(rest.split_whitespace().filter_map(|x| x.parse::<u64>().ok()).map(|id| (id, id + 1)));
                }
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(records) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Ok(Some(r)) = crate::state::Record::load(&p) {
                    for m in r.idmap.iter().chain(r.shift_started.iter()) {
                        v.extend(spans_of(m));
                    }
                }
            }
        }
    }
    v
}

/// [`host_taken`] on the real host, for `state_dir`'s records.
pub fn host_taken_now(state_dir: &Path) -> Vec<Span> {
    host_taken(Path::new("/etc"), Path::new("/proc"), &state_dir.join("containers"))
}

/// `doctor` and `lab up`: can systemd containers with different maps run side by side here?
/// Not on a host whose PID 1 is not systemd but which mounts a `name=systemd` cgroup v1
/// hierarchy: libvirt puts every container in its root, owned by one map's root, and a
/// second systemd cannot create its cgroups there (other inits do not care).
pub fn isolated_maps_run_side_by_side(host: &crate::host::HostRoot) -> bool {
    crate::host::pid1_is_systemd(&host.proc()) || !host.sys().join("fs/cgroup/systemd/cgroup.procs").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_distinct_aligned_and_avoid_what_the_host_uses() {
        let mut r = Registry::default();
        let b = |k: u64| k * u64::from(SIZE);
        // A subuid range over blocks 16 and 17, a host user in block 19, a namespace in 20.
        let taken = vec![(b(16) - 5, b(17) + 1), (b(19) + 1000, b(19) + 1001), (b(20), b(21))];
        let (m1, new1) = r.allocate("a", &taken).unwrap();
        assert!(new1);
        assert_eq!(u64::from(m1.uid.target), b(18));
        assert_eq!(m1.uid, m1.gid);
        assert_eq!((m1.uid.start, m1.uid.count), (0, SIZE));
        let (m2, _) = r.allocate("b", &taken).unwrap();
        assert_eq!(u64::from(m2.uid.target), b(21), "19 holds a host user, 20 a namespace");
        // Allocation is stable and peek agrees without writing.
        assert_eq!(r.allocate("a", &taken).unwrap(), (m1, false));
        assert_eq!(r.peek("c", &taken).unwrap(), map_at(b(22) as u32));
        assert!(!r.ranges.contains_key("c"));
        // A released range is handed out again.
        assert_eq!(r.release("a"), Some(m1));
        assert_eq!(r.allocate("c", &taken).unwrap().0, m1);
        // A fixed map meeting a range is found; its own container is not.
        let mut fixed = map_at(m2.uid.target + 100);
        fixed.uid.count = 1;
        assert_eq!(r.overlapping(&fixed, "x").map(|(n, _)| n), Some("b".into()));
        assert_eq!(r.overlapping(&fixed, "b"), None);
    }

    #[test]
    fn a_full_id_space_is_a_clear_error() {
        let r = Registry::default();
        let e = r.peek("a", &[(0, u64::from(u32::MAX) + 1)]).unwrap_err().to_string();
        assert!(e.contains("no free 65536-id range"), "{e}");
        // The top block (it holds 2^32-1) is never handed out.
        let taken = [(0, u64::from(LAST_BLOCK) * u64::from(SIZE))];
        assert_eq!(r.peek("a", &taken).unwrap().uid.target, LAST_BLOCK * SIZE);
        let taken = [(0, u64::from(LAST_BLOCK) * u64::from(SIZE) + 1)];
        assert!(r.peek("a", &taken).is_err());
    }

    #[test]
    fn a_hostile_or_torn_registry_is_refused_with_advice() {
        let d = tempfile::tempdir().unwrap();
        let p = registry_path(d.path());
        for bad in [
            "{ torn",
            r#"{"ranges": {"a": 1048577}}"#,
            r#"{"ranges": {"a": 0}}"#,
            r#"{"ranges": {"a": 1048576, "b": 1048576}}"#,
            r#"{"ranges": {"../x": 1048576}}"#,
            r#"{"ranges": {}, "extra": 1}"#,
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = format!("{:#}", open(d.path()).err().expect(bad));
            assert!(e.contains("move it aside"), "{bad}: {e}");
        }
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        assert!(open(d.path()).is_err(), "a symlinked registry is refused");
        std::fs::remove_file(&p).unwrap();
        let mut l = open(d.path()).unwrap();
        l.reg.allocate("a", &[]).unwrap();
        l.save().unwrap();
        drop(l);
        assert_eq!(open(d.path()).unwrap().reg.get("a"), Some(map_at(FIRST_BLOCK * SIZE)));
    }

    #[test]
    fn host_ids_are_read_from_etc_proc_and_records() {
        let d = tempfile::tempdir().unwrap();
        let (etc, proc_, rec) = (d.path().join("etc"), d.path().join("proc"), d.path().join("containers"));
        for p in [&etc, &proc_.join("42"), &proc_.join("self"), &rec] {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(etc.join("subuid"), "alice:1048576:65536\nbad line\n").unwrap();
        std::fs::write(etc.join("subgid"), "alice:2000000:10\n").unwrap();
        std::fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\nbig:x:3000000:5::/:/bin/sh\n").unwrap();
        std::fs::write(etc.join("group"), "g:x:4000000:\n").unwrap();
        std::fs::write(proc_.join("42/uid_map"), "         0     500000      65536\n").unwrap();
        std::fs::write(proc_.join("42/gid_map"), "         0          0 4294967295\n").unwrap();
        std::fs::write(proc_.join("42/status"), "Name:\tx\nUid:\t7000000\t7000000\t7000000\t7000000\n").unwrap();
        std::fs::write(proc_.join("self/uid_map"), "0 9000000 1\n").unwrap();
        let r = crate::state::Record { name: "w".into(), idmap: Some(map_at(5_000_000)), ..Default::default() };
        r.save(&rec.join("w.json")).unwrap();
        let t = host_taken(&etc, &proc_, &rec);
        for want in [(1048576, 1114112), (2000000, 2000010), (0, 1), (3000000, 3000001), (4000000, 4000001)] {
            assert!(t.contains(&want), "{want:?} in {t:?}");
        }
        assert!(t.contains(&(500000, 565536)) && t.contains(&(7000000, 7000001)));
        assert!(t.contains(&(5_000_000, 5_065_536)));
        assert!(!t.contains(&(0, 4294967295)), "the identity map is not a container's");
        assert!(!t.iter().any(|s| s.0 == 9000000), "only numeric /proc entries are processes");
    }
}
