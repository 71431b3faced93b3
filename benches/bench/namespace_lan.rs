//! Part 6: the namespace LAN, real processes on real (virtual) machines.

use super::*;

/// Eight real members, each in its own namespace: delivery to all, a ninth member's
/// join and graceful leave seen by all; then 64 members forming a full mesh. The floor
/// is `--floor-node` processes in the same namespaces, side by side (other port).
pub(crate) fn part_lan(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    if !root_or_skip("6 namespace LAN", table) {
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

/// Whether this process may build namespace LANs (it must be root). If not, the part
/// named `what` is skipped with a row saying why: the other parts still run.
pub(crate) fn root_or_skip(what: &str, table: &mut Table) -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    let why = "needs root to create network namespaces; run as root: sudo -E cargo bench";
    progress(&format!("{what} skipped: {why}"));
    table.failed(what, &format!("skipped: {why}"));
    false
}

pub(crate) fn lan_eight(
    plan: &Plan,
    lan: &Lan,
    chat_binary: &Path,
    table: &mut Table,
) -> Result<(), String> {
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
pub(crate) fn lan_mesh(
    lan: &Lan,
    chat_binary: &Path,
    hosts: Number,
    table: &mut Table,
) -> Result<(), String> {
    let members: Vec<Number> = (1..=hosts).collect();
    let (chat, diagnostics) = mesh_once(&format!("p2pchat {hosts}-member"), &members, |m| {
        Ok(on_host(
            lan,
            m,
            chat_binary,
            &chat_args(lan.host_ip(usize::from(m)), LAN_CHAT_PORT),
        ))
    })?;
    let (floor, _) = mesh_once(&format!("floor {hosts}-member"), &members, |m| {
        floor_mesh_command(lan, m)
    })?;
    let figure =
        |formed: Option<Duration>| formed.map_or(Figure::None("timed out".into()), Figure::Time);
    table.row(Row {
        what: format!("6 LAN full mesh, {hosts} members started at once"),
        chat: figure(chat),
        floor: figure(floor),
        one_way: None,
        how: format!(
            "spawn all → each printed 63 joined; std processes dialing all; \
             p2pchat wrote {diagnostics} stderr lines"
        ),
    });
    Ok(())
}

/// Starts a process for each of `members` (numbered 1, 2, … in the LAN), `command(m)`
/// for member `m`, one right after the other, and waits until each has printed a
/// `joined` line for every other one; then all leave. Returns the time from the first
/// spawn to the last of those lines (`None` if the mesh did not form within twice
/// [`STEP_TIMEOUT`]), and how many lines the processes wrote to stderr, together.
pub(crate) fn mesh_once(
    label: &str,
    members: &[Number],
    command: impl Fn(Number) -> Result<Command, String>,
) -> Result<(Option<Duration>, usize), String> {
    let mut reports = Reports::new();
    let mut procs = Vec::new();
    let started = Instant::now();
    for &m in members {
        procs.push(Proc::spawn(command(m)?, m, &reports)?);
    }
    let spawned = started.elapsed();
    let formed = reports.wait_mesh(members, STEP_TIMEOUT * 2);
    if formed.is_none() {
        let short: Vec<String> = members
            .iter()
            .filter(|&&m| reports.members.count(m) < members.len() - 1)
            .map(|&m| format!("m{m} knows {}", reports.members.count(m)))
            .collect();
        progress(&format!("{label} mesh incomplete: {}", short.join(", ")));
    }
    progress(&format!(
        "{label} mesh: spawning took {:.2} s",
        spawned.as_secs_f64()
    ));
    let written = exit_all(procs);
    Ok((
        formed.map(|at| at.saturating_duration_since(started)),
        written,
    ))
}

/// The floor node of member `m` in a mesh of members 1, 2, …: it dials the members
/// started before it, and the later ones dial it.
pub(crate) fn floor_mesh_command(lan: &Lan, m: Number) -> Result<Command, String> {
    let earlier: Vec<Number> = (1..m).collect();
    Ok(on_host(
        lan,
        m,
        &self_exe()?,
        &floor_node_args(lan, m, &earlier),
    ))
}

pub(crate) fn chat_args(host: Ipv4Addr, port: u16) -> Vec<String> {
    let name = name_of(host.octets()[3]);
    vec![host.to_string(), name, "--port".into(), port.to_string()]
}

/// A floor node on host `me` that dials `dial` (the members started before it).
pub(crate) fn floor_node_args(lan: &Lan, me: Number, dial: &[Number]) -> Vec<String> {
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
pub(crate) fn exit_all(procs: Vec<Proc>) -> usize {
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
pub(crate) const ARP_LIMITS: [(&str, u32); 2] = [
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", 8192),
    ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", 16384),
];

/// The machine's neighbour-table limits raised to [`ARP_LIMITS`] while it lives, and
/// put back as they were when dropped.
pub(crate) struct ArpLimits {
    pub(crate) raised: Vec<(&'static str, String)>,
}

impl ArpLimits {
    pub(crate) fn raise() -> Result<ArpLimits, String> {
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
pub(crate) fn on_host(lan: &Lan, host: Number, program: &Path, args: &[String]) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", lan.host_ns(usize::from(host))])
        .arg(program)
        .args(args);
    command
}
