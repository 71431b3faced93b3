//! The real `p2pchat` binary on loopback: several members on one machine, each on its
//! own loopback address, driven through stdin and read from stdout as a user would.
//!
//! Every test takes its own port from [`free_port`] (discovery listens on `0.0.0.0:PORT`,
//! so two tests on one port would hear each other's members) and its own block of
//! loopback addresses, 127.0.B.x ([`Hosts`]).
//!
//! Tests wait for events with the generous [`EVENT_TIMEOUT`] and never assert on how
//! fast something happened. "Must not happen" checks look after the system settled,
//! usually behind a later line that travelled the same connection.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::clock::{clock_difference, local_seconds_of_day, split_message_line};
use common::hosts::Hosts;
use common::process::{ChatProcess, member, wait_until_all_joined};
use common::{EVENT_TIMEOUT, free_port};

/// The banner the issue specifies, line by line.
const BANNER: [&str; 7] = [
    "👼Welcome to the chat!👼",
    "Here are some tips for YOU:",
    "‣ /members - Show all connected members",
    "‣ /help - Show this message",
    "‣ /hooray - Beautiful greeting message",
    "‣ /history - Request history from members",
    "‣ /exit - Leave chat",
];

/// How often the polling waits below look at a member's output again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a "this must not happen" check watches after the system settled. Long
/// enough for a stray line to be printed on a loaded machine, short enough to keep the
/// file fast.
const QUIET_WINDOW: Duration = Duration::from_millis(1500);

/// How far a message's time may be from the local clock read around sending it. The
/// chat truncates to whole seconds, as `date` does; the slack covers a second boundary.
const CLOCK_TOLERANCE_SECS: i64 = 2;

/// A pause longer than the chat's one-millisecond send-time resolution, so that a
/// message sent after it carries a later send time than one seen before it.
const DISTINCT_SEND_TIME: Duration = Duration::from_millis(5);

/// How many times `process` printed exactly `line`.
fn count_exact(process: &ChatProcess, line: &str) -> usize {
    process.count_lines(|l| l == line)
}

/// Waits for the process to exit and checks it exited with `code`.
#[track_caller]
fn assert_exit_code(process: &mut ChatProcess, code: i32) -> ExitStatus {
    let status = process.wait_exit(EVENT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(code),
        "{}: expected exit status {code}, got {status}\n{}",
        process.label(),
        process.transcript()
    );
    status
}

/// Whether `line` is the chat message `text` from `name`, with any time.
fn is_message(line: &str, name: &str, text: &str) -> bool {
    split_message_line(line).is_some_and(|(_, rest)| rest == format!("{name}: {text}"))
}

#[track_caller]
fn wait_for_message(process: &ChatProcess, name: &str, text: &str) {
    process.wait_for_count(
        &format!("the message {name}: {text:?}"),
        |line| is_message(line, name, text),
        1,
    );
}

/// Two members on `port` at the first two addresses of `hosts`, joined to each other.
fn joined_pair(port: u16, hosts: &Hosts, names: [&str; 2]) -> (ChatProcess, ChatProcess) {
    let first = member(port, hosts.addr(1), names[0], &[]);
    let second = member(port, hosts.addr(2), names[1], &[]);
    wait_until_all_joined(&[(&first, names[0]), (&second, names[1])], EVENT_TIMEOUT);
    (first, second)
}

#[test]
fn banner_is_printed_exactly_at_start() {
    let port = free_port();
    let mut alone = member(port, Hosts::fresh().addr(1), "Alex", &[]);

    alone.wait_for_count("seven lines", |_| true, BANNER.len());
    let lines = alone.stdout_lines();
    assert_eq!(
        lines[..BANNER.len()],
        BANNER,
        "the first lines are not the banner\n{}",
        alone.transcript()
    );

    alone.send_line("/exit");
    assert_exit_code(&mut alone, 0);
}

#[test]
fn members_join_and_chat_with_the_senders_time() {
    let port = free_port();
    let names = ["Zoë Ünal", "Ana María", "李 小龍"];
    let hosts = Hosts::fresh().first(3);
    let members: Vec<ChatProcess> = (0..3)
        .map(|i| member(port, hosts[i], names[i], &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    let texts = [
        "Hello, it's ME!",
        "¡Hola! ¿Qué tal? 😀",
        "你好, all   three spaces",
    ];
    let before = local_seconds_of_day(None);
    for (sender, text) in members.iter().zip(texts) {
        sender.send_line(text);
    }
    for receiver in &members {
        for (name, text) in names.iter().zip(texts) {
            wait_for_message(receiver, name, text);
        }
    }
    let after = local_seconds_of_day(None);

    for receiver in &members {
        for (name, text) in names.iter().zip(texts) {
            let lines = receiver.stdout_lines();
            let line = lines
                .iter()
                .find(|line| is_message(line, name, text))
                .expect("waited for it above");
            let (sent_at, _) = split_message_line(line).expect("a message line");
            assert!(
                clock_difference(sent_at, before) >= -CLOCK_TOLERANCE_SECS
                    && clock_difference(after, sent_at) >= -CLOCK_TOLERANCE_SECS,
                "{}: {line:?} is not between the local times {before} and {after} \
                 (seconds of the day)\n{}",
                receiver.label(),
                receiver.transcript()
            );
            assert_eq!(
                count_exact(receiver, line),
                1,
                "{}: {line:?} printed more than once\n{}",
                receiver.label(),
                receiver.transcript()
            );
        }
    }

    // Every message went over the connections after the joins, so the joins settled
    // long ago: each member was announced once, not once per duplicate connection.
    for (receiver, own_name) in &pairs {
        for name in names.iter().filter(|name| *name != own_name) {
            let joined = format!("{name} joined chat");
            assert_eq!(
                count_exact(receiver, &joined),
                1,
                "{}: {joined:?} not printed exactly once\n{}",
                receiver.label(),
                receiver.transcript()
            );
        }
    }
}

#[test]
fn members_command_lists_everyone_with_addresses() {
    let port = free_port();
    let names = ["Zoë Ünal", "Bo", "Chidi Okeke"];
    let hosts = Hosts::fresh().first(3);
    let members: Vec<ChatProcess> = (0..3)
        .map(|i| member(port, hosts[i], names[i], &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    let asker = &members[0];
    asker.send_line("/members");
    let heading = "All active members:";
    asker.wait_for_exact(heading);
    let start = asker
        .stdout_lines()
        .iter()
        .position(|line| line == heading)
        .expect("waited for it above")
        + 1;
    asker.wait_for_count("the member lines", |_| true, start + 3);
    thread::sleep(QUIET_WINDOW);

    let lines = asker.stdout_lines();
    let mut listed: Vec<&str> = lines[start..start + 3].iter().map(String::as_str).collect();
    listed.sort_unstable();
    let expected_lines = [
        format!("Zoë Ünal: {} (you)", hosts[0]),
        format!("Bo: {}", hosts[1]),
        format!("Chidi Okeke: {}", hosts[2]),
    ];
    let mut expected: Vec<&str> = expected_lines.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "{}", asker.transcript());
    assert!(
        !lines[start + 3..]
            .iter()
            .any(|line| line.contains(": 127.0.")),
        "more member lines than members\n{}",
        asker.transcript()
    );
}

#[test]
fn a_late_joiner_gets_the_history() {
    let block = Hosts::fresh();
    let port = free_port();
    let (ann, bob) = joined_pair(port, &block, ["Ann", "Bob Ø"]);
    let said = [
        (&ann, "Ann", "first, from Ann"),
        (&bob, "Bob Ø", "second, from Bob"),
        (&ann, "Ann", "third, from Ann"),
    ];
    // One at a time, each seen by both before the next. The chat orders messages by
    // their millisecond send times, so a short pause puts the next send in a later
    // millisecond; within one, two members' messages have no defined order (see
    // `history_shows_a_reply_after_the_message_it_answers` for the causal case).
    for (sender, name, text) in said {
        sender.send_line(text);
        wait_for_message(&ann, name, text);
        wait_for_message(&bob, name, text);
        thread::sleep(DISTINCT_SEND_TIME);
    }

    let cleo = member(port, block.addr(3), "Cleo", &[]);
    wait_until_all_joined(
        &[(&ann, "Ann"), (&bob, "Bob Ø"), (&cleo, "Cleo")],
        EVENT_TIMEOUT,
    );
    cleo.send_line("/history");

    let ann_lines = ann.stdout_lines();
    let mut positions = Vec::new();
    for (_, name, text) in said {
        // The line as the history shows it must be the line as it was first shown.
        let original = ann_lines
            .iter()
            .find(|line| is_message(line, name, text))
            .expect("Ann saw every message above");
        cleo.wait_for_exact(original);
        positions.push(
            cleo.stdout_lines()
                .iter()
                .position(|line| line == original)
                .expect("waited for it above"),
        );
    }
    thread::sleep(QUIET_WINDOW);
    for (_, name, text) in said {
        assert_eq!(
            cleo.count_lines(|line| is_message(line, name, text)),
            1,
            "{name}: {text:?} not shown exactly once\n{}",
            cleo.transcript()
        );
    }
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "history not in send order\n{}",
        cleo.transcript()
    );
}

/// Two or three members join; `leave` makes the first one go; it must exit with 0 and
/// every other member must print its "left" line exactly once.
fn leaving_is_seen_by_the_others(
    port: u16,
    hosts: &[Ipv4Addr],
    names: &[&str],
    leave: impl FnOnce(&mut ChatProcess),
) {
    let mut members: Vec<ChatProcess> = hosts
        .iter()
        .zip(names)
        .map(|(host, name)| member(port, *host, name, &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names.iter().copied()).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    let (leaver, others) = members.split_first_mut().expect("at least two members");
    leave(leaver);
    assert_exit_code(leaver, 0);

    let left = format!("{} left chat", names[0]);
    for other in others.iter() {
        other.wait_for_exact(&left);
    }
    thread::sleep(QUIET_WINDOW);
    for other in others.iter() {
        assert_eq!(
            count_exact(other, &left),
            1,
            "{}: {left:?} not printed exactly once\n{}",
            other.label(),
            other.transcript()
        );
    }
}

#[test]
fn exit_command_leaves_and_others_see_it() {
    leaving_is_seen_by_the_others(
        free_port(),
        &Hosts::fresh().first(3),
        &["Zoë Ünal", "Bo", "Cy"],
        |leaver| leaver.send_line("/exit"),
    );
}

#[test]
fn ctrl_c_leaves_and_others_see_it() {
    leaving_is_seen_by_the_others(
        free_port(),
        &Hosts::fresh().first(2),
        &["Ann Interrupt", "Bo"],
        |leaver| leaver.signal("INT"),
    );
}

#[test]
fn sigterm_leaves_and_others_see_it() {
    leaving_is_seen_by_the_others(
        free_port(),
        &Hosts::fresh().first(2),
        &["Ann Terminated", "Bo"],
        |leaver| leaver.signal("TERM"),
    );
}

#[test]
fn end_of_input_leaves_and_others_see_it() {
    leaving_is_seen_by_the_others(
        free_port(),
        &Hosts::fresh().first(2),
        &["Ann Ctrl-D", "Bo"],
        ChatProcess::close_stdin,
    );
}

#[test]
fn lines_typed_before_leaving_all_arrive() {
    const LINES: usize = 100;
    let port = free_port();
    let names = ["Piper", "Bo", "Cy"];
    let hosts = Hosts::fresh().first(3);
    let mut members: Vec<ChatProcess> = (0..3)
        .map(|i| member(port, hosts[i], names[i], &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    let texts: Vec<String> = (1..=LINES)
        .map(|i| format!("line {i} of {LINES}"))
        .collect();
    let (piper, others) = members.split_first_mut().expect("three members");
    for text in &texts {
        piper.send_line(text);
    }
    piper.close_stdin();
    assert_exit_code(piper, 0);

    for other in others.iter() {
        other.wait_for_exact("Piper left chat");
        let lines = other.stdout_lines();
        let left_at = lines
            .iter()
            .position(|line| line == "Piper left chat")
            .expect("waited for it above");
        let received: Vec<&str> = lines
            .iter()
            .filter_map(|line| split_message_line(line))
            .filter_map(|(_, rest)| rest.strip_prefix("Piper: "))
            .collect();
        assert_eq!(
            received,
            texts,
            "{}: not every line arrived once, in order\n{}",
            other.label(),
            other.transcript()
        );
        let last_message_at = lines
            .iter()
            .rposition(|line| is_message(line, "Piper", &texts[LINES - 1]))
            .expect("all arrived");
        assert!(
            last_message_at < left_at,
            "{}: the left line came before the last message\n{}",
            other.label(),
            other.transcript()
        );
    }
}

#[test]
fn a_second_member_on_the_same_host_is_refused() {
    let block = Hosts::fresh();
    let port = free_port();
    let first = member(port, block.addr(1), "First", &[]);
    // The banner is printed once the member holds its address and port.
    first.wait_for_exact(BANNER[BANNER.len() - 1]);

    let mut second = member(port, block.addr(1), "Second", &[]);
    assert_exit_code(&mut second, 1);
    let stderr = second.stderr_lines().join("\n");
    assert!(
        stderr.contains("Don't use the same host for multiple members"),
        "{}",
        second.transcript()
    );

    let other = member(port, block.addr(2), "Other", &[]);
    wait_until_all_joined(&[(&first, "First"), (&other, "Other")], EVENT_TIMEOUT);
    first.send_line("still here");
    wait_for_message(&other, "First", "still here");
    wait_for_message(&first, "First", "still here");
    assert_eq!(
        first.count_lines(|line| line.contains("Second")),
        0,
        "the refused member showed up\n{}",
        first.transcript()
    );
}

#[test]
fn an_address_not_on_this_machine_is_refused_with_advice() {
    let port = free_port();
    let mut stranger = member(port, Ipv4Addr::new(198, 18, 0, 99), "Stranger", &[]);
    assert_exit_code(&mut stranger, 1);
    let stderr = stranger.stderr_lines().join("\n");
    assert!(
        stderr.contains("ip -4 addr") || stderr.contains("not an address of this machine"),
        "{}",
        stranger.transcript()
    );
    assert!(
        !stranger.stdout_lines().iter().any(|line| line == BANNER[0]),
        "it started the chat\n{}",
        stranger.transcript()
    );
}

/// Runs the binary with `args` and no input (so a chat started by mistake ends at once).
fn run_to_exit(args: &[&str]) -> (ChatProcess, ExitStatus) {
    let mut process = ChatProcess::spawn(args).with_label(&format!("p2pchat {args:?}"));
    process.close_stdin();
    let status = process.wait_exit(EVENT_TIMEOUT);
    (process, status)
}

#[test]
fn usage_errors_exit_2_with_the_usage() {
    let port = free_port().to_string();
    let host = Hosts::fresh().addr(1).to_string();
    let host = host.as_str();
    let too_long = "x".repeat(33);
    let cases: [&[&str]; 7] = [
        &[],
        &["--port", &port, "not-an-ip", "Alex"],
        &["--port", &port, "127.0.0.1.5", "Alex"],
        &["--port", &port, host, "Alex", "Smith"],
        &["--port", "0", host, "Alex"],
        &["--port", &port, host, &too_long],
        &["--port", &port, "--frobnicate", host, "Alex"],
    ];
    for args in cases {
        let (process, status) = run_to_exit(args);
        assert_eq!(status.code(), Some(2), "{args:?}\n{}", process.transcript());
        assert!(
            process
                .stderr_lines()
                .iter()
                .any(|line| line.contains("Usage:")),
            "{args:?}: no usage on stderr\n{}",
            process.transcript()
        );
        assert!(
            process.stdout_lines().is_empty(),
            "{args:?}: printed to stdout\n{}",
            process.transcript()
        );
    }

    let (help, status) = run_to_exit(&["--help"]);
    assert_eq!(status.code(), Some(0), "{}", help.transcript());
    assert!(
        help.stdout_lines()
            .iter()
            .any(|line| line.contains("Usage:")),
        "{}",
        help.transcript()
    );

    let (version, status) = run_to_exit(&["--version"]);
    assert_eq!(status.code(), Some(0), "{}", version.transcript());
    assert!(
        version
            .stdout_lines()
            .iter()
            .any(|line| line.contains(env!("CARGO_PKG_VERSION"))),
        "{}",
        version.transcript()
    );
}

#[test]
fn unknown_command_is_not_sent() {
    let block = Hosts::fresh();
    let port = free_port();
    let (typer, reader) = joined_pair(port, &block, ["Typo", "Reader"]);

    typer.send_line("/foo bar");
    typer.wait_for_count(
        "a line pointing to /help",
        |line| line.contains("/foo") && line.contains("/help"),
        1,
    );
    // Same connection, so had /foo been sent it would arrive before this.
    typer.send_line("a normal message");
    wait_for_message(&reader, "Typo", "a normal message");
    assert_eq!(
        reader.count_lines(|line| line.contains("/foo")),
        0,
        "the unknown command reached the other member\n{}",
        reader.transcript()
    );
    wait_for_message(&typer, "Typo", "a normal message");
    assert_eq!(
        typer.count_lines(|line| split_message_line(line).is_some() && line.contains("/foo")),
        0,
        "the unknown command was shown as a message\n{}",
        typer.transcript()
    );
}

#[test]
fn help_shows_the_banner_again() {
    let port = free_port();
    let alone = member(port, Hosts::fresh().addr(1), "Alex", &[]);
    alone.wait_for_exact(BANNER[BANNER.len() - 1]);

    alone.send_line("/help");
    alone.wait_for_count("the banner twice", |line| line == BANNER[0], 2);
    let second_start = alone
        .stdout_lines()
        .iter()
        .rposition(|line| line == BANNER[0])
        .expect("waited for it above");
    alone.wait_for_count("the whole banner", |_| true, second_start + BANNER.len());
    let lines = alone.stdout_lines();
    assert_eq!(
        lines[second_start..second_start + BANNER.len()],
        BANNER,
        "{}",
        alone.transcript()
    );
}

#[test]
fn hooray_reaches_everyone_naming_the_sender() {
    let port = free_port();
    let names = ["Zoë Ünal", "Bo", "Cy"];
    let hosts = Hosts::fresh().first(3);
    let members: Vec<ChatProcess> = (0..3)
        .map(|i| member(port, hosts[i], names[i], &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    members[0].send_line("/hooray");
    for receiver in &members {
        receiver.wait_for_count(
            "a hooray from Zoë Ünal",
            |line| line.to_uppercase().contains("HOORAY") && line.contains("Zoë Ünal"),
            1,
        );
    }
    for receiver in &members {
        assert_eq!(
            receiver.count_lines(|line| line.contains('\x1b')),
            0,
            "colour with NO_COLOR set\n{}",
            receiver.transcript()
        );
    }
}

#[test]
fn control_characters_from_the_network_never_reach_the_terminal() {
    let port = free_port();
    let names = ["Mallory ☠", "Bo", "Cy"];
    let hosts = Hosts::fresh().first(3);
    let members: Vec<ChatProcess> = (0..3)
        .map(|i| member(port, hosts[i], names[i], &[]))
        .collect();
    let pairs: Vec<(&ChatProcess, &str)> = members.iter().zip(names).collect();
    wait_until_all_joined(&pairs, EVENT_TIMEOUT);

    let hostile = "start \x1b[2J\x1b[H\x1b]0;pwned\x07 bell\x07 back\x08\x08 cr\r over \
                   \u{202E}desrever\u{202C} \x1b[31mred\x1b[0m end";
    members[0].send_line(hostile);
    let forbidden = ['\x1b', '\x07', '\x08', '\r', '\u{202E}'];
    for receiver in &members[1..] {
        receiver.wait_for_count(
            "the hostile message",
            |line| line.contains("Mallory ☠: start ") && line.ends_with(" end"),
            1,
        );
        for line in receiver.stdout_lines() {
            assert!(
                !line.contains(forbidden),
                "{}: a control character reached the terminal in {line:?}\n{}",
                receiver.label(),
                receiver.transcript()
            );
        }
    }
}

#[test]
fn a_message_over_the_limit_gets_a_clear_local_error() {
    let block = Hosts::fresh();
    let port = free_port();
    let (sender, reader) = joined_pair(port, &block, ["Verbose", "Reader"]);

    let long = "y".repeat(5000);
    sender.send_line(&long);
    let mentions_limit = |line: &str| line.contains("limit") && !line.contains("yyyy");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !sender
        .stdout_lines()
        .iter()
        .chain(sender.stderr_lines().iter())
        .any(|line| mentions_limit(line))
    {
        assert!(
            Instant::now() < deadline,
            "no error mentioning the limit\n{}",
            sender.transcript()
        );
        thread::sleep(POLL_INTERVAL);
    }

    // The connection stays, and nothing of the long line went over it before this.
    sender.send_line("short and fine");
    wait_for_message(&reader, "Verbose", "short and fine");
    assert_eq!(
        reader.count_lines(|line| line.contains("yyyy") || line.contains("left chat")),
        0,
        "{}",
        reader.transcript()
    );
    assert_eq!(
        sender.count_lines(|line| line.contains("yyyy")),
        0,
        "the long line was shown as sent\n{}",
        sender.transcript()
    );
}

/// A member answers a message the moment it sees it (as a bot would, or a fast typist).
/// The answer was sent after the question, so `/history` must show it after the
/// question. Both members run on one machine, so they share one clock, and the answer's
/// send time can never be earlier than the question's; but it can be the *same*
/// millisecond, and then the answer must still come second.
#[test]
fn history_shows_a_reply_after_the_message_it_answers() {
    let block = Hosts::fresh();
    const ROUNDS: usize = 30;
    let port = free_port();
    // Ann has the lower address: on a tie of send times, her message must not jump ahead.
    let (ann, bob) = joined_pair(port, &block, ["Ann", "Bob"]);

    let mut conversation = Vec::new();
    for round in 1..=ROUNDS {
        let question = format!("question {round}?");
        let answer = format!("answer {round}!");
        bob.send_line(&question);
        ann.wait_for_line(|line| is_message(line, "Bob", &question), EVENT_TIMEOUT);
        ann.send_line(&answer);
        bob.wait_for_line(|line| is_message(line, "Ann", &answer), EVENT_TIMEOUT);
        conversation.push(format!("Bob: {question}"));
        conversation.push(format!("Ann: {answer}"));
    }

    ann.send_line("/history");
    let last_answer = format!("answer {ROUNDS}!");
    // Shown once live and once in the history, which is printed all at once.
    ann.wait_for_count(
        "the last answer twice",
        |line| is_message(line, "Ann", &last_answer),
        2,
    );
    // The history is the block under its heading. Ann's own live copy of her last
    // answer is printed by another thread and may land before or after that block, so
    // the block is found by its heading, not by counting from the end.
    let lines = ann.stdout_lines();
    let heading = lines
        .iter()
        .rposition(|line| line.starts_with("History ("))
        .unwrap_or_else(|| panic!("no history heading\n{}", ann.transcript()));
    let history: Vec<&str> = lines[heading + 1..]
        .iter()
        .filter_map(|line| split_message_line(line))
        .map(|(_, rest)| rest)
        .take(conversation.len())
        .collect();
    assert_eq!(
        history.len(),
        conversation.len(),
        "the history is short\n{}",
        ann.transcript()
    );
    let out_of_order: Vec<String> = history
        .iter()
        .zip(&conversation)
        .filter(|(shown, sent)| *shown != sent)
        .map(|(shown, sent)| format!("shown {shown:?} where {sent:?} was sent"))
        .collect();
    assert!(
        out_of_order.is_empty(),
        "/history is not in send order:\n{}\n{}",
        out_of_order.join("\n"),
        ann.transcript()
    );
}

/// A member pipes a script into the chat and its input ends. Every line it typed was a
/// message, and every message is shown, the sender's own included, so all of them must
/// be on its stdout when it exits, even when whatever reads that stdout is slower than
/// the chat (a pager, a paused terminal, a busy log collector).
///
/// `ChatProcess` drains stdout continuously, so this test drives the binary with a plain
/// `Command` and leaves stdout unread at first: the script is longer than a pipe holds.
#[test]
fn own_lines_typed_before_leaving_are_all_shown_to_a_slow_reader() {
    const LINES: usize = 40;
    /// Together the lines are about twice what a pipe holds (64 KiB).
    const LINE_BYTES: usize = 3000;
    let port = free_port().to_string();
    let mut child = Command::new(common::process::CHAT_BINARY)
        .args([
            "--port",
            &port,
            &Hosts::fresh().addr(1).to_string(),
            "Slow Reader",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start p2pchat");
    let texts: Vec<String> = (1..=LINES)
        .map(|i| format!("{i:03} {}", "z".repeat(LINE_BYTES)))
        .collect();

    let mut stdin = child.stdin.take().expect("piped stdin");
    let script: String = texts.iter().map(|text| format!("{text}\n")).collect();
    // Dropping stdin at the end of the thread is the end of input.
    let writer = thread::spawn(move || stdin.write_all(script.as_bytes()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // Let the chat get ahead of its reader: it may exit (it should not, with output
    // still to show) or block on the full pipe (as it should). Either way, read now.
    let deadline = Instant::now() + QUIET_WINDOW;
    while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
        thread::sleep(POLL_INTERVAL);
    }
    let mut stdout = child.stdout.take().expect("piped stdout");
    let stdout_reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });

    let deadline = Instant::now() + EVENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll p2pchat") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("p2pchat did not exit within {EVENT_TIMEOUT:?} after its input ended");
        }
        thread::sleep(POLL_INTERVAL);
    };
    let _ = writer.join();
    let stdout = stdout_reader.join().expect("stdout reader");
    let stderr = stderr_reader.join().expect("stderr reader");
    let shown: Vec<&str> = stdout
        .lines()
        .filter_map(split_message_line)
        .filter_map(|(_, rest)| rest.strip_prefix("Slow Reader: "))
        .collect();
    let numbers = |lines: &[&str]| -> Vec<String> {
        lines.iter().map(|line| line[..3].to_string()).collect()
    };
    let typed: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; stderr: {stderr}"
    );
    assert!(
        shown == typed,
        "{} of {LINES} typed lines were shown before the exit; shown: {:?}; stderr: {stderr}",
        shown.len(),
        numbers(&shown)
    );
}
