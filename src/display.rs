//! What the user sees: every line the chat prints, built as a `String` here and printed
//! by the front end. No sockets, no printing, so every format is unit-tested.
//!
//! Three concerns live here besides layout:
//!
//! * **Sanitising.** Names and messages come from the network, and a terminal obeys
//!   escape sequences in what it prints: a peer could clear your screen, retitle your
//!   window, or make text appear to come from someone else. [`sanitize`] replaces every
//!   control character, and the invisible characters that reorder text, with a visible
//!   stand-in before anything from the network is shown.
//! * **Telling members apart.** Names need not be unique. Wherever two members share a
//!   name, the [`Roster`] labels each with its address: `Alex (127.0.0.2)`.
//! * **Colour.** ANSI colour codes only when stdout is a terminal that understands them
//!   (the Windows console must be asked first: [`crate::platform::enable_colour`]) and
//!   the user has not set `NO_COLOR` (<https://no-color.org>); a pipe or a log file gets
//!   plain text.
//!   Each member's name has a colour derived from its address, so it is the same on
//!   every screen and in every session; your own name is bold, and lines about the
//!   chat itself (joined, left, renamed) are dimmed.

use std::io::IsTerminal;
use std::net::Ipv4Addr;

use chrono::{Local, TimeZone};

use crate::commands::RecipientError;
use crate::event::{Event, LatePrivate, Member};
use crate::history::LogEntry;
use crate::platform::enable_colour;
use crate::protocol::ChatMessage;
use crate::text::sanitize;

/// The lines printed at start and by `/help`: the seven every user of the chat knows,
/// then one per command p2pchat adds.
pub const BANNER: &str = "\
👼Welcome to the chat!👼
Here are some tips for YOU:
‣ /members - Show all connected members
‣ /help - Show this message
‣ /hooray - Beautiful greeting message
‣ /history - Request history from members
‣ /exit - Leave chat
‣ /msg <member> <text> - Private message to one member (by name or IP)
‣ /name <new name> - Change your name
‣ /connect <address> - Connect to a member by IP (where broadcast does not reach)";

/// Whether to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub const PLAIN: Style = Style { colour: false };

    /// Colour when stdout is a terminal that takes ANSI codes and `NO_COLOR` is unset
    /// or empty.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_color && enable_colour(),
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

    /// A line about the chat itself rather than from a member: dimmed.
    fn system(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Red, green, yellow, blue, magenta, cyan: the colours a member's name can have.
const MEMBER_COLOURS: [&str; 6] = ["31", "32", "33", "34", "35", "36"];

/// Who is in the chat right now, as the display needs it: to label members whose names
/// are shared, and to tell our own lines from others'.
#[derive(Clone, Debug)]
pub struct Roster {
    me: Member,
    others: Vec<Member>,
}

impl Roster {
    pub fn new(me: Member, others: Vec<Member>) -> Roster {
        Roster { me, others }
    }

    fn everyone(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.me).chain(&self.others)
    }

    /// The member's name, sanitised, with its address when someone else has that name.
    pub fn label(&self, name: &str, addr: Ipv4Addr) -> String {
        let shared = self.everyone().any(|m| m.name == name && m.addr != addr);
        if shared {
            format!("{} ({addr})", sanitize(name))
        } else {
            sanitize(name).into_owned()
        }
    }

    /// How to name the member at `addr`: its label if it is here, else its address.
    pub fn label_of(&self, addr: Ipv4Addr) -> String {
        match self.everyone().find(|m| m.addr == addr) {
            Some(member) => self.label(&member.name, addr),
            None => addr.to_string(),
        }
    }

    /// The label, coloured: bold for us, the member's own colour for others.
    fn painted(&self, name: &str, addr: Ipv4Addr, style: Style) -> String {
        let label = self.label(name, addr);
        if addr == self.me.addr {
            return style.paint("1", &label);
        }
        // A multiplicative hash spreads neighbouring addresses over the palette.
        let hash = u32::from(addr).wrapping_mul(2_654_435_761) >> 16;
        let colour = MEMBER_COLOURS[hash as usize % MEMBER_COLOURS.len()];
        style.paint(&format!("1;{colour}"), &label)
    }
}

/// `hh:mm:ss` of a send time (milliseconds since the Unix epoch) in the local time zone.
pub fn clock_time(sent_at_ms: i64) -> String {
    local_time(sent_at_ms, "%H:%M:%S", "??:??:??")
}

/// `YYYY-MM-DD hh:mm:ss` in the local time zone, for the log file.
pub fn date_time(sent_at_ms: i64) -> String {
    local_time(sent_at_ms, "%Y-%m-%d %H:%M:%S", "????-??-?? ??:??:??")
}

fn local_time(sent_at_ms: i64, format: &str, unknown: &str) -> String {
    match Local.timestamp_millis_opt(sent_at_ms).single() {
        Some(time) => time.format(format).to_string(),
        // A peer with a wildly wrong clock (or a forged time) still gets its line shown.
        None => unknown.to_owned(),
    }
}

/// What a [`Event`] looks like on screen (`None` for events that are not shown).
pub fn event_lines(event: &Event, roster: &Roster, style: Style) -> Option<String> {
    Some(match event {
        Event::Joined(member) => joined_line(member, roster, style),
        Event::Left(member) => left_line(member, roster, style),
        Event::Message(message) => message_line(message, roster, style, clock_time),
        Event::Hooray { from, sent_at_ms } => hooray_lines(from, *sent_at_ms, roster, style),
        Event::Private {
            from,
            to,
            sent_at_ms,
            text,
        } => private_line(from, to, *sent_at_ms, text, roster, style, clock_time),
        Event::Renamed { addr, old, new } => renamed_line(*addr, old, new, roster, style),
        Event::Missed { messages, other } => missed_line(*messages, *other, style),
        Event::CaughtUp {
            from,
            messages,
            privates,
            unavailable,
        } => caught_up_lines(
            from,
            messages,
            privates,
            unavailable,
            roster,
            style,
            clock_time,
        ),
        // Diagnostics are not chat: the front end shows them apart (on stderr), with
        // `warning_line`.
        Event::Warning(_) | Event::Wire { .. } => return None,
    })
}

/// The same event as one plain line for the log file, dated: the send time for what a
/// member sent, `now_ms` for what happened here.
pub fn log_line(event: &Event, roster: &Roster, now_ms: i64) -> Option<String> {
    let plain = Style::PLAIN;
    Some(match event {
        Event::Message(message) => message_line(message, roster, plain, date_time),
        Event::Private {
            from,
            to,
            sent_at_ms,
            text,
        } => private_line(from, to, *sent_at_ms, text, roster, plain, date_time),
        Event::Hooray { from, sent_at_ms } => format!(
            "{} {} sends a cheer to everyone: HOORAY!",
            date_time(*sent_at_ms),
            roster.label(&from.name, from.addr)
        ),
        Event::CaughtUp {
            from,
            messages,
            privates,
            unavailable,
        } => caught_up_lines(
            from,
            messages,
            privates,
            unavailable,
            roster,
            plain,
            date_time,
        ),
        Event::Warning(_) | Event::Wire { .. } => return None,
        other => format!(
            "{} {}",
            date_time(now_ms),
            event_lines(other, roster, plain)?
        ),
    })
}

/// `hh:mm:ss Alex: Hello, it's ME!`
pub fn message_line(
    message: &ChatMessage,
    roster: &Roster,
    style: Style,
    time: fn(i64) -> String,
) -> String {
    format!(
        "{} {}: {}",
        time(message.sent_at_ms),
        roster.painted(&message.sender_name, message.id.origin, style),
        sanitize(&message.text)
    )
}

/// `hh:mm:ss [private] Alex: psst` (received) or `hh:mm:ss [private to Bo] Alex: psst`
/// (sent): marked on both sides, so nobody mistakes it for a message to everyone.
fn private_line(
    from: &Member,
    to: &Member,
    sent_at_ms: i64,
    text: &str,
    roster: &Roster,
    style: Style,
    time: fn(i64) -> String,
) -> String {
    let mark = if from.addr == roster.me.addr {
        format!("[private to {}]", roster.label(&to.name, to.addr))
    } else {
        "[private]".to_owned()
    };
    format!(
        "{} {} {}: {}",
        time(sent_at_ms),
        style.paint("1;7", &mark),
        roster.painted(&from.name, from.addr, style),
        sanitize(text)
    )
}

/// `Alex joined chat`
pub fn joined_line(member: &Member, roster: &Roster, style: Style) -> String {
    style.system(&format!(
        "{} joined chat",
        roster.label(&member.name, member.addr)
    ))
}

/// `Alex left chat`
pub fn left_line(member: &Member, roster: &Roster, style: Style) -> String {
    style.system(&format!(
        "{} left chat",
        roster.label(&member.name, member.addr)
    ))
}

/// `Alex is now Alexander`
pub fn renamed_line(addr: Ipv4Addr, old: &str, new: &str, roster: &Roster, style: Style) -> String {
    style.system(&format!(
        "{} is now {}",
        roster.label(old, addr),
        roster.label(new, addr)
    ))
}

/// What members sent us while we were apart, once they are back: one heading, the lines
/// of all of them merged in send order, and what some could no longer send.
///
/// ```text
/// Caught up with Bo and Cleo: 3 messages sent while you were apart
/// 09:30:04 [late] Bo: are you there?
/// 09:30:05 [late] [private] Bo: call me
/// 09:30:06 [late] Cleo: he is gone
/// 12 earlier messages from Bo are no longer available.
/// ```
pub fn caught_up_lines(
    from: &[Member],
    messages: &[ChatMessage],
    privates: &[LatePrivate],
    unavailable: &[(Member, u64)],
    roster: &Roster,
    style: Style,
    time: fn(i64) -> String,
) -> String {
    let names: Vec<String> = from
        .iter()
        .map(|member| roster.label(&member.name, member.addr))
        .collect();
    let count = messages.len() + privates.len();
    let mut lines: Vec<(i64, String)> = Vec::new();
    let late = style.paint("2", "[late]");
    for message in messages {
        lines.push((
            message.sent_at_ms,
            marked(&message_line(message, roster, style, time), &late),
        ));
    }
    for private in privates {
        let line = private_line(
            &private.from,
            &roster.me,
            private.sent_at_ms,
            &private.text,
            roster,
            style,
            time,
        );
        lines.push((private.sent_at_ms, marked(&line, &late)));
    }
    // In send order, private and chat together (a stable sort: chat messages come
    // already ordered by time, sender and number).
    lines.sort_by_key(|(sent_at_ms, _)| *sent_at_ms);
    let mut text = Vec::with_capacity(lines.len() + 1 + unavailable.len());
    if count > 0 {
        let plural = if count == 1 { "" } else { "s" };
        text.push(style.system(&format!(
            "Caught up with {}: {count} message{plural} sent while you were apart",
            in_words(&names)
        )));
        text.extend(lines.into_iter().map(|(_, line)| line));
    }
    for (member, missing) in unavailable {
        let (plural, verb) = if *missing == 1 {
            ("", "is")
        } else {
            ("s", "are")
        };
        text.push(style.system(&format!(
            "{missing} earlier message{plural} from {} {verb} no longer available.",
            roster.label(&member.name, member.addr)
        )));
    }
    text.join("\n")
}

/// `Bo`, `Bo and Cleo`, `Bo, Cleo and Dan`.
fn in_words(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `line` (a time, a space, the rest) with `mark` after the time, as `[private]` is:
/// `09:30:04 [late] Bo: text`.
fn marked(line: &str, mark: &str) -> String {
    let time_ends = line.find(' ').unwrap_or(0);
    format!("{} {mark}{}", &line[..time_ends], &line[time_ends..])
}

/// `1450 messages and 2 other lines were not shown here: ...`, where the front end
/// fell behind and events were dropped rather than making the network wait.
pub fn missed_line(messages: u64, other: u64, style: Style) -> String {
    let counted = |count: u64, what: &str| match count {
        0 => None,
        1 => Some(format!("1 {what}")),
        n => Some(format!("{n} {what}s")),
    };
    let parts: Vec<String> = [counted(messages, "message"), counted(other, "other line")]
        .into_iter()
        .flatten()
        .collect();
    let verb = if messages + other == 1 { "was" } else { "were" };
    style.system(&format!(
        "{} {verb} not shown here: this screen fell behind. /history shows what was said.",
        parts.join(" and ")
    ))
}

/// The answer to `/connect`: members there show as they join.
pub fn connecting_line(target: std::net::SocketAddrV4) -> String {
    format!("Connecting to {target}; the members there will show as they join.")
}

/// A diagnostic, as the terminal prints it on stderr: `p2pchat: connection with ...`.
pub fn warning_line(text: &str) -> String {
    format!("p2pchat: {}", sanitize(text))
}

/// The `/members` answer: a heading, then `Name: IP` for you and then everyone else.
pub fn members_lines(roster: &Roster) -> String {
    let me = &roster.me;
    let mut lines = String::from("All active members:");
    lines.push_str(&format!("\n{}: {} (you)", sanitize(&me.name), me.addr));
    for member in &roster.others {
        lines.push_str(&format!("\n{}: {}", sanitize(&member.name), member.addr));
    }
    lines
}

/// The `/history` answer: the messages in send order, as message lines.
///
/// An entry we have only on another member's word (see [`LogEntry::relayed_by`]) is
/// marked with whose: `09:30:04 [via Cleo] Bo: text`.
pub fn history_lines(entries: &[LogEntry], roster: &Roster, style: Style) -> String {
    if entries.is_empty() {
        return "No messages in the history yet.".to_owned();
    }
    let mut lines = format!("History ({} messages):", entries.len());
    for entry in entries {
        lines.push('\n');
        let line = message_line(&entry.message, roster, style, clock_time);
        match entry.relayed_by {
            Some(by) => {
                let mark = style.paint("2", &format!("[via {}]", roster.label_of(by)));
                lines.push_str(&marked(&line, &mark));
            }
            None => lines.push_str(&line),
        }
    }
    lines
}

/// The `/hooray` greeting, as everyone sees it: a rainbow in a terminal, a cheerful
/// plain line otherwise.
pub fn hooray_lines(from: &Member, sent_at_ms: i64, roster: &Roster, style: Style) -> String {
    let name = roster.label(&from.name, from.addr);
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

/// Why a `/msg` was not sent, and what to type instead.
pub fn recipient_problem_line(problem: &RecipientError, roster: &Roster) -> String {
    match problem {
        RecipientError::Usage => {
            "Usage: /msg <member> <text>, where member is a name or an IP address.".to_owned()
        }
        RecipientError::Unknown(who) => {
            let names: Vec<String> = roster
                .others
                .iter()
                .map(|m| format!("{} ({})", sanitize(&m.name), m.addr))
                .collect();
            let known = if names.is_empty() {
                "nobody else is connected".to_owned()
            } else {
                format!("members: {}", names.join(", "))
            };
            format!("No member called {}; {known}. Not sent.", sanitize(who))
        }
        RecipientError::Ambiguous(candidates) => {
            let listed: Vec<String> = candidates
                .iter()
                .map(|m| format!("{} ({})", sanitize(&m.name), m.addr))
                .collect();
            format!(
                "Several members are called that: {}. Use the address: /msg {} <text>. Not sent.",
                listed.join(", "),
                candidates.first().map_or(Ipv4Addr::UNSPECIFIED, |m| m.addr)
            )
        }
    }
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

    fn member(name: &str, last_octet: u8) -> Member {
        Member {
            name: name.into(),
            addr: Ipv4Addr::new(127, 0, 0, last_octet),
        }
    }

    /// Seen by "Me" at 127.0.0.1, with Alex connected.
    fn roster() -> Roster {
        Roster::new(member("Me", 1), vec![alex()])
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
    fn a_message_line_is_time_name_text() {
        let sent_at_ms = Local
            .with_ymd_and_hms(2026, 11, 25, 9, 5, 7)
            .single()
            .expect("a valid local time")
            .timestamp_millis();
        assert_eq!(
            message_line(
                &message("Hello, it's ME!", sent_at_ms),
                &roster(),
                Style::PLAIN,
                clock_time
            ),
            "09:05:07 Alex: Hello, it's ME!"
        );
    }

    #[test]
    fn a_message_line_never_carries_an_escape_from_the_network() {
        let mut hostile = message("\x1b]0;pwned\x07", 0);
        hostile.sender_name = "Eve\x1b[31m".into();
        let line = message_line(&hostile, &roster(), Style::PLAIN, clock_time);
        assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line}");
    }

    #[test]
    fn an_impossible_time_is_shown_as_question_marks() {
        assert_eq!(clock_time(i64::MAX), "??:??:??");
    }

    #[test]
    fn join_and_leave_lines_match_the_contract() {
        assert_eq!(
            joined_line(&alex(), &roster(), Style::PLAIN),
            "Alex joined chat"
        );
        assert_eq!(
            left_line(&alex(), &roster(), Style::PLAIN),
            "Alex left chat"
        );
    }

    #[test]
    fn members_lists_you_first_and_marked() {
        assert_eq!(
            members_lines(&Roster::new(alex(), vec![member("Bo", 3)])),
            "All active members:\nAlex: 127.0.0.2 (you)\nBo: 127.0.0.3"
        );
    }

    #[test]
    fn colour_only_when_asked_for() {
        let coloured = Style { colour: true };
        let roster = roster();
        assert!(joined_line(&alex(), &roster, coloured).contains("\x1b["));
        assert!(!hooray_lines(&alex(), 0, &roster, Style::PLAIN).contains('\x1b'));
        assert!(hooray_lines(&alex(), 0, &roster, coloured).contains("\x1b[1;91m"));
        assert!(hooray_lines(&alex(), 0, &roster, Style::PLAIN).contains("Alex"));
    }

    #[test]
    fn history_is_printed_as_message_lines_with_relayed_claims_marked() {
        let entry = |text: &str, sent_at_ms: i64, relayed_by: Option<Ipv4Addr>| LogEntry {
            message: message(text, sent_at_ms),
            relayed_by,
        };
        let entries = [
            entry("one", 0, None),
            entry("two", 1000, Some(Ipv4Addr::new(127, 0, 0, 1))),
            entry("three", 2000, Some(Ipv4Addr::new(127, 0, 0, 9))),
        ];
        let lines = history_lines(&entries, &roster(), Style::PLAIN);
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[0], "History (3 messages):");
        assert!(lines[1].ends_with(":00 Alex: one"), "{}", lines[1]);
        assert!(lines[2].ends_with(":01 [via Me] Alex: two"), "{}", lines[2]);
        assert!(
            lines[3].ends_with(":02 [via 127.0.0.9] Alex: three"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn the_banner_starts_with_the_seven_known_lines_then_one_per_added_command() {
        let known = [
            "👼Welcome to the chat!👼",
            "Here are some tips for YOU:",
            "‣ /members - Show all connected members",
            "‣ /help - Show this message",
            "‣ /hooray - Beautiful greeting message",
            "‣ /history - Request history from members",
            "‣ /exit - Leave chat",
        ];
        let lines: Vec<&str> = BANNER.lines().collect();
        assert_eq!(lines[..7], known);
        assert!(lines[7].starts_with("‣ /msg "));
        assert!(lines[8].starts_with("‣ /name "));
        assert!(lines[9].starts_with("‣ /connect "));
        assert_eq!(lines.len(), 10);
    }

    #[test]
    fn members_who_share_a_name_are_told_apart_by_address() {
        let roster = Roster::new(member("Alex", 1), vec![member("Alex", 2), member("Bo", 3)]);
        assert_eq!(
            roster.label("Alex", Ipv4Addr::new(127, 0, 0, 2)),
            "Alex (127.0.0.2)"
        );
        assert_eq!(roster.label("Bo", Ipv4Addr::new(127, 0, 0, 3)), "Bo");
        let line = joined_line(&member("Alex", 2), &roster, Style::PLAIN);
        assert_eq!(line, "Alex (127.0.0.2) joined chat");
    }

    #[test]
    fn a_member_keeps_one_colour_and_you_are_bold() {
        let coloured = Style { colour: true };
        let roster = roster();
        let first = roster.painted("Alex", alex().addr, coloured);
        assert_eq!(first, roster.painted("Alex", alex().addr, coloured));
        assert!(first.starts_with("\x1b[1;3"), "{first:?}");
        assert_eq!(
            roster.painted("Me", Ipv4Addr::new(127, 0, 0, 1), coloured),
            "\x1b[1mMe\x1b[0m"
        );
        let colours: std::collections::HashSet<String> = (1..=24)
            .map(|i| roster.painted("x", Ipv4Addr::new(10, 0, 0, i), coloured))
            .collect();
        assert!(
            colours.len() >= 4,
            "neighbouring addresses should get varied colours"
        );
    }

    #[test]
    fn private_lines_are_marked_on_both_sides() {
        let roster = roster();
        let from_alex = private_line(
            &alex(),
            &member("Me", 1),
            0,
            "psst",
            &roster,
            Style::PLAIN,
            clock_time,
        );
        assert!(from_alex.ends_with(" [private] Alex: psst"), "{from_alex}");
        let to_alex = private_line(
            &member("Me", 1),
            &alex(),
            0,
            "psst",
            &roster,
            Style::PLAIN,
            clock_time,
        );
        assert!(
            to_alex.ends_with(" [private to Alex] Me: psst"),
            "{to_alex}"
        );
    }

    #[test]
    fn missed_lines_say_exactly_how_many() {
        assert_eq!(
            missed_line(1450, 2, Style::PLAIN),
            "1450 messages and 2 other lines were not shown here: this screen fell behind. \
             /history shows what was said."
        );
        assert!(missed_line(1, 0, Style::PLAIN).starts_with("1 message was not shown"));
        assert!(missed_line(0, 1, Style::PLAIN).starts_with("1 other line was not shown"));
    }

    #[test]
    fn what_arrived_late_is_marked_in_send_order_under_a_heading() {
        let roster = roster();
        let mut first = message("first", 1000);
        first.sender_name = "Alex".into();
        let bo = member("Bo", 3);
        let lines = caught_up_lines(
            &[alex(), bo.clone()],
            &[first, message("third", 3000)],
            &[LatePrivate {
                from: alex(),
                sent_at_ms: 2000,
                text: "second".into(),
            }],
            &[(alex(), 12), (bo, 1)],
            &roster,
            Style::PLAIN,
            clock_time,
        );
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(
            lines[0],
            "Caught up with Alex and Bo: 3 messages sent while you were apart"
        );
        assert!(lines[1].ends_with(":01 [late] Alex: first"), "{}", lines[1]);
        assert!(
            lines[2].ends_with(":02 [late] [private] Alex: second"),
            "{}",
            lines[2]
        );
        assert!(lines[3].ends_with(":03 [late] Alex: third"), "{}", lines[3]);
        assert_eq!(
            lines[4],
            "12 earlier messages from Alex are no longer available."
        );
        assert_eq!(
            lines[5],
            "1 earlier message from Bo is no longer available."
        );
    }

    #[test]
    fn names_are_listed_in_words() {
        let names = |n: &[&str]| in_words(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["Bo"]), "Bo");
        assert_eq!(names(&["Bo", "Cleo"]), "Bo and Cleo");
        assert_eq!(names(&["Bo", "Cleo", "Dan"]), "Bo, Cleo and Dan");
    }

    #[test]
    fn a_rename_says_who_is_now_who() {
        let line = renamed_line(alex().addr, "Alex", "Alexander", &roster(), Style::PLAIN);
        assert_eq!(line, "Alex is now Alexander");
    }

    #[test]
    fn log_lines_are_plain_and_carry_the_full_date() {
        let sent_at_ms = Local
            .with_ymd_and_hms(2026, 11, 25, 9, 5, 7)
            .single()
            .expect("a valid local time")
            .timestamp_millis();
        let line = log_line(&Event::Message(message("hi", sent_at_ms)), &roster(), 0);
        assert_eq!(line.as_deref(), Some("2026-11-25 09:05:07 Alex: hi"));
        let joined = log_line(&Event::Joined(alex()), &roster(), sent_at_ms);
        assert_eq!(
            joined.as_deref(),
            Some("2026-11-25 09:05:07 Alex joined chat")
        );
    }
}
