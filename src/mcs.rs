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
            .and_then(number)
            .ok_or_else(|| format!("{s:?} does not start with a sensitivity such as s0"))?;
        let mut categories = BTreeSet::new();
        if let Some(cats) = cats {
            for part in cats.split(',') {
                let cat = |c: &str| -> Result<u16, String> {
                    c.strip_prefix('c').and_then(number).filter(|n| *n <= MAX_CATEGORY).ok_or_else(|| {
                        format!("{c:?} is not a category c0..c{MAX_CATEGORY} (decimal, no sign or leading zeros)")
                    })
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

    /// Parses a single level (no range) that must be written exactly as the kernel writes
    /// it: `s0`, `s0:c1,c2`, `s0:c0.c1023` (categories ascending, runs of three or more as
    /// `cA.cB`, no duplicates, no leading zeros or signs).
    pub fn parse_canonical(s: &str) -> Result<Level, String> {
        if s.contains('-') {
            return Err(format!("{s:?} is a range, not a single level"));
        }
        let l = Self::parse_single(s)?;
        let canon = l.canonical();
        if canon != s {
            return Err(format!("level {s:?} is not in canonical form: write it as {canon:?}"));
        }
        Ok(l)
    }

    /// The kernel's spelling of this level: runs of three or more categories as `cA.cB`,
    /// shorter runs with commas (`s0:c1,c2`, `s0:c0.c1023`, `s0:c1,c2,c5.c9`).
    pub fn canonical(&self) -> String {
        let mut out = format!("s{}", self.sensitivity);
        let cats: Vec<u16> = self.categories.iter().copied().collect();
        let mut parts: Vec<String> = vec![];
        let mut i = 0;
        while i < cats.len() {
            let mut j = i;
            while j + 1 < cats.len() && cats[j + 1] == cats[j] + 1 {
                j += 1;
            }
            if j - i >= 2 {
                parts.push(format!("c{}.c{}", cats[i], cats[j]));
            } else {
                parts.extend(cats[i..=j].iter().map(|c| format!("c{c}")));
            }
            i = j + 1;
        }
        if !parts.is_empty() {
            out.push(':');
            out.push_str(&parts.join(","));
        }
        out
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

/// A decimal number as the kernel writes it: ASCII digits only, no sign, no leading zero.
fn number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// The SELinux types a container process may be given by a static label: refpolicy's
/// `container_t`, and the older sVirt names for it (`svirt_lxc_net_t`, Fedora's
/// `svirt_sandbox_process_t` alias). The lab (scripts/selinux) uses `container_t`.
pub const PROCESS_TYPES: &[&str] = &["container_t", "svirt_lxc_net_t", "svirt_sandbox_process_t"];

/// The SELinux types a container's files may be given by a static image label.
pub const FILE_TYPES: &[&str] = &["container_file_t", "svirt_sandbox_file_t", "svirt_image_t"];

/// What a context labels: a process (role `system_r`, [`PROCESS_TYPES`]) or files (role
/// `object_r`, [`FILE_TYPES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextKind {
    Process,
    File,
}

impl ContextKind {
    fn role(self) -> &'static str {
        match self {
            ContextKind::Process => "system_r",
            ContextKind::File => "object_r",
        }
    }

    fn types(self) -> &'static [&'static str] {
        match self {
            ContextKind::Process => PROCESS_TYPES,
            ContextKind::File => FILE_TYPES,
        }
    }
}

/// A whole SELinux context `user:role:type:level[-clearance]`, parsed strictly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub user: String,
    pub role: String,
    pub type_: String,
    /// The low (effective) level.
    pub level: Level,
    /// The high end (clearance) when the context is written as a range.
    pub clearance: Option<Level>,
}

impl Context {
    /// Parses every part of `s`: identifiers of letters, digits and `_`; a canonical level;
    /// and a canonical clearance after `-` if there is one. Nothing is ignored.
    pub fn parse(s: &str) -> Result<Context, String> {
        let parts: Vec<&str> = s.splitn(4, ':').collect();
        let ident =
            |p: &str| !p.is_empty() && p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if parts.len() != 4 || !parts[..3].iter().all(|p| ident(p)) {
            return Err(format!("{s:?} is not a context of the form user:role:type:s0:cA,cB"));
        }
        let (low, high) = match parts[3].split_once('-') {
            Some((l, h)) => (l, Some(h)),
            None => (parts[3], None),
        };
        let level = Level::parse_canonical(low).map_err(|e| format!("{s:?}: {e}"))?;
        let clearance = match high {
            Some(h) => Some(Level::parse_canonical(h).map_err(|e| format!("{s:?}: clearance: {e}"))?),
            None => None,
        };
        Ok(Context {
            user: parts[0].to_string(),
            role: parts[1].to_string(),
            type_: parts[2].to_string(),
            level,
            clearance,
        })
    }
}

/// Checks a static label of `kind` the way sVirt needs it to separate containers: the whole
/// context parses ([`Context::parse`]); the level has exactly two distinct categories (a
/// pair no other container uses); the clearance, if written, equals the level; the role is
/// `system_r` (`object_r` for files) and the type a container type.
///
/// `allow_range` accepts a clearance above the level, and `allow_type` another role or
/// type: each is returned as a warning (the container may then read or act beyond its own
/// pair). Returns the warnings, or why the label is refused.
pub fn check_static_label(
    s: &str,
    kind: ContextKind,
    allow_range: bool,
    allow_type: bool,
) -> Result<Vec<String>, String> {
    let ctx = Context::parse(s)?;
    let mut warnings = vec![];
    if ctx.level.categories.len() != 2 {
        return Err(format!(
            "{s:?} has {} categories; a container label needs exactly two distinct ones (s0:cA,cB)",
            ctx.level.categories.len()
        ));
    }
    if let Some(high) = &ctx.clearance {
        if !high.dominates(&ctx.level) {
            return Err(format!(
                "{s:?}: the clearance {} does not dominate the level {}",
                high.canonical(),
                ctx.level.canonical()
            ));
        }
        if *high != ctx.level {
            if !allow_range {
                return Err(format!(
                    "{s:?}: the clearance {} is above the level {}: the container could read other containers' \
                     files (MCS separation void); write {} alone, or set security.allow_range: true on purpose",
                    high.canonical(),
                    ctx.level.canonical(),
                    ctx.level.canonical()
                ));
            }
            warnings.push(format!(
                "WARNING: {s:?} has the clearance {} above its level {} (security.allow_range): this container is \
                 not separated from containers whose categories that clearance covers",
                high.canonical(),
                ctx.level.canonical()
            ));
        }
    }
    let types = kind.types();
    if ctx.role != kind.role() || !types.contains(&ctx.type_.as_str()) {
        if !allow_type {
            return Err(format!(
                "{s:?}: role {} and type {} are not a container's: use role {} and one of the types {}, or set \
                 security.allow_type: true on purpose",
                ctx.role,
                ctx.type_,
                kind.role(),
                types.join(", ")
            ));
        }
        warnings.push(format!(
            "WARNING: {s:?} uses role {} and type {} (security.allow_type), not a container role and type: \
             the policy may not confine this container at all",
            ctx.role, ctx.type_
        ));
    }
    Ok(warnings)
}

/// Checks an AppArmor static label: the name of a confining profile (letters, digits and
/// `_.+-`, starting with a letter or digit, at most 128 characters), never `unconfined`.
pub fn check_apparmor_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("an AppArmor label must name a profile".into());
    }
    if s.eq_ignore_ascii_case("unconfined") {
        return Err(format!("{s:?} does not confine the container: name a confining AppArmor profile"));
    }
    if s.len() > 128
        || !s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        || !s.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
    {
        return Err(format!(
            "{s:?} is not an AppArmor profile name (letters, digits and _.+-, starting with a letter or digit)"
        ));
    }
    Ok(())
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

    #[test]
    fn numbers_must_be_canonical() {
        for bad in ["s0:c+1", "s0:c01", "s00", "s+0", "s0:c1,c0002", "s0:c 1", "s0:c1024", "s0:c99999", "s0:c", "s"] {
            assert!(Level::parse(bad).is_err(), "{bad}");
        }
        assert!(Level::parse("s0:c0").is_ok());
    }

    #[test]
    fn canonical_spelling() {
        assert_eq!(Level::parse("s0:c0.c1023").unwrap().canonical(), "s0:c0.c1023");
        assert_eq!(Level::parse("s0:c1.c2").unwrap().canonical(), "s0:c1,c2");
        assert_eq!(Level::parse("s0:c1,c2,c3,c7").unwrap().canonical(), "s0:c1.c3,c7");
        assert_eq!(Level::parse("s0").unwrap().canonical(), "s0");
        assert!(Level::parse_canonical("s0:c1,c2").is_ok());
        assert!(Level::parse_canonical("s0:c0.c1023").is_ok());
        for bad in ["s0:c2,c1", "s0:c1.c2", "s0:c1,c2,c3", "s0:c1,c1", "s0:c01,c2", "s0-s0", "s0:c1,c2-s0:c1,c2"] {
            assert!(Level::parse_canonical(bad).is_err(), "{bad}");
        }
        let e = Level::parse_canonical("s0:c9,c3").unwrap_err();
        assert!(e.contains("s0:c3,c9"), "{e}");
    }

    #[test]
    fn contexts_parse_whole() {
        let c = Context::parse("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023").unwrap();
        assert_eq!(c.type_, "container_t");
        assert_eq!(c.clearance.unwrap().categories.len(), 1024);
        assert!(Context::parse("system_u:system_r:container_t:s0:c1,c2-").is_err());
        assert!(Context::parse("system_u:system_r:container_t:s0:c1,c2-s0:c+3").is_err());
        assert!(Context::parse("system_u:system_r:container_t:s0:c1,c2-x").is_err());
        assert!(Context::parse("system_u:system_r:container_t:s0:c1,c2-s0-s0").is_err());
        assert!(Context::parse("system_u:system_r:container-t:s0:c1,c2").is_err());
        assert!(Context::parse(":system_r:container_t:s0:c1,c2").is_err());
        assert!(Context::parse("system_u:system_r:container_t").is_err());
        assert!(Context::parse("system_u:system_r:container_t:s0:c1,c2\n").is_err());
    }

    const P: ContextKind = ContextKind::Process;

    #[test]
    fn static_labels_keep_mcs_separation() {
        assert_eq!(check_static_label("system_u:system_r:container_t:s0:c1,c2", P, false, false), Ok(vec![]));
        assert_eq!(check_static_label("system_u:system_r:container_t:s0:c1,c2-s0:c1,c2", P, false, false), Ok(vec![]));
        let e = check_static_label("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023", P, false, false).unwrap_err();
        assert!(e.contains("allow_range"), "{e}");
        let w = check_static_label("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023", P, true, false).unwrap();
        assert!(w.len() == 1 && w[0].starts_with("WARNING") && w[0].contains("allow_range"), "{w:?}");
        // A clearance that does not dominate is no range at all, opt-in or not.
        assert!(check_static_label("system_u:system_r:container_t:s0:c1,c2-s0:c3,c4", P, true, false).is_err());
        assert!(check_static_label("system_u:system_r:container_t:s0:c1,c2-s0", P, true, false).is_err());
        for bad in [
            "system_u:system_r:container_t:s0:c1",
            "system_u:system_r:container_t:s0",
            "system_u:system_r:container_t:s0:c1,c2,c3",
            "system_u:system_r:container_t:s0:c0.c1023",
            "system_u:system_r:container_t:s0:c2,c1",
            "system_u:system_r:container_t:s0:c01,c2",
            "system_u:system_r:container_t:s0:c+1,c2",
            "system_u:system_r:container_t:s0:c1,c1024",
            "system_u:system_r:container_t:s0:c1.c2",
            "system_u:system_r:container_t:s0:c1,c1",
        ] {
            assert!(check_static_label(bad, P, true, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn static_labels_name_container_types() {
        for t in PROCESS_TYPES {
            let l = format!("system_u:system_r:{t}:s0:c1,c2");
            assert_eq!(check_static_label(&l, P, false, false), Ok(vec![]), "{l}");
        }
        for bad in ["unconfined_t", "spc_t", "virtd_t", "init_t", "container_file_t"] {
            let l = format!("system_u:system_r:{bad}:s0:c1,c2");
            let e = check_static_label(&l, P, false, false).unwrap_err();
            assert!(e.contains("allow_type"), "{e}");
            let w = check_static_label(&l, P, false, true).unwrap();
            assert!(w.len() == 1 && w[0].contains("allow_type"), "{w:?}");
        }
        assert!(check_static_label("unconfined_u:unconfined_r:container_t:s0:c1,c2", P, false, false).is_err());
        assert!(check_static_label("system_u:object_r:container_t:s0:c1,c2", P, false, false).is_err());
    }

    #[test]
    fn image_labels_name_file_types() {
        let f = ContextKind::File;
        for t in FILE_TYPES {
            let l = format!("system_u:object_r:{t}:s0:c1,c2");
            assert_eq!(check_static_label(&l, f, false, false), Ok(vec![]), "{l}");
        }
        assert!(check_static_label("system_u:object_r:container_t:s0:c1,c2", f, false, false).is_err());
        assert!(check_static_label("system_u:object_r:shadow_t:s0:c1,c2", f, false, false).is_err());
        assert!(check_static_label("system_u:system_r:container_file_t:s0:c1,c2", f, false, false).is_err());
        assert!(check_static_label("system_u:object_r:container_file_t:s0:c1,c2-s0:c0.c1023", f, false, false).is_err());
    }

    #[test]
    fn apparmor_labels_confine() {
        assert!(check_apparmor_label("libvirt-8e6b6d3c-0e0e-4c2a-9f0e-2b7d2f4b8f11").is_ok());
        assert!(check_apparmor_label("lxc-container-default").is_ok());
        for bad in
            ["", "unconfined", "Unconfined", "-x", "a b", "a/b", "x//&unconfined", "a\nb", "a:b", "(x)", "a\u{202e}"]
        {
            assert!(check_apparmor_label(bad).is_err(), "{bad:?}");
        }
        assert!(check_apparmor_label(&"a".repeat(129)).is_err());
    }
}
