//! `lxcprov distros`: the catalog.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;

pub fn run(out: &Out) -> Result<Outcome> {
    for d in lxcprov::distro::catalog() {
        if out.json {
            out.record("distro", &d)?;
        } else {
            let installer = format!("{:?}", d.installer).to_lowercase();
            out.text(&format!("{:15} {:12} {:6} {}\n", d.name, installer, d.release, d.description))?;
        }
    }
    Ok(Outcome::Ok)
}
