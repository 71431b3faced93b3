//! One TCP connection seen as frames: a [`Link`] writes whole frames to the peer, a
//! [`FrameReader`] reads whole frames out of the byte stream. No protocol decisions
//! here (that is `connection.rs`, one level up); only bytes, sockets and their options.
//!
//! ## Two handles on one socket
//!
//! A TCP socket can be read and written at the same time from different threads.
//! `TcpStream::try_clone` gives a second handle to the *same* socket (a `dup` of the
//! file descriptor): the connection's own thread reads through the first, in its
//! `FrameReader`, and every thread that sends writes through the clone, held by the
//! `Link`. The first handle is also shared (an `Arc`) with the `Link`, so any thread can
//! shut the socket down: two file descriptors per connection.
//!
//! ## Writing without holding a lock while the network is slow
//!
//! Several threads send to one peer (the user's thread sends chat, the connection's own
//! thread sends heartbeats and history replies), and the bytes of two frames must never
//! interleave. A mutex around the socket would do that, but a write can block for as
//! long as the peer does not read, and every thread waiting for that mutex would block
//! with it. So each link has an *outbox*, a queue of encoded frames:
//!
//! * [`Link::queue`] appends a frame under the outbox lock and returns at once. It may be
//!   called while holding other locks (that is how a message reaches every outbox in
//!   the same order as its number).
//! * [`Link::flush`] makes the calling thread the link's *writer* if nobody is: it takes
//!   everything queued, releases the lock, writes it, and repeats until the outbox is
//!   empty. A thread that finds another writer at work just returns: its frames are
//!   already queued and that writer takes them. No lock is held during a write.
//! * [`Link::wait_for_room`] is the back-pressure: a sender that finds more than
//!   [`OUTBOX_HIGH_WATER_BYTES`] waiting waits (without holding any lock) until the
//!   writer has made room, so a paste of thousands of lines flows at the speed of the
//!   network instead of piling up in memory.
//!
//! ## Socket options, and why
//!
//! * `set_write_timeout` (`SO_SNDTIMEO`) bounds a write. A write blocks only when the
//!   peer has stopped reading long enough to fill its receive window and our send
//!   buffer; after [`WRITE_TIMEOUT`] such a peer is dropped instead of stalling the chat.
//! * `set_read_timeout` (`SO_RCVTIMEO`) makes a blocking `read` give up after a while, so
//!   the reading thread can send its heartbeat and check deadlines (see
//!   [`FrameReader::wait_at_most`]). Setting it is a system call of its own, so the
//!   reader sets it only when the wanted timeout has moved by more than a few
//!   milliseconds, not before every `read`.
//! * `set_nodelay` turns off Nagle's algorithm, which would hold back a small frame
//!   while an earlier one is unacknowledged: chat lines are small and should go now.
//!
//! ## Ending
//!
//! `shutdown(Write)` sends a FIN after everything already written: the peer reads all
//! our frames, then end-of-stream. That is how a member leaves without losing its last
//! words ([`Link::finish`]). `shutdown(Both)` also wakes our own thread blocked in
//! `read`, which is how a connection is closed from outside its thread ([`Link::close`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::clock::now_ms;
use crate::protocol::{DecodeError, Frame, decode_frame};
use crate::tuning::{OUTBOX_HIGH_WATER_BYTES, WRITE_TIMEOUT};

/// Which end dialed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We connected to them (after hearing their announcement).
    Outbound,
    /// They connected to us.
    Inbound,
}

/// An encoded frame, shared by every outbox it is queued in (a message to everyone is
/// encoded once).
pub type Encoded = Arc<[u8]>;

/// The writing side of a connection, shared by every thread that sends to this peer.
pub struct Link {
    id: u64,
    direction: Direction,
    /// The peer's address, for tracing and for diagnostics.
    peer: Ipv4Addr,
    /// The cloned handle writes go through; only the outbox's current writer uses it.
    writer: TcpStream,
    /// The reading thread's handle, used here only to shut the socket down, which
    /// needs no lock and so never waits behind a blocked write.
    control: Arc<TcpStream>,
    outbox: Mutex<Outbox>,
    /// Signalled when the writer has made room while a thread waits for it
    /// (`waiting_for_room`), and when the link closes.
    room_made: Condvar,
    /// Why we closed the connection, if we did: the first reason is kept.
    closed_because: OnceLock<Closed>,
    /// When a frame last arrived (milliseconds since the Unix epoch, our clock), and the
    /// number of our latest message then: where a cut began, if one ends the connection.
    heard_at_ms: AtomicI64,
    our_seq_when_heard: AtomicU64,
}

/// Frames waiting to be written to one peer, and who is writing them.
struct Outbox {
    frames: VecDeque<Encoded>,
    /// Bytes in `frames` plus those being written right now.
    bytes: usize,
    /// A thread is writing (without the lock); others only queue.
    writing: bool,
    /// Nothing is written until [`Link::send_first`]: an accepted connection's first
    /// frame must be our hello, whatever other threads queue meanwhile.
    held: bool,
    /// Send a FIN once everything queued is written.
    finish: bool,
    /// The connection is closed: frames are dropped.
    closed: bool,
    /// Threads asleep in [`Link::wait_for_room`]. Only they need waking after a write:
    /// a condvar's notify is a system call even when nobody waits.
    waiting_for_room: usize,
}

/// Why we closed a connection.
#[derive(Debug)]
pub enum Closed {
    /// Deliberately: we are leaving, or the connection was replaced. Not a problem.
    ByUs,
    /// A write failed: the peer stopped reading (the write timed out) or is gone.
    WriteFailed(io::Error),
}

impl Link {
    /// Splits a connected stream into its writing side (the link) and its reading side,
    /// and sets the socket options every connection needs.
    pub fn new(
        direction: Direction,
        peer: Ipv4Addr,
        stream: TcpStream,
    ) -> io::Result<(Link, FrameReader)> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let reading = Arc::new(stream);
        let link = Link {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            direction,
            peer,
            writer: reading.try_clone()?,
            control: reading.clone(),
            outbox: Mutex::new(Outbox {
                frames: VecDeque::new(),
                bytes: 0,
                writing: false,
                held: direction == Direction::Inbound,
                finish: false,
                closed: false,
                waiting_for_room: 0,
            }),
            room_made: Condvar::new(),
            closed_because: OnceLock::new(),
            heard_at_ms: AtomicI64::new(now_ms()),
            our_seq_when_heard: AtomicU64::new(0),
        };
        Ok((link, FrameReader::new(reading)))
    }

    /// Unique among this process's connections; tells a replaced connection from its
    /// replacement.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // Every method leaves the outbox consistent before anything can panic.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a frame to the outbox. Never blocks on the network, so it may be called
    /// under other locks; the frame is written by the next [`Link::flush`].
    pub fn queue(&self, frame: Encoded) {
        let mut outbox = self.outbox();
        if outbox.closed {
            return;
        }
        outbox.bytes += frame.len();
        outbox.frames.push_back(frame);
    }

    /// Writes what is queued, unless another thread is already doing so (then it will).
    /// Must not be called while holding a lock: it may block for up to
    /// [`WRITE_TIMEOUT`] per write. On a failed write the connection is closed, which
    /// ends its reading thread, which reports the departure.
    pub fn flush(&self) {
        let mut outbox = self.outbox();
        if outbox.writing || outbox.held {
            return;
        }
        outbox.writing = true;
        loop {
            if outbox.closed {
                break;
            }
            if outbox.frames.is_empty() {
                if std::mem::take(&mut outbox.finish) {
                    let _ = self.control.shutdown(Shutdown::Write);
                }
                break;
            }
            let batch: Vec<Encoded> = outbox.frames.drain(..).collect();
            drop(outbox);
            let written = write_batch(&self.writer, &batch);
            outbox = self.outbox();
            outbox.bytes = outbox
                .bytes
                .saturating_sub(batch.iter().map(|f| f.len()).sum());
            if outbox.waiting_for_room > 0 {
                self.room_made.notify_all();
            }
            if let Err(e) = written {
                outbox.writing = false;
                drop(outbox);
                self.close(Closed::WriteFailed(e));
                return;
            }
        }
        outbox.writing = false;
    }

    /// Waits, holding no lock, while more than [`OUTBOX_HIGH_WATER_BYTES`] wait for
    /// another thread to write them. The wait ends when that writer makes room or the
    /// connection closes, which a write that makes no progress does within
    /// [`WRITE_TIMEOUT`].
    pub fn wait_for_room(&self) {
        let far_behind = |outbox: &mut Outbox| {
            outbox.bytes > OUTBOX_HIGH_WATER_BYTES && outbox.writing && !outbox.closed
        };
        let mut outbox = self.outbox();
        if !far_behind(&mut outbox) {
            return;
        }
        outbox.waiting_for_room += 1;
        let mut outbox = self
            .room_made
            .wait_while(outbox, far_behind)
            .unwrap_or_else(PoisonError::into_inner);
        outbox.waiting_for_room -= 1;
    }

    /// Queues a frame and writes it (or leaves it to the writer at work), then waits
    /// for room if the peer is far behind. The way to send one frame to one peer.
    pub fn send(&self, frame: &Frame) {
        self.queue(frame.encode().into());
        self.flush();
        self.wait_for_room();
    }

    /// Puts `frame` before everything queued so far and starts writing: the first frame
    /// of an accepted connection (our hello, or a goodbye that declines it).
    pub fn send_first(&self, frame: &Frame) {
        {
            let mut outbox = self.outbox();
            let encoded: Encoded = frame.encode().into();
            outbox.bytes += encoded.len();
            outbox.frames.push_front(encoded);
            outbox.held = false;
        }
        self.flush();
    }

    /// Sends a FIN after everything queued so far: the polite end of a connection.
    pub fn finish(&self) {
        self.outbox().finish = true;
        self.flush();
    }

    /// Ends the connection at once; its reading thread wakes up and exits. Frames still
    /// queued are dropped.
    pub fn close(&self, why: Closed) {
        let _ = self.closed_because.set(why);
        let someone_waits = {
            let mut outbox = self.outbox();
            outbox.closed = true;
            outbox.frames.clear();
            outbox.bytes = 0;
            outbox.waiting_for_room > 0
        };
        // A notify is a system call even with nobody to wake: only when needed.
        if someone_waits {
            self.room_made.notify_all();
        }
        let _ = self.control.shutdown(Shutdown::Both);
    }

    /// Why we closed the connection, if we did.
    pub fn closed_because(&self) -> Option<&Closed> {
        self.closed_because.get()
    }

    /// Notes that a frame arrived just now, when our latest message was number
    /// `our_seq` (the reading thread calls it).
    pub fn heard(&self, our_seq: u64) {
        self.heard_at_ms.store(now_ms(), Ordering::Relaxed);
        self.our_seq_when_heard.store(our_seq, Ordering::Relaxed);
    }

    /// When a frame last arrived, and the number of our latest message then.
    pub fn last_heard(&self) -> LastHeard {
        LastHeard {
            at_ms: self.heard_at_ms.load(Ordering::Relaxed),
            our_seq: self.our_seq_when_heard.load(Ordering::Relaxed),
        }
    }
}

/// The last moment a connection heard from its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastHeard {
    /// Milliseconds since the Unix epoch, our clock.
    pub at_ms: i64,
    /// The number of our latest chat message at that moment.
    pub our_seq: u64,
}

/// Writes a batch of frames. Several frames become one buffer, so a burst costs one
/// system call (and, with Nagle off, as few packets as possible) instead of one each.
fn write_batch(mut writer: &TcpStream, batch: &[Encoded]) -> io::Result<()> {
    match batch {
        [one] => writer.write_all(one),
        several => writer.write_all(&several.concat()),
    }
}

/// The reading side: a socket plus a buffer of bytes received but not yet decoded.
///
/// TCP delivers a stream of bytes, not frames, so a `read` can return part of a frame,
/// or several. Bytes wait in `buffer` until [`decode_frame`] finds a whole frame.
pub struct FrameReader {
    stream: Arc<TcpStream>,
    buffer: Vec<u8>,
    /// The read timeout last set on the socket.
    timeout: Option<Duration>,
}

/// What one call to [`FrameReader::read_frame`] found.
#[derive(Debug)]
pub enum Received {
    Frame(Frame),
    /// No whole frame yet (the read timed out, or brought only part of one): time to
    /// check the deadlines.
    Nothing,
    /// The peer closed its side between two frames.
    End,
}

/// Why reading failed.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The bytes can never become a valid frame.
    Decode(DecodeError),
    /// The peer closed its side in the middle of a frame.
    CutShort,
}

impl FrameReader {
    /// Bytes asked for per `read`: a few typical frames, or a quarter of the largest.
    const READ_CHUNK_BYTES: usize = 4096;

    /// How far the read timeout may be from the one asked for and be kept. The
    /// deadlines it serves (a heartbeat each second, silence after seconds) do not
    /// mind 20 ms, and a steady flow of frames then costs a `setsockopt` every 20 ms
    /// rather than one per frame.
    const TIMEOUT_SLACK: Duration = Duration::from_millis(20);

    fn new(stream: Arc<TcpStream>) -> FrameReader {
        FrameReader {
            stream,
            buffer: Vec::new(),
            timeout: None,
        }
    }

    /// Makes the next [`FrameReader::read_frame`] return [`Received::Nothing`] if no whole
    /// frame arrives within `wait` (give or take 20 ms, see `TIMEOUT_SLACK`).
    pub fn wait_at_most(&mut self, wait: Duration) -> io::Result<()> {
        // A zero timeout means "block forever" to the socket API: never pass one.
        let wait = wait.max(Duration::from_millis(1));
        let close_enough = self
            .timeout
            .is_some_and(|set| set.abs_diff(wait) <= Self::TIMEOUT_SLACK);
        if !close_enough {
            self.stream.set_read_timeout(Some(wait))?;
            self.timeout = Some(wait);
        }
        Ok(())
    }

    /// The next whole frame, or [`Received::Nothing`] when no frame is complete after
    /// at most one `read`.
    ///
    /// One read per call, never a loop of them: the caller checks its deadlines (the
    /// hello's, the peer's silence) between calls, so a peer that trickles a frame one
    /// byte at a time cannot hold the connection open past them.
    pub fn read_frame(&mut self) -> Result<Received, ReadError> {
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
            Ok(0) => Err(ReadError::CutShort),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(self
                    .take_frame()?
                    .map_or(Received::Nothing, Received::Frame))
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                Ok(Received::Nothing)
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Removes one whole frame from the front of the buffer, if there is one.
    fn take_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        match decode_frame(&self.buffer).map_err(ReadError::Decode)? {
            Some((frame, used)) => {
                self.buffer.drain(..used);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}

/// A socket timeout shows up as `WouldBlock` on Unix and `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connected pair of loopback sockets, for tests that need real links.
#[cfg(test)]
pub(crate) fn loopback_pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test listener");
    let address = listener.local_addr().expect("the test listener's address");
    let dialed = TcpStream::connect(address).expect("connect to the test listener");
    let (accepted, _) = listener.accept().expect("accept the test connection");
    (dialed, accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn link_pair() -> ((Link, FrameReader), (Link, FrameReader)) {
        let (a, b) = loopback_pair();
        let a = Link::new(Direction::Outbound, Ipv4Addr::LOCALHOST, a).expect("link a");
        let b = Link::new(Direction::Inbound, Ipv4Addr::LOCALHOST, b).expect("link b");
        (a, b)
    }

    fn next_frame(reader: &mut FrameReader) -> Frame {
        let deadline = Instant::now() + Duration::from_secs(20);
        reader
            .wait_at_most(Duration::from_millis(100))
            .expect("set a read timeout");
        while Instant::now() < deadline {
            match reader.read_frame().expect("read a frame") {
                Received::Frame(frame) => return frame,
                Received::Nothing => {}
                Received::End => panic!("the stream ended"),
            }
        }
        panic!("no frame within 20 s");
    }

    #[test]
    fn frames_arrive_whole_and_in_the_order_they_were_queued() {
        let ((sender, _), (_, mut receiver)) = link_pair();
        for seq in 1..=100 {
            sender.queue(
                Frame::Chat {
                    seq,
                    sent_at_ms: 0,
                    text: "x".repeat(seq as usize),
                }
                .encode()
                .into(),
            );
        }
        sender.flush();
        for seq in 1..=100 {
            let Frame::Chat { seq: got, text, .. } = next_frame(&mut receiver) else {
                panic!("expected a chat frame");
            };
            assert_eq!((got, text.len()), (seq, seq as usize));
        }
    }

    #[test]
    fn an_accepted_link_writes_its_first_frame_before_anything_queued_earlier() {
        let ((_, mut dialer_reads), (acceptor, _)) = link_pair();
        acceptor.send(&Frame::Heartbeat); // queued, held back
        acceptor.send_first(&Frame::Bye);
        assert_eq!(next_frame(&mut dialer_reads), Frame::Bye);
        assert_eq!(next_frame(&mut dialer_reads), Frame::Heartbeat);
    }

    #[test]
    fn finish_sends_everything_then_the_end_of_the_stream() {
        let ((sender, _), (_, mut receiver)) = link_pair();
        sender.send(&Frame::Heartbeat);
        sender.finish();
        assert_eq!(next_frame(&mut receiver), Frame::Heartbeat);
        assert!(matches!(receiver.read_frame(), Ok(Received::End)));
    }

    #[test]
    fn a_peer_that_stops_reading_is_closed_and_no_sender_waits_forever() {
        let ((sender, _), (_receiver_link, _receiver_never_reads)) = link_pair();
        let big = Frame::Chat {
            seq: 1,
            sent_at_ms: 0,
            text: "x".repeat(4000),
        };
        // Far more than any socket buffer holds: the writes block, time out, and the
        // link closes; every `send` returns.
        let started = Instant::now();
        for _ in 0..20_000 {
            sender.send(&big);
            if sender.closed_because().is_some() {
                break;
            }
        }
        assert!(
            matches!(sender.closed_because(), Some(Closed::WriteFailed(e)) if is_timeout(e)),
            "{:?} after {:?}",
            sender.closed_because(),
            started.elapsed()
        );
    }
}
