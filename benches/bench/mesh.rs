//! Part 3b: mesh formation, members started at once in this process.

use super::*;

/// N members started at once (one after the other, as fast as this thread can), until
/// every one has the other N-1. The floor binds N listeners and connects every pair
/// once, a one-byte hello each way, from a thread per member.
pub(crate) fn part_mesh(table: &mut Table) -> Result<(), String> {
    for members in [8u8, 32, 64] {
        let numbers: Vec<Number> = (10..10 + members).collect();
        let mut reports = Reports::new();
        let cpu_before = process_cpu(std::process::id())?;
        let started = Instant::now();
        let chat = Cluster::start(&numbers, free_port(), &mut reports).map(|cluster| {
            let formed = started.elapsed();
            let cpu = process_cpu(std::process::id());
            cluster.leave_all();
            (formed, cpu)
        });
        let (chat, chat_cpu) = match chat {
            Ok((formed, cpu)) => (Ok(formed), cpu?.saturating_sub(cpu_before)),
            Err(e) => (Err(e), Duration::ZERO),
        };
        let cpu_before = process_cpu(std::process::id())?;
        let floor = plain_mesh_formation(&numbers, free_port());
        let floor_cpu = process_cpu(std::process::id())?.saturating_sub(cpu_before);
        table.row(Row {
            what: format!("3 mesh formation, {members} started at once"),
            chat: chat.map_or_else(Figure::None, Figure::Time),
            floor: floor.map_or_else(Figure::None, Figure::Time),
            one_way: None,
            how: format!(
                "N listeners, every pair connected once + hello, thread per member; \
                 CPU {} vs {}",
                Figure::Time(chat_cpu),
                Figure::Time(floor_cpu)
            ),
        });
    }
    Ok(())
}

pub(crate) fn plain_mesh_formation(numbers: &[Number], port: u16) -> Result<Duration, String> {
    let started = Instant::now();
    let listeners = numbers
        .iter()
        .map(|&n| TcpListener::bind((lo(n), port)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("floor mesh: {e}"))?;
    let kept = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    thread::scope(|scope| {
        for (i, listener) in listeners.iter().enumerate() {
            let (kept, failure) = (&kept, &failure);
            let me = numbers[i];
            // Member i accepts the i members before it and dials the ones after it.
            scope.spawn(move || {
                let accepted = (0..i).try_for_each(|_| {
                    let (mut stream, _) = listener.accept()?;
                    let mut hello = [0u8; 1];
                    stream.read_exact(&mut hello)?;
                    stream.write_all(&[me])?;
                    lock(kept).push(stream);
                    Ok(())
                });
                if let Err(e) = accepted {
                    *lock(failure) = Some(e);
                }
            });
            scope.spawn(move || {
                let dialed = numbers[i + 1..].iter().try_for_each(|&peer| {
                    let mut stream = dial(lo(me), SocketAddrV4::new(lo(peer), port))?;
                    stream.write_all(&[me])?;
                    let mut hello = [0u8; 1];
                    stream.read_exact(&mut hello)?;
                    lock(kept).push(stream);
                    Ok::<(), io::Error>(())
                });
                if let Err(e) = dialed {
                    *lock(failure) = Some(e);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    if let Some(e) = lock(&failure).take() {
        return Err(format!("floor mesh: {e}"));
    }
    Ok(elapsed)
}
