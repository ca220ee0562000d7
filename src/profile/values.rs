//! Single values a profile names: package names, host names, object names, URLs, mirrors,
//! static labels. Each check says what is wrong, for the located findings.

/// File suffixes that make an installer read a package argument as a local file.
const FILE_SUFFIXES: &[&str] = &[".rpm", ".deb", ".udeb", ".ddeb", ".dsc", ".changes"];

/// URL schemes an installer (librepo and curl, apt's methods) may read before a `:`.
const URL_SCHEMES: &[&str] = &[
    "file",
    "http",
    "https",
    "ftp",
    "ftps",
    "sftp",
    "scp",
    "smb",
    "smbs",
    "tftp",
    "dict",
    "gopher",
    "gophers",
    "ldap",
    "ldaps",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "smtp",
    "smtps",
    "rtsp",
    "telnet",
    "ws",
    "wss",
    "data",
    "media",
    "nfs",
    "cdrom",
    "copy",
    "mirror",
    "mirror+file",
    "mirror+http",
    "mirror+https",
    "rsh",
    "ssh",
    "tor",
    "tor+http",
    "tor+https",
    "s3",
    "gs",
    "metalink",
    "mirrorlist",
];

/// Why `s` is not acceptable as a package name, if it is not. A package argument must never
/// be read by the installer as an option (`-x`, `--setopt=...`), a glob, a local file (dnf
/// and yum install `x.rpm` as a file, without the repository's signature policy), a URL
/// (`file:`, `http:`), a path, a version range or a shell word.
pub fn package_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() || s.len() > 200 {
        return Some("must have 1 to 200 characters");
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start with a letter or digit (never '-': it would be an option)");
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "._+-:~".contains(c)) {
        return Some("may hold only letters, digits and ._+-:~ (no paths, globs, spaces or quotes)");
    }
    let lower = s.to_ascii_lowercase();
    if FILE_SUFFIXES.iter().any(|x| lower.ends_with(x)) {
        return Some("ends like a package file: the installer would read it as a local file, unsigned");
    }
    if let Some((scheme, _)) = lower.split_once(':') {
        if URL_SCHEMES.contains(&scheme) {
            return Some("starts with a URL scheme: the installer would fetch it as a URL");
        }
        if s.matches(':').count() > 1 {
            return Some("has more than one ':' (name:arch or name-epoch:version only)");
        }
    }
    None
}

/// Is `s` acceptable as a package name ([`package_problem`])?
pub fn valid_package(s: &str) -> bool {
    package_problem(s).is_none()
}

/// Is `s` a valid RFC 1123 host name?
pub fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Is `s` a valid libvirt network, bridge or nwfilter name?
pub(super) fn valid_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A mirror or repository URL: http(s) or file, with no whitespace or control characters.
/// Whether plain `http://` is acceptable depends on what it is for ([`Profile::check`]).
pub fn valid_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("file:///"))
        && s.len() <= 2048
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\`,".contains(c))
}

/// Checks a mirror URL (a profile's `mirror:`, or `--mirror`) against the trust settings:
/// `Err` when it must be refused (not a URL [`valid_url`] accepts; plain http without
/// signature checking), `Ok(Some(warning))` for plain http to an rpm installer with
/// signature checking (repository metadata is not signed), else `Ok(None)`. `rpm` is true
/// for dnf and yum: debootstrap's Release files are signed, so plain http is its norm.
pub fn mirror_trust(m: &str, gpgcheck: bool, rpm: bool) -> Result<Option<String>, String> {
    if !valid_url(m) {
        return Err(format!("mirror {m:?} is not an http://, https:// or file:/// URL without spaces or quotes"));
    }
    if !m.starts_with("http://") {
        return Ok(None);
    }
    if !gpgcheck {
        return Err(format!(
            "mirror {m:?} is plain http and trust.gpgcheck is off: anyone on the path could replace the packages; use https://"
        ));
    }
    Ok(rpm.then(|| {
        format!(
            "WARNING: mirror {m:?} is plain http: packages are signature-checked, but repository metadata is not \
             (old or withheld updates); prefer https://"
        )
    }))
}

/// An SELinux process label `user:role:type:level` for a container: the whole context is
/// checked ([`crate::mcs::check_static_label`]) with no range and a container type.
pub fn valid_static_label(s: &str) -> Result<(), String> {
    crate::mcs::check_static_label(s, crate::mcs::ContextKind::Process, false, false).map(|_| ())
}
