//! Reports: who saw what, when.

use super::*;

/// Something a member reported, stamped when the bench learnt of it.
pub(crate) struct Seen {
    pub(crate) at: Number,
    pub(crate) what: What,
    pub(crate) t: Instant,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum What {
    Joined(Number),
    Left(Number),
    Message {
        from: Number,
        id: u64,
    },
    /// A message shown late, after a reconnect (`hh:mm:ss [late] mN: TEXT`).
    Late {
        from: Number,
        id: u64,
    },
    /// A `--floor-hold` process has this many connections open.
    Ready(u32),
}

pub(crate) fn report_seen(report: &Sender<Seen>, at: Number, what: What) {
    // An error means the measurement this belonged to is over: nobody to tell.
    let _ = report.send(Seen {
        at,
        what,
        t: Instant::now(),
    });
}

/// The reports of one group of members, and who knows whom according to them.
pub(crate) struct Reports {
    pub(crate) tx: Sender<Seen>,
    pub(crate) rx: Receiver<Seen>,
    pub(crate) members: Membership,
}

impl Reports {
    pub(crate) fn new() -> Reports {
        let (tx, rx) = mpsc::channel();
        Reports {
            tx,
            rx,
            members: Membership::default(),
        }
    }

    pub(crate) fn sender(&self) -> Sender<Seen> {
        self.tx.clone()
    }

    /// Takes reports until `done` (asked after each, once the membership has taken it
    /// in) is true; returns the time of the report that made it true, or `None` after
    /// `timeout`.
    pub(crate) fn wait(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Membership, &Seen) -> bool,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()?;
            self.members.apply(&seen);
            if done(&self.members, &seen) {
                return Some(seen.t);
            }
        }
    }

    /// Waits until each of `numbers` knows all the others.
    pub(crate) fn wait_mesh(&mut self, numbers: &[Number], timeout: Duration) -> Option<Instant> {
        let complete = |members: &Membership| {
            numbers
                .iter()
                .all(|&n| members.count(n) >= numbers.len().saturating_sub(1))
        };
        if complete(&self.members) {
            return Some(Instant::now());
        }
        self.wait(timeout, |members, _| complete(members))
    }
}

/// Who each member has said joined and not yet left.
#[derive(Default)]
pub(crate) struct Membership {
    pub(crate) of: HashMap<Number, HashSet<Number>>,
}

impl Membership {
    pub(crate) fn apply(&mut self, seen: &Seen) {
        match seen.what {
            What::Joined(who) => {
                self.of.entry(seen.at).or_default().insert(who);
            }
            What::Left(who) => {
                if let Some(known) = self.of.get_mut(&seen.at) {
                    known.remove(&who);
                }
            }
            What::Message { .. } | What::Late { .. } | What::Ready(_) => {}
        }
    }

    pub(crate) fn knows(&self, at: Number, who: Number) -> bool {
        self.of.get(&at).is_some_and(|known| known.contains(&who))
    }

    pub(crate) fn count(&self, at: Number) -> usize {
        self.of.get(&at).map_or(0, HashSet::len)
    }
}
