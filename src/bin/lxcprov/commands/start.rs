//! `lxcprov start NAME`: start a defined container and wait for its init.

use super::Outcome;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let pid = lxcprov::ops::start::start(ctx, &name)?;
    ctx.ui.info(&format!("{name} started; its init is PID {pid} on the host"));
    Ok(Outcome::Ok)
}
