//! Part 4: a crash (SIGKILL) of a real process, and how soon every member notices.

use super::*;

/// A real `p2pchat` process joins 7 members on loopback and is killed with SIGKILL;
/// the figure is the time until all 7 have noticed. The floor: a `--floor-hold`
/// process connected to 7 plain servers, killed the same way.
pub(crate) fn part_crash(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    let existing: Vec<Number> = (10..17).collect();
    let port = free_port();
    let mut chat_reports = Reports::new();
    let cluster = Cluster::start(&existing, port, &mut chat_reports)?;
    let mut floor_reports = Reports::new();
    let servers = existing
        .iter()
        .map(|&n| plain_server(n, &floor_reports))
        .collect::<Result<Vec<_>, String>>()?;
    let mut noticed = [Samples::default(), Samples::default()];
    for rep in 0..plan.crash_reps {
        let victim = 120 + rep as Number;
        let mut chat = Proc::spawn(
            chat_command(chat_binary, lo(victim), port),
            victim,
            &chat_reports,
        )?;
        chat_reports
            .wait(STEP_TIMEOUT, |m, _| {
                existing.iter().all(|&e| m.knows(e, victim))
            })
            .ok_or("the crash victim did not join")?;
        let killed = Instant::now();
        chat.kill();
        let gone = chat_reports.wait(STEP_TIMEOUT, |m, _| {
            existing.iter().all(|&e| !m.knows(e, victim))
        });
        push_time(&mut noticed[0], gone, killed);

        let mut floor = Proc::spawn(floor_hold_command(lo(victim)), victim, &floor_reports)?;
        for server in &servers {
            floor.type_line(&format!("{server} 1"))?;
        }
        floor_reports
            .wait(STEP_TIMEOUT, |m, _| {
                existing.iter().all(|&e| m.knows(e, victim))
            })
            .ok_or("the floor's crash victim did not connect")?;
        let killed = Instant::now();
        floor.kill();
        let gone = floor_reports.wait(STEP_TIMEOUT, |m, _| {
            existing.iter().all(|&e| !m.knows(e, victim))
        });
        push_time(&mut noticed[1], gone, killed);
    }
    cluster.leave_all();
    let [chat, plain] = &noticed;
    for (label, q) in [("p50", 0.5), ("max", 1.0)] {
        table.row(Row {
            what: format!(
                "4 crash (SIGKILL → all 7 noticed), {label} of {}",
                plan.crash_reps
            ),
            chat: time_figure(chat.quantile(q)),
            floor: time_figure(plain.quantile(q)),
            one_way: None,
            how: format!(
                "process with 7 std connections, SIGKILL{}",
                lost_note(chat, plain)
            ),
        });
    }
    Ok(())
}
