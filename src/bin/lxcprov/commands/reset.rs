//! `lxcprov reset NAME`: back to the golden base (overlay storage), keeping its password,
//! label, id map and network.

use super::{confirm, print_report, Outcome};
use anyhow::{bail, Result};
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::output::Out;
use lxcprov::spec::ProfileOptions;

pub fn run(ctx: &Context, out: &Out, name: &str, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    container::require_root("reset")?;
    if !yes && !confirm(&format!("Reset {name}: delete every file it wrote since it was created"))? {
        bail!("not confirmed; nothing was changed");
    }
    let _lock = lxcprov::state::lock(&ctx.paths, &name)?;
    let report = container::with_real_env(ctx, &ctx.ui, |env| {
        container::require_domain(env, name.as_str())?;
        let guest = guest_of(ctx, env, &name)?;
        container::reset(env, &name, &guest)
    })?;
    match report {
        Some(r) => print_report(ctx, out, &r),
        None => {
            ctx.ui.info(&format!("{name} was reset; it is shut off (start it with `lxcprov start {name}`)"));
            Ok(Outcome::Ok)
        }
    }
}

/// The guest configuration of an lxcprov container, from its domain's metadata.
pub fn guest_of(ctx: &Context, env: &container::Env, name: &Name) -> Result<lxcprov::bootstrap::GuestConfig> {
    let d = lxcprov::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    let Some(meta) = d.meta else {
        bail!("{name} was not created by lxcprov (no lxcprov metadata): there is nothing to reset it to");
    };
    let opts = ProfileOptions {
        profile: meta.profile.clone(),
        distro: Some(meta.distro.clone()),
        release: Some(meta.release.clone()),
        security: Some(meta.security.parse().map_err(|e: String| anyhow::anyhow!(e))?),
    };
    let s = super::resolve_opts(ctx, name.as_str(), &opts)?;
    Ok(lxcprov::bootstrap::guest_config(name, &s.profile, &s.distro))
}
