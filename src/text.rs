//! Text shown to people: control characters from untrusted strings never reach a terminal raw.

use std::borrow::Cow;

/// `s` with control characters (C0, DEL, C1) and bidirectional overrides shown escaped
/// (`\u{1b}`), so a profile description cannot move the cursor or forge lines.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if bad(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect())
}
