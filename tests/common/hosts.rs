//! Loopback addresses for a test's members, none shared with another test of the
//! process.
//!
//! All of 127.0.0.0/8 is loopback on Linux: any address in it can be bound without
//! configuring anything, so each member gets an address of its own, as it would have
//! its own machine on a LAN. A test takes a [`Hosts`] block, 127.0.B.1 to 127.0.B.254
//! with a B no other test in this process has, and numbers its members inside it. So
//! nothing one test leaves behind (a connection closing, a thread finishing) can be
//! mistaken for another test's member, and a test's sockets are easy to pick out in
//! `ss`. Test binaries running side by side may use the same blocks; their ports
//! ([`super::free_port`]) keep them apart.
//!
//! 127.0.0.x is left alone: 127.0.0.1 is where a plain `TcpStream::connect` to a
//! loopback address comes from (std cannot bind before connecting), so the hostile
//! tests' attackers and other programs live there.

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A block of loopback addresses, 127.0.B.1 to 127.0.B.254, for one test.
#[derive(Clone, Copy, Debug)]
pub struct Hosts {
    block: u8,
}

impl Hosts {
    /// A block no other test in this process has taken.
    pub fn fresh() -> Hosts {
        static NEXT_BLOCK: AtomicU32 = AtomicU32::new(1);
        let block = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
        match u8::try_from(block) {
            Ok(block @ 1..=254) => Hosts { block },
            _ => panic!("ran out of 127.0.B.0/24 blocks: one test binary took over 254"),
        }
    }

    /// One block for the whole test binary, taken on first use: for a file whose tests
    /// each number their members apart inside it (or keep them apart by port alone).
    pub fn of_this_binary() -> Hosts {
        static SHARED: OnceLock<Hosts> = OnceLock::new();
        *SHARED.get_or_init(Hosts::fresh)
    }

    /// Address `n` of the block, 127.0.B.`n` (`n` from 1 to 254).
    pub fn addr(&self, n: u8) -> Ipv4Addr {
        assert!((1..=254).contains(&n), "host number {n} is not in 1..=254");
        Ipv4Addr::new(127, 0, self.block, n)
    }

    /// The first `count` addresses of the block, 127.0.B.1 onwards.
    pub fn first(&self, count: usize) -> Vec<Ipv4Addr> {
        let count = u8::try_from(count).expect("at most 254 hosts in a block");
        (1..=count).map(|n| self.addr(n)).collect()
    }
}

/// Address `n` of this test binary's block ([`Hosts::of_this_binary`]): for files whose
/// tests tell their members apart by number (and by port).
pub fn host(n: u8) -> Ipv4Addr {
    Hosts::of_this_binary().addr(n)
}
