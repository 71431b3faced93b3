//! Private messages (`/msg`, [`p2pchat::Node::send_private`]): they reach only their
//! addressee, never enter the shared history, and `/msg` finds its addressee by name or
//! by address, and asks when a name is ambiguous.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
//!
//! A "must not happen" check watches for [`SETTLE`] once the chat has settled, and is
//! followed by something that must happen over the same path, which proves the member
//! was listening.
#![cfg(target_os = "linux")]

mod common;

use std::net::Ipv4Addr;

use p2pchat::{Event, SendError};

use common::hosts::Hosts;
use common::participant::{Participant, alex_bo_and_cleo};
use common::process::{ChatProcess, member};
use common::{SETTLE, free_port};

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

#[test]
fn a_private_message_reaches_only_its_addressee() {
    let (block, mut members) = alex_bo_and_cleo();
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
    let nobody = block.addr(9);
    assert_eq!(
        alex.node.send_private(nobody, "anyone there?"),
        Err(SendError::NotAMember(nobody))
    );
}

#[test]
fn history_never_hands_a_private_message_to_a_third_member() {
    let (block, mut members) = alex_bo_and_cleo();
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
    let mut late = Participant::on(block.addr(4), "Dee", members[0].node.port());
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
    let block = Hosts::fresh();
    let port = free_port();
    let hosts: Vec<Ipv4Addr> = (1..=5).map(|last| block.addr(last)).collect();
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
    bo.wait_for_said("[private] Alex", "hi");
    alex.wait_for_said("[private to Bo] Alex", "hi");
    // The others get neither line, though they hear Alex's next public line.
    alex.send_line("after the private one");
    for other in [cleo, sam4, sam5] {
        other.wait_for_said("Alex", "after the private one");
        other.assert_not_printed("a private line", |l| l.contains("[private"));
        other.assert_not_printed("the private text", |l| l.ends_with(": hi"));
    }

    // By a shared name: refused, with both candidates' addresses.
    alex.send_line("/msg Sam which one?");
    let answer = alex.wait_for_containing("Several members are called that");
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
    sam4.wait_for_said("[private] Alex", "for the first Sam");
    sam5.wait_for_said("[private] Alex", "for the second Sam");
    alex.wait_for_said(
        &format!("[private to Sam ({})] Alex", hosts[3]),
        "for the first Sam",
    );
    for sam in [sam4, sam5] {
        sam.assert_not_printed("the refused message", |l| l.contains("which one?"));
    }
    sam4.assert_not_printed("the second Sam's message", |l| {
        l.contains("for the second Sam")
    });
    sam5.assert_not_printed("the first Sam's message", |l| {
        l.contains("for the first Sam")
    });
    alex.assert_not_printed("the refused message as sent", |l| {
        l.contains("[private to") && l.contains("which one?")
    });

    // An unknown name: refused, naming it and listing who is there.
    alex.send_line("/msg Zed hello?");
    let answer = alex.wait_for_containing("No member called Zed");
    for (host, name) in hosts.iter().zip(names).skip(1) {
        assert!(
            answer.contains(&format!("{name} ({host})")),
            "the answer should list {name} ({host}): {answer:?}"
        );
    }
    assert!(answer.contains("Not sent"), "{answer:?}");
    // So is an address where nobody is.
    alex.send_line(&format!("/msg {} hello?", block.addr(9)));
    alex.wait_for_containing(&format!("No member called {}", block.addr(9)));
    // Neither reached anyone: a private line sent after them arrives, and they did not.
    for (other, host) in [bo, cleo, sam4, sam5].into_iter().zip(&hosts[1..]) {
        alex.send_line(&format!("/msg {host} last"));
        other.wait_for_said("[private] Alex", "last");
        other.assert_not_printed("a refused message", |l| l.contains("hello?"));
    }
}
