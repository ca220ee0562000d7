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

/// Which releases a distribution accepts. A release is substituted into URLs, suites and
/// cache paths, so it is never free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseFormat {
    /// A release number, optionally with a minor: `7`, `9`, `43`, `9.4` (EL, Fedora).
    Number,
    /// A catalog codename key (`12`, `24.04`), a lower-case codename (`trixie`), or a version
    /// number like `13` or `26.04` (Debian, Ubuntu).
    Codename,
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
    pub release_format: ReleaseFormat,
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
    /// The signing keys' fingerprints, per release (`"*"`: every release): the only keys
    /// the installer is allowed to trust.
    #[serde(default)]
    pub fingerprints: BTreeMap<String, Vec<String>>,
    /// rpm distributions: the package database the guest's own rpm reads.
    #[serde(default)]
    pub rpmdb: Option<RpmDb>,
}

/// Where and in which format a guest's rpm keeps its database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpmDb {
    pub backend: RpmDbBackend,
    pub path: String,
}

/// `bdb`: Berkeley DB (rpm 4.11, EL7: the host's rpm cannot write it); `sqlite` (EL9, Fedora).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RpmDbBackend {
    Bdb,
    Sqlite,
}

impl Distro {
    /// The pinned fingerprints for `release`, normalised (40 upper-case hex digits).
    pub fn pins(&self, release: &str) -> Vec<String> {
        let v = self.fingerprints.get(release).or_else(|| self.fingerprints.get("*"));
        v.into_iter().flatten().filter_map(|f| crate::distro::normalise_fingerprint(f)).collect()
    }

    /// Is `release` one this distribution accepts ([`ReleaseFormat`])? Never `..`, `/`,
    /// spaces or other text that could leave a URL or a cache path.
    pub fn check_release(&self, release: &str) -> Result<(), String> {
        let digits = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes().all(|b| b.is_ascii_digit())
                && !(s.len() > 1 && s.starts_with('0'))
        };
        let version = |s: &str, minor_len: usize| match s.split_once('.') {
            Some((a, b)) => {
                digits(a, 3) && !b.is_empty() && b.len() <= minor_len && b.bytes().all(|c| c.is_ascii_digit())
            }
            None => digits(s, 3),
        };
        let ok = match self.release_format {
            ReleaseFormat::Number => version(release, 3),
            ReleaseFormat::Codename => {
                self.codenames.contains_key(release)
                    || version(release, 2)
                    || (release.len() <= 32
                        && release.starts_with(|c: char| c.is_ascii_lowercase())
                        && release.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            }
        };
        if ok {
            return Ok(());
        }
        let what = match self.release_format {
            ReleaseFormat::Number => "a release number such as 9, 43 or 9.4".to_string(),
            ReleaseFormat::Codename => {
                let known: Vec<&str> = self.codenames.keys().map(String::as_str).collect();
                format!("a release such as {} or a lower-case codename", known.join(", "))
            }
        };
        Err(format!("release {release:?} is not a release of {}: use {what}", self.name))
    }

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
    fn default_releases_pass_their_own_format() {
        for d in catalog() {
            assert_eq!(d.check_release(&d.release), Ok(()), "{}", d.name);
            for (k, v) in &d.codenames {
                assert_eq!(d.check_release(k), Ok(()), "{} {k}", d.name);
                assert_eq!(d.check_release(v), Ok(()), "{} {v}", d.name);
            }
        }
    }

    #[test]
    fn rpm_releases_are_numbers() {
        let el = lookup("almalinux9").unwrap();
        for ok in ["7", "9", "10", "40", "43", "9.4", "8.10"] {
            assert_eq!(el.check_release(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "7/../../x",
            "9/",
            "/9",
            "9.",
            ".9",
            "9..4",
            "09",
            "+9",
            "-9",
            "9 ",
            " 9",
            "1e3",
            "9\n",
            "rawhide",
            "bookworm",
            "1234",
            "9.4.1",
            "9.1234",
            "{release}",
            "9%2f..",
            "9\u{0}",
            "٩",
        ] {
            assert!(el.check_release(bad).is_err(), "{bad:?}");
        }
        let e = lookup("fedora").unwrap().check_release("..").unwrap_err();
        assert!(e.contains("fedora") && e.contains("release number"), "{e}");
    }

    #[test]
    fn debian_releases_are_codenames_or_numbers() {
        let deb = lookup("debian12").unwrap();
        let ubu = lookup("ubuntu").unwrap();
        for ok in ["12", "13", "bookworm", "trixie", "sid", "forky"] {
            assert_eq!(deb.check_release(ok), Ok(()), "{ok}");
        }
        for ok in ["24.04", "22.04", "26.04", "noble", "jammy"] {
            assert_eq!(ubu.check_release(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "bookworm/../x",
            "Bookworm",
            "bookworm-backports",
            "a b",
            "bookworm\n",
            "-x",
            "1.2.3",
            "24.004",
            "x/y",
            "~",
            "$(id)",
            "trixie;",
            "é",
        ] {
            assert!(deb.check_release(bad).is_err(), "{bad:?}");
            assert!(ubu.check_release(bad).is_err(), "{bad:?}");
        }
        assert!(deb.check_release(&"a".repeat(33)).is_err());
    }

    #[test]
    fn expands_urls() {
        assert_eq!(expand("a/{release}/{arch}/{debarch}", "9", "x86_64"), "a/9/x86_64/amd64");
    }
}

/// A key the installer will trust: where it comes from, where lxcprov keeps the verified copy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PinnedKey {
    pub url: String,
    pub local: std::path::PathBuf,
}

/// A fingerprint as 40 upper-case hex digits (spaces allowed in the input), or `None`.
pub fn normalise_fingerprint(f: &str) -> Option<String> {
    let s: String = f.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    (s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())).then_some(s)
}

/// `6341 AB27 ...`: groups of four, as key pages print them.
pub fn pretty_fingerprint(f: &str) -> String {
    f.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// Which package manager keeps the guest's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Rpm,
    Dpkg,
}
