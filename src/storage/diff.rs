//! What a copy-storage container changed against its golden base (`lab collect`): a walk of
//! the container's tree beside the cached base, never following a link on either side, that
//! lists the entries that are new or differ (type, permissions, owner after the id-map
//! shift, size, time or content, a link's target, a device's numbers) and those deleted.
//! An overlay container needs none of this: its layer is its changes.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The entries a container changed, relative to its root (`etc/motd`), parents first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New or different entries; a listed directory stands for itself, not its contents.
    pub changed: Vec<PathBuf>,
    /// Entries of the base the container no longer has (the top one of a deleted subtree).
    pub deleted: Vec<PathBuf>,
    /// Bytes of the changed regular files (allocated, so a sparse file counts what it holds).
    pub bytes: u64,
}

/// The most entries a walk visits: a tree beyond it is not a container's.
pub const MAX_ENTRIES: usize = 5_000_000;

/// Lists what `tree` changed against `base`. `shift` is the id-map offset the tree's
/// owners were shifted by (`uid`, `gid` targets), undone before owners are compared.
pub fn changes(base: &Path, tree: &Path, shift: Option<(u32, u32)>) -> Result<Changes> {
    let mut out = Changes::default();
    let mut seen = 0usize;
    // (relative path, does the base have it as a real directory?)
    let mut stack: Vec<(PathBuf, bool)> = vec![(PathBuf::new(), true)];
    while let Some((rel, in_base)) = stack.pop() {
        let dir = tree.join(&rel);
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        names.sort();
        seen += names.len();
        if seen > MAX_ENTRIES {
            bail!("{} holds more than {MAX_ENTRIES} entries: not a container's tree", tree.display());
        }
        if in_base {
            let bdir = base.join(&rel);
            let mut gone: Vec<std::ffi::OsString> = match std::fs::read_dir(&bdir) {
                Ok(rd) => rd.flatten().map(|e| e.file_name()).filter(|n| !names.contains(n)).collect(),
                Err(_) => vec![],
            };
            gone.sort();
            out.deleted.extend(gone.into_iter().map(|n| rel.join(n)));
        }
        let mut subdirs = vec![];
        for n in names {
            let r = rel.join(&n);
            let m = std::fs::symlink_metadata(tree.join(&r)).with_context(|| format!("inspecting {}", r.display()))?;
            let b = if in_base { std::fs::symlink_metadata(base.join(&r)).ok() } else { None };
            let same = match &b {
                Some(b) => same_entry(&base.join(&r), b, &tree.join(&r), &m, shift)?,
                None => false,
            };
            if !same {
                if m.is_file() {
                    out.bytes += m.blocks() * 512;
                }
                out.changed.push(r.clone());
            }
            if m.is_dir() {
                // Only a real directory of the base is looked into (a link there is never
                // followed): below anything else every entry is new.
                subdirs.push((r, b.as_ref().is_some_and(|b| b.is_dir())));
            }
        }
        // Visited in order: a directory's entries come after it.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// Same type, permissions, owner (after the shift), and for a file the same size and time or
/// content, for a link the same target, for a device the same numbers.
fn same_entry(
    bpath: &Path,
    b: &std::fs::Metadata,
    tpath: &Path,
    t: &std::fs::Metadata,
    shift: Option<(u32, u32)>,
) -> Result<bool> {
    let unshift = |id: u32, off: u32| id.checked_sub(off).filter(|i| *i < 65536).unwrap_or(u32::MAX);
    let (uid, gid) = match shift {
        Some((u, g)) => (unshift(t.uid(), u), unshift(t.gid(), g)),
        None => (t.uid(), t.gid()),
    };
    if b.mode() != t.mode() || b.uid() != uid || b.gid() != gid {
        return Ok(false);
    }
    let ft = t.file_type();
    if ft.is_symlink() {
        return Ok(std::fs::read_link(bpath).ok() == std::fs::read_link(tpath).ok());
    }
    if ft.is_dir() {
        return Ok(true);
    }
    if !ft.is_file() {
        return Ok(b.rdev() == t.rdev());
    }
    if b.size() != t.size() {
        return Ok(false);
    }
    if b.mtime() == t.mtime() && b.mtime_nsec() == t.mtime_nsec() {
        return Ok(true);
    }
    same_content(bpath, tpath)
}

/// Byte for byte, neither file followed if it became a link in between.
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let open = |p: &Path| -> Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
            .with_context(|| format!("opening {}", p.display()))
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    if !fa.metadata()?.is_file() || !fb.metadata()?.is_file() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n]).map(|_| ()).or_else(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Ok(()),
            _ => Err(e),
        })?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn set_mtime(p: &Path, secs: i64) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let t = [libc::timespec { tv_sec: secs, tv_nsec: 0 }, libc::timespec { tv_sec: secs, tv_nsec: 0 }];
        // SAFETY: a NUL-terminated path and two timespecs.
        assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) }, 0);
    }

    /// A base and a copy of it (`cp -a`), for the tests to change.
    fn pair() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base");
        for p in ["etc", "usr/lib", "var/log"] {
            std::fs::create_dir_all(base.join(p)).unwrap();
        }
        std::fs::write(base.join("etc/motd"), "hello\n").unwrap();
        std::fs::write(base.join("etc/keep"), "same\n").unwrap();
        std::fs::write(base.join("usr/lib/libx.so"), vec![1u8; 10_000]).unwrap();
        symlink("usr/lib", base.join("lib")).unwrap();
        symlink("/usr/lib", base.join("lib64")).unwrap();
        let tree = d.path().join("tree");
        assert!(std::process::Command::new("cp").arg("-a").arg(&base).arg(&tree).status().unwrap().success());
        (d, base, tree)
    }

    #[test]
    fn an_untouched_copy_has_no_changes() {
        let (_d, base, tree) = pair();
        assert_eq!(changes(&base, &tree, None).unwrap(), Changes::default());
    }

    #[test]
    fn new_changed_and_deleted_entries_are_listed_parents_first() {
        let (_d, base, tree) = pair();
        std::fs::write(tree.join("etc/motd"), "HELLO\n").unwrap(); // same size, new content
        std::fs::create_dir_all(tree.join("root/work/deep")).unwrap();
        std::fs::write(tree.join("root/work/deep/a.txt"), "mine").unwrap();
        std::fs::remove_file(tree.join("usr/lib/libx.so")).unwrap();
        std::fs::remove_dir_all(tree.join("var/log")).unwrap();
        std::fs::remove_file(tree.join("lib")).unwrap();
        symlink("/etc/shadow", tree.join("lib")).unwrap(); // a link retargeted
        let c = changes(&base, &tree, None).unwrap();
        let s = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
        // A directory is a change for its type, permissions or owner, not for its time: what
        // was removed from it is in `deleted`.
        assert_eq!(s(&c.changed), ["lib", "root", "etc/motd", "root/work", "root/work/deep", "root/work/deep/a.txt"]);
        assert_eq!(s(&c.deleted), ["usr/lib/libx.so", "var/log"]);
        assert!(c.bytes >= 4096, "{}", c.bytes);
    }

    #[test]
    fn a_rewritten_file_with_the_same_bytes_is_not_a_change_and_a_touched_one_is_compared() {
        let (_d, base, tree) = pair();
        std::fs::write(tree.join("etc/keep"), "same\n").unwrap();
        set_mtime(&tree.join("etc/keep"), 12345);
        set_mtime(&tree.join("etc"), std::fs::metadata(base.join("etc")).unwrap().mtime());
        assert_eq!(changes(&base, &tree, None).unwrap(), Changes::default());
    }

    /// The tree's links are never followed: a directory the student replaced with a link to
    /// the host's /etc is one changed entry; below a base's link nothing is looked up.
    #[test]
    fn links_on_either_side_are_never_followed() {
        let (_d, base, tree) = pair();
        std::fs::remove_dir_all(tree.join("var")).unwrap();
        symlink("/etc", tree.join("var")).unwrap();
        // The base's lib64 is a link to the host's /usr/lib; the student's is a directory.
        std::fs::remove_file(tree.join("lib64")).unwrap();
        std::fs::create_dir(tree.join("lib64")).unwrap();
        std::fs::write(tree.join("lib64/x"), "x").unwrap();
        let c = changes(&base, &tree, None).unwrap();
        let s: Vec<String> = c.changed.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(s, ["lib64", "var", "lib64/x"]);
        assert!(c.deleted.is_empty(), "{:?}", c.deleted);
    }

    /// Owners are compared after the id-map shift; an owner outside the map is a change.
    #[test]
    fn owners_are_compared_through_the_shift() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // chown needs root; the root tier's CI run covers it
        }
        let (_d, base, tree) = pair();
        let chown = |p: &Path, u: u32, g: u32| std::os::unix::fs::lchown(p, Some(u), Some(g)).unwrap();
        for e in
            ["", "etc", "etc/motd", "etc/keep", "usr", "usr/lib", "usr/lib/libx.so", "lib", "lib64", "var", "var/log"]
        {
            chown(&tree.join(e), 200000, 200000);
        }
        assert_eq!(changes(&base, &tree, Some((200000, 200000))).unwrap(), Changes::default());
        chown(&tree.join("etc/keep"), 200033, 200000);
        let c = changes(&base, &tree, Some((200000, 200000))).unwrap();
        assert_eq!(c.changed, [PathBuf::from("etc/keep")]);
    }
}
