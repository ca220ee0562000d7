use super::cgroupv1::{stale_systemd_cgroups, systemd_cgroup_holder};
use super::create::Created;
use super::inspect::dropped_caps_from_xml;
use super::run::relabel_before_start;
use super::*;
use crate::bootstrap;
use crate::exec::RecordingRunner;
use crate::facts;
use crate::libvirt::FakeHypervisor;
use crate::name::Name;
use crate::password::Secret;
use crate::spec::Spec;
use std::path::Path;

struct NoLabels;
impl LabelSource for NoLabels {
    fn process_label(&self, _: u32) -> Option<String> {
        None
    }
    fn file_label(&self, _: &Path) -> Option<String> {
        None
    }
    fn enforcing(&self) -> Option<bool> {
        None
    }
}

fn profile() -> Profile {
    crate::profile::parse("security: {model: none, label: none, allow_host_root: true}\nnetwork: {mode: isolated, name: lxcprov-test}\ntrust: {gpgcheck: false}\n", "t")
        .unwrap()
}

/// Paths under a tempdir, a recording runner and a quiet UI, for an [`Env`].
struct Harness {
    root: PathBuf,
    runner: RecordingRunner,
    paths: Paths,
    ui: crate::output::Silent,
}

impl Harness {
    fn new(d: &tempfile::TempDir) -> Harness {
        let root = d.path().to_path_buf();
        let paths = Paths { pool: root.join("pool"), cache: root.join("cache"), state: root.join("state") };
        Harness { root, runner: RecordingRunner::new(), paths, ui: crate::output::Silent }
    }

    fn env<'a>(&'a self, hv: &'a FakeHypervisor) -> Env<'a> {
        Env {
            hv,
            runner: &self.runner,
            paths: &self.paths,
            ui: &self.ui,
            host: HostRoot { root: self.root.clone() },
            run_dir: self.root.join("run"),
            labels: &NoLabels,
        }
    }
}

impl Harness {
    /// The create plan for `c1` from profile `p`, with the test's XML.
    fn plan(&self, p: &Profile) -> CreatePlan {
        let name = Name::parse("c1").unwrap();
        let distro = crate::distro::lookup("debian12").unwrap();
        let opts = bootstrap::Options { keep_base: false, ..Default::default() };
        let bp = bootstrap::plan(&self.paths, &name, "p", p, &distro, bootstrap::Tool::Debootstrap, &opts).unwrap();
        let spec =
            Spec { name, profile_name: "p".into(), profile: p.clone(), distro, warnings: vec![], distro_note: None };
        CreatePlan::new(&spec, "fake:///", &self.paths, bp, (DOMAIN.into(), NETWORK.into()))
    }

    /// libvirt's live state and a /proc entry for an init, as a started container has.
    fn fake_init(&self) {
        std::fs::create_dir_all(self.root.join("run")).unwrap();
        std::fs::write(self.root.join("run/c1.xml"), "<domstatus><init pid='4242'/></domstatus>").unwrap();
        std::fs::create_dir_all(self.root.join("proc/4242")).unwrap();
    }
}

/// The domain c1, running, with a fake init (PID 4242) under the harness's `/proc`.
fn running_c1(d: &tempfile::TempDir) -> (FakeHypervisor, Harness) {
    let hv = FakeHypervisor::default();
    hv.define_domain(DOMAIN).unwrap();
    hv.start_domain("c1").unwrap();
    let h = Harness::new(d);
    h.fake_init();
    (hv, h)
}

/// c1's init has forked: `children` lists a child.
fn with_child(h: &Harness) {
    std::fs::create_dir_all(h.root.join("proc/4242/task/4242")).unwrap();
    std::fs::write(h.root.join("proc/4242/task/4242/children"), "4243 ").unwrap();
}

fn pw() -> Secret {
    Secret::new("correct horse".into()).unwrap()
}

const DOMAIN: &str = "<domain type='lxc'><name>c1</name><metadata><lxcprov:container xmlns:lxcprov='https://github.com/lxcprov/lxcprov/xmlns/1' profile='p' distro='debian12' release='12' version='0' security='none'/></metadata><devices><interface type='network'><source network='lxcprov-test'/></interface></devices></domain>";
const NETWORK: &str = "<network><name>lxcprov-test</name><metadata><lxcprov:network xmlns:lxcprov='https://github.com/lxcprov/lxcprov/xmlns/1' created-by='lxcprov' version='0'/></metadata></network>";

fn c1() -> Name {
    Name::parse("c1").unwrap()
}

#[test]
fn failed_start_rolls_back_what_this_run_created() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor { fail_start: true, ..Default::default() };
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let name = Name::parse("c1").unwrap();
    let rootfs = h.paths.rootfs(&name);
    let plan = h.plan(&profile());
    let err = format!("{:#}", crate::ops::create::run_plan_in(&e, &plan, &pw(), false).err().unwrap());
    assert!(err.contains("fake start failure") && err.contains("removed what this run created"), "{err}");
    let undone = format!("domain c1, network lxcprov-test, deleted {}", rootfs.display());
    assert!(err.contains(&undone), "{err}");
    assert!(hv.domains.lock().unwrap().is_empty());
    assert!(hv.networks.lock().unwrap().is_empty());
    assert!(!rootfs.exists());
    assert!(!h.paths.partial(&name).exists());
}

#[test]
fn a_failed_start_keeps_the_network_it_defined_when_a_neighbour_joined_it() {
    // A lab's students share one network: the one that defined it fails while another
    // student is already defined on it (parallel `lab up`): the network stays for them.
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor { fail_start: true, ..Default::default() };
    let neighbour = DOMAIN.replace("<name>c1</name>", "<name>c2</name>");
    hv.domains.lock().unwrap().insert("c2".into(), (neighbour, crate::libvirt::State::Running));
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let plan = h.plan(&profile());
    let err = format!("{:#}", crate::ops::create::run_plan_in(&e, &plan, &pw(), false).err().unwrap());
    assert!(err.contains("fake start failure") && err.contains("domain c1"), "{err}");
    assert!(err.contains("; kept network lxcprov-test (another domain uses it)"), "{err}");
    assert!(hv.network_exists("lxcprov-test").unwrap(), "the neighbour's network is left");
    assert!(!hv.domain_exists("c1").unwrap());
}

#[test]
fn libvirtd_dying_at_start_keeps_the_tree_the_domain_may_still_use() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor { die_on_start: true, ..Default::default() };
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let name = Name::parse("c1").unwrap();
    let plan = h.plan(&profile());
    let err = format!("{:#}", crate::ops::create::run_plan_in(&e, &plan, &pw(), false).err().unwrap());
    assert!(err.contains("lost the connection"), "{err}");
    assert!(err.contains("may still exist"), "{err}");
    assert!(h.paths.rootfs(&name).join("etc/hostname").exists(), "the tree stays for the domain: {err}");
    assert!(hv.domains.lock().unwrap().contains_key("c1"), "the fake still holds it, as libvirtd would");
}

#[test]
fn dry_run_steps_are_the_steps_that_run() {
    let d = tempfile::tempdir().unwrap();
    let h = Harness::new(&d);
    let plan = h.plan(&profile());
    let text = crate::plan::render_steps(&plan.steps());
    // Every command the plan shows is a command the run executes, in the same order.
    let hv = FakeHypervisor::default();
    h.fake_init();
    let e = h.env(&hv);
    let Created::New { .. } = crate::ops::create::run_plan_in(&e, &plan, &pw(), false).unwrap() else {
        panic!("expected a new container")
    };
    let ran: Vec<String> = h.runner.calls().iter().map(|c| c.display()).collect();
    for c in &ran {
        assert!(text.contains(&format!("run    {c}")), "{c} ran but is not in the plan:\n{text}");
    }
    assert_eq!(ran.len(), text.matches("   run    ").count(), "{text}");
    assert!(text.contains("take the lock") && text.contains("define the domain c1 on fake:///"), "{text}");
}

#[test]
fn existing_network_and_foreign_domain_are_never_touched() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor::default();
    hv.define_network(NETWORK).unwrap();
    hv.start_network("lxcprov-test").unwrap();
    hv.define_domain("<domain type='lxc'><name>c1</name></domain>").unwrap();
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let plan = h.plan(&profile());
    let err = format!("{:#}", crate::ops::create::run_plan_in(&e, &plan, &pw(), false).err().unwrap());
    assert!(err.contains("already exists (not created by lxcprov)"), "{err}");
    assert!(hv.domain_exists("c1").unwrap());
    assert!(hv.network_exists("lxcprov-test").unwrap());
}

#[test]
fn rerun_of_a_matching_shut_off_container_starts_it() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor::default();
    hv.define_domain(DOMAIN).unwrap();
    let h = Harness::new(&d);
    let e = h.env(&hv);
    h.fake_init();
    let plan = h.plan(&profile());
    let Created::New { bootstrapped: false, .. } = crate::ops::create::run_plan_in(&e, &plan, &pw(), false).unwrap()
    else {
        panic!("a defined, shut-off container is started, not bootstrapped again")
    };
    assert_eq!(*hv.log.lock().unwrap(), ["define c1", "start c1"], "no second define, no bootstrap");
    assert!(h.runner.calls().is_empty());
}

#[test]
fn destroy_removes_our_unused_network_and_purges_only_our_rootfs() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor::default();
    hv.define_network(NETWORK).unwrap();
    hv.define_domain(DOMAIN).unwrap();
    hv.start_domain("c1").unwrap();
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let paths = &h.paths;
    let name = Name::parse("c1").unwrap();
    std::fs::create_dir_all(paths.rootfs(&name)).unwrap();
    let done = destroy(&e, &name, true).unwrap();
    assert!(done.iter().any(|s| s.contains("removed network")), "{done:?}");
    assert!(!paths.rootfs(&name).exists());
    assert!(!hv.domain_exists("c1").unwrap());
    // A domain whose rootfs is elsewhere is never purged.
    hv.define_domain("<domain type='lxc'><name>c1</name><devices><filesystem type='mount'><source dir='/home/precious'/><target dir='/'/></filesystem></devices></domain>").unwrap();
    let err = format!("{:#}", destroy(&e, &name, true).unwrap_err());
    assert!(err.contains("not lxcprov's"), "{err}");
    assert!(hv.domain_exists("c1").unwrap());
}

#[test]
fn purge_removes_what_a_killed_run_left_even_without_a_domain() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor::default();
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let name = Name::parse("c1").unwrap();
    for p in [h.paths.partial(&name), h.paths.old(&name), h.paths.failed(&name)] {
        std::fs::create_dir_all(p.join("usr/bin")).unwrap();
    }
    assert!(destroy(&e, &name, false).is_err(), "without --purge there is nothing to destroy");
    let done = destroy(&e, &name, true).unwrap();
    assert_eq!(done.iter().filter(|s| s.contains("leftover")).count(), 3, "{done:?}");
    assert!(std::fs::read_dir(&h.paths.pool).unwrap().next().is_none());
}

#[test]
fn a_lost_connection_is_never_no_such_container() {
    let d = tempfile::tempdir().unwrap();
    let hv = FakeHypervisor::default();
    hv.dead.store(true, std::sync::atomic::Ordering::SeqCst);
    let h = Harness::new(&d);
    let e = h.env(&hv);
    let err = format!("{:#}", require_domain(&e, &c1()).unwrap_err());
    assert!(err.contains("lost the connection") && !err.contains("no container named"), "{err}");
    let err = format!("{:#}", destroy(&e, &Name::parse("c1").unwrap(), true).unwrap_err());
    assert!(err.contains("lost the connection"), "{err}");
}

/// A host tree whose PID 1 is not systemd.
fn non_systemd_host(d: &tempfile::TempDir) -> HostRoot {
    std::fs::create_dir_all(d.path().join("proc/1")).unwrap();
    std::fs::write(d.path().join("proc/1/comm"), "init\n").unwrap();
    HostRoot { root: d.path().to_path_buf() }
}

#[test]
fn prunes_only_empty_cgroups_of_namespaced_containers() {
    use std::os::unix::fs::chown;
    let d = tempfile::tempdir().unwrap();
    let host = non_systemd_host(&d);
    let sd = d.path().join("sys/fs/cgroup/systemd");
    for (dir, procs, uid) in [
        ("init.scope", "", 200000),
        ("system.slice/a.service", "", 200000),
        ("busy.scope", "42\n", 200000),
        ("host.scope", "", 0),
    ] {
        let p = sd.join(dir);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("cgroup.procs"), procs).unwrap();
        chown(&p, Some(uid), Some(uid)).unwrap();
    }
    std::fs::write(sd.join("system.slice/cgroup.procs"), "").unwrap();
    chown(sd.join("system.slice"), Some(200000), Some(200000)).unwrap();
    let mut got = stale_systemd_cgroups(&host);
    got.sort();
    assert_eq!(got, [sd.join("init.scope"), sd.join("system.slice"), sd.join("system.slice/a.service")]);
    std::fs::write(sd.join("system.slice/a.service/cgroup.procs"), "7\n").unwrap();
    assert_eq!(stale_systemd_cgroups(&host), [sd.join("init.scope")], "a busy child keeps its parents");
    std::fs::write(d.path().join("proc/1/comm"), "systemd\n").unwrap();
    assert!(stale_systemd_cgroups(&host).is_empty());
}

#[test]
fn a_container_with_another_map_holding_the_systemd_cgroups_is_named() {
    let d = tempfile::tempdir().unwrap();
    let host = non_systemd_host(&d);
    std::fs::create_dir_all(d.path().join("proc/4242")).unwrap();
    std::fs::write(d.path().join("proc/4242/uid_map"), "         0     200000      65536\n").unwrap();
    std::fs::write(d.path().join("proc/4242/cgroup"), "4:memory:/machine/lxc-4241-web1.libvirt-lxc\n").unwrap();
    let scope = d.path().join("sys/fs/cgroup/systemd/init.scope");
    std::fs::create_dir_all(&scope).unwrap();
    std::fs::write(scope.join("cgroup.procs"), "4242\n").unwrap();
    assert_eq!(systemd_cgroup_holder(&host, 100000).as_deref(), Some("web1 (user namespace at host uid 200000)"));
    assert_eq!(systemd_cgroup_holder(&host, 200000), None, "the same map can share");
    std::fs::write(d.path().join("proc/1/comm"), "systemd\n").unwrap();
    assert_eq!(systemd_cgroup_holder(&host, 100000), None);
}

struct Enforcing;
impl LabelSource for Enforcing {
    fn process_label(&self, _: u32) -> Option<String> {
        None
    }
    fn file_label(&self, _: &Path) -> Option<String> {
        None
    }
    fn enforcing(&self) -> Option<bool> {
        Some(true)
    }
}

#[test]
fn rootfs_is_relabelled_before_each_start_on_selinux_hosts() {
    let d = tempfile::tempdir().unwrap();
    let h = Harness::new(&d);
    std::fs::create_dir_all(d.path().join("etc/selinux/default/contexts")).unwrap();
    std::fs::write(d.path().join("etc/selinux/config"), "SELINUXTYPE=default\n").unwrap();
    std::fs::write(
        d.path().join("etc/selinux/default/contexts/lxc_contexts"),
        "file = \"system_u:object_r:container_file_t:s0\"\n",
    )
    .unwrap();
    let hv = FakeHypervisor::default();
    let mut e = h.env(&hv);
    e.labels = &Enforcing;
    let dynamic = facts::parse_domain("<domain><name>c</name><devices><filesystem type='mount'><source dir='/p/c'/><target dir='/'/></filesystem></devices><seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:container_t:s0:c1,c2</label></seclabel></domain>").unwrap();
    relabel_before_start(&e, &dynamic).unwrap();
    let stat = facts::parse_domain("<domain><name>c</name><devices><filesystem type='mount'><source dir='/p/c'/><target dir='/'/></filesystem></devices><seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:container_t:s0:c7,c9</label></seclabel></domain>").unwrap();
    relabel_before_start(&e, &stat).unwrap();
    let none = facts::parse_domain("<domain><name>c</name><seclabel type='none'/></domain>").unwrap();
    relabel_before_start(&e, &none).unwrap();
    let calls: Vec<String> = h.runner.calls().iter().map(|c| c.display()).collect();
    assert_eq!(
        calls,
        [
            "chcon -R --no-dereference system_u:object_r:container_file_t:s0 /p/c",
            "chcon -R --no-dereference system_u:object_r:container_file_t:s0:c7,c9 /p/c",
        ]
    );
}

#[test]
fn dropped_caps_include_libvirt_defaults() {
    let xml = "<domain><features><capabilities policy='default'><sys_admin state='off'/><mknod state='on'/></capabilities></features></domain>";
    let v = dropped_caps_from_xml(xml);
    assert!(v.contains(&"sys_admin".to_string()) && v.contains(&"sys_module".to_string()));
    assert!(!v.contains(&"mknod".to_string()));
}

#[test]
fn an_init_with_children_is_ready_without_the_fixed_settle() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    let e = h.env(&hv);
    // Alive but no child yet: it counts only after the settle time.
    let t = std::time::Instant::now();
    assert_eq!(run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap(), 4242);
    assert!(t.elapsed() >= std::time::Duration::from_millis(900), "{:?}", t.elapsed());
    // Its first child is the evidence.
    with_child(&h);
    let t = std::time::Instant::now();
    run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(600), "{:?}", t.elapsed());
}

#[test]
fn an_init_that_is_a_zombie_is_dead_not_ready() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    // It forked (children seen), then died: libvirt's controller has not reaped it yet.
    with_child(&h);
    std::fs::write(h.root.join("proc/4242/stat"), "4242 (init) Z 4241 4242 4242 0 -1 4194560").unwrap();
    let e = h.env(&hv);
    let err = format!("{:#}", run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap_err());
    assert!(err.contains("exited at once"), "{err}");
    // Alive (sleeping), the same evidence makes it ready.
    std::fs::write(h.root.join("proc/4242/stat"), "4242 (init) S 4241 4242 4242 0 -1 4194560").unwrap();
    assert_eq!(run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap(), 4242);
}

#[test]
fn a_systemd_init_is_ready_once_it_answers_on_its_private_socket() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    with_child(&h);
    std::fs::write(h.root.join("proc/4242/comm"), "systemd\n").unwrap();
    let e = h.env(&hv);
    // Forked, but it cannot answer systemctl yet: only the settle time makes it ready.
    let t = std::time::Instant::now();
    run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(900), "{:?}", t.elapsed());
    // Its private socket, through the container's root, is the evidence.
    std::fs::create_dir_all(h.root.join("proc/4242/root/run/systemd")).unwrap();
    std::fs::write(h.root.join("proc/4242/root/run/systemd/private"), "").unwrap();
    let t = std::time::Instant::now();
    run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(600), "{:?}", t.elapsed());
}

/// `/proc/net/unix` with c1's controller listening on its monitor socket, and a connection
/// to it (libvirtd's monitor) or none.
fn monitor_socket(h: &Harness, connected: bool) {
    let sock = h.root.join("run/c1.sock").display().to_string();
    let mut t = format!(
        "Num       RefCount Protocol Flags    Type St Inode Path\n000000004deb9a60: 00000002 00000000 00010000 0001 01  7321 /run/libvirt/libvirt-sock\n00000000a268f579: 00000002 00000000 00010000 0001 01 21957 {sock}\n"
    );
    if connected {
        t.push_str(&format!("000000002868547c: 00000003 00000000 00000000 0001 03 3663745 {sock}\n"));
    }
    std::fs::create_dir_all(h.root.join("proc/net")).unwrap();
    std::fs::write(h.root.join("proc/net/unix"), t).unwrap();
}

/// libvirt 9.0 lost the controller's one "init started" event and closed its monitor
/// connection without noticing: the domain runs, `<init pid='0'/>` for good, the controller
/// listens with nobody connected.
fn lost_monitor(h: &Harness) {
    std::fs::write(h.root.join("run/c1.xml"), "<domstatus state='running'><init pid='0'/></domstatus>").unwrap();
    monitor_socket(h, false);
}

#[test]
fn a_start_whose_monitor_libvirt_lost_is_started_again_not_waited_on_for_15s() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    with_child(&h);
    lost_monitor(&h);
    // The restart brings a healthy start: libvirt reports the init, its monitor connected.
    let (root, hits) = (h.root.clone(), std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0)));
    let n = hits.clone();
    *hv.on_start.lock().unwrap() = Some(Box::new(move |_| {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::fs::write(root.join("run/c1.xml"), "<domstatus><init pid='4242'/></domstatus>").unwrap();
    }));
    let e = h.env(&hv);
    let t = std::time::Instant::now();
    assert_eq!(run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(15)).unwrap(), 4242);
    assert!(t.elapsed() < std::time::Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let log = hv.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|l| *l == "destroy c1").count(), 1, "{log:?}");
}

#[test]
fn a_monitor_lost_at_every_start_fails_after_three_restarts_saying_why() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    lost_monitor(&h);
    let e = h.env(&hv);
    let t = std::time::Instant::now();
    let err = run::wait_for_init(&e, &c1(), std::time::Duration::from_secs(15)).unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(err.is::<run::MonitorLost>(), "{err:#}");
    assert!(format!("{err:#}").contains("lost its monitor connection"), "{err:#}");
    let log = hv.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|l| *l == "destroy c1").count(), 3, "{log:?}");
    assert_eq!(log.iter().filter(|l| *l == "start c1").count(), 4, "{log:?}");
}

#[test]
fn a_start_waiting_for_its_init_with_its_monitor_connected_is_lost_only_after_the_timeout() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    std::fs::write(h.root.join("run/c1.xml"), "<domstatus state='running'><init pid='0'/></domstatus>").unwrap();
    let e = h.env(&hv);
    // Connected: libvirt will hear of the init; nothing to restart.
    monitor_socket(&h, true);
    assert!(!run::monitor_lost(&e, &c1()));
    // No socket table (or no listener): cannot be told, so not lost.
    std::fs::write(h.root.join("proc/net/unix"), "Num       RefCount Protocol Flags    Type St Inode Path\n").unwrap();
    assert!(!run::monitor_lost(&e, &c1()));
    // The init known: whatever the sockets say, it is not the lost-event husk.
    monitor_socket(&h, false);
    std::fs::write(h.root.join("run/c1.xml"), "<domstatus><init pid='4242'/></domstatus>").unwrap();
    assert!(!run::monitor_lost(&e, &c1()));
    // Connected, but libvirt never learns the init: after the timeout it counts as lost (the
    // event was dropped), and the start is tried again, at most three times.
    let err = {
        std::fs::write(h.root.join("run/c1.xml"), "<domstatus><init pid='0'/></domstatus>").unwrap();
        monitor_socket(&h, true);
        run::wait_for_init(&e, &c1(), std::time::Duration::from_millis(300)).unwrap_err()
    };
    assert!(err.is::<run::MonitorLost>(), "{err:#}");
    assert_eq!(hv.log.lock().unwrap().iter().filter(|l| *l == "destroy c1").count(), 3);
}

#[test]
fn a_running_container_is_frozen_for_the_work_and_thawed_whatever_it_returns() {
    let d = tempfile::tempdir().unwrap();
    let (hv, h) = running_c1(&d);
    let e = h.env(&hv);
    let c = e.container(&c1()).unwrap();
    assert_eq!(c.frozen("copying", || Ok(7)).unwrap(), 7);
    let err = c.frozen("copying", || -> anyhow::Result<()> { anyhow::bail!("disk full") }).unwrap_err();
    assert_eq!(format!("{err:#}"), "disk full");
    let log: Vec<String> = hv
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("suspend") || l.starts_with("resume"))
        .cloned()
        .collect();
    assert_eq!(log, ["suspend c1", "resume c1", "suspend c1", "resume c1"]);
    // A freeze libvirt gives up on is tried again; one that never comes is one clear error.
    hv.log.lock().unwrap().clear();
    hv.suspend_failures.store(2, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.frozen("copying", || Ok(8)).unwrap(), 8);
    let log = hv.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|l| l.as_str() == "suspend c1 failed").count(), 2, "{log:?}");
    hv.suspend_failures.store(99, std::sync::atomic::Ordering::SeqCst);
    let err = format!("{:#}", c.frozen("copying", || Ok(9)).unwrap_err());
    assert!(err.contains("could not be frozen (5 tries)"), "{err}");
    hv.suspend_failures.store(0, std::sync::atomic::Ordering::SeqCst);
    // Shut off: nothing to freeze.
    hv.destroy_domain("c1").unwrap();
    hv.log.lock().unwrap().clear();
    assert_eq!(c.frozen("copying", || Ok(1)).unwrap(), 1);
    assert!(!hv.log.lock().unwrap().iter().any(|l| l.starts_with("suspend")));
}
