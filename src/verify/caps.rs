//! `caps`: the capabilities the profile drops are absent from the init's bounding set
//! (`CapBnd:` in `/proc/PID/status`).

use super::procfs::status_field;
use super::{Check, Ctx};

/// Capability names by bit number (`CAP_CHOWN` = 0 ... `CAP_CHECKPOINT_RESTORE` = 40), in
/// libvirt's lower-case spelling without `cap_`.
pub const CAP_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The bit number of a capability name (`sys_admin`, `CAP_SYS_ADMIN`, `cap_sys_admin`).
pub fn cap_bit(name: &str) -> Option<u32> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_prefix("cap_").unwrap_or(&n);
    CAP_NAMES.iter().position(|c| *c == n).map(|i| i as u32)
}

/// The names of the bits set in `mask` (`capNN` for bits beyond [`CAP_NAMES`]).
pub(super) fn cap_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| CAP_NAMES.get(b as usize).map_or_else(|| format!("cap{b}"), |n| n.to_string()))
        .collect()
}

/// The check; see the module doc.
pub(super) fn caps(cx: &Ctx) -> Check {
    const ID: &str = "caps";
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let path = cx.host.proc().join(init.to_string()).join("status");
    let status = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => return Check::fail(ID, format!("cannot read {}: {e}", path.display()), vec![]),
    };
    let Some(hex) = status_field(&status, "CapBnd") else {
        return Check::fail(ID, format!("{} has no CapBnd line", path.display()), vec![]);
    };
    let Ok(mask) = u64::from_str_radix(hex, 16) else {
        return Check::fail(ID, format!("CapBnd {hex:?} is not hexadecimal"), vec![]);
    };
    let present = cap_names(mask);
    let mut ev = vec![
        format!("{}: CapBnd: {hex}", path.display()),
        format!("bounding set ({}): {}", present.len(), present.join(", ")),
        format!("must be absent: {}", cx.expect.dropped_caps.join(", ")),
    ];
    let mut bad = Vec::new();
    for name in &cx.expect.dropped_caps {
        match cap_bit(name) {
            None => bad.push(format!("unknown capability name {name:?}")),
            Some(b) if mask & (1u64 << b) != 0 => bad.push(format!("{name} is still in the bounding set")),
            Some(_) => {}
        }
    }
    if cx.expect.dropped_caps.is_empty() {
        ev.push("the profile drops no capabilities: nothing must be absent".into());
    }
    let ok = format!(
        "none of the {} dropped capabilities is in the bounding set ({} remain)",
        cx.expect.dropped_caps.len(),
        present.len()
    );
    Check::verdict(ID, bad, ok, ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_names() {
        assert_eq!(cap_bit("chown"), Some(0));
        assert_eq!(cap_bit("sys_admin"), Some(21));
        assert_eq!(cap_bit("CAP_NET_RAW"), Some(13));
        assert_eq!(cap_bit("checkpoint_restore"), Some(40));
        assert_eq!(cap_bit("sys_pwn"), None);
        assert_eq!(cap_names(0b101), ["chown", "dac_read_search"]);
        assert_eq!(cap_names(1 << 41), ["cap41"]);
        // Every libvirt capability name maps to a bit.
        for n in crate::profile::CAPABILITIES {
            assert!(cap_bit(n).is_some(), "{n}");
        }
    }
}
