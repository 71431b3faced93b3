//! A member of the chat: starting it, what it does with each frame, and leaving.
//!
//! [`Node::start`] opens the sockets and starts the threads; from then on everything
//! happens on them:
//!
//! | thread            | started by        | blocks in                | ends when                     |
//! |-------------------|-------------------|--------------------------|-------------------------------|
//! | listener          | `Node::start`     | `accept` on `HOST:PORT`  | `leave` connects to wake it   |
//! | discovery         | `Node::start`     | `recv_from` (with timeout)| it wakes and sees `leave`    |
//! | one per connection| listener/discovery| `read` (with timeout)    | the connection closes         |
//! | yours             | you               | whatever you like        | you call `leave`              |
//!
//! They share one `Shared` through an `Arc`. What they report (a member joined, a
//! message arrived) goes to the [`Event`] channel returned by `start`; the terminal
//! prints events, a bot answers them, a test checks them.
//!
//! The TCP listener is bound to `HOST:PORT` rather than `0.0.0.0:PORT`, so that several
//! members can run on one machine with different loopback addresses, and so that a
//! second member on the *same* address fails at once with "address in use".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::connection::{self, Link, until};
use crate::discovery::{AnnounceSchedule, BindError, Discovery, RedialLimiter};
use crate::display::sanitize;
use crate::history::History;
use crate::peers::{Admission, Direction, PeerIdentity, PeerMap};
use crate::protocol::{
    Announcement, ChatMessage, Frame, MAX_MESSAGE_BYTES, MAX_NAME_CHARS, MessageId,
    PROTOCOL_VERSION,
};
use crate::tuning::{
    DEFAULT_PORT, DEFAULT_ROOM, EVENT_QUEUE_LEN, HISTORY_CAPACITY, HISTORY_REPLY_TIMEOUT,
    LEAVE_LINGER, MAX_CLOCK_NUDGE_MS, MAX_CONNECTIONS, THREAD_STACK_BYTES,
};
use crate::warn;

/// What a member needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// An IPv4 address of this machine; it identifies the member.
    pub host: Ipv4Addr,
    /// Shown next to every message; need not be unique.
    pub name: String,
    /// UDP and TCP port; every member of one chat uses the same.
    pub port: u16,
    /// Where announcements are sent.
    pub broadcast: Ipv4Addr,
    /// Members only connect to members of the same room, so several chats can share
    /// one LAN and one port.
    pub room: String,
    /// Report every frame sent and received as an [`Event::Wire`] (for watching the
    /// protocol at work; heartbeats included).
    pub trace_frames: bool,
}

impl Config {
    /// A config with the default port and broadcast address.
    pub fn new(host: Ipv4Addr, name: impl Into<String>) -> Config {
        Config {
            host,
            name: name.into(),
            port: DEFAULT_PORT,
            broadcast: Ipv4Addr::BROADCAST,
            room: DEFAULT_ROOM.to_owned(),
            trace_frames: false,
        }
    }
}

/// A member as the user knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub name: String,
    pub addr: Ipv4Addr,
}

/// Something the front end should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Joined(Member),
    Left(Member),
    /// A chat message, our own included.
    Message(ChatMessage),
    Hooray {
        from: Member,
        sent_at_ms: i64,
    },
    /// A `/msg` between us and one other member: `from` or `to` is us.
    Private {
        from: Member,
        to: Member,
        sent_at_ms: i64,
        text: String,
    },
    /// A member (or we) changed name.
    Renamed {
        addr: Ipv4Addr,
        old: String,
        new: String,
    },
    /// A frame crossed a connection (only with [`Config::trace_frames`]).
    Wire {
        peer: Ipv4Addr,
        direction: WireDirection,
        frame: Frame,
    },
}

/// Which way an [`Event::Wire`] frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireDirection {
    Sent,
    Received,
}

/// Why a member could not start. The message says what to do about it.
#[derive(Debug)]
pub enum StartError {
    InvalidName(String),
    InvalidRoom(String),
    NotAHostAddress(Ipv4Addr),
    AddressNotLocal(Ipv4Addr),
    HostInUse { host: Ipv4Addr, port: u16 },
    UdpPortInUse(u16),
    PermissionDenied { port: u16 },
    Io { doing: String, source: io::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(why) => write!(f, "invalid name: {why}"),
            Self::InvalidRoom(why) => write!(f, "invalid room: {why}"),
            Self::NotAHostAddress(host) => write!(
                f,
                "{host} is not the address of one machine; give an IPv4 address of this \
                 machine (see `ip -4 addr`), such as 127.0.0.1 for a demo"
            ),
            Self::AddressNotLocal(host) => write!(
                f,
                "{host} is not an address of this machine; pick one from `ip -4 addr` \
                 (or 127.0.0.x to try the chat on one machine)"
            ),
            Self::HostInUse { host, port } => write!(
                f,
                "another member already uses {host} port {port}. Don't use the same host \
                 for multiple members: give each member its own address (127.0.0.1, \
                 127.0.0.2, ... on one machine). If no member runs there, another program \
                 holds the port: choose another with --port, the same for every member"
            ),
            Self::UdpPortInUse(port) => write!(
                f,
                "UDP port {port} is held by another program that does not share it; \
                 choose another port with --port, the same for every member"
            ),
            Self::PermissionDenied { port } => write!(
                f,
                "permission denied for port {port}: ports below 1024 need root; \
                 choose a higher one with --port"
            ),
            Self::Io { doing, source } => write!(f, "cannot {doing}: {source}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Why a message was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Longer than [`MAX_MESSAGE_BYTES`].
    TooLong { bytes: usize },
    /// [`Node::leave`] was called.
    Left,
    /// `/msg` to an address that is not connected (any more).
    NotAMember(Ipv4Addr),
    /// `/name` with a name that breaks the rules; the text says which.
    InvalidName(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { bytes } => write!(
                f,
                "message not sent: it is {bytes} bytes long, the limit is \
                 {MAX_MESSAGE_BYTES}; split it into several lines"
            ),
            Self::Left => f.write_str("message not sent: you have left the chat"),
            Self::NotAMember(addr) => {
                write!(
                    f,
                    "message not sent: nobody at {addr} is connected (see /members)"
                )
            }
            Self::InvalidName(why) => write!(f, "name not changed: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Checks a name against the rules every member's name follows.
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("the name is empty".into());
    }
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "the name has {chars} characters, the most is {MAX_NAME_CHARS}"
        ));
    }
    if sanitize(name) != name {
        return Err("the name contains control characters".into());
    }
    Ok(())
}

/// A running member. Cheap to clone: every clone drives the same member.
///
/// Two members on one machine, each on its own loopback address, find each other and
/// chat (this example runs as a test):
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::time::Duration;
/// use p2pchat::{Config, Event, Node};
///
/// let config = |last: u8, name: &str| Config {
///     port: 24281, // all members of one chat share a port
///     ..Config::new(Ipv4Addr::new(127, 0, 81, last), name)
/// };
/// let (alex, alex_events) = Node::start(config(1, "Alex"))?;
/// let (bo, bo_events) = Node::start(config(2, "Bo"))?;
///
/// // Each learns of the other from its UDP announcement, then a TCP connection.
/// let wait = Duration::from_secs(20);
/// assert_eq!(bo_events.recv_timeout(wait)?, Event::Joined(alex.me()));
/// assert_eq!(alex_events.recv_timeout(wait)?, Event::Joined(bo.me()));
///
/// alex.send("Hello, it's ME!")?;
/// match bo_events.recv_timeout(wait)? {
///     Event::Message(message) => {
///         assert_eq!((message.sender_name.as_str(), message.text.as_str()), ("Alex", "Hello, it's ME!"));
///     }
///     other => panic!("expected a message, got {other:?}"),
/// }
///
/// alex.leave();
/// assert_eq!(bo_events.recv_timeout(wait)?, Event::Left(alex.me()));
/// bo.leave();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

impl Node {
    /// Opens the sockets, starts the threads and announces the member to the LAN.
    /// Events arrive on the returned channel until [`Node::leave`]. Read them: when
    /// [`EVENT_QUEUE_LEN`] are waiting, the connection threads wait for you.
    ///
    /// Fails with a [`StartError`] whose message says what to do, for example when
    /// the address is not one of this machine's:
    ///
    /// ```
    /// use p2pchat::{Config, Node, StartError};
    /// // 198.18.0.0/15 is reserved for network tests: no machine here has it.
    /// let config = Config::new([198, 18, 200, 1].into(), "Alex");
    /// assert!(matches!(Node::start(config), Err(StartError::AddressNotLocal(_))));
    /// ```
    pub fn start(config: Config) -> Result<(Node, Receiver<Event>), StartError> {
        check_name(&config.name).map_err(StartError::InvalidName)?;
        check_name(&config.room).map_err(StartError::InvalidRoom)?;
        let host = config.host;
        if host.is_unspecified() || host.is_broadcast() || host.is_multicast() {
            return Err(StartError::NotAHostAddress(host));
        }
        let listener = TcpListener::bind(SocketAddrV4::new(host, config.port))
            .map_err(|e| tcp_bind_error(e, &config))?;
        let discovery = Discovery::bind(host, config.port, config.broadcast)
            .map_err(|e| udp_bind_error(e, &config))?;

        let (events, receiver) = sync_channel(EVENT_QUEUE_LEN);
        let shared = Arc::new(Shared {
            instance: random_instance(),
            peers: Mutex::new(PeerMap::new(host)),
            peers_changed: Condvar::new(),
            history: Mutex::new(History::new(HISTORY_CAPACITY)),
            rounds: Mutex::new(HashMap::new()),
            rounds_changed: Condvar::new(),
            next_request: AtomicU32::new(1),
            outgoing: Mutex::new(Outgoing {
                last_seq: 0,
                left: false,
            }),
            leaving: AtomicBool::new(false),
            connection_threads: AtomicUsize::new(0),
            listener_thread: Mutex::new(None),
            events: Mutex::new(Some(events)),
            latest_seen_ms: AtomicI64::new(i64::MIN),
            name: Mutex::new(config.name.clone()),
            config,
        });

        let accepting = shared.clone();
        let listener_thread = std::thread::Builder::new()
            .name("listener".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || accept_members(accepting, listener))
            .map_err(|source| StartError::Io {
                doing: "start the listener thread".into(),
                source,
            })?;
        *lock(&shared.listener_thread) = Some(listener_thread);
        let discovering = shared.clone();
        std::thread::Builder::new()
            .name("discovery".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || discover_members(discovering, discovery))
            .map_err(|source| StartError::Io {
                doing: "start the discovery thread".into(),
                source,
            })?;
        Ok((Node { shared }, receiver))
    }

    /// This member, as others see it.
    pub fn me(&self) -> Member {
        Member {
            name: self.shared.name(),
            addr: self.shared.config.host,
        }
    }

    /// The room this member chats in.
    pub fn room(&self) -> &str {
        &self.shared.config.room
    }

    /// Everyone else connected now, ordered by address.
    pub fn members(&self) -> Vec<Member> {
        self.shared.peers().members()
    }

    /// Sends a chat message to every member. It also comes back as an
    /// [`Event::Message`], like everyone else's; so a program that sends without ever
    /// reading its events stops, after [`EVENT_QUEUE_LEN`] of them, until it reads.
    pub fn send(&self, text: &str) -> Result<(), SendError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLong { bytes: text.len() });
        }
        let shared = &self.shared;
        // Held across the writes on purpose: messages leave in `seq` order even when
        // several threads send, and none can follow the goodbye. Each write is bounded
        // by WRITE_TIMEOUT; the PeerMap lock is not held meanwhile.
        let mut outgoing = lock(&shared.outgoing);
        if outgoing.left {
            return Err(SendError::Left);
        }
        outgoing.last_seq += 1;
        let message = ChatMessage {
            id: MessageId {
                origin: shared.config.host,
                instance: shared.instance,
                seq: outgoing.last_seq,
            },
            sender_name: shared.name(),
            sent_at_ms: shared.send_time(),
            text: text.to_owned(),
        };
        shared.send_to_all(&Frame::Chat {
            seq: message.id.seq,
            sent_at_ms: message.sent_at_ms,
            text: message.text.clone(),
        });
        shared.record(&message);
        shared.emit(Event::Message(message));
        Ok(())
    }

    /// Sends the `/hooray` greeting to everyone (and to ourselves, as an event).
    pub fn hooray(&self) -> Result<(), SendError> {
        let shared = &self.shared;
        let outgoing = lock(&shared.outgoing);
        if outgoing.left {
            return Err(SendError::Left);
        }
        let sent_at_ms = shared.send_time();
        shared.send_to_all(&Frame::Hooray { sent_at_ms });
        shared.emit(Event::Hooray {
            from: self.me(),
            sent_at_ms,
        });
        Ok(())
    }

    /// Sends a message to the member at `to` only, over the connection we already have
    /// with it. It comes back as an [`Event::Private`], like the ones we receive.
    /// Private messages are not kept in the log, so `/history` never hands them on.
    ///
    /// ```no_run
    /// # let (node, _events) = p2pchat::Node::start(p2pchat::Config::new([127, 0, 0, 1].into(), "Alex"))?;
    /// if let Some(bo) = node.members().into_iter().find(|m| m.name == "Bo") {
    ///     node.send_private(bo.addr, "see you at lunch?")?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_private(&self, to: Ipv4Addr, text: &str) -> Result<(), SendError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLong { bytes: text.len() });
        }
        let shared = &self.shared;
        let outgoing = lock(&shared.outgoing);
        if outgoing.left {
            return Err(SendError::Left);
        }
        let Some(peer) = shared.peers().get(to).cloned() else {
            return Err(SendError::NotAMember(to));
        };
        let sent_at_ms = shared.send_time();
        let frame = Frame::Private {
            sent_at_ms,
            text: text.to_owned(),
        };
        shared
            .send_frame(&peer.link, &frame)
            .map_err(|_| SendError::NotAMember(to))?;
        shared.emit(Event::Private {
            from: self.me(),
            to: peer.identity.member(),
            sent_at_ms,
            text: text.to_owned(),
        });
        Ok(())
    }

    /// Changes our name: everyone sees "Old is now New", and `/members` shows it.
    ///
    /// ```no_run
    /// # let (node, _events) = p2pchat::Node::start(p2pchat::Config::new([127, 0, 0, 1].into(), "Alex"))?;
    /// node.rename("Alexander")?;
    /// assert_eq!(node.me().name, "Alexander");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rename(&self, new_name: &str) -> Result<(), SendError> {
        check_name(new_name).map_err(SendError::InvalidName)?;
        let shared = &self.shared;
        let outgoing = lock(&shared.outgoing);
        if outgoing.left {
            return Err(SendError::Left);
        }
        let old = std::mem::replace(&mut *lock(&shared.name), new_name.to_owned());
        shared.send_to_all(&Frame::Rename {
            name: new_name.to_owned(),
        });
        shared.emit(Event::Renamed {
            addr: shared.config.host,
            old,
            new: new_name.to_owned(),
        });
        Ok(())
    }

    /// Asks every member for the messages it has seen, waits up to
    /// [`HISTORY_REPLY_TIMEOUT`] for the answers, merges them into our own log and
    /// returns the log: each message once, in send order.
    ///
    /// ```no_run
    /// # let (node, _events) = p2pchat::Node::start(p2pchat::Config::new([127, 0, 0, 1].into(), "Alex"))?;
    /// for message in node.history() {
    ///     println!("{}: {}", message.sender_name, message.text);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(&self) -> Vec<ChatMessage> {
        let shared = &self.shared;
        let request = shared.next_request.fetch_add(1, Ordering::Relaxed);
        let links = shared.peers().links();
        lock(&shared.rounds).insert(
            request,
            HistoryRound {
                waiting_for: links.iter().map(|link| link.peer()).collect(),
                received: Vec::new(),
                received_per_member: HashMap::new(),
            },
        );
        for link in &links {
            if shared
                .send_frame(link, &Frame::HistoryRequest { request })
                .is_err()
            {
                shared.stop_waiting_for(link.peer());
            }
        }
        let rounds = lock(&shared.rounds);
        let (mut rounds, _) = shared
            .rounds_changed
            .wait_timeout_while(rounds, HISTORY_REPLY_TIMEOUT, |rounds| {
                rounds
                    .get(&request)
                    .is_some_and(|round| !round.waiting_for.is_empty())
            })
            .unwrap_or_else(PoisonError::into_inner);
        let received = rounds
            .remove(&request)
            .map(|round| round.received)
            .unwrap_or_default();
        drop(rounds);
        let mut history = lock(&shared.history);
        history.merge(received);
        history.messages()
    }

    /// Leaves the chat: says goodbye to every member after everything already sent,
    /// waits briefly for them to close their side, and stops the threads. The event
    /// channel ends after the events already queued. Calling it again does nothing.
    pub fn leave(&self) {
        let shared = &self.shared;
        // Holding `outgoing` means no message is half-sent while we say goodbye, and
        // none can be sent after it.
        let mut outgoing = lock(&shared.outgoing);
        if outgoing.left {
            return;
        }
        outgoing.left = true;
        shared.leaving.store(true, Ordering::SeqCst);
        let links = shared.peers().close();
        for link in links {
            if shared.send_frame(&link, &Frame::Bye).is_ok() {
                link.finish();
            }
        }
        // Each peer closes its side when it reads our goodbye; its connection thread
        // then removes it. Waiting for that means every frame we sent was read.
        let deadline = Instant::now() + LEAVE_LINGER;
        let mut peers = shared.peers();
        while !peers.is_empty() && Instant::now() < deadline {
            peers = shared
                .peers_changed
                .wait_timeout(peers, until(deadline))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // Whatever is still open (a peer that did not answer in time, a connection
        // still saying hello) is closed now.
        let lingering = peers.open_links();
        drop(peers);
        for link in lingering {
            link.close();
        }
        // The listener thread is blocked in accept(): a connection wakes it, and it
        // sees that we are leaving. Joining it means the port is free when we return.
        let wake_up = SocketAddrV4::new(shared.config.host, shared.config.port);
        let _ = TcpStream::connect_timeout(&wake_up.into(), Duration::from_secs(1));
        if let Some(listener_thread) = lock(&shared.listener_thread).take() {
            let _ = listener_thread.join();
        }
        // No event follows a goodbye: close the channel so the front end sees its end
        // once it has taken every event already queued.
        lock(&shared.events).take();
    }
}

/// State shared by all of a member's threads.
pub(crate) struct Shared {
    config: Config,
    /// Chosen at random at start-up; tells this run from an earlier one on this address.
    instance: u64,
    peers: Mutex<PeerMap>,
    /// Signalled whenever a peer is added or removed (leaving waits on it).
    peers_changed: Condvar,
    history: Mutex<History>,
    /// `/history` requests waiting for answers, by request number.
    rounds: Mutex<HashMap<u32, HistoryRound>>,
    rounds_changed: Condvar,
    next_request: AtomicU32,
    outgoing: Mutex<Outgoing>,
    leaving: AtomicBool,
    connection_threads: AtomicUsize,
    listener_thread: Mutex<Option<JoinHandle<()>>>,
    /// Where events go; taken (closing the channel) when we leave, so the front end
    /// sees the end of the stream after the last event.
    events: Mutex<Option<SyncSender<Event>>>,
    /// The latest send time of any chat message seen (sent or received), so that a
    /// reply is never stamped earlier than what it answers.
    latest_seen_ms: AtomicI64,
    /// Our current name (`/name` changes it).
    name: Mutex<String>,
}

/// What the sending side must keep consistent: message numbers, and "no message after
/// the goodbye".
struct Outgoing {
    last_seq: u64,
    left: bool,
}

/// The answers to one `/history` request collected so far.
struct HistoryRound {
    waiting_for: HashSet<Ipv4Addr>,
    received: Vec<ChatMessage>,
    /// A member may send at most [`HISTORY_CAPACITY`] entries: more is a flood.
    received_per_member: HashMap<Ipv4Addr, usize>,
}

/// Locks a mutex, carrying on if another thread panicked while holding it: every
/// structure here is valid between any two of its method calls.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn host(&self) -> Ipv4Addr {
        self.config.host
    }

    pub(crate) fn peers(&self) -> MutexGuard<'_, PeerMap> {
        lock(&self.peers)
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    pub(crate) fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub(crate) fn room(&self) -> &str {
        &self.config.room
    }

    /// Our hello, introducing us as `name` (the caller keeps the name it announced).
    pub(crate) fn hello(&self, name: String) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            instance: self.instance,
            name,
            room: self.config.room.clone(),
        }
    }

    fn announcement(&self) -> Announcement {
        Announcement {
            version: PROTOCOL_VERSION,
            tcp_port: self.config.port,
            instance: self.instance,
            name: self.name(),
            room: self.config.room.clone(),
        }
    }

    /// Writes one frame to one peer. Every frame we send goes through here (or through
    /// `send_to_all`), so that [`Config::trace_frames`] can show all of them.
    pub(crate) fn send_frame(&self, link: &Link, frame: &Frame) -> io::Result<()> {
        self.trace(link.peer(), WireDirection::Sent, frame);
        link.send(frame)
    }

    /// Reports a frame as an [`Event::Wire`], if asked to.
    pub(crate) fn trace(&self, peer: Ipv4Addr, direction: WireDirection, frame: &Frame) {
        if self.config.trace_frames {
            self.emit(Event::Wire {
                peer,
                direction,
                frame: frame.clone(),
            });
        }
    }

    /// Passes an event to the front end, unless we are leaving (then nobody cares that
    /// the peers' connections close).
    fn emit(&self, event: Event) {
        if self.is_leaving() {
            return;
        }
        // Clone the sender and release the lock before sending: `send` blocks while the
        // queue is full, and leaving must be able to take the sender meanwhile.
        let events = lock(&self.events).clone();
        if let Some(events) = events {
            // An error means the front end dropped its receiver: nobody to tell.
            let _ = events.send(event);
        }
    }

    /// The send time for a new message: now, or just after the latest message seen if
    /// that is (by at most [`MAX_CLOCK_NUDGE_MS`]) in our future. Replies within the
    /// same millisecond, or from a clock slightly behind, then still sort after the
    /// message they answer; a clock far behind is left alone rather than distorted.
    fn send_time(&self) -> i64 {
        let now = now_ms();
        let after_latest = self.latest_seen_ms.load(Ordering::SeqCst).saturating_add(1);
        if after_latest > now && after_latest - now <= MAX_CLOCK_NUDGE_MS {
            after_latest
        } else {
            now
        }
    }

    /// Records a chat message in the log; false if it was already there.
    fn record(&self, message: &ChatMessage) -> bool {
        self.latest_seen_ms
            .fetch_max(message.sent_at_ms, Ordering::SeqCst);
        lock(&self.history).record(message.clone())
    }

    /// Writes a frame to every installed connection. The peer map is locked only to
    /// copy the list; the writes happen after, so a slow peer holds up nobody else's
    /// use of the map.
    fn send_to_all(&self, frame: &Frame) {
        let links = self.peers().links();
        let encoded = frame.encode();
        for link in links {
            self.trace(link.peer(), WireDirection::Sent, frame);
            // A failed write closes that connection; its thread reports the departure.
            let _ = link.send_encoded(&encoded);
        }
    }

    /// Reserves a connection thread, or refuses when [`MAX_CONNECTIONS`] are running.
    fn reserve_connection_thread(&self) -> bool {
        self.connection_threads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |running| {
                (running < MAX_CONNECTIONS).then_some(running + 1)
            })
            .is_ok()
    }

    pub(crate) fn connection_thread_ended(&self) {
        self.connection_threads.fetch_sub(1, Ordering::SeqCst);
    }

    /// A connection finished its hello: install it (or not) and tell the front end.
    pub(crate) fn admit(&self, identity: PeerIdentity, link: Arc<Link>) -> Admission {
        let (admission, joined) = {
            let mut peers = self.peers();
            let admission = peers.admit(identity.clone(), link.clone());
            // The dialer has the acceptor's hello: the acceptor installed it too.
            let joined = match link.direction() {
                Direction::Outbound => peers.announce(identity.addr, &link),
                Direction::Inbound => None,
            };
            (admission, joined)
        };
        self.peers_changed.notify_all();
        match &admission {
            Admission::Joined | Admission::Surplus { .. } | Admission::Closed => {}
            Admission::Replaced { old, close_old } => {
                // Half-close: the peer still gets to send what it had in flight on the
                // old connection, and closes it when it reads our end of stream.
                if *close_old {
                    old.finish();
                }
            }
            Admission::Restarted { old } => {
                old.link.close();
                if old.announced {
                    self.emit(Event::Left(old.identity.member()));
                }
            }
        }
        if let Some(member) = joined {
            self.emit(Event::Joined(member));
        }
        admission
    }

    /// The dialer of an inbound connection sent its first frame after the hello: it
    /// has installed the connection, so the member has joined.
    pub(crate) fn confirm(&self, peer: &PeerIdentity, link: &Link) {
        let joined = self.peers().announce(peer.addr, link);
        if let Some(member) = joined {
            self.emit(Event::Joined(member));
        }
    }

    /// A connection's thread is ending. If it was the member's installed connection,
    /// the member has left.
    pub(crate) fn connection_closed(&self, identity: &PeerIdentity, link: &Link) {
        let removed = self.peers().remove_if_current(identity.addr, link);
        self.peers_changed.notify_all();
        if let Some(peer) = removed {
            self.stop_waiting_for(peer.identity.addr);
            if peer.announced {
                self.emit(Event::Left(peer.identity.member()));
            }
        }
    }

    /// Acts on one frame received from `peer` (its hello is done). A rename updates
    /// `peer`, the connection thread's own record of who is at the other end.
    pub(crate) fn handle_frame(&self, peer: &mut PeerIdentity, link: &Link, frame: Frame) {
        match frame {
            Frame::Chat {
                seq,
                sent_at_ms,
                text,
            } => {
                let message = ChatMessage {
                    id: MessageId {
                        origin: peer.addr,
                        instance: peer.instance,
                        seq,
                    },
                    sender_name: peer.name.clone(),
                    sent_at_ms,
                    text,
                };
                // The log also weeds out a message that somehow arrives twice.
                if self.record(&message) {
                    self.emit(Event::Message(message));
                }
            }
            Frame::Hooray { sent_at_ms } => self.emit(Event::Hooray {
                from: peer.member(),
                sent_at_ms,
            }),
            Frame::HistoryRequest { request } => {
                let messages = lock(&self.history).messages();
                for message in messages {
                    let entry = Frame::HistoryEntry { request, message };
                    if self.send_frame(link, &entry).is_err() {
                        return;
                    }
                }
                let _ = self.send_frame(link, &Frame::HistoryEnd { request });
            }
            Frame::HistoryEntry { request, message } => {
                let mut rounds = lock(&self.rounds);
                if let Some(round) = rounds.get_mut(&request) {
                    let count = round.received_per_member.entry(peer.addr).or_default();
                    if round.waiting_for.contains(&peer.addr) && *count < HISTORY_CAPACITY {
                        *count += 1;
                        round.received.push(message);
                    }
                }
            }
            Frame::HistoryEnd { request } => {
                if let Some(round) = lock(&self.rounds).get_mut(&request) {
                    round.waiting_for.remove(&peer.addr);
                }
                self.rounds_changed.notify_all();
            }
            Frame::Private { sent_at_ms, text } => {
                let me = Member {
                    name: self.name(),
                    addr: self.config.host,
                };
                self.emit(Event::Private {
                    from: peer.member(),
                    to: me,
                    sent_at_ms,
                    text,
                });
            }
            Frame::Rename { name } => {
                let old = std::mem::replace(&mut peer.name, name.clone());
                self.peers().rename(peer.addr, peer.instance, &name);
                if old != name {
                    self.emit(Event::Renamed {
                        addr: peer.addr,
                        old,
                        new: name,
                    });
                }
            }
            // A repeated hello changes nothing; heartbeats only prove the peer is alive
            // (the connection thread noted the time); a goodbye ends the connection
            // before it gets here.
            Frame::Hello { .. } | Frame::Heartbeat | Frame::Bye => {}
        }
    }

    /// Stops waiting for `addr`'s history reply (it left, or could not be asked).
    fn stop_waiting_for(&self, addr: Ipv4Addr) {
        for round in lock(&self.rounds).values_mut() {
            round.waiting_for.remove(&addr);
        }
        self.rounds_changed.notify_all();
    }
}

/// The listener thread: accepts members' connections until we leave.
fn accept_members(shared: Arc<Shared>, listener: TcpListener) {
    // Refusals are reported at most once a second, so a flood of connections cannot
    // become a flood of lines on stderr.
    let mut refused_unreported = 0usize;
    let mut last_refusal_report: Option<Instant> = None;
    for stream in listener.incoming() {
        if shared.is_leaving() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Typically "too many open files". Pause rather than spin on it.
                warn!("cannot accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // The listener is bound to an IPv4 address, so every peer is IPv4.
        let Ok(SocketAddr::V4(peer_addr)) = stream.peer_addr() else {
            continue;
        };
        let peer_addr = *peer_addr.ip();
        if !shared.reserve_connection_thread() {
            refused_unreported += 1;
            if last_refusal_report.is_none_or(|last| last.elapsed() >= Duration::from_secs(1)) {
                warn!(
                    "refused {refused_unreported} connection(s), the latest from {peer_addr}: \
                     already {MAX_CONNECTIONS} connections open"
                );
                refused_unreported = 0;
                last_refusal_report = Some(Instant::now());
            }
            continue;
        }
        connection::spawn_inbound(shared.clone(), stream, peer_addr);
    }
}

/// The discovery thread: announces us on schedule, and dials every member it hears
/// that we are not connected to.
fn discover_members(shared: Arc<Shared>, discovery: Discovery) {
    let mut schedule = AnnounceSchedule::new(Instant::now());
    let mut redial = RedialLimiter::default();
    let mut version_warned: HashSet<Ipv4Addr> = HashSet::new();
    let mut announcing_fails = false;
    while !shared.is_leaving() {
        if Instant::now() >= schedule.next_due() {
            // Said once per streak of failures (a cable out fails every 2 s), not
            // every time.
            match discovery.announce(&shared.announcement()) {
                Ok(()) => announcing_fails = false,
                Err(e) if !announcing_fails => {
                    warn!("cannot broadcast an announcement (will keep trying): {e}");
                    announcing_fails = true;
                }
                Err(_) => {}
            }
            schedule.mark_sent(Instant::now());
            continue;
        }
        let heard = match discovery.receive(until(schedule.next_due())) {
            Ok(Some(heard)) => heard,
            Ok(None) => continue,
            Err(e) => {
                warn!("cannot receive announcements: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (addr, announcement) = heard;
        if addr == shared.config.host || announcement.instance == shared.instance {
            continue; // our own announcement, looped back
        }
        if announcement.version != PROTOCOL_VERSION {
            if version_warned.len() < 64 && version_warned.insert(addr) {
                warn!(
                    "{addr} speaks protocol version {}, this p2pchat speaks {PROTOCOL_VERSION}: \
                     run the same p2pchat version on every member",
                    announcement.version
                );
            }
            continue;
        }
        // Every member of a chat uses one port, and one room; an announcement naming
        // another port or room is not for this chat.
        if announcement.tcp_port != shared.config.port
            || announcement.room != shared.config.room
            || !redial.may_dial(addr, Instant::now())
            || !shared.peers().start_dialing(addr, announcement.instance)
        {
            continue;
        }
        if !shared.reserve_connection_thread() {
            shared.peers().stop_dialing(addr);
            continue;
        }
        connection::spawn_outbound(shared.clone(), SocketAddrV4::new(addr, shared.config.port));
    }
}

fn tcp_bind_error(e: io::Error, config: &Config) -> StartError {
    match e.kind() {
        io::ErrorKind::AddrNotAvailable => StartError::AddressNotLocal(config.host),
        io::ErrorKind::AddrInUse => StartError::HostInUse {
            host: config.host,
            port: config.port,
        },
        io::ErrorKind::PermissionDenied => StartError::PermissionDenied { port: config.port },
        _ => StartError::Io {
            doing: format!("listen on TCP {}:{}", config.host, config.port),
            source: e,
        },
    }
}

fn udp_bind_error(e: BindError, config: &Config) -> StartError {
    match e {
        BindError::Listener(e) if e.kind() == io::ErrorKind::AddrInUse => {
            StartError::UdpPortInUse(config.port)
        }
        BindError::Listener(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            StartError::PermissionDenied { port: config.port }
        }
        BindError::Listener(source) => StartError::Io {
            doing: format!("listen for announcements on UDP port {}", config.port),
            source,
        },
        BindError::Announcer(source) => StartError::Io {
            doing: format!("open a broadcast socket on {}", config.host),
            source,
        },
    }
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random number without a random-number crate: std seeds every `RandomState` from
/// the operating system's randomness (to protect hash maps from crafted keys), so a
/// fresh one hashes to an unpredictable value.
fn random_instance() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}
