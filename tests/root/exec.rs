//! Root tier, `exec` and `shell` in a user-namespaced busybox container: the container's
//! namespaces, its mapped root, the init's bounding set, cgroups and seccomp filter; exit
//! statuses; `--json`'s captured output. (tests/root/enter.rs attacks them from inside.)

use super::*;

// The root tier's user-namespaced containers share the `web`/`minimal` map (200000): on this
// host (cgroup v1, no systemd) containers with different maps cannot run side by side, and
// the quick start leaves web1 running.
const EXEC_PROFILE: &str = "description: exec test\ndistro: debian12\nmemory_mib: 64\nnetwork: {mode: isolated, name: lxcprov-it-execnet}\nsecurity:\n  model: none\n  label: none\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n";

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn exec_runs_in_the_containers_namespaces_as_its_mapped_root_with_its_caps_and_cgroups() {
    preflight();
    let names = ["lxcprov-it-exec"];
    clean(&names, &["lxcprov-it-execnet"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-it-execnet"]);
    let d = workdir("exec");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-exec", EXEC_PROFILE);
    let o = lx(
        d.path(),
        &[
            "create",
            "lxcprov-it-exec",
            "--profile",
            "it-exec",
            "--profile-file",
            prof.to_str().unwrap(),
            "--rootfs-from",
            bb.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "created (trust fails for an import): {}", stdout(&o));
    let o = lx(d.path(), &["--json", "list"]);
    let pid = list_row(&o, "lxcprov-it-exec").init_pid.expect("init pid");
    let init = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap();
    let ex = |args: &[&str]| {
        let mut a = vec!["exec", "lxcprov-it-exec", "--"];
        a.extend_from_slice(args);
        lx(d.path(), &a)
    };

    let o = ex(&["/bin/hostname"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "lxcprov-it-exec");
    assert_eq!(ex(&["/bin/sh", "-c", "exit 7"]).status.code(), Some(7), "the command's status is lxcprov's");
    assert_eq!(ex(&["/no/such/cmd"]).status.code(), Some(127));
    // The command runs under the container's seccomp filter, as many programs as the init's.
    let field =
        |status: &str, k: &str| status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string());
    let o = ex(&["/bin/cat", "/proc/self/status"]);
    assert_eq!(field(&stdout(&o), "Seccomp:").as_deref(), Some("2"), "{}", stdout(&o));
    assert_eq!(field(&stdout(&o), "Seccomp_filters:"), field(&init("status"), "Seccomp_filters:"));

    // Every namespace is the init's: pid (and so on) by inode.
    let o = ex(&["/bin/sh", "-c", "for n in pid mnt net uts ipc user; do readlink /proc/self/ns/$n; done"]);
    let inside: Vec<String> = stdout(&o).lines().map(String::from).collect();
    let outside: Vec<String> = ["pid", "mnt", "net", "uts", "ipc", "user"]
        .iter()
        .map(|n| std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inside, outside);
    let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap().to_string_lossy().into_owned();
    assert_ne!(inside[0], host_pidns, "in the container's pid namespace, not the host's");
    // Its PID 1 is the container's init, and the command sees only the container's processes.
    let o = ex(&["/bin/sh", "-c", "cat /proc/1/comm; grep NSpid /proc/self/status"]);
    let s = stdout(&o);
    assert_eq!(s.lines().next(), Some(init("comm").trim()), "{s}");
    assert_eq!(s.lines().nth(1).unwrap().split_whitespace().count(), 2, "one NSpid: the container's view: {s}");

    // The mapped root, the init's bounding set and cgroups.
    let o =
        ex(&["/bin/sh", "-c", "id -u; cat /proc/self/uid_map; grep CapBnd /proc/self/status; cat /proc/self/cgroup"]);
    let s = stdout(&o);
    let mut lines = s.lines();
    assert_eq!(lines.next(), Some("0"), "root inside: {s}");
    assert_eq!(lines.next().unwrap().split_whitespace().collect::<Vec<_>>(), ["0", "200000", "65536"]);
    let capbnd = init("status").lines().find(|l| l.starts_with("CapBnd")).unwrap().to_string();
    assert_eq!(lines.next(), Some(capbnd.as_str()), "the init's bounding set (sys_admin and net_raw dropped)");
    assert_eq!(lines.collect::<Vec<_>>().join("\n"), init("cgroup").trim_end(), "the init's cgroups");

    // --json: one exec record with the output captured; the status still propagates.
    let o =
        lx(d.path(), &["--json", "exec", "lxcprov-it-exec", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    let recs = records(&o.stdout);
    let [Record::Exec(e)] = recs.as_slice() else { panic!("not one exec record: {recs:?}") };
    assert_eq!((e.stdout.as_str(), e.stderr.as_str(), e.status, e.truncated), ("out\n", "err\n", 3, false), "{e:?}");

    // shell: root's login shell from the guest's /etc/passwd, on a pty of its own (script(1)
    // gives lxcprov a terminal); the shell's exit status is lxcprov's.
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} shell lxcprov-it-exec", bin().display()), "/dev/null"])
        .env("LXCPROV_POOL_DIR", d.path().join("pool"))
        .env("LXCPROV_STATE_DIR", d.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"echo in-$(hostname)-$(id -u)\nexit 5\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("in-lxcprov-it-exec-0"), "{}", stdout(&o));

    // A stopped container is a clear error.
    assert!(lx(d.path(), &["stop", "lxcprov-it-exec", "--timeout", "5"]).status.success());
    let o = ex(&["/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    assert!(lx(d.path(), &["destroy", "lxcprov-it-exec", "--purge", "--yes"]).status.success());
}
