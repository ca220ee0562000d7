//! The one place YAML is parsed.
//!
//! `yaml_serde` is serde_yaml as maintained by The YAML Organization; serde_yaml itself is
//! deprecated and serde_yml has RUSTSEC advisories. Swapping the crate touches only this file.

use serde::de::DeserializeOwned;
use std::fmt;

/// A YAML document that could not be turned into the expected type.
#[derive(Debug, thiserror::Error)]
pub struct YamlError {
    /// Where the document came from (a path, or `built-in:NAME`).
    pub origin: String,
    /// 1-based line and column, when the parser knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.origin, l, c, self.message),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// Parses `text` (read from `origin`) into `T`.
pub fn parse<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, YamlError> {
    yaml_serde::from_str(text).map_err(|e| {
        let loc = e.location();
        let mut message = e.to_string();
        // The crate appends " at line L column C"; we print the location in front instead.
        if let Some(l) = &loc {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        YamlError {
            origin: origin.to_string(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })
}

/// Serialises `value` as YAML (for `profiles show`).
pub fn to_string<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(yaml_serde::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn reports_file_line_and_column() {
        let e = parse::<T>("a: 1\nb: 2\n", "x.yaml").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.column, Some(1));
        let s = e.to_string();
        assert!(s.starts_with("x.yaml:2:1: "), "{s}");
        assert!(s.contains("unknown field `b`"), "{s}");
    }

    #[test]
    fn reports_wrong_types() {
        let e = parse::<T>("a: lots\n", "y.yaml").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("invalid type"), "{e}");
    }
}
