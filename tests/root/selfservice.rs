//! Root tier, students' self-service: a lab of three with SSH keys, a real jump account (a
//! system user with a shell, its sudoers rule from `lab access --sudoers`), a real sshd fed
//! by `lab access --jump-keys --self-service`. A student resets, snapshots, restores and
//! restarts their own container through it, and is refused for another student's container,
//! for any other command and for shell syntax; requests are rate-limited and logged with the
//! student's key fingerprint. Domains use the prefix `lxcprov-ov-ss-`.

use super::overlay::{in_container, lo, seeded_with, Unmount, OV_PROFILE};
use super::*;

const LAB: &str = "lxcprov-ov-ss";
const NET: &str = "lxcprov-lab-lxcprov-ov-ss";
const USER: &str = "lxcprov-it-jump";
const SUDOERS: &str = "/etc/sudoers.d/lxcprov-it-selfservice";
const PORT: &str = "22923";

/// The jump account and its sudoers rule, gone again when dropped (and before the test).
struct JumpAccount;
impl JumpAccount {
    fn remove() {
        let _ = std::fs::remove_file(SUDOERS);
        let _ = Command::new("userdel").arg(USER).output();
    }
    fn create() -> JumpAccount {
        JumpAccount::remove();
        let o = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", USER])
            .output()
            .unwrap();
        assert!(o.status.success(), "useradd: {}", String::from_utf8_lossy(&o.stderr));
        // A key-only account: '*' (no password) rather than '!' (locked, refused by sshd).
        assert!(Command::new("usermod").args(["-p", "*", USER]).status().unwrap().success());
        JumpAccount
    }
}
impl Drop for JumpAccount {
    fn drop(&mut self) {
        JumpAccount::remove();
    }
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ssh -p PORT USER@127.0.0.1 REQUEST` with a student's key.
fn ask(key: &Path, request: &str) -> Output {
    let o = Command::new("ssh")
        .args(["-i"])
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args(["-p", PORT, &format!("{USER}@127.0.0.1"), request])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!("$ ssh {USER}@127.0.0.1 {request:?}\n  exit {:?}\n{}{}", o.status.code(), stdout(&o), stderr(&o));
    o
}

#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn students_reset_snapshot_and_restore_their_own_container_through_the_jump_account_and_nothing_else() {
    preflight();
    for tool in ["ssh", "ssh-keygen", "/usr/sbin/sshd", "/usr/bin/sudo", "/usr/sbin/visudo", "useradd"] {
        assert!(
            Path::new(tool).is_file() || Command::new("which").arg(tool).output().unwrap().status.success(),
            "{tool} is missing: run scripts/setup-host.sh"
        );
    }
    let names = ["lxcprov-ov-ss-s01", "lxcprov-ov-ss-s02", "lxcprov-ov-ss-s03"];
    clean(&names, &[NET]);
    let _c = Cleanup(names.to_vec(), vec![NET]);
    let d = workdir("ss");
    let _u = Unmount(d.path().to_path_buf(), names.to_vec());
    // The profile asks for the sshd packages itself, so the seeded busybox base is the one a
    // lab with SSH keys uses (the students' own sshd is not needed here: the jump host is).
    let (_hook, prof, _) = seeded_with(d.path(), &format!("{OV_PROFILE}package_sets: [ssh-server]\n"));
    let keys = d.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    for s in ["s01", "s02", "s03"] {
        let k = d.path().join(s);
        let o =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", s, "-f"]).arg(&k).output().unwrap();
        assert!(o.status.success());
        std::fs::rename(d.path().join(format!("{s}.pub")), keys.join(format!("{s}.pub"))).unwrap();
    }
    let (k1, k2, k3) = (d.path().join("s01"), d.path().join("s02"), d.path().join("s03"));
    let o = lo(
        d.path(),
        &[
            "lab",
            "up",
            LAB,
            "--count",
            "3",
            "--prefix",
            "s",
            "--profile",
            "it-ov",
            "--profile-file",
            prof.to_str().unwrap(),
            "--ssh-keys",
            keys.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The teacher's set-up, as docs/labs.md says: the account, its sudoers rule (checked by
    // visudo), its authorized_keys. No --profile-file from here on: the lab recorded it.
    let _account = JumpAccount::create();
    let o = lo(d.path(), &["lab", "access", LAB, "--sudoers", USER]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rule = d.path().join("sudoers");
    std::fs::write(&rule, stdout(&o)).unwrap();
    let v = Command::new("visudo").arg("-cf").arg(&rule).output().unwrap();
    assert!(v.status.success(), "visudo: {}{}", stdout(&v), stderr(&v));
    assert!(Command::new("install").args(["-m", "0440"]).arg(&rule).arg(SUDOERS).status().unwrap().success());
    let o = lo(d.path(), &["lab", "access", LAB, "--jump-keys", "--self-service"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let jump_keys = d.path().join("jump_keys");
    std::fs::write(&jump_keys, stdout(&o)).unwrap();
    let hostkey = d.path().join("jump_host_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&hostkey)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-p", PORT, "-o", "ListenAddress=127.0.0.1", "-o", "StrictModes=no"])
        .args(["-o", &format!("AllowUsers={USER}"), "-o", "PasswordAuthentication=no", "-o", "UsePAM=no"])
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
    let t = Instant::now();
    let help = loop {
        let o = ask(&k1, "help");
        if o.status.success() || t.elapsed() > Duration::from_secs(20) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    assert!(stdout(&help).contains("Self-service for your container lxcprov-ov-ss-s01"), "{}", stdout(&help));

    let pool = d.path().join("pool");
    let file = |n: &str, f: &str| std::fs::read_to_string(pool.join(n).join("root").join(f)).ok();
    in_container(names[0], "echo mine > /root/work.txt");
    in_container(names[1], "echo theirs > /root/work.txt");

    // Student 1: a snapshot, a reset, a restore and a restart of their own container.
    let o = ask(&k1, "snapshot --tag before");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("snapshot student-before of lxcprov-ov-ss-s01"), "{}", stdout(&o));
    in_container(names[0], "echo later > /root/work.txt; touch /root/extra");
    let o = ask(&k1, "reset --yes");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("is back on the lab's base; checks:"), "{}", stdout(&o));
    assert_eq!(file(names[0], "work.txt"), None, "the reset kept student 1's file");
    let o = ask(&k1, "restore before --yes");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(file(names[0], "work.txt").as_deref(), Some("mine\n"));
    assert_eq!(file(names[0], "extra"), None);
    assert_eq!(domain_state(names[0]), "running");
    let o = ask(&k1, "restart");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(domain_state(names[0]), "running");

    // Refused: another student's container, other commands, shell syntax. Nothing happens.
    let refused = |key: &Path, req: &str, why: &str| {
        let o = ask(key, req);
        assert_eq!(o.status.code(), Some(2), "{req}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{req}: {}", stderr(&o));
    };
    refused(&k1, "reset lxcprov-ov-ss-s02 --yes", "only on your own container lxcprov-ov-ss-s01");
    refused(&k1, "rm -rf /", "not a self-service command");
    refused(&k1, "reset --yes; touch /tmp/lxcprov-it-pwned", "the option");
    refused(&k1, "status $(touch /tmp/lxcprov-it-pwned)", "only on your own container");
    assert!(!Path::new("/tmp/lxcprov-it-pwned").exists(), "a student's request reached a shell");
    assert_eq!(file(names[1], "work.txt").as_deref(), Some("theirs\n"), "student 2's work was touched");
    // Student 2's key acts on student 2's container.
    let o = ask(&k2, "status");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("lxcprov-ov-ss-s02 running at 10.213."), "{}", stdout(&o));
    // The teacher (root) can run a student's request by hand; --json gives the record.
    let o = lo(d.path(), &["--json", "lab", "self-service", LAB, "s02", "--", "snapshots"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = records(&o.stdout).iter().find_map(Record::as_self_service).cloned().expect("a self_service record");
    assert_eq!((r.container.as_str(), r.verb.as_str()), ("lxcprov-ov-ss-s02", "snapshots"));
    // The jump account itself may run the students' requests and nothing else as root.
    let bin = bin();
    let su = |args: &str| {
        Command::new("su")
            .args(["-s", "/bin/sh", USER, "-c"])
            .arg(format!("/usr/bin/sudo -n {} {args}", bin.display()))
            .output()
            .unwrap()
    };
    let o = su(&format!("lab down {LAB} --purge --yes"));
    assert!(!o.status.success() && stderr(&o).contains("password is required"), "{}", stderr(&o));
    assert!(domain_exists(names[0]));

    // Rate limit: student 3 gets the burst, then a clear refusal logged once.
    let mut answered = 0;
    let limited = loop {
        let o = ask(&k3, "status");
        if !o.status.success() {
            break o;
        }
        answered += 1;
        assert!(answered <= 10, "no limit after {answered} requests");
    };
    assert_eq!(answered, 10);
    assert!(stderr(&limited).contains("too many requests: try again in"), "{}", stderr(&limited));
    refused(&k3, "status", "too many requests");

    // The log: one line per request, each with its student's key fingerprint.
    let o = lo(d.path(), &["--json", "lab", "access", LAB]);
    let fps: Vec<(String, String)> = records(&o.stdout)
        .into_iter()
        .filter_map(|r| match r {
            Record::Student(Student::Access(a)) => Some((a.student.clone(), a.fingerprint.clone())),
            _ => None,
        })
        .collect();
    let log = std::fs::read_to_string(d.path().join(format!("state/labs/{LAB}/self-service/log"))).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for l in &lines {
        let fp = &fps.iter().find(|(s, _)| l["student"] == s.as_str()).expect("a known student").1;
        assert_eq!(l["fingerprint"], fp.as_str(), "{l}");
    }
    let of = |student: &str, outcome: &str| {
        lines.iter().filter(|l| l["student"] == student && l["outcome"] == outcome).count()
    };
    assert_eq!((of("s01", "done"), of("s01", "refused")), (5, 4), "{log}");
    assert_eq!((of("s03", "done"), of("s03", "refused")), (10, 1), "{log}");
    assert!(log.contains("\"request\":\"reset --yes; touch /tmp/lxcprov-it-pwned\""), "{log}");

    let o = lo(d.path(), &["lab", "down", LAB, "--purge", "--yes"]);
    assert!(o.status.success());
}
