//! Watch the protocol at work: three members in one process, every frame printed as it
//! crosses, with its bytes.
//!
//! ```sh
//! cargo run --example demo                 # on 127.0.0.1, .2, .3, port 24243
//! cargo run --example demo -- --heartbeats # also show the heartbeats
//! ```
//!
//! The three members are real: each has its own address on the loopback interface,
//! finds the others by UDP broadcast and talks to them over TCP, exactly as three
//! `p2pchat` processes would. [`Config::trace_frames`] makes each report every frame
//! it sends and receives, so the demo shows each frame twice: once leaving its sender,
//! once arriving. Follow one message from `Chat` on the way out to `Chat` on the way in.

use p2pchat::Events;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use p2pchat::display::{self, Roster, Style};
use p2pchat::protocol::Frame;
use p2pchat::{Config, Event, Node, WireDirection};

/// Not the chat's default port, so the demo never mixes with a real chat on this LAN.
const DEMO_PORT: u16 = 24243;

fn main() {
    let show_heartbeats = std::env::args().any(|arg| arg == "--heartbeats");
    let names = ["Alex", "Bo", "Cleo"];
    let mut members = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let host = Ipv4Addr::new(127, 0, 0, i as u8 + 1);
        let config = Config {
            port: DEMO_PORT,
            trace_frames: true,
            ..Config::new(host, *name)
        };
        match Node::start(config) {
            Ok((node, events)) => {
                let watcher = node.clone();
                thread::spawn(move || show_events(&watcher, events, show_heartbeats));
                members.push(node);
            }
            Err(e) => {
                eprintln!("demo: cannot start {name} on {host}: {e}");
                std::process::exit(1);
            }
        }
        // One after the other, so the joins are easy to follow.
        thread::sleep(Duration::from_millis(300));
    }
    wait_for_full_mesh(&members);

    step("Alex says hello to everyone: one Chat frame to each of the two others");
    let _ = members[0].send("Hello, it's ME!");
    step("Bo writes to Cleo only: one Private frame, on the Bo-Cleo connection");
    let _ = members[1].send_private(members[2].me().addr, "psst, Cleo");
    step("Cleo changes name: a Rename frame to each");
    let _ = members[2].rename("Cleopatra");
    step("Alex asks for the history: requests, entries, ends");
    let history = members[0].history();
    println!("    Alex's merged history has {} message(s)", history.len());
    step("Bo leaves: a Bye to each, then end of stream");
    members[1].leave();
    thread::sleep(Duration::from_millis(500));
    step("Alex and Cleo leave");
    members[0].leave();
    members[2].leave();
    thread::sleep(Duration::from_millis(300));
}

/// Prints one member's events, with its name in front.
fn show_events(node: &Node, events: Events, show_heartbeats: bool) {
    let me = node.me().name;
    for event in events {
        match event {
            Event::Wire {
                peer,
                direction,
                frame,
            } => {
                if frame == Frame::Heartbeat && !show_heartbeats {
                    continue;
                }
                let arrow = match direction {
                    WireDirection::Sent => "──▶",
                    WireDirection::Received => "◀──",
                };
                // One println! per frame, so the two lines stay together.
                println!(
                    "  {me:>5} {arrow} {peer:<9} {frame:?}\n                  bytes: {}",
                    hex(&frame.encode())
                );
            }
            other => {
                let roster = Roster::new(node.me(), node.members());
                if let Some(lines) = display::event_lines(&other, &roster, Style::PLAIN) {
                    println!("  {me:>5} shows: {lines}");
                }
            }
        }
    }
}

fn wait_for_full_mesh(members: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while members
        .iter()
        .any(|m| m.members().len() < members.len() - 1)
    {
        if Instant::now() > deadline {
            eprintln!("demo: the members did not find each other; is 127.0.0.0/8 on lo?");
            std::process::exit(1);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Announces the next step and gives the frames of the previous one time to print.
fn step(what: &str) {
    thread::sleep(Duration::from_millis(400));
    println!("\n=== {what}");
}

fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}
