//! `snapshot`: a copy of an overlay container's own changes (its layer's `upper`), taken
//! with the container frozen (libvirt suspend, then resume) so the copy is consistent.
//! Restoring one is a reset whose new layer is filled from it ([`super::reset::reset_onto`]).

use super::Env;
use crate::name::Name;
use crate::storage::snapshot::{self, Snapshot};
use anyhow::{Context, Result};

/// Takes snapshot `tag` (or the next `snap-N`) of `name`, thawing a running container again
/// whatever happens.
pub fn take(env: &Env, name: &Name, tag: Option<&str>) -> Result<Snapshot> {
    let c = env.container(name)?;
    let layout = crate::storage::Layout::of_container(&env.paths.pool, name)?;
    let o = layout.resettable(name).context("snapshots keep what a container changed in its own layer")?;
    let tag = match tag {
        Some(t) => t.to_string(),
        None => snapshot::next_tag(&env.paths.pool, name)?,
    };
    snapshot::check_tag(&tag)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let s = c.frozen(&format!("taking snapshot {tag} of {name}"), || {
        snapshot::take(env.runner, &env.paths.pool, name, o, &tag, now)
    })?;
    env.ui.info(&format!("{name}: snapshot {} ({} bytes of its own changes)", s.tag, s.bytes));
    Ok(s)
}
