//! Root tier, seccomp: busybox under the default filter (and `--init-shim`), an allow-list
//! learned and enforced; systemd and nginx under `strict`, then under a list learned under load.

use super::*;

/// A stand-alone seccomp init shim built by scripts/build-shim.sh, for the test of
/// `--init-shim` (every other test uses the shim built into lxcprov, as a newcomer's
/// `cargo build` gives it).
fn standalone_shim() -> PathBuf {
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
    // --init-shim still works: a shim built on its own by scripts/build-shim.sh.
    let shim = standalone_shim();
    let o = lx(
        d.path(),
        &[
            "--json",
            "--init-shim",
            shim.to_str().unwrap(),
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
    assert_eq!(status_of(&checks(&o), "seccomp"), Status::Pass, "{}", stdout(&o));
    let dir = d.path().join("state/seccomp/lxcprov-it-sc");
    assert!(dir.join("lxcprov-init").exists() && !d.path().join("pool/lxcprov-it-sc/.lxcprov/lxcprov-init").exists());
    assert_eq!(std::fs::read(dir.join("lxcprov-init")).unwrap(), std::fs::read(&shim).unwrap(), "--init-shim's file");
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-sc", "--probe"]);
    let c = checks(&o);
    let sc = c.iter().find(|c| c.id == "seccomp").unwrap();
    assert!(sc.evidence.iter().any(|e| e.contains("NoNewPrivs: 1")), "{sc:?}");
    let probe = c.iter().find(|c| c.id == "seccomp.probe").unwrap();
    assert_eq!(probe.status, Status::Pass, "{probe:?}");
    let ev = probe.evidence.join("\n");
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
    assert_eq!(status_of(&c, "seccomp"), Status::Pass);
    let probe = c.iter().find(|c| c.id == "seccomp.probe").unwrap();
    assert_eq!(probe.status, Status::Pass, "{probe:?}");
    assert!(
        probe.evidence.iter().any(|e| e.contains("ptrace: unfiltered 3, filtered 1")),
        "not in the allow-list: {probe:?}"
    );
    assert!(lx(d.path(), &["destroy", "lxcprov-it-sc", "--purge", "--yes"]).status.success());
    assert!(!dir.exists(), "destroy removes the seccomp directory");
}

/// The `hardened` profile's security (its `strict` filter, capabilities and user namespace)
/// without SELinux (this host has none), with nginx.
const NGINX_PROFILE: &str = "description: hardened-like with nginx\ndistro: debian12\npackages: [nginx]\nmemory_mib: 256\nnetwork: {mode: isolated, name: lxcprov-it-net}\nsecurity:\n  model: none\n  label: none\n  seccomp: strict\n  capabilities:\n    policy: default\n    set: {net_raw: off, sys_ptrace: off, sys_rawio: off, sys_nice: off, sys_resource: off, sys_pacct: off, sys_tty_config: off, syslog: off, setfcap: off, linux_immutable: off, ipc_lock: off, lease: off, wake_alarm: off, block_suspend: off}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n";

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
    assert_eq!(status_of(&c, "seccomp"), Status::Pass, "{c:?}");
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
    assert_eq!(status_of(&c, "seccomp.probe"), Status::Pass, "{c:?}");
    assert!(c
        .iter()
        .any(|c| c.id == "seccomp.probe" && c.evidence.iter().any(|e| e.contains("ptrace: unfiltered 3, filtered 1"))));
    // Learn under load: boot, nginx serving requests, then a reload.
    let learned = d.path().join("ngx.json");
    let learn = std::thread::spawn({
        let dir = d.path().to_path_buf();
        let learned = learned.clone();
        move || {
            lxcprov(&dir)
                .env("LIBVIRT_DEFAULT_URI", URI)
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
        assert_eq!(status_of(&c, id), Status::Pass, "{id}: {c:?}");
    }
    assert!(lx(d.path(), &["destroy", "lxcprov-it-ngx", "--purge", "--yes"]).status.success());
}
