//! What every operation runs with: where things live, how to report, which libvirt.
//! Built once by the command layer from its options; the library never sees CLI types.

use crate::exec::SystemRunner;
use crate::output::{Observer, Verbosity};
use crate::paths::Paths;
use crate::profile;
use std::path::PathBuf;

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
}

impl Context {
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
