//! A virtual Ethernet LAN built from Linux network namespaces, for tests that need
//! several chat members with their own addresses on one machine.
//!
//! ```text
//!   namespace p2pb<suffix>             (the switch)
//!   ┌──────────────── br0 ────────────────┐
//!   port1            port2            port3  ...   veth ends enslaved to the bridge
//!     │                │                │
//!   eth0             eth0             eth0         veth peers, one per host namespace
//!   198.18.0.1/15    198.18.0.2/15    198.18.0.3/15
//!   p2ph<suffix>x1   p2ph<suffix>x2   p2ph<suffix>x3
//! ```
//!
//! Why this shape:
//! - A **network namespace** is a private copy of the network stack (interfaces,
//!   addresses, routes, sockets, firewall). A chat member started in one believes it is
//!   alone on its own machine, so ports never clash and every member has a real address.
//! - A **veth pair** is a virtual cable: what goes in one end comes out of the other. One
//!   end (`eth0`) is the host's network card, the other (`port{i}`) sits in the switch.
//! - A **bridge** is a learning switch. It floods broadcasts to every port, which is
//!   exactly what UDP discovery needs, and forwards unicast frames once it has learnt
//!   which port a MAC address lives behind. STP is off by default, so a port forwards as
//!   soon as its link is up; `forward_delay 0` makes that explicit.
//! - The addresses come from 198.18.0.0/15, a block reserved for benchmarking and
//!   testing (RFC 2544), so nothing here can be mistaken for, or leak to, a real network.
//!   `brd +` derives the broadcast address (198.19.255.255) from the prefix.
//! - There is no default route. Note what that means for discovery: sending to
//!   255.255.255.255 from a socket bound to 0.0.0.0 fails with "Network is unreachable";
//!   from a socket bound to the host's address it goes out of that address's interface.
//!
//! Faults: [`Lan::cable_out`] takes the switch-side port down, like pulling the cable at
//! the switch: frames vanish in both directions, no FIN or RST is sent, and the host sees
//! its `eth0` lose carrier, while its sockets notice nothing. [`Lan::set_loss`] drops a
//! percentage of the host's packets with nftables.
//!
//! Everything is created with the `ip` command and removed in [`Drop`]: deleting the
//! namespaces also destroys the veth pairs and the bridge inside them.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::process::ChatProcess;
use super::sockets::tcp_sockets_on_port_in;
use super::unique_suffix;

/// The name of the bridge (the switch) inside the bridge namespace.
const BRIDGE: &str = "br0";

/// The name of every host's only network card.
const HOST_INTERFACE: &str = "eth0";

/// Prefix length of the LAN: 198.18.0.0/15 is the whole RFC 2544 test block.
const LAN_PREFIX_LEN: u8 = 15;

/// Host `i` gets 198.18.0.`i`; keeping to the last octet makes addresses easy to read in
/// test output, and 254 hosts is far more than a test needs.
const MAX_HOSTS: usize = 254;

/// The nftables table that [`Lan::set_loss`] creates in a host namespace.
const LOSS_TABLE: &str = "p2ploss";

/// The nftables table that [`Lan::block_broadcast`] creates in a host namespace.
const NO_BROADCAST_TABLE: &str = "p2pnobcast";

/// How long a freshly connected port may take to reach the forwarding state. It is
/// immediate in practice; the bound turns a broken setup into a clear failure.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often link state is polled while waiting for it.
const LINK_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Serialises `ip netns add` within this test process. The first `ip netns add` on a
/// machine turns `/run/netns` into a shared mount; two of them racing can stack two
/// mounts there and make the earlier namespace unusable. Cargo runs test binaries one
/// after another, so one process-wide lock covers `cargo test`.
static NAMESPACE_CREATION: Mutex<()> = Mutex::new(());

/// A switch with `hosts` machines plugged in, each in its own network namespace.
pub struct Lan {
    suffix: String,
    /// `None`: hosts are 198.18.0.`i`/15, one flat LAN. `Some(n)`: hosts are
    /// 198.18.`n`.`i`/24, one subnet of a routed network ([`Lan::on_subnet`]).
    subnet: Option<u8>,
    bridge_ns: String,
    /// `host_namespaces[i - 1]` is host `i`'s namespace (hosts are numbered from 1 like
    /// the last octet of their address).
    host_namespaces: Vec<String>,
}

impl Lan {
    /// Builds the switch and plugs in `hosts` hosts; returns once every port forwards.
    ///
    /// Panics with the failing command and its error output if any step fails; whatever
    /// was created up to then is removed again when the half-built `Lan` is dropped.
    pub fn new(hosts: usize) -> Lan {
        Lan::build(hosts, None)
    }

    /// Like [`Lan::new`], as subnet 198.18.`subnet`.0/24, whose hosts send what is not
    /// for the subnet to a router at 198.18.`subnet`.254 ([`Lan::plug_router`]).
    pub fn on_subnet(hosts: usize, subnet: u8) -> Lan {
        Lan::build(hosts, Some(subnet))
    }

    fn build(hosts: usize, subnet: Option<u8>) -> Lan {
        let suffix = unique_suffix();
        let mut lan = Lan {
            bridge_ns: format!("p2pb{suffix}"),
            suffix,
            subnet,
            host_namespaces: Vec::new(),
        };
        add_namespace(&lan.bridge_ns);
        let bridge_ns = lan.bridge_ns.as_str();
        ip(&format!(
            "-n {bridge_ns} link add {BRIDGE} type bridge forward_delay 0"
        ));
        ip(&format!("-n {bridge_ns} link set {BRIDGE} up"));
        for _ in 0..hosts {
            lan.add_host();
        }
        lan
    }

    /// Plugs one more host into the switch (a late joiner) and returns its number.
    pub fn add_host(&mut self) -> usize {
        let host = self.host_namespaces.len() + 1;
        assert!(host <= MAX_HOSTS, "a Lan has room for {MAX_HOSTS} hosts");
        let host_ns = format!("p2ph{}x{host}", self.suffix);
        // Recorded before creation so that Drop removes it even if a later step fails.
        self.host_namespaces.push(host_ns.clone());
        add_namespace(&host_ns);

        let port = switch_port(host);
        let bridge_ns = self.bridge_ns.as_str();
        // Create the cable in the switch and push its other end into the host, where it
        // becomes that host's eth0.
        ip(&format!(
            "-n {bridge_ns} link add {port} type veth peer name {HOST_INTERFACE} netns {host_ns}"
        ));
        ip(&format!("-n {bridge_ns} link set {port} master {BRIDGE}"));
        ip(&format!("-n {bridge_ns} link set {port} up"));

        let prefix_len = if self.subnet.is_some() {
            24
        } else {
            LAN_PREFIX_LEN
        };
        let address = format!("{}/{prefix_len}", self.host_ip(host));
        ip(&format!("-n {host_ns} link set lo up"));
        ip(&format!(
            "-n {host_ns} address add {address} brd + dev {HOST_INTERFACE}"
        ));
        ip(&format!("-n {host_ns} link set {HOST_INTERFACE} up"));
        if let Some(subnet) = self.subnet {
            ip(&format!(
                "-n {host_ns} route add default via 198.18.{subnet}.254"
            ));
        }
        self.wait_until_plugged_in(host);
        host
    }

    /// Host `host`'s address, 198.18.0.`host` (198.18.`subnet`.`host` on a subnet).
    pub fn host_ip(&self, host: usize) -> Ipv4Addr {
        self.check_host(host);
        let last_octet = u8::try_from(host).expect("host numbers stay below 255");
        Ipv4Addr::new(198, 18, self.subnet.unwrap_or(0), last_octet)
    }

    /// Plugs a router into this subnet's switch: an interface `interface` in namespace
    /// `router_ns` with address 198.18.`subnet`.254/24, the hosts' default gateway.
    pub fn plug_router(&self, router_ns: &str, interface: &str) {
        let subnet = self.subnet.expect("a router plugs into a Lan::on_subnet");
        let bridge_ns = self.bridge_ns.as_str();
        ip(&format!(
            "-n {bridge_ns} link add uplink type veth peer name {interface} netns {router_ns}"
        ));
        ip(&format!("-n {bridge_ns} link set uplink master {BRIDGE}"));
        ip(&format!("-n {bridge_ns} link set uplink up"));
        ip(&format!(
            "-n {router_ns} address add 198.18.{subnet}.254/24 brd + dev {interface}"
        ));
        ip(&format!("-n {router_ns} link set {interface} up"));
    }

    /// Makes host `host` drop every broadcast it would send or receive on its network
    /// card, as Wi-Fi that filters broadcast does. Unicast (and ARP) still flows.
    pub fn block_broadcast(&self, host: usize) {
        let script = format!(
            "table inet {NO_BROADCAST_TABLE} {{ \
               chain input {{ type filter hook input priority 0; policy accept; \
                 iifname \"{HOST_INTERFACE}\" meta pkttype broadcast drop; }}; \
               chain output {{ type filter hook output priority 0; policy accept; \
                 oifname \"{HOST_INTERFACE}\" ip daddr 255.255.255.255 drop; }}; \
             }}"
        );
        self.run_checked_in(host, &["nft", &script]);
    }

    /// Undoes [`Lan::block_broadcast`]: host `host` sends and receives broadcast again.
    pub fn allow_broadcast(&self, host: usize) {
        let script =
            format!("add table inet {NO_BROADCAST_TABLE}; delete table inet {NO_BROADCAST_TABLE}");
        self.run_checked_in(host, &["nft", &script]);
    }

    /// Counts, from now on, the TCP connection attempts (SYN packets) that reach host
    /// `host` on `port`; read the count with [`Lan::connection_attempts`].
    pub fn count_connection_attempts(&self, host: usize, port: u16) {
        let script = format!(
            "table inet p2psyn {{ counter attempts {{ }}; \
               chain input {{ type filter hook input priority 0; policy accept; \
                 tcp dport {port} tcp flags & (syn | ack) == syn counter name attempts; }}; \
             }}"
        );
        self.run_checked_in(host, &["nft", &script]);
    }

    /// How many connection attempts [`Lan::count_connection_attempts`] has counted.
    pub fn connection_attempts(&self, host: usize) -> u64 {
        let listing = self.run_checked_in(
            host,
            &["nft", "list", "counter", "inet", "p2psyn", "attempts"],
        );
        listing
            .split_whitespace()
            .skip_while(|word| *word != "packets")
            .nth(1)
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no packet count in {listing:?}"))
    }

    /// The name of host `host`'s network namespace (for `ip netns exec`).
    pub fn host_ns(&self, host: usize) -> &str {
        self.check_host(host);
        &self.host_namespaces[host - 1]
    }

    /// Every namespace of this LAN, the switch first (for debugging and cleanup checks).
    pub fn namespaces(&self) -> Vec<&str> {
        let hosts = self.host_namespaces.iter().map(String::as_str);
        std::iter::once(self.bridge_ns.as_str())
            .chain(hosts)
            .collect()
    }

    /// Starts the chat binary on host `host`, labelled "host{host}" in failure messages.
    pub fn spawn(&self, host: usize, args: &[&str]) -> ChatProcess {
        ChatProcess::spawn_in_netns(self.host_ns(host), args).with_label(&format!("host{host}"))
    }

    /// Runs `command` inside host `host`'s namespace and returns what it did, failed or
    /// not; judging the result is the caller's business.
    pub fn run_in(&self, host: usize, command: &[&str]) -> Output {
        let (program, args) = command
            .split_first()
            .expect("run_in needs a program to run");
        Command::new("ip")
            .args(["netns", "exec", self.host_ns(host), program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("could not run `ip netns exec`: {error}"))
    }

    /// Pulls host `host`'s cable out at the switch: its port goes down, every frame to or
    /// from the host is lost, and nobody is told (no FIN, no RST, no ICMP).
    pub fn cable_out(&self, host: usize) {
        self.check_host(host);
        ip(&format!(
            "-n {} link set {} down",
            self.bridge_ns,
            switch_port(host)
        ));
    }

    /// Plugs host `host`'s cable back in; returns once the port forwards again.
    pub fn cable_in(&self, host: usize) {
        self.check_host(host);
        ip(&format!(
            "-n {} link set {} up",
            self.bridge_ns,
            switch_port(host)
        ));
        self.wait_until_plugged_in(host);
    }

    /// Makes host `host` drop `percent`% of the packets it sends and, independently,
    /// `percent`% of those it receives on its network card (loopback is untouched).
    /// Replaces any loss set before; 0 removes it.
    pub fn set_loss(&self, host: usize, percent: u8) {
        assert!(percent <= 100, "loss is a percentage, got {percent}");
        if percent == 0 {
            self.clear_loss(host);
            return;
        }
        // `numgen random mod 100` yields 0..=99 and nft rejects comparing it with 100, so
        // total loss is an unconditional drop.
        let condition = if percent == 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        };
        // One nft invocation is one transaction: "add; delete" empties any earlier table
        // (add succeeds whether or not it exists), then the new one is created.
        let script = format!(
            "add table inet {LOSS_TABLE}; delete table inet {LOSS_TABLE}; \
             table inet {LOSS_TABLE} {{ \
               chain input {{ type filter hook input priority 0; policy accept; \
                 iifname \"{HOST_INTERFACE}\" {condition}drop; }}; \
               chain output {{ type filter hook output priority 0; policy accept; \
                 oifname \"{HOST_INTERFACE}\" {condition}drop; }}; \
             }}"
        );
        self.run_checked_in(host, &["nft", &script]);
    }

    /// Removes any loss set by [`Lan::set_loss`] (does nothing if there is none).
    pub fn clear_loss(&self, host: usize) {
        let script = format!("add table inet {LOSS_TABLE}; delete table inet {LOSS_TABLE}");
        self.run_checked_in(host, &["nft", &script]);
    }

    /// The established TCP connections in host `host` with `port` at either end, as
    /// (local, peer) address pairs, read from `ss` ([`super::sockets`]).
    pub fn established_tcp(&self, host: usize, port: u16) -> Vec<(SocketAddrV4, SocketAddrV4)> {
        tcp_sockets_on_port_in(self.host_ns(host), port)
            .into_iter()
            .filter(|socket| socket.state == "ESTAB")
            .map(|socket| (socket.local, socket.peer))
            .collect()
    }

    /// Runs a command in host `host`'s namespace, panics if it fails, returns its stdout.
    fn run_checked_in(&self, host: usize, command: &[&str]) -> String {
        let output = self.run_in(host, command);
        if !output.status.success() {
            panic!(
                "`ip netns exec {} {}` failed ({}): {}",
                self.host_ns(host),
                command.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until host `host`'s cable is fully in: its `eth0` has carrier and the
    /// switch port forwards. Both happen at once today, but link state changes travel
    /// through the kernel's link-watch work queue, so checking costs little and spares
    /// a test from losing the first announcement on a slower kernel.
    fn wait_until_plugged_in(&self, host: usize) {
        let show_host_link = format!("-n {} -o link show {HOST_INTERFACE}", self.host_ns(host));
        let show_bridge_port = format!(
            "-n {} -d -o link show {}",
            self.bridge_ns,
            switch_port(host)
        );
        let deadline = Instant::now() + LINK_UP_TIMEOUT;
        loop {
            let host_link = ip(&show_host_link);
            let bridge_port = ip(&show_bridge_port);
            if host_link.contains("state UP")
                && bridge_port.contains("bridge_slave state forwarding")
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "host {host}'s link did not come up within {LINK_UP_TIMEOUT:?}\n\
                     host side: {host_link}\nswitch side: {bridge_port}"
                );
            }
            thread::sleep(LINK_POLL_INTERVAL);
        }
    }

    #[track_caller]
    fn check_host(&self, host: usize) {
        let hosts = self.host_namespaces.len();
        assert!(
            (1..=hosts).contains(&host),
            "no host {host}: this Lan has hosts 1..={hosts}"
        );
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace destroys the interfaces in it; a veth pair dies with either
        // end, so the bridge namespace goes last only for tidiness. Errors are ignored:
        // Drop must not panic, and it also runs for a half-built Lan.
        for namespace in self.host_namespaces.iter().rev().chain([&self.bridge_ns]) {
            let _ = Command::new("ip")
                .args(["netns", "delete", namespace])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The switch-side end of host `host`'s cable.
fn switch_port(host: usize) -> String {
    format!("port{host}")
}

/// Creates network namespace `name` with IPv6 switched off.
pub(super) fn add_namespace(name: &str) {
    let _serialised = NAMESPACE_CREATION
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Names contain our PID, so an existing namespace of this name can only be a leftover
    // of a killed earlier run whose PID we inherited; remove it rather than fail.
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    ip(&format!("netns add {name}"));
    // The chat speaks IPv4 only. Without IPv6 the interfaces send no router solicitations,
    // neighbour discovery or MLD reports, so a capture of the LAN shows only the chat.
    // "default" covers interfaces created later, "all" those that exist already.
    if Path::new("/proc/sys/net/ipv6").exists() {
        run_checked(&[
            "ip",
            "netns",
            "exec",
            name,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
    }
}

/// Runs `ip ARGUMENTS` and returns its stdout, panicking with the command line and its
/// error output if it fails. The arguments are one string, split at spaces, so each call
/// reads like the shell command it is; no name or address used here contains a space.
pub(super) fn ip(arguments: &str) -> String {
    let mut command = vec!["ip"];
    command.extend(arguments.split_whitespace());
    run_checked(&command)
}

/// Runs `command`, panicking with the command line and its error output if it fails;
/// returns its stdout.
fn run_checked(command: &[&str]) -> String {
    let (program, args) = command
        .split_first()
        .expect("run_checked needs a program to run");
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("could not run `{}`: {error}", command.join(" ")));
    if !output.status.success() {
        panic!(
            "`{}` failed ({}): {}",
            command.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}
