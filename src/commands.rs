//! What a typed line means: a chat message, or one of the `/` commands. Pure: a
//! `&str` in, a [`Command`] out, so every rule is a unit test.
//!
//! The rule users rely on: a line whose first character is `/` is a command and is
//! never sent to anyone, not even when it is misspelt. Anything else is a message.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::event::Member;

/// One line of the user's input, understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Send this text to everyone.
    Say(&'a str),
    Members,
    Help,
    Hooray,
    History,
    /// `/msg <member> <text>`: everything after the command word; see [`recipient`].
    Msg(&'a str),
    /// `/name <new name>`: the new name, trimmed.
    Name(&'a str),
    /// `/connect <addr>`: the address, trimmed; see [`member_address`].
    Connect(&'a str),
    Exit,
    /// A `/word` that is not a command (the word, slash included).
    Unknown(&'a str),
    /// Nothing to do: the line was empty.
    Nothing,
}

/// Reads one line of input (without its line ending).
///
/// ```
/// use p2pchat::commands::{parse, Command};
/// assert_eq!(parse("/members"), Command::Members);
/// assert_eq!(parse("/msg Bo hi"), Command::Msg("Bo hi"));
/// assert_eq!(parse("hello /members"), Command::Say("hello /members"));
/// assert_eq!(parse("/membres"), Command::Unknown("/membres"));
/// ```
///
/// `/msg` and `/name` take the rest of the line; the other commands take no
/// arguments and ignore any, so `/exit now` leaves like `/exit`. Surrounding white
/// space is ignored for commands, but a message is sent exactly as typed.
pub fn parse(line: &str) -> Command<'_> {
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    let Some(after_slash) = line.trim_start().strip_prefix('/') else {
        return Command::Say(line);
    };
    let word = after_slash.split_whitespace().next().unwrap_or("");
    let rest = after_slash[word.len()..].trim();
    match word {
        "msg" => Command::Msg(rest),
        "name" => Command::Name(rest),
        "connect" => Command::Connect(rest),
        "members" => Command::Members,
        "help" => Command::Help,
        "hooray" => Command::Hooray,
        "history" => Command::History,
        "exit" => Command::Exit,
        _ => Command::Unknown(line.split_whitespace().next().unwrap_or("/")),
    }
}

/// Reads a member's address as the user gives it (`--peer`, `/connect`): an IPv4
/// address, with the chat port `default_port`, or `ADDR:PORT`.
///
/// ```
/// use p2pchat::commands::member_address;
/// assert_eq!(member_address("10.0.1.7", 24242), Ok("10.0.1.7:24242".parse().unwrap()));
/// assert_eq!(member_address("10.0.1.7:5000", 24242), Ok("10.0.1.7:5000".parse().unwrap()));
/// assert!(member_address("bo.local", 24242).is_err());
/// ```
pub fn member_address(text: &str, default_port: u16) -> Result<SocketAddrV4, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return Ok(SocketAddrV4::new(addr, default_port));
    }
    match text.parse::<SocketAddrV4>() {
        Ok(target) if target.port() != 0 => Ok(target),
        _ => Err(format!(
            "{text:?} is not an IPv4 address, or ADDR:PORT (like 192.168.1.20 or \
             10.0.1.7:24242)"
        )),
    }
}

/// Why `/msg` could not tell whom the message is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipientError {
    /// `/msg` without a member, or without text.
    Usage,
    /// No member has that name or address.
    Unknown(String),
    /// Several members have that name: they are listed, to pick one by address.
    Ambiguous(Vec<Member>),
}

/// Splits the argument of `/msg` into the addressee and the text.
///
/// The addressee is an IP address, or a member's name, which may contain spaces: the
/// longest run of leading words that is some member's name wins, so with members
/// "Alex" and "Alex Smith", `Alex Smith hi` goes to Alex Smith. A name two members
/// share is ambiguous; their addresses tell them apart.
pub fn recipient<'a>(
    argument: &'a str,
    members: &[Member],
) -> Result<(Member, &'a str), RecipientError> {
    let argument = argument.trim();
    // Every place where the words could end and the text begin, longest first.
    let mut splits: Vec<usize> = argument
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(i, _)| i)
        .collect();
    splits.reverse();
    for split in splits {
        let (who, text) = (argument[..split].trim(), argument[split..].trim());
        if text.is_empty() {
            continue;
        }
        if let Ok(addr) = who.parse::<Ipv4Addr>() {
            return match members.iter().find(|m| m.addr == addr) {
                Some(member) => Ok((member.clone(), text)),
                None => Err(RecipientError::Unknown(who.to_owned())),
            };
        }
        let named: Vec<&Member> = members.iter().filter(|m| m.name == who).collect();
        match named.as_slice() {
            [] => continue,
            [member] => return Ok(((*member).clone(), text)),
            several => {
                return Err(RecipientError::Ambiguous(
                    several.iter().map(|m| (*m).clone()).collect(),
                ));
            }
        }
    }
    match argument.split_whitespace().next() {
        Some(first) if argument.split_whitespace().nth(1).is_some() => {
            Err(RecipientError::Unknown(first.to_owned()))
        }
        _ => Err(RecipientError::Usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_is_recognised() {
        assert_eq!(parse("/members"), Command::Members);
        assert_eq!(parse("/help"), Command::Help);
        assert_eq!(parse("/hooray"), Command::Hooray);
        assert_eq!(parse("/history"), Command::History);
        assert_eq!(parse("/exit"), Command::Exit);
    }

    #[test]
    fn white_space_around_a_command_is_ignored() {
        assert_eq!(parse("  /exit  "), Command::Exit);
        assert_eq!(parse("/exit now"), Command::Exit);
    }

    #[test]
    fn anything_else_is_said_exactly_as_typed() {
        assert_eq!(parse("Hello, it's ME!"), Command::Say("Hello, it's ME!"));
        assert_eq!(parse("  indented"), Command::Say("  indented"));
        assert_eq!(parse("a/b"), Command::Say("a/b"));
    }

    #[test]
    fn an_unknown_slash_word_is_not_a_message() {
        assert_eq!(parse("/memebrs"), Command::Unknown("/memebrs"));
        assert_eq!(parse("/Exit"), Command::Unknown("/Exit"));
        assert_eq!(parse("/"), Command::Unknown("/"));
        assert_eq!(parse("/ hello"), Command::Unknown("/"));
    }

    #[test]
    fn msg_and_name_take_the_rest_of_the_line() {
        assert_eq!(parse("/msg Bo hi there"), Command::Msg("Bo hi there"));
        assert_eq!(parse("/name  Alex Smith "), Command::Name("Alex Smith"));
        assert_eq!(parse("/msg"), Command::Msg(""));
    }

    fn member(name: &str, last_octet: u8) -> Member {
        Member {
            name: name.into(),
            addr: Ipv4Addr::new(127, 0, 0, last_octet),
        }
    }

    #[test]
    fn a_recipient_is_a_unique_name_or_an_address() {
        let members = [member("Bo", 2), member("Cleo", 3)];
        assert_eq!(
            recipient("Bo hi there", &members),
            Ok((member("Bo", 2), "hi there"))
        );
        assert_eq!(
            recipient("127.0.0.3 hey", &members),
            Ok((member("Cleo", 3), "hey"))
        );
    }

    #[test]
    fn the_longest_matching_name_wins() {
        let members = [member("Alex", 2), member("Alex Smith", 3)];
        assert_eq!(
            recipient("Alex Smith hi", &members),
            Ok((member("Alex Smith", 3), "hi"))
        );
        assert_eq!(
            recipient("Alex hi", &members),
            Ok((member("Alex", 2), "hi"))
        );
    }

    #[test]
    fn a_shared_name_is_ambiguous_and_lists_the_candidates() {
        let members = [member("Alex", 2), member("Alex", 3)];
        assert_eq!(
            recipient("Alex hi", &members),
            Err(RecipientError::Ambiguous(members.to_vec()))
        );
        assert_eq!(
            recipient("127.0.0.3 hi", &members),
            Ok((member("Alex", 3), "hi"))
        );
    }

    #[test]
    fn unknown_members_and_missing_text_are_reported() {
        let members = [member("Bo", 2)];
        assert_eq!(
            recipient("Zed hello", &members),
            Err(RecipientError::Unknown("Zed".into()))
        );
        assert_eq!(
            recipient("127.0.0.9 hello", &members),
            Err(RecipientError::Unknown("127.0.0.9".into()))
        );
        assert_eq!(recipient("Bo", &members), Err(RecipientError::Usage));
        assert_eq!(recipient("", &members), Err(RecipientError::Usage));
    }

    #[test]
    fn an_empty_line_does_nothing() {
        assert_eq!(parse(""), Command::Nothing);
        assert_eq!(parse("   "), Command::Nothing);
    }
}
