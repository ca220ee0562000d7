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
    let mut done = vec![];
    let rootfs = env.paths.rootfs(name);
    let exists = env.hv.domain_exists(name.as_str())?;
    if !exists && (!purge || !rootfs.exists()) {
        bail!("no container named {name} on {}", env.hv.uri());
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
            env.hv.destroy_domain(name.as_str())?;
            done.push(format!("stopped {name}"));
        }
        env.hv.undefine_domain(name.as_str())?;
        done.push(format!("undefined domain {name}"));
    }
    // The seccomp shim directory belongs to the domain, not to the rootfs.
    let sd = env.paths.seccomp(name);
    if sd.exists() {
        crate::fsutil::remove_tree(&sd)?;
        done.push(format!("deleted {}", sd.display()));
    }
    for net in networks {
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
            env.hv.remove_network(&net)?;
            done.push(format!("removed network {net} (no other domain uses it)"));
        }
    }
    if purge {
        if rootfs.exists() {
            crate::fsutil::remove_tree(&rootfs)?;
            done.push(format!("deleted {}", rootfs.display()));
        }
        let rec = env.paths.record(name);
        if rec.exists() {
            std::fs::remove_file(&rec)?;
        }
    }
    Ok(done)
}
