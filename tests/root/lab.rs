//! Root tier, teaching labs: a busybox lab up, verified, a gap filled and down leaving
//! nothing; a lab with SSH access (students reach their own container, with their own key,
//! directly or through a jump host, and nothing else); a lab's report rendered by headless
//! Chromium.

use super::*;

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
    assert_eq!(c.iter().filter(|c| c.id == "pidns" && c.status == Status::Pass).count(), 3, "{c:?}");
    assert_eq!(status_of(&c, "lab.members"), Status::Pass);
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

/// Kills the throwaway jump sshd of the SSH lab test.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ssh -F cfg HOST CMD` with a key, non-interactive, known hosts thrown away.
fn ssh_as(cfg_dir: &Path, generated: &str, key: &Path, host: &str, cmd: &str) -> Output {
    // A leading `Host *` block wins over the generated per-host values (ssh takes the first).
    let cfg = cfg_dir.join(format!("ssh-{}.config", key.file_name().unwrap().to_string_lossy()));
    let head = format!(
        "Host *\n    IdentityFile {}\n    IdentitiesOnly yes\n    BatchMode yes\n    ConnectTimeout 5\n    UserKnownHostsFile /dev/null\n    StrictHostKeyChecking no\n    LogLevel ERROR\n\n",
        key.display()
    );
    std::fs::write(&cfg, format!("{head}{generated}")).unwrap();
    Command::new("ssh").arg("-F").arg(&cfg).args([host, cmd]).stdin(Stdio::null()).output().unwrap()
}

/// [`ssh_as`] until it succeeds or `within` has passed (sshd needs a moment after a boot);
/// the last attempt's output.
fn ssh_until(cfg_dir: &Path, generated: &str, key: &Path, host: &str, cmd: &str, within: Duration) -> Output {
    let t = Instant::now();
    loop {
        let o = ssh_as(cfg_dir, generated, key, host, cmd);
        if o.status.success() || t.elapsed() > within {
            return o;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn lab_students_reach_their_own_container_over_ssh_and_nothing_else() {
    preflight();
    for tool in ["ssh", "ssh-keygen", "/usr/sbin/sshd"] {
        assert!(
            Path::new(tool).is_file() || Command::new("which").arg(tool).output().unwrap().status.success(),
            "{tool} is missing: run scripts/setup-host.sh"
        );
    }
    let lab = "lxcprov-it-ssh";
    let names = ["lxcprov-it-ssh-s01", "lxcprov-it-ssh-s02"];
    let net = "lxcprov-lab-lxcprov-it-ssh";
    clean(&names, &[net]);
    let _c = Cleanup(names.to_vec(), vec![net]);
    let d = workdir("ssh");
    let keys = d.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    for s in ["s01", "s02"] {
        let k = d.path().join(s);
        let o =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", s, "-f"]).arg(&k).output().unwrap();
        assert!(o.status.success());
        std::fs::rename(d.path().join(format!("{s}.pub")), keys.join(format!("{s}.pub"))).unwrap();
    }
    let prof = write_profile(d.path(), "it-ssh", SYSTEMD_PROFILE);
    let up = |extra: &[&str]| {
        let mut a = vec!["lab", "up", lab, "--count", "2", "--prefix", "s", "--profile", "it-ssh"];
        a.extend_from_slice(&["--profile-file", prof.to_str().unwrap()]);
        a.extend_from_slice(extra);
        lx(d.path(), &a)
    };
    // A student without a key: refused before anything is created.
    std::fs::rename(keys.join("s02.pub"), d.path().join("s02.pub.away")).unwrap();
    let o = up(&["--ssh-keys", keys.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no key for 1 student(s) (s02.pub)"), "{}", stderr(&o));
    assert!(!domain_exists(names[0]) && !network_exists(net));
    std::fs::rename(d.path().join("s02.pub.away"), keys.join("s02.pub")).unwrap();

    let o = up(&["--ssh-keys", keys.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = lx(d.path(), &["--json", "lab", "access", lab]);
    assert!(o.status.success());
    let rows: Vec<StudentAccess> = records(&o.stdout)
        .into_iter()
        .map(|r| match r {
            Record::Student(Student::Access(a)) => a,
            other => panic!("not a lab access row: {other:?}"),
        })
        .collect();
    assert_eq!(rows.len(), 2);
    let ip = |i: usize| rows[i].address.clone();
    // The network: an address on the host, fixed leases, isolated ports.
    let x = stdout(&virsh(&["net-dumpxml", net]));
    assert!(x.contains("<port isolated='yes'/>") && x.contains(&format!("ip='{}'", ip(1))), "{x}");
    let generated = stdout(&lx(d.path(), &["lab", "access", lab, "--ssh-config"]));
    assert!(generated.contains(&format!("Host s01 {}\n    HostName {}\n", names[0], ip(0))), "{generated}");

    // Student 1 logs in with its own key (sshd needs a moment after boot).
    let (k1, k2) = (d.path().join("s01"), d.path().join("s02"));
    let o = ssh_until(d.path(), &generated, &k1, "s01", "id -u; hostname", Duration::from_secs(60));
    assert!(o.status.success(), "ssh s01: {}", stderr(&o));
    assert_eq!(stdout(&o), format!("0\n{}\n", names[0]));
    // Another student's key is refused by student 1's sshd.
    let o = ssh_as(d.path(), &generated, &k2, "s01", "true");
    assert_eq!(o.status.code(), Some(255));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Each container made its own host keys (none copied from the base).
    let hk = |n: &str| stdout(&lx(d.path(), &["exec", n, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]));
    let (h1, h2) = (hk(names[0]), hk(names[1]));
    assert!(h1.starts_with("ssh-ed25519 ") && h1 != h2, "{h1} / {h2}");
    // Students do not reach each other; the same probe reaches the student's own sshd.
    let probe = |from: &str, to: &str| {
        lx(d.path(), &["exec", from, "--", "timeout", "3", "bash", "-c", &format!("echo > /dev/tcp/{to}/22")])
            .status
            .success()
    };
    assert!(probe(names[0], &ip(0)), "the probe itself must work");
    assert!(!probe(names[0], &ip(1)), "student 1 reached student 2");
    assert!(!probe(names[1], &ip(0)), "student 2 reached student 1");

    // Through a jump account whose keys come from `lab access --jump-keys`: each key may
    // only tunnel to its own student.
    let jump_keys = d.path().join("jump_keys");
    std::fs::write(&jump_keys, stdout(&lx(d.path(), &["lab", "access", lab, "--jump-keys"]))).unwrap();
    let hostkey = d.path().join("jump_host_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&hostkey)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = "22922";
    let sshd = Command::new("/usr/sbin/sshd")
        .args([
            "-D",
            "-e",
            "-p",
            port,
            "-o",
            "ListenAddress=127.0.0.1",
            "-o",
            "StrictModes=no",
            "-o",
            "AllowUsers=root",
        ])
        .args(["-o", "PermitRootLogin=prohibit-password", "-o", "PasswordAuthentication=no", "-o", "UsePAM=no"])
        .arg("-o")
        .arg(format!("AuthorizedKeysFile={}", jump_keys.display()))
        .arg("-o")
        .arg(format!("PidFile={}", d.path().join("sshd.pid").display()))
        .arg("-h")
        .arg(&hostkey)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _sshd = KillOnDrop(sshd);
    let via =
        stdout(&lx(d.path(), &["lab", "access", lab, "--ssh-config", "--jump", &format!("root@127.0.0.1:{port}")]));
    assert!(via.contains(&format!("ProxyJump root@127.0.0.1:{port}")), "{via}");
    let o = ssh_until(d.path(), &via, &k1, "s01", "hostname", Duration::from_secs(20));
    assert!(o.status.success(), "ssh -J s01: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), names[0]);
    assert!(ssh_as(d.path(), &via, &k2, "s02", "true").status.success(), "student 2 through the jump host");
    // Student 2's key cannot even open a tunnel to student 1 at the jump host.
    let o = ssh_as(d.path(), &via, &k2, "s01", "true");
    assert_eq!(o.status.code(), Some(255));
    // A re-run converges: nothing new, the same addresses.
    let o = up(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A rebuilt student keeps its address, sshd and key; only its host keys are new.
    let o = lx(d.path(), &["--profile-file", prof.to_str().unwrap(), "rebuild", names[0]]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o =
        ssh_until(d.path(), &generated, &k1, "s01", "cat /etc/ssh/ssh_host_ed25519_key.pub", Duration::from_secs(60));
    assert!(o.status.success(), "ssh s01 after rebuild: {}", stderr(&o));
    assert!(stdout(&o).starts_with("ssh-ed25519 ") && stdout(&o) != h1, "new host keys after a rebuild");
    let o = lx(d.path(), &["lab", "down", lab, "--purge", "--yes"]);
    assert!(o.status.success());
    assert!(!network_exists(net));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}

/// Fair shares: a lab's ceilings on its own cgroup partition, above every student; each
/// student's processes bounded (`pids_max`) at every start, lxcprov's and `virsh start`'s
/// (the hook); a fork bomb stops inside its own container; `lab down` removes the partition.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn a_labs_ceilings_sit_on_its_own_partition_and_a_fork_bomb_stops_in_its_container() {
    preflight();
    let lab = "lxcprov-it-fair";
    let names = ["lxcprov-it-fair-s01", "lxcprov-it-fair-s02"];
    let net = "lxcprov-lab-lxcprov-it-fair";
    clean(&names, &[net]);
    let _c = Cleanup(names.to_vec(), vec![net]);
    let d = workdir("fair");
    let _hook = super::overlay::HookFor::install(d.path());
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-fair", &format!("{BB_PROFILE}pids_max: 64\n"));
    let o = lx(
        d.path(),
        &[
            "lab",
            "up",
            lab,
            "--count",
            "2",
            "--prefix",
            "s",
            "--rootfs-from",
            bb.to_str().unwrap(),
            "--profile",
            "it-fair",
            "--profile-file",
            prof.to_str().unwrap(),
            "--total-memory",
            "512M",
            "--total-pids",
            "300",
            "--total-cpus",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "imported trees fail `trust` only: {}", stderr(&o));
    let part = "/machine/lxcprov-lxcprov-it-fair.partition";
    let cg =
        |c: &str, f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{c}{part}/{f}")).unwrap().trim().to_string();
    assert_eq!(cg("memory", "memory.limit_in_bytes"), (512u64 << 20).to_string());
    assert_eq!(cg("pids", "pids.max"), "300");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "100000");
    let init = |n: &str| {
        let x = std::fs::read_to_string(format!("/run/libvirt/lxc/{n}.xml")).unwrap();
        let i = x.find("<init pid='").unwrap() + 11;
        x[i..].split('\'').next().unwrap().parse::<u32>().unwrap()
    };
    let line = |pid: u32, ctl: &str| {
        let t = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        t.lines()
            .find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == ctl)))
            .unwrap()
            .splitn(3, ':')
            .nth(2)
            .unwrap()
            .to_string()
    };
    for n in names {
        let pid = init(n);
        for ctl in ["memory", "pids", "cpu"] {
            assert!(line(pid, ctl).starts_with(&format!("{part}/lxc-")), "{n} {ctl}: {}", line(pid, ctl));
        }
        let p = line(pid, "pids");
        assert_eq!(std::fs::read_to_string(format!("/sys/fs/cgroup/pids{p}/pids.max")).unwrap().trim(), "64");
    }
    // A fork bomb (200 sleepers at once) from inside student 1 stops at its own limit: the
    // shell is refused a fork (busybox sh then gives up) and nothing beyond 64 runs.
    let o = lx(
        d.path(),
        &[
            "exec",
            names[0],
            "--",
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo all-started",
        ],
    );
    assert!(!stdout(&o).contains("all-started"), "200 processes started in a container bounded to 64");
    let p1 = line(init(names[0]), "pids");
    let current: u32 =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids{p1}/pids.current")).unwrap().trim().parse().unwrap();
    let events = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{p1}/pids.events")).unwrap();
    assert!(current <= 64 && events.contains("max ") && !events.contains("max 0"), "{current} {events}");
    // Student 2 still starts processes.
    let o = lx(d.path(), &["exec", names[1], "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // `virsh start` (the hook, at `started`) bounds a restarted student too.
    assert!(virsh(&["destroy", names[0]]).status.success());
    assert!(virsh(&["start", names[0]]).status.success());
    let t = Instant::now();
    let bounded = loop {
        let pid = init(names[0]);
        let p = line(pid, "pids");
        if p.starts_with(&format!("{part}/lxc-")) || t.elapsed() > Duration::from_secs(10) {
            break p;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        bounded.starts_with(&format!("{part}/lxc-{}", init(names[0]) - 1))
            || bounded.starts_with(&format!("{part}/lxc-")),
        "{bounded}"
    );
    assert_eq!(std::fs::read_to_string(format!("/sys/fs/cgroup/pids{bounded}/pids.max")).unwrap().trim(), "64");
    // A host reboot takes the partition away: the hook makes it again, with its ceilings,
    // when a student starts (by `virsh start`, as an init system would).
    for n in names {
        assert!(virsh(&["destroy", n]).status.success());
    }
    let roots: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| format!("{}{part}", e.path().display()))
        .filter(|p| Path::new(p).is_dir())
        .collect();
    for r in &roots {
        for e in std::fs::read_dir(r).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                std::fs::remove_dir(e.path()).unwrap();
            }
        }
        std::fs::remove_dir(r).unwrap();
    }
    assert!(virsh(&["start", names[1]]).status.success(), "a student did not start after the partition went");
    assert_eq!(cg("memory", "memory.limit_in_bytes"), (512u64 << 20).to_string());
    assert_eq!(cg("pids", "pids.max"), "300");
    let o = lx(d.path(), &["lab", "down", lab, "--purge", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for c in ["memory", "pids", "cpu"] {
        assert!(!Path::new(&format!("/sys/fs/cgroup/{c}{part}")).exists(), "the lab's partition stayed in {c}");
    }
}

/// Chromium, headless, on `page` (as root it needs --no-sandbox), under `timeout` so that it
/// never hangs the suite; its profile goes to `dir`, not root's home.
fn chromium(dir: &Path, page: &Path, what: &str) -> Output {
    let o = Command::new("timeout")
        .args(["--kill-after=10", "60", "chromium", "--headless", "--no-sandbox", "--disable-gpu"])
        .args(["--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", "--window-size=1280,900"])
        .arg(format!("--user-data-dir={}", dir.join("chromium-profile").display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "chromium {what}: exit {:?}\n{}", o.status.code(), stderr(&o));
    o
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn lab_report_is_a_page_chromium_renders_with_every_student() {
    preflight();
    assert!(
        Command::new("which").arg("chromium").output().unwrap().status.success(),
        "chromium is missing: run scripts/setup-host.sh"
    );
    let lab = "lxcprov-it-rep";
    let names = ["lxcprov-it-rep-s01", "lxcprov-it-rep-s02", "lxcprov-it-rep-s03"];
    let net = "lxcprov-lab-lxcprov-it-rep";
    clean(&names, &[net]);
    let _c = Cleanup(names.to_vec(), vec![net]);
    let d = workdir("rep");
    let bb = busybox(d.path());
    let prof = write_profile(d.path(), "it-rep", BB_PROFILE);
    let o = lx(
        d.path(),
        &["lab", "up", lab, "--count", "3", "--prefix", "s", "--rootfs-from", bb.to_str().unwrap()]
            .into_iter()
            .chain(["--profile", "it-rep", "--profile-file", prof.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    // Imported trees fail `trust`: every student is up, and the run says checks failed.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    let page = d.path().join("report.html");
    let t = Instant::now();
    let o = lx(d.path(), &["lab", "report", lab, "--html", page.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    eprintln!("lab report of 3 students: {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(stdout(&o), format!("{}\n", page.display()), "the path written, only");
    // Again with --json: the regular file is replaced, one record says so.
    let o = lx(d.path(), &["--json", "lab", "report", lab, "--html", page.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = records(&o.stdout);
    assert_eq!(r.len(), 1, "{}", stdout(&o));
    let rep = r[0].as_report().expect("a report record");
    assert_eq!((rep.lab.as_str(), rep.path.as_path(), rep.students), (lab, page.as_path(), 3));
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o644);
    let html = std::fs::read_to_string(&page).unwrap();
    for n in names {
        assert!(html.contains(n), "{n} not in the page");
    }
    assert_eq!(html.matches("class=\"state ok\"").count(), 3, "three running students");
    // Memory in use came from libvirt, against the profile's 64 MiB.
    assert!(html.matches(" / 64.0 MiB").count() >= 3 && !html.contains("- / 64.0 MiB"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));

    // Headless Chromium renders it: a screenshot, and the DOM it built.
    let shot = d.path().join("report.png");
    let t = Instant::now();
    chromium(d.path(), &page, &format!("--screenshot={}", shot.display()));
    let shot_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let dom = stdout(&chromium(d.path(), &page, "--dump-dom"));
    eprintln!("chromium: screenshot {shot_secs:.1} s, dump-dom {:.1} s", t.elapsed().as_secs_f64());
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10 * 1024, "a screenshot of {} bytes is too small to show the page", png.len());
    for n in names {
        assert!(dom.contains(n), "{n} not in Chromium's DOM:\n{dom}");
    }
    assert!(dom.contains("<svg") && dom.matches("<tr>").count() >= 4, "the table and the chart:\n{dom}");

    let o = lx(d.path(), &["lab", "down", lab, "--purge", "--yes"]);
    assert!(o.status.success());
    for n in names {
        assert!(!domain_exists(n), "{n} left behind");
    }
    assert!(!network_exists(net));
}
