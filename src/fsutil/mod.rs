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

mod ids;
pub mod lock;
mod space;

pub use ids::{caps_for_namespace, ensure_pool, grant_traverse, shift_acl, shift_one, shift_ownership};
pub use space::{check_free_space, check_room, explain_disk_full, free_bytes, tree_bytes};

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

/// The most [`read_state`] reads by default: lxcprov's own records, registries and small
/// pool files are a few kilobytes; a registry of thousands of containers stays well below.
pub const STATE_MAX: u64 = 4 << 20;

/// Reads one of lxcprov's own files (a record, a registry, a file in the cache or the pool):
/// `None` when it does not exist. These directories are root's, but a hand edit, a restore
/// from a backup or another tool can leave anything there, so the file is treated as
/// untrusted input: a symlink (even to a good file), a FIFO, a device or a directory is
/// refused without being opened (`O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, checked again on the
/// descriptor), and at most `max` bytes are read. Errors name the file and say to move it
/// aside.
pub fn read_state(path: &Path, max: u64, what: &str) -> Result<Option<Vec<u8>>> {
    match read_bounded(path, max, what, false) {
        Ok(b) => Ok(Some(b)),
        Err(BoundedReadError::NotFound) => Ok(None),
        Err(BoundedReadError::Other(e)) => Err(e.context(format!(
            "lxcprov's {what} {} is not what lxcprov wrote; move it aside (or remove it) and run again",
            path.display()
        ))),
    }
}

/// [`read_state`] for text: the content must be UTF-8.
pub fn read_state_to_string(path: &Path, max: u64, what: &str) -> Result<Option<String>> {
    let Some(bytes) = read_state(path, max, what)? else { return Ok(None) };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{what} {} is not UTF-8 text (invalid byte at offset {}); move it aside (or remove it) and run again",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Opens (creating it if missing, mode 0600) a lock file in lxcprov's state, cache or pool.
/// The lock's directory is created if missing and must then be a real directory (not a
/// symlink); the lock itself is opened with `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`, so a
/// symlink in its place (even a dangling one) never makes lxcprov create or open a file
/// elsewhere, and anything but a regular file is refused.
pub fn open_lock(path: &Path) -> Result<fs::File> {
    let shown = path.display();
    let dir = path.parent().context("lock path has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let m = fs::symlink_metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    if !m.is_dir() {
        bail!(
            "the directory of lock {shown} is {}, not a directory; move {} aside and run again",
            kind_of(m.file_type()),
            dir.display()
        );
    }
    let refuse = |kind: &str| {
        anyhow::anyhow!(
            "lock {shown} is {kind}, not a regular file lxcprov made; move it aside (or remove it) and run again"
        )
    };
    if let Ok(m) = fs::symlink_metadata(path) {
        if !m.is_file() {
            return Err(refuse(kind_of(m.file_type())));
        }
    }
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let file = match fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse("a symlink")),
        Err(e) => return Err(e).with_context(|| format!("opening lock {shown}")),
    };
    let meta = file.metadata().with_context(|| format!("inspecting lock {shown}"))?;
    if !meta.is_file() {
        return Err(refuse(kind_of(meta.file_type())));
    }
    Ok(file)
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

/// Removes `dir` and everything below it, working relative to directory descriptors
/// (`openat`/`unlinkat`), never by full path: a tree imported from a tarball may be nested
/// deeper than `PATH_MAX` below `dir` (its members' names are relative to the extraction
/// directory), and removing it by full path would fail with "File name too long" and leave
/// the partial tree behind. Iterative, with one descriptor open at a time, so neither the
/// stack nor the descriptor limit bounds the depth. Symlinks are removed, never followed;
/// a directory on another file system stops the removal.
fn remove_recursive(dir: &Path, dev: u64) -> std::io::Result<()> {
    use std::ffi::{CStr, CString};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let err = std::io::Error::last_os_error;
    let open_dir = |at: libc::c_int, name: &CStr| -> std::io::Result<OwnedFd> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: name is NUL-terminated; the returned descriptor is owned by the OwnedFd.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
        if fd < 0 {
            return Err(err());
        }
        // SAFETY: fd is a freshly opened descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let stat_at = |at: libc::c_int, name: &CStr| -> std::io::Result<libc::stat> {
        // SAFETY: st is plain data filled by fstatat; name is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatat(at, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) } != 0 {
            return Err(err());
        }
        Ok(st)
    };
    // The names in the directory open at `fd` (not `.` and `..`).
    let list = |fd: &OwnedFd| -> std::io::Result<Vec<CString>> {
        // SAFETY: dup of a valid descriptor; fdopendir takes ownership of the duplicate and
        // closedir releases it; readdir's entries are copied before the next call.
        unsafe {
            let d = libc::dup(fd.as_raw_fd());
            if d < 0 {
                return Err(err());
            }
            let dirp = libc::fdopendir(d);
            if dirp.is_null() {
                let e = err();
                libc::close(d);
                return Err(e);
            }
            let mut names = vec![];
            loop {
                *libc::__errno_location() = 0;
                let ent = libc::readdir64(dirp);
                if ent.is_null() {
                    let e = err();
                    libc::closedir(dirp);
                    if e.raw_os_error().unwrap_or(0) != 0 {
                        return Err(e);
                    }
                    return Ok(names);
                }
                let name = CStr::from_ptr((*ent).d_name.as_ptr());
                if name.to_bytes() != b"." && name.to_bytes() != b".." {
                    names.push(name.to_owned());
                }
            }
        }
    };
    let shown = |stack: &[(CString, u64, Vec<CString>)], name: &CStr| -> String {
        let mut p = dir.to_path_buf();
        for (n, _, _) in stack.iter().skip(1) {
            p.push(String::from_utf8_lossy(n.to_bytes()).as_ref());
        }
        p.push(String::from_utf8_lossy(name.to_bytes()).as_ref());
        p.display().to_string()
    };
    let c = CString::new(dir.as_os_str().as_encoded_bytes())?;
    let mut cur = open_dir(libc::AT_FDCWD, &c)?;
    let empty = CString::default();
    let root_st = stat_at(cur.as_raw_fd(), &empty)?;
    // Per open level: its name in its parent, its inode, the entries still to remove.
    let mut stack: Vec<(CString, u64, Vec<CString>)> = vec![(empty.clone(), root_st.st_ino, list(&cur)?)];
    loop {
        let next = stack.last_mut().and_then(|l| l.2.pop());
        if let Some(name) = next {
            let st = match stat_at(cur.as_raw_fd(), &name) {
                Ok(st) => st,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                if st.st_dev != dev {
                    return Err(std::io::Error::other(format!(
                        "{} is on another file system (a mount?); not removing it",
                        shown(&stack, &name)
                    )));
                }
                let child = open_dir(cur.as_raw_fd(), &name)?;
                if stat_at(child.as_raw_fd(), &empty)?.st_ino != st.st_ino {
                    return Err(std::io::Error::other(format!(
                        "{} changed while it was removed",
                        shown(&stack, &name)
                    )));
                }
                let entries = list(&child)?;
                cur = child;
                stack.push((name, st.st_ino, entries));
            } else {
                // Files made immutable by the guest (chattr +i) would fail here, loudly.
                // SAFETY: name is NUL-terminated; cur is an open directory.
                if unsafe { libc::unlinkat(cur.as_raw_fd(), name.as_ptr(), 0) } != 0 {
                    return Err(err());
                }
            }
            continue;
        }
        let (name, _, _) = stack.pop().expect("a level is open");
        let Some((_, parent_ino, _)) = stack.last() else {
            drop(cur);
            return fs::remove_dir(dir);
        };
        let parent = open_dir(cur.as_raw_fd(), c"..")?;
        if stat_at(parent.as_raw_fd(), &empty)?.st_ino != *parent_ino {
            return Err(std::io::Error::other(format!("{} moved while it was removed", shown(&stack, &name))));
        }
        cur = parent;
        // SAFETY: name is NUL-terminated; cur is the open parent directory.
        if unsafe { libc::unlinkat(cur.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            return Err(err());
        }
    }
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

/// `cp -a --reflink=auto SRC DST`: a reflink (O(1) per file) where the file system supports
/// it, a plain copy otherwise.
pub fn copy_tree(runner: &dyn crate::exec::Runner, src: &Path, dst: &Path) -> Result<()> {
    let target_dir = dst.parent().unwrap_or(dst);
    check_free_space(src, target_dir)?;
    let cmd = crate::exec::Cmd::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(src.display().to_string())
        .arg(dst.display().to_string());
    runner.run(&cmd, &mut |_| {}).map_err(|e| explain_disk_full(anyhow::Error::new(e), target_dir))
}

/// The SHA-256 of a file, as lower-case hex (read in blocks: any size).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
pub(crate) mod tests {
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
    fn removes_trees_deeper_than_path_max() {
        // Found by tests/fuzz.rs: a tarball's members are relative to the extraction
        // directory, so the tree below it may be deeper than PATH_MAX by full path.
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("partial");
        fs::create_dir(&root).unwrap();
        let outside = d.path().join("outside");
        fs::write(&outside, "host").unwrap();
        let dirfd = fs::File::open(&root).unwrap();
        let comp = std::ffi::CString::new("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz").unwrap();
        let mut cur = dirfd;
        use std::os::fd::{AsRawFd, FromRawFd};
        for _ in 0..100 {
            // SAFETY: valid descriptor and NUL-terminated name.
            unsafe {
                assert_eq!(libc::mkdirat(cur.as_raw_fd(), comp.as_ptr(), 0o755), 0);
                let fd = libc::openat(cur.as_raw_fd(), comp.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                assert!(fd >= 0);
                cur = fs::File::from_raw_fd(fd);
            }
        }
        // A file and a symlink out of the tree at the bottom, 6400 bytes below the root.
        let f = std::ffi::CString::new("f").unwrap();
        let l = std::ffi::CString::new("l").unwrap();
        let target = std::ffi::CString::new(outside.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid descriptor and NUL-terminated names.
        unsafe {
            let fd = libc::openat(cur.as_raw_fd(), f.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
            assert!(fd >= 0);
            libc::close(fd);
            assert_eq!(libc::symlinkat(target.as_ptr(), cur.as_raw_fd(), l.as_ptr()), 0);
        }
        drop(cur);
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert_eq!(fs::read_to_string(&outside).unwrap(), "host");
        // Symlinked directories are removed as links, not followed.
        fs::create_dir_all(root.join("a")).unwrap();
        fs::create_dir(d.path().join("keep")).unwrap();
        fs::write(d.path().join("keep/x"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("keep"), root.join("a/link")).unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists() && d.path().join("keep/x").exists());
    }

    #[test]
    fn writes_atomically_with_mode() {
        let d = tempfile::tempdir().unwrap();
        write_in(d.path(), "/etc/new/file", b"hello", 0o640).unwrap();
        let p = d.path().join("etc/new/file");
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    }

    pub(crate) fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
    }

    /// Runs `f` on another thread and fails the test if it has not answered within 5 s
    /// (a FIFO read that blocks would otherwise hang the whole test run).
    pub(crate) fn quickly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
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
}
