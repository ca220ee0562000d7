//! `lxcprov hook lxc ...` (libvirt calls it through /etc/libvirt/hooks/lxc) and
//! `lxcprov hook install` (hidden: for the host setup and packagers).

use super::Outcome;
use crate::cli::HookAction;
use anyhow::{Context as _, Result};
use lxcprov::context::Context;
use lxcprov::storage::hook;

pub fn run(ctx: &Context, action: HookAction) -> Result<Outcome> {
    match action {
        HookAction::Lxc { args } => {
            // No output on success: libvirt logs what a hook prints.
            hook::run(&ctx.runner(), &args, &mut std::io::stdin().lock())?;
            Ok(Outcome::Ok)
        }
        HookAction::Install { binary, path } => {
            let bin = match binary {
                Some(b) => b,
                None => std::env::current_exe().context("finding the running lxcprov")?,
            };
            // Resolved when it exists; a packager names the installed path before it exists.
            let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
            let new = hook::install(&path, &bin)?;
            ctx.ui.info(&format!("{} runs {} hook lxc", path.display(), bin.display()));
            if new {
                ctx.ui.warn("libvirtd reads its hooks when it starts: restart libvirtd for this new hook to be called (running containers survive the restart)");
            }
            Ok(Outcome::Ok)
        }
    }
}
