//! `lxcprov rebuild NAME`: a fresh root filesystem from the container's own profile, swapped
//! in (paper, section 4.2: update by rebuilding).

use super::{print_report, Outcome};
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::ops::rebuild::RebuildOptions;
use std::path::PathBuf;

pub fn run(
    ctx: &Context,
    out: &Out,
    name: &str,
    rootfs_from: Option<PathBuf>,
    mirror: Option<String>,
) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let report = lxcprov::ops::rebuild::rebuild(ctx, &name, &RebuildOptions { rootfs_from, mirror })?;
    print_report(ctx, out, &report)
}
