//! Hostile and broken input, on loopback: what a stranger's script can send to a member,
//! and proof that the member keeps running and chatting afterwards.
//!
//! Every test starts two real members on a port of its own: the *victim* (127.0.B.2,
//! in this file's block of addresses), which is attacked, and a *friend* (127.0.B.3),
//! an ordinary member. After the attack
//! they exchange a message each way ([`Chat::assert_still_chatting`]): the victim must
//! still be running, still hear the chat, still be heard, and must not have dropped the
//! friend.
//!
//! The attacker is the test itself. std cannot bind a TCP socket before connecting, so
//! its connections come from 127.0.0.1, the source address the kernel picks for a
//! loopback destination; that is why no member here uses 127.0.0.1. Valid frames and
//! announcements come from the crate's own encoder, so the tests follow the wire format
//! as it evolves; everything broken (length prefixes, garbage, invalid UTF-8) is made
//! by hand from PROTOCOL.md.
#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::clock::now_ms;
use common::hosts::host;
use common::process::{ChatProcess, member};
use common::{EVENT_TIMEOUT, free_port, said};
use p2pchat::protocol::{Announcement, Frame, PROTOCOL_VERSION, decode_frame};
use p2pchat::tuning::{DEFAULT_ROOM, MAX_CONNECTIONS, REDIAL_INTERVAL};

/// The members' addresses: host numbers in this file's block ([`host`]).
const VICTIM: u8 = 2;
const FRIEND: u8 = 3;
const LATECOMER: u8 = 4;

/// The largest frame PROTOCOL.md allows, length prefix included.
const MAX_FRAME_BYTES: usize = 16 * 1024;
/// The longest chat message PROTOCOL.md allows, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The type byte of a hello, the first byte after the length prefix.
const TYPE_HELLO: u8 = 0x01;

#[test]
fn random_bytes_on_the_tcp_port_do_not_hurt() {
    let chat = Chat::start();
    let mut rng = XorShift(0x5eed_0001);
    for _ in 0..16 {
        let mut stranger = chat.connect();
        // Writes fail once the victim has closed the connection: that is the point.
        let _ = stranger.write_all(&rng.bytes(64 * 1024));
        chat.assert_closes(&mut stranger, "random bytes instead of a hello");
    }
    // The same after a valid hello, where the frame decoder rather than the hello check
    // meets the garbage.
    let mut member = chat.join_as("Noise");
    let _ = member.write_all(&rng.bytes(64 * 1024));
    chat.assert_closes(&mut member, "random bytes after its hello");
    chat.assert_still_chatting("random bytes");
}

#[test]
fn a_huge_length_prefix_is_refused() {
    let chat = Chat::start();
    for length in [u32::MAX, 0x7fff_ffff, MAX_FRAME_BYTES as u32 - 3] {
        let mut stranger = chat.connect();
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[TYPE_HELLO, 1, 2, 3]);
        let _ = stranger.write_all(&bytes);
        chat.assert_closes(&mut stranger, &format!("a length prefix of {length}"));
    }
    let mut member = chat.join_as("Bloat");
    let _ = member.write_all(&u32::MAX.to_be_bytes());
    chat.assert_closes(&mut member, "a huge length prefix after its hello");
    wait_for_stderr(&chat.victim, "-byte limit");
    chat.assert_still_chatting("huge length prefixes");
}

#[test]
fn an_http_request_is_refused() {
    let chat = Chat::start();
    let mut browser = chat.connect();
    browser
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.2\r\nAccept: */*\r\n\r\n")
        .expect("send an HTTP request");
    let answer = chat.assert_closes(&mut browser, "an HTTP request");
    // The acceptor speaks only after a valid hello (PROTOCOL.md, "Hello exchange").
    assert!(
        answer.is_empty(),
        "the victim answered an HTTP request with {answer:?}"
    );
    chat.assert_still_chatting("an HTTP request");
}

#[test]
fn a_half_frame_then_silence_is_dropped_after_the_handshake_timeout() {
    let chat = Chat::start();
    let mut stranger = chat.connect();
    let whole = hello(next_instance(), "Half");
    stranger
        .write_all(&whole[..whole.len() / 2])
        .expect("send half a hello");
    let started = Instant::now();
    chat.assert_closes(&mut stranger, "half a hello and then silence");
    eprintln!(
        "half a hello then silence: closed after {:?}",
        started.elapsed()
    );
    wait_for_stderr(&chat.victim, "did not say hello");
    chat.assert_still_chatting("a half frame");
}

/// A slow-loris hello: the length prefix promises the largest frame, and the bytes come
/// one a second, each well within the handshake timeout of the one before. The deadline
/// is for the whole hello, so the victim must still give up on it.
#[test]
fn a_hello_trickled_byte_by_byte_is_dropped_at_the_handshake_deadline() {
    let chat = Chat::start();
    let mut stranger = chat.connect();
    let promised = (MAX_FRAME_BYTES - 4) as u32;
    let mut trickle = promised.to_be_bytes().to_vec();
    trickle.extend_from_slice(&[TYPE_HELLO, 1]);
    trickle.resize(MAX_FRAME_BYTES, 0);
    stranger
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("set a read timeout");
    let started = Instant::now();
    let mut sent = 0;
    let closed = loop {
        if started.elapsed() >= EVENT_TIMEOUT {
            break false;
        }
        if stranger.write_all(&trickle[sent..=sent]).is_err() {
            break true;
        }
        sent += 1;
        // Doubles as the one-second pause between bytes.
        match stranger.read(&mut [0u8; 64]) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => break true,
        }
    };
    assert!(
        closed,
        "a hello trickled at one byte a second ({sent} bytes so far) was still being \
         waited for after {EVENT_TIMEOUT:?}; the handshake timeout must bound the whole \
         hello, not each read\nvictim stderr:\n{}",
        chat.victim.stderr_lines().join("\n")
    );
    eprintln!(
        "trickled hello: closed after {:?} and {sent} bytes",
        started.elapsed()
    );
    chat.assert_still_chatting("a trickled hello");
}

#[test]
fn a_non_utf8_name_is_refused() {
    let chat = Chat::start();
    let mut stranger = chat.connect();
    stranger
        .write_all(&patched(
            hello(next_instance(), "Bad__name"),
            b"__",
            b"\xff\xfe",
        ))
        .expect("send a hello");
    let answer = chat.assert_closes(&mut stranger, "a hello with a non-UTF-8 name");
    assert!(
        answer.is_empty(),
        "the victim answered a hello with an invalid name: {answer:?}"
    );
    wait_for_stderr(&chat.victim, "UTF-8");
    chat.assert_still_chatting("a non-UTF-8 name");
    assert_eq!(
        chat.victim.count_lines(|line| line.contains("joined chat")),
        1,
        "only the friend may have joined:\n{}",
        chat.victim.stdout_lines().join("\n")
    );
}

#[test]
fn a_non_utf8_message_drops_only_its_sender() {
    let chat = Chat::start();
    let mut member = chat.join_as("Mangler");
    chat.victim
        .wait_for_line(|line| line == "Mangler joined chat", EVENT_TIMEOUT);
    member
        .write_all(&patched(
            chat_frame(1, "valid so far ## not any more"),
            b"##",
            b"\xc3\x28",
        ))
        .expect("send a chat frame");
    chat.assert_closes(&mut member, "a non-UTF-8 message");
    chat.victim
        .wait_for_line(|line| line == "Mangler left chat", EVENT_TIMEOUT);
    assert_eq!(
        chat.victim
            .count_lines(|line| line.contains("not any more")),
        0,
        "the invalid message was shown"
    );
    chat.assert_still_chatting("a non-UTF-8 message");
}

#[test]
fn hundreds_of_silent_connections_do_not_exhaust_the_node() {
    const SILENT: usize = 400;
    let chat = Chat::start();
    let pid = chat.victim.pid();
    let mut most_threads = proc_status(pid, "Threads:");
    let mut silent = Vec::new();
    let mut failed = 0;
    for opened in 0..SILENT {
        match TcpStream::connect_timeout(&chat.victim_addr().into(), Duration::from_secs(3)) {
            Ok(stream) => silent.push(stream),
            Err(_) => failed += 1,
        }
        if opened % 25 == 0 {
            most_threads = most_threads.max(proc_status(pid, "Threads:"));
        }
    }
    let refusal = format!("already {MAX_CONNECTIONS} connections");
    wait_for_stderr(&chat.victim, &refusal);
    // The silent ones are still within their handshake time: sample while they last.
    for _ in 0..10 {
        most_threads = most_threads.max(proc_status(pid, "Threads:"));
        thread::sleep(Duration::from_millis(100));
    }
    let refusal_lines = chat
        .victim
        .stderr_lines()
        .iter()
        .filter(|line| line.contains(&refusal))
        .count();
    eprintln!(
        "{SILENT} silent connections: {failed} failed to connect, {refusal_lines} refusal \
         line(s) on stderr, at most {most_threads} threads in the victim"
    );
    assert!(
        most_threads < 300,
        "the victim ran {most_threads} threads for {SILENT} silent connections"
    );
    // Every silent connection ends: refused at once, or after the handshake timeout.
    for (index, stream) in silent.iter_mut().enumerate() {
        assert!(
            wait_until_closed(stream, EVENT_TIMEOUT).is_some(),
            "silent connection {index} of {} was still open after {EVENT_TIMEOUT:?}",
            silent.len()
        );
    }
    drop(silent);
    chat.assert_still_chatting("hundreds of silent connections");

    let latecomer = member(chat.port, host(LATECOMER), "Late", &[]);
    chat.victim
        .wait_for_line(|line| line == "Late joined chat", EVENT_TIMEOUT);
    latecomer.wait_for_line(|line| line == "Victim joined chat", EVENT_TIMEOUT);
    latecomer.send_line("made it in");
    chat.victim.wait_for_line(
        |line| said(line, "Late") == Some("made it in"),
        EVENT_TIMEOUT,
    );
}

#[test]
fn garbage_and_forged_announcements_on_the_udp_port_do_not_hurt() {
    let chat = Chat::start();
    let everyone = SocketAddrV4::new(Ipv4Addr::BROADCAST, chat.port);
    let garbage = broadcaster(Ipv4Addr::LOCALHOST);
    let mut rng = XorShift(0x5eed_0007);
    let valid = announcement(chat.port, 1, "Ghost");
    for round in 0..3000 {
        let datagram = match round % 3 {
            0 => {
                let length = rng.below(1500);
                rng.bytes(length)
            }
            // A real announcement, corrupted or cut short.
            1 => {
                let mut bytes = valid.clone();
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
                bytes
            }
            _ => valid[..rng.below(valid.len())].to_vec(),
        };
        let _ = garbage.send_to(&datagram, everyone);
    }

    // Announcements forged for hosts 200-250 of the block, where nobody listens, except
    // that the test listens on host 201 to count how often the members dial it.
    let watched = host(201);
    let counter = DialCounter::listen(SocketAddrV4::new(watched, chat.port));
    let forgers: Vec<UdpSocket> = (200..=250).map(|last| broadcaster(host(last))).collect();
    let started = Instant::now();
    for forged in 0..200u64 {
        let for_watched = announcement(chat.port, 1000 + forged, "Ghost");
        let _ = forgers[1].send_to(&for_watched, everyone);
        let other = &forgers[forged as usize % forgers.len()];
        let _ = other.send_to(&announcement(chat.port, 5000 + forged, "Ghost"), everyone);
        thread::sleep(Duration::from_millis(10));
    }
    let flooded_for = started.elapsed();
    // A dial triggered by the last announcements lands within a moment.
    thread::sleep(Duration::from_millis(500));
    let dials = counter.finish();
    let from_victim = dials.iter().filter(|&&from| from == host(VICTIM)).count();
    let from_friend = dials.iter().filter(|&&from| from == host(FRIEND)).count();
    // One dial per redial interval, plus one for the first announcement and one of
    // slack for a loaded machine; a dial per announcement would be 200.
    let allowed = (flooded_for.as_secs_f64() / REDIAL_INTERVAL.as_secs_f64()) as usize + 2;
    eprintln!(
        "200 forged announcements for {watched} over {flooded_for:?}: dialed \
         {from_victim} times by the victim, {from_friend} by the friend (allowed {allowed})"
    );
    assert!(
        from_victim >= 1,
        "the victim never dialed {watched}: the forged announcements were not heard, so \
         this test proves nothing"
    );
    assert!(
        from_victim <= allowed && from_friend <= allowed,
        "{watched} was dialed {from_victim} times by the victim and {from_friend} by the \
         friend in {flooded_for:?}; at most {allowed} each"
    );
    let threads = proc_status(chat.victim.pid(), "Threads:");
    assert!(threads < 300, "the victim runs {threads} threads");
    chat.assert_still_chatting("a UDP flood");
}

/// Announcements forged with the members' own addresses and new instances, as if they
/// had restarted, must not disturb the connection between them: nothing lost, nothing
/// out of order, nobody shown to leave.
#[test]
fn announcements_forged_for_real_members_do_not_disturb_the_chat() {
    const LINES: usize = 200;
    let chat = Chat::start();
    let everyone = SocketAddrV4::new(Ipv4Addr::BROADCAST, chat.port);
    let forgers = [broadcaster(host(VICTIM)), broadcaster(host(FRIEND))];
    let stop = Arc::new(AtomicBool::new(false));
    let forging = {
        let stop = stop.clone();
        let port = chat.port;
        thread::spawn(move || {
            let mut forged = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for (forger, name) in forgers.iter().zip(["Victim", "Friend"]) {
                    forged += 1;
                    let _ = forger.send_to(&announcement(port, 9000 + forged, name), everyone);
                }
                thread::sleep(Duration::from_millis(20));
            }
            forged
        })
    };
    for n in 1..=LINES {
        chat.friend.send_line(&format!("friend {n:04}"));
        chat.victim.send_line(&format!("victim {n:04}"));
        thread::sleep(Duration::from_millis(10));
    }
    for (listener, sender, prefix) in [
        (&chat.victim, "Friend", "friend "),
        (&chat.friend, "Victim", "victim "),
    ] {
        let last = format!("{prefix}{LINES:04}");
        listener.wait_for_line(
            |line| said(line, sender) == Some(last.as_str()),
            EVENT_TIMEOUT,
        );
        let received: Vec<String> = listener
            .stdout_lines()
            .iter()
            .filter_map(|line| said(line, sender))
            .filter(|text| text.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = (1..=LINES).map(|n| format!("{prefix}{n:04}")).collect();
        assert!(
            received == expected,
            "{} got {} of {sender}'s {LINES} lines, or out of order",
            listener.label(),
            received.len()
        );
    }
    stop.store(true, Ordering::SeqCst);
    let forged = forging.join().expect("the forging thread");
    eprintln!("{forged} announcements forged for the two members during the exchange");
    for (process, other) in [(&chat.victim, "Friend"), (&chat.friend, "Victim")] {
        assert_eq!(
            process.count_lines(|line| line.ends_with("left chat")),
            0,
            "{} was shown {other} leaving",
            process.label()
        );
    }
    chat.assert_still_chatting("announcements forged for the members");
}

#[test]
fn escape_sequences_in_messages_are_shown_harmlessly_and_names_with_them_refused() {
    let chat = Chat::start();
    let name = "Ev\x1b[2Jil\x07\u{202e}eman";
    let text = "\x1b[31mred\x1b[0m bell\x07 back\x08\x08 cr\rover tab\t nl\nFriend: forged line \
                \u{202e}desrever\u{202c} \x1b]0;pwned\x07 \u{9b}2J del\x7f iso\u{2066}x\u{2069} end";

    // A hello that is not first: the victim's complaint goes to stderr, which is the
    // same terminal, so it must be harmless too.
    let mut rude = chat.connect();
    rude.write_all(&chat_frame(1, text))
        .expect("send a chat before hello");
    chat.assert_closes(&mut rude, "a chat frame before its hello");

    // A name breaks the rule every name follows (PROTOCOL.md): the hello is refused,
    // and the complaint does not carry the name's escapes to the victim's terminal.
    let mut impostor = chat.connect();
    impostor
        .write_all(&hello(next_instance(), name))
        .expect("send a hello with escapes in the name");
    chat.assert_closes(&mut impostor, "a hello whose name holds escape sequences");
    wait_for_stderr(&chat.victim, "control characters");

    let mut member = chat.join_as("Eve");
    member
        .write_all(&chat_frame(1, text))
        .expect("send a chat frame");
    let shown = chat
        .victim
        .wait_for_line(|line| line.contains("desrever"), EVENT_TIMEOUT);
    assert!(
        shown.contains("red") && shown.contains("forged line") && shown.ends_with("end"),
        "the message must be shown whole, on one line: {shown:?}"
    );
    member.write_all(&Frame::Bye.encode()).expect("send bye");
    chat.assert_closes(&mut member, "its goodbye");
    chat.victim
        .wait_for_line(|line| line.ends_with("left chat"), EVENT_TIMEOUT);
    chat.assert_still_chatting("escape sequences");

    for (stream, lines) in [
        ("stdout", chat.victim.stdout_lines()),
        ("stderr", chat.victim.stderr_lines()),
    ] {
        for line in lines {
            let raw: Vec<char> = line.chars().filter(|&c| is_interpreted(c)).collect();
            assert!(
                raw.is_empty(),
                "the victim's {stream} contains {raw:?} raw: {line:?}"
            );
        }
    }
    assert_eq!(
        chat.victim
            .count_lines(|line| line.starts_with("Friend: forged line")),
        0,
        "a newline in a message forged a line from the friend"
    );
}

#[test]
fn a_flooding_peer_does_not_grow_memory_without_bound() {
    const FRAMES: u64 = 100_000;
    const FRAMES_PER_WRITE: u64 = 64;
    // The flood is about 100 MiB of text. Kept, it would take more than that; bounded
    // (1000 messages of history, 4 MiB of queued events, one frame of read buffer: about
    // 5 MiB of messages) the victim needs its usual few MiB plus that. 64 MiB leaves
    // room for allocator slack and stays far below what an unbounded log would need.
    const RSS_LIMIT_KIB: u64 = 64 * 1024;
    let chat = Chat::start();
    let pid = chat.victim.pid();
    let rss_before = proc_status(pid, "VmRSS:");
    let mut flooder = chat.join_as("Flooder");
    let filler = "x".repeat(1000);
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let mut batch = Vec::new();
        for seq in 1..=FRAMES {
            batch.extend(chat_frame(seq, &format!("flood {seq:06} {filler}")));
            if seq % FRAMES_PER_WRITE == 0 || seq == FRAMES {
                flooder.write_all(&batch).expect("flood the victim");
                batch.clear();
            }
        }
        flooder
    });
    let mut most_rss = rss_before;
    while !sender.is_finished() {
        most_rss = most_rss.max(proc_status(pid, "VmRSS:"));
        thread::sleep(Duration::from_millis(50));
    }
    let mut flooder = sender.join().expect("the flooding thread");
    // The flood comes faster than a screen can show it: past its event budget the
    // victim drops lines and says how many, rather than making the network wait.
    let (shown, missed) =
        chat.victim
            .wait_for_messages_accounted("Flooder", FRAMES, EVENT_TIMEOUT * 3);
    most_rss = most_rss.max(proc_status(pid, "VmRSS:"));
    let peak = proc_status(pid, "VmHWM:");
    eprintln!(
        "flood of {FRAMES} frames of ~1 KiB in {:?}: victim RSS {rss_before} KiB before, \
         {most_rss} KiB at most while sampled, peak (VmHWM) {peak} KiB; {} shown, {missed} \
         counted as not shown",
        started.elapsed(),
        shown.len()
    );
    assert_eq!(
        shown.len() as u64 + missed,
        FRAMES,
        "every flood message is shown once or counted as not shown"
    );
    let numbers: Vec<u64> = shown
        .iter()
        .filter_map(|text| text.strip_prefix("flood ")?.get(..6)?.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "the messages shown are in order, none twice"
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "the victim's memory peaked at {peak} KiB under the flood (limit {RSS_LIMIT_KIB} KiB)"
    );
    let _ = flooder.write_all(&Frame::Bye.encode());
    chat.victim
        .wait_for_line(|line| line == "Flooder left chat", EVENT_TIMEOUT);
    chat.assert_still_chatting("a flood");
}

#[test]
fn an_oversized_message_gets_a_local_error_and_drops_nobody() {
    let chat = Chat::start();
    let oversized = "o".repeat(MAX_MESSAGE_BYTES + 1);
    chat.victim.send_line(&oversized);
    let error = chat
        .victim
        .wait_for_line(|line| line.contains("not sent"), EVENT_TIMEOUT);
    assert!(
        error.contains(&(MAX_MESSAGE_BYTES + 1).to_string())
            && error.contains(&MAX_MESSAGE_BYTES.to_string()),
        "the error should give the length and the limit: {error:?}"
    );
    // The largest message allowed goes through whole.
    let largest = "L".repeat(MAX_MESSAGE_BYTES);
    chat.victim.send_line(&largest);
    chat.friend.wait_for_line(
        |line| said(line, "Victim") == Some(largest.as_str()),
        EVENT_TIMEOUT,
    );
    // A peer that sends one too long is dropped alone.
    let mut member = chat.join_as("Verbose");
    chat.victim
        .wait_for_line(|line| line == "Verbose joined chat", EVENT_TIMEOUT);
    member
        .write_all(&chat_frame(1, &oversized))
        .expect("send an oversized chat frame");
    chat.assert_closes(&mut member, "an oversized message");
    chat.victim
        .wait_for_line(|line| line == "Verbose left chat", EVENT_TIMEOUT);
    chat.assert_still_chatting("oversized messages");
    for process in [&chat.victim, &chat.friend] {
        assert_eq!(
            process.count_lines(|line| line.contains(&oversized)),
            0,
            "{} showed the oversized message",
            process.label()
        );
    }
    assert_eq!(
        chat.friend.count_lines(|line| line == "Victim left chat"),
        0,
        "the friend dropped the victim"
    );
}

/// Not an attack: the test plays an honest member, Low (127.0.0.1, the lower address),
/// through a race that packet loss produces on a real LAN. Both dial at once. Low's
/// connection reaches the victim, which installs it and answers, but the answer is
/// lost: Low gives up on that connection after its handshake timeout and closes it.
/// Then the victim's connection reaches Low, which is no longer dialing, so it accepts
/// it and answers. The victim gets that answer before the end of Low's first connection
/// (the FIN was delayed by the loss): it keeps its own connection as a surplus, and
/// then sees the installed one end. From Low's side it is connected, so the victim must
/// end up connected to Low too: what the victim types must reach Low.
#[test]
fn a_member_whose_winning_connection_fails_in_the_handshake_is_not_cut_off() {
    const LOW: Ipv4Addr = Ipv4Addr::LOCALHOST;
    let port = free_port();
    let victim = member(port, host(VICTIM), "Victim", &[]);
    victim.wait_for_line_containing("Welcome to the chat", EVENT_TIMEOUT);
    let instance = next_instance();
    let listener = TcpListener::bind((LOW, port)).expect("listen as Low");
    let announcer = broadcaster(LOW);
    let announce = || {
        let everyone = SocketAddrV4::new(Ipv4Addr::BROADCAST, port);
        let _ = announcer.send_to(&announcement(port, instance, "Low"), everyone);
    };

    // Low announces; the victim dials Low. Low does not answer yet.
    announce();
    let (mut dialed_by_victim, _) = listener.accept().expect("the victim dials Low");
    dialed_by_victim
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("set a read timeout");
    let victims_hello = read_frame(&mut dialed_by_victim).expect("the victim's hello");
    assert_eq!(victims_hello.first(), Some(&TYPE_HELLO));
    // Meanwhile Low's own connection reaches the victim, which installs it and answers
    // (the answer that, on the lossy LAN, Low never gets).
    let mut dialed_by_low = TcpStream::connect((host(VICTIM), port)).expect("Low dials the victim");
    dialed_by_low
        .write_all(&hello(instance, "Low"))
        .expect("Low says hello");
    dialed_by_low
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("set a read timeout");
    let answer = read_frame(&mut dialed_by_low).expect("the victim answers Low's hello");
    assert_eq!(answer.first(), Some(&TYPE_HELLO));
    // Low answers the victim's connection: a surplus for the victim, which keeps it,
    // and starts its heartbeats on it.
    dialed_by_victim
        .write_all(&hello(instance, "Low"))
        .expect("Low answers the victim's hello");
    read_frame(&mut dialed_by_victim).expect("the victim keeps its connection");
    // The end of Low's own connection, which it gave up on, reaches the victim only now.
    drop(dialed_by_low);

    // Low now behaves as a member connected by the victim's connection: heartbeats on
    // it, announcements every second, and a hello for any new connection the victim
    // makes. The victim types a line every second; one must reach Low.
    dialed_by_victim
        .write_all(&chat_frame(1, "Low is still here"))
        .expect("Low talks on the victim's connection");
    let mut links = vec![(dialed_by_victim, Vec::new())];
    listener
        .set_nonblocking(true)
        .expect("make the listener non-blocking");
    let started = Instant::now();
    let mut typed = 0;
    let heard = 'waiting: loop {
        if started.elapsed() >= EVENT_TIMEOUT {
            break None;
        }
        typed += 1;
        victim.send_line(&format!("are you there, Low? ({typed})"));
        announce();
        while let Ok((mut stream, _)) = listener.accept() {
            stream
                .set_nonblocking(false)
                .expect("make the stream blocking");
            stream
                .set_read_timeout(Some(EVENT_TIMEOUT))
                .expect("set a read timeout");
            if read_frame(&mut stream).is_ok() && stream.write_all(&hello(instance, "Low")).is_ok()
            {
                links.push((stream, Vec::new()));
            }
        }
        let pause = Instant::now() + Duration::from_secs(1);
        while Instant::now() < pause {
            for (stream, buffer) in &mut links {
                let _ = stream.write_all(&Frame::Heartbeat.encode());
                if let Some(text) = received_chat(stream, buffer) {
                    break 'waiting Some(text);
                }
            }
        }
    };
    let shown = victim.count_lines(|line| said(line, "Low") == Some("Low is still here"));
    assert!(
        heard.is_some(),
        "none of the {typed} lines the victim typed in {EVENT_TIMEOUT:?} reached Low, who \
         is still connected to it by the victim's own connection. The victim dialed Low \
         {} more time(s), and showed {shown} line(s) Low sent on that connection although \
         Low is not its member any more\nvictim stdout:\n{}\nvictim stderr:\n{}",
        links.len() - 1,
        victim.stdout_lines().join("\n"),
        victim.stderr_lines().join("\n")
    );
}

/// The victim and its friend, on a port of their own.
struct Chat {
    port: u16,
    victim: ChatProcess,
    friend: ChatProcess,
}

impl Chat {
    /// Starts both members and waits until each has seen the other join.
    fn start() -> Chat {
        let port = free_port();
        let victim = member(port, host(VICTIM), "Victim", &[]);
        let friend = member(port, host(FRIEND), "Friend", &[]);
        victim.wait_for_line(|line| line == "Friend joined chat", EVENT_TIMEOUT);
        friend.wait_for_line(|line| line == "Victim joined chat", EVENT_TIMEOUT);
        Chat {
            port,
            victim,
            friend,
        }
    }

    fn victim_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(host(VICTIM), self.port)
    }

    /// A fresh TCP connection to the victim, from 127.0.0.1.
    fn connect(&self) -> TcpStream {
        TcpStream::connect_timeout(&self.victim_addr().into(), EVENT_TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to the victim: {e}"))
    }

    /// Connects and says a valid hello as `name`, then a heartbeat as a real member
    /// would; returns once the victim has answered with its own hello, which it does
    /// after installing us.
    fn join_as(&self, name: &str) -> TcpStream {
        let mut stream = self.connect();
        stream
            .write_all(&hello(next_instance(), name))
            .expect("send a hello");
        stream
            .set_read_timeout(Some(EVENT_TIMEOUT))
            .expect("set a read timeout");
        let reply = read_frame(&mut stream)
            .unwrap_or_else(|e| panic!("the victim did not answer a valid hello: {e}"));
        assert_eq!(reply.first(), Some(&TYPE_HELLO), "the victim's first frame");
        // A real member's heartbeats start at once; the first tells the victim that we
        // have its hello and are in the chat.
        stream
            .write_all(&Frame::Heartbeat.encode())
            .expect("send a heartbeat");
        stream
    }

    /// Waits until the victim closes `stream` after `what`; returns what it sent first.
    #[track_caller]
    fn assert_closes(&self, stream: &mut TcpStream, what: &str) -> Vec<u8> {
        match wait_until_closed(stream, EVENT_TIMEOUT) {
            Some(received) => received,
            None => panic!(
                "the victim kept a connection open for {EVENT_TIMEOUT:?} after {what}\n\
                 victim stderr:\n{}",
                self.victim.stderr_lines().join("\n")
            ),
        }
    }

    /// The friend and the victim exchange a message each way, and the victim is still
    /// running and still has the friend.
    #[track_caller]
    fn assert_still_chatting(&self, after: &str) {
        assert_running(&self.victim);
        let from_friend = format!("friend, after {after}");
        self.friend.send_line(&from_friend);
        self.victim.wait_for_line(
            |line| said(line, "Friend") == Some(from_friend.as_str()),
            EVENT_TIMEOUT,
        );
        let from_victim = format!("victim, after {after}");
        self.victim.send_line(&from_victim);
        self.friend.wait_for_line(
            |line| said(line, "Victim") == Some(from_victim.as_str()),
            EVENT_TIMEOUT,
        );
        assert_eq!(
            self.victim.count_lines(|line| line == "Friend left chat"),
            0,
            "the victim dropped the friend after {after}:\n{}",
            self.victim.stderr_lines().join("\n")
        );
        assert_running(&self.victim);
    }
}

/// A UDP socket on `source` that may broadcast. Announcements are broadcast, like a
/// real member's: a unicast datagram to a port that two members share (SO_REUSEADDR)
/// would reach only one of them.
fn broadcaster(source: Ipv4Addr) -> UdpSocket {
    let socket = UdpSocket::bind((source, 0)).expect("bind a UDP socket");
    socket.set_broadcast(true).expect("allow broadcast");
    socket
}

#[track_caller]
fn assert_running(process: &ChatProcess) {
    let state = std::fs::read_to_string(format!("/proc/{}/stat", process.pid()))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            after_name.split_whitespace().next().map(str::to_owned)
        });
    assert!(
        matches!(state.as_deref(), Some(s) if s != "Z" && s != "X"),
        "{} is not running (state {state:?})\nstderr:\n{}",
        process.label(),
        process.stderr_lines().join("\n")
    );
}

/// A number from a `/proc/PID/status` line such as `Threads:` or `VmRSS:` (in KiB).
#[track_caller]
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits for a stderr line of `process` containing `needle`.
#[track_caller]
fn wait_for_stderr(process: &ChatProcess, needle: &str) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !process
        .stderr_lines()
        .iter()
        .any(|line| line.contains(needle))
    {
        assert!(
            Instant::now() < deadline,
            "{} printed nothing containing {needle:?} on stderr within {EVENT_TIMEOUT:?}:\n{}",
            process.label(),
            process.stderr_lines().join("\n")
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the other end closes `stream` (end of stream or a reset); returns the
/// bytes received, or `None` if it was still open after `limit`.
fn wait_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut chunk) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            // Reset: the victim closed with our bytes unread. Closed all the same.
            Err(_) => return Some(received),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads one frame and returns its body (type byte and payload).
fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let length = u32::from_be_bytes(prefix) as usize;
    assert!(
        (1..=MAX_FRAME_BYTES - 4).contains(&length),
        "the victim sent a frame length of {length}"
    );
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Reads what has arrived on `stream` (waiting at most 100 ms) into `buffer` and returns
/// the text of the first chat frame in it, if any.
fn received_chat(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .ok()?;
    let mut chunk = [0u8; 4096];
    if let Ok(n) = stream.read(&mut chunk) {
        buffer.extend_from_slice(&chunk[..n]);
    }
    while let Ok(Some((frame, used))) = decode_frame(buffer) {
        buffer.drain(..used);
        if let Frame::Chat { text, .. } = frame {
            return Some(text);
        }
    }
    None
}

/// What a terminal would act on instead of showing: controls (C0, DEL, C1) and the
/// invisible characters that reorder text.
fn is_interpreted(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn hello(instance: u64, name: &str) -> Vec<u8> {
    Frame::Hello {
        version: PROTOCOL_VERSION,
        instance,
        tcp_port: p2pchat::tuning::DEFAULT_PORT,
        name: name.to_owned(),
        room: DEFAULT_ROOM.to_owned(),
    }
    .encode()
}

fn chat_frame(seq: u64, text: &str) -> Vec<u8> {
    Frame::Chat {
        seq,
        sent_at_ms: now_ms(),
        text: text.to_owned(),
    }
    .encode()
}

fn announcement(port: u16, instance: u64, name: &str) -> Vec<u8> {
    Announcement {
        version: PROTOCOL_VERSION,
        tcp_port: port,
        instance,
        name: name.to_owned(),
        room: DEFAULT_ROOM.to_owned(),
    }
    .encode()
}

/// `encoded` with `placeholder` (which occurs in it once) overwritten by `bytes` of the
/// same length: how invalid text gets into an otherwise valid frame.
fn patched(mut encoded: Vec<u8>, placeholder: &[u8], bytes: &[u8]) -> Vec<u8> {
    assert_eq!(placeholder.len(), bytes.len(), "a patch keeps the length");
    let at = encoded
        .windows(placeholder.len())
        .position(|window| window == placeholder)
        .expect("the placeholder is in the frame");
    encoded[at..at + bytes.len()].copy_from_slice(bytes);
    encoded
}

/// A different instance for every hand-made member, so each is a new arrival.
fn next_instance() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (u64::from(std::process::id()) << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Counts the connections made to an address where only the test listens, and who made
/// them. Accepted connections are held open, silent, like a stuck member.
struct DialCounter {
    stop: Arc<AtomicBool>,
    dialers: Arc<Mutex<Vec<Ipv4Addr>>>,
    thread: thread::JoinHandle<()>,
}

impl DialCounter {
    fn listen(addr: SocketAddrV4) -> DialCounter {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let dialers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = stop.clone();
            let dialers = dialers.clone();
            thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, std::net::SocketAddr::V4(from))) => {
                            dialers
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(*from.ip());
                            held.push(stream);
                        }
                        Ok(_) => {}
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        DialCounter {
            stop,
            dialers,
            thread,
        }
    }

    /// Stops listening; returns the source address of every connection accepted.
    fn finish(self) -> Vec<Ipv4Addr> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let dialers = self.dialers.lock().unwrap_or_else(PoisonError::into_inner);
        dialers.clone()
    }
}

/// A small deterministic generator: the same bytes every run, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn bytes(&mut self, count: usize) -> Vec<u8> {
        (0..count).map(|_| self.next() as u8).collect()
    }
}
