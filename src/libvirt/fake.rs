//! An in-memory hypervisor for tests of the container logic.

use super::{Error, Hypervisor, Result, State, Usage};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An in-memory hypervisor for tests of the lifecycle logic.
#[derive(Default)]
pub struct FakeHypervisor {
    pub domains: Mutex<BTreeMap<String, (String, State)>>,
    pub networks: Mutex<BTreeMap<String, (String, bool)>>,
    pub filters: Vec<String>,
    /// Make `start_domain` fail (to test rollback).
    pub fail_start: bool,
    /// Make `start_domain` fail as if libvirtd died: every later call loses the connection.
    pub die_on_start: bool,
    pub dead: std::sync::atomic::AtomicBool,
    /// How many `suspend_domain` calls fail before one succeeds (libvirt's freeze timing out).
    pub suspend_failures: std::sync::atomic::AtomicU32,
    pub log: Mutex<Vec<String>>,
    /// What `domain_usage` answers for a domain (nothing used when absent).
    pub usage: Mutex<BTreeMap<String, Usage>>,
    /// Called after each successful `start_domain` (a test changes the host's fixture).
    #[allow(clippy::type_complexity)]
    pub on_start: Mutex<Option<Box<dyn FnMut(&str) + Send>>>,
}

impl FakeHypervisor {
    fn alive(&self) -> Result<()> {
        if self.dead.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::ConnectionLost { uri: "fake:///".into(), message: "end of file".into() });
        }
        Ok(())
    }

    fn note(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

fn other(what: &str, message: &str) -> Error {
    Error::Other { what: what.into(), message: message.into() }
}

fn xml_name(xml: &str) -> Result<String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| other("parsing XML", &e.to_string()))?;
    doc.root_element()
        .children()
        .find(|c| c.has_tag_name("name"))
        .and_then(|n| n.text())
        .map(str::to_string)
        .ok_or_else(|| other("parsing XML", "XML has no <name>"))
}

fn no_dom(name: &str) -> Error {
    Error::NoDomain { name: name.into(), uri: "fake:///".into() }
}

fn no_net(name: &str) -> Error {
    Error::NoNetwork { name: name.into(), uri: "fake:///".into() }
}

impl Hypervisor for FakeHypervisor {
    fn uri(&self) -> String {
        "fake:///".into()
    }
    fn secmodel(&self) -> Result<String> {
        self.alive()?;
        Ok("none".into())
    }
    fn domains(&self) -> Result<Vec<String>> {
        self.alive()?;
        Ok(self.domains.lock().unwrap().keys().cloned().collect())
    }
    fn domain_exists(&self, name: &str) -> Result<bool> {
        self.alive()?;
        Ok(self.domains.lock().unwrap().contains_key(name))
    }
    fn domain_xml(&self, name: &str) -> Result<String> {
        self.alive()?;
        self.domains.lock().unwrap().get(name).map(|d| d.0.clone()).ok_or_else(|| no_dom(name))
    }
    fn domain_state(&self, name: &str) -> Result<State> {
        self.alive()?;
        self.domains.lock().unwrap().get(name).map(|d| d.1).ok_or_else(|| no_dom(name))
    }
    fn domain_usage(&self, name: &str) -> Result<Usage> {
        self.alive()?;
        self.domain_state(name)?;
        Ok(self.usage.lock().unwrap().get(name).copied().unwrap_or_default())
    }
    fn controller_pid(&self, name: &str) -> Result<Option<u32>> {
        self.alive()?;
        Ok((self.domain_state(name)? == State::Running).then_some(4242))
    }
    fn define_domain(&self, xml: &str) -> Result<()> {
        self.alive()?;
        let name = xml_name(xml)?;
        self.note(format!("define {name}"));
        let mut d = self.domains.lock().unwrap();
        let state = d.get(&name).map(|x| x.1).unwrap_or(State::Shutoff);
        d.insert(name, (xml.to_string(), state));
        Ok(())
    }
    fn start_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("start {name}"));
        if self.die_on_start {
            self.dead.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(Error::ConnectionLost { uri: "fake:///".into(), message: "end of file".into() });
        }
        if self.fail_start {
            return Err(other("starting", "fake start failure"));
        }
        let mut d = self.domains.lock().unwrap();
        d.get_mut(name).ok_or_else(|| no_dom(name))?.1 = State::Running;
        drop(d);
        if let Some(f) = self.on_start.lock().unwrap().as_mut() {
            f(name);
        }
        Ok(())
    }
    fn shutdown_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.destroy_domain(name)
    }
    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("destroy {name}"));
        let mut d = self.domains.lock().unwrap();
        d.get_mut(name).ok_or_else(|| no_dom(name))?.1 = State::Shutoff;
        Ok(())
    }
    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        let left = self.suspend_failures.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.suspend_failures.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            self.note(format!("suspend {name} failed"));
            return Err(other(&format!("freezing {name}"), "Suspend operation failed"));
        }
        self.note(format!("suspend {name}"));
        Ok(())
    }
    fn resume_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("resume {name}"));
        Ok(())
    }
    fn undefine_domain(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("undefine {name}"));
        self.domains.lock().unwrap().remove(name).ok_or_else(|| no_dom(name))?;
        Ok(())
    }
    fn network_exists(&self, name: &str) -> Result<bool> {
        self.alive()?;
        Ok(self.networks.lock().unwrap().contains_key(name))
    }
    fn network_active(&self, name: &str) -> Result<bool> {
        self.alive()?;
        Ok(self.networks.lock().unwrap().get(name).is_some_and(|n| n.1))
    }
    fn network_xml(&self, name: &str) -> Result<String> {
        self.alive()?;
        self.networks.lock().unwrap().get(name).map(|n| n.0.clone()).ok_or_else(|| no_net(name))
    }
    fn network_bridge(&self, _name: &str) -> Result<String> {
        self.alive()?;
        Ok("virbr9".into())
    }
    fn define_network(&self, xml: &str) -> Result<()> {
        self.alive()?;
        let name = xml_name(xml)?;
        self.note(format!("define network {name}"));
        self.networks.lock().unwrap().insert(name, (xml.to_string(), false));
        Ok(())
    }
    fn start_network(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("start network {name}"));
        self.networks.lock().unwrap().get_mut(name).ok_or_else(|| no_net(name))?.1 = true;
        Ok(())
    }
    fn remove_network(&self, name: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("remove network {name}"));
        self.networks.lock().unwrap().remove(name);
        Ok(())
    }
    fn add_dhcp_host(&self, network: &str, host_xml: &str) -> Result<()> {
        self.alive()?;
        self.note(format!("add dhcp host to {network}: {host_xml}"));
        let mut nets = self.networks.lock().unwrap();
        let n = nets.get_mut(network).ok_or_else(|| no_net(network))?;
        n.0 = n.0.replace("</dhcp>", &format!("{host_xml}</dhcp>"));
        Ok(())
    }
    fn nwfilter_exists(&self, name: &str) -> Result<bool> {
        self.alive()?;
        Ok(self.filters.iter().any(|f| f == name))
    }
}
