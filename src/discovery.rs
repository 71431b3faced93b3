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
//!   127.0.0.2, ...) all hear every announcement. macOS and the BSDs also need
//!   `SO_REUSEPORT` for that, and on Windows the option means more:
//!   [`crate::platform::share_udp_port`] sets what each system needs, and says why.
//!   std cannot set an option *before* `bind`, hence socket2.
//! * **The announcer** is bound to `HOST:0` and sets `SO_BROADCAST`, without which the
//!   kernel refuses to send to a broadcast address. Binding to our own address fixes
//!   the source address receivers see (they connect back to it) and, on Linux, sends a
//!   limited broadcast out of that address's interface: from 127.0.0.x it stays on the
//!   loopback interface, from a LAN address it goes onto that LAN. macOS sends
//!   255.255.255.255 where its routing table says (the default route's interface),
//!   whatever the socket is bound to; a subnet's broadcast address (`--broadcast
//!   192.168.1.255`) goes out of that subnet's interface on every system.
//!
//! Broadcasts are unacknowledged and get lost, so a member announces itself a few times
//! at start-up and then every [`ANNOUNCE_INTERVAL`] for as long as it runs. Members
//! already connected to it simply ignore the repeats.
//!
//! ## When broadcast does not reach
//!
//! Campus Wi-Fi often filters broadcast, and routers never forward it, so a member can
//! also be *given* an address (`--peer`, `/connect`) and is *told* addresses: a member
//! that joins is sent the list of members the other side is connected to
//! ([`crate::protocol::Frame::Members`]), and dials those it does not know. One known
//! address is enough for the whole mesh to form.
//!
//! Where broadcast does reach, the others are about to dial us anyway (they heard our
//! announcement), and a list dial made at once would race theirs: two connections for
//! one pair, one of them closed again. So there a listed address waits
//! [`LISTED_DIAL_DELAY`] and is dialed only if still needed, and one that announces
//! itself here is left to its announcements altogether. Two members dialing each
//! other at the same moment is the classic *simultaneous open* problem of
//! peer-to-peer programs; the tie-break for the connections that do cross is in
//! [`crate::peers`].
//!
//! Each way of hearing of an address is a [`DialSource`], and [`DialPolicy`] decides
//! whether to dial. A list comes from another member and may be a lie, naming machines
//! that are not members (to make everyone connect to a third machine): so an address
//! learned from a list is dialed at most once per [`LISTED_REDIAL_INTERVAL`], and at
//! most [`LISTED_DIAL_BURST`] of them at once, then [`LISTED_DIALS_PER_SECOND`].

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::platform::share_udp_port;
use crate::protocol::{Announcement, MAX_ANNOUNCEMENT_BYTES};
use crate::tuning::{
    ANNOUNCE_INTERVAL, BROADCAST_HEARD_WINDOW, LISTED_DIAL_BURST, LISTED_DIAL_DELAY,
    LISTED_DIALS_PER_SECOND, LISTED_REDIAL_INTERVAL, LISTED_WAITING_MAX, REDIAL_INTERVAL,
    STARTUP_ANNOUNCEMENTS,
};

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
/// machine (`SO_REUSEADDR`, and `SO_REUSEPORT` where the system needs it, set before
/// `bind`: see [`crate::platform`]).
fn bind_shared_listener(port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    share_udp_port(&socket)?;
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

/// How we heard of an address we might dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialSource {
    /// Its own UDP announcement.
    Announced,
    /// The user gave it (`--peer`, `/connect`).
    Given,
    /// The member at `by` listed it among its members.
    Listed { by: Ipv4Addr },
}

/// Whether `addr` could be a member for a member at `me` to dial: a single machine's
/// address, not ours, and a loopback address only when we are on loopback ourselves (a
/// list from the LAN naming 127.0.0.1 would make us dial ourselves or a neighbour).
pub fn is_dialable(addr: Ipv4Addr, me: Ipv4Addr) -> bool {
    addr != me
        && !addr.is_unspecified()
        && !addr.is_broadcast()
        && !addr.is_multicast()
        && addr.is_loopback() == me.is_loopback()
}

/// Decides whether to dial an address now, so that no flood of announcements (real or
/// forged) and no member's list (true or not) makes us connect in a tight loop, or to
/// a machine that is not a member over and over.
#[derive(Debug)]
pub struct DialPolicy {
    /// When each address was last dialed, whatever the source.
    last_dialed: HashMap<Ipv4Addr, Instant>,
    /// When each address was last dialed because a list named it.
    last_listed: HashMap<Ipv4Addr, Instant>,
    /// Dials from lists still allowed right now (a token bucket).
    listed_tokens: u32,
    /// When the last token was added.
    refilled_at: Instant,
    /// When another member's announcement last arrived: broadcast reaches us.
    announcement_heard_at: Option<Instant>,
    /// When each address last announced itself here.
    announced: HashMap<Ipv4Addr, Instant>,
    /// Addresses from lists that wait for [`LISTED_DIAL_DELAY`], with when they are due
    /// and who listed them.
    listed_waiting: HashMap<SocketAddrV4, (Instant, Ipv4Addr)>,
    /// A thread sleeps until the next of them is due (it ends when none waits).
    timer_running: bool,
}

/// What to do with an address a member's list named.
#[derive(Debug, PartialEq, Eq)]
pub enum ListedDial {
    /// Dial it now.
    Now,
    /// Do not: it announces itself here, and each of its announcements dials it while
    /// we are not connected. A list would only add a second connection racing that one.
    Unneeded,
    /// It waits; `start_timer`: no thread sleeps until waiting addresses are due, so the
    /// caller starts one, which takes them with [`DialPolicy::take_due`].
    Waits { start_timer: bool },
}

impl DialPolicy {
    /// Past this many remembered addresses, the stale ones are forgotten, so forged
    /// announcements or lists naming many addresses cannot grow the maps without bound.
    const MAX_REMEMBERED: usize = 1024;

    pub fn new(now: Instant) -> DialPolicy {
        DialPolicy {
            last_dialed: HashMap::new(),
            last_listed: HashMap::new(),
            listed_tokens: LISTED_DIAL_BURST,
            refilled_at: now,
            announcement_heard_at: None,
            announced: HashMap::new(),
            listed_waiting: HashMap::new(),
            timer_running: false,
        }
    }

    /// The member at `from` announced itself `now`.
    pub fn heard_announcement(&mut self, from: Ipv4Addr, now: Instant) {
        self.announcement_heard_at = Some(now);
        remember(&mut self.announced, from, BROADCAST_HEARD_WINDOW, now);
    }

    /// Whether `addr` announced itself here lately.
    fn announces_itself(&self, addr: Ipv4Addr, now: Instant) -> bool {
        recently(&self.announced, addr, BROADCAST_HEARD_WINDOW, now)
    }

    /// A list from `by` named `target`; `found_us` if `by` dialed us. A target that
    /// announces itself here is not dialed for a list at all. Where the others will
    /// most likely connect to us by themselves (announcements arrive here, or the
    /// lister found us, as its neighbours usually will), the dial waits
    /// [`LISTED_DIAL_DELAY`], and [`DialPolicy::take_due`] gives it back when due.
    pub fn wait_to_dial_listed(
        &mut self,
        target: SocketAddrV4,
        by: Ipv4Addr,
        found_us: bool,
        now: Instant,
    ) -> ListedDial {
        if self.announces_itself(*target.ip(), now) {
            return ListedDial::Unneeded;
        }
        let broadcast_reaches = self
            .announcement_heard_at
            .is_some_and(|heard| now.saturating_duration_since(heard) < BROADCAST_HEARD_WINDOW);
        if !(broadcast_reaches || found_us)
            || (self.listed_waiting.len() >= LISTED_WAITING_MAX
                && !self.listed_waiting.contains_key(&target))
        {
            return ListedDial::Now;
        }
        self.listed_waiting
            .entry(target)
            .or_insert((now + LISTED_DIAL_DELAY, by));
        let start_timer = !std::mem::replace(&mut self.timer_running, true);
        ListedDial::Waits { start_timer }
    }

    /// The listed addresses due by `now` (and who listed each), no longer waiting, and
    /// when the next one is due. `None`: none waits, and the timer thread ends. One
    /// that announced itself while it waited is left to its announcements.
    pub fn take_due(&mut self, now: Instant) -> (Vec<(SocketAddrV4, Ipv4Addr)>, Option<Instant>) {
        let mut due = Vec::new();
        let announced = &self.announced;
        self.listed_waiting.retain(|target, (at, by)| {
            let waiting = *at > now;
            if !waiting && !recently(announced, *target.ip(), BROADCAST_HEARD_WINDOW, now) {
                due.push((*target, *by));
            }
            waiting
        });
        let next = self.listed_waiting.values().map(|(at, _)| *at).min();
        self.timer_running = next.is_some();
        (due, next)
    }

    /// Every listed address that waits, at once (no thread could be started to wait).
    pub fn take_all_waiting(&mut self) -> Vec<(SocketAddrV4, Ipv4Addr)> {
        self.timer_running = false;
        self.listed_waiting
            .drain()
            .map(|(target, (_, by))| (target, by))
            .collect()
    }

    /// True (and remembered) if `addr`, heard of from `source`, may be dialed `now`:
    /// never twice within [`REDIAL_INTERVAL`]; from a list, never twice within
    /// [`LISTED_REDIAL_INTERVAL`], and only while the list budget lasts.
    pub fn may_dial(&mut self, addr: Ipv4Addr, source: DialSource, now: Instant) -> bool {
        if recently(&self.last_dialed, addr, REDIAL_INTERVAL, now) {
            return false;
        }
        if let DialSource::Listed { .. } = source {
            self.refill(now);
            if self.listed_tokens == 0
                || recently(&self.last_listed, addr, LISTED_REDIAL_INTERVAL, now)
                || !remember(&mut self.last_listed, addr, LISTED_REDIAL_INTERVAL, now)
            {
                return false;
            }
            self.listed_tokens -= 1;
        }
        remember(&mut self.last_dialed, addr, REDIAL_INTERVAL, now)
    }

    fn refill(&mut self, now: Instant) {
        let per_token = Duration::from_secs(1) / LISTED_DIALS_PER_SECOND;
        while self.listed_tokens < LISTED_DIAL_BURST
            && now.saturating_duration_since(self.refilled_at) >= per_token
        {
            self.listed_tokens += 1;
            self.refilled_at += per_token;
        }
        if self.listed_tokens == LISTED_DIAL_BURST {
            self.refilled_at = now;
        }
    }
}

/// Whether `addr` is in `map` with a time less than `interval` before `now`.
fn recently(
    map: &HashMap<Ipv4Addr, Instant>,
    addr: Ipv4Addr,
    interval: Duration,
    now: Instant,
) -> bool {
    map.get(&addr)
        .is_some_and(|last| now.saturating_duration_since(*last) < interval)
}

/// Notes `now` for `addr`, first forgetting entries older than `interval` if the map is
/// full; false (and nothing noted) if it is still full of recent ones.
fn remember(
    map: &mut HashMap<Ipv4Addr, Instant>,
    addr: Ipv4Addr,
    interval: Duration,
    now: Instant,
) -> bool {
    if map.len() >= DialPolicy::MAX_REMEMBERED {
        map.retain(|_, last| now.saturating_duration_since(*last) < interval);
    }
    if map.len() >= DialPolicy::MAX_REMEMBERED && !map.contains_key(&addr) {
        return false;
    }
    map.insert(addr, now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_udp_port_can_be_bound_twice() {
        let first = bind_shared_listener(0).expect("bind a first listener");
        let port = first
            .local_addr()
            .expect("the first listener's port")
            .port();
        bind_shared_listener(port).expect("a second listener on the same port");
    }

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

    /// A member whose announcements arrive (not one the tests list).
    const ANNOUNCER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 8);

    const LISTER: DialSource = DialSource::Listed {
        by: Ipv4Addr::new(198, 18, 0, 9),
    };

    #[test]
    fn an_address_is_not_redialed_within_the_interval() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        let addr = Ipv4Addr::new(198, 18, 0, 2);
        assert!(policy.may_dial(addr, DialSource::Announced, now));
        assert!(!policy.may_dial(addr, DialSource::Announced, now + REDIAL_INTERVAL / 2));
        assert!(!policy.may_dial(addr, DialSource::Given, now + REDIAL_INTERVAL / 2));
        assert!(policy.may_dial(addr, DialSource::Announced, now + REDIAL_INTERVAL));
        assert!(policy.may_dial(Ipv4Addr::new(198, 18, 0, 3), DialSource::Announced, now));
    }

    #[test]
    fn an_address_from_a_list_is_dialed_once_per_listed_interval() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        let addr = Ipv4Addr::new(198, 18, 0, 2);
        assert!(policy.may_dial(addr, LISTER, now));
        let later = now + REDIAL_INTERVAL * 2;
        assert!(
            !policy.may_dial(addr, LISTER, later),
            "a list may not redial so soon"
        );
        // Its own announcement still may: that is evidence it is a member.
        assert!(policy.may_dial(addr, DialSource::Announced, later));
        assert!(policy.may_dial(addr, LISTER, now + LISTED_REDIAL_INTERVAL));
    }

    #[test]
    fn lists_cannot_make_us_dial_more_than_the_budget() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        let dialed_at_once = (0..1000u32)
            .filter(|i| policy.may_dial(Ipv4Addr::from(0x0a00_0000 + i), LISTER, now))
            .count();
        assert_eq!(dialed_at_once, LISTED_DIAL_BURST as usize);
        let a_second_later = now + Duration::from_secs(1);
        let dialed_next = (1000..2000u32)
            .filter(|i| policy.may_dial(Ipv4Addr::from(0x0a00_0000 + i), LISTER, a_second_later))
            .count();
        assert_eq!(dialed_next, LISTED_DIALS_PER_SECOND as usize);
    }

    #[test]
    fn listed_addresses_wait_only_where_announcements_arrive() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        let by = Ipv4Addr::new(198, 18, 0, 9);
        let listed = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 24242);
        let waits = |start_timer| ListedDial::Waits { start_timer };
        // No announcement heard (broadcast filtered): dial at once.
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, now),
            ListedDial::Now
        );
        // Unless the lister found us: its neighbours will too. A timer must start.
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, true, now),
            waits(true)
        );
        let delay = LISTED_DIAL_DELAY;
        assert_eq!(policy.take_due(now + delay), (vec![(listed, by)], None));

        // Announcements arrive: the list's address waits, then comes back once.
        policy.heard_announcement(ANNOUNCER, now);
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, now),
            waits(true)
        );
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, now),
            waits(false),
            "named twice, waits once, and the timer already runs"
        );
        assert_eq!(
            policy.take_due(now + delay / 2),
            (vec![], Some(now + delay))
        );
        assert_eq!(policy.take_due(now + delay), (vec![(listed, by)], None));
        assert_eq!(policy.take_due(now + delay * 2), (vec![], None));

        // Announcements stopped arriving long ago: at once again.
        let later = now + BROADCAST_HEARD_WINDOW;
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, later),
            ListedDial::Now
        );
    }

    #[test]
    fn a_listed_address_that_announces_itself_is_left_to_its_announcements() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        let by = Ipv4Addr::new(198, 18, 0, 9);
        let listed = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 24242);
        policy.heard_announcement(*listed.ip(), now);
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, now),
            ListedDial::Unneeded
        );
        // One that announces itself only while it waits is not dialed when due.
        let other = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), 24242);
        assert!(matches!(
            policy.wait_to_dial_listed(other, by, false, now),
            ListedDial::Waits { .. }
        ));
        policy.heard_announcement(*other.ip(), now + LISTED_DIAL_DELAY / 2);
        assert_eq!(policy.take_due(now + LISTED_DIAL_DELAY), (vec![], None));
        // Its announcements stopped: a list names it, and it is dialed again.
        let later = now + LISTED_DIAL_DELAY / 2 + BROADCAST_HEARD_WINDOW;
        assert_eq!(
            policy.wait_to_dial_listed(listed, by, false, later),
            ListedDial::Now
        );
    }

    #[test]
    fn a_flood_of_listed_addresses_does_not_grow_the_waiting_set() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        policy.heard_announcement(ANNOUNCER, now);
        let by = Ipv4Addr::new(198, 18, 0, 9);
        let waited = (0..1000u32)
            .filter(|i| {
                let target = SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + i), 24242);
                policy.wait_to_dial_listed(target, by, false, now) != ListedDial::Now
            })
            .count();
        // Past the limit they are dialed at once, under the list budget of `may_dial`.
        assert_eq!(waited, LISTED_WAITING_MAX);
        assert_eq!(policy.take_all_waiting().len(), LISTED_WAITING_MAX);
    }

    #[test]
    fn only_addresses_of_our_kind_are_dialable() {
        let lan = Ipv4Addr::new(198, 18, 0, 1);
        assert!(is_dialable(Ipv4Addr::new(198, 18, 0, 2), lan));
        assert!(is_dialable(Ipv4Addr::new(10, 1, 2, 3), lan));
        for not in [
            lan,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
        ] {
            assert!(!is_dialable(not, lan), "{not}");
        }
        assert!(!is_dialable(Ipv4Addr::new(224, 0, 0, 1), lan));
        assert!(is_dialable(
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::LOCALHOST
        ));
        assert!(!is_dialable(lan, Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_policy_bounded() {
        let now = Instant::now();
        let mut policy = DialPolicy::new(now);
        for i in 0..5000u32 {
            policy.may_dial(Ipv4Addr::from(i), DialSource::Announced, now);
            policy.may_dial(Ipv4Addr::from(i), LISTER, now);
        }
        assert!(policy.last_dialed.len() <= DialPolicy::MAX_REMEMBERED);
        assert!(policy.last_listed.len() <= DialPolicy::MAX_REMEMBERED);
    }

    // Linux only: it needs 127.0.0.2 and .3 on loopback, and broadcast there (see
    // crate::platform for macOS).
    #[cfg(target_os = "linux")]
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
