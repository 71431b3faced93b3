//! Part 1: latency. Send call to delivery at every member, next to a plain fan-out.

use super::*;

/// Send call to delivery at every member, for 2, 4, 8 and 16 members, interleaved
/// sample by sample with a plain fan-out over a mesh of std `TcpStream`s between the
/// same addresses; and plain ping-pong for the one-way latency of one connection.
pub(crate) fn part_latency(plan: &Plan, table: &mut Table) -> Result<(), String> {
    // Back to back, both threads stay on a running CPU; a chat line usually finds its
    // reader asleep, so the "cold" one, a pause before each round trip, is the one
    // the chat's figures are divided by (the ×1-way column).
    let hot = ping_pong(lo(10), lo(11), plan, Duration::ZERO)?;
    let one_way = ping_pong(lo(10), lo(11), plan, COLD_PAUSE)?;
    for (what, samples) in [("back to back", &hot), ("1 ms apart (cold)", &one_way)] {
        table.row(Row {
            what: format!("1 one-way TCP latency, ping-pong RTT/2 {what}, p50"),
            chat: Figure::None("—".into()),
            floor: time_figure(samples.quantile(0.5)),
            one_way: None,
            how: format!("std TcpStream {} ↔ {}, 100 B", lo(10), lo(11)),
        });
    }
    for members in [2u8, 4, 8, 16] {
        let numbers: Vec<Number> = (10..10 + members).collect();
        let (mut chat, mut plain) = (Samples::default(), Samples::default());
        // Each round starts fresh threads, which the scheduler places anew: on two
        // virtual CPUs a wake-up costs a few µs on the waker's CPU and tens of µs on
        // the other one, so one placement can tilt a whole round.
        for _ in 0..plan.latency_rounds {
            let mut chat_reports = Reports::new();
            let cluster = Cluster::start(&numbers, free_port(), &mut chat_reports)?;
            let mut floor_reports = Reports::new();
            let floor = PlainMesh::new(&numbers, &numbers, free_port(), &floor_reports)?;
            let [chat_round, floor_round] = compare_delivery(
                &numbers,
                plan.warmup_samples,
                plan.latency_samples / plan.latency_rounds,
                Carrier {
                    reports: &mut chat_reports,
                    send: &mut |from, id| cluster.send(from, id),
                },
                Carrier {
                    reports: &mut floor_reports,
                    send: &mut |from, id| floor.send(from, id),
                },
            );
            cluster.leave_all();
            floor.close();
            chat.absorb(chat_round);
            plain.absorb(floor_round);
        }
        let quantiles: &[(&str, f64)] = if members == 2 {
            &[("p50", 0.5)]
        } else {
            &[("p50", 0.5), ("p99", 0.99), ("max", 1.0)]
        };
        for &(label, q) in quantiles {
            table.row(Row {
                what: format!("1 latency to all, {members} members, {label}"),
                chat: time_figure(chat.quantile(q)),
                floor: time_figure(plain.quantile(q)),
                one_way: Some(time_figure(one_way.quantile(q))),
                how: format!(
                    "std fan-out to {} socket{}{}",
                    members - 1,
                    plural(usize::from(members - 1)),
                    lost_note(&chat, &plain)
                ),
            });
        }
    }
    Ok(())
}

/// Round trips of a 100-byte message between two addresses, `pause` apart; each sample
/// is half one.
pub(crate) fn ping_pong(
    a: Ipv4Addr,
    b: Ipv4Addr,
    plan: &Plan,
    pause: Duration,
) -> Result<Samples, String> {
    let listener = TcpListener::bind((b, 0)).map_err(|e| format!("bind {b}: {e}"))?;
    let Ok(SocketAddr::V4(address)) = listener.local_addr() else {
        return Err("the ping-pong listener has no IPv4 address".into());
    };
    let echo = thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buffer = [0u8; MESSAGE_BYTES];
        while stream.read_exact(&mut buffer).is_ok() {
            stream.write_all(&buffer)?;
        }
        Ok(())
    });
    let mut stream = dial(a, address).map_err(|e| format!("dial {address}: {e}"))?;
    let mut buffer = [7u8; MESSAGE_BYTES];
    let mut samples = Samples::default();
    for i in 0..plan.warmup_samples + plan.latency_samples {
        if !pause.is_zero() {
            thread::sleep(pause);
        }
        let sent = Instant::now();
        stream
            .write_all(&buffer)
            .and_then(|()| stream.read_exact(&mut buffer))
            .map_err(|e| format!("ping-pong: {e}"))?;
        if i >= plan.warmup_samples {
            samples.times.push(sent.elapsed() / 2);
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let _ = echo.join();
    Ok(samples)
}

/// One way of delivering a message: how to send it, and where deliveries show up.
pub(crate) struct Carrier<'a> {
    pub(crate) reports: &'a mut Reports,
    pub(crate) send: &'a mut dyn FnMut(Number, u64) -> Result<(), String>,
}

/// Sends messages from each member in turn, alternating between the two carriers, and
/// times each from the send call to its delivery at the last of the other members.
pub(crate) fn compare_delivery<'a>(
    members: &[Number],
    warmup: usize,
    samples: usize,
    mut chat: Carrier<'a>,
    mut floor: Carrier<'a>,
) -> [Samples; 2] {
    let mut results = [Samples::default(), Samples::default()];
    for i in 0..warmup + samples {
        let from = members[i % members.len()];
        for (carrier, result) in [&mut chat, &mut floor].into_iter().zip(&mut results) {
            match one_delivery(carrier, members, from) {
                Some(time) if i >= warmup => result.times.push(time),
                Some(_) => {}
                None => result.lost += 1,
            }
        }
    }
    results
}

/// Sends one message from `from` and waits until every other member has reported it.
pub(crate) fn one_delivery(
    carrier: &mut Carrier,
    members: &[Number],
    from: Number,
) -> Option<Duration> {
    let id = next_message_id();
    let sent = Instant::now();
    (carrier.send)(from, id).ok()?;
    let mut delivered = HashSet::new();
    let last = carrier.reports.wait(SAMPLE_TIMEOUT, |_, seen| {
        if let What::Message { id: got, .. } = seen.what
            && got == id
            && seen.at != from
        {
            delivered.insert(seen.at);
        }
        delivered.len() == members.len() - 1
    })?;
    Some(last.saturating_duration_since(sent))
}
