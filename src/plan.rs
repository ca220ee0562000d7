//! One plan, two uses: a list of [`Step`]s of concrete [`Action`]s. Execution runs exactly
//! these actions (bootstrap's and the container's executors match on them), and
//! `--dry-run` prints exactly these actions, so the two cannot drift apart. A storage
//! driver's actions are its own ([`crate::storage::Action`]): their text sits beside the code
//! that runs them.

use crate::exec::Cmd;
use serde::Serialize;
use std::fmt;
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

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   | {l}\n")).collect()
}

impl fmt::Display for Action {
    /// The lines `--dry-run` prints for this action.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Lock { path } => writeln!(f, "   lock   {}", path.display()),
            Action::Mkdir { path } => writeln!(f, "   mkdir  {}", path.display()),
            Action::LockCache { path, shared, what } => writeln!(
                f,
                "   lock   {}  ({what}, {})",
                path.display(),
                if *shared { "shared" } else { "exclusive, waits for other runs" }
            ),
            Action::MkdirPrivate { path, mode } => writeln!(f, "   mkdir  {}  (mode {mode:o})", path.display()),
            Action::WriteFile { path, mode, why, content } => {
                write!(f, "   write  {}  ({why}, mode {mode:o})\n{}", path.display(), indent(content))
            }
            Action::PinKey { key, pins, .. } => {
                writeln!(f, "   key    {} -> {}", key.url, key.local.display())?;
                if pins.is_empty() {
                    writeln!(f, "          fingerprint: NOT PINNED (trusted as fetched; warned)")
                } else {
                    let p: Vec<String> = pins.iter().map(|p| crate::distro::pretty_fingerprint(p)).collect();
                    writeln!(f, "          fingerprint must be {}", p.join(" or "))
                }
            }
            Action::PinKeyring { source, pins, dest, .. } => {
                writeln!(f, "   keys   {} -> {} (only the pinned keys)", source.display(), dest.display())?;
                for p in pins {
                    writeln!(f, "          fingerprint {}", crate::distro::pretty_fingerprint(p))?;
                }
                Ok(())
            }
            Action::RegisterWithGuestRpm { root, search, dbpath } => write!(
                f,
                "   copy   the installed packages' files from {} to {}/var/tmp/lxcprov-rpms\n   move   {}{dbpath} aside (the host rpm's database)\n   run    chroot {} /usr/bin/rpm -i --justdb --nodeps --noscripts ... --dbpath {dbpath} /var/tmp/lxcprov-rpms/*.rpm\n",
                search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                root.display(),
                root.display(),
                root.display()
            ),
            Action::CheckPackageDb { root, family, dbpath } => {
                let tool = match family {
                    crate::distro::Family::Rpm => "/usr/bin/rpm -qa",
                    crate::distro::Family::Dpkg => "/usr/bin/dpkg-query -W",
                };
                writeln!(
                    f,
                    "   check  chroot {} {tool}: the guest's own tool lists every installed package ({dbpath}), else stop here",
                    root.display()
                )
            }
            Action::CheckSpace { src, dest } => {
                writeln!(f, "   check  free space under {} for {}", dest.display(), src.display())
            }
            Action::Run { cmd } => writeln!(f, "   run    {}", cmd.display()),
            Action::CopyTree { from, to } => {
                writeln!(f, "   run    cp -a --reflink=auto -- {} {}", from.display(), to.display())
            }
            Action::Remove { path } => writeln!(f, "   remove {}", path.display()),
            Action::NormaliseImport { root } => writeln!(
                f,
                "   check  {}: drop device nodes; root directory 0755, owned by root",
                root.display()
            ),
            Action::StoreBase { from, entry } => write!(
                f,
                "   lock   {entry}.lock  (exclusive if free, else the cache is left to the other run)\n   run    cp -a --reflink=auto -- {from} {entry}.partial.PID\n   write  {entry}.partial.PID/{marker}\n   rename {entry}.partial.PID -> {entry}\n",
                from = from.display(),
                entry = entry.display(),
                marker = crate::paths::BASE_MARKER
            ),
            Action::ConfigureGuest { root, files, password } => {
                for g in files {
                    if g.remove {
                        writeln!(f, "   remove {}{}  ({})", root.display(), g.path, g.why)?;
                        continue;
                    }
                    let verb = if g.append_line { "append" } else { "write " };
                    writeln!(f, "   {verb} {}{}  ({}, mode {:o})", root.display(), g.path, g.why, g.mode)?;
                }
                writeln!(
                    f,
                    "   write  {}/etc/shadow  (root password as a SHA-512 crypt hash; password {password})",
                    root.display()
                )
            }
            Action::WriteRecord { path } => writeln!(f, "   write  {}", path.display()),
            Action::ShiftIdmap { root, uid, gid } => writeln!(
                f,
                "   chown  every file under {}: uid +{uid}, gid +{gid} (recorded, never twice)",
                root.display()
            ),
            Action::EnsureNetwork { xml, .. } => write!(f, "{}", indent(xml)),
            Action::PrepareSeccomp(s) => write!(f, "{s}"),
            Action::DefineDomain { xml, .. } => write!(f, "{}", indent(xml)),
            Action::Start { .. } => {
                writeln!(f, "   start  the domain; wait for its init in libvirt's live state")
            }
            Action::Verify { checks, .. } => writeln!(f, "   verify {checks}"),
            Action::Storage(s) => write!(f, "{s}"),
        }
    }
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
