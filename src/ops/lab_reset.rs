//! `lab reset LAB [--student N]`: students' containers back to the golden base, by the
//! worker pool (each worker one libvirt connection), one failure not stopping the rest.

use crate::container::Env;
use crate::context::Context;
use crate::name::Name;
use crate::ops::reset::{guest_of, reset};
use crate::verify::Report;
use anyhow::{bail, Result};
use std::sync::Mutex;

/// `lab reset LAB [--student N]`: resets every student (or the Nth, counting from 1), in
/// parallel; returns the reports of those that run again. One failure does not stop the rest.
pub fn reset_lab(ctx: &Context, lab: &str, student: Option<u32>) -> Result<Vec<Report>> {
    for_each_student(ctx, lab, student, "resets", &|env, n| reset(env, n, &guest_of(ctx, &env.container(n)?)?))
}

/// The lab's students (or student N, counting from 1), by name.
pub(crate) fn students(ctx: &Context, lab: &str, student: Option<u32>) -> Result<(Name, Vec<Name>)> {
    let rec = crate::lab::load(ctx, lab)?;
    let lab_name = Name::parse(&rec.name)?;
    let names = crate::lab::member_names(&lab_name, &rec.prefix, rec.members.len() as u32)?;
    let names = match student {
        None => names,
        Some(n) => {
            let Some(m) = (n as usize).checked_sub(1).and_then(|i| names.get(i)) else {
                bail!("lab {lab} has students 1 to {}; there is no student {n}", rec.members.len());
            };
            vec![m.clone()]
        }
    };
    Ok((lab_name, names))
}

/// Runs `f` on every student (or student N) by the worker pool, each under its lock and the
/// lab's; one failure does not stop the rest, and all of them are said at the end (`what`:
/// "resets"). The reports of those that run again, by name.
pub(crate) fn for_each_student(
    ctx: &Context,
    lab: &str,
    student: Option<u32>,
    what: &str,
    f: &(dyn Fn(&Env, &Name) -> Result<Option<Report>> + Sync),
) -> Result<Vec<Report>> {
    let (lab_name, members) = students(ctx, lab, student)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &lab_name)?;
    let reports = Mutex::new(vec![]);
    let errors = Mutex::new(vec![]);
    let failed = crate::pool::run(&members, 4, |next| {
        crate::container::with_real_env(ctx, &*ctx.ui, |env| {
            while let Some(n) = next() {
                let one = crate::state::lock(&ctx.paths, n).and_then(|_lock| f(env, n));
                match one {
                    Ok(Some(r)) => reports.lock().unwrap().push(r),
                    Ok(None) => {}
                    Err(e) => errors.lock().unwrap().push(format!("{n}: {e:#}")),
                }
            }
            Ok(())
        })
    });
    let mut errors = errors.into_inner().unwrap();
    errors.extend(failed.iter().map(|e| format!("{e:#}")));
    if !errors.is_empty() {
        bail!("lab {lab}: {} of {} {what} failed: {}", errors.len(), members.len(), errors.join("; "));
    }
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}
