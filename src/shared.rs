//! What a member's threads share, the locks that guard it, and the rule that keeps the
//! network from ever waiting on a slow thread.
//!
//! ## Threads
//!
//! | thread             | started by          | blocks in                           | ends when                          | joined by |
//! |--------------------|---------------------|-------------------------------------|------------------------------------|-----------|
//! | listener           | `Node::start`       | `accept` on `HOST:PORT`             | `leave` connects to wake it        | `leave`   |
//! | discovery          | `Node::start`       | `recv_from`, at most until the next announcement | it wakes and sees we are leaving | nobody: it holds nothing a caller needs, and ends within [`ANNOUNCE_INTERVAL`] |
//! | one per connection | listener, discovery, listed dials | `read`, at most until its next heartbeat; writes to its own peer | its connection closes (`leave` closes them all) | nobody: `leave` waits for the installed ones to close |
//! | listed dials       | a connection, when a listed address must wait | `sleep` until the next one is due ([`LISTED_DIAL_DELAY`]) | none waits | nobody: it ends within [`LISTED_DIAL_DELAY`], and dials nothing once we leave |
//! | the front end's    | you                 | [`crate::Events::recv`], and [`crate::Node`]'s calls | you call [`crate::Node::leave`] | —  |
//!
//! A connection thread's claim on the shared state (its place under the connection
//! cap, and the "dialing" mark of the address it dials) is a `Slot`, released by its
//! `Drop` however the thread ends.
//!
//! ## Locks
//!
//! | lock                  | guards                                                      | may be held while taking |
//! |-----------------------|-------------------------------------------------------------|--------------------------|
//! | `Shared::reunion`   | the catch-ups under way and what they brought (so that lines are recorded and shown in one step) | state, history, the event queue |
//! | `Shared::state`     | the [`PeerMap`] (connections, dial marks, thread count, leaving), our name, our message counter | a link's outbox |
//! | `Link::outbox`        | the frames waiting for one peer, and which thread writes them | nothing          |
//! | `Shared::history`   | the message log                                             | nothing                  |
//! | `Rounds::open`        | the `/history` requests waiting for answers                 | nothing                  |
//! | the event queue's     | the events waiting for the front end                        | nothing                  |
//! | `Shared::dial_policy` | when each address may be dialed again, the list budget, listed addresses waiting to be dialed | nothing                  |
//! | `Shared::dial_failures` | which addresses we could not reach (to say so once)     | nothing                  |
//! | `Shared::listener_thread` | the listener's handle, taken once by `leave`            | nothing                  |
//!
//! Locks are taken only in the order of that table (reunion, then state or history,
//! then the event queue; state, then an outbox), so no two threads can each hold what
//! the other waits for. And the rule the whole design rests on: **no lock is held
//! across a socket read or write, a blocking send, or a wait for another thread.**
//! Queueing a frame on a link or an event for the front end never blocks; writing
//! happens in [`Link::flush`], with no lock held. So a peer that stops reading or a
//! screen that stops scrolling holds up nobody but itself.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread::JoinHandle;

use crate::catch_up::{ReceivedPrivates, Reunion, SentPrivates};
use crate::config::Config;
use crate::discovery::{DialPolicy, DialSource, ListedDial};
use crate::event::{Event, EventQueue, Throttle, WireDirection};
use crate::history::History;
use crate::link::{Encoded, Link};
use crate::peers::PeerMap;
use crate::protocol::{Announcement, ChatMessage, Frame, PROTOCOL_VERSION};
use crate::rounds::Rounds;
use crate::tuning::{
    HISTORY_CAPACITY, MAX_CLOCK_NUDGE_MS, MAX_CONNECTIONS, PRIVATES_KEPT_PER_MEMBER,
    WARNING_INTERVAL,
};

#[cfg(doc)]
use crate::tuning::{ANNOUNCE_INTERVAL, LISTED_DIAL_DELAY};

/// State shared by all of a member's threads, through an `Arc`.
pub(crate) struct Shared {
    pub config: Config,
    /// Chosen at random at start-up; tells this run from an earlier one on this address.
    pub instance: u64,
    state: Mutex<State>,
    /// Signalled, once we are leaving, when a member's connection ends: leaving waits
    /// until none is left.
    pub state_changed: Condvar,
    history: Mutex<History>,
    reunion: Mutex<Reunion>,
    pub rounds: Rounds,
    events: EventQueue,
    /// The latest send time of a chat message received from another member, so that a
    /// reply is not stamped earlier than what it answers (see `send_time`).
    latest_heard_ms: AtomicI64,
    dial_policy: Mutex<DialPolicy>,
    dial_failures: Mutex<DialFailures>,
    /// The number of our latest chat message (they count from 1). Changed only under
    /// the state lock, in the same step as the message is queued on every connection,
    /// so numbers and order agree; read anywhere (a connection notes it with each frame
    /// it hears, to know after a cut which of our messages the peer may have missed).
    pub last_seq: AtomicU64,
    /// Runs `leave` once; a second caller waits until the first is done.
    pub left: Once,
    pub listener_thread: Mutex<Option<JoinHandle<()>>>,
}

/// What `Shared::state` guards: everything that must change in one step with the set
/// of connections.
pub(crate) struct State {
    pub peers: PeerMap,
    /// Our current name (`/name` changes it).
    pub name: String,
    /// The send time of our latest message, chat, private or hooray: the next is never
    /// dated earlier.
    pub last_sent_at_ms: i64,
    /// Addresses the user gave (`--peer`, `/connect`): dialed until connected, and
    /// again whenever the connection is lost.
    pub contacts: Vec<SocketAddrV4>,
    /// Our private messages, numbered per recipient, the latest kept to send again
    /// after a cut.
    pub sent_privates: SentPrivates,
    /// The latest private message number received from each member.
    pub received_privates: ReceivedPrivates,
}

/// Announcers we could not connect to. A dead or forged announcer is dialed again at
/// every announcement; saying so each time would bury the chat, so it is said once per
/// streak of failures for an address, and at most once a second in all.
struct DialFailures {
    /// Addresses whose latest dial failed (at most [`DialFailures::MAX_REMEMBERED`]).
    streaks: HashSet<Ipv4Addr>,
    throttle: Throttle,
}

impl DialFailures {
    /// Forged announcements can name any number of addresses; past this many, failures
    /// at new addresses are not reported.
    const MAX_REMEMBERED: usize = 1024;
}

/// A frame queued on some links under the state lock, to be written after it is
/// released ([`Shared::deliver`]).
#[must_use = "queued frames are written by Shared::deliver"]
pub(crate) struct Queued {
    frame: Frame,
    links: Vec<Arc<Link>>,
}

impl State {
    /// Queues `frame` on every installed connection (encoded once). Called under the
    /// state lock, so every peer gets frames in the same order, and a connection
    /// installed later gets none of those queued before it.
    pub fn queue_to_all(&self, frame: Frame) -> Queued {
        let links = self.peers.links();
        let encoded: Encoded = frame.encode().into();
        for link in &links {
            link.queue(encoded.clone());
        }
        Queued { frame, links }
    }

    /// Queues `frame` on one connection.
    pub fn queue_to(&self, link: Arc<Link>, frame: Frame) -> Queued {
        link.queue(frame.encode().into());
        Queued {
            frame,
            links: vec![link],
        }
    }
}

/// Locks a mutex, carrying on if another thread panicked while holding it: every
/// structure here is valid between any two of its method calls.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(config: Config, instance: u64, events: EventQueue) -> Shared {
        Shared {
            state: Mutex::new(State {
                peers: PeerMap::new(config.host),
                name: config.name.clone(),
                last_sent_at_ms: i64::MIN,
                contacts: config.peers.clone(),
                sent_privates: SentPrivates::new(PRIVATES_KEPT_PER_MEMBER, MAX_CONNECTIONS),
                received_privates: ReceivedPrivates::default(),
            }),
            state_changed: Condvar::new(),
            history: Mutex::new(History::new(HISTORY_CAPACITY)),
            reunion: Mutex::new(Reunion::default()),
            rounds: Rounds::default(),
            events,
            latest_heard_ms: AtomicI64::new(i64::MIN),
            dial_policy: Mutex::new(DialPolicy::new(std::time::Instant::now())),
            dial_failures: Mutex::new(DialFailures {
                streaks: HashSet::new(),
                throttle: Throttle::new(WARNING_INTERVAL),
            }),
            last_seq: AtomicU64::new(0),
            left: Once::new(),
            listener_thread: Mutex::new(None),
            instance,
            config,
        }
    }

    /// The state lock: hold it briefly, and never across I/O (see the module doc).
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn history(&self) -> MutexGuard<'_, History> {
        lock(&self.history)
    }

    /// The reunion lock: taken before the state and history locks, by the threads that
    /// record and show what members sent to catch us up.
    pub fn reunion(&self) -> MutexGuard<'_, Reunion> {
        lock(&self.reunion)
    }

    pub fn host(&self) -> Ipv4Addr {
        self.config.host
    }

    pub fn is_leaving(&self) -> bool {
        self.state().peers.is_leaving()
    }

    pub fn name(&self) -> String {
        self.state().name.clone()
    }

    /// Our hello, introducing us as `name` (the caller keeps the name it announced).
    pub fn hello(&self, name: String) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            instance: self.instance,
            tcp_port: self.config.port,
            name,
            room: self.config.room.clone(),
        }
    }

    pub fn announcement(&self) -> Announcement {
        Announcement {
            version: PROTOCOL_VERSION,
            tcp_port: self.config.port,
            instance: self.instance,
            name: self.name(),
            room: self.config.room.clone(),
        }
    }

    /// Passes an event to the front end. Never blocks (see [`crate::event`]); after
    /// [`Shared::close_events`] it is discarded.
    pub fn emit(&self, event: Event) {
        self.events.push(event);
    }

    /// A diagnostic for the user, as an [`Event::Warning`].
    pub fn warn(&self, text: String) {
        self.emit(Event::Warning(text));
    }

    /// Ends the event stream after the events already queued.
    pub fn close_events(&self) {
        self.events.close();
    }

    /// Reports a frame as an [`Event::Wire`], if asked to.
    pub fn trace(&self, peer: Ipv4Addr, direction: WireDirection, frame: &Frame) {
        if self.config.trace_frames {
            self.emit(Event::Wire {
                peer,
                direction,
                frame: frame.clone(),
            });
        }
    }

    /// Writes what was queued under the state lock, now that it is released: flushes
    /// each link, then waits for room on any that is far behind.
    pub fn deliver(&self, queued: Queued) {
        for link in &queued.links {
            self.trace(link.peer(), WireDirection::Sent, &queued.frame);
            link.flush();
        }
        for link in &queued.links {
            link.wait_for_room();
        }
    }

    /// Sends one frame to one peer. Every frame we send goes through here or through
    /// [`Shared::deliver`], so that [`Config::trace_frames`] can show all of them.
    pub fn send_frame(&self, link: &Link, frame: &Frame) {
        self.trace(link.peer(), WireDirection::Sent, frame);
        link.send(frame);
    }

    /// The send time for a new message of ours (chat, private or hooray), under the
    /// state lock. Two rules, in this order:
    ///
    /// 1. Just after the latest message heard from another member, if that is in our
    ///    future by at most [`MAX_CLOCK_NUDGE_MS`]: a reply within the same millisecond,
    ///    or from a clock slightly behind, still sorts after the message it answers. A
    ///    clock further behind is left alone rather than distorted.
    /// 2. Never earlier than our previous message: our own lines keep their order
    ///    however fast they are sent, even if the system clock steps back (the message
    ///    number breaks ties within a millisecond).
    pub fn send_time(&self, state: &mut State) -> i64 {
        let now = crate::clock::now_ms();
        let after_heard = self
            .latest_heard_ms
            .load(Ordering::SeqCst)
            .saturating_add(1);
        let nudged = if after_heard > now && after_heard - now <= MAX_CLOCK_NUDGE_MS {
            after_heard
        } else {
            now
        };
        let sent_at = nudged.max(state.last_sent_at_ms);
        state.last_sent_at_ms = sent_at;
        sent_at
    }

    /// Records a chat message, ours or received live, in the log; false if it was
    /// already there.
    pub fn record(&self, message: &ChatMessage) -> bool {
        // A time further ahead than the nudge could follow is left out, so that one
        // member with a clock far ahead does not turn the nudge off for everyone.
        let followable = message.sent_at_ms <= crate::clock::now_ms() + MAX_CLOCK_NUDGE_MS;
        if message.id.origin != self.host() && followable {
            self.latest_heard_ms
                .fetch_max(message.sent_at_ms, Ordering::SeqCst);
        }
        self.history()
            .record(message.clone(), crate::clock::now_ms())
    }

    /// Whether `addr`, heard of from `source`, may be dialed now ([`DialPolicy`]).
    pub fn may_dial(&self, addr: Ipv4Addr, source: DialSource) -> bool {
        lock(&self.dial_policy).may_dial(addr, source, std::time::Instant::now())
    }

    /// The member at `from` announced itself: broadcast reaches us.
    pub fn heard_announcement(&self, from: Ipv4Addr) {
        lock(&self.dial_policy).heard_announcement(from, std::time::Instant::now());
    }

    /// Which of the `targets` listed by `by` are dialed now; the others wait a moment or
    /// are not needed (see [`DialPolicy::wait_to_dial_listed`]). Also whether a timer
    /// thread must start for those that wait.
    pub fn wait_to_dial_listed(
        &self,
        targets: &[SocketAddrV4],
        by: Ipv4Addr,
        found_us: bool,
    ) -> (Vec<SocketAddrV4>, bool) {
        let now = std::time::Instant::now();
        let mut policy = lock(&self.dial_policy);
        let mut dial_now = Vec::new();
        let mut start_timer = false;
        for &target in targets {
            match policy.wait_to_dial_listed(target, by, found_us, now) {
                ListedDial::Now => dial_now.push(target),
                ListedDial::Waits { start_timer: start } => start_timer |= start,
                ListedDial::Unneeded => {}
            }
        }
        (dial_now, start_timer)
    }

    /// The listed addresses whose wait is over (and who listed each), and when the next
    /// one's is (`None`: none waits, and the timer thread must end).
    pub fn listed_due(&self) -> (Vec<(SocketAddrV4, Ipv4Addr)>, Option<std::time::Instant>) {
        lock(&self.dial_policy).take_due(std::time::Instant::now())
    }

    /// Every listed address that waits, to be dialed at once.
    pub fn take_all_listed_waiting(&self) -> Vec<(SocketAddrV4, Ipv4Addr)> {
        lock(&self.dial_policy).take_all_waiting()
    }

    /// A dial to `addr` failed: says so, unless its last dial failed too, or another
    /// such warning was given less than a second ago.
    pub fn dial_failed(&self, addr: Ipv4Addr, source: DialSource, why: &dyn std::fmt::Display) {
        let mut failures = lock(&self.dial_failures);
        let first_of_streak =
            failures.streaks.len() < DialFailures::MAX_REMEMBERED && failures.streaks.insert(addr);
        if !first_of_streak {
            return;
        }
        let admitted = failures.throttle.admit(std::time::Instant::now());
        drop(failures);
        if let Some(held_back) = admitted {
            let others = match held_back {
                0 => String::new(),
                n => format!(" (and {n} other address(es) since the last warning)"),
            };
            let heard = match source {
                DialSource::Announced => "which announced itself".to_owned(),
                DialSource::Given => "which you gave".to_owned(),
                DialSource::Listed { by } => format!("which {by} listed as a member"),
            };
            self.warn(format!(
                "cannot connect to {addr}, {heard}: it {why}{others}"
            ));
        }
    }

    /// A dial to `addr` succeeded: its next failure is news again.
    pub fn dial_succeeded(&self, addr: Ipv4Addr) {
        lock(&self.dial_failures).streaks.remove(&addr);
    }

    /// Claims a thread for a connection someone opened to us; `None` when we are
    /// leaving or at the connection cap.
    pub fn reserve_inbound(self: &Arc<Self>) -> Option<Slot> {
        self.state().peers.reserve_thread().then(|| Slot {
            shared: self.clone(),
            dialed: None,
            link_id: None,
        })
    }

    /// Claims a thread to dial `addr` and marks the address as being dialed; `None`
    /// when we are connected to that run of it already (to any run, when `instance` is
    /// not known), dialing it, leaving, or at the connection cap.
    pub fn reserve_dial(
        self: &Arc<Self>,
        addr: Ipv4Addr,
        instance: Option<u64>,
        source: DialSource,
    ) -> Option<Slot> {
        self.state()
            .peers
            .reserve_dial(addr, instance)
            .then(|| Slot {
                shared: self.clone(),
                dialed: Some((addr, source)),
                link_id: None,
            })
    }
}

/// A connection thread's claim on the shared state: its place under the connection
/// cap, the "dialing" mark of the address it dials (kept for the thread's whole life,
/// so a second announcement cannot start a second dial while a hello is delayed), and
/// its link's entry among the open connections. Dropping the slot releases all three,
/// however the thread ends: no call site has to remember to.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    /// The address this thread dials, and how we heard of it.
    dialed: Option<(Ipv4Addr, DialSource)>,
    link_id: Option<u64>,
}

impl Slot {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// How we heard of the address this thread dials (`None` for an accepted one).
    pub fn source(&self) -> Option<DialSource> {
        self.dialed.map(|(_, source)| source)
    }

    /// Registers the connection's link among the open ones, so that leaving can close
    /// it whatever state it is in; false (and not registered) if we are leaving.
    pub fn attach(&mut self, link: &Arc<Link>) -> bool {
        let attached = self.shared.state().peers.open(link);
        if attached {
            self.link_id = Some(link.id());
        }
        attached
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        if let Some(id) = self.link_id {
            state.peers.forget(id);
        }
        state.peers.release(self.dialed.map(|(addr, _)| addr));
    }
}
