//! Every domain on the connection, with its live state.

use super::Env;
use crate::facts::{self, DomainXml};
use crate::libvirt::State;
use anyhow::Result;

/// One row of `list`.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub state: State,
    pub profile: Option<String>,
    /// The security label, null when the domain has none (`label_type` says why).
    pub label: Option<String>,
    /// The `<seclabel type>`: dynamic, static or none.
    pub label_type: Option<String>,
    pub vnet: Option<String>,
    pub init_pid: Option<u32>,
}

/// Every domain on the connection, with what the live state says.
pub fn list(env: &Env) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for name in env.hv.domains()? {
        let Ok(xml) = env.hv.domain_xml(&name) else { continue };
        let d: DomainXml = facts::parse_domain(&xml).unwrap_or_default();
        let state = env.hv.domain_state(&name).unwrap_or(State::Other);
        rows.push(Row {
            init_pid: if state == State::Running { facts::init_pid(&env.run_dir, &name) } else { None },
            vnet: d.interfaces.iter().find_map(|i| i.dev.clone()),
            profile: d.meta.as_ref().map(|m| m.profile.clone()),
            label: d.label().map(str::to_string),
            label_type: d.seclabel.as_ref().map(|s| s.kind.clone()),
            state,
            name,
        });
    }
    Ok(rows)
}
