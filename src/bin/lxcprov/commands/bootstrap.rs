//! `lxcprov bootstrap NAME`: the root filesystem only.

use super::Outcome;
use crate::cli::BootstrapArgs;
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::provision::{self, PasswordSource, Request};

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
    if a.profile.idmap.is_some() {
        bail!("--idmap applies to create, render and lab up: bootstrap makes an unshifted tree, which `create` shifts into the container's map");
    }
    let spec = super::resolve(ctx, &a.name, &a.profile)?;
    // A tree without a domain: always a plain copy (nothing would mount an overlay).
    let req = Request { storage: Some(lxcprov::storage::Choice::Copy), ..request(a) };
    let plan = provision::bootstrap(ctx, &spec, &req)?;
    if out.json {
        out.record(
            "bootstrap",
            &serde_json::json!({
                "name": spec.name, "rootfs": plan.rootfs, "distro": plan.spec.distro,
                "release": plan.spec.release, "source": plan.source.kind(),
            }),
        )?;
    }
    Ok(Outcome::Ok)
}
