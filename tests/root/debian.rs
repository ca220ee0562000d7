//! Root tier, Debian: a real debootstrap of Debian 12 (GPG-checked, then from the
//! base-rootfs cache) that boots systemd as a user-namespaced container and verifies, and
//! `outdated` against Debian's signed mirror.

use super::*;

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
    let one = |o: &Output| match records(&o.stdout).as_slice() {
        [Record::Bootstrap(b)] => b.clone(),
        other => panic!("not one bootstrap record: {other:?}"),
    };
    let b = one(&o);
    assert_eq!((b.name.as_str(), b.source), ("it-d1", Source::Install), "{b:?}");
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
    assert_eq!(one(&o).source, Source::Cache);
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
        assert_eq!(status_of(&c, id), Status::Pass, "{id}: {c:?}");
    }
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // systemd boots under the default seccomp filter, and the probe proves the denials.
    let o = lx(d.path(), &["--json", "verify", "lxcprov-it-deb", "--probe"]);
    let c = checks(&o);
    assert_eq!(status_of(&c, "seccomp"), Status::Pass, "{c:?}");
    assert_eq!(status_of(&c, "seccomp.probe"), Status::Pass, "{c:?}");

    let rootfs = d.path().join("pool/lxcprov-it-deb");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rootfs.join("etc/shadow")).unwrap().uid(),
        200000,
        "rootfs shifted into the user namespace"
    );
    // systemd comes up in the container: its init is systemd, PID 1 inside.
    let o = lx(d.path(), &["--json", "list"]);
    let pid = list_row(&o, "lxcprov-it-deb").init_pid.expect("a running container's init");
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
    // 7. The same systemd container in overlay storage: a snapshot of a booted one (its
    //    layer holds the unit links its configuration made) is restored, configured again.
    let ov = "lxcprov-it-deb-ov";
    clean(&[ov], &[]);
    let _c2 = Cleanup(vec![ov], vec!["lxcprov-it-net"]);
    let _u = super::overlay::Unmount(d.path().to_path_buf(), vec![ov]);
    let _hook = super::overlay::HookFor::install(d.path());
    let pf = prof.to_str().unwrap();
    let o = super::overlay::lo(
        d.path(),
        &["create", ov, "--profile", "it-deb", "--profile-file", pf, "--root-password-file", pwa],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = lx(d.path(), &["snapshot", ov, "--tag", "booted"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let work = d.path().join(format!("pool/{ov}/root/work.txt"));
    std::fs::write(&work, "later\n").unwrap();
    let o = lx(d.path(), &["--profile-file", pf, "restore", ov, "booted", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!work.exists(), "the restore kept a file written after the snapshot");
    assert_eq!(domain_state(ov), "running");
    assert!(lx(d.path(), &["destroy", ov, "--purge", "--yes"]).status.success());
}

#[test]
#[ignore = "root tier: needs root and Debian's mirror (scripts/test.sh)"]
fn outdated_finds_a_pending_update_against_the_signed_debian_mirror_and_leaves_the_tree_alone() {
    assert!(is_root(), "the root tier must run as root");
    let d = workdir("outdated");
    // A container's tree and record, as bootstrap leaves them: this host's own dpkg status,
    // with base-files made older than any bookworm release.
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let mut old = String::new();
    let mut in_base = false;
    for line in status.lines() {
        if line.starts_with("Package: ") {
            in_base = line == "Package: base-files";
        }
        if in_base && line.starts_with("Version: ") {
            old += "Version: 12.0\n";
        } else {
            old += line;
            old += "\n";
        }
    }
    let root = d.path().join("pool/it-old");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), &old).unwrap();
    std::fs::create_dir_all(d.path().join("state/containers")).unwrap();
    std::fs::write(
        d.path().join("state/containers/it-old.json"),
        r#"{"name":"it-old","profile":"minimal","distro":"debian12","release":"12","gpgcheck":true,"installer":"debootstrap","cache_key":"x"}"#,
    )
    .unwrap();
    let listing = |p: &Path| {
        let mut v: Vec<String> = walk(p);
        v.sort();
        v
    };
    fn walk(p: &Path) -> Vec<String> {
        let mut out = vec![];
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            out.push(format!("{} {} {:?}", e.path().display(), m.len(), m.modified().unwrap()));
            if m.is_dir() {
                out.extend(walk(&e.path()));
            }
        }
        out
    }
    let before = listing(&root);

    let o = lx(d.path(), &["--json", "outdated", "it-old"]);
    assert_eq!(o.status.code(), Some(1), "updates pending: exit 1");
    let u = updates(&o);
    let base = u.iter().find(|u| u.name == "base-files").expect("base-files is outdated");
    assert_eq!(base.installed, "12.0");
    let cand = base.candidate.as_str();
    let gt = Command::new("dpkg").args(["--compare-versions", cand, "gt", "12.0"]).status().unwrap();
    assert!(gt.success(), "{cand} is newer");
    let last = |o: &Output| records(&o.stdout).pop().expect("a summary");
    match last(&o) {
        Record::Summary(Summary::Outdated { container, pending, .. }) => {
            assert_eq!((container.as_str(), pending), ("it-old", u.len() as u64))
        }
        other => panic!("not outdated's summary: {other:?}"),
    }
    assert_eq!(listing(&root), before, "the container's tree is only read");

    // lab outdated: the same check per member, the container named in each record (a lab
    // record's members are its own LAB-* containers: lab "it" may hold "it-old").
    std::fs::create_dir_all(d.path().join("state/labs")).unwrap();
    std::fs::write(
        d.path().join("state/labs/it.json"),
        r#"{"name":"it","profile":"minimal","security":"none","prefix":"student","isolate_students":false,"password_dir":"/nonexistent","members":["it-old"]}"#,
    )
    .unwrap();
    let o = lx(d.path(), &["--json", "lab", "outdated", "it"]);
    assert_eq!(o.status.code(), Some(1));
    let lab_updates = updates(&o);
    assert_eq!(lab_updates.len(), u.len());
    assert!(lab_updates.iter().all(|x| x.container.as_deref() == Some("it-old")), "{lab_updates:?}");
    match last(&o) {
        Record::Summary(Summary::LabOutdated { outdated, .. }) => assert_eq!(outdated, 1),
        other => panic!("not lab outdated's summary: {other:?}"),
    }

    // base-files at its candidate version (alone: other packages' exact Depends would not
    // hold if their versions were rewritten): nothing pending, exit 0.
    let para = old.split("\n\n").find(|p| p.starts_with("Package: base-files\n")).unwrap();
    let current = para.replace("Version: 12.0", &format!("Version: {cand}")) + "\n";
    let fresh = d.path().join("fresh");
    std::fs::create_dir_all(fresh.join("var/lib/dpkg")).unwrap();
    std::fs::write(fresh.join("var/lib/dpkg/status"), current).unwrap();
    let o = lx(d.path(), &["outdated", "--rootfs", fresh.to_str().unwrap(), "--distro", "debian12"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stderr(&o).contains("0 updates pending"));
}
