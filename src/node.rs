//! A member of the chat, as a program uses it: [`Node::start`], what the user can do
//! ([`Node::send`], [`Node::history`], ...), and [`Node::leave`]. Also the two threads
//! that bring members in: the listener (TCP `accept`) and discovery (UDP announcements).
//!
//! Everything here is short because the work is elsewhere: a call takes the state lock,
//! changes what it must and queues its frame on every connection in one step, releases
//! the lock, then writes ([`crate::shared`] explains why in that order). Frames that
//! arrive are handled on each connection's own thread ([`crate::connection`]).
//!
//! The TCP listener is bound to `HOST:PORT` rather than `0.0.0.0:PORT`, so that several
//! members can run on one machine with different loopback addresses, and so that a
//! second member on the *same* address fails at once with "address in use".

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::clock::{now_ms, until};
use crate::config::Config;
use crate::connection;
use crate::discovery::{AnnounceSchedule, BindError, DialSource, Discovery, is_dialable};
use crate::event::{Event, Events, Member, Throttle, event_queue};
use crate::history::{LogEntry, MAX_FUTURE_MS, Refused};
use crate::link::Closed;
use crate::platform::Os;
use crate::protocol::{ChatMessage, Frame, MAX_MESSAGE_BYTES, MessageId, PROTOCOL_VERSION};
use crate::shared::{Shared, lock};
use crate::text::{NameError, check_name};
use crate::tuning::{
    EVENT_QUEUE_BYTES, HISTORY_REPLY_TIMEOUT, LEAVE_LINGER, MAX_CONNECTIONS, THREAD_STACK_BYTES,
    WARNING_INTERVAL,
};

/// Why a member could not start. The message says what to do about it.
#[derive(Debug)]
pub enum StartError {
    InvalidName(NameError),
    InvalidRoom(NameError),
    NotAHostAddress(Ipv4Addr),
    AddressNotLocal(Ipv4Addr),
    HostInUse { host: Ipv4Addr, port: u16 },
    UdpPortInUse(u16),
    PermissionDenied { port: u16 },
    Io { doing: String, source: io::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message_on(&Os::HERE))
    }
}

impl StartError {
    /// The message as a user of `os` needs it: the commands it names are that system's.
    pub fn message_on(&self, os: &Os) -> String {
        match self {
            Self::InvalidName(why) => format!("invalid name: {why}"),
            Self::InvalidRoom(why) => format!("invalid room: {why}"),
            Self::NotAHostAddress(host) => format!(
                "{host} is not the address of one machine; give an IPv4 address of this \
                 machine (see {}), such as 127.0.0.1 for a demo",
                os.find_address
            ),
            Self::AddressNotLocal(host) => match os.add_loopback_command(*host) {
                // A Mac has only 127.0.0.1 on loopback until told otherwise.
                Some(command) if host.is_loopback() => format!(
                    "{host} is not an address of this machine: {} has only 127.0.0.1 \
                     on loopback until you add more. Add it with `{command}`, or use \
                     127.0.0.1",
                    os.name
                ),
                _ => format!(
                    "{host} is not an address of this machine; pick one from {} \
                     (or 127.0.0.x to try the chat on one machine: see p2pchat --help)",
                    os.find_address
                ),
            },
            Self::HostInUse { host, port } => format!(
                "another member already uses {host} port {port}. Don't use the same host \
                 for multiple members: give each member its own address (127.0.0.1, \
                 127.0.0.2, ... on one machine). If no member runs there, another program \
                 holds the port: choose another with --port, the same for every member"
            ),
            Self::UdpPortInUse(port) => format!(
                "UDP port {port} is held by another program that does not share it; \
                 choose another port with --port, the same for every member"
            ),
            Self::PermissionDenied { port } => {
                format!("permission denied for port {port}: {}", os.port_refused)
            }
            Self::Io { doing, source } => format!("cannot {doing}: {source}"),
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
    /// `/name` with a name that breaks the rules.
    InvalidName(NameError),
    /// `/connect` to an address that cannot be a member's (ours, a broadcast or
    /// multicast address, or a loopback address from a LAN address or the reverse).
    NotDialable(Ipv4Addr),
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
            Self::NotDialable(addr) => write!(
                f,
                "not connecting to {addr}: that cannot be another member's address (give \
                 the IPv4 address of another machine in the chat)"
            ),
        }
    }
}

impl std::error::Error for SendError {}

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
    /// Events arrive on the returned [`Events`] until [`Node::leave`]. Nothing here
    /// ever waits for you to read them: if you fall far behind (more than
    /// [`EVENT_QUEUE_BYTES`] waiting), the excess is dropped and you get an
    /// [`Event::Missed`] saying how many.
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
    pub fn start(config: Config) -> Result<(Node, Events), StartError> {
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

        let (queue, events) = event_queue(EVENT_QUEUE_BYTES);
        let shared = Arc::new(Shared::new(config, random_instance(), queue));
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
        Ok((Node { shared }, events))
    }

    /// This member, as others see it.
    pub fn me(&self) -> Member {
        Member {
            name: self.shared.name(),
            addr: self.shared.host(),
        }
    }

    /// The port this member accepts connections on (and announces on).
    pub fn port(&self) -> u16 {
        self.shared.config.port
    }

    /// The room this member chats in.
    pub fn room(&self) -> &str {
        &self.shared.config.room
    }

    /// Everyone else connected now, ordered by address.
    pub fn members(&self) -> Vec<Member> {
        self.shared.state().peers.members()
    }

    /// Sends a chat message to every member. It also comes back as an
    /// [`Event::Message`], like everyone else's. Returns once the message is written
    /// to every member, or queued behind what another thread is writing to it; it
    /// waits only when a member is far behind in reading (and then at most until that
    /// member is dropped for not reading).
    pub fn send(&self, text: &str) -> Result<(), SendError> {
        check_length(text)?;
        let shared = &self.shared;
        let (message, queued) = {
            let mut state = shared.state();
            if state.peers.is_leaving() {
                return Err(SendError::Left);
            }
            // Numbered and queued in one step under the lock: every member receives
            // our messages in the order of their numbers.
            let seq = shared.last_seq.fetch_add(1, Ordering::SeqCst) + 1;
            let message = ChatMessage {
                id: MessageId {
                    origin: shared.host(),
                    instance: shared.instance,
                    seq,
                },
                sender_name: state.name.clone(),
                sent_at_ms: shared.send_time(&mut state),
                text: text.to_owned(),
            };
            let queued = state.queue_to_all(Frame::Chat {
                seq: message.id.seq,
                sent_at_ms: message.sent_at_ms,
                text: message.text.clone(),
            });
            (message, queued)
        };
        shared.record(&message);
        shared.emit(Event::Message(message));
        shared.deliver(queued);
        Ok(())
    }

    /// Sends the `/hooray` greeting to everyone (and to ourselves, as an event).
    pub fn hooray(&self) -> Result<(), SendError> {
        let shared = &self.shared;
        let (me, sent_at_ms, queued) = {
            let mut state = shared.state();
            if state.peers.is_leaving() {
                return Err(SendError::Left);
            }
            let sent_at_ms = shared.send_time(&mut state);
            let me = Member {
                name: state.name.clone(),
                addr: shared.host(),
            };
            (
                me,
                sent_at_ms,
                state.queue_to_all(Frame::Hooray { sent_at_ms }),
            )
        };
        shared.emit(Event::Hooray {
            from: me,
            sent_at_ms,
        });
        shared.deliver(queued);
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
        check_length(text)?;
        let shared = &self.shared;
        let (from, recipient, sent_at_ms, queued) = {
            let mut state = shared.state();
            if state.peers.is_leaving() {
                return Err(SendError::Left);
            }
            let Some(peer) = state.peers.get(to).cloned() else {
                return Err(SendError::NotAMember(to));
            };
            let sent_at_ms = shared.send_time(&mut state);
            let from = Member {
                name: state.name.clone(),
                addr: shared.host(),
            };
            let run = (to, peer.identity.instance);
            let frame = Frame::Private {
                seq: state.sent_privates.number(run, sent_at_ms, text),
                sent_at_ms,
                text: text.to_owned(),
            };
            let recipient = peer.identity.member();
            let queued = state.queue_to(peer.link, frame);
            (from, recipient, sent_at_ms, queued)
        };
        shared.emit(Event::Private {
            from,
            to: recipient,
            sent_at_ms,
            text: text.to_owned(),
        });
        shared.deliver(queued);
        Ok(())
    }

    /// Connects to the member at `target` without waiting for its announcement (for
    /// networks where broadcast does not reach), and keeps trying, at the announcement
    /// beat, whenever it is not connected. Through it we learn of every member it knows.
    ///
    /// ```no_run
    /// # let (node, _events) = p2pchat::Node::start(p2pchat::Config::new([10, 0, 0, 1].into(), "Alex"))?;
    /// node.connect("10.0.1.7:24242".parse()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(&self, target: SocketAddrV4) -> Result<(), SendError> {
        let shared = &self.shared;
        if !is_dialable(*target.ip(), shared.host()) {
            return Err(SendError::NotDialable(*target.ip()));
        }
        {
            let mut state = shared.state();
            if state.peers.is_leaving() {
                return Err(SendError::Left);
            }
            if !state.contacts.contains(&target) && state.contacts.len() < MAX_CONNECTIONS {
                state.contacts.push(target);
            }
        }
        connection::dial_if_allowed(shared, target, None, DialSource::Given);
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
        let (old, queued) = {
            let mut state = shared.state();
            if state.peers.is_leaving() {
                return Err(SendError::Left);
            }
            let old = std::mem::replace(&mut state.name, new_name.to_owned());
            let queued = state.queue_to_all(Frame::Rename {
                name: new_name.to_owned(),
            });
            (old, queued)
        };
        shared.emit(Event::Renamed {
            addr: shared.host(),
            old,
            new: new_name.to_owned(),
        });
        shared.deliver(queued);
        Ok(())
    }

    /// Asks every member for the messages it has seen, waits up to
    /// [`HISTORY_REPLY_TIMEOUT`] for the answers, merges them into our own log and
    /// returns the log: each message once, in send order. Entries that are only
    /// another member's word about someone else are marked
    /// ([`LogEntry::relayed_by`]); see [`crate::history`] for what is kept.
    ///
    /// ```no_run
    /// # let (node, _events) = p2pchat::Node::start(p2pchat::Config::new([127, 0, 0, 1].into(), "Alex"))?;
    /// for entry in node.history() {
    ///     println!("{}: {}", entry.message.sender_name, entry.message.text);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(&self) -> Vec<LogEntry> {
        let shared = &self.shared;
        let links = shared.state().peers.links();
        let request = shared.rounds.open(links.iter().map(|link| link.peer()));
        for link in &links {
            shared.send_frame(link, &Frame::HistoryRequest { request });
        }
        let received = shared.rounds.collect(request, HISTORY_REPLY_TIMEOUT);
        let now = now_ms();
        let mut from_the_future: HashMap<Ipv4Addr, usize> = HashMap::new();
        let mut history = shared.history();
        for (by, message) in received {
            if history.record_replied(message, by, now) == Err(Refused::FromTheFuture) {
                *from_the_future.entry(by).or_default() += 1;
            }
        }
        let entries = history.entries(shared.host());
        drop(history);
        for (by, count) in from_the_future {
            shared.warn(format!(
                "ignored {count} history entries from {by} dated more than {} minutes \
                 ahead of this machine's clock",
                MAX_FUTURE_MS / 60_000
            ));
        }
        entries
    }

    /// Leaves the chat: says goodbye to every member after everything already sent,
    /// waits briefly for them to close their side, and stops the threads. The event
    /// stream ends after the events already queued. Calling it again (from any thread)
    /// waits until the first call is done, then does nothing.
    pub fn leave(&self) {
        let shared = &self.shared;
        shared.left.call_once(|| leave(shared));
    }
}

/// What [`Node::leave`] does, once.
fn leave(shared: &Shared) {
    // One step under the lock: from now on nothing is sent, installed or dialed, and
    // every installed connection gets the goodbye after everything already queued.
    let queued = {
        let mut state = shared.state();
        let links = state.peers.close();
        for link in &links {
            link.queue(Frame::Bye.encode().into());
        }
        links
    };
    // Nothing that happens from here on (peers closing their side) is news.
    shared.close_events();
    for link in &queued {
        link.finish();
    }
    // Each peer closes its side when it reads our goodbye; its connection thread then
    // removes it. Waiting for that means every frame we sent was read.
    let deadline = Instant::now() + LEAVE_LINGER;
    let mut state = shared.state();
    while !state.peers.is_empty() && Instant::now() < deadline {
        state = shared
            .state_changed
            .wait_timeout(state, until(deadline))
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    // Whatever is still open (a peer that did not answer in time, a connection still
    // saying hello) is closed now.
    let lingering = state.peers.open_links();
    drop(state);
    for link in lingering {
        link.close(Closed::ByUs);
    }
    // The listener thread is blocked in accept(): a connection wakes it, and it sees
    // that we are leaving. Joining it means the port is free when we return.
    let wake_up = SocketAddrV4::new(shared.host(), shared.config.port);
    let _ = TcpStream::connect_timeout(&wake_up.into(), Duration::from_secs(1));
    if let Some(listener_thread) = lock(&shared.listener_thread).take() {
        let _ = listener_thread.join();
    }
}

fn check_length(text: &str) -> Result<(), SendError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(SendError::TooLong { bytes: text.len() });
    }
    Ok(())
}

/// The listener thread: accepts members' connections until we leave.
fn accept_members(shared: Arc<Shared>, listener: TcpListener) {
    // Refusals are reported at most once a second, so a flood of connections cannot
    // become a flood of warnings.
    let mut refusals = Throttle::new(WARNING_INTERVAL);
    for stream in listener.incoming() {
        if shared.is_leaving() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Typically "too many open files". Pause rather than spin on it.
                shared.warn(format!("cannot accept a connection: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // The listener is bound to an IPv4 address, so every peer is IPv4.
        let Ok(SocketAddr::V4(peer_addr)) = stream.peer_addr() else {
            continue;
        };
        let peer_addr = *peer_addr.ip();
        let Some(slot) = shared.reserve_inbound() else {
            if let Some(held_back) = refusals.admit(Instant::now()) {
                shared.warn(format!(
                    "refused {} connection(s), the latest from {peer_addr}: already \
                     {MAX_CONNECTIONS} connections open",
                    held_back + 1
                ));
            }
            continue;
        };
        connection::spawn_inbound(slot, stream, peer_addr);
    }
}

/// The discovery thread: announces us on schedule, dials the addresses the user gave
/// at the same beat until they are connected, and dials every member it hears that we
/// are not connected to.
fn discover_members(shared: Arc<Shared>, discovery: Discovery) {
    let mut schedule = AnnounceSchedule::new(Instant::now());
    let mut version_warned: HashSet<Ipv4Addr> = HashSet::new();
    let mut announcing_fails = false;
    while !shared.is_leaving() {
        if Instant::now() >= schedule.next_due() {
            // Said once per streak of failures (a cable out fails every 2 s), not
            // every time.
            match discovery.announce(&shared.announcement()) {
                Ok(()) => announcing_fails = false,
                Err(e) if !announcing_fails => {
                    shared.warn(format!(
                        "cannot broadcast an announcement (will keep trying): {e}; members \
                         given with --peer or /connect are still reached"
                    ));
                    announcing_fails = true;
                }
                Err(_) => {}
            }
            schedule.mark_sent(Instant::now());
            let contacts = shared.state().contacts.clone();
            for contact in contacts {
                connection::dial_if_allowed(&shared, contact, None, DialSource::Given);
            }
            continue;
        }
        let heard = match discovery.receive(until(schedule.next_due())) {
            Ok(Some(heard)) => heard,
            Ok(None) => continue,
            Err(e) => {
                shared.warn(format!("cannot receive announcements: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (addr, announcement) = heard;
        if addr == shared.host() || announcement.instance == shared.instance {
            continue; // our own announcement, looped back
        }
        if announcement.version != PROTOCOL_VERSION {
            if version_warned.len() < 64 && version_warned.insert(addr) {
                shared.warn(format!(
                    "{addr} speaks protocol version {}, this p2pchat speaks {PROTOCOL_VERSION}: \
                     run the same p2pchat version on every member",
                    announcement.version
                ));
            }
            continue;
        }
        // Every member of a chat uses one port, and one room; an announcement naming
        // another port or room is not for this chat.
        if announcement.tcp_port != shared.config.port || announcement.room != shared.config.room {
            continue;
        }
        shared.heard_announcement(addr);
        let target = SocketAddrV4::new(addr, shared.config.port);
        let instance = Some(announcement.instance);
        connection::dial_if_allowed(&shared, target, instance, DialSource::Announced);
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

/// A random number without a random-number crate: std seeds every `RandomState` from
/// the operating system's randomness (to protect hash maps from crafted keys), so a
/// fresh one hashes to an unpredictable value.
fn random_instance() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_name_the_commands_of_the_users_system() {
        let not_local = StartError::AddressNotLocal(Ipv4Addr::new(127, 0, 0, 2));
        let mac = not_local.message_on(&Os::MACOS);
        assert!(
            mac.contains("sudo ifconfig lo0 alias 127.0.0.2 up"),
            "{mac}"
        );
        let linux = not_local.message_on(&Os::LINUX);
        assert!(linux.contains("`ip -4 addr`"), "{linux}");
        let lan = StartError::AddressNotLocal(Ipv4Addr::new(198, 18, 0, 1));
        assert!(lan.message_on(&Os::WINDOWS).contains("`ipconfig`"));
        assert!(
            lan.message_on(&Os::MACOS)
                .contains("ipconfig getifaddr en0")
        );

        let refused = StartError::PermissionDenied { port: 80 };
        assert!(
            refused
                .message_on(&Os::LINUX)
                .contains("below 1024 need root")
        );
        assert!(
            refused
                .message_on(&Os::WINDOWS)
                .contains("excludedportrange")
        );
        assert_eq!(not_local.to_string(), not_local.message_on(&Os::HERE));
    }
}
