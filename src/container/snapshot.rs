//! `snapshot`: a copy of an overlay container's own changes (its layer's `upper`), taken
//! with the container frozen (libvirt suspend, then resume) so the copy is consistent.
//! Restoring one is a reset whose new layer is filled from it ([`super::reset::reset_onto`]).

use super::Env;
use crate::libvirt::State;
use crate::name::Name;
use crate::revert::{Revert, Undone};
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
    let mut thaw = Revert::new();
    if c.state()? == State::Running {
        env.hv.suspend_domain(name.as_str())?;
        thaw.add(format!("freezing {name}"), || {
            env.hv.resume_domain(name.as_str())?;
            Ok(Undone::Nothing)
        });
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let r = snapshot::take(env.runner, &env.paths.pool, name, o, &tag, now);
    // Thawed in every case; a failure to thaw is an error of its own.
    let thawed = thaw.fail();
    let s = r?;
    if let Some(f) = thawed.failed.first() {
        anyhow::bail!("snapshot {} of {name} was taken, but {name} could not be thawed ({f}); run `virsh -c lxc:/// resume {name}`", s.tag);
    }
    env.ui.info(&format!("{name}: snapshot {} ({} bytes of its own changes)", s.tag, s.bytes));
    Ok(s)
}
