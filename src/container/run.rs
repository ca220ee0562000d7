//! Running containers: start (relabel, cgroup housekeeping, wait for init), stop.

use super::cgroupv1::{prune_stale_systemd_cgroups, systemd_cgroup_holder};
use super::Env;
use crate::facts;
use crate::libvirt::State;
use crate::name::Name;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the init must stay up after it appears before it counts as running: an init
/// that cannot start (a systemd without the capabilities it needs) exits within this time.
const SETTLE: Duration = Duration::from_millis(1000);

/// How long an init must stay alive with children once they are seen: its children are the
/// evidence that it got past its own setup (a systemd that cannot set up its cgroups or
/// lacks capabilities dies before it forks), and this short confirmation catches an init
/// that forks and dies at once. A systemd must also answer (its private socket exists).
/// `verify`, which runs next, reads it alive again.
const EVIDENCE_CONFIRM: Duration = Duration::from_millis(20);

/// Is the process alive: its `/proc` directory there and not a zombie (an init that died,
/// not yet reaped by libvirt's controller, still has one).
fn alive(proc_dir: &Path) -> bool {
    proc_dir.exists() && !crate::verify::procfs::is_zombie(proc_dir)
}

/// A systemd init answers `systemctl` once its private socket exists, read through the
/// container's own root (`/proc/PID/root/run/systemd/private`); other inits: always true.
/// So a container that `create` calls running can be asked its state at once.
fn systemd_answers(proc_dir: &Path) -> bool {
    let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    comm.trim() != "systemd" || proc_dir.join("root/run/systemd/private").exists()
}

/// Has the init started a child? (`/proc/PID/task/PID/children`.)
fn has_children(proc_dir: &Path, pid: u32) -> bool {
    std::fs::read_to_string(proc_dir.join("task").join(pid.to_string()).join("children"))
        .is_ok_and(|s| !s.trim().is_empty())
}

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
pub(super) fn relabel_before_start(env: &Env, d: &facts::DomainXml) -> Result<()> {
    let Some(sec) = d.seclabel.as_ref().filter(|s| s.model == "selinux") else {
        return Ok(());
    };
    // The seccomp shim directory: the shared container file context, so the confined init
    // can execute the shim and read its filter (read-only to every container anyway).
    if let Some(dir) = &d.seccomp_dir {
        label_tree(env, dir, None)?;
    }
    let Some(rootfs) = &d.rootfs else { return Ok(()) };
    if env.labels.enforcing().is_some() && is_overlay_root(rootfs)? {
        return overlay_labelled_at_start(&d.name);
    }
    match sec.kind.as_str() {
        "dynamic" => label_tree(env, rootfs, None),
        "static" => label_tree(env, rootfs, sec.label.as_deref()),
        _ => Ok(()),
    }
}

/// Is `rootfs` (`POOL/NAME`) an overlay container's mount point (it has a layer)?
fn is_overlay_root(rootfs: &Path) -> Result<bool> {
    let (Some(pool), Some(name)) = (rootfs.parent(), rootfs.file_name().and_then(|n| n.to_str())) else {
        return Ok(false);
    };
    Ok(crate::storage::existing(pool, name)?.is_some())
}

/// An overlay container is never relabelled by a walk: `chcon -R` through the overlay would
/// copy every file of the shared base up into its layer. lxcprov's libvirt hook labels it
/// at `start` instead, by mounting it with `context=` its image label (libvirt chooses a
/// dynamic label only after `prepare`, so only the hook can). Without the hook the
/// container would see its base's host labels and could not start in enforcing mode.
fn overlay_labelled_at_start(name: &str) -> Result<()> {
    let hook = Path::new(crate::storage::hook::HOOK_PATH);
    match crate::storage::hook::status(hook) {
        crate::storage::hook::Status::Current(_) => Ok(()),
        s => bail!(
            "{name} has overlay storage, which lxcprov labels under SELinux when libvirt starts it (its libvirt hook mounts the root with context= the container's image label), but the hook {} is {}: run `lxcprov hook install`, then restart libvirtd",
            hook.display(),
            s.describe()
        ),
    }
}

/// How many times [`wait_for_init`] starts a domain again whose monitor libvirt lost.
const MONITOR_RESTARTS: u32 = 3;

/// How long the lost monitor must stay lost before it counts (two reads of the socket table).
const MONITOR_CONFIRM: Duration = Duration::from_millis(200);

/// libvirt 9.0's LXC driver lost its monitor connection to the container's controller
/// before it learned the init's PID (see [`monitor_lost`]); the domain is a husk.
#[derive(Debug)]
pub struct MonitorLost(pub String);

impl std::fmt::Display for MonitorLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "libvirt lost its monitor connection to {}'s controller, or its one \"init started\" event, before it learned the init's PID (a race in libvirt's LXC driver: the event arrived before libvirtd listened for it); libvirt would never see this container's init or its end",
            self.0
        )
    }
}

impl std::error::Error for MonitorLost {}

/// The controller's monitor socket in `/proc/net/unix` text: (a listener is bound at
/// `sock`, how many connections to it exist). A connection accepted by the controller (or
/// still queued on its listener) is listed with the listener's path, state 03 (connected).
fn monitor_sockets(net_unix: &str, sock: &Path) -> (bool, usize) {
    let want = sock.display().to_string();
    let (mut listening, mut connected) = (false, 0);
    // Num RefCount Protocol Flags Type St Inode Path
    for f in net_unix.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()) {
        if f.len() < 8 || f[7] != want {
            continue;
        }
        match f[5] {
            "03" => connected += 1,
            _ if u32::from_str_radix(f[3], 16).is_ok_and(|fl| fl & 0x0001_0000 != 0) => listening = true,
            _ => {}
        }
    }
    (listening, connected)
}

/// libvirt 9.0 (`virLXCMonitorNew`) registers its monitor client with the event loop before
/// it adds the monitor's event program. The controller sends the init's PID once, to its
/// first client, as soon as it accepts it; when that message is read in the window between
/// the two (more likely on a busy host, such as one where other containers run and start),
/// libvirtd drops it ("No program found for event"), closes the connection, and has no
/// close callback yet to tell it. The domain then stays "running" with `<init pid='0'/>`,
/// its controller and init alive but unheard: libvirt never learns the init, nor its end.
/// Seen here as: running, no init PID in libvirt's status, the controller still listening
/// on `RUN/NAME.sock`, and no connection to it (libvirtd's monitor is always connected
/// once the start returned). Unknown (false) when the socket table does not show it.
pub fn monitor_lost(env: &Env, name: &Name) -> bool {
    if facts::init_pid(&env.run_dir, name.as_str()).is_some_and(|p| p != 0) {
        return false;
    }
    let text = std::fs::read_to_string(env.host.proc().join("net/unix")).unwrap_or_default();
    let (listening, connected) = monitor_sockets(&text, &env.run_dir.join(format!("{name}.sock")));
    listening && connected == 0
}

/// Is the container's controller listening on its monitor socket (`RUN/NAME.sock`)?
fn controller_listening(env: &Env, name: &Name) -> bool {
    let text = std::fs::read_to_string(env.host.proc().join("net/unix")).unwrap_or_default();
    monitor_sockets(&text, &env.run_dir.join(format!("{name}.sock"))).0
}

/// How long a start may go on with no init known and no controller listening before it
/// counts as lost too (the controller went away with the monitor: seen once in CI as
/// "init did not appear" with libvirt's controller log ending in "End of file").
const CONTROLLER_GONE: Duration = Duration::from_secs(5);

/// Waits until libvirt reports the container's init, it exists on the host, and it is still
/// there after a short settling time. A start whose monitor libvirt lost ([`monitor_lost`])
/// is forced off and started again, at most [`MONITOR_RESTARTS`] times: the caller has just
/// started the domain ([`start_domain`]) and nothing has run in it that a restart loses.
pub fn wait_for_init(env: &Env, name: &Name, timeout: Duration) -> Result<u32> {
    let mut restarts = 0;
    loop {
        match wait_for_init_once(env, name, timeout) {
            Err(e) if restarts < MONITOR_RESTARTS && e.is::<MonitorLost>() => {
                restarts += 1;
                env.ui.warn(&format!("{e}; forcing it off and starting it again ({restarts} of {MONITOR_RESTARTS})"));
                if env.hv.domain_state(name.as_str())? == State::Running {
                    env.hv.destroy_domain(name.as_str())?;
                }
                start_domain(env, name)?;
            }
            r => return r,
        }
    }
}

fn wait_for_init_once(env: &Env, name: &Name, timeout: Duration) -> Result<u32> {
    let start = Instant::now();
    let mut lost_since: Option<Instant> = None;
    let mut gone_since: Option<Instant> = None;
    loop {
        crate::interrupt::check()?;
        if let Some(pid) = facts::init_pid(&env.run_dir, name.as_str()).filter(|p| *p != 0) {
            let proc_dir = env.host.proc().join(pid.to_string());
            if proc_dir.exists() {
                // Ready on evidence, not after a fixed second: the init is alive and has started
                // its first children (an init that cannot start, such as a systemd without the
                // capabilities it needs, exits before it forks). An init without children
                // counts once it has stayed up for SETTLE.
                let seen = Instant::now();
                let mut children_since: Option<Instant> = None;
                while seen.elapsed() < SETTLE
                    && alive(&proc_dir)
                    && env.hv.domain_state(name.as_str())? == State::Running
                {
                    crate::interrupt::check()?;
                    // Forked once is evidence enough (systemd's first helpers come and go).
                    if children_since.is_none() && has_children(&proc_dir, pid) {
                        children_since = Some(Instant::now());
                    }
                    if children_since.is_some_and(|t| t.elapsed() >= EVIDENCE_CONFIRM) && systemd_answers(&proc_dir) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                if alive(&proc_dir) && env.hv.domain_state(name.as_str())? == State::Running {
                    return Ok(pid);
                }
                bail!(
                    "{name} started, but its init (host PID {pid}) exited at once; the container stopped. See /var/log/libvirt/lxc/{name}.log and try `lxcprov console {name}` after `lxcprov start {name}`"
                );
            }
        }
        if env.hv.domain_state(name.as_str())? != State::Running {
            bail!("{name} stopped while starting; see /var/log/libvirt/lxc/{name}.log");
        }
        // Lost for good once it has stayed lost (and the domain running) a moment.
        if monitor_lost(env, name) {
            let t = *lost_since.get_or_insert_with(Instant::now);
            if t.elapsed() >= MONITOR_CONFIRM {
                return Err(anyhow::Error::new(MonitorLost(name.to_string())));
            }
        } else {
            lost_since = None;
        }
        // No init known and nobody listening for the controller's events: the controller is
        // gone (or never came), and libvirt will not learn an init either.
        if facts::init_pid(&env.run_dir, name.as_str()).is_none_or(|p| p == 0) && !controller_listening(env, name) {
            let t = *gone_since.get_or_insert_with(Instant::now);
            if t.elapsed() >= CONTROLLER_GONE && env.host.proc().join("net/unix").is_file() {
                return Err(anyhow::Error::new(MonitorLost(name.to_string())));
            }
        } else {
            gone_since = None;
        }
        if start.elapsed() > timeout {
            // Still running, and libvirt never learned its init: the controller's one "init
            // started" event was lost even with the monitor connected (seen in CI in a copy
            // rebuild: no error in the controller's log, `<init pid='0'/>` for 15 s). Nothing
            // has run in it that a restart loses.
            // Or it learned an init that is gone (it died while the monitor was lost, and
            // libvirt, not hearing of it, keeps the domain "running").
            let init_alive = facts::init_pid(&env.run_dir, name.as_str())
                .filter(|p| *p != 0)
                .is_some_and(|p| env.host.proc().join(p.to_string()).exists());
            if !init_alive && env.hv.domain_state(name.as_str())? == State::Running {
                return Err(anyhow::Error::new(MonitorLost(name.to_string())));
            }
            bail!(
                "{name} started but its init did not appear within {}s (see /var/log/libvirt/lxc/{name}.log)",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a domain, first clearing stale cgroups a user-namespaced container would trip on.
pub fn start_domain(env: &Env, name: &Name) -> Result<()> {
    let d = facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    relabel_before_start(env, &d)?;
    if let Some(m) = d.idmap {
        // The pool is root's (0700): only this container's root uid may pass through it.
        if let Some(pool) = d.rootfs.as_deref().and_then(Path::parent) {
            if pool == env.paths.pool {
                crate::fsutil::grant_traverse(pool, m.uid.target)?;
            }
        }
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
    ensure_overlay(env, name, &d)?;
    Ok(env.hv.start_domain(name.as_str())?)
}

/// An overlay container's root is mounted before libvirt starts it. The libvirt hook does
/// the same at `prepare` (for `virsh start` and autostart); doing it here too keeps
/// `lxcprov start` working on a host where the hook is missing.
pub fn ensure_overlay(env: &Env, name: &Name, d: &facts::DomainXml) -> Result<()> {
    if d.rootfs.as_deref() != Some(env.paths.rootfs(name).as_path()) {
        return Ok(());
    }
    let layout = crate::storage::Layout::of_container(&env.paths.pool, name)?;
    if layout.driver().mount(env.runner)? {
        env.ui.info(&format!("mounted {name}'s overlay at {}", layout.driver().target().display()));
    }
    Ok(())
}

/// Forces a running container off, fast: SIGKILL to its init ends its PID namespace at once,
/// and libvirt sees the container stop; libvirt's own destroy first sends SIGTERM and waits
/// about 2 s for an init that ignores it (systemd does). libvirt's destroy still runs if the
/// domain is up after that. Only on the real host (never a fixture's `/proc`), and only a
/// PID that is a namespace's init.
pub fn force_off(env: &Env, name: &Name) -> Result<()> {
    kill_init(env, name)?;
    if env.hv.domain_state(name.as_str())? == State::Running {
        env.hv.destroy_domain(name.as_str())?;
    }
    Ok(())
}

/// The first half of [`force_off`]: SIGKILL to the container's init, then a wait (at most
/// 3 s) for libvirt to see it stop. The caller destroys it if it still runs.
pub fn kill_init(env: &Env, name: &Name) -> Result<()> {
    if signal_init(env, name) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) && env.hv.domain_state(name.as_str())? == State::Running {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// SIGKILL to the container's init without waiting (`lab down` signals every student's
/// first); true when it was sent.
pub fn signal_init(env: &Env, name: &Name) -> bool {
    let real = env.host.proc() == Path::new("/proc");
    if let (true, Some(pid)) = (real, facts::init_pid(&env.run_dir, name.as_str())) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ns_init = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|f| f.split_whitespace().count() > 1 && f.split_whitespace().last() == Some("1"));
        if ns_init {
            // SAFETY: kill has no memory preconditions; pid is this container's init.
            return unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0;
        }
    }
    false
}

/// How long a started container's init has to appear.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts a defined domain ([`start_domain`]) and waits for evidence that its init runs
/// ([`wait_for_init`]); the init's host PID. The one way lxcprov starts a container.
pub fn start_and_wait(env: &Env, name: &Name) -> Result<u32> {
    start_domain(env, name)?;
    let pid = wait_for_init(env, name, START_TIMEOUT)?;
    bound_processes(env, name, pid)?;
    Ok(pid)
}

/// Applies the container's process limit (`pids_max`, in its metadata) to its running
/// processes; the libvirt hook does the same at a `virsh start`.
pub fn bound_processes(env: &Env, name: &Name, init_pid: u32) -> Result<()> {
    let Some(max) = env.container(name)?.domain.meta.as_ref().and_then(|m| m.pids) else { return Ok(()) };
    let tree = crate::cgroups::Tree::of(&env.host);
    crate::cgroups::forget_pids(&tree, name);
    crate::cgroups::apply_pids(&tree, env.runner, &env.host.proc(), init_pid, max)
        .with_context(|| format!("bounding the processes of {name} to {max} (pids_max)"))?;
    Ok(())
}

pub fn start(env: &Env, name: &Name) -> Result<u32> {
    if !env.hv.domain_exists(name.as_str())? {
        return Err(env.not_found(name.as_str()));
    }
    if env.hv.domain_state(name.as_str())? == State::Running {
        bail!("{name} is already running");
    }
    start_and_wait(env, name)
}

/// Graceful shutdown, then destroy after `timeout`. Returns true when it had to force.
pub fn stop(env: &Env, name: &Name, timeout: Duration) -> Result<bool> {
    if !env.hv.domain_exists(name.as_str())? {
        return Err(env.not_found(name.as_str()));
    }
    if env.hv.domain_state(name.as_str())? != State::Running {
        env.ui.info(&format!("{name} is not running"));
        return Ok(false);
    }
    if let Err(e) = env.hv.shutdown_domain(name.as_str()) {
        env.ui.warn(&format!("graceful shutdown request failed ({e:#}); forcing it off"));
    } else {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if env.hv.domain_state(name.as_str())? != State::Running {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        env.ui.warn(&format!("{name} did not shut down within {}s; forcing it off", timeout.as_secs()));
    }
    env.hv.destroy_domain(name.as_str())?;
    Ok(true)
}
