//! Bootstrap as a user asks for it: the plan for a spec on this host, the preflight checks,
//! where the root password comes from, and the run itself (for `bootstrap` and `create`).

use crate::bootstrap::{self, Plan, Source, Tool};
use crate::context::Context;
use crate::exec;
use crate::password::Secret;
use crate::spec::Spec;
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;

/// Where the root password comes from.
#[derive(Clone, Debug, Default)]
pub enum PasswordSource {
    /// The first line of a file.
    File(PathBuf),
    /// Standard input.
    Stdin,
    /// Generated, shown once on stderr.
    #[default]
    Generate,
}

impl PasswordSource {
    /// For the plan: where it comes from, never what it is.
    pub fn describe(&self) -> String {
        match self {
            PasswordSource::File(f) => format!("from {}", f.display()),
            PasswordSource::Stdin => "from standard input".into(),
            PasswordSource::Generate => "generated, shown once on stderr".into(),
        }
    }

    /// Reads (or generates) it; true when generated.
    pub fn read(&self) -> Result<(Secret, bool)> {
        match self {
            PasswordSource::File(f) => Ok((Secret::from_file(f)?, false)),
            PasswordSource::Stdin => Ok((
                Secret::from_reader(&mut std::io::stdin().lock()).context("reading the root password from stdin")?,
                false,
            )),
            PasswordSource::Generate => Ok((Secret::generate()?, true)),
        }
    }
}

/// How to bootstrap one container.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub mirror: Option<String>,
    pub password: PasswordSource,
    pub force: bool,
    pub rootfs_from: Option<PathBuf>,
    pub no_base_cache: bool,
    /// How the tree is stored, when not the context's (`bootstrap`, a tree without a domain, always copies).
    pub storage: Option<crate::storage::Choice>,
    /// Root's one authorized SSH key (`lab up --ssh-keys`).
    pub authorized_key: Option<String>,
}

/// The bootstrap plan for a spec with the installer this host has.
pub fn plan(ctx: &Context, spec: &Spec, req: &Request) -> Result<Plan> {
    let tool = bootstrap::choose_tool(spec.distro.installer, ctx.rpm_tool, &|p| exec::which(p).is_some())?;
    let opts = bootstrap::Options {
        mirror: req.mirror.clone(),
        force: req.force,
        import: req.rootfs_from.clone(),
        keep_base: !req.no_base_cache,
        password_note: req.password.describe(),
        storage: req.storage.unwrap_or(ctx.storage),
        authorized_key: req.authorized_key.clone(),
    };
    let mut plan =
        bootstrap::plan(&ctx.paths, &spec.name, &spec.profile_name, &spec.profile, &spec.distro, tool, &opts)?;
    if spec.distro.name == "centos7" && crate::doctor::cgroup_layout().starts_with("v2") {
        plan.warnings.push(
            "CentOS 7's systemd 219 needs cgroup v1, and this host is cgroup v2 only: the container will not boot; use centos-stream9 or almalinux9 here".into(),
        );
    }
    if let Some(m) = &req.mirror {
        let rpm = tool != Tool::Debootstrap;
        match crate::profile::mirror_trust(m, spec.profile.trust.gpgcheck, rpm) {
            Err(e) => bail!("--mirror: {e}"),
            Ok(Some(w)) => plan.warnings.push(format!("--mirror: {w}")),
            Ok(None) => {}
        }
    }
    Ok(plan)
}

/// Checks that the plan can run here at all: root, the installer, the archive keyring.
pub fn preflight(plan: &Plan) -> Result<()> {
    if let Source::Install { cmd, .. } | Source::Import { cmd, .. } = &plan.source {
        if exec::which(&cmd.program).is_none() {
            bail!("{} is not installed; {}", cmd.program, exec::install_hint(&cmd.program));
        }
        if let (Source::Install { .. }, true, Some(k)) = (&plan.source, plan.spec.gpgcheck, &plan.spec.keyring) {
            if plan.spec.tool == Tool::Debootstrap && !std::path::Path::new(k).exists() {
                bail!(
                    "the archive keyring {k} for {} is missing, so its packages cannot be verified; install it (Debian: debian-archive-keyring; Ubuntu: ubuntu-keyring). Nothing was changed.",
                    plan.spec.distro
                );
            }
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bootstrap needs root (it installs packages as root into {}); run it with sudo", plan.rootfs.display());
    }
    Ok(())
}

/// Refuses to touch an existing root filesystem without `--force`.
pub fn refuse_existing(plan: &Plan) -> Result<()> {
    if plan.rootfs.exists() && !plan.force {
        bail!(
            "{} already exists; lxcprov never overwrites a root filesystem without --force (nothing was changed)",
            plan.rootfs.display()
        );
    }
    Ok(())
}

/// Shows a generated password once, as a notice on stderr (never stdout, logs or state).
pub fn announce_password(ui: &dyn crate::output::Observer, name: &str, secret: &Secret, generated: bool) {
    if generated {
        ui.notice(&format!("root password for {name} (shown once, store it now): {}", secret.expose()));
    }
}

/// `lxcprov bootstrap`: the root filesystem only.
pub fn bootstrap(ctx: &Context, spec: &Spec, req: &Request) -> Result<Plan> {
    let plan = plan(ctx, spec, req)?;
    refuse_existing(&plan)?;
    preflight(&plan)?;
    let (secret, generated) = req.password.read()?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }
    let _lock = crate::state::lock(&ctx.paths, &spec.name)?;
    bootstrap::execute(&plan, &ctx.runner(), &secret, &*ctx.ui)?;
    announce_password(&*ctx.ui, spec.name.as_str(), &secret, generated);
    ctx.ui.info(&format!("root filesystem ready: {}", plan.rootfs.display()));
    Ok(plan)
}

/// Gives a spec's isolated id map its range (`security.idmap: isolated`): the container's
/// own if the registry has one, else the lowest free range, recorded under the registry's
/// lock when `reserve` (a real run; needs root), only looked up otherwise (`--dry-run`).
/// A fixed map that meets another container's isolated range is refused. Returns true when
/// this call allocated a range, which the caller releases if the run fails.
pub fn assign_idmap(ctx: &Context, spec: &mut Spec, reserve: bool) -> Result<bool> {
    use crate::profile::IdmapSetting;
    let name = spec.name.as_str();
    match spec.profile.security.idmap {
        Some(IdmapSetting::Isolated(None)) => {
            let taken = crate::idmap::host_taken_now(&ctx.paths.state);
            let (m, new) = if reserve {
                let mut l = crate::idmap::open(&ctx.paths.state)?;
                let r = l.reg.allocate(name, &taken)?;
                if r.1 {
                    l.save()?;
                }
                r
            } else {
                (crate::idmap::read(&crate::idmap::registry_path(&ctx.paths.state))?.peek(name, &taken)?, false)
            };
            spec.profile.security.idmap = Some(IdmapSetting::Isolated(Some(m)));
            Ok(new)
        }
        Some(IdmapSetting::Fixed(m)) => {
            let reg = crate::idmap::read(&crate::idmap::registry_path(&ctx.paths.state))?;
            if let Some((other, theirs)) = reg.overlapping(&m, name) {
                bail!(
                    "the profile's id map (host uid {}, gid {}, {} ids) meets {other}'s isolated range (host ids {}..{}): a process escaping one container would own the other's files; give the profile another map or use --idmap isolated. Nothing was created.",
                    m.uid.target,
                    m.gid.target,
                    m.uid.count.max(m.gid.count),
                    theirs.uid.target,
                    u64::from(theirs.uid.target) + u64::from(crate::idmap::SIZE)
                );
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// The create plan for a spec: bootstrap plan plus the container's steps.
pub fn create_plan(ctx: &Context, spec: &Spec, req: &Request) -> Result<crate::container::CreatePlan> {
    let xml = spec.render(ctx)?;
    let bp = plan(ctx, spec, req)?;
    let mut p = crate::container::CreatePlan::new(spec, &ctx.uri, &ctx.paths, bp, xml);
    p.seccomp = crate::shim::plan(&ctx.paths, &spec.name, &spec.profile, &ctx.init_shim())?;
    Ok(p)
}
