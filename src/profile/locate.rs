//! Where a key is written in a YAML document, for messages found after parsing.
//!
//! The YAML parser knows where every node is, but tells only in its errors. So the document
//! is parsed once more into [`Probe`], which walks down the key path and fails on purpose at
//! the key sought: the error's line and column are the key's. This goes through
//! [`crate::yaml::parse`] like every other parse, so block and flow style, quoting, comments
//! and anchors are all handled by the parser itself. Only error paths pay for it.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// The message of the deliberate error at the key sought.
const HERE: &str = "lxcprov-locate: here";
/// The message of the deliberate error when a key of the path is not in the document.
const ABSENT: &str = "lxcprov-locate: absent";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `security.idmap.uid.count`, `repos[0].gpgkeys[1]` as segments; `None` if malformed.
fn segments(path: &str) -> Option<Vec<Seg>> {
    let mut out = vec![];
    if path.is_empty() {
        return Some(out);
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return None;
        }
        out.push(Seg::Key(name.to_string()));
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let n: usize = rest.get(1..close)?.parse().ok()?;
            out.push(Seg::Index(n));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

thread_local! {
    /// The path [`Probe`] looks for (a `Deserialize` impl takes no arguments).
    static TARGET: RefCell<Vec<Seg>> = const { RefCell::new(Vec::new()) };
}

/// Deserializes nothing: it fails at the node [`TARGET`] names, or says it is absent.
struct Probe;

impl<'de> de::Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Probe, D::Error> {
        let path = TARGET.with(|t| t.borrow().clone());
        Seek(&path).deserialize(d).map(|()| Probe)
    }
}

/// Walks down `.0`; errors with [`HERE`] at the node, or [`ABSENT`].
struct Seek<'a>(&'a [Seg]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any node")
    }

    // A scalar: the node itself when the path ends here, else the path goes on beneath a
    // scalar and the rest of it is absent.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(self.end())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (want, rest) = match self.0.split_first() {
            Some((Seg::Key(k), rest)) => (k.as_str(), rest),
            Some(_) => return Err(de::Error::custom(ABSENT)),
            None => return Err(de::Error::custom(HERE)),
        };
        while let Some(found) = map.next_key_seed(KeySeed { want, last: rest.is_empty() })? {
            if found {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(ABSENT))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (n, rest) = match self.0.split_first() {
            Some((Seg::Index(n), rest)) => (*n, rest),
            Some(_) => return Err(de::Error::custom(ABSENT)),
            None => return Err(de::Error::custom(HERE)),
        };
        for _ in 0..n {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(ABSENT));
            }
        }
        // Seek always fails inside an item that is there; `None` means the list is shorter.
        seq.next_element_seed(Seek(rest))?;
        Err(de::Error::custom(ABSENT))
    }
}

impl Seek<'_> {
    fn end<E: de::Error>(&self) -> E {
        E::custom(if self.0.is_empty() { HERE } else { ABSENT })
    }
}

/// A mapping key: is it the one wanted? Fails with [`HERE`] on it when it is the last
/// segment, so the location is the key's own.
struct KeySeed<'a> {
    want: &'a str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match (v == self.want, self.last) {
            (true, true) => Err(E::custom(HERE)),
            (found, _) => Ok(found),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// The 1-based line and column where `path` (`security.idmap.uid.count`, `packages[2]`)
/// is written in the YAML `text`: the key itself for a mapping entry, the item for a list
/// item. When the key is not written (a default, or a value given on the command line),
/// the nearest enclosing key that is; `None` when not even the first key is there.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut segs = segments(path)?;
    loop {
        if segs.is_empty() {
            return None;
        }
        TARGET.with(|t| *t.borrow_mut() = segs.clone());
        let r = crate::yaml::parse::<Probe>(text, "");
        TARGET.with(|t| t.borrow_mut().clear());
        match r {
            Err(e) if e.message.contains(HERE) => return e.line.zip(e.column),
            Err(e) if e.message.contains(ABSENT) => {}
            _ => return None,
        }
        // Try the parent: the list item or mapping key above.
        segs.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# a comment
description: \"x\"
packages: [a, b, 'c']
base_packages:
  - one
  - two
repos:
  - id: r
    url: https://x
    gpgkeys:
      - https://k1
      - https://k2
security:
  label: static
  idmap:
    uid: { start: 0, target: 40000, count: 65536 }
    gid:
      start: 0
      target: 1
      count: 2
  capabilities:
    set: {sys_admin: off, \"net_raw\": on}
";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(DOC, "description"), Some((2, 1)));
        assert_eq!(locate(DOC, "security"), Some((13, 1)));
        assert_eq!(locate(DOC, "security.label"), Some((14, 3)));
        assert_eq!(locate(DOC, "security.idmap.uid.target"), Some((16, 22)));
        assert_eq!(locate(DOC, "security.idmap.uid.count"), Some((16, 37)));
        assert_eq!(locate(DOC, "security.idmap.gid.count"), Some((20, 7)));
        assert_eq!(locate(DOC, "security.capabilities.set.sys_admin"), Some((22, 11)));
        assert_eq!(locate(DOC, "security.capabilities.set.net_raw"), Some((22, 27)));
    }

    #[test]
    fn finds_list_items() {
        assert_eq!(locate(DOC, "packages[0]"), Some((3, 12)));
        assert_eq!(locate(DOC, "packages[2]"), Some((3, 18)));
        assert_eq!(locate(DOC, "base_packages[1]"), Some((6, 5)));
        assert_eq!(locate(DOC, "repos[0].url"), Some((9, 5)));
        assert_eq!(locate(DOC, "repos[0].gpgkeys[1]"), Some((12, 9)));
    }

    #[test]
    fn absent_keys_fall_back_to_the_nearest_written_one() {
        assert_eq!(locate(DOC, "security.static_label"), Some((13, 1)));
        assert_eq!(locate(DOC, "security.idmap.uid.nope"), Some((16, 5)));
        assert_eq!(locate(DOC, "packages[9]"), Some((3, 1)));
        assert_eq!(locate(DOC, "repos[3].url"), Some((7, 1)));
        assert_eq!(locate(DOC, "description.deeper"), Some((2, 1)));
        assert_eq!(locate(DOC, "release"), None);
        assert_eq!(locate("", "memory_mib"), None);
        assert_eq!(locate("a: 1\n", "memory_mib"), None);
        // The parser streams: a key before a syntax error is still found; nothing after it.
        assert_eq!(locate("not: [valid", "not"), Some((1, 1)));
        assert_eq!(locate("a: [valid\nb: 1\n", "b"), None);
    }

    #[test]
    fn malformed_paths_locate_nothing() {
        for bad in ["", ".x", "a..b", "a[", "a[x]", "a[1]b", "[1]"] {
            assert_eq!(locate(DOC, bad), None, "{bad:?}");
        }
        assert_eq!(
            segments("a.b[2][3].c"),
            Some(vec![Seg::Key("a".into()), Seg::Key("b".into()), Seg::Index(2), Seg::Index(3), Seg::Key("c".into())])
        );
    }

    #[test]
    fn anchors_and_quoted_keys() {
        let doc = "x: &a {count: 1}\n'memory_mib': 5\n";
        assert_eq!(locate(doc, "memory_mib"), Some((2, 1)));
        assert_eq!(locate(doc, "x.count"), Some((1, 8)));
    }
}
