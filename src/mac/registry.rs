//! The MCS label registry for lab mode: static SELinux levels `s0:cA,cB`, one distinct pair
//! per container, kept in `STATE/mcs-registry.json` and updated atomically (temp file +
//! rename) under an exclusive lock, so concurrent runs never hand out the same pair and a
//! crash mid-write leaves the previous registry intact.
//!
//! Pairs are always two distinct categories, so no allocated level dominates another. A
//! pair is never handed out when it is already in use on the host by anything else: the
//! caller passes the levels it found on processes and root filesystems (see `audit`).

use crate::mcs::Level;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Categories handed out: c0 and the top of the range are left to the host (c0.c1023 ranges
/// and s0:c0 are common administrative levels).
const FIRST: u16 = 1;
const LAST: u16 = 1022;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Registry {
    /// container name -> level text (`s0:c12,c345`)
    pub labels: BTreeMap<String, String>,
}

/// The registry, locked for as long as this value lives.
pub type Locked = crate::state::Locked<Registry>;

impl crate::state::RegistryFile for Registry {
    const BASE: &'static str = "mcs-registry";
    const WHAT: &'static str = "MCS registry";
    const MAX: u64 = crate::fsutil::STATE_MAX;
    fn parse(text: &str) -> std::result::Result<Registry, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// Opens and locks the registry in `state_dir` (created if missing).
pub fn open(state_dir: &Path) -> Result<Locked> {
    crate::state::open_registry(state_dir)
}

impl Registry {
    /// The level of `name`, allocating a fresh pair if it has none. `in_use` holds levels
    /// seen on the host (processes, root filesystems) that must not be reused.
    pub fn allocate(&mut self, name: &str, in_use: &[Level], seed: u64) -> Result<String> {
        if let Some(l) = self.labels.get(name) {
            return Ok(l.clone());
        }
        let taken: BTreeSet<(u16, u16)> = self
            .labels
            .values()
            .filter_map(|l| Level::parse(l).ok())
            .chain(in_use.iter().cloned())
            .filter_map(|l| pair(&l))
            .collect();
        let span = (LAST - FIRST + 1) as u64;
        let total = span * (span - 1) / 2;
        // Walk every pair from a seeded start with a stride coprime to the number of pairs
        // (a prime that divides neither 511 nor 1021), so that neighbours share no category.
        const STRIDE: u64 = 7919;
        for i in 0..total {
            let k = seed.wrapping_add(i.wrapping_mul(STRIDE)) % total;
            let (a, b) = unrank(k, span);
            let p = (FIRST + a, FIRST + b);
            if !taken.contains(&p) {
                let level = format!("s0:c{},c{}", p.0, p.1);
                self.labels.insert(name.to_string(), level.clone());
                return Ok(level);
            }
        }
        bail!("no free MCS category pair left ({} in use)", taken.len())
    }

    pub fn release(&mut self, name: &str) -> Option<String> {
        self.labels.remove(name)
    }
}

/// The two categories of a two-category level.
fn pair(l: &Level) -> Option<(u16, u16)> {
    let v: Vec<u16> = l.categories.iter().copied().collect();
    (v.len() == 2).then(|| (v[0], v[1]))
}

/// The k-th pair (a < b) of `n` items in lexicographic order.
fn unrank(mut k: u64, n: u64) -> (u16, u16) {
    let mut a = 0;
    loop {
        let row = n - 1 - a;
        if k < row {
            return (a as u16, (a + 1 + k) as u16);
        }
        k -= row;
        a += 1;
    }
}

/// A seed for spreading allocations: the current time's nanoseconds.
pub fn seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_distinct_two_category_levels() {
        let mut r = Registry::default();
        let mut seen = BTreeSet::new();
        for i in 0..500 {
            let l = r.allocate(&format!("s{i}"), &[], 12345).unwrap();
            let lv = Level::parse(&l).unwrap();
            assert_eq!(lv.categories.len(), 2, "{l}");
            assert!(seen.insert(l.clone()), "{l} handed out twice");
            assert!(!lv.categories.contains(&0) && !lv.categories.contains(&1023));
        }
        // No allocated level dominates another.
        let levels: Vec<Level> = r.labels.values().map(|l| Level::parse(l).unwrap()).collect();
        for (i, a) in levels.iter().enumerate() {
            for (j, b) in levels.iter().enumerate() {
                assert!(i == j || !a.dominates(b));
            }
        }
    }

    #[test]
    fn same_name_keeps_its_pair_and_host_levels_are_avoided() {
        let mut r = Registry::default();
        let a = r.allocate("a", &[], 0).unwrap();
        assert_eq!(r.allocate("a", &[], 999).unwrap(), a);
        // seed 0 starts at (c1,c2); make the host use it: the next candidate is taken instead.
        let mut r = Registry::default();
        let first = Registry::default().allocate("x", &[], 0).unwrap();
        assert_eq!(first, "s0:c1,c2");
        let host = [Level::parse("s0:c1,c2").unwrap()];
        let second = r.allocate("x", &host, 0).unwrap();
        assert_ne!(second, first);
        let mut r2 = Registry::default();
        r2.allocate("a", &[], 0).unwrap();
        assert_eq!(r2.allocate("b", &[], 0).unwrap(), second, "a registry entry is avoided like a host level");
        r.release("x");
        assert!(r.labels.is_empty());
    }

    #[test]
    fn registry_survives_and_recovers() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut l = open(d.path()).unwrap();
            l.reg.allocate("a", &[], 1).unwrap();
            l.save().unwrap();
        }
        // A crash mid-write leaves a stray temp file, never a torn registry.
        std::fs::write(d.path().join(".lxcprov-XXXX"), "{ torn").unwrap();
        let l = open(d.path()).unwrap();
        assert!(l.reg.labels.contains_key("a"));
        drop(l);
        std::fs::write(d.path().join("mcs-registry.json"), "{ torn").unwrap();
        let e = open(d.path()).err().unwrap().to_string();
        assert!(e.contains("not a valid MCS registry") && e.contains("move it aside"), "{e}");
    }

    #[test]
    fn neighbours_share_no_category() {
        let mut r = Registry::default();
        let a = Level::parse(&r.allocate("a", &[], 99).unwrap()).unwrap();
        let b = Level::parse(&r.allocate("b", &[], 99).unwrap()).unwrap();
        assert!(a.categories.is_disjoint(&b.categories), "{a} {b}");
    }

    #[test]
    fn unrank_covers_all_pairs() {
        let n = 5;
        let all: Vec<(u16, u16)> = (0..10).map(|k| unrank(k, n)).collect();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0], (0, 1));
        assert_eq!(all[9], (3, 4));
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 10);
    }
}
