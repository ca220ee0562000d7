//! Container names.
//!
//! A name is used three ways: as a libvirt domain name, as one path component under the
//! pool (`/var/lib/libvirt/filesystems/NAME`), and in lock and state file names. It must be
//! safe for all three, so the rule is deliberately narrow: ASCII letters, digits, `_`, `-`
//! and `.`, starting with a letter or digit, at most 64 characters, never `.` or `..`.

use std::fmt;

/// Longest name accepted. libvirt allows more, but interface and cgroup names derived
/// from it get truncated by the kernel well before 255 characters.
pub const MAX_LEN: usize = 64;

/// A validated container name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("container name is empty")]
    Empty,
    #[error("container name {0:?} is longer than {MAX_LEN} characters")]
    TooLong(String),
    #[error("container name {0:?} is not allowed: it must not be '.' or '..'")]
    Dots(String),
    #[error("container name {0:?} must start with a letter or a digit (not '-', '.' or '_')")]
    BadStart(String),
    #[error("container name {name:?} contains {ch:?}: use only ASCII letters, digits, '-', '_' and '.'")]
    BadChar { name: String, ch: char },
}

impl Name {
    /// Checks `s` and wraps it.
    pub fn parse(s: &str) -> Result<Name, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > MAX_LEN {
            return Err(NameError::TooLong(s.to_string()));
        }
        if s == "." || s == ".." {
            return Err(NameError::Dots(s.to_string()));
        }
        if let Some(ch) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
            return Err(NameError::BadChar { name: s.to_string(), ch });
        }
        if !s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(NameError::BadStart(s.to_string()));
        }
        Ok(Name(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["web1", "a", "centos7", "student-01", "x_y.z", "9lives"] {
            assert_eq!(Name::parse(ok).unwrap().as_str(), ok);
        }
        assert!(Name::parse(&"a".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn refuses_hostile_names() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert!(matches!(Name::parse("."), Err(NameError::Dots(_))));
        assert!(matches!(Name::parse(".."), Err(NameError::Dots(_))));
        assert!(matches!(Name::parse("../x"), Err(NameError::BadChar { ch: '/', .. })));
        assert!(matches!(Name::parse("../etc"), Err(NameError::BadChar { ch: '/', .. })));
        assert!(matches!(Name::parse("a/b"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::parse("-rf"), Err(NameError::BadStart(_))));
        assert!(matches!(Name::parse(".hidden"), Err(NameError::BadStart(_))));
        assert!(matches!(Name::parse("a\nb"), Err(NameError::BadChar { ch: '\n', .. })));
        assert!(matches!(Name::parse("a\u{7f}"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::parse("a b"), Err(NameError::BadChar { ch: ' ', .. })));
        assert!(matches!(Name::parse("wéb"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::parse("<x>"), Err(NameError::BadChar { .. })));
        assert!(matches!(Name::parse(&"a".repeat(MAX_LEN + 1)), Err(NameError::TooLong(_))));
    }
}
