//! # p2pchat: a chat with no server, and a lesson in sockets
//!
//! Every member of the chat is equal. There is no server to register with, so members
//! find each other by shouting on the LAN (UDP broadcast), and then talk over a TCP
//! connection to every other member: a *full mesh*. This crate is the whole program;
//! `src/main.rs` is only the command line in front of it.
//!
//! ## How a member joins
//!
//! ```text
//!   Alex (new)                        Bo (already chatting)
//!   ──────────                        ─────────────────────
//!   UDP broadcast  "P2PC, Alex" ───▶  discovery thread hears it,
//!                                     not connected to Alex yet:
//!                  ◀─────────────── TCP connect, from Bo's own address
//!                  ◀───────────────   Hello "Bo"
//!   installs Bo,
//!   prints "Bo joined chat"
//!   Hello "Alex" ──────────────────▶  installs Alex, prints "Alex joined chat"
//! ```
//!
//! Everyone who hears the announcement connects, so the newcomer ends up with one
//! connection to every member. If two members connect to each other at the same
//! moment, [`peers`] explains how both keep the same one of the two connections.
//!
//! ## How a line travels
//!
//! From Alex's keyboard to Bo's screen, file by file; every call runs one way, down:
//!
//! 1. [`terminal`]: the stdin thread reads `Hello` (in a terminal, with the line editor,
//!    `editor`) and [`commands::parse`] says it is a message, so it calls
//!    [`Node::send`].
//! 2. [`node`]: `send` takes the state lock ([`shared`]), numbers the message, and
//!    queues one `Chat` frame ([`protocol`], encoded once) on every installed
//!    connection's [`link::Link`]; it releases the lock, then writes.
//! 3. [`link`]: each link's outbox is written by whichever thread finds it idle, with
//!    no lock held while the kernel takes the bytes (TCP, `write`).
//! 4. On Bo's machine, [`connection`]: Bo's thread for Alex is asleep in `read`; it
//!    wakes, its [`link::FrameReader`] buffers bytes until a whole frame is there,
//!    records the message in the bounded log ([`history`]) and queues an
//!    [`Event::Message`] ([`event`]), a queue that never makes the network wait.
//! 5. Bo's printer thread ([`terminal`]) takes the event and prints
//!    `hh:mm:ss Alex: Hello` ([`display`]), whole ([`console`]), above the line Bo is
//!    typing (`editor`).
//!
//! ## How a member leaves
//!
//! On `/exit`, Ctrl-C or end of input it sends `Bye` and then half-closes each
//! connection (`shutdown(Write)`): the peers read everything it sent, then the
//! goodbye, and print "Alex left chat". A member that cannot say goodbye is noticed
//! anyway: a crashed process's sockets are closed by its kernel (end of stream or a
//! reset), and a pulled cable or frozen process goes silent, which the heartbeats
//! detect ([`tuning::PEER_TIMEOUT`]).
//!
//! ## Using the library
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use p2pchat::{Config, Event, Node};
//!
//! let (node, events) = Node::start(Config::new(Ipv4Addr::new(127, 0, 0, 2), "Bot"))?;
//! for event in events {
//!     if let Event::Message(message) = event {
//!         if message.text == "ping" {
//!             node.send("pong")?;
//!         }
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where things are
//!
//! From the bottom up: each module uses only those above it in this table.
//!
//! | module          | owns                                                          |
//! |-----------------|---------------------------------------------------------------|
//! | [`tuning`]      | every timing and size, with the reason for it                 |
//! | [`platform`]    | what differs between Linux, macOS and Windows, and why        |
//! | [`text`]        | the rules for names; making network text safe to show; pure   |
//! | [`clock`]       | the one clock send times are read from                        |
//! | [`protocol`]    | the bytes on the wire; pure                                   |
//! | [`config`]      | what a member needs to start                                  |
//! | [`event`]       | what a member reports, and the queue that never blocks        |
//! | [`catch_up`]    | what two members exchange after a cut; pure                   |
//! | [`history`]     | the bounded, de-duplicated message log; pure                  |
//! | [`link`]        | one TCP connection as frames: the outbox, the frame reader    |
//! | [`peers`]       | the PeerMap: one connection per member; pure                  |
//! | [`discovery`]   | finding members: UDP announcements, and whom to dial when     |
//! | [`rounds`]      | `/history` questions waiting for answers                      |
//! | [`shared`]      | what the threads share: the thread table and the lock table   |
//! | [`resume`]      | one connection's part in a catch-up after a cut               |
//! | [`connection`]  | one peer's thread: dial, hello, read loop, heartbeats, close  |
//! | [`node`]        | a member: start, send, history, leave; listener and discovery |
//! | [`commands`]    | what a typed line means; pure                                 |
//! | [`display`]     | what the user sees, sanitised; pure                           |
//! | [`console`]     | printing whole lines                                          |
//! | `editor`        | the line editor: an input line arriving lines never break     |
//! | [`terminal`]    | the interactive front end: stdin, printing, Ctrl-C            |
//! | [`cli`]         | the command line; pure                                        |
//!
//! Private items (the engine's `Shared`, `Slot`, the per-peer loop) are documented too:
//! `cargo doc --document-private-items --open` shows them.

// The only unsafe code is the few Windows console calls in `platform` and the termios
// calls in `editor` (std has neither), each allowed where it is.
#![deny(unsafe_code)]

pub mod catch_up;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod console;
pub mod discovery;
pub mod display;
#[cfg(feature = "editor")]
pub mod editor;
pub mod event;
pub mod history;
pub mod link;
pub mod node;
pub mod peers;
pub mod platform;
pub mod protocol;
pub mod resume;
pub mod rounds;
pub mod shared;
pub mod terminal;
pub mod text;
pub mod tuning;

pub use config::Config;
pub use event::{Event, Events, Member, WireDirection};
pub use node::{Node, SendError, StartError};
pub use protocol::ChatMessage;
