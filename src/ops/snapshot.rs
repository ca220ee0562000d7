//! `snapshot NAME [--tag T] [--delete]`, `snapshots NAME` and `restore NAME TAG`: an
//! overlay container's own changes kept and put back, O(what it changed). A restore keeps
//! the container's label, id map, address, SSH host keys and root password.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use crate::storage::snapshot::{self, Snapshot};
use crate::verify::Report;
use anyhow::Result;

/// Takes a snapshot under the container's lock.
pub fn snapshot(ctx: &Context, name: &Name, tag: Option<&str>) -> Result<Snapshot> {
    if let Some(t) = tag {
        snapshot::check_tag(t)?;
    }
    container::require_root("snapshot")?;
    let _lock = crate::state::lock(&ctx.paths, name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| container::snapshot::take(env, name, tag))
}

/// The container's snapshots, oldest first (it must exist).
pub fn snapshots(ctx: &Context, name: &Name) -> Result<Vec<Snapshot>> {
    container::with_real_env(ctx, &*ctx.ui, |env| env.container(name).map(drop))?;
    snapshot::list(&ctx.paths.pool, name)
}

/// Deletes one snapshot under the container's lock.
pub fn delete(ctx: &Context, name: &Name, tag: &str) -> Result<Snapshot> {
    snapshot::check_tag(tag)?;
    container::require_root("snapshot --delete")?;
    let _lock = crate::state::lock(&ctx.paths, name)?;
    snapshot::delete(&ctx.paths.pool, name, tag)
}

/// Puts snapshot `tag` back (the caller has confirmed); the verify report when it runs again.
pub fn restore(ctx: &Context, name: &Name, tag: &str) -> Result<Option<Report>> {
    let s = snapshot::find(&ctx.paths.pool, name, tag)?;
    container::require_root("restore")?;
    let _lock = crate::state::lock(&ctx.paths, name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| {
        let guest = crate::ops::reset::guest_of(ctx, &env.container(name)?)?;
        container::reset::reset_onto(env, name, &guest, None, Some(&s), false)
    })
}
