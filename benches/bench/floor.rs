//! Floor processes: this program re-invoked as a plain chat member or connection holder.

use super::*;

/// `--floor-node MY_IP PORT DIAL_IP...`: a plain TCP chat member. It listens, dials
/// the members it is given (the ones started before it, retrying while one is not
/// listening yet), and accepts the others: one connection per pair, as in p2pchat. A
/// hello line each way; a typed line goes over every connection as `msg TEXT`;
/// `/exit` or end of input half-closes every connection. It prints what p2pchat
/// prints: `mN joined chat`, `00:00:00 mN: TEXT`, `mN left chat`.
pub(crate) fn floor_node(args: &[String]) -> ExitCode {
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
pub(crate) fn floor_connection(
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
pub(crate) fn floor_hold(args: &[String]) -> ExitCode {
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
