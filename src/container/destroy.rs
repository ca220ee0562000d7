//! Removing a container and, with purge, everything lxcprov made for it.

use super::Env;
use crate::facts;
use crate::libvirt::State;
use crate::name::Name;
use anyhow::{bail, Result};

/// Is this network one lxcprov defined (its metadata says so)?
fn network_is_ours(env: &Env, net: &str) -> bool {
    env.hv.network_xml(net).is_ok_and(|x| x.contains(crate::render::NAMESPACE) && x.contains("created-by"))
}

/// Removes a container: stops it, undefines it, removes the network lxcprov defined for it
/// when no other domain uses that network, and with `purge` its root filesystem (only if it
/// is lxcprov's own `POOL/NAME`).
pub fn destroy(env: &Env, name: &Name, purge: bool) -> Result<Vec<String>> {
    let (mut done, networks) = destroy_keeping_networks(env, name, purge)?;
    done.extend(remove_unused_networks(env, &networks)?);
    Ok(done)
}

/// [`destroy`] without the network step; returns what was done and the networks the domain
/// used, for [`remove_unused_networks`] once a batch (`lab down`) is through.
pub fn destroy_keeping_networks(env: &Env, name: &Name, purge: bool) -> Result<(Vec<String>, Vec<String>)> {
    let mut done = vec![];
    let rootfs = env.paths.rootfs(name);
    let exists = env.hv.domain_exists(name.as_str())?;
    // What a killed run can leave beside the tree: the partial build, a replaced tree, a
    // failed rebuild's tree. `--purge` removes them too (unmounting anything inside first).
    let leftovers: Vec<_> = [env.paths.partial(name), env.paths.old(name), env.paths.failed(name)]
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    let layer = crate::storage::layers_dir(&env.paths.pool).join(name.as_str());
    if !exists && (!purge || (!rootfs.exists() && !layer.exists() && leftovers.is_empty())) {
        return Err(env.not_found(name.as_str()));
    }
    let mut networks = vec![];
    if exists {
        let d = facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
        if purge {
            if let Some(r) = &d.rootfs {
                if r != &rootfs {
                    bail!(
                        "{name}'s root filesystem is {}, not lxcprov's {}; --purge deletes only lxcprov's own trees. Nothing was changed.",
                        r.display(), rootfs.display()
                    );
                }
            }
        }
        networks = d.interfaces.iter().filter_map(|i| i.network.clone()).collect();
        if env.hv.domain_state(name.as_str())? == State::Running {
            super::run::kill_init(env, name)?;
            let still = env.hv.domain_state(name.as_str())? == State::Running;
            if let Err(e) = if still { env.hv.destroy_domain(name.as_str()) } else { Ok(()) } {
                // libvirt can report a cleanup error (a systemd scope already gone) for a
                // domain it did stop: what counts is whether it still runs.
                if e.is_connection() || env.hv.domain_state(name.as_str())? == State::Running {
                    return Err(e.into());
                }
            }
            done.push(format!("stopped {name}"));
        }
        env.hv.undefine_domain(name.as_str())?;
        done.push(format!("undefined domain {name}"));
        // lxcprov's own pids groups of its starts (libvirt removes only its own groups).
        crate::cgroups::forget_pids(&crate::cgroups::Tree::of(&env.host), name);
    }
    // The seccomp shim directory belongs to the domain, not to the rootfs.
    let sd = env.paths.seccomp(name);
    if sd.exists() {
        crate::fsutil::remove_tree(&sd)?;
        done.push(format!("deleted {}", sd.display()));
    }
    if purge {
        for p in &leftovers {
            crate::fsutil::remove_tree(p)?;
            done.push(format!("deleted the leftover {}", p.display()));
        }
    }
    purge_tree(env, name, purge, &rootfs, &mut done)?;
    Ok((done, networks))
}

/// Removes the networks lxcprov defined among `networks` that no domain uses any more.
pub fn remove_unused_networks(env: &Env, networks: &[String]) -> Result<Vec<String>> {
    let mut done = vec![];
    for net in networks {
        let net = net.clone();
        if !network_is_ours(env, &net) {
            continue;
        }
        let in_use = env.hv.domains()?.iter().any(|other| {
            env.hv
                .domain_xml(other)
                .ok()
                .and_then(|x| facts::parse_domain(&x).ok())
                .is_some_and(|d| d.interfaces.iter().any(|i| i.network.as_deref() == Some(net.as_str())))
        });
        if !in_use {
            match env.hv.remove_network(&net) {
                Ok(()) => done.push(format!("removed network {net} (no other domain uses it)")),
                // A neighbour destroyed at the same time (lab down) removed it first.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(done)
}

fn purge_tree(env: &Env, name: &Name, purge: bool, rootfs: &std::path::Path, done: &mut Vec<String>) -> Result<()> {
    if purge {
        let layout = crate::storage::Layout::of_container(&env.paths.pool, name)?;
        debug_assert_eq!(layout.driver().target(), rootfs);
        done.extend(crate::storage::snapshot::delete_all(&env.paths.pool, name)?);
        done.extend(layout.driver().remove(env.runner, &env.paths.pool)?);
        let rec = env.paths.record(name);
        if rec.exists() {
            std::fs::remove_file(&rec)?;
        }
        // Its tree is gone: an isolated id range goes back to the registry.
        if let Some(m) = crate::idmap::release(&env.paths.state, name.as_str())? {
            done.push(format!("released its isolated id range (host ids from {})", m.uid.target));
        }
    }
    Ok(())
}
