//! `reset`: an overlay container back to its golden base in O(1): its writable layer is
//! replaced by an empty one, its own configuration (hostname, hosts, machine-id, network,
//! root's password hash as it is now) is written into the new layer, and it is restarted.
//! Its domain, label, id map and network stay as they are.

use super::inspect::verify_domain;
use super::run::start_and_wait;
use super::Env;
use crate::bootstrap::GuestConfig;
use crate::libvirt::State;
use crate::name::Name;
use crate::state::Record;
use crate::storage::snapshot::Snapshot;
use crate::verify::Report;
use anyhow::{bail, Context, Result};

/// Resets an overlay container's layer (`crate::ops::reset`): a fresh one, or one filled
/// from a snapshot `from` (`restore`), optionally onto another shared base `onto`
/// (`rebuild`: prepared by the caller), and starts it again if it ran (or if `start`). Its
/// configuration, root password and SSH host keys are written into the new layer.
pub fn reset_onto(
    env: &Env,
    name: &Name,
    guest: &GuestConfig,
    onto: Option<&crate::storage::Overlay>,
    from: Option<&Snapshot>,
    start: bool,
) -> Result<Option<Report>> {
    crate::container::require_domain(env, name)?;
    let rec = Record::load(&env.paths.record(name))?
        .with_context(|| format!("{name} has no lxcprov record; only containers lxcprov created can be reset"))?;
    let layout = crate::storage::Layout::of_container(&env.paths.pool, name)?;
    let mut o = layout.resettable(name)?.with_recorded_map(rec.idmap);
    let old_base = o.base_id.clone();
    if let Some(s) = from {
        if s.base != o.base_id {
            bail!(
                "snapshot {} of {name} was taken on the base {}, and {name} is on {} now (rebuilt since); it cannot be restored onto another base",
                s.tag,
                s.base,
                o.base_id
            );
        }
    }
    // The password lxcprov set (a lab's), else the one it has now, read through the
    // mounted overlay before the layer goes.
    crate::storage::ensure_mounted(env.runner, &o)?;
    let hash = crate::storage::saved_root_hash(&o)
        .or_else(|| crate::bootstrap::root_hash(&o.target))
        .with_context(|| format!("{} has no root password hash to carry over", o.target.display()))?;
    // A reset keeps the SSH host keys (its users' known_hosts stay valid); a rebuild onto a
    // new base gets new ones, as a copy-mode rebuild does.
    let host_keys = if onto.is_none() { ssh_host_keys(&o.target) } else { vec![] };
    let was_running = env.hv.domain_state(name.as_str())? == State::Running;
    if was_running {
        // Its state is being thrown away: no graceful shutdown to wait for.
        crate::container::run::force_off(env, name)?;
    }
    if crate::storage::is_mounted(&o.target) {
        crate::storage::unmount(env.runner, &o.target)?;
    }
    if let Some(n) = onto {
        if n.idmap != rec.idmap {
            bail!("the new base of {name} is for another id map than the container's; re-create it to change the map");
        }
        o = o.onto(n);
    }
    match from {
        Some(s) => crate::storage::make_layer_from(env.runner, &o, s)?,
        None => crate::storage::make_layer(&o)?,
    }
    if o.base_id != old_base {
        let path = env.paths.record(name);
        Record { base: Some(o.base_id.clone()), ..rec.clone() }.save(&path)?;
        if let Ok(Some(d)) = crate::storage::remove_unused_base(&env.paths.pool, &old_base) {
            env.ui.info(&d);
        }
    }
    crate::storage::ensure_mounted(env.runner, &o)?;
    guest.apply(&o.target, &hash)?;
    crate::storage::save_root_hash(&o, &hash)?;
    // Its SSH host keys stay too: its users' known_hosts must not start to complain.
    for (rel, bytes, mode) in &host_keys {
        crate::fsutil::write_in(&o.target, rel, bytes, *mode)?;
    }
    if let Some(m) = o.idmap {
        crate::storage::shift_layer(&o, m)?;
    }
    match from {
        Some(s) => env.ui.info(&format!("{name}: its layer as in snapshot {}", s.tag)),
        None => env.ui.info(&format!("{name}: a fresh layer on {}", o.base_id)),
    }
    if !was_running && !start {
        return Ok(None);
    }
    let pid = start_and_wait(env, name)?;
    env.ui.info(&format!("{name} is running again; its init is PID {pid} on the host"));
    Ok(Some(verify_domain(env, name)?))
}

/// The guest's SSH host keys (`/etc/ssh/ssh_host_*`: regular files only, 64 KiB each at most),
/// to be written into the new layer.
fn ssh_host_keys(root: &std::path::Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(dir) = crate::fsutil::resolve_in(root, "/etc/ssh") else { return vec![] };
    let Ok(rd) = std::fs::read_dir(&dir) else { return vec![] };
    let mut v = vec![];
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("ssh_host_") {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else { continue };
        if !m.is_file() {
            continue;
        }
        if let Ok(Some(b)) = crate::fsutil::read_state(&e.path(), 64 * 1024, "SSH host key") {
            v.push((format!("/etc/ssh/{name}"), b, m.permissions().mode() & 0o7777));
        }
    }
    v
}
