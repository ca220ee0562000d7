//! Guest configuration applied after the install: hostname, network, console, root password.

use crate::distro::NetConfig;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Per-container settings applied after the install.
#[derive(Debug)]
pub struct GuestConfig {
    pub hostname: String,
    pub securetty: Option<String>,
    pub netconfig: NetConfig,
    /// Root's one authorized SSH key (a lab student's), and the ssh unit that must make the
    /// container's own host keys at first boot (the base's are removed: never shared).
    pub ssh: Option<GuestSsh>,
    /// A fixed address (`IP/PREFIX`) on eth0 instead of DHCP (a lab's student: a DHCP
    /// client needs `net_raw`, which the profiles drop).
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GuestSsh {
    /// The `authorized_keys` line.
    pub authorized_key: String,
    /// `ssh.service` on Debian and Ubuntu; None where the distro makes missing keys itself
    /// (EL and Fedora: sshd-keygen).
    pub keygen_unit: Option<&'static str>,
}

/// Where the installed host keys are; removed when the guest gets SSH access.
const SSH_HOST_KEYS: &str = "/etc/ssh/ssh_host_*";

pub use crate::plan::GuestFile;

impl GuestConfig {
    /// The files this configuration writes (the shadow file is handled apart, as a secret).
    pub fn files(&self) -> Vec<GuestFile> {
        let h = &self.hostname;
        let f = |path: &str, mode, why, content: String| GuestFile {
            path: path.into(),
            mode,
            why,
            content: Some(content),
            append_line: false,
            remove: false,
        };
        let mut v = vec![
            f("/etc/hostname", 0o644, "hostname", format!("{h}\n")),
            f(
                "/etc/hosts",
                0o644,
                "host names",
                format!("127.0.0.1\tlocalhost\n127.0.1.1\t{h}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            ),
            // Empty: systemd generates a fresh id at first boot, so copies never share one.
            f("/etc/machine-id", 0o444, "empty machine-id (a fresh one at each first boot)", String::new()),
        ];
        let fixed = self.address.as_deref().and_then(|a| a.split_once('/'));
        match (self.netconfig, fixed) {
            (NetConfig::Ifcfg, Some((ip, prefix))) => {
                v.push(f("/etc/sysconfig/network", 0o644, "networking on", "NETWORKING=yes\n".into()));
                v.push(f(
                    "/etc/sysconfig/network-scripts/ifcfg-eth0",
                    0o644,
                    "fixed address on eth0",
                    format!("DEVICE=eth0\nBOOTPROTO=none\nIPADDR={ip}\nPREFIX={prefix}\nONBOOT=yes\nTYPE=Ethernet\n"),
                ));
            }
            (NetConfig::Networkmanager, Some((ip, prefix))) => v.push(f(
                "/etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                "fixed address on eth0",
                format!("[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=manual\naddress1={ip}/{prefix}\n\n[ipv6]\nmethod=link-local\n"),
            )),
            (NetConfig::Networkd, Some((ip, prefix))) => v.push(f(
                "/etc/systemd/network/80-lxcprov-eth0.network",
                0o644,
                "fixed address on eth0",
                // LLDP needs a raw socket too; without net_raw networkd fails the link.
                format!("[Match]\nName=eth0\n\n[Network]\nAddress={ip}/{prefix}\nLLDP=no\nEmitLLDP=no\n"),
            )),
            (NetConfig::Ifcfg, None) => {
                v.push(f("/etc/sysconfig/network", 0o644, "networking on", "NETWORKING=yes\n".into()));
                v.push(f(
                    "/etc/sysconfig/network-scripts/ifcfg-eth0",
                    0o644,
                    "DHCP on eth0",
                    "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\nTYPE=Ethernet\n".into(),
                ));
            }
            (NetConfig::Networkmanager, None) => v.push(f(
                "/etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                "DHCP on eth0",
                "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n".into(),
            )),
            (NetConfig::Networkd, None) => v.push(f(
                "/etc/systemd/network/80-lxcprov-eth0.network",
                0o644,
                "DHCP on eth0",
                "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n".into(),
            )),
        }
        if let Some(tty) = &self.securetty {
            v.push(GuestFile {
                path: "/etc/securetty".into(),
                mode: 0o600,
                why: "allow root on the container console (pam_securetty)",
                content: Some(format!("{tty}\n")),
                append_line: true,
                remove: false,
            });
        }
        if let Some(ssh) = &self.ssh {
            v.push(f(
                "/root/.ssh/authorized_keys",
                0o600,
                "the student's public key",
                format!("{}\n", ssh.authorized_key),
            ));
            v.push(GuestFile {
                path: SSH_HOST_KEYS.into(),
                mode: 0,
                why: "the base's SSH host keys: each container makes its own",
                content: None,
                append_line: false,
                remove: true,
            });
            if let Some(unit) = ssh.keygen_unit {
                v.push(f(
                    &format!("/etc/systemd/system/{unit}.d/lxcprov-host-keys.conf"),
                    0o644,
                    "make missing SSH host keys before sshd starts",
                    "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
                        .into(),
                ));
            }
        }
        v
    }

    /// Applies the configuration to `root`. Idempotent.
    pub fn apply(&self, root: &Path, password_hash: &str) -> Result<()> {
        use crate::fsutil::{read_in, write_in};
        for file in self.files() {
            if file.remove {
                remove_matching(root, &file.path)?;
                continue;
            }
            let content = file.content.unwrap_or_default();
            if file.append_line {
                let existing = read_in(root, &file.path)?.unwrap_or_default();
                let line = content.trim_end();
                if existing.lines().any(|l| l.trim() == line) {
                    continue;
                }
                let mut new = existing.clone();
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                new.push_str(line);
                new.push('\n');
                write_in(root, &file.path, new.as_bytes(), file.mode)?;
            } else {
                write_in(root, &file.path, content.as_bytes(), file.mode)?;
            }
        }
        if self.ssh.is_some() {
            // sshd's StrictModes: root's ~/.ssh must not be open to others.
            let dir = crate::fsutil::resolve_in(root, "/root/.ssh")?;
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        if self.netconfig == NetConfig::Networkd {
            enable_unit(root, "systemd-networkd.service", "multi-user.target.wants")?;
        }
        let shadow = read_in(root, "/etc/shadow")?.unwrap_or_default();
        let updated = crate::password::set_root_hash(&shadow, password_hash);
        write_in(root, "/etc/shadow", updated.as_bytes(), 0o640)?;
        Ok(())
    }
}

/// Enables a systemd unit inside the guest, as `systemctl enable` would, if the unit exists.
fn enable_unit(root: &Path, unit: &str, wants: &str) -> Result<()> {
    for dir in ["/lib/systemd/system", "/usr/lib/systemd/system"] {
        let target = format!("{dir}/{unit}");
        if crate::fsutil::resolve_in(root, &target).map(|p| p.exists()).unwrap_or(false) {
            let dir_rel = format!("/etc/systemd/system/{wants}");
            let dir = crate::fsutil::resolve_in(root, &dir_rel)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Checked again once made: no parent turned into a link in between.
            crate::fsutil::resolve_in(root, &dir_rel)?;
            let link = dir.join(unit);
            // The enablement link may be there already (a tree configured again: a restored
            // snapshot, a re-run): the right one is kept, anything else that is not a
            // directory is replaced. A link is removed, never followed.
            match std::fs::symlink_metadata(&link) {
                Ok(m) if m.file_type().is_symlink() && std::fs::read_link(&link)? == Path::new(&target) => {
                    return Ok(())
                }
                Ok(m) if m.is_dir() => bail!("{} is a directory, not a unit link; remove it", link.display()),
                Ok(_) => std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?,
                Err(_) => {}
            }
            std::os::unix::fs::symlink(&target, &link).with_context(|| format!("creating {}", link.display()))?;
            return Ok(());
        }
    }
    Ok(())
}

/// Removes the files under `root` that match `pattern` (a directory and a `prefix*` name).
fn remove_matching(root: &Path, pattern: &str) -> Result<()> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("/", pattern));
    let prefix = name.trim_end_matches('*');
    let dir = crate::fsutil::resolve_in(root, dir)?;
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    for e in entries.flatten() {
        let ok = e.file_name().to_str().is_some_and(|n| n.starts_with(prefix));
        // Only files and symlinks (never a directory someone named ssh_host_x).
        if ok && e.file_type().is_ok_and(|t| !t.is_dir()) {
            std::fs::remove_file(e.path()).map_err(|err| anyhow::anyhow!("removing {}: {err}", e.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree configured again (a restored snapshot holds the first configuration's link):
    /// the right link is kept, a link elsewhere is replaced without being followed.
    #[test]
    fn enabling_a_unit_again_keeps_or_replaces_its_link_and_never_follows_one() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("lib/systemd/system")).unwrap();
        std::fs::write(root.join("lib/systemd/system/x.service"), "[Unit]\n").unwrap();
        let link = root.join("etc/systemd/system/multi-user.target.wants/x.service");
        enable_unit(root, "x.service", "multi-user.target.wants").unwrap();
        enable_unit(root, "x.service", "multi-user.target.wants").unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/lib/systemd/system/x.service"));
        let outside = d.path().join("outside");
        std::fs::write(&outside, "host").unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        enable_unit(root, "x.service", "multi-user.target.wants").unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/lib/systemd/system/x.service"));
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "host");
        // A wants directory that is a link out of the tree is refused.
        std::fs::remove_dir_all(root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        assert!(enable_unit(root, "x.service", "multi-user.target.wants").is_err());
    }

    fn cfg(netconfig: NetConfig, ssh: bool) -> GuestConfig {
        GuestConfig {
            hostname: "l-s01".into(),
            securetty: None,
            netconfig,
            ssh: ssh
                .then(|| GuestSsh { authorized_key: "ssh-ed25519 AAAA c".into(), keygen_unit: Some("ssh.service") }),
            address: ssh.then(|| "10.213.7.11/24".into()),
        }
    }

    #[test]
    fn a_student_gets_its_key_a_fixed_address_and_no_copied_host_keys() {
        let root = tempfile::tempdir().unwrap();
        for f in ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config"] {
            crate::fsutil::write_in(root.path(), &format!("/etc/ssh/{f}"), b"x", 0o600).unwrap();
        }
        crate::fsutil::write_in(root.path(), "/etc/shadow", b"root:*:1::::::\n", 0o640).unwrap();
        cfg(NetConfig::Networkd, true).apply(root.path(), "$6$h").unwrap();
        let r = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(r("root/.ssh/authorized_keys"), "ssh-ed25519 AAAA c\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(root.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("root/.ssh"), mode("root/.ssh/authorized_keys")), (0o700, 0o600));
        assert!(!root.path().join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!root.path().join("etc/ssh/ssh_host_ed25519_key.pub").exists());
        assert!(root.path().join("etc/ssh/sshd_config").exists(), "only host keys go");
        assert!(r("etc/systemd/system/ssh.service.d/lxcprov-host-keys.conf").contains("ssh-keygen -A"));
        let net = r("etc/systemd/network/80-lxcprov-eth0.network");
        assert!(net.contains("Address=10.213.7.11/24") && !net.contains("DHCP"), "{net}");
    }

    #[test]
    fn every_network_configuration_can_carry_a_fixed_address() {
        for nc in [NetConfig::Ifcfg, NetConfig::Networkmanager, NetConfig::Networkd] {
            let fixed: String = cfg(nc, true).files().iter().filter_map(|f| f.content.clone()).collect();
            assert!(fixed.contains("10.213.7.11") && !fixed.contains("dhcp") && !fixed.contains("DHCP"), "{nc:?}");
            let dhcp: String = cfg(nc, false).files().iter().filter_map(|f| f.content.clone()).collect();
            assert!(dhcp.to_lowercase().contains("dhcp") || dhcp.contains("method=auto"), "{nc:?}");
        }
    }
}
