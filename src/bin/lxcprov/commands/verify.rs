//! `lxcprov verify NAME [--probe]`: the paper's claims, checked on the running container.

use super::{print_report, Outcome};
use crate::cli::VerifyArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, a: &VerifyArgs) -> Result<Outcome> {
    let name = Name::parse(&a.name)?;
    let expect = a.expect.as_deref().map(|p| lxcprov::profile::find(&ctx.sources, p)).transpose()?;
    container::require_root("verify")?;
    let report = container::with_real_env(ctx, &*ctx.ui, |env| {
        container::require_domain(env, name.as_str())?;
        let expected =
            expect.as_ref().map(|l| container::inspect::Expected { profile_name: &l.name, profile: &l.profile });
        let mut rep = container::inspect::verify_domain_as(env, name.as_str(), expected.as_ref())?;
        if a.probe {
            rep.checks.push(lxcprov::container::mcs_probe::probe(env, name.as_str(), a.peer.as_deref())?);
            rep.checks.push(lxcprov::container::seccomp_probe::probe(env, name.as_str())?);
        }
        Ok(rep)
    })?;
    print_report(ctx, out, &report)
}
