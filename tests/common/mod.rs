//! Helpers shared by the integration tests.
//!
//! Each file in `tests/` is compiled as its own test binary and pulls this module in with
//! `mod common;`. The heavy parts live in submodules:
//!
//! - [`process`] starts the real `p2pchat` binary, feeds its stdin and waits for lines on
//!   its stdout, so a test reads like a conversation with a user at a terminal.
//! - [`lan`] builds a small virtual Ethernet (network namespaces joined by a bridge) so
//!   that several members can run on one machine, each with its own address, and so that
//!   faults a real LAN has (a pulled cable, a lossy link) can be injected.
//!
//! What stays here is tiny and used by both: deciding whether the namespace tests can run
//! at all ([`require_root`]), names that do not collide between tests running in parallel
//! ([`unique_suffix`]) and loopback ports nobody else holds ([`free_port`]).

// Every test binary compiles this module but uses only some of it.
#![allow(dead_code)]

pub mod inbox;
pub mod lan;
pub mod process;
pub mod routed;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a test waits for something the chat should do (a line printed, a peer seen,
/// a process exited). Generous on purpose: tests prove *that* something happens, never
/// how fast, so a loaded two-core CI machine must not turn a slow run into a failure.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

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
fn effective_uid() -> Option<u32> {
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

/// A port that is free on this host for UDP on `0.0.0.0` and for TCP on loopback.
///
/// The kernel picks an unused UDP port (bind to port 0); the same number is then checked
/// with a TCP bind, because a chat member uses one port for both. Both sockets are closed
/// before returning, so another process could in theory take the port in between; the
/// ephemeral range is large enough that this does not happen in practice. A port is never
/// handed out twice by one process, so two tests in one binary cannot collide.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    const ATTEMPTS: usize = 50;

    for _ in 0..ATTEMPTS {
        let udp =
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind a UDP socket to 0.0.0.0:0");
        let port = udp
            .local_addr()
            .expect("read the local address of a UDP socket")
            .port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("found no port free for both UDP and TCP in {ATTEMPTS} attempts");
}

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
