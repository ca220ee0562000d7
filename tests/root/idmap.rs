//! Root tier, user namespaces: file capabilities and ACLs across the id shift; isolated id
//! maps, each container's own from the registry, proved by verify and given back by purge.

use super::*;

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn file_capabilities_and_acls_survive_the_idmap_shift() {
    preflight();
    let d = workdir("caps");
    let f = d.path().join("ping");
    std::fs::write(&f, "#!/bin/sh\n").unwrap();
    let xattr = |name: &str, value: Option<&[u8]>| -> Option<Vec<u8>> {
        let p = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        let n = std::ffi::CString::new(name).unwrap();
        unsafe {
            if let Some(v) = value {
                assert_eq!(libc::lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0), 0, "set {name}");
                return None;
            }
            let mut buf = vec![0u8; 64];
            let r = libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len());
            (r >= 0).then(|| buf[..r as usize].to_vec())
        }
    };
    // cap_net_raw+ep as `setcap` writes it on the host (v2), and an ACL naming uid 1000.
    let mut v2 = 0x0200_0001u32.to_le_bytes().to_vec();
    v2.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v2.extend_from_slice(&[0; 12]);
    xattr("security.capability", Some(&v2));
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in
        [(1u16, 6u16, u32::MAX), (2, 4, 1000), (4, 4, u32::MAX), (0x10, 4, u32::MAX), (0x20, 4, u32::MAX)]
    {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    xattr("system.posix_acl_access", Some(&acl));
    lxcprov::fsutil::shift_ownership(d.path(), 100000, 100000, 65536).unwrap();
    let caps = xattr("security.capability", None).expect("the capability survived the chown");
    assert_eq!(caps.len(), 24, "v3");
    assert_eq!(u32::from_le_bytes(caps[20..24].try_into().unwrap()), 100000, "root id is the namespace's root");
    assert_eq!(u32::from_le_bytes(caps[4..8].try_into().unwrap()), 1 << 13, "cap_net_raw kept");
    let acl = xattr("system.posix_acl_access", None).unwrap();
    assert_eq!(u32::from_le_bytes(acl[12 + 4..12 + 8].try_into().unwrap()), 101000, "the ACL's user 1000 is shifted");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&f).unwrap().uid(), 100000);
}

/// The isolated id-map registry (lxcprov's state file), empty when there is none.
fn registry(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("state/idmap-registry.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(serde_json::json!({"ranges": {}}))
}

/// `--idmap isolated` on this host: each container gets a range of its own from the
/// registry and verify proves nobody else maps it, two of them side by side (busybox: on
/// this host, cgroup v1 and PID 1 not systemd, only systemd containers with different maps
/// conflict; the SELinux lab guest runs two systemd ones). A fixed map meeting a range is
/// refused; a lab with isolated maps gets one per student; purge gives them back.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn isolated_id_maps_are_each_containers_own_and_go_back_with_it() {
    preflight();
    let names =
        ["lxcprov-it-iso1", "lxcprov-it-iso2", "lxcprov-it-isofix", "lxcprov-it-isolab-s01", "lxcprov-it-isolab-s02"];
    let nets = ["lxcprov-it-bbnet", "lxcprov-lab-lxcprov-it-isolab"];
    clean(&names, &nets);
    let _paused = PausedSystemd::pause();
    let _c = Cleanup(names.to_vec(), nets.to_vec());
    let d = workdir("iso");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-bb", BB_PROFILE);
    let (p, b) = (prof.to_str().unwrap(), bb.to_str().unwrap());
    let create = |name: &str| {
        lx(
            d.path(),
            &[
                "--json",
                "create",
                name,
                "--profile",
                "it-bb",
                "--profile-file",
                p,
                "--rootfs-from",
                b,
                "--idmap",
                "isolated",
            ],
        )
    };
    let range = |name: &str| registry(d.path())["ranges"][name].as_u64();
    let isolated_userns = |o: &Output, start: u64| {
        let c = checks(o);
        let u = c.iter().find(|c| c.id == "userns").expect("a userns check");
        let s = &u.summary;
        assert_eq!(u.status, Status::Pass, "{u:?}");
        assert!(s.starts_with(&format!("root inside is uid {start} on the host")), "{s}");
        assert!(s.contains(&format!("isolated: no other user namespace maps host uids {start}..")), "{s}");
    };
    for n in ["lxcprov-it-iso1", "lxcprov-it-iso2"] {
        let o = create(n);
        assert_eq!(o.status.code(), Some(1), "only trust fails (an import): {}", stdout(&o));
    }
    let (r1, r2) = (range("lxcprov-it-iso1").expect("iso1's range"), range("lxcprov-it-iso2").expect("iso2's range"));
    assert!(r1 >= 1048576 && r1 % 65536 == 0 && r2 % 65536 == 0 && r1 != r2, "{r1} {r2}");
    // Both run; each one's verify proves that the other does not map its ids.
    for (n, r) in [("lxcprov-it-iso1", r1), ("lxcprov-it-iso2", r2)] {
        isolated_userns(&lx(d.path(), &["--json", "verify", n]), r);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(d.path().join("pool").join(n).join("bin")).unwrap().uid() as u64, r);
    }
    // virsh destroy + virsh start without lxcprov: the same range, still isolated.
    assert!(virsh(&["destroy", "lxcprov-it-iso1"]).status.success());
    assert!(virsh(&["start", "lxcprov-it-iso1"]).status.success());
    isolated_userns(&lx(d.path(), &["--json", "verify", "lxcprov-it-iso1"]), r1);
    // A fixed map that meets iso1's range is refused before anything is made.
    let fixed = format!(
        "{BB_PROFILE}  idmap:\n    uid: {{start: 0, target: {}, count: 65536}}\n    gid: {{start: 0, target: 100000, count: 65536}}\n",
        r1 + 1000
    );
    let fprof = write_profile(d.path(), "it-fixed", &fixed);
    let o = lx(
        d.path(),
        &[
            "create",
            "lxcprov-it-isofix",
            "--profile",
            "it-fixed",
            "--profile-file",
            fprof.to_str().unwrap(),
            "--rootfs-from",
            b,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("meets lxcprov-it-iso1's isolated range"), "{}", stderr(&o));
    assert!(!domain_exists("lxcprov-it-isofix") && !d.path().join("pool/lxcprov-it-isofix").exists());
    assert!(range("lxcprov-it-isofix").is_none());
    // A lab with isolated maps: one range per student, given back by lab down --purge.
    let lab = [
        "lab",
        "up",
        "lxcprov-it-isolab",
        "--count",
        "2",
        "--prefix",
        "s",
        "--profile",
        "it-bb",
        "--profile-file",
        p,
        "--idmap",
        "isolated",
        "--rootfs-from",
        b,
    ];
    let o = lx(d.path(), &lab);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("a systemd student is refused"), "this host's limit is said: {}", stderr(&o));
    let (s1, s2) = (range("lxcprov-it-isolab-s01").unwrap(), range("lxcprov-it-isolab-s02").unwrap());
    assert_eq!([r1, r2, s1, s2].iter().collect::<std::collections::BTreeSet<_>>().len(), 4, "{r1} {r2} {s1} {s2}");
    isolated_userns(&lx(d.path(), &["--json", "verify", "lxcprov-it-isolab-s02"]), s2);
    let o = lx(d.path(), &["doctor"]);
    assert!(
        stdout(&o).contains("shared id maps apply") && stdout(&o).contains("4 isolated range(s)"),
        "{}",
        stdout(&o)
    );
    assert!(lx(d.path(), &["lab", "down", "lxcprov-it-isolab", "--purge", "--yes"]).status.success());
    // destroy --purge gives the range back.
    for n in ["lxcprov-it-iso1", "lxcprov-it-iso2"] {
        let o = lx(d.path(), &["destroy", n, "--purge", "--yes"]);
        assert!(o.status.success());
        assert!(stderr(&o).contains("released its isolated id range"), "{}", stderr(&o));
    }
    assert!(registry(d.path())["ranges"].as_object().unwrap().is_empty(), "{}", registry(d.path()));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}
