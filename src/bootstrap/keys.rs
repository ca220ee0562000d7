//! Pinned trust anchors: every signing key the installer will trust is fetched (or copied)
//! by lxcprov into its cache, its fingerprint checked against the catalog's (or the
//! profile's) pins, and only that verified local copy is handed to the installer. A key
//! whose fingerprint is not pinned is refused before anything is installed.

use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub use crate::distro::{normalise_fingerprint as normalise, pretty_fingerprint as pretty, PinnedKey};

/// Keys larger than this are refused (a key is a few kB).
const KEY_MAX: u64 = 1 << 20;

/// The verified local copy of `url` under `keys_dir`.
pub fn local_copy(keys_dir: &Path, url: &str) -> PathBuf {
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    keys_dir.join(format!("{hex}.asc"))
}

/// The primary keys' fingerprints in `gpg --with-colons` output (subkeys' are skipped).
pub fn primary_fingerprints(colons: &str) -> Vec<String> {
    let mut out = vec![];
    let mut after_pub = false;
    for l in colons.lines() {
        let f: Vec<&str> = l.split(':').collect();
        match f.first().copied() {
            Some("pub") => after_pub = true,
            Some("sub") | Some("ssb") => after_pub = false,
            Some("fpr") if after_pub => {
                if let Some(fp) = f.get(9).and_then(|s| normalise(s)) {
                    out.push(fp);
                }
                after_pub = false;
            }
            _ => {}
        }
    }
    out
}

fn gpg(homedir: &Path) -> Cmd {
    Cmd::new("gpg").args(["--batch", "--no-tty", "--homedir"]).arg(homedir.display().to_string())
}

fn output(runner: &dyn Runner, cmd: &Cmd) -> Result<String> {
    let mut s = String::new();
    runner.run(cmd, &mut |l| {
        s.push_str(l);
        s.push('\n');
    })?;
    Ok(s)
}

fn prepare_homedir(homedir: &Path) -> Result<()> {
    crate::fsutil::ensure_private_dir(homedir, 0o700)
}

/// Fetches (https) or copies (file) `key.url` to `key.local` and checks that every primary
/// key in it is pinned. With no pins, the key is trusted as found and a warning returned.
pub fn verify(runner: &dyn Runner, homedir: &Path, key: &PinnedKey, pins: &[String]) -> Result<Option<String>> {
    prepare_homedir(homedir)?;
    let dir = key.local.parent().context("key path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = key.local.with_extension(format!("tmp.{}", std::process::id()));
    if let Some(path) = key.url.strip_prefix("file://") {
        let bytes = crate::fsutil::read_regular_bounded(Path::new(path), KEY_MAX, "signing key")?;
        crate::fsutil::write_atomic(&tmp, &bytes, 0o644)?;
    } else if key.url.starts_with("https://") {
        let cmd = Cmd::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location", "--proto", "=https", "--proto-redir", "=https"])
            .args(["--max-filesize", &KEY_MAX.to_string(), "--max-time", "60", "--output"])
            .arg(tmp.display().to_string())
            .arg(key.url.clone());
        runner.run(&cmd, &mut |_| {}).with_context(|| format!("fetching the signing key {}", key.url))?;
    } else {
        bail!("signing key {}: only https:// and file:// keys are accepted", key.url);
    }
    let r = (|| -> Result<Option<String>> {
        let show =
            gpg(homedir).args(["--show-keys", "--with-colons", "--fixed-list-mode"]).arg(tmp.display().to_string());
        let found = primary_fingerprints(&output(runner, &show)?);
        if found.is_empty() {
            bail!("{} holds no OpenPGP public key", key.url);
        }
        let warning = if pins.is_empty() {
            Some(format!(
                "the signing key {} ({}) has no pinned fingerprint: it is trusted as fetched",
                key.url,
                found.iter().map(|f| pretty(f)).collect::<Vec<_>>().join(", ")
            ))
        } else {
            if let Some(bad) = found.iter().find(|f| !pins.contains(f)) {
                bail!(
                    "the signing key {} has fingerprint {}, which is not pinned (expected {}); refusing it before anything is installed",
                    key.url,
                    pretty(bad),
                    pins.iter().map(|p| pretty(p)).collect::<Vec<_>>().join(" or ")
                );
            }
            None
        };
        std::fs::rename(&tmp, &key.local).with_context(|| format!("keeping {}", key.local.display()))?;
        Ok(warning)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Exports exactly the pinned keys from `source` (an archive keyring) into `dest`, which
/// debootstrap then uses instead of the whole keyring; a pinned key missing from `source`
/// is an error.
pub fn pin_keyring(runner: &dyn Runner, homedir: &Path, source: &Path, pins: &[String], dest: &Path) -> Result<()> {
    prepare_homedir(homedir)?;
    let dir = dest.parent().context("keyring path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let export = gpg(homedir)
        .args(["--no-default-keyring", "--keyring"])
        .arg(source.display().to_string())
        .args(["--export", "--output"])
        .arg(tmp.display().to_string())
        .args(pins.iter().cloned());
    runner.run(&export, &mut |_| {}).with_context(|| format!("exporting the pinned keys from {}", source.display()))?;
    let show = gpg(homedir).args(["--show-keys", "--with-colons", "--fixed-list-mode"]).arg(tmp.display().to_string());
    let found = output(runner, &show).unwrap_or_default();
    let found = primary_fingerprints(&found);
    if let Some(missing) = pins.iter().find(|p| !found.contains(p)) {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "the archive keyring {} does not hold the pinned key {}; refusing to install (update the keyring package, or check the catalog)",
            source.display(),
            pretty(missing)
        );
    }
    std::fs::rename(&tmp, dest).with_context(|| format!("keeping {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised_and_only_primaries_count() {
        assert_eq!(
            normalise("6341 AB27 53D7 8A78 A7C2  7BB1 24C6 A8A7 F4A8 0EB5").unwrap(),
            "6341AB2753D78A78A7C27BB124C6A8A7F4A80EB5"
        );
        assert!(normalise("6341AB27").is_none() && normalise(&"Z".repeat(40)).is_none());
        let colons = "pub:-:4096:1:B7C5D7D6350947F8:1:2::-:::scSC::::::23::0:\nrvk:::1::::::80E976F14A508A48E9CA3FE9BC372252CA1CF964:80:\nfpr:::::::::B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8:\nsub:-:4096:1:6ED0E7B82643E131:1:2:::::s::::::23:\nfpr:::::::::4CB50190207B4758A3F73A796ED0E7B82643E131:\n";
        assert_eq!(primary_fingerprints(colons), ["B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"]);
        assert_eq!(
            pretty("6341AB2753D78A78A7C27BB124C6A8A7F4A80EB5"),
            "6341 AB27 53D7 8A78 A7C2 7BB1 24C6 A8A7 F4A8 0EB5"
        );
    }
}
