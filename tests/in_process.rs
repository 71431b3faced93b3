//! Several members in one test process, talking over real sockets on loopback.
//!
//! Each member gets its own address, 127.0.B.x, as it would have its own machine on a
//! LAN; all the members of one test share a port that no other test uses. The port is
//! what keeps tests apart: discovery listens on `0.0.0.0:PORT`, so two tests on one
//! port would hear each other's announcements and join each other's chats. Every test
//! also takes its own block of addresses ([`Hosts`]), so that nothing one test leaves
//! behind (a connection closing, a thread finishing) can be mistaken for another's
//! member, and so that its sockets are easy to pick out in `ss`.
//!
//! The tests prove *that* something happens (or that it does not), never how fast:
//! they wait for events with a generous deadline, and check that something must not
//! happen by watching for a short while after the chat has settled.
#![cfg(target_os = "linux")]

mod common;

use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use p2pchat::{ChatMessage, Config, Event, Member, Node, StartError};

use common::clock::now_ms;
use common::hosts::Hosts;
use common::participant::{Participant, wait_for_full_mesh};
use common::sockets::{TcpSocket, tcp_sockets_on_port};
use common::{EVENT_TIMEOUT, SETTLE, free_port};

/// `count` loopback addresses that no other test in this process uses.
fn fresh_hosts(count: usize) -> Vec<Ipv4Addr> {
    Hosts::fresh().first(count)
}

/// Starts members named after their position ("m0", "m1", ...), one per host, and waits
/// until every one of them has seen every other join.
fn connected_members(hosts: &[Ipv4Addr], port: u16) -> Vec<Participant> {
    let mut members: Vec<Participant> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| Participant::on(*host, &format!("m{i}"), port))
        .collect();
    wait_for_full_mesh(&mut members);
    wait_until_settled(hosts, port);
    members
}

fn is_joined_or_left_of(addr: Ipv4Addr) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Joined(m) | Event::Left(m) if m.addr == addr)
}

fn is_joined_of(addr: Ipv4Addr) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Joined(m) if m.addr == addr)
}

fn is_left_of(addr: Ipv4Addr) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Left(m) if m.addr == addr)
}

fn is_membership_change(event: &Event) -> bool {
    matches!(event, Event::Joined(_) | Event::Left(_))
}

/// (sender's address, text) of each message, for comparing histories.
fn who_said_what(messages: &[ChatMessage]) -> Vec<(Ipv4Addr, String)> {
    messages
        .iter()
        .map(|m| (m.id.origin, m.text.clone()))
        .collect()
}

#[test]
fn two_members_find_each_other_and_chat() {
    let port = free_port();
    let hosts = fresh_hosts(2);
    let mut alex = Participant::on(hosts[0], "Alex", port);
    let mut bo = Participant::on(hosts[1], "Bo", port);
    let alex_as_seen = Member {
        name: "Alex".into(),
        addr: hosts[0],
    };
    let bo_as_seen = Member {
        name: "Bo".into(),
        addr: hosts[1],
    };

    // Each sees the other with the name it chose and the address it started on.
    alex.expect_joined(&bo_as_seen);
    bo.expect_joined(&alex_as_seen);
    wait_until_settled(&hosts, port);

    let before_send = now_ms();
    alex.send("hello Bo");
    let received = bo.expect_message(hosts[0], "hello Bo");
    let after_receive = now_ms();
    assert_eq!(received.sender_name, "Alex");
    // The timestamp is the sender's clock at sending, which here is our clock. A second
    // of slack either way covers nothing but rounding; a timestamp in other units or
    // from another moment (the receipt, the epoch) is off by far more.
    assert!(
        (before_send - 1000..=after_receive + 1000).contains(&received.sent_at_ms),
        "sent_at_ms {} is not between {before_send} and {after_receive}",
        received.sent_at_ms
    );

    // The sender sees its own line too, as the same message.
    let own = alex.expect_message(hosts[0], "hello Bo");
    assert_eq!(own, received);
    alex.node.leave();
    bo.node.leave();
}

#[test]
fn a_late_joiner_sees_one_join_per_member_already_there() {
    let port = free_port();
    let hosts = fresh_hosts(4);
    let mut members = connected_members(&hosts[..3], port);
    let mut newcomer = Participant::on(hosts[3], "late", port);

    for member in &members {
        newcomer.expect_joined(&member.me());
    }
    for member in &mut members {
        member.expect_joined(&newcomer.me());
    }
    // Both sides dial each other (the newcomer hears every member's announcements, the
    // members hear the newcomer's): one pair may briefly have two connections, and
    // settling on one of them must not show as a second join, nor as a leave.
    newcomer.assert_no_event("a join or a leave", is_membership_change, SETTLE);
    for member in &members {
        let joins = newcomer.inbox.count(is_joined_of(member.addr()));
        assert_eq!(joins, 1, "{} was seen to join {joins} times", member.addr());
    }
    assert_eq!(newcomer.inbox.count(|e| matches!(e, Event::Left(_))), 0);
    for member in &mut members {
        member.inbox.poll();
        member.assert_no_event("a join or a leave", is_membership_change, Duration::ZERO);
        assert_eq!(member.inbox.count(is_joined_of(hosts[3])), 1);
        assert_eq!(member.inbox.count(|e| matches!(e, Event::Left(_))), 0);
    }
    newcomer.node.leave();
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn members_lists_everyone_connected() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    let members = connected_members(&hosts, port);

    for (i, member) in members.iter().enumerate() {
        assert_eq!(
            member.node.me(),
            Member {
                name: format!("m{i}"),
                addr: hosts[i]
            }
        );
        // Everyone but itself, ordered by address, each with the name it chose.
        let expected: Vec<Member> = members
            .iter()
            .filter(|other| other.addr() != member.addr())
            .map(|other| other.node.me())
            .collect();
        assert_eq!(member.node.members(), expected, "members() of {}", hosts[i]);
    }
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn history_gives_a_late_joiner_what_was_said_before() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    let mut early = connected_members(&hosts[..2], port);

    // A conversation: each line is sent once the previous one has arrived, so the
    // order in which they were sent is beyond doubt.
    let conversation = [
        (0, "is anyone here?"),
        (0, "hello?"),
        (1, "yes, me"),
        (1, "hi"),
    ];
    for (speaker, text) in conversation {
        early[speaker].send(text);
        let listener = 1 - speaker;
        let from = hosts[speaker];
        early[listener].expect_message(from, text);
    }

    let mut late = Participant::on(hosts[2], "late", port);
    for member in &early {
        late.expect_joined(&member.me());
    }
    for member in &mut early {
        member.expect_joined(&late.me());
    }
    wait_until_settled(&hosts, port);
    let history: Vec<ChatMessage> = late.node.history().into_iter().map(|e| e.message).collect();
    let expected: Vec<(Ipv4Addr, String)> = conversation
        .iter()
        .map(|(speaker, text)| (hosts[*speaker], text.to_string()))
        .collect();
    assert_eq!(who_said_what(&history), expected, "history: {history:#?}");
    let names: Vec<&str> = history.iter().map(|m| m.sender_name.as_str()).collect();
    assert_eq!(names, ["m0", "m0", "m1", "m1"]);
    late.node.leave();
    early.iter().for_each(|m| m.node.leave());
}

#[test]
fn history_keeps_the_order_of_a_conversation_that_goes_back_and_forth() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    let mut members = connected_members(&hosts[..2], port);

    // Question and answer, each line sent only after the previous one arrived, so the
    // order is the order of cause and effect. The first speaker has the higher address,
    // so an order that breaks ties between equal timestamps by address would put an
    // answer before its question.
    let mut expected = Vec::new();
    for round in 0..15 {
        for speaker in [1, 0] {
            let text = format!("line {round} from m{speaker}");
            members[speaker].send(&text);
            members[1 - speaker].expect_message(hosts[speaker], &text);
            expected.push((hosts[speaker], text));
        }
    }

    let mut late = Participant::on(hosts[2], "late", port);
    for member in &members {
        late.expect_joined(&member.me());
    }
    wait_until_settled(&hosts, port);
    let history: Vec<ChatMessage> = late.node.history().into_iter().map(|e| e.message).collect();
    assert_eq!(who_said_what(&history), expected, "history: {history:#?}");
    late.node.leave();
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn leave_is_seen_by_every_member_as_one_left_event() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    let mut members = connected_members(&hosts, port);
    let leaver = members.remove(1);
    let gone = leaver.node.me();
    leaver.node.leave();

    for member in &mut members {
        member.expect_left(&gone);
    }
    // Watching past an announcement interval: a member that has left must stay gone
    // (it must not be dialed again, nor dial anyone it hears announce).
    for member in &mut members {
        member.assert_no_event(
            &format!("a join or a leave of {}", gone.addr),
            is_joined_or_left_of(gone.addr),
            SETTLE,
        );
        assert_eq!(member.inbox.count(is_left_of(gone.addr)), 1);
        let listed: Vec<Ipv4Addr> = member.node.members().iter().map(|m| m.addr).collect();
        assert_eq!(
            listed,
            [hosts[0], hosts[2]]
                .iter()
                .copied()
                .filter(|a| *a != member.addr())
                .collect::<Vec<_>>()
        );
    }

    // The two who stayed still talk.
    members[0].send("still here?");
    members[1].expect_message(hosts[0], "still here?");
    members[1].send("yes");
    members[0].expect_message(hosts[2], "yes");
    drop(leaver);
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn a_member_that_has_left_is_not_seen_by_someone_who_joins_just_after() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    // Two connected members: each has heard the other, so both discovery loops are
    // surely running (a member that leaves the instant it starts may never run its own).
    let mut members = connected_members(&hosts[..2], port);
    let leaver = members.remove(1);
    let gone = leaver.node.me();
    leaver.node.leave();
    members[0].expect_left(&gone);

    // Someone joins right after: its announcement reaches the departed member's
    // discovery socket too, which must no longer answer with a connection.
    let mut newcomer = Participant::on(hosts[2], "newcomer", port);
    newcomer.expect_joined(&members[0].me());
    newcomer.assert_no_event(
        &format!("a join or a leave of {}", gone.addr),
        is_joined_or_left_of(gone.addr),
        SETTLE,
    );
    assert_eq!(newcomer.node.members(), [members[0].node.me()]);
    // Nor may the departed member dial the one who stayed, whose announcements it hears.
    members[0].inbox.poll();
    members[0].assert_no_event(
        &format!("a join or a leave of {}", gone.addr),
        is_joined_or_left_of(gone.addr),
        Duration::ZERO,
    );
    newcomer.node.leave();
    members[0].node.leave();
}

#[test]
fn a_member_that_leaves_while_it_is_being_connected_is_seen_to_leave() {
    // The leaver leaves as soon as the other member has seen it join, possibly before
    // its own side of the connection (or of a second one, dialed the other way) is set
    // up. Whatever it had, the goodbye must reach the other member, and no connection
    // may outlive the leave. A few rounds, because the timing varies.
    for round in 0..4 {
        let port = free_port();
        let hosts = fresh_hosts(2);
        let mut stayer = Participant::on(hosts[0], "stayer", port);
        let leaver = Participant::on(hosts[1], "leaver", port);
        stayer.expect_joined(&leaver.me());
        leaver.node.leave();
        let gone = leaver.node.me();
        eprintln!("round {round}: {} left", gone.addr);
        stayer.expect_left(&gone);
        stayer.assert_no_event(
            &format!("a join or a leave of {}", gone.addr),
            is_joined_or_left_of(gone.addr),
            SETTLE,
        );
        assert_eq!(stayer.node.members(), [], "round {round}");
        stayer.node.leave();
    }
}

#[test]
fn messages_sent_while_a_pair_settles_on_one_connection_all_arrive() {
    // Two members that start together dial each other: for a moment the pair has two
    // connections, and each side may send on one before switching to the other. A
    // message sent once the sender has seen the other join must arrive, once, in order.
    const MESSAGES: usize = 300;
    for round in 0..8 {
        let port = free_port();
        let hosts = fresh_hosts(2);
        let mut members = start_all_at_once(&hosts, port);
        let mut sending = Vec::new();
        for i in 0..2 {
            let other = members[1 - i].node.me();
            members[i].expect_joined(&other);
            let node = members[i].node.clone();
            sending.push(thread::spawn(move || {
                for n in 0..MESSAGES {
                    node.send(&format!("{n}")).expect("send");
                }
            }));
        }
        let expected: Vec<String> = (0..MESSAGES).map(|n| format!("{n}")).collect();
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let done = |members: &[Participant]| {
            (0..2).all(|i| members[i].inbox.texts_from(hosts[1 - i]).len() >= MESSAGES)
        };
        while !done(&members) && Instant::now() < deadline {
            for member in &mut members {
                member.inbox.receive(Duration::from_millis(5));
                member.inbox.poll();
            }
        }
        for thread in sending {
            thread.join().expect("a sending thread panicked");
        }
        for i in 0..2 {
            let received = members[i].inbox.texts_from(hosts[1 - i]);
            assert!(
                received == expected,
                "round {round}: {} received {} of {MESSAGES} messages from {}; \
                 first difference at {:?}; membership events: {:?}",
                hosts[i],
                received.len(),
                hosts[1 - i],
                received.iter().zip(&expected).position(|(r, e)| r != e),
                members[i]
                    .inbox
                    .log
                    .iter()
                    .filter(|e| is_membership_change(e))
                    .collect::<Vec<_>>()
            );
            let leaves = members[i].inbox.count(|e| matches!(e, Event::Left(_)));
            assert_eq!(leaves, 0, "round {round}: {} saw the other leave", hosts[i]);
        }
        members.iter().for_each(|m| m.node.leave());
    }
}

#[test]
fn messages_sent_just_before_leaving_all_arrive() {
    let port = free_port();
    let hosts = fresh_hosts(2);
    let mut members = connected_members(&hosts, port);
    let sent: Vec<String> = (0..200).map(|i| format!("last words {i}")).collect();
    for text in &sent {
        members[0].send(text);
    }
    members[0].node.leave();

    let gone = members[0].node.me();
    members[1].expect_left(&gone);
    // Everything the leaver said came before its departure, in order.
    assert_eq!(members[1].inbox.texts_from(hosts[0]), sent);
    members[1].node.leave();
}

/// Starts `count` members at the same moment, each from its own thread.
fn start_all_at_once(hosts: &[Ipv4Addr], port: u16) -> Vec<Participant> {
    let barrier = Arc::new(Barrier::new(hosts.len()));
    let starting: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let barrier = barrier.clone();
            let host = *host;
            thread::spawn(move || {
                barrier.wait();
                Participant::on(host, &format!("m{i}"), port)
            })
        })
        .collect();
    starting
        .into_iter()
        .map(|thread| thread.join().expect("a starting thread panicked"))
        .collect()
}

/// Every TCP socket, in any state, with the chat port at one end and both addresses
/// among `hosts`: this test's own sockets and nobody else's, even while other suites
/// (or other people's) run beside it. Nobody else has this port ([`free_port`]), the
/// addresses are this test's block ([`Hosts`]), and the port is below the ephemeral
/// range, so no dialing socket anywhere has it as its source port.
fn chat_sockets(hosts: &[Ipv4Addr], port: u16) -> Vec<TcpSocket> {
    tcp_sockets_on_port(port)
        .into_iter()
        .filter(|s| hosts.contains(s.local.ip()) && hosts.contains(s.peer.ip()))
        .collect()
}

/// How many established connections `sockets` (from [`chat_sockets`]) show, or why the
/// snapshot cannot say yet.
///
/// Both ends of a loopback connection are sockets of this machine, so ss lists each
/// connection twice: the accepting end (local HOST:PORT, peer OTHER:ephemeral) and the
/// dialing end (local OTHER:ephemeral, peer HOST:PORT). A connection counts once both
/// ends are established. ss reads the kernel's table in pieces, not in one instant, so
/// a connection being made or closed can be seen established at one end only: that is
/// a snapshot of a chat that is not calm yet, not a fault (`Err`).
fn established_connections(sockets: &[TcpSocket], port: u16) -> Result<usize, String> {
    let established: Vec<&TcpSocket> = sockets.iter().filter(|s| s.state == "ESTAB").collect();
    let accepting: Vec<&TcpSocket> = established
        .iter()
        .copied()
        .filter(|s| s.local.port() == port)
        .collect();
    let dialing: Vec<&TcpSocket> = established
        .iter()
        .copied()
        .filter(|s| s.peer.port() == port)
        .collect();
    // A dialing socket is bound to its host with port 0, and the kernel picks that
    // port from the ephemeral range, where the chat port never is: no socket can have
    // the chat port at both ends.
    assert_eq!(
        accepting.len() + dialing.len(),
        established.len(),
        "a connection with the chat port at both ends: {established:#?}"
    );
    let one_end_only: Vec<&&TcpSocket> = accepting
        .iter()
        .filter(|a| {
            !dialing
                .iter()
                .any(|d| d.local == a.peer && d.peer == a.local)
        })
        .chain(dialing.iter().filter(|d| {
            !accepting
                .iter()
                .any(|a| a.local == d.peer && a.peer == d.local)
        }))
        .collect();
    if one_end_only.is_empty() {
        Ok(accepting.len())
    } else {
        Err(format!(
            "connections seen established from one end only: {one_end_only:#?}"
        ))
    }
}

/// How many established connections there are among `hosts` right now: ss is asked
/// again until it gives a snapshot in which every connection shows both ends (within
/// [`EVENT_TIMEOUT`]).
fn established_connections_now(hosts: &[Ipv4Addr], port: u16) -> usize {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        match established_connections(&chat_sockets(hosts, port), port) {
            Ok(count) => return count,
            Err(why) if Instant::now() >= deadline => {
                panic!("no consistent look at the connections within {EVENT_TIMEOUT:?}: {why}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until every pair of `hosts` has exactly one connection and nothing else is
/// opening or closing, for a few consecutive looks.
///
/// Members that start close together dial each other, so a pair can have two
/// connections for a moment while it settles on one. Tests of other behaviour wait for
/// that first, so that they fail for the behaviour they test; what happens to messages
/// sent *during* the settling is a test of its own
/// (`messages_sent_while_a_pair_settles_on_one_connection_all_arrive`). The deadline
/// is generous: on a machine busy with other suites the settling can take a while.
fn wait_until_settled(hosts: &[Ipv4Addr], port: u16) {
    const CALM_LOOKS: usize = 6;
    let pairs = hosts.len() * (hosts.len() - 1) / 2;
    let deadline = Instant::now() + 2 * EVENT_TIMEOUT;
    let mut calm = 0;
    let mut last_look = String::new();
    while calm < CALM_LOOKS {
        let sockets = chat_sockets(hosts, port);
        let transient = sockets
            .iter()
            .any(|s| s.state != "ESTAB" && s.state != "TIME-WAIT");
        let look = established_connections(&sockets, port);
        if !transient && look == Ok(pairs) {
            calm += 1;
        } else {
            calm = 0;
            last_look = format!("{look:?}, sockets: {sockets:#?}");
        }
        assert!(
            Instant::now() < deadline,
            "the connections among {hosts:?} on port {port} did not settle to one per pair \
             ({pairs}); last unsettled look: {last_look}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn members_started_at_the_same_moment_keep_exactly_one_connection_per_pair() {
    const MEMBERS: usize = 8;
    const PAIRS: usize = MEMBERS * (MEMBERS - 1) / 2;
    // Who dials whom first is a race; a few rounds give it a few chances to go wrong.
    for round in 0..3 {
        let port = free_port();
        let hosts = fresh_hosts(MEMBERS);
        let mut members = start_all_at_once(&hosts, port);
        wait_for_full_mesh(&mut members);
        for member in &mut members {
            member.assert_no_event("a join or a leave", is_membership_change, Duration::ZERO);
        }
        // Now every pair may still be closing its second connection; a wrongly closed
        // winner would show as a leave (and a rejoin) while we watch.
        members[0].assert_no_event("a join or a leave", is_membership_change, SETTLE);
        for member in &mut members {
            member.inbox.poll();
            let joins = member.inbox.count(|e| matches!(e, Event::Joined(_)));
            let leaves = member.inbox.count(|e| matches!(e, Event::Left(_)));
            assert_eq!(
                (joins, leaves),
                (MEMBERS - 1, 0),
                "round {round}: (joins, leaves) at {}; events: {:#?}",
                member.addr(),
                member.inbox.log
            );
            assert_eq!(member.node.members().len(), MEMBERS - 1);
        }
        assert_eq!(
            established_connections_now(&hosts, port),
            PAIRS,
            "round {round}: established connections among {hosts:?} on port {port}"
        );
        members.iter().for_each(|m| m.node.leave());
    }
}

#[test]
fn a_second_member_on_the_same_address_is_refused() {
    let port = free_port();
    let hosts = fresh_hosts(2);
    let mut members = connected_members(&hosts, port);

    let error = match Node::start(Config {
        port,
        ..Config::new(hosts[0], "twin")
    }) {
        Err(error) => error,
        Ok((twin, _)) => {
            twin.leave();
            panic!("a second member started on {}:{port}", hosts[0]);
        }
    };
    assert!(
        matches!(error, StartError::HostInUse { host, port: p } if host == hosts[0] && p == port),
        "expected HostInUse, got {error:?}: {error}"
    );
    assert!(
        error
            .to_string()
            .contains("Don't use the same host for multiple members"),
        "{error}"
    );
    // The refused start changed nothing for the member already there.
    members[1].assert_no_event(
        "a join or a leave",
        is_membership_change,
        Duration::from_millis(1500),
    );
    members[0].send("still me");
    let received = members[1].expect_message(hosts[0], "still me");
    assert_eq!(received.sender_name, "m0");
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn an_address_not_on_this_machine_is_refused() {
    // 198.18.0.0/15 is set aside for benchmarking and is not configured here. Binding
    // the listener fails before any packet could be sent from or to it.
    let host = Ipv4Addr::new(198, 18, 0, 99);
    let error = match Node::start(Config {
        port: free_port(),
        ..Config::new(host, "stranger")
    }) {
        Err(error) => error,
        Ok((stranger, _)) => {
            stranger.leave();
            panic!("a member started on {host}, which is not on this machine");
        }
    };
    assert!(
        matches!(error, StartError::AddressNotLocal(refused) if refused == host),
        "expected AddressNotLocal, got {error:?}: {error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("198.18.0.99 is not an address of this machine"),
        "{message}"
    );
}

#[test]
fn order_is_kept_for_thousands_of_messages() {
    const MESSAGES: usize = 3000;
    let port = free_port();
    let hosts = fresh_hosts(2);
    let mut members = connected_members(&hosts, port);

    // The sender gets its own messages back as events, and its event queue is bounded:
    // it must be read while sending, so the sending happens on another thread.
    let sender = members[0].node.clone();
    let sending = thread::spawn(move || {
        for i in 0..MESSAGES {
            sender
                .send(&format!("burst {i}"))
                .unwrap_or_else(|e| panic!("cannot send message {i}: {e}"));
        }
    });
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while members[1].inbox.texts_from(hosts[0]).len() < MESSAGES && Instant::now() < deadline {
        members[1].inbox.receive(Duration::from_millis(10));
        members[1].inbox.poll();
        members[0].inbox.poll();
    }
    sending.join().expect("the sending thread panicked");
    members[0].inbox.poll();

    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("burst {i}")).collect();
    let received = members[1].inbox.texts_from(hosts[0]);
    let first_difference = received.iter().zip(&expected).position(|(r, e)| r != e);
    assert!(
        received == expected,
        "received {} of {MESSAGES} messages; first difference at {first_difference:?}",
        received.len()
    );
    assert_eq!(
        members[0].inbox.texts_from(hosts[0]),
        expected,
        "the sender's own events"
    );
    members.iter().for_each(|m| m.node.leave());
}

#[test]
fn a_restarted_member_is_seen_to_leave_and_join_again() {
    let port = free_port();
    let hosts = fresh_hosts(2);
    let mut stayer = Participant::on(hosts[0], "stayer", port);
    let first_run = Participant::on(hosts[1], "first run", port);
    stayer.expect_joined(&first_run.me());
    // Leaving in the middle of connecting is a test of its own
    // (`a_member_that_leaves_while_it_is_being_connected_is_seen_to_leave`).
    wait_until_settled(&hosts, port);
    let first = first_run.node.me();
    first_run.node.leave();
    stayer.expect_left(&first);

    // The same address and port again, as a new run of the program.
    let second_run = Participant::on(hosts[1], "second run", port);
    stayer.expect_joined(&second_run.me());
    stayer.assert_no_event(
        &format!("a join or a leave of {}", hosts[1]),
        is_joined_or_left_of(hosts[1]),
        SETTLE,
    );
    let changes: Vec<&Event> = stayer
        .inbox
        .log
        .iter()
        .filter(|e| is_membership_change(e))
        .collect();
    assert_eq!(
        changes,
        [
            &Event::Joined(first.clone()),
            &Event::Left(first),
            &Event::Joined(second_run.node.me()),
        ]
    );
    assert_eq!(stayer.node.members(), [second_run.node.me()]);
    drop(first_run);
    second_run.node.leave();
    stayer.node.leave();
}

#[test]
fn hooray_reaches_everyone_naming_the_sender() {
    let port = free_port();
    let hosts = fresh_hosts(3);
    let mut members = connected_members(&hosts, port);
    let cheerer = Member {
        name: "m1".into(),
        addr: hosts[1],
    };
    let before = now_ms();
    members[1].node.hooray().expect("send a hooray");

    for member in &mut members {
        // The sender too: it sees its own hooray, naming itself.
        let event = member.expect_event("a hooray", |e| matches!(e, Event::Hooray { .. }));
        let Event::Hooray { from, sent_at_ms } = event else {
            unreachable!("the predicate matched {event:?}");
        };
        assert_eq!(from, cheerer, "at {}", member.addr());
        let after = now_ms();
        assert!(
            (before - 1000..=after + 1000).contains(&sent_at_ms),
            "hooray time {sent_at_ms} at {} is not between {before} and {after}",
            member.addr()
        );
    }
    // One hooray, seen once by each.
    members[0].assert_no_event(
        "a second hooray",
        |e| matches!(e, Event::Hooray { .. }),
        SETTLE,
    );
    for member in &mut members {
        member.inbox.poll();
        let hoorays = member.inbox.count(|e| matches!(e, Event::Hooray { .. }));
        assert_eq!(hoorays, 1, "hoorays seen at {}", member.addr());
    }
    members.iter().for_each(|m| m.node.leave());
}
