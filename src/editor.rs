//! The line editor for a terminal: an input line that arriving lines never break.
//!
//! Used only when stdin and stdout are both a terminal that can move its cursor (not
//! `TERM=dumb`), and the `editor` feature is on; pipes and files are read plainly by
//! the front end (`terminal.rs`). The editing itself (cursor keys, grapheme
//! backspace, Ctrl-U, Ctrl-W, Home/End, history with up/down) is `rustyline`'s, in the
//! terminal's raw mode (`tcsetattr`: no echo, no line buffering, so each key reaches
//! the program at once and the program draws the line itself).
//!
//! ## Printing while someone types
//!
//! A line that arrives while the user types must appear *above* the input line, with
//! the half-typed text redrawn below it. Only the thread inside `readline` knows what is
//! on the input line, so the printer thread hands its lines to rustyline's
//! `ExternalPrinter`: rustyline wakes its `readline` loop (through a pipe), clears the
//! input rows, prints the line and redraws the input. That hand-over has traps:
//!
//! * `ExternalPrinter::print` writes *directly* when rustyline is not in raw mode, and
//!   its queue holds one line, which `readline` empties only when no key is waiting (a
//!   paste is all keys). A line written directly would overtake one still queued, and
//!   just after Enter it would land on the end of the input line; a queued line waits
//!   for the next `readline`.
//! * So a [`Gate`] says when the printer may hand lines over: only while `readline` is
//!   in raw mode, so that every line goes through the queue, in order. It opens when
//!   `readline` has switched to raw mode (our `Hinter` hook runs as it first draws the
//!   prompt) and closes on Enter (our `Validator` hook runs inside `readline`, before
//!   raw mode ends), after a short wait for a hand-over that has just begun. While
//!   it is closed the printer waits: the reader thread is replacing the typed line by
//!   its echo, or answering a command below it, and then starts the next `readline`.
//!   After the last `readline` (leaving), the printer writes to stdout itself.
//! * `print` can block (the queue is one line long), so it is never called with one of
//!   our locks held, and only the printer thread calls it: the network threads hand
//!   their events to the printer through a queue that never blocks them.
//!
//! ## The echo replaces the typed line
//!
//! After Enter the typed text would stay on screen, and the chat's own echo
//! (`hh:mm:ss Alex: text`) would show it a second time. So once a message is sent,
//! [`LineEditor::replace_with_echo`] erases the rows the prompt and the text took
//! ([`input_rows`]: display widths, wide characters count two, long lines wrap), and the
//! echo prints in their place.
//!
//! ## Leaving
//!
//! Ctrl-C and Ctrl-D are keys in raw mode (rustyline turns off the terminal's signal
//! keys) and end `readline` with an error, which the front end takes as leaving.
//! SIGTERM, though, arrives while `readline` holds the terminal in raw mode, and the
//! signal handler exits the process from another thread: [`restore_terminal`] puts back
//! the terminal settings saved before the first `readline` (`tcgetattr`/`tcsetattr`),
//! or the user's shell would be left without echo.
//!
//! Two limits, both at the moment of leaving with Ctrl-C or Ctrl-D (which, unlike
//! Enter, no hook of rustyline reports): a line that arrives in that very instant can be
//! printed directly, after the abandoned input line; and a line still in rustyline's
//! queue then (it holds one while keys are waiting, as in a paste) is dropped with the
//! editor. Lines that arrive after that are printed as usual while the chat says
//! goodbye.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rustyline::completion::Completer;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Editor, ExternalPrinter, GraphemeClusterMode, Helper};
use unicode_segmentation::UnicodeSegmentation;

use crate::console;
use crate::tuning::PRINT_HANDOVER_GRACE;

/// What the input line starts with.
pub const PROMPT: &str = "> ";

/// Columns a tab advances to the next multiple of (rustyline's default).
const TAB_STOP: usize = 8;

/// Who prints the printer's lines right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// No `readline` runs and none is about to: write to stdout directly.
    Direct,
    /// A `readline` is starting: the printer waits until it has the terminal in raw
    /// mode (our `Hinter` hook, called as it first draws the prompt), because until then
    /// `ExternalPrinter::print` would write directly, past a line still in its queue.
    Starting,
    /// A `readline` runs in raw mode: hand lines to rustyline.
    Editor,
    /// Enter was pressed: the reader thread is replacing the typed line and will call
    /// `readline` again; the printer waits.
    Held,
}

struct GateState {
    route: Route,
    /// Since when the printer is inside `ExternalPrinter::print`, if it is.
    handing_over_since: Option<Instant>,
    /// A hand-over ended after Enter closed the gate (one `hold` stopped waiting for):
    /// its line may have been written below the input line, which must then stay.
    ended_after_enter: bool,
}

/// Tells the printer thread whether a `readline` is running, so that it knows how to
/// print (see the module documentation).
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                route: Route::Direct,
                handing_over_since: None,
                ended_after_enter: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, route: Route) {
        let mut state = self.state();
        state.route = route;
        if route == Route::Starting {
            // A new input line: what ended after the last Enter concerned the last one.
            state.ended_after_enter = false;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Enter was pressed (called from inside `readline`, before rustyline leaves raw
    /// mode): stop handing lines over, and give a hand-over that has just begun a moment
    /// to get into rustyline's queue while `readline` still reads it. Only a moment:
    /// `print` blocks while that queue is full (during a paste `readline` reads keys
    /// before printing), and then only this `readline` would empty it. A hand-over
    /// still going after [`PRINT_HANDOVER_GRACE`] is most often one blocked there (its
    /// line is queued, not lost, and shows at the next `readline`); it may also be a
    /// printer thread the system did not run for that long, whose line rustyline then
    /// writes below the input line once raw mode ends. Either way it ends while the
    /// gate is held, and [`LineEditor::replace_with_echo`] then leaves the screen alone.
    fn hold(&self) {
        let mut state = self.state();
        match state.route {
            Route::Editor => state.route = Route::Held,
            Route::Starting => {
                state.route = Route::Held;
                return;
            }
            Route::Direct | Route::Held => return,
        }
        let Some(since) = state.handing_over_since else {
            return;
        };
        let waited = since.elapsed();
        if waited < PRINT_HANDOVER_GRACE {
            let _ = self
                .changed
                .wait_timeout_while(state, PRINT_HANDOVER_GRACE - waited, |state| {
                    state.handing_over_since == Some(since)
                })
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits while the gate is held, then says how to print: `true` for through
    /// rustyline (and marks the hand-over as in flight until [`Gate::handed_over`]).
    fn enter(&self) -> bool {
        let mut state = self
            .changed
            .wait_while(self.state(), |state| {
                matches!(state.route, Route::Starting | Route::Held)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let through_editor = state.route == Route::Editor;
        if through_editor {
            state.handing_over_since = Some(Instant::now());
        }
        through_editor
    }

    /// `readline` has the terminal in raw mode and is drawing its prompt: if it is
    /// the one just started, the printer may hand lines over from now on.
    fn editing_started(&self) {
        let mut state = self.state();
        if state.route == Route::Starting {
            state.route = Route::Editor;
            self.changed.notify_all();
        }
    }

    fn handed_over(&self) {
        let mut state = self.state();
        state.handing_over_since = None;
        if state.route == Route::Held {
            state.ended_after_enter = true;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Whether a hand-over ended after Enter since the last call (see
    /// [`GateState::ended_after_enter`]).
    fn take_ended_after_enter(&self) -> bool {
        std::mem::take(&mut self.state().ended_after_enter)
    }
}

/// The reader thread's side: reads lines with editing.
pub struct LineEditor {
    editor: Editor<EnterHook, DefaultHistory>,
    gate: Arc<Gate>,
    /// How rustyline measures a grapheme's width on this terminal.
    widths: GraphemeClusterMode,
}

/// The printer thread's side: prints lines above the input line.
pub struct Printer {
    external: Box<dyn ExternalPrinter + Send>,
    gate: Arc<Gate>,
    /// Diagnostics go to stderr; when that is the terminal too they take the same way
    /// as chat lines, so they cannot break the input line either.
    stderr_is_terminal: bool,
}

/// Terminals that cannot move the cursor (Emacs's shell, `TERM=dumb`): rustyline
/// reads plain lines there, so the chat does too, without the editor.
const TERMINALS_WITHOUT_EDITING: [&str; 3] = ["dumb", "cons25", "emacs"];

/// Whether the terminal (as `TERM` names it) can show an editable input line.
pub fn terminal_can_edit() -> bool {
    std::env::var("TERM").map_or(true, |term| {
        !TERMINALS_WITHOUT_EDITING.contains(&term.as_str())
    })
}

/// Starts the editor, or says why it cannot (the caller reads plain lines instead).
pub fn start() -> Result<(LineEditor, Printer), ReadlineError> {
    // Bracketed paste would make a pasted block of lines one line with newlines in it;
    // without it each pasted line ends with its own Enter and is sent on its own.
    let config = Config::builder()
        .bracketed_paste(false)
        .auto_add_history(false)
        .build();
    let widths = config.grapheme_cluster_mode();
    let gate = Arc::new(Gate::new());
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(EnterHook { gate: gate.clone() }));
    let external = Box::new(editor.create_external_printer()?);
    save_terminal();
    let printer = Printer {
        external,
        gate: gate.clone(),
        stderr_is_terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    Ok((
        LineEditor {
            editor,
            gate,
            widths,
        },
        printer,
    ))
}

impl LineEditor {
    /// The next line the user typed; `None` when they leave (Ctrl-C, Ctrl-D) or the
    /// terminal is gone. After a line, the printer waits until the next call (or until
    /// the editor is dropped): what arrives while a command is answered (`/history`
    /// waits up to two seconds for the members) is shown after the answer, in order.
    pub fn read_line(&mut self) -> Result<Option<String>, ReadlineError> {
        self.gate.set(Route::Starting);
        let read = self.editor.readline(PROMPT);
        match read {
            Ok(line) => {
                // The hook normally held the gate already; this covers an Enter that
                // skipped it.
                self.gate.hold();
                if !line.trim().is_empty() {
                    let _ = self.editor.add_history_entry(line.as_str());
                }
                Ok(Some(line))
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                self.gate.set(Route::Direct);
                Ok(None)
            }
            Err(e) => {
                self.gate.set(Route::Direct);
                Err(e)
            }
        }
    }

    /// Erases the prompt and `line` (just accepted) from the screen, so that the
    /// chat's echo of it, which the printer shows once the next `readline` starts,
    /// takes their place.
    ///
    /// Not if a line was handed to rustyline so late that it may have been written
    /// below the input line (the printer was held up past [`PRINT_HANDOVER_GRACE`]):
    /// erasing would take that line with it, so the typed line stays, above its echo.
    pub fn replace_with_echo(&mut self, line: &str) {
        if self.gate.take_ended_after_enter() {
            return;
        }
        if let Some((columns, _rows)) = self.editor.dimensions() {
            let text = format!("{PROMPT}{line}");
            let rows = input_rows(&text, usize::from(columns), self.widths);
            // Up to the prompt's row, then clear to the end of the screen.
            console::control(&format!("\r\x1b[{rows}A\x1b[J"));
        }
    }
}

impl Drop for LineEditor {
    fn drop(&mut self) {
        self.gate.set(Route::Direct);
    }
}

impl Printer {
    /// Prints a chat line (or block of lines) whole.
    pub fn out(&mut self, text: &str) {
        if !self.hand_over(text) {
            console::out(text);
        }
    }

    /// Prints a diagnostic whole, on stderr (or through the editor when stderr is the
    /// terminal).
    pub fn err(&mut self, text: &str) {
        if !self.stderr_is_terminal || !self.hand_over(text) {
            console::err(text);
        }
    }

    /// Gives `text` to rustyline if a `readline` runs; `false` if the caller should
    /// print it directly.
    fn hand_over(&mut self, text: &str) -> bool {
        if !self.gate.enter() {
            return false;
        }
        // No lock of ours is held here: `print` may wait for `readline`.
        let printed = self.external.print(format!("{text}\n"));
        self.gate.handed_over();
        printed.is_ok()
    }
}

/// How many rows `text` (the prompt and the input) took on a terminal `columns` wide,
/// counted as rustyline lays it out: by grapheme, each as wide as the terminal shows it
/// (wide characters and most emoji take two columns), and a grapheme that does not fit
/// on a row starts the next. A row filled exactly puts the cursor at the start of the
/// next one, and the Enter after the input moves one row further, so the count is that
/// of the rows between the prompt's and the cursor's.
pub fn input_rows(text: &str, columns: usize, mode: GraphemeClusterMode) -> usize {
    let columns = columns.max(1);
    let (mut row, mut column) = (0, 0);
    for grapheme in text.graphemes(true) {
        let width = if grapheme == "\t" {
            TAB_STOP - column % TAB_STOP
        } else {
            usize::from(mode.width(grapheme))
        };
        column += width;
        if column > columns {
            row += 1;
            column = width;
        }
    }
    if column == columns {
        row += 1;
    }
    row + 1
}

/// The terminal settings from before the first `readline`, for [`restore_terminal`].
#[cfg(unix)]
static SAVED_TERMINAL: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

#[cfg(unix)]
#[allow(unsafe_code)] // two termios calls std does not make
fn save_terminal() {
    let mut settings = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the struct when it returns 0; we keep it only then.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, settings.as_mut_ptr()) } == 0 {
        // SAFETY: initialised by the successful call above.
        let _ = SAVED_TERMINAL.set(unsafe { settings.assume_init() });
    }
}

#[cfg(not(unix))]
fn save_terminal() {}

/// Puts the terminal back as it was before the editor started (echo, line buffering),
/// and starts a fresh line. For a process about to exit from another thread than the
/// one in `readline` (a signal): rustyline would restore it only when `readline` ends.
///
/// It takes none of the locks the printing threads may hold (the newline is one plain
/// `write` to the terminal), so a printer stuck in the middle of a line cannot keep
/// the process from exiting.
#[allow(unsafe_code)] // the termios call std does not make
pub fn restore_terminal() {
    #[cfg(unix)]
    if let Some(settings) = SAVED_TERMINAL.get() {
        const NEW_LINE: &[u8] = b"\r\n";
        // SAFETY: a valid termios from tcgetattr, and a write of a static buffer.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, settings);
            libc::write(
                libc::STDOUT_FILENO,
                NEW_LINE.as_ptr().cast(),
                NEW_LINE.len(),
            );
        }
    }
}

/// rustyline's hooks, used only to know where `readline` is: the `Hinter` (asked for
/// a hint each time the line is drawn, the first time just after raw mode is on) and
/// the `Validator` (asked on Enter, before raw mode is off).
struct EnterHook {
    gate: Arc<Gate>,
}

impl Hinter for EnterHook {
    type Hint = String;

    fn hint(&self, _: &str, _: usize, _: &rustyline::Context<'_>) -> Option<String> {
        self.gate.editing_started();
        None
    }
}

impl Validator for EnterHook {
    fn validate(&self, _: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        self.gate.hold();
        Ok(ValidationResult::Valid(None))
    }
}

impl Completer for EnterHook {
    type Candidate = String;
}
impl Highlighter for EnterHook {}
impl Helper for EnterHook {}

#[cfg(test)]
mod tests {
    use super::*;

    const UNICODE: GraphemeClusterMode = GraphemeClusterMode::Unicode;

    #[test]
    fn a_short_line_takes_one_row() {
        assert_eq!(input_rows("> hello", 80, UNICODE), 1);
    }

    #[test]
    fn a_line_that_fills_a_row_exactly_puts_the_cursor_on_the_next() {
        assert_eq!(input_rows(&"x".repeat(10), 10, UNICODE), 2);
        assert_eq!(input_rows(&"x".repeat(9), 10, UNICODE), 1);
    }

    #[test]
    fn a_long_line_takes_as_many_rows_as_it_wraps_to() {
        assert_eq!(input_rows(&"x".repeat(25), 10, UNICODE), 3);
        assert_eq!(input_rows(&"x".repeat(200), 80, UNICODE), 3);
    }

    #[test]
    fn wide_characters_count_two_columns() {
        // 2 + 7 × 2 = 16 columns: two rows of 10.
        assert_eq!(input_rows("> 日本語テキスト", 10, UNICODE), 2);
        assert_eq!(input_rows("> 🎉", 4, UNICODE), 2);
    }

    #[test]
    fn a_wide_character_that_does_not_fit_starts_the_next_row() {
        // "x" fills 9 columns, the wide character needs 2: it goes to row two.
        let text = format!("{}日", "x".repeat(9));
        assert_eq!(input_rows(&text, 10, UNICODE), 2);
        let text = format!("{}日{}", "x".repeat(9), "x".repeat(8));
        assert_eq!(input_rows(&text, 10, UNICODE), 3);
    }

    #[test]
    fn a_grapheme_of_several_code_points_is_one_character() {
        // e + combining acute accent: one column.
        assert_eq!(
            input_rows(&format!("{}e\u{301}", "x".repeat(8)), 10, UNICODE),
            1
        );
    }

    #[test]
    fn a_terminal_of_no_columns_does_not_divide_by_zero() {
        assert!(input_rows("> hi", 0, UNICODE) >= 1);
    }
}
