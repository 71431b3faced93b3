//! The message log behind `/history`: bounded, free of duplicates, in send order.
//!
//! There is no server to remember the conversation, so every member remembers what it
//! has seen. `/history` asks all members for their logs and merges them into this one.
//! The same message reaches us along several paths (live, and again in every member's
//! reply), so each is keyed by its [`MessageId`] and kept once. Pure: no I/O.

use std::collections::{BTreeMap, HashSet};

use crate::protocol::{ChatMessage, MessageId};

/// At most `capacity` messages, ordered by send time; the earliest sent are forgotten
/// first when it is full.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    /// Keyed by (send time, id): iteration is send order, ties broken by sender.
    by_send_order: BTreeMap<(i64, MessageId), ChatMessage>,
    ids: HashSet<MessageId>,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            by_send_order: BTreeMap::new(),
            ids: HashSet::new(),
        }
    }

    /// Adds a message; returns false when it was already known (and so not added).
    pub fn record(&mut self, message: ChatMessage) -> bool {
        if !self.ids.insert(message.id) {
            return false;
        }
        self.by_send_order
            .insert((message.sent_at_ms, message.id), message);
        while self.by_send_order.len() > self.capacity {
            if let Some(((_, id), _)) = self.by_send_order.pop_first() {
                self.ids.remove(&id);
            }
        }
        true
    }

    /// Adds every message not already known.
    pub fn merge(&mut self, messages: impl IntoIterator<Item = ChatMessage>) {
        for message in messages {
            self.record(message);
        }
    }

    /// Every remembered message, in send order.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.by_send_order.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_send_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_send_order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn message(origin: u8, seq: u64, sent_at_ms: i64) -> ChatMessage {
        ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(127, 0, 0, origin),
                instance: 1,
                seq,
            },
            sender_name: format!("member{origin}"),
            sent_at_ms,
            text: format!("message {seq} from {origin}"),
        }
    }

    #[test]
    fn a_message_is_kept_once_however_often_it_arrives() {
        let mut history = History::new(10);
        assert!(history.record(message(1, 1, 100)));
        assert!(!history.record(message(1, 1, 100)));
        history.merge([message(1, 1, 100), message(1, 1, 100)]);
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn merged_logs_come_out_in_send_order() {
        let mut history = History::new(10);
        history.merge([message(2, 1, 300), message(1, 1, 100)]);
        history.merge([message(3, 1, 200), message(2, 1, 300)]);
        let times: Vec<i64> = history.messages().iter().map(|m| m.sent_at_ms).collect();
        assert_eq!(times, [100, 200, 300]);
    }

    #[test]
    fn messages_sent_in_the_same_millisecond_are_all_kept() {
        let mut history = History::new(10);
        history.merge([message(1, 1, 100), message(2, 1, 100), message(1, 2, 100)]);
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn a_full_log_forgets_the_earliest_sent_first() {
        let mut history = History::new(3);
        for seq in 1..=5 {
            history.record(message(1, seq, seq as i64 * 10));
        }
        let seqs: Vec<u64> = history.messages().iter().map(|m| m.id.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        // A forgotten message may be recorded again; the bound still holds.
        history.record(message(1, 1, 10));
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn a_restarted_member_is_a_different_sender() {
        let mut history = History::new(10);
        let first_run = message(1, 1, 100);
        let mut second_run = message(1, 1, 200);
        second_run.id.instance = 2;
        history.merge([first_run, second_run]);
        assert_eq!(history.len(), 2);
    }
}
