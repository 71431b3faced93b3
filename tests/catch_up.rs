//! Nothing lost across a pulled cable: when a member of the same run comes back after
//! a cut, what was said while apart reaches it (and what it said reaches the others),
//! once each, in order, marked as late; what no longer exists is counted.
//!
//! Namespace LAN tests (see `tests/common/lan.rs`): three hosts, the real binary, a
//! cable pulled at the switch for longer than the silence timeout (4 s), so that both
//! sides see the other leave, and plugged back in.
#![cfg(target_os = "linux")]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::lan::Lan;
use common::process::ChatProcess;
use common::{EVENT_TIMEOUT, require_root, said};

const NAMES: [&str; 3] = ["Ann", "Bob", "Cyd"];

/// How long the cable stays out: past the 4 s silence timeout, as a Wi-Fi drop would.
const CUT: Duration = Duration::from_secs(8);

/// Three members on three hosts, each having seen the other two join.
fn three_members(lan: &Lan) -> Vec<ChatProcess> {
    let members: Vec<ChatProcess> = (1..=3)
        .map(|host| lan.spawn(host, &[&lan.host_ip(host).to_string(), NAMES[host - 1]]))
        .collect();
    for (index, member) in members.iter().enumerate() {
        for name in NAMES.iter().filter(|n| **n != NAMES[index]) {
            member.wait_for_exact(&format!("{name} joined chat"));
        }
    }
    members
}

/// The text of a line shown as late, `hh:mm:ss [late] NAME: TEXT`, if it is one.
fn late<'a>(line: &'a str, sender: &str) -> Option<&'a str> {
    let (time, rest) = line.split_at_checked(8)?;
    if !time.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    rest.strip_prefix(" [late] ")?
        .strip_prefix(sender)?
        .strip_prefix(": ")
}

/// Waits until `member` has seen `name` leave and, after the cable is back, join again.
#[track_caller]
fn wait_for_return(member: &ChatProcess, name: &str) {
    member.wait_for_count(
        &format!("{name} joined again"),
        |line| line == format!("{name} joined chat"),
        2,
    );
}

/// Pulls host 3's cable, runs `while_apart`, waits until both sides noticed and the cut
/// lasted [`CUT`], plugs it back in, and waits until everyone is together again.
fn cut_host_3(lan: &Lan, members: &[ChatProcess], while_apart: impl FnOnce()) {
    let cut_at = Instant::now();
    lan.cable_out(3);
    while_apart();
    for member in &members[..2] {
        member.wait_for_exact("Cyd left chat");
    }
    members[2].wait_for_exact("Ann left chat");
    members[2].wait_for_exact("Bob left chat");
    if let Some(rest) = CUT.checked_sub(cut_at.elapsed()) {
        thread::sleep(rest);
    }
    lan.cable_in(3);
    for member in &members[..2] {
        wait_for_return(member, "Cyd");
    }
    wait_for_return(&members[2], "Ann");
    wait_for_return(&members[2], "Bob");
}

#[test]
fn a_member_cut_off_for_8_s_gets_every_line_it_missed_once_in_order_and_marked() {
    if !require_root("a_member_cut_off_for_8_s_gets_every_line_it_missed_once_in_order_and_marked")
    {
        return;
    }
    let lan = Lan::new(3);
    let members = three_members(&lan);
    let (ann, bob, cyd) = (&members[0], &members[1], &members[2]);
    let lines: Vec<(usize, String)> = (1..=20)
        .map(|i| ((i + 1) % 2, format!("away {i:02}")))
        .collect();
    cut_host_3(&lan, &members, || {
        // Ann and Bob take turns, each line seen by both before the next: 20 lines in
        // a known order. Then Ann's private line, before anyone noticed Cyd is gone.
        for (speaker, text) in &lines {
            members[*speaker].send_line(text);
            for listener in [ann, bob] {
                listener.wait_for_line(
                    |line| said(line, NAMES[*speaker]) == Some(text.as_str()),
                    EVENT_TIMEOUT,
                );
            }
        }
        ann.send_line("/msg Cyd psst, while you are away");
        ann.wait_for_line(
            |line| line.contains("[private to Cyd] Ann: psst"),
            EVENT_TIMEOUT,
        );
    });

    // Cyd shows every line, once, in order, marked late; and the private one.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let shown = loop {
        let shown: Vec<(String, String)> = cyd
            .stdout_lines()
            .iter()
            .filter_map(|line| {
                NAMES[..2].iter().find_map(|name| {
                    late(line, name).map(|text| (name.to_string(), text.to_owned()))
                })
            })
            .collect();
        if shown.len() >= 20 || Instant::now() >= deadline {
            break shown;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let expected: Vec<(String, String)> = lines
        .iter()
        .map(|(speaker, text)| (NAMES[*speaker].to_string(), text.clone()))
        .collect();
    assert!(
        shown == expected,
        "Cyd showed {shown:?}, not the 20 lines once each in order\n{}",
        cyd.transcript()
    );
    cyd.wait_for_line(
        |line| line.ends_with(" [late] [private] Ann: psst, while you are away"),
        EVENT_TIMEOUT,
    );
    thread::sleep(Duration::from_secs(1));
    assert_eq!(
        cyd.count_lines(|line| line.contains("psst, while you are away")),
        1,
        "{}",
        cyd.transcript()
    );
    // Nothing shows twice anywhere.
    for member in &members {
        for (_, text) in &lines {
            assert_eq!(
                member.count_lines(|line| line.ends_with(&format!(": {text}"))),
                1,
                "{}: {text}\n{}",
                member.label(),
                member.transcript()
            );
        }
    }
}

#[test]
fn what_a_cut_off_member_says_while_away_reaches_the_others_on_its_return() {
    if !require_root("what_a_cut_off_member_says_while_away_reaches_the_others_on_its_return") {
        return;
    }
    let lan = Lan::new(3);
    let members = three_members(&lan);
    let cyd = &members[2];
    let lines: Vec<String> = (1..=5).map(|i| format!("from the island {i}")).collect();
    cut_host_3(&lan, &members, || {
        for text in &lines {
            cyd.send_line(text);
            cyd.wait_for_line(
                |line| said(line, "Cyd") == Some(text.as_str()),
                EVENT_TIMEOUT,
            );
        }
    });
    for member in &members[..2] {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let shown = loop {
            let shown: Vec<String> = member
                .stdout_lines()
                .iter()
                .filter_map(|line| late(line, "Cyd").map(str::to_owned))
                .collect();
            if shown.len() >= lines.len() || Instant::now() >= deadline {
                break shown;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(
            shown == lines,
            "{} showed {shown:?}\n{}",
            member.label(),
            member.transcript()
        );
    }
    thread::sleep(Duration::from_secs(1));
    for member in &members {
        for text in &lines {
            assert_eq!(
                member.count_lines(|line| line.ends_with(&format!(": {text}"))),
                1,
                "{}: {text}\n{}",
                member.label(),
                member.transcript()
            );
        }
    }
}

#[test]
fn a_cut_longer_than_the_history_holds_says_how_many_were_lost() {
    if !require_root("a_cut_longer_than_the_history_holds_says_how_many_were_lost") {
        return;
    }
    const SAID: usize = 1200; // the log holds 1000
    let lan = Lan::new(3);
    let members = three_members(&lan);
    let (ann, bob, cyd) = (&members[0], &members[1], &members[2]);
    cut_host_3(&lan, &members, || {
        for i in 1..=SAID {
            ann.send_line(&format!("long {i:04}"));
        }
        let last = format!("long {SAID:04}");
        bob.wait_for_line(
            |line| said(line, "Ann") == Some(last.as_str()),
            EVENT_TIMEOUT,
        );
    });
    cyd.wait_for_line(
        |line| line == "200 earlier messages from Ann are no longer available.",
        EVENT_TIMEOUT,
    );
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let shown = cyd.count_lines(|line| late(line, "Ann").is_some());
        if shown >= 1000 {
            assert_eq!(shown, 1000, "{}", cyd.transcript());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Cyd showed {shown} of Ann's 1000 kept lines"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let first_kept = format!("long {:04}", SAID - 999);
    assert_eq!(
        cyd.count_lines(|line| late(line, "Ann") == Some(first_kept.as_str())),
        1
    );
}
