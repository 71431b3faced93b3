//! Part 8: catch-up after a reconnect: 1000 lines missed behind a pulled cable.
//!
//! When a member's connection comes back after a cut, p2pchat exchanges what each
//! side missed and shows it under a heading, each line marked late:
//!
//! ```text
//! Caught up with m1 and m2: 1000 messages sent while you were apart
//! 09:30:04 [late] m1: 17 xxxx…
//! ```
//!
//! Three members on the namespace LAN. One repetition: m3's cable is pulled at the
//! switch, and once both sides have printed the other's `left` line (the 4 s silence
//! timeout), m1 says 1000 lines, which m2 receives; then the cable goes back in. Two
//! times are taken at m3's stdout: from its first `joined` line after the cable went
//! in to its 1000th late line (the catch-up itself), and from the cable going in to
//! that line (rediscovery included: the next announcement, up to 2 s away).
//!
//! The floor of the catch-up is 1000 lines over a fresh TCP connection between the
//! same namespaces: a `--floor-node` on host 1 dials one on host 3, and as soon as it
//! has printed the hello the 1000 lines are typed into it. Measured from host 3's
//! `joined` line (and, beside the time from the cable, from the sender's spawn) to host
//! 3's 1000th line.

use super::*;

use p2pchat::tuning::HISTORY_CAPACITY;

/// How many lines m1 says while m3 is away.
const MISSED_LINES: usize = 1000;

// A catch-up sends only what the sender's history still holds.
const _: () = assert!(MISSED_LINES <= HISTORY_CAPACITY);

/// Who sends, who stays, whose cable is pulled.
const SENDER: Number = 1;
const STAYER: Number = 2;
const CUT: Number = 3;

pub(crate) fn part_catch_up(
    plan: &Plan,
    chat_binary: &Path,
    table: &mut Table,
) -> Result<(), String> {
    if !root_or_skip("8 LAN catch-up", table) {
        return Ok(());
    }
    let lan = Lan::new(usize::from(CUT));
    let result = catch_up_reps(plan, &lan, chat_binary, table);
    drop(lan);
    result
}

/// The times of one repetition, p2pchat's or the floor's: from the (re)join, and from
/// the cable going in (the floor: the sender's spawn), to the last line shown.
type CatchUpTimes = (Option<Duration>, Option<Duration>);

fn catch_up_reps(
    plan: &Plan,
    lan: &Lan,
    chat_binary: &Path,
    table: &mut Table,
) -> Result<(), String> {
    let members = [SENDER, STAYER, CUT];
    let mut chat_reports = Reports::new();
    let chat = members
        .iter()
        .map(|&m| {
            let args = chat_args(lan.host_ip(usize::from(m)), LAN_CHAT_PORT);
            Proc::spawn(on_host(lan, m, chat_binary, &args), m, &chat_reports)
        })
        .collect::<Result<Vec<Proc>, String>>()?;
    chat_reports
        .wait_mesh(&members, STEP_TIMEOUT)
        .ok_or("the 3 p2pchat members on the LAN did not all connect")?;
    let mut floor_reports = Reports::new();
    let floor_receiver = Proc::spawn(
        on_host(lan, CUT, &self_exe()?, &floor_node_args(lan, CUT, &[])),
        CUT,
        &floor_reports,
    )?;

    let mut from_join = [Samples::default(), Samples::default()];
    let mut from_start = [Samples::default(), Samples::default()];
    for rep in 0..plan.catch_up_reps {
        let chat_times = chat_catch_up(lan, &chat[usize::from(SENDER) - 1], &mut chat_reports)?;
        let floor_times = floor_catch_up(lan, &mut floor_reports)?;
        for (k, (join, start)) in [chat_times, floor_times].into_iter().enumerate() {
            push_duration(&mut from_join[k], join);
            push_duration(&mut from_start[k], start);
        }
        progress(&format!(
            "catch-up {}/{}: {} from rejoin, {} from cable in",
            rep + 1,
            plan.catch_up_reps,
            time_figure(chat_times.0),
            time_figure(chat_times.1)
        ));
    }
    exit_all(chat);
    exit_all(vec![floor_receiver]);

    let reps = plan.catch_up_reps;
    for (what, [chat, floor], how) in [
        (
            "rejoin (joined line) → all shown",
            &from_join,
            "fresh TCP connection, hello → 1000 lines",
        ),
        (
            "cable in → all shown",
            &from_start,
            "spawn of a plain sender → hello → 1000 lines",
        ),
    ] {
        for (label, q) in [("p50", 0.5), ("max", 1.0)] {
            table.row(Row {
                what: format!(
                    "8 LAN catch-up of {MISSED_LINES} missed lines, {what}, {label} of {reps}"
                ),
                chat: time_figure(chat.quantile(q)),
                floor: time_figure(floor.quantile(q)),
                one_way: None,
                how: format!("{how}{}", lost_note(chat, floor)),
            });
        }
    }
    Ok(())
}

fn push_duration(samples: &mut Samples, time: Option<Duration>) {
    match time {
        Some(time) => samples.times.push(time),
        None => samples.lost += 1,
    }
}

/// One cut: m3's cable out until both sides noticed, 1000 lines from m1 (all received
/// by m2), the cable back in, until m3 has shown the 1000 as late and everyone is
/// together again. An `Err` means the test bed is broken: the members did not notice
/// the cut, or the three did not come together again.
fn chat_catch_up(lan: &Lan, sender: &Proc, reports: &mut Reports) -> Result<CatchUpTimes, String> {
    let others = [SENDER, STAYER];
    lan.cable_out(usize::from(CUT));
    reports
        .wait(STEP_TIMEOUT, |m, _| {
            others.iter().all(|&o| !m.knows(o, CUT) && !m.knows(CUT, o))
        })
        .ok_or("nobody noticed that m3's cable was pulled")?;

    let ids: HashSet<u64> = (0..MISSED_LINES).map(|_| next_message_id()).collect();
    let mut sorted: Vec<u64> = ids.iter().copied().collect();
    sorted.sort();
    let text: Vec<String> = sorted.iter().map(|&id| message_text(id)).collect();
    sender.type_line(&text.join("\n"))?;
    let mut received = HashSet::new();
    reports
        .wait(STEP_TIMEOUT, |_, seen| {
            if let (STAYER, What::Message { from: SENDER, id }) = (seen.at, seen.what) {
                if ids.contains(&id) {
                    received.insert(id);
                }
            }
            received.len() == MISSED_LINES
        })
        .ok_or("m2 did not receive m1's 1000 lines")?;

    let cable_in = Instant::now();
    lan.cable_in(usize::from(CUT));
    let mut rejoined = None;
    let mut shown = HashSet::new();
    let all_shown = reports.wait(STEP_TIMEOUT, |_, seen| {
        match seen.what {
            What::Joined(_) if seen.at == CUT && rejoined.is_none() => rejoined = Some(seen.t),
            What::Late { from: SENDER, id } if seen.at == CUT && ids.contains(&id) => {
                shown.insert(id);
            }
            _ => {}
        }
        shown.len() == MISSED_LINES
    });
    if all_shown.is_none() {
        progress(&format!(
            "m3 showed {} of the {MISSED_LINES} late lines",
            shown.len()
        ));
    }
    reports
        .wait_mesh(&[SENDER, STAYER, CUT], STEP_TIMEOUT)
        .ok_or("the three members did not come together again after the cut")?;
    Ok((
        all_shown
            .zip(rejoined)
            .map(|(end, start)| end.saturating_duration_since(start)),
        all_shown.map(|end| end.saturating_duration_since(cable_in)),
    ))
}

/// The floor: a plain sender started on host 1 dials host 3's floor node; once the
/// sender has printed the hello (its connection is ready), the 1000 lines are typed
/// into it, until host 3 has printed them all; then the sender leaves.
fn floor_catch_up(lan: &Lan, reports: &mut Reports) -> Result<CatchUpTimes, String> {
    let ids: Vec<u64> = (0..MISSED_LINES).map(|_| next_message_id()).collect();
    let text: Vec<String> = ids.iter().map(|&id| message_text(id)).collect();
    let started = Instant::now();
    let sender = Proc::spawn(
        on_host(
            lan,
            SENDER,
            &self_exe()?,
            &floor_node_args(lan, SENDER, &[CUT]),
        ),
        SENDER,
        reports,
    )?;
    let mut joined = None;
    reports
        .wait(STEP_TIMEOUT, |m, seen| {
            if seen.at == CUT && matches!(seen.what, What::Joined(SENDER)) {
                joined = Some(seen.t);
            }
            m.knows(SENDER, CUT) && m.knows(CUT, SENDER)
        })
        .ok_or("the floor's sender did not connect")?;
    sender.type_line(&text.join("\n"))?;
    let wanted: HashSet<u64> = ids.into_iter().collect();
    let mut shown = HashSet::new();
    let all_shown = reports.wait(STEP_TIMEOUT, |_, seen| {
        if let (CUT, What::Message { from: SENDER, id }) = (seen.at, seen.what) {
            if wanted.contains(&id) {
                shown.insert(id);
            }
        }
        shown.len() == MISSED_LINES
    });
    sender.exit();
    reports
        .wait(STEP_TIMEOUT, |m, _| !m.knows(CUT, SENDER))
        .ok_or("the floor's receiver did not see the sender leave")?;
    Ok((
        all_shown
            .zip(joined)
            .map(|(end, start)| end.saturating_duration_since(start)),
        all_shown.map(|end| end.saturating_duration_since(started)),
    ))
}
