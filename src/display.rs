//! What the user sees: every line the chat prints, built as a `String` here and printed
//! by the front end. No sockets, no printing, so every format is unit-tested.
//!
//! Two concerns live here besides layout:
//!
//! * **Sanitising.** Names and messages come from the network, and a terminal obeys
//!   escape sequences in what it prints: a peer could clear your screen, retitle your
//!   window, or make text appear to come from someone else. [`sanitize`] replaces every
//!   control character, and the invisible characters that reorder text, with a visible
//!   stand-in before anything from the network is shown.
//! * **Colour.** ANSI colour codes only when stdout is a terminal and the user has not
//!   set `NO_COLOR` (<https://no-color.org>); a pipe or a log file gets plain text.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::net::Ipv4Addr;

use chrono::{Local, TimeZone};

use crate::node::Member;
use crate::protocol::ChatMessage;

/// The lines printed at start and by `/help`, exactly as the chat's users know them.
pub const BANNER: &str = "\
👼Welcome to the chat!👼
Here are some tips for YOU:
‣ /members - Show all connected members
‣ /help - Show this message
‣ /hooray - Beautiful greeting message
‣ /history - Request history from members
‣ /exit - Leave chat";

/// Whether to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub const PLAIN: Style = Style { colour: false };

    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// `text` wrapped in the SGR code `code` (for example `"1;32"`, bold green).
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Replaces what a terminal would interpret rather than show.
///
/// * C0 controls (including ESC, BEL, backspace, CR, LF, TAB) become the matching
///   Unicode "control picture" (`␛`, `␇`, `␈`, `␍`, ...), so they are visible but inert.
/// * DEL becomes `␡`; C1 controls (U+0080–U+009F, which some terminals treat like ESC),
///   the bidirectional overrides and isolates (which can make text read backwards), and
///   the line and paragraph separators become `�`.
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

/// `hh:mm:ss` of a send time (milliseconds since the Unix epoch) in the local time zone.
pub fn clock_time(sent_at_ms: i64) -> String {
    match Local.timestamp_millis_opt(sent_at_ms).single() {
        Some(time) => time.format("%H:%M:%S").to_string(),
        // A peer with a wildly wrong clock (or a forged time) still gets its line shown.
        None => "??:??:??".to_owned(),
    }
}

/// `hh:mm:ss Alex: Hello, it's ME!`
pub fn message_line(message: &ChatMessage, style: Style) -> String {
    format!(
        "{} {}: {}",
        clock_time(message.sent_at_ms),
        style.paint("1", &sanitize(&message.sender_name)),
        sanitize(&message.text)
    )
}

/// `Alex joined chat`
pub fn joined_line(member: &Member, style: Style) -> String {
    style.paint("32", &format!("{} joined chat", sanitize(&member.name)))
}

/// `Alex left chat`
pub fn left_line(member: &Member, style: Style) -> String {
    style.paint("33", &format!("{} left chat", sanitize(&member.name)))
}

/// The `/members` answer: a heading, then `Name: IP` for you and then everyone else.
pub fn members_lines(me: &Member, others: &[Member]) -> String {
    let mut lines = String::from("All active members:");
    lines.push_str(&format!("\n{}: {} (you)", sanitize(&me.name), me.addr));
    for member in others {
        lines.push_str(&format!("\n{}: {}", sanitize(&member.name), member.addr));
    }
    lines
}

/// The `/history` answer: the messages in send order, as message lines.
pub fn history_lines(messages: &[ChatMessage], style: Style) -> String {
    if messages.is_empty() {
        return "No messages in the history yet.".to_owned();
    }
    let mut lines = format!("History ({} messages):", messages.len());
    for message in messages {
        lines.push('\n');
        lines.push_str(&message_line(message, style));
    }
    lines
}

/// The `/hooray` greeting, as everyone sees it: a rainbow in a terminal, a cheerful
/// plain line otherwise.
pub fn hooray_lines(from: &Member, sent_at_ms: i64, style: Style) -> String {
    let name = sanitize(&from.name);
    let time = clock_time(sent_at_ms);
    if !style.colour {
        return format!("{time} 🎉 HOORAY! 🎉 {name} sends a cheer to everyone!");
    }
    // Bright red, yellow, green, cyan, blue, magenta: one colour a letter.
    const RAINBOW: [&str; 6] = ["1;91", "1;93", "1;92", "1;96", "1;94", "1;95"];
    let rainbow: String = "H O O R A Y !"
        .chars()
        .enumerate()
        .map(|(i, c)| style.paint(RAINBOW[i % RAINBOW.len()], &c.to_string()))
        .collect();
    let sparkles = style.paint("1;93", "✨🎉✨🎊✨🎉✨🎊✨🎉✨");
    format!(
        "{sparkles}\n   {rainbow}\n   {time} {} sends a cheer to everyone!\n{sparkles}",
        style.paint("1;95", &name)
    )
}

/// Shown for a line that starts with `/` but is not a command.
pub fn unknown_command_line(command: &str) -> String {
    format!(
        "Unknown command {}: it was not sent. Type /help to see the commands.",
        sanitize(command)
    )
}

/// `Name (IP)`, for diagnostics that need to say exactly which member.
pub fn member_label(name: &str, addr: Ipv4Addr) -> String {
    format!("{} ({addr})", sanitize(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageId;

    fn alex() -> Member {
        Member {
            name: "Alex".into(),
            addr: Ipv4Addr::new(127, 0, 0, 2),
        }
    }

    fn message(text: &str, sent_at_ms: i64) -> ChatMessage {
        ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(127, 0, 0, 2),
                instance: 1,
                seq: 1,
            },
            sender_name: "Alex".into(),
            sent_at_ms,
            text: text.into(),
        }
    }

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
    fn a_message_line_is_time_name_text() {
        let sent_at_ms = Local
            .with_ymd_and_hms(2026, 11, 25, 9, 5, 7)
            .single()
            .expect("a valid local time")
            .timestamp_millis();
        assert_eq!(
            message_line(&message("Hello, it's ME!", sent_at_ms), Style::PLAIN),
            "09:05:07 Alex: Hello, it's ME!"
        );
    }

    #[test]
    fn a_message_line_never_carries_an_escape_from_the_network() {
        let mut hostile = message("\x1b]0;pwned\x07", 0);
        hostile.sender_name = "Eve\x1b[31m".into();
        let line = message_line(&hostile, Style::PLAIN);
        assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line}");
    }

    #[test]
    fn an_impossible_time_is_shown_as_question_marks() {
        assert_eq!(clock_time(i64::MAX), "??:??:??");
    }

    #[test]
    fn join_and_leave_lines_match_the_contract() {
        assert_eq!(joined_line(&alex(), Style::PLAIN), "Alex joined chat");
        assert_eq!(left_line(&alex(), Style::PLAIN), "Alex left chat");
    }

    #[test]
    fn members_lists_you_first_and_marked() {
        let bo = Member {
            name: "Bo".into(),
            addr: Ipv4Addr::new(127, 0, 0, 3),
        };
        assert_eq!(
            members_lines(&alex(), &[bo]),
            "All active members:\nAlex: 127.0.0.2 (you)\nBo: 127.0.0.3"
        );
    }

    #[test]
    fn colour_only_when_asked_for() {
        let coloured = Style { colour: true };
        assert!(joined_line(&alex(), coloured).contains("\x1b["));
        assert!(!hooray_lines(&alex(), 0, Style::PLAIN).contains('\x1b'));
        assert!(hooray_lines(&alex(), 0, coloured).contains("\x1b[1;91m"));
        assert!(hooray_lines(&alex(), 0, Style::PLAIN).contains("Alex"));
    }

    #[test]
    fn history_is_printed_as_message_lines() {
        let lines = history_lines(&[message("one", 0), message("two", 1000)], Style::PLAIN);
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].ends_with(" Alex: one"));
        assert!(lines[2].ends_with(" Alex: two"));
    }

    #[test]
    fn the_banner_is_exactly_the_seven_known_lines() {
        assert_eq!(BANNER.lines().count(), 7);
        assert_eq!(BANNER.lines().next(), Some("👼Welcome to the chat!👼"));
    }
}
