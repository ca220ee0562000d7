//! Disk space: what a tree takes, what a file system has free, and "disk full" said plainly.

use anyhow::{bail, Result};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes a tree takes on disk (allocated blocks; hard links counted once, mounts not
/// entered, symlinks not followed).
pub fn tree_bytes(root: &Path) -> u64 {
    fn walk(p: &Path, dev: u64, seen: &mut std::collections::HashSet<(u64, u64)>, n: &mut u64) {
        let Ok(m) = fs::symlink_metadata(p) else { return };
        if m.dev() != dev {
            return;
        }
        if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
            *n += m.blocks() * 512;
        }
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), dev, seen, n);
                }
            }
        }
    }
    let Ok(m) = fs::symlink_metadata(root) else { return 0 };
    let mut n = 0;
    walk(root, m.dev(), &mut Default::default(), &mut n);
    n
}

/// Free bytes for root on the file system holding `dir` (or its nearest existing parent).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let mut d = dir;
    while !d.exists() {
        d = d.parent()?;
    }
    let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Refuses a copy of `src` into `dest_dir` that cannot fit, before anything is written:
/// "disk full" and where, not a truncated copy and a quoted `cp` message.
pub fn check_free_space(src: &Path, dest_dir: &Path) -> Result<()> {
    let need = tree_bytes(src);
    if let Some(free) = free_bytes(dest_dir) {
        // Reflinks on btrfs/XFS need almost nothing; ext4 and tmpfs need the whole tree.
        if need > free && !reflink_capable(dest_dir) {
            bail!(
                "disk full: copying {} needs {} MiB but the file system of {} has {} MiB free; free some space or use another --pool-dir/--cache-dir. Nothing was copied.",
                src.display(),
                need / (1 << 20) + 1,
                dest_dir.display(),
                free / (1 << 20)
            );
        }
    }
    Ok(())
}

/// Btrfs and XFS can reflink (`cp --reflink=auto` shares the blocks).
fn reflink_capable(dir: &Path) -> bool {
    let mut d = dir;
    while !d.exists() {
        match d.parent() {
            Some(p) => d = p,
            None => return false,
        }
    }
    let Ok(c) = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()) else { return false };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as in free_bytes.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    const BTRFS: i64 = 0x9123683e;
    const XFS: i64 = 0x58465342;
    matches!(st.f_type as i64, BTRFS | XFS)
}

/// A failed command whose output says ENOSPC becomes "disk full" naming the file system.
pub fn explain_disk_full(e: anyhow::Error, where_: &Path) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("No space left on device") || text.contains("Disk quota exceeded") {
        let free = free_bytes(where_).map(|b| format!(" ({} MiB free now)", b / (1 << 20))).unwrap_or_default();
        return e.context(format!(
            "disk full: the file system of {} ran out of space{free}; free some space or use another --pool-dir/--cache-dir",
            where_.display()
        ));
    }
    e
}

/// Fails unless the file system of `dir` has `need` bytes free ("disk full" up front, before
/// anything is written; unknown free space counts as room).
pub fn check_room(dir: &Path, need: u64) -> Result<()> {
    if let Some(free) = free_bytes(dir) {
        if need > free {
            bail!(
                "disk full: {} MiB are needed but the file system of {} has {} MiB free; free some space or choose another directory. Nothing was written.",
                need.div_ceil(1 << 20),
                dir.display(),
                free / (1 << 20)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_that_cannot_fit_is_refused_as_disk_full() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), vec![1u8; 64 * 1024]).unwrap();
        assert!(tree_bytes(&src) >= 64 * 1024);
        check_free_space(&src, d.path()).unwrap();
        let e = anyhow::anyhow!("cp: error writing 'x': No space left on device");
        let e = format!("{:#}", explain_disk_full(e, d.path()));
        assert!(e.starts_with("disk full: the file system of"), "{e}");
        let other = format!("{:#}", explain_disk_full(anyhow::anyhow!("Permission denied"), d.path()));
        assert_eq!(other, "Permission denied");
    }
}
