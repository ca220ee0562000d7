//! Careful file-system operations on trees lxcprov owns.
//!
//! Root filesystems are untrusted territory once a package manager has run in them: a
//! symlink such as `etc/shadow -> /etc/shadow` must never redirect a write to the host, and
//! removing a partial tree must never cross into a mount (debootstrap mounts `proc` and
//! `sys` inside its target). These helpers need root only because the trees are root's.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Resolves `rel` (such as `/etc/shadow`) under `root`, refusing `..` and any existing
/// symlink among the parents or the file itself.
pub fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    let rel_path = Path::new(rel);
    let comps: Vec<Component> = rel_path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(n) => path.push(n),
            _ => bail!("refusing path {rel:?} inside {}: it leaves the tree", root.display()),
        }
        if let Ok(m) = fs::symlink_metadata(&path) {
            if m.file_type().is_symlink() {
                bail!(
                    "refusing to write {rel} in {}: {} is a symlink (it could point outside the container)",
                    root.display(),
                    path.display()
                );
            }
            if i + 1 < comps.len() && !m.is_dir() {
                bail!("{} is not a directory", path.display());
            }
        }
    }
    Ok(path)
}

/// Writes `contents` to `rel` under `root` atomically (temp file + rename), creating parent
/// directories (0755) as needed.
pub fn write_in(root: &Path, rel: &str, contents: &[u8], mode: u32) -> Result<()> {
    let path = resolve_in(root, rel)?;
    let parent = path.parent().context("path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // Re-check after creating parents: nothing may have turned into a symlink.
    resolve_in(root, rel)?;
    write_atomic(&path, contents, mode)
}

/// Writes a file by writing a sibling temp file and renaming it over the target.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let parent = path.parent().context("path has no parent")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".lxcprov-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Reads `rel` under `root` if it exists (refusing symlinks).
pub fn read_in(root: &Path, rel: &str) -> Result<Option<String>> {
    let path = resolve_in(root, rel)?;
    match fs::read(&path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Mount points at or below `dir`, deepest first (from `/proc/self/mountinfo`).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return vec![] };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// Detaches every mount below `dir` (left behind by an interrupted installer).
pub fn unmount_under(dir: &Path) -> Result<()> {
    for m in mounts_under(dir) {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid NUL-terminated path; umount2 does not retain it.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            bail!("cannot unmount {} inside {}: {e}", m.display(), dir.display());
        }
    }
    Ok(())
}

/// Removes a tree lxcprov created, without following symlinks and without crossing into
/// another file system. Mounts below it are detached first.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", dir.display())),
    };
    if !meta.is_dir() {
        fs::remove_file(dir).with_context(|| format!("removing {}", dir.display()))?;
        return Ok(());
    }
    unmount_under(dir)?;
    remove_recursive(dir, meta.dev()).with_context(|| format!("removing {}", dir.display()))
}

fn remove_recursive(dir: &Path, dev: u64) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let m = fs::symlink_metadata(&p)?;
        if m.is_dir() {
            if m.dev() != dev {
                return Err(std::io::Error::other(format!(
                    "{} is on another file system (a mount?); not removing it",
                    p.display()
                )));
            }
            remove_recursive(&p, dev)?;
        } else {
            // Files made immutable by the guest (chattr +i) would fail here, loudly.
            fs::remove_file(&p)?;
        }
    }
    fs::remove_dir(dir)
}

/// Creates an empty file with `mode`, failing if it exists.
pub fn create_new(path: &Path, mode: u32) -> Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Shifts the ownership of every file under `root` by `uid_off`/`gid_off` (for a user
/// namespace), without following symlinks. Ids outside [0, count) are left alone.
pub fn shift_ownership(root: &Path, uid_off: u32, gid_off: u32, count: u32) -> Result<u64> {
    let mut n = 0u64;
    let dev = fs::symlink_metadata(root)?.dev();
    shift_rec(root, dev, uid_off, gid_off, count, &mut n)
        .with_context(|| format!("shifting ownership in {}", root.display()))?;
    Ok(n)
}

fn shift_rec(p: &Path, dev: u64, uo: u32, go: u32, count: u32, n: &mut u64) -> std::io::Result<()> {
    let m = fs::symlink_metadata(p)?;
    if m.dev() != dev {
        return Ok(());
    }
    let (uid, gid) = (m.uid(), m.gid());
    let nu = if uid < count { uid + uo } else { uid };
    let ng = if gid < count { gid + go } else { gid };
    if (nu, ng) != (uid, gid) {
        // lchown resets setuid/setgid bits on regular files; restore the mode afterwards.
        std::os::unix::fs::lchown(p, Some(nu), Some(ng))?;
        if !m.file_type().is_symlink() && m.mode() & 0o6000 != 0 {
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        *n += 1;
    }
    if m.is_dir() {
        for e in fs::read_dir(p)? {
            shift_rec(&e?.path(), dev, uo, go, count, n)?;
        }
    }
    Ok(())
}

/// An imported tree's root directory: owned by root, mode 0755, whatever the import said
/// (a 0777 root from a tarball would let host users write into the container).
pub fn normalise_root_dir(root: &Path) -> Result<()> {
    std::os::unix::fs::chown(root, Some(0), Some(0)).with_context(|| format!("chown {}", root.display()))?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", root.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_refuse_symlinks_out_of_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        fs::write(&outside, "host").unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/shadow")).unwrap();
        let e = write_in(&root, "/etc/shadow", b"x", 0o600).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert_eq!(fs::read_to_string(&outside).unwrap(), "host");
        std::os::unix::fs::symlink(d.path(), root.join("lnk")).unwrap();
        assert!(write_in(&root, "/lnk/outside", b"x", 0o600).is_err());
        assert!(write_in(&root, "/../outside", b"x", 0o600).is_err());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "host");
    }

    #[test]
    fn writes_atomically_with_mode() {
        let d = tempfile::tempdir().unwrap();
        write_in(d.path(), "/etc/new/file", b"hello", 0o640).unwrap();
        let p = d.path().join("etc/new/file");
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn remove_tree_does_not_follow_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let keep = d.path().join("keep");
        fs::create_dir(&keep).unwrap();
        fs::write(keep.join("precious"), "x").unwrap();
        let t = d.path().join("tree");
        fs::create_dir_all(t.join("a/b")).unwrap();
        fs::write(t.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&keep, t.join("a/link")).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        assert!(keep.join("precious").exists());
        remove_tree(&t).unwrap(); // already gone: fine
    }
}
