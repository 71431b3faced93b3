//! Part 3: a join and a leave, as seen by every member already there.

use super::*;

/// A new member joining a chat of 7, from its start until all 8 have each other; then
/// the same member leaving (gracefully), until all 7 have noticed. Each repetition
/// uses a new address. The floor does the same steps with plain sockets: one UDP
/// broadcast, a TCP connect from each member, a one-byte hello each way; and leaving
/// is a `shutdown(Write)` read as end of stream.
pub(crate) fn part_join(plan: &Plan, table: &mut Table) -> Result<(), String> {
    let existing: Vec<Number> = (10..17).collect();
    let mut chat_reports = Reports::new();
    let mut cluster = Cluster::start(&existing, free_port(), &mut chat_reports)?;
    let mut floor_reports = Reports::new();
    let floor_port = free_port();
    let mut joins = [Samples::default(), Samples::default()];
    let mut leaves = [Samples::default(), Samples::default()];
    for rep in 0..plan.join_reps {
        let newcomer = 100 + rep as Number;
        let started = Instant::now();
        cluster.add(newcomer, &chat_reports)?;
        let joined = chat_reports.wait(STEP_TIMEOUT, |members, _| {
            existing
                .iter()
                .all(|&e| members.knows(e, newcomer) && members.knows(newcomer, e))
        });
        let leaving = Instant::now();
        cluster.leave(newcomer);
        let left = chat_reports.wait(STEP_TIMEOUT, |members, _| {
            existing.iter().all(|&e| !members.knows(e, newcomer))
        });
        push_time(&mut joins[0], joined, started);
        push_time(&mut leaves[0], left, leaving);

        let (joined, left) =
            plain_join_and_leave(&existing, newcomer, floor_port, &mut floor_reports)?;
        joins[1].times.push(joined);
        leaves[1].times.push(left);
    }
    cluster.leave_all();
    let reps = plan.join_reps;
    for (what, [chat, plain], how) in [
        (
            "join (start → all 8 connected)",
            &joins,
            "UDP broadcast + TCP connect + 1-byte hello each way",
        ),
        (
            "graceful leave (leave() → all 7 noticed)",
            &leaves,
            "shutdown(Write) → peers read end of stream",
        ),
    ] {
        for (label, q) in [("p50", 0.5), ("max", 1.0)] {
            table.row(Row {
                what: format!("3 {what}, {label} of {reps}"),
                chat: time_figure(chat.quantile(q)),
                floor: time_figure(plain.quantile(q)),
                one_way: None,
                how: format!("{how}{}", lost_note(chat, plain)),
            });
        }
    }
    Ok(())
}

pub(crate) fn push_time(samples: &mut Samples, end: Option<Instant>, start: Instant) {
    match end {
        Some(end) => samples.times.push(end.saturating_duration_since(start)),
        None => samples.lost += 1,
    }
}

/// The floor of a join and a leave: what p2pchat does, with nothing else.
pub(crate) fn plain_join_and_leave(
    existing: &[Number],
    newcomer: Number,
    port: u16,
    reports: &mut Reports,
) -> Result<(Duration, Duration), String> {
    // The members already there wait for an announcement, as p2pchat's discovery
    // threads do; each connects back, says hello, then reads until the newcomer leaves.
    let mut members = Vec::new();
    for &member in existing {
        let listener = shared_udp_listener(port).map_err(|e| format!("UDP port {port}: {e}"))?;
        let report = reports.sender();
        members.push(thread::spawn(move || -> io::Result<()> {
            listener.set_read_timeout(Some(STEP_TIMEOUT))?;
            let mut datagram = [0u8; 16];
            let (_, from) = listener.recv_from(&mut datagram)?;
            let SocketAddr::V4(from) = from else {
                return Ok(());
            };
            let mut stream = dial(lo(member), SocketAddrV4::new(*from.ip(), port))?;
            stream.write_all(&[member])?;
            let mut hello = [0u8; 1];
            stream.read_exact(&mut hello)?;
            report_seen(&report, member, What::Joined(hello[0]));
            while stream.read(&mut hello)? > 0 {}
            report_seen(&report, member, What::Left(hello[0]));
            Ok(())
        }));
    }
    let started = Instant::now();
    let newcomer_ip = lo(newcomer);
    let io_error = |e: io::Error| format!("floor join of {newcomer_ip}: {e}");
    let listener = TcpListener::bind((newcomer_ip, port)).map_err(io_error)?;
    let announcer = UdpSocket::bind((newcomer_ip, 0)).map_err(io_error)?;
    announcer.set_broadcast(true).map_err(io_error)?;
    announcer
        .send_to(&[newcomer], (Ipv4Addr::BROADCAST, port))
        .map_err(io_error)?;
    let mut streams = Vec::new();
    for _ in existing {
        let (mut stream, _) = listener.accept().map_err(io_error)?;
        stream.set_nodelay(true).map_err(io_error)?;
        let mut hello = [0u8; 1];
        stream.read_exact(&mut hello).map_err(io_error)?;
        stream.write_all(&[newcomer]).map_err(io_error)?;
        streams.push(stream);
    }
    let joined = reports
        .wait(STEP_TIMEOUT, |members, _| {
            existing.iter().all(|&e| members.knows(e, newcomer))
        })
        .ok_or("the floor's join timed out")?;
    let leaving = Instant::now();
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let left = reports
        .wait(STEP_TIMEOUT, |members, _| {
            existing.iter().all(|&e| !members.knows(e, newcomer))
        })
        .ok_or("the floor's leave timed out")?;
    for member in members {
        let _ = member.join();
    }
    Ok((joined - started, left - leaving))
}
