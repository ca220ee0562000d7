//! `rebuild NAME` (paper 4.2): a fresh root filesystem from the container's own profile,
//! swapped in; same name, domain, network, label policy, id map and password. A lab's
//! student keeps its address, sshd and key; the container keeps its storage mode.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use crate::provision::{self, Request};
use crate::spec::ProfileOptions;
use crate::verify::Report;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct RebuildOptions {
    pub rootfs_from: Option<PathBuf>,
    pub mirror: Option<String>,
}

pub fn rebuild(ctx: &Context, name: &Name, o: &RebuildOptions) -> Result<Report> {
    container::require_root("rebuild")?;
    let _lock = crate::state::lock(&ctx.paths, name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| {
        let c = env.container(name)?;
        let opts = ProfileOptions::of_container(c.meta("rebuild")?, &ctx.paths.state, name)?;
        let mut s = crate::ops::create::resolve(ctx, name.as_str(), &opts)?;
        // Its isolated map stays its own (the registry holds it; nothing is allocated).
        provision::assign_idmap(ctx, &mut s, false)?;
        if let Some((p, c)) = crate::lab::partition_of_member(ctx, name) {
            s.profile.partition = Some(p);
            s.profile.partition_ceilings = Some(c);
        }
        let authorized_key = match crate::lab::access_of_member(ctx, name) {
            Some(acc) => crate::lab::apply_access(&mut s, &acc)?,
            None => None,
        };
        let storage = Some(crate::storage::mode_of(&ctx.paths.pool, name)?);
        let req = Request {
            mirror: o.mirror.clone(),
            force: true,
            rootfs_from: o.rootfs_from.clone(),
            authorized_key,
            storage,
            ..Default::default()
        };
        let plan = provision::plan(ctx, &s, &req)?;
        for w in &plan.warnings {
            ctx.ui.warn(w);
        }
        container::rebuild(env, &plan, &s.profile)
    })
}
