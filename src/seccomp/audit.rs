//! The kernel audit subsystem over `NETLINK_AUDIT`: its status, its backlog, and a listener
//! that registers as the audit daemon for a learn window (what `auditd` would be).

/// The kernel audit subsystem's status, over netlink (what `auditctl -s` shows).
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditStatus {
    pub backlog_limit: u32,
    pub lost: u32,
}

const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_STATUS_BACKLOG_LIMIT: u32 = 0x10;

fn audit_request(kind: u16, payload: &[u8]) -> std::io::Result<Option<AuditStatus>> {
    // SAFETY: a netlink socket we own, plain byte buffers.
    unsafe {
        let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_AUDIT);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let close = |r| {
            libc::close(fd);
            r
        };
        let mut msg = vec![0u8; 16];
        let len = (16 + payload.len()) as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg[4..6].copy_from_slice(&kind.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        msg[6..8].copy_from_slice(&flags.to_ne_bytes());
        msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        let sent = libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        if sent < 0 {
            return close(Err(std::io::Error::last_os_error()));
        }
        let mut status = None;
        for _ in 0..4 {
            let mut buf = vec![0u8; 8192];
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 16 {
                return close(Err(std::io::Error::last_os_error()));
            }
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            if ty == libc::NLMSG_ERROR as u16 {
                let err = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
                if err != 0 {
                    return close(Err(std::io::Error::from_raw_os_error(-err)));
                }
                if kind == AUDIT_SET {
                    return close(Ok(None));
                }
            } else if ty == AUDIT_GET && n >= 16 + 28 {
                let f = |i: usize| u32::from_ne_bytes(buf[16 + i * 4..20 + i * 4].try_into().unwrap());
                status = Some(AuditStatus { backlog_limit: f(5), lost: f(6) });
                return close(Ok(status));
            }
        }
        close(Ok(status))
    }
}

/// The audit status (`backlog_limit`, `lost`).
pub fn audit_status() -> std::io::Result<AuditStatus> {
    audit_request(AUDIT_GET, &[])?.ok_or_else(|| std::io::Error::other("no audit status reply"))
}

/// Sets the audit backlog limit (records queued for printing before the kernel drops them).
pub fn set_audit_backlog(limit: u32) -> std::io::Result<()> {
    let mut p = vec![0u8; 40];
    p[0..4].copy_from_slice(&AUDIT_STATUS_BACKLOG_LIMIT.to_ne_bytes());
    p[20..24].copy_from_slice(&limit.to_ne_bytes());
    audit_request(AUDIT_SET, &p).map(|_| ())
}

const AUDIT_STATUS_PID: u32 = 0x04;

/// lxcprov as the audit daemon for the learn window: the kernel then sends each record over
/// netlink, queueing up to the backlog limit instead of printing (and losing) it.
pub struct AuditListener {
    fd: libc::c_int,
    old_backlog: u32,
}

impl AuditListener {
    /// Registers this process as the audit daemon and raises the backlog limit. Fails when
    /// another audit daemon is registered (use kmsg then).
    pub fn register(backlog: u32) -> std::io::Result<AuditListener> {
        let old = audit_status()?;
        // SAFETY: a netlink socket we own; the status payload is a plain byte buffer.
        unsafe {
            let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_AUDIT);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let size: libc::c_int = 32 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
            let mut p = vec![0u8; 40];
            p[0..4].copy_from_slice(&(AUDIT_STATUS_PID | AUDIT_STATUS_BACKLOG_LIMIT).to_ne_bytes());
            p[12..16].copy_from_slice(&(libc::getpid() as u32).to_ne_bytes());
            p[20..24].copy_from_slice(&backlog.to_ne_bytes());
            let mut msg = vec![0u8; 16];
            msg[0..4].copy_from_slice(&(56u32).to_ne_bytes());
            msg[4..6].copy_from_slice(&AUDIT_SET.to_ne_bytes());
            msg[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
            msg.extend_from_slice(&p);
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            if libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ) < 0
            {
                let e = std::io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            let l = AuditListener { fd, old_backlog: old.backlog_limit };
            // The ACK (or the error: another daemon registered).
            match l.next(std::time::Duration::from_secs(2))? {
                Some((t, body)) if t == libc::NLMSG_ERROR as u16 => {
                    let err = i32::from_ne_bytes(body[..4].try_into().unwrap());
                    if err != 0 {
                        return Err(std::io::Error::from_raw_os_error(-err));
                    }
                }
                _ => return Err(std::io::Error::other("no reply to AUDIT_SET")),
            }
            Ok(l)
        }
    }

    /// The next netlink message (type, payload), waiting at most `wait`.
    pub fn next(&self, wait: std::time::Duration) -> std::io::Result<Option<(u16, Vec<u8>)>> {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: polling and reading our own socket into a local buffer.
        unsafe {
            if libc::poll(&mut pfd, 1, wait.as_millis() as libc::c_int) <= 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; 16384];
            let n = libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 16 {
                return Err(std::io::Error::last_os_error());
            }
            // nlmsg_len is not always the text's length here: keep all that was received.
            let len = n as usize;
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            Ok(Some((ty, buf[16..len.max(16)].to_vec())))
        }
    }
}

impl Drop for AuditListener {
    fn drop(&mut self) {
        // Unregister (pid 0) and put the backlog limit back.
        let mut p = vec![0u8; 40];
        p[0..4].copy_from_slice(&(AUDIT_STATUS_PID | AUDIT_STATUS_BACKLOG_LIMIT).to_ne_bytes());
        p[20..24].copy_from_slice(&self.old_backlog.to_ne_bytes());
        let _ = audit_request(AUDIT_SET, &p);
        // SAFETY: our socket, closed once.
        unsafe { libc::close(self.fd) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[ignore = "needs root: reads the kernel's audit status"]
    fn audit_status_reads() {
        let s = super::audit_status().unwrap();
        eprintln!("{s:?}");
        assert!(s.backlog_limit > 0);
    }
}
