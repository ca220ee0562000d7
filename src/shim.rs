//! The host side of the shim: the per-container directory (`STATE/seccomp/NAME`) with the
//! shim, the compiled filter and its policy, prepared at create time as a plan action.

use crate::name::Name;
use crate::paths::Paths;
use crate::profile::Profile;
use crate::seccomp::{compile, describe, encode, Policy, FILTER, POLICY, SHIM};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::PathBuf;

/// The init shim built by `build.rs` from `crates/lxcprov-init` (statically linked against
/// glibc, checked there with [`is_static_elf`]'s logic) and embedded in lxcprov.
pub static EMBEDDED_SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lxcprov-init"));

/// Where the shim copied into a container's seccomp directory comes from.
///
/// The embedded one unless `--init-shim` / `LXCPROV_INIT_SHIM` names a file. A
/// `lxcprov-init` lying next to the binary is not looked at any more: the embedded shim was
/// built from the same tree as the lxcprov that writes `filter.bpf` for it, and a file next
/// to the binary may be left over from another build or package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShimSource {
    /// [`EMBEDDED_SHIM`].
    Embedded,
    /// A file given with `--init-shim` (checked static when it is copied).
    File(PathBuf),
}

impl ShimSource {
    /// The shim's bytes: a file is read bounded (a regular file, at most 64 MiB).
    pub fn bytes(&self, choice: &str) -> Result<std::borrow::Cow<'static, [u8]>> {
        match self {
            ShimSource::Embedded => Ok(std::borrow::Cow::Borrowed(EMBEDDED_SHIM)),
            ShimSource::File(p) => crate::fsutil::read_regular_bounded(p, SHIM_MAX, "init shim")
                .with_context(|| {
                    format!(
                        "the seccomp init shim {} (--init-shim / LXCPROV_INIT_SHIM) is needed for security.seccomp {choice}: drop the option to use the one built into lxcprov, or set security.seccomp: none",
                        p.display()
                    )
                })
                .map(std::borrow::Cow::Owned),
        }
    }
}

impl std::fmt::Display for ShimSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimSource::Embedded => write!(f, "the shim built into lxcprov ({} bytes)", EMBEDDED_SHIM.len()),
            ShimSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Everything needed to fill a container's seccomp directory (a plan action's payload).
#[derive(Clone, Debug, Serialize)]
pub struct SeccompDir {
    pub dir: PathBuf,
    /// The shim to copy: the embedded one, or `--init-shim`.
    pub shim: ShimSource,
    /// `security.seccomp` as written.
    pub choice: String,
    pub summary: String,
    pub programs: usize,
    pub instructions: usize,
    /// The policy, as JSON (`policy.json`, for people and for `verify --probe`).
    pub policy_json: String,
    /// The compiled `filter.bpf`.
    #[serde(skip)]
    pub filter: Vec<u8>,
}

/// The directory's contents for a profile; `None` for `security.seccomp: none`.
pub fn plan(paths: &Paths, name: &Name, p: &Profile, shim: &ShimSource) -> Result<Option<SeccompDir>> {
    let choice = p.security.seccomp_choice();
    let Some(policy) = Policy::of(&choice).context("security.seccomp")? else { return Ok(None) };
    Ok(Some(dir_for(paths.seccomp(name), &p.security.seccomp, &policy, shim)?))
}

/// The contents for one policy.
pub fn dir_for(dir: PathBuf, choice: &str, policy: &Policy, shim: &ShimSource) -> Result<SeccompDir> {
    let progs = compile(policy)?;
    Ok(SeccompDir {
        dir,
        shim: shim.clone(),
        choice: choice.to_string(),
        summary: describe(policy),
        programs: progs.len(),
        instructions: progs.iter().map(|p| p.len()).sum(),
        policy_json: serde_json::to_string_pretty(policy)? + "\n",
        filter: encode(&progs),
    })
}

impl std::fmt::Display for SeccompDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.dir.display();
        writeln!(f, "   mkdir  {d}  (mode 755, owned by root; bind-mounted read-only at /.lxcprov)")?;
        writeln!(f, "   copy   {} -> {d}/{SHIM}  (the init shim, mode 755: must be statically linked)", self.shim)?;
        writeln!(
            f,
            "   write  {d}/{FILTER}  (seccomp {}: {}; {} programs, {} instructions)",
            self.choice, self.summary, self.programs, self.instructions
        )?;
        writeln!(f, "   write  {d}/{POLICY}  (the policy it was compiled from)")
    }
}

/// Whether an ELF file needs no program interpreter (is statically linked).
pub fn is_static_elf(bytes: &[u8]) -> Result<bool> {
    crate::seccomp::elf::is_static_elf(bytes).map_err(anyhow::Error::msg)
}

/// Largest shim lxcprov copies.
const SHIM_MAX: u64 = 64 << 20;

/// Fills the directory: the shim (checked static), `filter.bpf`, `policy.json`. Files are
/// written atomically, root-owned, not writable by anyone else; the container sees them
/// read-only and, in a user namespace, as files of an unmapped owner.
pub fn prepare(s: &SeccompDir) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shim = s.shim.bytes(&s.choice)?;
    if !is_static_elf(&shim).with_context(|| format!("init shim {}", s.shim))? {
        bail!(
            "the init shim {} is dynamically linked: it runs inside the container before its init, where the host's libc may be missing. Build it statically (scripts/build-shim.sh), or drop --init-shim to use the one built into lxcprov",
            s.shim
        );
    }
    for d in [s.dir.parent().context("seccomp dir has no parent")?, &s.dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    crate::fsutil::write_atomic(&s.dir.join(SHIM), &shim, 0o755)?;
    crate::fsutil::write_atomic(&s.dir.join(FILTER), &s.filter, 0o644)?;
    crate::fsutil::write_atomic(&s.dir.join(POLICY), s.policy_json.as_bytes(), 0o644)?;
    Ok(())
}

/// What `verify`'s `seccomp` check expects of a domain: from its metadata (what was asked),
/// its `<init>` (the shim?) and its `/.lxcprov` mount (the filter file).
pub fn expect(d: &crate::facts::DomainXml) -> crate::verify::SeccompExpect {
    use crate::seccomp::SeccompExpect;
    let asked = d.meta.as_ref().and_then(|m| m.seccomp.clone());
    let shim = d.init.as_deref() == Some(crate::seccomp::GUEST_SHIM);
    match (asked.as_deref(), shim, &d.seccomp_dir) {
        (Some("none"), false, _) | (None, false, _) => SeccompExpect::Off,
        (Some(a), false, _) => SeccompExpect::Broken(format!(
            "security.seccomp is {a}, but the domain's init is {}, not lxcprov's shim {}: nothing installs the filter",
            d.init.as_deref().unwrap_or("unset"),
            crate::seccomp::GUEST_SHIM
        )),
        (_, true, None) => SeccompExpect::Broken(format!(
            "the init is {} but the domain mounts nothing at {}",
            crate::seccomp::GUEST_SHIM,
            crate::seccomp::GUEST_DIR
        )),
        (_, true, Some(dir)) => {
            let file = dir.join(FILTER);
            let programs = crate::fsutil::read_state(&file, 1 << 20, "seccomp filter")
                .and_then(|b| b.with_context(|| format!("{} is missing", file.display())))
                .and_then(|b| crate::seccomp::decode(&b).map(|p| p.len()));
            match programs {
                Err(e) => SeccompExpect::Broken(format!("{e:#}")),
                Ok(programs) => {
                    let summary = Policy::load_state(&dir.join(POLICY))
                        .map(|p| describe(&p))
                        .unwrap_or_else(|e| format!("{POLICY} unreadable: {e:#}"));
                    SeccompExpect::Filters { file, programs, summary }
                }
            }
        }
    }
}
