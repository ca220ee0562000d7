//! The hypervisor seam. [`real::VirtHypervisor`] is the only code in lxcprov that calls the
//! `virt` crate; everything else talks to the [`Hypervisor`] trait, which
//! [`fake::FakeHypervisor`] implements in memory for tests. Using the real one needs a
//! running libvirtd and, for the LXC driver, root.
//!
//! Errors keep libvirt's meaning ([`Error`]): "no such domain" is not "libvirtd is gone", so a
//! caller can decide (an undo step that lost the connection must not delete what the domain
//! still uses).

mod fake;
mod real;

pub use fake::FakeHypervisor;
pub use real::VirtHypervisor;

/// A domain's run state, as lxcprov needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Shutoff,
    Other,
}

/// What a running domain uses now, as libvirt's domain info gives it (for the LXC driver,
/// read from the container's cgroups).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// CPU time used since it started, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Memory in use, in KiB.
    pub memory_kib: u64,
}

/// A libvirt failure, classified by what callers decide on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no domain {name} on {uri}")]
    NoDomain { name: String, uri: String },
    #[error("no network {name} on {uri}")]
    NoNetwork { name: String, uri: String },
    #[error(
        "lost the connection to libvirt at {uri} ({message}); is libvirtd still running? \
         scripts/setup-host.sh starts it (or `systemctl start libvirtd`)"
    )]
    ConnectionLost { uri: String, message: String },
    #[error("cannot connect to libvirt at {uri}: {message}. Is libvirtd running? Start it with scripts/setup-host.sh (or `systemctl start libvirtd`)")]
    Connect { uri: String, message: String },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

impl Error {
    /// libvirtd went away (or never answered): nothing about the domain is known.
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. } | Error::Connect { .. })
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NoDomain { .. } | Error::NoNetwork { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What lxcprov asks of libvirt.
pub trait Hypervisor {
    /// The connection URI (for messages).
    fn uri(&self) -> String;
    /// `<secmodel><model>` from the host capabilities (`none`, `selinux`, `apparmor`).
    fn secmodel(&self) -> Result<String>;
    /// Names of every domain, defined or transient.
    fn domains(&self) -> Result<Vec<String>>;
    /// Ok(false) only when libvirt says there is no such domain; a lost connection is an error.
    fn domain_exists(&self, name: &str) -> Result<bool>;
    /// The domain's XML: live when running (with labels, vnet names), else inactive.
    fn domain_xml(&self, name: &str) -> Result<String>;
    fn domain_state(&self, name: &str) -> Result<State>;
    /// What a running domain uses now: CPU time and memory (libvirt's domain info).
    fn domain_usage(&self, name: &str) -> Result<Usage>;
    /// The libvirt_lxc controller's PID (not the container init).
    fn controller_pid(&self, name: &str) -> Result<Option<u32>>;
    fn define_domain(&self, xml: &str) -> Result<()>;
    fn start_domain(&self, name: &str) -> Result<()>;
    /// Asks the container to shut down (initctl, else SIGTERM to its init).
    fn shutdown_domain(&self, name: &str) -> Result<()>;
    fn destroy_domain(&self, name: &str) -> Result<()>;
    /// Freezes a running domain's processes (libvirt's freezer cgroup); [`Hypervisor::resume_domain`] thaws them.
    fn suspend_domain(&self, name: &str) -> Result<()>;
    fn resume_domain(&self, name: &str) -> Result<()>;
    fn undefine_domain(&self, name: &str) -> Result<()>;
    fn network_exists(&self, name: &str) -> Result<bool>;
    fn network_active(&self, name: &str) -> Result<bool>;
    fn network_xml(&self, name: &str) -> Result<String>;
    fn network_bridge(&self, name: &str) -> Result<String>;
    fn define_network(&self, xml: &str) -> Result<()>;
    fn start_network(&self, name: &str) -> Result<()>;
    fn remove_network(&self, name: &str) -> Result<()>;
    /// Adds a fixed DHCP lease (`<host mac= ip= name=/>`) to a network, live when it runs
    /// and in its persistent definition.
    fn add_dhcp_host(&self, network: &str, host_xml: &str) -> Result<()>;
    fn nwfilter_exists(&self, name: &str) -> Result<bool>;
}
