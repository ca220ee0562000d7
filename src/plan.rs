//! One plan, two uses: a list of [`Step`]s of concrete [`Action`]s. Execution runs exactly
//! these actions (bootstrap's and the container's executors match on them), and
//! `--dry-run` prints exactly these actions, so the two cannot drift apart. What each action
//! says in `--dry-run` is written beside the code that runs it: a storage driver's in
//! `storage::actions`, bootstrap's in `bootstrap::run` (`describe`, next to its executor),
//! the container's in `container::create` (which implements `Display` for [`Action`]).

use crate::exec::Cmd;
use serde::Serialize;
use std::path::PathBuf;

/// One file written into the guest.
#[derive(Clone, Debug, Serialize)]
pub struct GuestFile {
    pub path: String,
    pub mode: u32,
    pub why: &'static str,
    /// The content; `None` for secrets, which are shown redacted.
    pub content: Option<String>,
    /// Append the line unless present, instead of replacing the file.
    pub append_line: bool,
    /// Remove what matches `path` (`DIR/prefix*`) instead of writing.
    pub remove: bool,
}

/// One thing a run does, with everything needed to do it (secrets excepted: the root
/// password's hash is handed to the executor, never stored in a plan).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Take the per-name lock (held until the run ends).
    Lock {
        path: PathBuf,
    },
    Mkdir {
        path: PathBuf,
    },
    /// A directory only root may enter (an import's partial tree while it is filled).
    MkdirPrivate {
        path: PathBuf,
        mode: u32,
    },
    /// Write a host-side file lxcprov owns (rpm macros, the yum configuration).
    WriteFile {
        path: PathBuf,
        mode: u32,
        why: String,
        content: String,
    },
    /// Take a lock on a shared cache for the rest of the build: exclusive for a package
    /// cache (one installer at a time writes into it), shared for a base entry being copied.
    LockCache {
        path: PathBuf,
        shared: bool,
        what: String,
    },
    /// Fetch or copy a signing key into lxcprov's cache and check its fingerprint against
    /// the pins; only that copy is given to the installer.
    PinKey {
        key: crate::distro::PinnedKey,
        pins: Vec<String>,
        homedir: PathBuf,
    },
    /// Export exactly the pinned keys from an archive keyring for debootstrap.
    PinKeyring {
        source: PathBuf,
        pins: Vec<String>,
        dest: PathBuf,
        homedir: PathBuf,
    },
    /// Re-register the installed packages with the guest's own rpm (`--justdb`), for a
    /// database format the host's rpm cannot write (CentOS 7: Berkeley DB).
    RegisterWithGuestRpm {
        root: PathBuf,
        /// Where the verified package files are (dnf's cache, local repositories).
        search: Vec<PathBuf>,
        dbpath: String,
    },
    /// The guest's own tool must list what was installed, or the tree is not moved into place.
    CheckPackageDb {
        root: PathBuf,
        family: crate::distro::Family,
        dbpath: String,
    },
    /// Refuse to copy `src` into `dest` when it cannot fit (a clear "disk full" up front).
    CheckSpace {
        src: PathBuf,
        dest: PathBuf,
    },
    /// Run a command (argv as data) and stream its output to stderr.
    Run {
        cmd: Cmd,
    },
    /// `cp -a --reflink=auto FROM TO`.
    CopyTree {
        from: PathBuf,
        to: PathBuf,
    },
    /// Remove a file or tree that must not be kept (the cache marker in a copy).
    Remove {
        path: PathBuf,
    },
    /// Drop device nodes and loose modes from an imported tree.
    NormaliseImport {
        root: PathBuf,
    },
    /// Keep a copy of the installed tree as the base-rootfs cache entry:
    /// copy to `ENTRY.partial`, write the marker, rename to `ENTRY`.
    StoreBase {
        from: PathBuf,
        entry: PathBuf,
    },
    /// Write the guest's files under `root`, and root's password hash into /etc/shadow.
    ConfigureGuest {
        root: PathBuf,
        files: Vec<GuestFile>,
        password: String,
    },
    /// The per-container record (how it was bootstrapped).
    WriteRecord {
        path: PathBuf,
    },
    /// Shift the tree's ownership into the user namespace (recorded, never twice).
    ShiftIdmap {
        root: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// Define (if absent) and start the isolated network.
    EnsureNetwork {
        name: String,
        xml: String,
    },
    /// Fill the container's seccomp directory: the init shim, its compiled filter, policy.
    PrepareSeccomp(crate::shim::SeccompDir),
    DefineDomain {
        name: String,
        uri: String,
        xml: String,
    },
    /// Start the domain and wait for evidence that its init runs.
    Start {
        name: String,
    },
    Verify {
        name: String,
        checks: String,
    },
    /// A storage driver's own action (its text and its execution are in `storage`).
    #[serde(untagged)]
    Storage(crate::storage::Action),
}

/// A numbered step of a plan: what it achieves and the actions that achieve it.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub title: String,
    pub actions: Vec<Action>,
}

impl Step {
    pub fn new(title: impl Into<String>, actions: Vec<Action>) -> Step {
        Step { title: title.into(), actions }
    }
}

/// Text shown as a block under an action (`   | line`).
pub fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   | {l}\n")).collect()
}

/// The numbered human rendering of steps: `\nN. title\n   actions...`.
pub fn render_steps(steps: &[Step]) -> String {
    let mut s = String::new();
    for (i, st) in steps.iter().enumerate() {
        s += &format!("\n{}. {}\n", i + 1, st.title);
        for a in &st.actions {
            s += &a.to_string();
        }
    }
    s
}
