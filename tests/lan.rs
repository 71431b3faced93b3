//! The chat on a virtual LAN: every member on its own machine (a network namespace)
//! with its own 198.18.0.x address, running the real `p2pchat` binary, all plugged into
//! one switch (see `tests/common/lan.rs`).
//!
//! This is where the contract is proven the way a user meets it: announcements that
//! leave by a network card and are flooded by a switch, TCP connections between
//! different machines (counted with `ss`), members that start at the same instant, and
//! a member whose process dies without a word.
//!
//! Every member uses the default port, as on a real LAN: each namespace is a machine of
//! its own, so nothing here can clash with another test or with the machine running it.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::clock::{SECONDS_PER_DAY, clock_text, local_seconds_of_day, split_message_line};
use common::lan::Lan;
use common::process::{CHAT_BINARY, ChatProcess};
use common::{EVENT_TIMEOUT, require_root};
use p2pchat::tuning::{DEFAULT_PORT, PEER_TIMEOUT};

/// The walk-through's members live in Nepal: UTC+05:45 with no daylight saving time,
/// written as a POSIX TZ string so that no time-zone database is needed. CI machines
/// usually run on UTC, where a message stamped in UTC instead of local time would look
/// right; a quarter-hour offset makes that mistake visible.
const MEMBERS_TIME_ZONE: &str = "NPT-5:45";

/// How far the time on a message line may be from the wall clock around the moment it
/// was sent: `hh:mm:ss` drops the milliseconds, and `date` runs a little before and
/// after the send, so a correct time is always within a second or two.
const CLOCK_SLACK_SECONDS: i64 = 5;

/// Eight distinct names, so each "joined chat" line says which member it is about.
const MESH_NAMES: [&str; 8] = ["Ada", "Bea", "Cal", "Dan", "Eve", "Fay", "Gus", "Hal"];

/// How often the simultaneous start is repeated, each time on a fresh LAN: the race
/// between two members dialing each other does not go the same way every time.
const MESH_ROUNDS: usize = 2;

/// After every member has seen all others join, how long the losing duplicates of
/// simultaneous dials get to be closed before the connections are counted.
const MESH_SETTLE: Duration = Duration::from_secs(3);

/// The broadcast address of 198.18.0.0/15, the LAN's subnet.
const SUBNET_BROADCAST: &str = "198.19.255.255";

/// The nftables table in which the broadcast test counts outgoing announcements.
const COUNTING_TABLE: &str = "p2pcount";

#[test]
fn seed_walk_through_on_three_hosts() {
    if !require_root("seed_walk_through_on_three_hosts") {
        return;
    }
    let mut lan = Lan::new(3);
    let names = ["Alex", "Bo Li", "Zoë"];
    let mut members: Vec<ChatProcess> = (1..=3)
        .map(|host| {
            let ip = lan.host_ip(host).to_string();
            spawn_in_members_time_zone(&lan, host, &[&ip, names[host - 1]])
        })
        .collect();
    for (index, member) in members.iter().enumerate() {
        member.wait_for_joins(&all_but(&names, index));
    }

    // A message from host 1 reaches everyone, its sender included, stamped with the
    // members' local time of sending.
    let before = local_seconds_of_day(Some(MEMBERS_TIME_ZONE));
    members[0].send_line("Hello, it's ME!");
    let hello_lines: Vec<String> = members
        .iter()
        .map(|member| {
            member.wait_for_line(
                |line| line.ends_with(" Alex: Hello, it's ME!"),
                EVENT_TIMEOUT,
            )
        })
        .collect();
    let after = local_seconds_of_day(Some(MEMBERS_TIME_ZONE));
    for (member, line) in members.iter().zip(&hello_lines) {
        let Some((shown, rest)) = split_message_line(line) else {
            panic!("{}: {line:?} is not `hh:mm:ss Name: text`", member.label());
        };
        assert_eq!(rest, "Alex: Hello, it's ME!", "{}", member.label());
        assert!(
            clock_within(shown, before, after),
            "{}: {line:?} does not show the local time of sending ({MEMBERS_TIME_ZONE}), \
             which was between {} and {}",
            member.label(),
            clock_text(before),
            clock_text(after)
        );
    }

    // Two more messages, from the other members, one after the other, for /history.
    let mut said = vec![hello_lines[0].clone()];
    for (sender, text) in [(1, "Hi Alex, Bo here"), (2, "Zoë says hello too")] {
        members[sender].send_line(text);
        let suffix = format!(" {}: {text}", names[sender]);
        for (index, member) in members.iter().enumerate() {
            let line = member.wait_for_line(|line| line.ends_with(&suffix), EVENT_TIMEOUT);
            if index == 0 {
                said.push(line);
            }
        }
    }

    // /members on host 2: everyone with their address, host 2 itself marked.
    members[1].send_line("/members");
    members[1].wait_for_line(|line| line == "All active members:", EVENT_TIMEOUT);
    let listed: BTreeSet<String> = next_lines(&members[1], 3).into_iter().collect();
    let expected: BTreeSet<String> = [
        "Alex: 198.18.0.1",
        "Bo Li: 198.18.0.2 (you)",
        "Zoë: 198.18.0.3",
    ]
    .map(String::from)
    .into();
    assert_eq!(listed, expected, "host2's /members");
    assert_eq!(
        members[1].count_lines(|line| line.contains(": 198.18.0.")),
        3,
        "host2's /members lists someone twice or someone who is not there:\n{:#?}",
        members[1].stdout_lines()
    );

    // A late joiner on a fourth machine meets everyone and is met by everyone.
    let late_host = lan.add_host();
    let late_ip = lan.host_ip(late_host).to_string();
    let mut late = spawn_in_members_time_zone(&lan, late_host, &[&late_ip, "Dee"]);
    late.wait_for_joins(&names);
    for member in &members {
        member.wait_for_line(|line| line == "Dee joined chat", EVENT_TIMEOUT);
    }

    // /history: what was said before Dee came, each message once, in the order sent,
    // exactly as the members saw it live. The reply ends where the answer to the next
    // command (/members) begins, because the chat handles typed lines one at a time.
    let printed_before_history = late.stdout_lines().len();
    late.send_line("/history");
    late.send_line("/members");
    late.wait_for_line(|line| line == "All active members:", EVENT_TIMEOUT);
    let printed = late.stdout_lines();
    let reply_end = printed
        .iter()
        .rposition(|line| line == "All active members:")
        .expect("the line just waited for is in the log");
    let history: Vec<&String> = printed[printed_before_history..reply_end]
        .iter()
        .filter(|line| split_message_line(line).is_some())
        .collect();
    assert_eq!(
        history,
        said.iter().collect::<Vec<_>>(),
        "the late joiner's /history; its reply was:\n{:#?}",
        &printed[printed_before_history..reply_end]
    );

    // /exit: Dee leaves with status 0 and everyone sees it.
    late.send_line("/exit");
    assert_exit_status_0(&mut late);
    for member in &members {
        member.wait_for_line(|line| line == "Dee left chat", EVENT_TIMEOUT);
    }

    // Ctrl-C on host 3: Zoë leaves with status 0 and the other two see it.
    members[2].signal("INT");
    assert_exit_status_0(&mut members[2]);
    for member in &members[..2] {
        member.wait_for_line(|line| line == "Zoë left chat", EVENT_TIMEOUT);
    }

    // End of input on host 1 (Ctrl-D), then on host 2: the chat winds down cleanly.
    members[0].close_stdin();
    assert_exit_status_0(&mut members[0]);
    members[1].wait_for_line(|line| line == "Alex left chat", EVENT_TIMEOUT);
    members[1].close_stdin();
    assert_exit_status_0(&mut members[1]);

    // Each arrival and departure was shown once, and nothing panicked.
    let everyone = ["Alex", "Bo Li", "Zoë", "Dee"];
    for (index, member) in members.iter().chain([&late]).enumerate() {
        for name in all_but(&everyone, index) {
            let joins = member.count_lines(|line| line == format!("{name} joined chat"));
            assert_eq!(
                joins,
                1,
                "{}: \"{name} joined chat\" printed {joins} times",
                member.label()
            );
        }
        for line in ["Dee left chat", "Zoë left chat", "Alex left chat"] {
            let times = member.count_lines(|printed| printed == line);
            assert!(
                times <= 1,
                "{}: {line:?} printed {times} times",
                member.label()
            );
        }
        assert_no_panic(member);
    }
}

#[test]
fn eight_members_started_at_once_form_exactly_one_connection_per_pair() {
    if !require_root("eight_members_started_at_once_form_exactly_one_connection_per_pair") {
        return;
    }
    for round in 1..=MESH_ROUNDS {
        let lan = Lan::new(MESH_NAMES.len());
        let ips: Vec<String> = (1..=MESH_NAMES.len())
            .map(|host| lan.host_ip(host).to_string())
            .collect();
        // No waiting between starts: all eight announce, hear each other and dial each
        // other at the same moment, so most pairs dial twice.
        let members: Vec<ChatProcess> = (1..=MESH_NAMES.len())
            .map(|host| lan.spawn(host, &[&ips[host - 1], MESH_NAMES[host - 1]]))
            .collect();
        for (index, member) in members.iter().enumerate() {
            member.wait_for_joins(&all_but(&MESH_NAMES, index));
        }
        thread::sleep(MESH_SETTLE);

        for (index, member) in members.iter().enumerate() {
            let host = index + 1;
            let me = lan.host_ip(host);
            let connections = lan.established_tcp(host, DEFAULT_PORT);
            let peers: BTreeSet<Ipv4Addr> =
                connections.iter().map(|(_, peer)| *peer.ip()).collect();
            let others: BTreeSet<Ipv4Addr> = (1..=MESH_NAMES.len())
                .filter(|&other| other != host)
                .map(|other| lan.host_ip(other))
                .collect();
            assert!(
                connections.len() == others.len()
                    && peers == others
                    && connections.iter().all(|(local, _)| *local.ip() == me),
                "round {round}, host{host}: expected one established connection on port \
                 {DEFAULT_PORT} to each of {others:?}, `ss` shows {connections:#?}\n\
                 stderr: {:#?}",
                member.stderr_lines()
            );

            let lines = member.stdout_lines();
            let left: Vec<&String> = lines
                .iter()
                .filter(|line| line.ends_with(" left chat"))
                .collect();
            assert!(
                left.is_empty(),
                "round {round}, {}: nobody left, yet it printed {left:?}",
                member.label()
            );
            for name in all_but(&MESH_NAMES, index) {
                let joins = member.count_lines(|line| line == format!("{name} joined chat"));
                assert_eq!(
                    joins,
                    1,
                    "round {round}, {}: \"{name} joined chat\" printed {joins} times",
                    member.label()
                );
            }
            // Resolving simultaneous connections is normal operation, not a fault:
            // nothing about it belongs on stderr.
            let stderr = member.stderr_lines();
            assert!(
                stderr.is_empty(),
                "round {round}, {}: a healthy mesh printed diagnostics: {stderr:#?}",
                member.label()
            );
        }
    }
}

#[test]
fn a_member_that_crashes_is_seen_to_leave() {
    if !require_root("a_member_that_crashes_is_seen_to_leave") {
        return;
    }
    let lan = Lan::new(3);
    let names = ["A", "B", "C"];
    let mut members: Vec<ChatProcess> = (1..=3)
        .map(|host| {
            let ip = lan.host_ip(host).to_string();
            lan.spawn(host, &[&ip, names[host - 1]])
        })
        .collect();
    for (index, member) in members.iter().enumerate() {
        member.wait_for_joins(&all_but(&names, index));
    }

    // SIGKILL: no goodbye, no handler; only B's kernel closing its sockets.
    members[1].signal("KILL");
    let status = members[1].wait_exit(EVENT_TIMEOUT);
    assert_eq!(status.signal(), Some(9), "host2 was not killed: {status}");

    let survivors = [&members[0], &members[2]];
    for member in survivors {
        member.wait_for_line(|line| line == "B left chat", EVENT_TIMEOUT);
    }
    // Besides the closed connection, a silent peer is also noticed by its missing
    // heartbeats; wait that out too, so a second report of the same departure shows.
    thread::sleep(PEER_TIMEOUT + Duration::from_secs(1));
    for member in survivors {
        let times = member.count_lines(|line| line == "B left chat");
        assert_eq!(
            times,
            1,
            "{}: \"B left chat\" printed {times} times",
            member.label()
        );
        member.send_line("/members");
        member.wait_for_line(|line| line == "All active members:", EVENT_TIMEOUT);
        let listed = next_lines(member, 2);
        assert!(
            listed.iter().all(|line| !line.contains("198.18.0.2")),
            "{}: B is still listed after it crashed: {listed:?}",
            member.label()
        );
        assert_no_panic(member);
    }
}

#[test]
fn broadcast_address_option_is_honoured() {
    if !require_root("broadcast_address_option_is_honoured") {
        return;
    }
    let lan = Lan::new(3);
    // Count the announcements each machine sends to either broadcast address. Counting
    // (not dropping) keeps a failure readable: if the option were ignored, members would
    // still meet through 255.255.255.255, and the count says so.
    let counting = format!(
        "table inet {COUNTING_TABLE} {{ chain output {{ \
           type filter hook output priority 0; policy accept; \
           ip daddr 255.255.255.255 udp dport {DEFAULT_PORT} counter; \
           ip daddr {SUBNET_BROADCAST} udp dport {DEFAULT_PORT} counter; \
         }}; }}"
    );
    for host in 1..=3 {
        let added = lan.run_in(host, &["nft", &counting]);
        assert!(
            added.status.success(),
            "host{host}: nft: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }

    let names = ["A", "B", "C"];
    let members: Vec<ChatProcess> = (1..=3)
        .map(|host| {
            let ip = lan.host_ip(host).to_string();
            lan.spawn(
                host,
                &["--broadcast", SUBNET_BROADCAST, &ip, names[host - 1]],
            )
        })
        .collect();
    for (index, member) in members.iter().enumerate() {
        member.wait_for_joins(&all_but(&names, index));
    }

    for (index, member) in members.iter().enumerate() {
        let host = index + 1;
        let limited = announcements_sent_to(&lan, host, "255.255.255.255");
        let subnet = announcements_sent_to(&lan, host, SUBNET_BROADCAST);
        assert!(
            limited == 0 && subnet > 0,
            "host{host} started with --broadcast {SUBNET_BROADCAST} sent {subnet} \
             announcements there and {limited} to 255.255.255.255"
        );
        assert_no_panic(member);
    }
}

/// Starts the chat on `host` like [`Lan::spawn`] does, with the members' time zone.
fn spawn_in_members_time_zone(lan: &Lan, host: usize, args: &[&str]) -> ChatProcess {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", lan.host_ns(host), CHAT_BINARY])
        .args(args)
        .env("TZ", MEMBERS_TIME_ZONE);
    ChatProcess::from_command(&format!("host{host}"), command)
}

/// `names` without the one at `index`: whom member `index` should meet.
fn all_but<'a>(names: &[&'a str], index: usize) -> Vec<&'a str> {
    names
        .iter()
        .enumerate()
        .filter(|&(other, _)| other != index)
        .map(|(_, name)| *name)
        .collect()
}

/// The next `count` lines `member` prints: the body of a reply that the chat prints in
/// one piece, right after the line last waited for.
#[track_caller]
fn next_lines(member: &ChatProcess, count: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(count);
    for _ in 0..count {
        lines.push(member.wait_for_line(|_| true, EVENT_TIMEOUT));
    }
    lines
}

#[track_caller]
fn assert_exit_status_0(member: &mut ChatProcess) {
    let status = member.wait_exit(EVENT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(0),
        "{} exited with {status}; stderr: {:#?}",
        member.label(),
        member.stderr_lines()
    );
}

#[track_caller]
fn assert_no_panic(member: &ChatProcess) {
    let stderr = member.stderr_lines();
    assert!(
        !stderr.iter().any(|line| line.contains("panicked")),
        "{} panicked:\n{stderr:#?}",
        member.label()
    );
}

/// Whether `shown` lies between `before` and `after` on a 24-hour clock, give or take
/// [`CLOCK_SLACK_SECONDS`], midnight included.
fn clock_within(shown: i64, before: i64, after: i64) -> bool {
    let span = (after + SECONDS_PER_DAY - before) % SECONDS_PER_DAY;
    let offset = (shown + SECONDS_PER_DAY + CLOCK_SLACK_SECONDS - before) % SECONDS_PER_DAY;
    offset <= span + 2 * CLOCK_SLACK_SECONDS
}

/// How many announcements host `host` has sent to `address`, by the counter that
/// [`broadcast_address_option_is_honoured`] put in its output chain.
fn announcements_sent_to(lan: &Lan, host: usize, address: &str) -> u64 {
    let listing = lan.run_in(host, &["nft", "list", "table", "inet", COUNTING_TABLE]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    let rule = listing
        .lines()
        .find(|line| line.contains(&format!("ip daddr {address} ")))
        .unwrap_or_else(|| panic!("host{host}: no counter for {address} in\n{listing}"));
    let mut words = rule.split_whitespace();
    words
        .by_ref()
        .find(|&word| word == "packets")
        .and_then(|_| words.next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("host{host}: no packet count in {rule:?}"))
}
