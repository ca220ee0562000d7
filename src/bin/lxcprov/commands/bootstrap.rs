//! `lxcprov bootstrap NAME`: the root filesystem only.

use super::Outcome;
use crate::cli::BootstrapArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::ops::bootstrap::BootstrapOptions;
use lxcprov::provision::{PasswordSource, Request};

/// The library's bootstrap request from the command line.
pub fn request(a: &BootstrapArgs) -> Request {
    let password = match (&a.root_password_file, a.root_password_stdin) {
        (Some(f), _) => PasswordSource::File(f.clone()),
        (None, true) => PasswordSource::Stdin,
        _ => PasswordSource::Generate,
    };
    Request {
        mirror: a.mirror.clone(),
        password,
        force: a.force,
        rootfs_from: a.rootfs_from.clone(),
        no_base_cache: a.no_base_cache,
        storage: None,
        authorized_key: None,
    }
}

pub fn run(ctx: &Context, out: &Out, a: &BootstrapArgs) -> Result<Outcome> {
    let opts = BootstrapOptions { name: a.name.clone(), profile: (&a.profile).into(), request: request(a) };
    let plan = lxcprov::ops::bootstrap::bootstrap(ctx, &opts)?;
    if out.json {
        out.record(
            "bootstrap",
            &serde_json::json!({
                "name": plan.name, "rootfs": plan.rootfs, "distro": plan.spec.distro,
                "release": plan.spec.release, "source": plan.source.kind(),
            }),
        )?;
    }
    Ok(Outcome::Ok)
}
