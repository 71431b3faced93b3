//! Child processes (p2pchat members, floor processes) whose output lines become reports.

use super::*;

/// A child process (a p2pchat member, or a floor process) driven by the tests' own
/// process driver, [`ChatProcess`], whose stdout lines become reports the moment they
/// are read, and whose stdin stays open (end of input would make p2pchat leave).
pub(crate) struct Proc(pub(crate) ChatProcess);

impl Proc {
    pub(crate) fn spawn(
        command: Command,
        number: Number,
        reports: &Reports,
    ) -> Result<Proc, String> {
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

    pub(crate) fn pid(&self) -> u32 {
        self.0.pid()
    }

    pub(crate) fn type_line(&self, line: &str) -> Result<(), String> {
        self.0
            .try_send_line(line)
            .map_err(|e| format!("cannot write to process {}: {e}", self.pid()))
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        self.0.kill();
    }

    /// Closes stdin (end of input: the member leaves) and waits for the exit; kills
    /// the process if it has not exited within a few seconds. Returns how many lines
    /// it wrote to stderr (p2pchat writes a diagnostic there when a connection ends
    /// badly), after passing the first few on, so a flood cannot drown the bench's own
    /// output.
    pub(crate) fn exit(mut self) -> usize {
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
pub(crate) fn parse_line(line: &str) -> Option<What> {
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
    let (late, rest) = match rest.strip_prefix("[late] ") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let (name, text) = rest.split_once(": ")?;
    let (from, id) = (number_of_name(name)?, id_of_text(text)?);
    Some(if late {
        What::Late { from, id }
    } else {
        What::Message { from, id }
    })
}

pub(crate) fn chat_command(chat_binary: &Path, host: Ipv4Addr, port: u16) -> Command {
    let mut command = Command::new(chat_binary);
    command.args(chat_args(host, port));
    command
}

pub(crate) fn floor_hold_command(me: Ipv4Addr) -> Command {
    let mut command = Command::new(self_exe().unwrap_or_else(|_| PathBuf::from("bench")));
    command.args(["--floor-hold", &me.to_string()]);
    command
}

pub(crate) fn self_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the bench's own binary: {e}"))
}
