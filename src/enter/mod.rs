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

mod child;
mod pty;
use pty::{Pty, RawMode};

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
    /// Under SELinux, the file label the command's pty gets ([`pty::file_label`]).
    pub pty_label: Option<String>,
    /// The container's seccomp programs, from lxcprov's own copy on the host (the one the
    /// container's shim was given; never read back through the container's tree, which
    /// its root controls), installed last before the command's execve.
    seccomp: Vec<Vec<libc::sock_filter>>,
}

/// What to run, and how.
pub struct Request {
    pub argv: Vec<String>,
    /// The programs to try in turn as `argv[0]` (each one's own name as `argv[0]`); empty:
    /// `argv[0]` alone, looked up in [`GUEST_PATH`] unless it has a `/`.
    pub programs: Vec<String>,
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
    /// Captured output beyond [`MAX_CAPTURE`] was dropped.
    pub truncated: bool,
}

/// The guest's PATH for the command (the host's is not the guest's).
pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The most lxcprov reads of one `/proc` file of the init (they are small; a larger one is
/// refused rather than read).
const MAX_PROC_FILE: u64 = 1 << 20;

/// Reads everything about the init `pid` of container `name` from `proc` (the host's
/// `/proc`); `filter` is lxcprov's host-side copy of the container's seccomp filter
/// (`STATE/seccomp/NAME/filter.bpf`); `etc` is the host's, for `lxc_contexts`.
pub fn target(proc: &Path, etc: &Path, name: &str, pid: u32, filter: &Path) -> Result<Target> {
    let dir = proc.join(pid.to_string());
    let me = proc.join("self");
    let read = |f: &str| {
        crate::fsutil::read_regular_bounded_to_string(&dir.join(f), MAX_PROC_FILE, &format!("{name}'s init's"))
    };
    let mut ns = vec![];
    for (n, flag) in CHILD_NS {
        if let Some(fd) = open_ns_if_other(&dir, &me, n)? {
            ns.push((n, flag, fd));
        }
    }
    if !ns.iter().any(|(n, _, _)| *n == "mnt") {
        bail!("{name}'s init shares lxcprov's mount namespace: refusing to run a command there with the host's root");
    }
    let pid_ns = open_ns_if_other(&dir, &me, "pid")?;
    let userns = ns.iter().any(|(n, _, _)| *n == "user");
    // The PID could have been reused between reading libvirt's status file and here: the
    // process must still be in the container's cgroup.
    let cgroup = read("cgroup")?;
    if crate::facts::container_of(&cgroup).as_deref() != Some(name) {
        bail!("PID {pid} is no longer {name}'s init (the container stopped or restarted); try again");
    }
    let mountinfo = crate::fsutil::read_regular_bounded_to_string(
        &me.join("mountinfo"),
        16 * MAX_PROC_FILE,
        "lxcprov's mount table",
    )?;
    let cgroup_procs = cgroup_procs(&cgroup, &mountinfo);
    let status = read("status")?;
    let last_cap: u32 = std::fs::read_to_string(proc.join("sys/kernel/cap_last_cap"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63);
    let bnd = status_field(&status, "CapBnd")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .context("no CapBnd in the init's status")?;
    let drop_caps = (0..=last_cap).filter(|c| bnd & (1u64 << c) == 0).collect();
    let no_new_privs = status_field(&status, "NoNewPrivs").as_deref() == Some("1");
    // A filter cannot be copied from another process: the command gets the programs
    // lxcprov compiled for the container, from the host's copy.
    let seccomp = if status_field(&status, "Seccomp").is_some_and(|s| s != "0") {
        let bytes = crate::fsutil::read_regular_bounded(filter, 1 << 20, "seccomp filter").with_context(|| {
            format!("{name}'s init runs under a seccomp filter, but lxcprov's copy of it cannot be read: refusing to run the command without it")
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
    let selinux = crate::host::selinux_enabled();
    let label = label_for(&dir, selinux, crate::host::apparmor_enabled())?;
    let pty_label = match (&label, selinux) {
        (Some((_, l)), true) => {
            let lxc = std::fs::read_to_string(crate::host::lxc_contexts_path(etc)).unwrap_or_default();
            Some(pty::file_label(&lxc, l).with_context(|| format!("{name}'s init label {l:?} has no MCS level"))?)
        }
        _ => None,
    };
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
        pty_label,
        seccomp,
    })
}

/// Makes sure lxcprov runs from a sealed, anonymous copy of its own executable before it
/// enters a container (runc's fix for CVE-2019-5736): the command's stage 2 is a fork of
/// lxcprov, visible in the container for a moment, and a container root allowed to trace it
/// (no user namespace, `sys_ptrace` kept) could open its `/proc/PID/exe` and write the host's
/// `lxcprov` once it is no longer running. A sealed memfd cannot be written, and nothing
/// else ever runs it. Returns at once when already running from one; otherwise re-executes
/// the same command line from the copy and only returns on error.
pub fn run_from_sealed_copy() -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut exe = std::fs::File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    // SAFETY: fcntl on our own descriptor.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if seals >= 0 && seals & wanted == wanted {
        return Ok(());
    }
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a static name; MFD_EXEC where the kernel knows it (6.3+,
    // needed when vm.memfd_noexec asks for it).
    let mut fd = unsafe { libc::memfd_create(c"lxcprov-sealed".as_ptr(), flags | libc::MFD_EXEC) };
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        fd = unsafe { libc::memfd_create(c"lxcprov-sealed".as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .context("memfd_create: lxcprov enters containers only from a sealed copy of itself");
    }
    use std::os::fd::FromRawFd;
    // SAFETY: a descriptor memfd_create just returned.
    let mut copy = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut exe, &mut copy).context("copying lxcprov into a sealed memfd")?;
    // The kernel refuses the write seal (EBUSY) while pages of the copy are still pinned by
    // the copy's own I/O (seen once in 200 execs on a loaded host): tried again briefly.
    let mut tries = 0;
    loop {
        // SAFETY: fcntl on our own descriptor.
        if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, wanted) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EBUSY) || tries >= 50 {
            return Err(e).context("sealing lxcprov's copy");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let c = |b: &[u8]| CString::new(b).context("a NUL byte in the command line or environment");
    let args = std::env::args_os().map(|a| c(a.as_bytes())).collect::<Result<Vec<_>>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of C strings that outlive the call.
    unsafe { libc::fexecve(copy.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    Err(std::io::Error::last_os_error()).context("running lxcprov's sealed copy")
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
    let read = |p: PathBuf| {
        crate::fsutil::read_regular_bounded(&p, 4096, "the init's label")
            .map(|b| String::from_utf8_lossy(&b).trim_end_matches(['\0', '\n']).to_string())
    };
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

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{what} contains a NUL byte"))
}

/// At most this much of each output stream is kept with `--json`; the rest is read and
/// dropped (the record says `truncated`), so a container cannot fill lxcprov's memory.
pub const MAX_CAPTURE: usize = 16 << 20;

/// How long lxcprov waits, once the command has exited, for its output to end (background
/// processes it left may hold it open for ever).
const DRAIN_AFTER_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `req` in the container. Returns how the command ended; an error only when it could
/// not be started (a command not found is `status` 127, as in a shell).
///
/// The command never gets a descriptor of the caller's: where the caller's stdin, stdout or
/// stderr is a terminal it gets a pseudo-terminal of lxcprov's own (never the caller's: with
/// `TIOCSTI` a process holding that terminal could type into the caller's shell), and
/// everything else is a socket lxcprov relays. How it is entered: [`child`].
pub fn run(t: &Target, req: &Request) -> Result<Outcome> {
    use std::io::IsTerminal;
    let Some(first) = req.argv.first() else { bail!("no command to run") };
    let programs: Vec<String> = if req.programs.is_empty() { vec![first.clone()] } else { req.programs.clone() };
    let tty = [std::io::stdin().is_terminal(), std::io::stdout().is_terminal(), std::io::stderr().is_terminal()];
    let pty = if !req.capture && tty.iter().any(|t| *t) { Some(Pty::open()?) } else { None };
    if let (Some(p), Some(l)) = (&pty, &t.pty_label) {
        p.label(l).with_context(|| {
            format!("labelling the pty for {} as {l} (its processes could not use it otherwise)", t.name)
        })?;
    }
    let on_pty = |i: usize| pty.is_some() && tty[i];
    // Under SELinux the command, in the container's type and categories, may not use
    // lxcprov's sockets: they are made with its label.
    let selinux_label = t.label.as_ref().map(|(_, v)| v.as_str()).filter(|v| !v.starts_with("exec "));
    let relay = Relay::new(selinux_label)?;
    let stdio: [i32; 3] = std::array::from_fn(|i| match &pty {
        Some(p) if on_pty(i) => p.slave_fd(),
        _ => relay.child[i].as_raw_fd(),
    });
    let (report_r, report_w) = pipe()?;

    let mut strings = vec![];
    let mut cs = |s: &str, what: &str| -> Result<*const libc::c_char> {
        let c = cstr(s, what)?;
        let ptr = c.as_ptr();
        strings.push(c);
        Ok(ptr)
    };
    let mut args = vec![std::ptr::null(); req.argv.len()];
    for (i, a) in req.argv.iter().enumerate().skip(1) {
        args[i] = cs(a, "an argument")?;
    }
    let mut candidates = vec![];
    for prog in &programs {
        let argv0 = cs(prog, "the command")?;
        let paths: Vec<String> = if prog.contains('/') {
            vec![prog.clone()]
        } else {
            GUEST_PATH.split(':').map(|d| format!("{d}/{prog}")).collect()
        };
        for path in paths {
            let mut argv = args.clone();
            argv[0] = argv0;
            argv.push(std::ptr::null());
            candidates.push(child::Candidate { path: cstr(&path, "the command")?, argv });
        }
    }
    let mut env = vec![("PATH".to_string(), GUEST_PATH.to_string()), ("HOME".into(), "/root".into())];
    if let Ok(term) = std::env::var("TERM") {
        env.push(("TERM".into(), term));
    }
    for (k, v) in &req.env {
        if k.contains('=') {
            bail!("environment variable name {k:?} contains '='");
        }
        env.retain(|(old, _)| old != k);
        env.push((k.clone(), v.clone()));
    }
    let mut envp = env.iter().map(|(k, v)| cs(&format!("{k}={v}"), "the environment")).collect::<Result<Vec<_>>>()?;
    envp.push(std::ptr::null());
    let mut prepared = child::Prepared {
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        stdio,
        ctty: pty.as_ref().and_then(|_| (0..3).find(|&i| tty[i]).map(|i| i as i32)),
        report: report_w.as_raw_fd(),
        ns: t.ns.iter().map(|(_, flag, fd)| (fd.as_raw_fd(), *flag)).collect(),
        pid_ns: t.pid_ns.as_ref().map(|fd| fd.as_raw_fd()),
        userns: t.userns,
        cgroup_procs: t
            .cgroup_procs
            .iter()
            .map(|p| cstr(&p.to_string_lossy(), "cgroup path"))
            .collect::<Result<_>>()?,
        label: t
            .label
            .as_ref()
            .map(|(p, v)| Ok::<_, anyhow::Error>((cstr(&p.to_string_lossy(), "label path")?, v.as_bytes().to_vec())))
            .transpose()?,
        drop_caps: t.drop_caps.clone(),
        // What the bounding set keeps is the most any capability set may hold.
        bounding: !t.drop_caps.iter().fold(0u64, |m, &c| m | 1 << c),
        no_new_privs: t.no_new_privs,
        seccomp: t.seccomp.clone(),
        candidates,
        envp,
        _strings: strings,
    };
    let running = relay.start(req.capture, std::array::from_fn(|i| !on_pty(i)))?;
    // SAFETY: the child runs only child::stage1, which makes async-signal-safe calls on
    // memory prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        // SAFETY: in the freshly forked child.
        unsafe { child::stage1(&mut prepared) }
    }
    drop(prepared);
    drop(report_w);
    let (pty_master, raw) = match pty {
        Some(p) => {
            let raw = if tty[0] { RawMode::enter(0) } else { None };
            (Some(p.into_master()), raw)
        }
        None => (None, None),
    };
    let out_fd = if tty[1] {
        Some(1)
    } else if tty[2] {
        Some(2)
    } else {
        None
    };
    let wait = wait_for(pid, report_r, pty_master, tty[0], out_fd);
    drop(raw);
    let (status, reports) = wait?;
    let (stdout, stderr, truncated) = running.finish(DRAIN_AFTER_EXIT);
    let code = |s: i32| if libc::WIFEXITED(s) { Some(libc::WEXITSTATUS(s)) } else { None };
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let exit = code(status);
    // Reports count only when the exit status agrees (a traced stage 2 could write one).
    if exit == Some(child::SETUP_FAILED) {
        if let Some(&(_, step, errno)) = reports.iter().find(|(k, _, _)| *k == child::MSG_SETUP) {
            let what = child::STEPS.get(step as usize).copied().unwrap_or("entering the container");
            return Err(std::io::Error::from_raw_os_error(errno))
                .with_context(|| format!("{what}, to run {first} in {}", t.name));
        }
    }
    let mut error = None;
    if matches!(exit, Some(126 | 127)) {
        if let Some(&(_, _, errno)) = reports.iter().find(|(k, _, _)| *k == child::MSG_EXEC) {
            let shown = crate::text::for_terminal(first);
            error = Some(match errno {
                libc::ENOENT | libc::ENOTDIR => format!("{shown}: not found in {} (PATH {GUEST_PATH})", t.name),
                libc::EACCES => format!("{shown}: permission denied in {}", t.name),
                e => format!("{shown}: cannot run in {}: {}", t.name, std::io::Error::from_raw_os_error(e)),
            });
        }
    }
    Ok(Outcome { status: exit.unwrap_or_else(|| 128 + signal.unwrap_or(0)), signal, error, stdout, stderr, truncated })
}

/// A stage's report: `(kind, a, b)` (see [`child::MSG_SETUP`]).
type Report = (i32, i32, i32);

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both were just created.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits for stage 1 (the command's end), relaying the pty if there is one, collecting the
/// stages' reports, and passing Ctrl-C on to the command. Returns the wait status and the
/// reports `(kind, a, b)`.
fn wait_for(
    pid: libc::pid_t,
    report: OwnedFd,
    master: Option<OwnedFd>,
    stdin_tty: bool,
    out_fd: Option<i32>,
) -> Result<(i32, Vec<Report>)> {
    let mut reports = vec![];
    let mut pending: Vec<u8> = vec![];
    let mut report_open = true;
    let mut master_open = master.is_some();
    let mut stdin_open = master.is_some() && stdin_tty;
    let mut forwarded = false;
    let mfd = master.as_ref().map(|m| m.as_raw_fd()).unwrap_or(-1);
    // Readable once stage 1 has exited, so the command's end is seen at once rather than
    // at the next 100 ms tick (kernels before 5.3 have no pidfd: the tick it is).
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open on our own child; a descriptor it returns is ours.
    let exited = match unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } {
        fd if fd >= 0 => Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        _ => None,
    };
    let mut buf = [0u8; 16 << 10];
    let status = loop {
        let mut fds = [
            libc::pollfd { fd: if report_open { report.as_raw_fd() } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if master_open { mfd } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if stdin_open { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: exited.as_ref().map_or(-1, |f| f.as_raw_fd()), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll on pollfd structs we own.
        unsafe { libc::poll(fds.as_mut_ptr(), 4, 100) };
        if fds[0].revents != 0 {
            // SAFETY: read into our buffer.
            let r = unsafe { libc::read(report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                report_open = false;
            } else if pending.len() < 4096 {
                pending.extend_from_slice(&buf[..r as usize]);
            }
        }
        if fds[1].revents != 0 {
            // SAFETY: read into our buffer.
            let r = unsafe { libc::read(mfd, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                master_open = false; // EIO: nothing holds the pty any more
            } else if let Some(fd) = out_fd {
                pty::write_all(fd, &buf[..r as usize]);
            }
        }
        if fds[2].revents != 0 {
            // SAFETY: read into our buffer.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                stdin_open = false;
            } else {
                pty::write_all(mfd, &buf[..r as usize]);
            }
        }
        let mut st = 0;
        // SAFETY: waitpid on our own child.
        let w = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if w == pid {
            break st;
        }
        if w < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(std::io::Error::last_os_error()).context("waiting for the command");
        }
        if crate::interrupt::requested() && !forwarded {
            // Ctrl-C reached lxcprov (the command has a session of its own): stage 1 passes
            // it on to the command.
            // SAFETY: kill on our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
            forwarded = true;
        }
    };
    // What the pty still holds, within reason.
    for _ in 0..64 {
        if !master_open {
            break;
        }
        let mut pfd = libc::pollfd { fd: mfd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll and read on our own descriptor and buffer.
        if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
            break;
        }
        let r = unsafe { libc::read(mfd, buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break;
        }
        if let Some(fd) = out_fd {
            pty::write_all(fd, &buf[..r as usize]);
        }
    }
    // The reports still buffered (stage 1 is gone; a stray writer cannot keep us here).
    // SAFETY: fcntl and read on our own descriptor.
    unsafe { libc::fcntl(report.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    while report_open && pending.len() < 4096 {
        let r = unsafe { libc::read(report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break;
        }
        pending.extend_from_slice(&buf[..r as usize]);
    }
    for m in pending.chunks_exact(12) {
        let at = |i: usize| i32::from_ne_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
        reports.push((at(0), at(4), at(8)));
    }
    Ok((status, reports))
}

/// The command's stdin, stdout and stderr as socket pairs (under SELinux created with the
/// container's label, `/proc/thread-self/attr/sockcreate`, so the command may use them);
/// lxcprov copies between them and its own stdio (or captures the output).
struct Relay {
    /// The command's ends: stdin, stdout, stderr.
    child: [OwnedFd; 3],
    /// lxcprov's ends.
    ours: [OwnedFd; 3],
}

impl Relay {
    fn new(label: Option<&str>) -> Result<Relay> {
        let Some(label) = label else { return Relay::sockets() };
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

    /// Starts copying for the streams in `active`: the caller's stdin in, the command's
    /// output out (or kept, up to [`MAX_CAPTURE`]).
    fn start(self, capture: bool, active: [bool; 3]) -> Result<Running> {
        use std::io::{Read, Write};
        let Relay { child: theirs, ours: [stdin, stdout, stderr] } = self;
        let spawn = |name: &str| std::thread::Builder::new().name(name.into());
        // The caller's stdin goes in until it ends, as an inherited stdin would (never
        // joined: an open terminal or a stdin nobody closes must not keep lxcprov waiting
        // once the command is done).
        if active[0] {
            spawn("exec-stdin")
                .spawn(move || {
                    let mut sock = std::fs::File::from(stdin);
                    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sock);
                    // SAFETY: shutdown on an open socket.
                    unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_WR) };
                })
                .context("starting the stdin relay")?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let pump = |fd: OwnedFd, to_stderr: bool| {
            let tx = tx.clone();
            spawn(if to_stderr { "exec-stderr" } else { "exec-stdout" }).spawn(move || {
                let mut src = std::fs::File::from(fd);
                let (mut kept, mut truncated) = (vec![], false);
                let mut buf = [0u8; 16 << 10];
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if capture {
                        let room = MAX_CAPTURE.saturating_sub(kept.len());
                        truncated |= n > room;
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    } else if to_stderr {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    } else if std::io::stdout().write_all(&buf[..n]).and_then(|_| std::io::stdout().flush()).is_err() {
                        break;
                    }
                }
                let _ = tx.send((to_stderr, kept, truncated));
            })
        };
        let mut pumps = 0;
        if active[1] {
            pump(stdout, false).context("starting the stdout relay")?;
            pumps += 1;
        }
        if active[2] {
            pump(stderr, true).context("starting the stderr relay")?;
            pumps += 1;
        }
        Ok(Running { theirs, pumps, rx })
    }
}

/// A started [`Relay`].
struct Running {
    theirs: [OwnedFd; 3],
    pumps: usize,
    rx: std::sync::mpsc::Receiver<(bool, Vec<u8>, bool)>,
}

impl Running {
    /// The command's ends are closed here (it has its own copies); once it has exited, its
    /// output drains for at most `within` (a background process it left may hold the
    /// sockets open). Returns stdout, stderr and whether anything was cut.
    fn finish(self, within: std::time::Duration) -> (Vec<u8>, Vec<u8>, bool) {
        drop(self.theirs);
        let deadline = std::time::Instant::now() + within;
        let (mut out, mut err, mut truncated) = (vec![], vec![], false);
        for _ in 0..self.pumps {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((true, e, t)) => (err, truncated) = (e, truncated | t),
                Ok((false, o, t)) => (out, truncated) = (o, truncated | t),
                Err(_) => break,
            }
        }
        (out, err, truncated)
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
        let running = r.start(true, [true; 3]).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let status = child.wait().unwrap();
        let (out, err, truncated) = running.finish(std::time::Duration::from_secs(5));
        assert_eq!(status.code(), Some(3));
        assert_eq!((out.as_slice(), err.as_slice(), truncated), (&b"out\n"[..], &b"err\n"[..], false));
    }

    #[test]
    fn captured_output_is_bounded_and_a_lingering_writer_does_not_hold_lxcprov() {
        let r = Relay::sockets().unwrap();
        // More than MAX_CAPTURE on stdout, then a background writer keeps stderr open.
        let mut cmd = std::process::Command::new("/bin/sh");
        let script = format!("head -c {} /dev/zero; (sleep 30 >&2 &) ; exit 0", MAX_CAPTURE + 4096);
        cmd.args(["-c", &script]);
        cmd.stdin(r.child[0].try_clone().unwrap()).stdout(r.child[1].try_clone().unwrap());
        cmd.stderr(r.child[2].try_clone().unwrap());
        let running = r.start(true, [true; 3]).unwrap();
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        assert!(child.wait().unwrap().success());
        let t = std::time::Instant::now();
        let (out, _, truncated) = running.finish(std::time::Duration::from_millis(500));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(out.len(), MAX_CAPTURE);
        assert!(truncated);
    }

    #[test]
    fn status_fields_labels_and_shells() {
        let st = "Name:\tinit\nCapBnd:\t000001fdb5dedfff\nNoNewPrivs:\t0\nSeccomp:\t0\n";
        assert_eq!(status_field(st, "CapBnd").as_deref(), Some("000001fdb5dedfff"));
        assert_eq!(status_field(st, "Cap"), None);
        assert_eq!(apparmor_exec("libvirt-1234 (enforce)").as_deref(), Some("exec libvirt-1234"));
        assert_eq!(apparmor_exec("unconfined"), None);
    }
}
