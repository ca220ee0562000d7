//! Profiles: what a container should be, in YAML.
//!
//! Profiles come from three sources, later ones overriding earlier ones of the same name:
//! the built-in `profiles/*.yaml` (embedded at build time), `/etc/lxcprov/profiles/*.yaml`,
//! and any `--profile-file PATH`. Unknown keys, wrong types and out-of-range values are
//! refused with the file, line and column ([`validate`] checks, [`locate`] finds the key).
//! Reading `/etc/lxcprov/profiles` is the only host access here, and it needs no root.

mod locate;
#[cfg(test)]
mod tests;
mod validate;
mod values;

pub use locate::locate;
pub use validate::{
    located, mirror_trust, package_problem, valid_hostname, valid_package, valid_static_label, valid_url, Finding,
    Findings,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in profiles, embedded at build time: (name, YAML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("hardened", include_str!("../../profiles/hardened.yaml")),
    ("minimal", include_str!("../../profiles/minimal.yaml")),
    ("paper", include_str!("../../profiles/paper.yaml")),
    ("web", include_str!("../../profiles/web.yaml")),
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
    /// The most processes (and threads) the container may have at once (the pids cgroup):
    /// a fork bomb stops inside its own container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u32>,
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
    /// What the container sees of itself beyond its limits.
    pub resources: Resources,
    /// A lab's cgroup partition (`/machine/lxcprov-LAB`), carrying the lab's ceilings; set by
    /// `lab up --total-*` for its students, never by a profile file.
    #[serde(skip)]
    pub partition: Option<String>,
    /// The ceilings that partition carries (`memory=B,pids=N,cpus=N`), written into the
    /// domain's metadata for the hook.
    #[serde(skip)]
    pub partition_ceilings: Option<String>,
}

/// `resources`: what a container sees of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// `/proc` views of its own (uptime, load average, CPUs, `/proc/stat`) through lxcfs.
    pub proc_views: ProcViews,
    /// The most the container may write (`2G`, `512M`): its writable layer is a file system
    /// of that size of its own, so writes stop there with "No space left on device" and the
    /// pool loses at most that much (overlay storage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
}

impl Resources {
    /// `disk` in bytes (validated with the profile).
    pub fn disk_bytes(&self) -> Option<u64> {
        self.disk.as_deref().and_then(|d| crate::cgroups::parse_size(d).ok())
    }
}

/// `resources.proc_views`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcViews {
    /// lxcfs's views where the host runs lxcfs; the host's `/proc` otherwise (said once).
    #[default]
    Auto,
    /// lxcfs's views, or the container is refused.
    Lxcfs,
    /// The host's `/proc` (libvirt's own `/proc/meminfo` only).
    Off,
}

/// The `/proc` files lxcfs gives a container a view of its own (libvirt already gives
/// `meminfo`).
pub const LXCFS_PROC_FILES: &[&str] = &["cpuinfo", "diskstats", "loadavg", "stat", "swaps", "uptime"];

/// An rpm repository given in full by a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub gpgkeys: Vec<String>,
    /// The fingerprints the repository's keys must have (40 hex digits, spaces allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
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
    /// The container's fixed MAC and address on a lab network with SSH access (set by
    /// `lab up --ssh-keys`, never read from a profile).
    #[serde(skip)]
    pub lease: Option<DhcpHost>,
    /// The lab network's host address and fixed leases (set by `lab up --ssh-keys`).
    #[serde(skip)]
    pub dhcp: Option<Dhcp>,
}

/// A network's host address and its fixed DHCP leases (no dynamic range).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dhcp {
    pub address: String,
    pub netmask: String,
    pub hosts: Vec<DhcpHost>,
}

/// One fixed lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DhcpHost {
    pub mac: String,
    pub ip: String,
    pub name: String,
}

/// The libvirt network lxcprov defines for isolated profiles unless a name is given.
pub const DEFAULT_NETWORK: &str = "lxcprov-isolated";

impl Default for Network {
    fn default() -> Self {
        Network { mode: NetMode::Isolated, name: DEFAULT_NETWORK.into(), filter: None, lease: None, dhcp: None }
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

/// Ids per isolated map: a full 16-bit id space, as systemd and `/etc/subuid` expect.
pub const ISOLATED_IDS: u32 = 65536;

/// The map of an isolated range starting at host id `start`.
pub fn isolated_map_at(start: u32) -> Idmap {
    let r = IdRange { start: 0, target: start, count: ISOLATED_IDS };
    Idmap { uid: r, gid: r }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idmap {
    pub uid: IdRange,
    pub gid: IdRange,
}

/// `security.idmap`: a map written in the profile, or `isolated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdmapSetting {
    /// The profile's own map, the same for every container of the profile.
    Fixed(Idmap),
    /// A 65536-id range of the container's own, allocated when it is created (`Some` once
    /// it is: the spec of a named container carries its range).
    Isolated(Option<Idmap>),
}

impl IdmapSetting {
    /// The map to use, `None` for an isolated map not yet allocated.
    pub fn map(&self) -> Option<Idmap> {
        match *self {
            IdmapSetting::Fixed(m) => Some(m),
            IdmapSetting::Isolated(m) => m,
        }
    }
    pub fn is_isolated(&self) -> bool {
        matches!(self, IdmapSetting::Isolated(_))
    }
}

impl Serialize for IdmapSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IdmapSetting::Fixed(m) => m.serialize(s),
            IdmapSetting::Isolated(_) => s.serialize_str("isolated"),
        }
    }
}

impl<'de> Deserialize<'de> for IdmapSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = IdmapSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`isolated` or a map with uid and gid ranges")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IdmapSetting, E> {
                match v {
                    "isolated" => Ok(IdmapSetting::Isolated(None)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<IdmapSetting, A::Error> {
                Idmap::deserialize(serde::de::value::MapAccessDeserializer::new(a)).map(IdmapSetting::Fixed)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub model: SecModel,
    pub label: LabelType,
    /// The full label for `label: static`, e.g. `system_u:system_r:container_t:s0:c10,c20`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_label: Option<String>,
    /// Accept a static SELinux label whose clearance is above its level
    /// (`...:s0:c1,c2-s0:c0.c1023`). On purpose only: warned loudly, MCS separation is lost.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_range: bool,
    /// Accept a static SELinux label with a role or type that is not a container's
    /// (`spc_t`, `unconfined_t`). On purpose only: warned loudly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_type: bool,
    pub capabilities: Capabilities,
    /// A user namespace: a fixed map (container ids [start, start+count) to host ids from
    /// target, shared by every container of the profile) or `isolated` (a range of its own
    /// per container, from the id-range registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idmap: Option<IdmapSetting>,
    /// Accept a fixed `idmap` whose host ids are host accounts (below `UID_MIN`, or listed
    /// in `/etc/passwd` or `/etc/group`): container users would own those accounts' files.
    /// On purpose only: warned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idmap_allow_host_ids: bool,
    /// Accept a container whose root is host root with `CAP_SYS_ADMIN` and no MAC (no user
    /// namespace, `sys_admin` kept, `model: none`): it can mount the host's cgroup v1
    /// hierarchies and set their `release_agent` (CVE-2022-0492), or remount lxcprov's
    /// read-only binds. On purpose only: warned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_host_root: bool,
    /// The container's seccomp filter (paper 3.6), installed by lxcprov's init shim:
    /// `default` (a deny-list), `strict`, `none`, or the path of a JSON policy file.
    pub seccomp: String,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            model: SecModel::default(),
            label: LabelType::default(),
            static_label: None,
            allow_range: false,
            allow_type: false,
            capabilities: Capabilities::default(),
            idmap: None,
            idmap_allow_host_ids: false,
            allow_host_root: false,
            seccomp: "default".into(),
        }
    }
}

impl Security {
    /// The user-namespace map in force (`None`: no user namespace, or an isolated map not
    /// allocated yet).
    pub fn idmap_map(&self) -> Option<Idmap> {
        self.idmap.and_then(|i| i.map())
    }

    /// `security.seccomp` parsed (validation has refused anything else).
    pub fn seccomp_choice(&self) -> crate::seccomp::Choice {
        crate::seccomp::Choice::parse(&self.seccomp).unwrap_or(crate::seccomp::Choice::Default)
    }
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
            pids_max: None,
            vcpus: 1,
            cpu: Cpu::default(),
            blkio_weight: None,
            network: Network::default(),
            security: Security::default(),
            init: Init::default(),
            hostname: None,
            console: Console::default(),
            resources: Resources::default(),
            partition: None,
            partition_ceilings: None,
        }
    }
}

impl Profile {
    /// The release to install: the profile's, else the catalog default.
    pub fn release_or(&self, distro: &crate::distro::Distro) -> String {
        self.release.clone().unwrap_or_else(|| distro.release.clone())
    }
}

/// A profile with the name and source it was loaded from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub name: String,
    pub source: String,
    pub profile: Profile,
    /// What validation accepted but the user must be told (`allow_range`, plain-http
    /// repositories...), each as `SOURCE:LINE:COLUMN: WARNING: ...`. Print them.
    pub warnings: Vec<String>,
    /// The YAML text, to locate problems found after command-line overrides.
    pub text: String,
}

impl Loaded {
    /// Validates `p` (this profile after command-line overrides): problems in keys of this
    /// file are reported with its `file:line:column`, others (a `--release` given on the
    /// command line) with the file name alone. Returns the warnings to print.
    pub fn revalidate(&self, p: &Profile) -> Result<Vec<String>> {
        check_located(p, &self.text, &self.source)
    }
}

/// Validates `p`, read from `text` at `origin`: `Err` lists every problem, one per line, as
/// `ORIGIN:LINE:COLUMN: message`; `Ok` holds the warnings in the same form.
pub fn check_located(p: &Profile, text: &str, origin: &str) -> Result<Vec<String>> {
    let f = p.check();
    if !f.errors.is_empty() {
        anyhow::bail!("{}", validate::located(&f.errors, text, origin).join("\n"));
    }
    Ok(validate::located(&f.warnings, text, origin))
}

/// Parses and validates one profile document. Warnings are dropped: use
/// [`parse_with_warnings`] (or [`load_file`], [`find`]) where they can be shown.
pub fn parse(text: &str, origin: &str) -> Result<Profile> {
    parse_with_warnings(text, origin).map(|(p, _)| p)
}

/// Parses and validates one profile document; returns it with its warnings
/// (`ORIGIN:LINE:COLUMN: WARNING: ...`).
pub fn parse_with_warnings(text: &str, origin: &str) -> Result<(Profile, Vec<String>)> {
    parse_in(text, origin, None)
}

/// [`parse_with_warnings`] for a profile read from a file in `dir`: relative paths in it
/// (`security.seccomp: policies/web.json`) are the file's own, resolved against `dir`, never
/// against the working directory of whoever runs lxcprov. Without a `dir` a relative path
/// is refused by validation.
pub fn parse_in(text: &str, origin: &str, dir: Option<&Path>) -> Result<(Profile, Vec<String>)> {
    let mut p: Profile = crate::yaml::parse(text, origin)?;
    if let Some(dir) = dir {
        resolve_relative_paths(&mut p, dir);
    }
    let warnings = check_located(&p, text, origin)?;
    Ok((p, warnings))
}

/// Makes the profile's relative paths absolute against `dir` (the profile file's directory).
fn resolve_relative_paths(p: &mut Profile, dir: &Path) {
    if let Ok(crate::seccomp::Choice::File(f)) = crate::seccomp::Choice::parse(&p.security.seccomp) {
        if f.is_relative() {
            p.security.seccomp = dir.join(f).display().to_string();
        }
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

/// The name a profile file defines: its file stem. It is shown in listings and written into
/// the domain's metadata, so it follows the container-name rule: ASCII letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit, at most 64 characters.
fn stem(path: &Path) -> Result<String> {
    let shown = crate::text::for_terminal(&path.to_string_lossy()).into_owned();
    let s = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{shown}: cannot name a profile after this file"))?;
    valid_profile_name(s).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    Ok(s.to_string())
}

/// Is `s` acceptable as a profile name (see [`stem`])?
pub fn valid_profile_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= crate::name::MAX_LEN
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "profile name {:?} (the file name without .yaml) must be ASCII letters, digits, '-', '_' and '.', \
             starting with a letter or digit, at most {} characters",
            crate::text::for_terminal(s),
            crate::name::MAX_LEN
        ))
    }
}

/// Loads every profile from every source, later sources overriding earlier ones.
pub fn load_all(src: &Sources) -> Result<Vec<Loaded>> {
    let mut out: BTreeMap<String, Loaded> = BTreeMap::new();
    for (name, text) in BUILTIN {
        let origin = format!("built-in:{name}");
        let (profile, warnings) = parse_with_warnings(text, &origin)?;
        let l = Loaded { name: name.to_string(), source: origin, profile, warnings, text: text.to_string() };
        out.insert(name.to_string(), l);
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
    // The origin starts every message about this file: no control characters in it.
    let origin = crate::text::for_terminal(&path.display().to_string()).into_owned();
    // The file's own directory, made absolute now (a `--profile-file p.yaml` given relative
    // to the working directory is the caller's choice; the paths inside it are the file's).
    let dir = std::path::absolute(path)
        .with_context(|| format!("resolving {}", path.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let (profile, warnings) = parse_in(&text, &origin, Some(&dir))?;
    Ok(Loaded { name, source: origin, profile, warnings, text })
}

/// Finds the profile called `name`.
pub fn find(src: &Sources, name: &str) -> Result<Loaded> {
    let all = load_all(src)?;
    let names: Vec<String> = all.iter().map(|l| l.name.clone()).collect();
    all.into_iter().find(|l| l.name == name).with_context(|| {
        format!("no profile named {name:?}: known profiles are {} (see `lxcprov profiles`)", names.join(", "))
    })
}
