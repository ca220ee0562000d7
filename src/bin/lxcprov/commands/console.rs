//! `lxcprov console NAME`: the container's console through virsh (Ctrl-] detaches).

use super::Outcome;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    lxcprov::ops::console::console(ctx, &Name::parse(name)?)?;
    Ok(Outcome::Ok)
}
