//! Names: a rename (`/name`, [`p2pchat::Node::rename`]) is seen by everyone and in
//! `/members`, and members who share a name are told apart by their addresses.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
#![cfg(target_os = "linux")]

mod common;

use std::net::Ipv4Addr;

use p2pchat::{Event, Member, SendError};

use common::hosts::Hosts;
use common::participant::{Participant, alex_bo_and_cleo};
use common::process::{ChatProcess, member};
use common::{free_port, said};

#[test]
fn a_rename_is_seen_by_everyone_and_in_members() {
    let (block, mut members) = alex_bo_and_cleo();
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
    let mut late = Participant::on(block.addr(4), "Dee", members[0].node.port());
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
    let block = Hosts::fresh();
    let port = free_port();
    let names = ["Alex", "Bo", "Cleo"];
    let hosts: Vec<Ipv4Addr> = (1..=3).map(|last| block.addr(last)).collect();
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
    alex.wait_for_said("Bobby", "still me");
    cleo.wait_for_said("Bobby", "still me");
    alex.send_line("/members");
    alex.wait_for_exact(&format!("Bobby: {}", hosts[1]));
}

#[test]
fn members_who_share_a_name_are_told_apart() {
    let block = Hosts::fresh();
    let port = free_port();
    let (tess_at, first_at, second_at) = (block.addr(1), block.addr(2), block.addr(3));
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
    tess.wait_for_said(&format!("Sam ({first_at})"), "one");
    tess.wait_for_said(&format!("Sam ({second_at})"), "two");
    second.wait_for_said(&format!("Sam ({first_at})"), "one");
    first.wait_for_said(&format!("Sam ({second_at})"), "two");
    tess.assert_not_printed("a Sam without an address", |l| said(l, "Sam").is_some());

    // /members lists both, each with its address.
    tess.send_line("/members");
    tess.wait_for_exact(&format!("Sam: {first_at}"));
    tess.wait_for_exact(&format!("Sam: {second_at}"));
}
