//! Test fixtures: a fake host tree (`proc`, `sys`, `etc`) in a tempdir holding a well
//! isolated container `web1`, which tests then break one thing at a time.

use super::*;
use crate::profile::{IdRange, Idmap};
use std::collections::HashMap;
use std::path::PathBuf;

pub const INIT: u32 = 4242;
pub const CTRL: u32 = 4241;
pub const CHILD: u32 = 4250;
pub const LABEL: &str = "system_u:system_r:container_t:s0:c297,c568";
pub const IMAGE: &str = "system_u:object_r:container_file_t:s0:c297,c568";
pub const ROOTFS: &str = "/var/lib/libvirt/filesystems/web1";
pub const CG: &str = "/machine/lxc-4241-web1.libvirt-lxc";
pub const HOST_NS: Ns = Ns { pid: 4026531836, net: 4026531840, user: 4026531837 };
pub const CONT_NS: Ns = Ns { pid: 4026532301, net: 4026532305, user: 4026532300 };
pub const OTHER_NS: Ns = Ns { pid: 4026532401, net: 4026532405, user: 4026531837 };
/// Capabilities the good container has dropped (profile + libvirt's defaults).
pub const DROPPED: &[&str] = &["sys_admin", "net_raw", "sys_module", "sys_time", "mknod", "audit_control", "mac_admin"];

/// Namespace inodes of a process.
#[derive(Clone, Copy, Debug)]
pub struct Ns {
    pub pid: u64,
    pub net: u64,
    pub user: u64,
}

/// Labels from maps.
#[derive(Clone, Debug, Default)]
pub struct FakeLabels {
    pub procs: HashMap<u32, String>,
    pub files: HashMap<PathBuf, String>,
    pub enforcing: Option<bool>,
}

impl LabelSource for FakeLabels {
    fn process_label(&self, pid: u32) -> Option<String> {
        self.procs.get(&pid).cloned()
    }
    fn file_label(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn enforcing(&self) -> Option<bool> {
        self.enforcing
    }
}

/// A host tree plus the facts, expectations and labels that go with it.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub host: HostRoot,
    pub facts: DomainFacts,
    pub expect: Expect,
    pub labels: FakeLabels,
}

/// The CapBnd mask with every capability but `dropped`.
pub fn capbnd(dropped: &[&str]) -> String {
    let all = (1u64 << CAP_NAMES.len()) - 1;
    let mask = dropped.iter().fold(all, |m, n| m & !(1u64 << cap_bit(n).unwrap()));
    format!("{mask:016x}")
}

impl Fixture {
    /// An empty host tree with nothing but the facts and expectations of `web1`.
    fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let host = HostRoot::new(dir.path());
        let idmap = Idmap {
            uid: IdRange { start: 0, target: 200000, count: 65536 },
            gid: IdRange { start: 0, target: 200000, count: 65536 },
        };
        let domain = crate::facts::DomainXml {
            name: "web1".into(),
            seclabel: Some(SecLabel {
                model: "selinux".into(),
                kind: "dynamic".into(),
                label: Some(LABEL.into()),
                imagelabel: Some(IMAGE.into()),
            }),
            idmap: Some(idmap),
            rootfs: Some(ROOTFS.into()),
            memory_limit_kib: Some(512 * 1024),
            cpu_shares: Some(512),
            cpu_period: Some(100000),
            cpu_quota: Some(50000),
            blkio_weight: Some(500),
            ..Default::default()
        };
        let facts = DomainFacts {
            domain,
            init_pid: Some(INIT),
            interfaces: vec![Iface { target_dev: Some("vnet0".into()), expected_bridge: Some("virbr1".into()) }],
        };
        let expect = Expect {
            security: SecModel::Selinux,
            dropped_caps: DROPPED.iter().map(|s| s.to_string()).collect(),
            idmap: Some(idmap),
            idmap_isolated: false,
            gpgcheck: Some(true),
            secmodel: Some("selinux".into()),
            baseline: false,
            packages: Some(42),
            seccomp: SeccompExpect::Filters {
                file: "/var/lib/lxcprov/seccomp/web1/filter.bpf".into(),
                programs: 4,
                summary: "deny-list".into(),
            },
        };
        let labels = FakeLabels { enforcing: Some(true), ..Default::default() };
        Fixture { _dir: dir, host, facts, expect, labels }
    }

    /// A well isolated, running container: every relevant check passes.
    pub fn good() -> Fixture {
        let mut f = Fixture::empty();
        f.process(1, 0, "init", Some("system_u:system_r:init_t:s0-s0:c0.c1023"), HOST_NS);
        f.process(300, 1, "libvirtd", Some("system_u:system_r:virtd_t:s0-s0:c0.c1023"), HOST_NS);
        f.process(600, 1, "sshd", Some("system_u:system_r:sshd_t:s0-s0:c0.c1023"), HOST_NS);
        f.process(CTRL, 1, "libvirt_lxc", Some("system_u:system_r:virtd_lxc_t:s0"), HOST_NS);
        f.process(INIT, CTRL, "systemd", Some(LABEL), CONT_NS);
        f.process(CHILD, INIT, "nginx", Some(LABEL), CONT_NS);
        f.process(5001, 1, "libvirt_lxc", Some("system_u:system_r:virtd_lxc_t:s0"), HOST_NS);
        f.process(5002, 5001, "init", Some("system_u:system_r:container_t:s0:c5,c6"), OTHER_NS);
        f.process(700, 1, "kworker/0:1", None, HOST_NS);
        f.init_files();
        f.sys_files();
        f.facts.domain.proc_views = vec!["/proc/uptime".into(), "/proc/stat".into()];
        f.labels.files.insert(ROOTFS.into(), IMAGE.into());
        f
    }

    /// The init's status, maps and cgroup file.
    fn init_files(&self) {
        self.status(INIT, &format!("{INIT}\t1"), &capbnd(DROPPED));
        self.write(&format!("proc/{INIT}/uid_map"), "         0     200000      65536\n");
        self.write(&format!("proc/{INIT}/gid_map"), "         0     200000      65536\n");
        let cg = format!("12:pids:/\n11:blkio:{CG}\n5:cpu,cpuacct:{CG}\n4:memory:{CG}\n1:name=systemd:/\n0::/\n");
        self.write(&format!("proc/{INIT}/cgroup"), &cg);
        // lxcfs's views over the container's /proc (the live XML binds them, see `good`).
        self.write(
            &format!("proc/{INIT}/mountinfo"),
            "500 400 0:50 / / rw,relatime - ext4 /dev/sda1 rw\n\
             501 500 0:60 / /proc rw,nosuid - proc proc rw\n\
             502 501 0:70 /proc/uptime /proc/uptime ro,relatime - fuse.lxcfs lxcfs rw,user_id=0\n\
             503 501 0:70 /proc/stat /proc/stat ro,relatime - fuse.lxcfs lxcfs rw,user_id=0\n",
        );
    }

    /// `/sys` and `/etc` of an SELinux host with the container's cgroups and veth.
    fn sys_files(&self) {
        self.write("sys/fs/selinux/mls", "1");
        self.write("etc/selinux/config", "# SELinux\nSELINUX=enforcing\nSELINUXTYPE=default\n");
        self.write("etc/selinux/default/contexts/lxc_contexts", "process = \"system_u:system_r:container_t:s0\"\n");
        self.write("sys/class/net/vnet0/operstate", "up\n");
        self.symlink("sys/class/net/vnet0/master", "../../../virtual/net/virbr1");
        self.write(&format!("sys/fs/cgroup/memory{CG}/memory.limit_in_bytes"), "536870912\n");
        self.write(&format!("sys/fs/cgroup/cpu,cpuacct{CG}/cpu.shares"), "512\n");
        self.write(&format!("sys/fs/cgroup/cpu,cpuacct{CG}/cpu.cfs_period_us"), "100000\n");
        self.write(&format!("sys/fs/cgroup/cpu,cpuacct{CG}/cpu.cfs_quota_us"), "50000\n");
        self.symlink("sys/fs/cgroup/cpu", "cpu,cpuacct");
        self.write(&format!("sys/fs/cgroup/blkio{CG}/blkio.weight"), "500\n");
    }

    /// Adds a process: its `stat`, `ns/{pid,net,user}` links and label (if any).
    pub fn process(&mut self, pid: u32, ppid: u32, comm: &str, label: Option<&str>, ns: Ns) {
        self.write(&format!("proc/{pid}/stat"), &format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560"));
        for (kind, ino) in [("pid", ns.pid), ("net", ns.net), ("user", ns.user)] {
            self.symlink(&format!("proc/{pid}/ns/{kind}"), &format!("{kind}:[{ino}]"));
        }
        match label {
            Some(l) => self.labels.procs.insert(pid, l.to_string()),
            None => self.labels.procs.remove(&pid),
        };
    }

    /// Writes `/proc/PID/status` with the given NSpid and CapBnd values.
    pub fn status(&self, pid: u32, nspid: &str, capbnd: &str) {
        let text = format!("Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t{pid}\nNSpid:\t{nspid}\nCapInh:\t0000000000000000\nCapBnd:\t{capbnd}\nNoNewPrivs:\t0\nSeccomp:\t2\nSeccomp_filters:\t4\n");
        self.write(&format!("proc/{pid}/status"), &text);
    }

    /// Writes a file under the root, creating its directories.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.host.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Creates (or replaces) a symlink under the root.
    pub fn symlink(&self, rel: &str, target: &str) {
        let p = self.host.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    /// Removes a file, symlink or directory tree under the root.
    pub fn remove(&self, rel: &str) {
        let p = self.host.root.join(rel);
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// Runs every check.
    pub fn run(&self) -> Vec<Check> {
        run_all(&self.host, &self.facts, &self.expect, &self.labels)
    }

    /// Runs every check and returns the one called `id`.
    pub fn check(&self, id: &str) -> Check {
        self.run().into_iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no check {id}"))
    }
}
