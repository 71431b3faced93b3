//! Printing whole lines: everything the program shows goes through here, so that no
//! line is ever split by another.
//!
//! Two threads print (the one reading the keyboard answers commands; the printer shows
//! what arrives), to two streams that usually end on one terminal: stdout for the chat
//! and stderr for diagnostics. A line written in several `write` calls can be split by
//! another thread's line landing in between, so each line (or block of lines) is
//! formatted first and written with one `write_all`, under one lock shared by both
//! streams. For a terminal or a pipe, one small `write` arrives in one piece.
//!
//! Errors are ignored: when stdout is gone (the reader of a pipe quit) there is nobody
//! to tell, and that must not become a panic.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

/// Held while a line is written, to stdout or stderr.
static CONSOLE: Mutex<()> = Mutex::new(());

/// Prints `text` and a line ending on stdout, in one piece.
pub fn out(text: &str) {
    write_line(&mut io::stdout().lock(), text);
}

/// Prints `text` and a line ending on stderr, in one piece.
pub fn err(text: &str) {
    write_line(&mut io::stderr().lock(), text);
}

/// Writes `sequence` (terminal control codes, no line ending) to stdout, whole: used by
/// the line editor to move the cursor and erase what it drew.
pub fn control(sequence: &str) {
    let mut stdout = io::stdout().lock();
    let _console = CONSOLE.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = stdout.write_all(sequence.as_bytes());
    let _ = stdout.flush();
}

fn write_line(stream: &mut impl Write, text: &str) {
    let line = format!("{text}\n");
    let _console = CONSOLE.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.flush();
}
