//! The resolved container spec: a name, a profile with the command line's overrides
//! applied and validated, and the distribution it installs. Rendering the domain and
//! network XML from it. Reads the profile files it is pointed at, the catalog, the id-map
//! registry (`ProfileOptions::of_container`) and the templates; writes nothing.

use crate::context::Context;
use crate::distro::{self, Distro};
use crate::name::Name;
use crate::profile::{self, Profile, SecModel};
use crate::render::{self, DomainSpec, NetworkSpec, Templates};
use anyhow::{Context as _, Result};

/// What the user chose beyond the container's name.
#[derive(Clone, Debug, Default)]
pub struct ProfileOptions {
    /// Profile name (see `lxcprov profiles`).
    pub profile: String,
    /// Override the profile's distribution.
    pub distro: Option<String>,
    /// Override the profile's release.
    pub release: Option<String>,
    /// Override the security driver.
    pub security: Option<SecModel>,
    /// Override the profile's user-namespace map.
    pub idmap: Option<IdmapChoice>,
    /// Override the profile's disk quota (`resources.disk`, such as `2G`).
    pub disk: Option<String>,
}

impl ProfileOptions {
    /// The options an lxcprov container was created with: its domain's metadata (profile,
    /// distro, release, security) and, if the id-map registry holds a range for it, its
    /// isolated map (`rebuild` and `reset` keep both).
    pub fn of_container(meta: &crate::facts::Meta, state_dir: &std::path::Path, name: &Name) -> Result<ProfileOptions> {
        let reg = crate::idmap::read(&crate::idmap::registry_path(state_dir))?;
        Ok(ProfileOptions {
            profile: meta.profile.clone(),
            distro: Some(meta.distro.clone()),
            release: Some(meta.release.clone()),
            security: Some(meta.security.parse().map_err(|e: String| anyhow::anyhow!(e))?),
            idmap: reg.get(name.as_str()).map(|_| IdmapChoice::Isolated),
            // A layer's quota stays with the layer (its image's size).
            disk: None,
        })
    }
}

/// `--idmap`: a range of the container's own, or what the profile says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdmapChoice {
    /// `security.idmap: isolated`, whatever the profile says.
    Isolated,
    /// The profile's own `security.idmap` (a fixed map shared by its containers, or none).
    Profile,
}

impl std::str::FromStr for IdmapChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<IdmapChoice, String> {
        match s {
            "isolated" => Ok(IdmapChoice::Isolated),
            "profile" => Ok(IdmapChoice::Profile),
            _ => Err(format!("unknown id map choice {s:?}: use isolated or profile")),
        }
    }
}

/// A container's name, profile and distro, resolved and validated.
#[derive(Clone)]
pub struct Spec {
    pub name: Name,
    pub profile_name: String,
    pub profile: Profile,
    pub distro: Distro,
    /// What validation warns about (a label range or type allowed on purpose, plain-http
    /// repositories), located `file:line:column`; the caller shows them.
    pub warnings: Vec<String>,
    /// Set when the distro came from the container's name, not the profile.
    pub distro_note: Option<String>,
}

/// Resolves name + profile + overrides. Reads the profile; writes nothing.
pub fn resolve(ctx: &Context, name: &str, o: &ProfileOptions) -> Result<Spec> {
    let name = Name::parse(name)?;
    let loaded = profile::find(&ctx.sources, &o.profile)?;
    let mut p = loaded.profile.clone();
    // `lxcprov create centos7 --profile web`: a container named after a catalog distro gets
    // that distro, unless --distro says otherwise.
    let from_name = o.distro.is_none() && distro::lookup(name.as_str()).is_ok();
    let wanted = if from_name { Some(name.to_string()) } else { o.distro.clone() };
    if let Some(d) = &wanted {
        if *d != p.distro {
            // The profile's release and base packages were chosen for its own distro.
            p.distro = d.clone();
            p.release = None;
            p.base_packages = None;
        }
    }
    if let Some(r) = &o.release {
        p.release = Some(r.clone());
    }
    render::apply_overrides(&mut p, &render::Overrides { security: o.security });
    if o.idmap == Some(IdmapChoice::Isolated) {
        p.security.idmap = Some(profile::IdmapSetting::Isolated(None));
    }
    if let Some(d) = &o.disk {
        p.resources.disk = Some(d.clone());
    }
    let warnings = loaded.revalidate(&p).with_context(|| format!("profile {} with the given options", loaded.name))?;
    let distro = distro::lookup(&p.distro)?;
    let distro_note = (from_name && loaded.profile.distro != distro.name).then(|| {
        format!(
            "distro {} taken from the container's name (the profile {} says {}; --distro chooses another)",
            distro.name, loaded.name, loaded.profile.distro
        )
    });
    Ok(Spec { name, profile_name: loaded.name, profile: p, distro, warnings, distro_note })
}

impl Spec {
    /// The same spec for another container (a lab's next student): resolved once, not per
    /// name. Its notes and warnings were shown for the first.
    pub fn for_name(&self, name: &Name) -> Spec {
        Spec { name: name.clone(), warnings: vec![], distro_note: None, ..self.clone() }
    }

    /// The domain and network XML, from one load of the templates.
    pub fn render(&self, ctx: &Context) -> Result<(String, String)> {
        let t = Templates::load(ctx.templates.as_deref())?;
        let spec = DomainSpec::new(
            &self.name,
            &self.profile_name,
            &self.profile,
            &self.distro,
            &ctx.paths.rootfs(&self.name),
            None,
        )
        .with_seccomp(&self.profile, &ctx.paths.seccomp(&self.name));
        let (views, _) = ctx.proc_views(&self.profile)?;
        let spec = crate::render::DomainSpec {
            proc_views: views.into_iter().map(|(source, target)| crate::render::ProcView { source, target }).collect(),
            ..spec
        };
        Ok((t.domain(&spec)?, t.network(&NetworkSpec::for_profile(&self.profile.network))?))
    }
}
