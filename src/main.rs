//! The `p2pchat` command: reads the command line and hands over to the library.
//!
//! Exit status: 0 after leaving the chat, 1 when it cannot start (the message says
//! why and what to do), 2 for a usage error (with the usage line).

use std::process::ExitCode;

use p2pchat::cli::{self, Invocation, UsageError};
use p2pchat::console;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Chat { config, log_file }) => p2pchat::terminal::run(config, log_file),
        Ok(Invocation::Help) => {
            console::out(&cli::help());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            console::out(&format!("p2pchat {}", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Err(UsageError(problem)) => {
            console::err(&format!(
                "p2pchat: {problem}\n{}\nRun `p2pchat --help` for more.",
                cli::USAGE
            ));
            ExitCode::from(2)
        }
    }
}
