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
        let have_ws = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0;
        let wsp = if have_ws { &mut ws as *mut libc::winsize } else { std::ptr::null_mut() };
        if unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), wsp) } != 0 {
            return Err(std::io::Error::last_os_error()).context("openpty");
        }
        // SAFETY: openpty returned two fresh descriptors we now own.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Pty { master, slave })
    }

    pub(super) fn slave(&self) -> Result<std::process::Stdio> {
        Ok(std::process::Stdio::from(self.slave.try_clone()?))
    }

    /// Copies the user's terminal to the pty and back (the terminal in raw mode meanwhile)
    /// until the command exits; returns its status.
    pub(super) fn relay(self, child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
        let Pty { master, slave } = self;
        drop(slave); // the child has it; the master sees EIO once the child is gone
        let _raw = RawMode::enter(0);
        let mfd = master.as_raw_fd();
        let mut buf = [0u8; 8192];
        let mut stdin_open = true;
        loop {
            let mut fds = [
                libc::pollfd { fd: mfd, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: if stdin_open { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: poll on two pollfd structs we own.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 200) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            if fds[0].revents != 0 {
                // SAFETY: read into our buffer.
                let r = unsafe { libc::read(mfd, buf.as_mut_ptr().cast(), buf.len()) };
                if r <= 0 {
                    break; // EIO: the command and everything holding the pty are gone
                }
                write_all(1, &buf[..r as usize]);
            }
            if fds[1].revents != 0 {
                // SAFETY: read into our buffer.
                let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if r <= 0 {
                    stdin_open = false;
                } else {
                    write_all(mfd, &buf[..r as usize]);
                }
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Drain what is left, then stop.
                loop {
                    let mut pfd = libc::pollfd { fd: mfd, events: libc::POLLIN, revents: 0 };
                    // SAFETY: as above.
                    if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
                        break;
                    }
                    let r = unsafe { libc::read(mfd, buf.as_mut_ptr().cast(), buf.len()) };
                    if r <= 0 {
                        break;
                    }
                    write_all(1, &buf[..r as usize]);
                }
                break;
            }
        }
        child.wait().context("waiting for the command")
    }
}

fn write_all(fd: i32, mut b: &[u8]) {
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
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: i32) -> Option<RawMode> {
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
