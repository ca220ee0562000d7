//! `bootstrap NAME`: the root filesystem only, always a plain copy (a tree without a domain:
//! nothing would mount an overlay), never shifted into an id map (`create` does that).

use crate::bootstrap::Plan;
use crate::context::Context;
use crate::provision::{self, Request};
use crate::spec::ProfileOptions;
use anyhow::{bail, Result};

#[derive(Clone, Debug, Default)]
pub struct BootstrapOptions {
    pub name: String,
    pub profile: ProfileOptions,
    pub request: Request,
}

/// Bootstraps the tree; the plan it ran.
pub fn bootstrap(ctx: &Context, o: &BootstrapOptions) -> Result<Plan> {
    if o.profile.idmap.is_some() {
        bail!("--idmap applies to create, render and lab up: bootstrap makes an unshifted tree, which `create` shifts into the container's map");
    }
    let spec = crate::ops::create::resolve(ctx, &o.name, &o.profile)?;
    let req = Request { storage: Some(crate::storage::Choice::Copy), ..o.request.clone() };
    provision::bootstrap(ctx, &spec, &req)
}
