//! Profiles: what a container should be, in YAML.
//!
//! Profiles come from three sources, later ones overriding earlier ones of the same name:
//! the built-in `profiles/*.yaml` (embedded at build time), `/etc/lxcprov/profiles/*.yaml`,
//! and any `--profile-file PATH`. Unknown keys, wrong types and out-of-range values are
//! refused with the file, line and column. Reading `/etc/lxcprov/profiles` is the only host
//! access here, and it needs no root.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in profiles, embedded at build time: (name, YAML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("hardened", include_str!("../profiles/hardened.yaml")),
    ("minimal", include_str!("../profiles/minimal.yaml")),
    ("paper", include_str!("../profiles/paper.yaml")),
    ("web", include_str!("../profiles/web.yaml")),
];

/// The system-wide profile directory.
pub const SYSTEM_DIR: &str = "/etc/lxcprov/profiles";

/// The capabilities libvirt's domain schema knows (`<features><capabilities>` children,
/// libvirt 9.0). Newer kernel capabilities (bpf, perfmon, ...) cannot be named there.
pub const CAPABILITIES: &[&str] = &[
    "audit_control",
    "audit_write",
    "block_suspend",
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "ipc_lock",
    "ipc_owner",
    "kill",
    "lease",
    "linux_immutable",
    "mac_admin",
    "mac_override",
    "mknod",
    "net_admin",
    "net_bind_service",
    "net_broadcast",
    "net_raw",
    "setgid",
    "setfcap",
    "setpcap",
    "setuid",
    "sys_admin",
    "sys_boot",
    "sys_chroot",
    "sys_module",
    "sys_nice",
    "sys_pacct",
    "sys_ptrace",
    "sys_rawio",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "syslog",
    "wake_alarm",
];

/// A profile as written in YAML. Every field has a safe default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// One line shown by `lxcprov profiles`.
    pub description: String,
    /// A distro from the catalog (`lxcprov distros`).
    pub distro: String,
    /// The distro release; the catalog's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Replaces the distro's base package set when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_packages: Option<Vec<String>>,
    /// Named sets from the catalog (`web-server`), resolved per distro.
    pub package_sets: Vec<String>,
    /// Packages beyond the base set.
    pub packages: Vec<String>,
    /// Replaces the catalog's repositories (rpm distros).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repos: Option<Vec<Repo>>,
    /// Replaces the catalog's mirror (`--mirror` overrides this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Package signature checking.
    pub trust: Trust,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub cpu: Cpu,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u32>,
    pub network: Network,
    pub security: Security,
    pub init: Init,
    /// The guest's hostname; the container name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub console: Console,
}

/// An rpm repository given in full by a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub gpgkeys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trust {
    /// Verify package signatures. Turning this off is shown as a warning at bootstrap and
    /// as a failed `trust` check by `verify`.
    pub gpgcheck: bool,
}

impl Default for Trust {
    fn default() -> Self {
        Trust { gpgcheck: true }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cpu {
    /// cgroup cpu.shares (2-262144).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u32>,
    /// CFS period in microseconds (1000-1000000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_us: Option<u64>,
    /// CFS quota in microseconds per period (1000-17592186044415).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_us: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A libvirt network with no forwarding and no IP on the host: containers on it reach
    /// each other (subject to the filter) and nothing else. Defined when missing.
    #[default]
    Isolated,
    /// An existing libvirt network, by name.
    Network,
    /// An existing host bridge, by name.
    Bridge,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    pub mode: NetMode,
    /// Network or bridge name.
    pub name: String,
    /// An nwfilter such as `clean-traffic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The libvirt network lxcprov defines for isolated profiles unless a name is given.
pub const DEFAULT_NETWORK: &str = "lxcprov-isolated";

impl Default for Network {
    fn default() -> Self {
        Network { mode: NetMode::Isolated, name: DEFAULT_NETWORK.into(), filter: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecModel {
    #[default]
    Selinux,
    Apparmor,
    None,
}

impl std::str::FromStr for SecModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "selinux" => Ok(SecModel::Selinux),
            "apparmor" => Ok(SecModel::Apparmor),
            "none" => Ok(SecModel::None),
            _ => Err(format!("unknown security model {s:?}: use selinux, apparmor or none")),
        }
    }
}

impl SecModel {
    pub fn as_str(self) -> &'static str {
        match self {
            SecModel::Selinux => "selinux",
            SecModel::Apparmor => "apparmor",
            SecModel::None => "none",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LabelType {
    /// libvirt picks a fresh, unique MCS pair at every start (sVirt's default).
    #[default]
    Dynamic,
    /// The profile gives the label.
    Static,
    /// No label: the container runs unconfined by MAC.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapPolicy {
    /// libvirt's default set (drops sys_module, sys_time, mknod, audit_control, mac_admin).
    Default,
    /// Start from every capability; the list turns some off.
    Allow,
    /// Start from none; the list turns some on.
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapState {
    On,
    Off,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capabilities {
    pub policy: CapPolicy,
    /// Per-capability on/off, by libvirt's lower-case name without `CAP_`.
    pub set: BTreeMap<String, CapState>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { policy: CapPolicy::Default, set: BTreeMap::new() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub start: u32,
    pub target: u32,
    pub count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idmap {
    pub uid: IdRange,
    pub gid: IdRange,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub model: SecModel,
    pub label: LabelType,
    /// The full label for `label: static`, e.g. `system_u:system_r:container_t:s0:c10,c20`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_label: Option<String>,
    pub capabilities: Capabilities,
    /// A user namespace: container ids [start, start+count) map to host ids from target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idmap: Option<Idmap>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Init {
    pub path: String,
    pub args: Vec<String>,
}

impl Default for Init {
    fn default() -> Self {
        Init { path: "/sbin/init".into(), args: vec![] }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Console {
    pub enabled: bool,
    /// The terminal the guest sees the console as; added to `/etc/securetty` where used.
    pub tty: String,
}

impl Default for Console {
    fn default() -> Self {
        Console { enabled: true, tty: "pts/0".into() }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            description: String::new(),
            distro: "debian12".into(),
            release: None,
            base_packages: None,
            package_sets: vec![],
            packages: vec![],
            repos: None,
            mirror: None,
            trust: Trust::default(),
            memory_mib: 256,
            vcpus: 1,
            cpu: Cpu::default(),
            blkio_weight: None,
            network: Network::default(),
            security: Security::default(),
            init: Init::default(),
            hostname: None,
            console: Console::default(),
        }
    }
}

/// A profile with the name and source it was loaded from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub name: String,
    pub source: String,
    pub profile: Profile,
}

/// Parses and validates one profile document.
pub fn parse(text: &str, origin: &str) -> Result<Profile> {
    let p: Profile = crate::yaml::parse(text, origin)?;
    p.validate().with_context(|| format!("{origin}: invalid profile"))?;
    Ok(p)
}

/// Is `s` acceptable as a package name? It must never be read as an option by the
/// installer (`-x`, `--setopt=...`), nor as a path, a version range or a shell word.
pub fn valid_package(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._+-:~".contains(c))
}

/// Is `s` a valid RFC 1123 host name?
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Is `s` a valid libvirt network, bridge or nwfilter name?
fn valid_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A mirror or repository URL: http(s) or file, with no whitespace or control characters.
pub fn valid_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("file:///"))
        && s.len() <= 2048
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\`,".contains(c))
}

/// An SELinux label `user:role:type:level` with an MCS level of two distinct categories.
pub fn valid_static_label(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    if parts.len() != 4
        || parts[..3].iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(format!("{s:?} is not a label of the form user:role:type:s0:cA,cB"));
    }
    let level = crate::mac::mcs::Level::parse(parts[3]).map_err(|e| format!("{s:?}: {e}"))?;
    if level.categories.len() != 2 {
        return Err(format!(
            "{s:?} has {} categories; a container label needs exactly two distinct ones (s0:cA,cB)",
            level.categories.len()
        ));
    }
    Ok(())
}

impl Profile {
    /// Checks values serde cannot: ranges, names, combinations.
    pub fn validate(&self) -> Result<()> {
        let distro = crate::distro::lookup(&self.distro)?;
        if let Some(r) = &self.release {
            if r.is_empty() || r.len() > 32 || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                bail!("release {r:?} is not a release (letters, digits and dots)");
            }
        }
        for p in self.packages.iter().chain(self.base_packages.iter().flatten()) {
            if !valid_package(p) {
                bail!("package {p:?} is not a valid package name (letters, digits and ._+-:~, starting with a letter or digit)");
            }
        }
        for set in &self.package_sets {
            if !distro.package_sets.contains_key(set) {
                let known: Vec<&String> = distro.package_sets.keys().collect();
                bail!("package set {set:?} is not known for distro {}: known sets are {known:?}", self.distro);
            }
        }
        if let Some(m) = &self.mirror {
            if !valid_url(m) {
                bail!("mirror {m:?} is not an http://, https:// or file:/// URL without spaces or quotes");
            }
        }
        for r in self.repos.iter().flatten() {
            if !valid_object_name(&r.id) {
                bail!("repository id {:?} must be letters, digits, '-', '_' or '.'", r.id);
            }
            for u in std::iter::once(&r.url).chain(r.gpgkeys.iter()) {
                if !valid_url(u) {
                    bail!("repository {:?}: {u:?} is not an http://, https:// or file:/// URL", r.id);
                }
            }
        }
        if !(16..=1_048_576).contains(&self.memory_mib) {
            bail!("memory_mib {} is out of range (16 to 1048576)", self.memory_mib);
        }
        if !(1..=4096).contains(&self.vcpus) {
            bail!("vcpus {} is out of range (1 to 4096)", self.vcpus);
        }
        if let Some(s) = self.cpu.shares {
            if !(2..=262_144).contains(&s) {
                bail!("cpu.shares {s} is out of range (2 to 262144)");
            }
        }
        if let Some(p) = self.cpu.period_us {
            if !(1000..=1_000_000).contains(&p) {
                bail!("cpu.period_us {p} is out of range (1000 to 1000000)");
            }
        }
        if let Some(q) = self.cpu.quota_us {
            if !(1000..=17_592_186_044_415).contains(&q) {
                bail!("cpu.quota_us {q} is out of range (1000 to 17592186044415)");
            }
        }
        if let Some(w) = self.blkio_weight {
            if !(100..=1000).contains(&w) {
                bail!("blkio_weight {w} is out of range (100 to 1000)");
            }
        }
        if !valid_object_name(&self.network.name) {
            bail!("network.name {:?} must be letters, digits, '-', '_' or '.'", self.network.name);
        }
        if self.network.mode == NetMode::Bridge && self.network.name.len() > 15 {
            bail!("network.name {:?}: a bridge name has at most 15 characters", self.network.name);
        }
        if let Some(f) = &self.network.filter {
            if !valid_object_name(f) {
                bail!("network.filter {f:?} must be an nwfilter name (letters, digits, '-', '_')");
            }
        }
        let sec = &self.security;
        match (sec.label, &sec.static_label) {
            (LabelType::Static, None) => bail!("security.label is static but security.static_label is missing"),
            (LabelType::Static, Some(l)) => {
                if sec.model == SecModel::Selinux {
                    valid_static_label(l).map_err(|e| anyhow::anyhow!("security.static_label {e}"))?;
                } else if l.is_empty() || l.len() > 256 || l.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    bail!("security.static_label {l:?} is not a valid label");
                }
            }
            (_, Some(_)) => bail!("security.static_label is set but security.label is not static"),
            _ => {}
        }
        if sec.model == SecModel::None && sec.label != LabelType::None {
            // Harmless combination: model none means no label at all. Keep it explicit.
            bail!("security.model is none: set security.label to none as well (or use --security none)");
        }
        for cap in sec.capabilities.set.keys() {
            if !CAPABILITIES.contains(&cap.as_str()) {
                bail!("security.capabilities.set: unknown capability {cap:?} (use libvirt's names, e.g. sys_admin, net_raw)");
            }
        }
        if let Some(m) = &sec.idmap {
            for (what, r) in [("uid", m.uid), ("gid", m.gid)] {
                if r.count == 0 {
                    bail!("security.idmap.{what}.count must be at least 1");
                }
                if r.start != 0 {
                    bail!("security.idmap.{what}.start must be 0: the container's root must be mapped");
                }
                if r.target == 0 {
                    bail!("security.idmap.{what}.target must not be 0: container root would be host root");
                }
                if u64::from(r.target) + u64::from(r.count) > u64::from(u32::MAX) {
                    bail!("security.idmap.{what}: target + count exceeds the id space");
                }
            }
        }
        if !self.init.path.starts_with('/')
            || self.init.path.len() > 4096
            || self.init.path.chars().any(|c| c.is_control())
        {
            bail!("init.path {:?} must be an absolute path without control characters", self.init.path);
        }
        for a in &self.init.args {
            if a.len() > 4096 || a.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                bail!("init.args: argument {a:?} holds control characters");
            }
        }
        if let Some(h) = &self.hostname {
            if !valid_hostname(h) {
                bail!("hostname {h:?} is not a valid host name (letters, digits, '-', dots between labels)");
            }
        }
        let tty = &self.console.tty;
        let numbered = |prefix: &str| tty.strip_prefix(prefix).is_some_and(|n| n.parse::<u16>().is_ok());
        if !numbered("pts/") && !numbered("tty") {
            bail!("console.tty {tty:?} must look like pts/0 or tty1");
        }
        if self.description.len() > 4096 {
            bail!("description is longer than 4096 characters");
        }
        Ok(())
    }

    /// The release to install: the profile's, else the catalog default.
    pub fn release_or(&self, distro: &crate::distro::Distro) -> String {
        self.release.clone().unwrap_or_else(|| distro.release.clone())
    }
}

/// Where profiles are looked up.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `/etc/lxcprov/profiles` normally; `None` to skip it.
    pub system_dir: Option<PathBuf>,
    /// `--profile-file` paths, in order.
    pub files: Vec<PathBuf>,
}

/// The name a profile file defines: its file stem.
fn stem(path: &Path) -> Result<String> {
    let s = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: cannot name a profile after this file", path.display()))?;
    Ok(s.to_string())
}

/// Loads every profile from every source, later sources overriding earlier ones.
pub fn load_all(src: &Sources) -> Result<Vec<Loaded>> {
    let mut out: BTreeMap<String, Loaded> = BTreeMap::new();
    for (name, text) in BUILTIN {
        let origin = format!("built-in:{name}");
        let profile = parse(text, &origin)?;
        out.insert(name.to_string(), Loaded { name: name.to_string(), source: origin, profile });
    }
    if let Some(dir) = &src.system_dir {
        if dir.is_dir() {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            paths.sort();
            for p in paths {
                let l = load_file(&p)?;
                out.insert(l.name.clone(), l);
            }
        }
    }
    for p in &src.files {
        let l = load_file(p)?;
        out.insert(l.name.clone(), l);
    }
    Ok(out.into_values().collect())
}

/// Loads one profile file; its name is the file stem.
pub fn load_file(path: &Path) -> Result<Loaded> {
    let text = crate::fsutil::read_regular_bounded_to_string(path, crate::yaml::MAX_FILE, "profile file")?;
    let name = stem(path)?;
    let origin = path.display().to_string();
    let profile = parse(&text, &origin)?;
    Ok(Loaded { name, source: origin, profile })
}

/// Finds the profile called `name`.
pub fn find(src: &Sources, name: &str) -> Result<Loaded> {
    let all = load_all(src)?;
    let names: Vec<String> = all.iter().map(|l| l.name.clone()).collect();
    all.into_iter().find(|l| l.name == name).with_context(|| {
        format!("no profile named {name:?}: known profiles are {} (see `lxcprov profiles`)", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        format!("{:#}", parse(yaml, "t.yaml").unwrap_err())
    }

    #[test]
    fn builtins_parse_and_validate() {
        let all = load_all(&Sources::default()).unwrap();
        let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["hardened", "minimal", "paper", "web"]);
    }

    #[test]
    fn paper_profile_is_the_guide() {
        let p = find(&Sources::default(), "paper").unwrap().profile;
        assert_eq!(p.distro, "centos7");
        assert_eq!(p.memory_mib, 256);
        assert_eq!(p.security.model, SecModel::Selinux);
        assert_eq!(p.security.label, LabelType::Dynamic);
        assert_eq!(p.console.tty, "pts/0");
        let d = crate::distro::lookup("centos7").unwrap();
        let pkgs = p.base_packages.clone().unwrap_or(d.base_packages.clone());
        assert_eq!(
            pkgs.join(" "),
            "systemd passwd yum centos-release vim-minimal procps-ng iproute net-tools dhclient policycoreutils"
        );
    }

    #[test]
    fn web_profile_has_filter_caps_and_idmap() {
        let p = find(&Sources::default(), "web").unwrap().profile;
        assert_eq!(p.network.filter.as_deref(), Some("clean-traffic"));
        assert!(p.security.idmap.is_some());
        assert!(p.security.capabilities.set.values().any(|s| *s == CapState::Off));
        assert_eq!(p.package_sets, ["web-server"]);
    }

    #[test]
    fn unknown_key_names_file_line_column() {
        let e = err("description: x\nmemroy_mib: 5\n");
        assert!(e.contains("t.yaml:2:1"), "{e}");
        assert!(e.contains("unknown field `memroy_mib`"), "{e}");
    }

    #[test]
    fn nested_unknown_key_is_refused() {
        let e = err("security:\n  model: selinux\n  lable: static\n");
        assert!(e.contains("t.yaml:3:3") && e.contains("unknown field `lable`"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused_with_location() {
        let e = err("memory_mib: lots\n");
        assert!(e.contains("t.yaml:1:") && e.contains("invalid type"), "{e}");
        let e = err("packages: httpd\n");
        assert!(e.contains("t.yaml:1:"), "{e}");
        let e = err("security:\n  model: smack\n");
        assert!(e.contains("t.yaml:2:") && e.contains("unknown variant"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(err("memory_mib: 1\n").contains("memory_mib 1 is out of range"));
        assert!(err("vcpus: 0\n").contains("vcpus 0"));
        assert!(err("cpu:\n  shares: 1\n").contains("cpu.shares"));
        assert!(err("blkio_weight: 5\n").contains("blkio_weight"));
        assert!(err("memory_mib: -5\n").contains("t.yaml:1:"));
    }

    #[test]
    fn hostile_package_names_are_refused() {
        for bad in ["--setopt=gpgcheck=0", "-x", "a b", "../x", "pkg;rm", "", "a/b", "$(x)", "pkg>=1"] {
            let y = format!("packages: [{}]\n", serde_json::to_string(bad).unwrap());
            assert!(err(&y).contains("not a valid package name"), "{bad}");
        }
        assert!(valid_package("vim-minimal") && valid_package("gcc-c++") && valid_package("libstdc++6:amd64"));
    }

    #[test]
    fn hostile_mirrors_are_refused() {
        for bad in ["ftp://x", "http://a b", "http://x\n", "file://relative", "--mirror", "http://x\"y"] {
            let y = format!("mirror: {}\n", serde_json::to_string(bad).unwrap());
            assert!(err(&y).contains("mirror"), "{bad}");
        }
    }

    #[test]
    fn security_combinations_are_checked() {
        assert!(err("security:\n  label: static\n").contains("static_label is missing"));
        assert!(err("security:\n  static_label: 'a:b:c:s0:c1,c2'\n").contains("not static"));
        assert!(err("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1'\n")
            .contains("exactly two"));
        assert!(err("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1,c1'\n")
            .contains("distinct"));
        assert!(err("security:\n  capabilities:\n    set: { sys_pwn: off }\n").contains("unknown capability"));
        assert!(err("security:\n  capabilities:\n    set: { sys_admin: maybe }\n").contains("unknown variant"));
        assert!(err("security:\n  idmap:\n    uid: {start: 0, target: 0, count: 10}\n    gid: {start: 0, target: 1, count: 10}\n").contains("host root"));
        parse("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1,c2'\n", "t").unwrap();
    }

    #[test]
    fn names_and_paths_are_checked() {
        assert!(err("hostname: 'a_b'\n").contains("hostname"));
        assert!(err("network:\n  name: '../x'\n").contains("network.name"));
        assert!(err("init:\n  path: sbin/init\n").contains("absolute"));
        assert!(err("console:\n  tty: ttyS0\n").contains("console.tty"));
        assert!(err("distro: gentoo\n").contains("unknown distro"));
        assert!(err("package_sets: [database]\n").contains("package set"));
    }

    #[test]
    fn later_sources_override_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).unwrap();
        std::fs::write(sys.join("web.yaml"), "description: site web\nmemory_mib: 512\n").unwrap();
        std::fs::write(sys.join("extra.yml"), "description: extra\n").unwrap();
        let user = dir.path().join("web.yaml");
        std::fs::write(&user, "description: user web\nmemory_mib: 1024\n").unwrap();
        let mut src = Sources { system_dir: Some(sys.clone()), files: vec![] };
        assert_eq!(find(&src, "web").unwrap().profile.memory_mib, 512);
        assert!(find(&src, "extra").is_ok());
        src.files.push(user);
        let l = find(&src, "web").unwrap();
        assert_eq!(l.profile.memory_mib, 1024);
        assert!(l.source.ends_with("web.yaml"));
        let e = format!("{:#}", find(&src, "nope").unwrap_err());
        assert!(e.contains("no profile named \"nope\"") && e.contains("paper"), "{e}");
    }
}
