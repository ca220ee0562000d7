//! The pseudo-terminal an interactive command gets, relayed to the user's terminal (never
//! the user's own: a container process holding it could type into the host shell).

use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A pseudo-terminal for an interactive command, relayed to the user's terminal.
pub(super) struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    pub(super) fn open() -> Result<Pty> {
        let (mut m, mut s) = (-1, -1);
        // The new pty gets the user's window size.
        // SAFETY: winsize is plain data; openpty writes two descriptors.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let have_ws = (0..3).any(|fd| unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0);
        let wsp = if have_ws { &mut ws as *mut libc::winsize } else { std::ptr::null_mut() };
        if unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), wsp) } != 0 {
            return Err(std::io::Error::last_os_error()).context("openpty");
        }
        // SAFETY: openpty returned two fresh descriptors we now own.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
        Ok(Pty { master, slave })
    }

    /// Gives the slave the SELinux file label `label` (`security.selinux` on the open
    /// descriptor: devpts keeps it for the pty's life).
    pub(super) fn label(&self, label: &str) -> Result<()> {
        let v = std::ffi::CString::new(label).context("a label with a NUL byte")?;
        // SAFETY: fsetxattr on our own descriptor, with a NUL-terminated name and value.
        let r = unsafe {
            libc::fsetxattr(
                self.slave.as_raw_fd(),
                c"security.selinux".as_ptr(),
                v.as_ptr().cast(),
                v.as_bytes_with_nul().len(),
                0,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error()).context("setting security.selinux on the pty");
        }
        Ok(())
    }

    /// The slave, for the command (lxcprov's copy goes with [`Pty::into_master`]).
    pub(super) fn slave_fd(&self) -> i32 {
        self.slave.as_raw_fd()
    }

    /// The master alone: the command has the slave; the master reads EIO once nothing
    /// holds the slave any more.
    pub(super) fn into_master(self) -> OwnedFd {
        self.master
    }
}

pub(super) fn write_all(fd: i32, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: write from our buffer.
        let w = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if w <= 0 {
            return;
        }
        b = &b[w as usize..];
    }
}

/// The user's terminal in raw mode until dropped.
pub(super) struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    pub(super) fn enter(fd: i32) -> Option<RawMode> {
        // SAFETY: termios is plain data, filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The SELinux file label of the pty a command in the container gets: the container's
/// image label, the label of its own ptys and console (libvirt mounts the container's
/// devpts with `context=` that label): `lxc_contexts`' `file` type (`container_file_t`)
/// at the init's level. The container's processes may use it; another container's, at
/// other categories, may not (MCS). Left as lxcprov made it (`user_devpts_t` at `s0`, or
/// the host's own pty type), SELinux would take it from the command at `execve`.
pub(super) fn file_label(lxc_contexts: &str, init_label: &str) -> Option<String> {
    let (_, level) = crate::mcs::split_context(init_label)?;
    crate::host::rootfs_label(lxc_contexts, Some(init_label))
        .or_else(|| Some(format!("system_u:object_r:container_file_t:{level}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pty_gets_the_container_file_type_at_the_init_level() {
        let lxc = "process = \"system_u:system_r:container_t:s0\"\nfile = \"system_u:object_r:container_file_t:s0\"\n";
        assert_eq!(
            file_label(lxc, "system_u:system_r:container_t:s0:c12,c345").as_deref(),
            Some("system_u:object_r:container_file_t:s0:c12,c345")
        );
        // No lxc_contexts: the refpolicy type all the same.
        assert_eq!(
            file_label("", "system_u:system_r:container_t:s0:c1,c2\0").as_deref(),
            Some("system_u:object_r:container_file_t:s0:c1,c2")
        );
        assert_eq!(file_label(lxc, "unconfined"), None);
    }
}
