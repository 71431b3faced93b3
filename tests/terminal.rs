//! The chat in a real terminal: what a person sees while typing as others talk.
//!
//! One member (Alex) runs in a detached `tmux` session of a fixed size, so its stdin and
//! stdout are a terminal and it uses the line editor; the test types with
//! `tmux send-keys` and reads the screen as the terminal shows it with
//! `tmux capture-pane`. The other member (Bo) is a plain piped process
//! ([`ChatProcess`]), whose stdout says what Alex really sent.
//!
//! Each test has its own tmux server (`-L` with a name no other test uses), its own port
//! from [`free_port`] and its own block of addresses, 127.0.N.x with one N from 40 to 59
//! per test (the other test files use lower blocks). A [`Tmux`] guard kills its server,
//! and with it the member inside, when the test ends, even by a panic.
//!
//! Screens are read with `capture-pane -J` (rows that the terminal wrapped are joined
//! into the line that was written) from the start of the scrollback, so a test sees
//! every line ever shown, in order. Tests wait for what they expect with the generous
//! [`EVENT_TIMEOUT`], polling the screen; no sleep is an assertion.
#![cfg(all(target_os = "linux", feature = "editor"))]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::process::{CHAT_BINARY, ChatProcess};
use common::{EVENT_TIMEOUT, free_port, said, unique_suffix};

/// How often a wait looks at the screen again.
const SCREEN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What the shell in the pane prints after the member exits, before its status.
const EXITED: &str = "p2pchat exited with status";

/// What the line editor's input line starts with (`PROMPT` in `src/editor.rs`).
const PROMPT: &str = "> ";

/// A tmux server of our own with one session, `chat`, running one chat member.
struct Tmux {
    socket: String,
    /// Where the server's socket file is, to remove it at the end (`kill-server`
    /// leaves it behind).
    socket_path: Option<PathBuf>,
}

impl Tmux {
    /// Starts `p2pchat ARGS` in a new detached session `columns` × `rows` big. When the
    /// member exits, the shell prints its exit status on the screen (tmux's own record
    /// of it is not always filled in when the terminal closes first).
    fn start(columns: u16, rows: u16, args: &[&str]) -> Tmux {
        let script = format!("{}; echo \"{EXITED} $?\"", chat_command(args));
        Tmux::start_script(columns, rows, &script)
    }

    /// Starts a shell running `script` in a new detached session.
    fn start_script(columns: u16, rows: u16, script: &str) -> Tmux {
        let mut tmux = Tmux {
            socket: format!("p2pchat-test-{}", unique_suffix()),
            socket_path: None,
        };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "chat",
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
            script,
        ]);
        // The screen stays readable after the shell exits.
        tmux.run(&["set-option", "-t", "chat", "remain-on-exit", "on"]);
        tmux.socket_path = Some(PathBuf::from(tmux.pane("#{socket_path}")));
        tmux
    }

    /// Runs one tmux command against our server and returns its output.
    #[track_caller]
    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("could not run tmux (is it installed?): {e}"));
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` as keys (no Enter).
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "chat", "-l", text]);
    }

    /// Presses a key by its tmux name ("Enter", "C-c").
    fn press(&self, key: &str) {
        self.run(&["send-keys", "-t", "chat", key]);
    }

    /// Pastes `text` as a terminal does: in one piece, each newline as Enter.
    fn paste(&self, text: &str) {
        self.run(&["set-buffer", "-b", "clip", text]);
        self.run(&["paste-buffer", "-b", "clip", "-t", "chat"]);
    }

    /// Every line shown so far (scrollback, then the screen), wrapped rows joined,
    /// without the empty rows below the last line.
    fn lines(&self) -> Vec<String> {
        let output = self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", "chat"]);
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.trim_end().to_owned())
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    /// A tmux format about the pane (`#{cursor_x}`, `#{pane_pid}`, ...).
    fn pane(&self, format: &str) -> String {
        let output = self.run(&["display-message", "-p", "-t", "chat", format]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Waits until the lines satisfy `pred`, and returns them.
    #[track_caller]
    fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let lines = self.lines();
            if pred(&lines) {
                return lines;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the terminal did not show {what} within {EVENT_TIMEOUT:?}:\n{}",
                    show(&lines)
                );
            }
            thread::sleep(SCREEN_POLL_INTERVAL);
        }
    }

    /// Types `text` on an empty input line and waits until it shows as the input line.
    #[track_caller]
    fn type_and_see(&self, text: &str) {
        self.type_text(text);
        self.wait_for_input_line(text);
    }

    /// Waits until the input line, holding exactly `typed`, is the last thing shown.
    #[track_caller]
    fn wait_for_input_line(&self, typed: &str) -> Vec<String> {
        self.wait_for(&format!("the input line {typed:?} last"), |lines| {
            input_line(lines).is_some_and(|input| same_text(&input, &format!("{PROMPT}{typed}")))
        })
    }
}

/// The input line: from the last line that starts with the prompt to the end, joined.
///
/// `capture-pane -J` joins the rows the terminal wrapped, but the editor itself moves
/// to the next row when a row is filled exactly, and those rows stay apart: they are
/// joined here. Anything else printed below the prompt (a torn line) is included, so
/// it shows as a difference.
fn input_line(lines: &[String]) -> Option<String> {
    Some(lines[input_start(lines)?..].concat())
}

/// Where the input line starts: the last line that starts with the prompt.
fn input_start(lines: &[String]) -> Option<usize> {
    lines
        .iter()
        .rposition(|line| line.starts_with(PROMPT.trim_end()))
}

/// Whether the input line holds `typed` and the line just above it is Bo's `text`.
fn bo_above_input(lines: &[String], text: &str, typed: &str) -> bool {
    input_start(lines).is_some_and(|start| {
        start > 0
            && said(&lines[start - 1], "Bo") == Some(text)
            && same_text(&lines[start..].concat(), &format!("{PROMPT}{typed}"))
    })
}

/// Whether two texts are the same but for spaces, which a terminal does not show at
/// the end of a row (a space that fell on a row's last column is lost to `capture-pane`).
fn same_text(shown: &str, expected: &str) -> bool {
    shown.split_whitespace().collect::<String>() == expected.split_whitespace().collect::<String>()
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends the session and the member in it (SIGHUP, as a closed window does).
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether `tmux` can be run. Outside CI a developer without it gets a visible skip; in
/// CI (`CI` set) a skip would hide these tests, so it is an error (`.ci/run` installs
/// it).
fn tmux_available(test: &str) -> bool {
    let version = Command::new("tmux").arg("-V").output();
    if version.is_ok_and(|output| output.status.success()) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the terminal tests, but tmux is missing ({test})");
    }
    eprintln!("SKIPPED {test}: needs tmux (apt-get install tmux)");
    false
}

/// The shell command that runs the chat with `args`, in plain text (no colour codes).
fn chat_command(args: &[&str]) -> String {
    format!(
        "env NO_COLOR=1 RUST_BACKTRACE=1 {CHAT_BINARY} {}",
        args.join(" ")
    )
}

/// The lines, numbered, for a failure message.
fn show(lines: &[String]) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("{i:4} {line:?}\n"))
        .collect()
}

/// Alex in tmux and Bo piped, on `block` (127.0.BLOCK.1 and .2), each seeing the other
/// joined and Alex at its prompt.
fn alex_and_bo(block: u8, columns: u16, rows: u16) -> (Tmux, ChatProcess) {
    let port = free_port().to_string();
    let alex_host = format!("127.0.{block}.1");
    let bo_host = format!("127.0.{block}.2");
    let alex = Tmux::start(columns, rows, &["--port", &port, &alex_host, "Alex"]);
    let bo = ChatProcess::spawn(&["--port", &port, &bo_host, "Bo"]).with_label("Bo");
    bo.wait_for_exact("Alex joined chat");
    alex.wait_for("Bo joined chat", |lines| {
        lines.iter().any(|l| l == "Bo joined chat")
    });
    alex.wait_for_input_line("");
    (alex, bo)
}

/// The lines that are exactly Alex's echo of `text`.
fn echoes(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .filter(|line| said(line, "Alex") == Some(text))
        .count()
}

/// The lines in which `text` appears in any form (typed, echoed, torn).
fn mentions(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|line| line.contains(text)).count()
}

/// Asserts that `text` is on exactly one line of the screen, else says `otherwise`.
#[track_caller]
fn assert_shown_once(lines: &[String], text: &str, otherwise: &str) {
    assert_eq!(mentions(lines, text), 1, "{otherwise}:\n{}", show(lines));
}

/// Alex presses Enter on `text`: Bo receives it, and once Bo's next line shows (so the
/// screen has certainly moved past the echo), Alex's screen shows the echo once.
/// Returns that screen.
#[track_caller]
fn send_and_see_the_echo(alex: &Tmux, bo: &ChatProcess, text: &str) -> Vec<String> {
    alex.press("Enter");
    bo_receives(bo, text);
    bo.send_line("after");
    let lines = alex.wait_for("the echo, then Bo's next line", |lines| {
        lines.iter().any(|line| said(line, "Bo") == Some("after"))
    });
    assert_eq!(echoes(&lines, text), 1, "no echo:\n{}", show(&lines));
    lines
}

/// Waits until Bo received `text` from Alex.
#[track_caller]
fn bo_receives(bo: &ChatProcess, text: &str) {
    bo.wait_for_line(|line| said(line, "Alex") == Some(text), EVENT_TIMEOUT);
}

#[test]
fn arriving_lines_go_above_a_half_typed_line_which_stays_whole() {
    if !tmux_available("arriving_lines_go_above_a_half_typed_line_which_stays_whole") {
        return;
    }
    let (alex, bo) = alex_and_bo(40, 80, 24);
    alex.type_and_see("I am typing a long sent");

    for n in 1..=50 {
        bo.send_line(&format!("interruption {n} from Bo"));
    }
    let lines = alex.wait_for("Bo's 50th line, then the input line", |lines| {
        bo_above_input(lines, "interruption 50 from Bo", "I am typing a long sent")
    });

    // Every arriving line whole, once, in order, above the input line.
    let bo_lines: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("from Bo"))
        .collect();
    let expected: Vec<String> = (1..=50)
        .map(|n| format!("interruption {n} from Bo"))
        .collect();
    let shown: Vec<&str> = bo_lines.iter().filter_map(|l| said(l, "Bo")).collect();
    assert_eq!(
        shown,
        expected,
        "Bo's lines are not all whole and in order:\n{}",
        show(&lines)
    );
    assert_eq!(bo_lines.len(), 50, "a torn line:\n{}", show(&lines));
    // The half-typed line is whole, last, with the cursor at its end.
    assert_shown_once(&lines, "I am typing", "the input line was torn or repeated");
    assert_eq!(
        alex.pane("#{cursor_x}"),
        (PROMPT.len() + "I am typing a long sent".len()).to_string(),
        "the cursor moved:\n{}",
        show(&lines)
    );

    alex.type_text("ence");
    alex.press("Enter");
    bo_receives(&bo, "I am typing a long sentence");
    let lines = alex.wait_for("the echo of the sentence", |lines| {
        echoes(lines, "I am typing a long sentence") == 1
    });
    assert_shown_once(
        &lines,
        "I am typing",
        "the sentence is shown more than once",
    );
}

#[test]
fn a_sent_line_is_shown_once_as_its_echo() {
    if !tmux_available("a_sent_line_is_shown_once_as_its_echo") {
        return;
    }
    let (alex, bo) = alex_and_bo(41, 80, 24);
    alex.type_text("hello from the terminal");
    alex.press("Enter");
    bo_receives(&bo, "hello from the terminal");
    // Bo answers, so the screen has certainly moved on past the echo.
    bo.send_line("got it");
    let lines = alex.wait_for("Bo's answer", |lines| {
        lines.iter().any(|line| said(line, "Bo") == Some("got it"))
    });
    assert_eq!(
        echoes(&lines, "hello from the terminal"),
        1,
        "no echo:\n{}",
        show(&lines)
    );
    assert_shown_once(
        &lines,
        "hello from the terminal",
        "the typed line is still shown beside its echo",
    );
}

#[test]
fn a_long_line_that_wraps_stays_whole_and_is_replaced_by_its_echo() {
    if !tmux_available("a_long_line_that_wraps_stays_whole_and_is_replaced_by_its_echo") {
        return;
    }
    let (alex, bo) = alex_and_bo(42, 40, 20);
    // 107 characters: three rows of a 40-column terminal with the prompt, not a whole
    // number of them.
    let text = "This line is much longer than the terminal is wide, so the terminal wraps it over several rows here";
    alex.type_and_see(text);
    for n in 1..=5 {
        bo.send_line(&format!("meanwhile {n}"));
    }
    alex.wait_for("Bo's lines above the long input line", |lines| {
        bo_above_input(lines, "meanwhile 5", text)
    });

    let lines = send_and_see_the_echo(&alex, &bo, text);
    // No rest of the typed rows: nothing else mentions any part of the text.
    assert_shown_once(
        &lines,
        "terminal wraps",
        "rows of the typed line were left behind",
    );
    assert_shown_once(
        &lines,
        "This line is much",
        "rows of the typed line were left behind",
    );
}

#[test]
fn wide_characters_and_emoji_keep_the_input_line_whole() {
    if !tmux_available("wide_characters_and_emoji_keep_the_input_line_whole") {
        return;
    }
    // 12 columns: "> 日本語テキスト 🎉" is 19 columns wide, and a wide character
    // does not fit at the end of the first row.
    let (alex, bo) = alex_and_bo(43, 12, 20);
    let text = "日本語テキスト 🎉";
    alex.type_and_see(text);
    bo.send_line("wide");
    alex.wait_for("Bo's line above the input line", |lines| {
        bo_above_input(lines, "wide", text)
    });

    let lines = send_and_see_the_echo(&alex, &bo, text);
    assert_shown_once(&lines, "日本", "rows of the typed line were left behind");
}

#[test]
fn a_pasted_block_of_lines_is_sent_line_by_line_in_order() {
    if !tmux_available("a_pasted_block_of_lines_is_sent_line_by_line_in_order") {
        return;
    }
    let (alex, bo) = alex_and_bo(44, 80, 30);
    let pasted: Vec<String> = (1..=20).map(|n| format!("pasted line {n}")).collect();
    alex.paste(&format!("{}\n", pasted.join("\n")));

    let received: Vec<String> = (0..pasted.len())
        .map(|_| {
            let line = bo.wait_for_line(|line| said(line, "Alex").is_some(), EVENT_TIMEOUT);
            said(&line, "Alex").unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(received, pasted, "Bo received the pasted lines otherwise");

    let lines = alex.wait_for("the 20 echoes", |lines| {
        pasted.iter().all(|text| echoes(lines, text) == 1)
    });
    for text in &pasted {
        // "pasted line 1" is also in "pasted line 10": match whole echoes and typed
        // lines.
        let typed = format!("{PROMPT}{text}");
        let shown = lines
            .iter()
            .filter(|line| **line == typed || said(line, "Alex") == Some(text))
            .count();
        assert_eq!(shown, 1, "{text:?} is not shown once:\n{}", show(&lines));
    }
}

#[test]
fn ctrl_c_in_the_middle_of_a_line_leaves_politely() {
    if !tmux_available("ctrl_c_in_the_middle_of_a_line_leaves_politely") {
        return;
    }
    let (alex, bo) = alex_and_bo(45, 80, 24);
    alex.type_and_see("half a tho");
    alex.press("C-c");
    bo.wait_for_exact("Alex left chat");
    alex.wait_for("the exit status", |lines| {
        lines.iter().any(|line| line.starts_with(EXITED))
    });
    let lines = alex.lines();
    assert!(
        lines.iter().any(|line| *line == format!("{EXITED} 0")),
        "Alex did not exit cleanly after Ctrl-C:\n{}",
        show(&lines)
    );
    assert_eq!(
        bo.count_lines(|line| said(line, "Alex") == Some("half a tho")),
        0,
        "the half-typed line was sent"
    );
}

#[test]
fn sigterm_in_the_middle_of_a_line_gives_the_terminal_back_its_settings() {
    if !tmux_available("sigterm_in_the_middle_of_a_line_gives_the_terminal_back_its_settings") {
        return;
    }
    let port = free_port().to_string();
    let files = std::env::temp_dir().join(format!("p2pchat-terminal-{}", unique_suffix()));
    std::fs::create_dir_all(&files).expect("create a directory for the terminal settings");
    let (before, after) = (files.join("before"), files.join("after"));
    // The shell records the terminal's settings before the chat and after it.
    let script = format!(
        "stty -g > {}; {}; stty -g > {}",
        before.display(),
        chat_command(&["--port", &port, "127.0.46.1", "Alex"]),
        after.display()
    );
    let alex = Tmux::start_script(80, 24, &script);
    let bo = ChatProcess::spawn(&["--port", &port, "127.0.46.2", "Bo"]).with_label("Bo");
    bo.wait_for_exact("Alex joined chat");
    alex.wait_for_input_line("");
    alex.type_and_see("half a tho");

    let shell = alex.pane("#{pane_pid}");
    let found = Command::new("pgrep")
        .args(["-P", &shell, "-x", "p2pchat"])
        .output()
        .expect("run pgrep");
    let chat = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(!chat.is_empty(), "the chat is not running under the shell");
    let killed = Command::new("kill").args(["-s", "TERM", &chat]).status();
    assert!(
        killed.is_ok_and(|status| status.success()),
        "kill -TERM {chat}"
    );

    bo.wait_for_exact("Alex left chat");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !after.exists() {
        assert!(
            Instant::now() < deadline,
            "the shell did not get the terminal back:\n{}",
            show(&alex.lines())
        );
        thread::sleep(SCREEN_POLL_INTERVAL);
    }
    // `stty` may find the file created but not yet written: read until it has a line.
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    while !read(&after).ends_with('\n') && Instant::now() < deadline {
        thread::sleep(SCREEN_POLL_INTERVAL);
    }
    let (settings_before, settings_after) = (read(&before), read(&after));
    let _ = std::fs::remove_dir_all(&files);
    assert!(!settings_before.is_empty(), "no settings recorded before");
    assert_eq!(
        settings_after, settings_before,
        "the terminal was left in other settings (raw mode?)"
    );
}

#[test]
fn a_diagnostic_goes_above_the_input_line_too() {
    if !tmux_available("a_diagnostic_goes_above_the_input_line_too") {
        return;
    }
    let port = free_port();
    let port_text = port.to_string();
    let alex = Tmux::start(80, 24, &["--port", &port_text, "127.0.47.1", "Alex"]);
    alex.wait_for_input_line("");
    alex.type_and_see("half a tho");

    // A stranger sends a length prefix over the frame limit: Alex closes the
    // connection and says so on stderr, which is the terminal here.
    let mut stranger = TcpStream::connect(("127.0.47.1", port)).expect("connect to Alex");
    let _ = stranger.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    let lines = alex.wait_for("the diagnostic above the input line", |lines| {
        input_start(lines).is_some_and(|start| {
            start > 0
                && lines[start - 1].starts_with("p2pchat: connection with 127.0.0.1 ended")
                && same_text(&lines[start..].concat(), &format!("{PROMPT}half a tho"))
        })
    });
    assert_shown_once(&lines, "half a tho", "the input line was torn");
}

#[test]
fn a_one_row_input_line_stays_whole_when_the_window_narrows() {
    if !tmux_available("a_one_row_input_line_stays_whole_when_the_window_narrows") {
        return;
    }
    let (alex, bo) = alex_and_bo(48, 80, 24);
    alex.type_and_see("short line");
    alex.run(&["resize-window", "-t", "chat", "-x", "30", "-y", "20"]);
    for n in 1..=3 {
        bo.send_line(&format!("after the resize {n}"));
    }
    let lines = alex.wait_for("Bo's lines above the input line", |lines| {
        bo_above_input(lines, "after the resize 3", "short line")
    });
    assert_shown_once(&lines, "short line", "the input line was torn or repeated");
    alex.press("Enter");
    bo_receives(&bo, "short line");
}

#[test]
fn a_paste_while_others_talk_keeps_every_line_whole_and_in_order() {
    if !tmux_available("a_paste_while_others_talk_keeps_every_line_whole_and_in_order") {
        return;
    }
    let (alex, bo) = alex_and_bo(49, 70, 24);
    alex.run(&["set-option", "-t", "chat", "history-limit", "5000"]);
    let pasted: Vec<String> = (1..=40).map(|n| format!("pasted {n}")).collect();
    let talk: Vec<String> = (1..=200).map(|n| format!("talk {n}")).collect();
    let flood = thread::scope(|scope| {
        let flood = scope.spawn(|| talk.iter().for_each(|line| bo.send_line(line)));
        alex.paste(&format!("{}\n", pasted.join("\n")));
        alex.type_text("still typing");
        flood.join()
    });
    assert!(flood.is_ok(), "Bo's flood failed");

    let lines = alex.wait_for("every line, then the input line", |lines| {
        lines
            .iter()
            .any(|line| said(line, "Bo") == Some("talk 200"))
            && lines
                .iter()
                .any(|line| said(line, "Alex") == Some("pasted 40"))
            && input_line(lines).is_some_and(|input| same_text(&input, "> still typing"))
    });
    let from = |sender: &str, marker: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|line| line.contains(marker))
            .map(|line| said(line, sender).unwrap_or(line).to_owned())
            .collect()
    };
    assert_eq!(from("Bo", "talk "), talk, "Bo's lines:\n{}", show(&lines));
    assert_eq!(
        from("Alex", "pasted "),
        pasted,
        "Alex's lines:\n{}",
        show(&lines)
    );
    assert_eq!(input_start(lines.as_slice()), Some(lines.len() - 1));
}

#[test]
fn the_usual_editing_keys_and_the_history_of_typed_lines_work() {
    if !tmux_available("the_usual_editing_keys_and_the_history_of_typed_lines_work") {
        return;
    }
    let (alex, bo) = alex_and_bo(50, 80, 24);
    alex.type_text("first line");
    alex.press("Enter");
    bo_receives(&bo, "first line");

    // Up brings back what this member typed.
    alex.press("Up");
    alex.wait_for_input_line("first line");
    // Ctrl-W deletes the word before the cursor, Home goes to the start.
    alex.press("C-w");
    alex.wait_for_input_line("first ");
    alex.press("Home");
    alex.type_text("the ");
    alex.wait_for_input_line("the first ");
    // Ctrl-U deletes to the start of the line.
    alex.press("End");
    alex.press("C-u");
    alex.wait_for_input_line("");
    alex.type_text("second line");
    alex.press("Enter");
    bo_receives(&bo, "second line");
}
