//! Faults a real LAN has, on the virtual LAN of `tests/common/lan.rs`, with the real
//! binary: a member killed, a cable pulled and plugged back, a frozen process, lost
//! broadcasts, a lossy network, a member that leaves with messages still in flight,
//! and a burst of thousands of lines. Each test proves that the others carry on and
//! that nothing promised is lost.
//!
//! Members are named by their host number: host 1 is "A" (198.18.0.1), host 2 is "B",
//! and so on. Every namespace is a machine of its own, so all use the default port.
//!
//! Tests wait for events with generous deadlines and never assert on speed; the times
//! they measure are printed (run with `--nocapture` to see them).
#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use common::lan::Lan;
use common::process::{ChatProcess, wait_until_all_joined};
use common::{EVENT_TIMEOUT, require_root, said};
use p2pchat::tuning::DEFAULT_PORT;

const NAMES: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

#[test]
fn a_killed_member_is_seen_to_leave() {
    if !require_root("a_killed_member_is_seen_to_leave") {
        return;
    }
    let lan = Lan::new(3);
    let members = start_members(&lan, 3);
    members[1].signal("KILL");
    let killed = Instant::now();
    for survivor in [&members[0], &members[2]] {
        wait_for_count(survivor, "B left chat", 1, EVENT_TIMEOUT);
    }
    eprintln!("SIGKILL: both saw B leave after {:?}", killed.elapsed());
    assert_chat_works(&members, &[0, 2], "after B was killed");
}

#[test]
fn a_pulled_cable_is_noticed_within_the_peer_timeout() {
    if !require_root("a_pulled_cable_is_noticed_within_the_peer_timeout") {
        return;
    }
    let lan = Lan::new(3);
    let members = start_members(&lan, 3);
    lan.cable_out(2);
    let pulled = Instant::now();
    for survivor in [&members[0], &members[2]] {
        wait_for_count(survivor, "B left chat", 1, EVENT_TIMEOUT);
        eprintln!(
            "pulled cable: {} saw B leave after {:?}",
            survivor.label(),
            pulled.elapsed()
        );
    }
    // B, alone behind its cable, sees the others go the same way.
    wait_for_count(&members[1], "A left chat", 1, EVENT_TIMEOUT);
    wait_for_count(&members[1], "C left chat", 1, EVENT_TIMEOUT);
    assert_chat_works(&members, &[0, 2], "with B's cable out");
}

#[test]
fn a_member_whose_cable_comes_back_rejoins_with_one_connection_per_pair() {
    if !require_root("a_member_whose_cable_comes_back_rejoins_with_one_connection_per_pair") {
        return;
    }
    let lan = Lan::new(3);
    let members = start_members(&lan, 3);
    lan.cable_out(2);
    for survivor in [&members[0], &members[2]] {
        wait_for_count(survivor, "B left chat", 1, EVENT_TIMEOUT);
    }
    wait_for_count(&members[1], "A left chat", 1, EVENT_TIMEOUT);
    wait_for_count(&members[1], "C left chat", 1, EVENT_TIMEOUT);

    let plugged = Instant::now();
    lan.cable_in(2);
    for survivor in [&members[0], &members[2]] {
        wait_for_count(survivor, "B joined chat", 2, EVENT_TIMEOUT);
    }
    wait_for_count(&members[1], "A joined chat", 2, EVENT_TIMEOUT);
    wait_for_count(&members[1], "C joined chat", 2, EVENT_TIMEOUT);
    eprintln!("cable back: B rejoined after {:?}", plugged.elapsed());

    assert_one_connection_per_pair(&lan, 3);
    for (index, member) in members.iter().enumerate() {
        assert_members_once(&lan, member, index + 1, 3);
    }
    assert_chat_works(&members, &[0, 1, 2], "after B's cable came back");
}

#[test]
fn a_frozen_member_does_not_hold_up_the_others() {
    if !require_root("a_frozen_member_does_not_hold_up_the_others") {
        return;
    }
    const BURST: usize = 300;
    let lan = Lan::new(3);
    let members = start_members(&lan, 3);
    members[2].signal("STOP");
    let frozen = Instant::now();
    // Enough to fill C's receive window and A's send buffer (over 1 MB): A's writes to
    // C block, and must not block A's writes to B.
    let filler = "f".repeat(4000);
    for n in 1..=BURST {
        members[0].send_line(&format!("frozen {n:04} {filler}"));
    }
    wait_for_messages(&members[1], "A", "frozen ", BURST, EVENT_TIMEOUT);
    eprintln!(
        "frozen C: B had all {BURST} of A's 4 KB lines after {:?}",
        frozen.elapsed()
    );
    assert_in_order(&members[1], "A", "frozen ", BURST);
    members[1].send_line("B, with C frozen");
    members[0].wait_for_said("B", "B, with C frozen");
    for other in [&members[0], &members[1]] {
        wait_for_count(other, "C left chat", 1, EVENT_TIMEOUT);
        eprintln!(
            "frozen C: {} saw C leave after {:?}",
            other.label(),
            frozen.elapsed()
        );
    }

    members[2].signal("CONT");
    let thawed = Instant::now();
    for other in [&members[0], &members[1]] {
        wait_for_count(other, "C joined chat", 2, EVENT_TIMEOUT);
    }
    eprintln!("thawed C: rejoined after {:?}", thawed.elapsed());
    assert_one_connection_per_pair(&lan, 3);
    assert_chat_works(&members, &[0, 1, 2], "after C thawed");
}

#[test]
fn a_member_that_started_with_its_cable_out_joins_when_it_comes_back() {
    if !require_root("a_member_that_started_with_its_cable_out_joins_when_it_comes_back") {
        return;
    }
    let lan = Lan::new(3);
    let mut members = start_members(&lan, 2);
    lan.cable_out(3);
    members.push(spawn_member(&lan, 3));
    members[2].wait_for_line_containing("Welcome to the chat", EVENT_TIMEOUT);
    // Long enough for all of C's start-up announcements (0, 0.25 and 1 s) to be lost,
    // and its first periodic one (3 s) too.
    thread::sleep(Duration::from_millis(3500));
    for member in &members {
        assert_eq!(
            member.count_lines(|line| line.ends_with("joined chat")),
            if member.label() == "host3" { 0 } else { 1 },
            "{} saw someone join through a pulled cable",
            member.label()
        );
    }
    let plugged = Instant::now();
    lan.cable_in(3);
    wait_until_all_joined(&named(&members), EVENT_TIMEOUT);
    eprintln!(
        "started with its cable out: C joined {:?} after the cable came in",
        plugged.elapsed()
    );
    assert_chat_works(&members, &[0, 1, 2], "after C's cable came in");
}

#[test]
fn six_members_under_thirty_percent_loss_all_find_each_other() {
    if !require_root("six_members_under_thirty_percent_loss_all_find_each_other") {
        return;
    }
    const HOSTS: usize = 6;
    // Each packet crosses two lossy hosts: half of them arrive. Handshakes and
    // heartbeats ride on TCP's resends, and a connection can time out and be re-made,
    // so finding everyone takes longer than a single event.
    const FIND_TIMEOUT: Duration = Duration::from_secs(60);
    // How long the chat runs under loss after everyone has found everyone, checking
    // /members all along.
    const LOSSY_CHAT: Duration = Duration::from_secs(10);
    let lan = Lan::new(HOSTS);
    for host in 1..=HOSTS {
        lan.set_loss(host, 30);
    }
    let started = Instant::now();
    let members: Vec<ChatProcess> = (1..=HOSTS).map(|host| spawn_member(&lan, host)).collect();
    wait_until_all_joined(&named(&members), FIND_TIMEOUT);
    eprintln!(
        "30% loss: all {HOSTS} had seen the others join after {:?}",
        started.elapsed()
    );
    // Under loss /members may miss someone whose connection is being re-made, but it
    // never lists anyone twice.
    let lossy_until = Instant::now() + LOSSY_CHAT;
    while Instant::now() < lossy_until {
        for member in &members {
            assert_listed_once(&members_listed(member), member);
        }
    }
    let departures: Vec<usize> = members
        .iter()
        .map(|member| member.count_lines(|line| line.ends_with(" left chat")))
        .collect();
    eprintln!(
        "30% loss: after {:?}, \"left chat\" lines per host (connections lost and \
         re-made): {departures:?}",
        started.elapsed()
    );

    // Whatever the loss did, once it stops everyone is connected to everyone, once.
    for host in 1..=HOSTS {
        lan.clear_loss(host);
    }
    let cleared = Instant::now();
    let deadline = cleared + EVENT_TIMEOUT;
    for (index, member) in members.iter().enumerate() {
        loop {
            let listed = members_listed(member);
            assert_listed_once(&listed, member);
            if listed.len() == HOSTS - 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "host{}: /members lists {listed:?}, not all {} others, {EVENT_TIMEOUT:?} \
                 after the loss stopped\nestablished chat connections per host: {:#?}\n{}",
                index + 1,
                HOSTS - 1,
                (1..=HOSTS)
                    .map(|host| (host, lan.established_tcp(host, DEFAULT_PORT)))
                    .collect::<Vec<_>>(),
                output_of(member)
            );
            thread::sleep(Duration::from_millis(500));
        }
    }
    assert_one_connection_per_pair(&lan, HOSTS);
    eprintln!(
        "30% loss: every /members listed all others {:?} after the loss stopped",
        cleared.elapsed()
    );
}

#[test]
fn leaving_loses_nothing() {
    if !require_root("leaving_loses_nothing") {
        return;
    }
    const LINES: usize = 500;
    let lan = Lan::new(3);
    let mut members = start_members(&lan, 3);
    let padding = "p".repeat(200);
    for n in 1..=LINES {
        members[0].send_line(&format!("last words {n:04} {padding}"));
    }
    members[0].close_stdin();
    for other in [&members[1], &members[2]] {
        wait_for_count(other, "A left chat", 1, EVENT_TIMEOUT);
        assert_in_order(other, "A", "last words ", LINES);
        let lines = other.stdout_lines();
        let last_message = lines
            .iter()
            .rposition(|line| said(line, "A").is_some_and(|text| text.starts_with("last words")));
        let left = lines.iter().position(|line| line == "A left chat");
        assert!(
            last_message < left,
            "{}: A's leave notice came before its last message",
            other.label()
        );
    }
    let status = members[0].wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "A exited with {status}");
}

/// The other two ways to leave: `/exit`, and Ctrl-C (SIGINT) once the lines are sent.
#[test]
fn leaving_by_exit_or_ctrl_c_loses_nothing() {
    if !require_root("leaving_by_exit_or_ctrl_c_loses_nothing") {
        return;
    }
    const LINES: usize = 300;
    let lan = Lan::new(3);
    let mut members = start_members(&lan, 3);
    let padding = "p".repeat(200);

    for n in 1..=LINES {
        members[0].send_line(&format!("exit words {n:04} {padding}"));
    }
    members[0].send_line("/exit");
    // A signal, unlike /exit, does not wait for the lines still unread in stdin: wait
    // until B has sent them all (each is shown to its sender once sent).
    for n in 1..=LINES {
        members[1].send_line(&format!("signal words {n:04} {padding}"));
    }
    wait_for_messages(&members[1], "B", "signal words ", LINES, EVENT_TIMEOUT);
    members[1].signal("INT");

    // Who must have heard each leaver: everyone still there when it left.
    for (leaver, prefix, listeners) in [
        (0, "exit words ", &[1, 2][..]),
        (1, "signal words ", &[2][..]),
    ] {
        let name = NAMES[leaver];
        let left = format!("{name} left chat");
        for &listener in listeners {
            let other = &members[listener];
            wait_for_count(other, &left, 1, EVENT_TIMEOUT);
            assert_in_order(other, name, prefix, LINES);
            let lines = other.stdout_lines();
            let last_message = lines
                .iter()
                .rposition(|line| said(line, name).is_some_and(|text| text.starts_with(prefix)));
            let left_at = lines.iter().position(|line| *line == left);
            assert!(
                last_message < left_at,
                "{}: {name}'s leave notice came before its last message",
                other.label()
            );
        }
    }
    for leaver in [0, 1] {
        let status = members[leaver].wait_exit(EVENT_TIMEOUT);
        assert!(status.success(), "{} exited with {status}", NAMES[leaver]);
    }
}

#[test]
fn thousands_in_a_burst_arrive_in_order() {
    if !require_root("thousands_in_a_burst_arrive_in_order") {
        return;
    }
    const LINES: usize = 3000;
    let lan = Lan::new(3);
    let members = start_members(&lan, 3);
    let started = Instant::now();
    for n in 1..=LINES {
        members[0].send_line(&format!("burst {n:05}"));
    }
    for other in [&members[1], &members[2]] {
        wait_for_messages(other, "A", "burst ", LINES, EVENT_TIMEOUT);
        assert_in_order(other, "A", "burst ", LINES);
    }
    eprintln!(
        "burst: {LINES} lines delivered to both in {:?}",
        started.elapsed()
    );
}

/// Starts members on hosts 1..=`hosts` and waits until everyone has seen everyone join.
fn start_members(lan: &Lan, hosts: usize) -> Vec<ChatProcess> {
    let members: Vec<ChatProcess> = (1..=hosts).map(|host| spawn_member(lan, host)).collect();
    wait_until_all_joined(&named(&members), EVENT_TIMEOUT);
    members
}

fn spawn_member(lan: &Lan, host: usize) -> ChatProcess {
    lan.spawn(host, &[&lan.host_ip(host).to_string(), NAMES[host - 1]])
}

/// Each member with the name it chats as, host 1 "A" first.
fn named(members: &[ChatProcess]) -> Vec<(&ChatProcess, &str)> {
    members.iter().zip(NAMES).collect()
}

/// Waits until `member` has printed the line `line` at least `times` times in all.
#[track_caller]
fn wait_for_count(member: &ChatProcess, line: &str, times: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = member.count_lines(|printed| printed == line);
        if seen >= times {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{}: {line:?} printed {seen} times, expected {times} within {timeout:?}\n{}",
                member.label(),
                output_of(member)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `member` has shown `count` messages from `sender` starting with `prefix`.
#[track_caller]
fn wait_for_messages(
    member: &ChatProcess,
    sender: &str,
    prefix: &str,
    count: usize,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = member
            .count_lines(|line| said(line, sender).is_some_and(|text| text.starts_with(prefix)));
        if seen >= count {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{}: {seen} of {count} messages {prefix:?}... from {sender} within {timeout:?}",
                member.label()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that `member` showed exactly the messages `PREFIX0001...` up to `count` from
/// `sender`, each once, in order (the number is the first word after `prefix`).
#[track_caller]
fn assert_in_order(member: &ChatProcess, sender: &str, prefix: &str, count: usize) {
    let numbers: Vec<usize> = member
        .stdout_lines()
        .iter()
        .filter_map(|line| said(line, sender)?.strip_prefix(prefix))
        .map(|rest| {
            let number = rest.split(' ').next().unwrap_or_default();
            number
                .parse()
                .unwrap_or_else(|_| panic!("unexpected message {prefix}{rest:?}"))
        })
        .collect();
    let expected: Vec<usize> = (1..=count).collect();
    if numbers != expected {
        let first_wrong = numbers
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want);
        panic!(
            "{}: got {} messages from {sender}, expected 1..={count} in order; first \
             difference at position {first_wrong:?}",
            member.label(),
            numbers.len()
        );
    }
}

/// Every member in `talking` sends a line, and every other one of them shows it.
#[track_caller]
fn assert_chat_works(members: &[ChatProcess], talking: &[usize], when: &str) {
    for &speaker in talking {
        let text = format!("{} speaking {when}", NAMES[speaker]);
        members[speaker].send_line(&text);
        for &listener in talking {
            if listener != speaker {
                members[listener].wait_for_said(NAMES[speaker], &text);
            }
        }
    }
}

/// Waits until every host has exactly one established chat connection to each other
/// host, and nothing else on the chat port.
#[track_caller]
fn assert_one_connection_per_pair(lan: &Lan, hosts: usize) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    for host in 1..=hosts {
        let mut expected: Vec<Ipv4Addr> = (1..=hosts)
            .filter(|&other| other != host)
            .map(|other| lan.host_ip(other))
            .collect();
        expected.sort();
        loop {
            let connections = lan.established_tcp(host, DEFAULT_PORT);
            let mut peers: Vec<Ipv4Addr> = connections.iter().map(|(_, peer)| *peer.ip()).collect();
            peers.sort();
            if peers == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "host{host} has these chat connections, not one to each other host: \
                 {connections:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Checks that /members lists each of the other `hosts` members exactly once.
#[track_caller]
fn assert_members_once(lan: &Lan, member: &ChatProcess, host: usize, hosts: usize) {
    let listed = members_listed(member);
    assert_listed_once(&listed, member);
    let mut expected: Vec<(String, Ipv4Addr)> = (1..=hosts)
        .filter(|&other| other != host)
        .map(|other| (NAMES[other - 1].to_string(), lan.host_ip(other)))
        .collect();
    expected.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, expected, "{}: /members", member.label());
}

#[track_caller]
fn assert_listed_once(listed: &[(String, Ipv4Addr)], member: &ChatProcess) {
    let mut times: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (_, addr) in listed {
        *times.entry(*addr).or_default() += 1;
    }
    assert!(
        times.values().all(|&n| n == 1),
        "{}: /members lists someone twice: {listed:?}",
        member.label()
    );
}

/// Types /members and returns the other members it lists, as (name, address).
fn members_listed(member: &ChatProcess) -> Vec<(String, Ipv4Addr)> {
    const HEADING: &str = "All active members:";
    let before = member.count_lines(|line| line == HEADING);
    member.send_line("/members");
    wait_for_count(member, HEADING, before + 1, EVENT_TIMEOUT);
    // The answer is printed at once; give the output reader a moment for the rest.
    thread::sleep(Duration::from_millis(200));
    let lines = member.stdout_lines();
    let start = lines
        .iter()
        .rposition(|line| line == HEADING)
        .expect("the heading was just seen");
    lines[start + 1..]
        .iter()
        .map_while(|line| {
            let (name, rest) = line.rsplit_once(": ")?;
            let addr = rest.strip_suffix(" (you)").unwrap_or(rest).parse().ok()?;
            Some((rest.ends_with(" (you)"), name.to_string(), addr))
        })
        .filter(|(me, _, _)| !me)
        .map(|(_, name, addr)| (name, addr))
        .collect()
}

/// The end of a member's output for a failure message, long lines cut short.
fn output_of(member: &ChatProcess) -> String {
    const LAST_LINES: usize = 60;
    let tail = |lines: Vec<String>| {
        let skipped = lines.len().saturating_sub(LAST_LINES);
        let shown: Vec<String> = lines[skipped..]
            .iter()
            .map(|line| line.chars().take(120).collect())
            .collect();
        format!("({skipped} earlier lines not shown)\n{}", shown.join("\n"))
    };
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        tail(member.stdout_lines()),
        tail(member.stderr_lines())
    )
}
