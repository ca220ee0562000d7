//! Running a command inside a running container (`lxcprov exec`, `lxcprov shell`).
//!
//! The command gets what the container's init has, read from the init's `/proc/PID` on the
//! host, so it is no more privileged than the container itself:
//! - its namespaces (user, cgroup, ipc, uts, net, pid, mnt), joined with `setns(2)`;
//! - its mapped root: in a user namespace the command runs as uid/gid 0 *inside*, which is
//!   the mapped id (say 100000) on the host, with no supplementary groups;
//! - its cgroups: the child writes itself into each of the init's `cgroup.procs`, so the
//!   container's memory, CPU and I/O limits apply to it;
//! - its capability bounding set (each capability missing from the init's `CapBnd` is
//!   dropped) and its `no_new_privs`;
//! - its MAC label: the init's SELinux context (or AppArmor profile) is written to
//!   `/proc/self/attr/exec`, so it applies at `execve`. A host whose LSM is on and whose
//!   init label cannot be read refuses, rather than run the command unconfined.
//!
//! A seccomp filter cannot be copied from another process, but the init's filter file can:
//! the command gets the same programs (`/.lxcprov/filter.bpf`, read through the init's
//! root), installed last before its execve; a filter file that cannot be read is refused.
//!
//! Why not `virsh lxc-enter-namespace`: measured here (libvirt 9.0), it joins the
//! namespaces and cgroups and applies the label, but the command keeps host uid 0 (shown as
//! `nobody` inside a user namespace), keeps the *full* capability bounding set whatever the
//! profile drops (`sys_module` included, for a container without a user namespace), and
//! turns every non-zero exit status into its own status 1. `nsenter -a` maps root but also
//! keeps the bounding set and cannot join cgroups or an AppArmor profile.
//!
//! When stdin is a terminal, the command gets a new pseudo-terminal that lxcprov relays,
//! never the user's own terminal: this kernel still allows `TIOCSTI`
//! (`dev.tty.legacy_tiocsti = 1`), with which a process holding the host terminal as its
//! controlling terminal could type commands into the host shell after lxcprov exits.
//!
//! Needs root (setns, cgroup.procs). Touches nothing on disk.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

mod pty;
use pty::Pty;

/// The namespaces joined in the child, in this order (pid is joined by the parent before
/// it forks, since `setns(CLONE_NEWPID)` only applies to children; mnt comes last so the
/// host's `/proc` and `/sys/fs/cgroup` are used until then).
const CHILD_NS: [(&str, i32); 6] = [
    ("user", libc::CLONE_NEWUSER),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("mnt", libc::CLONE_NEWNS),
];

/// The container's init as the host sees it: everything the command must get.
pub struct Target {
    pub name: String,
    pub pid: u32,
    /// Namespaces that differ from lxcprov's own: (name, flag, fd).
    ns: Vec<(&'static str, i32, OwnedFd)>,
    pid_ns: Option<OwnedFd>,
    /// A separate user namespace: become its root after joining.
    pub userns: bool,
    /// `cgroup.procs` files of the init's cgroups, on the host.
    pub cgroup_procs: Vec<PathBuf>,
    /// Capabilities missing from the init's bounding set.
    pub drop_caps: Vec<u32>,
    pub no_new_privs: bool,
    /// Where and what to write so the command gets the init's label at execve.
    pub label: Option<(PathBuf, String)>,
    /// The guest's root shell from its /etc/passwd (for `shell`).
    pub login_shell: Option<String>,
    /// The container's seccomp programs (its shim's `/.lxcprov/filter.bpf`, as the init
    /// runs them), installed last before the command's execve.
    seccomp: Vec<Vec<libc::sock_filter>>,
}

/// What to run, and how.
pub struct Request {
    pub argv: Vec<String>,
    /// Extra environment (the base: PATH, HOME=/root, TERM when set).
    pub env: Vec<(String, String)>,
    /// Capture stdout and stderr instead of inheriting them (`--json`).
    pub capture: bool,
}

/// How the command ended.
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// The exit status; `128 + N` when killed by signal N (as shells report it).
    pub status: i32,
    pub signal: Option<i32>,
    /// Why the command did not start (status 126 or 127), for the user.
    pub error: Option<String>,
    #[serde(skip)]
    pub stdout: Vec<u8>,
    #[serde(skip)]
    pub stderr: Vec<u8>,
}

/// The guest's PATH for the command (the host's is not the guest's).
pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads everything about the init `pid` of container `name` from `proc` (the host's
/// `/proc`), with `mountinfo` the host's `/proc/self/mountinfo`.
pub fn target(proc: &Path, name: &str, pid: u32) -> Result<Target> {
    let dir = proc.join(pid.to_string());
    let me = proc.join("self");
    let mut ns = vec![];
    for (n, flag) in CHILD_NS {
        if let Some(fd) = open_ns_if_other(&dir, &me, n)? {
            ns.push((n, flag, fd));
        }
    }
    let pid_ns = open_ns_if_other(&dir, &me, "pid")?;
    let userns = ns.iter().any(|(n, _, _)| *n == "user");
    // The PID could have been reused between reading libvirt's status file and here: the
    // process must still be in the container's cgroup.
    let cgroup =
        std::fs::read_to_string(dir.join("cgroup")).with_context(|| format!("reading {}/cgroup", dir.display()))?;
    if crate::facts::container_of(&cgroup).as_deref() != Some(name) {
        bail!("PID {pid} is no longer {name}'s init (the container stopped or restarted); try again");
    }
    let mountinfo = std::fs::read_to_string(me.join("mountinfo")).context("reading /proc/self/mountinfo")?;
    let cgroup_procs = cgroup_procs(&cgroup, &mountinfo);
    let status =
        std::fs::read_to_string(dir.join("status")).with_context(|| format!("reading {}/status", dir.display()))?;
    let last_cap: u32 = std::fs::read_to_string(proc.join("sys/kernel/cap_last_cap"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let bnd = status_field(&status, "CapBnd")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .context("no CapBnd in the init's status")?;
    let drop_caps = (0..=last_cap).filter(|c| bnd & (1u64 << c) == 0).collect();
    let no_new_privs = status_field(&status, "NoNewPrivs").as_deref() == Some("1");
    // A filter cannot be copied from another process, but the init's own filter file is
    // there: the command gets the same programs, installed last before its execve.
    let seccomp = if status_field(&status, "Seccomp").is_some_and(|s| s != "0") {
        let file = dir.join("root/.lxcprov/filter.bpf");
        let bytes = crate::fsutil::read_regular_bounded(&file, 1 << 20, "seccomp filter").with_context(|| {
            format!("{name}'s init runs under a seccomp filter, but its filter file cannot be read: refusing to run the command without it")
        })?;
        crate::seccomp::decode(&bytes)?
            .into_iter()
            .map(|p| {
                p.chunks_exact(8)
                    .map(|c| libc::sock_filter {
                        code: u16::from_le_bytes([c[0], c[1]]),
                        jt: c[2],
                        jf: c[3],
                        k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                    })
                    .collect()
            })
            .collect()
    } else {
        vec![]
    };
    let label = label_for(&dir, crate::host::selinux_enabled(), crate::host::apparmor_enabled())?;
    let passwd = crate::fsutil::read_in(&dir.join("root"), "/etc/passwd").unwrap_or(None);
    let login_shell = passwd.as_deref().and_then(root_shell);
    Ok(Target {
        name: name.into(),
        pid,
        ns,
        pid_ns,
        userns,
        cgroup_procs,
        drop_caps,
        no_new_privs,
        label,
        login_shell,
        seccomp,
    })
}

/// `proc/PID/ns/NAME` opened, unless it is lxcprov's own namespace (joining one's own user
/// namespace is an error, and joining any other own namespace is pointless).
fn open_ns_if_other(dir: &Path, me: &Path, n: &str) -> Result<Option<OwnedFd>> {
    let theirs = dir.join("ns").join(n);
    let ours = std::fs::metadata(me.join("ns").join(n)).ok();
    let m = match std::fs::metadata(&theirs) {
        Ok(m) => m,
        // A kernel without this namespace type (cgroup namespaces before 4.6).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", theirs.display())),
    };
    if ours.is_some_and(|o| o.ino() == m.ino() && o.dev() == m.dev()) {
        return Ok(None);
    }
    let f = std::fs::File::open(&theirs).with_context(|| format!("opening {}", theirs.display()))?;
    Ok(Some(OwnedFd::from(f)))
}

/// A `Key:\tvalue` field of `/proc/PID/status`.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

/// The host `cgroup.procs` files for each line of a `/proc/PID/cgroup`, found through the
/// host's mountinfo (v1: the `cgroup` mount whose options name the line's controllers; v2:
/// the `cgroup2` mount). Hierarchies the host has not mounted are left out.
pub fn cgroup_procs(cgroup: &str, mountinfo: &str) -> Vec<PathBuf> {
    let mounts: Vec<(String, String, String, Vec<String>)> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let lf: Vec<&str> = left.split(' ').collect();
            let rf: Vec<&str> = right.split(' ').collect();
            let (root, mp) = (lf.get(3)?, lf.get(4)?);
            let (fstype, opts) = (rf.first()?, rf.get(2).unwrap_or(&""));
            Some((fstype.to_string(), unescape(root), unescape(mp), opts.split(',').map(String::from).collect()))
        })
        .collect();
    let mut out = vec![];
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let want: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let mount = mounts.iter().find(|(fstype, _, _, opts)| {
            if want.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && want.iter().all(|w| opts.iter().any(|o| o == w))
            }
        });
        let Some((_, root, mp, _)) = mount else { continue };
        let rel = if root == "/" {
            path
        } else if let Some(rest) = path.strip_prefix(root.as_str()) {
            rest
        } else {
            continue;
        };
        let mut p = PathBuf::from(mp);
        p.push(rel.trim_start_matches('/'));
        p.push("cgroup.procs");
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// What to write to `/proc/self/attr/...` so the command execs into the init's label.
fn label_for(dir: &Path, selinux: bool, apparmor: bool) -> Result<Option<(PathBuf, String)>> {
    if !selinux && !apparmor {
        return Ok(None);
    }
    let read =
        |p: PathBuf| std::fs::read(&p).map(|b| String::from_utf8_lossy(&b).trim_end_matches(['\0', '\n']).to_string());
    if selinux {
        let l = read(dir.join("attr/current")).context("SELinux is on but the init's label cannot be read")?;
        return Ok(Some((PathBuf::from("/proc/self/attr/exec"), l)));
    }
    let l = read(dir.join("attr/apparmor/current"))
        .or_else(|_| read(dir.join("attr/current")))
        .context("AppArmor is on but the init's profile cannot be read")?;
    Ok(apparmor_exec(&l).map(|v| {
        let p = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        (PathBuf::from(p), v)
    }))
}

/// The AppArmor change_onexec request for an init's `current` (`libvirt-UUID (enforce)`);
/// none for an unconfined init.
pub fn apparmor_exec(current: &str) -> Option<String> {
    let profile = current.rsplit_once(" (").map(|(p, _)| p).unwrap_or(current).trim();
    (!profile.is_empty() && profile != "unconfined").then(|| format!("exec {profile}"))
}

/// root's shell in a passwd file.
pub fn root_shell(passwd: &str) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == "root" && f[6].starts_with('/')).then(|| f[6].to_string())
    })
}

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{what} contains a NUL byte"))
}

/// Everything the child needs, prepared before the fork (no allocation after it).
struct Prepared {
    ns: Vec<(i32, i32)>,
    userns: bool,
    cgroup_procs: Vec<CString>,
    drop_caps: Vec<u32>,
    no_new_privs: bool,
    label: Option<(CString, Vec<u8>)>,
    /// A pty slave to make the controlling terminal.
    ctty: bool,
    /// Seccomp programs to install last (sock_fprog over each).
    seccomp: Vec<Vec<libc::sock_filter>>,
}

fn last_error(what: &'static str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The child's side, between fork and exec: async-signal-safe calls only.
fn enter_child(p: &Prepared) -> std::io::Result<()> {
    // SAFETY: plain syscalls on prepared, NUL-terminated buffers and open descriptors.
    unsafe {
        if p.ctty {
            // A session of its own, with the new pty as its controlling terminal.
            if libc::setsid() < 0 {
                return Err(last_error("setsid"));
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(last_error("ioctl(TIOCSCTTY)"));
            }
        }
        if let Some((path, value)) = &p.label {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, value.as_ptr().cast(), value.len()) != value.len() as isize {
                return Err(last_error("setting the container's label for exec"));
            }
            libc::close(fd);
        }
        for path in &p.cgroup_procs {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            // "0" is the writing process itself (cgroup v1 and v2).
            if fd < 0 || libc::write(fd, b"0\n".as_ptr().cast(), 2) != 2 {
                return Err(last_error("joining the container's cgroups"));
            }
            libc::close(fd);
        }
        for &(fd, flag) in &p.ns {
            if libc::setns(fd, flag) != 0 {
                return Err(last_error("setns into the container's namespaces"));
            }
        }
        if p.userns {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(last_error("setgroups"));
            }
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(last_error("becoming the container's root"));
            }
        }
        for &c in &p.drop_caps {
            if libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(last_error("dropping capabilities from the bounding set"));
            }
        }
        if p.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(last_error("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
        // After the uid change, which clears it: a killed lxcprov takes the command with it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(last_error("prctl(PR_SET_PDEATHSIG)"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(last_error("chdir /"));
        }
        // Last: the container's seccomp programs, as its shim installs them for the init
        // (no_new_privs only if the kernel insists, when the container lacks CAP_SYS_ADMIN).
        for prog in &p.seccomp {
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
            let install = || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const _);
            if install() != 0
                && (*libc::__errno_location() != libc::EACCES
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || install() != 0)
            {
                return Err(last_error("installing the container's seccomp filter"));
            }
        }
    }
    Ok(())
}

/// Runs `req` in the container. Returns how the command ended; an error only when it could
/// not be started (a command not found is `status` 127, as in a shell).
pub fn run(t: &Target, req: &Request) -> Result<Outcome> {
    use std::io::IsTerminal;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let Some(program) = req.argv.first() else { bail!("no command to run") };
    let interactive = !req.capture && std::io::stdin().is_terminal();
    let pty = if interactive { Some(Pty::open()?) } else { None };
    let prepared = Prepared {
        ns: t.ns.iter().map(|(_, flag, fd)| (fd.as_raw_fd(), *flag)).collect(),
        userns: t.userns,
        cgroup_procs: t
            .cgroup_procs
            .iter()
            .map(|p| cstr(&p.to_string_lossy(), "cgroup path"))
            .collect::<Result<_>>()?,
        drop_caps: t.drop_caps.clone(),
        no_new_privs: t.no_new_privs,
        label: t
            .label
            .as_ref()
            .map(|(p, v)| Ok::<_, anyhow::Error>((cstr(&p.to_string_lossy(), "label path")?, v.as_bytes().to_vec())))
            .transpose()?,
        ctty: pty.is_some(),
        seccomp: t.seccomp.clone(),
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(&req.argv[1..]).env_clear().env("PATH", GUEST_PATH).env("HOME", "/root");
    if let Ok(term) = std::env::var("TERM") {
        cmd.env("TERM", term);
    }
    cmd.envs(req.env.iter().map(|(k, v)| (k, v)));
    // Under SELinux the command, in the container's type and categories, may not use the
    // caller's pipes and files: its stdio are socket pairs made with its own label, relayed.
    let selinux_label = t.label.as_ref().map(|(_, v)| v.as_str()).filter(|v| !v.starts_with("exec "));
    let mut relay = None;
    if let Some(pty) = &pty {
        cmd.stdin(pty.slave()?).stdout(pty.slave()?).stderr(pty.slave()?);
    } else if let Some(label) = selinux_label {
        let r = Relay::new(label)?;
        cmd.stdin(r.child[0].try_clone()?).stdout(r.child[1].try_clone()?).stderr(r.child[2].try_clone()?);
        // Its threads start now: once this thread joins the pid namespace below, it can
        // start no thread (clone(CLONE_THREAD) fails with EINVAL).
        relay = Some(r.start(req.capture)?);
    } else if req.capture {
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    }
    // SAFETY: enter_child makes only async-signal-safe calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || enter_child(&prepared));
    }
    // The pid namespace applies to children of the thread that joins it: join it here, so the
    // fork below is born in the container's pid namespace.
    if let Some(fd) = &t.pid_ns {
        // SAFETY: setns on an open namespace descriptor.
        if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(std::io::Error::last_os_error()).context("joining the container's pid namespace");
        }
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let error = format!("{program}: not found in {} (PATH {GUEST_PATH})", t.name);
            return Ok(Outcome { status: 127, error: Some(error), ..Default::default() });
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let error = format!("{program}: permission denied in {}", t.name);
            return Ok(Outcome { status: 126, error: Some(error), ..Default::default() });
        }
        Err(e) => return Err(e).with_context(|| format!("running {program} in {}", t.name)),
    };
    // The command keeps its copies of the stdio descriptors: ours must go, or a relayed
    // output never ends.
    drop(cmd);
    let (status, stdout, stderr) = match pty {
        Some(pty) => {
            let mut child = child;
            let status = pty.relay(&mut child)?;
            (status, vec![], vec![])
        }
        None if relay.is_some() => {
            let mut child = child;
            relay.take().unwrap().finish(&mut child)?
        }
        None => {
            let o = child.wait_with_output().context("waiting for the command")?;
            (o.status, o.stdout, o.stderr)
        }
    };
    let signal = status.signal();
    Ok(Outcome {
        status: status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0)),
        signal,
        error: None,
        stdout,
        stderr,
    })
}

/// The command's stdin, stdout and stderr as socket pairs created with the container's
/// SELinux label (`/proc/thread-self/attr/sockcreate`), so the command may use them; lxcprov
/// copies between them and its own stdio (or captures the output).
struct Relay {
    /// The command's ends: stdin, stdout, stderr.
    child: [OwnedFd; 3],
    /// lxcprov's ends.
    ours: [OwnedFd; 3],
}

impl Relay {
    fn new(label: &str) -> Result<Relay> {
        let attr = "/proc/thread-self/attr/sockcreate";
        // An existing proc attribute: opened for writing, never O_CREAT (SELinux audits a
        // "create" on it).
        let set = |v: &[u8]| {
            use std::io::Write;
            std::fs::OpenOptions::new().write(true).open(attr).and_then(|mut f| f.write_all(v))
        };
        set(label.as_bytes()).with_context(|| format!("labelling the command's stdio sockets {label}"))?;
        let r = Relay::sockets();
        // Back to the default for every later socket of this thread, whatever happened
        // (a lone newline clears it; an empty write_all would write nothing).
        let reset = set(b"\n");
        let r = r?;
        reset.context("resetting the socket label")?;
        Ok(r)
    }

    fn sockets() -> Result<Relay> {
        let pairs: std::io::Result<Vec<(OwnedFd, OwnedFd)>> = (0..3).map(|_| socketpair()).collect();
        let mut it = pairs.context("creating the command's stdio sockets")?.into_iter();
        let (a, b) = (it.next().unwrap(), it.next().unwrap());
        let c = it.next().unwrap();
        Ok(Relay { child: [a.0, b.0, c.0], ours: [a.1, b.1, c.1] })
    }

    /// Starts copying: the caller's stdin in, the command's output out (or kept).
    fn start(self, capture: bool) -> Result<Running> {
        use std::io::{Read, Write};
        let Relay { child: theirs, ours: [stdin, stdout, stderr] } = self;
        let spawn = |name: &str| std::thread::Builder::new().name(name.into());
        // The caller's stdin goes in until it ends, as an inherited stdin would (never
        // joined: an open terminal or a stdin nobody closes must not keep lxcprov waiting
        // once the command is done).
        spawn("exec-stdin")
            .spawn(move || {
                let mut sock = std::fs::File::from(stdin);
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sock);
                // SAFETY: shutdown on an open socket.
                unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_WR) };
            })
            .context("starting the stdin relay")?;
        let pump = |fd: OwnedFd, to_stderr: bool| {
            spawn(if to_stderr { "exec-stderr" } else { "exec-stdout" }).spawn(move || -> Vec<u8> {
                let mut src = std::fs::File::from(fd);
                let mut kept = vec![];
                let mut buf = [0u8; 16 << 10];
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if capture {
                        kept.extend_from_slice(&buf[..n]);
                    } else if to_stderr {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    } else if std::io::stdout().write_all(&buf[..n]).and_then(|_| std::io::stdout().flush()).is_err() {
                        break;
                    }
                }
                kept
            })
        };
        let out = pump(stdout, false).context("starting the stdout relay")?;
        let err = pump(stderr, true).context("starting the stderr relay")?;
        Ok(Running { theirs, out, err })
    }
}

/// A started [`Relay`].
struct Running {
    theirs: [OwnedFd; 3],
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

impl Running {
    /// Waits for the command, then for its output to drain.
    fn finish(self, child: &mut std::process::Child) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
        // Ours only: with the command's ends open here, the outputs would never end.
        drop(self.theirs);
        let status = child.wait().context("waiting for the command")?;
        let out = self.out.join().unwrap_or_default();
        let err = self.err.join().unwrap_or_default();
        Ok((status, out, err))
    }
}

fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two descriptors we then own.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
";

    #[test]
    fn cgroup_procs_follow_the_hosts_mounts() {
        let cg = "9:name=systemd:/\n4:memory:/machine/lxc-1-c1.libvirt-lxc\n2:cpuacct:/machine/lxc-1-c1.libvirt-lxc\n\
                  1:cpu:/machine/lxc-1-c1.libvirt-lxc\n8:pids:/\n10:net_cls,net_prio:/x\n0::/\n";
        let got: Vec<String> = cgroup_procs(cg, MOUNTINFO).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            got,
            [
                "/sys/fs/cgroup/systemd/cgroup.procs",
                "/sys/fs/cgroup/memory/machine/lxc-1-c1.libvirt-lxc/cgroup.procs",
                "/sys/fs/cgroup/cpuacct/machine/lxc-1-c1.libvirt-lxc/cgroup.procs",
                "/sys/fs/cgroup/cpu/machine/lxc-1-c1.libvirt-lxc/cgroup.procs",
                "/sys/fs/cgroup/net_cls,net_prio/x/cgroup.procs",
                "/sys/fs/cgroup/unified/cgroup.procs",
            ],
            "pids is not mounted on this host: left out"
        );
        // A pure cgroup v2 host.
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let got = cgroup_procs("0::/machine.slice/machine-lxc\\x2d1\\x2dc1.scope\n", v2);
        assert_eq!(got, [PathBuf::from("/sys/fs/cgroup/machine.slice/machine-lxc\\x2d1\\x2dc1.scope/cgroup.procs")]);
    }

    #[test]
    fn the_socket_relay_carries_output_and_status() {
        let r = Relay::sockets().unwrap();
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        cmd.stdin(r.child[0].try_clone().unwrap()).stdout(r.child[1].try_clone().unwrap());
        cmd.stderr(r.child[2].try_clone().unwrap());
        let running = r.start(true).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let (status, out, err) = running.finish(&mut child).unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    }

    #[test]
    fn status_fields_labels_and_shells() {
        let st = "Name:\tinit\nCapBnd:\t000001fdb5dedfff\nNoNewPrivs:\t0\nSeccomp:\t0\n";
        assert_eq!(status_field(st, "CapBnd").as_deref(), Some("000001fdb5dedfff"));
        assert_eq!(status_field(st, "Cap"), None);
        assert_eq!(apparmor_exec("libvirt-1234 (enforce)").as_deref(), Some("exec libvirt-1234"));
        assert_eq!(apparmor_exec("unconfined"), None);
        assert_eq!(
            root_shell("daemon:x:1:1::/:/usr/sbin/nologin\nroot:x:0:0:root:/root:/bin/bash\n").as_deref(),
            Some("/bin/bash")
        );
        assert_eq!(root_shell("root:x:0:0:root:/root:\n"), None);
    }
}
