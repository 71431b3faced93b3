//! The PeerMap: who we are connected to, exactly one connection per member.
//!
//! Every connection thread, the discovery thread and the user's thread share one
//! `PeerMap` behind the engine's state lock (see `shared.rs`). It is a plain data
//! structure: it never touches a socket (queueing a frame on a [`Link`] is not I/O), so
//! the lock is never held while the network is slow, and its rules are unit-tested here.
//!
//! Besides the installed connections it keeps what must change in the same step as
//! them: the addresses being dialed, every connection that has a thread (to close them
//! all when leaving), how many threads there are (at most [`MAX_CONNECTIONS`]), and
//! whether we are leaving.
//!
//! ## One connection per pair
//!
//! A member connects to everyone whose announcement it hears, so when A and B start at
//! the same moment, A dials B *and* B dials A: two TCP connections for one pair. Both
//! members must keep the same one, without talking it over, and without either of them
//! printing a spurious "joined" or "left". The rule:
//!
//! 1. The connection dialed by the member with the **lower address** wins.
//! 2. A connection is *installed* (becomes the one we send on) when its hello
//!    exchange completes. The first one installed prints "joined" (at the acceptor,
//!    once the dialer confirms it: [`PeerMap::confirm`]); a winner that arrives later
//!    silently takes the loser's place.
//! 3. Only the lower-addressed member closes a losing connection. The higher one keeps
//!    reading from it until it is closed, so nothing in flight on it is lost.
//!
//! Rule 3 is what keeps "left" lines away: the lower member closes the loser only once
//! it has the winner installed, and the higher member installs the winner before it
//! answers the hello that lets the lower one install it. So when the loser's close
//! arrives at the higher member, the loser is no longer its current connection, and
//! its end is not a departure.
//!
//! Under packet loss the higher member can still guess wrong: a hello held up by
//! resends arrives after the hello of a later connection, so the dead connection looks
//! like the newer one and takes the live one's place. That is why the higher member
//! keeps every connection it does not close *on standby*: when its installed one ends
//! while a standby connection to the same run is still open, the standby one takes
//! over (and is shown as joined then, if the member was not yet). Without it, the
//! member would be lost at our end for good while the other end, happily connected,
//! never dials again.
//!
//! In practice the lower member makes the swap itself rare: while its own connection to
//! the higher member is on its way, it declines the higher member's (rule 1 says its own
//! will win anyway). And since "am I connected or already dialing?" and "then I am
//! dialing now" are one step under the lock ([`PeerMap::reserve_dial`]), a member either
//! has accepted the other's connection before it would dial, or it dials and declines
//! the other's. Either way the pair never carries messages on two connections at once,
//! so none can be lost or reordered between them.
//!
//! A member that restarts comes back at the same address with a new `instance`
//! (chosen at random at start-up): its old connection is dead even if TCP has not
//! noticed yet, so the new one replaces it, and the old member is shown to leave.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::event::Member;
use crate::link::{Direction, LastHeard, Link};
use crate::tuning::MAX_CONNECTIONS;

/// What a member said in its hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub addr: Ipv4Addr,
    /// The TCP port it accepts connections on (from its hello).
    pub port: u16,
    pub instance: u64,
    pub name: String,
}

impl PeerIdentity {
    pub fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr,
        }
    }
}

/// One admitted connection: installed, or on standby.
#[derive(Clone)]
pub struct Peer {
    pub identity: PeerIdentity,
    pub link: Arc<Link>,
    /// Whether "joined" was shown for this member (see [`PeerMap::confirm`]); only a
    /// member announced as joined is announced as leaving.
    pub announced: bool,
    /// Whether the other end has shown that it installed this connection too: for the
    /// dialer, the acceptor's hello; for the acceptor, the dialer's first frame after
    /// the hello. Only a confirmed connection shows its member as joined.
    confirmed: bool,
}

impl Peer {
    fn new(identity: PeerIdentity, link: Arc<Link>) -> Peer {
        Peer {
            identity,
            link,
            announced: false,
            confirmed: false,
        }
    }
}

/// What the end of a connection means for its member ([`PeerMap::remove_if_current`]).
pub enum Ended {
    /// It was not the member's installed connection (a replaced, surplus or standby
    /// one): nothing changes.
    NotCurrent,
    /// It was, and no other connection to that run is open: the member has left.
    Left(Peer),
    /// It was, and a standby connection to the same run took its place. `joined` is the
    /// member if it is shown to join only now (it was not yet, and the standby
    /// connection is confirmed), with the connection it joined on.
    TookOver { joined: Option<(Member, Arc<Link>)> },
}

/// What happened when a connection finished its hello.
pub enum Admission {
    /// A new member: show "joined".
    Joined,
    /// Same member, better connection: it is now the one we use. `close_old` tells
    /// whether we are the side that closes the old one (rule 3).
    Replaced { old: Arc<Link>, close_old: bool },
    /// The address came back as a new instance: the old member left and a new one
    /// joined. The old connection is dead and must be closed.
    Restarted { old: Peer },
    /// Same member, worse connection: keep the installed one. `close_new` tells
    /// whether we close the new one, or keep reading it until the peer closes it.
    Surplus { close_new: bool },
    /// We are leaving: the connection must be told goodbye and closed.
    Closed,
}

/// The decision behind [`PeerMap::admit`], kept pure so it can be tested on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Install,
    Keep,
}

/// Whether a second connection to the same instance should replace the installed one.
fn decide(me: Ipv4Addr, peer: Ipv4Addr, installed: Direction, new: Direction) -> Decision {
    // A second connection dialed the same way as the installed one means the dialer
    // gave up on the first: a member dials an address again only after its previous
    // connection to it has ended. So the newer one is most likely the live one (when
    // resends make an old hello arrive last, the standby repairs the guess).
    if new == installed {
        return Decision::Install;
    }
    let winner = if me < peer {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    if new == winner {
        Decision::Install
    } else {
        Decision::Keep
    }
}

/// Everyone we are connected to, keyed by address (one member per address).
pub struct PeerMap {
    me: Ipv4Addr,
    peers: HashMap<Ipv4Addr, Peer>,
    /// Addresses we have an outbound connection thread for (dialing, saying hello or
    /// connected), so an announcement heard twice does not start a second one.
    dialing: HashSet<Ipv4Addr>,
    /// Connection threads running, dialing or accepted, at most [`MAX_CONNECTIONS`].
    threads: usize,
    /// Set when we leave: nothing is installed or dialed after that. The one place
    /// "leaving" is stored.
    leaving: bool,
    /// Every connection that has a thread, installed or not (still saying hello, or a
    /// surplus one), by link id: what leaving must close.
    open: HashMap<u64, Arc<Link>>,
    /// Admitted connections the higher member keeps open besides the installed one
    /// (surplus or replaced), by address, in case the lower member uses one of those
    /// (see [`PeerMap::remove_if_current`]). Each has a thread, so there are at most
    /// [`MAX_CONNECTIONS`] in all.
    standby: HashMap<Ipv4Addr, Vec<Peer>>,
    /// Members we lost without a goodbye (a cut, a replaced connection): which run, and
    /// when we last heard from it, to catch up if that run comes back.
    lost: HashMap<Ipv4Addr, Lost>,
}

/// A run of a member we lost contact with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lost {
    instance: u64,
    heard: LastHeard,
    /// The number of the newest message of theirs we had then (see
    /// [`PeerMap::had_before_cut`]).
    had_of_theirs: Option<u64>,
}

impl PeerMap {
    pub fn new(me: Ipv4Addr) -> PeerMap {
        PeerMap {
            me,
            peers: HashMap::new(),
            dialing: HashSet::new(),
            threads: 0,
            leaving: false,
            open: HashMap::new(),
            standby: HashMap::new(),
            lost: HashMap::new(),
        }
    }

    /// Whether we are leaving.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Counts a thread for a connection someone opened to us; false when we are leaving
    /// or [`MAX_CONNECTIONS`] threads are running.
    pub fn reserve_thread(&mut self) -> bool {
        if self.leaving || self.threads >= MAX_CONNECTIONS {
            return false;
        }
        self.threads += 1;
        true
    }

    /// Counts a thread to dial `addr` and marks it as being dialed, unless we are
    /// connected to that run of it (`instance`; any run when we do not know which, as
    /// for an address the user gave), are dialing it already, are leaving, or run
    /// [`MAX_CONNECTIONS`] threads; returns whether to dial. One step, so a member
    /// either has the other's connection before it would dial, or it dials and declines
    /// the other's (see rule 1).
    pub fn reserve_dial(&mut self, addr: Ipv4Addr, instance: Option<u64>) -> bool {
        let connected = self
            .peers
            .get(&addr)
            .is_some_and(|peer| instance.is_none_or(|i| peer.identity.instance == i));
        if connected || self.dialing.contains(&addr) || !self.reserve_thread() {
            return false;
        }
        self.dialing.insert(addr);
        true
    }

    /// A connection thread has ended: uncount it, and unmark the address it dialed.
    pub fn release(&mut self, dialed: Option<Ipv4Addr>) {
        self.threads = self.threads.saturating_sub(1);
        if let Some(addr) = dialed {
            self.dialing.remove(&addr);
        }
    }

    /// Notes a connection that now has a thread; false (and not noted) if we are
    /// leaving, so that a dial that was already under way ends at once.
    pub fn open(&mut self, link: &Arc<Link>) -> bool {
        if self.leaving {
            return false;
        }
        self.open.insert(link.id(), link.clone());
        true
    }

    /// Forgets a connection whose thread is ending.
    pub fn forget(&mut self, link_id: u64) {
        self.open.remove(&link_id);
    }

    /// Every connection that still has a thread.
    pub fn open_links(&self) -> Vec<Arc<Link>> {
        self.open.values().cloned().collect()
    }

    /// Installs a connection whose hello exchange just completed, or decides not to.
    pub fn admit(&mut self, identity: PeerIdentity, link: Arc<Link>) -> Admission {
        if self.leaving {
            return Admission::Closed;
        }
        let addr = identity.addr;
        let i_close_losers = self.me < addr;
        // The dialer has the acceptor's hello, so the acceptor installed it too.
        let mut new = Peer::new(identity, link);
        new.confirmed = new.link.direction() == Direction::Outbound;
        let mut installed = match self.peers.entry(addr) {
            Entry::Occupied(installed) => installed,
            Entry::Vacant(none) => {
                let our_winner_is_coming = i_close_losers
                    && new.link.direction() == Direction::Inbound
                    && self.dialing.contains(&addr);
                if our_winner_is_coming {
                    return Admission::Surplus { close_new: true };
                }
                none.insert(new);
                return Admission::Joined;
            }
        };
        if installed.get().identity.instance != new.identity.instance {
            // The old run's standby connections are as dead as its installed one.
            self.standby.remove(&addr);
            let old = installed.insert(new);
            return Admission::Restarted { old };
        }
        let installed_direction = installed.get().link.direction();
        match decide(self.me, addr, installed_direction, new.link.direction()) {
            Decision::Install => {
                new.announced = installed.get().announced;
                let old = installed.insert(new);
                let old_link = old.link.clone();
                if !i_close_losers {
                    // The lower member decides the old connection's fate: until it
                    // does, keep it at hand, as it may be the one the lower one uses.
                    self.standby.entry(addr).or_default().push(old);
                }
                Admission::Replaced {
                    old: old_link,
                    close_old: i_close_losers,
                }
            }
            Decision::Keep => {
                if !i_close_losers {
                    // The same for a connection that arrives second and loses.
                    self.standby.entry(addr).or_default().push(new);
                }
                Admission::Surplus {
                    close_new: i_close_losers,
                }
            }
        }
    }

    /// A connection to `addr` has ended. If it was the member's installed one and no
    /// standby connection to the same run of that member is still open, the member
    /// has left: it is removed and returned. If a standby connection is still open,
    /// the lower member evidently uses that one (the ends of a pair can install
    /// different connections when a hello is lost and resent), so it takes over
    /// silently: the most recently heard of them, a confirmed one first. Any other
    /// connection (replaced, surplus or standby) ends without anyone leaving.
    pub fn remove_if_current(&mut self, addr: Ipv4Addr, link: &Link) -> Ended {
        if let Some(waiting) = self.standby.get_mut(&addr)
            && let Some(index) = waiting.iter().position(|p| p.link.id() == link.id())
        {
            waiting.swap_remove(index);
            if waiting.is_empty() {
                self.standby.remove(&addr);
            }
            return Ended::NotCurrent;
        }
        let removed = match self.peers.entry(addr) {
            Entry::Occupied(installed) if installed.get().link.id() == link.id() => {
                installed.remove()
            }
            _ => return Ended::NotCurrent,
        };
        let Some(mut successor) = self.take_standby(addr, removed.identity.instance) else {
            return Ended::Left(removed);
        };
        successor.announced = removed.announced;
        let joined = if successor.confirmed && !successor.announced {
            successor.announced = true;
            Some((successor.identity.member(), successor.link.clone()))
        } else {
            None
        };
        self.peers.insert(addr, successor);
        Ended::TookOver { joined }
    }

    /// Takes the best standby connection to this run of the member at `addr` out of
    /// the standby list (the others stay at hand): the most recently heard, a confirmed
    /// one first.
    fn take_standby(&mut self, addr: Ipv4Addr, instance: u64) -> Option<Peer> {
        let waiting = self.standby.get_mut(&addr)?;
        let best = waiting
            .iter()
            .enumerate()
            .filter(|(_, peer)| peer.identity.instance == instance)
            .max_by_key(|(_, peer)| (peer.confirmed, peer.link.last_heard().at_ms))
            .map(|(index, _)| index)?;
        let successor = waiting.swap_remove(best);
        if waiting.is_empty() {
            self.standby.remove(&addr);
        }
        Some(successor)
    }

    pub fn get(&self, addr: Ipv4Addr) -> Option<&Peer> {
        self.peers.get(&addr)
    }

    /// Notes that the other end confirmed `link` (see [`Peer`]'s `confirmed`), and
    /// marks the member at `addr` as shown to have joined, if `link` is its installed
    /// connection and that was not done yet; returns the member to show.
    ///
    /// The dialer confirms when the acceptor's hello arrives (the acceptor has
    /// installed the connection by then). The acceptor waits for the dialer's first
    /// frame after the hello: a dialer that was leaving, or found a better connection
    /// meanwhile, answers with a goodbye instead, and then nobody is shown to join and
    /// leave again for a connection that never really carried the chat.
    pub fn confirm(&mut self, addr: Ipv4Addr, link: &Link) -> Option<Member> {
        if let Some(waiting) = self.standby.get_mut(&addr)
            && let Some(peer) = waiting.iter_mut().find(|p| p.link.id() == link.id())
        {
            // Shown to join if it takes over (see `remove_if_current`).
            peer.confirmed = true;
            return None;
        }
        let peer = self.peers.get_mut(&addr)?;
        if peer.link.id() != link.id() {
            return None;
        }
        peer.confirmed = true;
        if peer.announced {
            return None;
        }
        peer.announced = true;
        Some(peer.identity.member())
    }

    /// Records a member's new name (`/name`), if it is still the same run of it.
    pub fn rename(&mut self, addr: Ipv4Addr, instance: u64, name: &str) {
        let standby = self.standby.get_mut(&addr).into_iter().flatten();
        for peer in self.peers.get_mut(&addr).into_iter().chain(standby) {
            if peer.identity.instance == instance {
                peer.identity.name = name.to_owned();
            }
        }
    }

    /// Stops accepting and dialing (we are leaving), and returns the installed
    /// connections, to say goodbye on. Done in one step under the lock, so every
    /// connection is either in this list or refused by [`PeerMap::admit`].
    pub fn close(&mut self) -> Vec<Arc<Link>> {
        self.leaving = true;
        self.links()
    }

    /// The installed connections, to send on after the lock is released. Only the
    /// links are copied (each knows its peer's address): this runs for every message.
    pub fn links(&self) -> Vec<Arc<Link>> {
        self.peers.values().map(|peer| peer.link.clone()).collect()
    }

    /// Every member shown to have joined, ordered by address.
    pub fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .peers
            .values()
            .filter(|peer| peer.announced)
            .map(|peer| peer.identity.member())
            .collect();
        members.sort_by_key(|member| member.addr);
        members
    }

    /// The addresses (with chat ports) of every member shown to have joined: what we
    /// tell others in a [`crate::protocol::Frame::Members`].
    pub fn member_addresses(&self) -> Vec<SocketAddrV4> {
        self.peers
            .values()
            .filter(|peer| peer.announced)
            .map(|peer| SocketAddrV4::new(peer.identity.addr, peer.identity.port))
            .collect()
    }

    /// Notes that we lost contact with this run of the member at `addr`, having last
    /// heard from it as `heard` says, and having its messages up to `had_of_theirs`.
    pub fn lost_contact(
        &mut self,
        addr: Ipv4Addr,
        instance: u64,
        heard: LastHeard,
        had_of_theirs: Option<u64>,
    ) {
        if self.lost.len() >= MAX_CONNECTIONS && !self.lost.contains_key(&addr) {
            // Forget the contact lost longest ago: the least likely to come back.
            let oldest = self.lost.iter().min_by_key(|(_, lost)| lost.heard.at_ms);
            if let Some(oldest) = oldest.map(|(addr, _)| *addr) {
                self.lost.remove(&oldest);
            }
        }
        let lost = Lost {
            instance,
            heard,
            had_of_theirs,
        };
        self.lost.insert(addr, lost);
    }

    /// The member at `addr` said goodbye: there is nothing to catch up on.
    pub fn said_goodbye(&mut self, addr: Ipv4Addr) {
        self.lost.remove(&addr);
    }

    /// When we last heard from this run of the member at `addr` before losing contact
    /// with it, if we did.
    pub fn last_heard_before_cut(&self, addr: Ipv4Addr, instance: u64) -> Option<LastHeard> {
        self.lost
            .get(&addr)
            .filter(|lost| lost.instance == instance)
            .map(|lost| lost.heard)
    }

    /// The number of the newest message of this run of the member at `addr` that we had
    /// from it first-hand when we lost contact with it (`None`: none, or we did not lose contact). What
    /// other members relay to us afterwards can leave a gap below their newest line,
    /// which only the member itself can tell us about.
    pub fn had_before_cut(&self, addr: Ipv4Addr, instance: u64) -> Option<u64> {
        self.lost
            .get(&addr)
            .filter(|lost| lost.instance == instance)
            .and_then(|lost| lost.had_of_theirs)
    }

    /// Whether a member is installed at `addr` (any run).
    pub fn is_connected(&self, addr: Ipv4Addr) -> bool {
        self.peers.contains_key(&addr)
    }

    /// Whether a member is installed at `addr` (any run), or we are dialing it.
    pub fn is_connected_or_dialing(&self, addr: Ipv4Addr) -> bool {
        self.is_connected(addr) || self.dialing.contains(&addr)
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{Inbound, Outbound};
    use super::*;
    use crate::link::loopback_pair;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const FIRST_RUN: u64 = 1;
    const SECOND_RUN: u64 = 2;

    /// A real connection's writing side, as seen from our end. The PeerMap never does
    /// I/O on it; the socket only has to exist (the far end is dropped at once).
    fn link(direction: Direction, peer: Ipv4Addr) -> Arc<Link> {
        let (ours, _theirs) = loopback_pair();
        let (link, _reader) = Link::new(direction, peer, ours).expect("a link");
        Arc::new(link)
    }

    fn identity(addr: Ipv4Addr, instance: u64) -> PeerIdentity {
        PeerIdentity {
            addr,
            port: 4000,
            instance,
            name: format!("run {instance}"),
        }
    }

    /// A map at `me` with the member at `peer` (first run) installed over `direction`,
    /// and shown as joined.
    fn with_installed(me: Ipv4Addr, peer: Ipv4Addr, direction: Direction) -> (PeerMap, Arc<Link>) {
        let mut map = PeerMap::new(me);
        let installed = link(direction, peer);
        assert!(matches!(
            map.admit(identity(peer, FIRST_RUN), installed.clone()),
            Admission::Joined
        ));
        assert!(map.confirm(peer, &installed).is_some());
        (map, installed)
    }

    fn installed_link_id(map: &PeerMap, addr: Ipv4Addr) -> Option<u64> {
        map.get(addr).map(|peer| peer.link.id())
    }

    /// The member that left, if the end of a connection meant that.
    fn departed(ended: Ended) -> Option<Peer> {
        match ended {
            Ended::Left(peer) => Some(peer),
            Ended::NotCurrent | Ended::TookOver { .. } => None,
        }
    }

    fn standby_ids(map: &PeerMap, addr: Ipv4Addr) -> Vec<u64> {
        let waiting = map.standby.get(&addr).into_iter().flatten();
        waiting.map(|peer| peer.link.id()).collect()
    }

    // ---- admit ---------------------------------------------------------------------

    #[test]
    fn a_first_connection_to_a_member_joins_it() {
        for (me, peer) in [(LOW, HIGH), (HIGH, LOW)] {
            for direction in [Inbound, Outbound] {
                let mut map = PeerMap::new(me);
                let new = link(direction, peer);
                assert!(matches!(
                    map.admit(identity(peer, FIRST_RUN), new.clone()),
                    Admission::Joined
                ));
                assert_eq!(installed_link_id(&map, peer), Some(new.id()));
                assert!(map.is_connected(peer));
            }
        }
    }

    #[test]
    fn nothing_is_admitted_after_leaving() {
        let mut map = PeerMap::new(LOW);
        assert!(map.close().is_empty());
        assert!(matches!(
            map.admit(identity(HIGH, FIRST_RUN), link(Outbound, HIGH)),
            Admission::Closed
        ));
        assert!(!map.is_connected(HIGH));
    }

    #[test]
    fn the_lower_member_declines_an_inbound_connection_while_its_own_dial_is_on_the_way() {
        let mut map = PeerMap::new(LOW);
        assert!(map.reserve_dial(HIGH, Some(FIRST_RUN)));
        assert!(matches!(
            map.admit(identity(HIGH, FIRST_RUN), link(Inbound, HIGH)),
            Admission::Surplus { close_new: true }
        ));
        assert!(
            !map.is_connected(HIGH),
            "the declined connection was installed"
        );
        // Its own dial, the winner, is then installed as the member's first connection.
        let own = link(Outbound, HIGH);
        assert!(matches!(
            map.admit(identity(HIGH, FIRST_RUN), own.clone()),
            Admission::Joined
        ));
        assert_eq!(installed_link_id(&map, HIGH), Some(own.id()));
    }

    #[test]
    fn the_higher_member_installs_an_inbound_connection_even_while_dialing() {
        // The higher member's own dial would lose (rule 1): it must not decline the
        // lower member's connection, the winner.
        let mut map = PeerMap::new(HIGH);
        assert!(map.reserve_dial(LOW, Some(FIRST_RUN)));
        let winner = link(Inbound, LOW);
        assert!(matches!(
            map.admit(identity(LOW, FIRST_RUN), winner.clone()),
            Admission::Joined
        ));
        assert_eq!(installed_link_id(&map, LOW), Some(winner.id()));
    }

    #[test]
    fn the_lower_member_installs_an_inbound_connection_when_it_is_not_dialing() {
        let mut map = PeerMap::new(LOW);
        assert!(matches!(
            map.admit(identity(HIGH, FIRST_RUN), link(Inbound, HIGH)),
            Admission::Joined
        ));
    }

    #[test]
    fn a_winner_arriving_second_replaces_the_loser_and_only_the_lower_member_closes_it() {
        // LOW dialed HIGH: LOW's Outbound, HIGH's Inbound. Each end first installed the
        // other connection, the loser.
        for (me, peer, loser, winner, lower_closes) in [
            (LOW, HIGH, Inbound, Outbound, true),
            (HIGH, LOW, Outbound, Inbound, false),
        ] {
            let (mut map, old) = with_installed(me, peer, loser);
            let new = link(winner, peer);
            match map.admit(identity(peer, FIRST_RUN), new.clone()) {
                Admission::Replaced {
                    old: replaced,
                    close_old,
                } => {
                    assert_eq!(replaced.id(), old.id());
                    assert_eq!(close_old, lower_closes, "close_old at {me}");
                }
                _ => panic!("the winner did not replace the loser at {me}"),
            }
            assert_eq!(installed_link_id(&map, peer), Some(new.id()));
            // The member was shown as joined once; the swap is silent.
            assert!(
                map.confirm(peer, &new).is_none(),
                "joined shown twice at {me}"
            );
            assert_eq!(map.members().len(), 1);
        }
    }

    #[test]
    fn a_loser_arriving_second_is_surplus_and_only_the_lower_member_closes_it() {
        for (me, peer, winner, loser, lower_closes) in [
            (LOW, HIGH, Outbound, Inbound, true),
            (HIGH, LOW, Inbound, Outbound, false),
        ] {
            let (mut map, installed) = with_installed(me, peer, winner);
            let new = link(loser, peer);
            assert!(
                matches!(
                    map.admit(identity(peer, FIRST_RUN), new),
                    Admission::Surplus { close_new } if close_new == lower_closes
                ),
                "at {me}"
            );
            assert_eq!(installed_link_id(&map, peer), Some(installed.id()));
        }
    }

    #[test]
    fn a_new_run_at_a_known_address_replaces_the_old_run() {
        for direction in [Inbound, Outbound] {
            let (mut map, old) = with_installed(LOW, HIGH, Outbound);
            let new = link(direction, HIGH);
            match map.admit(identity(HIGH, SECOND_RUN), new.clone()) {
                Admission::Restarted { old: gone } => {
                    assert_eq!(gone.link.id(), old.id());
                    assert_eq!(gone.identity.instance, FIRST_RUN);
                    assert!(
                        gone.announced,
                        "the old run was shown, so it is shown to leave"
                    );
                }
                _ => panic!("a new run was not taken as a restart"),
            }
            assert_eq!(installed_link_id(&map, HIGH), Some(new.id()));
            // The new run is a new arrival: it is shown to join.
            assert!(map.confirm(HIGH, &new).is_some());
        }
    }

    // ---- remove_if_current --------------------------------------------------------

    #[test]
    fn the_end_of_the_installed_connection_is_a_departure() {
        let (mut map, installed) = with_installed(LOW, HIGH, Outbound);
        let gone = departed(map.remove_if_current(HIGH, &installed)).expect("a departure");
        assert_eq!(gone.identity, identity(HIGH, FIRST_RUN));
        assert!(gone.announced);
        assert!(!map.is_connected(HIGH));
        assert!(map.members().is_empty());
    }

    #[test]
    fn the_end_of_a_replaced_or_surplus_connection_is_not_a_departure() {
        // Replaced: the loser's end arrives after the winner took its place.
        let (mut map, loser) = with_installed(LOW, HIGH, Inbound);
        let winner = link(Outbound, HIGH);
        map.admit(identity(HIGH, FIRST_RUN), winner.clone());
        assert!(matches!(
            map.remove_if_current(HIGH, &loser),
            Ended::NotCurrent
        ));
        assert_eq!(installed_link_id(&map, HIGH), Some(winner.id()));

        // Surplus, at the lower member: never kept, its end changes nothing.
        let surplus = link(Inbound, HIGH);
        map.admit(identity(HIGH, FIRST_RUN), surplus.clone());
        assert!(matches!(
            map.remove_if_current(HIGH, &surplus),
            Ended::NotCurrent
        ));
        assert_eq!(installed_link_id(&map, HIGH), Some(winner.id()));
    }

    #[test]
    fn the_end_of_a_connection_to_an_unknown_address_changes_nothing() {
        let (mut map, _installed) = with_installed(LOW, HIGH, Outbound);
        let stranger = Ipv4Addr::new(10, 0, 0, 3);
        assert!(matches!(
            map.remove_if_current(stranger, &link(Inbound, stranger)),
            Ended::NotCurrent
        ));
        assert!(map.is_connected(HIGH));
    }

    #[test]
    fn the_end_of_an_old_run_s_connection_is_not_the_new_run_s_departure() {
        let (mut map, old) = with_installed(LOW, HIGH, Outbound);
        let new = link(Inbound, HIGH);
        map.admit(identity(HIGH, SECOND_RUN), new.clone());
        assert!(matches!(
            map.remove_if_current(HIGH, &old),
            Ended::NotCurrent
        ));
        assert_eq!(installed_link_id(&map, HIGH), Some(new.id()));
    }

    // ---- standby (the higher member keeps a surplus connection at hand) -----------

    #[test]
    fn the_higher_member_keeps_a_surplus_connection_on_standby_and_the_lower_does_not() {
        // At HIGH, LOW's dial (Inbound) wins; HIGH's own (Outbound) is surplus, kept.
        let (mut map, installed) = with_installed(HIGH, LOW, Inbound);
        let surplus = link(Outbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), surplus.clone());
        assert_eq!(standby_ids(&map, LOW), [surplus.id()]);
        // When the installed one ends, the standby takes over silently, still shown.
        assert!(matches!(
            map.remove_if_current(LOW, &installed),
            Ended::TookOver { joined: None }
        ));
        assert_eq!(installed_link_id(&map, LOW), Some(surplus.id()));
        assert!(map.get(LOW).is_some_and(|p| p.announced));
        assert!(map.confirm(LOW, &surplus).is_none(), "joined shown again");
        assert!(map.standby.is_empty());
        // And when that one ends too, the member has left.
        assert!(departed(map.remove_if_current(LOW, &surplus)).is_some());

        // At LOW the surplus is closed, never kept: no standby.
        let (mut map, _installed) = with_installed(LOW, HIGH, Outbound);
        map.admit(identity(HIGH, FIRST_RUN), link(Inbound, HIGH));
        assert!(map.standby.is_empty());
    }

    #[test]
    fn a_standby_connection_that_ends_first_is_forgotten_and_the_installed_one_stays() {
        let (mut map, installed) = with_installed(HIGH, LOW, Inbound);
        let surplus = link(Outbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), surplus.clone());
        assert!(matches!(
            map.remove_if_current(LOW, &surplus),
            Ended::NotCurrent
        ));
        assert!(map.standby.is_empty());
        assert_eq!(installed_link_id(&map, LOW), Some(installed.id()));
        // With no standby left, the installed one's end is a departure.
        assert!(departed(map.remove_if_current(LOW, &installed)).is_some());
    }

    #[test]
    fn a_standby_of_an_old_run_does_not_take_over_for_a_new_run() {
        let (mut map, _old_installed) = with_installed(HIGH, LOW, Inbound);
        map.admit(identity(LOW, FIRST_RUN), link(Outbound, LOW));
        assert!(!map.standby.is_empty());
        // LOW restarts; its new run's connection ends while the old standby is open.
        let new = link(Inbound, LOW);
        assert!(matches!(
            map.admit(identity(LOW, SECOND_RUN), new.clone()),
            Admission::Restarted { .. }
        ));
        map.confirm(LOW, &new);
        let gone = departed(map.remove_if_current(LOW, &new)).expect("the new run left");
        assert_eq!(gone.identity.instance, SECOND_RUN);
        assert!(!map.is_connected(LOW), "the old run's standby took over");
        assert!(map.standby.is_empty());
    }

    #[test]
    fn a_live_connection_displaced_by_a_late_hello_takes_over_when_the_dead_one_ends() {
        // LOW dialed HIGH, gave up on that connection under loss (its hello was not
        // answered in time) and dialed again. At HIGH the second connection's hello
        // arrived first, then the first one's, resent late: the dead connection looks
        // newer and is installed. LOW meanwhile uses the second connection, and will
        // never dial again: HIGH must fall back to it when the dead one ends.
        for live_confirmed_first in [false, true] {
            let mut map = PeerMap::new(HIGH);
            let live = link(Inbound, LOW);
            assert!(matches!(
                map.admit(identity(LOW, FIRST_RUN), live.clone()),
                Admission::Joined
            ));
            let shown_early = live_confirmed_first && map.confirm(LOW, &live).is_some();
            let dead = link(Inbound, LOW);
            assert!(matches!(
                map.admit(identity(LOW, FIRST_RUN), dead.clone()),
                Admission::Replaced {
                    close_old: false,
                    ..
                }
            ));
            assert_eq!(standby_ids(&map, LOW), [live.id()]);
            // LOW's heartbeat on the live connection confirms it, on standby.
            assert!(map.confirm(LOW, &live).is_none(), "shown on standby");
            // LOW had closed the dead one: its end reaches HIGH.
            let ended = map.remove_if_current(LOW, &dead);
            assert_eq!(installed_link_id(&map, LOW), Some(live.id()));
            match ended {
                Ended::TookOver { joined: None } => assert!(shown_early),
                Ended::TookOver {
                    joined: Some((member, on)),
                } => {
                    assert!(!shown_early, "joined shown twice");
                    assert_eq!(member, identity(LOW, FIRST_RUN).member());
                    assert_eq!(on.id(), live.id());
                }
                Ended::Left(_) | Ended::NotCurrent => panic!("the live connection was lost"),
            }
            assert_eq!(map.members(), [identity(LOW, FIRST_RUN).member()]);
            assert!(map.confirm(LOW, &live).is_none(), "joined shown twice");
        }
    }

    #[test]
    fn a_standby_connection_that_takes_over_before_it_is_confirmed_joins_when_it_is() {
        let mut map = PeerMap::new(HIGH);
        let live = link(Inbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), live.clone());
        let dead = link(Inbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), dead.clone());
        assert!(matches!(
            map.remove_if_current(LOW, &dead),
            Ended::TookOver { joined: None }
        ));
        assert!(map.members().is_empty(), "shown before it was confirmed");
        assert_eq!(
            map.confirm(LOW, &live),
            Some(identity(LOW, FIRST_RUN).member())
        );
    }

    #[test]
    fn the_lower_member_keeps_nothing_on_standby_as_it_closes_what_it_replaces() {
        let (mut map, _old) = with_installed(LOW, HIGH, Inbound);
        assert!(matches!(
            map.admit(identity(HIGH, FIRST_RUN), link(Inbound, HIGH)),
            Admission::Replaced {
                close_old: true,
                ..
            }
        ));
        assert!(map.standby.is_empty());
    }

    #[test]
    fn every_open_standby_connection_stays_at_hand_until_none_is_left() {
        let (mut map, installed) = with_installed(HIGH, LOW, Inbound);
        let first = link(Outbound, LOW);
        let second = link(Outbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), first.clone());
        map.admit(identity(LOW, FIRST_RUN), second.clone());
        let mut current = installed;
        for _ in 0..2 {
            assert!(matches!(
                map.remove_if_current(LOW, &current),
                Ended::TookOver { joined: None }
            ));
            let took_over = map.get(LOW).expect("a standby took over").link.clone();
            assert!([first.id(), second.id()].contains(&took_over.id()));
            current = took_over;
        }
        assert!(departed(map.remove_if_current(LOW, &current)).is_some());
        assert!(map.standby.is_empty());
    }

    #[test]
    fn a_rename_reaches_the_standby_connections_too() {
        let (mut map, installed) = with_installed(HIGH, LOW, Inbound);
        map.admit(identity(LOW, FIRST_RUN), link(Outbound, LOW));
        map.rename(LOW, FIRST_RUN, "Renamed");
        map.remove_if_current(LOW, &installed);
        assert_eq!(map.members()[0].name, "Renamed");
    }

    // ---- dialing, threads, leaving -------------------------------------------------

    #[test]
    fn a_dial_is_refused_when_connected_to_that_run_already_dialing_or_leaving() {
        let (mut map, _installed) = with_installed(LOW, HIGH, Outbound);
        assert!(
            !map.reserve_dial(HIGH, Some(FIRST_RUN)),
            "connected to that run"
        );
        assert!(!map.reserve_dial(HIGH, None), "connected to some run");
        assert!(
            map.reserve_dial(HIGH, Some(SECOND_RUN)),
            "a new run is dialed"
        );
        assert!(!map.reserve_dial(HIGH, Some(SECOND_RUN)), "already dialing");
        map.release(Some(HIGH));
        assert!(map.reserve_dial(HIGH, Some(SECOND_RUN)), "dialable again");
        map.close();
        let other = Ipv4Addr::new(10, 0, 0, 3);
        assert!(!map.reserve_dial(other, None), "leaving");
        assert!(!map.reserve_thread(), "leaving");
        assert!(!map.open(&link(Inbound, other)), "leaving");
    }

    #[test]
    fn no_more_than_max_connections_threads_run() {
        let mut map = PeerMap::new(LOW);
        for _ in 0..MAX_CONNECTIONS {
            assert!(map.reserve_thread());
        }
        assert!(!map.reserve_thread());
        assert!(!map.reserve_dial(HIGH, None));
        map.release(None);
        assert!(map.reserve_dial(HIGH, None));
    }

    #[test]
    fn joined_is_shown_once_and_only_for_the_installed_connection() {
        let mut map = PeerMap::new(HIGH);
        let installed = link(Inbound, LOW);
        map.admit(identity(LOW, FIRST_RUN), installed.clone());
        assert!(
            map.members().is_empty(),
            "listed before it was shown to join"
        );
        assert!(map.confirm(LOW, &link(Outbound, LOW)).is_none());
        assert_eq!(
            map.confirm(LOW, &installed),
            Some(identity(LOW, FIRST_RUN).member())
        );
        assert!(map.confirm(LOW, &installed).is_none());
        assert_eq!(map.members(), [identity(LOW, FIRST_RUN).member()]);
    }

    #[test]
    fn both_ends_keep_the_connection_dialed_by_the_lower_address() {
        // LOW dialed HIGH: outbound at LOW, inbound at HIGH. That one wins at both ends,
        // whichever of the two connections each end happened to install first.
        assert_eq!(decide(LOW, HIGH, Inbound, Outbound), Decision::Install);
        assert_eq!(decide(LOW, HIGH, Outbound, Inbound), Decision::Keep);
        assert_eq!(decide(HIGH, LOW, Outbound, Inbound), Decision::Install);
        assert_eq!(decide(HIGH, LOW, Inbound, Outbound), Decision::Keep);
    }

    #[test]
    fn a_redial_in_the_same_direction_replaces_the_stale_connection() {
        for (me, peer) in [(LOW, HIGH), (HIGH, LOW)] {
            for direction in [Inbound, Outbound] {
                assert_eq!(decide(me, peer, direction, direction), Decision::Install);
            }
        }
    }
}
