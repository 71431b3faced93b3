//! Two LANs joined by a router, for tests of members that broadcast cannot reach.
//!
//! ```text
//!   198.18.1.0/24 (Lan::on_subnet(_, 1))        198.18.2.0/24 (Lan::on_subnet(_, 2))
//!   host 1  host 2 ...  ── br0 ──┐        ┌── br0 ──  host 1  host 2 ...
//!                                eth1  router  eth2
//!                        198.18.1.254  (p2pr…)  198.18.2.254
//! ```
//!
//! A router forwards unicast between its interfaces (`net.ipv4.ip_forward=1`) and never
//! forwards a broadcast: an announcement stays on its own subnet, exactly as on a real
//! network of two labs. Every host's default route points at the router.

use super::lan::{Lan, add_namespace, ip};
use super::unique_suffix;

/// Two subnets and the router between them.
pub struct RoutedLan {
    router_ns: String,
    /// Subnet 198.18.1.0/24.
    pub left: Lan,
    /// Subnet 198.18.2.0/24.
    pub right: Lan,
}

impl RoutedLan {
    /// `left` hosts on 198.18.1.0/24 and `right` hosts on 198.18.2.0/24, routed.
    pub fn new(left: usize, right: usize) -> RoutedLan {
        let router_ns = format!("p2pr{}", unique_suffix());
        add_namespace(&router_ns);
        let routed = RoutedLan {
            left: Lan::on_subnet(left, 1),
            right: Lan::on_subnet(right, 2),
            router_ns,
        };
        routed.left.plug_router(&routed.router_ns, "eth1");
        routed.right.plug_router(&routed.router_ns, "eth2");
        ip(&format!(
            "netns exec {} sysctl -q -w net.ipv4.ip_forward=1",
            routed.router_ns
        ));
        routed
    }
}

impl Drop for RoutedLan {
    fn drop(&mut self) {
        // The two Lans remove themselves; the router's namespace is ours.
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.router_ns])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
