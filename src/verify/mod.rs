//! Post-boot verification: is the running container isolated the way its profile says?
//!
//! Every check is pure logic over a host root directory ([`HostRoot`], `/` in production, a
//! tempdir in tests) plus the domain's live state ([`DomainFacts`]) and what the profile
//! expects ([`Expect`]). Nothing is written. On the host it reads:
//!
//! - `{root}/proc`: every process's `stat` (the process tree), and for the container's init
//!   `status` (`NSpid`, `CapBnd`), `uid_map`, `gid_map`, `cgroup` and the `ns/{pid,net,user}`
//!   links, compared with PID 1's;
//! - `{root}/sys`: `class/net/<dev>/{operstate,master}`, the cgroup files under `fs/cgroup`,
//!   `fs/selinux/mls` and `module/apparmor/parameters/enabled`;
//! - `{root}/etc/selinux/config` and the policy's `contexts/lxc_contexts`;
//! - process and file labels through a [`LabelSource`] ([`ProcLabels`] in production:
//!   `/proc/PID/attr/current` and `getfilecon`).
//!
//! Root is needed only for the real `/proc` of other users' processes: the `ns/*` links of
//! the container's processes (ptrace access) and the labels of every process. Without it
//! those reads fail, and the checks say so in their evidence rather than passing.
//!
//! Checks, by stable id: `selinux.host`, `selinux.label`, `selinux.mcs_unique`,
//! `selinux.imagelabel`, `apparmor.label`, `net.vnet`, `pidns`, `userns`, `caps`, `cgroup`,
//! `seccomp`, `trust`. Each is PASS, FAIL or SKIP with a one-line summary and evidence (the paths and
//! values read).

mod apparmor;
mod caps;
mod cgroup;
mod disk;
mod labels;
mod net;
mod ns;
pub(crate) mod procfs;
mod procviews;
mod render;
mod seccomp;
mod selinux;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

pub use crate::host::HostRoot;
pub use crate::seccomp::SeccompExpect;
pub use caps::{cap_bit, CAP_NAMES};
pub use labels::ProcLabels;
pub use render::{render_human, render_jsonl};

use crate::profile::{Idmap, SecModel};
use procfs::ProcTable;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// What libvirt's live state says about the running domain: its live XML (one description,
/// [`DomainXml`]), the init's PID from `/run/libvirt/lxc/NAME.xml`, and the bridge each
/// interface's device must be enslaved to (from its network).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainFacts {
    pub domain: DomainXml,
    /// Host PID of the container's init (`<init pid=.../>`), not the controller's PID.
    pub init_pid: Option<u32>,
    /// One per `<interface>` of the domain, with the bridge it must be on.
    pub interfaces: Vec<Iface>,
}

pub use crate::facts::{DomainXml, SecLabel};

/// One live `<interface>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iface {
    /// The host-side device (`<target dev='vnet0'/>`).
    pub target_dev: Option<String>,
    /// The bridge the device must be enslaved to; `None`: not checked.
    pub expected_bridge: Option<String>,
}

/// What the profile and lxcprov's bootstrap record expect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// `None` skips the SELinux and AppArmor checks ("unconfined test container"); with
    /// `Selinux` the AppArmor check is skipped and vice versa; a missing MAC fails.
    pub security: SecModel,
    /// libvirt names (`sys_admin`) that must be absent from the init's bounding set.
    pub dropped_caps: Vec<String>,
    /// The profile's idmap; `None` skips `userns`.
    pub idmap: Option<Idmap>,
    /// The idmap is the container's own isolated range: another user namespace on the
    /// host that maps any of its host ids fails `userns`.
    pub idmap_isolated: bool,
    /// From the bootstrap record; `None`: not bootstrapped by lxcprov (`trust` skips).
    pub gpgcheck: Option<bool>,
    /// libvirt capabilities' `<secmodel><model>` (`none`, `selinux`, `apparmor`).
    pub secmodel: Option<String>,
    /// Judged against the paper's baseline (a domain lxcprov did not create): no user
    /// namespace is a FAIL, not a SKIP, and nothing is excused as a test container.
    pub baseline: bool,
    /// From the bootstrap record: how many packages the guest's own tool listed.
    pub packages: Option<usize>,
    /// The seccomp filter the container's processes must run under.
    pub seccomp: SeccompExpect,
}

/// Reads MAC labels. Production: [`ProcLabels`]; tests: a fake map.
pub trait LabelSource {
    /// The label of a process (`/proc/PID/attr/current`), `None` when unreadable.
    fn process_label(&self, pid: u32) -> Option<String>;
    /// The SELinux label of a host path, `None` when unreadable or unlabelled.
    fn file_label(&self, path: &Path) -> Option<String>;
    /// `Some(true)` enforcing, `Some(false)` permissive, `None` SELinux not running.
    fn enforcing(&self) -> Option<bool>;
}

/// A check's outcome; serialised as `"pass"`, `"fail"`, `"skip"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable id, e.g. `selinux.mcs_unique`.
    pub id: &'static str,
    pub status: Status,
    /// One line: why it passed, failed or was skipped.
    pub summary: String,
    /// What was read: paths and values, one item each.
    pub evidence: Vec<String>,
}

/// At most this many problems are joined into a failing summary; the rest go to evidence.
const SUMMARY_PROBLEMS: usize = 3;

impl Check {
    /// A passing check.
    pub fn pass(id: &'static str, summary: impl Into<String>, evidence: Vec<String>) -> Check {
        Check { id, status: Status::Pass, summary: summary.into(), evidence }
    }

    /// A failing check.
    pub fn fail(id: &'static str, summary: impl Into<String>, evidence: Vec<String>) -> Check {
        Check { id, status: Status::Fail, summary: summary.into(), evidence }
    }

    /// A skipped check.
    pub fn skip(id: &'static str, summary: impl Into<String>, evidence: Vec<String>) -> Check {
        Check { id, status: Status::Skip, summary: summary.into(), evidence }
    }

    /// [`Check::verdict`] for checks made outside this module (the seccomp probe).
    pub fn verdict_pub(id: &'static str, problems: Vec<String>, ok: String, evidence: Vec<String>) -> Check {
        Check::verdict(id, problems, ok, evidence)
    }

    /// PASS with `ok` when `problems` is empty, else FAIL listing them (the first few in
    /// the summary, the rest appended to the evidence).
    fn verdict(id: &'static str, problems: Vec<String>, ok: String, mut evidence: Vec<String>) -> Check {
        if problems.is_empty() {
            return Check::pass(id, ok, evidence);
        }
        let shown = problems.len().min(SUMMARY_PROBLEMS);
        let mut summary = problems[..shown].join("; ");
        if problems.len() > shown {
            summary.push_str(&format!(" (+{} more in the evidence)", problems.len() - shown));
            evidence.extend(problems[shown..].iter().map(|p| format!("also: {p}")));
        }
        Check::fail(id, summary, evidence)
    }
}

/// The checks for one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub name: String,
    pub checks: Vec<Check>,
    /// How the domain was judged, when that is not lxcprov's own record (a domain lxcprov
    /// did not create, or `--expect PROFILE`).
    pub note: Option<String>,
}

impl Report {
    /// Did any check fail?
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.checks.iter().filter(|c| c.status == s).count();
        (n(Status::Pass), n(Status::Fail), n(Status::Skip))
    }
}

/// Runs every check, in a stable order.
pub fn run_all(host: &HostRoot, facts: &DomainFacts, expect: &Expect, labels: &dyn LabelSource) -> Vec<Check> {
    let cx = Ctx::new(host, facts, expect, labels);
    vec![
        selinux::host(&cx),
        selinux::label(&cx),
        selinux::mcs_unique(&cx),
        selinux::imagelabel(&cx),
        apparmor::label(&cx),
        net::vnet(&cx),
        ns::pidns(&cx),
        ns::userns(&cx),
        caps::caps(&cx),
        cgroup::cgroup(&cx),
        procviews::proc_views(&cx),
        disk::disk(&cx),
        seccomp::seccomp(&cx),
        trust(&cx),
    ]
}

/// Runs every check and wraps them in a [`Report`] named after the domain.
pub fn verify(host: &HostRoot, facts: &DomainFacts, expect: &Expect, labels: &dyn LabelSource) -> Report {
    Report { name: facts.domain.name.clone(), checks: run_all(host, facts, expect, labels), note: None }
}

/// Everything a check may look at, with the process table read once.
struct Ctx<'a> {
    host: &'a HostRoot,
    facts: &'a DomainFacts,
    expect: &'a Expect,
    labels: &'a dyn LabelSource,
    /// The init's host PID, or why the container counts as not running.
    init: Result<u32, String>,
    /// Every process on the host (empty when not running).
    procs: ProcTable,
    /// The container's processes: the init, its descendants, and any process in the
    /// init's pid namespace (when that differs from the host's).
    members: BTreeSet<u32>,
}

impl<'a> Ctx<'a> {
    fn new(host: &'a HostRoot, facts: &'a DomainFacts, expect: &'a Expect, labels: &'a dyn LabelSource) -> Ctx<'a> {
        let proc = host.proc();
        let init = match facts.init_pid {
            None => Err("libvirt reports no init PID".to_string()),
            Some(pid) if !proc.join(pid.to_string()).join("stat").exists() => {
                Err(format!("init PID {pid} is not in {}", proc.display()))
            }
            Some(pid) => Ok(pid),
        };
        let (procs, members) = match init {
            Ok(pid) => {
                let procs = ProcTable::read(&proc);
                let members = procs.container_members(&proc, pid);
                (procs, members)
            }
            Err(_) => (ProcTable::default(), BTreeSet::new()),
        };
        Ctx { host, facts, expect, labels, init, procs, members }
    }

    /// The init's PID, or the FAIL every process-based check reports when it is missing.
    fn running(&self, id: &'static str) -> Result<u32, Check> {
        self.init.clone().map_err(|why| Check::fail(id, "the container is not running", vec![why]))
    }

    /// SKIP unless the profile's security model is `want`.
    fn skip_unless(&self, id: &'static str, want: SecModel) -> Option<Check> {
        match self.expect.security {
            m if m == want => None,
            SecModel::None => Some(Check::skip(id, "security none: unconfined test container", vec![])),
            other => Some(Check::skip(
                id,
                format!("security {}: the {} checks do not apply", other.as_str(), want.as_str()),
                vec![],
            )),
        }
    }
}

/// `trust`: were the packages installed with signature checking?
fn trust(cx: &Ctx) -> Check {
    const ID: &str = "trust";
    match cx.expect.gpgcheck {
        None if cx.expect.baseline => {
            Check::skip(ID, "not created by lxcprov: where its packages came from is unknown", vec![])
        }
        None => Check::skip(ID, "no record: not bootstrapped by lxcprov", vec![]),
        Some(true) => {
            let mut ev = vec!["bootstrap record: trust.gpgcheck = true".into()];
            match cx.expect.packages {
                Some(n) => ev.push(format!("the guest's own package tool listed {n} packages at bootstrap")),
                None => ev.push("no count of the guest's own package tool was recorded".into()),
            }
            let summary = match cx.expect.packages {
                Some(n) => format!("packages were installed with signature checking; the guest's own tool reads all {n}"),
                None => "packages were installed with signature checking".into(),
            };
            Check::pass(ID, summary, ev)
        }
        Some(false) => Check::fail(
            ID,
            "packages were installed WITHOUT signature checking (trust.gpgcheck: false): the root filesystem cannot be trusted",
            vec!["bootstrap record: trust.gpgcheck = false".into()],
        ),
    }
}
