//! Rebuilding a container's root filesystem from its profile (paper, section 4.2).

use super::create::shift_for_idmap;
use super::inspect::verify_domain;
use super::run::{start_and_wait, stop};
use super::Env;
use crate::bootstrap;
use crate::libvirt::State;
use crate::profile::Profile;
use crate::revert::{Revert, Undone};
use crate::state::Record;
use crate::storage::driver::Rebuild;
use crate::verify::Report;
use anyhow::{Context, Result};
use std::time::Duration;

/// Rebuilds a container (paper 4.2): a fresh root filesystem from `plan`, built beside the
/// running one, then swapped in while the container is stopped; same name, domain, network,
/// label policy and idmap (the new tree is shifted and labelled again), same root password.
/// If anything after the swap fails, the old tree is put back and the container restarted.
pub fn rebuild(env: &Env, plan: &bootstrap::Plan, p: &Profile) -> Result<Report> {
    let name = &plan.name;
    if !env.hv.domain_exists(name.as_str())? {
        return Err(env.not_found(name.as_str()));
    }
    let old = crate::storage::Layout::of_container(&env.paths.pool, name)?;
    if let Rebuild::NewLayer(new) = old.rebuild_onto(name, &plan.layout)? {
        // A fresh layer on the base the plan names (prepared now), the container's own
        // configuration and password re-applied; the domain stays.
        crate::storage::prepare_base(env.runner, new, &|| env.ui.info("waiting for another run preparing the base"))?;
        let r = super::reset::reset_onto(env, name, &plan.guest, Some(new), None, true)?;
        return r.context("internal error: the rebuilt container did not start");
    }
    let rootfs = env.paths.rootfs(name);
    let hash = bootstrap::root_hash(&rootfs)
        .with_context(|| format!("{} has no root password hash to carry over", rootfs.display()))?;
    let packages = bootstrap::build(plan, env.runner, &hash, env.ui)?;
    let was_running = env.hv.domain_state(name.as_str())? == State::Running;
    if was_running {
        stop(env, name, Duration::from_secs(30))?;
    }
    let old = env.paths.old(name);
    crate::fsutil::remove_tree(&old)?;
    let record_path = env.paths.record(name);
    let old_record = Record::load(&record_path)?;
    std::fs::rename(&rootfs, &old).with_context(|| format!("moving {} aside", rootfs.display()))?;
    let mut revert = Revert::new();
    // Undone last: the old tree back in place, its record, and the container as it was.
    revert.add(format!("the old root filesystem of {name}"), || {
        if env.hv.domain_state(name.as_str()).ok() == Some(State::Running) {
            let _ = env.hv.destroy_domain(name.as_str());
        }
        let failed = env.paths.failed(name);
        crate::fsutil::remove_tree(&failed)?;
        if rootfs.exists() {
            std::fs::rename(&rootfs, &failed)?;
        }
        std::fs::rename(&old, &rootfs)?;
        match &old_record {
            Some(r) => r.save(&record_path)?,
            None => {
                let _ = std::fs::remove_file(&record_path);
            }
        }
        crate::fsutil::remove_tree(&failed)?;
        if was_running {
            start_and_wait(env, name)?;
        }
        Ok(Undone::Kept(format!(
            "the old root filesystem was kept{}",
            if was_running { " and the container restarted on it" } else { "" }
        )))
    });
    let attempt = (|| -> Result<Report> {
        std::fs::rename(&plan.partial, &rootfs)
            .with_context(|| format!("moving the new tree to {}", rootfs.display()))?;
        Record { packages, ..bootstrap::record_for(plan) }.save(&record_path)?;
        shift_for_idmap(env, name, p)?;
        start_and_wait(env, name)?;
        verify_domain(env, name)
    })();
    match attempt {
        Ok(r) => {
            revert.success();
            crate::fsutil::remove_tree(&old)?;
            Ok(r)
        }
        Err(e) => {
            let undone = revert.fail();
            if undone.failed.is_empty() {
                Err(e.context(format!("rebuilding {name} failed; {}", undone.kept.join("; "))))
            } else {
                Err(e.context(format!(
                    "rebuilding {name} failed, and restoring the old root filesystem failed too ({}); the old tree is at {}",
                    undone.failed.join("; "),
                    old.display()
                )))
            }
        }
    }
}
