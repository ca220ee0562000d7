//! Profile validation: what serde cannot check (ranges, names, labels, trust, text).
//!
//! Every problem is a [`Finding`] naming the key it is about (`security.idmap.uid.count`,
//! `packages[2]`), so that [`located`] can report it at the key's `file:line:column`.

use super::{CapPolicy, CapState, LabelType, NetMode, Profile, SecModel, CAPABILITIES};
use crate::distro::{Distro, InstallerKind};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// One problem (or warning) with the key path it is about: dotted keys and `[index]`
/// for list items, e.g. `repos[0].gpgkeys[1]`. The message may quote hostile profile text:
/// [`located`] and [`Profile::validate`] pass it through [`crate::text::for_terminal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What [`Profile::check`] found: errors refuse the profile, warnings are shown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// At most this many findings are located and listed (each location is one more parse).
pub const MAX_LISTED: usize = 50;

/// Prefixes each finding with `ORIGIN:LINE:COLUMN` of its key in `text` (the nearest
/// enclosing key that is written there, else `ORIGIN` alone), in document order. Beyond
/// [`MAX_LISTED`] findings, one last line says how many more there are.
pub fn located(findings: &[Finding], text: &str, origin: &str) -> Vec<String> {
    let mut out: Vec<(Option<(usize, usize)>, String)> = findings
        .iter()
        .take(MAX_LISTED)
        .map(|f| {
            let at = super::locate(text, &f.key);
            let m = crate::text::for_terminal(&f.message);
            let msg = match at {
                Some((line, col)) => format!("{origin}:{line}:{col}: {m}"),
                None => format!("{origin}: {m}"),
            };
            (at, msg)
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    let mut out: Vec<String> = out.into_iter().map(|(_, m)| m).collect();
    if findings.len() > MAX_LISTED {
        out.push(format!("{origin}: ... and {} more", findings.len() - MAX_LISTED));
    }
    out
}

use super::values::valid_object_name;

/// Where the host's accounts are listed (`passwd`, `group`, `login.defs`), for fixed id maps.
const HOST_ETC: &str = "/etc";
pub use super::values::{mirror_trust, package_problem, valid_hostname, valid_package, valid_static_label, valid_url};

/// Collects findings, skipping a second error about a key that already has one.
#[derive(Default)]
struct Collector {
    f: Findings,
    bad: BTreeSet<String>,
}

impl Collector {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        if self.bad.insert(key.clone()) {
            self.f.errors.push(Finding { key, message: message.into() });
        }
    }

    fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.f.warnings.push(Finding { key: key.into(), message: message.into() });
    }
}

/// Walks every string (values and map keys) of `v`, with its key path.
fn walk_strings(v: &serde_json::Value, path: &str, f: &mut dyn FnMut(&str, &str)) {
    let child = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        serde_json::Value::String(s) => f(path, s),
        serde_json::Value::Array(a) => {
            a.iter().enumerate().for_each(|(i, x)| walk_strings(x, &format!("{path}[{i}]"), f))
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                f(&child(k), k);
                walk_strings(x, &child(k), f);
            }
        }
        _ => {}
    }
}

/// Describes `c` for a message: `U+FFFE`.
fn code(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

impl Profile {
    /// Checks values serde cannot: ranges, names, labels, trust, and that every string is
    /// text XML and a terminal can carry. Returns errors and warnings with their keys.
    pub fn check(&self) -> Findings {
        let mut c = Collector::default();
        self.check_text(&mut c);
        let distro = match crate::distro::lookup(&self.distro) {
            Ok(d) => Some(d),
            Err(e) => {
                c.error("distro", format!("{e:#}"));
                None
            }
        };
        self.check_packages(&mut c, distro.as_ref());
        self.check_sources(&mut c, distro.as_ref());
        self.check_resources(&mut c);
        self.check_network(&mut c);
        self.check_security(&mut c);
        self.check_guest(&mut c);
        c.f
    }

    /// Validates: `Err` holds every problem, one per line (without locations: see
    /// [`super::check_located`]); `Ok` holds the warnings to print.
    pub fn validate(&self) -> anyhow::Result<Vec<String>> {
        let f = self.check();
        if !f.errors.is_empty() {
            let lines: Vec<String> =
                f.errors.iter().map(|e| crate::text::for_terminal(&e.message).into_owned()).collect();
            anyhow::bail!("{}", lines.join("\n"));
        }
        Ok(f.warnings.iter().map(|w| crate::text::for_terminal(&w.message).into_owned()).collect())
    }

    /// Every string reaching domain XML, metadata or a listing must be XML text without
    /// controls, non-characters or bidi overrides; checked generically over every field.
    fn check_text(&self, c: &mut Collector) {
        let v = match serde_json::to_value(self) {
            Ok(v) => v,
            Err(e) => return c.error("", format!("profile cannot be checked: {e}")),
        };
        walk_strings(&v, "", &mut |key, s| {
            if let Some((i, ch, why)) = crate::text::first_unsafe(s) {
                // Tabs and newlines are text (a description, init.args may hold them); the
                // fields that must not have them get their own rules below.
                c.error(key, format!("{key}: character {} at position {} {why}", code(ch), i + 1));
            }
        });
        if self.description.len() > 4096 {
            c.error("description", "description is longer than 4096 characters");
        }
    }

    fn check_packages(&self, c: &mut Collector, distro: Option<&Distro>) {
        let lists = [("packages", Some(&self.packages)), ("base_packages", self.base_packages.as_ref())];
        for (what, list) in lists {
            for (i, p) in list.into_iter().flatten().enumerate() {
                if let Some(why) = package_problem(p) {
                    c.error(format!("{what}[{i}]"), format!("package {p:?} is not a valid package name: it {why}"));
                }
            }
        }
        if let Some(d) = distro {
            for (i, set) in self.package_sets.iter().enumerate() {
                if !d.package_sets.contains_key(set) {
                    let known: Vec<&String> = d.package_sets.keys().collect();
                    c.error(
                        format!("package_sets[{i}]"),
                        format!("package set {set:?} is not known for distro {}: known sets are {known:?}", d.name),
                    );
                }
            }
            if let Some(r) = &self.release {
                if let Err(e) = d.check_release(r) {
                    c.error("release", e);
                }
            }
        } else if let Some(r) = &self.release {
            // No catalog entry to ask: still never a path or URL fragment.
            if r.is_empty()
                || r.len() > 32
                || !r.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.')
                || r.contains("..")
            {
                c.error("release", format!("release {r:?} is not a release (letters, digits and dots)"));
            }
        }
    }

    /// Mirrors, repositories and keys: well-formed URLs; keys never over plain http; plain
    /// http repositories only with signature checking, and then with a warning.
    fn check_sources(&self, c: &mut Collector, distro: Option<&Distro>) {
        let gpg = self.trust.gpgcheck;
        let rpm = distro.is_some_and(|d| d.installer != InstallerKind::Debootstrap);
        let http = |u: &str| u.starts_with("http://");
        if let Some(m) = &self.mirror {
            match mirror_trust(m, gpg, rpm) {
                Err(e) => c.error("mirror", e),
                Ok(Some(w)) => c.warn("mirror", w),
                Ok(None) => {}
            }
        }
        let mut ids = BTreeSet::new();
        for (i, r) in self.repos.iter().flatten().enumerate() {
            if !valid_object_name(&r.id) {
                c.error(
                    format!("repos[{i}].id"),
                    format!("repository id {:?} must be letters, digits, '-', '_' or '.'", r.id),
                );
            } else if !ids.insert(r.id.as_str()) {
                c.error(format!("repos[{i}].id"), format!("repository id {:?} is given twice", r.id));
            }
            let key = format!("repos[{i}].url");
            if !valid_url(&r.url) {
                c.error(key, format!("repository {:?}: {:?} is not an http://, https:// or file:/// URL", r.id, r.url));
            } else if http(&r.url) && !gpg {
                c.error(
                    key,
                    format!(
                        "repository {:?}: {:?} is plain http and trust.gpgcheck is off: use https:// or file://",
                        r.id, r.url
                    ),
                );
            } else if http(&r.url) {
                c.warn(
                    key,
                    format!("WARNING: repository {:?}: {:?} is plain http: packages are signature-checked, but its metadata is not; prefer https://", r.id, r.url),
                );
            }
            for (j, k) in r.gpgkeys.iter().enumerate() {
                let key = format!("repos[{i}].gpgkeys[{j}]");
                if !valid_url(k) {
                    c.error(key, format!("repository {:?}: {k:?} is not an https:// or file:/// URL", r.id));
                } else if http(k) {
                    c.error(
                        key,
                        format!("repository {:?}: signing key {k:?} is fetched over plain http: anyone on the path could replace it; use https:// or file:///", r.id),
                    );
                }
            }
            for (j, f) in r.fingerprints.iter().enumerate() {
                if crate::distro::normalise_fingerprint(f).is_none() {
                    c.error(
                        format!("repos[{i}].fingerprints[{j}]"),
                        format!("repository {:?}: {f:?} is not a key fingerprint (40 hex digits)", r.id),
                    );
                }
            }
        }
    }

    fn check_resources(&self, c: &mut Collector) {
        if let Some(d) = &self.resources.disk {
            match crate::cgroups::parse_size(d) {
                Ok(b) if b < 64 << 20 => c.error("resources.disk", format!("resources.disk {d:?} is below 64M")),
                Ok(_) => {}
                Err(e) => c.error("resources.disk", format!("resources.disk: {e:#}")),
            }
        }
        if let Some(n) = self.pids_max {
            if !(16..=4_194_304).contains(&n) {
                c.error("pids_max", format!("pids_max {n} is out of range (16 to 4194304)"));
            }
        }
        if !(16..=1_048_576).contains(&self.memory_mib) {
            c.error("memory_mib", format!("memory_mib {} is out of range (16 to 1048576)", self.memory_mib));
        }
        if !(1..=4096).contains(&self.vcpus) {
            c.error("vcpus", format!("vcpus {} is out of range (1 to 4096)", self.vcpus));
        }
        if let Some(s) = self.cpu.shares {
            if !(2..=262_144).contains(&s) {
                c.error("cpu.shares", format!("cpu.shares {s} is out of range (2 to 262144)"));
            }
        }
        if let Some(p) = self.cpu.period_us {
            if !(1000..=1_000_000).contains(&p) {
                c.error("cpu.period_us", format!("cpu.period_us {p} is out of range (1000 to 1000000)"));
            }
        }
        if let Some(q) = self.cpu.quota_us {
            if !(1000..=17_592_186_044_415).contains(&q) {
                c.error("cpu.quota_us", format!("cpu.quota_us {q} is out of range (1000 to 17592186044415)"));
            }
        }
        if let Some(w) = self.blkio_weight {
            if !(100..=1000).contains(&w) {
                c.error("blkio_weight", format!("blkio_weight {w} is out of range (100 to 1000)"));
            }
        }
    }

    fn check_network(&self, c: &mut Collector) {
        let n = &self.network;
        if !valid_object_name(&n.name) {
            c.error("network.name", format!("network.name {:?} must be letters, digits, '-', '_' or '.'", n.name));
        } else if n.mode == NetMode::Bridge && n.name.len() > 15 {
            c.error("network.name", format!("network.name {:?}: a bridge name has at most 15 characters", n.name));
        }
        if let Some(f) = &n.filter {
            if !valid_object_name(f) {
                c.error(
                    "network.filter",
                    format!("network.filter {f:?} must be an nwfilter name (letters, digits, '-', '_')"),
                );
            }
        }
    }

    fn check_security(&self, c: &mut Collector) {
        let sec = &self.security;
        // Without a user namespace container root is host root; with CAP_SYS_ADMIN and no
        // MAC to stop it, it mounts the host's cgroup v1 hierarchies (a container sits at the
        // root of those libvirt does not place it in) and writes release_agent: the host
        // then runs its program as root (CVE-2022-0492). It can also remount lxcprov's
        // read-only binds writable. MAC (sVirt) denies both; a user namespace makes both fail.
        let caps = &sec.capabilities;
        let sys_admin = caps.set.get("sys_admin").copied();
        let keeps_sys_admin = match caps.policy {
            CapPolicy::Deny => sys_admin == Some(CapState::On),
            CapPolicy::Default | CapPolicy::Allow => sys_admin != Some(CapState::Off),
        };
        if sec.idmap.is_none() && keeps_sys_admin && sec.model == SecModel::None {
            let msg = "no user namespace, sys_admin kept and no MAC (security.model none): container root \
                       would be host root able to mount the host's cgroup hierarchies and set their \
                       release_agent (CVE-2022-0492)";
            if sec.allow_host_root {
                c.warn("security.model", format!("{msg}; allowed by security.allow_host_root"));
            } else {
                c.error(
                    "security.model",
                    format!(
                        "{msg}; give the profile a security.idmap, turn sys_admin off in \
                             security.capabilities, use MAC (selinux or apparmor), or set \
                             security.allow_host_root: true if that is what you want"
                    ),
                );
            }
        }
        match crate::seccomp::Choice::parse(&sec.seccomp) {
            Err(e) => c.error("security.seccomp", e),
            Ok(crate::seccomp::Choice::File(path)) if path.is_relative() => c.error(
                "security.seccomp",
                format!("security.seccomp {:?} is a relative path and this profile is not read from a file whose directory it could be relative to; give an absolute path", path.display()),
            ),
            Ok(crate::seccomp::Choice::File(path)) => {
                if let Err(e) = crate::seccomp::Policy::load(&path) {
                    c.error("security.seccomp", format!("security.seccomp: {e:#}"));
                }
            }
            Ok(_) => {}
        }
        match (sec.label, &sec.static_label) {
            (LabelType::Static, None) => {
                c.error("security.label", "security.label is static but security.static_label is missing")
            }
            (LabelType::Static, Some(l)) => match sec.model {
                SecModel::Selinux => {
                    let kind = crate::mcs::ContextKind::Process;
                    match crate::mcs::check_static_label(l, kind, sec.allow_range, sec.allow_type) {
                        Ok(ws) => ws.into_iter().for_each(|w| c.warn("security.static_label", w)),
                        Err(e) => c.error("security.static_label", format!("security.static_label {e}")),
                    }
                }
                SecModel::Apparmor => {
                    if let Err(e) = crate::mcs::check_apparmor_label(l) {
                        c.error("security.static_label", format!("security.static_label: {e}"));
                    }
                }
                SecModel::None => {}
            },
            (_, Some(_)) => {
                c.error("security.static_label", "security.static_label is set but security.label is not static")
            }
            _ => {}
        }
        if sec.model == SecModel::None && sec.label != LabelType::None {
            // Harmless combination: model none means no label at all. Keep it explicit.
            c.error(
                "security.label",
                "security.model is none: set security.label to none as well (or use --security none)",
            );
        }
        for cap in sec.capabilities.set.keys() {
            if !CAPABILITIES.contains(&cap.as_str()) {
                c.error(
                    format!("security.capabilities.set.{cap}"),
                    format!("security.capabilities.set: unknown capability {cap:?} (use libvirt's names, e.g. sys_admin, net_raw)"),
                );
            }
        }
        if let Some(crate::profile::IdmapSetting::Fixed(m)) = &sec.idmap {
            for (what, r) in [("uid", m.uid), ("gid", m.gid)] {
                let key = |k: &str| format!("security.idmap.{what}.{k}");
                let (start, target, count) = (u64::from(r.start), u64::from(r.target), u64::from(r.count));
                if r.count == 0 {
                    c.error(key("count"), format!("security.idmap.{what}.count must be at least 1"));
                } else if start + count > u64::from(u32::MAX) {
                    c.error(key("count"), format!("security.idmap.{what}: start + count exceeds the id space"));
                } else if target + count > u64::from(u32::MAX) {
                    c.error(key("count"), format!("security.idmap.{what}: target + count exceeds the id space"));
                }
                if r.start != 0 {
                    c.error(
                        key("start"),
                        format!("security.idmap.{what}.start must be 0: the container's root must be mapped"),
                    );
                }
                if r.target == 0 {
                    c.error(
                        key("target"),
                        format!("security.idmap.{what}.target must not be 0: container root would be host root"),
                    );
                } else if r.count > 0 && target < start + count && start < target + count {
                    c.error(
                        key("target"),
                        format!(
                            "security.idmap.{what}: host ids {target}..{} overlap the container's own ids {start}..{}: \
                             an id would be shifted twice; use a target of at least {}",
                            target + count,
                            start + count,
                            start + count
                        ),
                    );
                } else if let Some(why) = (r.count > 0)
                    .then(|| crate::host::host_accounts_met(Path::new(HOST_ETC), what == "gid", r.target, r.count))
                    .flatten()
                {
                    let msg = format!(
                        "security.idmap.{what}: host ids {target}..{} include host accounts ({why}): container \
                         users would own their files and processes",
                        target + count
                    );
                    if sec.idmap_allow_host_ids {
                        c.warn(key("target"), format!("{msg}; allowed by security.idmap_allow_host_ids"));
                    } else {
                        c.error(key("target"), format!("{msg}; use a range no account uses (see /etc/subuid), or set security.idmap_allow_host_ids: true if that is what you want"));
                    }
                }
            }
        }
    }

    fn check_guest(&self, c: &mut Collector) {
        let path = &self.init.path;
        if !path.starts_with('/') || path.len() > 4096 || path.chars().any(|ch| ch.is_control()) {
            c.error("init.path", format!("init.path {path:?} must be an absolute path without control characters"));
        }
        for (i, a) in self.init.args.iter().enumerate() {
            if a.len() > 4096 || a.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\t') {
                c.error(format!("init.args[{i}]"), format!("init.args: argument {a:?} holds control characters"));
            }
        }
        if let Some(h) = &self.hostname {
            if !valid_hostname(h) {
                c.error(
                    "hostname",
                    format!("hostname {h:?} is not a valid host name (letters, digits, '-', dots between labels)"),
                );
            }
        }
        let tty = &self.console.tty;
        let numbered = |prefix: &str| {
            tty.strip_prefix(prefix).is_some_and(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && !(n.len() > 1 && n.starts_with('0'))
                    && n.parse::<u16>().is_ok()
            })
        };
        if !numbered("pts/") && !numbered("tty") {
            c.error("console.tty", format!("console.tty {tty:?} must look like pts/0 or tty1"));
        }
    }
}
