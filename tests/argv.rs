//! Golden installer argv: for every built-in profile, and for each rpm tool on the paper
//! profile, exactly what `bootstrap` would run. Refresh with UPDATE_GOLDEN=1.

use lxcprov::bootstrap::{self, Source, Tool};
use lxcprov::name::Name;
use lxcprov::paths::Paths;
use lxcprov::profile::{self, Sources};
use std::path::Path;

fn argv_for(profile: &str, distro: Option<&str>, tool: Tool) -> String {
    let mut p = profile::find(&Sources::default(), profile).unwrap().profile;
    if let Some(d) = distro {
        p.distro = d.into();
        p.release = None;
        p.base_packages = None;
    }
    let d = lxcprov::distro::lookup(&p.distro).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // An empty cache (so the plan installs) but the default, printable paths in the argv.
    let paths = Paths { cache: dir.path().join("cache"), ..Paths::default() };
    let name = Name::parse("web1").unwrap();
    let opts = bootstrap::Options { keep_base: true, ..Default::default() };
    let plan = bootstrap::plan(&paths, &name, profile, &p, &d, tool, &opts).unwrap();
    let Source::Install { cmd, .. } = &plan.source else { panic!("expected an install") };
    let mut s = format!("## {profile} / {} / {:?}\n", d.name, tool);
    s += &cmd.display().replace(&paths.cache.display().to_string(), "/var/cache/lxcprov");
    s.push('\n');
    if let Some((_, conf)) = &plan.yum_conf {
        s += &conf.replace(&paths.cache.display().to_string(), "/var/cache/lxcprov");
    }
    s
}

#[test]
fn golden_installer_argv() {
    let mut out = String::new();
    for p in ["hardened", "minimal", "paper", "web"] {
        let loaded = profile::find(&Sources::default(), p).unwrap().profile;
        let tool = if loaded.distro.starts_with("debian") || loaded.distro == "ubuntu" {
            Tool::Debootstrap
        } else {
            Tool::Dnf4
        };
        out += &argv_for(p, None, tool);
    }
    for tool in [Tool::Dnf5, Tool::Yum] {
        out += &argv_for("paper", None, tool);
    }
    out += &argv_for("minimal", Some("ubuntu"), Tool::Debootstrap);
    out += &argv_for("minimal", Some("fedora"), Tool::Dnf5);
    out += &argv_for("web", Some("rockylinux9"), Tool::Dnf4);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/argv.txt");
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&golden, &out).unwrap();
    }
    assert_eq!(out, std::fs::read_to_string(&golden).expect("tests/golden/argv.txt (UPDATE_GOLDEN=1)"));
}

#[test]
fn paper_argv_is_the_guides_command() {
    let s = argv_for("paper", None, Tool::Dnf4);
    let line = s.lines().nth(1).unwrap();
    assert!(line.contains(" --installroot=/var/lib/libvirt/filesystems/.web1.partial --releasever=7 "), "{line}");
    assert!(line.ends_with(" install systemd passwd yum centos-release vim-minimal procps-ng iproute net-tools dhclient policycoreutils"), "{line}");
    assert!(line.contains("--setopt=lxcprov-base.gpgcheck=True"));
    // The installer trusts only lxcprov's verified copy of the pinned key.
    assert!(line.contains("--setopt=lxcprov-base.gpgkey=file:///var/cache/lxcprov/keys/"), "{line}");
    assert!(line.contains("--setopt=reposdir=/nonexistent/lxcprov"), "host repositories must not be read");
    assert!(!line.contains("--nogpgcheck"));
    let yum = argv_for("paper", None, Tool::Yum);
    assert!(yum.contains("'--disablerepo=*' --enablerepo=lxcprov-base --enablerepo=lxcprov-updates"), "{yum}");
    assert!(yum.contains("gpgcheck=1") && yum.contains("reposdir=/nonexistent/lxcprov"));
    let dnf5 = argv_for("paper", None, Tool::Dnf5);
    assert!(dnf5.contains("--no-plugins") && dnf5.contains("--use-host-config"));
}

#[test]
fn package_names_can_never_become_options() {
    // The profile parser refuses them; the argv builder refuses them again.
    let mut p = profile::find(&Sources::default(), "minimal").unwrap().profile;
    p.packages = vec!["--setopt=gpgcheck=0".into()];
    let d = lxcprov::distro::lookup("debian12").unwrap();
    assert!(bootstrap::InstallSpec::new(&p, &d, None, Tool::Debootstrap).is_err());
    p.packages = vec![];
    for bad in ["http://a b", "--mirror", "ftp://x", "http://x\ny"] {
        assert!(bootstrap::InstallSpec::new(&p, &d, Some(bad), Tool::Debootstrap).is_err(), "{bad:?}");
    }
}
