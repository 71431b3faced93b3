//! What a member sends while a newcomer's connection is being made: the acceptor's
//! hello comes first, whatever else is going on, and a rename made during the
//! handshake still reaches the newcomer.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use p2pchat::protocol::{Announcement, Frame, PROTOCOL_VERSION, decode_frame};
use p2pchat::{Config, Event, Member, Node};

use common::hosts::Hosts;
use common::participant::Participant;
use common::{EVENT_TIMEOUT, free_port};

/// How often the hand-made member polls its sockets.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

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
    let hosts = Hosts::fresh();
    let port = free_port();
    let mut bo = Participant::on(hosts.addr(2), "Bo", port);
    let hand_at = hosts.addr(9);
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
    let hosts = Hosts::fresh();
    const NEWCOMERS: u64 = 100;
    let port = free_port();
    let bo_at = hosts.addr(2);
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
