//! The events of one in-process chat member ([`p2pchat::Node`]), kept so a test can wait
//! for them in any order and count or inspect them afterwards.
//!
//! Every event received goes into [`Inbox::log`] (for counting and for checking order)
//! and into an *unclaimed* queue; waiting for an event claims it, so the next wait looks
//! for another one, while events nobody waited for stay available to later waits.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use p2pchat::{Event, Events};

/// The events of one member: everything ever received (`log`) and what no
/// `expect_event` has claimed yet.
pub struct Inbox {
    events: Events,
    /// Every event ever received, in arrival order.
    pub log: Vec<Event>,
    unclaimed: VecDeque<Event>,
    /// The channel has ended: the member left, and every event was taken.
    ended: bool,
}

impl Inbox {
    pub fn new(events: Events) -> Inbox {
        Inbox {
            events,
            log: Vec::new(),
            unclaimed: VecDeque::new(),
            ended: false,
        }
    }

    /// Whether the event channel has ended (the member left, and every event was taken).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Waits up to `wait` for one event; false when none came (or none ever will).
    pub fn receive(&mut self, wait: Duration) -> bool {
        if self.ended {
            return false;
        }
        match self.events.recv_timeout(wait) {
            Ok(event) => {
                self.log.push(event.clone());
                self.unclaimed.push_back(event);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                false
            }
        }
    }

    /// Takes every event already waiting, without blocking for long.
    pub fn poll(&mut self) {
        while self.receive(Duration::ZERO) {}
    }

    /// How many events ever received match `pred`.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.log.iter().filter(|event| pred(event)).count()
    }

    /// The texts of the chat messages received from `sender`, in arrival order.
    pub fn texts_from(&self, sender: Ipv4Addr) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|event| match event {
                Event::Message(message) if message.id.origin == sender => {
                    Some(message.text.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The first unclaimed event matching `pred`, waiting up to `within` for it; it is
    /// then claimed. `None` if it did not come in time or the channel ended first.
    /// Events that do not match stay unclaimed (a test may wait for them next).
    pub fn claim(&mut self, pred: impl Fn(&Event) -> bool, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.unclaimed.iter().position(&pred) {
                return Some(self.unclaimed.remove(at).expect("the position is in range"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.receive(left) {
                return None;
            }
        }
    }

    /// Watches for `window` (or until the channel ends) and returns the first unclaimed
    /// event matching `pred`, including one that arrived before the watch began.
    pub fn watch_for(&mut self, pred: impl Fn(&Event) -> bool, window: Duration) -> Option<Event> {
        let deadline = Instant::now() + window;
        loop {
            if let Some(event) = self.unclaimed.iter().find(|event| pred(event)) {
                return Some(event.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.ended {
                return None;
            }
            self.receive(left);
        }
    }

    /// [`Inbox::claim`], failing with the event log if the event does not come.
    #[track_caller]
    pub fn expect_event(&mut self, pred: impl Fn(&Event) -> bool, within: Duration) -> Event {
        match self.claim(pred, within) {
            Some(event) => event,
            None => {
                let why = if self.ended {
                    "before the event channel ended (the member left)".to_string()
                } else {
                    format!("within {within:?}")
                };
                panic!(
                    "the expected event did not come {why}; events seen so far: {:#?}",
                    self.log
                );
            }
        }
    }

    /// [`Inbox::watch_for`], failing with the event log if a matching event is there.
    #[track_caller]
    pub fn assert_no_event(&mut self, pred: impl Fn(&Event) -> bool, window: Duration) {
        if let Some(event) = self.watch_for(pred, window) {
            panic!(
                "an event that must not happen happened: {event:#?}; events seen so far: \
                 {:#?}",
                self.log
            );
        }
    }
}
