//! Seccomp for libvirt-LXC containers (paper 3.6). libvirt's LXC driver installs no filter,
//! so lxcprov puts a small init shim (`lxcprov-init`, its own crate, no libvirt) in front of
//! the container's init: it installs the filters compiled here and execs the real init.
//!
//! - [`Policy`]: the small, OCI-like JSON schema of `security.seccomp: FILE`, and the built-in
//!   policies `default` and `strict` (deny-lists informed by LXC's and Docker's defaults,
//!   compatible with systemd in the guest).
//! - [`compile`]: a policy to BPF programs with seccompiler, [`encode`]d into the
//!   `filter.bpf` the shim reads from `/.lxcprov`.
//! - [`learn`]: the logging filter of `lxcprov seccomp learn` and the kmsg parser that turns
//!   its records into an allow-list.

pub mod audit;
pub(crate) mod elf;

mod table;

use anyhow::{bail, Context, Result};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The largest policy file lxcprov reads.
pub const MAX_POLICY_BYTES: u64 = 256 * 1024;
/// The shim's directory inside the container (a read-only bind mount of the host's).
pub const GUEST_DIR: &str = "/.lxcprov";
/// The shim inside the container.
pub const GUEST_SHIM: &str = "/.lxcprov/lxcprov-init";
/// File names in the per-container directory.
pub const SHIM: &str = "lxcprov-init";
pub const FILTER: &str = "filter.bpf";
pub const POLICY: &str = "policy.json";

/// What a filter does with a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    /// Fail with an errno (the rule's, else the policy's).
    Errno,
    /// Kill the process (SIGSYS).
    Kill,
    /// Allow and log to the kernel's audit log / kmsg (learn mode).
    Log,
}

/// One rule of a policy file: these system calls get this action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Verdict,
    /// With `action: errno`: overrides the policy's errno.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<u32>,
}

/// A policy: `{"default_action": "allow"|"errno"|"kill", "errno": 1, "syscalls": [...]}`.
/// A deny-list has `default_action: allow`; an allow-list has `errno` or `kill`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub default_action: Verdict,
    /// The errno of `errno` actions without their own (1, EPERM, by default).
    #[serde(default = "eperm")]
    pub errno: u32,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

fn eperm() -> u32 {
    libc::EPERM as u32
}

/// The largest errno a filter can return.
pub const MAX_ERRNO: u32 = 4095;

/// The calls every built-in policy denies (EPERM), after LXC's `common.seccomp` and Docker's
/// default profile: loading kernels and modules, the file-handle escape, eBPF, userfaultfd
/// and perf (the usual kernel exploit primitives), io_uring (Docker dropped it too), swap,
/// accounting, raw I/O ports, the clock, and obsolete calls.
pub const DEFAULT_DENY: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
];

/// Denied with ENOSYS, as LXC does: the kernel keyring is not namespaced. systemd (252, in
/// Debian 12) treats ENOSYS and EPERM from keyctl as "no keyring" and carries on (its
/// `setup_keyring` logs "Kernel keyring not supported, ignoring").
pub const DEFAULT_NOSYS: &[&str] = &["keyctl", "add_key", "request_key"];

/// What `strict` (the `hardened` profile's) denies on top of `default`: tracing and reading
/// other processes' memory, NUMA policy, the kernel log. systemd boots without them.
pub const STRICT_EXTRA: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "syslog",
    "mbind",
    "set_mempolicy",
    "migrate_pages",
    "move_pages",
    "pkey_mprotect",
];

/// A built-in policy or a file, as `security.seccomp` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    None,
    Default,
    Strict,
    File(std::path::PathBuf),
}

impl Choice {
    pub fn parse(s: &str) -> Result<Choice, String> {
        match s {
            "none" => Ok(Choice::None),
            "default" => Ok(Choice::Default),
            "strict" => Ok(Choice::Strict),
            p if p.starts_with('/') || p.starts_with("./") || p.ends_with(".json") => Ok(Choice::File(p.into())),
            other => Err(format!(
                "security.seccomp must be none, default, strict or the path of a JSON policy file (absolute, or ending in .json), not {other:?}"
            )),
        }
    }
}

impl Policy {
    /// The built-in deny-list.
    pub fn default_deny() -> Policy {
        Policy {
            default_action: Verdict::Allow,
            errno: eperm(),
            syscalls: vec![
                Rule {
                    names: DEFAULT_DENY.iter().map(|s| s.to_string()).collect(),
                    action: Verdict::Errno,
                    errno: None,
                },
                Rule {
                    names: DEFAULT_NOSYS.iter().map(|s| s.to_string()).collect(),
                    action: Verdict::Errno,
                    errno: Some(libc::ENOSYS as u32),
                },
            ],
        }
    }

    /// `default` plus [`STRICT_EXTRA`].
    pub fn strict() -> Policy {
        let mut p = Policy::default_deny();
        p.syscalls[0].names.extend(STRICT_EXTRA.iter().filter(|s| syscall_nr(s).is_some()).map(|s| s.to_string()));
        p
    }

    /// The policy a choice stands for; `None` for `none`.
    pub fn of(choice: &Choice) -> Result<Option<Policy>> {
        Ok(match choice {
            Choice::None => None,
            Choice::Default => Some(Policy::default_deny()),
            Choice::Strict => Some(Policy::strict()),
            Choice::File(p) => Some(Policy::load(p)?),
        })
    }

    /// Reads and checks a policy file (bounded, regular files only).
    pub fn load(path: &Path) -> Result<Policy> {
        let text = crate::fsutil::read_regular_bounded_to_string(path, MAX_POLICY_BYTES, "seccomp policy")?;
        Policy::parse(&text).with_context(|| format!("seccomp policy {}", path.display()))
    }

    /// [`Policy::load`] for the copy lxcprov keeps in its state (`STATE/seccomp/NAME/`): read
    /// as [`crate::fsutil::read_state`] reads state, a symlink refused too.
    pub fn load_state(path: &Path) -> Result<Policy> {
        let text = crate::fsutil::read_state_to_string(path, MAX_POLICY_BYTES, "seccomp policy")?
            .with_context(|| format!("seccomp policy {} is missing", path.display()))?;
        Policy::parse(&text).with_context(|| format!("seccomp policy {}", path.display()))
    }

    /// Parses and checks a policy: known names (x86_64), each named once, errnos in range.
    pub fn parse(text: &str) -> Result<Policy> {
        let p: Policy =
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("line {}, column {}: {e}", e.line(), e.column()))?;
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<()> {
        if matches!(self.default_action, Verdict::Log) && self.syscalls.iter().any(|r| r.action != Verdict::Allow) {
            bail!("a policy whose default_action is log may only list allowed system calls");
        }
        if self.errno == 0 || self.errno > MAX_ERRNO {
            bail!("errno must be 1..{MAX_ERRNO}, not {}", self.errno);
        }
        let mut seen = BTreeMap::new();
        for (i, r) in self.syscalls.iter().enumerate() {
            if r.names.is_empty() {
                bail!("syscalls[{i}]: names is empty");
            }
            match (r.action, r.errno) {
                (Verdict::Errno, Some(e)) if e == 0 || e > MAX_ERRNO => {
                    bail!("syscalls[{i}]: errno must be 1..{MAX_ERRNO}, not {e}")
                }
                (Verdict::Errno, _) | (_, None) => {}
                (a, Some(_)) => bail!("syscalls[{i}]: errno is only for action errno, not {a:?}"),
            }
            for n in &r.names {
                if syscall_nr(n).is_none() {
                    bail!("syscalls[{i}]: {n:?} is not an x86_64 system call");
                }
                if let Some(j) = seen.insert(n.clone(), i) {
                    bail!("syscalls[{i}]: {n} is already in syscalls[{j}]");
                }
            }
        }
        if !matches!(self.default_action, Verdict::Allow | Verdict::Log)
            && self.decide(syscall_nr("execve").unwrap()).0 != Verdict::Allow
        {
            bail!("an allow-list must allow execve: the shim execs the container's init under the filter");
        }
        Ok(())
    }

    /// What the policy does with a system call: the verdict and, for errno, the errno.
    pub fn decide(&self, nr: u32) -> (Verdict, u32) {
        for r in &self.syscalls {
            if r.names.iter().any(|n| syscall_nr(n) == Some(nr)) {
                return (r.action, r.errno.unwrap_or(self.errno));
            }
        }
        (self.default_action, self.errno)
    }

    /// The system calls an `errno` or `kill` verdict applies to, by number, for the probe.
    pub fn denies(&self, nr: u32) -> bool {
        matches!(self.decide(nr).0, Verdict::Errno | Verdict::Kill)
    }
}

/// The number of an x86_64 system call.
pub fn syscall_nr(name: &str) -> Option<u32> {
    table::X86_64.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

/// The name of an x86_64 system call number.
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    table::X86_64.iter().find(|(_, n)| *n == nr).map(|(name, _)| *name)
}

fn action(v: Verdict, errno: u32) -> SeccompAction {
    match v {
        Verdict::Allow => SeccompAction::Allow,
        Verdict::Errno => SeccompAction::Errno(errno),
        Verdict::Kill => SeccompAction::KillProcess,
        Verdict::Log => SeccompAction::Log,
    }
}

fn one(rules: BTreeMap<i64, Vec<SeccompRule>>, mismatch: SeccompAction, matched: SeccompAction) -> Result<BpfProgram> {
    let f = SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64).context("seccomp filter")?;
    BpfProgram::try_from(f).context("compiling the seccomp filter")
}

/// The x32 guard: x32 system calls share x86_64's audit arch with bit 30 set in the number,
/// so a deny-list keyed on numbers would miss them. They fail with ENOSYS.
fn x32_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    vec![
        sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        sock_filter { code: JGE_K, jt: 0, jf: 1, k: 0x4000_0000 },
        sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32 },
        sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
    ]
}

/// Compiles a policy into the programs the shim installs, in order. Stacked filters give
/// each call the most restrictive verdict of all, so: one program per non-allow action that
/// applies it to its calls (the default's program goes last: the shim installs the others
/// while seccomp() is still allowed). Every program checks the architecture first (seccompiler kills
/// any process making non-x86_64 calls, such as i386's `int 0x80`); the first also refuses
/// x32 calls. `umount2(MNT_FORCE)` is refused in deny-lists, as LXC does.
pub fn compile(p: &Policy) -> Result<Vec<BpfProgram>> {
    p.check()?;
    let mut progs = vec![x32_guard()];
    let mut groups: BTreeMap<(Verdict, u32), Vec<i64>> = BTreeMap::new();
    for r in &p.syscalls {
        if r.action == Verdict::Allow {
            continue;
        }
        let e = if r.action == Verdict::Errno { r.errno.unwrap_or(p.errno) } else { 0 };
        groups.entry((r.action, e)).or_default().extend(r.names.iter().map(|n| syscall_nr(n).unwrap() as i64));
    }
    if p.default_action == Verdict::Allow && !p.syscalls.iter().flat_map(|r| &r.names).any(|n| n == "umount2") {
        let force = SeccompCondition::new(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::MNT_FORCE as u64),
            libc::MNT_FORCE as u64,
        )
        .context("umount2 condition")?;
        let rules = BTreeMap::from([(libc::SYS_umount2, vec![SeccompRule::new(vec![force]).context("umount2 rule")?])]);
        progs.push(one(rules, SeccompAction::Allow, SeccompAction::Errno(p.errno))?);
    }
    for ((v, e), nrs) in groups {
        let rules = nrs.into_iter().map(|n| (n, vec![])).collect();
        progs.push(one(rules, SeccompAction::Allow, action(v, e))?);
    }
    // Last, so that the shim can still call seccomp() for the programs before it.
    if p.default_action != Verdict::Allow {
        let listed: BTreeMap<i64, Vec<SeccompRule>> =
            p.syscalls.iter().flat_map(|r| &r.names).map(|n| (syscall_nr(n).unwrap() as i64, vec![])).collect();
        progs.push(one(listed, action(p.default_action, p.errno), SeccompAction::Allow)?);
    }
    Ok(progs)
}

/// The `filter.bpf` format the shim reads: per program, a little-endian `u32` instruction
/// count, then the 8-byte instructions.
pub fn encode(progs: &[BpfProgram]) -> Vec<u8> {
    let mut out = vec![];
    for p in progs {
        out.extend((p.len() as u32).to_le_bytes());
        for i in p {
            out.extend(i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend(i.k.to_le_bytes());
        }
    }
    out
}

/// The programs of a `filter.bpf`, as raw instruction bytes (for counting and comparing).
pub fn decode(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut v = vec![];
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 4 {
            bail!("truncated filter file");
        }
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        if n == 0 || n > 4096 || rest.len() < n * 8 {
            bail!("bad program length {n}");
        }
        v.push(rest[..n * 8].to_vec());
        rest = &rest[n * 8..];
    }
    if v.is_empty() {
        bail!("empty filter file");
    }
    Ok(v)
}

/// A short description of a policy for plans and evidence.
pub fn describe(p: &Policy) -> String {
    let n: usize = p.syscalls.iter().map(|r| r.names.len()).sum();
    match p.default_action {
        Verdict::Allow => format!("deny-list of {n} system calls, everything else allowed"),
        Verdict::Log => format!("learning: {n} system calls allowed silently, every other logged"),
        d => format!("allow-list of {n} system calls, every other {}", verdict_word(d, p.errno)),
    }
}

pub fn verdict_word(v: Verdict, errno: u32) -> String {
    match v {
        Verdict::Allow => "allowed".into(),
        Verdict::Errno => format!("fails with errno {errno}"),
        Verdict::Kill => "kills the process".into(),
        Verdict::Log => "logged".into(),
    }
}

/// What `seccomp` expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SeccompExpect {
    /// No filter was asked for (`security.seccomp: none`, or a domain lxcprov did not make).
    #[default]
    Off,
    /// A filter was asked for but cannot be in force: the reason.
    Broken(String),
    /// The shim installs `programs` filters from `file` (`summary` describes the policy).
    Filters { file: std::path::PathBuf, programs: usize, summary: String },
}

#[cfg(test)]
mod tests;
