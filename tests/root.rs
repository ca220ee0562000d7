//! Root tier: real dnf, debootstrap, libvirtd and containers on this machine.
//!
//! Every test here is `#[ignore]`d so the default `cargo test` needs no root. `scripts/test.sh`
//! (and so `.ci/run`) runs them with `cargo test --test root -- --ignored --test-threads=1`,
//! after `scripts/setup-host.sh` has installed the tools and started libvirtd. Once run,
//! a missing tool, missing root or an unreachable libvirtd FAILS; nothing is skipped.
//! Domains and networks use the prefix `lxcprov-it-` and are cleaned before and after.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const URI: &str = "lxc:///";

fn preflight() {
    assert!(is_root(), "the root tier must run as root");
    for tool in ["virsh", "debootstrap", "dnf", "rpmbuild", "createrepo_c", "gpg", "busybox"] {
        assert!(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false),
            "{tool} is missing: run scripts/setup-host.sh"
        );
    }
    let o = Command::new("virsh").args(["-c", URI, "version"]).output().unwrap();
    assert!(
        o.status.success(),
        "libvirtd does not answer on {URI}: run scripts/setup-host.sh\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A work directory traversable by other uids (a user-namespaced init must reach its rootfs).
fn workdir(tag: &str) -> tempfile::TempDir {
    std::fs::create_dir_all("/var/tmp/lxcprov-it").unwrap();
    let d = tempfile::Builder::new().prefix(&format!("{tag}-")).tempdir_in("/var/tmp/lxcprov-it").unwrap();
    for p in [Path::new("/var/tmp/lxcprov-it"), d.path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    d
}

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh").arg("-c").arg(URI).args(args).output().unwrap()
}

fn domain_exists(name: &str) -> bool {
    virsh(&["dominfo", name]).status.success()
}

fn network_exists(name: &str) -> bool {
    virsh(&["net-info", name]).status.success()
}

/// Removes test domains and networks left by an earlier run.
fn clean(names: &[&str], networks: &[&str]) {
    for n in names {
        let _ = virsh(&["destroy", n]);
        let _ = virsh(&["undefine", n]);
    }
    for n in networks {
        let _ = virsh(&["net-destroy", n]);
        let _ = virsh(&["net-undefine", n]);
    }
}

struct Cleanup(Vec<&'static str>, Vec<&'static str>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        clean(&self.0, &self.1);
    }
}

/// The statically linked seccomp init shim next to the lxcprov under test, built once by
/// scripts/build-shim.sh (scripts/test.sh builds it before the root tier).
fn shim() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let bin = bin();
    let shim = bin.parent().unwrap().join("lxcprov-init");
    ONCE.call_once(|| {
        let target = bin.parent().unwrap().parent().unwrap();
        let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-shim.sh"))
            .env("CARGO_TARGET_DIR", target)
            .output()
            .unwrap();
        assert!(o.status.success(), "scripts/build-shim.sh: {}", String::from_utf8_lossy(&o.stderr));
    });
    shim
}

fn lx(dir: &Path, args: &[&str]) -> Output {
    let o = lxcprov(dir).env("LIBVIRT_DEFAULT_URI", URI).env("LXCPROV_INIT_SHIM", shim()).args(args).output().unwrap();
    eprintln!("$ lxcprov {}\n  exit {:?}\n{}", args.join(" "), o.status.code(), stderr(&o));
    o
}

fn write_profile(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

fn pool_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("pool"))
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn checks(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "check")
        .map(|v| v["data"].clone())
        .collect()
}

fn status_of(checks: &[serde_json::Value], id: &str) -> String {
    checks
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no check {id} in {checks:?}"))
}

fn make_repo(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("repo");
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-repo.sh"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "make-test-repo.sh failed: {}", String::from_utf8_lossy(&o.stderr));
    (out.join("RPM-GPG-KEY-lxcprov-test"), out)
}

fn repo_profile(dir: &Path, repo: &Path, key: &Path, which: &str) -> PathBuf {
    write_profile(
        dir,
        &format!("rpm-{which}"),
        &format!(
            "description: local signed rpm repo\ndistro: centos-stream9\nrelease: '9'\nbase_packages: [lxcprov-base]\npackages: [lxcprov-hello]\nrepos:\n  - id: lxcprov-test\n    url: file://{}/{which}\n    gpgkeys: ['file://{}']\nsecurity: {{model: none, label: none}}\n",
            repo.display(),
            key.display()
        ),
    )
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn dnf_installs_signed_packages_and_refuses_unsigned_or_tampered_ones() {
    preflight();
    let d = workdir("dnf");
    let (key, repo) = make_repo(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let prof = repo_profile(d.path(), &repo, &key, "signed");
    let o = lx(
        d.path(),
        &[
            "bootstrap",
            "it-rpm",
            "--profile",
            "rpm-signed",
            "--profile-file",
            prof.to_str().unwrap(),
            "--root-password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(o.status.success());
    let root = d.path().join("pool/it-rpm");
    assert!(root.join("usr/share/lxcprov-hello/hello.txt").is_file());
    assert!(root.join("var/lib/rpm").is_dir(), "rpm database must be at /var/lib/rpm");
    assert!(!root.join("root/.rpmdb").exists());
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.starts_with("root:$6$"), "{shadow}");
    assert!(!stderr(&o).contains("s3cret-pw"));
    for which in ["unsigned", "tampered"] {
        let prof = repo_profile(d.path(), &repo, &key, which);
        let name = format!("it-{which}");
        let o = lx(
            d.path(),
            &[
                "bootstrap",
                &name,
                "--profile",
                &format!("rpm-{which}"),
                "--profile-file",
                prof.to_str().unwrap(),
                "--root-password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{which} must fail");
        let err = stderr(&o);
        assert!(err.contains("GPG check FAILED") || err.contains("not signed"), "{which}: {err}");
        assert!(err.contains("was removed"), "{err}");
        assert_eq!(pool_leftovers(d.path()), ["it-rpm"], "{which} left something in the pool");
    }
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn killed_or_interrupted_installer_leaves_nothing_in_the_pool() {
    preflight();
    let d = workdir("kill");
    // A stand-in dnf, first on PATH, that writes into the installroot and then hangs.
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("dnf");
    std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --installroot=*) r=\"${a#--installroot=}\";; esac; done\nmkdir -p \"$r/usr/bin\" && echo x > \"$r/usr/bin/half\"\necho installing...\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for how in ["kill-installer", "ctrl-c", "sigterm", "sighup"] {
        let child = lxcprov(d.path())
            .env("PATH", &path)
            .args(["bootstrap", "it-kill", "--profile", "paper", "--security", "none"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let partial = d.path().join("pool/.it-kill.partial/usr/bin/half");
        let t = Instant::now();
        while !partial.exists() {
            assert!(t.elapsed() < Duration::from_secs(20), "the fake installer never ran");
            std::thread::sleep(Duration::from_millis(50));
        }
        if how == "kill-installer" {
            assert!(Command::new("pkill").args(["-KILL", "-f", "sleep 60"]).status().unwrap().success());
        } else if how == "ctrl-c" {
            unsafe { libc_kill(child.id() as i32, 2) };
            let _ = Command::new("pkill").args(["-INT", "-f", "sleep 60"]).status();
        } else {
            // Only lxcprov gets the signal (as from `kill` or a closed terminal): it must stop
            // its installer itself and clean up, not wait for it.
            unsafe { libc_kill(child.id() as i32, if how == "sigterm" { 15 } else { 1 }) };
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Ctrl-C is an interrupted run (130); a killed installer is a failed one (2).
        let want = if how == "kill-installer" { 2 } else { 130 };
        assert_eq!(out.status.code(), Some(want), "{how}: {err}");
        assert!(err.contains("was removed"), "{how}: {err}");
        assert!(pool_leftovers(d.path()).is_empty(), "{how} left {:?}", pool_leftovers(d.path()));
        let left = Command::new("pgrep").args(["-f", "sleep 60"]).output().unwrap();
        assert!(!left.status.success(), "{how}: the installer outlived lxcprov");
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn selinux_profile_is_refused_here_and_nothing_is_created() {
    preflight();
    let d = workdir("sel");
    let o = lx(d.path(), &["create", "lxcprov-it-sel", "--profile", "web"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SELinux"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--security none"));
    assert!(!domain_exists("lxcprov-it-sel"));
    assert!(pool_leftovers(d.path()).is_empty());
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn unreachable_libvirtd_is_one_clear_error_and_nothing_is_created() {
    preflight();
    let d = workdir("down");
    let o = lxcprov(d.path())
        .args([
            "--connect",
            "lxc:///system?socket=/nonexistent/libvirt-sock",
            "create",
            "lxcprov-it-down",
            "--profile",
            "minimal",
            "--security",
            "none",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot connect to libvirt"), "{}", stderr(&o));
    assert!(pool_leftovers(d.path()).is_empty());
}

const BB_PROFILE: &str = "description: busybox test\ndistro: debian12\nmemory_mib: 64\ncpu: {shares: 300}\nnetwork: {mode: isolated, name: lxcprov-it-bbnet}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n";

fn busybox(dir: &Path) -> PathBuf {
    let bb = dir.join("bb");
    let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/busybox-rootfs.sh"))
        .arg(&bb)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    bb
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn busybox_container_lifecycle() {
    preflight();
    let names = ["lxcprov-it-bb"];
    clean(&names, &["lxcprov-it-bbnet"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-bbnet"]);
    let d = workdir("bb");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-bb", BB_PROFILE);
    let pf = prof.to_str().unwrap();
    let o = lx(
        d.path(),
        &[
            "--json",
            "create",
            "lxcprov-it-bb",
            "--profile",
            "it-bb",
            "--profile-file",
            pf,
            "--rootfs-from",
            bb.to_str().unwrap(),
        ],
    );
    // Imported trees are not signature-checked: `trust` fails, so exit 1, not 0.
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let c = checks(&o);
    for id in ["net.vnet", "pidns", "caps", "cgroup"] {
        assert_eq!(status_of(&c, id), "pass", "{id}: {c:?}");
    }
    assert_eq!(status_of(&c, "trust"), "fail");
    assert_eq!(status_of(&c, "userns"), "skip");
    assert_eq!(status_of(&c, "selinux.label"), "skip");
    assert!(network_exists("lxcprov-it-bbnet"));
    // Re-running create is a no-op that says so (and shows the same report).
    let o = lx(
        d.path(),
        &["create", "lxcprov-it-bb", "--profile", "it-bb", "--profile-file", pf, "--rootfs-from", bb.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    // list shows the live state.
    let o = lx(d.path(), &["--json", "list"]);
    let row: serde_json::Value = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "container")
        .map(|v| v["data"].clone())
        .find(|v| v["name"] == "lxcprov-it-bb")
        .expect("listed");
    assert_eq!(row["state"], "running");
    assert_eq!(row["profile"], "it-bb");
    assert!(row["init_pid"].as_u64().unwrap() > 1);
    assert!(row["vnet"].as_str().unwrap().starts_with("vnet"));
    // stop, start, verify again.
    assert!(lx(d.path(), &["stop", "lxcprov-it-bb", "--timeout", "10"]).status.success());
    assert!(stdout(&virsh(&["domstate", "lxcprov-it-bb"])).contains("shut off"));
    assert_eq!(
        lx(d.path(), &["verify", "lxcprov-it-bb"]).status.code(),
        Some(1),
        "a stopped container fails verification"
    );
    assert!(lx(d.path(), &["start", "lxcprov-it-bb"]).status.success());
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-bb"]);
    assert_eq!(status_of(&checks(&o), "pidns"), "pass");
    // A second container with the same name but another profile is refused.
    let o = lx(d.path(), &["create", "lxcprov-it-bb", "--profile", "minimal", "--security", "none"]);
    assert_eq!(o.status.code(), Some(2));
    // destroy --purge without --yes and without a terminal refuses and changes nothing.
    let o = lx(d.path(), &["destroy", "lxcprov-it-bb", "--purge"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(domain_exists("lxcprov-it-bb"));
    let o = lx(d.path(), &["destroy", "lxcprov-it-bb", "--purge", "--yes"]);
    assert!(o.status.success());
    assert!(!domain_exists("lxcprov-it-bb"));
    assert!(!network_exists("lxcprov-it-bbnet"), "the network lxcprov defined must go with its last domain");
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
    assert!(bb.join("bin/busybox").exists(), "the import source is never touched");
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn busybox_runs_under_the_default_seccomp_filter_learns_an_allow_list_and_enforces_it() {
    preflight();
    let names = ["lxcprov-it-sc"];
    clean(&names, &["lxcprov-it-bbnet"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-bbnet"]);
    let d = workdir("sc");
    let bb = busybox(d.path());
    // BB_PROFILE drops sys_admin: the shim must set no_new_privs to install the filter.
    let prof = write_profile(d.path(), "it-bb", BB_PROFILE);
    let pf = prof.to_str().unwrap();
    let o = lx(
        d.path(),
        &[
            "--json",
            "create",
            "lxcprov-it-sc",
            "--profile",
            "it-bb",
            "--profile-file",
            pf,
            "--rootfs-from",
            bb.to_str().unwrap(),
        ],
    );
    assert_eq!(status_of(&checks(&o), "seccomp"), "pass", "{}", stdout(&o));
    let dir = d.path().join("state/seccomp/lxcprov-it-sc");
    assert!(dir.join("lxcprov-init").exists() && !d.path().join("pool/lxcprov-it-sc/.lxcprov/lxcprov-init").exists());
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-sc", "--probe"]);
    let c = checks(&o);
    let sc = c.iter().find(|c| c["id"] == "seccomp").unwrap();
    assert!(sc["evidence"].to_string().contains("NoNewPrivs: 1"), "{sc}");
    let probe = c.iter().find(|c| c["id"] == "seccomp.probe").unwrap();
    assert_eq!(probe["status"], "pass", "{probe}");
    let ev = probe["evidence"].to_string();
    assert!(ev.contains("identical to") && ev.contains("open_by_handle_at: unfiltered 14, filtered 1"), "{ev}");
    assert!(ev.contains("keyctl: unfiltered 95, filtered 38"), "{ev}");
    // Learn an allow-list, enforce it, and the container still runs and verifies.
    let learned = d.path().join("learned.json");
    let rate = std::fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap();
    let o = lx(d.path(), &["seccomp", "learn", "lxcprov-it-sc", "--duration", "3", "-o", learned.to_str().unwrap()]);
    assert!(o.status.success());
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&learned).unwrap()).unwrap();
    assert_eq!(policy["default_action"], "errno");
    let names = policy["syscalls"][0]["names"].to_string();
    assert!(names.contains("\"wait4\"") && names.contains("\"execve\""), "{names}");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap(), rate, "rate limit restored");
    assert!(lx(d.path(), &["seccomp", "apply", "lxcprov-it-sc", learned.to_str().unwrap()]).status.success());
    assert!(lx(d.path(), &["stop", "lxcprov-it-sc", "--timeout", "5"]).status.success());
    assert!(lx(d.path(), &["start", "lxcprov-it-sc"]).status.success());
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-sc", "--probe"]);
    let c = checks(&o);
    assert_eq!(status_of(&c, "seccomp"), "pass");
    let probe = c.iter().find(|c| c["id"] == "seccomp.probe").unwrap();
    assert_eq!(probe["status"], "pass", "{probe}");
    assert!(
        probe["evidence"].to_string().contains("ptrace: unfiltered 3, filtered 1"),
        "not in the allow-list: {probe}"
    );
    assert!(lx(d.path(), &["destroy", "lxcprov-it-sc", "--purge", "--yes"]).status.success());
    assert!(!dir.exists(), "destroy removes the seccomp directory");
}

const SYSTEMD_PROFILE: &str = "description: debian with systemd, web-like security\ndistro: debian12\nmemory_mib: 256\ncpu: {shares: 512}\nnetwork: {mode: isolated, name: lxcprov-it-net, filter: clean-traffic}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {net_raw: off, sys_ptrace: off, sys_rawio: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n";

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn debootstrap_debian12_boots_with_systemd_and_verifies() {
    preflight();
    let names = ["lxcprov-it-deb"];
    clean(&names, &["lxcprov-it-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-net"]);
    let d = workdir("deb");
    let pw = d.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let pwa = pw.to_str().unwrap();
    // 1. A real debootstrap from the Debian mirror, GPG-checked.
    let t = Instant::now();
    let o = lx(
        d.path(),
        &[
            "--json",
            "bootstrap",
            "it-d1",
            "--profile",
            "minimal",
            "--distro",
            "debian12",
            "--security",
            "none",
            "--root-password-file",
            pwa,
        ],
    );
    assert!(o.status.success());
    let cold = t.elapsed();
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["type"], "bootstrap");
    assert_eq!(v["data"]["source"], "install");
    let d1 = d.path().join("pool/it-d1");
    assert!(std::fs::read_to_string(d1.join("etc/shadow")).unwrap().starts_with("root:$6$"));
    assert!(d1.join("sbin/init").exists(), "systemd-sysv provides /sbin/init");
    assert_eq!(std::fs::read_to_string(d1.join("etc/hostname")).unwrap(), "it-d1\n");
    // 2. Not overwritten without --force.
    std::fs::write(d1.join("marker"), "keep").unwrap();
    let o = lx(
        d.path(),
        &["bootstrap", "it-d1", "--profile", "minimal", "--security", "none", "--root-password-file", pwa],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"));
    assert_eq!(std::fs::read_to_string(d1.join("marker")).unwrap(), "keep");
    // 3. The second one comes from the base-rootfs cache.
    let t = Instant::now();
    let o = lx(
        d.path(),
        &["--json", "bootstrap", "it-d2", "--profile", "minimal", "--security", "none", "--root-password-file", pwa],
    );
    assert!(o.status.success());
    let warm = t.elapsed();
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["data"]["source"], "cache");
    eprintln!("bootstrap cold {:.1}s, warm {:.1}s", cold.as_secs_f64(), warm.as_secs_f64());
    assert!(!d.path().join("pool/it-d2/marker").exists());
    // 4. A systemd container from the same cache, user-namespaced, filtered network.
    let prof = write_profile(d.path(), "it-deb", SYSTEMD_PROFILE);
    let o = lx(
        d.path(),
        &[
            "--json",
            "create",
            "lxcprov-it-deb",
            "--profile",
            "it-deb",
            "--profile-file",
            prof.to_str().unwrap(),
            "--root-password-file",
            pwa,
        ],
    );
    let c = checks(&o);
    for id in ["net.vnet", "pidns", "userns", "caps", "cgroup", "seccomp", "trust"] {
        assert_eq!(status_of(&c, id), "pass", "{id}: {c:?}");
    }
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // systemd boots under the default seccomp filter, and the probe proves the denials.
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-deb", "--probe"]);
    let c = checks(&o);
    assert_eq!(status_of(&c, "seccomp"), "pass", "{c:?}");
    assert_eq!(status_of(&c, "seccomp.probe"), "pass", "{c:?}");

    let rootfs = d.path().join("pool/lxcprov-it-deb");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rootfs.join("etc/shadow")).unwrap().uid(),
        200000,
        "rootfs shifted into the user namespace"
    );
    // systemd comes up in the container: its init is systemd, PID 1 inside.
    let o = lx(d.path(), &["--json", "list"]);
    let row: serde_json::Value = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "container")
        .map(|v| v["data"].clone())
        .find(|v| v["name"] == "lxcprov-it-deb")
        .unwrap();
    let pid = row["init_pid"].as_u64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "systemd");
    // ... and no unit failed under the seccomp filter.
    let ns = |args: &[&str]| {
        let o = Command::new("nsenter").args(["-t", &pid.to_string(), "-a"]).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let state = ns(&["systemctl", "is-system-running", "--wait"]);
    let failed = ns(&["systemctl", "list-units", "--failed", "--no-legend", "--plain"]);
    assert!(state == "running" && failed.is_empty(), "systemd {state}; failed units: {failed}");
    // 5. Graceful stop works with systemd inside.
    let o = lx(d.path(), &["stop", "lxcprov-it-deb", "--timeout", "30"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("forced"), "systemd should shut down gracefully: {}", stderr(&o));
    // 6. destroy --purge leaves nothing.
    assert!(lx(d.path(), &["destroy", "lxcprov-it-deb", "--purge", "--yes"]).status.success());
    assert!(!domain_exists("lxcprov-it-deb"));
    assert!(!network_exists("lxcprov-it-net"));
    assert!(!rootfs.exists());
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn busybox_lab_goes_up_verifies_and_comes_down_leaving_nothing() {
    preflight();
    let names = ["lxcprov-it-lab-s01", "lxcprov-it-lab-s02", "lxcprov-it-lab-s03"];
    clean(&names, &["lxcprov-lab-lxcprov-it-lab"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-lab-lxcprov-it-lab"]);
    let d = workdir("lab");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-lab", BB_PROFILE);
    let common = ["--profile", "it-lab", "--profile-file", prof.to_str().unwrap()];
    let mut up =
        vec!["lab", "up", "lxcprov-it-lab", "--count", "3", "--prefix", "s", "--rootfs-from", bb.to_str().unwrap()];
    up.extend_from_slice(&common);
    let o = lx(d.path(), &up);
    // Imported trees fail `trust`: every student is up, and the run says checks failed.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for n in names {
        assert!(domain_exists(n), "{n} missing");
    }
    let pw = d.path().join("state/labs/lxcprov-it-lab/passwords/lxcprov-it-lab-s01");
    assert_eq!(std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777, 0o600);
    // A re-run fills gaps: remove one student, bring the lab up again.
    let _ = virsh(&["destroy", "lxcprov-it-lab-s02"]);
    let _ = virsh(&["undefine", "lxcprov-it-lab-s02"]);
    std::fs::remove_dir_all(d.path().join("pool/lxcprov-it-lab-s02")).unwrap();
    let _ = std::fs::remove_file(d.path().join("state/containers/lxcprov-it-lab-s02.json"));
    let o = lx(d.path(), &up);
    assert_eq!(o.status.code(), Some(1));
    assert!(domain_exists("lxcprov-it-lab-s02"));
    let o = lx(d.path(), &["--json", "lab", "verify", "lxcprov-it-lab"]);
    let c = checks(&o);
    assert_eq!(c.iter().filter(|c| c["id"] == "pidns" && c["status"] == "pass").count(), 3, "{c:?}");
    assert_eq!(status_of(&c, "lab.members"), "pass");
    let o = lx(d.path(), &["lab", "status", "lxcprov-it-lab"]);
    assert_eq!(stdout(&o).lines().filter(|l| l.contains("running")).count(), 3, "{}", stdout(&o));
    let o = lx(d.path(), &["lab", "down", "lxcprov-it-lab", "--purge", "--yes"]);
    assert!(o.status.success());
    for n in names {
        assert!(!domain_exists(n), "{n} left behind");
    }
    assert!(!network_exists("lxcprov-lab-lxcprov-it-lab"));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
    assert!(!d.path().join("state/labs/lxcprov-it-lab.json").exists());
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn rebuild_swaps_in_a_fresh_rootfs_and_keeps_the_old_one_when_the_new_fails() {
    preflight();
    let names = ["lxcprov-it-rb"];
    clean(&names, &["lxcprov-it-bbnet"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-bbnet"]);
    let d = workdir("rb");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-rb", BB_PROFILE);
    let pf = prof.to_str().unwrap();
    let o = lx(
        d.path(),
        &["create", "lxcprov-it-rb", "--profile", "it-rb", "--profile-file", pf, "--rootfs-from", bb.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let rootfs = d.path().join("pool/lxcprov-it-rb");
    std::fs::write(rootfs.join("old-marker"), "old").unwrap();
    let hash_before = std::fs::read_to_string(rootfs.join("etc/shadow")).unwrap();
    // A good rebuild: a fresh tree (no marker), same root password, running again.
    let o = lx(
        d.path(),
        &["--json", "--profile-file", pf, "rebuild", "lxcprov-it-rb", "--rootfs-from", bb.to_str().unwrap()],
    );
    assert_eq!(status_of(&checks(&o), "pidns"), "pass", "{}", stderr(&o));
    assert!(!rootfs.join("old-marker").exists(), "the rootfs was not replaced");
    let root_line =
        |s: &str| s.lines().find(|l| l.starts_with("root:")).unwrap().split(':').nth(1).unwrap().to_string();
    assert_eq!(root_line(&std::fs::read_to_string(rootfs.join("etc/shadow")).unwrap()), root_line(&hash_before));
    std::fs::write(rootfs.join("old-marker"), "old").unwrap();
    // A rebuild whose new tree cannot boot: the old tree is kept and restarted.
    let broken = d.path().join("broken");
    let o = Command::new("cp").args(["-a"]).arg(&bb).arg(&broken).status().unwrap();
    assert!(o.success());
    std::fs::remove_file(broken.join("sbin/init")).unwrap();
    std::fs::write(broken.join("sbin/init"), "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(broken.join("sbin/init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o =
        lx(d.path(), &["--profile-file", pf, "rebuild", "lxcprov-it-rb", "--rootfs-from", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("old root filesystem was kept"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(rootfs.join("old-marker")).unwrap(), "old");
    assert!(stdout(&virsh(&["domstate", "lxcprov-it-rb"])).contains("running"));
    assert!(lx(d.path(), &["destroy", "lxcprov-it-rb", "--purge", "--yes"]).status.success());
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}

#[test]
#[ignore = "root tier: needs root (mknod) (scripts/test.sh)"]
fn imported_trees_lose_device_nodes_and_get_a_root_owned_0755_root() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(is_root(), "the root tier must run as root");
    let d = workdir("import-dev");
    let t = d.path().join("tree");
    std::fs::create_dir_all(t.join("dev")).unwrap();
    std::fs::create_dir_all(t.join("srv")).unwrap();
    let mknod = |p: &Path, kind: libc::mode_t, major: u32, minor: u32| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
        assert_eq!(rc, 0, "mknod {}: {}", p.display(), std::io::Error::last_os_error());
    };
    mknod(&t.join("dev/null"), libc::S_IFCHR, 1, 3);
    mknod(&t.join("srv/disk"), libc::S_IFBLK, 8, 0);
    mknod(&t.join("srv/fifo"), libc::S_IFIFO, 0, 0);
    std::fs::write(t.join("srv/file"), "keep").unwrap();
    std::os::unix::fs::lchown(&t, Some(1234), Some(1234)).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = lxcprov::import::normalise_tree(&t).unwrap();
    assert_eq!(r.devices_removed, vec![PathBuf::from("dev/null"), PathBuf::from("srv/disk")]);
    assert_eq!(r.root_fixed, Some((0o777, 1234, 1234)));
    assert!(r.warnings()[0].contains("removed 2 device node(s)"), "{:?}", r.warnings());
    assert!(!t.join("dev/null").exists() && !t.join("srv/disk").exists());
    assert!(std::fs::symlink_metadata(t.join("srv/fifo")).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read_to_string(t.join("srv/file")).unwrap(), "keep");
    let m = std::fs::symlink_metadata(&t).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
}

/// The `hardened` profile's security (its `strict` filter, capabilities and user namespace)
/// without SELinux (this host has none), with nginx.
const NGINX_PROFILE: &str = "description: hardened-like with nginx\ndistro: debian12\npackages: [nginx]\nmemory_mib: 256\nnetwork: {mode: isolated, name: lxcprov-it-net}\nsecurity:\n  model: none\n  label: none\n  seccomp: strict\n  capabilities:\n    policy: default\n    set: {net_raw: off, sys_ptrace: off, sys_rawio: off, sys_nice: off, sys_resource: off, sys_pacct: off, sys_tty_config: off, syslog: off, setfcap: off, linux_immutable: off, ipc_lock: off, lease: off, wake_alarm: off, block_suspend: off}\n  idmap:\n    uid: {start: 0, target: 300000, count: 65536}\n    gid: {start: 0, target: 300000, count: 65536}\n";

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn systemd_and_nginx_boot_under_strict_then_under_a_learned_allow_list() {
    preflight();
    let names = ["lxcprov-it-ngx"];
    clean(&names, &["lxcprov-it-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-net"]);
    let d = workdir("ngx");
    let pw = d.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let prof = write_profile(d.path(), "it-ngx", NGINX_PROFILE);
    let o = lx(
        d.path(),
        &[
            "--json",
            "create",
            "lxcprov-it-ngx",
            "--profile",
            "it-ngx",
            "--profile-file",
            prof.to_str().unwrap(),
            "--root-password-file",
            pw.to_str().unwrap(),
        ],
    );
    let c = checks(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(status_of(&c, "seccomp"), "pass", "{c:?}");
    let init = || -> u32 {
        let x = std::fs::read_to_string("/run/libvirt/lxc/lxcprov-it-ngx.xml").unwrap();
        x.split("<init pid='").nth(1).unwrap().split('\'').next().unwrap().parse().unwrap()
    };
    let ns = |args: &[&str]| {
        let o = Command::new("nsenter").args(["-t", &init().to_string(), "-a"]).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // The host's curl in the container's network namespace only: nothing leaves the machine.
    let get = || {
        let o = Command::new("nsenter")
            .args([
                "-t",
                &init().to_string(),
                "-n",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1/",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let healthy = |what: &str| {
        let state = ns(&["systemctl", "is-system-running", "--wait"]);
        let failed = ns(&["systemctl", "list-units", "--failed", "--no-legend", "--plain"]);
        assert!(state == "running" && failed.is_empty(), "{what}: systemd {state}; failed units: {failed}");
        assert_eq!(ns(&["systemctl", "is-active", "nginx"]), "active", "{what}");
        assert_eq!(get(), "200", "{what}: nginx answers");
    };
    healthy("strict");
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-ngx", "--probe"]);
    let c = checks(&o);
    assert_eq!(status_of(&c, "seccomp.probe"), "pass", "{c:?}");
    assert!(c
        .iter()
        .any(|c| c["id"] == "seccomp.probe" && c["evidence"].to_string().contains("ptrace: unfiltered 3, filtered 1")));
    // Learn under load: boot, nginx serving requests, then a reload.
    let learned = d.path().join("ngx.json");
    let learn = std::thread::spawn({
        let dir = d.path().to_path_buf();
        let learned = learned.clone();
        let shim = shim();
        move || {
            lxcprov(&dir)
                .env("LIBVIRT_DEFAULT_URI", URI)
                .env("LXCPROV_INIT_SHIM", shim)
                .args(["seccomp", "learn", "lxcprov-it-ngx", "--duration", "25", "-o", learned.to_str().unwrap()])
                .output()
                .unwrap()
        }
    });
    std::thread::sleep(Duration::from_secs(12));
    for _ in 0..20 {
        let _ = get();
    }
    let _ = ns(&["systemctl", "reload", "nginx"]);
    for _ in 0..5 {
        let _ = get();
    }
    let o = learn.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!("{}", stderr(&o));
    // Kept for a look after a failure.
    let _ = std::fs::copy(&learned, "/var/tmp/lxcprov-it/last-learned-nginx.json");
    assert!(lx(d.path(), &["seccomp", "apply", "lxcprov-it-ngx", learned.to_str().unwrap()]).status.success());
    assert!(lx(d.path(), &["stop", "lxcprov-it-ngx", "--timeout", "30"]).status.success());
    assert!(lx(d.path(), &["start", "lxcprov-it-ngx"]).status.success());
    healthy("learned allow-list");
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-ngx", "--probe"]);
    let c = checks(&o);
    for id in ["pidns", "userns", "caps", "cgroup", "seccomp", "seccomp.probe", "trust"] {
        assert_eq!(status_of(&c, id), "pass", "{id}: {c:?}");
    }
    assert!(lx(d.path(), &["destroy", "lxcprov-it-ngx", "--purge", "--yes"]).status.success());
}
