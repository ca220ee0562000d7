//! Careful file-system operations on trees lxcprov owns.
//!
//! Root filesystems are untrusted territory once a package manager has run in them: a
//! symlink such as `etc/shadow -> /etc/shadow` must never redirect a write to the host, and
//! removing a partial tree must never cross into a mount (debootstrap mounts `proc` and
//! `sys` inside its target). These helpers need root only because the trees are root's.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// The most [`read_in`] reads from a file inside a root filesystem (`/etc/shadow` and the
/// like are a few kilobytes; a guest's file is never trusted to be small).
pub const READ_IN_MAX: u64 = 4 << 20;

/// Reads `rel` under `root` if it exists, refusing symlinks (among the parents and, with
/// `O_NOFOLLOW`, the file itself), anything that is not a regular file, and files larger
/// than [`READ_IN_MAX`].
pub fn read_in(root: &Path, rel: &str) -> Result<Option<String>> {
    read_in_max(root, rel, READ_IN_MAX)
}

/// [`read_in`] with another limit (a package database is larger than `/etc/shadow`).
pub fn read_in_max(root: &Path, rel: &str, max: u64) -> Result<Option<String>> {
    let path = resolve_in(root, rel)?;
    let what = format!("{rel} in {}", root.display());
    match read_bounded(&path, max, &what, false) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(BoundedReadError::NotFound) => Ok(None),
        Err(BoundedReadError::Other(e)) => Err(e),
    }
}

/// Reads a regular file of at most `max` bytes, such as a profile, a template or a password
/// file named on the command line. `what` names the file in messages ("profile file").
///
/// A FIFO would block the read forever, `/dev/zero` or a sparse file of many gigabytes
/// would exhaust memory, and opening some devices has side effects (a tape rewinds, a
/// terminal becomes the controlling one). So the path is `stat`ed first and anything but a
/// regular file is refused without being opened; the file is then opened with
/// `O_NONBLOCK | O_NOCTTY`, checked again on the open descriptor (the path may have been
/// replaced in between), its size compared with `max`, and at most `max + 1` bytes are read
/// (a file can grow while it is read, and some pseudo-files report a size of 0). Symlinks
/// are followed: these are host paths the administrator chose. Files inside a root
/// filesystem are read with [`read_in`], which does not follow them.
pub fn read_regular_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    read_bounded(path, max, what, true).map_err(|e| match e {
        BoundedReadError::NotFound => anyhow::anyhow!("{what} {}: no such file", path.display()),
        BoundedReadError::Other(e) => e,
    })
}

/// [`read_regular_bounded`] for text: the content must be UTF-8.
pub fn read_regular_bounded_to_string(path: &Path, max: u64, what: &str) -> Result<String> {
    let bytes = read_regular_bounded(path, max, what)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what} {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

enum BoundedReadError {
    NotFound,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for BoundedReadError {
    fn from(e: anyhow::Error) -> Self {
        BoundedReadError::Other(e)
    }
}

/// What kind of file a mode describes, for messages.
fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

fn read_bounded(path: &Path, max: u64, what: &str, follow: bool) -> std::result::Result<Vec<u8>, BoundedReadError> {
    use std::io::Read;
    let shown = path.display();
    let pre = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) };
    let pre = match pre {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BoundedReadError::NotFound),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {what} {shown}")).into()),
    };
    if !pre.file_type().is_file() {
        let kind = kind_of(pre.file_type());
        return Err(anyhow::anyhow!("refusing to read {what} {shown}: it is {kind}, not a regular file").into());
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BoundedReadError::NotFound),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !follow => {
            return Err(anyhow::anyhow!("refusing to read {what} {shown}: it is a symlink").into())
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot open {what} {shown}")).into()),
    };
    let meta = file.metadata().map_err(|e| anyhow::Error::new(e).context(format!("cannot stat {what} {shown}")))?;
    if !meta.file_type().is_file() {
        let kind = kind_of(meta.file_type());
        return Err(anyhow::anyhow!("refusing to read {what} {shown}: it is {kind}, not a regular file").into());
    }
    if meta.len() > max {
        return Err(anyhow::anyhow!(
            "refusing to read {what} {shown}: it is {} bytes, more than the limit of {max}",
            meta.len()
        )
        .into());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {what} {shown}")))?;
    if buf.len() as u64 > max {
        return Err(anyhow::anyhow!("refusing to read {what} {shown}: it grew beyond the limit of {max} bytes").into());
    }
    Ok(buf)
}

/// Creates the directory `path` with exactly `mode` if it is missing (parents as usual,
/// 0755), or takes away from an existing one every permission bit `mode` does not grant
/// (it never widens a mode the administrator narrowed). Refuses a symlink or a
/// non-directory, since the point is to know what protects the content.
pub fn ensure_private_dir(path: &Path, mode: u32) -> Result<()> {
    let mode = mode & 0o777;
    let mut created = false;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!("{} is a symlink; lxcprov wants a real directory there", path.display())
        }
        Ok(m) if !m.is_dir() => bail!("{} exists and is not a directory", path.display()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            match fs::DirBuilder::new().mode(mode).create(path) {
                Ok(()) => created = true,
                // Created by a concurrent run in between: treated as an existing one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    let m = fs::symlink_metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
    if !m.is_dir() {
        bail!("{} is not a directory", path.display());
    }
    let current = m.mode() & 0o7777;
    // A new directory gets exactly `mode` (the umask may have taken bits); an existing one
    // loses what `mode` does not grant, setuid/setgid/sticky included.
    let wanted = if created { mode } else { current & mode };
    if wanted != current {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted))
            .with_context(|| format!("setting the mode of {} to {wanted:o}", path.display()))?;
    }
    Ok(())
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
        // chown drops file capabilities; they are written back for the namespace's root.
        let caps = if m.is_file() { get_xattr(p, CAP_XATTR)? } else { None };
        // lchown resets setuid/setgid bits on regular files; restore the mode afterwards.
        std::os::unix::fs::lchown(p, Some(nu), Some(ng))?;
        if !m.file_type().is_symlink() && m.mode() & 0o6000 != 0 {
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        if let Some(c) = caps {
            if let Some(v3) = caps_for_namespace(&c, uo, count) {
                set_xattr(p, CAP_XATTR, &v3)?;
            }
        }
        *n += 1;
    }
    // ACL entries name uids and gids too: shift those in [0, count).
    if !m.file_type().is_symlink() {
        for (name, is_default) in [(ACL_ACCESS, false), (ACL_DEFAULT, true)] {
            if is_default && !m.is_dir() {
                continue;
            }
            if let Some(acl) = get_xattr(p, name)? {
                if let Some(shifted) = shift_acl(&acl, uo, go, count) {
                    set_xattr(p, name, &shifted)?;
                }
            }
        }
    }
    if m.is_dir() {
        for e in fs::read_dir(p)? {
            shift_rec(&e?.path(), dev, uo, go, count, n)?;
        }
    }
    Ok(())
}

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

const CAP_XATTR: &str = "security.capability";
const ACL_ACCESS: &str = "system.posix_acl_access";
const ACL_DEFAULT: &str = "system.posix_acl_default";

fn get_xattr(p: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
    let name = std::ffi::CString::new(name)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            Some(libc::ERANGE) => Err(std::io::Error::other(format!("{}: oversized {name:?}", p.display()))),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
    let cname = std::ffi::CString::new(name)?;
    // SAFETY: valid NUL-terminated strings and a value buffer of the given length.
    let r = unsafe { libc::lsetxattr(path.as_ptr(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(std::io::Error::other(format!(
            "{}: writing {name}: {}",
            p.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;

/// A file-capability xattr rewritten for a user namespace whose root is host uid `root`
/// (VFS caps v3: the capabilities apply only where `root` is uid 0). A v2 xattr (no root
/// id, host-wide) or a v3 one whose root id is below `count` (written inside a namespace
/// of the unshifted tree) gets `root` (+ its old id). `None` when it is not understood.
pub fn caps_for_namespace(x: &[u8], root: u32, count: u32) -> Option<Vec<u8>> {
    let magic = u32::from_le_bytes(x.get(0..4)?.try_into().ok()?);
    let (body, old_root) = match magic & VFS_CAP_REVISION_MASK {
        VFS_CAP_REVISION_2 if x.len() == 20 => (&x[4..20], 0),
        VFS_CAP_REVISION_3 if x.len() == 24 => (&x[4..20], u32::from_le_bytes(x[20..24].try_into().ok()?)),
        _ => return None,
    };
    if old_root >= count {
        return None; // already a host id outside the map: leave it
    }
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&(VFS_CAP_REVISION_3 | (magic & !VFS_CAP_REVISION_MASK)).to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&root.checked_add(old_root)?.to_le_bytes());
    Some(v)
}

/// A POSIX ACL xattr with its named-user and named-group ids in [0, count) shifted.
/// `None` when nothing changes or it is not understood.
pub fn shift_acl(x: &[u8], uo: u32, go: u32, count: u32) -> Option<Vec<u8>> {
    const ACL_USER: u16 = 0x02;
    const ACL_GROUP: u16 = 0x08;
    if x.len() < 4 || !(x.len() - 4).is_multiple_of(8) || u32::from_le_bytes(x[0..4].try_into().ok()?) != 2 {
        return None;
    }
    let mut out = x.to_vec();
    let mut changed = false;
    for e in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let off = match tag {
            ACL_USER => uo,
            ACL_GROUP => go,
            _ => continue,
        };
        let id = u32::from_le_bytes(e[4..8].try_into().ok()?);
        if id < count {
            e[4..8].copy_from_slice(&(id.checked_add(off)?).to_le_bytes());
            changed = true;
        }
    }
    changed.then_some(out)
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

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
    }

    /// Runs `f` on another thread and fails the test if it has not answered within 5 s
    /// (a FIFO read that blocks would otherwise hang the whole test run).
    fn quickly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the read hung")
    }

    fn bounded_err(p: &Path, max: u64) -> String {
        let p = p.to_path_buf();
        quickly(move || format!("{:#}", read_regular_bounded(&p, max, "test file").unwrap_err()))
    }

    #[test]
    fn bounded_reads_refuse_what_is_not_a_small_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        mkfifo(&fifo);
        let e = bounded_err(&fifo, 1024);
        assert!(e.contains("FIFO") && e.contains("fifo") && e.contains("test file"), "{e}");

        let e = bounded_err(Path::new("/dev/zero"), 1024);
        assert!(e.contains("character device") && e.contains("/dev/zero"), "{e}");
        let link = d.path().join("zero-link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = bounded_err(&link, 1024);
        assert!(e.contains("character device"), "{e}");
        let fifo_link = d.path().join("fifo-link");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        assert!(bounded_err(&fifo_link, 1024).contains("FIFO"));

        let e = bounded_err(d.path(), 1024);
        assert!(e.contains("directory"), "{e}");

        let sparse = d.path().join("sparse");
        fs::File::create(&sparse).unwrap().set_len(10 << 30).unwrap();
        let e = bounded_err(&sparse, 1 << 20);
        assert!(e.contains("10737418240 bytes") && e.contains("limit of 1048576"), "{e}");

        let exact = d.path().join("exact");
        fs::write(&exact, vec![b'x'; 1024]).unwrap();
        assert_eq!(read_regular_bounded(&exact, 1024, "t").unwrap().len(), 1024);
        assert!(bounded_err(&exact, 1023).contains("more than the limit"));

        let e = bounded_err(&d.path().join("missing"), 10);
        assert!(e.contains("no such file"), "{e}");

        let bad = d.path().join("latin1");
        fs::write(&bad, b"caf\xe9\n").unwrap();
        let e = read_regular_bounded_to_string(&bad, 100, "template").unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("offset 3"), "{e}");
        fs::write(&bad, "caf\u{e9}\n").unwrap();
        assert_eq!(read_regular_bounded_to_string(&bad, 100, "template").unwrap(), "caf\u{e9}\n");
    }

    #[test]
    fn bounded_reads_stop_at_the_limit_when_the_size_lies() {
        // /proc files report a size of 0 but have content: the read itself is capped.
        let b = read_regular_bounded(Path::new("/proc/self/status"), 1 << 20, "t").unwrap();
        assert!(!b.is_empty());
        let e = read_regular_bounded(Path::new("/proc/self/status"), 8, "t").unwrap_err().to_string();
        assert!(e.contains("beyond the limit of 8"), "{e}");
    }

    #[test]
    fn read_in_refuses_fifos_devices_symlinks_and_huge_files_in_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        assert_eq!(read_in(root, "/etc/shadow").unwrap(), None);
        mkfifo(&root.join("etc/shadow"));
        let r = root.to_path_buf();
        let e = quickly(move || format!("{:#}", read_in(&r, "/etc/shadow").unwrap_err()));
        assert!(e.contains("FIFO") && e.contains("/etc/shadow"), "{e}");
        fs::remove_file(root.join("etc/shadow")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/shadow")).unwrap();
        let r = root.to_path_buf();
        let e = quickly(move || format!("{:#}", read_in(&r, "/etc/shadow").unwrap_err()));
        assert!(e.contains("symlink"), "{e}");
        fs::remove_file(root.join("etc/shadow")).unwrap();
        fs::File::create(root.join("etc/shadow")).unwrap().set_len(READ_IN_MAX + 1).unwrap();
        assert!(format!("{:#}", read_in(root, "/etc/shadow").unwrap_err()).contains("limit"));
        fs::write(root.join("etc/shadow"), "root:*:1::::::\n").unwrap();
        assert_eq!(read_in(root, "/etc/shadow").unwrap().unwrap(), "root:*:1::::::\n");
        fs::create_dir(root.join("etc/dir")).unwrap();
        assert!(format!("{:#}", read_in(root, "/etc/dir").unwrap_err()).contains("directory"));
    }

    #[test]
    fn private_dirs_are_created_with_the_mode_and_never_widened() {
        let d = tempfile::tempdir().unwrap();
        let pool = d.path().join("a/pool");
        ensure_private_dir(&pool, 0o711).unwrap();
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&pool), 0o711);
        fs::set_permissions(&pool, fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_private_dir(&pool, 0o711).unwrap();
        assert_eq!(mode(&pool), 0o711);
        fs::set_permissions(&pool, fs::Permissions::from_mode(0o700)).unwrap();
        ensure_private_dir(&pool, 0o711).unwrap();
        assert_eq!(mode(&pool), 0o700, "a narrower mode is kept");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&pool, &link).unwrap();
        assert!(ensure_private_dir(&link, 0o711).unwrap_err().to_string().contains("symlink"));
        let file = d.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(ensure_private_dir(&file, 0o711).is_err());
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

    #[test]
    fn file_capabilities_become_v3_for_the_namespace_root() {
        // cap_net_raw (bit 13) permitted + effective, v2.
        let mut v2 = (VFS_CAP_REVISION_2 | 1).to_le_bytes().to_vec();
        v2.extend_from_slice(&(1u32 << 13).to_le_bytes());
        v2.extend_from_slice(&[0; 12]);
        let v3 = caps_for_namespace(&v2, 100000, 65536).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(u32::from_le_bytes(v3[0..4].try_into().unwrap()), VFS_CAP_REVISION_3 | 1);
        assert_eq!(&v3[4..20], &v2[4..20]);
        assert_eq!(u32::from_le_bytes(v3[20..24].try_into().unwrap()), 100000);
        // Already shifted (a root id outside the map): left alone; garbage: not understood.
        assert!(caps_for_namespace(&v3, 100000, 65536).is_none());
        assert!(caps_for_namespace(&[1, 2, 3], 100000, 65536).is_none());
        let mut inner = v3.clone();
        inner[20..24].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(caps_for_namespace(&inner, 100000, 65536).unwrap()[20..24].try_into().unwrap()),
            100005
        );
    }

    #[test]
    fn acl_entries_are_shifted_like_owners() {
        // version 2; USER_OBJ; USER 1000; GROUP 50; MASK; OTHER; USER 70000 (outside the map).
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, id) in
            [(0x01u16, u32::MAX), (0x02, 1000), (0x08, 50), (0x10, u32::MAX), (0x20, u32::MAX), (0x02, 70000)]
        {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&7u16.to_le_bytes());
            acl.extend_from_slice(&id.to_le_bytes());
        }
        let s = shift_acl(&acl, 100000, 200000, 65536).unwrap();
        let id = |i: usize| u32::from_le_bytes(s[4 + i * 8 + 4..4 + i * 8 + 8].try_into().unwrap());
        assert_eq!((id(1), id(2), id(5)), (101000, 200050, 70000));
        assert_eq!(id(0), u32::MAX);
        assert!(shift_acl(&s, 100000, 200000, 65536).is_none(), "shifting twice changes nothing");
    }
}
