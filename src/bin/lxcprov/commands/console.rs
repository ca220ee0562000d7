//! `lxcprov console NAME`: the container's console through virsh (Ctrl-] detaches).

use super::Outcome;
use anyhow::{bail, Result};
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::exec::Cmd;
use lxcprov::name::Name;

pub fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| container::require_domain(env, name.as_str()))?;
    let cmd = Cmd::new("virsh").arg("-c").arg(ctx.uri.clone()).arg("console").arg(name.as_str());
    let code = lxcprov::exec::interactive(&cmd)?;
    if code != 0 {
        bail!("virsh console exited with status {code}");
    }
    Ok(Outcome::Ok)
}
