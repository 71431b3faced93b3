//! Self-tests of the test infrastructure in `tests/common`: before a chat test can blame
//! the chat, the virtual LAN must carry broadcasts and unicast, its faults must bite and
//! heal, it must clean up after itself, and the process driver must see what a child
//! prints and reach it with input and signals.
//!
//! The chat binary cannot stand in for the far end here (it is what the infrastructure
//! is for), so small `python3` programs play the UDP and TCP endpoints and `ping` is a
//! raw-socket ICMP echo written in Python (the machine has no `ping` binary).
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::lan::Lan;
use common::process::ChatProcess;
use common::{EVENT_TIMEOUT, free_port, require_root};

/// Receives one UDP datagram on 0.0.0.0:PORT and prints "received TEXT from ADDRESS".
/// SO_REUSEADDR as the chat's discovery listener uses it.
const UDP_RECEIVER: &str = r#"
import socket, sys
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
receiver.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
data, (address, _) = receiver.recvfrom(2048)
print("received", data.decode(errors="replace"), "from", address, flush=True)
"#;

/// Sends TEXT to 255.255.255.255:PORT from a socket bound to SOURCE, as the chat's
/// announcer does. (Unbound, the send fails: the namespaces have no default route.)
const BROADCAST_SENDER: &str = r#"
import socket, sys
source, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sender.bind((source, 0))
sender.sendto(text.encode(), ("255.255.255.255", port))
"#;

/// One ICMP echo request to ADDRESS; exits 0 on a reply within a second, 1 otherwise.
const PING: &str = r#"
import os, socket, struct, sys, time
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
target, ident, payload = sys.argv[1], os.getpid() & 0xFFFF, b"p2pchat!"
unsummed = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + payload
request = struct.pack("!BBHHH", 8, 0, checksum(unsummed), ident, 1) + payload
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.sendto(request, (target, 0))
deadline = time.monotonic() + 1.0
while (left := deadline - time.monotonic()) > 0:
    icmp.settimeout(left)
    try:
        packet, (sender, _) = icmp.recvfrom(1500)
    except socket.timeout:
        break
    header_len = (packet[0] & 0x0F) * 4
    kind, _, _, reply_ident, _ = struct.unpack("!BBHHH", packet[header_len:header_len + 8])
    if sender == target and kind == 0 and reply_ident == ident:
        sys.exit(0)
sys.exit(1)
"#;

/// Accepts one TCP connection on 0.0.0.0:PORT and holds it open until killed.
const TCP_LISTENER: &str = r#"
import socket, sys, time
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(sys.argv[1])))
listener.listen()
print("ready", flush=True)
connection, _ = listener.accept()
print("accepted", flush=True)
time.sleep(3600)
"#;

/// Connects to ADDRESS:PORT and holds the connection open until killed.
const TCP_CONNECTOR: &str = r#"
import socket, sys, time
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("connected", flush=True)
time.sleep(3600)
"#;

/// Echoes each stdin line as "echo LINE", says "bye" at end of input, exits 0.
const ECHO: &str = r#"
import sys
print("ready", flush=True)
for line in sys.stdin:
    print("echo", line.rstrip("\n"), flush=True)
print("bye", flush=True)
"#;

#[test]
fn namespaces_see_each_others_broadcast() {
    if !require_root("namespaces_see_each_others_broadcast") {
        return;
    }
    let lan = Lan::new(3);
    let port = free_port().to_string();
    // Host 1 listens too: Linux loops a broadcast back to the sending host, so a chat
    // member hears its own announcements and must recognise them.
    let receivers: Vec<ChatProcess> = (1..=3)
        .map(|host| {
            python_in(
                &lan,
                host,
                &format!("receiver on host{host}"),
                UDP_RECEIVER,
                &[&port],
            )
        })
        .collect();
    for receiver in &receivers {
        receiver.wait_for_line_containing("ready", EVENT_TIMEOUT);
    }

    let sent = lan.run_in(
        1,
        &[
            "python3",
            "-c",
            BROADCAST_SENDER,
            "198.18.0.1",
            &port,
            "hello",
        ],
    );
    assert!(
        sent.status.success(),
        "broadcast send failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );

    for receiver in &receivers {
        let line = receiver.wait_for_line_containing("received", EVENT_TIMEOUT);
        assert_eq!(
            line,
            "received hello from 198.18.0.1",
            "{}",
            receiver.label()
        );
    }
}

#[test]
fn pulled_cable_cuts_traffic_and_plugging_it_back_restores_it() {
    if !require_root("pulled_cable_cuts_traffic_and_plugging_it_back_restores_it") {
        return;
    }
    let lan = Lan::new(2);
    assert!(
        eventually_pings(&lan, 1, 2),
        "host 1 cannot reach host 2 on a fresh LAN"
    );

    lan.cable_out(2);
    assert!(
        !pings(&lan, 1, 2),
        "host 2 still answers with its cable out"
    );

    lan.cable_in(2);
    assert!(
        eventually_pings(&lan, 1, 2),
        "host 2 unreachable after plugging its cable back in"
    );
}

#[test]
fn namespaces_are_removed_on_drop() {
    if !require_root("namespaces_are_removed_on_drop") {
        return;
    }
    let lan = Lan::new(2);
    let created: Vec<String> = lan.namespaces().into_iter().map(String::from).collect();
    assert_eq!(created.len(), 3, "a switch and two hosts");
    let before = namespace_list();
    for namespace in &created {
        assert!(
            before.contains(namespace),
            "{namespace} missing from `ip netns list`:\n{before:?}"
        );
    }

    drop(lan);

    let after = namespace_list();
    for namespace in &created {
        assert!(
            !after.contains(namespace),
            "{namespace} left behind after drop"
        );
    }
}

#[test]
fn total_loss_blocks_a_host_and_clearing_it_restores_it() {
    if !require_root("total_loss_blocks_a_host_and_clearing_it_restores_it") {
        return;
    }
    let lan = Lan::new(2);
    assert!(
        eventually_pings(&lan, 1, 2),
        "host 1 cannot reach host 2 on a fresh LAN"
    );

    lan.set_loss(2, 100);
    assert!(!pings(&lan, 1, 2), "host 2 still answers at 100% loss");

    lan.clear_loss(2);
    assert!(
        eventually_pings(&lan, 1, 2),
        "host 2 unreachable after clearing its loss"
    );
}

#[test]
fn established_tcp_lists_the_connection_from_both_ends() {
    if !require_root("established_tcp_lists_the_connection_from_both_ends") {
        return;
    }
    let lan = Lan::new(2);
    let port = free_port();
    let port_text = port.to_string();
    let listener = python_in(&lan, 2, "listener on host2", TCP_LISTENER, &[&port_text]);
    listener.wait_for_line_containing("ready", EVENT_TIMEOUT);
    let connector = python_in(
        &lan,
        1,
        "connector on host1",
        TCP_CONNECTOR,
        &["198.18.0.2", &port_text],
    );
    connector.wait_for_line_containing("connected", EVENT_TIMEOUT);
    listener.wait_for_line_containing("accepted", EVENT_TIMEOUT);

    let from_host1 = lan.established_tcp(1, port);
    let from_host2 = lan.established_tcp(2, port);
    assert_eq!(from_host1.len(), 1, "host 1 sees {from_host1:?}");
    let (local, peer) = from_host1[0];
    assert_eq!(*local.ip(), lan.host_ip(1));
    assert_eq!(
        peer,
        format!("198.18.0.2:{port}")
            .parse()
            .expect("a socket address")
    );
    assert_eq!(
        from_host2,
        vec![(peer, local)],
        "host 2 sees the mirror image"
    );
}

#[test]
fn chat_process_collects_output_and_types_into_stdin() {
    let mut echo = python("echo", ECHO);
    echo.wait_for_line_containing("ready", EVENT_TIMEOUT);
    echo.send_line("first");
    echo.send_line("second");
    assert_eq!(
        echo.wait_for_line(|line| line.starts_with("echo"), EVENT_TIMEOUT),
        "echo first"
    );
    assert_eq!(
        echo.wait_for_line(|line| line.starts_with("echo"), EVENT_TIMEOUT),
        "echo second"
    );

    echo.close_stdin();
    let status = echo.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "echo exited with {status}");
    // After wait_exit the last line is there without waiting for it.
    assert_eq!(echo.stdout_lines().last().map(String::as_str), Some("bye"));
    assert_eq!(echo.count_lines(|line| line.starts_with("echo")), 2);
}

#[test]
fn chat_process_delivers_signals() {
    let mut echo = python("echo", ECHO);
    echo.wait_for_line_containing("ready", EVENT_TIMEOUT);
    echo.signal("TERM");
    let status = echo.wait_exit(EVENT_TIMEOUT);
    assert_eq!(
        status.signal(),
        Some(15),
        "expected death by SIGTERM, got {status}"
    );
}

#[test]
fn a_failed_wait_reports_everything_the_process_printed() {
    let script = r#"
import sys, time
print("to stderr", file=sys.stderr, flush=True)
print("to stdout", flush=True)
time.sleep(3600)
"#;
    let talker = python("talker", script);
    talker.wait_for_line_containing("to stdout", EVENT_TIMEOUT);

    let failure = panic::catch_unwind(AssertUnwindSafe(|| {
        talker.wait_for_line_containing("never printed", Duration::from_secs(1));
    }))
    .expect_err("waiting for a line that never comes must panic");
    let message = failure
        .downcast_ref::<String>()
        .expect("the panic message is a formatted String");
    for expected in [
        "talker",
        "timed out",
        "\"never printed\"",
        "to stdout",
        "to stderr",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from:\n{message}"
        );
    }
}

/// Runs a Python script in host `host`'s namespace as a process the test can talk to.
fn python_in(lan: &Lan, host: usize, label: &str, script: &str, args: &[&str]) -> ChatProcess {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", lan.host_ns(host), "python3", "-c", script])
        .args(args);
    ChatProcess::from_command(label, command)
}

/// Runs a Python script in the test's own namespace (it sends nothing over the network).
fn python(label: &str, script: &str) -> ChatProcess {
    let mut command = Command::new("python3");
    command.args(["-c", script]);
    ChatProcess::from_command(label, command)
}

/// Whether host `to` answers one ICMP echo from host `from` within a second.
fn pings(lan: &Lan, from: usize, to: usize) -> bool {
    let target = lan.host_ip(to).to_string();
    lan.run_in(from, &["python3", "-c", PING, &target])
        .status
        .success()
}

/// Pings until host `to` answers or [`EVENT_TIMEOUT`] passes. A first ping can be lost
/// while ARP resolves or a port comes back, so reachability is an event to wait for.
fn eventually_pings(lan: &Lan, from: usize, to: usize) -> bool {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while Instant::now() < deadline {
        if pings(lan, from, to) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The names in `ip netns list` (which prints "NAME" or "NAME (id: N)" per line).
fn namespace_list() -> Vec<String> {
    let listing = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run `ip netns list`");
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(String::from))
        .collect()
}
