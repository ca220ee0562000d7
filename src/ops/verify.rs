//! `verify NAME`: the checks on the running container (against its own profile, or the one
//! `expect` names), with `probe` the active MCS and seccomp probes.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use crate::verify::Report;
use anyhow::Result;

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Judge against this profile instead of the one the container was created from.
    pub expect: Option<String>,
    /// Run the active probes too.
    pub probe: bool,
    /// The other container of the MCS probe.
    pub peer: Option<String>,
}

pub fn verify(ctx: &Context, name: &Name, o: &VerifyOptions) -> Result<Report> {
    let expect = o.expect.as_deref().map(|p| crate::profile::find(&ctx.sources, p)).transpose()?;
    container::require_root("verify")?;
    container::with_real_env(ctx, &*ctx.ui, |env| {
        env.container(name)?;
        let expected =
            expect.as_ref().map(|l| container::inspect::Expected { profile_name: &l.name, profile: &l.profile });
        let mut rep = container::inspect::verify_domain_as(env, name, expected.as_ref())?;
        if o.probe {
            rep.checks.push(container::mcs_probe::probe(env, name.as_str(), o.peer.as_deref())?);
            rep.checks.push(container::seccomp_probe::probe(env, name)?);
        }
        Ok(rep)
    })
}
