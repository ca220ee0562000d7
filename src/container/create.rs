//! Creating a container: prechecks, bootstrap, id shift, network, define, start, verify,
//! run as the steps of one plan, with everything this run created undone on failure.

use super::cgroupv1::systemd_cgroup_holder;
use super::inspect::verify_domain;
use super::run::start_and_wait;
use super::Env;
use crate::bootstrap;
use crate::facts;
use crate::libvirt::State;
use crate::name::Name;
use crate::password::Secret;
use crate::paths::Paths;
use crate::plan::{Action, Step};
use crate::profile::{NetMode, Profile};
use crate::revert::{Revert, Undone};
use crate::spec::Spec;
use crate::state::Record;
use crate::verify::Report;
use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::path::PathBuf;

/// Makes sure the profile's network exists and is active. Returns true when this call
/// defined it.
pub fn ensure_network(env: &Env, p: &Profile, network_xml: &str) -> Result<bool> {
    let name = &p.network.name;
    match p.network.mode {
        NetMode::Isolated => {
            let mut defined = false;
            if !env.hv.network_exists(name)? {
                env.ui.info(&format!("defining isolated network {name}"));
                match env.hv.define_network(network_xml) {
                    Ok(()) => defined = true,
                    // A lab's other student defined it between the look and the define: it
                    // is theirs to remove, and there for this one to use.
                    Err(_) if env.hv.network_exists(name)? => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !env.hv.network_active(name)? {
                if let Err(e) = env.hv.start_network(name) {
                    if defined {
                        let _ = env.hv.remove_network(name);
                    }
                    return Err(e.into());
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
pub fn precheck(env: &Env, name: &Name, profile_name: &str, p: &Profile) -> Result<Option<(String, State)>> {
    if let Some(f) = &p.network.filter {
        if !env.hv.nwfilter_exists(f)? {
            bail!(
                "the network filter {f} is not defined on {}: install libvirt-daemon-config-nwfilter and restart libvirtd (scripts/setup-host.sh does both). Nothing was created.",
                env.hv.uri()
            );
        }
    }
    let exists = env.hv.domain_exists(name.as_str())?;
    if let (Some(m), false) = (p.security.idmap_map(), exists) {
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
            let hint =
                if state == State::Running { "nothing to do, it is running" } else { "it is shut off: starting it" };
            return Ok(Some((
                format!("{name} already exists from profile {profile_name} ({}); {hint}", p.distro),
                state,
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
    let Some(m) = p.security.idmap_map() else { return Ok(()) };
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
    // Recorded before the first chown: a killed shift is known to be partial. The shift
    // itself only moves ids below the map's count, so finishing it never shifts a file twice
    // (profile validation refuses maps whose target overlaps their own range).
    rec.shift_started = Some(m);
    rec.save(&path)?;
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
    rec.shift_started = None;
    rec.save(&path)?;
    env.ui.info(&format!("shifted {n} files"));
    Ok(())
}

/// Everything `create` will do, decided before anything is touched: the same steps run
/// and print (`--dry-run`).
pub struct CreatePlan {
    pub name: Name,
    pub profile_name: String,
    pub profile: Profile,
    pub uri: String,
    pub bootstrap: bootstrap::Plan,
    pub domain_xml: String,
    pub network_xml: String,
    pub lock: PathBuf,
    /// The seccomp directory to prepare before the define (`security.seccomp` not `none`).
    pub seccomp: Option<crate::shim::SeccompDir>,
}

impl CreatePlan {
    pub fn new(spec: &Spec, uri: &str, paths: &Paths, bootstrap: bootstrap::Plan, xml: (String, String)) -> CreatePlan {
        CreatePlan {
            name: spec.name.clone(),
            profile_name: spec.profile_name.clone(),
            profile: spec.profile.clone(),
            uri: uri.to_string(),
            bootstrap,
            domain_xml: xml.0,
            network_xml: xml.1,
            lock: paths.lock(&spec.name),
            seccomp: None,
        }
    }

    fn lock_step(&self) -> Step {
        Step::new("take the lock for this name", vec![Action::Lock { path: self.lock.clone() }])
    }

    /// The steps after the root filesystem is in place.
    pub fn container_steps(&self) -> Vec<Step> {
        let p = &self.profile;
        let name = self.name.to_string();
        let mut v = vec![];
        if let (Some(m), true) = (&p.security.idmap_map(), self.bootstrap.layout.driver().shifts_tree()) {
            v.push(Step::new(
                "shift the root filesystem's ownership into the user namespace",
                vec![Action::ShiftIdmap { root: self.bootstrap.rootfs.clone(), uid: m.uid.target, gid: m.gid.target }],
            ));
        }
        let net = &p.network.name;
        let (title, xml) = match p.network.mode {
            NetMode::Isolated => {
                (format!("define and start the isolated network {net} if it does not exist"), self.network_xml.clone())
            }
            NetMode::Network => {
                (format!("check that the libvirt network {net} exists, start it if needed"), String::new())
            }
            NetMode::Bridge => (format!("check that the host bridge {net} exists"), String::new()),
        };
        v.push(Step::new(title, vec![Action::EnsureNetwork { name: net.clone(), xml }]));
        if let Some(s) = &self.seccomp {
            v.push(Step::new(
                "prepare the seccomp init shim and filter (read-only at /.lxcprov in the container)",
                vec![Action::PrepareSeccomp(s.clone())],
            ));
        }
        v.push(Step::new(
            format!("define the domain {name} on {}", self.uri),
            vec![Action::DefineDomain { name: name.clone(), uri: self.uri.clone(), xml: self.domain_xml.clone() }],
        ));
        v.push(Step::new(
            "start it, wait for its init, then verify",
            vec![
                Action::Start { name: name.clone() },
                Action::Verify {
                    name,
                    checks: "selinux, net.vnet, pidns, userns, caps, cgroup, seccomp, trust".into(),
                },
            ],
        ));
        v
    }

    /// Every step, in the order `create` runs them.
    pub fn steps(&self) -> Vec<Step> {
        let mut v = vec![self.lock_step()];
        v.extend(self.bootstrap.steps());
        v.extend(self.container_steps());
        v
    }
}

/// How `create` ended.
pub enum Created {
    /// A new (or completed) container, verified; `bootstrapped` when this run installed it.
    New { report: Report, bootstrapped: bool },
    /// It was there already, as asked; its report if it runs.
    Existing(String, Option<Report>),
}

/// What `create` finds before it makes anything, under the name's lock (held by the
/// caller until the run ends): a refusal (an error), the container already there as asked
/// (started if it was shut off, then verified), or nothing yet (`None`: go on with [`make`]).
pub fn begin(env: &Env, plan: &CreatePlan) -> Result<(crate::state::NameLock, Option<Created>)> {
    let name = &plan.name;
    let lock = crate::state::lock(env.paths, name)?;
    let Some((msg, state)) = precheck(env, name, &plan.profile_name, &plan.profile)? else {
        return Ok((lock, None));
    };
    env.ui.info(&msg);
    if state == State::Running {
        return Ok((lock, Some(Created::Existing(msg, Some(verify_domain(env, name)?)))));
    }
    // Defined but shut off (an earlier run stopped after the define): converge.
    let pid = start_and_wait(env, name)?;
    env.ui.info(&format!("{name} is running; its init is PID {pid} on the host"));
    Ok((lock, Some(Created::New { report: verify_domain(env, name)?, bootstrapped: false })))
}

/// Makes, starts and verifies the container, running the plan's steps (after [`begin`]).
/// Each thing it makes gets its undo step in `revert` (the caller runs them on failure);
/// `domain_kept` is set when the domain could not be undefined, so an older step keeps the
/// tree (and the id range) a domain that may still exist uses.
pub fn make<'a>(
    env: &'a Env<'a>,
    plan: &'a CreatePlan,
    password: &Secret,
    revert: &mut Revert<'a>,
    domain_kept: &'a Cell<bool>,
) -> Result<Created> {
    let mut bootstrapped = false;
    let report = create_steps(env, plan, password, revert, domain_kept, &mut bootstrapped)?;
    Ok(Created::New { report, bootstrapped })
}

/// The undo of a tree this run made: removed, unless the domain may still exist and use it.
fn undo_tree<'a>(
    env: &'a Env<'a>,
    name: &'a Name,
    storage: &'a dyn crate::storage::Driver,
    domain_kept: &'a Cell<bool>,
) -> impl FnOnce() -> Result<Undone> + 'a {
    move || {
        if domain_kept.get() {
            return Ok(Undone::Kept(format!(
                "kept {} because the domain {name} may still exist and use it; once libvirtd answers, run `lxcprov destroy --purge {name}` or `lxcprov create` again",
                storage.target().display()
            )));
        }
        let done = storage.remove(env.runner, &env.paths.pool)?;
        let _ = std::fs::remove_file(env.paths.record(name));
        Ok(if done.is_empty() { Undone::Nothing } else { Undone::Removed(done.join(", ")) })
    }
}

fn create_steps<'a>(
    env: &'a Env<'a>,
    plan: &'a CreatePlan,
    password: &Secret,
    revert: &mut Revert<'a>,
    domain_kept: &'a Cell<bool>,
    bootstrapped: &mut bool,
) -> Result<Report> {
    let name = &plan.name;
    let rootfs = env.paths.rootfs(name);
    let record = Record::load(&env.paths.record(name))?;
    if record.is_none() {
        // A layer without a record is a killed overlay build (the record is written last),
        // and no domain uses it (precheck): remove it and build again.
        if let Some(done) = crate::storage::driver::remove_unfinished(env.runner, &env.paths.pool, name)? {
            env.ui.info(&done);
        }
    }
    let force = plan.bootstrap.force;
    let reuse = rootfs.exists()
        && !force
        && record.as_ref().is_some_and(|r| r.profile == plan.profile_name && r.distro == plan.profile.distro);
    if reuse {
        env.ui.info(&format!("reusing the root filesystem {} bootstrapped earlier by lxcprov", rootfs.display()));
    } else {
        if rootfs.exists() && !force {
            bail!(
                "{} exists but was not bootstrapped by lxcprov for profile {} ({}); lxcprov never overwrites it without --force",
                rootfs.display(),
                plan.profile_name,
                plan.profile.distro
            );
        }
        for w in &plan.bootstrap.warnings {
            env.ui.warn(w);
        }
        env.ui.info(&format!("storage: {}", plan.bootstrap.storage));
        // Only after success: a failed build cleans up after itself, and a refusal (the tree
        // exists) must not remove what was there.
        bootstrap::execute(&plan.bootstrap, env.runner, password, env.ui)?;
        *bootstrapped = true;
        revert.add(format!("the tree of {name}"), undo_tree(env, name, plan.bootstrap.layout.driver(), domain_kept));
    }
    crate::interrupt::check()?;
    let mut report = None;
    for step in plan.container_steps() {
        for a in &step.actions {
            match a {
                Action::ShiftIdmap { .. } => shift_for_idmap(env, name, &plan.profile)?,
                Action::EnsureNetwork { xml, .. } => {
                    if ensure_network(env, &plan.profile, xml)? {
                        let net = &plan.profile.network.name;
                        // A lab's network is shared: another student may be on it already.
                        revert.add(format!("network {net}"), move || {
                            let gone = super::destroy::remove_unused_networks(env, std::slice::from_ref(net))?;
                            Ok(match gone.is_empty() {
                                true => Undone::Kept(format!("kept network {net} (another domain uses it)")),
                                false => Undone::Removed(format!("network {net}")),
                            })
                        });
                    }
                }
                Action::PrepareSeccomp(s) => crate::shim::prepare(s)?,
                Action::DefineDomain { xml, .. } => {
                    env.ui.info(&format!("defining domain {name} on {}", env.hv.uri()));
                    env.hv.define_domain(xml)?;
                    revert.add(format!("domain {name}"), move || {
                        if env.hv.domain_state(name.as_str()).ok() == Some(State::Running) {
                            let _ = env.hv.destroy_domain(name.as_str());
                        }
                        match env.hv.undefine_domain(name.as_str()) {
                            Ok(_) => Ok(Undone::Removed(format!("domain {name}"))),
                            Err(e) => {
                                domain_kept.set(true);
                                Ok(Undone::Kept(format!(
                                    "the domain {name} could not be undefined and may still exist ({e})"
                                )))
                            }
                        }
                    });
                }
                Action::Start { .. } => {
                    let pid = start_and_wait(env, name)?;
                    env.ui.info(&format!("{name} is running; its init is PID {pid} on the host"));
                }
                Action::Verify { .. } => report = Some(verify_domain(env, name)?),
                other => bail!("internal error: {other:?} is not a container action"),
            }
            crate::interrupt::check()?;
        }
    }
    report.context("internal error: the plan has no verify step")
}

/// What `--dry-run` prints for an action: the container's own here, beside the code that
/// runs them ([`create_steps`]); bootstrap's and storage's beside theirs.
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::plan::indent;
        match self {
            Action::Lock { path } => writeln!(f, "   lock   {}", path.display()),
            Action::ShiftIdmap { root, uid, gid } => writeln!(
                f,
                "   chown  every file under {}: uid +{uid}, gid +{gid} (recorded, never twice)",
                root.display()
            ),
            Action::EnsureNetwork { xml, .. } => write!(f, "{}", indent(xml)),
            Action::PrepareSeccomp(s) => write!(f, "{s}"),
            Action::DefineDomain { xml, .. } => write!(f, "{}", indent(xml)),
            Action::Start { .. } => {
                writeln!(f, "   start  the domain; wait for its init in libvirt's live state")
            }
            Action::Verify { checks, .. } => writeln!(f, "   verify {checks}"),
            Action::Storage(s) => write!(f, "{s}"),
            other => crate::bootstrap::describe(other, f),
        }
    }
}
