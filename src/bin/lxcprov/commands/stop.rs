//! `lxcprov stop NAME`: graceful shutdown, forced off after the timeout.

use super::Outcome;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use std::time::Duration;

pub fn run(ctx: &Context, name: &str, timeout: u64) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let forced = lxcprov::ops::stop::stop(ctx, &name, Duration::from_secs(timeout))?;
    ctx.ui.info(&if forced { format!("{name} forced off") } else { format!("{name} stopped") });
    Ok(Outcome::Ok)
}
