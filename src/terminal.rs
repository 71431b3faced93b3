//! The chat in a terminal: the banner, the user's lines, and everything printed.
//!
//! Two threads, as the design has it:
//!
//! * the **stdin thread** (the program's main thread) reads what the user types and
//!   acts on it;
//! * the **printer thread** prints the node's events as they arrive, so a message from
//!   a peer appears while the user is still typing, and appends them to the log file
//!   if there is one.
//!
//! Every line goes through [`crate::console`], which writes each one whole, so lines from
//! the two threads (and the diagnostics on stderr) never split each other. The printer
//! is the only thread that waits for the screen: the node's threads hand it events
//! through a queue that never blocks them ([`crate::event`]).
//!
//! The front end's own locks, none of them held while waiting on the network, and none
//! held while taking another but for one fixed order (std's stdout or stderr lock, then
//! `CONSOLE`, in `console.rs`):
//!
//! | lock                      | guards                                              | held while        |
//! |---------------------------|-----------------------------------------------------|-------------------|
//! | `console::CONSOLE`        | the terminal, for the one `write` of a whole line   | that write        |
//! | the editor's `Gate` state | who prints now: stdout, rustyline, or nobody (Enter) | a few instructions, or waiting on its condvar (never inside rustyline's `print`) |
//! | `printer_done`            | the signal that the printer has shown everything    | waiting for it, bounded by [`PRINTER_DRAIN_TIMEOUT`] |
//!
//! When stdin and stdout are both a terminal (and the `editor` feature is built in, as
//! it is by default), the stdin thread reads with the line editor (`editor.rs`):
//! what arrives is printed above the input line instead of through it, and a sent line
//! is replaced on screen by its echo. From a pipe or a file, lines are read as they are,
//! byte for byte, which is what scripts, bots and the tests rely on.
//!
//! Leaving happens in one of three ways, all ending in [`Node::leave`] (which sends the
//! goodbye after everything already typed), then a wait for the printer to show what
//! had arrived, and exit status 0: `/exit`, the end of input (Ctrl-D, "Ctrl-Z then
//! Enter" on Windows, or the end of a piped script), and a request to quit (Ctrl-C,
//! SIGTERM, or on Windows the console window closing). That request arrives while the
//! main thread is blocked reading stdin, so its handler (run on a thread of its own,
//! see [`crate::platform::on_quit_request`]) leaves and exits the process itself
//! (giving the terminal back its settings first if the line editor had it in raw mode).

use std::fs::{File, OpenOptions};
#[cfg(feature = "editor")]
use std::io::IsTerminal;
use std::io::{self, BufRead, StdinLock, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};

use crate::clock::now_ms;
use crate::commands::{self, Command};
use crate::config::Config;
use crate::console;
use crate::display::{self, Roster, Style};
#[cfg(feature = "editor")]
use crate::editor::{self, LineEditor};
use crate::event::{Event, Events};
use crate::node::Node;
use crate::platform::{LINE_ENDING, on_quit_request};
use crate::tuning::{PRINTER_DRAIN_TIMEOUT, THREAD_STACK_BYTES};

/// Runs the chat until the user leaves. Returns the process's exit status.
pub fn run(config: Config, log_file: Option<PathBuf>) -> ExitCode {
    // Open the log before joining, so a mistyped path is reported before anyone sees us.
    let log = match log_file.map(|path| open_log(&path)).transpose() {
        Ok(log) => log,
        Err(message) => {
            console::err(&format!("p2pchat: {message}"));
            return ExitCode::FAILURE;
        }
    };
    let (node, events) = match Node::start(config) {
        Ok(started) => started,
        Err(e) => {
            console::err(&format!("p2pchat: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let style = Style::detect();
    let (mut input, output) = front_end();
    // The printer thread holds `printing` until it has printed the last event; its
    // end is how the other side of this channel learns that everything was shown.
    let (printing, printer_done) = mpsc::channel::<()>();
    let printer_done = Arc::new(Mutex::new(printer_done));

    // The hook goes in before anything is shown, so that from the first line on a
    // Ctrl-C (or a closed console window) leaves politely.
    let (on_signal, printer_done_on_signal) = (node.clone(), printer_done.clone());
    if let Err(e) = on_quit_request(move || {
        leave(&on_signal, &printer_done_on_signal);
        #[cfg(feature = "editor")]
        editor::restore_terminal();
        std::process::exit(0);
    }) {
        console::err(&display::warning_line(&format!(
            "Ctrl-C will not say goodbye to the others: {e}"
        )));
    }

    console::out(display::BANNER);
    let printer_node = node.clone();
    let printer = std::thread::Builder::new()
        .name("printer".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            print_events(&printer_node, events, style, log, output);
            drop(printing);
        });
    if let Err(e) = printer {
        console::err(&format!("p2pchat: cannot start the printer thread: {e}"));
        node.leave();
        return ExitCode::FAILURE;
    }

    read_commands(&node, style, &mut input);
    drop(input);
    leave(&node, &printer_done);
    ExitCode::SUCCESS
}

/// Opens (creating if needed) the log file for appending. Every line is one `write`
/// (line and ending together) on an unbuffered `File`, so it is in the kernel's hands
/// at once, whole: a killed process loses nothing it logged. The ending is the
/// system's own ([`LINE_ENDING`]: CR LF on Windows).
fn open_log(path: &PathBuf) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))
}

/// Where typed lines come from.
enum Input {
    /// A pipe, a file, or a terminal without the editor: plain lines, byte for byte.
    Plain(StdinLock<'static>),
    /// A terminal: lines edited on an input line that arriving lines never break.
    #[cfg(feature = "editor")]
    Editor(Box<LineEditor>),
}

/// Where the printer thread's lines go: [`console`] directly, or above the input line.
enum Output {
    Plain,
    #[cfg(feature = "editor")]
    Editor(editor::Printer),
}

/// The line editor when stdin and stdout are a terminal (and it can start there),
/// plain lines otherwise.
fn front_end() -> (Input, Output) {
    #[cfg(feature = "editor")]
    if io::stdin().is_terminal() && io::stdout().is_terminal() && editor::terminal_can_edit() {
        match editor::start() {
            Ok((line_editor, printer)) => {
                return (
                    Input::Editor(Box::new(line_editor)),
                    Output::Editor(printer),
                );
            }
            Err(e) => console::err(&display::warning_line(&format!(
                "no line editing on this terminal, reading plain lines: {e}"
            ))),
        }
    }
    (Input::Plain(io::stdin().lock()), Output::Plain)
}

impl Input {
    /// The next line typed, without its line ending; `None` at the end of input (or
    /// Ctrl-C in the editor).
    fn next_line(&mut self) -> Option<String> {
        match self {
            Input::Plain(stdin) => read_plain_line(stdin),
            #[cfg(feature = "editor")]
            Input::Editor(line_editor) => match line_editor.read_line() {
                Ok(line) => line,
                Err(e) => {
                    console::err(&display::warning_line(&format!(
                        "cannot read the keyboard: {e}"
                    )));
                    None
                }
            },
        }
    }

    /// `line` was sent (or was empty): on a terminal it leaves the screen, and its echo
    /// takes its place.
    #[cfg_attr(not(feature = "editor"), allow(unused_variables))]
    fn replace_typed(&mut self, line: &str) {
        match self {
            // A pipe has no screen, and a plain terminal shows what was typed as typed.
            Input::Plain(_) => {}
            #[cfg(feature = "editor")]
            Input::Editor(line_editor) => line_editor.replace_with_echo(line),
        }
    }
}

impl Output {
    fn out(&mut self, text: &str) {
        match self {
            Output::Plain => console::out(text),
            #[cfg(feature = "editor")]
            Output::Editor(printer) => printer.out(text),
        }
    }

    fn err(&mut self, text: &str) {
        match self {
            Output::Plain => console::err(text),
            #[cfg(feature = "editor")]
            Output::Editor(printer) => printer.err(text),
        }
    }
}

/// One line from a pipe, a file or a plain terminal.
fn read_plain_line(input: &mut StdinLock<'static>) -> Option<String> {
    let mut line = Vec::new();
    loop {
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                console::err(&display::warning_line(&format!(
                    "cannot read the keyboard: {e}"
                )));
                return None;
            }
        }
    }
    // Whatever the terminal or the pipe sent, make it text: invalid UTF-8 becomes
    // U+FFFD rather than an error. Drop the line ending (\n or \r\n).
    let text = String::from_utf8_lossy(&line);
    Some(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Leaves the chat, then waits for the printer to show every event that arrived
/// before the goodbye, but not forever: stdout may be a pipe that nobody reads.
fn leave(node: &Node, printer_done: &Mutex<Receiver<()>>) {
    node.leave();
    let printer_done = printer_done.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = printer_done.recv_timeout(PRINTER_DRAIN_TIMEOUT);
}

/// The printer thread: every event, on screen and in the log, until the node leaves.
fn print_events(
    node: &Node,
    events: Events,
    style: Style,
    mut log: Option<File>,
    mut output: Output,
) {
    for event in events {
        if let Event::Warning(text) = &event {
            output.err(&display::warning_line(text));
            continue;
        }
        let roster = roster(node);
        if let Some(lines) = display::event_lines(&event, &roster, style) {
            output.out(&lines);
        }
        let logged = log
            .as_mut()
            .zip(display::log_line(&event, &roster, now_ms()));
        if let Some((file, line)) = logged
            && let Err(e) = file.write_all(format!("{line}{LINE_ENDING}").as_bytes())
        {
            output.err(&display::warning_line(&format!(
                "cannot write to the log file, no longer logging: {e}"
            )));
            log = None;
        }
    }
}

/// The stdin loop: one typed line at a time, until `/exit` or the end of input.
fn read_commands(node: &Node, style: Style, input: &mut Input) {
    while let Some(text) = input.next_line() {
        let outcome = match commands::parse(&text) {
            Command::Say(message) => node.send(message).inspect(|()| input.replace_typed(&text)),
            Command::Members => {
                console::out(&display::members_lines(&roster(node)));
                Ok(())
            }
            Command::Help => {
                console::out(display::BANNER);
                Ok(())
            }
            Command::Hooray => node.hooray(),
            Command::History => {
                let history = node.history();
                console::out(&display::history_lines(&history, &roster(node), style));
                Ok(())
            }
            Command::Msg(argument) => match commands::recipient(argument, &node.members()) {
                Ok((member, message)) => node.send_private(member.addr, message),
                Err(problem) => {
                    console::out(&display::recipient_problem_line(&problem, &roster(node)));
                    Ok(())
                }
            },
            Command::Name(new_name) => node.rename(new_name),
            Command::Connect(argument) => match commands::member_address(argument, node.port()) {
                Ok(target) => node.connect(target).map(|()| {
                    console::out(&display::connecting_line(target));
                }),
                Err(problem) => {
                    console::out(&format!("Not connecting: {problem}."));
                    Ok(())
                }
            },
            Command::Exit => return,
            Command::Unknown(word) => {
                console::out(&display::unknown_command_line(word));
                Ok(())
            }
            Command::Nothing => {
                input.replace_typed(&text);
                Ok(())
            }
        };
        if let Err(e) = outcome {
            console::out(&e.to_string());
        }
    }
}

fn roster(node: &Node) -> Roster {
    Roster::new(node.me(), node.members())
}
