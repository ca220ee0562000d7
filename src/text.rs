//! Text from profiles, guests and the host, made safe for where it goes: a terminal
//! ([`for_terminal`]) or an XML document ([`is_xml_char`], [`unsafe_char`]).
//!
//! Nothing here touches the host.

use std::borrow::Cow;

/// Is `c` a character XML 1.0 allows in a document (`Char` production)? Tab, newline and
/// carriage return are the only C0 controls; U+FFFE and U+FFFF are excluded (surrogates
/// cannot occur in a Rust `char`).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Is `c` a Unicode non-character: U+FDD0..U+FDEF, or the last two code points of any plane
/// (U+FFFE, U+FFFF, U+1FFFE, ..., U+10FFFF)?
pub fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// Is `c` a bidirectional-text control that reorders what follows it on screen (the
/// embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069, and the marks
/// U+200E, U+200F and U+061C)?
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Does `c` need escaping before it reaches a terminal? Every C0 control (newline and tab
/// included: one listing line must stay one line), DEL, every C1 control (U+009B is a
/// one-byte CSI on some terminals), bidi controls, the line and paragraph separators
/// U+2028/U+2029, and non-characters.
pub fn needs_terminal_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}') || is_noncharacter(c)
}

/// `s` as it may be printed on a terminal: characters of [`needs_terminal_escape`] are
/// shown as `\n`, `\r`, `\t` or `\u{HEX}`; everything else is unchanged. Borrowed when
/// nothing needed escaping. Use it for every profile, guest or host string a human listing
/// prints.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_terminal_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_terminal_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Why `c` may not appear in a profile string that reaches domain XML, metadata or a
/// listing, if it may not: not an XML character, a non-character, a control character
/// other than tab, newline and carriage return (DEL and C1 included), or a bidi control.
pub fn unsafe_char(c: char) -> Option<&'static str> {
    if !is_xml_char(c) {
        Some("is not allowed in XML")
    } else if is_noncharacter(c) {
        Some("is a Unicode non-character")
    } else if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
        Some("is a control character")
    } else if is_bidi_control(c) {
        Some("is a bidirectional-text control")
    } else {
        None
    }
}

/// The first character of `s` that [`unsafe_char`] refuses, with its character offset and
/// the reason.
pub fn first_unsafe(s: &str) -> Option<(usize, char, &'static str)> {
    s.chars().enumerate().find_map(|(i, c)| unsafe_char(c).map(|why| (i, c, why)))
}

/// [`for_terminal`] line by line: a multi-line message keeps its line breaks, and nothing
/// else reaches the terminal raw.
pub fn for_terminal_lines(s: &str) -> String {
    s.split('\n').map(|l| for_terminal(l).into_owned()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(for_terminal("web server, 256 MiB"), Cow::Borrowed(_)));
        assert!(matches!(for_terminal("wéb ✓ 日本"), Cow::Borrowed(_)));
        assert!(matches!(for_terminal(""), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_sequences_are_shown() {
        assert_eq!(for_terminal("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(for_terminal("\x1b]0;title\x07"), "\\u{1b}]0;title\\u{7}");
        assert_eq!(for_terminal("x\u{7f}"), "x\\u{7f}");
        assert_eq!(for_terminal("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(for_terminal("\u{85}nel"), "\\u{85}nel");
        assert_eq!(for_terminal("\0"), "\\u{0}");
    }

    #[test]
    fn forged_lines_stay_one_line() {
        let s = for_terminal("ok\nPASS  selinux.label\r\tx");
        assert_eq!(s, "ok\\nPASS  selinux.label\\r\\tx");
        assert!(!s.contains('\n') && !s.contains('\r'));
        assert_eq!(for_terminal("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
    }

    #[test]
    fn bidi_overrides_are_shown() {
        for c in
            ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}']
        {
            let s = format!("safe{c}evil");
            let out = for_terminal(&s);
            assert!(!out.contains(c), "{c:?}");
            assert!(out.contains(&format!("\\u{{{:x}}}", c as u32)), "{out}");
        }
        assert_eq!(for_terminal("\u{200f}"), "\\u{200f}");
    }

    #[test]
    fn noncharacters_are_shown() {
        assert_eq!(for_terminal("\u{fffe}\u{ffff}\u{fdd0}"), "\\u{fffe}\\u{ffff}\\u{fdd0}");
        assert_eq!(for_terminal("\u{10ffff}"), "\\u{10ffff}");
    }

    #[test]
    fn xml_characters() {
        for ok in ['\t', '\n', '\r', ' ', 'a', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}', '\u{10FFFF}'] {
            assert!(is_xml_char(ok), "{ok:?}");
        }
        for bad in ['\0', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!is_xml_char(bad), "{bad:?}");
        }
    }

    #[test]
    fn noncharacters_in_every_plane() {
        for plane in 0..=16u32 {
            for low in [0xFFFE, 0xFFFF] {
                let c = char::from_u32(plane << 16 | low).unwrap();
                assert!(is_noncharacter(c), "{c:?}");
                assert!(unsafe_char(c).is_some(), "{c:?}");
            }
        }
        assert!(is_noncharacter('\u{FDD0}') && is_noncharacter('\u{FDEF}'));
        assert!(!is_noncharacter('\u{FDCF}') && !is_noncharacter('\u{FDF0}') && !is_noncharacter('\u{FFFD}'));
        assert!(!is_noncharacter('\u{1FFFD}'));
    }

    #[test]
    fn unsafe_characters() {
        assert_eq!(unsafe_char('a'), None);
        assert_eq!(unsafe_char('\t'), None);
        assert_eq!(unsafe_char('\n'), None);
        assert_eq!(unsafe_char('é'), None);
        assert!(unsafe_char('\u{1b}').is_some());
        assert!(unsafe_char('\u{7f}').is_some());
        assert!(unsafe_char('\u{9b}').is_some());
        assert!(unsafe_char('\u{202e}').is_some());
        assert!(unsafe_char('\u{fdd5}').is_some());
        assert_eq!(first_unsafe("ab\u{ffff}c").map(|(i, c, _)| (i, c)), Some((2, '\u{ffff}')));
        assert_eq!(first_unsafe("fine"), None);
    }
}
