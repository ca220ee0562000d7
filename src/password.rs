//! The root password: read from a file or stdin, or generated; stored only as a SHA-512
//! crypt hash (`$6$`). The clear text never reaches an argv, an environment, a log line, the
//! XML or a report; it lives in a [`Secret`] whose `Debug` prints nothing.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Longest password accepted (bytes). crypt implementations cap the work at far less.
pub const MAX_LEN: usize = 256;

/// Largest password file read (bytes): room for the password and some stray whitespace.
pub const FILE_MAX: u64 = 4096;

/// A clear-text password. Not `Display`, `Debug` redacted.
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Checks a password: not empty, not huge, one line, no control characters.
    pub fn new(s: String) -> Result<Secret> {
        if s.is_empty() {
            bail!("the root password is empty");
        }
        if s.len() > MAX_LEN {
            bail!("the root password is longer than {MAX_LEN} bytes");
        }
        if s.contains('\n') || s.contains('\r') {
            bail!("the root password spans several lines; give one line");
        }
        if s.chars().any(|c| c.is_control()) {
            bail!("the root password contains control characters");
        }
        Ok(Secret(s))
    }

    /// Reads a password from a file (one trailing newline is ignored). The file must be a
    /// regular file of at most [`FILE_MAX`] bytes: a FIFO, a device or a huge file is
    /// refused at once instead of blocking or filling memory.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let bytes = crate::fsutil::read_regular_bounded(path, FILE_MAX, "root password file")?;
        Self::from_reader(&mut bytes.as_slice()).with_context(|| format!("root password file {}", path.display()))
    }

    /// [`Secret::from_file`] for a password lxcprov stored in its own state (a lab's
    /// `STATE/labs/LAB/passwords/NAME`): a symlink there is refused too, so a planted link to
    /// a host file never becomes a container's password. `None` when the file is missing.
    pub fn from_state_file(path: &Path) -> Result<Option<Secret>> {
        let Some(bytes) = crate::fsutil::read_state(path, FILE_MAX, "password file")? else { return Ok(None) };
        Self::from_reader(&mut bytes.as_slice()).with_context(|| format!("password file {}", path.display())).map(Some)
    }

    /// Reads a password from a reader such as stdin (one trailing newline is ignored). At
    /// most `MAX_LEN + 3` bytes are read, so an endless stream (`< /dev/zero`) is refused
    /// as too long; a terminal or pipe still has to reach end-of-file.
    pub fn from_reader(r: &mut dyn Read) -> Result<Secret> {
        let mut buf = Vec::new();
        r.take(MAX_LEN as u64 + 3).read_to_end(&mut buf)?;
        let mut s = String::from_utf8(buf).context("the root password is not UTF-8")?;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        Self::new(s)
    }

    /// A strong random password: 20 characters from a 56-symbol alphabet (~116 bits).
    pub fn generate() -> Result<Secret> {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut out = String::new();
        while out.len() < 20 {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            // Rejection sampling keeps the distribution uniform.
            for x in b {
                let limit = 256 - (256 % ALPHABET.len());
                if (x as usize) < limit && out.len() < 20 {
                    out.push(ALPHABET[x as usize % ALPHABET.len()] as char);
                }
            }
        }
        Ok(Secret(out))
    }

    /// The clear text, for the one place that must show a generated password.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-512 crypt hash (`$6$salt$hash`) for `/etc/shadow`.
    pub fn sha512_crypt(&self) -> Result<String> {
        let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
            .map_err(|e| anyhow::anyhow!("sha512 parameters: {e:?}"))?;
        sha_crypt::sha512_simple(&self.0, &params).map_err(|e| anyhow::anyhow!("hashing the password: {e:?}"))
    }
}

/// Replaces root's hash in a shadow file's text, or adds a root line.
pub fn set_root_hash(shadow: &str, hash: &str) -> String {
    // Days since the epoch, for the "last changed" field.
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0);
    let mut found = false;
    let mut lines: Vec<String> = shadow
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(':').map(str::to_string).collect();
            if f.len() < 2 || f[0] != "root" {
                return l.to_string();
            }
            found = true;
            f[1] = hash.to_string();
            if let Some(changed) = f.get_mut(2) {
                *changed = days.to_string();
            }
            f.join(":")
        })
        .collect();
    if !found {
        lines.insert(0, format!("root:{hash}:{days}:0:99999:7:::"));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_hostile_passwords() {
        assert!(Secret::new(String::new()).is_err());
        assert!(Secret::new("a\nb".into()).is_err());
        assert!(Secret::new("a\u{1b}[2J".into()).is_err());
        assert!(Secret::new("x".repeat(MAX_LEN + 1)).is_err());
        assert!(Secret::from_reader(&mut "\n".as_bytes()).is_err());
        assert!(Secret::from_reader(&mut "two\nlines\n".as_bytes()).is_err());
        assert!(Secret::from_reader(&mut "x".repeat(10_000).as_bytes()).is_err());
        // An endless reader (stdin redirected from /dev/zero) is cut off, not read forever.
        assert!(Secret::from_reader(&mut std::io::repeat(b'x')).is_err());
        assert_eq!(Secret::from_reader(&mut "s3cret pw\n".as_bytes()).unwrap().expose(), "s3cret pw");
    }

    #[test]
    fn password_files_must_be_small_regular_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(Secret::from_file(&f).unwrap().expose(), "s3cret");
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(format!("{:#}", Secret::from_file(&fifo).unwrap_err())).unwrap());
        let e = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("reading a FIFO hung");
        assert!(e.contains("FIFO") && e.contains("root password file"), "{e}");
        let e = format!("{:#}", Secret::from_file(Path::new("/dev/zero")).unwrap_err());
        assert!(e.contains("character device"), "{e}");
        let big = d.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(10 << 30).unwrap();
        assert!(format!("{:#}", Secret::from_file(&big).unwrap_err()).contains("limit of 4096"));
        assert!(format!("{:#}", Secret::from_file(d.path()).unwrap_err()).contains("directory"));
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2".into()).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn hashes_are_sha512_crypt_and_verify() {
        let s = Secret::new("correct horse".into()).unwrap();
        let h = s.sha512_crypt().unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        assert!(sha_crypt::sha512_check("correct horse", &h).is_ok());
        assert!(sha_crypt::sha512_check("wrong", &h).is_err());
    }

    #[test]
    fn generated_passwords_are_strong_and_distinct() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn shadow_root_line_is_replaced_once() {
        let s = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
        let out = set_root_hash(s, "$6$abc$def");
        assert!(out.starts_with("root:$6$abc$def:"), "{out}");
        assert!(out.contains("daemon:*:19000"));
        assert_eq!(out.lines().count(), 2);
        let again = set_root_hash(&out, "$6$x$y");
        assert_eq!(again.lines().filter(|l| l.starts_with("root:")).count(), 1);
        assert!(set_root_hash("", "$6$a$b").starts_with("root:$6$a$b:"));
    }
}
