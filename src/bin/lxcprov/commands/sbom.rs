//! `lxcprov sbom NAME` / `sbom --rootfs DIR`: the installed packages as CycloneDX 1.5 JSON,
//! read with the guest's own package database. Reads only.

use super::Outcome;
use crate::cli::SbomArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::sbom;

pub fn run(ctx: &Context, out: &Out, a: &SbomArgs) -> Result<Outcome> {
    let subject = match (&a.name, &a.rootfs) {
        (Some(n), _) => sbom::subject_for(&ctx.paths, &Name::parse(n)?)?,
        (None, Some(dir)) => {
            let dir = super::rootfs_dir(ctx, dir, "sbom")?;
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
            sbom::Subject { name, rootfs: dir.display().to_string(), ..Default::default() }
        }
        (None, None) => unreachable!("clap requires NAME or --rootfs"),
    };
    let inv = sbom::inventory(std::path::Path::new(&subject.rootfs), &ctx.runner())?;
    ctx.ui.info(&format!(
        "{} packages from {} {} in {}",
        inv.packages.len(),
        match inv.format {
            sbom::Format::Dpkg => "dpkg",
            sbom::Format::Rpm => "rpm",
        },
        inv.database,
        subject.rootfs
    ));
    let bom = sbom::cyclonedx(&inv, &subject, a.timestamp.then(sbom::now_rfc3339));
    if out.json {
        out.record("sbom", &bom)?;
    } else {
        out.text(&(serde_json::to_string_pretty(&bom)? + "\n"))?;
    }
    Ok(Outcome::Ok)
}
