//! `lxcprov start NAME`: start a defined container and wait for its init.

use super::Outcome;
use anyhow::Result;
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let pid = container::with_real_env(ctx, &*ctx.ui, |env| container::start(env, name.as_str()))?;
    ctx.ui.info(&format!("{name} started; its init is PID {pid} on the host"));
    Ok(Outcome::Ok)
}
