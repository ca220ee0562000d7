//! `lxcprov render NAME`: the domain (or network) XML on stdout; touches nothing.

use super::Outcome;
use crate::cli::RenderArgs;
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::profile::NetMode;

pub fn run(ctx: &Context, out: &Out, a: &RenderArgs) -> Result<Outcome> {
    let mut spec = super::resolve(ctx, &a.name, &a.profile)?;
    // An isolated map: the container's range if it has one, else the one create would take.
    lxcprov::provision::assign_idmap(ctx, &mut spec, false)?;
    let (domain, network) = spec.render(ctx)?;
    let xml = if a.network {
        if spec.profile.network.mode != NetMode::Isolated {
            bail!(
                "profile {} uses an existing {:?} network; lxcprov defines only isolated ones",
                spec.profile_name,
                spec.profile.network.mode
            );
        }
        network
    } else {
        domain
    };
    if out.json {
        out.record("xml", &serde_json::json!({ "name": spec.name, "xml": xml }))?;
    } else {
        out.text(&xml)?;
    }
    Ok(Outcome::Ok)
}
