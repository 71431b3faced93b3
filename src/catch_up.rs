//! Catching up after a cut: what two members exchange when their connection comes back,
//! so that what was said while they were apart is not lost. Pure: no I/O.
//!
//! A pulled cable, a Wi-Fi drop or a laptop lid closed for ten seconds ends a
//! connection (after [`crate::tuning::PEER_TIMEOUT`] of silence), and a line written
//! to a dead connection is lost with it. When the same run of a member (same address,
//! same instance) connects again, each side sends a
//! [`crate::protocol::Frame::CatchUpRequest`]: for every sender in its log, the highest
//! message number it has, and the number of the last private message it received from
//! the other. The other answers with what is missing:
//!
//! * chat messages it saw first-hand (its own, and those it received live) that the
//!   asker lacks: for a sender the asker named, every later number; for a sender it did
//!   not name (someone who joined while they were apart), what arrived after the cut
//!   began ([`CatchUp::since_ms`]);
//! * the private messages it sent to the asker's run with a later number, which it
//!   kept ([`SentPrivates`]);
//! * how many of its own messages of that time it no longer has (its log is bounded),
//!   so that the asker can say so plainly.
//!
//! A restarted member (a new instance) is a new member: it gets nothing automatically,
//! as it never had a conversation to resume.
//!
//! When our own cable was the one pulled, every member comes back at about the same
//! moment, and each answers with all it saw: its own lines and the others'. Shown
//! answer by answer, a line could appear under one member's heading before an earlier
//! line under the next. So the answers are gathered in one [`Reunion`] and shown
//! together, each line once, in send order, when the last catch-up under way ends.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

use crate::event::{Event, LatePrivate, Member};
use crate::protocol::{ChatMessage, MessageId};

/// One run of a member: its address and the instance it chose at start-up.
pub type Run = (Ipv4Addr, u64);

/// A private message we sent, kept to send again if it may have been lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPrivate {
    pub seq: u64,
    pub sent_at_ms: i64,
    pub text: String,
}

/// The private messages we sent to each run of each member, numbered per recipient, the
/// latest few kept.
#[derive(Debug)]
pub struct SentPrivates {
    kept_per_run: usize,
    max_runs: usize,
    by_run: HashMap<Run, Sent>,
    /// Runs in the order we first wrote to them, to forget the oldest when full.
    runs_in_order: VecDeque<Run>,
}

#[derive(Debug, Default)]
struct Sent {
    last_seq: u64,
    kept: VecDeque<KeptPrivate>,
}

impl SentPrivates {
    /// Keeps the latest `kept_per_run` private messages for each of at most `max_runs`
    /// recipients.
    pub fn new(kept_per_run: usize, max_runs: usize) -> SentPrivates {
        SentPrivates {
            kept_per_run,
            max_runs,
            by_run: HashMap::new(),
            runs_in_order: VecDeque::new(),
        }
    }

    /// Numbers (from 1, per recipient run) and keeps a private message; returns its
    /// number.
    pub fn number(&mut self, to: Run, sent_at_ms: i64, text: &str) -> u64 {
        if !self.by_run.contains_key(&to) {
            if self.by_run.len() >= self.max_runs
                && let Some(oldest) = self.runs_in_order.pop_front()
            {
                self.by_run.remove(&oldest);
            }
            self.runs_in_order.push_back(to);
        }
        let sent = self.by_run.entry(to).or_default();
        sent.last_seq += 1;
        sent.kept.push_back(KeptPrivate {
            seq: sent.last_seq,
            sent_at_ms,
            text: text.to_owned(),
        });
        if sent.kept.len() > self.kept_per_run {
            sent.kept.pop_front();
        }
        sent.last_seq
    }

    /// The private messages to `to` numbered after `received`, and how many of those
    /// are no longer kept.
    pub fn since(&self, to: Run, received: u64) -> (Vec<KeptPrivate>, u64) {
        let Some(sent) = self.by_run.get(&to) else {
            return (Vec::new(), 0);
        };
        let resend: Vec<KeptPrivate> = sent
            .kept
            .iter()
            .filter(|kept| kept.seq > received)
            .cloned()
            .collect();
        let missing = sent.last_seq.saturating_sub(received);
        let unavailable = missing.saturating_sub(resend.len() as u64);
        (resend, unavailable)
    }
}

/// The number of the latest private message received from each run of each member.
#[derive(Debug, Default)]
pub struct ReceivedPrivates {
    latest: HashMap<Run, u64>,
}

impl ReceivedPrivates {
    /// At most this many senders are remembered; past it, the map starts again (a
    /// member then may see a private message twice after a cut, never lose one).
    const MAX_RUNS: usize = 1024;

    /// Notes private message `seq` from `from`; false if it was received before.
    pub fn note(&mut self, from: Run, seq: u64) -> bool {
        if self.latest.len() >= Self::MAX_RUNS && !self.latest.contains_key(&from) {
            self.latest.clear();
        }
        let latest = self.latest.entry(from).or_default();
        if seq <= *latest {
            return false;
        }
        *latest = seq;
        true
    }

    /// The number of the latest private message from `from` (0 if none).
    pub fn latest(&self, from: Run) -> u64 {
        self.latest.get(&from).copied().unwrap_or(0)
    }
}

/// What a member asks for after a cut, as the answering side sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// For each sender the asker has messages from, the highest number it has.
    pub have: Vec<MessageId>,
    /// Messages from senders the asker did not name are sent if they arrived here
    /// after this moment (milliseconds since the Unix epoch, our clock): the last time
    /// we heard from the asker, less the time a cut takes to be noticed.
    pub since_ms: i64,
}

impl CatchUp {
    /// Whether the asker lacks `message`, which arrived here at `arrived_at_ms`.
    pub fn lacks(&self, message: &ChatMessage, arrived_at_ms: i64) -> bool {
        match self
            .have
            .iter()
            .find(|have| have.origin == message.id.origin && have.instance == message.id.instance)
        {
            Some(have) => message.id.seq > have.seq,
            None => arrived_at_ms > self.since_ms,
        }
    }
}

/// Of our own messages numbered after what the asker has (`have`) up to `last_seq`, how
/// many are missing from `kept` (the numbers of our own messages still in the log).
pub fn unavailable_own(have: Option<u64>, last_seq: u64, kept: &[u64]) -> u64 {
    let Some(have) = have else {
        return 0;
    };
    let wanted = last_seq.saturating_sub(have);
    let still_kept = kept.iter().filter(|seq| **seq > have).count() as u64;
    wanted.saturating_sub(still_kept)
}

/// The catch-ups under way, and what the finished ones brought: shown together, as one
/// [`Event::CaughtUp`], once no catch-up is waited for any more.
///
/// The caller records each answer's lines in the log before it adds them here, both
/// under the lock that guards the `Reunion`, so a line two members both send is new
/// in exactly one answer, and is shown once.
#[derive(Debug, Default)]
pub struct Reunion {
    /// Catch-ups asked for that have neither ended nor been given up on.
    waiting_for: usize,
    /// The members whose answers are in the batch.
    from: Vec<Member>,
    messages: Vec<ChatMessage>,
    privates: Vec<LatePrivate>,
    unavailable: Vec<(Member, u64)>,
}

impl Reunion {
    /// We asked a member to catch us up: its answer is waited for.
    pub fn begin(&mut self) {
        self.waiting_for += 1;
    }

    /// A catch-up we waited for will not be waited for any more (the connection ended,
    /// or the answer is too slow: if it comes, it is shown on its own). Returns the
    /// batch if it was the last one waited for.
    pub fn stop_waiting(&mut self) -> Option<Event> {
        self.waiting_for = self.waiting_for.saturating_sub(1);
        self.ready()
    }

    /// One member's answer, with only the lines not shown before, has ended. Returns
    /// the batch to show if no other catch-up is waited for. `waited_for` is false for
    /// an answer we had stopped waiting for.
    pub fn add(
        &mut self,
        from: Member,
        messages: Vec<ChatMessage>,
        privates: Vec<LatePrivate>,
        unavailable: u64,
        waited_for: bool,
    ) -> Option<Event> {
        if waited_for {
            self.waiting_for = self.waiting_for.saturating_sub(1);
        }
        if !messages.is_empty() || !privates.is_empty() || unavailable > 0 {
            if unavailable > 0 {
                self.unavailable.push((from.clone(), unavailable));
            }
            self.from.push(from);
            self.messages.extend(messages);
            self.privates.extend(privates);
        }
        self.ready()
    }

    /// The batch, if nothing more is waited for and it holds anything; in send order.
    fn ready(&mut self) -> Option<Event> {
        if self.waiting_for > 0 || self.from.is_empty() {
            return None;
        }
        let mut batch = std::mem::take(self);
        batch
            .messages
            .sort_by_key(|m| (m.sent_at_ms, m.id.origin, m.id.instance, m.id.seq));
        batch.privates.sort_by_key(|p| p.sent_at_ms);
        Some(Event::CaughtUp {
            from: batch.from,
            messages: batch.messages,
            privates: batch.privates,
            unavailable: batch.unavailable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BO: Run = (Ipv4Addr::new(198, 18, 0, 2), 7);

    fn message(origin: u8, seq: u64) -> ChatMessage {
        ChatMessage {
            id: MessageId {
                origin: Ipv4Addr::new(198, 18, 0, origin),
                instance: 1,
                seq,
            },
            sender_name: "x".into(),
            sent_at_ms: 0,
            text: "x".into(),
        }
    }

    #[test]
    fn private_messages_are_numbered_per_recipient_and_resent_after_what_it_has() {
        let mut sent = SentPrivates::new(10, 10);
        assert_eq!(sent.number(BO, 1, "one"), 1);
        assert_eq!(sent.number(BO, 2, "two"), 2);
        assert_eq!(sent.number((BO.0, 8), 3, "to the next run"), 1);
        let (resend, unavailable) = sent.since(BO, 1);
        assert_eq!(
            resend,
            [KeptPrivate {
                seq: 2,
                sent_at_ms: 2,
                text: "two".into()
            }]
        );
        assert_eq!(unavailable, 0);
    }

    #[test]
    fn private_messages_no_longer_kept_are_counted() {
        let mut sent = SentPrivates::new(2, 10);
        for i in 0..5 {
            sent.number(BO, i, "p");
        }
        let (resend, unavailable) = sent.since(BO, 0);
        assert_eq!(resend.iter().map(|k| k.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(unavailable, 3);
    }

    #[test]
    fn a_private_message_is_received_once() {
        let mut received = ReceivedPrivates::default();
        assert!(received.note(BO, 1));
        assert!(received.note(BO, 2));
        assert!(!received.note(BO, 2));
        assert_eq!(received.latest(BO), 2);
        assert_eq!(received.latest((BO.0, 9)), 0);
    }

    #[test]
    fn the_asker_lacks_later_numbers_of_known_senders_and_new_senders_since_the_cut() {
        let catch_up = CatchUp {
            have: vec![MessageId {
                origin: Ipv4Addr::new(198, 18, 0, 3),
                instance: 1,
                seq: 5,
            }],
            since_ms: 1000,
        };
        assert!(!catch_up.lacks(&message(3, 5), 5000));
        assert!(
            catch_up.lacks(&message(3, 6), 0),
            "a later number, whenever it came"
        );
        assert!(
            catch_up.lacks(&message(4, 1), 1001),
            "a new sender, after the cut"
        );
        assert!(
            !catch_up.lacks(&message(4, 1), 999),
            "a new sender, before the cut"
        );
    }

    #[test]
    fn our_own_messages_the_log_forgot_are_counted() {
        assert_eq!(unavailable_own(Some(10), 30, &[25, 26, 27, 28, 29, 30]), 14);
        assert_eq!(unavailable_own(Some(10), 12, &[1, 2, 11, 12]), 0);
        assert_eq!(unavailable_own(None, 30, &[]), 0);
    }

    fn member(name: &str, last: u8) -> Member {
        Member {
            name: name.into(),
            addr: Ipv4Addr::new(198, 18, 0, last),
        }
    }

    fn sent_at(origin: u8, seq: u64, sent_at_ms: i64) -> ChatMessage {
        ChatMessage {
            sent_at_ms,
            ..message(origin, seq)
        }
    }

    #[test]
    fn answers_that_overlap_in_time_are_shown_together_in_send_order() {
        let mut reunion = Reunion::default();
        reunion.begin();
        reunion.begin();
        let bob = reunion.add(
            member("Bob", 2),
            vec![sent_at(2, 9, 4000)],
            Vec::new(),
            0,
            true,
        );
        assert_eq!(bob, None, "Ann's answer is still waited for");
        let private = LatePrivate {
            from: member("Ann", 1),
            sent_at_ms: 2500,
            text: "psst".into(),
        };
        let shown = reunion.add(
            member("Ann", 1),
            vec![sent_at(1, 3, 3000), sent_at(1, 1, 1000)],
            vec![private.clone()],
            5,
            true,
        );
        let Some(Event::CaughtUp {
            from,
            messages,
            privates,
            unavailable,
        }) = shown
        else {
            panic!("the batch is shown when the last answer ends: {shown:?}");
        };
        assert_eq!(from, [member("Bob", 2), member("Ann", 1)]);
        let order: Vec<i64> = messages.iter().map(|m| m.sent_at_ms).collect();
        assert_eq!(order, [1000, 3000, 4000]);
        assert_eq!(privates, [private]);
        assert_eq!(unavailable, [(member("Ann", 1), 5)]);
        assert_eq!(reunion.stop_waiting(), None, "the batch went out once");
    }

    #[test]
    fn an_answer_no_longer_waited_for_does_not_hold_up_the_others() {
        let mut reunion = Reunion::default();
        reunion.begin();
        reunion.begin();
        assert_eq!(
            reunion.add(member("Bob", 2), vec![message(2, 1)], Vec::new(), 0, true),
            None
        );
        // Ann's connection ended before she answered.
        assert!(matches!(
            reunion.stop_waiting(),
            Some(Event::CaughtUp { .. })
        ));
        // Nothing new: nothing to show.
        reunion.begin();
        assert_eq!(
            reunion.add(member("Ann", 1), Vec::new(), Vec::new(), 0, true),
            None
        );
        // An answer we had stopped waiting for is shown when it comes.
        assert!(matches!(
            reunion.add(member("Cyd", 3), vec![message(3, 1)], Vec::new(), 0, false),
            Some(Event::CaughtUp { .. })
        ));
    }
}
