//! Part 5: what a member costs: memory, idle CPU, the binary's size.

use super::*;

/// Memory of one real `p2pchat` process with 1, 16 and 64 peers (the peers are members
/// in this process), its CPU while idle with 16 peers, and the binary's size. The
/// floor is a `--floor-hold` process holding as many connections, a thread per
/// connection, exchanging a 5-byte heartbeat each second, like p2pchat's.
pub(crate) fn part_cost(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
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
pub(crate) fn idle_cpu(
    plan: &Plan,
    chat: u32,
    floor: u32,
    table: &mut Table,
) -> Result<(), String> {
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
pub(crate) struct CpuUse {
    /// utime + stime, in the kernel's ticks, converted to time.
    pub(crate) ticks: Duration,
    /// Time on a CPU, summed over its threads (nanosecond precision).
    pub(crate) run: Duration,
    /// Voluntary and involuntary context switches, summed over its threads.
    pub(crate) switches: u64,
}

impl CpuUse {
    pub(crate) fn since(&self, earlier: &CpuUse) -> CpuUse {
        CpuUse {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            run: self.run.saturating_sub(earlier.run),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

/// utime + stime of a process, its ended threads included, from /proc/PID/stat.
pub(crate) fn process_cpu(pid: u32) -> Result<Duration, String> {
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

pub(crate) fn cpu_use(pid: u32) -> Result<CpuUse, String> {
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

pub(crate) fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The kernel's tick rate for /proc/PID/stat (100 on every common Linux build).
pub(crate) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A number from /proc/PID/status, such as `VmRSS` (in KiB) or `Threads`.
pub(crate) fn vm_kib(pid: u32, key: &str) -> Result<u64, String> {
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
pub(crate) fn is_stripped(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| !bytes.windows(8).any(|w| w == b".symtab\0"))
}
