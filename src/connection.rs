//! One TCP connection to one peer: dialing, the hello exchange, the reading thread,
//! heartbeats, and how a connection ends, cleanly or not.
//!
//! ## Two handles on one socket
//!
//! A TCP socket can be read and written at the same time from different threads.
//! `TcpStream::try_clone` gives a second handle to the *same* socket (a `dup` of the
//! file descriptor): the connection's own thread reads through the first, in a
//! `FrameReader`, and the rest of the program writes through the clone, held by a
//! [`Link`] behind a mutex so that two threads never interleave the bytes of two frames.
//! The first handle is shared (an `Arc`, not another `dup`) with the `Link` too, so any
//! thread can shut the socket down without waiting for that mutex: two file
//! descriptors per connection.
//!
//! ## Dialing from our own address
//!
//! `TcpStream::connect` lets the kernel pick the source address; on a machine with
//! several (127.0.0.1, .2, .3; or two network cards) it may not be ours, and peers know
//! members by the address they see. So `dial` builds the socket with socket2: `bind` to
//! `HOST:0` (our address, any free port), then `connect`.
//!
//! ## Timeouts instead of extra threads
//!
//! * `set_read_timeout` (the socket option `SO_RCVTIMEO`) makes a blocking `read` give
//!   up when our next heartbeat is due, every [`HEARTBEAT_INTERVAL`]. The reading thread
//!   uses each wake-up to send that heartbeat and to check how long the peer has been
//!   silent: a peer silent for [`PEER_TIMEOUT`] is gone. TCP alone would take many
//!   minutes to notice a pulled cable: it only gives up on data it keeps resending.
//! * `set_write_timeout` (`SO_SNDTIMEO`) bounds a write. A write blocks only when the
//!   peer has stopped reading long enough to fill its receive window and our send
//!   buffer; after [`WRITE_TIMEOUT`] such a peer is dropped instead of stalling the chat.
//! * `set_nodelay` turns off Nagle's algorithm, which would hold back a small frame
//!   while an earlier one is unacknowledged: chat lines are small and should go now.
//!
//! ## Ending
//!
//! `shutdown(Write)` sends a FIN after everything already written: the peer reads all
//! our frames, then end-of-stream. That is how a member leaves without losing its last
//! words. `shutdown(Both)` also wakes our own thread blocked in `read`, which is how a
//! connection is closed from outside its thread.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::display::sanitize;
use crate::node::{Shared, WireDirection};
use crate::peers::{Admission, Direction, PeerIdentity};
use crate::protocol::{DecodeError, Frame, PROTOCOL_VERSION, decode_frame};
use crate::tuning::{
    CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, HEARTBEAT_INTERVAL, PEER_TIMEOUT, THREAD_STACK_BYTES,
    WRITE_TIMEOUT,
};
use crate::warn;

/// The writing side of a connection, shared by every thread that sends to this peer.
pub struct Link {
    id: u64,
    direction: Direction,
    /// The peer's address, for tracing and for diagnostics.
    peer: Ipv4Addr,
    /// The cloned handle writes go through, under the mutex, one whole frame at a time.
    writer: Mutex<TcpStream>,
    /// The reading thread's handle, used here only to shut the socket down. It is
    /// outside the mutex so that a close never waits behind a write that is blocked on
    /// a frozen peer.
    control: Arc<TcpStream>,
}

impl Link {
    fn new(direction: Direction, peer: Ipv4Addr, reading: Arc<TcpStream>) -> io::Result<Link> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Link {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            direction,
            peer,
            writer: Mutex::new(reading.try_clone()?),
            control: reading,
        })
    }

    /// Unique among this process's connections; tells a replaced connection from
    /// its replacement.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }

    /// Writes one frame. On error (the peer is gone, or did not read for
    /// [`WRITE_TIMEOUT`]) the connection is closed, which ends its reading thread,
    /// which reports the departure: callers need not do anything else.
    pub fn send(&self, frame: &Frame) -> io::Result<()> {
        self.send_encoded(&frame.encode())
    }

    /// Like [`Link::send`], for a frame already encoded (to send one frame to many
    /// peers, encode it once).
    pub fn send_encoded(&self, frame: &[u8]) -> io::Result<()> {
        self.hold().send_encoded(frame)
    }

    /// Takes the write lock and keeps it: what is sent through the returned handle goes
    /// out before anything another thread sends on this link meanwhile.
    fn hold(&self) -> HeldLink<'_> {
        // A panic elsewhere while holding this lock cannot leave a half-written frame
        // (write_all either finished or the connection is being closed), so a poisoned
        // lock is safe to keep using.
        HeldLink {
            link: self,
            writer: self.writer.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Sends FIN after everything written so far: the polite end of a connection.
    pub fn finish(&self) {
        let _ = self.control.shutdown(Shutdown::Write);
    }

    /// Ends the connection at once; its reading thread wakes up and exits.
    pub fn close(&self) {
        let _ = self.control.shutdown(Shutdown::Both);
    }
}

/// A [`Link`] whose write lock is held: the acceptor installs a connection and writes
/// its hello while holding it, so that no chat frame from another thread can reach the
/// newcomer before the hello does.
struct HeldLink<'a> {
    link: &'a Link,
    writer: MutexGuard<'a, TcpStream>,
}

impl HeldLink<'_> {
    fn send_encoded(&mut self, frame: &[u8]) -> io::Result<()> {
        let result = self.writer.write_all(frame);
        if result.is_err() {
            self.link.close();
        }
        result
    }
}

/// The reading side: a socket plus a buffer of bytes received but not yet decoded.
///
/// TCP delivers a stream of bytes, not frames, so a `read` can return part of a frame,
/// or several. Bytes wait in `buffer` until [`decode_frame`] finds a whole frame.
struct FrameReader {
    stream: Arc<TcpStream>,
    buffer: Vec<u8>,
}

/// What one call to [`FrameReader::next`] found.
enum Received {
    Frame(Frame),
    /// No whole frame yet (the read timed out, or brought only part of one): time to
    /// check the deadlines.
    Nothing,
    /// The peer closed its side between two frames.
    End,
}

/// Why a connection ended other than by a clean end of stream.
#[derive(Debug)]
enum ConnectionError {
    Io(io::Error),
    Decode(DecodeError),
    /// The peer closed its side in the middle of a frame.
    CutShort,
    /// The peer answered our hello with a goodbye: it already has a connection with
    /// us (the one-connection-per-pair rule). Not a problem, so never reported.
    Declined,
    Silent,
    Handshake(String),
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Decode(e) => write!(f, "sent an invalid frame ({e})"),
            Self::CutShort => f.write_str("closed the connection in the middle of a frame"),
            Self::Declined => f.write_str("already has a connection with us"),
            Self::Silent => write!(f, "was silent for {} s", PEER_TIMEOUT.as_secs()),
            Self::Handshake(why) => f.write_str(why),
        }
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        ConnectionError::Io(e)
    }
}

impl FrameReader {
    /// Bytes asked for per `read`: a few typical frames, or a quarter of the largest.
    const READ_CHUNK_BYTES: usize = 4096;

    fn new(stream: Arc<TcpStream>) -> FrameReader {
        FrameReader {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Makes the next [`FrameReader::next`] return [`Received::Nothing`] if no whole
    /// frame arrives within `wait`.
    fn wait_at_most(&self, wait: Duration) -> io::Result<()> {
        // A zero timeout means "block forever" to the socket API: never pass one.
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
    }

    /// The next whole frame, or [`Received::Nothing`] when no frame is complete after
    /// at most one `read`.
    ///
    /// One read per call, never a loop of them: the caller checks its deadlines (the
    /// hello's, the peer's silence) between calls, so a peer that trickles a frame one
    /// byte at a time cannot hold the connection open past them.
    fn next(&mut self) -> Result<Received, ConnectionError> {
        // A frame may already be waiting from an earlier read.
        if let Some(frame) = self.take_frame()? {
            return Ok(Received::Frame(frame));
        }
        // take_frame has checked the length prefix against MAX_FRAME_BYTES, so the
        // buffer never grows past one frame plus one chunk.
        let mut chunk = [0u8; Self::READ_CHUNK_BYTES];
        // `&TcpStream` implements `Read`, so the shared handle can be read through.
        match (&*self.stream).read(&mut chunk) {
            Ok(0) if self.buffer.is_empty() => Ok(Received::End),
            Ok(0) => Err(ConnectionError::CutShort),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(self
                    .take_frame()?
                    .map_or(Received::Nothing, Received::Frame))
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                Ok(Received::Nothing)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes one whole frame from the front of the buffer, if there is one.
    fn take_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
        match decode_frame(&self.buffer).map_err(ConnectionError::Decode)? {
            Some((frame, used)) => {
                self.buffer.drain(..used);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}

/// A read timeout shows up as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Starts the thread for a connection a peer opened to us.
pub(crate) fn spawn_inbound(shared: Arc<Shared>, stream: TcpStream, peer_addr: Ipv4Addr) {
    spawn(shared, peer_addr, move |shared| {
        run(shared, stream, peer_addr, Direction::Inbound)
    });
}

/// Starts a thread that dials `peer` (from our own address) and then serves the
/// connection.
///
/// The address stays marked as "dialing" in the PeerMap until this thread ends, not
/// just until TCP connects. Otherwise a hello delayed by a lost packet would let the
/// next announcement start a second connection in the same direction, and the two
/// ends could install different ones of the two.
pub(crate) fn spawn_outbound(shared: Arc<Shared>, peer: SocketAddrV4) {
    let peer_addr = *peer.ip();
    spawn(shared, peer_addr, move |shared| {
        let served = match dial(shared.host(), peer) {
            Ok(stream) => run(shared, stream, peer_addr, Direction::Outbound),
            Err(e) => Err(ConnectionError::Handshake(format!(
                "could not be reached: {e}"
            ))),
        };
        shared.peers().stop_dialing(peer_addr);
        served
    });
}

/// Runs `body` on a new, small-stack thread named after the peer, counting it against
/// the connection limit for as long as it runs.
fn spawn(
    shared: Arc<Shared>,
    peer_addr: Ipv4Addr,
    body: impl FnOnce(&Arc<Shared>) -> Result<(), ConnectionError> + Send + 'static,
) {
    let thread_shared = shared.clone();
    let started = std::thread::Builder::new()
        .name(format!("peer {peer_addr}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let shared = thread_shared;
            if let Err(e) = body(&shared) {
                if !shared.is_leaving() && !matches!(e, ConnectionError::Declined) {
                    warn!("connection with {peer_addr} ended: it {e}");
                }
            }
            shared.connection_thread_ended();
        });
    if let Err(e) = started {
        warn!("cannot start a thread for {peer_addr}: {e}");
        shared.connection_thread_ended();
    }
}

/// Connects to `peer` from a socket bound to our own address.
///
/// `std::net::TcpStream::connect` lets the kernel choose the source address. On a
/// machine with several addresses (127.0.0.1, .2, .3 on one laptop; two network cards)
/// that may not be ours, and the peer identifies members by the address it sees. So
/// the socket is built with socket2: bind to `HOST:0` (any free port), then connect.
fn dial(host: Ipv4Addr, peer: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(host, 0)))?;
    socket.connect_timeout(&SockAddr::from(peer), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

/// The life of one connection after TCP connected: hello, admission, then frames
/// until the end.
fn run(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer_addr: Ipv4Addr,
    direction: Direction,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let stream = Arc::new(stream);
    let mut reader = FrameReader::new(stream.clone());
    let link = Arc::new(Link::new(direction, peer_addr, stream)?);
    // Registered for its whole life, so that leaving can close it whatever state it
    // is in; whichever way `serve` ends, the socket is then closed and forgotten.
    if !shared.peers().open(&link) {
        link.close();
        return Ok(());
    }
    let served = serve(shared, &mut reader, &link);
    link.close();
    shared.peers().forget(&link);
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
        shared.send_frame(link, &shared.hello(announced_name.clone()))?;
    }
    let mut identity = read_hello(shared, reader, link.peer())?;

    // Once installed, the connection is in every other thread's list of links. The
    // acceptor holds the write lock from before that until its answer is written, so
    // nothing another thread sends can overtake its hello.
    let mut held = (!dialing).then(|| link.hold());
    let admitted = !matches!(
        shared.admit(identity.clone(), link.clone()),
        Admission::Surplus { close_new: true } | Admission::Closed
    );
    let answered = match held.as_mut() {
        // The acceptor's answer: its hello, built now so it carries the current name,
        // or a goodbye that tells the dialer this is not a failure.
        Some(held) => {
            let answer = if admitted {
                shared.hello(shared.name())
            } else {
                Frame::Bye
            };
            shared.trace(link.peer(), WireDirection::Sent, &answer);
            held.send_encoded(&answer.encode())
        }
        None if !admitted => shared.send_frame(link, &Frame::Bye),
        // A /name since our hello reached only the links installed then: tell this one.
        None if shared.name() != announced_name => shared.send_frame(
            link,
            &Frame::Rename {
                name: shared.name(),
            },
        ),
        None => Ok(()),
    };
    drop(held);
    if !admitted {
        return Ok(());
    }
    let mut ended = answered.map_err(ConnectionError::from);
    if ended.is_ok() {
        ended = read_frames(shared, reader, link, &mut identity);
    }
    link.close();
    shared.connection_closed(&identity, link);
    ended
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
        let received = reader.next()?;
        if let Received::Frame(frame) = &received {
            shared.trace(addr, WireDirection::Received, frame);
        }
        match received {
            Received::Frame(Frame::Hello {
                version,
                instance,
                name,
                room,
            }) => {
                if version != PROTOCOL_VERSION {
                    return Err(ConnectionError::Handshake(format!(
                        "speaks protocol version {version}, this p2pchat speaks version \
                         {PROTOCOL_VERSION}: run the same p2pchat version on every member"
                    )));
                }
                if room != shared.room() {
                    return Err(ConnectionError::Handshake(format!(
                        "is in room {:?}, not in {:?}",
                        sanitize(&room),
                        shared.room()
                    )));
                }
                return Ok(PeerIdentity {
                    addr,
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

/// Reads frames until the peer leaves, goes silent, breaks the protocol, or the
/// connection is closed from our side. Sends a heartbeat every [`HEARTBEAT_INTERVAL`].
fn read_frames(
    shared: &Arc<Shared>,
    reader: &mut FrameReader,
    link: &Link,
    peer: &mut PeerIdentity,
) -> Result<(), ConnectionError> {
    let mut last_heard = Instant::now();
    // The first heartbeat leaves at once: for a dialer it is the confirmation the
    // acceptor waits for before it shows the member as joined (`PeerMap::announce`).
    let mut next_heartbeat = Instant::now();
    let mut confirmed = link.direction() == Direction::Outbound;
    loop {
        if Instant::now() >= next_heartbeat {
            shared.send_frame(link, &Frame::Heartbeat)?;
            next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
        }
        // Sleep in `read` until a frame arrives or our next heartbeat is due, whichever
        // comes first: no polling, and heartbeats leave on time even while frames flow.
        reader.wait_at_most(until(next_heartbeat))?;
        match reader.next()? {
            Received::Frame(Frame::Bye) | Received::End => return Ok(()),
            Received::Frame(frame) => {
                last_heard = Instant::now();
                if !confirmed {
                    confirmed = true;
                    shared.confirm(peer, link);
                }
                shared.trace(peer.addr, WireDirection::Received, &frame);
                shared.handle_frame(peer, link, frame);
            }
            Received::Nothing => {}
        }
        if last_heard.elapsed() >= PEER_TIMEOUT {
            return Err(ConnectionError::Silent);
        }
    }
}

/// How long to wait, at most, for a moment in the future; zero if it has passed.
pub(crate) fn until(moment: Instant) -> Duration {
    moment.saturating_duration_since(Instant::now())
}
