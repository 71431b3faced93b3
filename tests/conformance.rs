//! PROTOCOL.md, rule by rule, against a real member.
//!
//! Each test drives an in-process member (the victim) over real sockets with frames
//! built here byte by byte **from the spec's words**, not with the library's encoder: if
//! the code and PROTOCOL.md drift apart, these tests notice. Every limit is tried
//! exactly at its value and one past it.
//!
//! Raw peers connect from their own 127.0.B.x address ([`host`]), bound before
//! connecting as a real member does, so the victim sees each as a different member.
#![cfg(any(target_os = "linux", windows))]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::ops::{Deref, DerefMut};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use p2pchat::Event;

use common::clock::now_ms;
use common::hosts::host;
use common::participant::Participant;
use common::{EVENT_TIMEOUT, free_port};

// ---- The spec's bytes -------------------------------------------------------------

const VERSION: u8 = 2;

/// "A text field is a u16 byte count followed by that many bytes of UTF-8."
fn text(value: &str) -> Vec<u8> {
    let mut bytes = (value.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(value.as_bytes());
    bytes
}

/// "length u32: bytes that follow (type + payload)", then the type, then the payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(payload);
    bytes
}

/// "version u8, instance u64, tcp_port u16, name, room" (the port is not checked by the
/// receiver: it only passes it on in member lists).
fn hello(instance: u64, name: &str, room: &str) -> Vec<u8> {
    let mut payload = vec![VERSION];
    payload.extend_from_slice(&instance.to_be_bytes());
    payload.extend_from_slice(&24242u16.to_be_bytes());
    payload.extend(text(name));
    payload.extend(text(room));
    frame(0x01, &payload)
}

fn chat(seq: u64, sent_at_ms: i64, message: &str) -> Vec<u8> {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend_from_slice(&sent_at_ms.to_be_bytes());
    payload.extend(text(message));
    frame(0x02, &payload)
}

fn hooray(sent_at_ms: i64) -> Vec<u8> {
    frame(0x03, &sent_at_ms.to_be_bytes())
}

fn history_request(request: u32) -> Vec<u8> {
    frame(0x04, &request.to_be_bytes())
}

struct Entry<'a> {
    origin: Ipv4Addr,
    instance: u64,
    seq: u64,
    sent_at_ms: i64,
    name: &'a str,
    text: &'a str,
}

fn history_entry(request: u32, entry: &Entry) -> Vec<u8> {
    let mut payload = request.to_be_bytes().to_vec();
    payload.extend_from_slice(&entry.origin.octets());
    payload.extend_from_slice(&entry.instance.to_be_bytes());
    payload.extend_from_slice(&entry.seq.to_be_bytes());
    payload.extend_from_slice(&entry.sent_at_ms.to_be_bytes());
    payload.extend(text(entry.name));
    payload.extend(text(entry.text));
    frame(0x05, &payload)
}

fn history_end(request: u32) -> Vec<u8> {
    frame(0x06, &request.to_be_bytes())
}

fn heartbeat() -> Vec<u8> {
    frame(0x07, &[])
}

fn private(seq: u64, sent_at_ms: i64, message: &str) -> Vec<u8> {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend_from_slice(&sent_at_ms.to_be_bytes());
    payload.extend(text(message));
    frame(0x09, &payload)
}

fn rename(name: &str) -> Vec<u8> {
    frame(0x0a, &text(name))
}

fn announcement(port: u16, instance: u64, name: &str, room: &str) -> Vec<u8> {
    let mut bytes = b"P2PC".to_vec();
    bytes.push(VERSION);
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes.extend_from_slice(&instance.to_be_bytes());
    bytes.extend(text(name));
    bytes.extend(text(room));
    bytes
}

// ---- A member and hand-driven peers -----------------------------------------------

/// The member under test, and what it reports: a [`Participant`] (which it derefs
/// to) and the address it accepts connections on.
struct Victim {
    member: Participant,
    addr: SocketAddrV4,
}

impl Deref for Victim {
    type Target = Participant;

    fn deref(&self) -> &Participant {
        &self.member
    }
}

impl DerefMut for Victim {
    fn deref_mut(&mut self) -> &mut Participant {
        &mut self.member
    }
}

impl Victim {
    fn start(last_octet: u8) -> Victim {
        let host = host(last_octet);
        let port = free_port();
        Victim {
            member: Participant::on(host, "Vic", port),
            addr: SocketAddrV4::new(host, port),
        }
    }

    /// Waits for a warning containing `needle`, and returns it.
    #[track_caller]
    fn expect_warning(&mut self, needle: &str) -> String {
        match self.inbox.expect_event(
            |e| matches!(e, Event::Warning(w) if w.contains(needle)),
            EVENT_TIMEOUT,
        ) {
            Event::Warning(text) => text,
            other => unreachable!("{other:?}"),
        }
    }

    #[track_caller]
    fn expect_joined(&mut self, name: &str) {
        self.inbox.expect_event(
            |e| matches!(e, Event::Joined(m) if m.name == name),
            EVENT_TIMEOUT,
        );
    }
}

/// One end of a TCP connection to the victim, driven frame by frame.
struct RawPeer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawPeer {
    /// Connects from `from` (bound first, as a member does) to the victim.
    fn connect(from: Ipv4Addr, victim: &Victim) -> RawPeer {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        socket
            .bind(&SockAddr::from(SocketAddrV4::new(from, 0)))
            .expect("bind the raw peer");
        socket
            .connect_timeout(&SockAddr::from(victim.addr), EVENT_TIMEOUT)
            .expect("connect to the victim");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set a read timeout");
        RawPeer {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Connects and completes the hello exchange as `name`; the victim shows it joined.
    fn join(from: Ipv4Addr, victim: &mut Victim, name: &str) -> RawPeer {
        let mut peer = RawPeer::connect(from, victim);
        peer.send(&hello(u64::from(u32::from(from)), name, "lobby"));
        let (kind, _) = peer.next_frame().expect("the victim's hello");
        assert_eq!(kind, 0x01, "the acceptor's first frame is its hello");
        peer.send(&heartbeat());
        victim.expect_joined(name);
        peer
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the victim");
    }

    /// The next frame (type, payload), skipping heartbeats; `None` if the victim
    /// closed the connection.
    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if self.buffer.len() >= 5 {
                let length = u32::from_be_bytes([
                    self.buffer[0],
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                ]) as usize;
                if self.buffer.len() >= 4 + length {
                    let frame: Vec<u8> = self.buffer.drain(..4 + length).collect();
                    if frame[4] == 0x07 {
                        continue;
                    }
                    return Some((frame[4], frame[5..].to_vec()));
                }
            }
            assert!(Instant::now() < deadline, "no frame from the victim");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // Keep our side alive while we wait.
                    let _ = self.stream.write_all(&heartbeat());
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits until the victim closes the connection (frames before that are skipped).
    #[track_caller]
    fn expect_closed(&mut self, after: &str) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while Instant::now() < deadline {
            if self.next_frame().is_none() {
                return;
            }
        }
        panic!("the victim kept the connection open after {after}");
    }
}

// ---- Names -----------------------------------------------------------------------

#[test]
fn a_name_of_32_characters_of_4_bytes_is_accepted() {
    let mut victim = Victim::start(1);
    let longest = "😀".repeat(32); // 32 characters, 128 bytes
    RawPeer::join(host(101), &mut victim, &longest);
}

#[test]
fn a_name_of_33_characters_is_refused_with_the_rule() {
    let mut victim = Victim::start(2);
    let mut peer = RawPeer::connect(host(102), &victim);
    peer.send(&hello(1, &"x".repeat(33), "lobby"));
    peer.expect_closed("a hello with a 33-character name");
    let warning = victim.expect_warning(&host(102).to_string());
    assert!(
        warning.contains("the name has 33 characters, the most is 32"),
        "{warning}"
    );
}

#[test]
fn an_empty_name_or_one_with_a_control_character_is_refused() {
    let mut victim = Victim::start(3);
    for (octet, name, rule) in [
        (103, "", "the name is empty"),
        (104, "tab\there", "control characters"),
        (105, "\u{202E}reversed", "control characters"),
    ] {
        let mut peer = RawPeer::connect(host(octet), &victim);
        peer.send(&hello(1, name, "lobby"));
        peer.expect_closed(&format!("a hello named {name:?}"));
        let warning = victim.expect_warning(&host(octet).to_string());
        assert!(warning.contains(rule), "{name:?}: {warning}");
    }
    assert_eq!(victim.inbox.count(|e| matches!(e, Event::Joined(_))), 0);
}

#[test]
fn a_room_follows_the_same_rule_as_a_name() {
    let mut victim = Victim::start(4);
    let mut peer = RawPeer::connect(host(106), &victim);
    peer.send(&hello(1, "Ro", &"r".repeat(33)));
    peer.expect_closed("a hello with a 33-character room");
    let warning = victim.expect_warning(&host(106).to_string());
    assert!(warning.contains("33 characters"), "{warning}");
}

#[test]
fn a_rename_to_a_name_that_breaks_the_rule_closes_the_connection() {
    let mut victim = Victim::start(5);
    let mut peer = RawPeer::join(host(107), &mut victim, "Ren");
    peer.send(&rename(""));
    peer.expect_closed("a rename to an empty name");
    victim.expect_warning("the name is empty");
    victim.inbox.expect_event(
        |e| matches!(e, Event::Left(m) if m.name == "Ren"),
        EVENT_TIMEOUT,
    );
    assert_eq!(
        victim.inbox.count(|e| matches!(e, Event::Renamed { .. })),
        0
    );
}

// ---- Limits ------------------------------------------------------------------------

#[test]
fn a_message_of_4096_bytes_is_shown_and_one_of_4097_refused() {
    let mut victim = Victim::start(6);
    let mut peer = RawPeer::join(host(108), &mut victim, "Len");
    let largest = "m".repeat(4096);
    peer.send(&chat(1, now_ms(), &largest));
    victim.inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text.len() == 4096),
        EVENT_TIMEOUT,
    );
    peer.send(&chat(2, now_ms(), &"m".repeat(4097)));
    peer.expect_closed("a 4097-byte message");
    let warning = victim.expect_warning(&host(108).to_string());
    assert!(warning.contains("longer than 4096 bytes"), "{warning}");
}

#[test]
fn a_frame_of_16384_bytes_is_read_and_one_of_16385_refused_unread() {
    let mut victim = Victim::start(7);
    // At the limit: the length is accepted and the body read; the body's text then
    // breaks the message limit, which the warning names.
    let mut at_limit = RawPeer::join(host(109), &mut victim, "Big");
    let filler = "f".repeat(16384 - 4 - 1 - 8 - 8 - 2);
    let frame = chat(1, now_ms(), &filler);
    assert_eq!(frame.len(), 16384);
    at_limit.send(&frame);
    at_limit.expect_closed("a 16384-byte frame with a text over its limit");
    let warning = victim.expect_warning(&host(109).to_string());
    assert!(warning.contains("longer than 4096 bytes"), "{warning}");

    // One past it: refused from the length alone, before any body arrives.
    let mut past_limit = RawPeer::join(host(110), &mut victim, "Bigger");
    past_limit.send(&(16385u32 - 4).to_be_bytes());
    past_limit.expect_closed("a length prefix announcing 16385 bytes");
    let warning = victim.expect_warning(&host(110).to_string());
    assert!(warning.contains("frame of 16385 bytes"), "{warning}");
}

// ---- The conversation --------------------------------------------------------------

#[test]
fn a_frame_before_the_hello_closes_the_connection() {
    let mut victim = Victim::start(8);
    let mut peer = RawPeer::connect(host(111), &victim);
    peer.send(&chat(1, now_ms(), "too early"));
    peer.expect_closed("a chat frame before the hello");
    victim.expect_warning("before saying hello");
}

#[test]
fn a_second_hello_closes_the_connection() {
    let mut victim = Victim::start(9);
    let mut peer = RawPeer::join(host(112), &mut victim, "Twice");
    peer.send(&hello(1, "Twice", "lobby"));
    peer.expect_closed("a second hello");
    victim.expect_warning("said hello a second time");
}

#[test]
fn message_numbers_must_grow_on_a_connection() {
    let mut victim = Victim::start(10);
    let mut peer = RawPeer::join(host(113), &mut victim, "Stuck");
    peer.send(&chat(5, now_ms(), "first"));
    peer.send(&chat(5, now_ms(), "second, same number"));
    peer.expect_closed("a repeated message number");
    let warning = victim.expect_warning(&host(113).to_string());
    assert!(
        warning.contains("numbered a message 5 after message 5"),
        "{warning}"
    );
    assert_eq!(
        victim
            .inbox
            .count(|e| matches!(e, Event::Message(m) if m.text == "first")),
        1
    );
}

/// Asks `asker` (a raw peer) the victim for its history; returns the (origin, seq) of
/// every entry in the answer.
fn ask_history(asker: &mut RawPeer, request: u32) -> Vec<(Ipv4Addr, u64)> {
    asker.send(&history_request(request));
    let mut entries = Vec::new();
    loop {
        let (kind, payload) = asker.next_frame().expect("the victim's history answer");
        match kind {
            0x05 => {
                assert_eq!(payload[..4], request.to_be_bytes());
                let origin = Ipv4Addr::new(payload[4], payload[5], payload[6], payload[7]);
                let seq = u64::from_be_bytes(payload[16..24].try_into().expect("8 bytes"));
                entries.push((origin, seq));
            }
            0x06 => return entries,
            _ => {}
        }
    }
}

#[test]
fn hooray_and_private_messages_are_never_in_the_history() {
    let mut victim = Victim::start(11);
    let mut peer = RawPeer::join(host(114), &mut victim, "Cheer");
    peer.send(&hooray(now_ms()));
    peer.send(&private(1, now_ms(), "just for you"));
    peer.send(&chat(1, now_ms(), "for everyone"));
    victim.inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text == "for everyone"),
        EVENT_TIMEOUT,
    );
    assert_eq!(ask_history(&mut peer, 1), [(host(114), 1)]);
}

/// Answers the victim's next history request from `replier` with `entries`.
fn answer_history(replier: &mut RawPeer, entries: &[Entry]) {
    let request = loop {
        let (kind, payload) = replier.next_frame().expect("a history request");
        if kind == 0x04 {
            break u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
        }
    };
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.extend(history_entry(request, entry));
    }
    bytes.extend(history_end(request));
    replier.send(&bytes);
}

#[test]
fn a_reply_cannot_make_a_member_forget_what_it_saw_itself() {
    let mut victim = Victim::start(12);
    let mut liar = RawPeer::join(host(115), &mut victim, "Liar");
    // The victim's log fills with its own messages, first-hand.
    for i in 0..1000 {
        victim.node.send(&format!("real {i}")).expect("send");
    }
    // A thousand entries dated year 9999, and a thousand from invented members.
    let year_9999 = 253_402_300_799_000;
    let junk: Vec<Entry> = (0..2000u64)
        .map(|i| Entry {
            origin: Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1),
            instance: 1,
            seq: i + 1,
            sent_at_ms: if i < 1000 { year_9999 } else { now_ms() },
            name: "Junk",
            text: "junk",
        })
        .collect();
    let node = victim.node.clone();
    let asking = thread::spawn(move || node.history());
    answer_history(&mut liar, &junk[..1000]);
    let history = asking.join().expect("the history call");
    let real: Vec<&str> = history
        .iter()
        .map(|e| e.message.text.as_str())
        .filter(|t| t.starts_with("real "))
        .collect();
    assert_eq!(real.len(), 1000, "first-hand messages were forgotten");
    assert_eq!(history.len(), 1000, "junk got in: {}", history.len());
    victim.expect_warning("dated more than 10 minutes ahead");

    let node = victim.node.clone();
    let asking = thread::spawn(move || node.history());
    answer_history(&mut liar, &junk[1000..]);
    let history = asking.join().expect("the history call");
    assert!(
        history.iter().all(|e| e.message.text != "junk"),
        "a reply pushed out first-hand messages"
    );
}

#[test]
fn relayed_claims_are_marked_and_never_handed_on() {
    let mut victim = Victim::start(13);
    let mut relayer = RawPeer::join(host(116), &mut victim, "Relay");
    let mut asker = RawPeer::join(host(117), &mut victim, "Asker");
    relayer.send(&chat(1, now_ms(), "relayer's own, live"));
    victim.inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text == "relayer's own, live"),
        EVENT_TIMEOUT,
    );
    let someone_else = host(200);
    let entries = [
        Entry {
            origin: host(116),
            instance: u64::from(u32::from(host(116))),
            seq: 0,
            sent_at_ms: now_ms() - 60_000,
            name: "Relay",
            text: "relayer's own, earlier",
        },
        Entry {
            origin: someone_else,
            instance: 9,
            seq: 1,
            sent_at_ms: now_ms() - 30_000,
            name: "Ghost",
            text: "claimed for someone else",
        },
        Entry {
            origin: victim.addr.ip().to_owned(),
            instance: 1,
            seq: 77,
            sent_at_ms: now_ms() - 20_000,
            name: "Vic",
            text: "claimed for the victim",
        },
    ];
    let node = victim.node.clone();
    let asking = thread::spawn(move || node.history());
    answer_history(&mut relayer, &entries);
    let history = asking.join().expect("the history call");
    let marks: Vec<(&str, Option<Ipv4Addr>)> = history
        .iter()
        .map(|e| (e.message.text.as_str(), e.relayed_by))
        .collect();
    assert_eq!(
        marks,
        [
            ("relayer's own, earlier", None),
            ("claimed for someone else", Some(host(116))),
            ("claimed for the victim", Some(host(116))),
            ("relayer's own, live", None),
        ]
    );
    // Another member asking the victim gets only what the victim saw itself.
    assert_eq!(ask_history(&mut asker, 5), [(host(116), 1)]);
}

// ---- Announcements -------------------------------------------------------------------

/// Broadcasts `datagram` on loopback to the victim's port, from `from`.
fn broadcast(from: Ipv4Addr, victim: &Victim, datagram: &[u8]) {
    let socket = UdpSocket::bind((from, 0)).expect("bind a UDP socket");
    socket.set_broadcast(true).expect("SO_BROADCAST");
    socket
        .send_to(datagram, (Ipv4Addr::BROADCAST, victim.addr.port()))
        .expect("broadcast");
}

/// Whether the victim dials `at` (listening on the chat port) within `wait`.
fn dialed(listener: &TcpListener, wait: Duration) -> bool {
    listener.set_nonblocking(true).expect("non-blocking accept");
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if listener.accept().is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn the_largest_legal_announcement_is_heard_and_a_bad_name_is_ignored() {
    let victim = Victim::start(14);
    let port = victim.addr.port();
    let longest = "😀".repeat(32);
    let largest = announcement(port, 42, &longest, "lobby");
    assert_eq!(largest.len(), 4 + 1 + 2 + 8 + 2 + 128 + 2 + 5);
    let heard = host(118);
    let listener = TcpListener::bind((heard, port)).expect("listen as the announcer");
    broadcast(heard, &victim, &largest);
    assert!(
        dialed(&listener, EVENT_TIMEOUT),
        "the victim did not dial an announcer with a 32-character name"
    );

    let ignored = host(119);
    let listener = TcpListener::bind((ignored, port)).expect("listen as the announcer");
    broadcast(
        ignored,
        &victim,
        &announcement(port, 43, &"x".repeat(33), "lobby"),
    );
    // A good announcement sent after it, from another address, is heard: by then the
    // bad one has been dealt with.
    let control = host(120);
    let control_listener = TcpListener::bind((control, port)).expect("listen");
    broadcast(control, &victim, &announcement(port, 44, "Fine", "lobby"));
    assert!(
        dialed(&control_listener, EVENT_TIMEOUT),
        "the control was not dialed"
    );
    assert!(
        !dialed(&listener, Duration::from_millis(500)),
        "the victim dialed an announcer whose name breaks the rule"
    );
}

// ---- Order -------------------------------------------------------------------------

#[test]
fn a_burst_keeps_its_send_order_and_a_full_log_keeps_the_newest() {
    const BURST: u64 = 3000;
    let mut victim = Victim::start(15);
    let mut listener = RawPeer::join(host(121), &mut victim, "Listener");
    for i in 1..=BURST {
        victim.node.send(&format!("burst {i}")).expect("send");
    }
    let numbers: Vec<u64> = victim
        .node
        .history()
        .iter()
        .map(|e| e.message.id.seq)
        .collect();
    let newest: Vec<u64> = (BURST - 999..=BURST).collect();
    assert!(
        numbers == newest,
        "the history shows {} messages, first {:?}, out of order or not the newest",
        numbers.len(),
        numbers.first()
    );
    // What the others receive is dated in send order too.
    let mut previous = i64::MIN;
    for _ in 0..BURST {
        // Member lists (0x0b) come and go on their own; chat frames are what counts.
        let (kind, payload) = loop {
            match listener.next_frame().expect("a chat frame") {
                (0x0b, _) => continue,
                frame => break frame,
            }
        };
        assert_eq!(kind, 0x02);
        let sent_at = i64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
        assert!(sent_at >= previous, "a later message is dated earlier");
        assert!(
            sent_at <= now_ms() + 1000,
            "a message dated more than a second ahead"
        );
        previous = sent_at;
    }
}

#[test]
fn a_message_number_repeated_on_a_new_connection_is_shown_once_and_reported() {
    let mut victim = Victim::start(16);
    let mut first = RawPeer::join(host(122), &mut victim, "Again");
    first.send(&chat(1, now_ms(), "only once"));
    victim.inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text == "only once"),
        EVENT_TIMEOUT,
    );
    // The same run (instance) connects again, in the same direction: it replaces the
    // first connection, and repeats its message 1.
    let mut second = RawPeer::connect(host(122), &victim);
    second.send(&hello(u64::from(u32::from(host(122))), "Again", "lobby"));
    assert_eq!(second.next_frame().map(|(kind, _)| kind), Some(0x01));
    second.send(&chat(1, now_ms(), "only once"));
    victim.expect_warning("sent message 1 again");
    assert_eq!(
        victim
            .inbox
            .count(|e| matches!(e, Event::Message(m) if m.text == "only once")),
        1
    );
    drop(first);
}

#[test]
fn an_announcer_that_cannot_be_reached_is_reported_once_per_streak() {
    let mut victim = Victim::start(17);
    let port = victim.addr.port();
    // Nobody listens at these addresses: every dial is refused. The same address
    // announces five times (spaced past the redial interval), then fifty others at once.
    let dead = host(123);
    for instance in 0..5 {
        broadcast(
            dead,
            &victim,
            &announcement(port, 100 + instance, "Dead", "lobby"),
        );
        thread::sleep(p2pchat::tuning::REDIAL_INTERVAL + Duration::from_millis(100));
    }
    for octet in 130..180 {
        broadcast(
            host(octet),
            &victim,
            &announcement(port, 7, "Forged", "lobby"),
        );
    }
    thread::sleep(Duration::from_secs(2));
    victim.inbox.poll();
    let warnings: Vec<String> = victim
        .inbox
        .log
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) if w.starts_with("cannot connect to") => Some(w.clone()),
            _ => None,
        })
        .collect();
    let about_dead = warnings
        .iter()
        .filter(|w| w.contains(&format!("{},", host(123))))
        .count();
    assert_eq!(about_dead, 1, "{warnings:#?}");
    assert!(
        warnings.len() <= 4,
        "a flood of unreachable announcers became a flood of warnings: {warnings:#?}"
    );
    assert!(
        warnings[0].contains("refused the connection"),
        "{warnings:#?}"
    );
}

// ---- Catching up after a cut (section 7) ------------------------------------------

/// "origin 4 bytes IPv4, instance u64, seq u64, sent_at i64, sender name, text"
fn catch_up_entry(entry: &Entry) -> Vec<u8> {
    let mut payload = entry.origin.octets().to_vec();
    payload.extend_from_slice(&entry.instance.to_be_bytes());
    payload.extend_from_slice(&entry.seq.to_be_bytes());
    payload.extend_from_slice(&entry.sent_at_ms.to_be_bytes());
    payload.extend(text(entry.name));
    payload.extend(text(entry.text));
    frame(0x0d, &payload)
}

/// "unavailable u32"
fn catch_up_end(unavailable: u32) -> Vec<u8> {
    frame(0x0f, &unavailable.to_be_bytes())
}

impl RawPeer {
    /// The same run connects again after a cut: hello, the victim's hello, our
    /// confirmation, then the victim's catch-up request.
    fn come_back(from: Ipv4Addr, victim: &mut Victim, name: &str) -> RawPeer {
        RawPeer::come_back_asked(from, victim, name).0
    }

    /// [`RawPeer::come_back`], also returning the catch-up request's `have`:
    /// (origin, instance, seq) for every sender the victim claims.
    fn come_back_asked(
        from: Ipv4Addr,
        victim: &mut Victim,
        name: &str,
    ) -> (RawPeer, Vec<(Ipv4Addr, u64, u64)>) {
        let mut peer = RawPeer::connect(from, victim);
        peer.send(&hello(u64::from(u32::from(from)), name, "lobby"));
        assert_eq!(peer.next_frame().map(|(kind, _)| kind), Some(0x01));
        peer.send(&heartbeat());
        victim.expect_joined(name);
        // The member list (0b) may come first: the request is what we are after.
        let request = loop {
            match peer.next_frame() {
                Some((0x0b, _)) => continue,
                Some((0x0c, payload)) => break payload,
                other => panic!("a returning run is asked to catch up, got {other:?}"),
            }
        };
        // "privates_received u64, count u16, then count × (origin, instance u64, seq u64)"
        let have = request[10..]
            .chunks_exact(20)
            .map(|entry| {
                let origin = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
                let number =
                    |at: usize| u64::from_be_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
                (origin, number(4), number(12))
            })
            .collect();
        (peer, have)
    }
}

#[test]
fn a_gap_that_relayed_lines_leave_is_counted_by_the_member_that_made_it() {
    let mut victim = Victim::start(20);
    let (ann_addr, bob_addr) = (host(128), host(129));
    let ann_instance = u64::from(u32::from(ann_addr));
    // Ann says one line, then both are cut off.
    let mut ann = RawPeer::join(ann_addr, &mut victim, "Ann");
    ann.send(&chat(1, now_ms(), "before the cut"));
    victim.inbox.expect_event(
        |e| matches!(e, Event::Message(m) if m.text == "before the cut"),
        EVENT_TIMEOUT,
    );
    let bob = RawPeer::join(bob_addr, &mut victim, "Bob");
    for (peer, name) in [(ann, "Ann"), (bob, "Bob")] {
        drop(peer);
        victim.inbox.expect_event(
            |e| matches!(e, Event::Left(m) if m.name == name),
            EVENT_TIMEOUT,
        );
    }
    // Bob comes back first and relays what he still has of Ann's: from her 201st line
    // on (his log forgot 2 to 200).
    let mut bob = RawPeer::come_back(bob_addr, &mut victim, "Bob");
    bob.send(&catch_up_entry(&Entry {
        origin: ann_addr,
        instance: ann_instance,
        seq: 201,
        sent_at_ms: now_ms() - 1000,
        name: "Ann",
        text: "relayed by Bob",
    }));
    bob.send(&catch_up_end(0));
    victim.inbox.expect_event(
        |e| matches!(e, Event::CaughtUp { messages, .. } if messages.iter().any(|m| m.text == "relayed by Bob")),
        EVENT_TIMEOUT,
    );
    // Ann comes back: the victim must not claim her line 201, or she could not tell it
    // that lines 2 to 200 are gone. It claims what it had at the cut, line 1.
    let (mut ann, have) = RawPeer::come_back_asked(ann_addr, &mut victim, "Ann");
    let claimed: Vec<u64> = have
        .iter()
        .filter(|(origin, instance, _)| *origin == ann_addr && *instance == ann_instance)
        .map(|(_, _, seq)| *seq)
        .collect();
    assert_eq!(
        claimed,
        [1],
        "the victim's claim on Ann's own lines: {have:?}"
    );
    ann.send(&catch_up_end(199));
    victim.inbox.expect_event(
        |e| matches!(e, Event::CaughtUp { unavailable, .. } if unavailable.iter().any(|(m, n)| m.name == "Ann" && *n == 199)),
        EVENT_TIMEOUT,
    );
}

#[test]
fn answers_to_catch_ups_under_way_are_shown_together_once_each_in_send_order() {
    let mut victim = Victim::start(18);
    let (ann_addr, bob_addr) = (host(124), host(125));
    for (addr, name) in [(ann_addr, "Ann"), (bob_addr, "Bob")] {
        let peer = RawPeer::join(addr, &mut victim, name);
        // The connection ends without a goodbye: a cut, as far as the victim knows.
        drop(peer);
        victim.inbox.expect_event(
            |e| matches!(e, Event::Left(m) if m.name == name),
            EVENT_TIMEOUT,
        );
    }
    // Both come back at once, as after the victim's own cable was out. While they
    // were apart Ann said "one" and "three", Bob "two" in between.
    let mut ann = RawPeer::come_back(ann_addr, &mut victim, "Ann");
    let mut bob = RawPeer::come_back(bob_addr, &mut victim, "Bob");
    let start = now_ms() - 5000;
    let line = |origin: Ipv4Addr, name, seq, sent_at_ms, text| Entry {
        origin,
        instance: u64::from(u32::from(origin)),
        seq,
        sent_at_ms,
        name,
        text,
    };
    let one = line(ann_addr, "Ann", 1, start, "one");
    let two = line(bob_addr, "Bob", 1, start + 1000, "two");
    let three = line(ann_addr, "Ann", 2, start + 2000, "three");
    // Bob answers first, with his line; Ann a moment later, with hers and Bob's.
    bob.send(&catch_up_entry(&two));
    bob.send(&catch_up_end(0));
    thread::sleep(Duration::from_millis(300));
    for entry in [&one, &two, &three] {
        ann.send(&catch_up_entry(entry));
    }
    ann.send(&catch_up_end(0));

    victim.inbox.expect_event(
        |e| matches!(e, Event::CaughtUp { messages, .. } if messages.iter().any(|m| m.text == "three")),
        EVENT_TIMEOUT,
    );
    thread::sleep(Duration::from_millis(500));
    victim.inbox.poll();
    let shown: Vec<&str> = victim
        .inbox
        .log
        .iter()
        .filter_map(|e| match e {
            Event::CaughtUp { messages, .. } => Some(messages),
            _ => None,
        })
        .flatten()
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        shown,
        ["one", "two", "three"],
        "late lines from two answers are shown once each, in send order"
    );
}

#[test]
fn a_catch_up_that_never_ends_holds_up_the_others_only_for_a_while() {
    let mut victim = Victim::start(19);
    let (ann_addr, bob_addr) = (host(126), host(127));
    for (addr, name) in [(ann_addr, "Ann"), (bob_addr, "Bob")] {
        drop(RawPeer::join(addr, &mut victim, name));
        victim.inbox.expect_event(
            |e| matches!(e, Event::Left(m) if m.name == name),
            EVENT_TIMEOUT,
        );
    }
    // Ann is asked and never answers (a stuck or hostile member); Bob answers.
    let _ann = RawPeer::come_back(ann_addr, &mut victim, "Ann");
    let mut bob = RawPeer::come_back(bob_addr, &mut victim, "Bob");
    bob.send(&catch_up_entry(&Entry {
        origin: bob_addr,
        instance: u64::from(u32::from(bob_addr)),
        seq: 1,
        sent_at_ms: now_ms() - 1000,
        name: "Bob",
        text: "still shown",
    }));
    bob.send(&catch_up_end(0));
    victim.inbox.expect_event(
        |e| matches!(e, Event::CaughtUp { messages, .. } if messages.first().is_some_and(|m| m.text == "still shown")),
        EVENT_TIMEOUT,
    );
}
