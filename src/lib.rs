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
//! The user's thread reads a line ([`terminal`]), [`commands`] decides it is a message,
//! and [`Node::send`] writes one `Chat` frame ([`protocol`]) to each installed
//! connection ([`link::Link`]). On every other member, that connection's own
//! thread reads bytes until a whole frame is buffered, records the message in the
//! bounded log ([`history`]) and hands an [`Event`] to the front end, which prints
//! `hh:mm:ss Alex: text` ([`display`]).
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
//! | module         | owns                                                           |
//! |----------------|----------------------------------------------------------------|
//! | [`protocol`]   | the bytes on the wire; pure                                    |
//! | [`discovery`]  | UDP: broadcasting announcements and hearing them               |
//! | [`connection`] | one TCP connection: dial, hello, read loop, heartbeats, close  |
//! | [`peers`]      | the PeerMap: one connection per member                         |
//! | [`node`]       | a member: threads, events, sending, history, leaving           |
//! | [`history`]    | the bounded, de-duplicated message log; pure                   |
//! | [`commands`]   | what a typed line means; pure                                  |
//! | [`display`]    | what the user sees, sanitised; pure                            |
//! | [`terminal`]   | the interactive front end: stdin, printing, Ctrl-C             |
//! | [`cli`]        | the command line; pure                                         |
//! | [`tuning`]     | every timing and size, with the reason for it                  |

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connection;
pub mod console;
pub mod discovery;
pub mod display;
pub mod event;
pub mod history;
pub mod link;
pub mod node;
pub mod peers;
pub mod protocol;
pub mod rounds;
pub mod shared;
pub mod terminal;
pub mod text;
pub mod tuning;

pub use config::Config;
pub use event::{Event, Events, Member, WireDirection};
pub use node::{Node, SendError, StartError};
pub use protocol::ChatMessage;
