//! The wire format: every byte p2pchat puts on the network, and nothing else.
//!
//! This module is pure: it turns values into bytes and bytes into values, and never
//! touches a socket. That is what lets it be tested with plain byte slices, and what
//! makes the rest of the program simple: the I/O code only ever asks "is there a whole
//! frame in my buffer yet?".
//!
//! Two kinds of packet cross the network (PROTOCOL.md shows each one in hex):
//!
//! * An [`Announcement`] is one UDP datagram, broadcast to the whole LAN: "I am here,
//!   my name is …, connect to me on this port". UDP keeps datagram boundaries, so an
//!   announcement needs no length prefix; it starts with a magic word so stray traffic
//!   on the port is recognised and ignored.
//! * A [`Frame`] travels over a TCP connection between two members. TCP is a byte
//!   stream with no message boundaries: one `read` may return half a frame or three
//!   frames at once. So every frame starts with its length, and the reader keeps
//!   bytes in a buffer until [`decode_frame`] says a whole frame is there.
//!
//! Everything from the network is untrusted. The decoder checks a length against
//! [`MAX_FRAME_BYTES`] *before* it waits for or allocates that many bytes, checks every
//! string is UTF-8 and within its limit, and reports every problem as a typed
//! [`DecodeError`]. No input makes it panic.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::text::{MAX_NAME_CHARS, NameError, check_name};

/// Version of the protocol spoken by this build. Sent in every hello and announcement;
/// a member speaking another version is refused with a message that names both.
pub const PROTOCOL_VERSION: u8 = 2;

/// The first bytes of every announcement datagram. Anything else on the UDP port is
/// somebody else's traffic (or garbage) and is dropped without a reply.
pub const ANNOUNCE_MAGIC: [u8; 4] = *b"P2PC";

/// The largest frame accepted, length prefix included. The biggest legal frame (a
/// history entry with a full-size name and message) is well under this; anything
/// bigger is a broken or hostile peer, rejected before a single byte is allocated.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// The largest chat message, in bytes of UTF-8. About three screens of text: enough
/// for any line a person types, small enough that a history reply stays cheap.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// The most bytes a name (of a member or a room) may take on the wire: 32 characters of
/// up to 4 UTF-8 bytes. Within that, every name must also pass
/// [`crate::text::check_name`], which the decoder checks.
pub const MAX_NAME_BYTES: usize = MAX_NAME_CHARS * 4;

/// The largest announcement datagram accepted; a legal one is far smaller.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 512;

/// The most addresses one [`Frame::Members`] may list: as many connections as a
/// member keeps ([`crate::tuning::MAX_CONNECTIONS`]).
pub const MAX_LISTED_MEMBERS: usize = 256;

/// The most (origin, run) pairs one [`Frame::CatchUpRequest`] may name: every sender
/// a full log could hold first-hand messages from, with room to spare.
pub const MAX_CATCH_UP_SENDERS: usize = 512;

/// Bytes in a frame's length prefix (a big-endian `u32`).
const LENGTH_PREFIX_BYTES: usize = 4;

/// Identifies one chat message everywhere in the mesh, so that `/history` can merge
/// the logs of several members and show each message exactly once.
///
/// `instance` tells apart two runs of the program on the same address: a member that
/// restarts begins counting `seq` at 1 again, but under a new instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub origin: Ipv4Addr,
    pub instance: u64,
    pub seq: u64,
}

/// A chat message as it is stored and as `/history` hands it on: who wrote it, when,
/// and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: MessageId,
    pub sender_name: String,
    /// When the sender sent it: milliseconds since the Unix epoch, sender's clock.
    pub sent_at_ms: i64,
    pub text: String,
}

/// One unit of conversation on a TCP connection between two members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The first frame each side sends: who I am, and in which room. `instance` is
    /// chosen at random when the program starts, so a restarted member is recognised
    /// as a new arrival.
    Hello {
        version: u8,
        instance: u64,
        /// The TCP port this member accepts connections on, so that others can pass
        /// its address on in [`Frame::Members`].
        tcp_port: u16,
        name: String,
        room: String,
    },
    /// A line of chat. `seq` counts the sender's messages from 1.
    Chat {
        seq: u64,
        sent_at_ms: i64,
        text: String,
    },
    /// The `/hooray` greeting.
    Hooray { sent_at_ms: i64 },
    /// "Send me every message you have seen"; answered by entries then an end marker.
    HistoryRequest { request: u32 },
    /// One message of a history reply.
    HistoryEntry { request: u32, message: ChatMessage },
    /// The end of a history reply.
    HistoryEnd { request: u32 },
    /// "I am still here", sent every [`crate::tuning::HEARTBEAT_INTERVAL`].
    Heartbeat,
    /// "I am leaving the chat", the last frame a member sends before closing.
    Bye,
    /// A message for the receiver of this frame only (`/msg`). `seq` counts the
    /// sender's private messages to this receiver from 1, so that one lost in a cut
    /// can be sent again ([`Frame::CatchUpPrivate`]).
    Private {
        seq: u64,
        sent_at_ms: i64,
        text: String,
    },
    /// "From now on, call me `name`" (`/name`).
    Rename { name: String },
    /// "These are the members I am connected to": their addresses and chat ports,
    /// so that one known member is enough to find them all.
    Members { members: Vec<SocketAddrV4> },
    /// After a cut, to a member of the same run we were connected to before: "here is
    /// what I have; send me what I missed". `have` names, for each sender, the highest
    /// message number we have from it (in `seq`); `privates_received` the number of
    /// the latest private message we received from the receiver of this frame.
    CatchUpRequest {
        privates_received: u64,
        have: Vec<MessageId>,
    },
    /// One chat message the asker missed (of the sender of this frame or of another
    /// member).
    CatchUpEntry { message: ChatMessage },
    /// A private message to the asker that it missed, sent again.
    CatchUpPrivate {
        seq: u64,
        sent_at_ms: i64,
        text: String,
    },
    /// The end of a catch-up; `unavailable` messages of the sender of this frame were
    /// sent while apart but are no longer in its log.
    CatchUpEnd { unavailable: u32 },
}

/// The UDP broadcast that says "I am here".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub version: u8,
    /// The TCP port the announcer accepts members on.
    pub tcp_port: u16,
    pub instance: u64,
    pub name: String,
    /// Members only connect to members of the same room.
    pub room: String,
}

/// Why bytes could not be decoded. Every variant means the peer is broken or hostile
/// (except `Incomplete`, which is not an error in [`decode_frame`]'s API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The length prefix announces more than [`MAX_FRAME_BYTES`].
    FrameTooLarge { length: usize },
    /// The length prefix is too small to hold even a frame type.
    FrameTooSmall { length: usize },
    /// A frame type byte this version does not know.
    UnknownFrameType(u8),
    /// The frame (or datagram) ended in the middle of a field.
    Truncated,
    /// Bytes were left over after the last field.
    TrailingBytes,
    /// A text field is not valid UTF-8.
    InvalidUtf8,
    /// A text field is longer than its limit.
    TextTooLong { limit: usize },
    /// A name (of a member or a room) breaks the rules every name follows.
    InvalidName(NameError),
    /// A list holds more entries than its limit.
    ListTooLong { limit: usize },
    /// A datagram that does not start with [`ANNOUNCE_MAGIC`].
    NotAnAnnouncement,
    /// A datagram larger than [`MAX_ANNOUNCEMENT_BYTES`].
    AnnouncementTooLarge { length: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { length } => {
                write!(
                    f,
                    "frame of {length} bytes exceeds the {MAX_FRAME_BYTES}-byte limit"
                )
            }
            Self::FrameTooSmall { length } => write!(f, "frame length {length} is too small"),
            Self::UnknownFrameType(t) => write!(f, "unknown frame type 0x{t:02x}"),
            Self::Truncated => f.write_str("frame ends in the middle of a field"),
            Self::TrailingBytes => f.write_str("unexpected bytes after the last field"),
            Self::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            Self::TextTooLong { limit } => write!(f, "text longer than {limit} bytes"),
            Self::InvalidName(why) => write!(f, "a name that breaks the rules: {why}"),
            Self::ListTooLong { limit } => write!(f, "a list longer than {limit} entries"),
            Self::NotAnAnnouncement => f.write_str("not a p2pchat announcement"),
            Self::AnnouncementTooLarge { length } => {
                write!(f, "announcement of {length} bytes is too large")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

// Frame type bytes. They never change meaning; a new frame gets a new number.
const TYPE_HELLO: u8 = 0x01;
const TYPE_CHAT: u8 = 0x02;
const TYPE_HOORAY: u8 = 0x03;
const TYPE_HISTORY_REQUEST: u8 = 0x04;
const TYPE_HISTORY_ENTRY: u8 = 0x05;
const TYPE_HISTORY_END: u8 = 0x06;
const TYPE_HEARTBEAT: u8 = 0x07;
const TYPE_BYE: u8 = 0x08;
const TYPE_PRIVATE: u8 = 0x09;
const TYPE_RENAME: u8 = 0x0a;
const TYPE_MEMBERS: u8 = 0x0b;
const TYPE_CATCH_UP_REQUEST: u8 = 0x0c;
const TYPE_CATCH_UP_ENTRY: u8 = 0x0d;
const TYPE_CATCH_UP_PRIVATE: u8 = 0x0e;
const TYPE_CATCH_UP_END: u8 = 0x0f;

impl Frame {
    /// The frame as bytes ready to write to a TCP stream, length prefix included.
    ///
    /// Text longer than its limit is the caller's bug, not the network's: the public
    /// entry points ([`crate::Node::send`]) check lengths before building a frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        match self {
            Frame::Hello {
                version,
                instance,
                tcp_port,
                name,
                room,
            } => {
                body.u8(TYPE_HELLO);
                body.u8(*version);
                body.u64(*instance);
                body.u16(*tcp_port);
                body.text(name);
                body.text(room);
            }
            Frame::Chat {
                seq,
                sent_at_ms,
                text,
            } => {
                body.u8(TYPE_CHAT);
                body.u64(*seq);
                body.i64(*sent_at_ms);
                body.text(text);
            }
            Frame::Hooray { sent_at_ms } => {
                body.u8(TYPE_HOORAY);
                body.i64(*sent_at_ms);
            }
            Frame::HistoryRequest { request } => {
                body.u8(TYPE_HISTORY_REQUEST);
                body.u32(*request);
            }
            Frame::HistoryEntry { request, message } => {
                body.u8(TYPE_HISTORY_ENTRY);
                body.u32(*request);
                body.message(message);
            }
            Frame::HistoryEnd { request } => {
                body.u8(TYPE_HISTORY_END);
                body.u32(*request);
            }
            Frame::Heartbeat => body.u8(TYPE_HEARTBEAT),
            Frame::Bye => body.u8(TYPE_BYE),
            Frame::Private {
                seq,
                sent_at_ms,
                text,
            } => {
                body.u8(TYPE_PRIVATE);
                body.u64(*seq);
                body.i64(*sent_at_ms);
                body.text(text);
            }
            Frame::Rename { name } => {
                body.u8(TYPE_RENAME);
                body.text(name);
            }
            Frame::Members { members } => {
                body.u8(TYPE_MEMBERS);
                body.u16(members.len().min(MAX_LISTED_MEMBERS) as u16);
                for member in members.iter().take(MAX_LISTED_MEMBERS) {
                    body.bytes(&member.ip().octets());
                    body.u16(member.port());
                }
            }
            Frame::CatchUpRequest {
                privates_received,
                have,
            } => {
                body.u8(TYPE_CATCH_UP_REQUEST);
                body.u64(*privates_received);
                body.u16(have.len().min(MAX_CATCH_UP_SENDERS) as u16);
                for id in have.iter().take(MAX_CATCH_UP_SENDERS) {
                    body.bytes(&id.origin.octets());
                    body.u64(id.instance);
                    body.u64(id.seq);
                }
            }
            Frame::CatchUpEntry { message } => {
                body.u8(TYPE_CATCH_UP_ENTRY);
                body.message(message);
            }
            Frame::CatchUpPrivate {
                seq,
                sent_at_ms,
                text,
            } => {
                body.u8(TYPE_CATCH_UP_PRIVATE);
                body.u64(*seq);
                body.i64(*sent_at_ms);
                body.text(text);
            }
            Frame::CatchUpEnd { unavailable } => {
                body.u8(TYPE_CATCH_UP_END);
                body.u32(*unavailable);
            }
        }
        let body = body.into_bytes();
        let mut frame = Vec::with_capacity(LENGTH_PREFIX_BYTES + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    }
}

/// Looks for one whole frame at the start of `buffer`.
///
/// ```
/// use p2pchat::protocol::{decode_frame, Frame};
/// let bytes = Frame::Heartbeat.encode();
/// assert_eq!(bytes, [0, 0, 0, 1, 0x07]); // length 1, type 07
/// assert_eq!(decode_frame(&bytes[..3]), Ok(None)); // not all there yet: read more
/// assert_eq!(decode_frame(&bytes), Ok(Some((Frame::Heartbeat, 5))));
/// ```
///
/// * `Ok(Some((frame, used)))`: a frame, and how many bytes of `buffer` it took.
/// * `Ok(None)`: the frame is not complete yet; read more bytes and call again.
/// * `Err(_)`: the bytes can never become a valid frame; close the connection.
///
/// The length is checked before waiting for the body, so a peer announcing a
/// 4 GiB frame is refused at once instead of being waited for.
pub fn decode_frame(buffer: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
    let Some(prefix) = buffer.get(..LENGTH_PREFIX_BYTES) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if length > MAX_FRAME_BYTES - LENGTH_PREFIX_BYTES {
        return Err(DecodeError::FrameTooLarge {
            length: length.saturating_add(LENGTH_PREFIX_BYTES),
        });
    }
    if length == 0 {
        return Err(DecodeError::FrameTooSmall { length });
    }
    let total = LENGTH_PREFIX_BYTES + length;
    let Some(body) = buffer.get(LENGTH_PREFIX_BYTES..total) else {
        return Ok(None);
    };
    let frame = decode_body(body)?;
    Ok(Some((frame, total)))
}

fn decode_body(body: &[u8]) -> Result<Frame, DecodeError> {
    let mut r = Reader::new(body);
    let frame = match r.u8()? {
        TYPE_HELLO => Frame::Hello {
            version: r.u8()?,
            instance: r.u64()?,
            tcp_port: r.u16()?,
            name: r.name()?,
            room: r.name()?,
        },
        TYPE_CHAT => Frame::Chat {
            seq: r.u64()?,
            sent_at_ms: r.i64()?,
            text: r.text(MAX_MESSAGE_BYTES)?,
        },
        TYPE_HOORAY => Frame::Hooray {
            sent_at_ms: r.i64()?,
        },
        TYPE_HISTORY_REQUEST => Frame::HistoryRequest { request: r.u32()? },
        TYPE_HISTORY_ENTRY => Frame::HistoryEntry {
            request: r.u32()?,
            message: r.message()?,
        },
        TYPE_HISTORY_END => Frame::HistoryEnd { request: r.u32()? },
        TYPE_HEARTBEAT => Frame::Heartbeat,
        TYPE_BYE => Frame::Bye,
        TYPE_PRIVATE => Frame::Private {
            seq: r.u64()?,
            sent_at_ms: r.i64()?,
            text: r.text(MAX_MESSAGE_BYTES)?,
        },
        TYPE_RENAME => Frame::Rename { name: r.name()? },
        TYPE_MEMBERS => {
            let count = r.count(MAX_LISTED_MEMBERS)?;
            let mut members = Vec::with_capacity(count);
            for _ in 0..count {
                let ip = Ipv4Addr::from(r.u32()?);
                members.push(SocketAddrV4::new(ip, r.u16()?));
            }
            Frame::Members { members }
        }
        TYPE_CATCH_UP_REQUEST => {
            let privates_received = r.u64()?;
            let count = r.count(MAX_CATCH_UP_SENDERS)?;
            let mut have = Vec::with_capacity(count);
            for _ in 0..count {
                have.push(MessageId {
                    origin: Ipv4Addr::from(r.u32()?),
                    instance: r.u64()?,
                    seq: r.u64()?,
                });
            }
            Frame::CatchUpRequest {
                privates_received,
                have,
            }
        }
        TYPE_CATCH_UP_ENTRY => Frame::CatchUpEntry {
            message: r.message()?,
        },
        TYPE_CATCH_UP_PRIVATE => Frame::CatchUpPrivate {
            seq: r.u64()?,
            sent_at_ms: r.i64()?,
            text: r.text(MAX_MESSAGE_BYTES)?,
        },
        TYPE_CATCH_UP_END => Frame::CatchUpEnd {
            unavailable: r.u32()?,
        },
        unknown => return Err(DecodeError::UnknownFrameType(unknown)),
    };
    r.finish()?;
    Ok(frame)
}

impl Announcement {
    /// The announcement as one datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&ANNOUNCE_MAGIC);
        w.u8(self.version);
        w.u16(self.tcp_port);
        w.u64(self.instance);
        w.text(&self.name);
        w.text(&self.room);
        w.into_bytes()
    }

    /// Parses one received datagram. Anything that is not a well-formed announcement
    /// (another program's traffic, garbage, a forged packet) is an error.
    pub fn decode(datagram: &[u8]) -> Result<Announcement, DecodeError> {
        if datagram.len() > MAX_ANNOUNCEMENT_BYTES {
            return Err(DecodeError::AnnouncementTooLarge {
                length: datagram.len(),
            });
        }
        let mut r = Reader::new(datagram);
        if r.take(ANNOUNCE_MAGIC.len()) != Ok(&ANNOUNCE_MAGIC[..]) {
            return Err(DecodeError::NotAnAnnouncement);
        }
        let announcement = Announcement {
            version: r.u8()?,
            tcp_port: r.u16()?,
            instance: r.u64()?,
            name: r.name()?,
            room: r.name()?,
        };
        r.finish()?;
        Ok(announcement)
    }
}

/// Appends big-endian fields to a byte vector.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    fn bytes(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }
    /// Text is a `u16` byte count then UTF-8. Callers keep text within its limit,
    /// which is far below `u16::MAX`; the `min` only guards against misuse.
    fn text(&mut self, value: &str) {
        let length = value.len().min(u16::MAX as usize);
        self.u16(length as u16);
        self.bytes(&value.as_bytes()[..length]);
    }
    /// A message as history and catch-up entries carry it: origin, instance, seq,
    /// sent_at, sender name, text.
    fn message(&mut self, message: &ChatMessage) {
        self.bytes(&message.id.origin.octets());
        self.u64(message.id.instance);
        self.u64(message.id.seq);
        self.i64(message.sent_at_ms);
        self.text(&message.sender_name);
        self.text(&message.text);
    }
    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads big-endian fields from a byte slice, never past its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }
    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < count {
            return Err(DecodeError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A length-prefixed UTF-8 string of at most `limit` bytes. The limit is checked
    /// before the bytes are looked at, so an absurd length costs nothing.
    fn text(&mut self, limit: usize) -> Result<String, DecodeError> {
        let length = self.u16()? as usize;
        if length > limit {
            return Err(DecodeError::TextTooLong { limit });
        }
        let bytes = self.take(length)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(text.to_owned())
    }
    /// A list's entry count, refused past `limit` before a single entry is read (the
    /// caller allocates for that many).
    fn count(&mut self, limit: usize) -> Result<usize, DecodeError> {
        let count = usize::from(self.u16()?);
        if count > limit {
            return Err(DecodeError::ListTooLong { limit });
        }
        Ok(count)
    }
    /// A message as written by `Writer::message`.
    fn message(&mut self) -> Result<ChatMessage, DecodeError> {
        Ok(ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::from(self.u32()?),
                instance: self.u64()?,
                seq: self.u64()?,
            },
            sent_at_ms: self.i64()?,
            sender_name: self.name()?,
            text: self.text(MAX_MESSAGE_BYTES)?,
        })
    }
    /// A name: text of at most [`MAX_NAME_BYTES`] that passes [`check_name`], the same
    /// rule a name typed on the command line follows.
    fn name(&mut self) -> Result<String, DecodeError> {
        let name = self.text(MAX_NAME_BYTES)?;
        check_name(&name).map_err(DecodeError::InvalidName)?;
        Ok(name)
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_message() -> ChatMessage {
        ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(198, 18, 0, 7),
                instance: 0x0102_0304_0506_0708,
                seq: 42,
            },
            sender_name: "Zoë".into(),
            sent_at_ms: 1_764_000_000_123,
            text: "Hello, it's ME!".into(),
        }
    }

    fn every_kind_of_frame() -> Vec<Frame> {
        vec![
            Frame::Hello {
                version: PROTOCOL_VERSION,
                instance: u64::MAX,
                tcp_port: 24242,
                name: "Alex Ünïcode 😀".into(),
                room: "lobby".into(),
            },
            Frame::Chat {
                seq: 1,
                sent_at_ms: -5,
                text: "hi".into(),
            },
            Frame::Chat {
                seq: 2,
                sent_at_ms: 0,
                text: "x".repeat(MAX_MESSAGE_BYTES),
            },
            Frame::Hooray { sent_at_ms: 99 },
            Frame::HistoryRequest { request: 7 },
            Frame::HistoryEntry {
                request: 7,
                message: sample_message(),
            },
            Frame::HistoryEnd { request: 7 },
            Frame::Heartbeat,
            Frame::Bye,
            Frame::Private {
                seq: 1,
                sent_at_ms: 5,
                text: "just for you".into(),
            },
            Frame::Rename {
                name: "Alexander".into(),
            },
            Frame::Members {
                members: vec![
                    SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 24242),
                    SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 7), 5000),
                ],
            },
            Frame::CatchUpRequest {
                privates_received: 3,
                have: vec![sample_message().id],
            },
            Frame::CatchUpEntry {
                message: sample_message(),
            },
            Frame::CatchUpPrivate {
                seq: 4,
                sent_at_ms: 9,
                text: "missed you".into(),
            },
            Frame::CatchUpEnd { unavailable: 12 },
        ]
    }

    #[test]
    fn lists_are_refused_past_their_limit_before_any_entry_is_read() {
        let full = Frame::Members {
            members: vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1); MAX_LISTED_MEMBERS],
        };
        assert!(decode_frame(&full.encode()).is_ok());
        let mut over = full.encode();
        // The count field follows the length prefix and the type byte.
        over[5..7].copy_from_slice(&(MAX_LISTED_MEMBERS as u16 + 1).to_be_bytes());
        assert_eq!(
            decode_frame(&over),
            Err(DecodeError::ListTooLong {
                limit: MAX_LISTED_MEMBERS
            })
        );
        let mut request = Frame::CatchUpRequest {
            privates_received: 0,
            have: Vec::new(),
        }
        .encode();
        request[13..15].copy_from_slice(&(MAX_CATCH_UP_SENDERS as u16 + 1).to_be_bytes());
        assert_eq!(
            decode_frame(&request),
            Err(DecodeError::ListTooLong {
                limit: MAX_CATCH_UP_SENDERS
            })
        );
    }

    #[test]
    fn the_largest_catch_up_request_fits_a_frame() {
        let have = vec![sample_message().id; MAX_CATCH_UP_SENDERS];
        let request = Frame::CatchUpRequest {
            privates_received: u64::MAX,
            have,
        };
        assert!(request.encode().len() <= MAX_FRAME_BYTES);
    }

    #[test]
    fn every_frame_survives_a_round_trip() {
        for frame in every_kind_of_frame() {
            let bytes = frame.encode();
            assert_eq!(
                decode_frame(&bytes),
                Ok(Some((frame.clone(), bytes.len()))),
                "{frame:?}"
            );
        }
    }

    #[test]
    fn the_largest_legal_frame_fits_the_frame_limit() {
        let mut message = sample_message();
        message.sender_name = "😀".repeat(MAX_NAME_CHARS);
        message.text = "😀".repeat(MAX_MESSAGE_BYTES / 4);
        let entry = Frame::HistoryEntry {
            request: u32::MAX,
            message,
        };
        assert!(entry.encode().len() <= MAX_FRAME_BYTES);
    }

    #[test]
    fn a_frame_split_anywhere_is_incomplete_until_its_last_byte() {
        let frames = every_kind_of_frame();
        let stream: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        // Feed the stream one byte at a time, as a slow TCP connection might.
        let mut buffer = Vec::new();
        let mut decoded = Vec::new();
        for byte in stream {
            buffer.push(byte);
            while let Some((frame, used)) = decode_frame(&buffer).expect("valid stream") {
                buffer.drain(..used);
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
        assert!(buffer.is_empty());
    }

    #[test]
    fn two_frames_in_one_read_are_decoded_one_after_the_other() {
        let mut bytes = Frame::Heartbeat.encode();
        bytes.extend(Frame::Bye.encode());
        let (first, used) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!(first, Frame::Heartbeat);
        let (second, _) = decode_frame(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second, Frame::Bye);
    }

    #[test]
    fn a_huge_length_prefix_is_refused_before_waiting_for_the_body() {
        let bytes = u32::MAX.to_be_bytes();
        assert!(matches!(
            decode_frame(&bytes),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        let just_over = ((MAX_FRAME_BYTES - LENGTH_PREFIX_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            decode_frame(&just_over),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn a_zero_length_frame_is_refused() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 0]),
            Err(DecodeError::FrameTooSmall { length: 0 })
        );
    }

    #[test]
    fn an_unknown_frame_type_is_refused() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 1, 0x7f]),
            Err(DecodeError::UnknownFrameType(0x7f))
        );
    }

    #[test]
    fn a_field_cut_short_inside_a_complete_frame_is_truncated() {
        // Length says 3 bytes: a chat type byte and two bytes of an 8-byte seq.
        assert_eq!(
            decode_frame(&[0, 0, 0, 3, TYPE_CHAT, 0, 0]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn bytes_after_the_last_field_are_refused() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 2, TYPE_BYE, 0]),
            Err(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut frame = Frame::Rename { name: "ab".into() }.encode();
        let last = frame.len() - 1;
        frame[last] = 0xff;
        assert_eq!(decode_frame(&frame), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn names_on_the_wire_follow_the_same_rule_as_typed_names() {
        let hello = |name: &str, room: &str| {
            Frame::Hello {
                version: 1,
                instance: 1,
                tcp_port: 24242,
                name: name.into(),
                room: room.into(),
            }
            .encode()
        };
        let longest = "😀".repeat(MAX_NAME_CHARS);
        assert!(decode_frame(&hello(&longest, &longest)).is_ok());
        let too_long = "x".repeat(MAX_NAME_CHARS + 1);
        let cases = [
            (hello("", "lobby"), NameError::Empty),
            (hello(&too_long, "lobby"), NameError::TooLong { chars: 33 }),
            (hello("Eve\x1b[2J", "lobby"), NameError::ControlCharacter),
            (hello("Alex", ""), NameError::Empty),
            (hello("Alex", &too_long), NameError::TooLong { chars: 33 }),
            (Frame::Rename { name: "".into() }.encode(), NameError::Empty),
        ];
        for (bytes, why) in cases {
            assert_eq!(decode_frame(&bytes), Err(DecodeError::InvalidName(why)));
        }
        let mut entry = sample_message();
        entry.sender_name = too_long.clone();
        let entry = Frame::HistoryEntry {
            request: 1,
            message: entry,
        };
        assert!(matches!(
            decode_frame(&entry.encode()),
            Err(DecodeError::InvalidName(_))
        ));
        let announcement = Announcement {
            version: 1,
            tcp_port: 1,
            instance: 1,
            name: String::new(),
            room: "lobby".into(),
        };
        assert_eq!(
            Announcement::decode(&announcement.encode()),
            Err(DecodeError::InvalidName(NameError::Empty))
        );
    }

    #[test]
    fn a_name_longer_than_the_limit_is_refused() {
        let frame = Frame::Hello {
            version: 1,
            instance: 1,
            tcp_port: 24242,
            name: "n".repeat(MAX_NAME_BYTES + 1),
            room: "lobby".into(),
        }
        .encode();
        assert_eq!(
            decode_frame(&frame),
            Err(DecodeError::TextTooLong {
                limit: MAX_NAME_BYTES
            })
        );
    }

    #[test]
    fn announcements_survive_a_round_trip() {
        let announcement = Announcement {
            version: PROTOCOL_VERSION,
            tcp_port: 24242,
            instance: 77,
            name: "Alex".into(),
            room: "lobby".into(),
        };
        assert_eq!(
            Announcement::decode(&announcement.encode()),
            Ok(announcement)
        );
    }

    /// The examples in PROTOCOL.md, byte for byte.
    /// Every frame shown in PROTOCOL.md, with the hex shown there.
    fn documented_examples() -> Vec<(Frame, &'static str)> {
        const INSTANCE: u64 = 0x0123_4567_89ab_cdef;
        const SENT_AT_MS: i64 = 1_795_599_000_000;
        let alex_said_hi = ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(198, 18, 0, 2),
                instance: INSTANCE,
                seq: 1,
            },
            sender_name: "Alex".into(),
            sent_at_ms: SENT_AT_MS,
            text: "Hi".into(),
        };
        vec![
            (
                Frame::Hello {
                    version: 2,
                    instance: INSTANCE,
                    tcp_port: 24242,
                    name: "Alex".into(),
                    room: "lobby".into(),
                },
                "00 00 00 19 01 02 01 23 45 67 89 ab cd ef 5e b2 00 04 41 6c 65 78 \
                 00 05 6c 6f 62 62 79",
            ),
            (
                Frame::Chat {
                    seq: 1,
                    sent_at_ms: SENT_AT_MS,
                    text: "Hello, it's ME!".into(),
                },
                "00 00 00 22 02 00 00 00 00 00 00 00 01 00 00 01 a2 12 0a 61 c0 00 0f \
                 48 65 6c 6c 6f 2c 20 69 74 27 73 20 4d 45 21",
            ),
            (
                Frame::Hooray {
                    sent_at_ms: SENT_AT_MS,
                },
                "00 00 00 09 03 00 00 01 a2 12 0a 61 c0",
            ),
            (
                Frame::HistoryRequest { request: 7 },
                "00 00 00 05 04 00 00 00 07",
            ),
            (
                Frame::HistoryEntry {
                    request: 7,
                    message: alex_said_hi.clone(),
                },
                "00 00 00 2b 05 00 00 00 07 c6 12 00 02 01 23 45 67 89 ab cd ef \
                 00 00 00 00 00 00 00 01 00 00 01 a2 12 0a 61 c0 00 04 41 6c 65 78 00 02 48 69",
            ),
            (
                Frame::HistoryEnd { request: 7 },
                "00 00 00 05 06 00 00 00 07",
            ),
            (Frame::Heartbeat, "00 00 00 01 07"),
            (Frame::Bye, "00 00 00 01 08"),
            (
                Frame::Private {
                    seq: 1,
                    sent_at_ms: SENT_AT_MS,
                    text: "psst".into(),
                },
                "00 00 00 17 09 00 00 00 00 00 00 00 01 00 00 01 a2 12 0a 61 c0 \
                 00 04 70 73 73 74",
            ),
            (
                Frame::Rename {
                    name: "Alexander".into(),
                },
                "00 00 00 0c 0a 00 09 41 6c 65 78 61 6e 64 65 72",
            ),
            (
                Frame::Members {
                    members: vec![
                        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 24242),
                        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), 24242),
                    ],
                },
                "00 00 00 0f 0b 00 02 c6 12 00 02 5e b2 c6 12 00 03 5e b2",
            ),
            (
                Frame::CatchUpRequest {
                    privates_received: 2,
                    have: vec![alex_said_hi.id],
                },
                "00 00 00 1f 0c 00 00 00 00 00 00 00 02 00 01 c6 12 00 02 \
                 01 23 45 67 89 ab cd ef 00 00 00 00 00 00 00 01",
            ),
            (
                Frame::CatchUpEntry {
                    message: alex_said_hi,
                },
                "00 00 00 27 0d c6 12 00 02 01 23 45 67 89 ab cd ef 00 00 00 00 00 00 00 01 \
                 00 00 01 a2 12 0a 61 c0 00 04 41 6c 65 78 00 02 48 69",
            ),
            (
                Frame::CatchUpPrivate {
                    seq: 3,
                    sent_at_ms: SENT_AT_MS,
                    text: "psst".into(),
                },
                "00 00 00 17 0e 00 00 00 00 00 00 00 03 00 00 01 a2 12 0a 61 c0 \
                 00 04 70 73 73 74",
            ),
            (
                Frame::CatchUpEnd { unavailable: 12 },
                "00 00 00 05 0f 00 00 00 0c",
            ),
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        pairs.join(" ")
    }

    /// PROTOCOL.md's hex, one example per code block, as one line each.
    fn hex_in_protocol_md() -> String {
        include_str!("../PROTOCOL.md")
            .split("```")
            .skip(1)
            .step_by(2)
            .map(|block| {
                let hex_lines: Vec<&str> = block
                    .lines()
                    .filter(|line| {
                        let line = line.trim();
                        !line.is_empty()
                            && line.split(' ').all(|pair| {
                                pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit())
                            })
                    })
                    .collect();
                hex_lines.join(" ")
            })
            .collect::<Vec<String>>()
            .join("\n")
    }

    #[test]
    fn the_examples_in_protocol_md_are_exact() {
        let documented = hex_in_protocol_md();
        let documented: Vec<&str> = documented.lines().collect();
        for (frame, hex_shown) in documented_examples() {
            let shown = hex_shown.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(hex(&frame.encode()), shown, "{frame:?}");
            assert!(
                documented.contains(&shown.as_str()),
                "PROTOCOL.md lacks the example for {frame:?}: {shown}"
            );
        }
        let announcement = Announcement {
            version: 2,
            tcp_port: 24242,
            instance: 0x0123_4567_89ab_cdef,
            name: "Alex".into(),
            room: "lobby".into(),
        };
        let shown =
            "50 32 50 43 02 5e b2 01 23 45 67 89 ab cd ef 00 04 41 6c 65 78 00 05 6c 6f 62 62 79";
        assert_eq!(hex(&announcement.encode()), shown);
        assert!(
            documented.contains(&shown),
            "PROTOCOL.md lacks the announcement"
        );
    }

    #[test]
    fn foreign_datagrams_are_not_announcements() {
        assert_eq!(
            Announcement::decode(b"GET / HTTP/1.1\r\n\r\n"),
            Err(DecodeError::NotAnAnnouncement)
        );
        assert_eq!(
            Announcement::decode(b""),
            Err(DecodeError::NotAnAnnouncement)
        );
        assert_eq!(
            Announcement::decode(b"P2PC\x01"),
            Err(DecodeError::Truncated)
        );
        assert!(matches!(
            Announcement::decode(&[0; MAX_ANNOUNCEMENT_BYTES + 1]),
            Err(DecodeError::AnnouncementTooLarge { .. })
        ));
    }

    /// A small deterministic generator, so the fuzz-style tests need no dependency and
    /// fail the same way every run.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoders() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let length = (rng.next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
            // Half the time, make the length prefix plausible so the body parser is
            // exercised too, not just the length check.
            if bytes.len() >= 5 && rng.next().is_multiple_of(2) {
                let body = (bytes.len() - 4) as u32;
                bytes[..4].copy_from_slice(&body.to_be_bytes());
                bytes[4] = (rng.next() % 12) as u8;
            }
            let _ = decode_frame(&bytes);
            let _ = Announcement::decode(&bytes);
        }
    }

    #[test]
    fn every_corruption_of_a_valid_frame_is_a_frame_or_a_typed_error() {
        let mut rng = XorShift(12345);
        for frame in every_kind_of_frame() {
            let valid = frame.encode();
            for _ in 0..2_000 {
                let mut bytes = valid.clone();
                let position = (rng.next() as usize) % bytes.len();
                bytes[position] = rng.next() as u8;
                let cut = (rng.next() as usize) % (bytes.len() + 1);
                if let Ok(Some((_, used))) = decode_frame(&bytes[..cut]) {
                    assert!(used <= cut);
                }
            }
        }
    }
}
