//! The benchmark: p2pchat measured side by side with the wire it runs on.
//!
//! ```sh
//! cargo bench                      # everything: a few minutes on 2 idle cores
//! cargo bench -- --quick           # fewer samples: checks that it all works
//! cargo bench -- --only lan        # one part: latency, throughput, join, mesh,
//!                                  # crash, cost or lan (as root, for lan)
//! ```
//!
//! It is a `cargo bench` target with its own `main` (`harness = false` in Cargo.toml),
//! built with the optimised bench profile, and it shares the tests' test bed,
//! `tests/common`: the namespace LAN ([`common::lan::Lan`]), the process driver
//! ([`ChatProcess`]), the loopback addresses ([`Hosts`]) and ports ([`free_port`]).
//!
//! It prints one Markdown table (progress goes to stderr). Every row is one figure of
//! p2pchat next to a *floor*: the same job done with plain std sockets between the same
//! addresses, measured in the same run, so that a busy machine slows both alike. Where
//! the two can be interleaved (latency, join) they are, sample by sample. The ratio
//! `×floor` says how many times the floor's cost p2pchat's figure is (for throughput:
//! the floor's rate divided by p2pchat's), so 1.0 means "as fast as the wire".
//!
//! Three settings:
//!
//! 1. **In this process, on loopback**: members are [`Node`]s on 127.0.B.x, each group
//!    on a port nobody else uses. A thread per member drains its event channel and
//!    reports to the measuring thread what it saw and when ([`Reports`]).
//! 2. **Real processes on loopback**: the optimised `p2pchat` binary that cargo built
//!    for the bench, for a crash (SIGKILL), memory and idle CPU, read from `/proc`.
//! 3. **The namespace LAN** (root only; skipped otherwise): each member is a real
//!    `p2pchat` in its own network namespace, joined by veth cables to a bridge, with
//!    198.18.0.n addresses: `tests/common/lan.rs`. Times are taken at the
//!    pipes: a line written to one member's stdin, the same line read from the others'
//!    stdout. For the run, the kernel's ARP table limit is raised (see [`ARP_LIMITS`])
//!    and then restored; the namespaces are removed at the end.
//!
//! The floors of the process settings are this program itself, re-invoked in a hidden
//! mode: `--floor-node` is a plain TCP chat member (one connection per pair, a line per
//! message, the same output as p2pchat), `--floor-hold` holds idle connections
//! with a heartbeat each second (the floor for memory, CPU and crash detection).
//!
//! A member is known by a *number*, the last octet of its address; its name is `m{n}`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

#[path = "../../tests/common/mod.rs"]
mod common;

use common::hosts::Hosts;
use common::lan::Lan;
use common::process::{CHAT_BINARY, ChatProcess};
use common::{effective_uid, free_port};
use p2pchat::protocol::Frame;
use p2pchat::tuning::HEARTBEAT_INTERVAL;
use p2pchat::{Config, Event, Node};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Length of every benchmark message's text: a typical chat line.
const MESSAGE_BYTES: usize = 100;

/// How long any one step (a mesh forming, a member noticed) may take before the bench
/// gives up on it and reports a timeout instead of a figure.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The pause before each round trip of the "cold" ping-pong: long enough for both
/// threads to be asleep, and their CPUs idle, when the message arrives.
const COLD_PAUSE: Duration = Duration::from_millis(1);

/// How long one latency sample may take before it counts as lost.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// In a throughput run, silence this long means the missing deliveries are lost.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The chat's port on the namespace LAN (every namespace has its own ports) and the
/// floor's port beside it.
const LAN_CHAT_PORT: u16 = 24242;
const LAN_FLOOR_PORT: u16 = 24243;

/// Stack of the floor's connection threads: they call `read` and `write` and nothing
/// deeper, so a small stack is plenty (and only the touched pages cost memory).
const FLOOR_THREAD_STACK_BYTES: usize = 64 * 1024;

/// Stack of the bench's own helper threads (event drains, plain connections' readers).
const HELPER_THREAD_STACK_BYTES: usize = 128 * 1024;

/// A member number: the last octet of its address.
type Number = u8;

/// One part of the benchmark: adds its rows to the table, or says why it could not.
type Part<'a> = dyn Fn(&mut Table) -> Result<(), String> + 'a;

/// How much of everything to do.
struct Plan {
    quick: bool,
    /// Latency samples per member count, after the warm-up ones that are thrown away,
    /// taken in this many rounds, each with members (and threads) started afresh.
    latency_samples: usize,
    warmup_samples: usize,
    latency_rounds: usize,
    /// Messages per throughput round, all senders together; and rounds per setting
    /// (the best round counts: a neighbour's burst can only make a round slower).
    throughput_messages: u64,
    throughput_rounds: usize,
    join_reps: usize,
    crash_reps: usize,
    /// How long the idle CPU is watched, and how long to let a member settle (its
    /// heartbeats flowing) before its memory is read.
    idle: Duration,
    settle: Duration,
    lan_samples: usize,
    lan_join_reps: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                latency_samples: 200,
                warmup_samples: 20,
                latency_rounds: 1,
                throughput_messages: 4000,
                throughput_rounds: 1,
                join_reps: 4,
                crash_reps: 2,
                idle: Duration::from_secs(3),
                settle: Duration::from_secs(1),
                lan_samples: 40,
                lan_join_reps: 2,
            }
        } else {
            Plan {
                quick,
                latency_samples: 3000,
                warmup_samples: 100,
                latency_rounds: 3,
                throughput_messages: 30_000,
                throughput_rounds: 5,
                join_reps: 20,
                crash_reps: 10,
                idle: Duration::from_secs(10),
                settle: Duration::from_millis(1500),
                lan_samples: 600,
                lan_join_reps: 10,
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--floor-node") => return floor_node(&args[1..]),
        Some("--floor-hold") => return floor_hold(&args[1..]),
        _ => {}
    }
    let mut quick = false;
    let mut only = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench target it runs.
            "--bench" => {}
            "--quick" => quick = true,
            "--only" => only = Some(rest.next().cloned().unwrap_or_default()),
            _ => return usage(),
        }
    }
    if only
        .as_ref()
        .is_some_and(|only| !PART_NAMES.contains(&only.as_str()))
    {
        return usage();
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: this is a debug build, which would measure the optimiser's absence; \
             run `cargo bench`"
        );
        return ExitCode::from(2);
    }
    // Cargo builds the chat binary for benches too, with the same (optimised) profile.
    let chat_binary = Path::new(CHAT_BINARY);
    let plan = Plan::new(quick);
    let started = Instant::now();
    let mut table = Table::default();
    let parts: [&Part; 7] = [
        &|t| part_latency(&plan, t),
        &|t| part_throughput(&plan, t),
        &|t| part_join(&plan, t),
        &|t| part_mesh(t),
        &|t| part_crash(&plan, chat_binary, t),
        &|t| part_cost(&plan, chat_binary, t),
        &|t| part_lan(&plan, chat_binary, t),
    ];
    for (name, part) in PART_NAMES.into_iter().zip(parts) {
        if only.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        progress(&format!("{name}..."));
        let part_started = Instant::now();
        if let Err(e) = part(&mut table) {
            progress(&format!("{name} failed: {e}"));
            table.failed(name, &e);
        }
        progress(&format!(
            "{name} done in {:.1} s",
            part_started.elapsed().as_secs_f64()
        ));
    }
    println!(
        "p2pchat bench ({}), {}; {} s in all",
        if plan.quick { "--quick" } else { "full run" },
        machine(),
        started.elapsed().as_secs()
    );
    println!();
    print!("{table}");
    ExitCode::SUCCESS
}

/// The parts, in the order they run (for `--only`).
const PART_NAMES: [&str; 7] = [
    "latency",
    "throughput",
    "join",
    "mesh",
    "crash",
    "cost",
    "lan",
];

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo bench [-- [--quick] [--only PART]]\n\
         PART: {}",
        PART_NAMES.join(", ")
    );
    ExitCode::from(2)
}

fn progress(text: &str) {
    eprintln!("bench: {text}");
}

// ─── Part 1: latency ────────────────────────────────────────────────────────────────

/// Send call to delivery at every member, for 2, 4, 8 and 16 members, interleaved
/// sample by sample with a plain fan-out over a mesh of std `TcpStream`s between the
/// same addresses; and plain ping-pong for the one-way latency of one connection.
fn part_latency(plan: &Plan, table: &mut Table) -> Result<(), String> {
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
            how: "std TcpStream 127.0.0.10 ↔ .11, 100 B".into(),
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
fn ping_pong(a: Ipv4Addr, b: Ipv4Addr, plan: &Plan, pause: Duration) -> Result<Samples, String> {
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
struct Carrier<'a> {
    reports: &'a mut Reports,
    send: &'a mut dyn FnMut(Number, u64) -> Result<(), String>,
}

/// Sends messages from each member in turn, alternating between the two carriers, and
/// times each from the send call to its delivery at the last of the other members.
fn compare_delivery<'a>(
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
fn one_delivery(carrier: &mut Carrier, members: &[Number], from: Number) -> Option<Duration> {
    let id = next_message_id();
    let sent = Instant::now();
    (carrier.send)(from, id).ok()?;
    let mut delivered = HashSet::new();
    let last = carrier.reports.wait(SAMPLE_TIMEOUT, |_, seen| {
        if let What::Message { id: got, .. } = seen.what {
            if got == id && seen.at != from {
                delivered.insert(seen.at);
            }
        }
        delivered.len() == members.len() - 1
    })?;
    Some(last.saturating_duration_since(sent))
}

// ─── Part 2: throughput ─────────────────────────────────────────────────────────────

/// One sender and then four, in a chat of 8 members, sending 100-byte messages as fast
/// as they can; the figure is messages per second delivered to every member, with none
/// lost. Best of a few rounds, alternating with the same bytes over plain std sockets.
fn part_throughput(plan: &Plan, table: &mut Table) -> Result<(), String> {
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
fn throughput_round(
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
            {
                if !*slot {
                    *slot = true;
                    missing -= 1;
                    last = seen.t;
                }
            }
        }
    });
    if missing > 0 {
        return Err(missing);
    }
    Ok(total as f64 / last.duration_since(started).as_secs_f64())
}

// ─── Part 3: join and leave ─────────────────────────────────────────────────────────

/// A new member joining a chat of 7, from its start until all 8 have each other; then
/// the same member leaving (gracefully), until all 7 have noticed. Each repetition
/// uses a new address. The floor does the same steps with plain sockets: one UDP
/// broadcast, a TCP connect from each member, a one-byte hello each way; and leaving
/// is a `shutdown(Write)` read as end of stream.
fn part_join(plan: &Plan, table: &mut Table) -> Result<(), String> {
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

fn push_time(samples: &mut Samples, end: Option<Instant>, start: Instant) {
    match end {
        Some(end) => samples.times.push(end.saturating_duration_since(start)),
        None => samples.lost += 1,
    }
}

/// The floor of a join and a leave: what p2pchat does, with nothing else.
fn plain_join_and_leave(
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

// ─── Part 3b: mesh formation ────────────────────────────────────────────────────────

/// N members started at once (one after the other, as fast as this thread can), until
/// every one has the other N-1. The floor binds N listeners and connects every pair
/// once, a one-byte hello each way, from a thread per member.
fn part_mesh(table: &mut Table) -> Result<(), String> {
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

fn plain_mesh_formation(numbers: &[Number], port: u16) -> Result<Duration, String> {
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

// ─── Part 4: crash ──────────────────────────────────────────────────────────────────

/// A real `p2pchat` process joins 7 members on loopback and is killed with SIGKILL;
/// the figure is the time until all 7 have noticed. The floor: a `--floor-hold`
/// process connected to 7 plain servers, killed the same way.
fn part_crash(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
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

// ─── Part 5: cost ───────────────────────────────────────────────────────────────────

/// Memory of one real `p2pchat` process with 1, 16 and 64 peers (the peers are members
/// in this process), its CPU while idle with 16 peers, and the binary's size. The
/// floor is a `--floor-hold` process holding as many connections, a thread per
/// connection, exchanging a 5-byte heartbeat each second, like p2pchat's.
fn part_cost(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    const CHAT: Number = 200;
    const FLOOR: Number = 201;
    const SERVER: Number = 202;
    let port = free_port();
    let mut reports = Reports::new();
    let chat = Proc::spawn(chat_command(chat_binary, lo(CHAT), port), CHAT, &reports)?;
    let server = plain_server(SERVER, &reports)?;
    let floor = Proc::spawn(floor_hold_command(lo(FLOOR)), FLOOR, &reports)?;
    let mut cluster = Cluster::start(&[], port, &mut reports)?;
    let mut ready = 0u32;
    let mut rss = Vec::new();
    for peers in [1usize, 16, 64] {
        let before = cluster.len();
        for n in before..peers {
            cluster.add(10 + n as Number, &reports)?;
        }
        floor.type_line(&format!("{server} {}", peers - before))?;
        reports
            .wait(STEP_TIMEOUT, |members, seen| {
                if let (FLOOR, What::Ready(count)) = (seen.at, seen.what) {
                    ready = count;
                }
                members.count(CHAT) == peers && ready as usize == peers
            })
            .ok_or(format!(
                "the members with {peers} peers did not get connected"
            ))?;
        thread::sleep(plan.settle);
        let (chat_rss, floor_rss) = (vm_kib(chat.pid(), "VmRSS")?, vm_kib(floor.pid(), "VmRSS")?);
        let (chat_threads, floor_threads) = (
            vm_kib(chat.pid(), "Threads")?,
            vm_kib(floor.pid(), "Threads")?,
        );
        rss.push((peers, chat_rss, floor_rss));
        table.row(Row {
            what: format!("5 RSS of one member, {peers} peer{}", plural(peers)),
            chat: Figure::Bytes(chat_rss * 1024),
            floor: Figure::Bytes(floor_rss * 1024),
            one_way: None,
            how: format!(
                "process, thread per connection; threads {chat_threads} vs {floor_threads}"
            ),
        });
        if peers == 16 {
            idle_cpu(plan, chat.pid(), floor.pid(), table)?;
        }
    }
    if let [.., (p16, c16, f16), (p64, c64, f64)] = rss[..] {
        let per_peer =
            |a: u64, b: u64| Figure::Bytes(b.saturating_sub(a) * 1024 / (p64 - p16) as u64);
        table.row(Row {
            what: format!("5 RSS per extra peer ({p16} → {p64})"),
            chat: per_peer(c16, c64),
            floor: per_peer(f16, f64),
            one_way: None,
            how: "difference of the two rows above".into(),
        });
    }
    drop(chat);
    drop(floor);
    cluster.leave_all();

    let size = std::fs::metadata(chat_binary)
        .map_err(|e| format!("{}: {e}", chat_binary.display()))?
        .len();
    table.row(Row {
        what: "5 release binary size".into(),
        chat: Figure::Bytes(size),
        floor: Figure::None("—".into()),
        one_way: None,
        how: if is_stripped(chat_binary) {
            "stripped (no .symtab)".into()
        } else {
            "NOT stripped: has a .symtab".into()
        },
    });
    Ok(())
}

/// Watches two idle processes for `plan.idle`: CPU time, from the kernel's tick counts
/// and from its nanosecond run times, and how often their threads woke up.
fn idle_cpu(plan: &Plan, chat: u32, floor: u32, table: &mut Table) -> Result<(), String> {
    let before = [cpu_use(chat)?, cpu_use(floor)?];
    thread::sleep(plan.idle);
    let after = [cpu_use(chat)?, cpu_use(floor)?];
    let [chat_use, floor_use] = [0, 1].map(|k| after[k].since(&before[k]));
    let seconds = plan.idle.as_secs();
    let per_second = |wakeups: u64| wakeups as f64 / plan.idle.as_secs_f64();
    table.row(Row {
        what: format!("5 CPU idle {seconds} s, 16 peers (utime+stime)"),
        chat: Figure::Time(chat_use.ticks),
        floor: Figure::Time(floor_use.ticks),
        one_way: None,
        how: "/proc/PID/stat, 10 ms ticks; floor: 16 heartbeats/s each way".into(),
    });
    table.row(Row {
        what: format!("5 CPU idle {seconds} s, 16 peers (run time)"),
        chat: Figure::Time(chat_use.run),
        floor: Figure::Time(floor_use.run),
        one_way: None,
        how: "sum of /proc/PID/task/*/schedstat".into(),
    });
    table.row(Row {
        what: "5 wake-ups per second idle, 16 peers".into(),
        chat: Figure::PerSecond(per_second(chat_use.switches)),
        floor: Figure::PerSecond(per_second(floor_use.switches)),
        one_way: None,
        how: "context switches, all threads, /proc/PID/task/*/status".into(),
    });
    Ok(())
}

/// CPU a process has used so far.
struct CpuUse {
    /// utime + stime, in the kernel's ticks, converted to time.
    ticks: Duration,
    /// Time on a CPU, summed over its threads (nanosecond precision).
    run: Duration,
    /// Voluntary and involuntary context switches, summed over its threads.
    switches: u64,
}

impl CpuUse {
    fn since(&self, earlier: &CpuUse) -> CpuUse {
        CpuUse {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            run: self.run.saturating_sub(earlier.run),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

/// utime + stime of a process, its ended threads included, from /proc/PID/stat.
fn process_cpu(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may contain spaces; the fields after it start at 3.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let (utime, stime) = (fields.get(11).copied(), fields.get(12).copied());
    let ticks = utime.zip(stime).map_or(0, |(u, s)| u + s);
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

fn cpu_use(pid: u32) -> Result<CpuUse, String> {
    let ticks = process_cpu(pid)?;
    let mut run_ns = 0u64;
    let mut switches = 0u64;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let path = task.path();
        // A thread may end between listing and reading: skip it.
        if let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) {
            run_ns += first_number(&schedstat);
        }
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            for line in status.lines() {
                if line.starts_with("voluntary_ctxt_switches")
                    || line.starts_with("nonvoluntary_ctxt_switches")
                {
                    switches += line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    Ok(CpuUse {
        ticks,
        run: Duration::from_nanos(run_ns),
        switches,
    })
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The kernel's tick rate for /proc/PID/stat (100 on every common Linux build).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A number from /proc/PID/status, such as `VmRSS` (in KiB) or `Threads`.
fn vm_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(first_number)
        .ok_or(format!("no {key} in /proc/{pid}/status"))
}

/// Whether an ELF file has lost its symbol table: its section names no longer include
/// `.symtab`.
fn is_stripped(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| !bytes.windows(8).any(|w| w == b".symtab\0"))
}

// ─── Part 6: the namespace LAN ──────────────────────────────────────────────────────

/// Eight real members, each in its own namespace: delivery to all, a ninth member's
/// join and graceful leave seen by all; then 64 members forming a full mesh. The floor
/// is `--floor-node` processes in the same namespaces, side by side (other port).
fn part_lan(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    if effective_uid() != Some(0) {
        let why = "needs root to create network namespaces; run as root: \
                   sudo -E cargo bench";
        progress(&format!("namespace LAN skipped: {why}"));
        table.failed("6 namespace LAN", &format!("skipped: {why}"));
        return Ok(());
    }
    let hosts = 64;
    let setup = Instant::now();
    let arp_limits = ArpLimits::raise()?;
    let lan = Lan::new(hosts);
    progress(&format!(
        "{hosts} namespaces ready in {:.1} s",
        setup.elapsed().as_secs_f64()
    ));
    let eight = lan_eight(plan, &lan, chat_binary, table);
    let sixty_four = lan_mesh(&lan, chat_binary, hosts as Number, table);
    drop(lan);
    drop(arp_limits);
    eight.and(sixty_four)
}

fn lan_eight(plan: &Plan, lan: &Lan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    let members: Vec<Number> = (1..=8).collect();
    let mut chat_reports = Reports::new();
    let mut floor_reports = Reports::new();
    let mut chat = Vec::new();
    let mut floor = Vec::new();
    for &m in &members {
        chat.push(Proc::spawn(
            on_host(
                lan,
                m,
                chat_binary,
                &chat_args(lan.host_ip(usize::from(m)), LAN_CHAT_PORT),
            ),
            m,
            &chat_reports,
        )?);
        floor.push(Proc::spawn(
            on_host(
                lan,
                m,
                &self_exe()?,
                &floor_node_args(lan, m, &members[..usize::from(m) - 1]),
            ),
            m,
            &floor_reports,
        )?);
    }
    for (reports, who) in [
        (&mut chat_reports, "p2pchat"),
        (&mut floor_reports, "floor"),
    ] {
        reports.wait_mesh(&members, STEP_TIMEOUT).ok_or(format!(
            "the 8 {who} members on the LAN did not all connect"
        ))?;
    }
    let chat_procs = Mutex::new(chat);
    let floor_procs = Mutex::new(floor);
    let type_on = |procs: &Mutex<Vec<Proc>>, from: Number, id: u64| {
        lock(procs)[usize::from(from) - 1].type_line(&message_text(id))
    };
    let [chat_delivery, floor_delivery] = compare_delivery(
        &members,
        plan.warmup_samples.min(20),
        plan.lan_samples,
        Carrier {
            reports: &mut chat_reports,
            send: &mut |from, id| type_on(&chat_procs, from, id),
        },
        Carrier {
            reports: &mut floor_reports,
            send: &mut |from, id| type_on(&floor_procs, from, id),
        },
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        table.row(Row {
            what: format!("6 LAN latency to all, 8 members, {label}"),
            chat: time_figure(chat_delivery.quantile(q)),
            floor: time_figure(floor_delivery.quantile(q)),
            one_way: None,
            how: format!(
                "stdin line → 7 stdouts; std TCP fan-out processes{}",
                lost_note(&chat_delivery, &floor_delivery)
            ),
        });
    }

    let mut joins = [Samples::default(), Samples::default()];
    let mut leaves = [Samples::default(), Samples::default()];
    for rep in 0..plan.lan_join_reps {
        // A new host each time: p2pchat does not redial an address within 0.9 s.
        let newcomer = 9 + rep as Number;
        let kinds = [
            (
                on_host(
                    lan,
                    newcomer,
                    chat_binary,
                    &chat_args(lan.host_ip(usize::from(newcomer)), LAN_CHAT_PORT),
                ),
                &mut chat_reports,
            ),
            (
                on_host(
                    lan,
                    newcomer,
                    &self_exe()?,
                    &floor_node_args(lan, newcomer, &members),
                ),
                &mut floor_reports,
            ),
        ];
        for (k, (command, reports)) in kinds.into_iter().enumerate() {
            let started = Instant::now();
            let process = Proc::spawn(command, newcomer, reports)?;
            let joined = reports.wait(STEP_TIMEOUT, |m, _| {
                members
                    .iter()
                    .all(|&e| m.knows(e, newcomer) && m.knows(newcomer, e))
            });
            push_time(&mut joins[k], joined, started);
            let leaving = Instant::now();
            process.type_line("/exit")?;
            let left = reports.wait(STEP_TIMEOUT, |m, _| {
                members.iter().all(|&e| !m.knows(e, newcomer))
            });
            push_time(&mut leaves[k], left, leaving);
            process.exit();
        }
    }
    let reps = plan.lan_join_reps;
    for (what, [chat, plain], how) in [
        (
            "join seen by all 9 (spawn → joined lines)",
            &joins,
            "process start, dial 8, hello line",
        ),
        (
            "graceful leave seen by all 8 (/exit → left lines)",
            &leaves,
            "/exit → shutdown(Write) → end of stream",
        ),
    ] {
        for (label, q) in [("p50", 0.5), ("max", 1.0)] {
            table.row(Row {
                what: format!("6 LAN {what}, {label} of {reps}"),
                chat: time_figure(chat.quantile(q)),
                floor: time_figure(plain.quantile(q)),
                one_way: None,
                how: format!("{how}{}", lost_note(chat, plain)),
            });
        }
    }
    exit_all(
        chat_procs
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
    );
    exit_all(
        floor_procs
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
    );
    Ok(())
}

/// 64 real members started at once in 64 namespaces, until each has printed 63
/// "joined" lines; the floor: 64 `--floor-node`s dialing each other (retrying until
/// the other is listening), until each has printed 63 hellos.
fn lan_mesh(lan: &Lan, chat_binary: &Path, hosts: Number, table: &mut Table) -> Result<(), String> {
    let members: Vec<Number> = (1..=hosts).collect();
    let mut figures = Vec::new();
    let mut diagnostics = 0;
    for floor in [false, true] {
        let mut reports = Reports::new();
        let mut procs = Vec::new();
        let started = Instant::now();
        for &m in &members {
            let command = if floor {
                on_host(
                    lan,
                    m,
                    &self_exe()?,
                    &floor_node_args(lan, m, &members[..usize::from(m) - 1]),
                )
            } else {
                on_host(
                    lan,
                    m,
                    chat_binary,
                    &chat_args(lan.host_ip(usize::from(m)), LAN_CHAT_PORT),
                )
            };
            procs.push(Proc::spawn(command, m, &reports)?);
        }
        let spawned = started.elapsed();
        let formed = reports.wait_mesh(&members, STEP_TIMEOUT * 2);
        if formed.is_none() {
            let short: Vec<String> = members
                .iter()
                .filter(|&&m| reports.members.count(m) < members.len() - 1)
                .map(|&m| format!("m{m} knows {}", reports.members.count(m)))
                .collect();
            progress(&format!("mesh incomplete: {}", short.join(", ")));
        }
        figures.push(match formed {
            Some(at) => Figure::Time(at.saturating_duration_since(started)),
            None => Figure::None("timed out".into()),
        });
        progress(&format!(
            "{} {hosts}-member mesh: spawning took {:.2} s",
            if floor { "floor" } else { "p2pchat" },
            spawned.as_secs_f64()
        ));
        let written = exit_all(procs);
        if !floor {
            diagnostics = written;
        }
    }
    let floor = figures.pop().unwrap_or(Figure::None("—".into()));
    let chat = figures.pop().unwrap_or(Figure::None("—".into()));
    table.row(Row {
        what: format!("6 LAN full mesh, {hosts} members started at once"),
        chat,
        floor,
        one_way: None,
        how: format!(
            "spawn all → each printed 63 joined; std processes dialing all; \
             p2pchat wrote {diagnostics} stderr lines"
        ),
    });
    Ok(())
}

fn chat_args(host: Ipv4Addr, port: u16) -> Vec<String> {
    let name = name_of(host.octets()[3]);
    vec![host.to_string(), name, "--port".into(), port.to_string()]
}

/// A floor node on host `me` that dials `dial` (the members started before it).
fn floor_node_args(lan: &Lan, me: Number, dial: &[Number]) -> Vec<String> {
    let ip = |host: Number| lan.host_ip(usize::from(host)).to_string();
    let mut args = vec![
        "--floor-node".to_string(),
        ip(me),
        LAN_FLOOR_PORT.to_string(),
    ];
    args.extend(dial.iter().map(|&m| ip(m)));
    args
}

/// Asks every process to leave first, then waits for each: they leave in parallel.
/// Returns how many lines they wrote to stderr, together.
fn exit_all(procs: Vec<Proc>) -> usize {
    for process in &procs {
        let _ = process.type_line("/exit");
    }
    procs.into_iter().map(Proc::exit).sum()
}

/// The kernel's ARP table is one table shared by every network namespace, and its hard
/// limit (`gc_thresh3`, 1024 by default) can only be set from the initial namespace. A
/// full mesh of 64 hosts needs 64 × 63 = 4032 entries: at the default, the hosts
/// plugged in last can resolve nobody, and their packets are dropped (`IpOutDiscards`).
/// A real LAN has a table per machine; only this simulation needs the raise.
const ARP_LIMITS: [(&str, u32); 2] = [
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", 8192),
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", 16384),
];

/// The machine's neighbour-table limits raised to [`ARP_LIMITS`] while it lives, and
/// put back as they were when dropped.
struct ArpLimits {
    raised: Vec<(&'static str, String)>,
}

impl ArpLimits {
    fn raise() -> Result<ArpLimits, String> {
        let mut limits = ArpLimits { raised: Vec::new() };
        for (path, wanted) in ARP_LIMITS {
            let current = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            if current
                .trim()
                .parse::<u32>()
                .is_ok_and(|limit| limit < wanted)
            {
                std::fs::write(path, wanted.to_string()).map_err(|e| format!("{path}: {e}"))?;
                limits.raised.push((path, current));
            }
        }
        Ok(limits)
    }
}

impl Drop for ArpLimits {
    fn drop(&mut self) {
        for (path, value) in &self.raised {
            if let Err(e) = std::fs::write(path, value) {
                progress(&format!(
                    "could not restore {path} to {}: {e}",
                    value.trim()
                ));
            }
        }
    }
}

/// `program args` to run on host `host` of `lan`. `ip netns exec` switches namespace
/// and then execs the program, so the child's PID is the program's own.
fn on_host(lan: &Lan, host: Number, program: &Path, args: &[String]) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", lan.host_ns(usize::from(host))])
        .arg(program)
        .args(args);
    command
}

// ─── Members in this process ────────────────────────────────────────────────────────

/// p2pchat members running in this process, all on one port, on 127.0.0.n.
struct Cluster {
    port: u16,
    nodes: Vec<(Number, Node)>,
}

impl Cluster {
    /// Starts a member on each number and waits until they are all connected.
    fn start(numbers: &[Number], port: u16, reports: &mut Reports) -> Result<Cluster, String> {
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
    fn add(&mut self, number: Number, reports: &Reports) -> Result<(), String> {
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

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn send(&self, from: Number, id: u64) -> Result<(), String> {
        let (_, node) = self
            .nodes
            .iter()
            .find(|(n, _)| *n == from)
            .ok_or(format!("no member {from}"))?;
        node.send(&message_text(id)).map_err(|e| e.to_string())
    }

    fn leave(&mut self, number: Number) {
        if let Some(index) = self.nodes.iter().position(|(n, _)| *n == number) {
            self.nodes.remove(index).1.leave();
        }
    }

    fn leave_all(self) {
        for (_, node) in self.nodes {
            node.leave();
        }
    }
}

// ─── The floors in this process ─────────────────────────────────────────────────────

/// Plain std TCP between the same addresses: every sender has a connection to every
/// other member, and every member a thread per incoming connection that reads frames
/// (through a 4 KiB buffer, as p2pchat does) and reports them.
struct PlainMesh {
    /// `outgoing[(from, to)]`
    outgoing: HashMap<(Number, Number), TcpStream>,
}

impl PlainMesh {
    fn new(
        members: &[Number],
        senders: &[Number],
        port: u16,
        reports: &Reports,
    ) -> Result<PlainMesh, String> {
        let error = |e: io::Error| format!("floor mesh: {e}");
        let mut acceptors = Vec::new();
        for &member in members {
            let listener = TcpListener::bind((lo(member), port)).map_err(error)?;
            let incoming = senders.iter().filter(|&&s| s != member).count();
            let report = reports.sender();
            acceptors.push(thread::spawn(move || -> io::Result<()> {
                for _ in 0..incoming {
                    let (stream, from) = listener.accept()?;
                    let SocketAddr::V4(from) = from else {
                        continue;
                    };
                    let from = from.ip().octets()[3];
                    let report = report.clone();
                    thread::Builder::new()
                        .stack_size(HELPER_THREAD_STACK_BYTES)
                        .spawn(move || read_plain_frames(stream, member, from, &report))?;
                }
                Ok(())
            }));
        }
        let mut outgoing = HashMap::new();
        for &from in senders {
            for &to in members.iter().filter(|&&m| m != from) {
                let stream = dial(lo(from), SocketAddrV4::new(lo(to), port)).map_err(error)?;
                outgoing.insert((from, to), stream);
            }
        }
        for acceptor in acceptors {
            acceptor
                .join()
                .map_err(|_| "a floor acceptor panicked".to_string())?
                .map_err(error)?;
        }
        Ok(PlainMesh { outgoing })
    }

    /// Writes message `id` to every other member: the very bytes p2pchat would send.
    fn send(&self, from: Number, id: u64) -> Result<(), String> {
        let frame = Frame::Chat {
            seq: id,
            sent_at_ms: 0,
            text: message_text(id),
        }
        .encode();
        for ((sender, _), mut stream) in &self.outgoing {
            if *sender == from {
                stream
                    .write_all(&frame)
                    .map_err(|e| format!("floor: {e}"))?;
            }
        }
        Ok(())
    }

    fn close(self) {
        for stream in self.outgoing.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Reads length-prefixed frames until end of stream; the message text is the frame's
/// last [`MESSAGE_BYTES`] bytes.
fn read_plain_frames(stream: TcpStream, at: Number, from: Number, report: &Sender<Seen>) {
    let mut reader = BufReader::with_capacity(4096, stream);
    let mut body = Vec::new();
    loop {
        let mut prefix = [0u8; 4];
        if reader.read_exact(&mut prefix).is_err() {
            return;
        }
        body.resize(u32::from_be_bytes(prefix) as usize, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let text = body
            .len()
            .checked_sub(MESSAGE_BYTES)
            .and_then(|start| std::str::from_utf8(&body[start..]).ok());
        if let Some(id) = text.and_then(id_of_text) {
            report_seen(report, at, What::Message { from, id });
        }
    }
}

/// A plain listener on 127.0.0.`number` whose every connection gets a thread that
/// reads and sends a heartbeat each second ([`heartbeat_loop`]). It reports a
/// connection as `Joined` and its end as `Left`. Returns the listening address.
fn plain_server(number: Number, reports: &Reports) -> Result<SocketAddrV4, String> {
    let listener =
        TcpListener::bind((lo(number), 0)).map_err(|e| format!("bind {}: {e}", lo(number)))?;
    let Ok(SocketAddr::V4(address)) = listener.local_addr() else {
        return Err("a floor server has no IPv4 address".into());
    };
    let report = reports.sender();
    // Lives as long as the bench: a listener blocked in accept has no other way out.
    thread::Builder::new()
        .stack_size(HELPER_THREAD_STACK_BYTES)
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let Ok(SocketAddr::V4(peer)) = stream.peer_addr() else {
                    continue;
                };
                let peer = peer.ip().octets()[3];
                let report = report.clone();
                let _ = thread::Builder::new()
                    .stack_size(FLOOR_THREAD_STACK_BYTES)
                    .spawn(move || {
                        report_seen(&report, number, What::Joined(peer));
                        heartbeat_loop(stream);
                        report_seen(&report, number, What::Left(peer));
                    });
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(address)
}

/// What an idle connection needs: sleep in `read` until data arrives or our heartbeat
/// is due, send a 5-byte heartbeat every [`HEARTBEAT_INTERVAL`], end at end of stream.
fn heartbeat_loop(mut stream: TcpStream) {
    let heartbeat = Frame::Heartbeat.encode();
    let mut next = Instant::now() + HEARTBEAT_INTERVAL;
    let mut buffer = [0u8; 512];
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        if stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .is_err()
        {
            return;
        }
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if Instant::now() >= next {
            if stream.write_all(&heartbeat).is_err() {
                return;
            }
            next = Instant::now() + HEARTBEAT_INTERVAL;
        }
    }
}

// ─── Floor processes (this program, re-invoked) ─────────────────────────────────────

/// `--floor-node MY_IP PORT DIAL_IP...`: a plain TCP chat member. It listens, dials
/// the members it is given (the ones started before it, retrying while one is not
/// listening yet), and accepts the others: one connection per pair, as in p2pchat. A
/// hello line each way; a typed line goes over every connection as `msg TEXT`;
/// `/exit` or end of input half-closes every connection. It prints what p2pchat
/// prints: `mN joined chat`, `00:00:00 mN: TEXT`, `mN left chat`.
fn floor_node(args: &[String]) -> ExitCode {
    let parsed = (|| {
        let me: Ipv4Addr = args.first()?.parse().ok()?;
        let port: u16 = args.get(1)?.parse().ok()?;
        let peers: Option<Vec<Ipv4Addr>> = args[2..].iter().map(|a| a.parse().ok()).collect();
        Some((me, port, peers?))
    })();
    let Some((me, port, peers)) = parsed else {
        eprintln!("usage: bench --floor-node MY_IP PORT DIAL_IP...");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind((me, port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("floor node {me}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hello: Arc<str> = format!("hello {}\n", name_of(me.octets()[3])).into();
    let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let shared = connections.clone();
    let start = move |stream: TcpStream, dialed: bool| {
        let (hello, connections) = (hello.clone(), shared.clone());
        let _ = thread::Builder::new()
            .stack_size(FLOOR_THREAD_STACK_BYTES)
            .spawn(move || floor_connection(stream, dialed, &hello, &connections));
    };
    for peer in peers {
        let start = start.clone();
        let _ = thread::Builder::new()
            .stack_size(FLOOR_THREAD_STACK_BYTES)
            .spawn(move || {
                let deadline = Instant::now() + STEP_TIMEOUT;
                while Instant::now() < deadline {
                    match dial(me, SocketAddrV4::new(peer, port)) {
                        Ok(stream) => return start(stream, true),
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
    }
    let accepting = start.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            accepting(stream, false);
        }
    });
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line == "/exit" {
            break;
        }
        let message = format!("msg {line}\n");
        for mut stream in lock(&connections).iter() {
            let _ = stream.write_all(message.as_bytes());
        }
    }
    for stream in lock(&connections).iter() {
        let _ = stream.shutdown(Shutdown::Write);
    }
    ExitCode::SUCCESS
}

/// One connection of a floor node: the hello exchange (the dialer speaks first), then
/// every message printed, until the end of the stream.
fn floor_connection(
    stream: TcpStream,
    dialed: bool,
    hello: &str,
    connections: &Mutex<Vec<TcpStream>>,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    if dialed && writer.write_all(hello.as_bytes()).is_err() {
        return;
    }
    let mut lines = BufReader::new(stream).lines();
    let Some(Ok(first)) = lines.next() else {
        return;
    };
    let Some(name) = first.strip_prefix("hello ") else {
        return;
    };
    if !dialed && writer.write_all(hello.as_bytes()).is_err() {
        return;
    }
    lock(connections).push(writer);
    println!("{name} joined chat");
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(text) = line.strip_prefix("msg ") {
            println!("00:00:00 {name}: {text}");
        }
    }
    println!("{name} left chat");
}

/// `--floor-hold MY_IP`: for each input line `ADDRESS:PORT COUNT`, opens COUNT
/// connections from MY_IP, each served by a heartbeat thread, and prints `ready TOTAL`.
fn floor_hold(args: &[String]) -> ExitCode {
    let Some(me) = args.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
        eprintln!("usage: bench --floor-hold MY_IP");
        return ExitCode::from(2);
    };
    let mut total = 0usize;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let address = words.next().and_then(|a| a.parse::<SocketAddrV4>().ok());
        let count = words.next().and_then(|c| c.parse::<usize>().ok());
        let (Some(address), Some(count)) = (address, count) else {
            eprintln!("floor hold: cannot read {line:?}");
            return ExitCode::from(2);
        };
        for _ in 0..count {
            let stream = match dial(me, address) {
                Ok(stream) => stream,
                Err(e) => {
                    eprintln!("floor hold: {address}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let _ = thread::Builder::new()
                .stack_size(FLOOR_THREAD_STACK_BYTES)
                .spawn(move || heartbeat_loop(stream));
            total += 1;
        }
        println!("ready {total}");
    }
    ExitCode::SUCCESS
}

// ─── Processes ──────────────────────────────────────────────────────────────────────

/// A child process (a p2pchat member, or a floor process) driven by the tests' own
/// process driver, [`ChatProcess`], whose stdout lines become reports the moment they
/// are read, and whose stdin stays open (end of input would make p2pchat leave).
struct Proc(ChatProcess);

impl Proc {
    fn spawn(command: Command, number: Number, reports: &Reports) -> Result<Proc, String> {
        let report = reports.sender();
        let observe = move |line: &str| {
            if let Some(what) = parse_line(line) {
                report_seen(&report, number, what);
            }
        };
        Ok(Proc(ChatProcess::from_command_observed(
            &name_of(number),
            command,
            observe,
        )))
    }

    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn type_line(&self, line: &str) -> Result<(), String> {
        self.0
            .try_send_line(line)
            .map_err(|e| format!("cannot write to process {}: {e}", self.pid()))
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        self.0.kill();
    }

    /// Closes stdin (end of input: the member leaves) and waits for the exit; kills
    /// the process if it has not exited within a few seconds. Returns how many lines
    /// it wrote to stderr (p2pchat writes a diagnostic there when a connection ends
    /// badly), after passing the first few on, so a flood cannot drown the bench's own
    /// output.
    fn exit(mut self) -> usize {
        self.0.close_stdin();
        if self.0.try_wait_exit(Duration::from_secs(5)).is_none() {
            progress(&format!("process {} did not exit; killing it", self.pid()));
            self.kill();
        }
        let diagnostics = self.0.stderr_lines();
        for line in diagnostics.iter().take(3) {
            eprintln!("[{}] {line}", self.0.label());
        }
        diagnostics.len()
    }
}

/// What a line of p2pchat's (or a floor node's) output says, if it is one we count.
fn parse_line(line: &str) -> Option<What> {
    if let Some(name) = line.strip_suffix(" joined chat") {
        return Some(What::Joined(number_of_name(name)?));
    }
    if let Some(name) = line.strip_suffix(" left chat") {
        return Some(What::Left(number_of_name(name)?));
    }
    if let Some(count) = line.strip_prefix("ready ") {
        return Some(What::Ready(count.parse().ok()?));
    }
    let (_clock, rest) = line.split_once(' ')?;
    let (name, text) = rest.split_once(": ")?;
    Some(What::Message {
        from: number_of_name(name)?,
        id: id_of_text(text)?,
    })
}

fn chat_command(chat_binary: &Path, host: Ipv4Addr, port: u16) -> Command {
    let mut command = Command::new(chat_binary);
    command.args(chat_args(host, port));
    command
}

fn floor_hold_command(me: Ipv4Addr) -> Command {
    let mut command = Command::new(self_exe().unwrap_or_else(|_| PathBuf::from("bench")));
    command.args(["--floor-hold", &me.to_string()]);
    command
}

fn self_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the bench's own binary: {e}"))
}

// ─── Reports: who saw what, when ────────────────────────────────────────────────────

/// Something a member reported, stamped when the bench learnt of it.
struct Seen {
    at: Number,
    what: What,
    t: Instant,
}

#[derive(Clone, Copy, Debug)]
enum What {
    Joined(Number),
    Left(Number),
    Message {
        from: Number,
        id: u64,
    },
    /// A `--floor-hold` process has this many connections open.
    Ready(u32),
}

fn report_seen(report: &Sender<Seen>, at: Number, what: What) {
    // An error means the measurement this belonged to is over: nobody to tell.
    let _ = report.send(Seen {
        at,
        what,
        t: Instant::now(),
    });
}

/// The reports of one group of members, and who knows whom according to them.
struct Reports {
    tx: Sender<Seen>,
    rx: Receiver<Seen>,
    members: Membership,
}

impl Reports {
    fn new() -> Reports {
        let (tx, rx) = mpsc::channel();
        Reports {
            tx,
            rx,
            members: Membership::default(),
        }
    }

    fn sender(&self) -> Sender<Seen> {
        self.tx.clone()
    }

    /// Takes reports until `done` (asked after each, once the membership has taken it
    /// in) is true; returns the time of the report that made it true, or `None` after
    /// `timeout`.
    fn wait(
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
    fn wait_mesh(&mut self, numbers: &[Number], timeout: Duration) -> Option<Instant> {
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
struct Membership {
    of: HashMap<Number, HashSet<Number>>,
}

impl Membership {
    fn apply(&mut self, seen: &Seen) {
        match seen.what {
            What::Joined(who) => {
                self.of.entry(seen.at).or_default().insert(who);
            }
            What::Left(who) => {
                if let Some(known) = self.of.get_mut(&seen.at) {
                    known.remove(&who);
                }
            }
            What::Message { .. } | What::Ready(_) => {}
        }
    }

    fn knows(&self, at: Number, who: Number) -> bool {
        self.of.get(&at).is_some_and(|known| known.contains(&who))
    }

    fn count(&self, at: Number) -> usize {
        self.of.get(&at).map_or(0, HashSet::len)
    }
}

// ─── Small helpers ──────────────────────────────────────────────────────────────────

/// Member `n`'s loopback address: host `n` of the bench's block ([`Hosts`]).
fn lo(n: Number) -> Ipv4Addr {
    Hosts::of_this_binary().addr(n)
}

fn name_of(n: Number) -> String {
    format!("m{n}")
}

fn number_of_name(name: &str) -> Option<Number> {
    name.strip_prefix('m')?.parse().ok()
}

/// Message ids are unique within a run; a throughput round takes a block of them.
static ID_BLOCK: AtomicU64 = AtomicU64::new(1);
const ID_BLOCK_SIZE: u64 = 1 << 32;

fn next_message_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The text of message `id`: the id first, so a receiver can tell which message it
/// is, padded to [`MESSAGE_BYTES`] like a typical chat line.
fn message_text(id: u64) -> String {
    let mut text = format!("{id} ");
    text.extend(std::iter::repeat_n(
        'x',
        MESSAGE_BYTES.saturating_sub(text.len()),
    ));
    text
}

fn id_of_text(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

/// A UDP socket on `0.0.0.0:port` that shares the port with the other members on this
/// machine (`SO_REUSEADDR`, set before `bind`), as p2pchat's discovery listener does.
fn shared_udp_listener(port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        port,
    )))?;
    Ok(socket.into())
}

/// Connects to `to` from a socket bound to `from`, so that the connection runs between
/// exactly the addresses p2pchat's would (std cannot bind before connecting).
fn dial(from: Ipv4Addr, to: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(from, 0)))?;
    socket.connect(&SockAddr::from(to))?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `N cores, kernel K, CPU` from /proc and uname.
fn machine() -> String {
    let cores = thread::available_parallelism().map_or(0, usize::from);
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_default();
    format!("{cores} cores, Linux {}, {cpu}", kernel.trim())
}

// ─── Samples and the table ──────────────────────────────────────────────────────────

#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    lost: usize,
}

impl Samples {
    fn absorb(&mut self, other: Samples) {
        self.times.extend(other.times);
        self.lost += other.lost;
    }

    /// The `q` quantile by the nearest-rank method (1.0 is the maximum).
    fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.times.clone();
        sorted.sort();
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn time_figure(time: Option<Duration>) -> Figure {
    time.map_or(Figure::None("no sample".into()), Figure::Time)
}

fn lost_note(chat: &Samples, floor: &Samples) -> String {
    if chat.lost + floor.lost == 0 {
        String::new()
    } else {
        format!("; timed out: {} / {}", chat.lost, floor.lost)
    }
}

enum Figure {
    Time(Duration),
    /// Messages per second: more is better.
    Rate(f64),
    Bytes(u64),
    /// Events per second: more is worse.
    PerSecond(f64),
    None(String),
}

impl Figure {
    /// The cost as a number, larger worse: a rate is inverted.
    fn cost(&self) -> Option<f64> {
        match self {
            Figure::Time(t) => Some(t.as_secs_f64()),
            Figure::Rate(r) if *r > 0.0 => Some(1.0 / r),
            Figure::Bytes(b) => Some(*b as f64),
            Figure::PerSecond(p) => Some(*p),
            Figure::Rate(_) | Figure::None(_) => None,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Time(t) => {
                let micros = t.as_secs_f64() * 1e6;
                match micros {
                    m if m < 1_000.0 => write!(f, "{m:.0} µs"),
                    m if m < 10_000.0 => write!(f, "{:.2} ms", m / 1e3),
                    m if m < 1_000_000.0 => write!(f, "{:.1} ms", m / 1e3),
                    m => write!(f, "{:.2} s", m / 1e6),
                }
            }
            Figure::Rate(r) => write!(f, "{:.1} k msg/s", r / 1e3),
            Figure::Bytes(b) if *b >= 1 << 20 => write!(f, "{:.2} MiB", *b as f64 / 1048576.0),
            Figure::Bytes(b) => write!(f, "{:.0} KiB", *b as f64 / 1024.0),
            Figure::PerSecond(p) => write!(f, "{p:.1} /s"),
            Figure::None(why) => f.write_str(why),
        }
    }
}

struct Row {
    what: String,
    chat: Figure,
    floor: Figure,
    /// For latency rows: the floor's one-way latency at the same quantile.
    one_way: Option<Figure>,
    /// How the floor was measured (and any lost samples).
    how: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn failed(&mut self, what: &str, why: &str) {
        self.rows.push(Row {
            what: what.into(),
            chat: Figure::None("—".into()),
            floor: Figure::None("—".into()),
            one_way: None,
            how: why.into(),
        });
    }
}

fn ratio(chat: &Figure, floor: &Figure) -> String {
    match (chat.cost(), floor.cost()) {
        (Some(c), Some(f)) if f > 0.0 => format!("{:.2}", c / f),
        _ => "—".into(),
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "measurement",
            "p2pchat",
            "floor",
            "×floor",
            "×1-way",
            "floor measured as",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.what.clone(),
                    row.chat.to_string(),
                    row.floor.to_string(),
                    ratio(&row.chat, &row.floor),
                    row.one_way
                        .as_ref()
                        .map_or("".into(), |one_way| ratio(&row.chat, one_way)),
                    row.how.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width - cell.chars().count();
                // Numbers are right-aligned, words left-aligned.
                if (1..=4).contains(&i) {
                    write!(f, "| {}{cell} ", " ".repeat(pad))?;
                } else {
                    write!(f, "| {cell}{} ", " ".repeat(pad))?;
                }
            }
            writeln!(f, "|")
        };
        line(f, &header.map(String::from))?;
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if (1..=4).contains(&i) {
                    format!("{}:", "-".repeat(w - 1))
                } else {
                    "-".repeat(w)
                }
            })
            .collect();
        writeln!(
            f,
            "|{}|",
            rule.iter()
                .map(|r| format!(" {r} "))
                .collect::<Vec<_>>()
                .join("|")
        )?;
        for row in &cells {
            line(f, row)?;
        }
        Ok(())
    }
}
