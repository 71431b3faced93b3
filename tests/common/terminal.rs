//! The chat on a pseudo-terminal, from util-linux `script`, for what a user sees only
//! on a terminal (colour) or must find out about the process under it.

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::EVENT_TIMEOUT;
use super::process::{CHAT_BINARY, ChatProcess};

/// How often [`chat_under`] looks in `/proc` again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Whether util-linux `script` can give the chat a pseudo-terminal.
pub fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `text` quoted for `sh`.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Starts `p2pchat args` with its stdin, stdout and stderr on a pseudo-terminal, under
/// `script -qfec CMD /dev/null` (quiet, flush at once, exit with the command's status,
/// no typescript file). `script` copies the terminal's output to its own stdout, which
/// [`ChatProcess`] reads, and its own stdin to the terminal, so typing still works.
///
/// `ChatProcess` sets `NO_COLOR=1`; with `colour` the command unsets it again. The
/// shell `exec`s, so the chat is `script`'s child (see [`chat_under`]).
pub fn on_terminal(label: &str, args: &[&str], colour: bool) -> ChatProcess {
    let mut words = vec!["exec".to_owned()];
    if colour {
        words.extend(["env", "-u", "NO_COLOR"].map(String::from));
    }
    words.push(shell_quoted(CHAT_BINARY));
    words.extend(args.iter().map(|arg| shell_quoted(arg)));
    let mut command = Command::new("script");
    command.args(["-qfec", &words.join(" "), "/dev/null"]);
    ChatProcess::from_command(label, command)
}

/// Starts `p2pchat args` with stdout a pipe and `NO_COLOR` unset: what a user gets
/// with `p2pchat ... | tee`, where colour would only be noise.
pub fn piped_without_no_color(label: &str, args: &[&str]) -> ChatProcess {
    let mut command = Command::new("env");
    command.args(["-u", "NO_COLOR", CHAT_BINARY]).args(args);
    ChatProcess::from_command(label, command)
}

/// The pid of the `p2pchat` process below `ancestor` (the `script` we started), found
/// in `/proc` (the `stat` of every process names its parent).
pub fn chat_under(ancestor: u32) -> u32 {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let mut parent_of: HashMap<u32, u32> = HashMap::new();
        let mut chats = Vec::new();
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue; // it exited meanwhile
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let ppid = stat[close + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|ppid| ppid.parse().ok());
            if let Some(ppid) = ppid {
                parent_of.insert(pid, ppid);
                if &stat[open + 1..close] == "p2pchat" {
                    chats.push(pid);
                }
            }
        }
        let below = |mut pid: u32| {
            while let Some(&parent) = parent_of.get(&pid) {
                if parent == ancestor {
                    return true;
                }
                pid = parent;
            }
            false
        };
        if let Some(&pid) = chats.iter().find(|&&pid| below(pid)) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no p2pchat process below pid {ancestor} within {EVENT_TIMEOUT:?}"
        );
        thread::sleep(POLL_INTERVAL);
    }
}
