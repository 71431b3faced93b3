//! What a member needs to start: its address, its name, and the chat it joins.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::tuning::{DEFAULT_PORT, DEFAULT_ROOM};

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
    /// Members to connect to without waiting for their announcements (`--peer`): for
    /// networks where broadcast does not reach. Dialed until connected.
    pub peers: Vec<SocketAddrV4>,
    /// Report every frame sent and received as an [`crate::Event::Wire`] (for watching
    /// the protocol at work; heartbeats included).
    pub trace_frames: bool,
}

impl Config {
    /// A config with the default port, broadcast address and room.
    pub fn new(host: Ipv4Addr, name: impl Into<String>) -> Config {
        Config {
            host,
            name: name.into(),
            port: DEFAULT_PORT,
            broadcast: Ipv4Addr::BROADCAST,
            room: DEFAULT_ROOM.to_owned(),
            peers: Vec::new(),
            trace_frames: false,
        }
    }
}
