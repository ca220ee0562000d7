//! `console NAME`: the container's console through `virsh console` (Ctrl-] detaches).

use crate::container;
use crate::context::Context;
use crate::exec::Cmd;
use crate::name::Name;
use anyhow::{bail, Result};

pub fn console(ctx: &Context, name: &Name) -> Result<()> {
    container::with_real_env(ctx, &*ctx.ui, |env| env.container(name).map(drop))?;
    let cmd = Cmd::new("virsh").arg("-c").arg(ctx.uri.clone()).arg("console").arg(name.as_str());
    let code = crate::exec::interactive(&cmd)?;
    if code != 0 {
        bail!("virsh console exited with status {code}");
    }
    Ok(())
}
