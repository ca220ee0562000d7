//! SELinux MLS/MCS levels: `s0`, `s0:c1,c2`, `s0-s0:c0.c1023`.
//!
//! sVirt separates containers by giving each a level with two categories. One level
//! *dominates* another when its sensitivity is at least as high and its category set is a
//! superset; a process whose level dominates a container's can read that container's files.

use std::collections::BTreeSet;
use std::fmt;

/// Highest MCS category in the reference policy (c0..c1023).
pub const MAX_CATEGORY: u16 = 1023;

/// The low (effective) part of a level: a sensitivity and a set of categories.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Level {
    pub sensitivity: u16,
    pub categories: BTreeSet<u16>,
}

impl Level {
    /// Parses a level. For a range `low-high` this is the low (effective) level; use
    /// [`Level::parse_range`] where the high end (clearance) matters, as for dominance.
    pub fn parse(s: &str) -> Result<Level, String> {
        let low = s.split('-').next().unwrap_or(s);
        Self::parse_single(low)
    }

    /// Parses `low-high` (or a single level, which is its own high end); returns (low, high).
    pub fn parse_range(s: &str) -> Result<(Level, Level), String> {
        match s.split_once('-') {
            Some((l, h)) => Ok((Self::parse_single(l)?, Self::parse_single(h)?)),
            None => {
                let l = Self::parse_single(s)?;
                Ok((l.clone(), l))
            }
        }
    }

    fn parse_single(s: &str) -> Result<Level, String> {
        let (sens, cats) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let sensitivity = sens
            .strip_prefix('s')
            .and_then(|n| n.parse::<u16>().ok())
            .ok_or_else(|| format!("{s:?} does not start with a sensitivity such as s0"))?;
        let mut categories = BTreeSet::new();
        if let Some(cats) = cats {
            for part in cats.split(',') {
                let cat = |c: &str| -> Result<u16, String> {
                    c.strip_prefix('c')
                        .and_then(|n| n.parse::<u16>().ok())
                        .filter(|n| *n <= MAX_CATEGORY)
                        .ok_or_else(|| format!("{c:?} is not a category c0..c{MAX_CATEGORY}"))
                };
                match part.split_once('.') {
                    Some((a, b)) => {
                        let (a, b) = (cat(a)?, cat(b)?);
                        if a > b {
                            return Err(format!("category range {part:?} is reversed"));
                        }
                        categories.extend(a..=b);
                    }
                    None => {
                        let c = cat(part)?;
                        if !categories.insert(c) {
                            return Err(format!("category c{c} is repeated: categories must be distinct"));
                        }
                    }
                }
            }
        }
        Ok(Level { sensitivity, categories })
    }

    /// Does `self` dominate `other` (sensitivity ≥ and categories ⊇)?
    pub fn dominates(&self, other: &Level) -> bool {
        self.sensitivity >= other.sensitivity && self.categories.is_superset(&other.categories)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.sensitivity)?;
        let cats: Vec<String> = self.categories.iter().map(|c| format!("c{c}")).collect();
        if !cats.is_empty() {
            write!(f, ":{}", cats.join(","))?;
        }
        Ok(())
    }
}

/// Splits `user:role:type:level` into its type and level text.
pub fn split_context(ctx: &str) -> Option<(&str, &str)> {
    let mut it = ctx.trim_end_matches('\0').trim().splitn(4, ':');
    let (_u, _r, t, l) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some((t, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_ranges() {
        let l = Level::parse("s0:c12,c345").unwrap();
        assert_eq!(l.categories.iter().copied().collect::<Vec<_>>(), [12, 345]);
        assert_eq!(l.to_string(), "s0:c12,c345");
        let (lo, hi) = Level::parse_range("s0-s0:c0.c1023").unwrap();
        assert!(lo.categories.is_empty());
        assert_eq!(hi.categories.len(), 1024);
        assert!(Level::parse("s0:c1,c1").is_err());
        assert!(Level::parse("s0:c1024").is_err());
        assert!(Level::parse("x0").is_err());
        assert!(Level::parse("s0:c5.c2").is_err());
    }

    #[test]
    fn dominance() {
        let a = Level::parse("s0:c1,c2").unwrap();
        let b = Level::parse("s0:c1,c3").unwrap();
        let all = Level::parse("s0:c0.c1023").unwrap();
        let one = Level::parse("s0:c1").unwrap();
        assert!(!a.dominates(&b) && !b.dominates(&a));
        assert!(all.dominates(&a));
        assert!(a.dominates(&one));
        assert!(a.dominates(&a));
    }

    #[test]
    fn splits_contexts() {
        assert_eq!(split_context("system_u:system_r:container_t:s0:c1,c2\0"), Some(("container_t", "s0:c1,c2")));
        assert_eq!(split_context("garbage"), None);
    }
}
