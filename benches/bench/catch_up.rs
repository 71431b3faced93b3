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
//! A cable comes back at any moment, but the repetitions would not: the three members
//! announce in step (they started together), each cut begins just after a rejoin,
//! which follows an announcement, and the silence timeout is a whole number of
//! announcement intervals, so the cable would always go back in just after an
//! announcement and wait almost 2 s for the next. So repetition `i` of `n` waits
//! (`i` + ½)/`n` of the interval longer before plugging the cable back in: the moments
//! spread evenly over the interval.
//!
//! The floor of the catch-up is 1000 lines over a fresh TCP connection between the
//! same namespaces: a `--floor-node` on host 1 dials one on host 3, and as soon as it
//! has printed the hello the 1000 lines are typed into it. Measured from host 3's
//! `joined` line to host 3's 1000th line. The time from the cable has no floor: it is
//! the wait for the next announcement, a choice of p2pchat (see `ANNOUNCE_INTERVAL`).

use super::*;

use p2pchat::tuning::{ANNOUNCE_INTERVAL, HISTORY_CAPACITY};

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

    let reps = plan.catch_up_reps;
    let [mut from_join, mut floor, mut from_cable] = Default::default();
    for rep in 0..reps {
        let phase = ANNOUNCE_INTERVAL.mul_f64((rep as f64 + 0.5) / reps as f64);
        let sender = &chat[usize::from(SENDER) - 1];
        let (join, cable) = chat_catch_up(lan, sender, &mut chat_reports, phase)?;
        push_duration(&mut from_join, join);
        push_duration(&mut from_cable, cable);
        push_duration(&mut floor, floor_catch_up(lan, &mut floor_reports)?);
        progress(&format!(
            "catch-up {}/{reps}: {} from rejoin, {} from cable in",
            rep + 1,
            time_figure(join),
            time_figure(cable)
        ));
    }
    exit_all(chat);
    exit_all(vec![floor_receiver]);

    let none = Samples::default();
    for (what, chat, floor, how) in [
        (
            "rejoin (joined line) → all shown",
            &from_join,
            &floor,
            "fresh TCP connection between the same hosts, hello → 1000 lines",
        ),
        (
            "cable in → all shown",
            &from_cable,
            &none,
            "no floor: the rejoin waits for the next announcement (every 2 s), then as above",
        ),
    ] {
        for (label, q) in [("p50", 0.5), ("max", 1.0)] {
            table.row(Row {
                what: format!(
                    "8 LAN catch-up of {MISSED_LINES} missed lines, {what}, {label} of {reps}"
                ),
                chat: time_figure(chat.quantile(q)),
                floor: floor
                    .quantile(q)
                    .map_or(Figure::None("—".into()), Figure::Time),
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
/// by m2), `phase` more, the cable back in, until m3 has shown the 1000 as late and
/// everyone is together again. Returns the times from m3's rejoin and from the cable
/// going in to the last line shown (`None`: not all were shown). An `Err` means the
/// test bed is broken: the members did not notice the cut, or the three did not come
/// together again.
fn chat_catch_up(
    lan: &Lan,
    sender: &Proc,
    reports: &mut Reports,
    phase: Duration,
) -> Result<(Option<Duration>, Option<Duration>), String> {
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
            if let (STAYER, What::Message { from: SENDER, id }) = (seen.at, seen.what)
                && ids.contains(&id)
            {
                received.insert(id);
            }
            received.len() == MISSED_LINES
        })
        .ok_or("m2 did not receive m1's 1000 lines")?;

    thread::sleep(phase);
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
/// into it. Returns the time from host 3's hello line to its 1000th line (`None`: not
/// all arrived); the sender leaves before the next repetition.
fn floor_catch_up(lan: &Lan, reports: &mut Reports) -> Result<Option<Duration>, String> {
    let ids: Vec<u64> = (0..MISSED_LINES).map(|_| next_message_id()).collect();
    let text: Vec<String> = ids.iter().map(|&id| message_text(id)).collect();
    // A floor node exits without printing `left` lines, so what the previous sender
    // said it knew would make this one look connected before it is.
    reports.members.of.remove(&SENDER);
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
        if let (CUT, What::Message { from: SENDER, id }) = (seen.at, seen.what)
            && wanted.contains(&id)
        {
            shown.insert(id);
        }
        shown.len() == MISSED_LINES
    });
    sender.exit();
    reports
        .wait(STEP_TIMEOUT, |m, _| !m.knows(CUT, SENDER))
        .ok_or("the floor's receiver did not see the sender leave")?;
    Ok(all_shown
        .zip(joined)
        .map(|(end, start)| end.saturating_duration_since(start)))
}
