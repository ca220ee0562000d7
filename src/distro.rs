//! The distribution catalog (`src/catalog/distros.yaml`, embedded at build time).
//!
//! Each entry says which installer builds the root filesystem, the default release, the base
//! packages, where the packages come from and which keys sign them. Nothing here touches
//! the host.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const CATALOG: &str = include_str!("catalog/distros.yaml");

/// Which tool installs a root filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallerKind {
    Dnf,
    Yum,
    Debootstrap,
}

/// How the guest configures its network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetConfig {
    /// `/etc/sysconfig/network-scripts/ifcfg-eth0` (EL7 network service).
    Ifcfg,
    /// A NetworkManager keyfile (EL9).
    Networkmanager,
    /// A systemd-networkd `.network` file (Debian, Ubuntu, Fedora).
    Networkd,
}

/// One rpm repository, relative to the distribution's mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoPath {
    pub id: String,
    pub path: String,
}

/// One catalog entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distro {
    #[serde(skip_deserializing)]
    pub name: String,
    pub description: String,
    pub installer: InstallerKind,
    pub release: String,
    pub mirror: String,
    #[serde(default)]
    pub repos: Vec<RepoPath>,
    #[serde(default)]
    pub gpgkeys: Vec<String>,
    #[serde(default)]
    pub codenames: BTreeMap<String, String>,
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub keyring: Option<String>,
    pub base_packages: Vec<String>,
    pub securetty: bool,
    pub netconfig: NetConfig,
    #[serde(default)]
    pub package_sets: BTreeMap<String, Vec<String>>,
}

impl Distro {
    /// The debootstrap suite (codename) for `release`, or the release itself.
    pub fn suite(&self, release: &str) -> String {
        self.codenames.get(release).cloned().unwrap_or_else(|| release.to_string())
    }
}

/// Substitutes `{release}`, `{arch}` and `{debarch}` in a catalog URL.
pub fn expand(template: &str, release: &str, arch: &str) -> String {
    template.replace("{release}", release).replace("{arch}", arch).replace("{debarch}", &debian_arch(arch))
}

/// Debian's name for an rpm/kernel architecture.
pub fn debian_arch(arch: &str) -> String {
    match arch {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i686" | "i386" => "i386".into(),
        other => other.into(),
    }
}

/// The host's architecture, in rpm/kernel spelling.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// The whole catalog, sorted by name.
pub fn catalog() -> Vec<Distro> {
    let map: BTreeMap<String, Distro> =
        crate::yaml::parse(CATALOG, "built-in distro catalog").expect("built-in catalog parses");
    map.into_iter()
        .map(|(name, mut d)| {
            d.name = name;
            d
        })
        .collect()
}

/// Looks a distribution up by name.
pub fn lookup(name: &str) -> anyhow::Result<Distro> {
    let all = catalog();
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    let joined = names.join(", ");
    all.iter()
        .find(|d| d.name == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("unknown distro {name:?}: known distros are {joined} (see `lxcprov distros`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_required_distros() {
        let names: Vec<String> = catalog().into_iter().map(|d| d.name).collect();
        for want in ["centos7", "centos-stream9", "almalinux9", "rockylinux9", "fedora", "debian12", "ubuntu"] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn every_entry_is_complete() {
        for d in catalog() {
            match d.installer {
                InstallerKind::Debootstrap => {
                    assert!(d.keyring.is_some(), "{} has no keyring", d.name);
                    assert!(d.codenames.contains_key(&d.release), "{} default release has no codename", d.name);
                }
                _ => {
                    assert!(!d.repos.is_empty(), "{} has no repos", d.name);
                    assert!(!d.gpgkeys.is_empty(), "{} has no gpg keys", d.name);
                }
            }
            assert!(d.package_sets.contains_key("web-server"), "{} lacks web-server", d.name);
        }
    }

    #[test]
    fn paper_distro_matches_the_guide() {
        let c7 = lookup("centos7").unwrap();
        assert_eq!(c7.installer, InstallerKind::Yum);
        assert_eq!(c7.release, "7");
        assert!(c7.securetty);
        assert!(c7.mirror.contains("vault.centos.org"));
    }

    #[test]
    fn unknown_distro_lists_known_ones() {
        let e = lookup("gentoo").unwrap_err().to_string();
        assert!(e.contains("debian12") && e.contains("centos7"), "{e}");
    }

    #[test]
    fn expands_urls() {
        assert_eq!(expand("a/{release}/{arch}/{debarch}", "9", "x86_64"), "a/9/x86_64/amd64");
    }
}
