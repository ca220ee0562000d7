//! The real hypervisor: the only `virt::` calls in lxcprov.

use super::{Error, Hypervisor, Result, State, Usage};
use virt::error::ErrorNumber;

/// The real hypervisor, over a libvirt connection.
pub struct VirtHypervisor {
    conn: virt::connect::Connect,
    uri: String,
}

impl VirtHypervisor {
    /// Connects to `uri`. A daemon that does not answer gives one clear message.
    pub fn connect(uri: &str) -> Result<VirtHypervisor> {
        // clear_error_callback only replaces libvirt's global error printer.
        virt::error::clear_error_callback();
        let conn = virt::connect::Connect::open(Some(uri))
            .map_err(|e| Error::Connect { uri: uri.to_string(), message: e.message().to_string() })?;
        Ok(VirtHypervisor { conn, uri: uri.to_string() })
    }

    /// Classifies a libvirt error: its code first, then whether the connection still lives.
    fn classify(&self, e: virt::error::Error, what: &str, name: &str) -> Error {
        let message = e.message().to_string();
        match e.code().known() {
            Some(ErrorNumber::NoDomain) => Error::NoDomain { name: name.into(), uri: self.uri.clone() },
            Some(ErrorNumber::NoNetwork) => Error::NoNetwork { name: name.into(), uri: self.uri.clone() },
            Some(ErrorNumber::NoConnect | ErrorNumber::InvalidConn | ErrorNumber::Rpc) => {
                Error::ConnectionLost { uri: self.uri.clone(), message }
            }
            _ if !self.conn.is_alive().unwrap_or(false) => Error::ConnectionLost { uri: self.uri.clone(), message },
            _ => Error::Other { what: what.to_string(), message },
        }
    }

    /// Starts a transient domain from `xml` (gone once it stops; nothing is defined).
    pub fn create_transient(&self, xml: &str) -> Result<()> {
        self.conn.create_domain_xml(xml, 0).map_err(|e| self.classify(e, "starting a transient domain", ""))?;
        Ok(())
    }

    fn dom(&self, name: &str) -> Result<virt::domain::Domain> {
        self.conn.lookup_domain_by_name(name).map_err(|e| self.classify(e, "looking up the domain", name))
    }

    fn net(&self, name: &str) -> Result<virt::network::Network> {
        self.conn.lookup_network_by_name(name).map_err(|e| self.classify(e, "looking up the network", name))
    }

    /// Maps "not found" to Ok(false) and keeps every other error.
    fn exists<T>(r: Result<T>) -> Result<bool> {
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Hypervisor for VirtHypervisor {
    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn secmodel(&self) -> Result<String> {
        let caps = self.conn.capabilities().map_err(|e| self.classify(e, "reading the host capabilities", ""))?;
        let doc = roxmltree::Document::parse(&caps)
            .map_err(|e| Error::Other { what: "parsing libvirt capabilities".into(), message: e.to_string() })?;
        Ok(doc
            .descendants()
            .find(|n| n.has_tag_name("secmodel"))
            .and_then(|s| s.children().find(|c| c.has_tag_name("model")))
            .and_then(|m| m.text())
            .unwrap_or("none")
            .to_string())
    }

    fn domains(&self) -> Result<Vec<String>> {
        let all = self.conn.list_all_domains(0).map_err(|e| self.classify(e, "listing domains", ""))?;
        let mut v: Vec<String> = all.iter().filter_map(|d| d.name().ok()).collect();
        v.sort();
        Ok(v)
    }

    fn domain_exists(&self, name: &str) -> Result<bool> {
        Self::exists(self.dom(name))
    }

    fn domain_xml(&self, name: &str) -> Result<String> {
        self.dom(name)?.xml_desc(0).map_err(|e| self.classify(e, "reading the domain XML", name))
    }

    fn domain_state(&self, name: &str) -> Result<State> {
        let d = self.dom(name)?;
        if d.is_active().map_err(|e| self.classify(e, "reading the domain state", name))? {
            return Ok(State::Running);
        }
        Ok(State::Shutoff)
    }

    fn domain_usage(&self, name: &str) -> Result<Usage> {
        let i =
            self.dom(name)?.info().map_err(|e| self.classify(e, "reading the domain's CPU and memory use", name))?;
        Ok(Usage { cpu_time_ns: i.cpu_time, memory_kib: i.memory })
    }

    fn controller_pid(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.dom(name)?.id())
    }

    fn define_domain(&self, xml: &str) -> Result<()> {
        self.conn.define_domain_xml(xml).map_err(|e| self.classify(e, "libvirt refused the domain XML", ""))?;
        Ok(())
    }

    fn start_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.create().map_err(|e| self.classify(e, &format!("starting {name}"), name))?;
        Ok(())
    }

    fn shutdown_domain(&self, name: &str) -> Result<()> {
        // initctl first (systemd and SysV inits), SIGTERM to init otherwise: libvirt's
        // default mode sends nothing at all to an init without /run/initctl.
        let flags = virt::sys::VIR_DOMAIN_SHUTDOWN_INITCTL | virt::sys::VIR_DOMAIN_SHUTDOWN_SIGNAL;
        self.dom(name)?.shutdown_flags(flags).map_err(|e| self.classify(e, &format!("shutting down {name}"), name))?;
        Ok(())
    }

    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.destroy().map_err(|e| self.classify(e, &format!("destroying {name}"), name))?;
        Ok(())
    }

    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.suspend().map_err(|e| self.classify(e, &format!("freezing {name}"), name))?;
        Ok(())
    }

    fn resume_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.resume().map_err(|e| self.classify(e, &format!("thawing {name}"), name))?;
        Ok(())
    }

    fn undefine_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.undefine().map_err(|e| self.classify(e, &format!("undefining {name}"), name))?;
        Ok(())
    }

    fn network_exists(&self, name: &str) -> Result<bool> {
        Self::exists(self.net(name))
    }

    fn network_active(&self, name: &str) -> Result<bool> {
        self.net(name)?.is_active().map_err(|e| self.classify(e, "reading the network state", name))
    }

    fn network_xml(&self, name: &str) -> Result<String> {
        self.net(name)?.xml_desc(0).map_err(|e| self.classify(e, "reading the network XML", name))
    }

    fn network_bridge(&self, name: &str) -> Result<String> {
        self.net(name)?.bridge_name().map_err(|e| self.classify(e, "reading the network's bridge", name))
    }

    fn define_network(&self, xml: &str) -> Result<()> {
        self.conn.define_network_xml(xml).map_err(|e| self.classify(e, "libvirt refused the network XML", ""))?;
        Ok(())
    }

    fn start_network(&self, name: &str) -> Result<()> {
        self.net(name)?.create().map_err(|e| self.classify(e, &format!("starting network {name}"), name))?;
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<()> {
        let n = self.net(name)?;
        if n.is_active().map_err(|e| self.classify(e, "reading the network state", name))? {
            n.destroy().map_err(|e| self.classify(e, &format!("stopping network {name}"), name))?;
        }
        n.undefine().map_err(|e| self.classify(e, &format!("undefining network {name}"), name))?;
        Ok(())
    }

    fn add_dhcp_host(&self, network: &str, host_xml: &str) -> Result<()> {
        use virt::sys;
        let n = self.net(network)?;
        let live = n.is_active().map_err(|e| self.classify(e, "reading the network state", network))?;
        let flags = sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG | if live { sys::VIR_NETWORK_UPDATE_AFFECT_LIVE } else { 0 };
        n.update(sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, sys::VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, host_xml, flags)
            .map_err(|e| self.classify(e, &format!("adding a DHCP lease to network {network}"), network))?;
        Ok(())
    }

    fn nwfilter_exists(&self, name: &str) -> Result<bool> {
        match self.conn.lookup_nwfilter_by_name(name) {
            Ok(_) => Ok(true),
            Err(e) => match self.classify(e, "looking up the network filter", name) {
                Error::Other { .. } => Ok(false),
                other if other.is_not_found() => Ok(false),
                other => Err(other),
            },
        }
    }
}
