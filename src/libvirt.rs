//! The hypervisor seam. [`VirtHypervisor`] is the only code in lxcprov that calls the
//! `virt` crate; everything else talks to the [`Hypervisor`] trait, which
//! [`FakeHypervisor`] implements in memory for tests. Using the real one needs a running
//! libvirtd and, for the LXC driver, root.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A domain's run state, as lxcprov needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Shutoff,
    Other,
}

/// What lxcprov asks of libvirt.
pub trait Hypervisor {
    /// The connection URI (for messages).
    fn uri(&self) -> String;
    /// `<secmodel><model>` from the host capabilities (`none`, `selinux`, `apparmor`).
    fn secmodel(&self) -> Result<String>;
    /// Names of every domain, defined or transient.
    fn domains(&self) -> Result<Vec<String>>;
    fn domain_exists(&self, name: &str) -> Result<bool>;
    /// The domain's XML: live when running (with labels, vnet names), else inactive.
    fn domain_xml(&self, name: &str) -> Result<String>;
    fn domain_state(&self, name: &str) -> Result<State>;
    /// The libvirt_lxc controller's PID (not the container init).
    fn controller_pid(&self, name: &str) -> Result<Option<u32>>;
    fn define_domain(&self, xml: &str) -> Result<()>;
    fn start_domain(&self, name: &str) -> Result<()>;
    /// Asks the container to shut down (initctl, else SIGTERM to its init).
    fn shutdown_domain(&self, name: &str) -> Result<()>;
    fn destroy_domain(&self, name: &str) -> Result<()>;
    fn undefine_domain(&self, name: &str) -> Result<()>;
    fn network_exists(&self, name: &str) -> Result<bool>;
    fn network_active(&self, name: &str) -> Result<bool>;
    fn network_xml(&self, name: &str) -> Result<String>;
    fn network_bridge(&self, name: &str) -> Result<String>;
    fn define_network(&self, xml: &str) -> Result<()>;
    fn start_network(&self, name: &str) -> Result<()>;
    fn remove_network(&self, name: &str) -> Result<()>;
    fn nwfilter_exists(&self, name: &str) -> Result<bool>;
}

/// The real hypervisor, over a libvirt connection.
pub struct VirtHypervisor {
    conn: virt::connect::Connect,
    uri: String,
}

/// libvirt's message, without the `virt` crate's extra fields.
fn msg(e: virt::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message())
}

impl VirtHypervisor {
    /// Connects to `uri`. A daemon that does not answer gives one clear message.
    pub fn connect(uri: &str) -> Result<VirtHypervisor> {
        // SAFETY-free: clear_error_callback only replaces libvirt's global error printer.
        virt::error::clear_error_callback();
        let conn = virt::connect::Connect::open(Some(uri)).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to libvirt at {uri}: {}. Is libvirtd running? Start it with scripts/setup-host.sh (or `systemctl start libvirtd`)",
                e.message()
            )
        })?;
        Ok(VirtHypervisor { conn, uri: uri.to_string() })
    }

    fn dom(&self, name: &str) -> Result<virt::domain::Domain> {
        self.conn.lookup_domain_by_name(name).map_err(msg).with_context(|| format!("no domain {name} on {}", self.uri))
    }

    fn net(&self, name: &str) -> Result<virt::network::Network> {
        self.conn
            .lookup_network_by_name(name)
            .map_err(msg)
            .with_context(|| format!("no network {name} on {}", self.uri))
    }
}

impl Hypervisor for VirtHypervisor {
    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn secmodel(&self) -> Result<String> {
        let caps = self.conn.capabilities().map_err(msg)?;
        let doc = roxmltree::Document::parse(&caps).context("parsing libvirt capabilities")?;
        Ok(doc
            .descendants()
            .find(|n| n.has_tag_name("secmodel"))
            .and_then(|s| s.children().find(|c| c.has_tag_name("model")))
            .and_then(|m| m.text())
            .unwrap_or("none")
            .to_string())
    }

    fn domains(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> =
            self.conn.list_all_domains(0).map_err(msg)?.iter().filter_map(|d| d.name().ok()).collect();
        v.sort();
        Ok(v)
    }

    fn domain_exists(&self, name: &str) -> Result<bool> {
        Ok(self.conn.lookup_domain_by_name(name).is_ok())
    }

    fn domain_xml(&self, name: &str) -> Result<String> {
        self.dom(name)?.xml_desc(0).map_err(msg)
    }

    fn domain_state(&self, name: &str) -> Result<State> {
        let d = self.dom(name)?;
        if d.is_active().map_err(msg)? {
            return Ok(State::Running);
        }
        Ok(State::Shutoff)
    }

    fn controller_pid(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.dom(name)?.id())
    }

    fn define_domain(&self, xml: &str) -> Result<()> {
        self.conn.define_domain_xml(xml).map_err(msg).context("libvirt refused the domain XML")?;
        Ok(())
    }

    fn start_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.create().map_err(msg).with_context(|| format!("starting {name}"))?;
        Ok(())
    }

    fn shutdown_domain(&self, name: &str) -> Result<()> {
        // initctl first (systemd and SysV inits), SIGTERM to init otherwise: libvirt's
        // default mode sends nothing at all to an init without /run/initctl.
        let flags = virt::sys::VIR_DOMAIN_SHUTDOWN_INITCTL | virt::sys::VIR_DOMAIN_SHUTDOWN_SIGNAL;
        self.dom(name)?.shutdown_flags(flags).map_err(msg).with_context(|| format!("shutting down {name}"))?;
        Ok(())
    }

    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.destroy().map_err(msg).with_context(|| format!("destroying {name}"))?;
        Ok(())
    }

    fn undefine_domain(&self, name: &str) -> Result<()> {
        self.dom(name)?.undefine().map_err(msg).with_context(|| format!("undefining {name}"))?;
        Ok(())
    }

    fn network_exists(&self, name: &str) -> Result<bool> {
        Ok(self.conn.lookup_network_by_name(name).is_ok())
    }

    fn network_active(&self, name: &str) -> Result<bool> {
        self.net(name)?.is_active().map_err(msg)
    }

    fn network_xml(&self, name: &str) -> Result<String> {
        self.net(name)?.xml_desc(0).map_err(msg)
    }

    fn network_bridge(&self, name: &str) -> Result<String> {
        self.net(name)?.bridge_name().map_err(msg)
    }

    fn define_network(&self, xml: &str) -> Result<()> {
        self.conn.define_network_xml(xml).map_err(msg).context("libvirt refused the network XML")?;
        Ok(())
    }

    fn start_network(&self, name: &str) -> Result<()> {
        self.net(name)?.create().map_err(msg).with_context(|| format!("starting network {name}"))?;
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<()> {
        let n = self.net(name)?;
        if n.is_active().map_err(msg)? {
            n.destroy().map_err(msg).with_context(|| format!("stopping network {name}"))?;
        }
        n.undefine().map_err(msg).with_context(|| format!("undefining network {name}"))?;
        Ok(())
    }

    fn nwfilter_exists(&self, name: &str) -> Result<bool> {
        Ok(self.conn.lookup_nwfilter_by_name(name).is_ok())
    }
}

/// An in-memory hypervisor for tests of the lifecycle logic.
#[derive(Default)]
pub struct FakeHypervisor {
    pub domains: Mutex<BTreeMap<String, (String, State)>>,
    pub networks: Mutex<BTreeMap<String, (String, bool)>>,
    pub filters: Vec<String>,
    /// Make `start_domain` fail (to test rollback).
    pub fail_start: bool,
    pub log: Mutex<Vec<String>>,
}

impl FakeHypervisor {
    fn note(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

fn xml_name(xml: &str) -> Result<String> {
    let doc = roxmltree::Document::parse(xml).context("parsing XML")?;
    doc.root_element()
        .children()
        .find(|c| c.has_tag_name("name"))
        .and_then(|n| n.text())
        .map(str::to_string)
        .context("XML has no <name>")
}

impl Hypervisor for FakeHypervisor {
    fn uri(&self) -> String {
        "fake:///".into()
    }
    fn secmodel(&self) -> Result<String> {
        Ok("none".into())
    }
    fn domains(&self) -> Result<Vec<String>> {
        Ok(self.domains.lock().unwrap().keys().cloned().collect())
    }
    fn domain_exists(&self, name: &str) -> Result<bool> {
        Ok(self.domains.lock().unwrap().contains_key(name))
    }
    fn domain_xml(&self, name: &str) -> Result<String> {
        self.domains.lock().unwrap().get(name).map(|d| d.0.clone()).with_context(|| format!("no domain {name}"))
    }
    fn domain_state(&self, name: &str) -> Result<State> {
        self.domains.lock().unwrap().get(name).map(|d| d.1).with_context(|| format!("no domain {name}"))
    }
    fn controller_pid(&self, name: &str) -> Result<Option<u32>> {
        Ok((self.domain_state(name)? == State::Running).then_some(4242))
    }
    fn define_domain(&self, xml: &str) -> Result<()> {
        let name = xml_name(xml)?;
        self.note(format!("define {name}"));
        let mut d = self.domains.lock().unwrap();
        let state = d.get(&name).map(|x| x.1).unwrap_or(State::Shutoff);
        d.insert(name, (xml.to_string(), state));
        Ok(())
    }
    fn start_domain(&self, name: &str) -> Result<()> {
        self.note(format!("start {name}"));
        if self.fail_start {
            anyhow::bail!("fake start failure");
        }
        let mut d = self.domains.lock().unwrap();
        d.get_mut(name).with_context(|| format!("no domain {name}"))?.1 = State::Running;
        Ok(())
    }
    fn shutdown_domain(&self, name: &str) -> Result<()> {
        self.destroy_domain(name)
    }
    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.note(format!("destroy {name}"));
        let mut d = self.domains.lock().unwrap();
        d.get_mut(name).with_context(|| format!("no domain {name}"))?.1 = State::Shutoff;
        Ok(())
    }
    fn undefine_domain(&self, name: &str) -> Result<()> {
        self.note(format!("undefine {name}"));
        self.domains.lock().unwrap().remove(name).with_context(|| format!("no domain {name}"))?;
        Ok(())
    }
    fn network_exists(&self, name: &str) -> Result<bool> {
        Ok(self.networks.lock().unwrap().contains_key(name))
    }
    fn network_active(&self, name: &str) -> Result<bool> {
        Ok(self.networks.lock().unwrap().get(name).is_some_and(|n| n.1))
    }
    fn network_xml(&self, name: &str) -> Result<String> {
        self.networks.lock().unwrap().get(name).map(|n| n.0.clone()).with_context(|| format!("no network {name}"))
    }
    fn network_bridge(&self, _name: &str) -> Result<String> {
        Ok("virbr9".into())
    }
    fn define_network(&self, xml: &str) -> Result<()> {
        let name = xml_name(xml)?;
        self.note(format!("define network {name}"));
        self.networks.lock().unwrap().insert(name, (xml.to_string(), false));
        Ok(())
    }
    fn start_network(&self, name: &str) -> Result<()> {
        self.note(format!("start network {name}"));
        self.networks.lock().unwrap().get_mut(name).with_context(|| format!("no network {name}"))?.1 = true;
        Ok(())
    }
    fn remove_network(&self, name: &str) -> Result<()> {
        self.note(format!("remove network {name}"));
        self.networks.lock().unwrap().remove(name);
        Ok(())
    }
    fn nwfilter_exists(&self, name: &str) -> Result<bool> {
        Ok(self.filters.iter().any(|f| f == name))
    }
}
