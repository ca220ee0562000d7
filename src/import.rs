//! Imported root filesystems (`--rootfs-from DIR|TARBALL`): where they may come from, and
//! what is cleaned up in them before they become a container.
//!
//! An imported tree is whatever the administrator points at, and a tarball may have been
//! made by anyone. Before the import: the source must not be `/`, the pool or one of its
//! parents, nor anything inside lxcprov's pool, cache or state (copying the pool into
//! itself, or a tree into its own parent, never ends well). The copy is `cp -a` (a
//! directory) or GNU tar (a tarball); GNU tar already refuses members with `..` and strips
//! a leading `/`, and does not write through symlinks it extracted itself, which the tests
//! below check. After the import, [`normalise_tree`]:
//!
//! - removes character and block device nodes: libvirt gives the container its own `/dev`,
//!   and a device node in the tree (say a copy of the host's disk, mode 0666) would let a
//!   host user who reaches the file open the device. FIFOs and sockets are kept: they are
//!   inert inodes that grant nothing, and some guests ship them;
//! - makes the tree's root directory `0755`, owned by root (a tarball's `./` entry may say
//!   `0777` or belong to some uid).
//!
//! Setuid files stay setuid (the guest needs `su` and `passwd`), so host users must not
//! reach them: the pool is `0700` plus one ACL entry per container root uid (see
//! [`POOL_MODE`]), and the tree is assembled in a `0700` directory.

use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use crate::paths::{PARTIAL_MODE, POOL_MODE};

/// What [`normalise_tree`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Device nodes removed, relative to the tree's root.
    pub devices_removed: Vec<PathBuf>,
    /// The root directory's mode and owner before, if they were changed.
    pub root_fixed: Option<(u32, u32, u32)>,
    /// Entries on another file system (mounts), which were not descended into.
    pub skipped_mounts: Vec<PathBuf>,
}

impl ImportReport {
    /// One line per change worth telling the administrator.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = vec![];
        if !self.devices_removed.is_empty() {
            let shown: Vec<String> = self.devices_removed.iter().take(5).map(|p| format!("/{}", p.display())).collect();
            let more = self.devices_removed.len().saturating_sub(shown.len());
            w.push(format!(
                "removed {} device node(s) from the imported tree (libvirt provides /dev): {}{}",
                self.devices_removed.len(),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
        }
        if let Some((mode, uid, gid)) = self.root_fixed {
            w.push(format!(
                "the imported tree's root directory was mode {mode:04o} owned by {uid}:{gid}; it is now 0755 owned by root"
            ));
        }
        for m in &self.skipped_mounts {
            w.push(format!("/{} is a mount point inside the imported tree; not inspected", m.display()));
        }
        w
    }
}

/// `p` made absolute with symlinks resolved as far as it exists; the missing rest is
/// appended lexically (`..` refused), so a pool that is not created yet still compares.
fn resolve(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
    let mut existing = abs.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = vec![];
    loop {
        match fs::canonicalize(existing) {
            Ok(mut c) => {
                for r in rest.iter().rev() {
                    c.push(r);
                }
                return Ok(c);
            }
            Err(_) => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Ok(abs);
                };
                rest.push(name);
                existing = parent;
            }
        }
    }
}

/// Checks an import source and returns it canonical (symlinks resolved). Refuses `/`, the
/// pool and its parents, anything inside the pool, cache or state directories, and any
/// parent of those (which would copy lxcprov's own trees into the new one).
pub fn check_source(from: &Path, paths: &Paths) -> Result<PathBuf> {
    let shown = from.display();
    let src = fs::canonicalize(from).with_context(|| format!("--rootfs-from {shown}: cannot resolve it"))?;
    let via = if src.as_path() != from { format!(" (it resolves to {})", src.display()) } else { String::new() };
    if src == Path::new("/") {
        bail!("--rootfs-from {shown}{via}: refusing to import the host's root file system");
    }
    for (what, dir) in [("pool", &paths.pool), ("cache", &paths.cache), ("state directory", &paths.state)] {
        let dir = resolve(dir)?;
        if src.starts_with(&dir) {
            bail!("--rootfs-from {shown}{via}: it is inside lxcprov's {what} {}", dir.display());
        }
        if dir.starts_with(&src) {
            bail!("--rootfs-from {shown}{via}: it contains lxcprov's {what} {}", dir.display());
        }
    }
    let meta = fs::metadata(&src).with_context(|| format!("--rootfs-from {shown}: cannot read it"))?;
    if !meta.is_dir() && !meta.is_file() {
        bail!("--rootfs-from {shown}{via}: not a directory or a tarball");
    }
    Ok(src)
}

/// Cleans an imported tree at `root` (see the module documentation): removes device
/// nodes, makes the root directory 0755 owned by root. Does not follow symlinks and does
/// not descend into other file systems.
pub fn normalise_tree(root: &Path) -> Result<ImportReport> {
    normalise(root, Some((0, 0)))
}

/// [`normalise_tree`] with the root's owner to set (`None`: leave it; for tests as non-root).
fn normalise(root: &Path, owner: Option<(u32, u32)>) -> Result<ImportReport> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("inspecting {}", root.display()))?;
    if !meta.is_dir() {
        bail!("the imported tree {} is not a directory", root.display());
    }
    let mut report = ImportReport::default();
    walk(root, root, meta.dev(), &mut report)
        .with_context(|| format!("cleaning the imported tree {}", root.display()))?;
    let (mode, uid, gid) = (meta.mode() & 0o7777, meta.uid(), meta.gid());
    let wrong_owner = owner.is_some_and(|o| o != (uid, gid));
    if wrong_owner || mode != 0o755 {
        if let Some((u, g)) = owner.filter(|_| wrong_owner) {
            std::os::unix::fs::lchown(root, Some(u), Some(g))
                .with_context(|| format!("making {} owned by {u}:{g}", root.display()))?;
        }
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {} to 0755", root.display()))?;
        report.root_fixed = Some((mode, uid, gid));
    }
    Ok(report)
}

fn walk(root: &Path, dir: &Path, dev: u64, report: &mut ImportReport) -> Result<()> {
    // Iterative, so a deep tree cannot overflow the stack.
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let p = e.path();
            let m = fs::symlink_metadata(&p).with_context(|| format!("inspecting {}", p.display()))?;
            let ft = m.file_type();
            let rel = || p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            if ft.is_char_device() || ft.is_block_device() {
                fs::remove_file(&p).with_context(|| format!("removing the device node {}", p.display()))?;
                report.devices_removed.push(rel());
            } else if ft.is_dir() {
                if m.dev() != dev {
                    report.skipped_mounts.push(rel());
                } else {
                    todo.push(p);
                }
            }
        }
    }
    report.devices_removed.sort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn paths_in(d: &Path) -> Paths {
        Paths { pool: d.join("pool"), cache: d.join("cache"), state: d.join("state") }
    }

    #[test]
    fn sources_that_would_copy_lxcprov_or_the_host_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = paths_in(d.path());
        fs::create_dir_all(p.pool.join("c1/etc")).unwrap();
        fs::create_dir_all(p.cache.join("rootfs/base")).unwrap();
        // The state directory does not exist yet: still compared.
        let err = |from: &Path| format!("{:#}", check_source(from, &p).unwrap_err());
        assert!(err(Path::new("/")).contains("host's root"));
        assert!(err(&d.path().join("pool/../pool/c1/..")).contains("pool"));
        assert!(err(&p.pool).contains("inside lxcprov's pool"));
        assert!(err(&p.pool.join("c1")).contains("inside lxcprov's pool"));
        assert!(err(&p.pool.join("c1/etc")).contains("inside lxcprov's pool"));
        assert!(err(d.path()).contains("contains lxcprov's pool"));
        assert!(err(&p.cache.join("rootfs/base")).contains("cache"));
        fs::create_dir_all(p.state.join("containers")).unwrap();
        assert!(err(&p.state.join("containers")).contains("state directory"));
        // Symlinks are resolved first.
        let link = d.path().join("sneaky");
        std::os::unix::fs::symlink(p.pool.join("c1"), &link).unwrap();
        let e = err(&link);
        assert!(e.contains("resolves to") && e.contains("pool"), "{e}");
        let root_link = d.path().join("root-link");
        std::os::unix::fs::symlink("/", &root_link).unwrap();
        assert!(err(&root_link).contains("host's root"));
        assert!(err(&d.path().join("missing")).contains("cannot resolve"));
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(err(&fifo).contains("not a directory or a tarball"));
    }

    #[test]
    fn ordinary_sources_are_accepted_canonical() {
        let d = tempfile::tempdir().unwrap();
        let p = paths_in(&d.path().join("lx"));
        let tree = d.path().join("trees/busybox");
        fs::create_dir_all(&tree).unwrap();
        let tar = d.path().join("trees/rootfs.tar");
        fs::write(&tar, "").unwrap();
        let canon = fs::canonicalize(&tree).unwrap();
        assert_eq!(check_source(&tree, &p).unwrap(), canon);
        assert_eq!(check_source(&d.path().join("trees/x/../busybox"), &p).ok(), None, "x does not exist");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&tree, &link).unwrap();
        assert_eq!(check_source(&link, &p).unwrap(), canon);
        assert!(check_source(&tar, &p).is_ok());
        // A sibling whose name merely starts like the pool's is not inside it.
        fs::create_dir_all(d.path().join("lx/pool2")).unwrap();
        assert!(check_source(&d.path().join("lx/pool2"), &p).is_ok());
    }

    #[test]
    fn the_root_directory_is_made_0755() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        fs::create_dir_all(t.join("usr/bin")).unwrap();
        fs::write(t.join("usr/bin/su"), "x").unwrap();
        fs::set_permissions(t.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(&t, fs::Permissions::from_mode(0o777)).unwrap();
        let r = normalise(&t, None).unwrap();
        assert_eq!(fs::symlink_metadata(&t).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(r.root_fixed.map(|f| f.0), Some(0o777));
        assert_eq!(r.warnings().len(), 1, "{:?}", r.warnings());
        // Setuid files inside are the guest's business and stay as they are.
        assert_eq!(fs::metadata(t.join("usr/bin/su")).unwrap().mode() & 0o7777, 0o4755);
        // Idempotent.
        assert_eq!(normalise(&t, None).unwrap(), ImportReport::default());
        fs::set_permissions(&t, fs::Permissions::from_mode(0o1700)).unwrap();
        normalise(&t, None).unwrap();
        assert_eq!(fs::symlink_metadata(&t).unwrap().mode() & 0o7777, 0o755);
        // Not a directory: refused.
        let f = d.path().join("f");
        fs::write(&f, "").unwrap();
        assert!(normalise(&f, None).is_err());
    }

    #[test]
    fn fifos_sockets_and_symlinks_are_kept_and_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        fs::create_dir_all(t.join("run")).unwrap();
        let c = std::ffi::CString::new(t.join("run/fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let _sock = std::os::unix::net::UnixListener::bind(t.join("run/sock")).unwrap();
        // A symlink to a directory with a device in it: the device is not ours to remove.
        std::os::unix::fs::symlink("/dev", t.join("hostdev")).unwrap();
        fs::set_permissions(&t, fs::Permissions::from_mode(0o755)).unwrap();
        let r = normalise(&t, None).unwrap();
        assert_eq!(r, ImportReport::default());
        assert!(t.join("run/fifo").exists() && t.join("run/sock").exists());
        assert!(Path::new("/dev/null").exists());
    }

    fn tar(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new("tar").current_dir(dir).args(args).output().expect("tar")
    }

    /// GNU tar, as bootstrap runs it, keeps hostile members inside the target directory.
    #[test]
    fn gnu_tar_keeps_hostile_members_inside_the_target() {
        let d = tempfile::tempdir().unwrap();
        let work = d.path().join("work/sub");
        fs::create_dir_all(&work).unwrap();
        fs::write(d.path().join("work/evil"), "dotdot").unwrap();
        let abs = d.path().join("abs-target");
        fs::write(&abs, "absolute").unwrap();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, work.join("escape")).unwrap();
        let ball = d.path().join("hostile.tar");
        // -P keeps `../evil` and the absolute name in the archive.
        let o = tar(&work, &["-cPf", ball.to_str().unwrap(), "../evil", abs.to_str().unwrap(), "escape"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Then a member that would be written through the symlink.
        fs::remove_file(work.join("escape")).unwrap();
        fs::create_dir(work.join("escape")).unwrap();
        fs::write(work.join("escape/planted"), "through the link").unwrap();
        let o = tar(&work, &["-rPf", ball.to_str().unwrap(), "escape/planted"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        fs::remove_file(&abs).unwrap();
        fs::remove_file(d.path().join("work/evil")).unwrap();

        let target = d.path().join("pool/.c1.partial");
        fs::create_dir_all(&target).unwrap();
        // The same options as bootstrap's import command.
        let o = Command::new("tar")
            .args(["--extract", "--preserve-permissions", "--same-owner", "--numeric-owner", "--file"])
            .arg(&ball)
            .arg("--directory")
            .arg(&target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "tar must fail on `..`: {stderr}");
        assert!(stderr.contains(".."), "{stderr}");
        assert!(!d.path().join("pool/evil").exists() && !d.path().join("evil").exists());
        assert!(!abs.exists(), "the absolute member was written outside");
        assert!(target.join(abs.strip_prefix("/").unwrap()).exists(), "the leading / is stripped");
        assert!(!outside.join("planted").exists(), "tar wrote through a symlink it extracted");
        // Whatever tar made of it, the tree holds nothing that points to a file outside by
        // a hard link (tar refuses those as well).
        let r = normalise(&target, None).unwrap();
        assert!(r.devices_removed.is_empty());
    }
}
