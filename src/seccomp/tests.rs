use super::*;
use crate::ops::seccomp_learn::{allow_list, learn_policy, parse_record};

#[test]
fn builtin_policies_compile_and_check() {
    for p in [Policy::default_deny(), Policy::strict(), learn_policy()] {
        p.check().unwrap();
        let progs = compile(&p).unwrap();
        assert!(progs.len() >= 2, "{progs:?}");
        for prog in &progs {
            assert!(prog.len() < 4096);
        }
        let bytes = encode(&progs);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), progs.len());
        assert_eq!(
            back.iter().map(|b| b.len() / 8).collect::<Vec<_>>(),
            progs.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn default_denies_the_escape_calls_and_keeps_what_systemd_needs() {
    let p = Policy::default_deny();
    for n in ["kexec_load", "open_by_handle_at", "init_module", "finit_module", "bpf", "userfaultfd", "perf_event_open"]
    {
        assert_eq!(p.decide(syscall_nr(n).unwrap()), (Verdict::Errno, 1), "{n}");
    }
    assert_eq!(p.decide(syscall_nr("keyctl").unwrap()), (Verdict::Errno, 38));
    for n in ["mount", "umount2", "unshare", "setns", "pivot_root", "name_to_handle_at", "reboot", "ptrace", "clone3"] {
        assert_eq!(p.decide(syscall_nr(n).unwrap()).0, Verdict::Allow, "{n}");
    }
    let s = Policy::strict();
    assert!(s.denies(syscall_nr("ptrace").unwrap()));
    assert!(!s.denies(syscall_nr("mount").unwrap()));
}

#[test]
fn schema_parses_and_refuses_with_reasons() {
    let p = Policy::parse(
        r#"{"default_action": "errno", "errno": 13, "syscalls": [{"names": ["read", "write", "execve"], "action": "allow"}, {"names": ["ptrace"], "action": "kill"}]}"#,
    )
    .unwrap();
    assert_eq!(p.decide(0), (Verdict::Allow, 13));
    assert_eq!(p.decide(syscall_nr("getpid").unwrap()), (Verdict::Errno, 13));
    assert_eq!(p.decide(syscall_nr("ptrace").unwrap()).0, Verdict::Kill);
    assert_eq!(compile(&p).unwrap().len(), 3);
    for (bad, why) in [
        (r#"{"default_action": "deny"}"#, "unknown variant"),
        (r#"{"default_action": "allow", "extra": 1}"#, "unknown field"),
        (r#"{"default_action": "allow", "syscalls": [{"names": ["nosuchcall"], "action": "errno"}]}"#, "not an x86_64"),
        (
            r#"{"default_action": "allow", "syscalls": [{"names": ["read"], "action": "errno"}, {"names": ["read"], "action": "kill"}]}"#,
            "already in",
        ),
        (r#"{"default_action": "allow", "errno": 0}"#, "errno must be"),
        (
            r#"{"default_action": "allow", "syscalls": [{"names": ["read"], "action": "kill", "errno": 3}]}"#,
            "only for action errno",
        ),
        (r#"{"default_action": "allow", "syscalls": [{"names": [], "action": "kill"}]}"#, "names is empty"),
        (r#"{"default_action": "kill", "syscalls": [{"names": ["read"], "action": "allow"}]}"#, "must allow execve"),
        ("{\n  \"default_action\": 3}", "line 2"),
    ] {
        let e = format!("{:#}", Policy::parse(bad).unwrap_err());
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn choice_parses() {
    assert_eq!(Choice::parse("none").unwrap(), Choice::None);
    assert_eq!(Choice::parse("default").unwrap(), Choice::Default);
    assert_eq!(Choice::parse("strict").unwrap(), Choice::Strict);
    assert_eq!(Choice::parse("/etc/lxcprov/web.json").unwrap(), Choice::File("/etc/lxcprov/web.json".into()));
    assert!(Choice::parse("deny").unwrap_err().contains("must be none, default, strict"));
}

/// Runs the compiled programs in a tiny classic-BPF interpreter (the subset seccompiler
/// emits) and combines them as the kernel does: the lowest action wins.
fn run(progs: &[BpfProgram], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = vec![];
    data.extend(nr.to_le_bytes());
    data.extend(arch.to_le_bytes());
    data.extend(0u64.to_le_bytes());
    for a in args {
        data.extend(a.to_le_bytes());
    }
    let mut best = u32::MAX;
    for p in progs {
        let (mut acc, mut pc) = (0u32, 0usize);
        let r = loop {
            let i = &p[pc];
            pc += 1;
            match i.code {
                0x20 => acc = u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                0x06 => break i.k,
                0x15 | 0x35 | 0x25 | 0x45 => {
                    let t = match i.code {
                        0x15 => acc == i.k,
                        0x35 => acc >= i.k,
                        0x25 => acc > i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += if t { i.jt as usize } else { i.jf as usize };
                }
                0x54 => acc &= i.k,
                0x05 => pc += i.k as usize,
                c => panic!("opcode {c:#x} not in the test interpreter"),
            }
        };
        // The kernel compares actions as signed (KILL_PROCESS, 0x80000000, is the lowest).
        if best == u32::MAX || ((r & 0xffff_0000) as i32) < ((best & 0xffff_0000) as i32) {
            best = r;
        }
    }
    best
}

const X86_64: u32 = 0xc000_003e;

#[test]
fn compiled_filters_do_what_the_policy_says() {
    let p = Policy::default_deny();
    let progs = compile(&p).unwrap();
    let nr = |n| syscall_nr(n).unwrap();
    assert_eq!(run(&progs, nr("getpid"), X86_64, [0; 6]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(&progs, nr("open_by_handle_at"), X86_64, [0; 6]), libc::SECCOMP_RET_ERRNO | 1);
    assert_eq!(run(&progs, nr("keyctl"), X86_64, [0; 6]), libc::SECCOMP_RET_ERRNO | 38);
    // x32 numbers and other architectures
    assert_eq!(run(&progs, 0x4000_0000 | nr("open_by_handle_at"), X86_64, [0; 6]), libc::SECCOMP_RET_ERRNO | 38);
    assert_eq!(run(&progs, 1, 0x4000_0003, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    // umount2(MNT_FORCE) refused, a plain umount2 allowed
    assert_eq!(run(&progs, nr("umount2"), X86_64, [0, 1, 0, 0, 0, 0]), libc::SECCOMP_RET_ERRNO | 1);
    assert_eq!(run(&progs, nr("umount2"), X86_64, [0, 2, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
    // an allow-list
    let a = allow_list(&[nr("getppid"), nr("socket")].into(), Verdict::Errno, 1);
    let progs = compile(&a).unwrap();
    assert_eq!(run(&progs, nr("socket"), X86_64, [0; 6]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(&progs, nr("execve"), X86_64, [0; 6]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(&progs, nr("mount"), X86_64, [0; 6]), libc::SECCOMP_RET_ERRNO | 1);
    // learn: baseline silent, the rest logged
    let progs = compile(&learn_policy()).unwrap();
    assert_eq!(run(&progs, nr("read"), X86_64, [0; 6]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(&progs, nr("mount"), X86_64, [0; 6]), libc::SECCOMP_RET_LOG);
}

#[test]
fn kmsg_records_parse() {
    let l = r#"5,1234,1510960659,-;audit: type=1326 audit(1796179947.173:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=22366 comm="t" exe="/tmp/seclog/t" sig=0 arch=c000003e syscall=110 compat=0 ip=0x7f16e1b104f7 code=0x7ffc0000"#;
    assert_eq!(parse_record(l), Some(crate::ops::seccomp_learn::Record { pid: 22366, syscall: 110, comm: "t".into() }));
    assert_eq!(parse_record(&l.replace("0x7ffc0000", "0x50001")), None, "an errno record is not a learn record");
    assert_eq!(parse_record(&l.replace("c000003e", "40000003")), None);
    assert_eq!(parse_record("6,1,2,-;eth0: link up"), None);
}

#[test]
fn probe_lines_are_judged_against_the_policy() {
    use crate::container::seccomp_probe::{judge, parse_probe};
    let out = "probe getppid 110 unfiltered=ok filtered=ok\nprobe keyctl 250 unfiltered=95 filtered=38\nprobe open_by_handle_at 304 unfiltered=14 filtered=1\nnoise\n";
    let lines: Vec<_> = out.lines().filter_map(parse_probe).collect();
    assert_eq!(lines.len(), 3);
    let (problems, ev, proven) = judge(&Policy::default_deny(), &lines);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(proven, 2);
    assert!(ev[1].contains("keyctl: unfiltered 95, filtered 38 (policy: fails with errno 38)"), "{ev:?}");
    // A filter that let open_by_handle_at through fails the probe.
    let bad = parse_probe("probe open_by_handle_at 304 unfiltered=14 filtered=14").unwrap();
    let (problems, _, proven) = judge(&Policy::default_deny(), &[bad]);
    assert_eq!(proven, 0);
    assert!(problems[0].contains("gave 14 under the filter, the policy says 1"), "{problems:?}");
    // kill: SIGSYS
    let p = Policy::parse(
        r#"{"default_action": "kill", "syscalls": [{"names": ["execve", "getppid"], "action": "allow"}]}"#,
    )
    .unwrap();
    let l = parse_probe("probe keyctl 250 unfiltered=95 filtered=signal:31").unwrap();
    assert_eq!(judge(&p, &[l]).2, 1);
}

#[test]
fn domains_say_what_verify_expects() {
    use crate::verify::SeccompExpect;
    let d = tempfile::tempdir().unwrap();
    let dir = crate::shim::dir_for(
        d.path().join("c1"),
        "default",
        &Policy::default_deny(),
        &crate::shim::ShimSource::Embedded,
    )
    .unwrap();
    std::fs::create_dir_all(&dir.dir).unwrap();
    std::fs::write(dir.dir.join(FILTER), &dir.filter).unwrap();
    std::fs::write(dir.dir.join(POLICY), &dir.policy_json).unwrap();
    let mut x = crate::facts::DomainXml::default();
    assert_eq!(crate::shim::expect(&x), SeccompExpect::Off);
    x.meta = Some(crate::facts::Meta { seccomp: Some("default".into()), ..Default::default() });
    x.init = Some("/sbin/init".into());
    assert!(matches!(crate::shim::expect(&x), SeccompExpect::Broken(w) if w.contains("not lxcprov's shim")));
    x.init = Some(GUEST_SHIM.into());
    assert!(matches!(crate::shim::expect(&x), SeccompExpect::Broken(w) if w.contains("mounts nothing at /.lxcprov")));
    x.seccomp_dir = Some(dir.dir.clone());
    match crate::shim::expect(&x) {
        SeccompExpect::Filters { programs, summary, .. } => {
            assert_eq!(programs, dir.programs);
            assert!(summary.starts_with("deny-list of"), "{summary}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_static_shims_are_accepted() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(!crate::shim::is_static_elf(&me).unwrap(), "the test binary is dynamically linked");
    assert!(crate::shim::is_static_elf(b"#!/bin/sh\n").is_err());
}

#[test]
fn the_embedded_shim_is_a_static_elf_and_the_default() {
    use crate::shim::{ShimSource, EMBEDDED_SHIM};
    assert!(crate::shim::is_static_elf(EMBEDDED_SHIM).unwrap(), "build.rs embeds a static shim");
    let d = tempfile::tempdir().unwrap();
    let s =
        crate::shim::dir_for(d.path().join("c1"), "default", &Policy::default_deny(), &ShimSource::Embedded).unwrap();
    crate::shim::prepare(&s).unwrap();
    assert_eq!(std::fs::read(d.path().join("c1").join(super::SHIM)).unwrap(), EMBEDDED_SHIM);
    assert!(s.to_string().contains("the shim built into lxcprov"), "{s}");
    // A named file that is not there says so, and how to do without it.
    let s = crate::shim::dir_for(
        d.path().join("c2"),
        "default",
        &Policy::default_deny(),
        &ShimSource::File(d.path().join("nope")),
    )
    .unwrap();
    let e = format!("{:#}", crate::shim::prepare(&s).unwrap_err());
    assert!(e.contains("--init-shim") && e.contains("built into lxcprov"), "{e}");
}
