//! Snapshots of an overlay container: a copy of its writable layer's `upper` directory (what
//! the container changed, reflinked where the pool's file system can), never of the shared
//! base, so a snapshot costs O(what it changed). Kept in the pool's private part,
//! `POOL/.lxcprov/snapshots/NAME/TAG/` (`upper/` and `snapshot.json`), root's only.
//!
//! Student-controlled content is data: `cp -a` copies symbolic links as links and never
//! opens a FIFO, a socket or a device; nothing here follows a path inside the layer.

use super::Overlay;
use crate::exec::{Cmd, Runner};
use crate::name::Name;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The longest tag.
const MAX_TAG: usize = 64;
/// `snapshot.json` is a few hundred bytes; a larger one is not lxcprov's.
const MAX_META: u64 = 64 << 10;

/// What lxcprov records about a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub container: String,
    pub tag: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The shared base the layer was on: a snapshot is restored onto that base only.
    pub base: String,
    /// Bytes of the copied layer.
    pub bytes: u64,
}

/// A tag: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (it names a
/// directory; anything else is refused before a path is built from it).
pub fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        bail!(
            "snapshot tag {:?}: use 1 to {MAX_TAG} letters, digits, '.', '_' or '-', starting with a letter or digit",
            crate::text::for_terminal(&tag.chars().take(80).collect::<String>())
        );
    }
    Ok(())
}

/// `POOL/.lxcprov/snapshots/NAME`.
pub fn dir_of(pool: &Path, name: &Name) -> PathBuf {
    super::private_dir(pool).join("snapshots").join(name.as_str())
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("snapshot.json")
}

fn read_meta(dir: &Path) -> Result<Snapshot> {
    let p = meta_path(dir);
    let text = crate::fsutil::read_state_to_string(&p, MAX_META, "snapshot record")?
        .with_context(|| format!("{} is missing: not a finished snapshot", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a snapshot record lxcprov wrote", p.display()))
}

/// The container's snapshots, oldest first. Unfinished ones (a killed run's `.TAG.partial`)
/// and anything that is not lxcprov's are left out.
pub fn list(pool: &Path, name: &Name) -> Result<Vec<Snapshot>> {
    let dir = dir_of(pool, name);
    let rd = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        r => r.with_context(|| format!("reading {}", dir.display()))?,
    };
    let mut v: Vec<Snapshot> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_str().is_some_and(|t| check_tag(t).is_ok()))
        .filter_map(|e| read_meta(&e.path()).ok().filter(|s| s.container == name.as_str()))
        .collect();
    v.sort_by(|a, b| (a.created, &a.tag).cmp(&(b.created, &b.tag)));
    Ok(v)
}

/// One snapshot, or a clear error naming the ones there are.
pub fn find(pool: &Path, name: &Name, tag: &str) -> Result<Snapshot> {
    check_tag(tag)?;
    let all = list(pool, name)?;
    match all.iter().find(|s| s.tag == tag) {
        Some(s) => Ok(s.clone()),
        None if all.is_empty() => bail!("{name} has no snapshots; take one with `lxcprov snapshot {name}`"),
        None => bail!(
            "{name} has no snapshot {tag}; it has {}",
            all.iter().map(|s| s.tag.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The highest N of the container's `snap-N` tags (0 without one).
pub fn highest_numbered(pool: &Path, name: &Name) -> Result<u64> {
    Ok(list(pool, name)?
        .iter()
        .filter_map(|s| s.tag.strip_prefix("snap-").and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0))
}

/// A tag for a snapshot taken without one: `snap-N`, N one more than the highest in use.
pub fn next_tag(pool: &Path, name: &Name) -> Result<String> {
    Ok(format!("snap-{}", highest_numbered(pool, name)? + 1))
}

/// Copies the layer's `upper` into a new snapshot `tag` (the caller freezes a running
/// container around this). Built as `.TAG.partial` and renamed when complete.
pub fn take(runner: &dyn Runner, pool: &Path, name: &Name, o: &Overlay, tag: &str, now: u64) -> Result<Snapshot> {
    check_tag(tag)?;
    let dir = dir_of(pool, name);
    let done = dir.join(tag);
    if std::fs::symlink_metadata(&done).is_ok() {
        bail!("{name} already has a snapshot {tag}; pick another tag or delete it first (`lxcprov snapshot {name} --tag {tag} --delete`)");
    }
    super::ensure_private(pool)?;
    crate::fsutil::ensure_private_dir(&super::private_dir(pool).join("snapshots"), 0o700)?;
    crate::fsutil::ensure_private_dir(&dir, 0o700)?;
    let tmp = dir.join(format!(".{tag}.partial"));
    crate::fsutil::remove_tree(&tmp)?;
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let r = (|| {
        crate::fsutil::copy_tree(runner, &o.upper(), &tmp.join("upper"))?;
        let s = Snapshot {
            container: name.to_string(),
            tag: tag.to_string(),
            created: now,
            base: o.base_id.clone(),
            bytes: crate::fsutil::tree_bytes(&tmp.join("upper")),
        };
        crate::fsutil::write_atomic(&meta_path(&tmp), serde_json::to_string_pretty(&s)?.as_bytes(), 0o600)?;
        std::fs::rename(&tmp, &done).with_context(|| format!("renaming {} to {}", tmp.display(), done.display()))?;
        Ok(s)
    })();
    if r.is_err() {
        let _ = crate::fsutil::remove_tree(&tmp);
    }
    r
}

/// Deletes a snapshot.
pub fn delete(pool: &Path, name: &Name, tag: &str) -> Result<Snapshot> {
    let s = find(pool, name, tag)?;
    crate::fsutil::remove_tree(&dir_of(pool, name).join(tag))?;
    Ok(s)
}

/// Deletes every snapshot of a container (its tree is purged).
pub fn delete_all(pool: &Path, name: &Name) -> Result<Option<String>> {
    let dir = dir_of(pool, name);
    if std::fs::symlink_metadata(&dir).is_err() {
        return Ok(None);
    }
    crate::fsutil::remove_tree(&dir)?;
    Ok(Some(format!("deleted its snapshots ({})", dir.display())))
}

/// The new layer's `upper` filled from a snapshot (into the partial layer `make_layer`
/// builds, before it is swapped in).
pub(super) fn fill_upper(runner: &dyn Runner, pool: &Path, s: &Snapshot, upper: &Path) -> Result<()> {
    let name = Name::parse(&s.container)?;
    let src = dir_of(pool, &name).join(&s.tag).join("upper");
    // The trailing "/." copies the directory's contents (and its own owner and mode) into
    // the empty upper directory made for the layer.
    let cmd = Cmd::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(format!("{}/.", src.display()))
        .arg(upper.display().to_string());
    runner
        .run(&cmd, &mut |_| {})
        .map_err(|e| crate::fsutil::explain_disk_full(anyhow::Error::new(e), upper))
        .with_context(|| format!("copying snapshot {} of {name}", s.tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_plain_names_and_anything_else_is_refused_before_a_path_is_built() {
        for ok in ["a", "snap-1", "before.lab2", "A_B-c.9", &"x".repeat(64)] {
            assert!(check_tag(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "-rf", ".hidden", "a b", "a\nb", "é", &"x".repeat(65)] {
            let e = format!("{:#}", check_tag(bad).unwrap_err());
            assert!(e.contains("snapshot tag") && !e.contains('\n'), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_listing_shows_finished_snapshots_of_this_container_only() {
        let d = tempfile::tempdir().unwrap();
        let pool = d.path();
        let name = Name::parse("c1").unwrap();
        assert!(list(pool, &name).unwrap().is_empty());
        let dir = dir_of(pool, &name);
        let put = |tag: &str, container: &str, created: u64| {
            std::fs::create_dir_all(dir.join(tag).join("upper")).unwrap();
            let s = Snapshot { container: container.into(), tag: tag.into(), created, base: "k@host".into(), bytes: 0 };
            std::fs::write(meta_path(&dir.join(tag)), serde_json::to_string(&s).unwrap()).unwrap();
        };
        put("snap-2", "c1", 20);
        put("snap-1", "c1", 10);
        put("other", "c2", 5);
        std::fs::create_dir_all(dir.join(".snap-3.partial/upper")).unwrap();
        std::fs::create_dir_all(dir.join("no-record/upper")).unwrap();
        let tags: Vec<String> = list(pool, &name).unwrap().into_iter().map(|s| s.tag).collect();
        assert_eq!(tags, ["snap-1", "snap-2"]);
        assert_eq!(next_tag(pool, &name).unwrap(), "snap-3");
        let e = format!("{:#}", find(pool, &name, "nope").unwrap_err());
        assert!(e.contains("has no snapshot nope; it has snap-1, snap-2"), "{e}");
        assert!(find(pool, &name, "../snap-1").is_err());
    }
}
