//! `lxcprov verify NAME [--probe]`: the paper's claims, checked on the running container.

use super::{print_report, Outcome};
use crate::cli::VerifyArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::ops::verify::VerifyOptions;

pub fn run(ctx: &Context, out: &Out, a: &VerifyArgs) -> Result<Outcome> {
    let name = Name::parse(&a.name)?;
    let opts = VerifyOptions { expect: a.expect.clone(), probe: a.probe, peer: a.peer.clone() };
    print_report(ctx, out, &lxcprov::ops::verify::verify(ctx, &name, &opts)?)
}
