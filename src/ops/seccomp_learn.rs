//! Learn mode (paper 3.6: profile an application's system calls under regular load, then
//! allow only those). The container runs under a filter that allows a small baseline
//! silently and every other call with `SECCOMP_RET_LOG`; the kernel makes each logged call
//! an audit record (`type=1326 ... syscall=N ... code=0x7ffc0000`). lxcprov receives them as
//! the audit daemon for the window ([`AuditListener`], over `NETLINK_AUDIT`), or, when an
//! auditd is registered, from `/dev/kmsg` (which can overrun and lose records). The calls
//! seen, plus the baseline, become an allow-list.
//!
//! Host settings: `/proc/sys/kernel/seccomp/actions_logged` must include `log`; on the kmsg
//! path the printk rate limit (`/proc/sys/kernel/printk_ratelimit`, 5 s by default, 10
//! messages a burst) would drop most records, so it is set to 0 while learning and restored.

use crate::seccomp::audit::{audit_status, AuditListener};
use crate::seccomp::{Policy, Rule, Verdict};
use std::collections::BTreeSet;

/// Calls every program makes, allowed without logging so that the log stays small (the kmsg
/// ring and the audit backlog would otherwise overflow and lose the rare calls that matter).
/// They are in every learned allow-list.
pub const BASELINE: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "futex",
    "getpid",
    "gettid",
    "getppid",
    "clock_gettime",
    "gettimeofday",
    "nanosleep",
    "clock_nanosleep",
    "epoll_wait",
    "epoll_pwait",
    "poll",
    "ppoll",
    "exit",
    "exit_group",
    "openat",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "sched_yield",
    // What glibc, systemd and every daemon call all the time: kept out of the log so that
    // the kmsg ring and the audit backlog keep the rare calls.
    "access",
    "faccessat",
    "faccessat2",
    "fcntl",
    "ioctl",
    "getdents64",
    "readlink",
    "readlinkat",
    "dup",
    "dup2",
    "dup3",
    "pipe2",
    "epoll_ctl",
    "epoll_create1",
    "recvmsg",
    "sendmsg",
    "recvfrom",
    "sendto",
    "getrandom",
    "prctl",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "rt_sigtimedwait",
    "wait4",
    "waitid",
    "clone",
    "clone3",
    "uname",
    "umask",
    "getcwd",
    "timerfd_settime",
    "madvise",
    "inotify_add_watch",
    "name_to_handle_at",
    "fstatfs",
    "statfs",
    "lstat",
    "stat",
    "open",
    "getsockopt",
    "setsockopt",
    "close_range",
];

/// The learn filter: the baseline allowed, everything else allowed and logged.
pub fn learn_policy() -> Policy {
    Policy {
        default_action: Verdict::Log,
        errno: libc::EPERM as u32,
        syscalls: vec![Rule {
            names: BASELINE.iter().map(|s| s.to_string()).collect(),
            action: Verdict::Allow,
            errno: None,
        }],
    }
}

/// One seccomp audit record from kmsg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    pub syscall: u32,
    pub comm: String,
}

/// Parses one `/dev/kmsg` (or `dmesg`) line; `Some` only for an x86_64 `SECCOMP_RET_LOG`
/// record (`type=1326`, `code=0x7ffc0000`).
pub fn parse_record(line: &str) -> Option<Record> {
    let at = line.find("type=1326")?;
    let mut pid = None;
    let mut syscall = None;
    let mut comm = String::new();
    let mut arch_ok = false;
    let mut code_ok = false;
    for field in line[at..].split_whitespace() {
        let Some((k, v)) = field.split_once('=') else { continue };
        match k {
            "pid" => pid = v.parse().ok(),
            "syscall" => syscall = v.parse().ok(),
            "comm" => comm = v.trim_matches('"').to_string(),
            "arch" => arch_ok = v == "c000003e",
            "code" => code_ok = v == "0x7ffc0000",
            _ => {}
        }
    }
    if !(arch_ok && code_ok) {
        return None;
    }
    Some(Record { pid: pid?, syscall: syscall?, comm })
}

/// The allow-list from what was seen: the baseline, every call seen, `execve` (the shim's
/// own exec of init, made before any record could be taken) and `seccomp`.
pub fn allow_list(seen: &BTreeSet<u32>, default_action: Verdict, errno: u32) -> Policy {
    let mut names: BTreeSet<String> = BASELINE.iter().map(|s| s.to_string()).collect();
    names.insert("execve".into());
    // The shim installs its programs one by one; systemd installs its services' filters.
    names.insert("seccomp".into());
    for nr in seen {
        if let Some(n) = crate::seccomp::syscall_name(*nr) {
            names.insert(n.to_string());
        }
    }
    Policy {
        default_action,
        errno,
        syscalls: vec![Rule { names: names.into_iter().collect(), action: Verdict::Allow, errno: None }],
    }
}

/// The host's `actions_logged` sysctl.
pub const ACTIONS_LOGGED: &str = "/proc/sys/kernel/seccomp/actions_logged";
/// The printk rate limit (seconds) that drops audit records printed to kmsg.
pub const PRINTK_RATELIMIT: &str = "/proc/sys/kernel/printk_ratelimit";

/// What a learn run saw.
#[derive(Debug, Default)]
pub struct Learned {
    /// Records taken (of the container's processes, or of processes gone before they
    /// could be checked).
    pub records: usize,
    /// Records of live processes outside the container, ignored.
    pub foreign: usize,
    /// Times the kmsg ring overran between two reads (records were lost).
    pub overruns: usize,
    /// The kernel said it dropped audit records (`audit: backlog limit exceeded`, `callbacks suppressed`).
    pub dropped_notes: usize,
    /// Records the audit subsystem counted as lost meanwhile (its `lost` counter).
    pub lost: u32,
    pub syscalls: BTreeSet<u32>,
}

/// Puts a file's old content back when dropped (the enforced filter, the rate limit).
struct Restore {
    path: std::path::PathBuf,
    content: Vec<u8>,
    mode: u32,
    sysctl: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let r = if self.sysctl {
            std::fs::write(&self.path, &self.content).map_err(anyhow::Error::from)
        } else {
            crate::fsutil::write_atomic(&self.path, &self.content, self.mode)
        };
        if let Err(e) = r {
            eprintln!("lxcprov: could not restore {}: {e:#}", self.path.display());
        }
    }
}

fn ns_of(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// `lxcprov seccomp learn NAME --duration S`: runs the container under the learn filter for
/// `duration`, then puts the enforced filter back (and the container in its former state),
/// and returns the allow-list built from what its processes called.
pub fn learn(
    env: &crate::container::Env,
    name: &crate::name::Name,
    duration: std::time::Duration,
    default_action: Verdict,
    errno: u32,
) -> anyhow::Result<(Policy, Learned)> {
    use anyhow::{bail, Context};
    use std::io::{Read, Seek};
    use std::os::unix::fs::OpenOptionsExt;
    let d = crate::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    let dir = match crate::shim::expect(&d) {
        crate::verify::SeccompExpect::Filters { file, .. } => file.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
        crate::verify::SeccompExpect::Off => bail!(
            "{name} runs without lxcprov's seccomp shim (security.seccomp: none): create it with a filter (default) to learn"
        ),
        crate::verify::SeccompExpect::Broken(why) => bail!("{name}: {why}"),
    };
    let logged = std::fs::read_to_string(ACTIONS_LOGGED).with_context(|| format!("reading {ACTIONS_LOGGED}"))?;
    if !logged.split_whitespace().any(|a| a == "log") {
        bail!(
            "{ACTIONS_LOGGED} is {:?}: the kernel does not log SECCOMP_RET_LOG. Add it: echo '{} log' > {ACTIONS_LOGGED}",
            logged.trim(),
            logged.trim()
        );
    }
    let was_running = env.hv.domain_state(name.as_str())? == crate::libvirt::State::Running;
    if was_running {
        env.ui.info(&format!("stopping {name} to restart it under the learn filter"));
        crate::container::stop(env, name, std::time::Duration::from_secs(20))?;
    }
    let filter = dir.join(crate::seccomp::FILTER);
    let old = crate::fsutil::read_state(&filter, 1 << 20, "seccomp filter")?
        .with_context(|| format!("{} is missing; run `lxcprov rebuild {name}` first", filter.display()))?;
    let restore_filter = Restore { path: filter.clone(), content: old, mode: 0o644, sysctl: false };
    let learn = learn_policy();
    crate::fsutil::write_atomic(&filter, &crate::seccomp::encode(&crate::seccomp::compile(&learn)?), 0o644)?;
    let rate = std::fs::read(PRINTK_RATELIMIT).with_context(|| format!("reading {PRINTK_RATELIMIT}"))?;
    let restore_rate = Restore { path: PRINTK_RATELIMIT.into(), content: rate, mode: 0, sysctl: true };
    std::fs::write(PRINTK_RATELIMIT, "0").with_context(|| format!("writing {PRINTK_RATELIMIT}"))?;
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .context("opening /dev/kmsg")?;
    kmsg.seek(std::io::SeekFrom::End(0)).context("seeking /dev/kmsg")?;
    // Best: be the audit daemon for the window (records queued for us, not printed and
    // lost when the kmsg ring overruns). Else (an auditd runs): kmsg.
    let audit = match AuditListener::register(1 << 17) {
        Ok(l) => {
            env.ui.info("recording through the kernel's audit netlink socket (lxcprov is the audit daemon meanwhile)");
            Some(l)
        }
        Err(e) => {
            env.ui
                .warn(&format!("cannot register as the audit daemon ({e}); reading /dev/kmsg, which can lose records"));
            None
        }
    };
    let lost_before = audit_status().map(|s| s.lost).unwrap_or(0);
    crate::container::run::start_domain(env, name)?;
    let result = (|| -> anyhow::Result<Learned> {
        let pid = crate::container::run::wait_for_init(env, name, crate::container::run::START_TIMEOUT)?;
        let ns = ns_of(pid).context("the init's pid namespace")?;
        env.ui.info(&format!(
            "{name} runs under the learn filter (init PID {pid}); recording its system calls for {}s: exercise it now",
            duration.as_secs()
        ));
        let mut seen = Learned::default();
        let start = std::time::Instant::now();
        let mut buf = vec![0u8; 8192];
        let mut stopping: Option<std::time::Instant> = None;
        let mut polled = std::time::Instant::now();
        loop {
            crate::interrupt::check()?;
            // After the duration: a graceful shutdown, still recorded (what the container
            // calls to stop is part of its profile too), until it is off or 20 s passed.
            if stopping.is_none() && start.elapsed() >= duration {
                env.ui.info(&format!("shutting {name} down, still recording"));
                stopping = Some(std::time::Instant::now());
                if let Err(e) = env.hv.shutdown_domain(name.as_str()) {
                    env.ui.warn(&format!("graceful shutdown request failed ({e:#})"));
                }
            }
            if let Some(t) = stopping {
                if t.elapsed() > std::time::Duration::from_secs(20) {
                    break;
                }
                if polled.elapsed() > std::time::Duration::from_millis(200) {
                    polled = std::time::Instant::now();
                    if env.hv.domain_state(name.as_str())? != crate::libvirt::State::Running {
                        break;
                    }
                }
            }
            let got = match &audit {
                Some(a) => match a.next(std::time::Duration::from_millis(50)) {
                    Ok(Some((1326, body))) => {
                        Ok(format!("type=1326 {}", String::from_utf8_lossy(&body).trim_end_matches('\0')).into_bytes())
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                None => kmsg.read(&mut buf).map(|n| buf[..n].to_vec()),
            };
            match got {
                Ok(b) if b.is_empty() => std::thread::sleep(std::time::Duration::from_millis(50)),
                Ok(b) => {
                    let line = String::from_utf8_lossy(&b);
                    if ["backlog limit exceeded", "audit_lost=", "audit_backlog=", "callbacks suppressed"]
                        .iter()
                        .any(|n| line.contains(n))
                    {
                        seen.dropped_notes += 1;
                    }
                    let Some(r) = parse_record(&line) else { continue };
                    match ns_of(r.pid) {
                        Some(n) if n != ns => seen.foreign += 1,
                        _ => {
                            seen.records += 1;
                            seen.syscalls.insert(r.syscall);
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => seen.overruns += 1,
                Err(e) => return Err(anyhow::Error::new(e).context("reading /dev/kmsg")),
            }
        }
        seen.lost = audit_status().map(|s| s.lost).unwrap_or(0).saturating_sub(lost_before);
        Ok(seen)
    })();
    drop(audit);
    env.ui.info(&format!("putting {name}'s enforced filter back"));
    let stopped = crate::container::stop(env, name, std::time::Duration::from_secs(20));
    drop(restore_filter);
    drop(restore_rate);
    let seen = result?;
    stopped?;
    if was_running {
        crate::container::start(env, name)?;
        env.ui.info(&format!("{name} runs again under its enforced filter"));
    }
    Ok((allow_list(&seen.syscalls, default_action, errno), seen))
}

/// `lxcprov seccomp apply NAME POLICY`: recompiles the container's filter from a policy
/// (takes effect at its next start). Returns the directory's new contents.
pub fn apply(
    env: &crate::container::Env,
    name: &crate::name::Name,
    choice: &str,
) -> anyhow::Result<crate::shim::SeccompDir> {
    use anyhow::{bail, Context};
    let c = crate::seccomp::Choice::parse(choice).map_err(anyhow::Error::msg)?;
    let Some(policy) = Policy::of(&c)? else {
        bail!("apply a policy (default, strict or a file); `none` needs a re-create")
    };
    let d = crate::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    let Some(dir) = d.seccomp_dir.clone() else {
        bail!("{name} has no seccomp shim directory (created with security.seccomp: none): re-create it with a filter")
    };
    let s = crate::shim::dir_for(dir, choice, &policy, &crate::shim::ShimSource::Embedded)?;
    crate::fsutil::write_atomic(&s.dir.join(crate::seccomp::FILTER), &s.filter, 0o644).context("writing the filter")?;
    crate::fsutil::write_atomic(&s.dir.join(crate::seccomp::POLICY), s.policy_json.as_bytes(), 0o644)?;
    Ok(s)
}

/// What `seccomp learn` is asked for.
#[derive(Clone, Debug)]
pub struct LearnOptions {
    pub duration: std::time::Duration,
    /// Where the allow-list is written.
    pub output: std::path::PathBuf,
    /// For calls outside the list: kill, else an errno.
    pub verdict: Verdict,
    pub errno: u32,
}

/// `lxcprov seccomp learn NAME`: runs the container under the learn filter for the window,
/// under its lock, and writes the allow-list to `output`; the policy and what was seen.
pub fn learn_into(
    ctx: &crate::context::Context,
    name: &crate::name::Name,
    o: &LearnOptions,
) -> anyhow::Result<(Policy, Learned)> {
    use anyhow::Context as _;
    crate::container::require_root("seccomp learn")?;
    let (policy, seen) = crate::container::with_real_env(ctx, &*ctx.ui, |env| {
        env.container(name)?;
        let _lock = crate::state::lock(env.paths, name)?;
        learn(env, name, o.duration, o.verdict, o.errno)
    })?;
    let json = serde_json::to_string_pretty(&policy)? + "\n";
    crate::fsutil::write_atomic(&o.output, json.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", o.output.display()))?;
    Ok((policy, seen))
}

/// `lxcprov seccomp apply NAME POLICY`: the policy compiled into the container's seccomp
/// directory, under its lock (in force from its next start).
pub fn apply_to(
    ctx: &crate::context::Context,
    name: &crate::name::Name,
    policy: &str,
) -> anyhow::Result<crate::shim::SeccompDir> {
    crate::container::require_root("seccomp apply")?;
    crate::container::with_real_env(ctx, &*ctx.ui, |env| {
        env.container(name)?;
        let _lock = crate::state::lock(env.paths, name)?;
        apply(env, name, policy)
    })
}
