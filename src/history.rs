//! The message log behind `/history`: bounded, free of duplicates, in send order, and
//! safe from a member that answers `/history` with junk. Pure: no I/O.
//!
//! There is no server to remember the conversation, so every member remembers what it
//! has seen. `/history` asks all members for their logs and merges the answers into
//! this one. The same message reaches us along several paths (live, and again in every
//! member's reply), so each is keyed by its [`MessageId`] and kept once.
//!
//! ## Whose word we have
//!
//! A message we sent or received live, from its author over the author's own
//! connection, is *first-hand*. An entry in another member's `/history` reply is only
//! that member's word: it could be invented, with any name, time or origin. So:
//!
//! * A full log makes room by forgetting the entry that **arrived** earliest, not the
//!   one dated earliest (a date is a claim; an arrival is a fact).
//! * Entries from replies never push out first-hand messages: when the log is full of
//!   those, a reply adds nothing. Among replied entries, room is made by forgetting the
//!   oldest entry of the member that supplied the most, so a member answering with a
//!   thousand entries crowds out mostly its own.
//! * An entry dated more than [`MAX_FUTURE_MS`] after our clock is refused: no real
//!   message comes from the future, and a year-9999 date would sort ahead of everything.
//! * A member answers `/history` with first-hand messages only, so what one member
//!   invents never spreads beyond the members that asked it.
//! * An entry a member relays for someone else (or for us) is shown marked with whose
//!   word it is: [`LogEntry::relayed_by`].
//!
//! ## Order
//!
//! Entries are shown by send time, then sender address, then the sender's run
//! (instance) and message number. A member never dates a message earlier than its
//! previous one (see `Shared::send_time`), so each sender's lines keep their send order
//! however fast they were typed: within one millisecond the message number decides.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;

use crate::catch_up::CatchUp;
use crate::protocol::{ChatMessage, MAX_CATCH_UP_SENDERS, MessageId};

/// How far (in milliseconds) an entry from a `/history` reply may be dated after our
/// own clock. Ten minutes covers any clock a person would call "right"; a member whose
/// clock is further ahead still has its live messages shown, with its own times.
pub const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

/// One remembered message, as `/history` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub message: ChatMessage,
    /// Set when we have this message only on another member's word: it came in that
    /// member's `/history` reply and claims to be from someone else (or from us). The
    /// address of the member that relayed it.
    pub relayed_by: Option<Ipv4Addr>,
}

/// How we came to know a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// We sent it, or received it live from its author.
    FirstHand,
    /// It was in this member's `/history` reply.
    Replied { by: Ipv4Addr },
}

/// Why an entry from a reply was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// We have it already.
    Known,
    /// Dated more than [`MAX_FUTURE_MS`] after our clock.
    FromTheFuture,
    /// The log is full of first-hand messages.
    Full,
}

/// The order entries are shown in: send time, sender, run, number.
type ShowKey = (i64, Ipv4Addr, u64, u64);

fn show_key(id: &MessageId, sent_at_ms: i64) -> ShowKey {
    (sent_at_ms, id.origin, id.instance, id.seq)
}

/// One message in the log, with how and when we came to know it.
#[derive(Debug)]
struct Kept {
    message: ChatMessage,
    source: Source,
    /// When it arrived here (milliseconds since the Unix epoch, our clock).
    arrived_at_ms: i64,
}

/// At most `capacity` messages (see the module doc for which are kept).
#[derive(Debug)]
pub struct History {
    capacity: usize,
    by_show_order: BTreeMap<ShowKey, Kept>,
    keys: HashMap<MessageId, ShowKey>,
    /// First-hand messages, earliest arrival first.
    first_hand: VecDeque<MessageId>,
    /// Entries from replies, by the member that supplied them, earliest arrival first.
    replied: HashMap<Ipv4Addr, VecDeque<MessageId>>,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            by_show_order: BTreeMap::new(),
            keys: HashMap::new(),
            first_hand: VecDeque::new(),
            replied: HashMap::new(),
        }
    }

    /// Adds a message we sent or received live (at `now_ms`, our clock); false when it
    /// was already known (a copy from a reply is then promoted to first-hand).
    pub fn record(&mut self, message: ChatMessage, now_ms: i64) -> bool {
        if let Some(key) = self.keys.get(&message.id).copied() {
            if let Some(Kept { source, .. }) = self.by_show_order.get_mut(&key)
                && let Source::Replied { by } = *source
            {
                *source = Source::FirstHand;
                if let Some(queue) = self.replied.get_mut(&by) {
                    queue.retain(|id| *id != message.id);
                }
                self.first_hand.push_back(message.id);
            }
            return false;
        }
        if self.len() >= self.capacity && !self.evict(None) {
            return false;
        }
        self.first_hand.push_back(message.id);
        self.insert(message, Source::FirstHand, now_ms);
        true
    }

    /// Adds an entry from `by`'s `/history` reply, if it is new, not from the future
    /// (`now_ms` is our clock), and there is room that first-hand messages do not need.
    pub fn record_replied(
        &mut self,
        message: ChatMessage,
        by: Ipv4Addr,
        now_ms: i64,
    ) -> Result<(), Refused> {
        if let Some(key) = self.keys.get(&message.id).copied() {
            // Its author's own word beats another member's: the mark goes.
            let from_its_author = by == message.id.origin;
            if let Some(Kept { source, .. }) = self.by_show_order.get_mut(&key)
                && let Source::Replied { by: relayer } = *source
                && from_its_author
                && relayer != by
            {
                *source = Source::Replied { by };
                if let Some(queue) = self.replied.get_mut(&relayer) {
                    queue.retain(|id| *id != message.id);
                }
                self.replied.entry(by).or_default().push_back(message.id);
                self.replied.retain(|_, queue| !queue.is_empty());
            }
            return Err(Refused::Known);
        }
        if message.sent_at_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Err(Refused::FromTheFuture);
        }
        if self.len() >= self.capacity && !self.evict(Some(by)) {
            return Err(Refused::Full);
        }
        self.replied.entry(by).or_default().push_back(message.id);
        self.insert(message, Source::Replied { by }, now_ms);
        Ok(())
    }

    fn insert(&mut self, message: ChatMessage, source: Source, arrived_at_ms: i64) {
        let key = show_key(&message.id, message.sent_at_ms);
        self.keys.insert(message.id, key);
        self.by_show_order.insert(
            key,
            Kept {
                message,
                source,
                arrived_at_ms,
            },
        );
    }

    /// Forgets one entry to make room; false if none may go. For a replied entry from
    /// `incoming_from`, only replied entries may go: the oldest of the member that
    /// supplied the most (counting the incoming one). For a first-hand message, a
    /// replied entry goes first, else the earliest-arrived first-hand one.
    fn evict(&mut self, incoming_from: Option<Ipv4Addr>) -> bool {
        let biggest_supplier = self
            .replied
            .iter()
            .map(|(by, queue)| (queue.len() + usize::from(Some(*by) == incoming_from), *by))
            .filter(|(count, _)| *count > 0)
            .max();
        let victim = match biggest_supplier {
            Some((_, by)) => self.replied.get_mut(&by).and_then(VecDeque::pop_front),
            None if incoming_from.is_none() => self.first_hand.pop_front(),
            None => None,
        };
        self.replied.retain(|_, queue| !queue.is_empty());
        let Some(id) = victim else {
            return false;
        };
        if let Some(key) = self.keys.remove(&id) {
            self.by_show_order.remove(&key);
        }
        true
    }

    /// Every remembered message, in show order, each marked with whose word we have it
    /// on when that is not its author's. `me` is our own address.
    pub fn entries(&self, me: Ipv4Addr) -> Vec<LogEntry> {
        self.by_show_order
            .values()
            .map(|kept| LogEntry {
                relayed_by: match kept.source {
                    Source::Replied { by } if by != kept.message.id.origin || by == me => Some(by),
                    _ => None,
                },
                message: kept.message.clone(),
            })
            .collect()
    }

    /// The first-hand messages, in show order: what we answer a `/history` request with.
    pub fn first_hand(&self) -> Vec<ChatMessage> {
        self.first_hand_kept()
            .map(|kept| kept.message.clone())
            .collect()
    }

    fn first_hand_kept(&self) -> impl Iterator<Item = &Kept> {
        self.by_show_order
            .values()
            .filter(|kept| kept.source == Source::FirstHand)
    }

    /// For each sender (origin and run), the highest message number we have: what we
    /// tell a member we reconnect to, so that it sends only what we lack. At most
    /// [`MAX_CATCH_UP_SENDERS`], those heard from most recently.
    pub fn have(&self) -> Vec<MessageId> {
        let mut highest: HashMap<(Ipv4Addr, u64), (u64, i64)> = HashMap::new();
        for kept in self.by_show_order.values() {
            let id = kept.message.id;
            let entry = highest
                .entry((id.origin, id.instance))
                .or_insert((0, i64::MIN));
            entry.0 = entry.0.max(id.seq);
            entry.1 = entry.1.max(kept.arrived_at_ms);
        }
        let mut senders: Vec<((Ipv4Addr, u64), (u64, i64))> = highest.into_iter().collect();
        senders.sort_by_key(|(_, (_, last_arrival))| std::cmp::Reverse(*last_arrival));
        senders
            .into_iter()
            .take(MAX_CATCH_UP_SENDERS)
            .map(|((origin, instance), (seq, _))| MessageId {
                origin,
                instance,
                seq,
            })
            .collect()
    }

    /// The first-hand messages a member that asks for `catch_up` lacks, in show order.
    pub fn lacked_by(&self, catch_up: &CatchUp) -> Vec<ChatMessage> {
        self.first_hand_kept()
            .filter(|kept| catch_up.lacks(&kept.message, kept.arrived_at_ms))
            .map(|kept| kept.message.clone())
            .collect()
    }

    /// The numbers of the messages of one sender's run still in the log.
    pub fn numbers_of(&self, origin: Ipv4Addr, instance: u64) -> Vec<u64> {
        self.keys
            .keys()
            .filter(|id| id.origin == origin && id.instance == instance)
            .map(|id| id.seq)
            .collect()
    }

    /// The number of the newest message of one sender's run that we have first-hand
    /// (from the sender itself, not relayed by others).
    pub fn newest_first_hand_of(&self, origin: Ipv4Addr, instance: u64) -> Option<u64> {
        self.first_hand_kept()
            .map(|kept| kept.message.id)
            .filter(|id| id.origin == origin && id.instance == instance)
            .map(|id| id.seq)
            .max()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    const NOW: i64 = 1_800_000_000_000;

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

    fn seqs(history: &History) -> Vec<(u8, u64)> {
        history
            .entries(ME)
            .iter()
            .map(|e| (e.message.id.origin.octets()[3], e.message.id.seq))
            .collect()
    }

    fn relayer(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, last)
    }

    #[test]
    fn a_message_is_kept_once_however_often_it_arrives() {
        let mut history = History::new(10);
        assert!(history.record(message(2, 1, NOW), NOW));
        assert!(!history.record(message(2, 1, NOW), NOW));
        assert_eq!(
            history.record_replied(message(2, 1, NOW), relayer(3), NOW),
            Err(Refused::Known)
        );
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn entries_are_shown_by_time_then_sender_then_number() {
        let mut history = History::new(10);
        history.record(message(3, 1, NOW + 300), NOW);
        history.record(message(2, 2, NOW), NOW);
        history.record(message(2, 1, NOW), NOW);
        history.record(message(4, 1, NOW + 100), NOW);
        assert_eq!(seqs(&history), [(2, 1), (2, 2), (4, 1), (3, 1)]);
    }

    #[test]
    fn a_full_log_forgets_the_earliest_arrival_not_the_earliest_date() {
        let mut history = History::new(3);
        history.record(message(2, 1, NOW + 50), NOW); // arrives first, dated latest
        history.record(message(2, 2, NOW), NOW);
        history.record(message(2, 3, NOW + 10), NOW);
        history.record(message(2, 4, NOW + 20), NOW);
        assert_eq!(seqs(&history), [(2, 2), (2, 3), (2, 4)]);
    }

    #[test]
    fn a_reply_never_pushes_out_first_hand_messages() {
        let mut history = History::new(3);
        for seq in 1..=3 {
            history.record(message(2, seq, NOW), NOW);
        }
        let junk = message(9, 1, NOW - 1000);
        assert_eq!(
            history.record_replied(junk, relayer(9), NOW),
            Err(Refused::Full)
        );
        assert_eq!(seqs(&history), [(2, 1), (2, 2), (2, 3)]);
    }

    #[test]
    fn a_flooding_replier_crowds_out_mostly_its_own_entries() {
        let mut history = History::new(10);
        // Four first-hand messages and three from an honest member's reply.
        for seq in 1..=4 {
            history.record(message(2, seq, NOW), NOW);
        }
        for seq in 1..=3 {
            assert!(
                history
                    .record_replied(message(3, seq, NOW), relayer(3), NOW)
                    .is_ok()
            );
        }
        // A thousand junk entries from one member.
        for seq in 1..=1000 {
            let _ = history.record_replied(message(66, seq, NOW), relayer(66), NOW);
        }
        let kept = seqs(&history);
        assert!(
            (1..=4).all(|seq| kept.contains(&(2, seq))),
            "first-hand lost: {kept:?}"
        );
        assert!(
            (1..=3).all(|seq| kept.contains(&(3, seq))),
            "the honest reply lost: {kept:?}"
        );
        assert_eq!(history.len(), 10);
    }

    #[test]
    fn an_entry_dated_in_the_far_future_is_refused() {
        let mut history = History::new(10);
        let year_9999 = message(3, 1, 253_402_300_799_000);
        assert_eq!(
            history.record_replied(year_9999, relayer(3), NOW),
            Err(Refused::FromTheFuture)
        );
        let slightly_ahead = message(3, 2, NOW + MAX_FUTURE_MS);
        assert_eq!(
            history.record_replied(slightly_ahead, relayer(3), NOW),
            Ok(())
        );
    }

    #[test]
    fn only_first_hand_messages_are_handed_on() {
        let mut history = History::new(10);
        history.record(message(2, 1, NOW), NOW);
        let _ = history.record_replied(message(3, 1, NOW), relayer(4), NOW);
        let handed_on: Vec<MessageId> = history.first_hand().iter().map(|m| m.id).collect();
        assert_eq!(handed_on, [message(2, 1, NOW).id]);
    }

    #[test]
    fn entries_relayed_for_someone_else_or_for_us_are_marked() {
        let mut history = History::new(10);
        let _ = history.record_replied(message(3, 1, NOW), relayer(3), NOW); // its own
        let _ = history.record_replied(message(5, 1, NOW + 1), relayer(3), NOW); // another's
        let _ = history.record_replied(message(1, 1, NOW + 2), relayer(3), NOW); // "ours"
        let marks: Vec<Option<Ipv4Addr>> =
            history.entries(ME).iter().map(|e| e.relayed_by).collect();
        assert_eq!(marks, [None, Some(relayer(3)), Some(relayer(3))]);
    }

    #[test]
    fn an_entry_relayed_by_its_author_loses_the_mark_another_relayer_gave_it() {
        let mut history = History::new(10);
        let _ = history.record_replied(message(5, 1, NOW), relayer(3), NOW);
        assert_eq!(history.entries(ME)[0].relayed_by, Some(relayer(3)));
        assert_eq!(
            history.record_replied(message(5, 1, NOW), relayer(5), NOW),
            Err(Refused::Known)
        );
        assert_eq!(history.entries(ME)[0].relayed_by, None);
    }

    #[test]
    fn a_replied_entry_seen_live_later_becomes_first_hand() {
        let mut history = History::new(10);
        let _ = history.record_replied(message(5, 1, NOW), relayer(3), NOW);
        assert!(!history.record(message(5, 1, NOW), NOW));
        assert_eq!(history.entries(ME)[0].relayed_by, None);
        assert_eq!(history.first_hand().len(), 1);
    }

    #[test]
    fn a_restarted_member_is_a_different_sender() {
        let mut history = History::new(10);
        let first_run = message(2, 1, NOW);
        let mut second_run = message(2, 1, NOW + 5);
        second_run.id.instance = 2;
        history.record(first_run, NOW);
        history.record(second_run, NOW);
        assert_eq!(history.len(), 2);
    }
}

#[cfg(test)]
mod catch_up_tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn message(origin: u8, instance: u64, seq: u64) -> ChatMessage {
        ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(127, 0, 0, origin),
                instance,
                seq,
            },
            sender_name: "x".into(),
            sent_at_ms: NOW + seq as i64,
            text: format!("{origin}/{seq}"),
        }
    }

    #[test]
    fn what_we_have_is_the_highest_number_per_sender_run() {
        let mut history = History::new(10);
        history.record(message(2, 1, 3), NOW);
        history.record(message(2, 1, 5), NOW);
        history.record(message(2, 2, 1), NOW);
        let mut have = history.have();
        have.sort();
        let have: Vec<(u8, u64, u64)> = have
            .iter()
            .map(|id| (id.origin.octets()[3], id.instance, id.seq))
            .collect();
        assert_eq!(have, [(2, 1, 5), (2, 2, 1)]);
    }

    #[test]
    fn a_reconnecting_member_is_sent_only_first_hand_messages_it_lacks() {
        let mut history = History::new(10);
        for seq in 1..=4 {
            history.record(message(2, 1, seq), NOW);
        }
        history.record(message(3, 1, 1), NOW + 10_000); // a newcomer, after the cut
        history.record(message(4, 1, 1), NOW - 10_000); // someone else, before it
        let _ = history.record_replied(message(5, 1, 1), Ipv4Addr::new(127, 0, 0, 9), NOW);
        let catch_up = CatchUp {
            have: vec![MessageId {
                origin: Ipv4Addr::new(127, 0, 0, 2),
                instance: 1,
                seq: 2,
            }],
            since_ms: NOW,
        };
        let sent: Vec<String> = history
            .lacked_by(&catch_up)
            .into_iter()
            .map(|m| m.text)
            .collect();
        // In show order: by send time (here the number), then sender.
        assert_eq!(sent, ["3/1", "2/3", "2/4"]);
        assert_eq!(history.numbers_of(Ipv4Addr::new(127, 0, 0, 2), 1).len(), 4);
    }
}
