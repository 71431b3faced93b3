//! A chat that forms where broadcast does not reach: members given one address
//! (`--peer`) learn all the others from the member lists, on one segment whose broadcast
//! is filtered and across a router; and a member that lies in its lists changes nothing.
//!
//! Namespace LAN tests (see `tests/common/lan.rs` and `tests/common/routed.rs`): real
//! separate hosts, the real binary, the default port.
#![cfg(target_os = "linux")]

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::lan::Lan;
use common::process::ChatProcess;
use common::routed::RoutedLan;
use common::{EVENT_TIMEOUT, require_root, said};
use p2pchat::tuning::DEFAULT_PORT;

/// Checks that `line`, sent by `sender`, reaches every member in `members`.
#[track_caller]
fn everyone_hears(members: &[&ChatProcess], sender: &str, text: &str) {
    for member in members {
        member.wait_for_line(|line| said(line, sender) == Some(text), EVENT_TIMEOUT);
    }
}

#[test]
fn five_members_each_given_only_the_first_form_the_full_mesh_without_broadcast() {
    if !require_root("five_members_each_given_only_the_first_form_the_full_mesh_without_broadcast")
    {
        return;
    }
    const NAMES: [&str; 5] = ["Ana", "Ben", "Cai", "Dia", "Eli"];
    let lan = Lan::new(5);
    for host in 1..=5 {
        lan.block_broadcast(host);
    }
    let first = lan.host_ip(1).to_string();
    let members: Vec<ChatProcess> = (1..=5)
        .map(|host| {
            let address = lan.host_ip(host).to_string();
            let name = NAMES[host - 1];
            if host == 1 {
                lan.spawn(host, &[&address, name])
            } else {
                lan.spawn(host, &["--peer", &first, &address, name])
            }
        })
        .collect();
    for (index, member) in members.iter().enumerate() {
        let others: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| *n != NAMES[index])
            .collect();
        member.wait_for_joins(&others);
    }
    let everyone: Vec<&ChatProcess> = members.iter().collect();
    members[4].send_line("from the last to all");
    everyone_hears(&everyone, "Eli", "from the last to all");
    members[1].send_line("and back");
    everyone_hears(&everyone, "Ben", "and back");

    // Exactly one connection per pair: each host has four, to four different members,
    // and nobody was shown to join twice.
    thread::sleep(Duration::from_secs(3));
    for (index, member) in members.iter().enumerate() {
        let host = index + 1;
        let peers: Vec<Ipv4Addr> = lan
            .established_tcp(host, DEFAULT_PORT)
            .into_iter()
            .map(|(local, peer)| {
                assert_eq!(*local.ip(), lan.host_ip(host));
                *peer.ip()
            })
            .collect();
        let distinct: HashSet<&Ipv4Addr> = peers.iter().collect();
        assert_eq!(
            (peers.len(), distinct.len()),
            (4, 4),
            "host {host}'s connections: {peers:?}"
        );
        for name in NAMES.iter().filter(|n| **n != NAMES[index]) {
            assert_eq!(
                member.count_lines(|l| l == format!("{name} joined chat")),
                1,
                "{}",
                member.transcript()
            );
        }
    }
}

#[test]
fn members_on_two_routed_subnets_form_one_chat_from_one_address_across() {
    if !require_root("members_on_two_routed_subnets_form_one_chat_from_one_address_across") {
        return;
    }
    let routed = RoutedLan::new(2, 2);
    let (left, right) = (&routed.left, &routed.right);
    let across = left.host_ip(1).to_string();
    // Each side finds its own by broadcast; one member on the right is given one
    // address on the left, and the member lists do the rest.
    let members = [
        left.spawn(1, &[&left.host_ip(1).to_string(), "Lea"]),
        left.spawn(2, &[&left.host_ip(2).to_string(), "Lou"]),
        right.spawn(
            1,
            &["--peer", &across, &right.host_ip(1).to_string(), "Rae"],
        ),
        right.spawn(2, &[&right.host_ip(2).to_string(), "Roy"]),
    ];
    let names = ["Lea", "Lou", "Rae", "Roy"];
    for (index, member) in members.iter().enumerate() {
        let others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| *n != names[index])
            .collect();
        member.wait_for_joins(&others);
    }
    let everyone: Vec<&ChatProcess> = members.iter().collect();
    members[3].send_line("hello from the right");
    everyone_hears(&everyone, "Roy", "hello from the right");
    members[1].send_line("hello from the left");
    everyone_hears(&everyone, "Lou", "hello from the left");
}

/// A member that lies: it joins as "Liar" on each real member and sends lists naming
/// `victim` (a machine that runs no chat) and 150 addresses of nobody, ten times a
/// second for five seconds, then a list 10,000 entries long.
const LIAR: &str = r#"
import socket, struct, sys, time
members, victim, port = sys.argv[1].split(','), sys.argv[2], int(sys.argv[3])
def text(s):
    b = s.encode(); return struct.pack('>H', len(b)) + b
def frame(kind, payload):
    return struct.pack('>IB', len(payload) + 1, kind) + payload
hello = frame(1, struct.pack('>BQH', 2, 4242, port) + text('Liar') + text('lobby'))
heartbeat = frame(7, b'')
listed = [victim] + ['198.18.0.%d' % i for i in range(100, 250)]
lie = frame(11, struct.pack('>H', len(listed)) +
            b''.join(socket.inet_aton(a) + struct.pack('>H', port) for a in listed))
huge = frame(11, struct.pack('>H', 10000) + b'\0' * 60000)
conns = []
for m in members:
    s = socket.create_connection((m, port), timeout=5)
    s.sendall(hello); s.recv(4096); s.sendall(heartbeat); s.setblocking(False)
    conns.append(s)
end = time.time() + 5
while time.time() < end:
    for s in conns:
        try:
            s.sendall(lie + heartbeat)
            s.recv(65536)
        except BlockingIOError:
            pass
    time.sleep(0.1)
for s in conns:
    try:
        s.sendall(huge)
    except OSError:
        pass
time.sleep(1)
print('lied', flush=True)
"#;

#[test]
fn a_member_lying_in_its_member_list_changes_nothing_for_the_others() {
    if !require_root("a_member_lying_in_its_member_list_changes_nothing_for_the_others") {
        return;
    }
    const NAMES: [&str; 3] = ["Ann", "Bob", "Cyd"];
    // The liar on host 1, three members on hosts 2 to 4, and host 5 runs no chat. (A
    // liar on a higher address than a member would be declined by it while the member
    // dials it back, to no avail: a liar that does not listen is no member.)
    let lan = Lan::new(5);
    let liar_host = 1;
    let members: Vec<ChatProcess> = (2..=4)
        .map(|host| lan.spawn(host, &[&lan.host_ip(host).to_string(), NAMES[host - 2]]))
        .collect();
    for (index, member) in members.iter().enumerate() {
        let others: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| *n != NAMES[index])
            .collect();
        member.wait_for_joins(&others);
    }
    let victim = 5;
    lan.count_connection_attempts(victim, DEFAULT_PORT);
    let member_addresses: Vec<String> = (2..=4).map(|h| lan.host_ip(h).to_string()).collect();
    let started = Instant::now();
    let liar = lan.run_in(
        liar_host,
        &[
            "python3",
            "-c",
            LIAR,
            &member_addresses.join(","),
            &lan.host_ip(victim).to_string(),
            &DEFAULT_PORT.to_string(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&liar.stdout).contains("lied"),
        "the liar script failed: {}\n{}",
        String::from_utf8_lossy(&liar.stderr),
        members
            .iter()
            .map(ChatProcess::transcript)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Lists can make each member try the named machine once in a minute, no more.
    let attempts = lan.connection_attempts(victim);
    assert!(
        attempts <= 3,
        "the machine named in the lists got {attempts} connection attempts in {:?}",
        started.elapsed()
    );
    // The members still chat, each sees exactly the other two, and the liar's
    // 10,000-entry list cost it its connections.
    let everyone: Vec<&ChatProcess> = members.iter().collect();
    members[0].send_line("still here");
    everyone_hears(&everyone, "Ann", "still here");
    for member in &members {
        member.wait_for_exact("Liar left chat");
        member.send_line("/members");
        member.wait_for_line(|line| line == "All active members:", EVENT_TIMEOUT);
    }
    thread::sleep(Duration::from_millis(500));
    for (index, member) in members.iter().enumerate() {
        let listed: Vec<String> = member
            .stdout_lines()
            .into_iter()
            .skip_while(|line| line != "All active members:")
            .skip(1)
            .take_while(|line| line.contains(": 198.18."))
            .collect();
        assert_eq!(listed.len(), 3, "{}: {listed:?}", NAMES[index]);
        assert!(
            member
                .stderr_lines()
                .iter()
                .any(|l| l.contains("a list longer than 256 entries")
                    || l.contains("exceeds the 16384-byte limit")),
            "{}: the liar's huge list was not refused\n{}",
            NAMES[index],
            member.transcript()
        );
    }
    // Nothing was left running that the test did not start.
    let _ = Command::new("true").status();
}
