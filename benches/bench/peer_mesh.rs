//! Part 7: a full mesh from one known address, where broadcast does not reach.
//!
//! On Wi-Fi that filters broadcast, p2pchat's announcements reach nobody; a member
//! given `--peer ADDR` dials that one member, learns from it whom it is connected to
//! (its member list) and dials those too. This part measures how long that takes for
//! 32 members, beside the same 32 finding each other by broadcast, and beside the floor
//! of the LAN mesh row (part 6): plain processes that are told every address.

use super::*;

/// How many members form the mesh (issue 12 asks for 32).
const PEER_MESH_MEMBERS: Number = 32;

/// The three ways one round starts the 32 members.
#[derive(Clone, Copy)]
enum Start {
    /// p2pchat with broadcast, no `--peer`.
    Broadcast,
    /// p2pchat with broadcast dropped on every host, each given `--peer` of member 1.
    OnePeer,
    /// `--floor-node`s, each dialing the members started before it.
    Floor,
}

/// 32 namespaces; in each round the members are started each of the three ways in
/// turn (the first way changes from round to round, so none always meets a cold ARP
/// table), until every one has printed 31 `joined` lines, and then they all leave.
pub(crate) fn part_peer(plan: &Plan, chat_binary: &Path, table: &mut Table) -> Result<(), String> {
    if !root_or_skip("7 LAN mesh from one --peer", table) {
        return Ok(());
    }
    let hosts = PEER_MESH_MEMBERS;
    let setup = Instant::now();
    // 32 × 31 = 992 ARP entries: just under the default limit of 1024, which other
    // namespaces on the machine share (see ARP_LIMITS).
    let arp_limits = ArpLimits::raise()?;
    let lan = Lan::new(usize::from(hosts));
    progress(&format!(
        "{hosts} namespaces ready in {:.1} s",
        setup.elapsed().as_secs_f64()
    ));
    let result = peer_rounds(plan, &lan, chat_binary, table);
    drop(lan);
    drop(arp_limits);
    result
}

fn peer_rounds(
    plan: &Plan,
    lan: &Lan,
    chat_binary: &Path,
    table: &mut Table,
) -> Result<(), String> {
    let hosts = PEER_MESH_MEMBERS;
    let members: Vec<Number> = (1..=hosts).collect();
    let first = lan.host_ip(1).to_string();
    let chat_command = |m: Number, port: u16, peer: bool| -> Result<Command, String> {
        let mut args = Vec::new();
        // Member 1 is the one everybody knows; it is given nobody.
        if peer && m != 1 {
            args.extend(["--peer".to_string(), first.clone()]);
        }
        args.extend(chat_args(lan.host_ip(usize::from(m)), port));
        Ok(on_host(lan, m, chat_binary, &args))
    };
    let mut ways = [Start::Broadcast, Start::OnePeer, Start::Floor];
    // Indexed like `ways` before any rotation: the formation times and stderr lines.
    let mut formed: [Samples; 3] = Default::default();
    let mut diagnostics = [0; 3];
    for _ in 0..plan.lan_mesh_rounds {
        for way in ways {
            let (time, written) = match way {
                Start::Broadcast => mesh_once("p2pchat broadcast", &members, |m| {
                    chat_command(m, LAN_CHAT_PORT, false)
                })?,
                Start::OnePeer => {
                    for host in 1..=usize::from(hosts) {
                        lan.block_broadcast(host);
                    }
                    // A port of its own: nothing a leaving member of another round
                    // says can reach this round.
                    let result = mesh_once("p2pchat one --peer", &members, |m| {
                        chat_command(m, LAN_PEER_PORT, true)
                    });
                    for host in 1..=usize::from(hosts) {
                        lan.allow_broadcast(host);
                    }
                    result?
                }
                Start::Floor => mesh_once("floor", &members, |m| floor_mesh_command(lan, m))?,
            };
            let index = way as usize;
            match time {
                Some(time) => formed[index].times.push(time),
                None => formed[index].lost += 1,
            }
            diagnostics[index] += written;
        }
        ways.rotate_left(1);
    }
    let rounds = plan.lan_mesh_rounds;
    let [broadcast, one_peer, floor] = &formed;
    let others = hosts - 1;
    for (what, chat, written, how) in [
        (
            "started at once, broadcast",
            broadcast,
            diagnostics[Start::Broadcast as usize],
            "announcements on",
        ),
        (
            "from one --peer, broadcast dropped",
            one_peer,
            diagnostics[Start::OnePeer as usize],
            "every host drops broadcast (nftables), all given --peer of m1",
        ),
    ] {
        table.row(Row {
            what: format!("7 LAN mesh of {hosts} {what}, p50 of {rounds}"),
            chat: time_figure(chat.quantile(0.5)),
            floor: time_figure(floor.quantile(0.5)),
            one_way: None,
            how: format!(
                "spawn all → each printed {others} joined; {how}; max {} vs {}; \
                 floor: std processes dialing all; p2pchat wrote {written} stderr lines in all{}",
                time_figure(chat.quantile(1.0)),
                time_figure(floor.quantile(1.0)),
                lost_note(chat, floor)
            ),
        });
    }
    Ok(())
}
