//! Id-mapped mounts (Linux 5.12+; overlayfs takes them as lower layers since 5.19): a view
//! of a tree whose owners appear shifted by an id map, without a single chown. An isolated
//! container's overlay sits on such a view of the one unshifted base, so a range of its own
//! costs no copy and no shift of the base.
//!
//! The map is given by a user namespace: a child process unshares one, lxcprov writes its
//! `uid_map`/`gid_map` and keeps a descriptor of it; then `open_tree(OPEN_TREE_CLONE)`,
//! `mount_setattr(MOUNT_ATTR_IDMAP)` and `move_mount` put the view at a directory.

use crate::profile::Idmap;
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).with_context(|| format!("{} holds a NUL byte", p.display()))
}

fn last_os_error(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error())
}

/// A user namespace whose map is `m` (container id 0 is host id `m.uid.target`, ...).
pub fn userns_fd(m: &Idmap) -> Result<OwnedFd> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last_os_error("creating a pipe"));
    }
    // SAFETY: the descriptors were just created and are owned here alone.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child only makes async-signal-safe system calls (prctl, getppid,
    // close_range, unshare, write, pause, _exit) and never returns into Rust code, so forking
    // a threaded process is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last_os_error("forking a user-namespace holder"));
    }
    if pid == 0 {
        unsafe {
            // It must never outlive lxcprov (a SIGKILLed run), nor hold what lxcprov holds:
            // its descriptors (locks!) are closed but for the pipe's write end.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            let w = wr.as_raw_fd() as libc::c_uint;
            if w > 3 {
                libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, w - 1, 0 as libc::c_uint);
            }
            libc::syscall(libc::SYS_close_range, w + 1, libc::c_uint::MAX, 0 as libc::c_uint);
            let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 { 1 } else { 0 };
            libc::write(wr.as_raw_fd(), (&ok as *const u8).cast(), 1);
            if ok == 1 {
                loop {
                    libc::pause();
                }
            }
            libc::_exit(1);
        }
    }
    drop(wr);
    let r = (|| -> Result<OwnedFd> {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a one-byte buffer.
        let n = unsafe { libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if n != 1 || b[0] != 1 {
            bail!("the kernel refused a new user namespace (unshare(CLONE_NEWUSER)); id-mapped mounts need one");
        }
        let dir = format!("/proc/{pid}");
        std::fs::write(format!("{dir}/uid_map"), format!("0 {} {}\n", m.uid.target, m.uid.count))
            .with_context(|| format!("writing {dir}/uid_map"))?;
        std::fs::write(format!("{dir}/gid_map"), format!("0 {} {}\n", m.gid.target, m.gid.count))
            .with_context(|| format!("writing {dir}/gid_map"))?;
        let f = std::fs::File::open(format!("{dir}/ns/user")).with_context(|| format!("opening {dir}/ns/user"))?;
        Ok(OwnedFd::from(f))
    })();
    // SAFETY: pid is our child; it is killed and reaped whatever happened above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
    r
}

/// A detached, id-mapped clone of the mount at `src` (`open_tree(OPEN_TREE_CLONE)` +
/// `mount_setattr(MOUNT_ATTR_IDMAP)`): attached nowhere, it goes with its descriptor.
fn idmapped_clone(src: &Path, m: &Idmap) -> Result<OwnedFd> {
    let ns = userns_fd(m)?;
    let s = cstr(src)?;
    // SAFETY: s is NUL-terminated; the flags ask for a detached clone of the mount at src.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            s.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(last_os_error(&format!("open_tree {}", src.display())));
    }
    // SAFETY: open_tree returned a new descriptor owned here.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: attr is a valid mount_attr of the size passed; tree is an open_tree descriptor.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r != 0 {
        return Err(last_os_error(&format!(
            "id-mapping a mount of {} (the kernel or its file system does not support id-mapped mounts)",
            src.display()
        )));
    }
    Ok(tree)
}

/// Mounts an id-mapped view of `src` at the directory `dst`: files owned by id k below the
/// map's count appear owned by `target + k`.
pub fn mount_idmapped(src: &Path, dst: &Path, m: &Idmap) -> Result<()> {
    let tree = idmapped_clone(src, m)?;
    let d = cstr(dst)?;
    // SAFETY: moves the detached mount `tree` to the NUL-terminated path d.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            d.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
        )
    };
    if r != 0 {
        return Err(last_os_error(&format!("attaching the id-mapped view of {} at {}", src.display(), dst.display())));
    }
    Ok(())
}

/// Detaches the mount at `dst` (`umount -l`): the overlay built on it keeps its own clone.
pub fn detach(dst: &Path) -> Result<()> {
    let d = cstr(dst)?;
    // SAFETY: d is NUL-terminated.
    if unsafe { libc::umount2(d.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(last_os_error(&format!("unmounting {}", dst.display())));
    }
    Ok(())
}

/// Can `dir`'s file system give id-mapped views here? Tried for real: a detached clone of
/// `dir` is id-mapped and dropped, never attached anywhere. Needs root.
pub fn supported(dir: &Path) -> Result<()> {
    idmapped_clone(dir, &crate::profile::isolated_map_at(crate::profile::ISOLATED_IDS * 16)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// An overlay on an id-mapped lower layer: the base's owners appear shifted, a copy-up
    /// lands in the upper layer with the shifted owner, the base is never written, setuid
    /// bits survive, and after the view is detached the overlay still works.
    #[test]
    #[ignore = "root only (mounts): cargo test --lib -- --ignored (scripts/test.sh)"]
    fn an_overlay_on_an_idmapped_lower_layer_shows_shifted_owners() {
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let (base, lower, upper, work, merged) = (
            d.path().join("base"),
            d.path().join("lower"),
            d.path().join("upper"),
            d.path().join("work"),
            d.path().join("m"),
        );
        for p in [&base, &lower, &upper, &work, &merged] {
            std::fs::create_dir(p).unwrap();
        }
        std::fs::write(base.join("f"), "base\n").unwrap();
        std::fs::write(base.join("suid"), "x").unwrap();
        std::os::unix::fs::chown(base.join("suid"), Some(0), Some(0)).unwrap();
        std::fs::set_permissions(base.join("suid"), std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
        std::os::unix::fs::chown(base.join("f"), Some(33), Some(33)).unwrap();
        supported(&base).unwrap();
        let m = crate::idmap::map_at(crate::idmap::SIZE * 20);
        mount_idmapped(&base, &lower, &m).unwrap();
        let opts = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
        let st = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts, merged.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        detach(&lower).unwrap();
        let t = m.uid.target;
        assert_eq!(std::fs::metadata(merged.join("f")).unwrap().uid(), t + 33);
        assert_eq!(std::fs::metadata(merged.join("suid")).unwrap().uid(), t);
        assert_eq!(std::fs::metadata(merged.join("suid")).unwrap().mode() & 0o7777, 0o4755);
        std::fs::write(merged.join("f"), "changed\n").unwrap();
        assert_eq!(std::fs::metadata(upper.join("f")).unwrap().uid(), t + 33, "copied up with the shifted owner");
        assert_eq!(std::fs::read_to_string(base.join("f")).unwrap(), "base\n", "the base is never written");
        assert_eq!(std::fs::metadata(base.join("f")).unwrap().uid(), 33);
        let _ = std::process::Command::new("umount").arg(&merged).status();
    }
}
