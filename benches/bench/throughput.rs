//! Part 2: throughput. Messages per second through a mesh, next to plain TCP.

use super::*;

/// One sender and then four, in a chat of 8 members, sending 100-byte messages as fast
/// as they can; the figure is messages per second delivered to every member, with none
/// lost. Best of a few rounds, alternating with the same bytes over plain std sockets.
pub(crate) fn part_throughput(plan: &Plan, table: &mut Table) -> Result<(), String> {
    let numbers: Vec<Number> = (10..18).collect();
    let mut chat_reports = Reports::new();
    let cluster = Cluster::start(&numbers, free_port(), &mut chat_reports)?;
    let mut floor_reports = Reports::new();
    let floor = PlainMesh::new(&numbers, &numbers[..4], free_port(), &floor_reports)?;
    for senders in [1usize, 4] {
        let senders = &numbers[..senders];
        let mut best = [None::<f64>, None];
        let mut lost = [0u64, 0];
        for _ in 0..plan.throughput_rounds {
            let chat_round = throughput_round(
                &mut chat_reports,
                &numbers,
                senders,
                plan.throughput_messages,
                &|from, id| cluster.send(from, id),
            );
            let floor_round = throughput_round(
                &mut floor_reports,
                &numbers,
                senders,
                plan.throughput_messages,
                &|from, id| floor.send(from, id),
            );
            for (k, round) in [chat_round, floor_round].into_iter().enumerate() {
                match round {
                    Ok(rate) => best[k] = Some(best[k].map_or(rate, |b: f64| b.max(rate))),
                    Err(missing) => lost[k] += missing,
                }
            }
        }
        let figure = |rate: Option<f64>, lost: u64| match rate {
            Some(rate) => Figure::Rate(rate),
            None => Figure::None(format!("{lost} deliveries lost")),
        };
        table.row(Row {
            what: if senders.len() == 1 {
                "2 throughput, 1 sender → 7 members, 100 B".to_string()
            } else {
                format!(
                    "2 throughput, {} senders at once, 8 members, 100 B",
                    senders.len()
                )
            },
            chat: figure(best[0], lost[0]),
            floor: figure(best[1], lost[1]),
            one_way: None,
            how: format!(
                "same frames, std fan-out; best of {}{}",
                plan.throughput_rounds,
                if lost[0] + lost[1] > 0 {
                    format!("; lost in some round: {} / {}", lost[0], lost[1])
                } else {
                    String::new()
                }
            ),
        });
    }
    cluster.leave_all();
    floor.close();
    Ok(())
}

/// Every sender sends its share of `messages` at once; returns messages per second
/// delivered to all (from the first send to the last delivery), or how many deliveries
/// never arrived.
pub(crate) fn throughput_round(
    reports: &mut Reports,
    members: &[Number],
    senders: &[Number],
    messages: u64,
    send: &(dyn Fn(Number, u64) -> Result<(), String> + Sync),
) -> Result<f64, u64> {
    let per_sender = messages / senders.len() as u64;
    let first_id = ID_BLOCK.fetch_add(1, Ordering::Relaxed) * ID_BLOCK_SIZE;
    let total = per_sender * senders.len() as u64;
    let mut received: HashMap<Number, Vec<bool>> = members
        .iter()
        .map(|&m| (m, vec![false; total as usize]))
        .collect();
    let expected_per_member =
        |m: Number| per_sender * senders.iter().filter(|&&s| s != m).count() as u64;
    let mut missing: u64 = members.iter().map(|&m| expected_per_member(m)).sum();
    let started = Instant::now();
    let mut last = started;
    thread::scope(|scope| {
        for (k, &from) in senders.iter().enumerate() {
            scope.spawn(move || {
                let first = first_id + k as u64 * per_sender;
                for id in first..first + per_sender {
                    if send(from, id).is_err() {
                        return;
                    }
                }
            });
        }
        while missing > 0 {
            let Ok(seen) = reports.rx.recv_timeout(STALL_TIMEOUT) else {
                break;
            };
            let What::Message { from, id } = seen.what else {
                continue;
            };
            let Some(index) = id.checked_sub(first_id).filter(|&i| i < total) else {
                continue;
            };
            if seen.at == from {
                continue;
            }
            if let Some(slot) = received
                .get_mut(&seen.at)
                .and_then(|r| r.get_mut(index as usize))
                && !*slot
            {
                *slot = true;
                missing -= 1;
                last = seen.t;
            }
        }
    });
    if missing > 0 {
        return Err(missing);
    }
    Ok(total as f64 / last.duration_since(started).as_secs_f64())
}
