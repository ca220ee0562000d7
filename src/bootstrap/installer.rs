//! The installers: which tool installs a distro, and the exact argv it runs.

use super::keys;
use crate::distro::{self, Distro, InstallerKind};
use crate::exec::Cmd;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

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
    pub fn cache_name(self) -> &'static str {
        match self {
            Tool::Dnf4 | Tool::Yum => "dnf",
            Tool::Dnf5 => "libdnf5",
            Tool::Debootstrap => "debootstrap",
        }
    }
}

impl std::str::FromStr for Tool {
    type Err = String;
    /// An rpm installer by its command name: dnf, dnf5 or yum.
    fn from_str(s: &str) -> Result<Tool, String> {
        match s {
            "dnf" => Ok(Tool::Dnf4),
            "dnf5" => Ok(Tool::Dnf5),
            "yum" => Ok(Tool::Yum),
            other => Err(format!("{other:?} is not an rpm installer: use dnf, dnf5 or yum")),
        }
    }
}

/// Picks the tool for a catalog installer from what the host has. `forced` (the
/// `--rpm-installer` option, env `LXCPROV_DNF`) forces the rpm tool. `has` answers whether a
/// program is on PATH.
pub fn choose_tool(kind: InstallerKind, forced: Option<Tool>, has: &dyn Fn(&str) -> bool) -> Result<Tool> {
    if kind == InstallerKind::Debootstrap {
        return Ok(Tool::Debootstrap);
    }
    if let Some(t) = forced {
        return Ok(t);
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
    /// The fingerprints its keys must have; empty: trusted as fetched (warned).
    pub fingerprints: Vec<String>,
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
    /// rpm: the database the guest's own rpm reads (backend and path).
    pub rpmdb: Option<crate::distro::RpmDb>,
    /// debootstrap: the archive keys pinned for this release.
    pub keyring_pins: Vec<String>,
    pub script: Option<String>,
    /// Where the verified copies of the keys live (not part of the cache key).
    #[serde(skip)]
    pub keys_dir: std::path::PathBuf,
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
            Some(rs) => rs
                .iter()
                .map(|r| Repo {
                    id: r.id.clone(),
                    url: r.url.clone(),
                    gpgkeys: r.gpgkeys.clone(),
                    fingerprints: r.fingerprints.iter().filter_map(|f| keys::normalise(f)).collect(),
                })
                .collect(),
            None if d.installer == InstallerKind::Debootstrap => vec![],
            None => d
                .repos
                .iter()
                .map(|r| Repo {
                    id: r.id.clone(),
                    url: format!("{}/{}", mirror.trim_end_matches('/'), distro::expand(&r.path, &release, &arch)),
                    gpgkeys: d.gpgkeys.iter().map(|k| distro::expand(k, &release, &arch)).collect(),
                    fingerprints: d.pins(&release),
                })
                .collect(),
        };
        if p.trust.gpgcheck && tool != Tool::Debootstrap && repos.iter().any(|r| r.gpgkeys.is_empty()) {
            bail!("gpg checking is on but a repository has no gpg key: add gpgkeys, or set trust.gpgcheck: false explicitly");
        }
        let keyring_pins = if d.installer == InstallerKind::Debootstrap { d.pins(&release) } else { vec![] };
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
            keyring_pins,
            rpmdb: if tool == Tool::Debootstrap {
                None
            } else {
                Some(d.rpmdb.clone().unwrap_or(crate::distro::RpmDb {
                    backend: crate::distro::RpmDbBackend::Sqlite,
                    path: "/var/lib/rpm".into(),
                }))
            },
            keys_dir: std::path::PathBuf::new(),
            script: d.script.clone(),
        })
    }

    /// Where the guest's rpm database lives (`/var/lib/rpm` unless the catalog says else).
    pub fn rpm_dbpath(&self) -> String {
        self.rpmdb.as_ref().map(|d| d.path.clone()).unwrap_or_else(|| "/var/lib/rpm".into())
    }

    /// The keys the installer trusts for `r`: lxcprov's verified local copies.
    pub fn local_keys(&self, r: &Repo) -> Vec<String> {
        r.gpgkeys.iter().map(|k| format!("file://{}", keys::local_copy(&self.keys_dir, k).display())).collect()
    }

    /// Every key to verify before the install, with its pins.
    pub fn pinned_keys(&self) -> Vec<(keys::PinnedKey, Vec<String>)> {
        let mut v: Vec<(keys::PinnedKey, Vec<String>)> = vec![];
        for r in &self.repos {
            for k in &r.gpgkeys {
                let pk = keys::PinnedKey { url: k.clone(), local: keys::local_copy(&self.keys_dir, k) };
                if !v.iter().any(|(x, _)| *x == pk) {
                    v.push((pk, r.fingerprints.clone()));
                }
            }
        }
        v
    }

    /// debootstrap with pinned archive keys: the keyring holding exactly those.
    pub fn pinned_keyring(&self) -> Option<std::path::PathBuf> {
        (self.tool == Tool::Debootstrap && self.gpgcheck && !self.keyring_pins.is_empty())
            .then(|| self.keys_dir.join(format!("{}-{}.gpg", self.distro, self.release)))
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
                s += &format!("gpgkey={}\n", self.local_keys(r).join(" "));
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
                    self.local_keys(r).join(",")
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
            if let Some(k) = self.pinned_keyring() {
                c = c.arg(format!("--keyring={}", k.display()));
            } else if let Some(k) = &self.keyring {
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
