//! What a typed line means: a chat message, or one of the `/` commands. Pure: a
//! `&str` in, a [`Command`] out, so every rule is a unit test.
//!
//! The rule users rely on: a line whose first character is `/` is a command and is
//! never sent to anyone, not even when it is misspelt. Anything else is a message.

/// One line of the user's input, understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Send this text to everyone.
    Say(&'a str),
    Members,
    Help,
    Hooray,
    History,
    Exit,
    /// A `/word` that is not a command (the word, slash included).
    Unknown(&'a str),
    /// Nothing to do: the line was empty.
    Nothing,
}

/// Reads one line of input (without its line ending).
///
/// Commands take no arguments; anything after the command word is ignored, so
/// `/exit now` leaves like `/exit`. Surrounding white space is ignored for commands,
/// but a message is sent exactly as typed.
pub fn parse(line: &str) -> Command<'_> {
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    let Some(after_slash) = line.trim_start().strip_prefix('/') else {
        return Command::Say(line);
    };
    let word = after_slash.split_whitespace().next().unwrap_or("");
    match word {
        "members" => Command::Members,
        "help" => Command::Help,
        "hooray" => Command::Hooray,
        "history" => Command::History,
        "exit" => Command::Exit,
        _ => Command::Unknown(line.split_whitespace().next().unwrap_or("/")),
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
    fn an_empty_line_does_nothing() {
        assert_eq!(parse(""), Command::Nothing);
        assert_eq!(parse("   "), Command::Nothing);
    }
}
