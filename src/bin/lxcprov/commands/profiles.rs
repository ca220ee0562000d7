//! `lxcprov profiles` and `lxcprov profiles show NAME`.

use super::Outcome;
use crate::cli::ProfilesAction;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::profile;

pub fn run(ctx: &Context, out: &Out, action: Option<ProfilesAction>) -> Result<Outcome> {
    match action {
        None => list(ctx, out),
        Some(ProfilesAction::Show { name }) => show(ctx, out, &name),
    }
}

fn list(ctx: &Context, out: &Out) -> Result<Outcome> {
    let all = profile::load_all(&ctx.sources)?;
    let w = all.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for l in &all {
        if out.json {
            out.record(
                "profile",
                &serde_json::json!({
                    "name": l.name, "source": l.source, "distro": l.profile.distro,
                    "description": l.profile.description,
                }),
            )?;
        } else {
            out.text(&format!(
                "{:w$}  {:14}  {}  [{}]\n",
                lxcprov::text::for_terminal(&l.name),
                lxcprov::text::for_terminal(&l.profile.distro),
                lxcprov::text::for_terminal(&l.profile.description),
                lxcprov::text::for_terminal(&l.source.to_string())
            ))?;
        }
    }
    Ok(Outcome::Ok)
}

fn show(ctx: &Context, out: &Out, name: &str) -> Result<Outcome> {
    let l = profile::find(&ctx.sources, name)?;
    if out.json {
        out.record("profile", &serde_json::json!({"name": l.name, "source": l.source, "profile": l.profile}))?;
    } else {
        out.text(&format!("# profile {} from {}\n{}", l.name, l.source, lxcprov::yaml::to_string(&l.profile)?))?;
    }
    Ok(Outcome::Ok)
}
