//! Colour: on a terminal each member's name has its colour, and in a pipe, or with
//! `NO_COLOR`, the output is plain text.
//!
//! Each test takes its own port ([`free_port`]) and its own block of loopback
//! addresses ([`Hosts`]), so nothing another test leaves behind is mistaken for one of
//! its members. Waits are generous ([`EVENT_TIMEOUT`]) and nothing is timed.
//!
//! The terminal is a pseudo-terminal from util-linux `script` ([`common::terminal`]).

#![cfg(target_os = "linux")]

mod common;

use common::free_port;
use common::hosts::Hosts;
use common::terminal::{on_terminal, piped_without_no_color, script_available};

#[test]
fn colour_only_on_a_terminal() {
    let block = Hosts::fresh();
    if !script_available() {
        // Without util-linux `script` there is no std-only way to give the chat a
        // terminal; the piped half alone would prove little.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have util-linux `script` for colour_only_on_a_terminal"
        );
        eprintln!("SKIPPED colour_only_on_a_terminal: util-linux `script` is not installed");
        return;
    }
    let port = free_port().to_string();
    let hosts = [1, 2, 3].map(|last| block.addr(last).to_string());
    let mut coloured = on_terminal(
        "Alex (terminal)",
        &["--port", &port, &hosts[0], "Alex"],
        true,
    );
    let mut piped = piped_without_no_color(
        "Bo (pipe, no NO_COLOR)",
        &["--port", &port, &hosts[1], "Bo"],
    );
    let mut no_color = on_terminal(
        "Cleo (terminal, NO_COLOR=1)",
        &["--port", &port, &hosts[2], "Cleo"],
        false,
    );
    let everyone = [&coloured, &piped, &no_color];
    for (process, own) in everyone.iter().zip(["Alex", "Bo", "Cleo"]) {
        for name in ["Alex", "Bo", "Cleo"].into_iter().filter(|n| *n != own) {
            process.wait_for_containing(&format!("{name} joined chat"));
        }
    }
    piped.send_line("from a pipe");
    coloured.send_line("from a terminal");
    for process in everyone {
        process.wait_for_containing(": from a pipe");
        process.wait_for_containing(": from a terminal");
    }

    // On the terminal: joins, others' names and our own name are all painted.
    for needle in ["Bo joined chat", ": from a pipe", ": from a terminal"] {
        let line = coloured.wait_for_containing(needle);
        assert!(
            line.contains("\x1b["),
            "a terminal without NO_COLOR should colour {needle:?}: {line:?}\n{}",
            coloured.transcript()
        );
    }
    // Not into a pipe: plain text, not one escape sequence. Not with NO_COLOR: no
    // colour (on a terminal the line editor still moves the cursor with escape
    // sequences; NO_COLOR is about colour).
    piped.assert_not_printed("an escape sequence", |l| l.contains('\x1b'));
    no_color.assert_not_printed("a colour code", has_colour_code);

    for process in [&mut coloured, &mut piped, &mut no_color] {
        process.leave_with_exit();
    }
}

/// Whether `line` holds an SGR sequence (`ESC [`, digits and semicolons, `m`): how a
/// terminal is told a colour.
fn has_colour_code(line: &str) -> bool {
    line.split("\x1b[").skip(1).any(|rest| {
        rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
            .starts_with('m')
    })
}
