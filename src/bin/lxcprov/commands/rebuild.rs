//! `lxcprov rebuild NAME`: a fresh root filesystem from the container's own profile, swapped
//! in (paper, section 4.2: update by rebuilding).

use super::{print_report, Outcome};
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::provision::{self, Request};
use lxcprov::spec::ProfileOptions;
use std::path::PathBuf;

pub fn run(
    ctx: &Context,
    out: &Out,
    name: &str,
    rootfs_from: Option<PathBuf>,
    mirror: Option<String>,
) -> Result<Outcome> {
    let name = Name::parse(name)?;
    container::require_root("rebuild")?;
    let _lock = lxcprov::state::lock(&ctx.paths, &name)?;
    let report = container::with_real_env(ctx, &*ctx.ui, |env| {
        container::require_domain(env, name.as_str())?;
        let d = lxcprov::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
        let Some(meta) = d.meta else {
            bail!("{name} was not created by lxcprov (no lxcprov metadata): there is no profile to rebuild it from");
        };
        let opts = ProfileOptions::of_container(&meta, &ctx.paths.state, &name)?;
        let mut s = super::resolve_opts(ctx, name.as_str(), &opts)?;
        // Its isolated map stays its own (the registry holds it; nothing is allocated).
        provision::assign_idmap(ctx, &mut s, false)?;
        // A lab's student keeps its address, sshd and key.
        let authorized_key = match lxcprov::lab::access_of_member(ctx, &name) {
            Some(acc) => lxcprov::lab::apply_access(&mut s, &acc)?,
            None => None,
        };
        // The container keeps its storage mode: overlay containers get a new base, copies a new copy.
        let overlay = lxcprov::storage::existing(&ctx.paths.pool, name.as_str())?.is_some();
        let storage = Some(if overlay { lxcprov::storage::Choice::Overlay } else { lxcprov::storage::Choice::Copy });
        let req = Request { mirror, force: true, rootfs_from, authorized_key, storage, ..Default::default() };
        let plan = provision::plan(ctx, &s, &req)?;
        for w in &plan.warnings {
            ctx.ui.warn(w);
        }
        container::rebuild(env, &plan, &s.profile)
    })?;
    print_report(ctx, out, &report)
}
