//! `lab down LAB [--purge]`: every student's domain stopped and undefined one at a time
//! (libvirt races with machined otherwise), then their trees removed by the worker pool, the
//! lab's networks and MCS levels given back, and its record removed.

use crate::container;
use crate::context::Context as Ctx;
use crate::lab::{load, record_path};
use crate::name::Name;
use anyhow::{bail, Result};
use std::sync::Mutex;

/// Destroys the lab's containers (with `purge`, their trees too); the caller has confirmed.
pub fn down(ctx: &Ctx, lab: &str, purge: bool) -> Result<()> {
    let rec = load(ctx, lab)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &Name::parse(&rec.name)?)?;
    let errors: Mutex<Vec<String>> = Mutex::new(vec![]);
    let networks: Mutex<Vec<String>> = Mutex::new(vec![]);
    // First every domain is stopped and undefined, one at a time: libvirt on systemd hosts
    // races with machined when several LXC domains are destroyed at once ("Unable to read
    // .../machine-lxc-...scope/cgroup.controllers"). That part is quick.
    container::with_real_env(ctx, &*ctx.ui, |env| {
        // Every init gets SIGKILL first, so the students stop together, not one by one.
        for m in &rec.members {
            if env.hv.domain_exists(m)? && env.hv.domain_state(m)? == crate::libvirt::State::Running {
                container::run::signal_init(env, &Name::parse(m)?);
            }
        }
        for m in &rec.members {
            let n = Name::parse(m)?;
            if !env.hv.domain_exists(m)? {
                continue;
            }
            let _lock = crate::state::lock(&ctx.paths, &n)?;
            match container::destroy::destroy_keeping_networks(env, &n, false) {
                Ok((done, nets)) => {
                    done.iter().for_each(|d| ctx.ui.info(d));
                    networks.lock().unwrap().extend(nets);
                }
                Err(e) => errors.lock().unwrap().push(format!("{m}: {e:#}")),
            }
        }
        Ok(())
    })?;
    // Then the trees go in parallel: deleting them is waiting on the disk, not work.
    let down_one = |env: &container::Env, m: &str| -> Result<()> {
        let n = Name::parse(m)?;
        if !purge || env.hv.domain_exists(m)? {
            return Ok(());
        }
        let _lock = crate::state::lock(&ctx.paths, &n)?;
        match container::destroy::destroy_keeping_networks(env, &n, true) {
            Ok((done, _)) => done.iter().for_each(|d| ctx.ui.info(d)),
            // Nothing of it left (no tree, no leftovers): fine.
            Err(e) if e.is::<container::NotFound>() => {}
            Err(e) => return Err(e),
        }
        Ok(())
    };
    let failed = crate::pool::run(&rec.members, 8, |next| {
        container::with_real_env(ctx, &*ctx.ui, |env| {
            while let Some(m) = next() {
                if let Err(e) = down_one(env, m) {
                    errors.lock().unwrap().push(format!("{m}: {e:#}"));
                }
            }
            Ok(())
        })
    });
    errors.lock().unwrap().extend(failed.iter().map(|e| format!("{e:#}")));
    let mut errors = errors.into_inner().unwrap();
    // The lab's networks go once every member is down (in parallel they would race).
    let mut nets = networks.into_inner().unwrap();
    nets.sort();
    nets.dedup();
    match container::with_real_env(ctx, &*ctx.ui, |env| container::destroy::remove_unused_networks(env, &nets)) {
        Ok(done) => done.iter().for_each(|d| ctx.ui.info(d)),
        Err(e) => errors.push(format!("{e:#}")),
    }
    errors.sort();
    errors.dedup();
    if !errors.is_empty() {
        bail!("lab {} is only partly down: {}", rec.name, errors.join("; "));
    }
    if let Ok(mut reg) = crate::mac::registry::open(&ctx.paths.state) {
        for m in &rec.members {
            reg.reg.release(m);
        }
        reg.save()?;
    }
    let lab_name = Name::parse(&rec.name)?;
    if rec.ceilings.is_some() {
        let tree = crate::cgroups::Tree::of(&crate::host::HostRoot::real());
        if let Err(e) = crate::cgroups::remove_partition(&tree, &ctx.runner(), &lab_name) {
            ctx.ui.warn(&format!("{e:#}"));
        }
    }
    if purge {
        crate::fsutil::remove_tree(&ctx.paths.state.join("labs").join(lab_name.as_str()))?;
    }
    std::fs::remove_file(record_path(ctx, &lab_name))?;
    ctx.ui.info(&format!("lab {} is down", rec.name));
    Ok(())
}
