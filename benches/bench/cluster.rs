//! p2pchat members running in this process, reporting what they see.

use super::*;

/// p2pchat members running in this process, all on one port, on 127.0.0.n.
pub(crate) struct Cluster {
    pub(crate) port: u16,
    pub(crate) nodes: Vec<(Number, Node)>,
}

impl Cluster {
    /// Starts a member on each number and waits until they are all connected.
    pub(crate) fn start(
        numbers: &[Number],
        port: u16,
        reports: &mut Reports,
    ) -> Result<Cluster, String> {
        let mut cluster = Cluster {
            port,
            nodes: Vec::new(),
        };
        for &n in numbers {
            cluster.add(n, reports)?;
        }
        reports
            .wait_mesh(numbers, STEP_TIMEOUT)
            .ok_or(format!("{} members did not all connect", numbers.len()))?;
        Ok(cluster)
    }

    /// Starts one more member, whose events are drained by a thread of its own into
    /// `reports`.
    pub(crate) fn add(&mut self, number: Number, reports: &Reports) -> Result<(), String> {
        let mut config = Config::new(lo(number), name_of(number));
        config.port = self.port;
        let (node, events) = Node::start(config).map_err(|e| format!("{}: {e}", lo(number)))?;
        let report = reports.sender();
        thread::Builder::new()
            .name(format!("events {number}"))
            .stack_size(HELPER_THREAD_STACK_BYTES)
            .spawn(move || {
                // Keeps draining even when nobody listens any more, so the member
                // never blocks on a full event queue; ends when the member is gone.
                for event in events {
                    let what = match event {
                        Event::Joined(member) => What::Joined(member.addr.octets()[3]),
                        Event::Left(member) => What::Left(member.addr.octets()[3]),
                        Event::Message(message) => match id_of_text(&message.text) {
                            Some(id) => What::Message {
                                from: message.id.origin.octets()[3],
                                id,
                            },
                            None => continue,
                        },
                        _ => continue,
                    };
                    report_seen(&report, number, what);
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        self.nodes.push((number, node));
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn send(&self, from: Number, id: u64) -> Result<(), String> {
        let (_, node) = self
            .nodes
            .iter()
            .find(|(n, _)| *n == from)
            .ok_or(format!("no member {from}"))?;
        node.send(&message_text(id)).map_err(|e| e.to_string())
    }

    pub(crate) fn leave(&mut self, number: Number) {
        if let Some(index) = self.nodes.iter().position(|(n, _)| *n == number) {
            self.nodes.remove(index).1.leave();
        }
    }

    pub(crate) fn leave_all(self) {
        for (_, node) in self.nodes {
            node.leave();
        }
    }
}
