//! Root tier, packaging: the .deb installed with apt (man pages, completions, the libvirt
//! hook) and purged, the .rpm's files and requirements listed.

use super::*;

/// Purges the lxcprov package when dropped (the package test installs it on this host).
struct PurgePackage;
impl Drop for PurgePackage {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "lxcprov"]).output();
    }
}

fn package_installed() -> bool {
    let o = Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", "lxcprov"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).starts_with("ii")
}

#[test]
#[ignore = "root tier: needs root and apt (scripts/test.sh)"]
fn the_deb_installs_with_apt_and_brings_man_pages_and_completions_and_the_rpm_lists_them() {
    assert!(is_root(), "the root tier must run as root");
    assert!(
        !package_installed(),
        "the lxcprov package is installed on this host; this test installs and purges it: remove yours first"
    );
    let d = workdir("pkg");
    let out = d.path().join("out");
    // The test build is packaged (a release build would take minutes); the layout is the same.
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package.sh"))
        .args(["--binary", bin().to_str().unwrap(), "--out", out.to_str().unwrap(), "--fast", "all"])
        .output()
        .unwrap();
    assert!(o.status.success(), "package.sh: {}", stderr(&o));
    let built: Vec<String> = stdout(&o).lines().map(String::from).collect();
    let deb = built.iter().find(|p| p.ends_with(".deb")).expect("a .deb");
    let rpm = built.iter().find(|p| p.ends_with(".rpm")).expect("an .rpm");
    let version = env!("CARGO_PKG_VERSION");
    assert!(deb.contains(&format!("lxcprov_{version}-1_")), "{deb}");

    // The rpm: its file list and what it requires.
    let files = stdout(&Command::new("rpm").args(["-qpl", rpm]).output().unwrap());
    for f in [
        "/usr/bin/lxcprov",
        "/usr/share/man/man1/lxcprov.1.gz",
        "/usr/share/man/man1/lxcprov-create.1.gz",
        "/usr/share/man/man1/lxcprov-lab-up.1.gz",
        "/usr/share/bash-completion/completions/lxcprov",
        "/usr/share/zsh/site-functions/_lxcprov",
        "/usr/share/fish/vendor_completions.d/lxcprov.fish",
        "/usr/share/lxcprov/profiles/web.yaml",
        "/usr/share/lxcprov/libvirt-hook-lxc",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} missing from the rpm:\n{files}");
    }
    let requires = stdout(&Command::new("rpm").args(["-qpR", rpm]).output().unwrap());
    assert!(requires.contains("libvirt-daemon-driver-lxc") && requires.contains("libvirt.so.0"), "{requires}");

    // The deb: apt installs it offline (its dependencies are the host's packages). Its
    // scripts rewrite the libvirt hook; the text it had is put back at the end (in place).
    let _hook = RestoreHook::save();
    let _purge = PurgePackage;
    let o = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            &format!("./{}", Path::new(deb).file_name().unwrap().to_str().unwrap()),
        ])
        .current_dir(&out)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert!(o.status.success(), "apt-get install: {}{}", stdout(&o), stderr(&o));
    assert!(package_installed());
    let o = Command::new("/usr/bin/lxcprov").arg("--help").output().unwrap();
    assert!(o.status.success() && stdout(&o).contains("EXIT STATUS"), "{}", stderr(&o));
    let o = Command::new("man").args(["-w", "lxcprov-create"]).output().unwrap();
    assert_eq!(stdout(&o).trim(), "/usr/share/man/man1/lxcprov-create.1.gz", "{}", stderr(&o));
    let o = Command::new("man").args(["-P", "cat", "lxcprov-lab-up"]).env("MANWIDTH", "100").output().unwrap();
    assert!(stdout(&o).contains("--count"), "man lxcprov-lab-up: {}", stderr(&o));
    // Bash completion: the installed script completes a subcommand.
    let comp = "/usr/share/bash-completion/completions/lxcprov";
    assert!(Path::new(comp).is_file());
    let o = Command::new("bash")
        .args([
            "-c",
            &format!("source {comp}; COMP_WORDS=(lxcprov cre); COMP_CWORD=1; _lxcprov lxcprov cre lxcprov; echo \"${{COMPREPLY[@]}}\""),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "create", "{}", stderr(&o));
    assert!(Path::new("/usr/share/zsh/vendor-completions/_lxcprov").is_file());
    assert!(Path::new("/usr/share/fish/vendor_completions.d/lxcprov.fish").is_file());
    assert!(Path::new("/usr/share/lxcprov/profiles/paper.yaml").is_file());
    // The libvirt hook runs the packaged lxcprov (unless the host has a hook of its own).
    let hook = || std::fs::read_to_string("/etc/libvirt/hooks/lxc").unwrap_or_default();
    let ours = hook().contains("# lxcprov libvirt LXC hook");
    if ours {
        assert!(hook().contains("exec /usr/bin/lxcprov hook lxc \"$@\""), "{}", hook());
    }

    // Removing the package removes its files.
    let o = Command::new("apt-get")
        .args(["purge", "-y", "lxcprov"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!Path::new("/usr/bin/lxcprov").exists() && !Path::new(comp).exists());
    // ... except the hook, made dormant in place: libvirtd runs it at every start.
    if ours {
        assert!(hook().contains("exit 0") && !hook().contains("exec /usr/bin/lxcprov"), "{}", hook());
    }
}

/// Puts `/etc/libvirt/hooks/lxc` back as a test found it when it drops (a failed test too):
/// the same text and mode, written in place (the file libvirtd found at its start stays),
/// or no file when there was none. Declare it before anything that rewrites the hook.
struct RestoreHook(Option<(Vec<u8>, u32)>);
impl RestoreHook {
    fn save() -> RestoreHook {
        let p = Path::new(HOST_HOOK);
        RestoreHook(std::fs::read(p).ok().zip(std::fs::metadata(p).ok().map(|m| m.permissions().mode())))
    }
}
impl Drop for RestoreHook {
    fn drop(&mut self) {
        match &self.0 {
            Some((text, mode)) => {
                if std::fs::read(HOST_HOOK).ok().as_ref() != Some(text) {
                    let f = std::fs::OpenOptions::new().write(true).truncate(true).create(true).open(HOST_HOOK);
                    let _ = f.and_then(|mut f| std::io::Write::write_all(&mut f, text));
                }
                let _ = std::fs::set_permissions(HOST_HOOK, std::fs::Permissions::from_mode(*mode));
            }
            None => {
                let _ = std::fs::remove_file(HOST_HOOK);
            }
        }
    }
}
