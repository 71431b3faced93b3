//! The TCP sockets the kernel has, as `ss` (iproute2) lists them: for tests that check
//! connections from outside the chat (one per pair, none across rooms).
//!
//! Any state is listed, not only `ESTAB`: a connection that was opened and closed again
//! at once stays in `TIME-WAIT` for a minute on the side that closed first, so even the
//! shortest-lived connection leaves a trace to find.

use std::net::SocketAddrV4;
use std::process::Command;

/// One TCP socket: its state (`ESTAB`, `TIME-WAIT`, `SYN-SENT`, ...) and its two ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub state: String,
    pub local: SocketAddrV4,
    pub peer: SocketAddrV4,
}

/// Every TCP socket of this network namespace with `port` at either end. The kernel
/// does the filtering (an `ss` filter expression), so on a busy machine only the
/// test's own port is read.
pub fn tcp_sockets_on_port(port: u16) -> Vec<TcpSocket> {
    ss_on_port(&mut Command::new("ss"), port)
}

/// [`tcp_sockets_on_port`] inside network namespace `ns`.
pub fn tcp_sockets_on_port_in(ns: &str, port: u16) -> Vec<TcpSocket> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, "ss"]);
    ss_on_port(&mut command, port)
}

/// Runs `ss` (prepared in `command`) for `port` and parses what it lists.
fn ss_on_port(command: &mut Command, port: u16) -> Vec<TcpSocket> {
    // -H: no header, -t: TCP, -a: any state, -n: numbers.
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let output = command
        .args(["-Htan", &filter])
        .output()
        .unwrap_or_else(|error| panic!("could not run `ss` (iproute2): {error}"));
    assert!(output.status.success(), "ss failed: {output:?}");
    parse_ss(&String::from_utf8_lossy(&output.stdout))
}

/// The sockets in a listing of `ss -Htan`: "State Recv-Q Send-Q Local:Port Peer:Port".
/// Listeners (peer `0.0.0.0:*`) and pure IPv6 sockets are left out.
pub fn parse_ss(listing: &str) -> Vec<TcpSocket> {
    listing
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            Some(TcpSocket {
                state: columns.first()?.to_string(),
                local: parse_ss_address(columns.get(3)?)?,
                peer: parse_ss_address(columns.get(4)?)?,
            })
        })
        .collect()
}

/// Parses an address column of `ss -n`: `198.18.0.1:5000` or `[::ffff:198.18.0.1]:5000`
/// (an IPv4-mapped address, from a dual-stack socket).
fn parse_ss_address(column: &str) -> Option<SocketAddrV4> {
    if let Some(mapped) = column.strip_prefix("[::ffff:") {
        let (address, port) = mapped.split_once("]:")?;
        return Some(SocketAddrV4::new(address.parse().ok()?, port.parse().ok()?));
    }
    column.parse().ok()
}
