//! Learn mode (paper 3.6: profile an application's system calls under regular load, then
//! allow only those). The container runs under a filter that allows a small baseline
//! silently and every other call with `SECCOMP_RET_LOG`; the kernel writes each logged call
//! as an audit record (`type=1326 ... syscall=N ... code=0x7ffc0000`) to `/dev/kmsg` when no
//! audit daemon listens. The calls seen, plus the baseline, become an allow-list.
//!
//! Two host settings matter, and `lxcprov seccomp learn` checks or sets them:
//! `/proc/sys/kernel/seccomp/actions_logged` must include `log`, and the kernel's printk
//! rate limit (`/proc/sys/kernel/printk_ratelimit`, 5 s by default, 10 messages a burst)
//! drops most records, so it is set to 0 while learning and restored after.

use super::{Policy, Rule, Verdict};
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

/// The allow-list from what was seen: the baseline, every call seen, and `execve` (the
/// shim's own exec of init, which happens before any record could be taken).
pub fn allow_list(seen: &BTreeSet<u32>, default_action: Verdict, errno: u32) -> Policy {
    let mut names: BTreeSet<String> = BASELINE.iter().map(|s| s.to_string()).collect();
    names.insert("execve".into());
    for nr in seen {
        if let Some(n) = super::syscall_name(*nr) {
            names.insert(n.to_string());
        }
    }
    Policy {
        default_action,
        errno,
        syscalls: vec![Rule { names: names.into_iter().collect(), action: Verdict::Allow, errno: None }],
    }
}
