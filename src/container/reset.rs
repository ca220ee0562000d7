//! `reset`: an overlay container back to its golden base in O(1): its writable layer is
//! replaced by an empty one, its own configuration (hostname, hosts, machine-id, network,
//! root's password hash as it is now) is written into the new layer, and it is restarted.
//! Its domain, label, id map and network stay as they are.

use super::inspect::verify_domain;
use super::run::{start_domain, wait_for_init};
use super::Env;
use crate::bootstrap::GuestConfig;
use crate::libvirt::State;
use crate::name::Name;
use crate::state::Record;
use crate::verify::Report;
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Resets `name`; returns its verify report when it was running (it runs again).
pub fn reset(env: &Env, name: &Name, guest: &GuestConfig) -> Result<Option<Report>> {
    super::require_domain(env, name.as_str())?;
    let rec = Record::load(&env.paths.record(name))?
        .with_context(|| format!("{name} has no lxcprov record; only containers lxcprov created can be reset"))?;
    let Some(mut o) = crate::storage::existing(&env.paths.pool, name.as_str())? else {
        bail!(
            "{name} uses copy storage (a full tree of its own), so there is no layer to drop; `lxcprov rebuild {name}` gives it a fresh tree instead"
        );
    };
    o.idmap = rec.idmap;
    // The password lxcprov set (a lab's), else the one it has now, read through the
    // mounted overlay before the layer goes.
    crate::storage::ensure_mounted(env.runner, &o)?;
    let hash = crate::storage::saved_root_hash(&o)
        .or_else(|| crate::bootstrap::root_hash(&o.target))
        .with_context(|| format!("{} has no root password hash to carry over", o.target.display()))?;
    let was_running = env.hv.domain_state(name.as_str())? == State::Running;
    if was_running {
        // Its state is being thrown away: no graceful shutdown to wait for.
        env.hv.destroy_domain(name.as_str())?;
    }
    if crate::storage::is_mounted(&o.target) {
        crate::storage::unmount(env.runner, &o.target)?;
    }
    crate::storage::make_layer(&o)?;
    crate::storage::ensure_mounted(env.runner, &o)?;
    guest.apply(&o.target, &hash)?;
    crate::storage::save_root_hash(&o, &hash)?;
    if let Some(m) = o.idmap {
        crate::storage::shift_layer(&o, m)?;
    }
    env.ui.info(&format!("{name}: a fresh layer on {}", o.base_id));
    if !was_running {
        return Ok(None);
    }
    start_domain(env, name.as_str())?;
    let pid = wait_for_init(env, name.as_str(), Duration::from_secs(15))?;
    env.ui.info(&format!("{name} is running again; its init is PID {pid} on the host"));
    Ok(Some(verify_domain(env, name.as_str())?))
}
