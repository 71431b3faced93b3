//! The features beyond the core chat, on loopback: private messages, rooms, renames,
//! members who share a name, colour, the log file, frame tracing in the library, and
//! what a member sends while a newcomer's connection is being made.
//!
//! Every test takes its own port from [`free_port`] (discovery listens on
//! `0.0.0.0:PORT`, so two tests on one port would hear each other's members) and its
//! own block of addresses, 127.0.N.x with one N from 5 to 16 per test, so that nothing
//! one test leaves behind is mistaken for another's member, here or in the other test
//! files (they use 127.0.0.x).
//!
//! Where the point is what the library does, members run in this process and the test
//! reads their events; where it is what a user sees, the real `p2pchat` runs, typed
//! into through stdin and read from stdout. Waits are generous ([`EVENT_TIMEOUT`]) and
//! nothing is timed. A "must not happen" check watches for [`SETTLE`] once the chat has
//! settled, and is followed by something that must happen over the same path, which
//! proves the member was listening.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use p2pchat::protocol::{Announcement, Frame, PROTOCOL_VERSION, decode_frame};
use p2pchat::{Config, Event, Member, Node, SendError, WireDirection};

use common::inbox::Inbox;
use common::process::{CHAT_BINARY, ChatProcess};
use common::{EVENT_TIMEOUT, free_port, said};

/// How long "must not happen" checks watch, once the chat has settled. Longer than the
/// announcement interval (2 s), so a member that would wrongly dial someone after an
/// announcement has the chance to do it while we watch.
const SETTLE: Duration = Duration::from_millis(2500);

/// How often the polling waits look again (at a process's output, a file, `ss`).
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Address `last` in this test's block 127.0.`block`.x.
fn addr(block: u8, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, block, last)
}

// ---------------------------------------------------------------------------------------
// Members in this process
// ---------------------------------------------------------------------------------------

/// A running member and its events. Leaves the chat when dropped, so a failing test
/// leaves no member running behind it.
struct Participant {
    node: Node,
    inbox: Inbox,
}

impl Participant {
    fn start(config: Config) -> Participant {
        let described = format!("{} on {}:{}", config.name, config.host, config.port);
        let (node, events) =
            Node::start(config).unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
        Participant {
            node,
            inbox: Inbox::new(events),
        }
    }

    /// A member named `name` on `host`, in the default room, on `port`.
    fn on(host: Ipv4Addr, name: &str, port: u16) -> Participant {
        Participant::start(Config {
            port,
            ..Config::new(host, name)
        })
    }

    fn me(&self) -> Member {
        self.node.me()
    }

    /// The first unclaimed event matching `pred`, waiting up to [`EVENT_TIMEOUT`] for
    /// it; it is then claimed. Events that do not match stay unclaimed.
    #[track_caller]
    fn expect_event(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        match self.inbox.claim(pred, EVENT_TIMEOUT) {
            Some(event) => event,
            None => panic!(
                "{}: {what} did not come within {EVENT_TIMEOUT:?}{}; events seen: {:#?}",
                self.me().name,
                if self.inbox.ended() {
                    " (the channel ended)"
                } else {
                    ""
                },
                self.inbox.log
            ),
        }
    }

    #[track_caller]
    fn expect_joined(&mut self, who: &Member) {
        self.expect_event(&format!("Joined({who:?})"), |e| {
            *e == Event::Joined(who.clone())
        });
    }

    /// Waits for the chat message `text` from the member at `sender`.
    #[track_caller]
    fn expect_message(&mut self, sender: Ipv4Addr, text: &str) -> p2pchat::ChatMessage {
        let what = format!("the message {text:?} from {sender}");
        match self.expect_event(&what, |e| is_message_from(e, sender, text)) {
            Event::Message(message) => message,
            other => unreachable!("the predicate matched {other:?}"),
        }
    }

    /// Watches for `window` and fails if an event matching `pred` arrives (or had
    /// arrived, unclaimed, before the watch began).
    #[track_caller]
    fn assert_no_event(&mut self, what: &str, pred: impl Fn(&Event) -> bool, window: Duration) {
        if let Some(event) = self.inbox.watch_for(pred, window) {
            panic!(
                "{}: {what} happened: {event:#?}; events seen: {:#?}",
                self.me().name,
                self.inbox.log
            );
        }
    }

    /// How many events ever received match `pred`.
    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.inbox.count(pred)
    }

    #[track_caller]
    fn send(&self, text: &str) {
        self.node
            .send(text)
            .unwrap_or_else(|e| panic!("cannot send {text:?}: {e}"));
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.node.leave();
    }
}

/// Waits until every member has seen every other one join.
fn wait_for_full_mesh(members: &mut [Participant]) {
    let everyone: Vec<Member> = members.iter().map(Participant::me).collect();
    for member in members.iter_mut() {
        let me = member.me();
        for other in everyone.iter().filter(|other| **other != me) {
            member.expect_joined(other);
        }
    }
}

fn is_message_from(event: &Event, sender: Ipv4Addr, text: &str) -> bool {
    matches!(event, Event::Message(m) if m.id.origin == sender && m.text == text)
}

/// Any event carrying `text`: a chat message or a private one.
fn carries_text(event: &Event, text: &str) -> bool {
    match event {
        Event::Message(m) => m.text == text,
        Event::Private { text: t, .. } => t == text,
        _ => false,
    }
}

fn is_private(event: &Event) -> bool {
    matches!(event, Event::Private { .. })
}

/// The texts of a history, in its order.
fn texts(messages: &[p2pchat::ChatMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

// ---------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------

/// Starts `p2pchat` (plain output: `NO_COLOR=1`, stdout a pipe) as `name` on `host`.
fn member(port: u16, host: Ipv4Addr, name: &str, extra: &[&str]) -> ChatProcess {
    let (port, host) = (port.to_string(), host.to_string());
    let mut args = vec!["--port", &port];
    args.extend_from_slice(extra);
    args.extend([host.as_str(), name]);
    ChatProcess::spawn(&args).with_label(name)
}

#[track_caller]
fn wait_for_containing(process: &ChatProcess, needle: &str) -> String {
    process.wait_for_count(
        &format!("a line with {needle:?}"),
        |l| l.contains(needle),
        1,
    );
    process
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains(needle))
        .expect("waited for it above")
}

/// Waits for the line `hh:mm:ss WHO: TEXT`, where WHO is what comes before the colon
/// (`Alex`, `[private] Alex`, `Sam (127.0.0.4)`).
#[track_caller]
fn wait_for_said(process: &ChatProcess, who: &str, text: &str) {
    process.wait_for_count(
        &format!("\"hh:mm:ss {who}: {text}\""),
        |line| said(line, who) == Some(text),
        1,
    );
}

/// Whether any stdout line of `process` satisfies `pred`.
fn printed(process: &ChatProcess, pred: impl Fn(&str) -> bool) -> bool {
    process.count_lines(pred) > 0
}

#[track_caller]
fn assert_not_printed(process: &ChatProcess, what: &str, pred: impl Fn(&str) -> bool) {
    assert!(
        !printed(process, pred),
        "{}: printed {what}, which it must not\n{}",
        process.label(),
        process.transcript()
    );
}

/// Whether `line` holds an SGR sequence (`ESC [`, digits and semicolons, `m`): how a
/// terminal is told a colour.
fn has_colour_code(line: &str) -> bool {
    line.split("\x1b[").skip(1).any(|rest| {
        rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
            .starts_with('m')
    })
}

#[track_caller]
fn leave_with_exit(process: &mut ChatProcess) {
    process.send_line("/exit");
    let status = process.wait_exit(EVENT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(0),
        "{}: /exit should end with status 0\n{}",
        process.label(),
        process.transcript()
    );
}

// ---------------------------------------------------------------------------------------
// A pseudo-terminal, from util-linux `script`
// ---------------------------------------------------------------------------------------

/// Whether util-linux `script` can give the chat a pseudo-terminal.
fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `text` quoted for `sh`.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Starts `p2pchat args` with its stdin, stdout and stderr on a pseudo-terminal, under
/// `script -qfec CMD /dev/null` (quiet, flush at once, exit with the command's status,
/// no typescript file). `script` copies the terminal's output to its own stdout, which
/// [`ChatProcess`] reads, and its own stdin to the terminal, so typing still works.
///
/// `ChatProcess` sets `NO_COLOR=1`; with `colour` the command unsets it again. The
/// shell `exec`s, so the chat is `script`'s child (see [`chat_under`]).
fn on_terminal(label: &str, args: &[&str], colour: bool) -> ChatProcess {
    let mut words = vec!["exec".to_owned()];
    if colour {
        words.extend(["env", "-u", "NO_COLOR"].map(String::from));
    }
    words.push(shell_quoted(CHAT_BINARY));
    words.extend(args.iter().map(|arg| shell_quoted(arg)));
    let mut command = Command::new("script");
    command.args(["-qfec", &words.join(" "), "/dev/null"]);
    ChatProcess::from_command(label, command)
}

/// Starts `p2pchat args` with stdout a pipe and `NO_COLOR` unset: what a user gets
/// with `p2pchat ... | tee`, where colour would only be noise.
fn piped_without_no_color(label: &str, args: &[&str]) -> ChatProcess {
    let mut command = Command::new("env");
    command.args(["-u", "NO_COLOR", CHAT_BINARY]).args(args);
    ChatProcess::from_command(label, command)
}

/// The pid of the `p2pchat` process below `ancestor` (the `script` we started), found
/// in `/proc` (the `stat` of every process names its parent).
fn chat_under(ancestor: u32) -> u32 {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let mut parent_of: HashMap<u32, u32> = HashMap::new();
        let mut chats = Vec::new();
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue; // it exited meanwhile
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let ppid = stat[close + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|ppid| ppid.parse().ok());
            if let Some(ppid) = ppid {
                parent_of.insert(pid, ppid);
                if &stat[open + 1..close] == "p2pchat" {
                    chats.push(pid);
                }
            }
        }
        let below = |mut pid: u32| {
            while let Some(&parent) = parent_of.get(&pid) {
                if parent == ancestor {
                    return true;
                }
                pid = parent;
            }
            false
        };
        if let Some(&pid) = chats.iter().find(|&&pid| below(pid)) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no p2pchat process below pid {ancestor} within {EVENT_TIMEOUT:?}"
        );
        thread::sleep(POLL_INTERVAL);
    }
}

// ---------------------------------------------------------------------------------------
// Files, clocks, sockets
// ---------------------------------------------------------------------------------------

/// A path in the temporary directory that no other test, or run, uses; removed when
/// dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> TempFile {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let name = format!("p2pchat-features-{what}-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = fs::remove_file(&path);
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the file has at least `count` lines, and returns them.
    #[track_caller]
    fn wait_for_lines(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let lines = self.lines();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} has {} of {count} lines after {EVENT_TIMEOUT:?}: {lines:#?}",
                self.0.display(),
                lines.len()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Today's local date, `YYYY-MM-DD`, as `date` (and so the chat) sees it.
fn local_date() -> String {
    let output = Command::new("date")
        .arg("+%F")
        .output()
        .expect("run `date`");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Splits a log line `YYYY-MM-DD hh:mm:ss REST` into the date and REST, if it has
/// exactly that shape.
fn dated(line: &str) -> Option<(&str, &str)> {
    let stamp = line.get(..19)?;
    let shape_holds = stamp.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let rest = line.get(19..)?.strip_prefix(' ')?;
    shape_holds.then_some((&stamp[..10], rest))
}

/// Every TCP connection on this machine in any state, as (state, local, peer), from
/// `ss -tan`. Any state, not only `ESTAB`: a connection that was opened and closed
/// again at once stays in `TIME-WAIT` for a minute on the side that closed first, so
/// even the shortest-lived connection leaves a trace to find.
fn tcp_connections() -> Vec<(String, SocketAddrV4, SocketAddrV4)> {
    let output = Command::new("ss")
        .args(["-Htan"])
        .output()
        .expect("run `ss` (iproute2)");
    assert!(output.status.success(), "ss failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            // State Recv-Q Send-Q Local:Port Peer:Port (a listener's peer is `0.0.0.0:*`)
            let state = line.split_whitespace().next()?.to_owned();
            let ends: Vec<SocketAddrV4> = line
                .split_whitespace()
                .filter_map(|field| field.parse().ok())
                .collect();
            match ends.as_slice() {
                [local, peer] => Some((state, *local, *peer)),
                _ => None,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Private messages
// ---------------------------------------------------------------------------------------

#[test]
fn a_private_message_reaches_only_its_addressee() {
    let port = free_port();
    let mut members = vec![
        Participant::on(addr(5, 1), "Alex", port),
        Participant::on(addr(5, 2), "Bo", port),
        Participant::on(addr(5, 3), "Cleo", port),
    ];
    wait_for_full_mesh(&mut members);
    let [alex, bo, cleo] = &mut members[..] else {
        unreachable!("three members")
    };
    let (alex_me, bo_me) = (alex.me(), bo.me());

    alex.node
        .send_private(bo_me.addr, "psst, Bo")
        .expect("Bo is a member");

    // Both ends see it, marked private, with the same sender, addressee and time.
    let at_bo = bo.expect_event("the private message", is_private);
    let at_alex = alex.expect_event("its own private message", is_private);
    let Event::Private {
        from,
        to,
        sent_at_ms,
        text,
    } = &at_bo
    else {
        unreachable!("matched a private event")
    };
    assert_eq!((from, to, text.as_str()), (&alex_me, &bo_me, "psst, Bo"));
    assert_eq!(
        at_alex,
        Event::Private {
            from: alex_me.clone(),
            to: bo_me.clone(),
            sent_at_ms: *sent_at_ms,
            text: "psst, Bo".into(),
        }
    );

    // Cleo hears nothing of it, however long she listens...
    cleo.assert_no_event(
        "a private message, or its text",
        |e| is_private(e) || carries_text(e, "psst, Bo"),
        SETTLE,
    );
    // ...though she was listening all along: Alex's next line reaches her.
    alex.send("hello everyone");
    cleo.expect_message(alex_me.addr, "hello everyone");
    bo.expect_message(alex_me.addr, "hello everyone");
    assert_eq!(cleo.count(|e| carries_text(e, "psst, Bo")), 0);
    // Nor did Bo get it a second time as an ordinary message.
    assert_eq!(bo.count(|e| carries_text(e, "psst, Bo")), 1);

    // An address that is no member gets a clear error, and nothing is sent.
    let nobody = addr(5, 9);
    assert_eq!(
        alex.node.send_private(nobody, "anyone there?"),
        Err(SendError::NotAMember(nobody))
    );
}

#[test]
fn history_never_hands_a_private_message_to_a_third_member() {
    let port = free_port();
    let mut members = vec![
        Participant::on(addr(6, 1), "Alex", port),
        Participant::on(addr(6, 2), "Bo", port),
        Participant::on(addr(6, 3), "Cleo", port),
    ];
    wait_for_full_mesh(&mut members);
    let (alex_addr, bo_addr) = (members[0].me().addr, members[1].me().addr);

    members[0]
        .node
        .send_private(bo_addr, "a secret for Bo")
        .expect("Bo is a member");
    members[0].send("open to all");
    members[1].expect_event("the private message", is_private);
    for member in &mut members {
        member.expect_message(alex_addr, "open to all");
    }

    // Every member's history, each merged with everyone else's, has the public line
    // only: the addressee and the sender did not keep the private one either.
    for member in &members {
        let history: Vec<p2pchat::ChatMessage> = member
            .node
            .history()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            texts(&history),
            ["open to all"],
            "history of {:?}",
            member.me()
        );
    }

    // A member who joins afterwards asks everyone, and gets the public line only.
    let mut late = Participant::on(addr(6, 4), "Dee", port);
    for member in &members {
        late.expect_joined(&member.me());
    }
    let history: Vec<p2pchat::ChatMessage> =
        late.node.history().into_iter().map(|e| e.message).collect();
    assert_eq!(
        texts(&history),
        ["open to all"],
        "history of the late joiner"
    );
    assert_eq!(history[0].id.origin, alex_addr);
}

#[test]
fn msg_command_by_name_by_address_and_when_ambiguous() {
    let port = free_port();
    let hosts: Vec<Ipv4Addr> = (1..=5).map(|last| addr(7, last)).collect();
    let names = ["Alex", "Bo", "Cleo", "Sam", "Sam"];
    let members: Vec<ChatProcess> = hosts
        .iter()
        .zip(names)
        .map(|(host, name)| member(port, *host, name, &[]).with_label(&format!("{name} {host}")))
        .collect();
    let [alex, bo, cleo, sam4, sam5] = &members[..] else {
        unreachable!("five members")
    };
    // Alex knows all four others (with or without an address in the line: whether the
    // second Sam was already known when the first was shown depends on timing), and
    // each of them knows Alex.
    alex.wait_for_count("joins", |l| l.ends_with(" joined chat"), 4);
    for other in [bo, cleo, sam4, sam5] {
        other.wait_for_exact("Alex joined chat");
    }

    // By a unique name: marked private at both ends.
    alex.send_line("/msg Bo hi");
    wait_for_said(bo, "[private] Alex", "hi");
    wait_for_said(alex, "[private to Bo] Alex", "hi");
    // The others get neither line, though they hear Alex's next public line.
    alex.send_line("after the private one");
    for other in [cleo, sam4, sam5] {
        wait_for_said(other, "Alex", "after the private one");
        assert_not_printed(other, "a private line", |l| l.contains("[private"));
        assert_not_printed(other, "the private text", |l| l.ends_with(": hi"));
    }

    // By a shared name: refused, with both candidates' addresses.
    alex.send_line("/msg Sam which one?");
    let answer = wait_for_containing(alex, "Several members are called that");
    for sam in [&hosts[3], &hosts[4]] {
        assert!(
            answer.contains(&format!("Sam ({sam})")),
            "the answer should list Sam ({sam}): {answer:?}"
        );
    }
    assert!(answer.contains("Not sent"), "{answer:?}");

    // By address it goes through. It travels the connection the refused one would
    // have taken, so had that been sent it would have arrived first.
    alex.send_line(&format!("/msg {} for the first Sam", hosts[3]));
    alex.send_line(&format!("/msg {} for the second Sam", hosts[4]));
    wait_for_said(sam4, "[private] Alex", "for the first Sam");
    wait_for_said(sam5, "[private] Alex", "for the second Sam");
    wait_for_said(
        alex,
        &format!("[private to Sam ({})] Alex", hosts[3]),
        "for the first Sam",
    );
    for sam in [sam4, sam5] {
        assert_not_printed(sam, "the refused message", |l| l.contains("which one?"));
    }
    assert_not_printed(sam4, "the second Sam's message", |l| {
        l.contains("for the second Sam")
    });
    assert_not_printed(sam5, "the first Sam's message", |l| {
        l.contains("for the first Sam")
    });
    assert_not_printed(alex, "the refused message as sent", |l| {
        l.contains("[private to") && l.contains("which one?")
    });

    // An unknown name: refused, naming it and listing who is there.
    alex.send_line("/msg Zed hello?");
    let answer = wait_for_containing(alex, "No member called Zed");
    for (host, name) in hosts.iter().zip(names).skip(1) {
        assert!(
            answer.contains(&format!("{name} ({host})")),
            "the answer should list {name} ({host}): {answer:?}"
        );
    }
    assert!(answer.contains("Not sent"), "{answer:?}");
    // So is an address where nobody is.
    alex.send_line(&format!("/msg {} hello?", addr(7, 9)));
    wait_for_containing(alex, &format!("No member called {}", addr(7, 9)));
    // Neither reached anyone: a private line sent after them arrives, and they did not.
    for (other, host) in [bo, cleo, sam4, sam5].into_iter().zip(&hosts[1..]) {
        alex.send_line(&format!("/msg {host} last"));
        wait_for_said(other, "[private] Alex", "last");
        assert_not_printed(other, "a refused message", |l| l.contains("hello?"));
    }
}

// ---------------------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------------------

#[test]
fn members_of_different_rooms_never_connect() {
    let port = free_port();
    let in_room = |last: u8, name: &str, room: Option<&str>| {
        let mut config = Config {
            port,
            ..Config::new(addr(8, last), name)
        };
        if let Some(room) = room {
            config.room = room.to_owned();
        }
        Participant::start(config)
    };
    // All on one port: they all hear each other's announcements.
    let mut members = vec![
        in_room(1, "Ann", Some("red")),
        in_room(2, "Ben", Some("red")),
        in_room(3, "Cat", Some("blue")),
        in_room(4, "Dan", Some("blue")),
        in_room(5, "Eve", None),
    ];
    assert_eq!(members[4].node.room(), "lobby", "the default room");
    let room_of: HashMap<Ipv4Addr, String> = members
        .iter()
        .map(|m| (m.me().addr, m.node.room().to_owned()))
        .collect();

    let everyone: Vec<Member> = members.iter().map(Participant::me).collect();
    members[0].expect_joined(&everyone[1]);
    members[1].expect_joined(&everyone[0]);
    members[2].expect_joined(&everyone[3]);
    members[3].expect_joined(&everyone[2]);

    // Watch for a settle window (an announcement from every member arrives in it),
    // looking at the kernel's connections as well as the events: no connection across
    // rooms may exist, not even one refused right after its hello.
    let deadline = Instant::now() + SETTLE;
    let mut established_in_a_room = 0;
    loop {
        for (state, local, peer) in tcp_connections() {
            let (Some(local_room), Some(peer_room)) =
                (room_of.get(local.ip()), room_of.get(peer.ip()))
            else {
                continue;
            };
            if local.port() != port && peer.port() != port {
                continue;
            }
            assert_eq!(
                local_room, peer_room,
                "a TCP connection between rooms ({state}): {local} ({local_room}) - {peer} \
                 ({peer_room})"
            );
            if state == "ESTAB" {
                established_in_a_room += 1;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    // The check above looked at real connections: the red and blue pairs' were there.
    assert!(
        established_in_a_room > 0,
        "ss never showed the red or blue pair's connection"
    );

    // Each room carries its own messages only.
    members[0].send("red says hi");
    members[2].send("blue says hi");
    members[4].send("lobby says hi");
    members[1].expect_message(everyone[0].addr, "red says hi");
    members[3].expect_message(everyone[2].addr, "blue says hi");
    for member in &mut members {
        member.inbox.poll();
    }

    for member in &members {
        let me = member.me();
        let my_room = &room_of[&me.addr];
        let same_room: Vec<Member> = everyone
            .iter()
            .filter(|other| **other != me && room_of[&other.addr] == *my_room)
            .cloned()
            .collect();
        assert_eq!(member.node.members(), same_room, "members() of {me:?}");
        let strangers = member.count(|e| match e {
            Event::Joined(m) | Event::Left(m) => room_of[&m.addr] != *my_room,
            Event::Message(m) => room_of[&m.id.origin] != *my_room,
            _ => false,
        });
        assert_eq!(
            strangers, 0,
            "{me:?} in {my_room} saw another room: {:#?}",
            member.inbox.log
        );
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

#[test]
fn a_rename_is_seen_by_everyone_and_in_members() {
    let port = free_port();
    let mut members = vec![
        Participant::on(addr(9, 1), "Alex", port),
        Participant::on(addr(9, 2), "Bo", port),
        Participant::on(addr(9, 3), "Cleo", port),
    ];
    wait_for_full_mesh(&mut members);
    let bo_addr = members[1].me().addr;
    let renamed = Event::Renamed {
        addr: bo_addr,
        old: "Bo".into(),
        new: "Bobby".into(),
    };

    members[1].node.rename("Bobby").expect("a valid name");
    assert_eq!(members[1].me().name, "Bobby");
    for member in &mut members {
        member.expect_event("Bo's rename", |e| *e == renamed);
    }
    let bobby = Member {
        name: "Bobby".into(),
        addr: bo_addr,
    };
    for member in [&members[0], &members[2]] {
        assert!(
            member.node.members().contains(&bobby),
            "members() of {:?}: {:?}",
            member.me(),
            member.node.members()
        );
    }

    // What Bo says from now on carries the new name.
    members[1].send("still me");
    for member in [0, 2] {
        let message = members[member].expect_message(bo_addr, "still me");
        assert_eq!(message.sender_name, "Bobby");
    }

    // A member who joins later knows Bo by the new name only.
    let mut late = Participant::on(addr(9, 4), "Dee", port);
    late.expect_joined(&bobby);

    // A name that breaks the rules is refused, and the name stays.
    assert!(matches!(
        members[1].node.rename(""),
        Err(SendError::InvalidName(_))
    ));
    assert_eq!(members[1].me().name, "Bobby");
}

#[test]
fn name_command_prints_old_is_now_new_on_every_screen() {
    let port = free_port();
    let names = ["Alex", "Bo", "Cleo"];
    let hosts: Vec<Ipv4Addr> = (1..=3).map(|last| addr(10, last)).collect();
    let members: Vec<ChatProcess> = hosts
        .iter()
        .zip(names)
        .map(|(host, name)| member(port, *host, name, &[]))
        .collect();
    for (process, own) in members.iter().zip(names) {
        for name in names.iter().filter(|name| **name != own) {
            process.wait_for_exact(&format!("{name} joined chat"));
        }
    }
    let [alex, bo, cleo] = &members[..] else {
        unreachable!("three members")
    };

    bo.send_line("/name Bobby");
    for process in &members {
        process.wait_for_exact("Bo is now Bobby");
    }
    bo.send_line("still me");
    wait_for_said(alex, "Bobby", "still me");
    wait_for_said(cleo, "Bobby", "still me");
    alex.send_line("/members");
    alex.wait_for_exact(&format!("Bobby: {}", hosts[1]));
}

#[test]
fn members_who_share_a_name_are_told_apart() {
    let port = free_port();
    let (tess_at, first_at, second_at) = (addr(11, 1), addr(11, 2), addr(11, 3));
    let tess = member(port, tess_at, "Tess", &[]);
    let first = member(port, first_at, "Sam", &[]).with_label("first Sam");
    // While there is one Sam, Tess has no reason to add an address.
    tess.wait_for_exact("Sam joined chat");
    first.wait_for_exact("Tess joined chat");

    let second = member(port, second_at, "Sam", &[]).with_label("second Sam");
    // From the moment a second Sam is there, every mention of either carries its
    // address, wherever the name is shared (a Sam sees the other as sharing its name).
    tess.wait_for_exact(&format!("Sam ({second_at}) joined chat"));
    first.wait_for_exact(&format!("Sam ({second_at}) joined chat"));
    second.wait_for_exact(&format!("Sam ({first_at}) joined chat"));
    second.wait_for_exact("Tess joined chat");

    first.send_line("one");
    second.send_line("two");
    wait_for_said(&tess, &format!("Sam ({first_at})"), "one");
    wait_for_said(&tess, &format!("Sam ({second_at})"), "two");
    wait_for_said(&second, &format!("Sam ({first_at})"), "one");
    wait_for_said(&first, &format!("Sam ({second_at})"), "two");
    assert_not_printed(&tess, "a Sam without an address", |l| {
        said(l, "Sam").is_some()
    });

    // /members lists both, each with its address.
    tess.send_line("/members");
    tess.wait_for_exact(&format!("Sam: {first_at}"));
    tess.wait_for_exact(&format!("Sam: {second_at}"));
}

// ---------------------------------------------------------------------------------------
// Colour and the log file
// ---------------------------------------------------------------------------------------

#[test]
fn colour_only_on_a_terminal() {
    if !script_available() {
        // Without util-linux `script` there is no std-only way to give the chat a
        // terminal; the piped half alone would prove little.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have util-linux `script` for colour_only_on_a_terminal"
        );
        eprintln!("SKIPPED colour_only_on_a_terminal: util-linux `script` is not installed");
        return;
    }
    let port = free_port().to_string();
    let hosts = [1, 2, 3].map(|last| addr(12, last).to_string());
    let mut coloured = on_terminal(
        "Alex (terminal)",
        &["--port", &port, &hosts[0], "Alex"],
        true,
    );
    let mut piped = piped_without_no_color(
        "Bo (pipe, no NO_COLOR)",
        &["--port", &port, &hosts[1], "Bo"],
    );
    let mut no_color = on_terminal(
        "Cleo (terminal, NO_COLOR=1)",
        &["--port", &port, &hosts[2], "Cleo"],
        false,
    );
    let everyone = [&coloured, &piped, &no_color];
    for (process, own) in everyone.iter().zip(["Alex", "Bo", "Cleo"]) {
        for name in ["Alex", "Bo", "Cleo"].into_iter().filter(|n| *n != own) {
            wait_for_containing(process, &format!("{name} joined chat"));
        }
    }
    piped.send_line("from a pipe");
    coloured.send_line("from a terminal");
    for process in everyone {
        wait_for_containing(process, ": from a pipe");
        wait_for_containing(process, ": from a terminal");
    }

    // On the terminal: joins, others' names and our own name are all painted.
    for needle in ["Bo joined chat", ": from a pipe", ": from a terminal"] {
        let line = wait_for_containing(&coloured, needle);
        assert!(
            line.contains("\x1b["),
            "a terminal without NO_COLOR should colour {needle:?}: {line:?}\n{}",
            coloured.transcript()
        );
    }
    // Not into a pipe: plain text, not one escape sequence. Not with NO_COLOR: no
    // colour (on a terminal the line editor still moves the cursor with escape
    // sequences; NO_COLOR is about colour).
    assert_not_printed(&piped, "an escape sequence", |l| l.contains('\x1b'));
    assert_not_printed(&no_color, "a colour code", has_colour_code);

    for process in [&mut coloured, &mut piped, &mut no_color] {
        leave_with_exit(process);
    }
}

#[test]
fn the_log_file_records_every_event_with_a_full_date_and_survives_a_kill() {
    let port = free_port();
    let log = TempFile::new("log");
    let log_path = log
        .path()
        .to_str()
        .expect("a UTF-8 temporary path")
        .to_owned();
    let date_before = local_date();

    // The logging member runs on a terminal with colour when it can, so that a log that
    // copied the screen would show escape sequences.
    let (port_text, alex_at) = (port.to_string(), addr(13, 1).to_string());
    let logger_args = ["--port", &port_text, "--log", &log_path, &alex_at, "Alex"];
    let terminal = script_available();
    let mut logger = if terminal {
        on_terminal("Alex (logging)", &logger_args, true)
    } else {
        piped_without_no_color("Alex (logging)", &logger_args)
    };
    let bo = member(port, addr(13, 2), "Bo", &[]);
    wait_for_containing(&logger, "Bo joined chat");
    bo.wait_for_exact("Alex joined chat");

    bo.send_line("hello from Bo");
    wait_for_containing(&logger, "hello from Bo");
    bo.send_line("/name Bobby");
    wait_for_containing(&logger, "Bo is now Bobby");
    bo.send_line("/msg Alex psst");
    wait_for_containing(&logger, "psst");

    // Once the lines are in the file, SIGKILL: no goodbye, no flush, no destructor.
    let expected = [
        "Bo joined chat",
        "Bo: hello from Bo",
        "Bo is now Bobby",
        "[private] Bobby: psst",
    ];
    log.wait_for_lines(expected.len());
    let chat_pid = if terminal {
        chat_under(logger.pid())
    } else {
        logger.pid()
    };
    let killed = Command::new("kill")
        .args(["-s", "KILL", &chat_pid.to_string()])
        .status()
        .expect("run `kill`");
    assert!(killed.success(), "kill -s KILL {chat_pid} failed");
    logger.wait_exit(EVENT_TIMEOUT);
    // Bo sees the crash: the kernel closed the dead member's connection.
    bo.wait_for_exact("Alex left chat");
    let date_after = local_date();

    let check = |lines: &[String], expected: &[&str]| {
        let rests: Vec<&str> = lines
            .iter()
            .map(|line| {
                assert!(
                    !line.contains('\x1b'),
                    "an escape sequence in the log: {line:?}"
                );
                let (date, rest) = dated(line)
                    .unwrap_or_else(|| panic!("not `YYYY-MM-DD hh:mm:ss ...`: {line:?}"));
                assert!(
                    date == date_before || date == date_after,
                    "dated {date}, not today ({date_before} or {date_after}): {line:?}"
                );
                rest
            })
            .collect();
        assert_eq!(rests, expected, "the log, without dates: {lines:#?}");
    };
    let first_run = log.lines();
    check(&first_run, &expected);

    // A second run appends to the same file.
    let mut again = member(port, addr(13, 3), "Alex again", &["--log", &log_path]);
    again.wait_for_exact("Bobby joined chat");
    log.wait_for_lines(expected.len() + 1);
    leave_with_exit(&mut again);
    let both_runs = log.lines();
    assert_eq!(
        both_runs[..first_run.len()],
        first_run[..],
        "the second run must not change the first run's lines"
    );
    let mut all_expected = expected.to_vec();
    all_expected.push("Bobby joined chat");
    check(&both_runs, &all_expected);
}

// ---------------------------------------------------------------------------------------
// The library: watching frames
// ---------------------------------------------------------------------------------------

#[test]
fn trace_frames_reports_each_frame_with_its_peer_and_direction() {
    let port = free_port();
    let mut alex = Participant::start(Config {
        port,
        trace_frames: true,
        ..Config::new(addr(14, 1), "Alex")
    });
    let mut bo = Participant::on(addr(14, 2), "Bo", port);
    let mut cleo = Participant::on(addr(14, 3), "Cleo", port);
    let (bo_at, cleo_at) = (bo.me().addr, cleo.me().addr);
    alex.expect_joined(&bo.me());
    alex.expect_joined(&cleo.me());
    bo.expect_joined(&alex.me());
    cleo.expect_joined(&alex.me());

    let wire = |peer: Ipv4Addr, direction: WireDirection, frame: fn(&Frame) -> bool| {
        move |e: &Event| {
            matches!(e, Event::Wire { peer: p, direction: d, frame: f }
                if *p == peer && *d == direction && frame(f))
        }
    };
    // The hello each way with Bo: ours names us, Bo's names Bo.
    alex.expect_event(
        "our Hello, sent to Bo",
        wire(
            bo_at,
            WireDirection::Sent,
            |f| matches!(f, Frame::Hello { name, room, .. } if name == "Alex" && room == "lobby"),
        ),
    );
    alex.expect_event(
        "Bo's Hello, received",
        wire(
            bo_at,
            WireDirection::Received,
            |f| matches!(f, Frame::Hello { name, .. } if name == "Bo"),
        ),
    );

    // One Chat frame to each member, and Bo's answer coming in.
    alex.send("traced");
    for peer in [bo_at, cleo_at] {
        alex.expect_event(
            &format!("the Chat frame sent to {peer}"),
            wire(
                peer,
                WireDirection::Sent,
                |f| matches!(f, Frame::Chat { text, .. } if text == "traced"),
            ),
        );
    }
    bo.expect_message(alex.me().addr, "traced");
    bo.send("answer");
    alex.expect_event(
        "Bo's Chat frame, received",
        wire(
            bo_at,
            WireDirection::Received,
            |f| matches!(f, Frame::Chat { text, .. } if text == "answer"),
        ),
    );
    alex.expect_message(bo_at, "answer");

    // Every frame was between Alex and a real member.
    alex.inbox.poll();
    for event in &alex.inbox.log {
        if let Event::Wire { peer, .. } = event {
            assert!(
                [bo_at, cleo_at].contains(peer),
                "a frame with peer {peer}: {event:?}"
            );
        }
    }
    // Members that did not ask for tracing see no frames.
    bo.inbox.poll();
    assert_eq!(bo.count(|e| matches!(e, Event::Wire { .. })), 0);
}

// ---------------------------------------------------------------------------------------
// While a newcomer's connection is being made
// ---------------------------------------------------------------------------------------

/// The test itself plays a member, "Hand", at `at`: it announces itself like any
/// member, accepts the connection the node under test dials, and reads and writes
/// frames by hand with the library's codec. That way the test decides exactly when
/// each side's hello goes out.
struct HandMember {
    stream: TcpStream,
    buffer: Vec<u8>,
    instance: u64,
    /// Our hello has gone out: from then on we send heartbeats, as members do.
    greeted: bool,
}

impl HandMember {
    /// Announces `at` on `port` until a member dials it, and accepts that connection.
    fn dialed_at(at: Ipv4Addr, port: u16) -> HandMember {
        let instance = 0x00ab_cdef_1234_5678;
        let listener = TcpListener::bind((at, port)).expect("listen as the hand member");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let announcer = UdpSocket::bind((at, 0)).expect("bind the announcing socket");
        announcer.set_broadcast(true).expect("SO_BROADCAST");
        let announcement = Announcement {
            version: PROTOCOL_VERSION,
            tcp_port: port,
            instance,
            name: "Hand".into(),
            room: "lobby".into(),
        }
        .encode();
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut next_announcement = Instant::now();
        loop {
            if Instant::now() >= next_announcement {
                announcer
                    .send_to(&announcement, (Ipv4Addr::BROADCAST, port))
                    .expect("broadcast an announcement");
                next_announcement = Instant::now() + Duration::from_millis(500);
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("a blocking stream");
                    stream
                        .set_read_timeout(Some(POLL_INTERVAL))
                        .expect("a read timeout");
                    return HandMember {
                        stream,
                        buffer: Vec::new(),
                        instance,
                        greeted: false,
                    };
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept failed: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "nobody dialed {at} within {EVENT_TIMEOUT:?}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn send(&mut self, frame: &Frame) {
        self.stream
            .write_all(&frame.encode())
            .unwrap_or_else(|e| panic!("cannot send {frame:?}: {e}"));
    }

    fn hello(&mut self) {
        self.send(&Frame::Hello {
            version: PROTOCOL_VERSION,
            instance: self.instance,
            tcp_port: p2pchat::tuning::DEFAULT_PORT,
            name: "Hand".into(),
            room: "lobby".into(),
        });
        self.greeted = true;
    }

    /// Every frame that arrives until `until` holds for one of them, and then for
    /// `grace` more. Heartbeats go out meanwhile (after our hello), so the member
    /// keeps us.
    fn frames_until(&mut self, until: impl Fn(&Frame) -> bool, grace: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut deadline = Instant::now() + EVENT_TIMEOUT;
        let mut seen = false;
        let mut next_heartbeat = Instant::now();
        while Instant::now() < deadline {
            if self.greeted && Instant::now() >= next_heartbeat {
                self.send(&Frame::Heartbeat);
                next_heartbeat = Instant::now() + Duration::from_secs(1);
            }
            while let Some((frame, used)) =
                decode_frame(&self.buffer).expect("the member sends valid frames")
            {
                self.buffer.drain(..used);
                if !seen && until(&frame) {
                    seen = true;
                    deadline = Instant::now() + grace;
                }
                frames.push(frame);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading from the member failed: {e}; frames: {frames:#?}"),
            }
        }
        assert!(seen, "the awaited frame never came; frames: {frames:#?}");
        frames
    }
}

/// A member renames itself while its connection to a newcomer is half made: its hello
/// (with the old name) has gone out, the newcomer's has not arrived yet. The newcomer
/// must still learn the new name, as everyone else does.
#[test]
fn a_member_connecting_during_a_rename_learns_the_new_name() {
    let port = free_port();
    let mut bo = Participant::on(addr(15, 2), "Bo", port);
    let hand_at = addr(15, 9);
    let mut hand = HandMember::dialed_at(hand_at, port);

    // Bo dialed, so Bo spoke first: its hello names it Bo.
    let first = hand.frames_until(|f| matches!(f, Frame::Hello { .. }), Duration::ZERO);
    assert!(
        matches!(&first[..], [Frame::Hello { name, .. }] if name == "Bo"),
        "{first:#?}"
    );

    // Now Bo renames, before our hello completes the connection.
    bo.node.rename("Bobby").expect("a valid name");
    bo.expect_event("its own rename", |e| matches!(e, Event::Renamed { .. }));
    hand.hello();
    bo.expect_joined(&Member {
        name: "Hand".into(),
        addr: hand_at,
    });
    bo.send("after the rename");

    let frames = hand.frames_until(
        |f| matches!(f, Frame::Chat { text, .. } if text == "after the rename"),
        Duration::from_millis(1500),
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Rename { name } if name == "Bobby")),
        "Bo became Bobby before the connection was complete, and never told us: we \
         would show its messages as Bo's for as long as the connection lasts. Frames \
         after the hellos: {frames:#?}"
    );
}

/// The acceptor of a connection answers the dialer's hello with its own, and the
/// dialer refuses any other frame before it (PROTOCOL.md, section 2). So nothing the
/// acceptor's other threads send (a message, a rename, a private line) may reach a
/// newcomer ahead of that hello, however busy the chat is while it joins.
///
/// The test is the newcomer, many times over, while the member chats without pause.
/// A std `TcpStream` cannot choose its source address, so these connections come from
/// 127.0.0.1, the kernel's choice for a loopback destination; only this test uses the
/// member's port, so they meet nobody else's member.
#[test]
fn a_newcomer_hears_the_hello_before_any_message() {
    const NEWCOMERS: u64 = 100;
    let port = free_port();
    let bo_at = addr(16, 2);
    let (bo, events) = Node::start(Config {
        port,
        ..Config::new(bo_at, "Bo")
    })
    .expect("start Bo");
    // Bo's own messages come back as events: keep taking them, or Bo would wait.
    let drain = thread::spawn(move || events.into_iter().count());
    let chatting = StopOnDrop(Arc::new(AtomicBool::new(true)));
    let chatter = {
        let (bo, chatting) = (bo.clone(), chatting.0.clone());
        thread::spawn(move || {
            while chatting.load(Ordering::Relaxed) {
                let _ = bo.send("busy, busy");
            }
        })
    };

    let mut out_of_order = None;
    for newcomer in 0..NEWCOMERS {
        let mut stream = TcpStream::connect((bo_at, port)).expect("connect to Bo");
        stream
            .set_read_timeout(Some(EVENT_TIMEOUT))
            .expect("a read timeout");
        let hello = Frame::Hello {
            version: PROTOCOL_VERSION,
            instance: 0x7e57_0000 + newcomer,
            tcp_port: p2pchat::tuning::DEFAULT_PORT,
            name: format!("Newcomer {newcomer}"),
            room: "lobby".into(),
        };
        stream.write_all(&hello.encode()).expect("send our hello");
        let mut buffer = Vec::new();
        let first = loop {
            if let Some((frame, _)) = decode_frame(&buffer).expect("Bo sends valid frames") {
                break frame;
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = stream
                .read(&mut chunk)
                .expect("Bo answers within the timeout");
            assert!(read > 0, "Bo closed the connection instead of answering");
            buffer.extend_from_slice(&chunk[..read]);
        };
        if !matches!(first, Frame::Hello { .. }) {
            out_of_order = Some((newcomer, first));
            break;
        }
    }
    drop(chatting);
    chatter.join().expect("the chatting thread");
    bo.leave();
    drain.join().expect("the draining thread");
    if let Some((newcomer, first)) = out_of_order {
        panic!(
            "newcomer {newcomer} got {first:?} before Bo's hello: a real member would \
             refuse the connection (\"sent Chat before saying hello\") and miss the message"
        );
    }
}

/// A flag that is set while it lives: a thread looping on it stops when the test ends,
/// by success or by panic.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}
