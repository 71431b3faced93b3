//! What a member reports to its front end (the terminal, a bot, a test), and the queue
//! that carries it there without ever making the network wait.
//!
//! ## Why not a bounded channel
//!
//! The threads that read the network produce events; the front end consumes them at
//! the speed of its screen. With a bounded channel whose `send` blocks when full, a
//! front end that pauses (a terminal scrolled back or stopped with Ctrl-S, a slow pipe,
//! a bot busy elsewhere) stops the network threads too: they stop reading, stop sending
//! heartbeats, and the member is dropped by everyone as silent. Worse, a front end that
//! also *sends* from the thread that reads events can wait on itself forever.
//!
//! So `EventQueue::push` never blocks. Events wait in memory up to a budget
//! ([`crate::tuning::EVENT_QUEUE_BYTES`]); past it, events are dropped and *counted*
//! until the front end has caught up with half of the backlog, and it then receives one
//! [`Event::Missed`] saying how many, in the place where they went missing. Nothing is
//! lost silently, and the chat goes on at network speed.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::protocol::{ChatMessage, Frame};

/// A member as the user knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub name: String,
    pub addr: Ipv4Addr,
}

/// Something the front end should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Joined(Member),
    Left(Member),
    /// A chat message, our own included.
    Message(ChatMessage),
    Hooray {
        from: Member,
        sent_at_ms: i64,
    },
    /// A `/msg` between us and one other member: `from` or `to` is us.
    Private {
        from: Member,
        to: Member,
        sent_at_ms: i64,
        text: String,
    },
    /// A member (or we) changed name.
    Renamed {
        addr: Ipv4Addr,
        old: String,
        new: String,
    },
    /// Members we had lost contact with (a pulled cable, a Wi-Fi drop) are back, and
    /// sent what we missed while apart: chat messages (their own and others'), and
    /// their private messages to us, none of them shown before, in send order; and, for
    /// each member that had to say so, how many of its messages of that time it no
    /// longer had. Members that come back together are in one event
    /// (see `catch_up.rs`). Shown marked as late.
    CaughtUp {
        from: Vec<Member>,
        messages: Vec<ChatMessage>,
        privates: Vec<LatePrivate>,
        unavailable: Vec<(Member, u64)>,
    },
    /// Something went wrong that the user may want to know, in words for the user: a
    /// peer broke the protocol, a connection was refused, the broadcast failed. The chat
    /// goes on. (The terminal prints these on stderr.)
    Warning(String),
    /// The front end fell behind and these events were dropped here, where they would
    /// have been: `messages` counts chat, private and hooray lines (chat lines can be
    /// fetched again with `/history`), `other` everything else.
    Missed {
        messages: u64,
        other: u64,
    },
    /// A frame crossed a connection (only with [`crate::Config::trace_frames`]).
    Wire {
        peer: Ipv4Addr,
        direction: WireDirection,
        frame: Frame,
    },
}

/// A private message that arrived late, after a cut ([`Event::CaughtUp`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatePrivate {
    pub from: Member,
    pub sent_at_ms: i64,
    pub text: String,
}

/// Which way an [`Event::Wire`] frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireDirection {
    Sent,
    Received,
}

impl Event {
    /// About how much memory the event holds while it waits: its own size plus the
    /// text it owns. Only used against the queue's budget, so "about" is enough.
    fn weight(&self) -> usize {
        let text = match self {
            Event::Message(message) => message.text.len() + message.sender_name.len(),
            Event::Private { text, .. } => text.len(),
            Event::Warning(text) => text.len(),
            Event::Wire { frame, .. } => frame.encode().len(),
            Event::Joined(m) | Event::Left(m) | Event::Hooray { from: m, .. } => m.name.len(),
            Event::Renamed { old, new, .. } => old.len() + new.len(),
            Event::Missed { .. } => 0,
            Event::CaughtUp {
                messages, privates, ..
            } => {
                let messages: usize = messages.iter().map(|m| m.text.len() + 64).sum();
                let privates: usize = privates.iter().map(|p| p.text.len() + 32).sum();
                messages + privates
            }
        };
        std::mem::size_of::<Event>() + text
    }

    /// Whether the event is a line someone typed (for [`Event::Missed`]).
    fn is_a_message(&self) -> bool {
        matches!(
            self,
            Event::Message(_)
                | Event::Private { .. }
                | Event::Hooray { .. }
                | Event::CaughtUp { .. }
        )
    }
}

/// Lets one kind of warning through at most once per `interval`, counting the ones held
/// back in between, so that a flood (of refused connections, of forged announcements)
/// becomes one line a second, not a flood of lines.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    last_let_through: Option<Instant>,
    held_back: usize,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last_let_through: None,
            held_back: 0,
        }
    }

    /// Whether a warning may be given `now`: `Some(n)`, where `n` warnings were held
    /// back since the last one (to be mentioned), or `None` (this one is held back).
    pub fn admit(&mut self, now: Instant) -> Option<usize> {
        let due = self
            .last_let_through
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            self.held_back += 1;
            return None;
        }
        self.last_let_through = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// The producing side, held by the member's threads. Cheap to clone.
#[derive(Clone)]
pub(crate) struct EventQueue {
    shared: Arc<Queue>,
}

/// The consuming side: the events of one member, in the order they happened. Iterate
/// over it (the iteration ends when the member has left and every event was taken), or
/// use [`Events::recv_timeout`] to wait for one with a deadline.
pub struct Events {
    shared: Arc<Queue>,
}

struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when an event is queued while a front-end thread sleeps on it
    /// (`sleepers`), and when the queue closes.
    changed: Condvar,
}

struct QueueState {
    waiting: VecDeque<Event>,
    /// Sum of the waiting events' weights.
    weight: usize,
    budget: usize,
    /// The budget was exceeded and the queue has not yet drained to half of it: events
    /// are dropped (so one notice covers the whole gap, instead of a notice after
    /// every event that squeezes in).
    dropping: bool,
    /// No more events will come: the member left.
    closed: bool,
    /// Nobody will take them: the [`Events`] was dropped.
    receiver_gone: bool,
    /// Front-end threads asleep on `changed`. Only they need waking: a condvar's
    /// notify is a system call even when nobody waits, and events come by the thousand.
    sleepers: usize,
}

/// A new queue whose waiting events may weigh at most `budget` bytes.
pub(crate) fn event_queue(budget: usize) -> (EventQueue, Events) {
    let shared = Arc::new(Queue {
        state: Mutex::new(QueueState {
            waiting: VecDeque::new(),
            weight: 0,
            budget,
            dropping: false,
            closed: false,
            receiver_gone: false,
            sleepers: 0,
        }),
        changed: Condvar::new(),
    });
    (
        EventQueue {
            shared: shared.clone(),
        },
        Events { shared },
    )
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Every method leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventQueue {
    /// Queues an event for the front end. Never blocks: past the budget the event is
    /// counted in an [`Event::Missed`] instead (see the module doc). After [`EventQueue::close`], or once
    /// the front end has dropped its [`Events`], events are discarded.
    pub fn push(&self, event: Event) {
        let mut queue = self.shared.lock();
        if queue.closed || queue.receiver_gone {
            return;
        }
        let weight = event.weight();
        if queue.dropping && queue.weight <= queue.budget / 2 {
            queue.dropping = false;
        }
        if !queue.dropping && queue.weight + weight <= queue.budget {
            queue.weight += weight;
            queue.waiting.push_back(event);
        } else {
            queue.dropping = true;
            let message = u64::from(event.is_a_message());
            // Drops in a row share one notice, so the notices themselves stay few: a
            // new one starts only after an event that fit in the budget.
            match queue.waiting.back_mut() {
                Some(Event::Missed { messages, other }) => {
                    *messages += message;
                    *other += 1 - message;
                }
                _ => queue.waiting.push_back(Event::Missed {
                    messages: message,
                    other: 1 - message,
                }),
            }
        }
        let asleep = queue.sleepers > 0;
        drop(queue);
        if asleep {
            self.shared.changed.notify_one();
        }
    }

    /// Ends the stream: the front end takes what is queued, then sees the end.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

impl Events {
    /// Waits for the next event. `Err` once the member has left and every event was
    /// taken.
    pub fn recv(&self) -> Result<Event, RecvError> {
        let mut queue = self.shared.lock();
        loop {
            if let Some(event) = take(&mut queue) {
                return Ok(event);
            }
            if queue.closed {
                return Err(RecvError);
            }
            queue.sleepers += 1;
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.sleepers -= 1;
        }
    }

    /// Waits at most `wait` for the next event.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Event, RecvTimeoutError> {
        // A wait too long to be a moment (`Duration::MAX`) is a wait without end.
        let Some(deadline) = Instant::now().checked_add(wait) else {
            return self.recv().map_err(|_| RecvTimeoutError::Disconnected);
        };
        let mut queue = self.shared.lock();
        loop {
            if let Some(event) = take(&mut queue) {
                return Ok(event);
            }
            if queue.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            queue.sleepers += 1;
            queue = self
                .shared
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            queue.sleepers -= 1;
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let mut queue = self.shared.lock();
        match take(&mut queue) {
            Some(event) => Ok(event),
            None if queue.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

fn take(queue: &mut QueueState) -> Option<Event> {
    let event = queue.waiting.pop_front()?;
    queue.weight -= event.weight().min(queue.weight);
    Some(event)
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.recv().ok()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.receiver_gone = true;
        queue.waiting.clear();
        queue.weight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(text: &str) -> Event {
        Event::Warning(text.to_owned())
    }

    fn hooray() -> Event {
        Event::Hooray {
            from: Member {
                name: "Bo".into(),
                addr: Ipv4Addr::LOCALHOST,
            },
            sent_at_ms: 0,
        }
    }

    #[test]
    fn a_throttle_lets_one_warning_through_per_interval_and_counts_the_rest() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert_eq!(throttle.admit(start), Some(0));
        assert_eq!(throttle.admit(start + Duration::from_millis(10)), None);
        assert_eq!(throttle.admit(start + Duration::from_millis(20)), None);
        assert_eq!(throttle.admit(start + Duration::from_secs(1)), Some(2));
    }

    #[test]
    fn events_come_out_in_the_order_they_went_in() {
        let (queue, events) = event_queue(1 << 20);
        queue.push(warning("one"));
        queue.push(warning("two"));
        queue.close();
        let received: Vec<Event> = events.collect();
        assert_eq!(received, [warning("one"), warning("two")]);
    }

    #[test]
    fn a_full_queue_counts_what_it_drops_where_it_dropped_it() {
        let one = warning("x").weight();
        let (queue, events) = event_queue(2 * one);
        queue.push(warning("x"));
        queue.push(warning("x"));
        queue.push(hooray()); // over budget: dropped and counted
        queue.push(warning("x")); // also dropped, counted in the same notice
        queue.push(warning("x")); // still dropped: the backlog must halve first
        assert_eq!(events.try_recv(), Ok(warning("x")));
        queue.push(warning("y")); // half the budget: taken again
        let rest: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert_eq!(
            rest,
            [
                warning("x"),
                Event::Missed {
                    messages: 1,
                    other: 2
                },
                warning("y"),
            ]
        );
    }

    #[test]
    fn pushing_never_waits_for_the_reader() {
        let (queue, _events) = event_queue(4096);
        for _ in 0..100_000 {
            queue.push(hooray());
        }
        // Reaching this line is the test: a blocking queue would have hung above.
    }

    #[test]
    fn the_stream_ends_after_the_last_queued_event() {
        let (queue, events) = event_queue(1 << 20);
        queue.push(warning("last"));
        queue.close();
        queue.push(warning("after the end"));
        assert_eq!(events.recv(), Ok(warning("last")));
        assert_eq!(
            events.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn a_waiting_reader_is_woken_by_an_event() {
        let (queue, events) = event_queue(1 << 20);
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            queue.push(warning("hello"));
        });
        assert_eq!(
            events.recv_timeout(Duration::from_secs(20)),
            Ok(warning("hello"))
        );
        producer.join().expect("the producer thread");
    }
}
