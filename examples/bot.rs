//! A bot member: joins the chat like anyone else and answers a few requests.
//!
//! ```sh
//! cargo run --example bot -- 127.0.0.9 Bot        # same arguments as p2pchat
//! ```
//!
//! Then, in any member's chat: `!time` (the bot's clock), `!members` (who the bot sees),
//! `!echo some text`. It shows the library at work: [`Node::start`] returns the node and
//! a channel of [`Event`]s; the bot reads events and answers with [`Node::send`]. No
//! sockets appear here: discovery, connections and framing are the library's business.

use std::process::ExitCode;

use p2pchat::cli::{self, Invocation};
use p2pchat::{ChatMessage, Event, Node};

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Chat { config, .. }) => config,
        Ok(_) | Err(_) => {
            eprintln!("usage: cargo run --example bot -- [OPTIONS] <HOST> <NAME>");
            return ExitCode::from(2);
        }
    };
    let (node, events) = match Node::start(config) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("bot: {e}");
            return ExitCode::FAILURE;
        }
    };
    let on_signal = node.clone();
    // Ctrl-C, and on Windows the console window closing too (see p2pchat::platform).
    let _ = p2pchat::platform::on_quit_request(move || {
        on_signal.leave();
        std::process::exit(0);
    });
    println!("bot running as {}; Ctrl-C to stop", node.me().addr);

    for event in events {
        match event {
            Event::Joined(member) => {
                let _ = node.send(&format!("Welcome, {}! Try !time or !members.", member.name));
            }
            Event::Message(message) if message.id.origin != node.me().addr => {
                if let Some(answer) = answer(&node, &message) {
                    let _ = node.send(&answer);
                }
            }
            _ => {}
        }
    }
    ExitCode::SUCCESS
}

/// The bot's whole personality: a reply to a `!request`, or nothing.
fn answer(node: &Node, message: &ChatMessage) -> Option<String> {
    let text = message.text.trim();
    if text == "!time" {
        return Some(format!(
            "It is {} here.",
            chrono::Local::now().format("%H:%M:%S")
        ));
    }
    if text == "!members" {
        let names: Vec<String> = node.members().into_iter().map(|m| m.name).collect();
        return Some(format!(
            "I see {} member(s): {}",
            names.len(),
            names.join(", ")
        ));
    }
    text.strip_prefix("!echo ")
        .map(|rest| format!("{} said: {rest}", message.sender_name))
}
