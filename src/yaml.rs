//! The one place YAML is parsed.
//!
//! `yaml_serde` is serde_yaml as maintained by The YAML Organization; serde_yaml itself is
//! deprecated and serde_yml has RUSTSEC advisories. Swapping the crate touches only this file.

use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;

/// Largest YAML file read from disk (profiles and labs are a few kilobytes).
pub const MAX_FILE: u64 = 1 << 20;

/// Deepest nesting of sequences and mappings accepted. A profile nests four or five
/// levels; libyaml's scanner costs time proportional to the depth for every token, so a
/// file of nothing but `[[[[…` would otherwise take minutes.
pub const MAX_DEPTH: usize = 64;

/// How many parse events a document may stand for once its aliases are expanded, at most:
/// this many per byte of input, plus [`EXPANSION_SLACK`]. Ordinary YAML has far fewer
/// events than bytes; "billion laughs" (aliases of aliases of aliases) has exponentially
/// more, and would be expanded into gigabytes by the deserialiser.
pub const EXPANSION_PER_BYTE: u64 = 10;
pub const EXPANSION_SLACK: u64 = 10_000;

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

/// Parses `text` (read from `origin`) into `T`, after [`check_limits`].
pub fn parse<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, YamlError> {
    check_limits(text, origin)?;
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
        // serde quotes the document's own text (`unknown field `\u{202e}x``) raw: a key
        // holding escape sequences or bidi controls would reach the terminal.
        let message = crate::text::for_terminal(&message).into_owned();
        YamlError {
            origin: origin.to_string(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })
}

/// Refuses YAML that is too deeply nested ([`MAX_DEPTH`]) or whose aliases expand to far
/// more than its size ([`EXPANSION_PER_BYTE`]), before anything is built from it.
///
/// This walks libyaml's event stream (the parser `yaml_serde` itself uses) and stops at the
/// first violation, so the cost is linear in the input. An alias refers to the last
/// completed node with its anchor; an alias to a node that is still open (`&a [*a]`) is
/// refused as recursive. A document libyaml cannot parse is left to `yaml_serde`, which
/// reports the same error with its position.
pub fn check_limits(text: &str, origin: &str) -> Result<(), YamlError> {
    let budget = (text.len() as u64).saturating_mul(EXPANSION_PER_BYTE).saturating_add(EXPANSION_SLACK);
    let err = |mark: (usize, usize), message: String| YamlError {
        origin: origin.to_string(),
        line: Some(mark.0),
        column: Some(mark.1),
        message: crate::text::for_terminal(&message).into_owned(),
    };
    let mut parser = events::Parser::new(text.as_bytes());
    // Open collections: their anchor (if any) and the expanded count when they started.
    let mut open: Vec<(Option<Vec<u8>>, u64)> = Vec::new();
    // Anchor -> expanded size of its node; `None` while the node is still open.
    let mut anchors: HashMap<Vec<u8>, Option<u64>> = HashMap::new();
    let mut expanded: u64 = 0;
    loop {
        let Some(ev) = parser.next() else { return Ok(()) };
        let cost = match ev.kind {
            events::Kind::End => return Ok(()),
            events::Kind::Other => 0,
            events::Kind::Scalar => {
                if let Some(a) = ev.anchor {
                    anchors.insert(a, Some(1));
                }
                1
            }
            events::Kind::Start => {
                if open.len() >= MAX_DEPTH {
                    return Err(err(
                        ev.mark,
                        format!("nested more than {MAX_DEPTH} levels deep; lxcprov refuses such YAML"),
                    ));
                }
                if let Some(a) = &ev.anchor {
                    anchors.insert(a.clone(), None);
                }
                open.push((ev.anchor, expanded));
                1
            }
            events::Kind::Finish => {
                if let Some((Some(a), start)) = open.pop() {
                    anchors.insert(a, Some(expanded - start + 1));
                }
                1
            }
            events::Kind::Alias => {
                let name = ev.anchor.unwrap_or_default();
                match anchors.get(&name) {
                    Some(Some(n)) => *n,
                    Some(None) => {
                        return Err(err(
                            ev.mark,
                            format!(
                                "alias *{} refers to a node that contains it; recursive YAML is refused",
                                String::from_utf8_lossy(&name)
                            ),
                        ))
                    }
                    // Unknown anchor: yaml_serde reports it.
                    None => 1,
                }
            }
        };
        expanded = expanded.saturating_add(cost);
        if expanded > budget {
            return Err(err(
                ev.mark,
                format!(
                    "aliases expand this {}-byte document beyond {budget} nodes; lxcprov refuses such YAML (\"billion laughs\")",
                    text.len()
                ),
            ));
        }
    }
}

/// A minimal, safe wrapper around libyaml's event parser (`libyaml-rs`, the one
/// `yaml_serde` uses), for [`check_limits`].
mod events {
    use libyaml_rs as sys;
    use std::mem::MaybeUninit;

    pub enum Kind {
        /// A sequence or mapping starts.
        Start,
        /// A sequence or mapping ends.
        Finish,
        Scalar,
        Alias,
        /// The stream ended.
        End,
        /// Stream or document start, document end.
        Other,
    }

    pub struct Event {
        pub kind: Kind,
        /// The anchor defined (scalar, start) or referred to (alias).
        pub anchor: Option<Vec<u8>>,
        /// 1-based line and column.
        pub mark: (usize, usize),
    }

    pub struct Parser<'a> {
        // Boxed: libyaml keeps pointers into the parser (and to the input), so it must not
        // move once initialised.
        sys: Box<MaybeUninit<sys::yaml_parser_t>>,
        ok: bool,
        failed: bool,
        _input: std::marker::PhantomData<&'a [u8]>,
    }

    impl<'a> Parser<'a> {
        pub fn new(input: &'a [u8]) -> Parser<'a> {
            let mut sys = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
            // SAFETY: the parser is initialised in place before use and deleted in Drop (only
            // if initialisation succeeded); `input` outlives it through the PhantomData.
            let ok = unsafe {
                let p = sys.as_mut_ptr();
                if sys::yaml_parser_initialize(p).fail {
                    false
                } else {
                    sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
                    sys::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as _);
                    true
                }
            };
            Parser { sys, ok, failed: false, _input: std::marker::PhantomData }
        }

        /// The next event; `None` on a parse error (or if the parser could not start), after
        /// which the parser is not used again.
        pub fn next(&mut self) -> Option<Event> {
            if !self.ok || self.failed {
                return None;
            }
            let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
            // SAFETY: the parser is initialised (self.ok); the event is filled by
            // yaml_parser_parse on success and deleted once read.
            unsafe {
                let p = self.sys.as_mut_ptr();
                let e = event.as_mut_ptr();
                if sys::yaml_parser_parse(p, e).fail {
                    self.failed = true;
                    return None;
                }
                let ev = &*e;
                let anchor_of =
                    |a: *const u8| (!a.is_null()).then(|| std::ffi::CStr::from_ptr(a.cast()).to_bytes().to_vec());
                let (kind, anchor) = match ev.type_ {
                    sys::YAML_STREAM_END_EVENT => (Kind::End, None),
                    sys::YAML_SCALAR_EVENT => (Kind::Scalar, anchor_of(ev.data.scalar.anchor)),
                    sys::YAML_ALIAS_EVENT => (Kind::Alias, anchor_of(ev.data.alias.anchor)),
                    sys::YAML_SEQUENCE_START_EVENT => (Kind::Start, anchor_of(ev.data.sequence_start.anchor)),
                    sys::YAML_MAPPING_START_EVENT => (Kind::Start, anchor_of(ev.data.mapping_start.anchor)),
                    sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => (Kind::Finish, None),
                    _ => (Kind::Other, None),
                };
                let mark = (ev.start_mark.line as usize + 1, ev.start_mark.column as usize + 1);
                sys::yaml_event_delete(e);
                Some(Event { kind, anchor, mark })
            }
        }
    }

    impl Drop for Parser<'_> {
        fn drop(&mut self) {
            if self.ok {
                // SAFETY: initialised in `new`, deleted exactly once.
                unsafe { sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
            }
        }
    }
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
    fn messages_quoting_the_document_are_terminal_safe() {
        // Found by tests/fuzz.rs: serde quotes unknown keys raw.
        for key in ["\u{202e}x", "\u{1b}[31mx", "a\u{9b}b", "\u{2028}"] {
            let escaped: String = key.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
            let text = format!("\"{escaped}\": 1\n");
            let e = parse::<T>(&text, "x.yaml").unwrap_err();
            let shown = e.to_string();
            assert!(!shown.chars().any(crate::text::needs_terminal_escape), "{shown:?}");
            assert!(shown.contains("unknown field") && shown.contains("\\u{"), "{shown}");
        }
    }

    #[test]
    fn reports_wrong_types() {
        let e = parse::<T>("a: lots\n", "y.yaml").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("invalid type"), "{e}");
    }
    fn timed<R>(f: impl FnOnce() -> R) -> R {
        let t = std::time::Instant::now();
        let r = f();
        assert!(t.elapsed() < std::time::Duration::from_secs(1), "took {:?}", t.elapsed());
        r
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        for (open, close) in [("[", "]"), ("{a: ", "}"), ("- ", "")] {
            let n = 160_000 / open.len();
            let text = format!("{}{}", open.repeat(n), close.repeat(n));
            let e = timed(|| parse::<yaml_serde::Value>(&text, "deep.yaml").unwrap_err());
            assert!(e.message.contains("nested more than 64"), "{e}");
            assert_eq!(e.line, Some(1));
            assert!(e.to_string().starts_with("deep.yaml:1:"), "{e}");
        }
        // Block mappings, one level per line.
        let text: String = (0..2000).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        let e = timed(|| parse::<yaml_serde::Value>(&text, "deep.yaml").unwrap_err());
        assert!(e.message.contains("nested"), "{e}");
        assert_eq!(e.line, Some(65));
        // Unterminated, too.
        let e = timed(|| parse::<yaml_serde::Value>(&"[".repeat(160_000), "d.yaml").unwrap_err());
        assert!(e.message.contains("nested"), "{e}");
        // 64 levels are fine.
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        parse::<yaml_serde::Value>(&ok, "ok.yaml").unwrap();
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text += &format!("a{i}: &a{i} [{refs}]\n");
        }
        let e = timed(|| parse::<yaml_serde::Value>(&text, "lol.yaml").unwrap_err());
        assert!(e.message.contains("billion laughs"), "{e}");
        assert!(e.line.is_some());
        // The same with mappings, and into a typed struct.
        let mut text = String::from("a: 1\nx0: &x0 {k: v}\n");
        for i in 1..40 {
            text += &format!("x{i}: &x{i} {{a: *x{p}, b: *x{p}}}\n", p = i - 1);
        }
        let e = timed(|| parse::<T>(&text, "lol.yaml").unwrap_err());
        assert!(e.message.contains("billion laughs"), "{e}");
        // A few aliases are fine.
        let v: yaml_serde::Value = parse("base: &b [x, y]\nmore: *b\nagain: *b\n", "ok.yaml").unwrap();
        assert_eq!(v["again"][1], yaml_serde::Value::String("y".into()));
    }

    #[test]
    fn recursive_aliases_are_refused() {
        let e = parse::<yaml_serde::Value>("a: &a [x, *a]\n", "r.yaml").unwrap_err();
        assert!(e.message.contains("recursive"), "{e}");
        assert_eq!((e.line, e.column), (Some(1), Some(11)));
        let e = parse::<yaml_serde::Value>("a: &a {b: &c [*c]}\n", "r.yaml").unwrap_err();
        assert!(e.message.contains("*c"), "{e}");
        // A redefined anchor counts from where it is redefined, as in yaml_serde: inside
        // the new node it is recursive, after it the alias means the new node.
        assert!(parse::<yaml_serde::Value>("a: &a x\nb: &a [*a]\n", "r.yaml").is_err());
        assert!(parse::<yaml_serde::Value>("a: &a x\nb: &a [y, *a]\n", "r.yaml").is_err());
        let v: yaml_serde::Value = parse("a: &a x\nb: &a [y]\nc: *a\n", "ok.yaml").unwrap();
        assert_eq!(v["c"][0], yaml_serde::Value::String("y".into()));
    }

    #[test]
    fn parse_errors_and_unknown_aliases_still_come_from_the_parser() {
        let e = parse::<yaml_serde::Value>("a: [1, 2\n", "e.yaml").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        let e = parse::<yaml_serde::Value>("a: *nope\n", "e.yaml").unwrap_err();
        assert!(e.to_string().contains("unknown anchor"), "{e}");
        assert_eq!(parse::<T>("a: 7\n", "ok.yaml").unwrap().a, 7);
    }
}
