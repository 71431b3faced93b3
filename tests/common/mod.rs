//! Helpers shared by the integration tests.
//!
//! Each file in `tests/` is compiled as its own test binary and pulls this module in with
//! `mod common;`; the benchmark (`benches/bench`) pulls it in too, by path, so the tests
//! and the bench share one test bed. The heavy parts live in submodules:
//!
//! - [`process`] starts the real `p2pchat` binary, feeds its stdin and waits for lines on
//!   its stdout, so a test reads like a conversation with a user at a terminal.
//! - [`lan`] builds a small virtual Ethernet (network namespaces joined by a bridge) so
//!   that several members can run on one machine, each with its own address, and so that
//!   faults a real LAN has (a pulled cable, a lossy link) can be injected; [`routed`]
//!   joins two of them by a router.
//! - [`terminal`] puts the chat on a pseudo-terminal, for what only a terminal shows.
//! - [`participant`] is a member started in the test's own process, whose events the
//!   test waits for ([`inbox`] keeps them).
//! - [`hosts`] hands each test its own loopback addresses, and [`free_port`] (here) its
//!   own port: together they keep tests on one machine apart.
//! - [`clock`] reads the times the chat prints and the clock it reads them from.
//! - [`sockets`] lists the kernel's TCP sockets (`ss`), to check connections from
//!   outside the chat.
//!
//! What stays here is tiny and used by all: deciding whether the namespace tests can run
//! at all ([`require_root`]), names that do not collide between tests running in parallel
//! ([`unique_suffix`]), ports nobody else holds ([`free_port`]) and reading chat lines
//! ([`said`]).

// Every test binary compiles this module but uses only some of it.
#![allow(dead_code)]

pub mod clock;
pub mod hosts;
pub mod inbox;
pub mod lan;
pub mod participant;
pub mod process;
pub mod routed;
pub mod sockets;
pub mod terminal;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a test waits for something the chat should do (a line printed, a peer seen,
/// a process exited). Generous on purpose: tests prove *that* something happens, never
/// how fast, so a loaded two-core CI machine must not turn a slow run into a failure.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long "must not happen" checks watch, once the chat has settled. Longer than the
/// announcement interval (2 s), so a member that would wrongly dial someone (or be
/// wrongly dialed) after an announcement has the chance to do it while we watch.
pub const SETTLE: Duration = Duration::from_millis(2500);

/// Whether this process may create network namespaces (it must be root).
///
/// Outside CI a developer without root gets a visible skip instead of a failure; in CI
/// (`CI` set) a skip would silently hide the most important tests, so it is an error.
pub fn require_root(test: &str) -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the namespace tests as root ({test} was about to be skipped)");
    }
    eprintln!("SKIPPED {test}: needs root for network namespaces");
    false
}

/// The effective user id, read from the `Uid:` line of `/proc/self/status`
/// (real, effective, saved, filesystem), so no libc call is needed.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid_line = status.lines().find(|line| line.starts_with("Uid:"))?;
    uid_line.split_whitespace().nth(2)?.parse().ok()
}

/// A short string no other test (in this process or in a test binary running beside it)
/// is using: the process id plus a per-process counter.
///
/// Kept short because it ends up in namespace names, and the names of the things inside
/// them must stay readable in `ip netns list` while a test is being debugged.
pub fn unique_suffix() -> String {
    static NEXT_IN_THIS_PROCESS: AtomicU32 = AtomicU32::new(0);
    let counter = NEXT_IN_THIS_PROCESS.fetch_add(1, Ordering::Relaxed);
    format!("{}n{}", std::process::id(), counter)
}

/// A port that is free on this host for UDP on `0.0.0.0` and for TCP on loopback, and
/// that no other call in this process has handed out.
///
/// Taken from [`PORT_RANGE`], below the kernel's ephemeral range, like the chat's own
/// default port: the kernel picks source ports for outgoing connections (and ports for
/// binds to port 0) only inside the ephemeral range, so no connection of any program,
/// this test's members included, can be holding this port on some 127.x address. A
/// port from that range would be a port the kernel may hand to anyone a moment later.
///
/// Each process starts at its own place in the range (from its PID), so test binaries
/// running side by side (two suites, or two engineers on one machine) try different
/// ports first; the bind checks then catch the rare port someone still holds. The
/// sockets are closed before returning, so the chat can bind the port itself.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let (first, count) = (PORT_RANGE.start, PORT_RANGE.end - PORT_RANGE.start);
    let start = std::process::id() % u32::from(count);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for step in 0..u32::from(count) {
        let port = first + ((start + step * PORT_STRIDE) % u32::from(count)) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("found no port in {PORT_RANGE:?} free for both UDP and TCP");
}

/// Where [`free_port`] looks: below Linux's default ephemeral range (32768–60999, see
/// `/proc/sys/net/ipv4/ip_local_port_range`) and above the registered ports that
/// services on a development machine commonly use.
pub const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// How far apart the ports one process tries are: a prime, so that every port of the
/// range is tried once, and large, so that two processes whose PIDs are close do not
/// walk the same ports one step apart.
const PORT_STRIDE: u32 = 7919;

/// The text of a chat line `hh:mm:ss NAME: TEXT` printed for a message from `sender`,
/// or `None` if the line is something else.
pub fn said<'a>(line: &'a str, sender: &str) -> Option<&'a str> {
    let (time, rest) = line.split_at_checked(8)?;
    if !time
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b':' || b == b'?')
    {
        return None;
    }
    rest.strip_prefix(' ')?
        .strip_prefix(sender)?
        .strip_prefix(": ")
}

/// How many chat messages a "… were not shown here: this screen fell behind" notice
/// counts (the terminal prints one where it dropped events rather than make the network
/// wait), or `None` if the line is something else.
pub fn missed_messages(line: &str) -> Option<u64> {
    if !line.contains(" not shown here: this screen fell behind") {
        return None;
    }
    let (count, what) = line.split_once(' ')?;
    if what.starts_with("message") {
        count.parse().ok()
    } else {
        Some(0)
    }
}
