//! The two forked stages that put a command into a running container, written against a
//! container whose root is hostile (runc CVE-2016-9962, CVE-2019-5736, CVE-2024-21626;
//! LXC's attach fixes).
//!
//! - **Stage 1** is forked in the host's PID namespace, so no container process can see it.
//!   It makes itself non-dumpable, leaves the caller's session, keeps only the descriptors
//!   it hands over (stdio, the report pipe, the namespace descriptors), sets the label for
//!   exec, joins the cgroups, then every namespace (after `setns(CLONE_NEWNS)` its root and
//!   cwd are the container's), closes the namespace descriptors, becomes the container's
//!   root and cuts its capabilities to the init's bounding set (bounding, permitted,
//!   effective; inheritable and ambient empty), and takes `no_new_privs` if the init has it.
//!   Only then does it fork stage 2, waits for it and exits as it did.
//! - **Stage 2** is born in the container's PID namespace: the first moment a container
//!   process can see it, it already has nothing of the host (no host fd, cwd or root, the
//!   container's credentials and capabilities) and is still non-dumpable, so a
//!   container root without `CAP_SYS_PTRACE` over the host cannot attach to it or open its
//!   `/proc/PID/{exe,cwd,root,fd}`. It starts a session of its own (the pty, if any, as its
//!   controlling terminal), installs the container's seccomp programs and execs.
//!
//! Everything here runs between `fork` and `execve` of a multi-threaded process: only
//! async-signal-safe calls on memory prepared before the fork, and raw syscalls for
//! credentials (glibc's `setresuid` would try to signal threads the child does not have).

use std::ffi::CString;
use std::os::raw::c_char;

/// Report codes written to the report pipe: `[kind, a, b]` as three native-endian i32.
pub(super) const MSG_SETUP: i32 = 1; // a = step, b = errno
pub(super) const MSG_EXEC: i32 = 2; // a = 0, b = errno of the last execve
/// Stage 1's exit status when it failed before the command ran (a MSG_SETUP says why).
pub(super) const SETUP_FAILED: i32 = 125;

/// The steps, for the error message (`step` in MSG_SETUP).
pub(super) const STEPS: &[&str] = &[
    "prctl(PR_SET_PDEATHSIG)",
    "prctl(PR_SET_DUMPABLE)",
    "setsid",
    "arranging the command's descriptors",
    "setting the container's label for exec",
    "joining the container's cgroups",
    "joining the container's pid namespace",
    "joining the container's namespaces",
    "chdir to the container's root",
    "becoming the container's root",
    "dropping capabilities from the bounding set",
    "limiting capabilities to the container's",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "fork",
    "making the pty the controlling terminal",
    "installing the container's seccomp filter",
    "restoring signal dispositions",
];
const S_PDEATHSIG: i32 = 0;
const S_DUMPABLE: i32 = 1;
const S_SETSID: i32 = 2;
const S_FDS: i32 = 3;
const S_LABEL: i32 = 4;
const S_CGROUP: i32 = 5;
const S_PIDNS: i32 = 6;
const S_NS: i32 = 7;
const S_CHDIR: i32 = 8;
const S_CREDS: i32 = 9;
const S_BOUNDING: i32 = 10;
const S_CAPS: i32 = 11;
const S_NNP: i32 = 12;
const S_FORK: i32 = 13;
const S_CTTY: i32 = 14;
const S_SECCOMP: i32 = 15;
const S_SIGNALS: i32 = 16;

/// Where fds are moved before the caller's other descriptors are closed.
const HIGH_FD: i32 = 100;

/// One way to run the command: the file to execve and its argv (NULL-terminated).
pub(super) struct Candidate {
    pub path: CString,
    pub argv: Vec<*const c_char>,
}

/// Everything the stages need, prepared before the fork (no allocation after it).
pub(super) struct Prepared {
    /// lxcprov's PID: stage 1 dies with it.
    pub parent: libc::pid_t,
    /// The command's stdin, stdout and stderr.
    pub stdio: [i32; 3],
    /// Which of them is the pty slave to make the controlling terminal (0-2), if any.
    pub ctty: Option<i32>,
    /// The report pipe's write end.
    pub report: i32,
    /// (fd, CLONE_NEW*) in joining order; user first.
    pub ns: Vec<(i32, i32)>,
    pub pid_ns: Option<i32>,
    pub userns: bool,
    pub cgroup_procs: Vec<CString>,
    pub label: Option<(CString, Vec<u8>)>,
    pub drop_caps: Vec<u32>,
    /// The init's bounding set: what the command may keep at most.
    pub bounding: u64,
    pub no_new_privs: bool,
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    pub candidates: Vec<Candidate>,
    pub envp: Vec<*const c_char>,
    /// Keeps the strings the pointers above point into.
    pub _strings: Vec<CString>,
}

unsafe fn errno() -> i32 {
    *libc::__errno_location()
}

unsafe fn report(fd: i32, kind: i32, a: i32, b: i32) {
    let mut buf = [0u8; 12];
    buf[..4].copy_from_slice(&kind.to_ne_bytes());
    buf[4..8].copy_from_slice(&a.to_ne_bytes());
    buf[8..].copy_from_slice(&b.to_ne_bytes());
    libc::write(fd, buf.as_ptr().cast(), buf.len());
}

unsafe fn fail(p: &Prepared, step: i32) -> ! {
    let e = errno();
    report(p.report, MSG_SETUP, step, e);
    libc::_exit(SETUP_FAILED)
}

/// Closes every descriptor from 3 up except those in `keep` (sorted ascending).
unsafe fn close_all_but(keep: &[i32]) -> bool {
    let mut lo: u32 = 3;
    for &k in keep {
        let k = k as u32;
        if k > lo && libc::syscall(libc::SYS_close_range, lo, k - 1, 0) != 0 {
            return false;
        }
        if k >= lo {
            lo = k + 1;
        }
    }
    libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) == 0
}

/// Stage 1 (see the module documentation). Never returns.
///
/// # Safety
/// Call only in a freshly forked child; `p` was prepared before the fork.
pub(super) unsafe fn stage1(p: &mut Prepared) -> ! {
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
        fail(p, S_PDEATHSIG);
    }
    if libc::getppid() != p.parent {
        libc::_exit(SETUP_FAILED);
    }
    // Non-dumpable before anything else: the forks inherit it, and nobody without
    // CAP_SYS_PTRACE in the host's user namespace may attach or read /proc/PID/*.
    if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
        fail(p, S_DUMPABLE);
    }
    // Out of the caller's session: its terminal is no longer our controlling terminal.
    if libc::setsid() < 0 {
        fail(p, S_SETSID);
    }
    // Descriptors: move what is kept above HIGH_FD, stdio onto 0-2, close everything else.
    let mut keep = [-1i32; 16];
    let mut n = 0;
    let high = |fd: i32, p: &Prepared| -> i32 {
        let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD);
        if h < 0 {
            fail(p, S_FDS);
        }
        h
    };
    let stdio = [high(p.stdio[0], p), high(p.stdio[1], p), high(p.stdio[2], p)];
    p.report = high(p.report, p);
    keep[n] = p.report;
    n += 1;
    for i in 0..p.ns.len() {
        p.ns[i].0 = high(p.ns[i].0, p);
        keep[n] = p.ns[i].0;
        n += 1;
    }
    if let Some(fd) = p.pid_ns {
        let h = high(fd, p);
        p.pid_ns = Some(h);
        keep[n] = h;
        n += 1;
    }
    for (i, &fd) in stdio.iter().enumerate() {
        if libc::dup2(fd, i as i32) < 0 {
            fail(p, S_FDS);
        }
    }
    keep[..n].sort_unstable();
    if !close_all_but(&keep[..n]) {
        fail(p, S_FDS);
    }
    // The label applies at stage 2's execve (it is carried through fork).
    if let Some((path, value)) = &p.label {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 || libc::write(fd, value.as_ptr().cast(), value.len()) != value.len() as isize {
            fail(p, S_LABEL);
        }
        libc::close(fd);
    }
    for path in &p.cgroup_procs {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW);
        // "0" is the writing process itself (cgroup v1 and v2); stage 2 inherits it.
        if fd < 0 || libc::write(fd, b"0\n".as_ptr().cast(), 2) != 2 {
            fail(p, S_CGROUP);
        }
        libc::close(fd);
    }
    if let Some(fd) = p.pid_ns {
        if libc::setns(fd, libc::CLONE_NEWPID) != 0 {
            fail(p, S_PIDNS);
        }
        libc::close(fd);
    }
    for &(fd, flag) in &p.ns {
        if libc::setns(fd, flag) != 0 {
            fail(p, S_NS);
        }
        libc::close(fd);
    }
    // setns(CLONE_NEWNS) made the namespace's root our root and cwd; say so explicitly.
    if libc::chdir(c"/".as_ptr()) != 0 {
        fail(p, S_CHDIR);
    }
    // Supplementary groups go in every case; in a user namespace, its root.
    if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0 {
        fail(p, S_CREDS);
    }
    if p.userns
        && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0 || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
    {
        fail(p, S_CREDS);
    }
    for &c in &p.drop_caps {
        if libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0 {
            fail(p, S_BOUNDING);
        }
    }
    if !limit_caps(p.bounding) {
        fail(p, S_CAPS);
    }
    if p.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        fail(p, S_NNP);
    }
    // Ctrl-C, SIGTERM and SIGHUP that lxcprov passes on go on to the command (the
    // handler is inherited by stage 2 only until its execve, with CHILD still 0 there).
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = pass_on as extern "C" fn(i32) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
    let child = libc::fork();
    if child < 0 {
        fail(p, S_FORK);
    }
    if child == 0 {
        stage2(p);
    }
    CHILD.store(child, std::sync::atomic::Ordering::SeqCst);
    libc::close(p.report);
    let mut status = 0;
    while libc::waitpid(child, &mut status, 0) < 0 {
        if errno() != libc::EINTR {
            libc::_exit(SETUP_FAILED);
        }
    }
    if libc::WIFSIGNALED(status) {
        // Die the same way, so lxcprov sees the signal (non-dumpable: no core).
        let sig = libc::WTERMSIG(status);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status))
}

/// Stage 2's PID in stage 1 (0 elsewhere).
static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn pass_on(sig: i32) {
    let child = CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}

/// Permitted and effective capabilities cut to `bounding`; inheritable and ambient empty.
unsafe fn limit_caps(bounding: u64) -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const V3: u32 = 0x2008_0522;
    let mut h = Header { version: V3, pid: 0 };
    let mut d = [Data::default(); 2];
    if libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) != 0 {
        return false;
    }
    let halves = [bounding as u32, (bounding >> 32) as u32];
    for i in 0..2 {
        d[i].permitted &= halves[i];
        d[i].effective &= halves[i];
        d[i].inheritable = 0;
    }
    if libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) != 0 {
        return false;
    }
    libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) == 0
}

/// Stage 2: in the container's PID namespace. Never returns.
unsafe fn stage2(p: &Prepared) -> ! {
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
        fail(p, S_PDEATHSIG);
    }
    // Stage 1 is outside this PID namespace: while it lives, our parent's PID reads as 0.
    if libc::getppid() != 0 {
        libc::_exit(SETUP_FAILED);
    }
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across execve; the
    // parent's signal mask is inherited too.
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR
        || libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0
    {
        fail(p, S_SIGNALS);
    }
    if libc::setsid() < 0 {
        fail(p, S_SETSID);
    }
    if let Some(fd) = p.ctty {
        if libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
            fail(p, S_CTTY);
        }
    }
    // Last: the container's seccomp programs, as its shim installs them for the init
    // (no_new_privs only if the kernel insists, when the container lacks CAP_SYS_ADMIN).
    for prog in &p.seccomp {
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
        let install = || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const _);
        if install() != 0
            && (errno() != libc::EACCES || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || install() != 0)
        {
            fail(p, S_SECCOMP);
        }
    }
    // As execvp does: the first candidate that exists; "permission denied" if one existed
    // but could not be run and none could.
    let mut last = libc::ENOENT;
    let mut denied = false;
    for c in &p.candidates {
        libc::execve(c.path.as_ptr(), c.argv.as_ptr(), p.envp.as_ptr());
        last = errno();
        match last {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            _ => break,
        }
    }
    if denied && (last == libc::ENOENT || last == libc::ENOTDIR) {
        last = libc::EACCES;
    }
    report(p.report, MSG_EXEC, 0, last);
    libc::_exit(if last == libc::ENOENT || last == libc::ENOTDIR { 127 } else { 126 })
}
