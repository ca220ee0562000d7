//! What the root tier's tests share: work directories, virsh, lxcprov run against the
//! system libvirtd, profiles, the busybox tree, the signed RPM repositories, the checks of a
//! `--json` report, and guards that put the host back as a test found it.

// What nearly every test names, for the modules' `use super::*`.
pub use std::os::unix::fs::PermissionsExt;
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output, Stdio};
pub use std::time::{Duration, Instant};

use crate::common::json::{records, Check, Container, Record, Status, Update};
use crate::common::{lxcprov, stderr};

pub const URI: &str = "lxc:///";

/// A work directory traversable by other uids (a user-namespaced init must reach its rootfs).
pub fn workdir(tag: &str) -> tempfile::TempDir {
    std::fs::create_dir_all("/var/tmp/lxcprov-it").unwrap();
    let d = tempfile::Builder::new().prefix(&format!("{tag}-")).tempdir_in("/var/tmp/lxcprov-it").unwrap();
    for p in [Path::new("/var/tmp/lxcprov-it"), d.path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    d
}

pub fn virsh(args: &[&str]) -> Output {
    Command::new("virsh").arg("-c").arg(URI).args(args).output().unwrap()
}

pub fn domain_exists(name: &str) -> bool {
    virsh(&["dominfo", name]).status.success()
}

pub fn network_exists(name: &str) -> bool {
    virsh(&["net-info", name]).status.success()
}

/// Removes test domains and networks left by an earlier run.
pub fn clean(names: &[&str], networks: &[&str]) {
    for n in names {
        let _ = virsh(&["destroy", n]);
        let _ = virsh(&["undefine", n]);
    }
    for n in networks {
        let _ = virsh(&["net-destroy", n]);
        let _ = virsh(&["net-undefine", n]);
    }
}

/// Removes these domains and networks when dropped (a failed test's too).
pub struct Cleanup(pub Vec<&'static str>, pub Vec<&'static str>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        clean(&self.0, &self.1);
    }
}

/// Running systemd containers paused for a test that needs other id maps, started again
/// when the guard drops (a failed test's too: declare it before the test's `Cleanup`, so
/// it drops after the test's domains are gone).
///
/// On a host with cgroup v1, a `name=systemd` hierarchy and PID 1 not systemd (this
/// project's CI machine), a running user-namespaced systemd container, such as the quick
/// start's `web1`, holds the shared `name=systemd` cgroups, and lxcprov refuses to start a
/// container with another map beside it ("cannot start next to ..."). The product keeps
/// refusing; the tests that need other maps (isolated ones) make room themselves, so the
/// README's `scripts/quickstart.sh` then `scripts/test.sh` pass with nothing between.
/// Containers of other test runs (named `lxcprov-*` or `chaos-*`: they come and go) are
/// waited for, never stopped. Does nothing on other hosts.
pub struct PausedSystemd(Vec<String>);
impl PausedSystemd {
    pub fn pause() -> PausedSystemd {
        // The guard exists from the start: a panic below still starts what was paused.
        let mut guard = PausedSystemd(vec![]);
        let paused = &mut guard.0;
        // How long other test runs' containers are waited for (LXCPROV_TEST_PAUSE_WAIT s).
        let wait = std::env::var("LXCPROV_TEST_PAUSE_WAIT").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
        let deadline = Instant::now() + Duration::from_secs(wait);
        loop {
            let holders = systemd_holders();
            let (tests, users): (Vec<String>, Vec<String>) =
                holders.into_iter().partition(|n| n.starts_with("lxcprov-") || n.starts_with("chaos-"));
            let Some(name) = users.into_iter().find(|n| !paused.contains(n)) else {
                if tests.is_empty() {
                    break;
                }
                // Another test run's container: it goes by itself.
                assert!(Instant::now() < deadline, "{tests:?} still hold the name=systemd cgroups after {wait} s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            };
            eprintln!("pausing {name} for this test (a container with another id map cannot start beside it); it is started again after");
            paused.push(name.clone());
            let _ = virsh(&["shutdown", &name]);
            let stop_by = Instant::now() + Duration::from_secs(60);
            while !domain_state(&name).starts_with("shut off") {
                if Instant::now() > stop_by {
                    let _ = virsh(&["destroy", &name]);
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        guard
    }
}

/// The running user-namespaced containers holding the shared `name=systemd` cgroups (their
/// processes sit in its top-level cgroups, as a systemd puts itself in `init.scope`) on a
/// host whose PID 1 is not systemd; empty elsewhere. As lxcprov's refusal sees them
/// (`container::cgroupv1::systemd_cgroup_holder`), by domain name.
fn systemd_holders() -> Vec<String> {
    if std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd") {
        return vec![];
    }
    let mut names = vec![];
    for e in std::fs::read_dir("/sys/fs/cgroup/systemd").into_iter().flatten().flatten() {
        let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
            let target = map.split_whitespace().nth(1).unwrap_or("0");
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            if let (false, Some(n)) = (target == "0", lxcprov::facts::container_of(&cg)) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
    }
    names
}
impl Drop for PausedSystemd {
    fn drop(&mut self) {
        for n in &self.0 {
            let o = virsh(&["start", n]);
            if o.status.success() {
                eprintln!("started {n} again");
            } else {
                eprintln!("WARNING: could not start {n} again: {}", String::from_utf8_lossy(&o.stderr).trim());
            }
        }
    }
}

pub fn domain_state(name: &str) -> String {
    String::from_utf8_lossy(&virsh(&["domstate", name]).stdout).trim().to_string()
}

/// lxcprov on the system libvirtd with `dir`'s pool, cache and state and the embedded init
/// shim; the command line, exit status and stderr go to the test's output.
pub fn lx(dir: &Path, args: &[&str]) -> Output {
    let o = lxcprov(dir).env("LIBVIRT_DEFAULT_URI", URI).env_remove("LXCPROV_INIT_SHIM").args(args).output().unwrap();
    eprintln!("$ lxcprov {}\n  exit {:?}\n{}", args.join(" "), o.status.code(), stderr(&o));
    o
}

/// `lxcprov bootstrap NAME --profile P --profile-file FILE --root-password-file PW`.
pub fn bootstrap_with(dir: &Path, name: &str, profile: &str, file: &Path, pw: &Path) -> Output {
    lx(
        dir,
        &[
            "bootstrap",
            name,
            "--profile",
            profile,
            "--profile-file",
            file.to_str().unwrap(),
            "--root-password-file",
            pw.to_str().unwrap(),
        ],
    )
}

/// `DIR/NAME.yaml`, for `--profile-file`.
pub fn write_profile(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

/// What is left in `DIR/pool`.
pub fn pool_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("pool"))
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// The `check` records of a `--json` report (every line must be a record).
pub fn checks(o: &Output) -> Vec<Check> {
    records(&o.stdout).iter().filter_map(Record::as_check).cloned().collect()
}

/// The status of check `id`; fails the test when there is no such check.
pub fn status_of(checks: &[Check], id: &str) -> Status {
    checks.iter().find(|c| c.id == id).map(|c| c.status).unwrap_or_else(|| panic!("no check {id} in {checks:?}"))
}

/// The `update` records of `outdated` or `lab outdated`.
pub fn updates(o: &Output) -> Vec<Update> {
    records(&o.stdout).iter().filter_map(Record::as_update).cloned().collect()
}

/// Container `name`'s row in the output of `list --json`.
pub fn list_row(o: &Output, name: &str) -> Container {
    let rows = records(&o.stdout);
    rows.iter()
        .filter_map(Record::as_container)
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {rows:?}"))
}

pub const BB_PROFILE: &str = "description: busybox test\ndistro: debian12\nmemory_mib: 64\ncpu: {shares: 300}\nnetwork: {mode: isolated, name: lxcprov-it-bbnet}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n";

/// A bootable busybox tree at `DIR/bb` (scripts/lib/busybox-rootfs.sh).
pub fn busybox(dir: &Path) -> PathBuf {
    let bb = dir.join("bb");
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/busybox-rootfs.sh"))
        .arg(&bb)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    bb
}

pub const SYSTEMD_PROFILE: &str = "description: debian with systemd, web-like security\ndistro: debian12\nmemory_mib: 256\ncpu: {shares: 512}\nnetwork: {mode: isolated, name: lxcprov-it-net, filter: clean-traffic}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {net_raw: off, sys_ptrace: off, sys_rawio: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n";

/// libvirt's LXC hook on this host.
pub const HOST_HOOK: &str = "/etc/libvirt/hooks/lxc";

/// The signed local RPM repositories the dnf tests install from, under `DIR/repo`, made by
/// `scripts/make-test-repo.sh`: a throwaway signing key ([`SignedRepo::key`]), packages
/// built with rpmbuild, signed with it and indexed with createrepo_c, in flavours:
/// `signed` (lxcprov-base, lxcprov-hello), `unsigned`, `tampered` (a payload byte flipped
/// after signing), `native` (plus lxcprov-rpm, the host's rpm with its database at
/// /var/lib/rpm, and lxcprov-busybox, a userland that boots) and `wrongdb` (the same, its
/// rpm looking in /usr/lib/sysimage/rpm). [`SignedRepo::profile`] writes profiles that
/// install from them; [`SignedRepo::with_package`] makes a newer repository.
pub struct SignedRepo {
    /// The repositories' directory (`DIR/repo`).
    pub dir: PathBuf,
    /// The armoured public half of the signing key.
    pub key: PathBuf,
}

impl SignedRepo {
    pub fn new(dir: &Path) -> SignedRepo {
        let out = dir.join("repo");
        let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-repo.sh"))
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "make-test-repo.sh failed: {}", String::from_utf8_lossy(&o.stderr));
        SignedRepo { key: out.join("RPM-GPG-KEY-lxcprov-test"), dir: out }
    }

    /// The signing key's fingerprint, as a profile's `fingerprints` pins it.
    pub fn fingerprint(&self) -> String {
        let home = tempfile::tempdir().unwrap();
        let o = Command::new("gpg")
            .arg("--batch")
            .arg("--homedir")
            .arg(home.path())
            .args(["--show-keys", "--with-colons"])
            .arg(&self.key)
            .output()
            .unwrap();
        let colons = String::from_utf8_lossy(&o.stdout).to_string();
        let fpr = colons.lines().find(|l| l.starts_with("fpr:")).unwrap_or_else(|| panic!("no fingerprint: {colons}"));
        fpr.split(':').nth(9).unwrap().to_string()
    }

    /// A repository at `dest`: the `signed` flavour's packages and `name` at `version`
    /// (noarch, release 1, one file `file` holding the version; built here with rpmbuild
    /// and not signed), indexed with createrepo_c.
    pub fn with_package(&self, dest: &Path, name: &str, version: &str, file: &str) -> PathBuf {
        std::fs::create_dir_all(dest).unwrap();
        for e in std::fs::read_dir(self.dir.join("signed")).unwrap() {
            let e = e.unwrap();
            if e.path().extension().is_some_and(|x| x == "rpm") {
                std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
            }
        }
        // Outside `dest` (createrepo_c indexes all below it); its own HOME: no ~/.rpmmacros.
        let top = tempfile::tempdir_in(dest.parent().unwrap()).unwrap();
        let spec = top.path().join("SPECS/package.spec");
        std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
        let dir = Path::new(file).parent().unwrap().display().to_string();
        std::fs::write(
            &spec,
            format!("%define __os_install_post %{{nil}}\n%define debug_package %{{nil}}\n%define _build_id_links none\nName: {name}\nVersion: {version}\nRelease: 1\nSummary: {name} {version}\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%description\n{name} {version}\n%install\nmkdir -p %{{buildroot}}{dir}\necho {version} > %{{buildroot}}{file}\n%files\n{file}\n"),
        )
        .unwrap();
        let o = Command::new("rpmbuild")
            .args([
                "-bb",
                "--quiet",
                "--define",
                &format!("_topdir {}", top.path().display()),
                "--define",
                &format!("_rpmdir {}", dest.display()),
            ])
            .arg(&spec)
            .env("HOME", top.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "rpmbuild: {}", stderr(&o));
        let o = Command::new("createrepo_c").arg("-q").arg(dest).output().unwrap();
        assert!(o.status.success(), "createrepo_c: {}", stderr(&o));
        dest.to_path_buf()
    }

    /// A profile named `name` that installs lxcprov-base and lxcprov-hello from the
    /// `signed` flavour with the key, CentOS Stream 9, no MAC and host root allowed: each
    /// of these can be changed before [`RepoProfile::write`].
    pub fn profile(&self, name: &str) -> RepoProfile<'_> {
        RepoProfile {
            repo: self,
            name: name.to_string(),
            url: self.dir.join("signed"),
            distro: "centos-stream9".into(),
            release: "9".into(),
            base_packages: vec!["lxcprov-base".into()],
            pins: vec![],
            rest: "security: {model: none, label: none, allow_host_root: true}\n".into(),
        }
    }
}

/// A profile on a [`SignedRepo`], written by [`RepoProfile::write`].
pub struct RepoProfile<'a> {
    repo: &'a SignedRepo,
    name: String,
    url: PathBuf,
    distro: String,
    release: String,
    base_packages: Vec<String>,
    pins: Vec<String>,
    rest: String,
}

impl RepoProfile<'_> {
    /// Installs from another flavour of the repository (`unsigned`, `native`, ...).
    pub fn flavour(mut self, which: &str) -> Self {
        self.url = self.repo.dir.join(which);
        self
    }

    /// Installs from another directory (one [`SignedRepo::with_package`] made).
    pub fn url(mut self, dir: &Path) -> Self {
        self.url = dir.to_path_buf();
        self
    }

    pub fn distro(mut self, distro: &str, release: &str) -> Self {
        (self.distro, self.release) = (distro.into(), release.into());
        self
    }

    pub fn base_packages(mut self, names: &[&str]) -> Self {
        self.base_packages = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Pins the repository's signing key to `fingerprint`.
    pub fn pin(mut self, fingerprint: &str) -> Self {
        self.pins.push(fingerprint.into());
        self
    }

    /// What follows `repos:` (YAML), instead of the `security` line.
    pub fn rest(mut self, yaml: &str) -> Self {
        self.rest = yaml.into();
        self
    }

    /// The profile as `DIR/NAME.yaml`.
    pub fn write(self, dir: &Path) -> PathBuf {
        let pins = if self.pins.is_empty() {
            String::new()
        } else {
            format!(
                "    fingerprints: [{}]\n",
                self.pins.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
            )
        };
        let yaml = format!(
            "description: local signed rpm repo\ndistro: {}\nrelease: '{}'\nbase_packages: [{}]\npackages: [lxcprov-hello]\nrepos:\n  - id: lxcprov-test\n    url: file://{}\n    gpgkeys: ['file://{}']\n{pins}{}",
            self.distro,
            self.release,
            self.base_packages.join(", "),
            self.url.display(),
            self.repo.key.display(),
            self.rest
        );
        write_profile(dir, &self.name, &yaml)
    }
}
