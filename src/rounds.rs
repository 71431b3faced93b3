//! `/history` rounds: one question to every member, the answers collected until all
//! have replied or time is up.
//!
//! The user's thread opens a round and waits; the connection threads add what each
//! member sends. The round counts who has not answered yet, so it ends as soon as the
//! last member has, and a member that leaves meanwhile is not waited for.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::protocol::ChatMessage;
use crate::tuning::HISTORY_CAPACITY;

/// Every open round, by request number.
#[derive(Default)]
pub(crate) struct Rounds {
    open: Mutex<OpenRounds>,
    /// Signalled when a member finishes its answer, or leaves.
    changed: Condvar,
}

#[derive(Default)]
struct OpenRounds {
    next_request: u32,
    by_request: HashMap<u32, Round>,
}

/// The answers to one request so far.
struct Round {
    waiting_for: HashSet<Ipv4Addr>,
    /// Each entry with the member that sent it.
    received: Vec<(Ipv4Addr, ChatMessage)>,
    /// A member may send at most [`HISTORY_CAPACITY`] entries: more is a flood.
    received_per_member: HashMap<Ipv4Addr, usize>,
}

impl Rounds {
    fn lock(&self) -> MutexGuard<'_, OpenRounds> {
        // Every method leaves the rounds consistent before anything can panic.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a round that waits for the members at `asked`; returns its number.
    pub fn open(&self, asked: impl IntoIterator<Item = Ipv4Addr>) -> u32 {
        let mut rounds = self.lock();
        rounds.next_request = rounds.next_request.wrapping_add(1);
        let request = rounds.next_request;
        rounds.by_request.insert(
            request,
            Round {
                waiting_for: asked.into_iter().collect(),
                received: Vec::new(),
                received_per_member: HashMap::new(),
            },
        );
        request
    }

    /// One entry of `from`'s answer. Entries for a round that is over, from a member
    /// that was not asked or has finished, or past [`HISTORY_CAPACITY`], are ignored.
    pub fn add_entry(&self, request: u32, from: Ipv4Addr, message: ChatMessage) {
        let mut rounds = self.lock();
        let Some(round) = rounds.by_request.get_mut(&request) else {
            return;
        };
        let count = round.received_per_member.entry(from).or_default();
        if round.waiting_for.contains(&from) && *count < HISTORY_CAPACITY {
            *count += 1;
            round.received.push((from, message));
        }
    }

    /// `from` has sent its whole answer.
    pub fn end(&self, request: u32, from: Ipv4Addr) {
        if let Some(round) = self.lock().by_request.get_mut(&request) {
            round.waiting_for.remove(&from);
        }
        self.changed.notify_all();
    }

    /// Stops waiting for `addr` in every round (it left).
    pub fn forget(&self, addr: Ipv4Addr) {
        for round in self.lock().by_request.values_mut() {
            round.waiting_for.remove(&addr);
        }
        self.changed.notify_all();
    }

    /// Waits until everyone asked has answered, or `timeout`; closes the round and
    /// returns what arrived, each entry with the member that sent it.
    pub fn collect(&self, request: u32, timeout: Duration) -> Vec<(Ipv4Addr, ChatMessage)> {
        let rounds = self.lock();
        let (mut rounds, _) = self
            .changed
            .wait_timeout_while(rounds, timeout, |rounds| {
                rounds
                    .by_request
                    .get(&request)
                    .is_some_and(|round| !round.waiting_for.is_empty())
            })
            .unwrap_or_else(PoisonError::into_inner);
        rounds
            .by_request
            .remove(&request)
            .map(|round| round.received)
            .unwrap_or_default()
    }
}
