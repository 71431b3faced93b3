//! Frame tracing in the library ([`p2pchat::Config::trace_frames`]): every frame a
//! member sends or receives is reported with its peer and its direction.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
#![cfg(target_os = "linux")]

mod common;

use std::net::Ipv4Addr;

use p2pchat::protocol::Frame;
use p2pchat::{Config, Event, WireDirection};

use common::free_port;
use common::hosts::Hosts;
use common::participant::Participant;

#[test]
fn trace_frames_reports_each_frame_with_its_peer_and_direction() {
    let hosts = Hosts::fresh();
    let port = free_port();
    let mut alex = Participant::start(Config {
        port,
        trace_frames: true,
        ..Config::new(hosts.addr(1), "Alex")
    });
    let mut bo = Participant::on(hosts.addr(2), "Bo", port);
    let mut cleo = Participant::on(hosts.addr(3), "Cleo", port);
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
