//! `net.vnet`: the container has its own network namespace, and each host-side veth
//! (`vnetN`) exists, is up and is enslaved to the expected bridge.
//!
//! "Up" is the host side's administrative state, the `UP` of `ip link show vnet0` (bit
//! IFF_UP of `/sys/class/net/DEV/flags`): libvirt brings it up and enslaves it. Its
//! `operstate` (carrier) also depends on the guest bringing its own `eth0` up, which a
//! guest without network configuration never does, so it is shown as evidence, not judged.
//! Without a `flags` file the check falls back to `operstate` (`up`, or `unknown` for
//! drivers that track no operational state).

use super::procfs::{ns_inode, ns_pair, read_trim};
use super::{Check, Ctx, Iface};
use std::path::Path;

/// A plausible network device name: 1-15 characters, no `/`, not `.` or `..`.
fn valid_dev(dev: &str) -> bool {
    !dev.is_empty() && dev.len() <= 15 && dev != "." && dev != ".." && !dev.contains(['/', '\0'])
}

/// The check; see the module doc.
pub(super) fn vnet(cx: &Ctx) -> Check {
    const ID: &str = "net.vnet";
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (mut ev, mut bad) = (Vec::new(), Vec::new());
    let ns = ns_pair(&cx.host.proc(), init, "net", &mut ev);
    let shared = matches!(&ns, Ok((a, b)) if a == b);
    match &ns {
        Err(e) => bad.push(format!("cannot compare network namespaces: {e}")),
        Ok((a, _)) if shared => bad.push(format!("shares the host's network namespace ({a})")),
        Ok(_) => {}
    }
    if cx.facts.interfaces.is_empty() {
        let why = if shared {
            "no interface in the live XML, and the container shares the host's network namespace"
        } else {
            "no interface in the live XML: expected a vnet device on a bridge"
        };
        return Check::fail(ID, why, ev);
    }
    let sysnet = cx.host.sys().join("class/net");
    let devs: Vec<String> = cx.facts.interfaces.iter().map(|i| check_iface(&sysnet, i, &mut ev, &mut bad)).collect();
    let ok = match &ns {
        Ok((a, b)) => format!("{}; net ns {} != host {}", devs.join(", "), ns_inode(a), ns_inode(b)),
        Err(_) => devs.join(", "),
    };
    Check::verdict(ID, bad, ok, ev)
}

/// Checks one interface; returns its description for the summary.
fn check_iface(sysnet: &Path, iface: &Iface, ev: &mut Vec<String>, bad: &mut Vec<String>) -> String {
    let Some(dev) = iface.target_dev.as_deref() else {
        bad.push("an interface has no target device in the live XML".into());
        return "?".into();
    };
    if !valid_dev(dev) {
        bad.push(format!("{dev:?} is not a network device name"));
        return "?".into();
    }
    let dir = sysnet.join(dev);
    if !dir.exists() {
        ev.push(format!("{}: missing", dir.display()));
        bad.push(format!("{dev} does not exist on the host"));
        return dev.to_string();
    }
    check_operstate(&dir, dev, ev, bad);
    match check_master(&dir, dev, iface.expected_bridge.as_deref(), ev, bad) {
        Some(br) => format!("{dev} up on {br}"),
        None => format!("{dev} up"),
    }
}

/// IFF_UP in a `flags` file.
const IFF_UP: u32 = 0x1;

fn check_operstate(dir: &Path, dev: &str, ev: &mut Vec<String>, bad: &mut Vec<String>) {
    let flags_path = dir.join("flags");
    if let Ok(flags) = read_trim(&flags_path) {
        let value = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap_or(0);
        let oper = read_trim(&dir.join("operstate")).unwrap_or_else(|e| e);
        if value & IFF_UP != 0 {
            ev.push(format!("{}: {flags} (UP)", flags_path.display()));
            let note = if oper == "up" || oper == "unknown" {
                String::new()
            } else {
                " (no carrier: the container has not brought its eth0 up)".into()
            };
            ev.push(format!("{}: {oper}{note}", dir.join("operstate").display()));
        } else {
            ev.push(format!("{}: {flags} (not UP)", flags_path.display()));
            bad.push(format!("{dev} is administratively down"));
        }
        return;
    }
    let path = dir.join("operstate");
    match read_trim(&path) {
        Ok(s) if s == "up" => ev.push(format!("{}: up", path.display())),
        Ok(s) if s == "unknown" => {
            ev.push(format!("{}: unknown (accepted as up: no operational state tracked)", path.display()))
        }
        Ok(s) => {
            ev.push(format!("{}: {s}", path.display()));
            bad.push(format!("{dev} is {s}, not up"));
        }
        Err(e) => {
            ev.push(e);
            bad.push(format!("cannot read the state of {dev}"));
        }
    }
}

/// Checks the `master` link; returns the bridge's name when enslaved.
fn check_master(
    dir: &Path,
    dev: &str,
    want: Option<&str>,
    ev: &mut Vec<String>,
    bad: &mut Vec<String>,
) -> Option<String> {
    let path = dir.join("master");
    let bridge = std::fs::read_link(&path).ok().and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    ev.push(format!("{}: {}", path.display(), bridge.as_deref().unwrap_or("(none)")));
    match (&bridge, want) {
        (Some(b), Some(w)) if b != w => bad.push(format!("{dev} is enslaved to {b}, not {w}")),
        (None, Some(w)) => bad.push(format!("{dev} is not enslaved to any bridge (expected {w})")),
        _ => {}
    }
    bridge
}

#[cfg(test)]
mod tests {
    use super::valid_dev;

    #[test]
    fn device_names() {
        assert!(valid_dev("vnet0") && valid_dev("veth-abc.1"));
        assert!(!valid_dev("") && !valid_dev("..") && !valid_dev("a/b") && !valid_dev("sixteen-chars-xx"));
    }
}
