//! Container lifecycle: create, verify, list, start, stop, destroy. Works through the
//! [`Hypervisor`] and [`Runner`] seams, so the logic runs against fakes in tests; the real
//! thing needs root and libvirtd.

use crate::bootstrap::{self, Record};
use crate::exec::Runner;
use crate::facts::{self, DomainXml};
use crate::libvirt::{Hypervisor, State};
use crate::name::Name;
use crate::output::Ui;
use crate::paths::Paths;
use crate::profile::{CapState, NetMode, Profile, SecModel};
use crate::verify::{self, DomainFacts, Expect, HostRoot, Iface, LabelSource, Report, SecLabel};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the lifecycle operations work with.
pub struct Env<'a> {
    pub hv: &'a dyn Hypervisor,
    pub runner: &'a dyn Runner,
    pub paths: &'a Paths,
    pub ui: &'a Ui,
    pub host: HostRoot,
    /// libvirt's LXC status directory (`/run/libvirt/lxc`).
    pub run_dir: PathBuf,
    pub labels: &'a dyn LabelSource,
}

/// Something this run created, to undo on failure.
#[derive(Debug)]
enum Created {
    Network(String),
    Domain(String),
    Rootfs(PathBuf),
}

/// Makes sure the profile's network exists and is active. Returns true when this call
/// defined it.
pub fn ensure_network(env: &Env, p: &Profile, network_xml: &str) -> Result<bool> {
    let name = &p.network.name;
    match p.network.mode {
        NetMode::Isolated => {
            let mut defined = false;
            if !env.hv.network_exists(name)? {
                env.ui.info(&format!("defining isolated network {name}"));
                env.hv.define_network(network_xml)?;
                defined = true;
            }
            if !env.hv.network_active(name)? {
                if let Err(e) = env.hv.start_network(name) {
                    if defined {
                        let _ = env.hv.remove_network(name);
                    }
                    return Err(e);
                }
            }
            Ok(defined)
        }
        NetMode::Network => {
            if !env.hv.network_exists(name)? {
                bail!("the profile uses the libvirt network {name}, which does not exist on {}", env.hv.uri());
            }
            if !env.hv.network_active(name)? {
                env.hv.start_network(name)?;
            }
            Ok(false)
        }
        NetMode::Bridge => {
            if !env.host.sys().join("class/net").join(name).exists() {
                bail!("the profile uses the host bridge {name}, which does not exist");
            }
            Ok(false)
        }
    }
}

/// Checks done before anything is created: nwfilter present, domain name free or matching.
/// Returns `Some(message)` when the container already exists as asked (a no-op).
pub fn precheck(env: &Env, name: &Name, profile_name: &str, p: &Profile) -> Result<Option<String>> {
    if let Some(f) = &p.network.filter {
        if !env.hv.nwfilter_exists(f)? {
            bail!(
                "the network filter {f} is not defined on {}: install libvirt-daemon-config-nwfilter and restart libvirtd (scripts/setup-host.sh does both). Nothing was created.",
                env.hv.uri()
            );
        }
    }
    let exists = env.hv.domain_exists(name.as_str())?;
    if let (Some(m), false) = (p.security.idmap, exists) {
        if let Some(holder) = systemd_cgroup_holder(&env.host, m.uid.target) {
            bail!(
                "{name} could not start next to {holder}: on this host (cgroup v1, no systemd) libvirt puts every container in one name=systemd cgroup, so systemd containers with different user-namespace maps cannot run side by side. Stop {} first, or give {name} the same idmap. Nothing was created.",
                holder.split(' ').next().unwrap_or("it")
            );
        }
    }
    if exists {
        let d = facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
        let matches = d.meta.as_ref().is_some_and(|m| {
            m.profile == profile_name && m.distro == p.distro && m.security == p.security.model.as_str()
        });
        if matches {
            let state = env.hv.domain_state(name.as_str())?;
            let hint = if state == State::Running {
                "it is running".to_string()
            } else {
                format!("it is shut off; start it with `lxcprov start {name}`")
            };
            return Ok(Some(format!(
                "{name} already exists from profile {profile_name} ({}); nothing to do, {hint}",
                p.distro
            )));
        }
        let what = match &d.meta {
            Some(m) => format!("from profile {} ({}, security {})", m.profile, m.distro, m.security),
            None => "not created by lxcprov".into(),
        };
        bail!(
            "a domain named {name} already exists ({what}); lxcprov never overwrites a domain: pick another name or remove it with `lxcprov destroy {name}`. Nothing was changed."
        );
    }
    Ok(None)
}

/// Shifts the rootfs ownership into the user namespace once, recording it.
pub fn shift_for_idmap(env: &Env, name: &Name, p: &Profile) -> Result<()> {
    let Some(m) = p.security.idmap else { return Ok(()) };
    let path = env.paths.record(name);
    let mut rec = Record::load(&path)?.unwrap_or_else(|| Record { name: name.to_string(), ..Default::default() });
    match rec.idmap {
        Some(done) if done == m => return Ok(()),
        Some(done) => bail!(
            "the root filesystem of {name} is already shifted to uid {} / gid {}, but the profile maps to {} / {}; re-create it (destroy --purge) to change the map",
            done.uid.target, done.gid.target, m.uid.target, m.gid.target
        ),
        None => {}
    }
    env.ui.info(&format!(
        "shifting ownership of {} by +{} (user namespace)",
        env.paths.rootfs(name).display(),
        m.uid.target
    ));
    let n = crate::fsutil::shift_ownership(
        &env.paths.rootfs(name),
        m.uid.target,
        m.gid.target,
        m.uid.count.min(m.gid.count),
    )?;
    rec.idmap = Some(m);
    rec.save(&path)?;
    env.ui.info(&format!("shifted {n} files"));
    Ok(())
}

/// How long the init must stay up after it appears before it counts as running: an init
/// that cannot start (a systemd without the capabilities it needs) exits within this time.
const SETTLE: Duration = Duration::from_millis(1000);

/// On a SELinux host, labels a container's root filesystem: libvirt does not relabel a
/// mounted LXC rootfs, and left at `var_t` the container cannot start in enforcing mode.
/// Dynamic labels get lxc_contexts' `file` context (readable by every container); static
/// labels get the container's own categories (files separated as well as processes).
fn label_tree(env: &Env, rootfs: &Path, static_label: Option<&str>) -> Result<()> {
    if env.labels.enforcing().is_none() {
        return Ok(());
    }
    let path = crate::host::lxc_contexts_path(&env.host.etc());
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("SELinux is on but {} cannot be read: install the policy's container module", path.display())
    })?;
    let label = crate::host::rootfs_label(&text, static_label)
        .with_context(|| format!("{} has no `file` context", path.display()))?;
    env.ui.info(&format!("labelling {} as {label}", rootfs.display()));
    let cmd =
        crate::exec::Cmd::new("chcon").args(["-R", "--no-dereference"]).arg(&label).arg(rootfs.display().to_string());
    env.runner.run(&cmd, &mut |_| {}).map_err(anyhow::Error::new).context("labelling the root filesystem")
}

/// Before a (re)start with a dynamic SELinux label: files the container created during its
/// last run carry that run's categories, which its next run (new categories) could no longer
/// touch; bring the tree back to the shared level first. Static labels keep their level.
fn relabel_before_start(env: &Env, d: &facts::DomainXml) -> Result<()> {
    if d.seclabel_model.as_deref() != Some("selinux") {
        return Ok(());
    }
    let Some(rootfs) = &d.rootfs else { return Ok(()) };
    match d.seclabel_type.as_deref() {
        Some("dynamic") => label_tree(env, rootfs, None),
        Some("static") => label_tree(env, rootfs, d.label.as_deref()),
        _ => Ok(()),
    }
}

/// Waits until libvirt reports the container's init, it exists on the host, and it is still
/// there after a short settling time.
pub fn wait_for_init(env: &Env, name: &str, timeout: Duration) -> Result<u32> {
    let start = Instant::now();
    loop {
        if let Some(pid) = facts::init_pid(&env.run_dir, name) {
            let proc_dir = env.host.proc().join(pid.to_string());
            if proc_dir.exists() {
                let seen = Instant::now();
                while seen.elapsed() < SETTLE && proc_dir.exists() && env.hv.domain_state(name)? == State::Running {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if proc_dir.exists() && env.hv.domain_state(name)? == State::Running {
                    return Ok(pid);
                }
                bail!(
                    "{name} started, but its init (host PID {pid}) exited at once; the container stopped. See /var/log/libvirt/lxc/{name}.log and try `lxcprov console {name}` after `lxcprov start {name}`"
                );
            }
        }
        if env.hv.domain_state(name)? != State::Running {
            bail!("{name} stopped while starting; see /var/log/libvirt/lxc/{name}.log");
        }
        if start.elapsed() > timeout {
            bail!(
                "{name} started but its init did not appear within {}s (see /var/log/libvirt/lxc/{name}.log)",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On a host whose PID 1 is not systemd but which mounts a `name=systemd` cgroup hierarchy
/// (this project's CI machines), libvirt 9.0 puts every container at that hierarchy's root
/// and chowns it to the container's mapped root. A user-namespaced systemd in the container
/// then creates `init.scope` and friends there, owned by its uid, and they stay after it
/// stops: the next container with another map fails with "Failed to create /init.scope
/// control group: Permission denied". Before such a start, remove the empty cgroups that a
/// user-namespaced container left there (owned by a uid >= 65536, no processes). Nothing
/// else is touched; on systemd hosts this does nothing.
pub fn prune_stale_systemd_cgroups(host: &HostRoot) -> usize {
    stale_systemd_cgroups(host).iter().filter(|p| std::fs::remove_dir(p).is_ok()).count()
}

/// The cgroups [`prune_stale_systemd_cgroups`] removes, deepest first: directories under the
/// `name=systemd` root owned by a uid >= 65536 whose `cgroup.procs` is empty and whose
/// subdirectories are all stale too. Empty on systemd hosts.
pub fn stale_systemd_cgroups(host: &HostRoot) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if crate::host::pid1_is_systemd(&host.proc()) {
        return vec![];
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        let mut all_stale = true;
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && !walk(&e.path(), out) {
                all_stale = false;
            }
        }
        let stale = all_stale
            && std::fs::read_to_string(dir.join("cgroup.procs")).map(|s| s.trim().is_empty()).unwrap_or(false)
            && std::fs::metadata(dir).map(|m| m.uid() >= 65536).unwrap_or(false);
        if stale {
            out.push(dir.to_path_buf());
        }
        stale
    }
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(host.sys().join("fs/cgroup/systemd")) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), &mut out);
            }
        }
    }
    out
}

/// On such a host (see [`prune_stale_systemd_cgroups`]), a running user-namespaced
/// container whose map differs from `uid` owns the shared `name=systemd` cgroups, and a
/// systemd started with another map cannot use them. Returns who holds them.
pub fn systemd_cgroup_holder(host: &HostRoot, uid: u32) -> Option<String> {
    if crate::host::pid1_is_systemd(&host.proc()) {
        return None;
    }
    let root = host.sys().join("fs/cgroup/systemd");
    for e in std::fs::read_dir(&root).ok()?.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().map(str::trim).filter(|p| !p.is_empty()) {
            let proc_dir = host.proc().join(pid);
            // The holder's user namespace: the host uid its root maps to.
            let map = std::fs::read_to_string(proc_dir.join("uid_map")).unwrap_or_default();
            let Some(target) =
                map.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            if target == 0 || target == uid {
                continue;
            }
            let cg = std::fs::read_to_string(proc_dir.join("cgroup")).unwrap_or_default();
            let who = crate::audit::container_of(&cg).unwrap_or_else(|| format!("process {pid}"));
            return Some(format!("{who} (user namespace at host uid {target})"));
        }
    }
    None
}

/// Starts a domain, first clearing stale cgroups a user-namespaced container would trip on.
fn start_domain(env: &Env, name: &str) -> Result<()> {
    let d = facts::parse_domain(&env.hv.domain_xml(name)?)?;
    relabel_before_start(env, &d)?;
    if let Some(m) = d.idmap {
        let n = prune_stale_systemd_cgroups(&env.host);
        if n > 0 {
            env.ui.info(&format!("removed {n} stale cgroups left by earlier user-namespaced containers"));
        }
        if let Some(holder) = systemd_cgroup_holder(&env.host, m.uid.target) {
            bail!(
                "{name} cannot start next to {holder}: on this host (cgroup v1, no systemd) libvirt puts every container in one name=systemd cgroup, so systemd containers with different user-namespace maps cannot run side by side. Stop {holder_name} first, or give {name} the same idmap",
                holder_name = holder.split(' ').next().unwrap_or("it")
            );
        }
    }
    env.hv.start_domain(name)
}

/// Inputs to `create` beyond the environment.
pub struct CreateInput<'a> {
    pub name: &'a Name,
    pub profile_name: &'a str,
    pub profile: &'a Profile,
    pub domain_xml: &'a str,
    pub network_xml: &'a str,
    /// Runs the bootstrap (returns after the rootfs is in place).
    pub bootstrap: &'a dyn Fn() -> Result<()>,
    /// Bootstrap even if a rootfs exists (`--force`).
    pub force: bool,
}

/// Creates, starts and verifies a container. On failure, undoes what this run created.
pub fn create(env: &Env, input: &CreateInput) -> Result<Option<Report>> {
    let name = input.name;
    if let Some(msg) = precheck(env, name, input.profile_name, input.profile)? {
        env.ui.info(&msg);
        // Show where it stands, as a first run would.
        if env.hv.domain_state(name.as_str())? == State::Running {
            return verify_domain(env, name.as_str()).map(Some);
        }
        return Ok(None);
    }
    let mut created: Vec<Created> = vec![];
    let result = create_steps(env, input, &mut created);
    match result {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            let mut undone = vec![];
            for c in created.iter().rev() {
                let r = match c {
                    Created::Domain(d) => {
                        if env.hv.domain_state(d).ok() == Some(State::Running) {
                            let _ = env.hv.destroy_domain(d);
                        }
                        env.hv.undefine_domain(d).map(|_| format!("domain {d}"))
                    }
                    Created::Network(n) => env.hv.remove_network(n).map(|_| format!("network {n}")),
                    Created::Rootfs(p) => {
                        let r = crate::fsutil::remove_tree(p).map(|_| format!("root filesystem {}", p.display()));
                        let _ = std::fs::remove_file(env.paths.record(name));
                        r
                    }
                };
                match r {
                    Ok(s) => undone.push(s),
                    Err(u) => env.ui.warn(&format!("could not undo {c:?}: {u:#}")),
                }
            }
            let what = if undone.is_empty() {
                "nothing had been created".to_string()
            } else {
                format!("removed what this run created: {}", undone.join(", "))
            };
            Err(e.context(format!("creating {name} failed; {what}")))
        }
    }
}

fn create_steps(env: &Env, input: &CreateInput, created: &mut Vec<Created>) -> Result<Report> {
    let name = input.name;
    let rootfs = env.paths.rootfs(name);
    let record = Record::load(&env.paths.record(name))?;
    let reuse = rootfs.exists()
        && !input.force
        && record.as_ref().is_some_and(|r| r.profile == input.profile_name && r.distro == input.profile.distro);
    if reuse {
        env.ui.info(&format!("reusing the root filesystem {} bootstrapped earlier by lxcprov", rootfs.display()));
    } else {
        if rootfs.exists() && !input.force {
            bail!(
                "{} exists but was not bootstrapped by lxcprov for profile {} ({}); lxcprov never overwrites it without --force",
                rootfs.display(), input.profile_name, input.profile.distro
            );
        }
        (input.bootstrap)()?;
        created.push(Created::Rootfs(rootfs.clone()));
    }
    crate::interrupt::check()?;
    shift_for_idmap(env, name, input.profile)?;
    if ensure_network(env, input.profile, input.network_xml)? {
        created.push(Created::Network(input.profile.network.name.clone()));
    }
    env.ui.info(&format!("defining domain {name} on {}", env.hv.uri()));
    env.hv.define_domain(input.domain_xml)?;
    created.push(Created::Domain(name.to_string()));
    crate::interrupt::check()?;
    start_domain(env, name.as_str())?;
    let pid = wait_for_init(env, name.as_str(), Duration::from_secs(15))?;
    env.ui.info(&format!("{name} is running; its init is PID {pid} on the host"));
    verify_domain(env, name.as_str())
}

/// The capabilities the profile turns off (what `caps` must find absent).
pub fn dropped_caps(p: &Profile) -> Vec<String> {
    let mut v: Vec<String> =
        p.security.capabilities.set.iter().filter(|(_, s)| **s == CapState::Off).map(|(n, _)| n.clone()).collect();
    if p.security.capabilities.policy == crate::profile::CapPolicy::Default {
        // libvirt's default policy drops these as well.
        for c in ["sys_module", "sys_time", "mknod", "audit_control", "mac_admin"] {
            if p.security.capabilities.set.get(c) != Some(&CapState::On) {
                v.push(c.to_string());
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Builds the verifier's inputs from the live domain and lxcprov's record, and runs it.
pub fn verify_domain(env: &Env, name: &str) -> Result<Report> {
    let xml = env.hv.domain_xml(name)?;
    let d = facts::parse_domain(&xml)?;
    let running = env.hv.domain_state(name)? == State::Running;
    let init_pid = if running { facts::init_pid(&env.run_dir, name) } else { None };
    let record = Name::parse(name).ok().and_then(|n| Record::load(&env.paths.record(&n)).ok().flatten());
    // The user namespace lxcprov shifted the rootfs for; the live XML's for foreign domains.
    let expected_idmap = match &record {
        Some(r) => r.idmap,
        None => d.idmap,
    };
    // What was asked for: lxcprov's metadata for its own domains (so a domain that lost its
    // <seclabel> fails instead of skipping), the live seclabel for foreign ones.
    let asked = match &d.meta {
        Some(m) => Some(m.security.as_str()),
        None if d.seclabel_type.as_deref() == Some("none") => Some("none"),
        None => d.seclabel_model.as_deref(),
    };
    let security = match asked {
        Some("selinux") => SecModel::Selinux,
        Some("apparmor") => SecModel::Apparmor,
        _ => SecModel::None,
    };
    // The expectations come from the domain itself: the caps it turns off, its idmap.
    let dropped = dropped_caps_from_xml(&xml);
    let mut interfaces = vec![];
    for i in &d.interfaces {
        let expected_bridge = match (&i.bridge, &i.network) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(n)) => env.hv.network_bridge(n).ok(),
            _ => None,
        };
        interfaces.push(Iface { target_dev: i.dev.clone(), expected_bridge });
    }
    let facts = DomainFacts {
        name: name.to_string(),
        init_pid,
        seclabel: d.seclabel_type.as_ref().map(|t| SecLabel {
            model: d.seclabel_model.clone().unwrap_or_else(|| "none".into()),
            kind: t.clone(),
            label: d.label.clone(),
            imagelabel: d.imagelabel.clone(),
        }),
        interfaces,
        idmap: d.idmap,
        rootfs: d.rootfs.clone().unwrap_or_default(),
        memory_limit_kib: d.memory_limit_kib,
        cpu_shares: d.cpu_shares,
        cpu_period: d.cpu_period,
        cpu_quota: d.cpu_quota,
        blkio_weight: d.blkio_weight,
    };
    let expect = Expect {
        security,
        dropped_caps: dropped,
        idmap: expected_idmap,
        gpgcheck: record.map(|r| r.gpgcheck),
        secmodel: env.hv.secmodel().ok(),
    };
    let checks = verify::run_all(&env.host, &facts, &expect, env.labels);
    Ok(Report { name: name.to_string(), checks })
}

/// Capabilities a domain turns off, from its `<features><capabilities>`, plus libvirt's
/// default drops under the default policy.
pub fn dropped_caps_from_xml(xml: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else { return vec![] };
    let Some(caps) = doc
        .descendants()
        .find(|n| n.has_tag_name("capabilities") && n.parent().is_some_and(|p| p.has_tag_name("features")))
    else {
        return vec![];
    };
    let policy = caps.attribute("policy").unwrap_or("default");
    let mut off: Vec<String> = caps
        .children()
        .filter(|c| c.is_element() && c.attribute("state") == Some("off"))
        .map(|c| c.tag_name().name().to_string())
        .collect();
    let on: Vec<String> = caps
        .children()
        .filter(|c| c.is_element() && c.attribute("state") == Some("on"))
        .map(|c| c.tag_name().name().to_string())
        .collect();
    if policy == "default" {
        for c in ["sys_module", "sys_time", "mknod", "audit_control", "mac_admin"] {
            if !on.iter().any(|o| o == c) {
                off.push(c.to_string());
            }
        }
    }
    off.sort();
    off.dedup();
    off
}

/// One row of `list`.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub state: State,
    pub profile: Option<String>,
    pub label: Option<String>,
    pub vnet: Option<String>,
    pub init_pid: Option<u32>,
}

/// Every domain on the connection, with what the live state says.
pub fn list(env: &Env) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for name in env.hv.domains()? {
        let Ok(xml) = env.hv.domain_xml(&name) else { continue };
        let d: DomainXml = facts::parse_domain(&xml).unwrap_or_default();
        let state = env.hv.domain_state(&name).unwrap_or(State::Other);
        let label = d.label.clone().or_else(|| d.seclabel_type.clone().map(|t| format!("({t})")));
        rows.push(Row {
            init_pid: if state == State::Running { facts::init_pid(&env.run_dir, &name) } else { None },
            vnet: d.interfaces.iter().find_map(|i| i.dev.clone()),
            profile: d.meta.map(|m| m.profile),
            label,
            state,
            name,
        });
    }
    Ok(rows)
}

pub fn start(env: &Env, name: &str) -> Result<u32> {
    if !env.hv.domain_exists(name)? {
        bail!("no container named {name} on {}", env.hv.uri());
    }
    if env.hv.domain_state(name)? == State::Running {
        bail!("{name} is already running");
    }
    start_domain(env, name)?;
    wait_for_init(env, name, Duration::from_secs(15))
}

/// Graceful shutdown, then destroy after `timeout`. Returns true when it had to force.
pub fn stop(env: &Env, name: &str, timeout: Duration) -> Result<bool> {
    if !env.hv.domain_exists(name)? {
        bail!("no container named {name} on {}", env.hv.uri());
    }
    if env.hv.domain_state(name)? != State::Running {
        env.ui.info(&format!("{name} is not running"));
        return Ok(false);
    }
    if let Err(e) = env.hv.shutdown_domain(name) {
        env.ui.warn(&format!("graceful shutdown request failed ({e:#}); forcing it off"));
    } else {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if env.hv.domain_state(name)? != State::Running {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        env.ui.warn(&format!("{name} did not shut down within {}s; forcing it off", timeout.as_secs()));
    }
    env.hv.destroy_domain(name)?;
    Ok(true)
}

/// Is this network one lxcprov defined (its metadata says so)?
fn network_is_ours(env: &Env, net: &str) -> bool {
    env.hv.network_xml(net).is_ok_and(|x| x.contains(crate::render::NAMESPACE) && x.contains("created-by"))
}

/// Removes a container: stops it, undefines it, removes the network lxcprov defined for it
/// when no other domain uses that network, and with `purge` its root filesystem (only if it
/// is lxcprov's own `POOL/NAME`).
pub fn destroy(env: &Env, name: &Name, purge: bool) -> Result<Vec<String>> {
    let mut done = vec![];
    let rootfs = env.paths.rootfs(name);
    let exists = env.hv.domain_exists(name.as_str())?;
    if !exists && (!purge || !rootfs.exists()) {
        bail!("no container named {name} on {}", env.hv.uri());
    }
    let mut networks = vec![];
    if exists {
        let d = facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
        if purge {
            if let Some(r) = &d.rootfs {
                if r != &rootfs {
                    bail!(
                        "{name}'s root filesystem is {}, not lxcprov's {}; --purge deletes only lxcprov's own trees. Nothing was changed.",
                        r.display(), rootfs.display()
                    );
                }
            }
        }
        networks = d.interfaces.iter().filter_map(|i| i.network.clone()).collect();
        if env.hv.domain_state(name.as_str())? == State::Running {
            env.hv.destroy_domain(name.as_str())?;
            done.push(format!("stopped {name}"));
        }
        env.hv.undefine_domain(name.as_str())?;
        done.push(format!("undefined domain {name}"));
    }
    for net in networks {
        if !network_is_ours(env, &net) {
            continue;
        }
        let in_use = env.hv.domains()?.iter().any(|other| {
            env.hv
                .domain_xml(other)
                .ok()
                .and_then(|x| facts::parse_domain(&x).ok())
                .is_some_and(|d| d.interfaces.iter().any(|i| i.network.as_deref() == Some(net.as_str())))
        });
        if !in_use {
            env.hv.remove_network(&net)?;
            done.push(format!("removed network {net} (no other domain uses it)"));
        }
    }
    if purge {
        if rootfs.exists() {
            crate::fsutil::remove_tree(&rootfs)?;
            done.push(format!("deleted {}", rootfs.display()));
        }
        let rec = env.paths.record(name);
        if rec.exists() {
            std::fs::remove_file(&rec)?;
        }
    }
    Ok(done)
}

/// Rebuilds a container (paper 4.2): a fresh root filesystem from `plan`, built beside the
/// running one, then swapped in while the container is stopped; same name, domain, network,
/// label policy and idmap (the new tree is shifted and labelled again), same root password.
/// If anything after the swap fails, the old tree is put back and the container restarted.
pub fn rebuild(env: &Env, plan: &bootstrap::Plan, p: &Profile) -> Result<Report> {
    let name = &plan.name;
    if !env.hv.domain_exists(name.as_str())? {
        bail!("no container named {name} on {}", env.hv.uri());
    }
    let rootfs = env.paths.rootfs(name);
    let hash = bootstrap::root_hash(&rootfs)
        .with_context(|| format!("{} has no root password hash to carry over", rootfs.display()))?;
    bootstrap::build(plan, env.runner, &hash, env.ui)?;
    let was_running = env.hv.domain_state(name.as_str())? == State::Running;
    if was_running {
        stop(env, name.as_str(), Duration::from_secs(30))?;
    }
    let old = env.paths.old(name);
    crate::fsutil::remove_tree(&old)?;
    std::fs::rename(&rootfs, &old).with_context(|| format!("moving {} aside", rootfs.display()))?;
    std::fs::rename(&plan.partial, &rootfs).with_context(|| format!("moving the new tree to {}", rootfs.display()))?;
    let record_path = env.paths.record(name);
    let old_record = Record::load(&record_path)?;
    let attempt = (|| -> Result<Report> {
        bootstrap::record_for(plan).save(&record_path)?;
        shift_for_idmap(env, name, p)?;
        start_domain(env, name.as_str())?;
        wait_for_init(env, name.as_str(), Duration::from_secs(15))?;
        verify_domain(env, name.as_str())
    })();
    match attempt {
        Ok(r) => {
            crate::fsutil::remove_tree(&old)?;
            Ok(r)
        }
        Err(e) => {
            if env.hv.domain_state(name.as_str()).ok() == Some(State::Running) {
                let _ = env.hv.destroy_domain(name.as_str());
            }
            let failed = env.paths.pool.join(format!(".{name}.failed"));
            let restore = (|| -> Result<()> {
                crate::fsutil::remove_tree(&failed)?;
                std::fs::rename(&rootfs, &failed)?;
                std::fs::rename(&old, &rootfs)?;
                match &old_record {
                    Some(r) => r.save(&record_path)?,
                    None => {
                        let _ = std::fs::remove_file(&record_path);
                    }
                }
                crate::fsutil::remove_tree(&failed)?;
                if was_running {
                    start_domain(env, name.as_str())?;
                    wait_for_init(env, name.as_str(), Duration::from_secs(15))?;
                }
                Ok(())
            })();
            match restore {
                Ok(()) => Err(e.context(format!(
                    "rebuilding {name} failed; the old root filesystem was kept{}",
                    if was_running { " and the container restarted on it" } else { "" }
                ))),
                Err(r) => Err(e.context(format!("rebuilding {name} failed, and restoring the old root filesystem failed too ({r:#}); the old tree is at {}", old.display()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::RecordingRunner;
    use crate::libvirt::FakeHypervisor;
    use crate::output::Verbosity;

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
        crate::profile::parse(
            "security: {model: none, label: none}\nnetwork: {mode: isolated, name: lxcprov-test}\n",
            "t",
        )
        .unwrap()
    }

    /// Paths under a tempdir, a recording runner and a quiet UI, for an [`Env`].
    struct Harness {
        root: PathBuf,
        runner: RecordingRunner,
        paths: Paths,
        ui: Ui,
    }

    impl Harness {
        fn new(d: &tempfile::TempDir) -> Harness {
            let root = d.path().to_path_buf();
            let paths = Paths { pool: root.join("pool"), cache: root.join("cache"), state: root.join("state") };
            Harness { root, runner: RecordingRunner::new(), paths, ui: Ui::new(Verbosity::Quiet) }
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

    const DOMAIN: &str = "<domain type='lxc'><name>c1</name><metadata><lxcprov:container xmlns:lxcprov='https://github.com/lxcprov/lxcprov/xmlns/1' profile='p' distro='debian12' release='12' version='0' security='none'/></metadata><devices><interface type='network'><source network='lxcprov-test'/></interface></devices></domain>";
    const NETWORK: &str = "<network><name>lxcprov-test</name><metadata><lxcprov:network xmlns:lxcprov='https://github.com/lxcprov/lxcprov/xmlns/1' created-by='lxcprov' version='0'/></metadata></network>";

    #[test]
    fn failed_start_rolls_back_what_this_run_created() {
        let d = tempfile::tempdir().unwrap();
        let hv = FakeHypervisor { fail_start: true, ..Default::default() };
        let h = Harness::new(&d);
        let e = h.env(&hv);
        let paths = &h.paths;
        let name = Name::parse("c1").unwrap();
        let p = profile();
        let rootfs = paths.rootfs(&name);
        let boot = || -> Result<()> {
            std::fs::create_dir_all(rootfs.join("etc"))?;
            Ok(())
        };
        let input = CreateInput {
            name: &name,
            profile_name: "p",
            profile: &p,
            domain_xml: DOMAIN,
            network_xml: NETWORK,
            bootstrap: &boot,
            force: false,
        };
        let err = format!("{:#}", create(&e, &input).unwrap_err());
        assert!(err.contains("fake start failure") && err.contains("removed what this run created"), "{err}");
        assert!(hv.domains.lock().unwrap().is_empty());
        assert!(hv.networks.lock().unwrap().is_empty());
        assert!(!rootfs.exists());
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
        let name = Name::parse("c1").unwrap();
        let p = profile();
        let boot = || -> Result<()> { panic!("must not bootstrap") };
        let input = CreateInput {
            name: &name,
            profile_name: "p",
            profile: &p,
            domain_xml: DOMAIN,
            network_xml: NETWORK,
            bootstrap: &boot,
            force: false,
        };
        let err = format!("{:#}", create(&e, &input).unwrap_err());
        assert!(err.contains("already exists (not created by lxcprov)"), "{err}");
        assert!(hv.domain_exists("c1").unwrap());
        assert!(hv.network_exists("lxcprov-test").unwrap());
    }

    #[test]
    fn rerun_of_a_matching_container_is_a_noop() {
        let d = tempfile::tempdir().unwrap();
        let hv = FakeHypervisor::default();
        hv.define_domain(DOMAIN).unwrap();
        let h = Harness::new(&d);
        let e = h.env(&hv);
        let name = Name::parse("c1").unwrap();
        let p = profile();
        let boot = || -> Result<()> { panic!("must not bootstrap") };
        let input = CreateInput {
            name: &name,
            profile_name: "p",
            profile: &p,
            domain_xml: DOMAIN,
            network_xml: NETWORK,
            bootstrap: &boot,
            force: false,
        };
        assert!(create(&e, &input).unwrap().is_none(), "shut off: no report");
        assert_eq!(hv.log.lock().unwrap().len(), 1, "only the test's own define");
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
}
