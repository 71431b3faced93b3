//! Resuming a conversation after a cut: one connection's part in a catch-up. The rules
//! (who lacks what, what is counted as lost) are in [`crate::catch_up`], pure; this
//! module does the talking.
//!
//! When a member of the same run comes back, each side of the new connection asks
//! (`Resuming::ask`) and answers (`answer`) on that connection, like any other
//! frames: the answer goes through the link's outbox, so a member that asks and then
//! stops reading holds up only the thread that answers it. What an answer brings waits
//! in the `Resuming` until its `CatchUpEnd`, then is recorded in the log and shown,
//! together with the other answers under way ([`crate::catch_up::Reunion`]).

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::catch_up::{CatchUp, unavailable_own};
use crate::clock::now_ms;
use crate::event::{LatePrivate, Member};
use crate::history::Refused;
use crate::link::Link;
use crate::peers::PeerIdentity;
use crate::protocol::{ChatMessage, Frame, MessageId};
use crate::shared::Shared;
use crate::tuning::{CATCH_UP_PATIENCE, HISTORY_CAPACITY, PEER_TIMEOUT, PRIVATES_KEPT_PER_MEMBER};

/// Our catch-up request to one member, and what it sent in answer so far.
pub(crate) struct Resuming {
    asked_at: Instant,
    /// Whether the [`crate::catch_up::Reunion`] still waits for this answer.
    waited_for: bool,
    messages: Vec<ChatMessage>,
    /// With the number the sender gave each, to show each once.
    privates: Vec<(u64, LatePrivate)>,
}

impl Resuming {
    /// Asks a member we lost contact with for what we missed.
    pub fn ask(shared: &Shared, link: &Link, peer: &PeerIdentity) -> Resuming {
        let mut have = shared.history().have();
        let (privates_received, had_of_theirs) = {
            let state = shared.state();
            (
                state.received_privates.latest((peer.addr, peer.instance)),
                state.peers.had_before_cut(peer.addr, peer.instance),
            )
        };
        // Of its own messages, we claim only what we had when the cut began: lines of
        // its that other members relayed to us since may start above a gap that no
        // log holds any more, and only the member itself can count that gap for us.
        claim_only_what_we_had(&mut have, peer, had_of_theirs);
        shared.reunion().begin();
        shared.send_frame(
            link,
            &Frame::CatchUpRequest {
                privates_received,
                have,
            },
        );
        Resuming {
            asked_at: Instant::now(),
            waited_for: true,
            messages: Vec::new(),
            privates: Vec::new(),
        }
    }

    /// A `CatchUpEntry`. An answer longer than any log holds is not believed past that.
    pub fn add_message(&mut self, message: ChatMessage) {
        if self.messages.len() < HISTORY_CAPACITY {
            self.messages.push(message);
        }
    }

    /// A `CatchUpPrivate` from `from`. No more than a sender keeps are believed.
    pub fn add_private(&mut self, seq: u64, from: Member, sent_at_ms: i64, text: String) {
        if self.privates.len() < PRIVATES_KEPT_PER_MEMBER {
            let private = LatePrivate {
                from,
                sent_at_ms,
                text,
            };
            self.privates.push((seq, private));
        }
    }

    /// Stops holding up the other catch-ups if this one takes longer than
    /// [`CATCH_UP_PATIENCE`]: its answer is shown on its own when it ends.
    pub fn stop_waiting_if_slow(&mut self, shared: &Shared) {
        if self.asked_at.elapsed() >= CATCH_UP_PATIENCE {
            self.stop_waiting(shared);
        }
    }

    /// Stops holding up the other catch-ups (the connection ended before the answer did).
    pub fn stop_waiting(&mut self, shared: &Shared) {
        if std::mem::replace(&mut self.waited_for, false)
            && let Some(batch) = shared.reunion().stop_waiting()
        {
            shared.emit(batch);
        }
    }

    /// The member's `CatchUpEnd`: keeps what is new, and shows it as late, together with
    /// the other catch-ups under way.
    pub fn finish(self, shared: &Shared, peer: &PeerIdentity, unavailable: u32) {
        // Recorded and added to the batch in one step, under the reunion lock: a line
        // that two members both sent us is new in exactly one answer.
        let mut reunion = shared.reunion();
        let now = now_ms();
        let messages: Vec<ChatMessage> = self
            .messages
            .into_iter()
            .filter(|message| {
                if message.id.origin == peer.addr && message.id.instance == peer.instance {
                    // Its own messages: as good as if they had come live.
                    shared.record(message)
                } else {
                    // Another member's, on its word: kept only where the log has room
                    // for what others tell (see `history.rs`), but shown all the same.
                    let recorded = shared
                        .history()
                        .record_replied(message.clone(), peer.addr, now);
                    matches!(recorded, Ok(()) | Err(Refused::Full))
                }
            })
            .collect();
        let privates: Vec<LatePrivate> = {
            let mut state = shared.state();
            self.privates
                .into_iter()
                .filter(|(seq, _)| {
                    state
                        .received_privates
                        .note((peer.addr, peer.instance), *seq)
                })
                .map(|(_, private)| private)
                .collect()
        };
        let batch = reunion.add(
            peer.member(),
            messages,
            privates,
            u64::from(unavailable),
            self.waited_for,
        );
        if let Some(batch) = batch {
            shared.emit(batch);
        }
    }
}

/// Lowers our claim on `peer`'s own messages in `have` to `had_of_theirs`, what we had
/// of them when the cut began (dropping the claim if we had none): the answer then
/// counts its lines we can no longer get, and repeats only lines we already show,
/// which are recorded once.
fn claim_only_what_we_had(have: &mut Vec<MessageId>, peer: &PeerIdentity, had: Option<u64>) {
    let theirs = |id: &MessageId| id.origin == peer.addr && id.instance == peer.instance;
    match had {
        Some(had) => {
            for id in have.iter_mut().filter(|id| theirs(id)) {
                id.seq = id.seq.min(had);
            }
        }
        None => have.retain(|id| !theirs(id)),
    }
}

/// Sends a member that asks, after a cut, what it missed: the first-hand messages it
/// lacks, our private messages to it after the last it received, and how many of our
/// own it missed that we no longer have.
pub(crate) fn answer(
    shared: &Shared,
    link: &Link,
    peer: &PeerIdentity,
    privates_received: u64,
    have: Vec<MessageId>,
) {
    let (heard, (privates, privates_unavailable)) = {
        let state = shared.state();
        let heard = state.peers.last_heard_before_cut(peer.addr, peer.instance);
        let privates = state
            .sent_privates
            .since((peer.addr, peer.instance), privates_received);
        (heard, privates)
    };
    // What was written to the member in the seconds before we noticed the cut may be
    // lost as well: count from a timeout earlier. Without a cut on record, only what
    // it names in `have` can be missing.
    let since_ms = heard.map_or(i64::MAX, |heard| {
        heard.at_ms.saturating_sub(PEER_TIMEOUT.as_millis() as i64)
    });
    // Which of our own messages it had: as it says, or, if it has none of ours, all
    // we had sent when we last heard from it.
    let own_have = have
        .iter()
        .find(|id| id.origin == shared.host() && id.instance == shared.instance)
        .map(|id| id.seq)
        .or(heard.map(|heard| heard.our_seq));
    let last_seq = shared.last_seq.load(Ordering::SeqCst);
    let catch_up = CatchUp { have, since_ms };
    let (messages, own_kept) = {
        let history = shared.history();
        (
            history.lacked_by(&catch_up),
            history.numbers_of(shared.host(), shared.instance),
        )
    };
    let unavailable = unavailable_own(own_have, last_seq, &own_kept) + privates_unavailable;
    for message in messages {
        shared.send_frame(link, &Frame::CatchUpEntry { message });
    }
    for private in privates {
        shared.send_frame(
            link,
            &Frame::CatchUpPrivate {
                seq: private.seq,
                sent_at_ms: private.sent_at_ms,
                text: private.text,
            },
        );
    }
    shared.send_frame(
        link,
        &Frame::CatchUpEnd {
            unavailable: u32::try_from(unavailable).unwrap_or(u32::MAX),
        },
    );
}
