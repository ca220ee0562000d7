//! Checks against fixture host trees: a good container, then one fault at a time.

use super::fixture::*;
use super::*;

const IDS: [&str; 14] = [
    "selinux.host",
    "selinux.label",
    "selinux.mcs_unique",
    "selinux.imagelabel",
    "apparmor.label",
    "net.vnet",
    "pidns",
    "userns",
    "caps",
    "cgroup",
    "proc_views",
    "disk",
    "seccomp",
    "trust",
];

/// Asserts a status and that the summary contains `needle`.
#[track_caller]
fn expect(c: &Check, status: Status, needle: &str) {
    assert_eq!(c.status, status, "{}: {} / {:#?}", c.id, c.summary, c.evidence);
    assert!(c.summary.contains(needle), "{}: {:?} lacks {needle:?}", c.id, c.summary);
}

fn has_evidence(c: &Check, needle: &str) -> bool {
    c.evidence.iter().any(|e| e.contains(needle))
}

#[test]
fn good_container_passes_everything_relevant() {
    let f = Fixture::good();
    let checks = f.run();
    assert_eq!(checks.iter().map(|c| c.id).collect::<Vec<_>>(), IDS);
    for c in &checks {
        // No disk quota in the fixture (a mounted file system of its own cannot be faked).
        let want = if c.id == "apparmor.label" || c.id == "disk" { Status::Skip } else { Status::Pass };
        assert_eq!(c.status, want, "{}: {} / {:#?}", c.id, c.summary, c.evidence);
    }
    let get = |id: &str| checks.iter().find(|c| c.id == id).unwrap();
    expect(get("pidns"), Status::Pass, "init is PID 1 inside, 4242 on the host; pid ns 4026532301 != host 4026531836");
    expect(get("net.vnet"), Status::Pass, "vnet0 up on virbr1; net ns 4026532305 != host 4026531840");
    expect(get("selinux.label"), Status::Pass, "2 process(es) run as container_t at s0:c297,c568");
    expect(get("userns"), Status::Pass, "root inside is uid 200000 on the host");
    expect(get("cgroup"), Status::Pass, "memory.limit_in_bytes 536870912");
    expect(get("selinux.imagelabel"), Status::Pass, "private to this container's categories");
    // init_t, virtd_t and sshd_t dominate by design: evidence, not failures.
    let mcs = get("selinux.mcs_unique");
    expect(mcs, Status::Pass, "3 trusted host process(es) dominate it");
    assert!(
        has_evidence(mcs, "pid 300 (libvirtd)") && has_evidence(mcs, "1 without a readable label"),
        "{:#?}",
        mcs.evidence
    );
    assert!(has_evidence(get("caps"), "/proc/4242/status: CapBnd: "));
}

#[test]
fn another_process_with_the_same_pair_fails_mcs_unique() {
    let mut f = Fixture::good();
    f.process(5003, 5001, "init", Some(LABEL), OTHER_NS);
    expect(&f.check("selinux.mcs_unique"), Status::Fail, "pid 5003 (init) runs at the same level s0:c297,c568");
    // It is not one of this container's processes.
    expect(&f.check("selinux.label"), Status::Pass, "2 process(es)");
}

#[test]
fn a_container_t_that_dominates_fails() {
    let mut f = Fixture::good();
    f.process(5003, 5001, "init", Some("system_u:system_r:container_t:s0:c0.c1023"), OTHER_NS);
    expect(
        &f.check("selinux.mcs_unique"),
        Status::Fail,
        "pid 5003 (init) is a container_t workload at s0:c0.c1023 that dominates s0:c297,c568",
    );
}

#[test]
fn a_virtd_t_that_dominates_is_evidence_not_failure() {
    let mut f = Fixture::good();
    f.process(5003, 1, "virtd-helper", Some("system_u:system_r:virtd_t:s0:c0.c1023"), HOST_NS);
    let c = f.check("selinux.mcs_unique");
    expect(&c, Status::Pass, "4 trusted host process(es)");
    assert!(has_evidence(&c, "pid 5003 (virtd-helper) system_u:system_r:virtd_t:s0:c0.c1023: dominates s0:c297,c568 (trusted host type, allowed)"), "{:#?}", c.evidence);
}

#[test]
fn a_single_category_label_fails() {
    let mut f = Fixture::good();
    let one = "system_u:system_r:container_t:s0:c297";
    f.facts.domain.seclabel.as_mut().unwrap().label = Some(one.into());
    f.process(INIT, CTRL, "systemd", Some(one), CONT_NS);
    f.process(CHILD, INIT, "nginx", Some(one), CONT_NS);
    expect(&f.check("selinux.mcs_unique"), Status::Fail, "single category");
    expect(&f.check("selinux.label"), Status::Fail, "single category");
}

#[test]
fn a_container_process_with_another_label_fails() {
    let mut f = Fixture::good();
    f.process(CHILD, INIT, "nginx", Some("system_u:system_r:container_t:s0:c1,c2"), CONT_NS);
    expect(&f.check("selinux.label"), Status::Fail, "pid 4250 (nginx) runs at s0:c1,c2, not s0:c297,c568");
    let mut f = Fixture::good();
    f.process(CHILD, INIT, "nginx", Some("system_u:system_r:unconfined_t:s0:c297,c568"), CONT_NS);
    expect(&f.check("selinux.label"), Status::Fail, "runs as unconfined_t, not container_t");
}

#[test]
fn a_process_entered_into_the_pid_namespace_is_checked_too() {
    let mut f = Fixture::good();
    // nsenter'ed from an admin shell: not a descendant of the init, but in its pid ns.
    f.process(800, 600, "sh", Some("unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"), CONT_NS);
    let c = f.check("selinux.label");
    expect(&c, Status::Fail, "pid 800 (sh) runs as unconfined_t");
    // And it is not counted as an outside process by mcs_unique.
    let m = f.check("selinux.mcs_unique");
    assert!(!has_evidence(&m, "pid 800"), "{:#?}", m.evidence);
}

#[test]
fn a_domain_label_of_an_unconfined_type_fails() {
    let mut f = Fixture::good();
    let l = "system_u:system_r:spc_t:s0:c297,c568";
    f.facts.domain.seclabel.as_mut().unwrap().label = Some(l.into());
    f.process(INIT, CTRL, "systemd", Some(l), CONT_NS);
    f.process(CHILD, INIT, "nginx", Some(l), CONT_NS);
    expect(&f.check("selinux.label"), Status::Fail, "type spc_t is not confined");
}

#[test]
fn no_seclabel_fails_the_selinux_label_checks() {
    let mut f = Fixture::good();
    f.facts.domain.seclabel = None;
    expect(&f.check("selinux.label"), Status::Fail, "no <seclabel>");
    expect(&f.check("selinux.mcs_unique"), Status::Fail, "no <seclabel>");
    expect(&f.check("selinux.imagelabel"), Status::Fail, "no <seclabel>");
    f.facts.domain.seclabel =
        Some(SecLabel { model: "selinux".into(), kind: "none".into(), label: None, imagelabel: None });
    expect(&f.check("selinux.label"), Status::Fail, "not an SELinux label");
}

#[test]
fn selinux_host_failures() {
    let mut f = Fixture::good();
    f.labels.enforcing = Some(false);
    expect(&f.check("selinux.host"), Status::Fail, "SELinux is permissive");
    f.labels.enforcing = None;
    expect(&f.check("selinux.host"), Status::Fail, "SELinux is not running");

    let f = Fixture::good();
    f.write("sys/fs/selinux/mls", "0\n");
    expect(&f.check("selinux.host"), Status::Fail, "MCS is off");
    f.remove("sys/fs/selinux/mls");
    expect(&f.check("selinux.host"), Status::Fail, "is selinuxfs mounted?");

    let f = Fixture::good();
    f.remove("etc/selinux/default/contexts/lxc_contexts");
    expect(&f.check("selinux.host"), Status::Fail, "policy default has no lxc_contexts");

    let mut f = Fixture::good();
    f.expect.secmodel = Some("none".into());
    expect(&f.check("selinux.host"), Status::Fail, "libvirt's security driver is \"none\", not selinux");
    f.expect.secmodel = None;
    expect(&f.check("selinux.host"), Status::Fail, "unknown");
}

#[test]
fn imagelabel_rules() {
    let mut f = Fixture::good();
    f.labels.files.insert(ROOTFS.into(), "system_u:object_r:container_file_t:s0".into());
    expect(
        &f.check("selinux.imagelabel"),
        Status::Pass,
        "(shared s0): every container can read these files; libvirt does not relabel an LXC rootfs",
    );
    f.labels.files.insert(ROOTFS.into(), "system_u:object_r:var_t:s0".into());
    expect(&f.check("selinux.imagelabel"), Status::Fail, "the rootfs type is var_t");
    f.labels.files.insert(ROOTFS.into(), "system_u:object_r:container_file_t:s0:c5,c6".into());
    expect(&f.check("selinux.imagelabel"), Status::Fail, "the rootfs level s0:c5,c6 is neither");
    f.labels.files.insert(ROOTFS.into(), "system_u:object_r:svirt_sandbox_file_t:s0:c297,c568".into());
    expect(&f.check("selinux.imagelabel"), Status::Pass, "container_file_t:s0:c297,c568: private");
    f.labels.files.clear();
    expect(&f.check("selinux.imagelabel"), Status::Fail, "has no readable SELinux label");
}

#[test]
fn wrong_uid_map_fails_userns() {
    let f = Fixture::good();
    f.write(&format!("proc/{INIT}/uid_map"), "0 100000 65536\n");
    let c = f.check("userns");
    expect(&c, Status::Fail, "uid_map is [0 100000 65536], the profile wants [0 200000 65536]");
    assert!(has_evidence(&c, "uid_map: 0 100000 65536"));
}

#[test]
fn an_identity_map_fails_userns() {
    let mut f = Fixture::good();
    f.write(&format!("proc/{INIT}/uid_map"), "         0          0 4294967295\n");
    f.write(&format!("proc/{INIT}/gid_map"), "         0          0 4294967295\n");
    f.facts.domain.idmap = None;
    f.process(INIT, CTRL, "systemd", Some(LABEL), Ns { user: HOST_NS.user, ..CONT_NS });
    let c = f.check("userns");
    assert_eq!(c.status, Status::Fail);
    let all = format!("{} {:?}", c.summary, c.evidence);
    for needle in [
        "uid 0 inside is uid 0 on the host",
        "gid 0 inside is gid 0 on the host",
        "no <idmap>",
        "shares the host's user namespace",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
}

#[test]
fn no_profile_idmap_skips_userns() {
    let mut f = Fixture::good();
    f.expect.idmap = None;
    expect(&f.check("userns"), Status::Skip, "profile sets no idmap");
}

#[test]
fn sys_admin_left_in_the_bounding_set_fails_caps() {
    let f = Fixture::good();
    f.status(INIT, &format!("{INIT}\t1"), &capbnd(&DROPPED[1..]));
    let c = f.check("caps");
    expect(&c, Status::Fail, "sys_admin is still in the bounding set");
    assert!(c.evidence.iter().any(|e| e.starts_with("bounding set") && e.contains("sys_admin")), "{:#?}", c.evidence);
    let mut f = Fixture::good();
    f.expect.dropped_caps.push("sys_pwn".into());
    expect(&f.check("caps"), Status::Fail, "unknown capability name \"sys_pwn\"");
}

#[test]
fn a_wrong_memory_limit_fails_cgroup() {
    let f = Fixture::good();
    f.write(&format!("sys/fs/cgroup/memory{CG}/memory.limit_in_bytes"), "9223372036854771712\n");
    let c = f.check("cgroup");
    expect(&c, Status::Fail, "memory.limit_in_bytes is not 536870912");
    assert!(has_evidence(&c, "memory.limit_in_bytes: 9223372036854771712 (want 536870912)"));
    let f = Fixture::good();
    f.write(&format!("sys/fs/cgroup/cpu,cpuacct{CG}/cpu.cfs_quota_us"), "-1\n");
    expect(&f.check("cgroup"), Status::Fail, "cpu.cfs_quota_us is not 50000");
}

#[test]
fn limits_on_the_parent_of_the_inits_cgroup_count() {
    let f = Fixture::good();
    let child = format!("{CG}/init.scope");
    f.write(&format!("proc/{INIT}/cgroup"), &format!("11:blkio:{child}\n5:cpu,cpuacct:{child}\n4:memory:{child}\n"));
    f.write(&format!("sys/fs/cgroup/memory{child}/memory.limit_in_bytes"), "9223372036854771712\n");
    f.write(&format!("sys/fs/cgroup/cpu,cpuacct{child}/cpu.shares"), "1024\n");
    let c = f.check("cgroup");
    expect(&c, Status::Pass, "memory.limit_in_bytes 536870912");
    assert!(has_evidence(&c, "init.scope/memory.limit_in_bytes: 9223372036854771712"));
    // The /machine partition is never taken for the container's cgroup.
    let f = Fixture::good();
    f.write(&format!("sys/fs/cgroup/memory{CG}/memory.limit_in_bytes"), "1\n");
    f.write("sys/fs/cgroup/memory/machine/memory.limit_in_bytes", "536870912\n");
    expect(&f.check("cgroup"), Status::Fail, "memory.limit_in_bytes is not 536870912");
}

#[test]
fn cpu_controller_dirs_in_either_spelling() {
    // Only the joined name, no `cpu` symlink.
    let f = Fixture::good();
    f.remove("sys/fs/cgroup/cpu");
    expect(&f.check("cgroup"), Status::Pass, "cpu.shares 512");
    // Only `cpu` (a separate hierarchy), while /proc lists `cpu,cpuacct`.
    let f = Fixture::good();
    f.remove("sys/fs/cgroup/cpu");
    std::fs::rename(f.host.root.join("sys/fs/cgroup/cpu,cpuacct"), f.host.root.join("sys/fs/cgroup/cpu")).unwrap();
    expect(&f.check("cgroup"), Status::Pass, "cpu.shares 512");
    f.remove("sys/fs/cgroup/cpu");
    expect(&f.check("cgroup"), Status::Fail, "no cpu hierarchy");
}

#[test]
fn cgroup_v2_compares_memory_and_cpu_max() {
    let f = Fixture::good();
    let scope = "/machine.slice/machine-lxc\\x2d4241\\x2dweb1.scope";
    f.remove("sys/fs/cgroup");
    f.write("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n");
    f.write(&format!("sys/fs/cgroup{scope}/memory.max"), "536870912\n");
    f.write(&format!("sys/fs/cgroup{scope}/cpu.max"), "50000 100000\n");
    f.write(&format!("proc/{INIT}/cgroup"), &format!("0::{scope}\n"));
    let c = f.check("cgroup");
    expect(&c, Status::Pass, "memory.max 536870912, cpu.max period 100000, cpu.max quota 50000 (cgroup v2)");
    assert!(c.summary.contains("cpu.shares is cpu.weight on cgroup v2") && c.summary.contains("not compared"));
    f.write(&format!("sys/fs/cgroup{scope}/memory.max"), "max\n");
    expect(&f.check("cgroup"), Status::Fail, "memory.max is not 536870912");
}

#[test]
fn cgroup_skips_without_limits_and_fails_in_the_root_cgroup() {
    let mut f = Fixture::good();
    f.facts.domain.memory_limit_kib = None;
    f.facts.domain.cpu_shares = None;
    f.facts.domain.cpu_period = None;
    f.facts.domain.cpu_quota = None;
    f.facts.domain.blkio_weight = None;
    expect(&f.check("cgroup"), Status::Skip, "sets no resource limits");
    let f = Fixture::good();
    f.write(&format!("proc/{INIT}/cgroup"), "4:memory:/\n5:cpu,cpuacct:/\n11:blkio:/\n");
    expect(&f.check("cgroup"), Status::Fail, "not in a cgroup of its own");
}

#[test]
fn a_missing_vnet_fails() {
    let f = Fixture::good();
    f.remove("sys/class/net/vnet0");
    expect(&f.check("net.vnet"), Status::Fail, "vnet0 does not exist on the host");
}

#[test]
fn a_vnet_on_the_wrong_bridge_or_down_fails() {
    let f = Fixture::good();
    f.symlink("sys/class/net/vnet0/master", "../../../virtual/net/virbr0");
    expect(&f.check("net.vnet"), Status::Fail, "vnet0 is enslaved to virbr0, not virbr1");
    f.remove("sys/class/net/vnet0/master");
    expect(&f.check("net.vnet"), Status::Fail, "vnet0 is not enslaved to any bridge (expected virbr1)");
    let f = Fixture::good();
    f.write("sys/class/net/vnet0/flags", "0x1002\n");
    expect(&f.check("net.vnet"), Status::Fail, "vnet0 is administratively down");
    f.write("sys/class/net/vnet0/flags", "0x1003\n");
    f.write("sys/class/net/vnet0/operstate", "lowerlayerdown\n");
    let c = f.check("net.vnet");
    expect(&c, Status::Pass, "vnet0 up on virbr1");
    assert!(has_evidence(&c, "no carrier"));
    f.remove("sys/class/net/vnet0/flags");
    expect(&f.check("net.vnet"), Status::Fail, "vnet0 is lowerlayerdown, not up");
    f.write("sys/class/net/vnet0/operstate", "unknown\n");
    let c = f.check("net.vnet");
    expect(&c, Status::Pass, "vnet0 up on virbr1");
    assert!(has_evidence(&c, "unknown (accepted as up"));
}

#[test]
fn sharing_the_hosts_network_fails() {
    let mut f = Fixture::good();
    f.process(INIT, CTRL, "systemd", Some(LABEL), Ns { net: HOST_NS.net, ..CONT_NS });
    expect(&f.check("net.vnet"), Status::Fail, "shares the host's network namespace (net:[4026531840])");
    f.facts.interfaces.clear();
    expect(
        &f.check("net.vnet"),
        Status::Fail,
        "no interface in the live XML, and the container shares the host's network namespace",
    );
    let mut f = Fixture::good();
    f.facts.interfaces.clear();
    expect(&f.check("net.vnet"), Status::Fail, "no interface in the live XML: expected a vnet");
    let mut f = Fixture::good();
    f.facts.interfaces[0].target_dev = Some("../../x".into());
    expect(&f.check("net.vnet"), Status::Fail, "is not a network device name");
}

#[test]
fn nspid_without_namespacing_fails_pidns() {
    let mut f = Fixture::good();
    f.status(INIT, &INIT.to_string(), &capbnd(DROPPED));
    f.process(INIT, CTRL, "systemd", Some(LABEL), Ns { pid: HOST_NS.pid, ..CONT_NS });
    let c = f.check("pidns");
    expect(&c, Status::Fail, "NSpid is just 4242: init is not in a child pid namespace");
    assert!(c.summary.contains("shares the host's pid namespace (pid:[4026531836])"), "{}", c.summary);
    assert!(has_evidence(&c, "/proc/4242/status: NSpid: 4242"));
}

#[test]
fn security_none_skips_the_mac_checks() {
    let mut f = Fixture::good();
    f.expect.security = SecModel::None;
    f.facts.domain.seclabel =
        Some(SecLabel { model: "none".into(), kind: "none".into(), label: None, imagelabel: None });
    f.labels = FakeLabels::default();
    for c in f.run() {
        if c.id.starts_with("selinux.") || c.id.starts_with("apparmor.") {
            expect(&c, Status::Skip, "security none: unconfined test container");
        } else if c.id == "disk" {
            expect(&c, Status::Skip, "no disk quota");
        } else {
            assert_eq!(c.status, Status::Pass, "{}: {}", c.id, c.summary);
        }
    }
}

#[test]
fn apparmor_profiles_are_checked_and_selinux_skipped() {
    let mut f = Fixture::good();
    let profile = "libvirt-7b1a8e6e-0d7e-4c38-9c6e-6b7a3b1b2a11";
    f.expect.security = SecModel::Apparmor;
    f.expect.secmodel = Some("apparmor".into());
    f.facts.domain.seclabel = Some(SecLabel {
        model: "apparmor".into(),
        kind: "dynamic".into(),
        label: Some(profile.into()),
        imagelabel: None,
    });
    f.write("sys/module/apparmor/parameters/enabled", "Y\n");
    let enforce = format!("{profile} (enforce)\n");
    f.process(INIT, CTRL, "systemd", Some(&enforce), CONT_NS);
    f.process(CHILD, INIT, "nginx", Some(&enforce), CONT_NS);
    expect(&f.check("apparmor.label"), Status::Pass, "2 process(es) confined by libvirt-7b1a8e6e");
    expect(&f.check("selinux.mcs_unique"), Status::Skip, "security apparmor: the selinux checks do not apply");
    f.process(CHILD, INIT, "nginx", Some(&format!("{profile} (complain)")), CONT_NS);
    expect(&f.check("apparmor.label"), Status::Fail, "pid 4250 (nginx) is in complain mode, not enforce");
    f.process(CHILD, INIT, "nginx", Some("unconfined"), CONT_NS);
    expect(&f.check("apparmor.label"), Status::Fail, "is confined by \"unconfined\"");
    // Still there but no label: a finding (only a process that has exited is skipped).
    f.process(CHILD, INIT, "nginx", None, CONT_NS);
    expect(&f.check("apparmor.label"), Status::Fail, "pid 4250 (nginx) has no readable AppArmor label");
    f.write("sys/module/apparmor/parameters/enabled", "N\n");
    expect(&f.check("apparmor.label"), Status::Fail, "AppArmor is not enabled");
}

#[test]
fn a_stopped_container_fails_every_process_check() {
    for pid in [None, Some(9999)] {
        let mut f = Fixture::good();
        f.facts.init_pid = pid;
        for c in f.run() {
            match c.id {
                "selinux.host" | "selinux.imagelabel" | "trust" => assert_eq!(c.status, Status::Pass, "{}", c.id),
                "apparmor.label" | "disk" => assert_eq!(c.status, Status::Skip),
                _ => expect(&c, Status::Fail, "the container is not running"),
            }
        }
    }
}

#[test]
fn trust_follows_the_bootstrap_record() {
    let mut f = Fixture::good();
    expect(&f.check("trust"), Status::Pass, "with signature checking");
    f.expect.gpgcheck = Some(false);
    expect(&f.check("trust"), Status::Fail, "WITHOUT signature checking");
    f.expect.gpgcheck = None;
    expect(&f.check("trust"), Status::Skip, "no record: not bootstrapped by lxcprov");
}

#[test]
fn many_problems_are_summarised_and_the_rest_kept_as_evidence() {
    let mut f = Fixture::good();
    for pid in 5003..5008 {
        f.process(pid, 1, "twin", Some(LABEL), OTHER_NS);
    }
    let c = f.check("selinux.mcs_unique");
    expect(&c, Status::Fail, "(+2 more in the evidence)");
    assert!(has_evidence(&c, "also: pid 5007 (twin)"), "{:#?}", c.evidence);
}

fn sample_report() -> Report {
    let mut f = Fixture::good();
    f.expect.gpgcheck = Some(false);
    f.process(CHILD, INIT, "evil\x1b[2J", Some(LABEL), CONT_NS);
    verify(&f.host, &f.facts, &f.expect, &f.labels)
}

#[test]
fn human_output_shape() {
    let r = sample_report();
    assert!(r.failed());
    assert_eq!(r.counts(), (11, 1, 2));
    let plain = render_human(&r, false, false);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), IDS.len() + 1);
    assert!(
        lines[6].starts_with("PASS  pidns ")
            && lines[6].ends_with("init is PID 1 inside, 4242 on the host; pid ns 4026532301 != host 4026531836"),
        "{}",
        lines[6]
    );
    assert!(lines[13].starts_with("FAIL  trust "), "{}", lines[13]);
    assert!(lines[4].starts_with("SKIP  apparmor.label "), "{}", lines[4]);
    // Summaries start in one column.
    let cols: Vec<usize> = lines.iter().zip(&r.checks).map(|(l, c)| l.len() - c.summary.len()).collect();
    assert!(cols.iter().all(|c| *c == "PASS  selinux.mcs_unique  ".len()), "{plain}");
    assert_eq!(lines[IDS.len()], "web1: 11 passed, 1 failed, 2 skipped");
    assert!(!plain.contains('\x1b'));

    let verbose = render_human(&r, false, true);
    assert!(
        verbose.contains("/proc/4242/status: NSpid: 4242 1\n")
            && verbose.contains("\n      - pid 4242 (systemd, init): "),
        "{verbose}"
    );
    // A process name cannot send escapes to the terminal.
    assert!(!verbose.contains('\x1b') && verbose.contains("evil\\u{1b}[2J"), "{verbose}");

    let color = render_human(&r, true, false);
    assert!(color.contains("\x1b[32mPASS\x1b[0m  selinux.host") && color.contains("\x1b[1;31mFAIL\x1b[0m  trust"));
    assert!(color.contains("\x1b[33mSKIP\x1b[0m"));
}

#[test]
fn jsonl_output_parses_back() {
    let r = sample_report();
    let text = render_jsonl(&r);
    assert!(text.ends_with('\n'));
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), IDS.len() + 1);
    for (rec, id) in recs.iter().zip(IDS) {
        assert_eq!(rec["type"], "check");
        let d = &rec["data"];
        assert_eq!(d["container"], "web1");
        assert_eq!(d["id"], id);
        assert!(["pass", "fail", "skip"].contains(&d["status"].as_str().unwrap()));
        assert!(d["summary"].is_string() && d["evidence"].is_array());
        assert_eq!(d.as_object().unwrap().len(), 5);
    }
    assert_eq!(recs[13]["data"]["status"], "fail");
    assert_eq!(recs[4]["data"]["status"], "skip");
    let sum = &recs[IDS.len()];
    assert_eq!(sum["type"], "summary");
    assert_eq!(sum["data"], serde_json::json!({"container": "web1", "passed": 11, "failed": 1, "skipped": 2}));
    // Evidence survives the round trip, control characters included.
    let pidns = &recs[6]["data"]["evidence"];
    assert!(pidns
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().ends_with("/proc/4242/status: NSpid: 4242 1")));
    assert!(text.contains("evil\\u001b[2J"));
}

#[test]
fn a_foreign_domain_without_user_namespace_fails_against_the_baseline() {
    let mut f = Fixture::good();
    f.expect.idmap = None;
    f.expect.baseline = true;
    f.expect.gpgcheck = None;
    let r = verify(&f.host, &f.facts, &f.expect, &f.labels);
    let userns = r.checks.iter().find(|c| c.id == "userns").unwrap();
    assert_eq!(userns.status, Status::Fail, "{userns:?}");
    assert!(userns.summary.contains("root in the container is root on the host"));
    let trust = r.checks.iter().find(|c| c.id == "trust").unwrap();
    assert!(trust.summary.contains("not created by lxcprov"), "{trust:?}");
    assert!(r.checks.iter().all(|c| !c.summary.contains("unconfined test container")));
    assert!(r.failed());
}

#[test]
fn seccomp_needs_every_process_filtered() {
    let mut f = Fixture::good();
    expect(&f.check("seccomp"), Status::Pass, "run under the container's seccomp filter (4 programs)");
    assert!(has_evidence(&f.check("seccomp"), "Seccomp: 2, Seccomp_filters: 4, NoNewPrivs: 0"));
    // systemd's services stack their own filters: more is fine, fewer is not
    let child = format!("Name:\tnginx\nNSpid:\t{CHILD}\t7\nSeccomp:\t2\nSeccomp_filters:\t6\n");
    f.write(&format!("proc/{CHILD}/status"), &child);
    expect(&f.check("seccomp"), Status::Pass, "all 2 processes");
    f.write(
        &format!("proc/{CHILD}/status"),
        &child.replace("Seccomp:\t2\nSeccomp_filters:\t6", "Seccomp:\t0\nSeccomp_filters:\t0"),
    );
    expect(&f.check("seccomp"), Status::Fail, "(nginx) has Seccomp: 0, not 2");
    f.write(&format!("proc/{CHILD}/status"), &child.replace("filters:\t6", "filters:\t2"));
    expect(&f.check("seccomp"), Status::Fail, "has 2 filters, fewer than 4");
    f.write(&format!("proc/{CHILD}/status"), &child);
    f.write(
        &format!("proc/{INIT}/status"),
        &format!("Name:\tsystemd\nNSpid:\t{INIT}\t1\nSeccomp:\t2\nSeccomp_filters:\t5\n"),
    );
    expect(&f.check("seccomp"), Status::Fail, "init PID 4242 has 5 filters, the shim installs 4");
    f.expect.seccomp = SeccompExpect::Off;
    expect(&f.check("seccomp"), Status::Skip, "security.seccomp: none");
    f.expect.seccomp = SeccompExpect::Broken("asked for default but the init is /sbin/init".into());
    expect(&f.check("seccomp"), Status::Fail, "asked for default");
}

#[test]
fn an_isolated_range_mapped_by_another_namespace_fails_userns() {
    let mut f = Fixture::good();
    f.expect.idmap_isolated = true;
    expect(&f.check("userns"), Status::Pass, "isolated: no other user namespace maps host uids 200000..265536");
    // A nested namespace inside the container (same PID namespace) is the container's own.
    f.process(4300, INIT, "nested", Some(LABEL), Ns { user: 4026532999, ..CONT_NS });
    f.write("proc/4300/uid_map", "0 200001 100\n");
    expect(&f.check("userns"), Status::Pass, "isolated");
    // Another container whose map meets the range fails it, named by namespace and pid.
    let other = Ns { pid: 4026532501, net: 4026532505, user: 4026532500 };
    f.process(5000, 4999, "init", None, other);
    f.write("proc/5000/uid_map", "0 265535 65536\n");
    let c = f.check("userns");
    expect(&c, Status::Fail, "is also mapped by user namespace 4026532500 (pid 5000)");
    // Not when that process is a zombie (a destroyed container's init, not reaped yet).
    f.write("proc/5000/stat", "5000 (init) Z 4999 5000 5000 0 -1 4194560");
    expect(&f.check("userns"), Status::Pass, "isolated");
    f.process(5000, 4999, "init", None, other);
    // With a shared (profile) map the same neighbour is evidence, not a failure.
    f.expect.idmap_isolated = false;
    let c = f.check("userns");
    expect(&c, Status::Pass, "the profile's map is shared with 1 other user namespace(s)");
    assert!(has_evidence(&c, "also mapped by user namespace 4026532500 (pid 5000)"), "{c:?}");
    // A neighbour whose range only touches the end is not an overlap.
    f.write("proc/5000/uid_map", "0 265536 65536\n");
    expect(&f.check("userns"), Status::Pass, "root inside is uid 200000");
}

#[test]
fn proc_views_are_lxcfs_mounts_in_the_containers_own_mount_namespace() {
    let mut f = Fixture::good();
    expect(&f.check("proc_views"), Status::Pass, "2 /proc files are lxcfs's views");
    f.facts.domain.proc_views.push("/proc/loadavg".into());
    expect(&f.check("proc_views"), Status::Fail, "/proc/loadavg is not mounted over");
    f.facts.domain.proc_views = vec!["/proc".into()];
    expect(&f.check("proc_views"), Status::Fail, "/proc is proc, not lxcfs's view");
    f.facts.domain.proc_views.clear();
    expect(&f.check("proc_views"), Status::Skip, "binds no /proc views");
}

#[test]
fn a_disk_quota_whose_file_system_is_not_mounted_fails() {
    let f = Fixture::good();
    let layer = "var/lib/libvirt/filesystems/.lxcprov/layers/web1";
    f.write(&format!("{layer}/disk.img"), "x");
    f.write(&format!("{layer}/disk/.keep"), "");
    expect(&f.check("disk"), Status::Fail, "is not mounted");
}
