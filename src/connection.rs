//! One peer's thread: dialing, the hello exchange, admission into the [`PeerMap`], then
//! reading frames and acting on them until the connection ends.
//!
//! This is the loop of the program, and it runs once per connection. The bytes and the
//! socket options belong to [`crate::link`]; what the threads share, and the locks, to
//! [`crate::shared`]. A line from Bo reaches Alex's screen along this path, on Alex's
//! thread for Bo: [`FrameReader::read_frame`] returns a `Chat` frame, `handle_frame` records
//! it in the log and queues an [`Event::Message`], and the front end prints it.
//!
//! ## Dialing from our own address
//!
//! `TcpStream::connect` lets the kernel pick the source address; on a machine with
//! several (127.0.0.1, .2, .3; or two network cards) it may not be ours, and peers know
//! members by the address they see. So `dial` builds the socket with socket2: `bind` to
//! `HOST:0` (our address, any free port), then `connect`.
//!
//! ## Heartbeats: a read timeout instead of an extra thread
//!
//! The reading thread sleeps in `read` until a frame arrives or its next heartbeat is
//! due, whichever comes first (`SO_RCVTIMEO`, see [`FrameReader::wait_at_most`]). Each
//! wake-up sends the heartbeat if due and checks how long the peer has been silent: a
//! peer silent for [`PEER_TIMEOUT`] is gone. TCP alone would take many minutes to
//! notice a pulled cable: it only gives up on data it keeps resending.
//!
//! This thread never waits for the screen: events go into a queue that never blocks
//! ([`crate::event`]). It may wait for its own peer (a write, or room in its outbox),
//! never for another.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::clock::until;
use crate::discovery::{DialSource, is_dialable};
use crate::event::{Event, Member, WireDirection};
use crate::link::{Closed, Direction, FrameReader, Link, ReadError, Received, is_timeout};
use crate::peers::{Admission, Ended, PeerIdentity};
use crate::protocol::{ChatMessage, DecodeError, Frame, MessageId, PROTOCOL_VERSION};
use crate::resume::{self, Resuming};
use crate::shared::{Shared, Slot};
use crate::text::sanitize;
use crate::tuning::{
    CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, HEARTBEAT_INTERVAL, PEER_TIMEOUT, THREAD_STACK_BYTES,
    WRITE_TIMEOUT,
};

#[cfg(doc)]
use crate::peers::PeerMap;

/// Why a connection ended other than by a clean end of stream. Shown to the user as
/// "connection with ADDR ended: it …", so each reads as the end of that sentence.
#[derive(Debug)]
enum ConnectionError {
    /// TCP could not connect.
    Unreachable(io::Error),
    /// Reading failed (a reset, most often).
    Read(io::Error),
    /// Writing failed: the peer stopped reading (the write timed out), or is gone.
    Write(io::ErrorKind),
    Decode(DecodeError),
    /// The peer closed its side in the middle of a frame.
    CutShort,
    /// The peer answered our hello with a goodbye: it already has a connection with
    /// us (the one-connection-per-pair rule). Not a problem, so never reported.
    Declined,
    Silent,
    Handshake(String),
    /// A frame that is well-formed but breaks a rule of the conversation.
    Protocol(String),
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.write_str("refused the connection (p2pchat is not running there, or not yet)")
            }
            Self::Unreachable(e) if is_timeout(e) => write!(
                f,
                "did not answer within {} s (it is gone, or a firewall drops the connection: \
                 `p2pchat --help` says how to open one)",
                CONNECT_TIMEOUT.as_secs()
            ),
            Self::Read(e) | Self::Unreachable(e) if is_reset(e.kind()) => {
                f.write_str("reset the connection (its program ended without saying goodbye)")
            }
            Self::Unreachable(e) => write!(f, "could not be reached ({e})"),
            Self::Read(e) => write!(f, "could not be read from ({e})"),
            Self::Write(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                write!(
                    f,
                    "stopped reading (nothing could be sent to it for {} s)",
                    WRITE_TIMEOUT.as_secs()
                )
            }
            Self::Write(kind) if is_reset(*kind) => {
                f.write_str("reset the connection (its program ended without reading what we sent)")
            }
            Self::Write(kind) => write!(f, "could not be written to ({})", io::Error::from(*kind)),
            Self::Decode(e) => write!(f, "sent an invalid frame ({e})"),
            Self::CutShort => f.write_str("closed the connection in the middle of a frame"),
            Self::Declined => f.write_str("already has a connection with us"),
            Self::Silent => write!(f, "was silent for {} s", PEER_TIMEOUT.as_secs()),
            Self::Handshake(why) | Self::Protocol(why) => f.write_str(why),
        }
    }
}

/// The kinds of error that mean "the other end's TCP reset the connection".
fn is_reset(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl From<ReadError> for ConnectionError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => ConnectionError::Read(e),
            ReadError::Decode(e) => ConnectionError::Decode(e),
            ReadError::CutShort => ConnectionError::CutShort,
        }
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        ConnectionError::Read(e)
    }
}

/// Starts the thread for a connection a peer opened to us.
pub(crate) fn spawn_inbound(slot: Slot, stream: TcpStream, peer_addr: Ipv4Addr) {
    spawn(slot, peer_addr, move |slot| {
        run(slot, stream, peer_addr, Direction::Inbound)
    });
}

/// Dials `target` (heard of from `source`) on a thread of its own, if that is allowed
/// now: a dialable address, not connected or being dialed already, and the
/// [`crate::discovery::DialPolicy`] agrees. `instance` is the run the announcement
/// named, if any.
pub(crate) fn dial_if_allowed(
    shared: &Arc<Shared>,
    target: SocketAddrV4,
    instance: Option<u64>,
    source: DialSource,
) {
    let addr = *target.ip();
    if !is_dialable(addr, shared.host()) {
        return;
    }
    // The cheap, exact check first ("connected or dialing?"), so that a list naming
    // members we already have costs none of the list budget.
    let Some(slot) = shared.reserve_dial(addr, instance, source) else {
        return;
    };
    if shared.may_dial(addr, source) {
        spawn_outbound(slot, target);
    }
}

/// Dials the addresses the member at `by` listed that we have not got already: a
/// moment later, if still needed, where the others most likely connect to us by
/// themselves (announcements arrive here, or `by` found us over this `link`, as its
/// neighbours usually will), else at once ([`crate::tuning::LISTED_DIAL_DELAY`]); not
/// at all if they announce themselves here. A list takes each lock once, not once per
/// address: every connection of a forming mesh carries one.
fn dial_listed(shared: &Arc<Shared>, listed: &[SocketAddrV4], by: Ipv4Addr, link: &Link) {
    let host = shared.host();
    let unknown: Vec<SocketAddrV4> = {
        let state = shared.state();
        listed
            .iter()
            .filter(|target| {
                is_dialable(*target.ip(), host)
                    && !state.peers.is_connected_or_dialing(*target.ip())
            })
            .copied()
            .collect()
    };
    if unknown.is_empty() {
        return;
    }
    let found_us = link.direction() == Direction::Inbound;
    let (dial_now, start_timer) = shared.wait_to_dial_listed(&unknown, by, found_us);
    for target in dial_now {
        dial_if_allowed(shared, target, None, DialSource::Listed { by });
    }
    if start_timer {
        start_listed_dial_timer(shared);
    }
}

/// Starts the thread that dials waiting listed addresses when they are due: it sleeps
/// until the earliest is, dials what is due, and ends when none waits. (New ones are
/// due later than those already waiting, so nothing needs to wake it early.)
fn start_listed_dial_timer(shared: &Arc<Shared>) {
    let timer_shared = shared.clone();
    let started = std::thread::Builder::new()
        .name("listed dials".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            loop {
                let (due, next) = timer_shared.listed_due();
                for (target, by) in due {
                    dial_if_allowed(&timer_shared, target, None, DialSource::Listed { by });
                }
                match next {
                    Some(at) => std::thread::sleep(until(at)),
                    None => return,
                }
            }
        });
    if started.is_err() {
        // No thread to wait with: dial them now rather than never.
        for (target, by) in shared.take_all_listed_waiting() {
            dial_if_allowed(shared, target, None, DialSource::Listed { by });
        }
    }
}

/// Starts a thread that dials `peer` (from our own address) and then serves the
/// connection. The slot keeps the address marked as being dialed until the thread ends.
fn spawn_outbound(slot: Slot, peer: SocketAddrV4) {
    let peer_addr = *peer.ip();
    spawn(slot, peer_addr, move |slot| {
        let shared = slot.shared().clone();
        match dial(shared.host(), peer) {
            Ok(stream) => {
                shared.dial_succeeded(peer_addr);
                run(slot, stream, peer_addr, Direction::Outbound)
            }
            Err(e) => {
                // Said here, once per streak: a dead or forged announcer is dialed
                // again at every announcement.
                let source = slot.source().unwrap_or(DialSource::Announced);
                shared.dial_failed(peer_addr, source, &ConnectionError::Unreachable(e));
                Ok(())
            }
        }
    });
}

/// Runs `body` on a new, small-stack thread named after the peer. The slot goes with
/// it, and is released (by its `Drop`) when the thread ends, or at once if the thread
/// cannot start.
fn spawn(
    slot: Slot,
    peer_addr: Ipv4Addr,
    body: impl FnOnce(&mut Slot) -> Result<(), ConnectionError> + Send + 'static,
) {
    let shared = slot.shared().clone();
    let started = std::thread::Builder::new()
        .name(format!("peer {peer_addr}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut slot = slot;
            if let Err(e) = body(&mut slot)
                && !matches!(e, ConnectionError::Declined)
                && !slot.shared().is_leaving()
            {
                slot.shared()
                    .warn(format!("connection with {peer_addr} ended: it {e}"));
            }
        });
    if let Err(e) = started {
        shared.warn(format!("cannot start a thread for {peer_addr}: {e}"));
    }
}

/// Connects to `peer` from a socket bound to our own address (see the module doc).
fn dial(host: Ipv4Addr, peer: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(host, 0)))?;
    socket.connect_timeout(&SockAddr::from(peer), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

/// The life of one connection after TCP connected.
fn run(
    slot: &mut Slot,
    stream: TcpStream,
    peer_addr: Ipv4Addr,
    direction: Direction,
) -> Result<(), ConnectionError> {
    let (link, mut reader) = Link::new(direction, peer_addr, stream)?;
    let link = Arc::new(link);
    // Registered for its whole life, so that leaving can close it whatever state it is
    // in; the slot unregisters it when the thread ends.
    if !slot.attach(&link) {
        link.close(Closed::ByUs);
        return Ok(());
    }
    let shared = slot.shared().clone();
    let served = serve(&shared, &mut reader, &link);
    link.close(Closed::ByUs);
    served
}

/// Hello, admission, then frames until the end.
fn serve(
    shared: &Arc<Shared>,
    reader: &mut FrameReader,
    link: &Arc<Link>,
) -> Result<(), ConnectionError> {
    // The dialer speaks first; the acceptor answers only once it has installed the
    // connection (see the PeerMap's rule 3 for why the order matters).
    let dialing = link.direction() == Direction::Outbound;
    let announced_name = shared.name();
    if dialing {
        shared.send_frame(link, &shared.hello(announced_name.clone()));
    }
    let mut peer = read_hello(shared, reader, link.peer())?;
    let (admitted, returning) = admit(shared, &peer, link);
    if dialing {
        if !admitted {
            shared.send_frame(link, &Frame::Bye);
            return Ok(());
        }
        // A /name since our hello reached only the links installed then: tell this one.
        let name = shared.name();
        if name != announced_name {
            shared.send_frame(link, &Frame::Rename { name });
        }
    } else {
        // The acceptor's answer goes before anything other threads queued since the
        // connection was installed: its hello (built now, so it carries the current
        // name), or a goodbye that tells the dialer this is not a failure.
        let answer = if admitted {
            shared.hello(shared.name())
        } else {
            Frame::Bye
        };
        shared.trace(link.peer(), WireDirection::Sent, &answer);
        link.send_first(&answer);
        if !admitted {
            return Ok(());
        }
    }
    let mut conversation = Conversation::default();
    if returning {
        conversation.catching_up = Some(Resuming::ask(shared, link, &peer));
    }
    let read = read_frames(shared, reader, link, &mut peer, &mut conversation);
    if let Some(resuming) = &mut conversation.catching_up {
        resuming.stop_waiting(shared);
    }
    let said_goodbye = matches!(read, Ok(Ending::Goodbye));
    let ended = why_it_ended(link, read.map(drop));
    link.close(Closed::ByUs);
    connection_closed(shared, &peer, link, said_goodbye);
    ended
}

/// How a connection ended without an error.
enum Ending {
    /// The peer said goodbye: it left on purpose.
    Goodbye,
    /// The stream ended (its program ended, or we closed the connection).
    EndOfStream,
}

/// The real reason a connection ended: when we closed it after a failed write, the
/// read side only saw the consequence; when we closed it on purpose, it is no problem.
fn why_it_ended(link: &Link, read: Result<(), ConnectionError>) -> Result<(), ConnectionError> {
    match link.closed_because() {
        Some(Closed::WriteFailed(e)) => Err(ConnectionError::Write(e.kind())),
        Some(Closed::ByUs) => Ok(()),
        None => read,
    }
}

/// Waits up to [`HANDSHAKE_TIMEOUT`] for the peer's hello and checks it.
fn read_hello(
    shared: &Shared,
    reader: &mut FrameReader,
    addr: Ipv4Addr,
) -> Result<PeerIdentity, ConnectionError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        reader.wait_at_most(until(deadline))?;
        let received = reader.read_frame()?;
        if let Received::Frame(frame) = &received {
            shared.trace(addr, WireDirection::Received, frame);
        }
        match received {
            Received::Frame(Frame::Hello {
                version,
                instance,
                tcp_port,
                name,
                room,
            }) => {
                if version != PROTOCOL_VERSION {
                    return Err(ConnectionError::Handshake(format!(
                        "speaks protocol version {version}, this p2pchat speaks version \
                         {PROTOCOL_VERSION}: run the same p2pchat version on every member"
                    )));
                }
                if room != shared.config.room {
                    return Err(ConnectionError::Handshake(format!(
                        "is in room {:?}, not in {:?}",
                        sanitize(&room),
                        shared.config.room
                    )));
                }
                return Ok(PeerIdentity {
                    addr,
                    port: tcp_port,
                    instance,
                    name,
                });
            }
            Received::Frame(Frame::Bye) => return Err(ConnectionError::Declined),
            Received::Frame(other) => {
                return Err(ConnectionError::Handshake(format!(
                    "sent {other:?} before saying hello"
                )));
            }
            Received::End => {
                return Err(ConnectionError::Handshake(
                    "closed the connection before saying hello".into(),
                ));
            }
            Received::Nothing if Instant::now() >= deadline => {
                return Err(ConnectionError::Handshake(format!(
                    "did not say hello within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                )));
            }
            Received::Nothing => {}
        }
    }
}

/// The hello exchange is done: install the connection (or not) and tell the front end.
/// Returns whether to keep the connection, and whether it is a run of the member we
/// lost contact with (a cut, or a connection replaced), so that we catch up.
fn admit(shared: &Shared, peer: &PeerIdentity, link: &Arc<Link>) -> (bool, bool) {
    // Read before the state lock (which is never held while taking the history's).
    let had_of_theirs = shared
        .history()
        .newest_first_hand_of(peer.addr, peer.instance);
    let (admission, joined, returning) = {
        let mut state = shared.state();
        let lost_before = state
            .peers
            .last_heard_before_cut(peer.addr, peer.instance)
            .is_some();
        let admission = state.peers.admit(peer.clone(), link.clone());
        // The dialer has the acceptor's hello: the acceptor installed it too.
        let joined = match link.direction() {
            Direction::Outbound => state.peers.confirm(peer.addr, link),
            Direction::Inbound => None,
        };
        // A connection replaced while the member stayed: what was written to the old
        // one since we last heard on it may be lost.
        let replaced = match &admission {
            Admission::Replaced { old, .. } => {
                state
                    .peers
                    .lost_contact(peer.addr, peer.instance, old.last_heard(), had_of_theirs);
                true
            }
            _ => false,
        };
        (admission, joined, lost_before || replaced)
    };
    match &admission {
        Admission::Joined | Admission::Surplus { .. } | Admission::Closed => {}
        // Half-close: the peer still gets to send what it had in flight on the old
        // connection, and closes it when it reads our end of stream.
        Admission::Replaced { old, close_old } => {
            if *close_old {
                old.finish();
            }
        }
        Admission::Restarted { old } => {
            old.link.close(Closed::ByUs);
            if old.announced {
                shared.emit(Event::Left(old.identity.member()));
            }
        }
    }
    if let Some(member) = joined {
        shared.emit(Event::Joined(member));
        // Leaves with the next frame flushed: our first heartbeat, sent at once by the
        // reading loop (or before it, a catch-up request).
        tell_members(shared, link);
    }
    let keep = !matches!(
        admission,
        Admission::Surplus { close_new: true } | Admission::Closed
    );
    let installed = matches!(
        admission,
        Admission::Joined | Admission::Replaced { .. } | Admission::Restarted { .. }
    );
    (keep, returning && installed)
}

/// The connection has ended. If it was the member's installed connection, the member
/// has left; unless it said goodbye, it may come back, and we note when we last heard
/// from it, to catch up then.
fn connection_closed(shared: &Shared, peer: &PeerIdentity, link: &Link, said_goodbye: bool) {
    // Read before the state lock (which is never held while taking the history's), and
    // only if the member may come back to catch up.
    let had_of_theirs = if said_goodbye {
        None
    } else {
        shared
            .history()
            .newest_first_hand_of(peer.addr, peer.instance)
    };
    let (ended, leaving) = {
        let mut state = shared.state();
        let ended = state.peers.remove_if_current(peer.addr, link);
        if said_goodbye {
            state.peers.said_goodbye(peer.addr);
        } else if matches!(ended, Ended::Left(_)) {
            state
                .peers
                .lost_contact(peer.addr, peer.instance, link.last_heard(), had_of_theirs);
        }
        (ended, state.peers.is_leaving())
    };
    // Only leaving waits for members to go (a notify costs a system call even when
    // nobody waits).
    if leaving && matches!(ended, Ended::Left(_)) {
        shared.state_changed.notify_all();
    }
    match ended {
        Ended::NotCurrent | Ended::TookOver { joined: None } => {}
        Ended::Left(removed) => {
            shared.rounds.forget(peer.addr);
            if removed.announced {
                shared.emit(Event::Left(removed.identity.member()));
            }
        }
        // A standby connection took over, and the member is shown only now (its first
        // connection was displaced before it was confirmed; see the PeerMap).
        Ended::TookOver {
            joined: Some((member, successor)),
        } => {
            shared.emit(Event::Joined(member));
            tell_members(shared, &successor);
            successor.flush();
        }
    }
}

/// Reads frames until the peer leaves, goes silent, breaks the protocol, or the
/// connection is closed from our side. Sends a heartbeat every [`HEARTBEAT_INTERVAL`].
fn read_frames(
    shared: &Arc<Shared>,
    reader: &mut FrameReader,
    link: &Link,
    peer: &mut PeerIdentity,
    conversation: &mut Conversation,
) -> Result<Ending, ConnectionError> {
    let mut last_heard = Instant::now();
    // A dialer's first heartbeat leaves at once: it is the confirmation the acceptor
    // waits for before it shows the member as joined (`PeerMap::confirm`). The
    // acceptor's hello has just told the dialer all that its heartbeat would.
    let dialing = link.direction() == Direction::Outbound;
    let mut next_heartbeat = if dialing {
        Instant::now()
    } else {
        Instant::now() + HEARTBEAT_INTERVAL
    };
    let mut confirmed = dialing;
    loop {
        if Instant::now() >= next_heartbeat {
            // Queued, and written unless another thread is writing to this peer (then
            // that thread writes it): a heartbeat never waits behind a slow peer.
            shared.trace(peer.addr, WireDirection::Sent, &Frame::Heartbeat);
            link.queue(Frame::Heartbeat.encode().into());
            link.flush();
            next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
        }
        // Sleep in `read` until a frame arrives or our next heartbeat is due, whichever
        // comes first: no polling, and heartbeats leave on time even while frames flow.
        reader.wait_at_most(until(next_heartbeat))?;
        match reader.read_frame()? {
            Received::Frame(Frame::Bye) => return Ok(Ending::Goodbye),
            Received::End => return Ok(Ending::EndOfStream),
            Received::Frame(frame) => {
                last_heard = Instant::now();
                link.heard(shared.last_seq.load(Ordering::SeqCst));
                if !confirmed {
                    confirmed = true;
                    confirm(shared, peer, link);
                }
                shared.trace(peer.addr, WireDirection::Received, &frame);
                handle_frame(shared, peer, conversation, link, frame)?;
            }
            Received::Nothing => {}
        }
        if let Some(resuming) = &mut conversation.catching_up {
            resuming.stop_waiting_if_slow(shared);
        }
        if last_heard.elapsed() >= PEER_TIMEOUT {
            return Err(ConnectionError::Silent);
        }
    }
}

/// The dialer of an inbound connection sent its first frame after the hello: it has
/// installed the connection, so the member has joined.
fn confirm(shared: &Shared, peer: &PeerIdentity, link: &Link) {
    let joined = shared.state().peers.confirm(peer.addr, link);
    if let Some(member) = joined {
        shared.emit(Event::Joined(member));
        tell_members(shared, link);
        link.flush();
    }
}

/// Tells a member that just joined whom else we are connected to, so that one known
/// address is enough for the whole mesh to form where broadcast does not reach.
///
/// Only the newcomer needs the list. The others learn of it when it dials them, and
/// since the member at the other end does the same, every new connection carries a
/// list each way: whichever of two connections through a common member comes second
/// carries the news of the first. Sending the whole list to everyone on every join
/// would cost N lists of N entries per join: N⁴ dial checks for a mesh of N, not N³.
///
/// The list is only queued: it leaves in the same write as the next frame flushed on
/// that connection (a dialer's first heartbeat follows at once), one system call and
/// one wake-up at the other end instead of two, for every connection of a mesh.
fn tell_members(shared: &Shared, newcomer: &Link) {
    let members = shared.state().peers.member_addresses();
    let list = Frame::Members { members };
    shared.trace(newcomer.peer(), WireDirection::Sent, &list);
    newcomer.queue(list.encode().into());
}

/// What a connection remembers of its conversation, beyond who is at the other end.
#[derive(Default)]
struct Conversation {
    /// The number of the latest `Chat` on this connection: the next must be greater.
    latest_chat: Option<u64>,
    /// Whether we already said that this peer sent a message we had shown before.
    repeat_reported: bool,
    /// Set between our catch-up request and the peer's `CatchUpEnd`: what it sent so
    /// far (an unasked-for catch-up is ignored).
    catching_up: Option<Resuming>,
}

/// Acts on one frame received from `peer` (its hello is done). A rename updates
/// `peer`, this thread's own record of who is at the other end. An error closes the
/// connection.
fn handle_frame(
    shared: &Arc<Shared>,
    peer: &mut PeerIdentity,
    conversation: &mut Conversation,
    link: &Link,
    frame: Frame,
) -> Result<(), ConnectionError> {
    match frame {
        Frame::Chat {
            seq,
            sent_at_ms,
            text,
        } => {
            // A member numbers its messages 1, 2, 3...: a number that does not grow
            // is a broken counter, which would make its messages vanish as "seen".
            if let Some(latest) = conversation.latest_chat.filter(|latest| seq <= *latest) {
                return Err(ConnectionError::Protocol(format!(
                    "numbered a message {seq} after message {latest} (numbers must grow)"
                )));
            }
            conversation.latest_chat = Some(seq);
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
            if shared.record(&message) {
                shared.emit(Event::Message(message));
            } else if !std::mem::replace(&mut conversation.repeat_reported, true) {
                // Seen before, on an earlier connection: shown once, but said.
                shared.warn(format!(
                    "{} sent message {seq} again, which was already shown; repeats are not \
                     shown twice",
                    peer.addr
                ));
            }
        }
        Frame::Hooray { sent_at_ms } => shared.emit(Event::Hooray {
            from: peer.member(),
            sent_at_ms,
        }),
        Frame::HistoryRequest { request } => {
            // Only what we saw ourselves: what others told us is theirs to tell.
            let messages = shared.history().first_hand();
            for message in messages {
                shared.send_frame(link, &Frame::HistoryEntry { request, message });
            }
            shared.send_frame(link, &Frame::HistoryEnd { request });
        }
        Frame::HistoryEntry { request, message } => {
            shared.rounds.add_entry(request, peer.addr, message);
        }
        Frame::HistoryEnd { request } => shared.rounds.end(request, peer.addr),
        Frame::Private {
            seq,
            sent_at_ms,
            text,
        } => {
            let (new, my_name) = {
                let mut state = shared.state();
                let new = state
                    .received_privates
                    .note((peer.addr, peer.instance), seq);
                (new, state.name.clone())
            };
            // A number seen before is a copy (sent again after a cut): shown once.
            if new {
                shared.emit(Event::Private {
                    from: peer.member(),
                    to: Member {
                        name: my_name,
                        addr: shared.host(),
                    },
                    sent_at_ms,
                    text,
                });
            }
        }
        Frame::CatchUpRequest {
            privates_received,
            have,
        } => resume::answer(shared, link, peer, privates_received, have),
        Frame::CatchUpEntry { message } => {
            if let Some(resuming) = &mut conversation.catching_up {
                resuming.add_message(message);
            }
        }
        Frame::CatchUpPrivate {
            seq,
            sent_at_ms,
            text,
        } => {
            if let Some(resuming) = &mut conversation.catching_up {
                resuming.add_private(seq, peer.member(), sent_at_ms, text);
            }
        }
        Frame::CatchUpEnd { unavailable } => {
            if let Some(resuming) = conversation.catching_up.take() {
                resuming.finish(shared, peer, unavailable);
            }
        }
        Frame::Rename { name } => {
            let old = std::mem::replace(&mut peer.name, name.clone());
            shared.state().peers.rename(peer.addr, peer.instance, &name);
            if old != name {
                shared.emit(Event::Renamed {
                    addr: peer.addr,
                    old,
                    new: name,
                });
            }
        }
        Frame::Members { members } => dial_listed(shared, &members, peer.addr, link),
        Frame::Hello { .. } => {
            return Err(ConnectionError::Protocol(
                "said hello a second time (a hello is only the first frame)".into(),
            ));
        }
        // Heartbeats only prove the peer is alive (the reading loop noted the time); a
        // goodbye ends the connection before it gets here.
        Frame::Heartbeat | Frame::Bye => {}
    }
    Ok(())
}
