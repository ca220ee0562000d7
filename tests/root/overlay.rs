//! Root tier, overlay storage: a shared base and a layer per container, materialised by the
//! libvirt hook at every start (`virsh start` included), reset, copy mode beside it, and
//! the hook leaving foreign domains alone. Domains use the prefix `lxcprov-ov-`.

use super::*;

pub(crate) const OV_PROFILE: &str = "description: busybox overlay test\ndistro: debian12\nmemory_mib: 64\nnetwork: {mode: isolated, name: lxcprov-ov-net}\nsecurity:\n  model: none\n  label: none\n  seccomp: none\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n";

const HOOK: &str = "/etc/libvirt/hooks/lxc";

/// Points libvirt's hook at the lxcprov under test while it lives; puts the old text back.
pub(crate) struct HookFor(Option<String>);
impl HookFor {
    pub(crate) fn install(dir: &Path) -> HookFor {
        let old = std::fs::read_to_string(HOOK).ok();
        assert!(
            old.is_some(),
            "{HOOK} is missing: libvirtd only calls hooks that existed when it started; run scripts/setup-host.sh"
        );
        let o = run(dir, &["hook", "install", "--binary", bin().to_str().unwrap()]);
        assert!(o.status.success(), "hook install: {}", stderr(&o));
        HookFor(old)
    }
}
impl Drop for HookFor {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // In place: the same file libvirtd found at its start.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(HOOK)
                .and_then(|mut f| std::io::Write::write_all(&mut f, t.as_bytes()));
        }
    }
}

/// Dropped before the work directory (declare it after): a failed test's domains go and its
/// overlays are unmounted, so removing the directory never reaches through a mount into a
/// layer or a live container's lower directory.
pub(crate) struct Unmount(pub(crate) PathBuf, pub(crate) Vec<&'static str>);
impl Drop for Unmount {
    fn drop(&mut self) {
        clean(&self.1, &[]);
        let t = self.0.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> =
            info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(t.as_str())).collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("--lazy").arg(p).status();
        }
    }
}

pub(crate) fn lo(dir: &Path, args: &[&str]) -> Output {
    let o = lxcprov(dir).env("LIBVIRT_DEFAULT_URI", URI).env("LXCPROV_STORAGE", "overlay").args(args).output().unwrap();
    eprintln!("$ lxcprov {}\n  exit {:?}\n{}", args.join(" "), o.status.code(), stderr(&o));
    o
}

/// A busybox tree as the base-rootfs cache entry `create` will use for `profile`.
fn seed_cache(dir: &Path, profile: &Path) {
    let o = lo(
        dir,
        &[
            "--json",
            "create",
            "lxcprov-ov-x",
            "--profile",
            "it-ov",
            "--profile-file",
            profile.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let entry = records(&o.stdout)
        .iter()
        .filter_map(Record::as_step)
        .flat_map(|s| s.actions.clone())
        .find(|a| a["action"] == "store_base")
        .and_then(|a| a["entry"].as_str().map(PathBuf::from))
        .expect("the plan stores a base");
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    let s = Command::new("cp").arg("-a").arg(busybox(dir)).arg(&entry).status().unwrap();
    assert!(s.success());
    std::fs::write(entry.join(".lxcprov-base.json"), "{}").unwrap();
}

/// The set-up every overlay test starts with: the hook pointed at this lxcprov (while the
/// guard lives), the busybox overlay profile, its base in the cache, a root password file.
fn seeded(dir: &Path) -> (HookFor, PathBuf, PathBuf) {
    seeded_with(dir, OV_PROFILE)
}

/// [`seeded`] with another profile `it-ov` (the base cached is the one it asks for).
pub(crate) fn seeded_with(dir: &Path, yaml: &str) -> (HookFor, PathBuf, PathBuf) {
    let hook = HookFor::install(dir);
    let prof = write_profile(dir, "it-ov", yaml);
    seed_cache(dir, &prof);
    let pw = dir.join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    (hook, prof, pw)
}

fn init_pid(name: &str) -> u32 {
    let x = std::fs::read_to_string(format!("/run/libvirt/lxc/{name}.xml")).unwrap();
    let i = x.find("<init pid='").unwrap() + 11;
    x[i..].split('\'').next().unwrap().parse().unwrap()
}

pub(crate) fn in_container(name: &str, script: &str) -> String {
    let o =
        Command::new("nsenter").args(["-t", &init_pid(name).to_string(), "-a", "sh", "-c", script]).output().unwrap();
    assert!(o.status.success(), "{script}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `verify NAME --json`, again until it passes or 15 s have passed (a start without lxcprov
/// does not wait for the init): the last run.
fn verified_within(dir: &Path, name: &str) -> Output {
    let t = Instant::now();
    loop {
        let o = lo(dir, &["--json", "verify", name]);
        if o.status.code() == Some(0) || t.elapsed() > Duration::from_secs(15) {
            return o;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mounted(path: &Path) -> bool {
    let t = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(t.as_str()))
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn overlay_containers_come_back_after_virsh_destroy_and_start_keep_their_files_apart_and_reset() {
    preflight();
    let names = ["lxcprov-ov-a", "lxcprov-ov-b", "lxcprov-ov-c"];
    clean(&names, &["lxcprov-ov-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ov");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    let (_hook, prof, pw) = seeded(d.path());
    let pf = prof.to_str().unwrap();
    // doctor: the hook runs this lxcprov, and overlay is what new containers get.
    let o = lo(d.path(), &["--json", "doctor"]);
    let items: Vec<Item> = records(&o.stdout).iter().filter_map(Record::as_item).cloned().collect();
    let item = |id: &str| items.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no {id}: {items:?}")).clone();
    assert_eq!(item("lxc_hook").level, ItemLevel::Ok, "{:?}", item("lxc_hook"));
    assert_eq!(item("storage").level, ItemLevel::Ok, "{:?}", item("storage"));
    // The plan says overlay, and why.
    let o = lo(d.path(), &["create", "lxcprov-ov-a", "--profile", "it-ov", "--profile-file", pf, "--dry-run"]);
    assert!(stdout(&o).contains("mount -t overlay overlay -o lowerdir="), "{}", stdout(&o));
    assert!(stdout(&o).contains("# storage: overlay"), "{}", stdout(&o));
    for n in ["lxcprov-ov-a", "lxcprov-ov-b"] {
        let o = lo(
            d.path(),
            &[
                "--json",
                "create",
                n,
                "--profile",
                "it-ov",
                "--profile-file",
                pf,
                "--root-password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        for id in ["pidns", "userns", "trust"] {
            assert_eq!(status_of(&checks(&o), id), Status::Pass);
        }
    }
    let pool = d.path().join("pool");
    let (a, b) = (pool.join("lxcprov-ov-a"), pool.join("lxcprov-ov-b"));
    assert!(mounted(&a) && mounted(&b));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("state/containers/lxcprov-ov-a.json")).unwrap())
            .unwrap();
    assert_eq!(rec["storage"], "overlay");
    let base_id = rec["base"].as_str().unwrap().to_string();
    let base = pool.join(".lxcprov/bases").join(&base_id);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(base.join("bin/busybox")).unwrap().uid(), 200000, "the shared base is shifted once");
    assert_eq!(std::fs::metadata(pool.join(".lxcprov")).unwrap().mode() & 0o777, 0o700);
    // 1. A file one container writes is in its layer only.
    in_container("lxcprov-ov-a", "echo mine > /root/own.txt && rm /bin/vi");
    assert_eq!(std::fs::read_to_string(a.join("root/own.txt")).unwrap(), "mine\n");
    assert!(!b.join("root/own.txt").exists(), "visible in another container");
    assert!(!base.join("root/own.txt").exists(), "written into the base");
    assert!(base.join("bin/vi").exists() && b.join("bin/vi").exists(), "a deletion reached the base");
    assert!(in_container("lxcprov-ov-b", "ls /root").trim().is_empty());
    let hash = std::fs::read_to_string(a.join("etc/shadow")).unwrap();
    assert!(hash.starts_with("root:$6$"));
    assert!(!std::fs::read_to_string(base.join("etc/shadow")).unwrap().contains("$6$"), "no password in the base");
    // 2. virsh destroy + virsh start, without lxcprov: the hook unmounts and mounts it again.
    assert!(virsh(&["destroy", "lxcprov-ov-a"]).status.success());
    assert!(!mounted(&a), "release unmounts it");
    assert!(!a.join("root").exists());
    let o = virsh(&["start", "lxcprov-ov-a"]);
    assert!(o.status.success(), "virsh start: {}", String::from_utf8_lossy(&o.stderr));
    assert!(mounted(&a), "prepare mounts it");
    assert_eq!(std::fs::read_to_string(a.join("root/own.txt")).unwrap(), "mine\n");
    let o = verified_within(d.path(), "lxcprov-ov-a");
    assert_eq!(o.status.code(), Some(0), "verify after virsh start: {}", stdout(&o));
    // 3. reset: back to the base, same password and SSH host keys, the others untouched.
    std::fs::write(b.join("root/b.txt"), "b").unwrap();
    in_container(
        "lxcprov-ov-a",
        "mkdir -p /etc/ssh && echo hostkey > /etc/ssh/ssh_host_ed25519_key && chmod 600 /etc/ssh/ssh_host_ed25519_key",
    );
    let o = lo(d.path(), &["--json", "reset", "lxcprov-ov-a", "--yes", "--profile-file", pf]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!a.join("root/own.txt").exists(), "reset keeps the container's files");
    assert!(a.join("bin/vi").exists());
    assert_eq!(std::fs::read_to_string(a.join("etc/shadow")).unwrap(), hash, "the password changed");
    assert_eq!(std::fs::read_to_string(a.join("etc/hostname")).unwrap(), "lxcprov-ov-a\n");
    let key = a.join("etc/ssh/ssh_host_ed25519_key");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "hostkey\n", "the host key changed");
    assert_eq!(std::fs::metadata(&key).unwrap().uid(), 200000);
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    assert!(b.join("root/b.txt").exists());
    // rebuild of an overlay container: a fresh layer on the profile's base, verified.
    let o = lo(d.path(), &["--json", "--profile-file", pf, "rebuild", "lxcprov-ov-b"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!b.join("root/b.txt").exists(), "rebuild kept the old layer");
    assert!(mounted(&b));
    // 4. Copy mode beside it, from the same cache: a real tree, no mount.
    let o = lxcprov(d.path())
        .env("LIBVIRT_DEFAULT_URI", URI)
        .args([
            "--storage",
            "copy",
            "--json",
            "create",
            "lxcprov-ov-c",
            "--profile",
            "it-ov",
            "--profile-file",
            pf,
            "--root-password-file",
            pw.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let c = pool.join("lxcprov-ov-c");
    assert!(!mounted(&c) && c.join("bin/busybox").exists());
    assert!(!pool.join(".lxcprov/layers/lxcprov-ov-c").exists());
    let o = lo(d.path(), &["reset", "lxcprov-ov-c", "--yes", "--profile-file", pf]);
    assert_eq!(o.status.code(), Some(2), "copy containers have no layer to drop");
    assert!(stderr(&o).contains("rebuild"), "{}", stderr(&o));
    // 5. destroy --purge: the layers go, the base with the last user, and nothing is left.
    for n in names {
        assert!(lo(d.path(), &["destroy", n, "--purge", "--yes"]).status.success());
        if n == "lxcprov-ov-a" {
            assert!(base.exists(), "the base went while lxcprov-ov-b uses it");
        }
    }
    assert!(!mounted(&a) && !mounted(&b));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn the_hook_leaves_domains_without_lxcprov_metadata_alone() {
    preflight();
    let d = workdir("ovhook");
    let _hook = HookFor::install(d.path());
    let hook = |args: &[&str], stdin: &[u8]| {
        let mut c = Command::new(HOOK)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = std::io::Write::write_all(c.stdin.as_mut().unwrap(), stdin);
        drop(c.stdin.take());
        c.wait_with_output().unwrap()
    };
    let rootfs = d.path().join("pool/lxcprov-ov-foreign");
    std::fs::create_dir_all(&rootfs).unwrap();
    let xml = format!(
        "<domain type='lxc'><name>lxcprov-ov-foreign</name><memory unit='MiB'>32</memory><os><type>exe</type><init>/bin/sh</init></os><features><privnet/></features><devices><filesystem type='mount'><source dir='{}'/><target dir='/'/></filesystem><console type='pty'/></devices></domain>",
        rootfs.display()
    );
    for (args, input) in [
        (vec!["lxcprov-ov-foreign", "prepare", "begin", "-"], xml.as_bytes().to_vec()),
        (vec!["lxcprov-ov-foreign", "release", "end", "-"], xml.as_bytes().to_vec()),
        (vec!["../../etc", "prepare", "begin", "-"], b"<<<garbage".to_vec()),
        (vec!["x", "prepare", "begin", "-"], vec![b'<'; 3 << 20]),
    ] {
        let o = hook(&args, &input);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{args:?}: the hook spoke");
    }
    assert!(!mounted(&rootfs));
    assert_eq!(std::fs::read_dir(&rootfs).unwrap().count(), 0, "the foreign tree was touched");
    // An lxcprov domain whose name is a path is refused.
    let ours = xml.replace("<domain type='lxc'>", &format!("<domain type='lxc'><metadata><lxcprov:container xmlns:lxcprov='{}' profile='p' distro='debian12' release='12' version='0' security='none'/></metadata>", "https://github.com/lxcprov/lxcprov/xmlns/1"));
    let o = hook(&["../lxcprov-ov-foreign", "prepare", "begin", "-"], ours.as_bytes());
    assert_ne!(o.status.code(), Some(0));
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn lab_reset_puts_one_student_or_all_back_on_the_shared_base() {
    preflight();
    let names = ["lxcprov-ov-lab-s01", "lxcprov-ov-lab-s02"];
    clean(&names, &["lxcprov-ov-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ovlab");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    let (_hook, prof, _) = seeded(d.path());
    let pf = prof.to_str().unwrap();
    let o = lo(
        d.path(),
        &["lab", "up", "lxcprov-ov-lab", "--count", "2", "--prefix", "s", "--profile", "it-ov", "--profile-file", pf],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pool = d.path().join("pool");
    assert_eq!(
        std::fs::read_dir(pool.join(".lxcprov/bases")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count(),
        1,
        "one shared base"
    );
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for n in names {
        in_container(n, "echo work > /root/work.txt");
    }
    // lab status: who is working (busybox keeps no login records).
    let o = lo(d.path(), &["--json", "--profile-file", pf, "lab", "status", "lxcprov-ov-lab"]);
    let members: Vec<Member> = records(&o.stdout).iter().filter_map(Record::as_member).cloned().collect();
    assert_eq!(members.len(), 2);
    for m in &members {
        assert!(m.last_change.is_some_and(|t| t >= t0), "{m:?}");
        assert_eq!(m.last_login, None, "{m:?}");
    }
    // lab snapshot: one tag for the class; lab restore --student 1 puts only student 1 back.
    let o = lo(d.path(), &["--json", "--profile-file", pf, "lab", "snapshot", "lxcprov-ov-lab"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let tag = records(&o.stdout).iter().find_map(Record::as_lab_snapshot).expect("a lab_snapshot record").tag.clone();
    assert_eq!(tag, "snap-1");
    for n in names {
        in_container(n, "echo later > /root/work.txt");
    }
    let o = lo(d.path(), &["--profile-file", pf, "lab", "restore", "lxcprov-ov-lab", &tag, "--student", "1", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(pool.join("lxcprov-ov-lab-s01/root/work.txt")).unwrap(), "work\n");
    assert_eq!(std::fs::read_to_string(pool.join("lxcprov-ov-lab-s02/root/work.txt")).unwrap(), "later\n");
    // lab collect: each student's own changes, their link kept as a link, a manifest.
    in_container("lxcprov-ov-lab-s01", "ln -s /etc/shadow /root/host-link && mkfifo /root/fifo");
    let out = d.path().join("collected");
    let o = lo(
        d.path(),
        &["--json", "--profile-file", pf, "lab", "collect", "lxcprov-ov-lab", "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Vec<Collected> = records(&o.stdout).iter().filter_map(Record::as_collected).cloned().collect();
    assert_eq!(got.iter().map(|c| c.archive.as_str()).collect::<Vec<_>>(), ["s01.tar", "s02.tar"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["students"][0]["sha256"], got[0].sha256.as_str());
    for n in names {
        assert_eq!(domain_state(n), "running", "{n} was left frozen");
    }
    let x = d.path().join("x1");
    std::fs::create_dir(&x).unwrap();
    assert!(Command::new("tar").arg("-xf").arg(out.join("s01.tar")).arg("-C").arg(&x).status().unwrap().success());
    assert_eq!(std::fs::read_to_string(x.join("files/root/work.txt")).unwrap(), "work\n");
    assert_eq!(std::fs::read_link(x.join("files/root/host-link")).unwrap(), PathBuf::from("/etc/shadow"));
    assert!(std::fs::read_to_string(x.join("lxcprov/verify.jsonl")).unwrap().contains("\"type\":\"summary\""));
    let list = Command::new("tar").arg("-tf").arg(out.join("s02.tar")).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains("host-link"), "student 1's files in student 2's archive");
    let o = lo(d.path(), &["--profile-file", pf, "lab", "collect", "lxcprov-ov-lab", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a second collect into the same directory overwrote it");
    let small = d.path().join("small");
    let o = lo(
        d.path(),
        &["--profile-file", pf, "lab", "collect", "lxcprov-ov-lab", "--out", small.to_str().unwrap(), "--max-mib", "0"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("more than the limit"), "{}", stderr(&o));
    assert!(std::fs::read_dir(&small).map(|r| r.count()).unwrap_or(0) == 0, "a refused collect wrote files");
    let o = lo(d.path(), &["--profile-file", pf, "lab", "restore", "lxcprov-ov-lab", "no-such-tag", "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("2 of 2 restores failed") && stderr(&o).contains("has no snapshot no-such-tag"),
        "{}",
        stderr(&o)
    );
    let o = lo(d.path(), &["--profile-file", pf, "lab", "reset", "lxcprov-ov-lab", "--student", "1", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!pool.join("lxcprov-ov-lab-s01/root/work.txt").exists());
    assert!(pool.join("lxcprov-ov-lab-s02/root/work.txt").exists(), "student 2 was reset too");
    let o = lo(d.path(), &["--profile-file", pf, "lab", "reset", "lxcprov-ov-lab", "--student", "3", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "there is no student 3");
    let o = lo(d.path(), &["--json", "--profile-file", pf, "lab", "reset", "lxcprov-ov-lab", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(checks(&o).iter().filter(|c| c.id == "pidns" && c.status == Status::Pass).count(), 2);
    assert!(!pool.join("lxcprov-ov-lab-s02/root/work.txt").exists());
    let o = lo(d.path(), &["lab", "down", "lxcprov-ov-lab", "--purge", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
    assert!(!pool.join(".lxcprov/snapshots/lxcprov-ov-lab-s01").exists(), "lab down --purge left snapshots");
}

/// `lab collect` of a copy-storage lab: each student's archive holds what differs from the
/// golden base they were copied from (their own files, a link as a link, a changed base
/// file), never the unchanged base, and `deleted.json` lists what they removed.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn lab_collect_of_a_copy_lab_archives_what_differs_from_the_golden_base() {
    preflight();
    let names = ["lxcprov-ov-cp-s01", "lxcprov-ov-cp-s02"];
    clean(&names, &["lxcprov-ov-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ovcp");
    let (_hook, prof, _) = seeded(d.path());
    let pf = prof.to_str().unwrap();
    let copy = |args: &[&str]| {
        let o = lxcprov(d.path()).env("LIBVIRT_DEFAULT_URI", URI).env("LXCPROV_STORAGE", "copy").args(args).output();
        let o = o.unwrap();
        eprintln!("$ lxcprov {}\n  exit {:?}\n{}", args.join(" "), o.status.code(), stderr(&o));
        o
    };
    let o = copy(&[
        "lab",
        "up",
        "lxcprov-ov-cp",
        "--count",
        "2",
        "--prefix",
        "s",
        "--profile",
        "it-ov",
        "--profile-file",
        pf,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.path().join("pool/lxcprov-ov-cp-s01/.lxcprov-layer").exists());
    in_container(
        names[0],
        "echo work > /root/work.txt && ln -s /etc/shadow /root/host-link && echo changed > /etc/hostname && rm /bin/vi",
    );
    in_container(names[1], "echo theirs > /root/theirs.txt");
    let out = d.path().join("collected");
    let o = copy(&["--json", "lab", "collect", "lxcprov-ov-cp", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Vec<Collected> = records(&o.stdout).iter().filter_map(Record::as_collected).cloned().collect();
    assert_eq!(got.len(), 2);
    for n in names {
        assert_eq!(domain_state(n), "running", "{n} was left frozen");
    }
    let list = |a: &str| {
        let o = Command::new("tar").arg("-tf").arg(out.join(a)).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let (l1, l2) = (list("s01.tar"), list("s02.tar"));
    for want in ["files/root/work.txt", "files/root/host-link", "files/etc/hostname", "lxcprov/deleted.json"] {
        assert!(l1.iter().any(|l| l == want), "{want} not in {l1:?}");
    }
    assert!(
        !l1.iter().any(|l| l == "files/bin/busybox" || l == "files/etc/passwd"),
        "the unchanged base was archived: {l1:?}"
    );
    assert!(l1.len() < 30, "{l1:?}");
    assert!(l2.iter().any(|l| l == "files/root/theirs.txt") && !l2.iter().any(|l| l.contains("work.txt")), "{l2:?}");
    let x = d.path().join("x");
    std::fs::create_dir(&x).unwrap();
    assert!(Command::new("tar").arg("-xf").arg(out.join("s01.tar")).arg("-C").arg(&x).status().unwrap().success());
    assert_eq!(std::fs::read_to_string(x.join("files/root/work.txt")).unwrap(), "work\n");
    assert_eq!(std::fs::read_link(x.join("files/root/host-link")).unwrap(), PathBuf::from("/etc/shadow"));
    let deleted: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(x.join("lxcprov/deleted.json")).unwrap()).unwrap();
    assert_eq!(deleted, ["bin/vi"]);
    let o = copy(&["lab", "down", "lxcprov-ov-cp", "--purge", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Isolated id maps in overlay storage: every container a range of its own, all on one
/// unshifted shared base seen through an id-mapped mount each (no copy, no chown of the
/// base); their files apart; `virsh destroy` + `virsh start` mounts the view again; reset
/// keeps the range; purge gives the ranges back and leaves nothing mounted.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn isolated_maps_share_one_unshifted_base_through_idmapped_mounts() {
    preflight();
    let names = ["lxcprov-ov-i1", "lxcprov-ov-i2"];
    clean(&names, &["lxcprov-ov-net"]);
    let _paused = PausedSystemd::pause();
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ovi");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    let (_hook, prof, pw) = seeded(d.path());
    let pf = prof.to_str().unwrap();
    let create = |n: &str| {
        let a = ["--json", "create", n, "--profile", "it-ov", "--profile-file", pf, "--idmap", "isolated"];
        lo(d.path(), &[&a[..], &["--root-password-file", pw.to_str().unwrap()]].concat())
    };
    let o = lo(
        d.path(),
        &["create", "lxcprov-ov-i1", "--profile", "it-ov", "--profile-file", pf, "--idmap", "isolated", "--dry-run"],
    );
    assert!(stdout(&o).contains("id-mapped view of the unshifted shared base"), "{}", stdout(&o));
    assert!(stdout(&o).contains("mount_setattr MOUNT_ATTR_IDMAP"), "{}", stdout(&o));
    for n in names {
        let o = create(n);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        let c = checks(&o);
        let u = c.iter().find(|c| c.id == "userns").unwrap();
        assert!(u.summary.contains("isolated: no other user namespace maps"), "{u:?}");
    }
    let reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("state/idmap-registry.json")).unwrap()).unwrap();
    let (r1, r2) = (reg["ranges"]["lxcprov-ov-i1"].as_u64().unwrap(), reg["ranges"]["lxcprov-ov-i2"].as_u64().unwrap());
    assert_ne!(r1, r2);
    let pool = d.path().join("pool");
    let bases: Vec<String> = std::fs::read_dir(pool.join(".lxcprov/bases"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(bases.len(), 1, "one shared base for both ranges: {bases:?}");
    assert!(bases[0].ends_with("@host"), "unshifted: {bases:?}");
    let base = pool.join(".lxcprov/bases").join(&bases[0]);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(base.join("bin/busybox")).unwrap().uid(), 0, "the base is never chowned");
    let (a, b) = (pool.join("lxcprov-ov-i1"), pool.join("lxcprov-ov-i2"));
    assert_eq!(std::fs::metadata(a.join("bin/busybox")).unwrap().uid() as u64, r1, "seen shifted through i1's view");
    assert_eq!(std::fs::metadata(b.join("bin/busybox")).unwrap().uid() as u64, r2);
    assert!(!mounted(&pool.join(".lxcprov/layers/lxcprov-ov-i1/lower")), "the view is not left mounted");
    // Inside, root owns / and its files; a file one writes is its own.
    assert_eq!(
        in_container("lxcprov-ov-i1", "stat -c %u:%g / /bin/busybox").split_whitespace().collect::<Vec<_>>(),
        ["0:0", "0:0"]
    );
    in_container("lxcprov-ov-i1", "echo mine > /root/own.txt");
    assert_eq!(std::fs::metadata(a.join("root/own.txt")).unwrap().uid() as u64, r1);
    assert!(!b.join("root/own.txt").exists() && !base.join("root/own.txt").exists());
    // virsh destroy + start, without lxcprov: the hook mounts the view and the overlay again.
    assert!(virsh(&["destroy", "lxcprov-ov-i1"]).status.success());
    assert!(!mounted(&a));
    // Shut off, its mount point is empty: --rootfs of it is refused with what to run instead.
    let o = lo(d.path(), &["sbom", "--rootfs", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("run `lxcprov sbom lxcprov-ov-i1`, which mounts it"), "{}", stderr(&o));
    assert!(virsh(&["start", "lxcprov-ov-i1"]).status.success());
    assert_eq!(std::fs::read_to_string(a.join("root/own.txt")).unwrap(), "mine\n");
    assert_eq!(std::fs::metadata(a.join("bin/busybox")).unwrap().uid() as u64, r1);
    let o = verified_within(d.path(), "lxcprov-ov-i1");
    assert_eq!(o.status.code(), Some(0), "verify after virsh start: {}", stdout(&o));
    // reset: the file goes, the range stays.
    let o = lo(d.path(), &["--json", "reset", "lxcprov-ov-i1", "--yes", "--profile-file", pf]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!a.join("root/own.txt").exists());
    assert_eq!(std::fs::metadata(a.join("bin/busybox")).unwrap().uid() as u64, r1);
    assert_eq!(std::fs::metadata(a.join("etc/hostname")).unwrap().uid() as u64, r1, "configuration shifted too");
    for n in names {
        assert!(lo(d.path(), &["destroy", n, "--purge", "--yes"]).status.success());
    }
    let reg = std::fs::read_to_string(d.path().join("state/idmap-registry.json")).unwrap();
    assert!(!reg.contains("lxcprov-ov-i"), "{reg}");
    assert!(pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn a_snapshot_keeps_a_containers_own_changes_and_a_restore_puts_them_back_with_its_identity() {
    preflight();
    let n = "lxcprov-ov-snap";
    clean(&[n], &["lxcprov-ov-net"]);
    let _c = Cleanup(vec![n], vec!["lxcprov-ov-net"]);
    let d = workdir("ov-snap");
    let _u = Unmount(d.path().to_path_buf(), vec![n]);
    let (_hook, prof, pw) = seeded(d.path());
    let pf = prof.to_str().unwrap();
    let o = lo(
        d.path(),
        &["create", n, "--profile", "it-ov", "--profile-file", pf, "--root-password-file", pw.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let root = d.path().join("pool").join(n);
    let snaps = d.path().join("pool/.lxcprov/snapshots").join(n);
    let identity = || {
        let uuid = String::from_utf8_lossy(&virsh(&["domuuid", n]).stdout).trim().to_string();
        let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
        let map = in_container(n, "cat /proc/self/uid_map");
        (uuid, shadow, map)
    };
    in_container(n, "echo one > /root/f && mkfifo /root/fifo && ln -s /etc/shadow /root/host-link");
    let before = identity();

    // A hostile tag is refused before anything is made.
    for bad in ["../x", "-rf", "a/b", ".hidden"] {
        let o = lo(d.path(), &["snapshot", n, &format!("--tag={bad}")]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains("snapshot tag"), "{}", stderr(&o));
    }
    assert!(!snaps.exists() || std::fs::read_dir(&snaps).unwrap().next().is_none());

    // Taken while it runs (frozen for the copy, thawed after), O(what it changed).
    let t = Instant::now();
    let o = lo(d.path(), &["--json", "snapshot", n, "--tag", "t1"]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0));
    let s = records(&o.stdout).iter().filter_map(Record::as_snapshot).next().cloned().expect("a snapshot record");
    assert_eq!((s.container.as_str(), s.tag.as_str()), (n, "t1"));
    assert!(s.bytes < 1 << 20, "a snapshot holds the container's changes only, not the base: {} bytes", s.bytes);
    assert_eq!(domain_state(n), "running", "thawed after the copy");
    let link = snaps.join("t1/upper/root/host-link");
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("/etc/shadow"), "a student's link is kept as a link");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(snaps.join("t1/upper/root/fifo")).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::metadata(snaps.parent().unwrap()).map(|m| m.permissions().mode() & 0o777).unwrap(), 0o700);
    let o = lo(d.path(), &["--json", "snapshots", n]);
    let tags: Vec<String> = records(&o.stdout).iter().filter_map(Record::as_snapshot).map(|s| s.tag.clone()).collect();
    assert_eq!(tags, ["t1"]);

    // Changed after the snapshot; a restore without --yes and no terminal changes nothing.
    in_container(n, "echo two > /root/f && echo new > /root/g");
    let o = lo(d.path(), &["--profile-file", pf, "restore", n, "t1"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(root.join("root/f")).unwrap(), "two\n");

    let t = Instant::now();
    let o = lo(d.path(), &["--json", "--profile-file", pf, "restore", n, "t1", "--yes"]);
    let restored = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(root.join("root/f")).unwrap(), "one\n");
    assert!(!root.join("root/g").exists(), "a file made after the snapshot survived the restore");
    assert_eq!(identity(), before, "the restore changed the container's domain, password or id map");
    eprintln!("snapshot of {} bytes: {took:?}; restore: {restored:?}", s.bytes);

    // Deleted one by one, and with the container.
    let o = lo(d.path(), &["snapshot", n, "--tag", "t2"]);
    assert_eq!(o.status.code(), Some(0));
    let o = lo(d.path(), &["snapshot", n, "--tag", "t1", "--delete"]);
    assert_eq!(o.status.code(), Some(0));
    let o = lo(d.path(), &["--profile-file", pf, "restore", n, "t1", "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has no snapshot t1; it has t2"), "{}", stderr(&o));
    let o = lo(d.path(), &["destroy", n, "--purge", "--yes"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!snaps.exists(), "destroy --purge left the snapshots");
}

/// A disk quota (`resources.disk`): the layer is a file system of that size of its own, so
/// a `dd` inside stops with "No space left on device" and the pool loses at most the quota;
/// a reset keeps the quota; after its disk is unmounted (a host reboot), `virsh start`
/// mounts it again through the hook; `destroy --purge` leaves nothing.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn a_disk_quota_stops_a_students_writes_and_the_pool_loses_at_most_that() {
    preflight();
    let names = ["lxcprov-ov-quota"];
    clean(&names, &["lxcprov-ov-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ovquota");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    let (_hook, prof, pw) = seeded(d.path());
    let (pf, pws) = (prof.to_str().unwrap(), pw.to_str().unwrap());
    let o = lo(
        d.path(),
        &[
            "--json",
            "create",
            names[0],
            "--profile",
            "it-ov",
            "--profile-file",
            pf,
            "--root-password-file",
            pws,
            "--disk",
            "64M",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = checks(&o);
    assert_eq!(status_of(&c, "disk"), Status::Pass, "{c:?}");
    assert!(c.iter().any(|c| c.id == "disk" && c.summary.starts_with("quota 64 MiB")), "{c:?}");
    let layer = d.path().join("pool/.lxcprov/layers").join(names[0]);
    let img = layer.join("disk.img");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 20);
    let o = lo(d.path(), &["exec", names[0], "--", "dd", "if=/dev/zero", "of=/root/big", "bs=1M", "count=200"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("No space left on device"), "{}", stderr(&o));
    use std::os::unix::fs::MetadataExt;
    let used = std::fs::metadata(&img).unwrap().blocks() * 512;
    assert!(used <= (64 << 20) + (1 << 20), "the pool lost {used} bytes for a 64 MiB quota");
    // A reset: the writes are gone, the quota stays.
    let o = lo(d.path(), &["--profile-file", pf, "reset", names[0], "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.path().join("pool").join(names[0]).join("root/big").exists());
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 20);
    // As after a host reboot: nothing mounted; `virsh start` mounts the disk and the overlay.
    assert!(virsh(&["destroy", names[0]]).status.success());
    let _ = Command::new("umount").arg(d.path().join("pool").join(names[0])).status();
    assert!(Command::new("umount").arg(layer.join("disk")).status().unwrap().success());
    assert!(virsh(&["start", names[0]]).status.success(), "virsh start without the layer's disk mounted");
    assert!(lxcprov::storage::is_mount_point(&layer.join("disk")));
    let o = lo(d.path(), &["destroy", names[0], "--purge", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!layer.exists() && pool_leftovers(d.path()).is_empty(), "{:?}", pool_leftovers(d.path()));
}

/// A disk quota in copy storage: the whole tree on a file system of its own
/// (`POOL/.lxcprov/disks/NAME.img` mounted at `POOL/NAME`), a `dd` stops at the quota, the
/// image is mounted again at a start after it went away, and `destroy --purge` removes it.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn a_copy_containers_disk_quota_holds_its_whole_tree() {
    preflight();
    let names = ["lxcprov-ov-quotac"];
    clean(&names, &["lxcprov-ov-net"]);
    let _c = Cleanup(names.to_vec(), vec!["lxcprov-ov-net"]);
    let d = workdir("ovquotac");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    let (_hook, prof, pw) = seeded(d.path());
    let (pf, pws) = (prof.to_str().unwrap(), pw.to_str().unwrap());
    let copy = |args: &[&str]| {
        let o = lxcprov(d.path()).env("LIBVIRT_DEFAULT_URI", URI).env("LXCPROV_STORAGE", "copy").args(args).output();
        let o = o.unwrap();
        eprintln!("$ lxcprov {}\n  exit {:?}\n{}", args.join(" "), o.status.code(), stderr(&o));
        o
    };
    let o = copy(&[
        "--json",
        "create",
        names[0],
        "--profile",
        "it-ov",
        "--profile-file",
        pf,
        "--root-password-file",
        pws,
        "--disk",
        "96M",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = checks(&o);
    assert!(
        c.iter().any(|c| c.id == "disk" && c.status == Status::Pass && c.summary.starts_with("quota 96 MiB")),
        "{c:?}"
    );
    let tree = d.path().join("pool").join(names[0]);
    let img = d.path().join("pool/.lxcprov/disks").join(format!("{}.img", names[0]));
    assert!(lxcprov::storage::is_mount_point(&tree), "the tree is not on its own disk");
    let o = lx(d.path(), &["exec", names[0], "--", "dd", "if=/dev/zero", "of=/root/big", "bs=1M", "count=300"]);
    assert!(stderr(&o).contains("No space left on device"), "{}", stderr(&o));
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(&img).unwrap().blocks() * 512 <= (96 << 20) + (1 << 20));
    // Stopped and its disk unmounted (as after a reboot): `lxcprov start` mounts it again.
    let o = lx(d.path(), &["stop", names[0], "--timeout", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(Command::new("umount").arg(&tree).status().unwrap().success());
    let o = lx(d.path(), &["start", names[0]]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(lxcprov::storage::is_mount_point(&tree));
    // A rebuild cannot swap a tree on its own disk: refused, nothing changed.
    let o = lx(d.path(), &["--profile-file", pf, "rebuild", names[0]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("disk quota of its own in copy storage"), "{}", stderr(&o));
    let o = lx(d.path(), &["destroy", names[0], "--purge", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!img.exists() && !tree.exists(), "the disk or the tree stayed");
}
