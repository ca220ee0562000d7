//! `lab snapshot LAB [--tag T]` and `lab restore LAB [--student N] TAG`: every student's
//! snapshot under one tag, and every student (or one) put back to it, by the worker pool.

use crate::context::Context;
use crate::ops::lab_reset::{for_each_student, students};
use crate::ops::reset::guest_of;
use crate::storage::snapshot;
use crate::verify::Report;
use anyhow::Result;

/// Takes snapshot `tag` of every student; without a tag, `snap-N` with N one more than the
/// highest any student has, so the class shares one tag. The tag used.
pub fn snapshot_lab(ctx: &Context, lab: &str, tag: Option<&str>) -> Result<String> {
    let tag = match tag {
        Some(t) => t.to_string(),
        None => {
            let (_, names) = students(ctx, lab, None)?;
            let mut highest = 0;
            for m in &names {
                highest = highest.max(snapshot::highest_numbered(&ctx.paths.pool, m)?);
            }
            format!("snap-{}", highest + 1)
        }
    };
    snapshot::check_tag(&tag)?;
    crate::container::require_root("lab snapshot")?;
    for_each_student(ctx, lab, None, "snapshots", &|env, n| {
        crate::container::snapshot::take(env, n, Some(&tag)).map(|_| None)
    })?;
    Ok(tag)
}

/// Puts every student (or student N) back to snapshot `tag`; the reports of those that run
/// again. The caller has confirmed.
pub fn restore_lab(ctx: &Context, lab: &str, student: Option<u32>, tag: &str) -> Result<Vec<Report>> {
    snapshot::check_tag(tag)?;
    crate::container::require_root("lab restore")?;
    for_each_student(ctx, lab, student, "restores", &|env, n| {
        let s = snapshot::find(&env.paths.pool, n, tag)?;
        crate::container::reset::reset_onto(env, n, &guest_of(ctx, &env.container(n)?)?, None, Some(&s), false)
    })
}
