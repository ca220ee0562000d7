//! SELinux checks: `selinux.host`, `selinux.label`, `selinux.mcs_unique`,
//! `selinux.imagelabel`.
//!
//! The rule for `selinux.mcs_unique` ("who else can read this container?"): a process
//! outside the container *dominates* the container's level when the high end of its range
//! has the container's sensitivity and a superset of its categories; MCS's constraints then
//! let it read the container's files and signal its processes. The check FAILs when
//!
//! - a process outside the container runs at exactly the container's level, whatever its
//!   type (two containers share a pair, e.g. a repeated static label), or
//! - a process of a container or VM *workload* type ([`WORKLOAD_TYPES`]: `container_t`,
//!   `svirt_t`, ...) dominates the level: another sandbox can read this one.
//!
//! Every other dominating process is the trusted host: `init_t`, `virtd_t`, `virtd_lxc_t`,
//! `sshd_t`, an admin's `unconfined_t` shell and most system daemons run with a clearance of
//! `s0-s0:c0.c1023` by design. They are listed in the evidence, not failed. The container's
//! own level must have exactly two categories: fewer is shared with other containers, more
//! dominates other containers' pairs.

use super::procfs::read_trim;
use super::{Check, Ctx};
use crate::mcs::{split_context, Level};
use crate::profile::SecModel;
use std::path::Path;

/// Process types that run untrusted workloads (containers, sVirt VMs). Primary names only:
/// aliases go through [`canonical_type`] first.
pub(super) const WORKLOAD_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_userns_t",
    "container_logreader_t",
    "spc_t",
    "svirt_t",
    "svirt_tcg_t",
    "svirt_qemu_net_t",
    "svirt_kvm_net_t",
];

/// Types that mean "not confined": a container labelled with one of these is not sandboxed.
const UNCONFINED_TYPES: &[&str] =
    &["unconfined_t", "unconfined_service_t", "spc_t", "kernel_t", "init_t", "initrc_t", "virtd_t", "virtd_lxc_t"];

/// The file type of a container root with the shared `s0` level (from `lxc_contexts`).
const CONTAINER_FILE_TYPE: &str = "container_file_t";

/// The primary name of a type: the kernel prints `container_t` for libvirt's older
/// `svirt_lxc_net_t`, and `container_file_t` for `svirt_lxc_file_t`/`svirt_sandbox_file_t`.
pub(super) fn canonical_type(t: &str) -> &str {
    match t {
        "svirt_lxc_net_t" => "container_t",
        "svirt_lxc_file_t" | "svirt_sandbox_file_t" => CONTAINER_FILE_TYPE,
        other => other,
    }
}

/// A level in SELinux's compact form: runs of three or more categories as `cA.cB`
/// (`s0:c0.c1023`, not 1024 names), shorter runs listed (`s0:c1,c2`).
pub(super) fn fmt_level(level: &Level) -> String {
    level.canonical()
}

/// A parsed `user:role:type:level` context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Context {
    pub ty: String,
    pub low: Level,
    pub high: Level,
}

impl Context {
    pub fn parse(ctx: &str) -> Result<Context, String> {
        let (ty, level) = split_context(ctx).ok_or_else(|| format!("{ctx:?} is not user:role:type:level"))?;
        let (low, high) = Level::parse_range(level).map_err(|e| format!("{ctx:?}: {e}"))?;
        Ok(Context { ty: canonical_type(ty).to_string(), low, high })
    }

    /// `s0:c1,c2` or `s0-s0:c0,...` for messages.
    fn range(&self) -> String {
        if self.low == self.high {
            fmt_level(&self.low)
        } else {
            format!("{}-{}", fmt_level(&self.low), fmt_level(&self.high))
        }
    }
}

/// The domain's live SELinux process label, or why there is none.
fn domain_label(cx: &Ctx) -> Result<(String, Context), String> {
    let sec =
        cx.facts.domain.seclabel.as_ref().ok_or("the domain has no <seclabel>: it runs without an SELinux label")?;
    if sec.model != "selinux" || sec.kind == "none" {
        return Err(format!(
            "the domain's seclabel is model {:?} type {:?}, not an SELinux label",
            sec.model, sec.kind
        ));
    }
    let raw = sec.label.as_deref().ok_or("the live XML has no <label> (is the container running?)")?;
    Ok((raw.to_string(), Context::parse(raw)?))
}

/// Why a level is not a proper sVirt pair, if it is not.
fn pair_problem(level: &Level) -> Option<String> {
    let (n, level) = (level.categories.len(), fmt_level(level));
    match n {
        2 => None,
        0 => Some(format!("level {level} has no categories: every s0 process shares it")),
        1 => Some(format!("level {level} has a single category: it is not a unique sVirt pair")),
        n => Some(format!("level {level} has {n} categories: it dominates other containers' pairs")),
    }
}

/// `selinux.host`: SELinux enforcing, MCS on, the policy has `lxc_contexts`, libvirt's
/// security driver is selinux.
pub(super) fn host(cx: &Ctx) -> Check {
    const ID: &str = "selinux.host";
    if let Some(c) = cx.skip_unless(ID, SecModel::Selinux) {
        return c;
    }
    let (mut ev, mut bad) = (Vec::new(), Vec::new());
    match cx.labels.enforcing() {
        Some(true) => ev.push("SELinux mode: enforcing".into()),
        Some(false) => {
            ev.push("SELinux mode: permissive".into());
            bad.push("SELinux is permissive: denials are logged, not enforced".into());
        }
        None => {
            ev.push("SELinux mode: not running".into());
            bad.push("SELinux is not running".into());
        }
    }
    check_mls(&cx.host.sys().join("fs/selinux/mls"), &mut ev, &mut bad);
    let policy = check_lxc_contexts(&cx.host.etc().join("selinux"), &mut ev, &mut bad);
    match cx.expect.secmodel.as_deref() {
        Some("selinux") => ev.push("libvirt secmodel: selinux".into()),
        Some(m) => {
            ev.push(format!("libvirt secmodel: {m}"));
            bad.push(format!("libvirt's security driver is {m:?}, not selinux"));
        }
        None => bad.push("libvirt's security model is unknown".into()),
    }
    let ok = format!(
        "SELinux enforcing with MCS, policy {} has lxc_contexts, libvirt uses the selinux driver",
        policy.unwrap_or_default()
    );
    Check::verdict(ID, bad, ok, ev)
}

/// MCS/MLS is on when selinuxfs's `mls` reads `1`.
fn check_mls(path: &Path, ev: &mut Vec<String>, bad: &mut Vec<String>) {
    match read_trim(path) {
        Ok(v) => {
            ev.push(format!("{}: {v}", path.display()));
            if v != "1" {
                bad.push(format!("MCS is off ({} = {v}): containers get no categories", path.display()));
            }
        }
        Err(e) => {
            ev.push(e);
            bad.push(format!("cannot read {}: is selinuxfs mounted?", path.display()));
        }
    }
}

/// Finds `SELINUXTYPE` in `{etc_selinux}/config` and checks its `contexts/lxc_contexts`.
/// Returns the policy name when found.
fn check_lxc_contexts(etc_selinux: &Path, ev: &mut Vec<String>, bad: &mut Vec<String>) -> Option<String> {
    let config = etc_selinux.join("config");
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) => {
            bad.push(format!("cannot read {}: {e}", config.display()));
            return None;
        }
    };
    let Some(policy) = crate::host::parse_selinux_type(&text) else {
        bad.push(format!("{} sets no valid SELINUXTYPE", config.display()));
        return None;
    };
    ev.push(format!("{}: SELINUXTYPE={policy}", config.display()));
    let lxc = etc_selinux.join(&policy).join("contexts/lxc_contexts");
    if lxc.is_file() {
        ev.push(format!("{}: present", lxc.display()));
    } else {
        ev.push(format!("{}: missing", lxc.display()));
        bad.push(format!("policy {policy} has no lxc_contexts: libvirt cannot label containers"));
    }
    Some(policy)
}

/// `selinux.label`: every process of the container carries the domain's live label.
pub(super) fn label(cx: &Ctx) -> Check {
    const ID: &str = "selinux.label";
    if let Some(c) = cx.skip_unless(ID, SecModel::Selinux) {
        return c;
    }
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (raw, dom) = match domain_label(cx) {
        Ok(d) => d,
        Err(why) => return Check::fail(ID, why, vec![]),
    };
    let mut ev = vec![format!("domain label (live XML): {raw}")];
    let mut bad = Vec::new();
    if UNCONFINED_TYPES.contains(&dom.ty.as_str()) {
        bad.push(format!("the domain's type {} is not confined", dom.ty));
    }
    bad.extend(pair_problem(&dom.low).map(|p| format!("the domain's {p}")));
    for pid in &cx.members {
        check_member(cx, *pid, init, &dom, &mut ev, &mut bad);
    }
    let ok = format!("{} process(es) run as {} at {}", cx.members.len(), dom.ty, dom.range());
    Check::verdict(ID, bad, ok, ev)
}

/// One container process against the domain's label.
fn check_member(cx: &Ctx, pid: u32, init: u32, dom: &Context, ev: &mut Vec<String>, bad: &mut Vec<String>) {
    let comm = cx.procs.comm(pid);
    let who = if pid == init { format!("pid {pid} ({comm}, init)") } else { format!("pid {pid} ({comm})") };
    let Some(label) = cx.labels.process_label(pid) else {
        // A process that exited since the table was read is not a finding.
        if cx.host.proc().join(pid.to_string()).exists() {
            ev.push(format!("{who}: no label readable"));
            bad.push(format!("{who} has no readable label"));
        }
        return;
    };
    ev.push(format!("{who}: {label}"));
    match Context::parse(&label) {
        Err(e) => bad.push(format!("{who}: {e}")),
        Ok(p) if p.ty != dom.ty => bad.push(format!("{who} runs as {}, not {}", p.ty, dom.ty)),
        Ok(p) if (&p.low, &p.high) != (&dom.low, &dom.high) => {
            bad.push(format!("{who} runs at {}, not {}", p.range(), dom.range()))
        }
        Ok(_) => {}
    }
}

/// `selinux.mcs_unique`: no other container shares or dominates this container's level.
pub(super) fn mcs_unique(cx: &Ctx) -> Check {
    const ID: &str = "selinux.mcs_unique";
    if let Some(c) = cx.skip_unless(ID, SecModel::Selinux) {
        return c;
    }
    if let Err(c) = cx.running(ID) {
        return c;
    }
    let (raw, dom) = match domain_label(cx) {
        Ok(d) => d,
        Err(why) => return Check::fail(ID, why, vec![]),
    };
    let mut ev = vec![format!("domain label (live XML): {raw}")];
    if let Some(p) = pair_problem(&dom.low) {
        return Check::fail(ID, format!("the container's {p}"), ev);
    }
    let mut bad = Vec::new();
    let (mut checked, mut unlabelled, mut trusted) = (0usize, 0usize, 0usize);
    for pid in cx.procs.procs.keys().filter(|p| !cx.members.contains(p)) {
        let Some(label) = cx.labels.process_label(*pid) else {
            unlabelled += 1;
            continue;
        };
        checked += 1;
        let who = format!("pid {pid} ({})", cx.procs.comm(*pid));
        match Context::parse(&label) {
            Err(e) => ev.push(format!("{who}: unparsable label: {e}")),
            Ok(p) => match collision(&p, &dom.low) {
                Collision::None => {}
                Collision::Trusted => {
                    trusted += 1;
                    ev.push(format!("{who} {label}: dominates {} (trusted host type, allowed)", fmt_level(&dom.low)));
                }
                Collision::Bad(why) => {
                    ev.push(format!("{who} {label}: {why}"));
                    bad.push(format!("{who} {why}"));
                }
            },
        }
    }
    ev.push(format!("{checked} other process(es) checked, {unlabelled} without a readable label"));
    let ok = format!(
        "no other container shares or dominates {} ({checked} host processes checked; {trusted} trusted host process(es) dominate it)",
        fmt_level(&dom.low)
    );
    Check::verdict(ID, bad, ok, ev)
}

/// How another process relates to the container's level.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Collision {
    /// It cannot read the container.
    None,
    /// It dominates the level but is a trusted host type.
    Trusted,
    /// It shares or dominates the level and is not trusted: why.
    Bad(String),
}

/// The documented rule (module doc): same level → bad; dominated by a workload type → bad;
/// dominated by anything else → trusted.
pub(super) fn collision(other: &Context, level: &Level) -> Collision {
    let shown = fmt_level(level);
    if other.low == *level {
        return Collision::Bad(format!("runs at the same level {shown} as {}", other.ty));
    }
    if !other.high.dominates(level) {
        return Collision::None;
    }
    if WORKLOAD_TYPES.contains(&other.ty.as_str()) {
        return Collision::Bad(format!(
            "is a {} workload at {} that dominates {shown}: it can read this container",
            other.ty,
            other.range()
        ));
    }
    Collision::Trusted
}

/// `selinux.imagelabel`: the rootfs label against the live `<imagelabel>`.
///
/// PASS when the rootfs has the image label's type (or `container_file_t`) and either the
/// container's own level (private files) or the shared `s0` (every container can read the
/// files: libvirt does not relabel an LXC rootfs, and `lxc_contexts` gives
/// `container_file_t:s0`). FAIL for any other type or level: a host type such as `var_t`
/// cannot be used in enforcing mode, and other categories mean another container's files
/// or an unreadable root.
pub(super) fn imagelabel(cx: &Ctx) -> Check {
    const ID: &str = "selinux.imagelabel";
    if let Some(c) = cx.skip_unless(ID, SecModel::Selinux) {
        return c;
    }
    let want = match wanted_image(cx) {
        Ok(w) => w,
        Err(why) => return Check::fail(ID, why, vec![]),
    };
    let rootfs = &cx.facts.domain.rootfs.clone().unwrap_or_default();
    let mut ev = vec![format!("expected image label (live XML): {}", want.0)];
    let Some(label) = cx.labels.file_label(rootfs) else {
        return Check::fail(ID, format!("the rootfs {} has no readable SELinux label", rootfs.display()), ev);
    };
    ev.push(format!("{}: {label}", rootfs.display()));
    match Context::parse(&label) {
        Err(e) => Check::fail(ID, format!("the rootfs label: {e}"), ev),
        Ok(file) => image_verdict(&file, &want.1, ev),
    }
}

/// The label the rootfs should have: `<imagelabel>`, else the process label's level with
/// `container_file_t`. Returns (text for evidence, parsed).
fn wanted_image(cx: &Ctx) -> Result<(String, Context), String> {
    let sec = cx.facts.domain.seclabel.as_ref().ok_or("the domain has no <seclabel>: nothing labels its files")?;
    if sec.model != "selinux" || sec.kind == "none" {
        return Err(format!(
            "the domain's seclabel is model {:?} type {:?}, not an SELinux label",
            sec.model, sec.kind
        ));
    }
    if let Some(img) = &sec.imagelabel {
        return Ok((img.clone(), Context::parse(img)?));
    }
    let (raw, dom) = domain_label(cx)?;
    let img = Context { ty: CONTAINER_FILE_TYPE.into(), low: dom.low.clone(), high: dom.low };
    Ok((format!("no <imagelabel>: {CONTAINER_FILE_TYPE} at the level of {raw}"), img))
}

/// The rule in [`imagelabel`]'s doc.
fn image_verdict(file: &Context, want: &Context, ev: Vec<String>) -> Check {
    const ID: &str = "selinux.imagelabel";
    if file.ty != want.ty && file.ty != CONTAINER_FILE_TYPE {
        return Check::fail(
            ID,
            format!("the rootfs type is {}, not {} or {CONTAINER_FILE_TYPE}: the container would use host-labelled files (or cannot start in enforcing mode)", file.ty, want.ty),
            ev,
        );
    }
    if file.low == want.low {
        return Check::pass(
            ID,
            format!("rootfs is {}:{}: private to this container's categories", file.ty, fmt_level(&file.low)),
            ev,
        );
    }
    if file.low.categories.is_empty() {
        return Check::pass(
            ID,
            format!("rootfs is {}:{} (shared s0): every container can read these files; libvirt does not relabel an LXC rootfs, relabel it with {} for per-container file isolation", file.ty, fmt_level(&file.low), fmt_level(&want.low)),
            ev,
        );
    }
    Check::fail(
        ID,
        format!("the rootfs level {} is neither this container's {} nor the shared s0: another container's categories, or a root this container cannot read", fmt_level(&file.low), fmt_level(&want.low)),
        ev,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(s: &str) -> Context {
        Context::parse(s).unwrap()
    }

    #[test]
    fn aliases_are_canonical() {
        assert_eq!(ctx("system_u:system_r:svirt_lxc_net_t:s0:c1,c2").ty, "container_t");
        assert_eq!(ctx("system_u:object_r:svirt_sandbox_file_t:s0").ty, "container_file_t");
        assert!(Context::parse("container_t:s0").is_err());
    }

    #[test]
    fn collision_rule() {
        let lvl = Level::parse("s0:c1,c2").unwrap();
        assert_eq!(collision(&ctx("u:r:sshd_t:s0-s0:c0.c1023"), &lvl), Collision::Trusted);
        assert_eq!(collision(&ctx("u:r:container_t:s0:c1,c3"), &lvl), Collision::None);
        assert_eq!(collision(&ctx("u:r:container_t:s0:c1"), &lvl), Collision::None);
        assert!(matches!(collision(&ctx("u:r:container_t:s0:c0.c1023"), &lvl), Collision::Bad(_)));
        assert!(matches!(collision(&ctx("u:r:svirt_t:s0:c1,c2,c3"), &lvl), Collision::Bad(_)));
        // The same pair is a collision whatever the type.
        assert!(matches!(collision(&ctx("u:r:httpd_t:s0:c1,c2"), &lvl), Collision::Bad(_)));
    }

    #[test]
    fn selinuxtype_from_config() {
        assert_eq!(
            crate::host::parse_selinux_type("# c\nSELINUX=enforcing\nSELINUXTYPE=default\n").as_deref(),
            Some("default")
        );
        assert_eq!(crate::host::parse_selinux_type("SELINUXTYPE = \"targeted\"\n").as_deref(), Some("targeted"));
        assert_eq!(crate::host::parse_selinux_type("#SELINUXTYPE=x\n"), None);
        assert_eq!(crate::host::parse_selinux_type("SELINUXTYPE=../../tmp\n"), None);
        assert_eq!(crate::host::parse_selinux_type("SELINUXTYPE=..\n"), None);
    }

    #[test]
    fn compact_levels() {
        let f = |s: &str| fmt_level(&Level::parse(s).unwrap());
        assert_eq!(f("s0:c0.c1023"), "s0:c0.c1023");
        assert_eq!(f("s0:c1,c2"), "s0:c1,c2");
        assert_eq!(f("s0:c1,c2,c3,c7,c9,c10"), "s0:c1.c3,c7,c9,c10");
        assert_eq!(f("s0"), "s0");
    }

    #[test]
    fn pairs() {
        assert!(pair_problem(&Level::parse("s0:c1,c2").unwrap()).is_none());
        assert!(pair_problem(&Level::parse("s0:c1").unwrap()).unwrap().contains("single category"));
        assert!(pair_problem(&Level::parse("s0").unwrap()).unwrap().contains("no categories"));
        assert!(pair_problem(&Level::parse("s0:c1.c3").unwrap()).unwrap().contains("3 categories"));
    }
}
