//! Text that comes from people and from the network: the rules a name follows, and how
//! text is made safe to show. Pure: no sockets, no printing.
//!
//! A terminal does not only show what it is given, it *obeys* some of it: an escape
//! sequence can clear the screen, retitle the window or recolour what follows, and the
//! invisible bidirectional controls can make text read backwards. Everything a peer
//! sends is shown to a person, so [`sanitize`] turns each such character into a
//! visible, inert stand-in before anything reaches the screen.
//!
//! Names (of members and of rooms) follow one rule wherever they come from (the
//! command line, `/name`, or a peer's hello or rename): [`check_name`]. A *character*
//! here is a Unicode scalar value (a Rust `char`), so "Zoë" is 3 characters whether the
//! ë is one code point or an e plus a combining diaeresis (then it is 4).

use std::borrow::Cow;
use std::fmt;

/// The most characters in a name (of a member or of a room).
pub const MAX_NAME_CHARS: usize = 32;

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        chars: usize,
    },
    /// It contains a character that [`sanitize`] would replace.
    ControlCharacter,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the name is empty"),
            Self::TooLong { chars } => write!(
                f,
                "the name has {chars} characters, the most is {MAX_NAME_CHARS}"
            ),
            Self::ControlCharacter => f.write_str("the name contains control characters"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a name against the rule every member's and room's name follows: 1 to
/// [`MAX_NAME_CHARS`] characters, none of them a control character or an invisible
/// character that reorders text.
///
/// ```
/// use p2pchat::text::{check_name, NameError};
/// assert_eq!(check_name("Cleo Ünal"), Ok(()));
/// assert_eq!(check_name(""), Err(NameError::Empty));
/// assert_eq!(check_name("Eve\x1b[31m"), Err(NameError::ControlCharacter));
/// ```
pub fn check_name(name: &str) -> Result<(), NameError> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err(NameError::Empty);
    }
    if chars > MAX_NAME_CHARS {
        return Err(NameError::TooLong { chars });
    }
    if name.chars().any(needs_replacing) {
        return Err(NameError::ControlCharacter);
    }
    Ok(())
}

/// Replaces what a terminal would interpret rather than show.
///
/// * C0 controls (including ESC, BEL, backspace, CR, LF, TAB) become the matching
///   Unicode "control picture" (`␛`, `␇`, `␈`, `␍`, ...), so they are visible but inert.
/// * DEL becomes `␡`; C1 controls (U+0080–U+009F, which some terminals treat like ESC),
///   the bidirectional overrides and isolates (which can make text read backwards), and
///   the line and paragraph separators become `�`.
///
/// ```
/// assert_eq!(p2pchat::text::sanitize("\x1b[2Jhi\x07"), "␛[2Jhi␇");
/// ```
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_replacing) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(visible_stand_in).collect())
}

fn needs_replacing(c: char) -> bool {
    c.is_control() || is_bidi_or_separator(c)
}

fn is_bidi_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn visible_stand_in(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'),
        '\u{7f}' => '\u{2421}',
        c if needs_replacing(c) => '\u{FFFD}',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_through_untouched() {
        let text = "Hello, it's ME! Zoë 😀 👨‍👩‍👧";
        assert!(matches!(sanitize(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn escape_sequences_and_controls_become_visible_and_inert() {
        assert_eq!(sanitize("\x1b[2Jgone"), "␛[2Jgone");
        assert_eq!(
            sanitize("bell\x07 back\x08 cr\r lf\n tab\t"),
            "bell␇ back␈ cr␍ lf␊ tab␉"
        );
        assert_eq!(sanitize("del\x7f"), "del␡");
        assert_eq!(sanitize("c1\u{9b}31m"), "c1\u{FFFD}31m");
    }

    #[test]
    fn bidi_overrides_cannot_reverse_text() {
        assert_eq!(sanitize("abc\u{202E}fed"), "abc\u{FFFD}fed");
        assert_eq!(sanitize("\u{2066}x\u{2069}"), "\u{FFFD}x\u{FFFD}");
        assert_eq!(sanitize("line\u{2028}break"), "line\u{FFFD}break");
    }

    #[test]
    fn nothing_sanitized_contains_a_control_character() {
        let every_low_char: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!sanitize(&every_low_char).chars().any(needs_replacing));
    }

    #[test]
    fn a_name_is_one_to_thirty_two_characters_not_bytes() {
        assert_eq!(check_name("x"), Ok(()));
        assert_eq!(check_name(&"😀".repeat(MAX_NAME_CHARS)), Ok(()));
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong {
                chars: MAX_NAME_CHARS + 1
            })
        );
        assert_eq!(check_name(""), Err(NameError::Empty));
    }

    #[test]
    fn a_name_cannot_hide_controls_or_reorder_text() {
        for hostile in ["a\nb", "tab\there", "\u{202E}evil", "x\u{2028}", "\u{9b}"] {
            assert_eq!(
                check_name(hostile),
                Err(NameError::ControlCharacter),
                "{hostile:?}"
            );
        }
    }
}
