//! Driving a real `p2pchat` process the way a user at a terminal would.
//!
//! A [`ChatProcess`] owns one child process with all three standard streams piped:
//!
//! - **stdin** is where the test "types": [`ChatProcess::send_line`] writes one line and
//!   flushes, because the chat reads line by line and a line stuck in our buffer would
//!   never arrive.
//! - **stdout** and **stderr** are each drained by a background thread into a shared
//!   log guarded by a `Mutex`, with a `Condvar` that wakes waiters when a line arrives.
//!   Draining continuously matters: a pipe holds only about 64 KiB, and a child that
//!   fills it blocks in `write` and would look hung. The threads end on their own at end
//!   of file, which is when the child exits (or closes the stream).
//!
//! Tests wait for *events* ([`ChatProcess::wait_for_line`]) with generous deadlines and
//! never assert on timing. Every failure message carries everything the process printed,
//! because a failing network test is otherwise very hard to read after the fact.
//!
//! Lines that the chat prints without a trailing newline (a prompt, say) are joined with
//! the next line; match with `contains` rather than `starts_with` when that can happen.
//!
//! The child is always reaped: [`Drop`] kills it with SIGKILL if it is still running and
//! waits for it, so a failed test leaves neither a zombie nor a stray member on the LAN.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{EVENT_TIMEOUT, missed_messages, said};

/// The binary under test, built by cargo for integration tests.
pub const CHAT_BINARY: &str = env!("CARGO_BIN_EXE_p2pchat");

/// How often [`ChatProcess::wait_exit`] checks whether the child has exited. `Child` has
/// no wait-with-timeout, so we poll; 20 ms costs nothing and adds no visible delay.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How often [`ChatProcess::wait_for_count`] counts the matching lines again.
const COUNT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// After the child exits, how long to wait for the reader threads to hand over the last
/// lines still in the pipes. Reaching end of file takes microseconds; the bound only
/// guards against a grandchild that inherited the pipe and keeps it open.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Which of the child's output streams a line came from.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// Everything the child has printed so far, shared between the reader threads (which
/// append) and the test thread (which waits and reads).
#[derive(Default)]
struct OutputLog {
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// Set by a reader thread when its stream reached end of file: no more lines will come.
    stdout_closed: bool,
    stderr_closed: bool,
    /// Until then the stdout reader reads nothing, as a paused terminal or a stalled
    /// pipe would: the child's writes fill the pipe and then block.
    stdout_paused_until: Option<Instant>,
}

impl OutputLog {
    fn push(&mut self, stream: Stream, line: String) {
        match stream {
            Stream::Stdout => self.stdout.push(line),
            Stream::Stderr => self.stderr.push(line),
        }
    }

    fn close(&mut self, stream: Stream) {
        match stream {
            Stream::Stdout => self.stdout_closed = true,
            Stream::Stderr => self.stderr_closed = true,
        }
    }

    fn both_closed(&self) -> bool {
        self.stdout_closed && self.stderr_closed
    }
}

/// The log plus the condition variable signalled whenever it changes.
type SharedOutput = (Mutex<OutputLog>, Condvar);

/// One running chat member (or, in the infrastructure self-tests, any helper program).
pub struct ChatProcess {
    /// Names the process in failure messages ("host2", "alice").
    label: String,
    child: Child,
    /// `None` once [`ChatProcess::close_stdin`] was called. Behind a mutex so that
    /// `send_line` can take `&self`, like the waiting methods.
    stdin: Mutex<Option<ChildStdin>>,
    output: Arc<SharedOutput>,
    /// Index of the first stdout line not yet consumed by a `wait_for_*` call.
    stdout_cursor: AtomicUsize,
    /// Set once the child has been reaped; from then on its PID may belong to someone
    /// else, so no signal may be sent to it.
    exit_status: Option<ExitStatus>,
    readers: Vec<JoinHandle<()>>,
}

impl ChatProcess {
    /// Starts the chat binary in this test's own network namespace (loopback tests).
    pub fn spawn(args: &[&str]) -> ChatProcess {
        let mut command = Command::new(CHAT_BINARY);
        command.args(args);
        ChatProcess::from_command("p2pchat", command)
    }

    /// Starts the chat binary inside network namespace `ns`.
    ///
    /// `ip netns exec` switches namespace and then *execs* the program (it does not fork),
    /// so the child's PID is the chat's own PID and signals reach the chat directly.
    pub fn spawn_in_netns(ns: &str, args: &[&str]) -> ChatProcess {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, CHAT_BINARY]).args(args);
        ChatProcess::from_command(&format!("p2pchat in {ns}"), command)
    }

    /// Starts any prepared command with piped standard streams. The chat constructors
    /// use this; the infrastructure self-tests use it to run small helper programs.
    ///
    /// `NO_COLOR=1` keeps the chat's output plain text so tests can match it, and
    /// `RUST_BACKTRACE=1` puts the location of any panic into the failure dump.
    pub fn from_command(label: &str, command: Command) -> ChatProcess {
        ChatProcess::from_command_observed(label, command, |_| {})
    }

    /// Like [`ChatProcess::from_command`], and `observe` sees each stdout line the
    /// moment it is read from the pipe, on the reader thread, before it is logged: the
    /// benchmark stamps lines with the time they arrived.
    pub fn from_command_observed(
        label: &str,
        mut command: Command,
        observe: impl FnMut(&str) + Send + 'static,
    ) -> ChatProcess {
        command
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("{label}: could not start {command:?}: {error}"));

        let output: Arc<SharedOutput> = Arc::default();
        let stdout = child
            .stdout
            .take()
            .expect("child stdout was requested as a pipe");
        let stderr = child
            .stderr
            .take()
            .expect("child stderr was requested as a pipe");
        let readers = vec![
            spawn_reader(
                label,
                Stream::Stdout,
                stdout,
                Arc::clone(&output),
                Box::new(observe),
            ),
            spawn_reader(
                label,
                Stream::Stderr,
                stderr,
                Arc::clone(&output),
                Box::new(|_| {}),
            ),
        ];
        let stdin = child.stdin.take();

        ChatProcess {
            label: label.to_string(),
            child,
            stdin: Mutex::new(stdin),
            output,
            stdout_cursor: AtomicUsize::new(0),
            exit_status: None,
            readers,
        }
    }

    /// Renames the process in failure messages, e.g. after the member it plays.
    pub fn with_label(mut self, label: &str) -> ChatProcess {
        self.label = label.to_string();
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stdout line (after those already consumed) for which `pred`
    /// holds, consumes it and everything before it, and returns it.
    ///
    /// Panics with the full output if no such line arrives within `timeout`, or at once
    /// if stdout is closed and no such line can arrive any more.
    #[track_caller]
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        self.wait_for_stdout("a stdout line matching the test's predicate", pred, timeout)
    }

    /// [`ChatProcess::wait_for_line`] for a line containing `needle`.
    #[track_caller]
    pub fn wait_for_line_containing(&self, needle: &str, timeout: Duration) -> String {
        let awaited = format!("a stdout line containing {needle:?}");
        self.wait_for_stdout(&awaited, |line| line.contains(needle), timeout)
    }

    /// How many stdout lines so far (consumed or not) satisfy `pred`. Does not move the
    /// cursor, so it can check that something happened exactly once.
    pub fn count_lines(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lock_output()
            .stdout
            .iter()
            .filter(|line| pred(line))
            .count()
    }

    /// Waits until at least `at_least` stdout lines satisfy `pred`, up to
    /// [`EVENT_TIMEOUT`]. Unlike `wait_for_line` it moves no cursor, so lines that may
    /// come in any order (joins from several members) can be awaited one after another.
    #[track_caller]
    pub fn wait_for_count(&self, what: &str, pred: impl Fn(&str) -> bool, at_least: usize) {
        self.wait_for_count_within(what, pred, at_least, EVENT_TIMEOUT);
    }

    /// [`ChatProcess::wait_for_count`] with a deadline of the caller's choice.
    #[track_caller]
    pub fn wait_for_count_within(
        &self,
        what: &str,
        pred: impl Fn(&str) -> bool,
        at_least: usize,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.count_lines(&pred);
            if seen >= at_least {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: saw {seen} of {at_least} x {what} within {timeout:?}\n{}",
                    self.label(),
                    self.transcript()
                );
            }
            thread::sleep(COUNT_POLL_INTERVAL);
        }
    }

    /// Waits until `expected` chat messages from `sender` are accounted for: shown as
    /// chat lines, or counted in "not shown here" notices (see [`missed_messages`]).
    /// Returns the texts shown, in order, and how many were counted as missed.
    #[track_caller]
    pub fn wait_for_messages_accounted(
        &self,
        sender: &str,
        expected: u64,
        timeout: Duration,
    ) -> (Vec<String>, u64) {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.stdout_lines();
            let shown: Vec<String> = lines
                .iter()
                .filter_map(|line| said(line, sender).map(str::to_owned))
                .collect();
            let missed: u64 = lines.iter().filter_map(|line| missed_messages(line)).sum();
            if shown.len() as u64 + missed >= expected {
                return (shown, missed);
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: {} of {expected} messages from {sender} shown and {missed} counted \
                     as missed within {timeout:?}",
                    self.label(),
                    shown.len()
                );
            }
            thread::sleep(COUNT_POLL_INTERVAL);
        }
    }

    /// Stops reading the child's stdout for `pause`, from now: once the pipe is full,
    /// the child's writes to stdout block, as they do for a terminal the user paused
    /// (Ctrl-S, scrolling back) or a pipe into a stalled program.
    pub fn stop_reading_stdout_for(&self, pause: Duration) {
        self.lock_output().stdout_paused_until = Some(Instant::now() + pause);
    }

    /// Waits until exactly this line was printed (at least once); moves no cursor.
    #[track_caller]
    pub fn wait_for_exact(&self, line: &str) {
        self.wait_for_count(&format!("{line:?}"), |l| l == line, 1);
    }

    /// Waits until a line containing `needle` was printed and returns the first such
    /// line; moves no cursor.
    #[track_caller]
    pub fn wait_for_containing(&self, needle: &str) -> String {
        self.wait_for_count(
            &format!("a line with {needle:?}"),
            |l| l.contains(needle),
            1,
        );
        self.stdout_lines()
            .into_iter()
            .find(|l| l.contains(needle))
            .expect("waited for it above")
    }

    /// Fails, with the transcript, if any stdout line so far satisfies `pred`.
    #[track_caller]
    pub fn assert_not_printed(&self, what: &str, pred: impl Fn(&str) -> bool) {
        assert!(
            self.count_lines(pred) == 0,
            "{}: printed {what}, which it must not\n{}",
            self.label(),
            self.transcript()
        );
    }

    /// Types `/exit` and checks that the chat ends with status 0.
    #[track_caller]
    pub fn leave_with_exit(&mut self) {
        self.send_line("/exit");
        let status = self.wait_exit(EVENT_TIMEOUT);
        assert_eq!(
            status.code(),
            Some(0),
            "{}: /exit should end with status 0\n{}",
            self.label(),
            self.transcript()
        );
    }

    /// Waits until the chat line `hh:mm:ss WHO: TEXT` was printed (at least once), where
    /// WHO is what comes before the colon (`Alex`, `[private] Alex`, `Sam (127.0.0.4)`);
    /// moves no cursor.
    #[track_caller]
    pub fn wait_for_said(&self, who: &str, text: &str) {
        self.wait_for_count(
            &format!("\"hh:mm:ss {who}: {text}\""),
            |line| said(line, who) == Some(text),
            1,
        );
    }

    /// Waits until "NAME joined chat" was printed for every one of `names`, in whatever
    /// order they arrive; consumes the lines up to the last of them.
    #[track_caller]
    pub fn wait_for_joins(&self, names: &[&str]) {
        let mut missing: HashSet<&str> = names.iter().copied().collect();
        while !missing.is_empty() {
            let line = self.wait_for_line(
                |line| {
                    line.strip_suffix(" joined chat")
                        .is_some_and(|name| missing.contains(name))
                },
                EVENT_TIMEOUT,
            );
            missing.remove(line.trim_end_matches(" joined chat"));
        }
    }

    /// Everything printed so far, each line quoted so escapes are visible, for failure
    /// messages.
    pub fn transcript(&self) -> String {
        let mut text = format!("--- {} stdout ---\n", self.label());
        for line in self.stdout_lines() {
            text.push_str(&format!("{line:?}\n"));
        }
        text.push_str("--- stderr ---\n");
        for line in self.stderr_lines() {
            text.push_str(&format!("{line:?}\n"));
        }
        text
    }

    /// A snapshot of every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lock_output().stdout.clone()
    }

    /// A snapshot of every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.lock_output().stderr.clone()
    }

    /// Types `line` into the chat: writes it with a newline and flushes at once.
    #[track_caller]
    pub fn send_line(&self, line: &str) {
        if let Err(error) = self.try_send_line(line) {
            let dump = self.dump();
            panic!(
                "{}: could not send {line:?} ({error}); did it exit?\n{dump}",
                self.describe()
            );
        }
    }

    /// [`ChatProcess::send_line`] that reports a failure (stdin closed, the process
    /// gone) instead of panicking.
    pub fn try_send_line(&self, line: &str) -> std::io::Result<()> {
        let mut stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pipe) = stdin.as_mut() else {
            return Err(std::io::Error::other("stdin was closed"));
        };
        pipe.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| pipe.flush())
    }

    /// Closes the chat's stdin: end of file, as when a user presses Ctrl-D.
    pub fn close_stdin(&mut self) {
        let pipe = self.stdin.get_mut().unwrap_or_else(PoisonError::into_inner);
        drop(pipe.take());
    }

    /// SIGKILL, at once (no `kill` process in between), and reaps the child.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            let _ = self.child.kill();
            self.exit_status = self.child.wait().ok();
        }
        self.exit_status
    }

    /// Sends signal `sig` ("INT", "TERM", "KILL", "STOP", "CONT", ...) with `kill -s`.
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        if self.exit_status.is_some() {
            // Reaped: the PID may already name an unrelated process.
            panic!(
                "{}: signal {sig} after the process was reaped",
                self.describe()
            );
        }
        let pid = self.pid().to_string();
        let result = Command::new("kill")
            .args(["-s", sig, &pid])
            .output()
            .unwrap_or_else(|error| panic!("could not run `kill`: {error}"));
        if !result.status.success() {
            panic!(
                "{}: `kill -s {sig} {pid}` failed: {}",
                self.describe(),
                String::from_utf8_lossy(&result.stderr).trim()
            );
        }
    }

    /// Waits for the process to exit and returns its status, with all its output
    /// collected (so `stdout_lines` afterwards shows the last lines too).
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.try_wait_exit(timeout) {
            Some(status) => status,
            None => panic!(
                "{}: still running {timeout:?} after wait_exit began\n{}",
                self.describe(),
                self.dump()
            ),
        }
    }

    /// [`ChatProcess::wait_exit`] that returns `None` if the process is still running
    /// after `timeout` (it is then killed when dropped).
    #[track_caller]
    pub fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exit_status {
            return Some(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exit_status = Some(status);
                    self.wait_for_output_drained();
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(EXIT_POLL_INTERVAL),
                Ok(None) => return None,
                Err(error) => panic!("{}: could not poll for exit: {error}", self.describe()),
            }
        }
    }

    #[track_caller]
    fn wait_for_stdout(
        &self,
        awaited: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let (_, changed) = &*self.output;
        let mut output = self.lock_output();
        // Lines before `scanned` were already tested against `pred` and did not match.
        let mut scanned = self.stdout_cursor.load(Ordering::SeqCst);
        loop {
            let unscanned = output.stdout.get(scanned..).unwrap_or_default();
            if let Some(offset) = unscanned.iter().position(|line| pred(line)) {
                let index = scanned + offset;
                self.stdout_cursor.store(index + 1, Ordering::SeqCst);
                return output.stdout[index].clone();
            }
            scanned = output.stdout.len();

            let problem = if output.stdout_closed {
                Some("stdout was closed (did the process exit?) before".to_string())
            } else if Instant::now() >= deadline {
                Some(format!("timed out after {timeout:?}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                let dump = format_dump(&output, self.stdout_cursor.load(Ordering::SeqCst));
                drop(output);
                panic!(
                    "{}: {problem} waiting for {awaited}\n{dump}",
                    self.describe()
                );
            }

            let remaining = deadline.saturating_duration_since(Instant::now());
            output = changed
                .wait_timeout(output, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Blocks until both reader threads reached end of file, or the drain bound passed.
    fn wait_for_output_drained(&self) -> bool {
        let (_, changed) = &*self.output;
        let output = self.lock_output();
        let (output, _) = changed
            .wait_timeout_while(output, OUTPUT_DRAIN_TIMEOUT, |log| !log.both_closed())
            .unwrap_or_else(PoisonError::into_inner);
        output.both_closed()
    }

    fn lock_output(&self) -> MutexGuard<'_, OutputLog> {
        // A panicking test thread may poison the lock; the log itself is still valid.
        self.output.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// "label (pid N)", the way every failure message names the process.
    fn describe(&self) -> String {
        format!("{} (pid {})", self.label, self.pid())
    }

    /// Everything printed so far, for failure messages.
    fn dump(&self) -> String {
        format_dump(
            &self.lock_output(),
            self.stdout_cursor.load(Ordering::SeqCst),
        )
    }
}

impl Drop for ChatProcess {
    fn drop(&mut self) {
        if self.exit_status.is_none() {
            // Never leave a member running after its test: SIGKILL, then reap it so no
            // zombie remains. Errors are ignored because Drop must not panic (and the
            // process may already have exited on its own).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Join the readers only if they finished; a pipe held open by a grandchild would
        // otherwise block the test forever, and a detached reader is harmless.
        if self.wait_for_output_drained() {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
    }
}

/// Starts the thread that moves lines from one of the child's pipes into the shared log.
/// It ends at end of file (the child exited or closed the stream) or on a read error.
fn spawn_reader(
    label: &str,
    stream: Stream,
    pipe: impl Read + Send + 'static,
    output: Arc<SharedOutput>,
    mut observe: Box<dyn FnMut(&str) + Send>,
) -> JoinHandle<()> {
    let thread_name = format!("{label} {stream:?}");
    thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let (log, changed) = &*output;
            let mut reader = BufReader::new(pipe);
            let mut raw_line = Vec::new();
            loop {
                raw_line.clear();
                if let Stream::Stdout = stream {
                    let paused_until = log
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .stdout_paused_until;
                    if let Some(until) = paused_until {
                        thread::sleep(until.saturating_duration_since(Instant::now()));
                    }
                }
                match reader.read_until(b'\n', &mut raw_line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        // Lossy so that invalid UTF-8 from the chat shows up in the dump
                        // (as U+FFFD) instead of stopping the reader.
                        let text = String::from_utf8_lossy(&raw_line);
                        let line = text.trim_end_matches(['\n', '\r']).to_string();
                        observe(&line);
                        log.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(stream, line);
                        changed.notify_all();
                    }
                }
            }
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .close(stream);
            changed.notify_all();
        })
        .expect("start an output reader thread")
}

/// Both streams, numbered, with the stdout lines already consumed marked.
fn format_dump(output: &OutputLog, stdout_cursor: usize) -> String {
    let mut dump = String::new();
    let _ = writeln!(
        dump,
        "--- stdout: {} lines, {} consumed by earlier waits{} ---",
        output.stdout.len(),
        stdout_cursor,
        if output.stdout_closed { ", closed" } else { "" }
    );
    for (index, line) in output.stdout.iter().enumerate() {
        let marker = if index < stdout_cursor { '-' } else { '|' };
        let _ = writeln!(dump, "{:>4} {marker} {line}", index + 1);
    }
    let _ = writeln!(
        dump,
        "--- stderr: {} lines{} ---",
        output.stderr.len(),
        if output.stderr_closed { ", closed" } else { "" }
    );
    for (index, line) in output.stderr.iter().enumerate() {
        let _ = writeln!(dump, "{:>4} | {line}", index + 1);
    }
    dump.push_str("--- end of output ---");
    dump
}

/// Starts the chat binary as member `name` on loopback address `host`, on the test's
/// `port`, with `extra` options before the address; labelled with the name.
pub fn member(port: u16, host: Ipv4Addr, name: &str, extra: &[&str]) -> ChatProcess {
    let (port, host) = (port.to_string(), host.to_string());
    let mut args = vec!["--port", &port];
    args.extend_from_slice(extra);
    args.extend([host.as_str(), name]);
    ChatProcess::spawn(&args).with_label(name)
}

/// Waits until every member (a process and the name it chats as) has printed
/// "NAME joined chat" for every other one; moves no cursor.
#[track_caller]
pub fn wait_until_all_joined(members: &[(&ChatProcess, &str)], timeout: Duration) {
    for (process, own_name) in members {
        for (_, name) in members {
            if name != own_name {
                let line = format!("{name} joined chat");
                process.wait_for_count_within(&format!("{line:?}"), |l| l == line, 1, timeout);
            }
        }
    }
}
