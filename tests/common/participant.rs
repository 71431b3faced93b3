//! A chat member running in the test's own process ([`p2pchat::Node`]), with its events
//! kept in an [`Inbox`] so the test can wait for them in any order.

use std::net::Ipv4Addr;
use std::time::Duration;

use p2pchat::{ChatMessage, Config, Event, Member, Node};

use super::hosts::Hosts;
use super::inbox::Inbox;
use super::{EVENT_TIMEOUT, free_port};

/// A running member and its events. Leaves the chat when dropped, so a failing test
/// leaves no member running behind it.
pub struct Participant {
    pub node: Node,
    pub inbox: Inbox,
}

impl Participant {
    /// Starts a member with any configuration.
    #[track_caller]
    pub fn start(config: Config) -> Participant {
        let described = format!("{} on {}:{}", config.name, config.host, config.port);
        let (node, events) =
            Node::start(config).unwrap_or_else(|e| panic!("cannot start {described}: {e}"));
        Participant {
            node,
            inbox: Inbox::new(events),
        }
    }

    /// A member named `name` on `host`, in the default room, on `port`.
    #[track_caller]
    pub fn on(host: Ipv4Addr, name: &str, port: u16) -> Participant {
        Participant::start(Config {
            port,
            ..Config::new(host, name)
        })
    }

    pub fn me(&self) -> Member {
        self.node.me()
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.node.me().addr
    }

    /// The first unclaimed event matching `pred`, waiting up to [`EVENT_TIMEOUT`] for
    /// it; it is then claimed. Events that do not match stay unclaimed.
    #[track_caller]
    pub fn expect_event(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        match self.inbox.claim(pred, EVENT_TIMEOUT) {
            Some(event) => event,
            None => panic!(
                "{}: {what} did not come within {EVENT_TIMEOUT:?}{}; events seen: {:#?}",
                self.me().name,
                if self.inbox.ended() {
                    " (the channel ended)"
                } else {
                    ""
                },
                self.inbox.log
            ),
        }
    }

    #[track_caller]
    pub fn expect_joined(&mut self, who: &Member) {
        self.expect_event(&format!("Joined({who:?})"), |e| {
            *e == Event::Joined(who.clone())
        });
    }

    #[track_caller]
    pub fn expect_left(&mut self, who: &Member) {
        self.expect_event(&format!("Left({who:?})"), |e| {
            *e == Event::Left(who.clone())
        });
    }

    /// Waits for the chat message `text` from the member at `sender`.
    #[track_caller]
    pub fn expect_message(&mut self, sender: Ipv4Addr, text: &str) -> ChatMessage {
        let what = format!("the message {text:?} from {sender}");
        match self.expect_event(&what, |e| is_message_from(e, sender, text)) {
            Event::Message(message) => message,
            other => unreachable!("the predicate matched {other:?}"),
        }
    }

    /// Watches for `window` and fails if an event matching `pred` arrives (or had
    /// arrived, unclaimed, before the watch began).
    #[track_caller]
    pub fn assert_no_event(&mut self, what: &str, pred: impl Fn(&Event) -> bool, window: Duration) {
        if let Some(event) = self.inbox.watch_for(pred, window) {
            panic!(
                "{}: {what} happened: {event:#?}; events seen: {:#?}",
                self.me().name,
                self.inbox.log
            );
        }
    }

    /// How many events ever received match `pred`.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.inbox.count(pred)
    }

    #[track_caller]
    pub fn send(&self, text: &str) {
        self.node
            .send(text)
            .unwrap_or_else(|e| panic!("cannot send {text:?}: {e}"));
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.node.leave();
    }
}

/// Waits until every member has seen every other one join.
#[track_caller]
pub fn wait_for_full_mesh(members: &mut [Participant]) {
    let everyone: Vec<Member> = members.iter().map(Participant::me).collect();
    for member in members.iter_mut() {
        let me = member.me();
        for other in everyone.iter().filter(|other| **other != me) {
            member.expect_joined(other);
        }
    }
}

/// Alex, Bo and Cleo on the first three addresses of a fresh block, on one port, each
/// seen to join by the others; with the block, whose other addresses run nobody.
pub fn alex_bo_and_cleo() -> (Hosts, Vec<Participant>) {
    let block = Hosts::fresh();
    let port = free_port();
    let mut members = vec![
        Participant::on(block.addr(1), "Alex", port),
        Participant::on(block.addr(2), "Bo", port),
        Participant::on(block.addr(3), "Cleo", port),
    ];
    wait_for_full_mesh(&mut members);
    (block, members)
}

/// Whether `event` is the chat message `text` from the member at `sender`.
pub fn is_message_from(event: &Event, sender: Ipv4Addr, text: &str) -> bool {
    matches!(event, Event::Message(m) if m.id.origin == sender && m.text == text)
}
