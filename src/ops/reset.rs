//! `reset` and `lab reset`: an overlay container back to its golden base in O(1) (the
//! mechanism is [`crate::container::reset::reset_onto`]), with the configuration it was
//! created with, a lab's student keeping its address and key.

use crate::bootstrap::GuestConfig;
use crate::container::Env;
use crate::name::Name;
use crate::verify::Report;
use anyhow::{bail, Result};

/// Resets `name`; returns its verify report when it was running (it runs again).
pub fn reset(env: &Env, name: &Name, guest: &GuestConfig) -> Result<Option<Report>> {
    crate::container::reset::reset_onto(env, name, guest, None, false)
}

/// The guest configuration of an lxcprov container, from its domain's metadata (profile,
/// distro, release, security as created).
pub fn guest_of(ctx: &crate::context::Context, env: &Env, name: &Name) -> Result<GuestConfig> {
    let d = crate::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    let Some(meta) = d.meta else {
        bail!("{name} was not created by lxcprov (no lxcprov metadata): there is nothing to reset it to");
    };
    let opts = crate::spec::ProfileOptions::of_container(&meta, &ctx.paths.state, name)?;
    let mut s = crate::spec::resolve(ctx, name.as_str(), &opts)?;
    // A lab's student keeps its address, sshd and key (as `rebuild` does).
    let key = match crate::lab::access_of_member(ctx, name) {
        Some(acc) => crate::lab::apply_access(&mut s, &acc)?,
        None => None,
    };
    Ok(crate::bootstrap::guest_config(name, &s.profile, &s.distro, key))
}

/// `lab reset LAB [--student N]`: resets every student (or the Nth, counting from 1), in
/// parallel; returns the reports of those that run again. One failure does not stop the rest.
pub fn reset_lab(ctx: &crate::context::Context, lab: &str, student: Option<u32>) -> Result<Vec<Report>> {
    let rec = crate::lab::load(ctx, lab)?;
    let lab_name = Name::parse(&rec.name)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &lab_name)?;
    let members: Vec<String> = match student {
        None => rec.members.clone(),
        Some(n) => {
            let names = crate::lab::member_names(&lab_name, &rec.prefix, rec.members.len() as u32)?;
            let Some(m) = (n as usize).checked_sub(1).and_then(|i| names.get(i)) else {
                bail!("lab {lab} has students 1 to {}; there is no student {n}", rec.members.len());
            };
            vec![m.to_string()]
        }
    };
    let queue = std::sync::Mutex::new(members.iter());
    let reports = std::sync::Mutex::new(vec![]);
    let errors = std::sync::Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..members.len().clamp(1, 4) {
            s.spawn(|| {
                let r = crate::container::with_real_env(ctx, &*ctx.ui, |env| loop {
                    let next = queue.lock().unwrap().next();
                    let Some(m) = next else { return Ok(()) };
                    let one = (|| -> Result<Option<Report>> {
                        let n = Name::parse(m)?;
                        let _lock = crate::state::lock(&ctx.paths, &n)?;
                        reset(env, &n, &guest_of(ctx, env, &n)?)
                    })();
                    match one {
                        Ok(Some(r)) => reports.lock().unwrap().push(r),
                        Ok(None) => {}
                        Err(e) => errors.lock().unwrap().push(format!("{m}: {e:#}")),
                    }
                });
                if let Err(e) = r {
                    errors.lock().unwrap().push(format!("{e:#}"));
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        bail!("lab {lab}: {} of {} resets failed: {}", errors.len(), members.len(), errors.join("; "));
    }
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}
