//! Every timing and size that shapes how a member behaves on the network, in one place,
//! each with the reason for its value. (The limits that are part of the wire format
//! itself, such as the largest frame, live in `protocol.rs`.)
//!
//! A LAN has round-trip times well under a millisecond, so the waits below are not
//! about speed: they are about deciding, in bounded time, that something is *gone*.

use std::time::Duration;

/// The port used for both the UDP announcements and the TCP connections when `--port`
/// is not given. Below Linux's ephemeral range (32768–60999), so it never collides
/// with the source port of some outgoing connection.
pub const DEFAULT_PORT: u16 = 24242;

/// The room a member joins when `--room` is not given. Members of different rooms
/// never connect, so a class of twenty groups can run twenty chats on one LAN.
pub const DEFAULT_ROOM: &str = "lobby";

/// When a member announces itself after starting, counted from its start. Broadcasts
/// are not acknowledged and a busy Wi-Fi drops some, so one is not enough; three within
/// the first second make a lost start-up announcement rare without flooding anyone.
pub const STARTUP_ANNOUNCEMENTS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_millis(1000),
];

/// After start-up, how often a member announces itself again. This is what lets a
/// member whose every start-up announcement was lost, or whose cable was out, join
/// later: the bound on rejoining after a network fault. One small datagram per member
/// every two seconds is nothing on a LAN.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);

/// The shortest time between two connection attempts to the same address. Every
/// announcement from an unconnected member triggers a connect; without this, a flood of
/// (possibly forged) announcements would make us dial in a tight loop.
pub const REDIAL_INTERVAL: Duration = Duration::from_millis(900);

/// How often an address that another member's list named (rather than the address's
/// own announcement, or the user) may be dialed. A list may be a lie naming machines
/// that are not members: this bounds what a liar can make each member do to any one
/// third machine to one connection attempt a minute.
pub const LISTED_REDIAL_INTERVAL: Duration = Duration::from_secs(60);

/// How many addresses from lists may be dialed at once: a newcomer told of a whole
/// chat at once dials it at once (32 members, and twice that to spare).
pub const LISTED_DIAL_BURST: u32 = 64;

/// After the burst, how many addresses from lists may be dialed per second: enough for
/// the largest mesh (256) to form in half a minute, too few to make a flood.
pub const LISTED_DIALS_PER_SECOND: u32 = 8;

/// Where announcements arrive (another member's within [`BROADCAST_HEARD_WINDOW`]), or
/// the list came from a member that dialed us, addresses from lists are dialed this
/// long after the list came, if still needed: in a chat starting all at once,
/// announcements connect nearly every pair by then, and a list dial made at once would
/// mostly race the other side's dial, making a second connection for one of the two to
/// close (measured: a third more connections for 64 members started at once).
/// Otherwise (a list from the member given with `--peer`, broadcast filtered), lists
/// are dialed at once.
pub const LISTED_DIAL_DELAY: Duration = Duration::from_millis(500);

/// How recent another member's announcement must be for broadcast to count as
/// reaching us: two announcement intervals.
pub const BROADCAST_HEARD_WINDOW: Duration = Duration::from_secs(4);

/// How many listed addresses may wait for [`LISTED_DIAL_DELAY`] at once; past that,
/// they are dialed at once, as where no announcement arrives.
pub const LISTED_WAITING_MAX: usize = 256;

/// How long a TCP connect may take before the address is given up until its next
/// announcement. On a LAN a connect takes well under a millisecond; the slack covers
/// a lost SYN, which the kernel resends after one second.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a new connection may take to say hello. A connection that says nothing
/// (a port scanner, a stuck client) must not hold a thread for longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often a member tells each peer "I am still here". Cheap (five bytes a second
/// per peer), and the unit in which silence is measured.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// A peer silent for this long is gone: a pulled cable, a machine that sleeps, a
/// frozen process. TCP itself would not notice for many minutes, because nothing is
/// ever acknowledged or refused on a dead link. Four missed heartbeats tolerate a few
/// lost packets (TCP resends them) but still notice a departure within seconds.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(4);

/// How long one write to a peer may block. A write blocks only when the peer's receive
/// window and our send buffer are both full, which means it has not read for a long
/// time: such a peer is dropped rather than allowed to hold up the chat.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// When leaving, how long to wait for peers to close their side after our goodbye, so
/// that every frame we sent is read before the connection goes away.
pub const LEAVE_LINGER: Duration = Duration::from_millis(500);

/// When the terminal front end exits, how long it waits for the events already
/// received to be printed. Normally they are at once; the bound is for a stdout that
/// nobody reads (a stalled pipe), which must not keep the process from exiting.
pub const PRINTER_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Enter in the line editor waits for a line the printer thread began to hand
/// to the editor, so that it shows above the prompt rather than on the end of the input
/// line. A hand-over takes microseconds, or lasts until the next prompt when the
/// editor's one-line queue is full (during a paste); one older than this is that case,
/// and is not waited for. 20 ms covers a thread that the scheduler set aside once on a
/// busy machine, and is below what a person notices after Enter (see `editor.rs`).
pub const PRINT_HANDOVER_GRACE: Duration = Duration::from_millis(20);

/// How long `/history` waits for the members' replies before showing what it has.
pub const HISTORY_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How far (in milliseconds) a new message's send time may be moved past this
/// machine's clock so that it sorts after the latest message heard from another member:
/// a bot's reply within the same millisecond, or from a clock a little behind, still
/// comes after the question. A clock further behind than this is shown as it is, not
/// hidden. Our own messages never move each other (see `Shared::send_time`).
pub const MAX_CLOCK_NUDGE_MS: i64 = 1000;

/// How many messages each member remembers for `/history`. The earliest to arrive are
/// forgotten first (see `history.rs` for what a reply may and may not push out), so
/// memory stays bounded however long the chat runs (about 4 MiB at most).
pub const HISTORY_CAPACITY: usize = 1000;

/// How long the catch-ups that began together wait for each other, so that their lines
/// are shown as one batch in send order (see `catch_up.rs`). An answer slower than this
/// (a big one on a slow link) is shown on its own when it ends: nothing is lost.
pub const CATCH_UP_PATIENCE: Duration = Duration::from_secs(3);

/// How many of the private messages we sent to one member are kept, to send again
/// when a cut may have lost them. A hundred is far more than a conversation sends in
/// the seconds a cut lasts, and costs at most 400 KiB per member.
pub const PRIVATES_KEPT_PER_MEMBER: usize = 100;

/// The most connections (established or still saying hello) a member keeps at once.
/// Each costs a thread, so this bounds the threads a stranger can make us start.
pub const MAX_CONNECTIONS: usize = 256;

/// Stack size of every thread p2pchat starts (connections, listener, discovery,
/// printer). They keep their buffers on the heap and make only shallow calls, so Rust's
/// 2 MiB default would be address space wasted up to 260 times over; 256 KiB leaves a
/// wide margin (and only the pages a thread touches cost memory).
pub const THREAD_STACK_BYTES: usize = 256 * 1024;

/// How much memory (roughly, in bytes) the events waiting for the front end may take.
/// The network threads never wait for the screen: when the front end falls behind (a
/// paused terminal, a slow pipe, a busy bot) events queue up to this budget, and past
/// it they are dropped and counted, and the front end is told how many. 4 MiB holds
/// about 20,000 typical lines, minutes of the busiest chat, on the smallest machine.
pub const EVENT_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// How many bytes may wait to be written to one peer before a sender waits for the
/// writer to make room. Far more than a burst of typing; less than a pasted book, which
/// then flows at the speed of the network instead of piling up in memory. A whole
/// `/history` reply (up to about 4.3 MB) passes in a few of these steps.
pub const OUTBOX_HIGH_WATER_BYTES: usize = 1024 * 1024;

/// The shortest time between two warnings of one kind that can come in floods (refused
/// connections, announcers that cannot be reached): one line a second tells the user
/// what is happening without burying the chat.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(1);
