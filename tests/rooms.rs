//! Rooms (`--room`): members of different rooms on one port and one LAN hear each
//! other's announcements but never connect, not even for a moment; members of one room
//! chat as usual.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
//!
//! The check that no connection crosses rooms reads the kernel's own list (`ss`), so
//! this file needs Linux.

#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use p2pchat::{Config, Event, Member};

use common::hosts::Hosts;
use common::participant::Participant;
use common::sockets::{TcpSocket, tcp_sockets_on_port};
use common::{SETTLE, free_port};

#[test]
fn members_of_different_rooms_never_connect() {
    let hosts = Hosts::fresh();
    let port = free_port();
    let in_room = |last: u8, name: &str, room: Option<&str>| {
        let mut config = Config {
            port,
            ..Config::new(hosts.addr(last), name)
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
        for TcpSocket { state, local, peer } in tcp_sockets_on_port(port) {
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
