//! The benchmark: p2pchat measured side by side with the wire it runs on.
//!
//! ```sh
//! cargo bench                      # everything: ~80 s on 2 quiet cores
//! cargo bench -- --quick           # fewer samples: checks that it all works
//! cargo bench -- --only lan        # one part: latency, throughput, join, mesh,
//!                                  # crash, cost, lan, peer or catch-up (the
//!                                  # last three as root)
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
//!    and then restored; the namespaces are removed at the end. Two more parts use
//!    such a LAN for the features that need one: a mesh formed from one `--peer` where
//!    broadcast is dropped (part 7), and the catch-up of lines missed behind a pulled
//!    cable (part 8).
//!
//! The floors of the process settings are this program itself, re-invoked in a hidden
//! mode: `--floor-node` is a plain TCP chat member (one connection per pair, a line per
//! message, the same output as p2pchat), `--floor-hold` holds idle connections
//! with a heartbeat each second (the floor for memory, CPU and crash detection).
//!
//! A member is known by a *number*, the last octet of its address; its name is `m{n}`.
//!
//! | module            | what it holds                                                  |
//! |-------------------|----------------------------------------------------------------|
//! | `main.rs`         | the command line, the plan, the parts in order, small helpers   |
//! | `latency.rs` … `catch_up.rs` | one part each: latency, throughput, join, mesh, crash, cost, the LAN, one `--peer`, catch-up |
//! | `cluster.rs`      | p2pchat members in this process ([`Node`]s) and their reports  |
//! | `plain.rs`        | the floors in this process: plain std TCP meshes and servers   |
//! | `floor.rs`        | the floor processes (`--floor-node`, `--floor-hold`)           |
//! | `processes.rs`    | child processes whose output lines become reports              |
//! | `reports.rs`      | who saw what, when: the measuring thread's view                |
//! | `table.rs`        | samples, figures and the Markdown table                        |

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

// The parts and what they share; each module takes the helpers here with `use super::*`.
mod catch_up;
mod cluster;
mod cost;
mod crash;
mod floor;
mod join;
mod latency;
mod mesh;
mod namespace_lan;
mod peer_mesh;
mod plain;
mod processes;
mod reports;
mod table;
mod throughput;

use catch_up::*;
use cluster::*;
use cost::*;
use crash::*;
use floor::*;
use join::*;
use latency::*;
use mesh::*;
use namespace_lan::*;
use peer_mesh::*;
use plain::*;
use processes::*;
use reports::*;
use table::*;
use throughput::*;

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

/// The chat's port on the namespace LAN (every namespace has its own ports), the
/// floor's port beside it, and the chat's port for the mesh from one `--peer`.
const LAN_CHAT_PORT: u16 = 24242;
const LAN_FLOOR_PORT: u16 = 24243;
const LAN_PEER_PORT: u16 = 24244;

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
    /// Rounds of the 32-member meshes (broadcast, one `--peer`, floor), and cuts of
    /// the catch-up part.
    lan_mesh_rounds: usize,
    catch_up_reps: usize,
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
                lan_mesh_rounds: 1,
                catch_up_reps: 1,
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
                lan_mesh_rounds: 3,
                catch_up_reps: 5,
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
    let parts: [&Part; 9] = [
        &|t| part_latency(&plan, t),
        &|t| part_throughput(&plan, t),
        &|t| part_join(&plan, t),
        &|t| part_mesh(t),
        &|t| part_crash(&plan, chat_binary, t),
        &|t| part_cost(&plan, chat_binary, t),
        &|t| part_lan(&plan, chat_binary, t),
        &|t| part_peer(&plan, chat_binary, t),
        &|t| part_catch_up(&plan, chat_binary, t),
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
const PART_NAMES: [&str; 9] = [
    "latency",
    "throughput",
    "join",
    "mesh",
    "crash",
    "cost",
    "lan",
    "peer",
    "catch-up",
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
