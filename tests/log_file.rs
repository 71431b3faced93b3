//! The log file (`--log`): every event, one whole line each with a full date, kept
//! across a kill and appended to by the next run.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
//!
//! The chat runs under a pseudo-terminal ([`common::terminal`]) and is killed by its
//! pid, found in `/proc`: this file needs Linux.

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::hosts::Hosts;
use common::process::member;
use common::terminal::{chat_under, on_terminal, piped_without_no_color, script_available};
use common::{EVENT_TIMEOUT, free_port};

/// How often [`TempFile::wait_for_lines`] reads the file again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A path in the temporary directory that no other test, or run, uses; removed when
/// dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> TempFile {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let name = format!("p2pchat-features-{what}-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = fs::remove_file(&path);
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the file has at least `count` lines, and returns them.
    #[track_caller]
    fn wait_for_lines(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let lines = self.lines();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} has {} of {count} lines after {EVENT_TIMEOUT:?}: {lines:#?}",
                self.0.display(),
                lines.len()
            );
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Today's local date, `YYYY-MM-DD`, as `date` (and so the chat) sees it.
fn local_date() -> String {
    let output = Command::new("date")
        .arg("+%F")
        .output()
        .expect("run `date`");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Splits a log line `YYYY-MM-DD hh:mm:ss REST` into the date and REST, if it has
/// exactly that shape.
fn dated(line: &str) -> Option<(&str, &str)> {
    let stamp = line.get(..19)?;
    let shape_holds = stamp.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let rest = line.get(19..)?.strip_prefix(' ')?;
    shape_holds.then_some((&stamp[..10], rest))
}

#[test]
fn the_log_file_records_every_event_with_a_full_date_and_survives_a_kill() {
    let hosts = Hosts::fresh();
    let port = free_port();
    let log = TempFile::new("log");
    let log_path = log
        .path()
        .to_str()
        .expect("a UTF-8 temporary path")
        .to_owned();
    let date_before = local_date();

    // The logging member runs on a terminal with colour when it can, so that a log that
    // copied the screen would show escape sequences.
    let (port_text, alex_at) = (port.to_string(), hosts.addr(1).to_string());
    let logger_args = ["--port", &port_text, "--log", &log_path, &alex_at, "Alex"];
    let terminal = script_available();
    let mut logger = if terminal {
        on_terminal("Alex (logging)", &logger_args, true)
    } else {
        piped_without_no_color("Alex (logging)", &logger_args)
    };
    let bo = member(port, hosts.addr(2), "Bo", &[]);
    logger.wait_for_containing("Bo joined chat");
    bo.wait_for_exact("Alex joined chat");

    bo.send_line("hello from Bo");
    logger.wait_for_containing("hello from Bo");
    bo.send_line("/name Bobby");
    logger.wait_for_containing("Bo is now Bobby");
    bo.send_line("/msg Alex psst");
    logger.wait_for_containing("psst");

    // Once the lines are in the file, SIGKILL: no goodbye, no flush, no destructor.
    let expected = [
        "Bo joined chat",
        "Bo: hello from Bo",
        "Bo is now Bobby",
        "[private] Bobby: psst",
    ];
    log.wait_for_lines(expected.len());
    let chat_pid = if terminal {
        chat_under(logger.pid())
    } else {
        logger.pid()
    };
    let killed = Command::new("kill")
        .args(["-s", "KILL", &chat_pid.to_string()])
        .status()
        .expect("run `kill`");
    assert!(killed.success(), "kill -s KILL {chat_pid} failed");
    logger.wait_exit(EVENT_TIMEOUT);
    // Bo sees the crash: the kernel closed the dead member's connection.
    bo.wait_for_exact("Alex left chat");
    let date_after = local_date();

    let check = |lines: &[String], expected: &[&str]| {
        let rests: Vec<&str> = lines
            .iter()
            .map(|line| {
                assert!(
                    !line.contains('\x1b'),
                    "an escape sequence in the log: {line:?}"
                );
                let (date, rest) = dated(line)
                    .unwrap_or_else(|| panic!("not `YYYY-MM-DD hh:mm:ss ...`: {line:?}"));
                assert!(
                    date == date_before || date == date_after,
                    "dated {date}, not today ({date_before} or {date_after}): {line:?}"
                );
                rest
            })
            .collect();
        assert_eq!(rests, expected, "the log, without dates: {lines:#?}");
    };
    let first_run = log.lines();
    check(&first_run, &expected);

    // A second run appends to the same file.
    let mut again = member(port, hosts.addr(3), "Alex again", &["--log", &log_path]);
    again.wait_for_exact("Bobby joined chat");
    log.wait_for_lines(expected.len() + 1);
    again.leave_with_exit();
    let both_runs = log.lines();
    assert_eq!(
        both_runs[..first_run.len()],
        first_run[..],
        "the second run must not change the first run's lines"
    );
    let mut all_expected = expected.to_vec();
    all_expected.push("Bobby joined chat");
    check(&both_runs, &all_expected);
}
