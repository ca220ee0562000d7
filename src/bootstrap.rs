//! Bootstrapping a root filesystem with the distribution's own package manager
//! (paper, section 5.3), as a plan of steps that `--dry-run` prints and `execute` performs.
//!
//! The installer writes into a temporary sibling (`POOL/.NAME.partial`) that is renamed to
//! `POOL/NAME` only when everything succeeded; on failure or Ctrl-C the partial tree is
//! removed. A finished install is also copied into the base-rootfs cache, keyed by
//! everything that determines its content, so the next container of the same profile and
//! distro is a copy (reflink where the file system can) instead of an install.
//! Running the plan needs root; building it does not.

use crate::distro::{self, Distro, InstallerKind, NetConfig};
use crate::exec::{Cmd, Runner};
use crate::name::Name;
use crate::password::Secret;
use crate::paths::Paths;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The concrete tool that runs an install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Dnf4,
    Dnf5,
    Yum,
    Debootstrap,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Dnf4 => "dnf",
            Tool::Dnf5 => "dnf5",
            Tool::Yum => "yum",
            Tool::Debootstrap => "debootstrap",
        }
    }
    fn cache_name(self) -> &'static str {
        match self {
            Tool::Dnf4 | Tool::Yum => "dnf",
            Tool::Dnf5 => "libdnf5",
            Tool::Debootstrap => "debootstrap",
        }
    }
}

/// Picks the tool for a catalog installer from what the host has. `LXCPROV_DNF` (dnf, dnf5
/// or yum) forces the rpm tool. `has` answers whether a program is on PATH.
pub fn choose_tool(kind: InstallerKind, has: &dyn Fn(&str) -> bool) -> Result<Tool> {
    if kind == InstallerKind::Debootstrap {
        return Ok(Tool::Debootstrap);
    }
    if let Ok(forced) = std::env::var("LXCPROV_DNF") {
        return match forced.as_str() {
            "dnf" => Ok(Tool::Dnf4),
            "dnf5" => Ok(Tool::Dnf5),
            "yum" => Ok(Tool::Yum),
            other => bail!("LXCPROV_DNF={other:?}: use dnf, dnf5 or yum"),
        };
    }
    // yum only where the catalog asks for it and the host really has yum (EL7 hosts);
    // elsewhere dnf5, then dnf4, install EL7 just as well.
    let order: &[Tool] = match kind {
        InstallerKind::Yum => &[Tool::Yum, Tool::Dnf5, Tool::Dnf4],
        _ => &[Tool::Dnf5, Tool::Dnf4, Tool::Yum],
    };
    order.iter().copied().find(|t| has(t.program())).ok_or_else(|| {
        anyhow::anyhow!(
            "no rpm installer found (looked for {}); install it with `apt-get install dnf` (or run scripts/setup-host.sh)",
            order.iter().map(|t| t.program()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// A resolved rpm repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Repo {
    pub id: String,
    pub url: String,
    pub gpgkeys: Vec<String>,
}

/// Everything that decides what gets installed.
#[derive(Clone, Debug, Serialize)]
pub struct InstallSpec {
    pub distro: String,
    pub release: String,
    pub arch: String,
    pub tool: Tool,
    pub packages: Vec<String>,
    pub gpgcheck: bool,
    /// rpm: the repositories; debootstrap: empty.
    pub repos: Vec<Repo>,
    /// debootstrap: mirror, suite, components, keyring, script.
    pub mirror: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyring: Option<String>,
    pub script: Option<String>,
}

impl InstallSpec {
    /// Resolves a profile against the catalog (and `--mirror`).
    pub fn new(p: &Profile, d: &Distro, mirror: Option<&str>, tool: Tool) -> Result<InstallSpec> {
        let release = p.release_or(d);
        let arch = distro::host_arch().to_string();
        let mirror = mirror.map(str::to_string).or_else(|| p.mirror.clone()).unwrap_or_else(|| d.mirror.clone());
        if !crate::profile::valid_url(&mirror) {
            bail!("mirror {mirror:?} is not an http://, https:// or file:/// URL without spaces or quotes");
        }
        let mirror = distro::expand(&mirror, &release, &arch);
        let mut packages: Vec<String> = p.base_packages.clone().unwrap_or_else(|| d.base_packages.clone());
        for set in &p.package_sets {
            let pk = d.package_sets.get(set).with_context(|| format!("package set {set:?} unknown for {}", d.name))?;
            packages.extend(pk.iter().cloned());
        }
        packages.extend(p.packages.iter().cloned());
        let mut seen = std::collections::BTreeSet::new();
        packages.retain(|x| seen.insert(x.clone()));
        for pkg in &packages {
            if !crate::profile::valid_package(pkg) {
                bail!("package {pkg:?} is not a valid package name");
            }
        }
        let repos = match &p.repos {
            Some(rs) => {
                rs.iter().map(|r| Repo { id: r.id.clone(), url: r.url.clone(), gpgkeys: r.gpgkeys.clone() }).collect()
            }
            None if d.installer == InstallerKind::Debootstrap => vec![],
            None => d
                .repos
                .iter()
                .map(|r| Repo {
                    id: r.id.clone(),
                    url: format!("{}/{}", mirror.trim_end_matches('/'), distro::expand(&r.path, &release, &arch)),
                    gpgkeys: d.gpgkeys.iter().map(|k| distro::expand(k, &release, &arch)).collect(),
                })
                .collect(),
        };
        if p.trust.gpgcheck && tool != Tool::Debootstrap && repos.iter().any(|r| r.gpgkeys.is_empty()) {
            bail!("gpg checking is on but a repository has no gpg key: add gpgkeys, or set trust.gpgcheck: false explicitly");
        }
        Ok(InstallSpec {
            distro: d.name.clone(),
            suite: d.suite(&release),
            release,
            arch,
            tool,
            packages,
            gpgcheck: p.trust.gpgcheck,
            repos,
            mirror,
            components: d.components.clone(),
            keyring: d.keyring.clone(),
            script: d.script.clone(),
        })
    }

    /// The base-rootfs cache key: distro, release, arch and a digest of everything else.
    pub fn cache_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(self).expect("spec serialises"));
        let digest = h.finalize();
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}-{}-{}-{hex}", self.distro, self.release, self.arch)
    }

    /// The installer's argv for installing into `root` with the package cache at `cache`.
    /// `conf` is where yum's generated configuration ([`InstallSpec::yum_conf`]) lives.
    pub fn install_cmd(&self, root: &Path, cache: &Path, rpm_home: &Path, conf: &Path) -> Cmd {
        match self.tool {
            Tool::Debootstrap => self.debootstrap_cmd(root, cache),
            Tool::Yum => self.yum_cmd(root, conf, rpm_home),
            Tool::Dnf4 | Tool::Dnf5 => self.dnf_cmd(root, cache, rpm_home),
        }
    }

    /// yum (EL7 hosts) has no --repofrompath: its repositories, cache and checks go into a
    /// configuration file of lxcprov's own, and no host repository file is read.
    pub fn yum_conf(&self, cache: &Path) -> String {
        let check = if self.gpgcheck { 1 } else { 0 };
        let mut s = format!(
            "# Written by lxcprov for {} {}; the host's repositories are not used.\n[main]\nreposdir=/nonexistent/lxcprov\ncachedir={}\nkeepcache=1\ngpgcheck={check}\nplugins=0\nskip_missing_names_on_install=0\n",
            self.distro,
            self.release,
            cache.display()
        );
        for r in &self.repos {
            s += &format!("\n[{id}]\nname={id}\nbaseurl={url}\nenabled=1\ngpgcheck={check}\n", id = r.id, url = r.url);
            if self.gpgcheck {
                s += &format!("gpgkey={}\n", r.gpgkeys.join(" "));
            }
        }
        s
    }

    fn yum_cmd(&self, root: &Path, conf: &Path, rpm_home: &Path) -> Cmd {
        let mut c = Cmd::new("yum")
            .arg("-y")
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--installroot={}", root.display()))
            .arg(format!("--releasever={}", self.release))
            .arg("--disablerepo=*");
        for r in &self.repos {
            c = c.arg(format!("--enablerepo={}", r.id));
        }
        if !self.gpgcheck {
            c = c.arg("--nogpgcheck");
        }
        c.arg("install").args(self.packages.iter().cloned()).env("HOME", rpm_home.display().to_string())
    }

    fn dnf_cmd(&self, root: &Path, cache: &Path, rpm_home: &Path) -> Cmd {
        let dnf5 = self.tool == Tool::Dnf5;
        let mut c = Cmd::new(self.tool.program())
            // Non-interactive: answer yes, never prompt.
            .arg("-y")
            .arg(format!("--installroot={}", root.display()))
            .arg(format!("--releasever={}", self.release))
            // Host plugins (subscription-manager and the like) have no business here.
            .arg(if dnf5 { "--no-plugins" } else { "--noplugins" })
            // Never read the host's repository configuration.
            .arg("--setopt=reposdir=/nonexistent/lxcprov")
            // Package cache shared by every container of this distro/release/arch.
            .arg(format!("--setopt=cachedir={}", cache.display()))
            .arg("--setopt=keepcache=True")
            // Exactly the packages asked for, no recommended extras.
            .arg("--setopt=install_weak_deps=False")
            // A broken repository is an error, not something to skip silently.
            .arg("--setopt=skip_if_unavailable=False");
        if dnf5 {
            // dnf5 reads its configuration from the installroot unless told otherwise.
            c = c.arg("--use-host-config");
        }
        for r in &self.repos {
            c = c.arg(format!("--repofrompath={},{}", r.id, r.url));
        }
        for r in &self.repos {
            c = c.arg(format!("--repo={}", r.id));
        }
        for r in &self.repos {
            if self.gpgcheck {
                c = c.arg(format!("--setopt={}.gpgcheck=True", r.id)).arg(format!(
                    "--setopt={}.gpgkey={}",
                    r.id,
                    r.gpgkeys.join(",")
                ));
            } else {
                c = c.arg(format!("--setopt={}.gpgcheck=False", r.id));
            }
        }
        if !self.gpgcheck {
            c = c.arg("--nogpgcheck");
        }
        c = c.arg("install").args(self.packages.iter().cloned());
        // Debian's rpm keeps its database in ~/.rpmdb; a HOME whose .rpmmacros says
        // %_dbpath /var/lib/rpm gives the layout a RHEL-family guest expects.
        c.env("HOME", rpm_home.display().to_string())
    }

    fn debootstrap_cmd(&self, root: &Path, cache: &Path) -> Cmd {
        let mut c = Cmd::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--arch={}", distro::debian_arch(&self.arch)))
            // Downloaded .debs are kept here and reused by the next bootstrap.
            .arg(format!("--cache-dir={}", cache.display()));
        if !self.components.is_empty() {
            c = c.arg(format!("--components={}", self.components.join(",")));
        }
        if !self.packages.is_empty() {
            c = c.arg(format!("--include={}", self.packages.join(",")));
        }
        if self.gpgcheck {
            // Verify the Release file's signature with the archive keyring; fail otherwise.
            if let Some(k) = &self.keyring {
                c = c.arg(format!("--keyring={k}"));
            }
            c = c.arg("--force-check-gpg");
        } else {
            c = c.arg("--no-check-gpg");
        }
        c = c.arg(&self.suite).arg(root.display().to_string()).arg(&self.mirror);
        if let Some(s) = &self.script {
            c = c.arg(format!("/usr/share/debootstrap/scripts/{s}"));
        }
        c
    }
}

/// Per-container settings applied after the install.
#[derive(Debug)]
pub struct GuestConfig {
    pub hostname: String,
    pub securetty: Option<String>,
    pub netconfig: NetConfig,
}

/// One file written into the guest.
#[derive(Clone, Debug, Serialize)]
pub struct GuestFile {
    pub path: String,
    pub mode: u32,
    pub why: &'static str,
    /// The content; `None` for secrets, which are shown redacted.
    pub content: Option<String>,
    /// Append the line unless present, instead of replacing the file.
    pub append_line: bool,
}

impl GuestConfig {
    /// The files this configuration writes (the shadow file is handled apart, as a secret).
    pub fn files(&self) -> Vec<GuestFile> {
        let h = &self.hostname;
        let f = |path: &str, mode, why, content: String| GuestFile {
            path: path.into(),
            mode,
            why,
            content: Some(content),
            append_line: false,
        };
        let mut v = vec![
            f("/etc/hostname", 0o644, "hostname", format!("{h}\n")),
            f(
                "/etc/hosts",
                0o644,
                "host names",
                format!("127.0.0.1\tlocalhost\n127.0.1.1\t{h}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            ),
            // Empty: systemd generates a fresh id at first boot, so copies never share one.
            f("/etc/machine-id", 0o444, "empty machine-id (a fresh one at each first boot)", String::new()),
        ];
        match self.netconfig {
            NetConfig::Ifcfg => {
                v.push(f("/etc/sysconfig/network", 0o644, "networking on", "NETWORKING=yes\n".into()));
                v.push(f(
                    "/etc/sysconfig/network-scripts/ifcfg-eth0",
                    0o644,
                    "DHCP on eth0",
                    "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\nTYPE=Ethernet\n".into(),
                ));
            }
            NetConfig::Networkmanager => v.push(f(
                "/etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                "DHCP on eth0",
                "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n".into(),
            )),
            NetConfig::Networkd => v.push(f(
                "/etc/systemd/network/80-lxcprov-eth0.network",
                0o644,
                "DHCP on eth0",
                "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n".into(),
            )),
        }
        if let Some(tty) = &self.securetty {
            v.push(GuestFile {
                path: "/etc/securetty".into(),
                mode: 0o600,
                why: "allow root on the container console (pam_securetty)",
                content: Some(format!("{tty}\n")),
                append_line: true,
            });
        }
        v
    }

    /// Applies the configuration to `root`. Idempotent.
    pub fn apply(&self, root: &Path, password_hash: &str) -> Result<()> {
        use crate::fsutil::{read_in, write_in};
        for file in self.files() {
            let content = file.content.unwrap_or_default();
            if file.append_line {
                let existing = read_in(root, &file.path)?.unwrap_or_default();
                let line = content.trim_end();
                if existing.lines().any(|l| l.trim() == line) {
                    continue;
                }
                let mut new = existing.clone();
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                new.push_str(line);
                new.push('\n');
                write_in(root, &file.path, new.as_bytes(), file.mode)?;
            } else {
                write_in(root, &file.path, content.as_bytes(), file.mode)?;
            }
        }
        if self.netconfig == NetConfig::Networkd {
            enable_unit(root, "systemd-networkd.service", "multi-user.target.wants")?;
        }
        let shadow = read_in(root, "/etc/shadow")?.unwrap_or_default();
        let updated = crate::password::set_root_hash(&shadow, password_hash);
        write_in(root, "/etc/shadow", updated.as_bytes(), 0o640)?;
        Ok(())
    }
}

/// Enables a systemd unit inside the guest, as `systemctl enable` would, if the unit exists.
fn enable_unit(root: &Path, unit: &str, wants: &str) -> Result<()> {
    for dir in ["/lib/systemd/system", "/usr/lib/systemd/system"] {
        let target = format!("{dir}/{unit}");
        if crate::fsutil::resolve_in(root, &target).map(|p| p.exists()).unwrap_or(false) {
            let link_rel = format!("/etc/systemd/system/{wants}/{unit}");
            let link = crate::fsutil::resolve_in(root, &link_rel)?;
            if std::fs::symlink_metadata(&link).is_err() {
                std::fs::create_dir_all(link.parent().unwrap())?;
                std::os::unix::fs::symlink(&target, &link)?;
            }
            return Ok(());
        }
    }
    Ok(())
}

/// How the root filesystem will be obtained.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// Run the installer, then keep a copy in the base cache (unless `--no-base-cache`).
    Install { cmd: Cmd, cache_entry: Option<PathBuf> },
    /// Copy the cached base.
    Cache { cache_entry: PathBuf },
    /// Import an existing tree or tarball (`--rootfs-from`); no package signatures are
    /// checked, which `verify` reports.
    Import { from: PathBuf, cmd: Cmd },
}

/// The whole bootstrap of one container, decided before anything is touched.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub name: Name,
    pub profile: String,
    pub spec: InstallSpec,
    pub rootfs: PathBuf,
    pub partial: PathBuf,
    pub source: Source,
    pub force: bool,
    pub guest_files: Vec<GuestFile>,
    #[serde(skip)]
    pub guest: GuestConfig,
    pub pkg_cache: PathBuf,
    pub rpm_home: PathBuf,
    /// yum only: its generated configuration file and content.
    pub yum_conf: Option<(PathBuf, String)>,
    pub record: PathBuf,
    pub warnings: Vec<String>,
}

/// Builds the plan. Reads the cache directory (to decide between install and copy) and
/// nothing else.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    paths: &Paths,
    name: &Name,
    profile_name: &str,
    p: &Profile,
    d: &Distro,
    mirror: Option<&str>,
    tool: Tool,
    force: bool,
    import: Option<&Path>,
    keep_base: bool,
) -> Result<Plan> {
    let mut spec = InstallSpec::new(p, d, mirror, tool)?;
    let pkg_cache = paths.pkg_cache(tool.cache_name(), &spec.distro, &spec.release, &spec.arch);
    let partial = paths.partial(name);
    let cache_entry = paths.base(&spec.cache_key());
    let conf_path = paths.cache.join("yum").join(format!("{}-{}-{}.conf", spec.distro, spec.release, spec.arch));
    let yum_conf = (tool == Tool::Yum).then(|| (conf_path.clone(), spec.yum_conf(&pkg_cache)));
    let source = if let Some(from) = import {
        spec.gpgcheck = false;
        let from = crate::import::check_source(from, paths)?;
        Source::Import { cmd: import_cmd(&from, &partial)?, from }
    } else if cache_entry.join(BASE_MARKER).is_file() {
        Source::Cache { cache_entry }
    } else {
        Source::Install {
            cmd: spec.install_cmd(&partial, &pkg_cache, &paths.rpm_home(), &conf_path),
            cache_entry: keep_base.then_some(cache_entry),
        }
    };
    let guest = GuestConfig {
        hostname: p.hostname.clone().unwrap_or_else(|| name.to_string()),
        securetty: (d.securetty && p.console.enabled).then(|| p.console.tty.clone()),
        netconfig: d.netconfig,
    };
    let mut warnings = vec![];
    if import.is_some() {
        warnings.push(format!(
            "{name} is imported with --rootfs-from: lxcprov did not check package signatures, and `verify` will report it"
        ));
    } else if !spec.gpgcheck {
        warnings.push(format!(
            "package signature checking is OFF for {name} (trust.gpgcheck: false): the root filesystem cannot be trusted, and `verify` will report it"
        ));
    }
    Ok(Plan {
        name: name.clone(),
        profile: profile_name.to_string(),
        rootfs: paths.rootfs(name),
        partial,
        source,
        force,
        guest_files: guest.files(),
        guest,
        pkg_cache,
        rpm_home: paths.rpm_home(),
        yum_conf,
        record: paths.record(name),
        spec,
        warnings,
    })
}

/// The command that copies (a directory) or unpacks (a tarball) an imported rootfs into
/// `partial`, which must already exist.
fn import_cmd(from: &Path, partial: &Path) -> Result<Cmd> {
    let meta = std::fs::metadata(from).with_context(|| format!("--rootfs-from {}: cannot read it", from.display()))?;
    if meta.is_dir() {
        // The trailing "/." copies the directory's contents, not the directory.
        Ok(Cmd::new("cp")
            .args(["-a", "--reflink=auto", "--"])
            .arg(format!("{}/.", from.display()))
            .arg(partial.display().to_string()))
    } else if meta.is_file() {
        // tar picks the decompressor itself; --no-same-owner is NOT used: ownership matters.
        Ok(Cmd::new("tar")
            .args([
                "--extract",
                "--preserve-permissions",
                "--same-owner",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--file",
            ])
            .arg(from.display().to_string())
            .arg("--directory")
            .arg(partial.display().to_string()))
    } else {
        bail!("--rootfs-from {}: not a directory or a tarball", from.display())
    }
}

/// Marks a complete base-cache entry; an entry without it is a leftover and is rebuilt.
pub const BASE_MARKER: &str = ".lxcprov-base.json";

/// What lxcprov remembers about a container it bootstrapped.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Record {
    pub name: String,
    pub profile: String,
    pub distro: String,
    pub release: String,
    pub gpgcheck: bool,
    pub installer: String,
    pub cache_key: String,
    /// Set once the rootfs ownership was shifted for a user namespace: the map it was
    /// shifted for (so it is never shifted twice, and `verify` knows what to expect).
    #[serde(default)]
    pub idmap: Option<crate::profile::Idmap>,
}

impl Record {
    pub fn load(path: &Path) -> Result<Option<Record>> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| format!("reading {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::create_dir_all(path.parent().unwrap())?;
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes(), 0o644)
    }
}

/// Holds the per-name lock for the duration of a run.
pub struct NameLock {
    _file: std::fs::File,
}

/// Takes the lock for `name`, or fails at once if another run holds it.
pub fn lock(paths: &Paths, name: &Name) -> Result<NameLock> {
    let path = paths.lock(name);
    std::fs::create_dir_all(path.parent().unwrap())
        .with_context(|| format!("creating {}", path.parent().unwrap().display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(NameLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another lxcprov run is working on {name} (lock {} is held); wait for it to finish", path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Reports progress of a bootstrap.
pub trait Progress {
    fn phase(&self, text: &str);
    fn line(&self, text: &str);
    fn done(&self, text: &str);
}

/// Runs a plan. The caller holds the name lock.
pub fn execute(plan: &Plan, runner: &dyn Runner, password: &Secret, progress: &dyn Progress) -> Result<()> {
    if plan.rootfs.exists() && !plan.force {
        bail!("{} already exists; lxcprov never overwrites a root filesystem without --force", plan.rootfs.display());
    }
    let hash = password.sha512_crypt()?;
    build(plan, runner, &hash, progress)?;
    swap_into_place(plan)
}

/// Builds the root filesystem in `plan.partial` (configured, with root's `hash`), leaving it
/// there. On failure the partial tree is removed and the error says so.
pub fn build(plan: &Plan, runner: &dyn Runner, hash: &str, progress: &dyn Progress) -> Result<()> {
    // A partial tree can only be a leftover of an interrupted run (we hold the lock).
    crate::fsutil::remove_tree(&plan.partial)?;
    let result = build_partial(plan, runner, hash, progress);
    if let Err(e) = result {
        progress.phase("removing the partial root filesystem");
        let cleanup = crate::fsutil::remove_tree(&plan.partial);
        progress.done("");
        return match cleanup {
            Ok(()) => Err(e.context(format!(
                "bootstrap of {} failed; the partial tree {} was removed and nothing else changed",
                plan.name,
                plan.partial.display()
            ))),
            Err(c) => Err(e.context(format!(
                "bootstrap of {} failed, and removing {} failed too ({c:#}); remove it by hand",
                plan.name,
                plan.partial.display()
            ))),
        };
    }
    Ok(())
}

/// Renames the built tree to `POOL/NAME` and writes the record. With `--force` the old tree
/// is moved aside first and removed last.
fn swap_into_place(plan: &Plan) -> Result<()> {
    let old = plan.partial.with_file_name(format!(".{}.old", plan.name));
    if plan.rootfs.exists() {
        crate::fsutil::remove_tree(&old)?;
        std::fs::rename(&plan.rootfs, &old).with_context(|| format!("moving {} aside", plan.rootfs.display()))?;
    }
    std::fs::rename(&plan.partial, &plan.rootfs)
        .with_context(|| format!("renaming {} to {}", plan.partial.display(), plan.rootfs.display()))?;
    crate::fsutil::remove_tree(&old)?;
    record_for(plan).save(&plan.record)
}

/// The record `execute` writes for a plan.
pub fn record_for(plan: &Plan) -> Record {
    Record {
        name: plan.name.to_string(),
        profile: plan.profile.clone(),
        distro: plan.spec.distro.clone(),
        release: plan.spec.release.clone(),
        gpgcheck: plan.spec.gpgcheck,
        installer: plan.spec.tool.program().into(),
        cache_key: plan.spec.cache_key(),
        idmap: None,
    }
}

/// root's password hash in a root filesystem's `/etc/shadow`, if set.
pub fn root_hash(rootfs: &Path) -> Option<String> {
    let shadow = crate::fsutil::read_in(rootfs, "/etc/shadow").ok()??;
    shadow
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("root")).then(|| f.next().map(str::to_string)).flatten()
        })
        .filter(|h| h.starts_with('$'))
}

fn build_partial(plan: &Plan, runner: &dyn Runner, hash: &str, progress: &dyn Progress) -> Result<()> {
    let pool = plan.partial.parent().context("pool")?;
    crate::fsutil::ensure_private_dir(pool, crate::import::POOL_MODE)?;
    match &plan.source {
        Source::Install { cmd, cache_entry } => {
            std::fs::create_dir_all(&plan.pkg_cache)
                .with_context(|| format!("creating {}", plan.pkg_cache.display()))?;
            if plan.spec.tool != Tool::Debootstrap {
                std::fs::create_dir_all(&plan.rpm_home)?;
                crate::fsutil::write_atomic(&plan.rpm_home.join(".rpmmacros"), b"%_dbpath /var/lib/rpm\n", 0o644)?;
            }
            if let Some((path, text)) = &plan.yum_conf {
                std::fs::create_dir_all(path.parent().context("yum.conf path")?)?;
                crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)?;
            }
            std::fs::create_dir_all(&plan.partial)?;
            progress.phase(&format!(
                "installing {} packages with {}",
                plan.spec.packages.len(),
                plan.spec.tool.program()
            ));
            runner.run(cmd, &mut |l| progress.line(l)).map_err(anyhow::Error::new)?;
            crate::interrupt::check()?;
            progress.done(&format!("installed {} {}", plan.spec.distro, plan.spec.release));
            if let Some(entry) = cache_entry {
                progress.phase("saving the base root filesystem in the cache");
                store_base(plan, runner, entry)?;
                progress.done("cached the base root filesystem");
            }
        }
        Source::Import { from, cmd } => {
            crate::fsutil::ensure_private_dir(&plan.partial, crate::import::PARTIAL_MODE)?;
            progress.phase(&format!("importing {}", from.display()));
            runner.run(cmd, &mut |l| progress.line(l)).map_err(anyhow::Error::new)?;
            crate::import::normalise_tree(&plan.partial)?.warnings().iter().for_each(|w| progress.line(w));
            progress.done(&format!("imported {}", from.display()));
        }
        Source::Cache { cache_entry } => {
            progress.phase(&format!("copying the cached base {}", cache_entry.display()));
            copy_tree(runner, cache_entry, &plan.partial)?;
            crate::fsutil::remove_tree(&plan.partial.join(BASE_MARKER))?;
            progress.done("copied the cached base root filesystem");
        }
    }
    crate::interrupt::check()?;
    progress.phase("configuring the guest");
    plan.guest.apply(&plan.partial, hash)?;
    progress.done("configured hostname, network, console and root password");
    Ok(())
}

/// `cp -a --reflink=auto SRC DST`: a reflink (O(1) per file) where the file system supports
/// it, a plain copy otherwise.
pub fn copy_tree(runner: &dyn Runner, src: &Path, dst: &Path) -> Result<()> {
    let cmd = Cmd::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(src.display().to_string())
        .arg(dst.display().to_string());
    runner.run(&cmd, &mut |_| {}).map_err(anyhow::Error::new)
}

fn store_base(plan: &Plan, runner: &dyn Runner, entry: &Path) -> Result<()> {
    let tmp = entry.with_extension("partial");
    crate::fsutil::remove_tree(&tmp)?;
    std::fs::create_dir_all(entry.parent().unwrap())?;
    let r = (|| -> Result<()> {
        copy_tree(runner, &plan.partial, &tmp)?;
        crate::fsutil::write_atomic(
            &tmp.join(BASE_MARKER),
            serde_json::to_string_pretty(&plan.spec)?.as_bytes(),
            0o644,
        )?;
        crate::fsutil::remove_tree(entry)?;
        std::fs::rename(&tmp, entry)?;
        Ok(())
    })();
    if r.is_err() {
        let _ = crate::fsutil::remove_tree(&tmp);
    }
    r.with_context(|| format!("storing the base root filesystem in {}", entry.display()))
}
