//! The network never waits for whoever reads the events: a bot that pauses, a terminal
//! nobody scrolls, a pipe into a stalled program. And every line printed reaches the
//! screen in one piece, whichever thread printed it.
//!
//! Members run on 127.0.B.x ([`Hosts`]), each test on its own port ([`free_port`]).
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use p2pchat::protocol::{Frame, PROTOCOL_VERSION};
use p2pchat::tuning::{DEFAULT_ROOM, PEER_TIMEOUT};
use p2pchat::{Config, Event, Node};

use common::hosts::host;
use common::inbox::Inbox;
use common::process::{CHAT_BINARY, ChatProcess};
use common::{EVENT_TIMEOUT, free_port, said};

fn config(last_octet: u8, name: &str, port: u16) -> Config {
    Config {
        port,
        ..Config::new(host(last_octet), name)
    }
}

/// Reads `events` until `pred` matches one; panics after [`EVENT_TIMEOUT`].
fn wait_for(events: &p2pchat::Events, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(event) if pred(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("no {what}: {e}"),
        }
    }
    panic!("no {what} within {EVENT_TIMEOUT:?}");
}

/// Sends `count` numbered lines (`prefix 0000`, `prefix 0001`, ...) from `node` on a
/// thread of its own; returns at once.
fn send_lines(node: &Node, prefix: &'static str, count: usize) -> thread::JoinHandle<()> {
    let node = node.clone();
    thread::spawn(move || {
        for i in 0..count {
            node.send(&format!("{prefix} {i:04}"))
                .unwrap_or_else(|e| panic!("cannot send line {i}: {e}"));
        }
    })
}

#[test]
fn a_bot_that_stops_reading_while_5000_lines_arrive_keeps_answering() {
    const LINES: usize = 5000;
    let port = free_port();
    let (bo, bo_events) = Node::start(config(1, "Bo", port)).expect("start Bo");
    let (bot, bot_events) = Node::start(config(2, "Bot", port)).expect("start the bot");
    let mut bo_inbox = Inbox::new(bo_events);
    bo_inbox.expect_event(|e| *e == Event::Joined(bot.me()), EVENT_TIMEOUT);
    wait_for(&bot_events, "join of Bo", |e| *e == Event::Joined(bo.me()));

    // The bot reads nothing while Bo sends, and for longer than the silence timeout
    // after: its connection must keep its heartbeats going all the same.
    let sending = send_lines(&bo, "line", LINES);
    while !sending.is_finished() {
        bo_inbox.receive(Duration::from_millis(10));
    }
    sending.join().expect("Bo's sending thread");
    thread::sleep(PEER_TIMEOUT + Duration::from_secs(1));

    // The bot sends before it reads again: the call must return, though thousands of
    // events wait for the very thread that makes it.
    let (returned, send_returned) = mpsc::channel();
    let sender = bot.clone();
    thread::spawn(move || {
        let _ = returned.send(sender.send("I was away"));
    });
    let sent = send_returned.recv_timeout(EVENT_TIMEOUT);
    assert!(
        matches!(sent, Ok(Ok(()))),
        "the bot's send did not return while its own events waited: {sent:?}"
    );

    // Then it reads everything that arrived meanwhile, in order, and answers Bo.
    let mut received = Vec::new();
    while received.len() < LINES {
        match wait_for(&bot_events, "line from Bo", |e| {
            matches!(e, Event::Message(m) if m.id.origin == bo.me().addr)
                || matches!(e, Event::Missed { .. })
        }) {
            Event::Message(message) => received.push(message.text),
            other => panic!("the bot missed events although they fit its budget: {other:?}"),
        }
    }
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i:04}")).collect();
    assert!(received == expected, "the bot got Bo's lines out of order");
    bo.send("ping").expect("Bo sends ping");
    wait_for(
        &bot_events,
        "ping",
        |e| matches!(e, Event::Message(m) if m.text == "ping"),
    );
    bot.send("pong").expect("the bot answers");
    bo_inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text == "pong"),
        EVENT_TIMEOUT,
    );
    assert_eq!(
        bo_inbox.count(|e| matches!(e, Event::Left(_))),
        0,
        "Bo saw the bot leave: {:?}",
        bo_inbox
            .log
            .iter()
            .filter(|e| matches!(e, Event::Left(_)))
            .collect::<Vec<_>>()
    );
    bot.leave();
    bo.leave();
}

/// A line of a pasted text, about as long as a typed sentence.
const PASTED: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
                      tempor incididunt ut labore";

#[test]
fn a_member_whose_screen_stops_for_10_s_stays_and_then_shows_all_3000_lines() {
    const LINES: u64 = 3000;
    let port = free_port();
    let alice = ChatProcess::spawn(&["--port", &port.to_string(), &host(11).to_string(), "Alice"])
        .with_label("Alice");
    let (bob, bob_events) = Node::start(config(12, "Bob", port)).expect("start Bob");
    let mut bob_inbox = Inbox::new(bob_events);
    alice.wait_for_exact("Bob joined chat");
    bob_inbox.expect_event(
        |e| matches!(e, Event::Joined(m) if m.name == "Alice"),
        EVENT_TIMEOUT,
    );

    // Alice's terminal stops (Ctrl-S, or a pipe into a program that reads nothing for
    // 10 s) while Bob pastes 3000 lines.
    // Lines of a typical length: together far more than the pipe (64 KiB) holds.
    let pause = Duration::from_secs(10);
    let paused_at = Instant::now();
    alice.stop_reading_stdout_for(pause);
    let sending = send_lines(&bob, PASTED, LINES as usize);
    while !sending.is_finished() || paused_at.elapsed() < pause {
        bob_inbox.receive(Duration::from_millis(10));
    }
    sending.join().expect("Bob's sending thread");

    let (shown, missed) = alice.wait_for_messages_accounted("Bob", LINES, EVENT_TIMEOUT);
    let expected: Vec<String> = (0..LINES).map(|i| format!("{PASTED} {i:04}")).collect();
    assert_eq!(
        missed, 0,
        "Alice dropped lines that fit in her event budget"
    );
    assert!(
        shown == expected,
        "Alice showed Bob's lines out of order or twice"
    );
    bob_inbox.poll();
    assert_eq!(
        bob_inbox.count(|e| matches!(e, Event::Left(_))),
        0,
        "Bob saw Alice leave while her screen was stopped"
    );
    assert_eq!(
        alice.count_lines(|l| l == "Bob left chat"),
        0,
        "{}",
        alice.transcript()
    );
    bob.leave();
}

/// `p2pchat` with stderr sent into its stdout pipe, as a terminal (or `2>&1`) merges them.
fn spawn_merged(label: &str, args: &[&str]) -> ChatProcess {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(CHAT_BINARY)
        .args(args);
    ChatProcess::from_command(label, command)
}

#[test]
fn chat_lines_and_diagnostics_never_split_each_other() {
    const LINES: usize = 2000;
    const BAD_CONNECTIONS: usize = 300;
    let port = free_port();
    let victim = spawn_merged(
        "victim",
        &["--port", &port.to_string(), &host(21).to_string(), "Vic"],
    );
    let (bob, bob_events) = Node::start(config(22, "Bob", port)).expect("start Bob");
    let mut bob_inbox = Inbox::new(bob_events);
    victim.wait_for_exact("Bob joined chat");

    // At the same time: Bob's lines (stdout) and connections that break the protocol
    // (a diagnostic each, on stderr).
    let sending = send_lines(&bob, "line", LINES);
    let breaking = thread::spawn(move || {
        for _ in 0..BAD_CONNECTIONS {
            if let Ok(mut stream) = TcpStream::connect((host(21), port)) {
                let _ = stream.write_all(&[0, 0, 0, 1, 0xff]);
                let _ = stream.read(&mut [0u8; 64]);
            }
        }
    });
    while !sending.is_finished() || !breaking.is_finished() {
        bob_inbox.receive(Duration::from_millis(10));
    }
    sending.join().expect("Bob's sending thread");
    breaking.join().expect("the protocol-breaking thread");
    victim.wait_for_count("line from Bob", |l| said(l, "Bob").is_some(), LINES);
    victim.wait_for_count(
        "diagnostic",
        |l| l.starts_with("p2pchat: connection with"),
        BAD_CONNECTIONS,
    );

    let whole_diagnostic = "p2pchat: connection with 127.0.0.1 ended: it sent an invalid frame \
                            (unknown frame type 0xff)";
    let torn: Vec<String> = victim
        .stdout_lines()
        .into_iter()
        .filter(|line| {
            let is_chat = said(line, "Bob")
                .is_some_and(|text| text.len() == "line 0000".len() && text.starts_with("line "));
            let is_expected = is_chat
                || line == whole_diagnostic
                || line == "Bob joined chat"
                || line.starts_with('‣')
                || line.starts_with("👼")
                || line.starts_with("Here are some tips");
            !is_expected
        })
        .collect();
    assert!(torn.is_empty(), "lines torn apart or unexpected: {torn:#?}");
    bob.leave();
}

#[test]
fn a_closed_stdout_ends_the_help_quietly() {
    // `true` exits at once; half a second later p2pchat writes its help into a pipe
    // nobody reads any more, and must not panic about it.
    let output = Command::new("sh")
        .arg("-c")
        .arg("(sleep 0.5; \"$0\" --help; echo \"exit status $?\" >&2) | true")
        .arg(CHAT_BINARY)
        .output()
        .expect("run sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("exit status 0") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_peer_that_stops_reading_is_dropped_in_words_a_user_understands() {
    let port = free_port();
    let victim = ChatProcess::spawn(&["--port", &port.to_string(), &host(31).to_string(), "Vic"])
        .with_label("victim");
    // The banner comes once the victim listens.
    victim.wait_for_line(|line| line.starts_with("👼"), EVENT_TIMEOUT);
    // A member that says hello, keeps sending heartbeats, and never reads.
    let mut stalled = TcpStream::connect((host(31), port)).expect("connect to the victim");
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        instance: 7,
        tcp_port: p2pchat::tuning::DEFAULT_PORT,
        name: "Stalled".into(),
        room: DEFAULT_ROOM.into(),
    };
    stalled.write_all(&hello.encode()).expect("send a hello");
    stalled
        .write_all(&Frame::Heartbeat.encode())
        .expect("confirm");
    victim.wait_for_exact("Stalled joined chat");
    let mut heartbeats = stalled.try_clone().expect("clone the stalled stream");
    let beating = thread::spawn(move || {
        for _ in 0..100 {
            if heartbeats.write_all(&Frame::Heartbeat.encode()).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    // The victim says far more than any socket buffer holds.
    let line = "x".repeat(4000);
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while victim.count_lines(|l| l == "Stalled left chat") == 0 && Instant::now() < deadline {
        for _ in 0..100 {
            victim.send_line(&line);
        }
        thread::sleep(Duration::from_millis(50));
    }
    victim.wait_for_exact("Stalled left chat");
    let stderr = victim.stderr_lines().join("\n");
    assert!(
        stderr.contains("connection with 127.0.0.1 ended: it stopped reading"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error"), "{stderr}");
    drop(stalled);
    let _ = beating.join();
}
