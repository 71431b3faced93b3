//! The floors in this process: the same jobs with plain std sockets.

use super::*;

/// Plain std TCP between the same addresses: every sender has a connection to every
/// other member, and every member a thread per incoming connection that reads frames
/// (through a 4 KiB buffer, as p2pchat does) and reports them.
pub(crate) struct PlainMesh {
    /// `outgoing[(from, to)]`
    pub(crate) outgoing: HashMap<(Number, Number), TcpStream>,
}

impl PlainMesh {
    pub(crate) fn new(
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
    pub(crate) fn send(&self, from: Number, id: u64) -> Result<(), String> {
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

    pub(crate) fn close(self) {
        for stream in self.outgoing.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Reads length-prefixed frames until end of stream; the message text is the frame's
/// last [`MESSAGE_BYTES`] bytes.
pub(crate) fn read_plain_frames(
    stream: TcpStream,
    at: Number,
    from: Number,
    report: &Sender<Seen>,
) {
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
pub(crate) fn plain_server(number: Number, reports: &Reports) -> Result<SocketAddrV4, String> {
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
pub(crate) fn heartbeat_loop(mut stream: TcpStream) {
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
