//! What every operation runs with: where things live, how to report, which libvirt.
//! Built once by the command layer from its options; the library never sees CLI types.

use crate::exec::SystemRunner;
use crate::output::{Observer, Verbosity};
use crate::paths::Paths;
use crate::profile;
use std::path::PathBuf;

/// The lxcfs files to bind (source, target), and a note when `auto` found no lxcfs.
pub type ProcViews = (Vec<(String, String)>, Option<String>);

pub struct Context {
    /// Where progress and messages go (the binary's terminal UI; [`crate::output::Silent`] in tests).
    pub ui: Box<dyn Observer + Send>,
    pub paths: Paths,
    /// Where profiles come from (system directory, extra files).
    pub sources: profile::Sources,
    /// `--templates DIR`: DIR/domain.xml and DIR/network.xml instead of the built-in ones.
    pub templates: Option<PathBuf>,
    /// The libvirt connection URI.
    pub uri: String,
    /// Forces the rpm installer (dnf, dnf5 or yum) instead of choosing from the host's.
    pub rpm_tool: Option<crate::bootstrap::Tool>,
    /// `--init-shim PATH` (`LXCPROV_INIT_SHIM`): the seccomp init shim to copy into each
    /// container's shim directory; by default the one built into lxcprov.
    pub init_shim: Option<PathBuf>,
    /// `--storage` (`LXCPROV_STORAGE`): how new containers' trees are stored.
    pub storage: crate::storage::Choice,
    /// `--lxcfs-dir` (`LXCPROV_LXCFS_DIR`): where the host's lxcfs is mounted.
    pub lxcfs: PathBuf,
}

impl Context {
    /// The lxcfs `/proc` files a container with `p`'s profile gets bind-mounted over its own
    /// (source, target), or why none: `Ok(None)` with a note when `auto` finds no lxcfs.
    pub fn proc_views(&self, p: &profile::Profile) -> anyhow::Result<ProcViews> {
        use profile::ProcViews;
        let state = crate::host::lxcfs_state(&self.lxcfs);
        let what = match state {
            crate::host::Lxcfs::Stale => {
                format!("lxcfs's mount at {} is stale (its daemon is gone)", self.lxcfs.display())
            }
            _ => format!("lxcfs is not mounted at {}", self.lxcfs.display()),
        };
        let mounted = state == crate::host::Lxcfs::Live;
        match (p.resources.proc_views, mounted) {
            (ProcViews::Off, _) => Ok((vec![], None)),
            (ProcViews::Auto, false) => Ok((vec![], Some(format!(
                "{what}: containers see the host's uptime, load and CPUs (scripts/setup-host.sh starts lxcfs again; or set resources.proc_views: off)"
            )))),
            (ProcViews::Lxcfs, false) => anyhow::bail!(
                "the profile asks for resources.proc_views: lxcfs, but {what}; start lxcfs (scripts/setup-host.sh does), or use auto"
            ),
            (_, true) => Ok((
                profile::LXCFS_PROC_FILES
                    .iter()
                    .map(|f| (self.lxcfs.join("proc").join(f).display().to_string(), format!("/proc/{f}")))
                    .collect(),
                None,
            )),
        }
    }

    /// The real command runner (echoes each command at `-v`).
    pub fn runner(&self) -> SystemRunner {
        SystemRunner { echo: self.ui.verbosity() == Verbosity::Verbose }
    }

    /// Where the seccomp init shim comes from: `--init-shim`, else the one built into
    /// lxcprov (see [`crate::shim::ShimSource`] for why a file next to the binary
    /// is not used).
    pub fn init_shim(&self) -> crate::shim::ShimSource {
        use crate::shim::ShimSource;
        self.init_shim.clone().map_or(ShimSource::Embedded, ShimSource::File)
    }
}
