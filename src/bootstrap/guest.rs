//! Guest configuration applied after the install: hostname, network, console, root password.

use crate::distro::NetConfig;
use anyhow::Result;
use std::path::Path;

/// Per-container settings applied after the install.
#[derive(Debug)]
pub struct GuestConfig {
    pub hostname: String,
    pub securetty: Option<String>,
    pub netconfig: NetConfig,
}

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
        match self.netconfig {
            NetConfig::Ifcfg => {
                v.push(f("/etc/sysconfig/network", 0o644, "networking on", "NETWORKING=yes\n".into()));
                v.push(f(
                    "/etc/sysconfig/network-scripts/ifcfg-eth0",
                    0o644,
                    "DHCP on eth0",
                    "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\nTYPE=Ethernet\n".into(),
                ));
            }
            NetConfig::Networkmanager => v.push(f(
                "/etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                "DHCP on eth0",
                "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n".into(),
            )),
            NetConfig::Networkd => v.push(f(
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
            });
        }
        v
    }

    /// Applies the configuration to `root`. Idempotent.
    pub fn apply(&self, root: &Path, password_hash: &str) -> Result<()> {
        use crate::fsutil::{read_in, write_in};
        for file in self.files() {
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
            let link_rel = format!("/etc/systemd/system/{wants}/{unit}");
            let link = crate::fsutil::resolve_in(root, &link_rel)?;
            if std::fs::symlink_metadata(&link).is_err() {
                std::fs::create_dir_all(link.parent().unwrap())?;
                std::os::unix::fs::symlink(&target, &link)?;
            }
            return Ok(());
        }
    }
    Ok(())
}
