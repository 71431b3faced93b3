//! Finding each other: UDP broadcast announcements.
//!
//! There is no server to ask "who is here?", so every member shouts. An announcement is
//! one UDP datagram sent to the broadcast address (255.255.255.255 by default), which
//! the switch delivers to every machine on the LAN. Whoever hears it and is not yet
//! connected to the announcer opens a TCP connection back to it.
//!
//! Two sockets, because they have opposite needs:
//!
//! * **The listener** is bound to `0.0.0.0:PORT`, the wildcard address, so it hears
//!   broadcasts arriving on any interface. It sets `SO_REUSEADDR` before binding:
//!   for UDP on Linux that lets several sockets bind the same port, and a broadcast is
//!   then delivered to each of them, so several members on one machine (127.0.0.1,
//!   127.0.0.2, ...) all hear every announcement. std cannot set an option *before*
//!   `bind`, hence socket2.
//! * **The announcer** is bound to `HOST:0` and sets `SO_BROADCAST`, without which the
//!   kernel refuses to send to a broadcast address. Binding to our own address fixes
//!   the source address receivers see (they connect back to it) and, on Linux, sends a
//!   limited broadcast out of that address's interface: from 127.0.0.x it stays on the
//!   loopback interface, from a LAN address it goes onto that LAN.
//!
//! Broadcasts are unacknowledged and get lost, so a member announces itself a few times
//! at start-up and then every [`ANNOUNCE_INTERVAL`] for as long as it runs. Members
//! already connected to it simply ignore the repeats.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::protocol::{Announcement, MAX_ANNOUNCEMENT_BYTES};
use crate::tuning::{ANNOUNCE_INTERVAL, REDIAL_INTERVAL, STARTUP_ANNOUNCEMENTS};

/// The two UDP sockets of a member.
pub struct Discovery {
    listener: UdpSocket,
    announcer: UdpSocket,
    broadcast_to: SocketAddrV4,
}

/// Which of the two sockets could not be set up, for an error message that says so.
#[derive(Debug)]
pub enum BindError {
    Listener(io::Error),
    Announcer(io::Error),
}

impl Discovery {
    /// Opens the listener on `0.0.0.0:port` and the announcer on `host`, announcing to
    /// `broadcast:port`.
    pub fn bind(host: Ipv4Addr, port: u16, broadcast: Ipv4Addr) -> Result<Discovery, BindError> {
        let listener = bind_shared_listener(port).map_err(BindError::Listener)?;
        let announcer = bind_announcer(host).map_err(BindError::Announcer)?;
        Ok(Discovery {
            listener,
            announcer,
            broadcast_to: SocketAddrV4::new(broadcast, port),
        })
    }

    pub fn announce(&self, announcement: &Announcement) -> io::Result<()> {
        self.announcer
            .send_to(&announcement.encode(), self.broadcast_to)
            .map(drop)
    }

    /// Waits up to `wait` for an announcement. `Ok(None)` when the time ran out or the
    /// datagram was not a valid announcement (anyone may send anything to this port).
    pub fn receive(&self, wait: Duration) -> io::Result<Option<(Ipv4Addr, Announcement)>> {
        // A zero timeout means "block forever" to the socket API: never pass one.
        self.listener
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        // One byte more than the largest valid announcement, so an oversized datagram
        // (which the kernel would silently cut to fit) is seen as oversized.
        let mut datagram = [0u8; MAX_ANNOUNCEMENT_BYTES + 1];
        let (length, from) = match self.listener.recv_from(&mut datagram) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(e),
        };
        let SocketAddr::V4(from) = from else {
            return Ok(None);
        };
        Ok(Announcement::decode(&datagram[..length])
            .ok()
            .map(|announcement| (*from.ip(), announcement)))
    }
}

/// A UDP socket on `0.0.0.0:port` that shares the port with other members on this
/// machine (`SO_REUSEADDR`, set before `bind`).
pub fn bind_shared_listener(port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        port,
    )))?;
    Ok(socket.into())
}

fn bind_announcer(host: Ipv4Addr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddrV4::new(host, 0))?;
    socket.set_broadcast(true)?;
    Ok(socket)
}

/// When the next announcement is due: the start-up burst, then a steady beat.
pub struct AnnounceSchedule {
    started: Instant,
    sent: usize,
    last_sent: Instant,
}

impl AnnounceSchedule {
    pub fn new(started: Instant) -> AnnounceSchedule {
        AnnounceSchedule {
            started,
            sent: 0,
            last_sent: started,
        }
    }

    pub fn next_due(&self) -> Instant {
        match STARTUP_ANNOUNCEMENTS.get(self.sent) {
            Some(offset) => self.started + *offset,
            None => self.last_sent + ANNOUNCE_INTERVAL,
        }
    }

    pub fn mark_sent(&mut self, now: Instant) {
        self.sent += 1;
        self.last_sent = now;
    }
}

/// Remembers when each address was last dialed, so that a flood of announcements (real
/// or forged) never makes us connect to the same address in a tight loop.
#[derive(Default)]
pub struct RedialLimiter {
    last_dialed: HashMap<Ipv4Addr, Instant>,
}

impl RedialLimiter {
    /// Past this many remembered addresses, the stale ones are forgotten, so forged
    /// announcements from many addresses cannot grow the map without bound.
    const MAX_REMEMBERED: usize = 1024;

    /// True (and remembered) if `addr` was not dialed within [`REDIAL_INTERVAL`].
    pub fn may_dial(&mut self, addr: Ipv4Addr, now: Instant) -> bool {
        if let Some(last) = self.last_dialed.get(&addr) {
            if now.saturating_duration_since(*last) < REDIAL_INTERVAL {
                return false;
            }
        }
        if self.last_dialed.len() >= Self::MAX_REMEMBERED {
            self.last_dialed
                .retain(|_, last| now.saturating_duration_since(*last) < REDIAL_INTERVAL);
        }
        if self.last_dialed.len() >= Self::MAX_REMEMBERED {
            return false;
        }
        self.last_dialed.insert(addr, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_come_in_a_start_up_burst_then_at_a_steady_beat() {
        let start = Instant::now();
        let mut schedule = AnnounceSchedule::new(start);
        for offset in STARTUP_ANNOUNCEMENTS {
            assert_eq!(schedule.next_due(), start + offset);
            schedule.mark_sent(start + offset);
        }
        let last_burst = start + STARTUP_ANNOUNCEMENTS[STARTUP_ANNOUNCEMENTS.len() - 1];
        assert_eq!(schedule.next_due(), last_burst + ANNOUNCE_INTERVAL);
    }

    #[test]
    fn an_address_is_not_redialed_within_the_interval() {
        let mut limiter = RedialLimiter::default();
        let addr = Ipv4Addr::new(198, 18, 0, 2);
        let now = Instant::now();
        assert!(limiter.may_dial(addr, now));
        assert!(!limiter.may_dial(addr, now + REDIAL_INTERVAL / 2));
        assert!(limiter.may_dial(addr, now + REDIAL_INTERVAL));
        assert!(limiter.may_dial(Ipv4Addr::new(198, 18, 0, 3), now));
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_limiter_bounded() {
        let mut limiter = RedialLimiter::default();
        let now = Instant::now();
        for i in 0..5000u32 {
            limiter.may_dial(Ipv4Addr::from(i), now);
        }
        assert!(limiter.last_dialed.len() <= RedialLimiter::MAX_REMEMBERED);
    }

    #[test]
    fn members_on_one_machine_all_hear_a_broadcast() {
        // Two listeners on the same port (as two members on 127.0.0.1 and 127.0.0.2
        // would have) and one announcement from 127.0.0.3.
        let first = bind_shared_listener(0).expect("bind a listener");
        let port = first.local_addr().expect("local address").port();
        drop(first);
        let listeners: Vec<Discovery> = (1..=2)
            .map(|i| {
                Discovery::bind(Ipv4Addr::new(127, 0, 0, i), port, Ipv4Addr::BROADCAST)
                    .expect("bind discovery")
            })
            .collect();
        let sender = Discovery::bind(Ipv4Addr::new(127, 0, 0, 3), port, Ipv4Addr::BROADCAST)
            .expect("bind discovery");
        let announcement = Announcement {
            version: crate::protocol::PROTOCOL_VERSION,
            tcp_port: port,
            instance: 9,
            name: "Cleo".into(),
            room: "lobby".into(),
        };
        sender.announce(&announcement).expect("broadcast");
        for listener in &listeners {
            let heard = listener
                .receive(Duration::from_secs(5))
                .expect("receive")
                .expect("an announcement");
            assert_eq!(heard, (Ipv4Addr::new(127, 0, 0, 3), announcement.clone()));
        }
    }
}
