//! The command line (clap derive). Only argument shapes live here; `commands` turn them
//! into the library's options.

use clap::{Args, Parser, Subcommand};
use lxcprov::bootstrap::Tool;
use lxcprov::profile::SecModel;
use lxcprov::spec::IdmapChoice;
use std::path::PathBuf;

/// Provision secure libvirt-LXC containers, as the GCUX paper "Securing Linux Containers"
/// does by hand: a root filesystem from the distribution's signed packages, a domain with
/// an sVirt label, capabilities, a user namespace, cgroup limits and an isolated network.
#[derive(Debug, Parser)]
#[command(name = "lxcprov", version, about, long_about = None, after_help = "\
EXAMPLES:
  lxcprov profiles                                  list built-in and user profiles
  lxcprov render web1 --profile web > web1.xml      domain XML on stdout
  lxcprov create web1 --profile web --dry-run       the plan: every command, file and XML
  lxcprov bootstrap d1 --profile minimal --root-password-file pw

EXIT STATUS: 0 success, 1 verification found failures, 2 any error.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// libvirt connection URI
    #[arg(
        short = 'c',
        long,
        global = true,
        value_name = "URI",
        env = "LIBVIRT_DEFAULT_URI",
        default_value = "lxc:///"
    )]
    pub connect: String,
    /// Print results as JSON (JSON Lines for streams) on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Show more: echo each command before running it
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Show only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Extra profile file (its name is the file stem); overrides same-named profiles
    #[arg(long, global = true, value_name = "PATH")]
    pub profile_file: Vec<PathBuf>,
    /// Use DIR/domain.xml and DIR/network.xml instead of the built-in templates
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Parent directory of container root filesystems
    #[arg(long, global = true, value_name = "DIR", default_value = lxcprov::paths::DEFAULT_POOL, env = "LXCPROV_POOL_DIR")]
    pub pool_dir: PathBuf,
    /// Package and base-rootfs cache
    #[arg(long, global = true, value_name = "DIR", default_value = lxcprov::paths::DEFAULT_CACHE, env = "LXCPROV_CACHE_DIR")]
    pub cache_dir: PathBuf,
    /// Directory of system-wide profiles
    #[arg(long, global = true, value_name = "DIR", default_value = lxcprov::profile::SYSTEM_DIR, env = "LXCPROV_PROFILE_DIR")]
    pub profile_dir: PathBuf,
    /// Force the rpm installer (dnf, dnf5 or yum) instead of the first the host has
    #[arg(long, global = true, value_name = "TOOL", env = "LXCPROV_DNF", value_parser = clap::value_parser!(Tool))]
    pub rpm_installer: Option<Tool>,
    /// Locks and per-container records
    #[arg(long, global = true, value_name = "DIR", default_value = lxcprov::paths::DEFAULT_STATE, env = "LXCPROV_STATE_DIR")]
    pub state_dir: PathBuf,
    /// The seccomp init shim copied into each container (default: the one built into lxcprov)
    #[arg(long, global = true, value_name = "PATH", env = "LXCPROV_INIT_SHIM")]
    pub init_shim: Option<PathBuf>,
    /// How new containers' trees are stored: overlay (a shared base and a layer of their
    /// own, mounted at each start by the libvirt hook), copy (a full copy each), or auto
    /// (overlay where the pool, kernel and hook allow it)
    #[arg(long, global = true, value_name = "MODE", env = "LXCPROV_STORAGE", default_value = "auto")]
    pub storage: lxcprov::storage::Choice,
    /// Where the host's lxcfs is mounted (containers' own /proc views)
    #[arg(long, global = true, value_name = "DIR", env = "LXCPROV_LXCFS_DIR", default_value = "/var/lib/lxcfs")]
    pub lxcfs_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List profiles, or show one resolved (`profiles show NAME`)
    Profiles {
        #[command(subcommand)]
        action: Option<ProfilesAction>,
    },
    /// List the distributions lxcprov can bootstrap
    Distros,
    /// Print the libvirt domain XML for a container (touches nothing)
    Render(RenderArgs),
    /// Install a root filesystem with the distribution's package manager
    Bootstrap(BootstrapArgs),
    /// Bootstrap, define, start and verify a container (--dry-run: print the plan only)
    Create(CreateArgs),
    /// Check a running container: MCS labels, vnet, PID and user namespaces, caps, cgroups
    Verify(VerifyArgs),
    /// List every LXC domain on the connection, with its live state
    List,
    /// Start a defined container and wait for its init
    Start { name: String },
    /// Shut a container down gracefully; force it off after the timeout
    Stop {
        name: String,
        /// Seconds to wait for a graceful shutdown before forcing it off
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Stop and undefine a container (and its lxcprov network when unused)
    Destroy {
        name: String,
        /// Also delete its root filesystem POOL/NAME (asks first, unless --yes)
        #[arg(long)]
        purge: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        yes: bool,
    },
    /// Attach to a container's console (virsh console; Ctrl-] detaches)
    Console { name: String },
    /// Run a command in a running container: its namespaces, mapped root, cgroups,
    /// capability bounding set and MAC label; exits with the command's status
    Exec(ExecArgs),
    /// A login shell in a running container (/bin/bash -l, else /bin/sh -l)
    Shell { name: String },
    /// Check this host for what lxcprov needs, with a fix for each problem
    Doctor,
    /// Back to the golden base: drop the container's writable layer, re-apply its own
    /// configuration (hostname, root password), restart (overlay storage)
    Reset {
        name: String,
        /// Do not ask for confirmation (the container's own files are deleted)
        #[arg(short, long)]
        yes: bool,
    },
    /// Keep what an overlay container changed (its writable layer), frozen while copied
    Snapshot {
        name: String,
        /// The snapshot's name (default: snap-N, one more than the highest)
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
        /// Delete the snapshot --tag names instead
        #[arg(long, requires = "tag")]
        delete: bool,
    },
    /// A container's snapshots, oldest first
    Snapshots { name: String },
    /// Put a snapshot back: the container's files as they were then; its label, id map,
    /// address, SSH host keys and root password stay as they are now
    Restore {
        name: String,
        tag: String,
        /// Do not ask for confirmation (what the container changed since is deleted)
        #[arg(short, long)]
        yes: bool,
    },
    /// The libvirt hook (`lxc`: libvirt calls it; `install`: install it for this binary)
    #[command(hide = true)]
    Hook {
        #[command(subcommand)]
        action: HookAction,
    },
    /// Print a shell completion script (packaging: bash, zsh, fish, elvish, powershell)
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages to DIR: lxcprov.1 and lxcprov-SUBCOMMAND.1 for every subcommand
    #[command(hide = true)]
    Manpages { dir: PathBuf },
    /// Teaching labs: N student containers from one profile (up, status, verify, down)
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Host-wide MCS audit: every level in use by process and rootfs, collisions flagged
    Audit,
    /// The installed packages of a container (or a tree) as a CycloneDX 1.5 SBOM
    Sbom(SbomArgs),
    /// Installed packages with newer versions in the profile's repositories (exit 1 if any)
    Outdated(OutdatedArgs),
    /// Seccomp (paper 3.6): learn an allow-list from a container's workload, apply a policy
    Seccomp {
        #[command(subcommand)]
        action: SeccompAction,
    },
    /// Fresh root filesystem from the container's profile, swapped in (paper 4.2)
    Rebuild {
        name: String,
        /// Import this directory or tarball instead of installing
        #[arg(long, value_name = "DIR|TARBALL")]
        rootfs_from: Option<PathBuf>,
        /// Package mirror URL
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
}

// `Up` is the big one; the enum is made once per run.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Create (or complete) the lab's student containers in parallel
    Up {
        /// Lab name (containers are LAB-PREFIXNN)
        lab: String,
        /// Number of student containers
        #[arg(long)]
        count: u32,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Name prefix of the student containers
        #[arg(long, default_value = "student")]
        prefix: String,
        /// Directory of per-student password files (read if present, else written, 0600)
        #[arg(long, value_name = "DIR")]
        password_dir: Option<PathBuf>,
        /// One isolated network per student instead of one per lab
        #[arg(long)]
        isolate_students: bool,
        /// Containers created at once [default: the number of CPUs, at least 2]
        #[arg(long)]
        jobs: Option<usize>,
        /// Import this directory or tarball instead of installing (offline labs)
        #[arg(long, value_name = "DIR|TARBALL")]
        rootfs_from: Option<PathBuf>,
        /// Package mirror URL
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// One public key per student (STUDENT.pub, e.g. student07.pub): SSH access to
        /// their own container, fixed addresses the host routes to, students kept apart
        #[arg(long, value_name = "DIR")]
        ssh_keys: Option<PathBuf>,
        /// Memory ceiling for all the students together (e.g. 8G), in the lab's own cgroup
        /// partition
        #[arg(long, value_name = "SIZE", value_parser = lxcprov::cgroups::parse_size)]
        total_memory: Option<u64>,
        /// Process ceiling for all the students together
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(16..=4_194_304))]
        total_pids: Option<u32>,
        /// CPU ceiling for all the students together (in CPUs)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
        total_cpus: Option<u32>,
    },
    /// How students reach their containers: a table, an ssh_config, the jump account's keys
    Access {
        lab: String,
        /// Print an ssh_config (`ssh -F FILE student07`) instead of the table
        #[arg(long, conflicts_with = "jump_keys")]
        ssh_config: bool,
        /// Reach the students through this host (USER@HOST[:PORT]) as ProxyJump
        #[arg(long, value_name = "USER@HOST[:PORT]", requires = "ssh_config")]
        jump: Option<String>,
        /// Print the jump account's authorized_keys: each key may only tunnel to its own
        /// student's port 22
        #[arg(long, conflicts_with = "sudoers")]
        jump_keys: bool,
        /// With --jump-keys: each key also runs its student's self-service (reset, restart,
        /// snapshot, restore of their own container) through sudo
        #[arg(long, requires = "jump_keys")]
        self_service: bool,
        /// Print the sudoers rule that lets the jump account USER run each student's
        /// self-service and nothing else
        #[arg(long, value_name = "USER", conflicts_with = "ssh_config")]
        sudoers: Option<String>,
    },
    /// Run by a student's key at the jump account (`lab access --jump-keys --self-service`):
    /// one request (`help`, `status`, `restart`, `reset --yes`, `snapshot`, `snapshots`,
    /// `restore TAG --yes`) for that student's own container; rate-limited and logged
    #[command(name = "self-service")]
    SelfService {
        lab: String,
        student: String,
        /// What the student sent (SSH_ORIGINAL_COMMAND), after `--`
        #[arg(last = true, value_parser = clap::value_parser!(std::ffi::OsString))]
        request: Option<std::ffi::OsString>,
    },
    /// One line per student container, with its checks summarised
    Status { lab: String },
    /// Verify every container, plus the cross-container checks
    Verify { lab: String },
    /// Pending updates of every student container (exit 1 if any has some)
    Outdated {
        lab: String,
        /// Package mirror URL instead of the profile's
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
    /// Each student's work for grading: a tar archive of what they changed (their overlay
    /// layer, or what differs from the golden base in copy storage), their checks and
    /// package changes, and a manifest.json
    Collect {
        lab: String,
        /// Directory for the archives and the manifest (created if missing; never overwritten)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Only this student (1 is the first)
        #[arg(long, value_name = "N")]
        student: Option<u32>,
        /// The most a student's changes may hold, in MiB; a student beyond it is refused
        #[arg(long, value_name = "MIB", default_value_t = 1024)]
        max_mib: u64,
    },
    /// A page for the teacher: one self-contained HTML file with a row per student (state,
    /// address, checks, CPU, memory and disk use against the quotas, last activity) and a
    /// chart of the lab's use
    Report {
        lab: String,
        /// The page to write (its directory must exist; an existing regular file is replaced)
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },
    /// Every student's snapshot under one tag (overlay storage)
    Snapshot {
        lab: String,
        /// The tag (default: snap-N, one more than the highest any student has)
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
    /// Every student (or student N) back to snapshot TAG; labels, maps, addresses, SSH host
    /// keys and passwords kept
    Restore {
        lab: String,
        tag: String,
        /// Only this student (1 is the first)
        #[arg(long, value_name = "N")]
        student: Option<u32>,
        #[arg(short, long)]
        yes: bool,
    },
    /// Back to the golden base: every student's (or student N's) writable layer replaced,
    /// passwords, labels and maps kept (overlay storage)
    Reset {
        lab: String,
        /// Only this student (1 is the first)
        #[arg(long, value_name = "N")]
        student: Option<u32>,
        #[arg(short, long)]
        yes: bool,
    },
    /// Destroy the lab's containers (and with --purge their root filesystems)
    Down {
        lab: String,
        #[arg(long)]
        purge: bool,
        #[arg(short, long)]
        yes: bool,
    },
}

impl LabAction {
    /// The lab every action names.
    pub fn lab(&self) -> &str {
        match self {
            LabAction::Up { lab, .. }
            | LabAction::Access { lab, .. }
            | LabAction::SelfService { lab, .. }
            | LabAction::Status { lab }
            | LabAction::Verify { lab }
            | LabAction::Outdated { lab, .. }
            | LabAction::Collect { lab, .. }
            | LabAction::Report { lab, .. }
            | LabAction::Snapshot { lab, .. }
            | LabAction::Restore { lab, .. }
            | LabAction::Reset { lab, .. }
            | LabAction::Down { lab, .. } => lab,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum HookAction {
    /// Called by libvirt as /etc/libvirt/hooks/lxc DOMAIN OP SUBOP EXTRA, the XML on stdin
    Lxc {
        #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write /etc/libvirt/hooks/lxc running this lxcprov (or --binary); never replaces
    /// someone else's hook. libvirtd sees a new hook only after a restart.
    Install {
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        #[arg(long, value_name = "PATH", default_value = lxcprov::storage::hook::HOOK_PATH)]
        path: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Container name
    pub name: String,
    /// Also run the active probes: the MCS probe (SELinux hosts: from a process in this
    /// container's label, try to read another container's file and to stop its init) and
    /// the seccomp probe (denied calls get the policy's errno under the container's filter)
    #[arg(long)]
    pub probe: bool,
    /// The container to probe against [default: the first other labelled one]
    #[arg(long, value_name = "NAME", requires = "probe")]
    pub peer: Option<String>,
    /// Judge the domain against this profile instead of its own record (any domain, also
    /// one lxcprov did not create; without it, such a domain meets the paper's baseline)
    #[arg(long, value_name = "PROFILE")]
    pub expect: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Container name
    pub name: String,
    /// Extra environment variable for the command (repeatable)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The command and its arguments (after `--` when they start with `-`)
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Container name (its root filesystem and the profile, distro and release it was
    /// bootstrapped with, from lxcprov's record)
    #[arg(required_unless_present = "rootfs", conflicts_with = "rootfs")]
    pub name: Option<String>,
    /// Check this Debian root filesystem instead (with --profile, --distro, --release)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// With --rootfs: the profile whose repositories to compare with
    #[arg(long, requires = "rootfs", default_value = "minimal")]
    pub profile: String,
    /// With --rootfs: the distribution (see `lxcprov distros`)
    #[arg(long, requires = "rootfs")]
    pub distro: Option<String>,
    /// With --rootfs: the release
    #[arg(long, requires = "rootfs")]
    pub release: Option<String>,
    /// Package mirror URL instead of the profile's
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// Container name (its root filesystem POOL/NAME and lxcprov's record of it)
    #[arg(required_unless_present = "rootfs", conflicts_with = "rootfs")]
    pub name: Option<String>,
    /// Read this root filesystem instead (signature checking then shows as unknown)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Add metadata.timestamp (the one field that differs between two SBOMs of one tree)
    #[arg(long)]
    pub timestamp: bool,
}

#[derive(Debug, Subcommand)]
pub enum SeccompAction {
    /// Restart the container under a logging filter for --duration seconds (exercise it
    /// meanwhile), write the allow-list of the system calls it made, then put its enforced
    /// filter back
    Learn {
        name: String,
        /// How long to record, in seconds
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        duration: u64,
        /// Where to write the allow-list [default: NAME.seccomp.json]
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// What the allow-list does with every other call
        #[arg(long, default_value = "errno", value_parser = ["errno", "kill"])]
        action: String,
        /// The errno of denied calls (with --action errno)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4095))]
        errno: u32,
    },
    /// Recompile a container's filter from a policy (default, strict or a JSON file);
    /// it takes effect at the container's next start
    Apply { name: String, policy: String },
}

#[derive(Debug, Subcommand)]
pub enum ProfilesAction {
    /// Show a profile, resolved with defaults, as YAML
    Show { name: String },
}

#[derive(Debug, Args, Clone)]
pub struct ProfileArgs {
    /// Profile name (see `lxcprov profiles`)
    #[arg(short, long, default_value = "minimal")]
    pub profile: String,
    /// Override the profile's distribution (see `lxcprov distros`)
    #[arg(long)]
    pub distro: Option<String>,
    /// Override the profile's release
    #[arg(long)]
    pub release: Option<String>,
    /// Override the security driver: selinux, apparmor, or none (an unconfined container)
    #[arg(long, value_parser = clap::value_parser!(SecModel))]
    pub security: Option<SecModel>,
    /// User namespace: `isolated` gives the container a 65536-id range of its own (from
    /// lxcprov's registry, away from /etc/subuid, host users and other containers);
    /// `profile` keeps the profile's `security.idmap`
    #[arg(long, value_name = "isolated|profile", value_parser = clap::value_parser!(IdmapChoice))]
    pub idmap: Option<IdmapChoice>,
    /// Disk quota (e.g. 2G): the container's writes stop there (overlay storage;
    /// overrides the profile's resources.disk)
    #[arg(long, value_name = "SIZE")]
    pub disk: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Container name
    pub name: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Render the isolated network's XML instead of the domain's
    #[arg(long)]
    pub network: bool,
}

#[derive(Debug, Args, Clone)]
pub struct BootstrapArgs {
    /// Container name (the rootfs goes to POOL/NAME)
    pub name: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Package mirror URL (http, https or file)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Read the root password from FILE (first line)
    #[arg(long, value_name = "FILE", conflicts_with = "root_password_stdin")]
    pub root_password_file: Option<PathBuf>,
    /// Read the root password from standard input
    #[arg(long)]
    pub root_password_stdin: bool,
    /// Replace an existing root filesystem
    #[arg(long)]
    pub force: bool,
    /// Import this directory or tarball as the root filesystem instead of installing
    /// (offline labs, a prepared image); its packages' signatures are not checked
    #[arg(long, value_name = "DIR|TARBALL", conflicts_with = "mirror")]
    pub rootfs_from: Option<PathBuf>,
    /// Do not keep a copy of a fresh install in the base-rootfs cache (saves the copy's
    /// time and space; the next container of this spec installs again)
    #[arg(long)]
    pub no_base_cache: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    /// Print every command, file and XML the creation would involve; change nothing
    #[arg(long)]
    pub dry_run: bool,
}
