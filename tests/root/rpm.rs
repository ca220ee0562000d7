//! Root tier, RPM guests: dnf against a local repository signed with a throwaway key
//! (signed passes; unsigned, tampered and an unpinned key fail), the guest's own rpm
//! database, `sbom` of a signed bootstrap (and of the host's dpkg packages), `outdated`
//! against a repository with a newer package.

use super::*;

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn dnf_installs_signed_packages_and_refuses_unsigned_or_tampered_ones() {
    preflight();
    let d = workdir("dnf");
    let repo = SignedRepo::new(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let prof = repo.profile("rpm-signed").write(d.path());
    let o = bootstrap_with(d.path(), "it-rpm", "rpm-signed", &prof, &pw);
    assert!(o.status.success());
    let root = d.path().join("pool/it-rpm");
    assert!(root.join("usr/share/lxcprov-hello/hello.txt").is_file());
    assert!(root.join("var/lib/rpm").is_dir(), "rpm database must be at /var/lib/rpm");
    assert!(!root.join("root/.rpmdb").exists());
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.starts_with("root:$6$"), "{shadow}");
    assert!(!stderr(&o).contains("s3cret-pw"));
    for which in ["unsigned", "tampered"] {
        let prof = repo.profile(&format!("rpm-{which}")).flavour(which).write(d.path());
        let name = format!("it-{which}");
        let o = bootstrap_with(d.path(), &name, &format!("rpm-{which}"), &prof, &pw);
        assert_eq!(o.status.code(), Some(2), "{which} must fail");
        let err = stderr(&o);
        assert!(err.contains("GPG check FAILED") || err.contains("not signed"), "{which}: {err}");
        assert!(err.contains("was removed"), "{err}");
        assert_eq!(pool_leftovers(d.path()), ["it-rpm"], "{which} left something in the pool");
    }
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn a_signing_key_whose_fingerprint_is_not_pinned_is_refused_before_anything_is_installed() {
    preflight();
    let d = workdir("pin");
    let repo = SignedRepo::new(d.path());
    let fpr = repo.fingerprint();
    let profile = |name: &str, fp: &str| repo.profile(name).pin(fp).write(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "pinned-password\n").unwrap();
    let wrong = profile("pin-wrong", &"A".repeat(40));
    let o = bootstrap_with(d.path(), "it-pin", "pin-wrong", &wrong, &pw);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("which is not pinned"), "{}", stderr(&o));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
    let right = profile("pin-right", &fpr);
    let o = bootstrap_with(d.path(), "it-pin", "pin-right", &right, &pw);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pool_leftovers(d.path()), ["it-pin"]);
}

/// `rpm -qa --qf '%{NAME}\n'` output as sorted names, without the imported keys' `gpg-pubkey`.
fn package_names(qa: &str) -> Vec<String> {
    let mut v: Vec<String> = qa.lines().filter(|l| *l != "gpg-pubkey").map(str::to_string).collect();
    v.sort();
    v
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn the_guests_own_rpm_reads_exactly_what_was_installed_or_the_tree_is_refused() {
    preflight();
    let d = workdir("rpmdb");
    let repo = SignedRepo::new(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "rpmdb-password\n").unwrap();
    let profile = |name: &str, distro: &str, release: &str, which: &str| {
        repo.profile(name)
            .distro(distro, release)
            .flavour(which)
            .base_packages(&["lxcprov-base", "lxcprov-rpm"])
            .write(d.path())
    };
    let boot = |name: &str, pf: &Path, profile: &str| bootstrap_with(d.path(), name, profile, pf, &pw);
    let own_rpm = |name: &str| -> Vec<String> {
        let o = Command::new("chroot")
            .arg(d.path().join("pool").join(name))
            .args(["/usr/bin/rpm", "-qa", "--qf", "%{NAME}\\n"])
            .output()
            .unwrap();
        package_names(&String::from_utf8_lossy(&o.stdout))
    };
    let want = ["lxcprov-base", "lxcprov-hello", "lxcprov-rpm"];
    // EL9-like (sqlite, the host's rpm writes it): the guest's own rpm reads it as installed.
    let p9 = profile("rpmdb-el9", "centos-stream9", "9", "native");
    let o = boot("it-el9", &p9, "rpmdb-el9");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(own_rpm("it-el9"), want);
    // EL7-like (Berkeley DB in the catalog): re-registered with the guest's own rpm.
    let p7 = profile("rpmdb-el7", "centos7", "7", "native");
    let o = boot("it-el7", &p7, "rpmdb-el7");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("re-registered with the guest's rpm"), "{}", stderr(&o));
    assert_eq!(own_rpm("it-el7"), want);
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("state/containers/it-el7.json")).unwrap()).unwrap();
    assert_eq!(rec["packages"], 3);
    // An RPM guest that boots: the same signed repository plus a busybox userland, made by
    // dnf into a tree that runs as a user-namespaced container, where its own rpm lists
    // exactly what was installed.
    let boot_name = "lxcprov-it-rpmboot";
    clean(&[boot_name], &["lxcprov-it-bbnet"]);
    let _c = Cleanup(vec![boot_name], vec!["lxcprov-it-bbnet"]);
    let pb = repo
        .profile("rpmdb-boot")
        .flavour("native")
        .base_packages(&["lxcprov-base", "lxcprov-rpm", "lxcprov-busybox"])
        .rest("memory_mib: 64\nnetwork: {mode: isolated, name: lxcprov-it-bbnet}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n")
        .write(d.path());
    let pba = pb.to_str().unwrap();
    let o = lx(
        d.path(),
        &[
            "--json",
            "--profile-file",
            pba,
            "create",
            boot_name,
            "--profile",
            "rpmdb-boot",
            "--root-password-file",
            pw.to_str().unwrap(),
        ],
    );
    let c = checks(&o);
    for id in ["pidns", "userns", "trust", "seccomp"] {
        assert_eq!(status_of(&c, id), Status::Pass, "{id}: {c:?}");
    }
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = lx(d.path(), &["exec", boot_name, "--", "/usr/bin/rpm", "-qa", "--qf", "%{NAME}\\n"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(package_names(&stdout(&o)), ["lxcprov-base", "lxcprov-busybox", "lxcprov-hello", "lxcprov-rpm"]);
    let o = lx(d.path(), &["exec", boot_name, "--", "/bin/cat", "/proc/1/uid_map"]);
    assert!(stdout(&o).split_whitespace().collect::<Vec<_>>() == ["0", "200000", "65536"], "{}", stdout(&o));
    assert!(lx(d.path(), &["destroy", boot_name, "--purge", "--yes"]).status.success());
    // A guest whose rpm looks elsewhere (the EL-vs-Fedora path mix-up) is refused before the rename.
    let pw_ = profile("rpmdb-wrong", "centos-stream9", "9", "wrongdb");
    let o = boot("it-wrong", &pw_, "rpmdb-wrong");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lists 0 packages, but 3 were installed"), "{}", stderr(&o));
    assert!(!d.path().join("pool/it-wrong").exists() && !d.path().join("pool/.it-wrong.partial").exists());
}

/// The components of the one `sbom` record of `sbom --json`.
fn sbom_components(o: &Output) -> Vec<serde_json::Value> {
    let recs = records(&o.stdout);
    let [Record::Sbom(doc)] = recs.as_slice() else { panic!("not one sbom record: {recs:?}") };
    assert_eq!(doc["specVersion"], "1.5");
    doc["components"].as_array().unwrap().clone()
}

fn property<'a>(c: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    c["properties"].as_array()?.iter().find(|p| p["name"] == name)?["value"].as_str()
}

#[test]
#[ignore = "root tier: needs root, dnf and rpm (scripts/test.sh)"]
fn sbom_lists_a_signed_rpm_bootstrap_with_its_signatures_and_the_hosts_dpkg_packages() {
    preflight();
    let d = workdir("sbom");
    let repo = SignedRepo::new(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let prof = repo.profile("rpm-signed").write(d.path());
    let o = bootstrap_with(d.path(), "it-sbom", "rpm-signed", &prof, &pw);
    assert!(o.status.success());
    // The guest's own rpm database, read by the host's rpm: both packages, signed, gpgcheck on.
    let o = lx(d.path(), &["--json", "sbom", "it-sbom"]);
    assert!(o.status.success());
    let comps = sbom_components(&o);
    let names: Vec<&str> =
        comps.iter().filter(|c| c["type"] == "library").map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lxcprov-base", "lxcprov-hello"], "{comps:?}");
    for c in comps.iter().filter(|c| c["type"] == "library") {
        assert!(c["purl"].as_str().unwrap().starts_with("pkg:rpm/"), "{c}");
        assert_eq!(property(c, "lxcprov:package:gpgcheck"), Some("true"), "{c}");
        assert!(property(c, "lxcprov:package:signature").unwrap().contains("Key ID"), "{c}");
    }
    // Two runs diff cleanly; the human form is the document itself.
    let a = lx(d.path(), &["sbom", "it-sbom"]);
    let b = lx(d.path(), &["sbom", "it-sbom"]);
    assert_eq!(a.stdout, b.stdout);
    let doc: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(doc["bomFormat"], "CycloneDX");
    let t = lx(d.path(), &["sbom", "it-sbom", "--timestamp"]);
    let doc: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    assert!(doc["metadata"]["timestamp"].as_str().unwrap().ends_with('Z'));

    // The host is a Debian tree: every installed package of dpkg-query, and nothing else.
    let o = lx(d.path(), &["--json", "sbom", "--rootfs", "/"]);
    assert!(o.status.success());
    let comps = sbom_components(&o);
    let q = Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev} ${binary:Package}\n"]).output().unwrap();
    let installed = stdout(&q).lines().filter(|l| l.starts_with("ii") || l.starts_with("hi")).count();
    let debs = comps.iter().filter(|c| c["purl"].as_str().is_some_and(|p| p.starts_with("pkg:deb/debian/"))).count();
    assert_eq!(debs, installed);
    assert!(comps.iter().all(|c| c["type"] != "library" || property(c, "lxcprov:package:gpgcheck") == Some("unknown")));
    // No database: one clear error.
    let bb = busybox(d.path());
    let o = lx(d.path(), &["sbom", "--rootfs", bb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no package database"));
}

#[test]
#[ignore = "root tier: needs root, dnf, rpmbuild and createrepo_c (scripts/test.sh)"]
fn outdated_finds_a_newer_rpm_in_the_bootstrap_repository() {
    preflight();
    let d = workdir("outdated-rpm");
    let repo = SignedRepo::new(d.path());
    let pw = d.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let prof = repo.profile("rpm-signed").write(d.path());
    let o = bootstrap_with(d.path(), "it-rpmold", "rpm-signed", &prof, &pw);
    assert!(o.status.success());
    // Against the repository it was installed from: nothing pending.
    let o = lx(d.path(), &["--json", "outdated", "it-rpmold", "--profile-file", prof.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(updates(&o).is_empty());

    // The same repository with lxcprov-hello 2.0 added: one update, the tree untouched.
    let v2 = repo.with_package(&d.path().join("v2"), "lxcprov-hello", "2.0", "/usr/share/lxcprov-hello/hello.txt");
    // The same profile, in a file of its own, on the newer repository.
    let newer = d.path().join("newer");
    std::fs::create_dir_all(&newer).unwrap();
    let prof2 = repo.profile("rpm-signed").url(&v2).write(&newer);
    let db = d.path().join("pool/it-rpmold/var/lib/rpm");
    let before: Vec<_> =
        std::fs::read_dir(&db).unwrap().map(|e| e.unwrap().metadata().unwrap().modified().unwrap()).collect();
    let o = lx(d.path(), &["--json", "outdated", "it-rpmold", "--profile-file", prof2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let u = updates(&o);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(
        (u[0].name.as_str(), u[0].installed.as_str(), u[0].candidate.as_str()),
        ("lxcprov-hello", "1.0-1", "2.0-1")
    );
    let after: Vec<_> =
        std::fs::read_dir(&db).unwrap().map(|e| e.unwrap().metadata().unwrap().modified().unwrap()).collect();
    assert_eq!(before, after, "the guest's rpm database is copied, not used");
}
