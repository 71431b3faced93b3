//! The command line: `p2pchat [OPTIONS] <HOST> <NAME>`, read into a [`Config`].
//! Pure (arguments in, a decision out), so every rule is a unit test; `main.rs` only
//! prints the outcome and picks the exit status.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::commands::member_address;
use crate::config::Config;
use crate::platform::Os;
use crate::text::check_name;
use crate::tuning::{DEFAULT_PORT, DEFAULT_ROOM};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Chat {
        config: Config,
        /// `--log FILE`: where to append a plain record of the chat.
        log_file: Option<PathBuf>,
    },
    Help,
    Version,
}

/// A command line that does not make sense; the text says what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

pub const USAGE: &str = "Usage: p2pchat [OPTIONS] <HOST> <NAME>";

/// `--help`: a small manual, with the hints for the system it runs on.
pub fn help() -> String {
    help_for(&Os::HERE)
}

/// `--help` as a user of `os` reads it.
pub fn help_for(os: &Os) -> String {
    let indent = |text: &str| -> String {
        text.lines()
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let firewall = os
        .firewall_commands(DEFAULT_PORT)
        .iter()
        .map(|command| format!("    {command}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "p2pchat {version} - a peer-to-peer text chat for a local network, no server needed.

{USAGE}

Arguments:
  <HOST>  An IPv4 address of this machine; it identifies you in the chat.
          To find yours: {find_address}.
          To try the chat on one machine, see below.
  <NAME>  Your name in the chat: 1 to {max} characters, spaces allowed
          (quote it: \"Alex Smith\"). Names need not be unique.

Options:
  -p, --port <PORT>       UDP and TCP port of the chat; every member must use the
                          same one [default: {DEFAULT_PORT}]
  -b, --broadcast <ADDR>  Where to send announcements [default: 255.255.255.255];
                          use your network's broadcast address (e.g. 192.168.1.255)
                          to choose one of several network cards
  -r, --room <ROOM>       Chat only with members of this room [default: {DEFAULT_ROOM}];
                          several rooms can share one LAN and one port
      --peer <ADDR>       Connect to the member at ADDR (an IPv4 address, or
                          ADDR:PORT) without waiting for its broadcast, and keep
                          trying until connected; repeat it for several. For
                          networks that filter broadcast, and across routers: one
                          member's address is enough, the others are learnt from it
  -l, --log <FILE>        Append the chat to FILE, one dated plain line per event
  -h, --help              Show this help
  -V, --version           Show the version

In the chat, type a line and press Enter to send it to everyone. Commands:
  /members             Show all connected members
  /help                Show the list of commands
  /hooray              Send a beautiful greeting to everyone
  /history             Ask the members for what was said, and show it
  /msg <member> <text> Send text to one member only (a name, or an IP address)
  /connect <addr>      Connect to the member at addr (like --peer)
  /name <new name>     Change your name
  /exit                Leave the chat (so do Ctrl-C and {end_of_input})

On one machine ({os}):
{demo}

Firewall: every member needs the chat port open, for UDP (announcements) and
TCP (the chat). On {os}: {firewall_note}
{firewall}

Exit status: 0 after leaving, 1 when the chat cannot start, 2 for a usage error.
Colour is used only on a terminal, and never when NO_COLOR is set.",
        version = env!("CARGO_PKG_VERSION"),
        max = crate::text::MAX_NAME_CHARS,
        find_address = os.find_address,
        end_of_input = os.end_of_input,
        os = os.name,
        demo = indent(os.one_machine_demo),
        firewall_note = os.firewall_note,
    )
}

/// Reads the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut positional: Vec<String> = Vec::new();
    let mut port = DEFAULT_PORT;
    let mut broadcast = Ipv4Addr::BROADCAST;
    let mut room = DEFAULT_ROOM.to_owned();
    let mut log_file = None;
    let mut peers: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    let mut options_ended = false;
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| UsageError(format!("{arg:?} is not valid UTF-8")))?;
        if options_ended || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        // Accept both `--port 7000` and `--port=7000`.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            match inline_value.clone() {
                Some(value) => Ok(value),
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| UsageError(format!("{name} needs a value"))),
            }
        };
        match flag.as_str() {
            "--" => options_ended = true,
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "-p" | "--port" => port = parse_port(&value("--port")?)?,
            "-b" | "--broadcast" => {
                let text = value("--broadcast")?;
                broadcast = text.parse().map_err(|_| {
                    UsageError(format!("--broadcast: {text:?} is not an IPv4 address"))
                })?;
            }
            "-r" | "--room" => {
                room = value("--room")?;
                check_name(&room).map_err(|why| UsageError(format!("--room: {why}")))?;
            }
            "-l" | "--log" => log_file = Some(PathBuf::from(value("--log")?)),
            "--peer" => peers.push(value("--peer")?),
            _ => return Err(UsageError(format!("unknown option {arg:?}"))),
        }
    }
    let (host, name) = match positional.as_slice() {
        [host, name] => (host, name),
        [] | [_] => return Err(UsageError("HOST and NAME are required".into())),
        [_, _, extra @ ..] => {
            return Err(UsageError(format!(
                "too many arguments ({}); a name with spaces needs quotes: \"Alex Smith\"",
                extra.join(" ")
            )));
        }
    };
    let host: Ipv4Addr = host.parse().map_err(|_| {
        UsageError(format!(
            "HOST {host:?} is not an IPv4 address (like 192.168.1.20 or 127.0.0.2)"
        ))
    })?;
    check_name(name).map_err(|why| UsageError(format!("NAME: {why}")))?;
    // Parsed last, so that `--peer ADDR` uses the chat port whatever the order.
    let peers = peers
        .iter()
        .map(|text| member_address(text, port).map_err(|why| UsageError(format!("--peer: {why}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Invocation::Chat {
        config: Config {
            host,
            name: name.clone(),
            port,
            broadcast,
            room,
            peers,
            trace_frames: false,
        },
        log_file,
    })
}

fn parse_port(text: &str) -> Result<u16, UsageError> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(UsageError(format!(
            "--port: {text:?} is not a port number (1 to 65535)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn chat(args: &[&str]) -> Config {
        match parse_strs(args) {
            Ok(Invocation::Chat { config, .. }) => config,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn host_and_name_are_enough() {
        let config = chat(&["127.0.0.2", "Alex"]);
        assert_eq!(config, Config::new(Ipv4Addr::new(127, 0, 0, 2), "Alex"));
    }

    #[test]
    fn options_go_anywhere_in_either_form() {
        let config = chat(&[
            "--port",
            "7000",
            "127.0.0.2",
            "Zoë Ünal",
            "-b=127.255.255.255",
        ]);
        assert_eq!(config.port, 7000);
        assert_eq!(config.broadcast, Ipv4Addr::new(127, 255, 255, 255));
        assert_eq!(config.name, "Zoë Ünal");
        assert_eq!(chat(&["127.0.0.2", "A", "--port=7001"]).port, 7001);
    }

    #[test]
    fn room_and_log_file_are_optional() {
        assert_eq!(chat(&["127.0.0.2", "A"]).room, DEFAULT_ROOM);
        assert_eq!(
            chat(&["127.0.0.2", "A", "--room", "group 7"]).room,
            "group 7"
        );
        match parse_strs(&["127.0.0.2", "A", "--log", "chat.log"]) {
            Ok(Invocation::Chat { log_file, .. }) => {
                assert_eq!(log_file, Some(PathBuf::from("chat.log")));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_strs(&["127.0.0.2", "A", "--room", ""]).is_err());
    }

    #[test]
    fn a_name_may_start_with_a_dash_after_double_dash() {
        assert_eq!(chat(&["127.0.0.2", "--", "-x-"]).name, "-x-");
    }

    #[test]
    fn help_and_version_win_over_everything() {
        assert_eq!(parse_strs(&["-h"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["127.0.0.1", "--help"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["-V"]), Ok(Invocation::Version));
    }

    #[test]
    fn mistakes_are_usage_errors_that_say_what_is_wrong() {
        let error = |args: &[&str]| match parse_strs(args) {
            Err(UsageError(text)) => text,
            other => panic!("{args:?} gave {other:?}"),
        };
        assert!(error(&[]).contains("required"));
        assert!(error(&["127.0.0.1"]).contains("required"));
        assert!(error(&["127.0.0.1", "Alex", "Smith"]).contains("quotes"));
        assert!(error(&["localhost", "Alex"]).contains("not an IPv4 address"));
        assert!(error(&["127.0.0.1", "Alex", "--port", "0"]).contains("port"));
        assert!(error(&["127.0.0.1", "Alex", "--port", "70000"]).contains("port"));
        assert!(error(&["127.0.0.1", "Alex", "--port"]).contains("needs a value"));
        assert!(error(&["127.0.0.1", "Alex", "--colour"]).contains("unknown option"));
        assert!(error(&["127.0.0.1", ""]).contains("empty"));
        assert!(error(&["127.0.0.1", &"x".repeat(33)]).contains("33 characters"));
        assert!(error(&["127.0.0.1", "a\x1bb"]).contains("control"));
    }

    #[test]
    fn help_speaks_to_the_users_system() {
        let windows = help_for(&Os::WINDOWS);
        assert!(
            windows.contains("Ctrl-C and Ctrl-Z then Enter"),
            "{windows}"
        );
        assert!(windows.contains("`ipconfig`"));
        assert!(windows.contains("netsh advfirewall firewall add rule"));
        assert!(windows.contains(&format!("localport={DEFAULT_PORT}")));
        let mac = help_for(&Os::MACOS);
        assert!(
            mac.contains("sudo ifconfig lo0 alias 127.0.0.2 up"),
            "{mac}"
        );
        assert!(mac.contains("Ctrl-C and Ctrl-D"));
        let linux = help_for(&Os::LINUX);
        assert!(linux.contains("`ip -4 addr`"), "{linux}");
        assert!(!linux.contains("{port}"));
        for help in [windows, mac, linux] {
            for line in help.lines().filter(|line| !line.starts_with("    ")) {
                assert!(
                    line.chars().count() <= 90,
                    "too long for a terminal: {line}"
                );
            }
        }
    }

    #[test]
    fn a_32_character_name_of_any_script_is_fine() {
        assert_eq!(
            chat(&["127.0.0.1", &"ж".repeat(32)]).name.chars().count(),
            32
        );
    }
}
