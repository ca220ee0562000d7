//! `create NAME`: resolve the profile, plan, bootstrap, define, start and verify; or, with
//! `dry_run`, only the plan (the same steps a real run performs). Everything this run made
//! is undone on failure, through one [`Revert`].

use crate::container::{self, create::Created, CreatePlan};
use crate::context::Context;
use crate::output::Observer;
use crate::password::Secret;
use crate::provision::{self, Request};
use crate::revert::{Revert, Undone};
use crate::spec::{ProfileOptions, Spec};
use anyhow::{bail, Result};
use std::cell::Cell;

/// What `create` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub name: String,
    pub profile: ProfileOptions,
    pub request: Request,
    /// Plan only: nothing is changed, no id range is taken.
    pub dry_run: bool,
}

/// How `create` ended.
pub enum CreateOutcome {
    /// `dry_run`: the plan, and the note on the distro taken from the name.
    Planned { plan: Box<CreatePlan>, distro_note: Option<String> },
    /// The container as [`container::create`] left it.
    Done(Created),
}

/// Resolves a container spec, telling the observer its notes and validation warnings.
pub fn resolve(ctx: &Context, name: &str, o: &ProfileOptions) -> Result<Spec> {
    let spec = crate::spec::resolve(ctx, name, o)?;
    if let Some(n) = &spec.distro_note {
        ctx.ui.info(n);
    }
    for w in &spec.warnings {
        ctx.ui.notice(&crate::text::for_terminal(w));
    }
    // Said once, here: `auto` without lxcfs goes on with the host's /proc.
    if let (_, Some(note)) = ctx.proc_views(&spec.profile)? {
        ctx.ui.info(&note);
    }
    Ok(spec)
}

/// `lxcprov create`.
pub fn create(ctx: &Context, o: &CreateOptions) -> Result<CreateOutcome> {
    let mut spec = resolve(ctx, &o.name, &o.profile)?;
    if o.dry_run {
        provision::assign_idmap(ctx, &mut spec, false)?;
        let plan = provision::create_plan(ctx, &spec, &o.request)?;
        return Ok(CreateOutcome::Planned { plan: Box::new(plan), distro_note: spec.distro_note.clone() });
    }
    if let Some(why) = container::security_refusal(&spec.profile) {
        bail!("cannot create {}: {why}. Nothing was created.", spec.name);
    }
    container::require_root("create")?;
    // An isolated range is recorded before the XML that names it is rendered.
    let allocated = provision::assign_idmap(ctx, &mut spec, true)?;
    let prepared = (|| {
        let plan = provision::create_plan(ctx, &spec, &o.request)?;
        if !plan.bootstrap.rootfs.exists() {
            provision::preflight(&plan.bootstrap)?;
        }
        let (secret, generated) = o.request.password.read()?;
        Ok::<_, anyhow::Error>((plan, secret, generated))
    })();
    let (plan, secret, generated) = match prepared {
        Ok(p) => p,
        Err(e) => {
            if allocated {
                let _ = crate::idmap::release(&ctx.paths.state, spec.name.as_str());
            }
            return Err(e);
        }
    };
    let created = run_plan(ctx, &*ctx.ui, &plan, &secret, allocated)?;
    if let Created::New { bootstrapped: true, .. } = created {
        provision::announce_password(&*ctx.ui, spec.name.as_str(), &secret, generated);
    }
    Ok(CreateOutcome::Done(created))
}

/// Runs a create plan on the real host ([`run_plan_in`] with a connection of its own).
pub fn run_plan(
    ctx: &Context,
    ui: &dyn Observer,
    plan: &CreatePlan,
    password: &Secret,
    idmap_allocated: bool,
) -> Result<Created> {
    container::with_real_env(ctx, ui, |env| run_plan_in(env, plan, password, idmap_allocated))
}

/// Runs a create plan, undoing what it made if it fails: the container's own steps, then
/// (oldest) the isolated id range this run allocated, which goes back only when no domain
/// that may still exist uses it. `lab up` runs each student through here.
pub fn run_plan_in(
    env: &container::Env,
    plan: &CreatePlan,
    password: &Secret,
    idmap_allocated: bool,
) -> Result<Created> {
    let name = &plan.name;
    let domain_kept = Cell::new(false);
    let mut revert = Revert::new();
    // Refusals before anything is made still give the range back (oldest step).
    if idmap_allocated {
        revert.add(format!("the id range of {name}"), || {
            if !domain_kept.get() {
                crate::idmap::release(&env.paths.state, name.as_str())?;
            }
            Ok(Undone::Nothing)
        });
    }
    let (_lock, existing) = container::create::begin(env, plan)?;
    if let Some(c) = existing {
        revert.success();
        return Ok(c);
    }
    match container::create::make(env, plan, password, &mut revert, &domain_kept) {
        Ok(c) => {
            revert.success();
            Ok(c)
        }
        Err(e) => {
            let undone = revert.fail();
            Err(e.context(format!("creating {name} failed; {}", undone.describe())))
        }
    }
}
