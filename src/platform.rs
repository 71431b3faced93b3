//! Everything that differs between operating systems, in one place.
//!
//! The rest of the chat is plain std networking, which behaves the same on Linux,
//! macOS and Windows. A handful of things do not, and each one is here, with the reason:
//!
//! * **Sharing the discovery port** ([`share_udp_port`]). Several members on one machine
//!   each listen on `0.0.0.0:PORT` for announcements, so the port must be shared, and a
//!   broadcast delivered to every one of them.
//!   - *Linux*: `SO_REUSEADDR` on every socket is enough; each gets a copy of every
//!     broadcast.
//!   - *macOS and the BSDs*: `SO_REUSEADDR` lets a socket bind a specific address over a
//!     wildcard one, but two sockets on the *same* `0.0.0.0:PORT` also need
//!     `SO_REUSEPORT` on both. Without it the second member on a Mac fails with
//!     "address in use", which would wrongly blame another program.
//!   - *Windows*: `SO_REUSEADDR` is enough to share, but it means more there: a socket
//!     that sets it may bind a port already in use, even by a socket that did not set
//!     it. We accept that for the UDP port, because sharing it is the point and what
//!     arrives there is public anyway (every machine on the LAN hears a broadcast).
//!     Windows' protection, `SO_EXCLUSIVEADDRUSE`, would forbid exactly the sharing we
//!     need. The TCP listener sets no reuse option: std sets `SO_REUSEADDR` on Unix
//!     listeners (so a restarted member can bind while old connections are in
//!     `TIME_WAIT`) and none on Windows, where it would let a second member bind the
//!     same `HOST:PORT`. So on every system a second member on the same address is
//!     refused at once. (A program that sets `SO_REUSEADDR` could still bind over the
//!     listener on Windows; `SO_EXCLUSIVEADDRUSE` there would stop it, at the cost of one
//!     more unsafe call. Any program of the same user can do worse to us anyway.)
//! * **What to tell the user** ([`Os`]): how to find one's IPv4 address, how to open
//!   the firewall (Windows Defender blocks inbound connections on networks marked
//!   "Public"; macOS has an application firewall), how to try the chat on one machine
//!   (Linux and Windows route all of 127.0.0.0/8 to loopback; macOS has only 127.0.0.1
//!   until you add aliases, and its loopback carries no broadcast), which key ends the
//!   input, and why a port may be refused.
//! * **Line endings** ([`LINE_ENDING`]): the `--log` file uses the system's own, so
//!   Notepad shows one line per event.
//! * **Colour** ([`enable_colour`]): terminals on Unix understand ANSI escape codes; the
//!   Windows console does only once a program asks (`ENABLE_VIRTUAL_TERMINAL_PROCESSING`,
//!   Windows 10 and later).
//! * **Being asked to quit** ([`on_quit_request`]): on Unix, Ctrl-C is SIGINT, and
//!   closing the terminal or logging out sends SIGHUP or SIGTERM; the `ctrlc` crate
//!   catches all three. On Windows these are *console control events*, and the
//!   dangerous one is closing the console window (or logging off, or shutting down):
//!   Windows runs the handler, then kills the process as soon as the handler returns.
//!   `ctrlc` returns at once and says goodbye on another thread, too late. So on Windows
//!   our own handler says goodbye before it returns, and the others see "left chat"
//!   rather than a reset. Windows waits about 5 s for it; leaving takes at most
//!   [`LEAVE_LINGER`](crate::tuning::LEAVE_LINGER) plus
//!   [`PRINTER_DRAIN_TIMEOUT`](crate::tuning::PRINTER_DRAIN_TIMEOUT).
//!
//! The Windows calls, and the line editor's termios calls in `editor.rs`, are the
//! only `unsafe` code in the crate (`#![deny(unsafe_code)]` everywhere else): each is a
//! plain foreign function call, with its `SAFETY:` reason.

use std::io;

use socket2::Socket;

/// Lets other members on this machine bind the same UDP port (set before `bind`).
pub fn share_udp_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    socket.set_reuse_port(true)?;
    Ok(())
}

/// What a user of one operating system needs to be told. [`Os::HERE`] is this one;
/// all of them exist everywhere, so their texts are checked on every system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Os {
    /// The system's name, as its users call it.
    pub name: &'static str,
    /// How to find this machine's IPv4 addresses.
    pub find_address: &'static str,
    /// When the firewall keeps other members out, and what to do about it (two short
    /// lines at most, for `--help`).
    pub firewall_note: &'static str,
    /// Commands that let other members in; `{port}` stands for the chat port
    /// ([`Os::firewall_commands`] fills it in).
    firewall: &'static [&'static str],
    /// How to give this machine one more loopback address, if it needs doing; `{host}`
    /// stands for the address ([`Os::add_loopback_command`] fills it in).
    add_loopback: Option<&'static str>,
    /// How to run several members on one machine, as a few lines of shell.
    pub one_machine_demo: &'static str,
    /// The key that ends the input, and so leaves the chat.
    pub end_of_input: &'static str,
    /// Why binding a port may be refused with "permission denied".
    pub port_refused: &'static str,
}

impl Os {
    pub const LINUX: Os = Os {
        name: "Linux",
        find_address: "`ip -4 addr`",
        firewall_note: "if a firewall is on (ufw, firewalld):",
        firewall: &[
            "sudo ufw allow {port}",
            "sudo firewall-cmd --add-port={port}/udp --add-port={port}/tcp",
        ],
        add_loopback: None,
        one_machine_demo: "\
every 127.0.0.x is this machine, one address per member:
  p2pchat 127.0.0.1 Alex
  p2pchat 127.0.0.2 Bo",
        end_of_input: "Ctrl-D",
        port_refused: "ports below 1024 need root; choose a higher one with --port",
    };

    pub const MACOS: Os = Os {
        name: "macOS",
        find_address: "`ipconfig getifaddr en0` (Wi-Fi) or `ifconfig`",
        firewall_note: "if the firewall is on (System Settings, Network,\n\
                        Firewall), click Allow when asked about incoming connections, or run:",
        firewall: &[
            "sudo /usr/libexec/ApplicationFirewall/socketfilterfw --add \"$(which p2pchat)\"",
            "sudo /usr/libexec/ApplicationFirewall/socketfilterfw --unblockapp \"$(which p2pchat)\"",
        ],
        add_loopback: Some("sudo ifconfig lo0 alias {host} up"),
        one_machine_demo: "\
only 127.0.0.1 exists until you add aliases, and loopback carries no broadcast,
so add addresses and name the first member:
  sudo ifconfig lo0 alias 127.0.0.2 up
  p2pchat 127.0.0.1 Alex
  p2pchat 127.0.0.2 Bo --peer 127.0.0.1",
        end_of_input: "Ctrl-D",
        port_refused: "ports below 1024 need root; choose a higher one with --port",
    };

    pub const WINDOWS: Os = Os {
        name: "Windows",
        find_address: "`ipconfig` (the IPv4 Address lines)",
        firewall_note: "Defender blocks incoming connections on networks\n\
                        marked \"Public\"; in a terminal run as administrator:",
        firewall: &[
            "netsh advfirewall firewall add rule name=p2pchat dir=in action=allow protocol=UDP localport={port}",
            "netsh advfirewall firewall add rule name=p2pchat dir=in action=allow protocol=TCP localport={port}",
        ],
        add_loopback: None,
        one_machine_demo: "\
every 127.0.0.x is this machine, one address per member; name the first member
in case loopback carries no broadcast:
  p2pchat 127.0.0.1 Alex
  p2pchat 127.0.0.2 Bo --peer 127.0.0.1",
        end_of_input: "Ctrl-Z then Enter",
        port_refused: "Windows keeps this port for itself or for another program (see \
                       `netsh interface ipv4 show excludedportrange protocol=tcp`); \
                       choose another with --port",
    };

    /// The system this program was built for. Other Unixes get the Linux texts, the
    /// closest match (`ifconfig` for the address).
    #[cfg(windows)]
    pub const HERE: Os = Os::WINDOWS;
    #[cfg(target_vendor = "apple")]
    pub const HERE: Os = Os::MACOS;
    #[cfg(target_os = "linux")]
    pub const HERE: Os = Os::LINUX;
    #[cfg(not(any(windows, target_vendor = "apple", target_os = "linux")))]
    pub const HERE: Os = Os {
        name: "this system",
        find_address: "`ifconfig`",
        ..Os::LINUX
    };

    /// The commands that open the firewall for the chat `port`.
    pub fn firewall_commands(&self, port: u16) -> Vec<String> {
        self.firewall
            .iter()
            .map(|command| command.replace("{port}", &port.to_string()))
            .collect()
    }

    /// The command that adds `host` to the loopback interface, where the system has
    /// only 127.0.0.1 to begin with (macOS).
    pub fn add_loopback_command(&self, host: std::net::Ipv4Addr) -> Option<String> {
        self.add_loopback
            .map(|command| command.replace("{host}", &host.to_string()))
    }
}

/// The line ending of this system's text files, for the `--log` file.
#[cfg(windows)]
pub const LINE_ENDING: &str = "\r\n";
/// The line ending of this system's text files, for the `--log` file.
#[cfg(not(windows))]
pub const LINE_ENDING: &str = "\n";

/// Makes the terminal on stdout understand ANSI colour codes. False if it cannot, and
/// then the caller prints plain text: escape codes would show as garbage.
#[cfg(not(windows))]
pub fn enable_colour() -> bool {
    true
}

/// Makes the terminal on stdout understand ANSI colour codes. False if it cannot, and
/// then the caller prints plain text: escape codes would show as garbage.
#[cfg(windows)]
pub fn enable_colour() -> bool {
    windows::enable_virtual_terminal()
}

/// Runs `handler` when the user or the system asks the program to quit: Ctrl-C, and
/// the terminal being closed, logout and shutdown. The handler is expected to say
/// goodbye and exit the process; it runs on a thread of its own.
#[cfg(not(windows))]
pub fn on_quit_request(handler: impl Fn() + Send + Sync + 'static) -> io::Result<()> {
    // The `termination` feature adds SIGTERM and SIGHUP to Ctrl-C's SIGINT.
    ctrlc::set_handler(handler).map_err(io::Error::other)
}

/// Runs `handler` when the user or the system asks the program to quit: Ctrl-C or
/// Ctrl-Break, the console window being closed, logoff and shutdown. The handler is
/// expected to say goodbye and exit the process; it runs on a thread of its own.
#[cfg(windows)]
pub fn on_quit_request(handler: impl Fn() + Send + Sync + 'static) -> io::Result<()> {
    windows::set_console_ctrl_handler(Box::new(handler))
}

/// The Windows console, through `windows-sys` (bindings generated from Windows' own
/// API description, nothing more).
#[cfg(windows)]
mod windows {
    use std::io;
    use std::sync::OnceLock;

    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Console::{
        ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle, STD_OUTPUT_HANDLE,
        SetConsoleCtrlHandler, SetConsoleMode,
    };
    use windows_sys::core::BOOL;

    /// The quit handler, set once; the console control routine calls it.
    static QUIT_HANDLER: OnceLock<Box<dyn Fn() + Send + Sync>> = OnceLock::new();

    /// Turns on ANSI escape processing for the console on stdout.
    #[allow(unsafe_code)]
    pub fn enable_virtual_terminal() -> bool {
        // SAFETY: GetStdHandle takes a constant and returns a handle owned by the
        // process (or null/invalid, checked below); nothing is closed or freed.
        let stdout = unsafe { GetStdHandle(STD_OUTPUT_HANDLE) };
        if stdout.is_null() || stdout == INVALID_HANDLE_VALUE {
            return false;
        }
        let mut mode = 0;
        // SAFETY: `stdout` is a valid handle and `mode` a live u32 for the call to
        // write; a handle that is not a console makes the call fail, which we check.
        if unsafe { GetConsoleMode(stdout, &mut mode) } == 0 {
            return false;
        }
        if mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
            return true;
        }
        // SAFETY: the same valid console handle; the mode is the current one plus one
        // documented flag. Windows before 10 refuses the flag, which we check.
        unsafe { SetConsoleMode(stdout, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0 }
    }

    /// Called by Windows on a thread it creates, for every console control event
    /// (Ctrl-C, Ctrl-Break, close, logoff, shutdown). For close, logoff and shutdown
    /// the process is killed as soon as this returns, so the handler runs *here*, to
    /// the end (it exits the process itself once the goodbye is sent). Returning TRUE
    /// says the event was handled.
    extern "system" fn console_control(_event: u32) -> BOOL {
        if let Some(handler) = QUIT_HANDLER.get() {
            handler();
        }
        1
    }

    /// Installs [`console_control`] for the console control events.
    #[allow(unsafe_code)]
    pub fn set_console_ctrl_handler(handler: Box<dyn Fn() + Send + Sync>) -> io::Result<()> {
        if QUIT_HANDLER.set(handler).is_err() {
            return Err(io::Error::other("a quit handler is already installed"));
        }
        // SAFETY: `console_control` is a plain function that lives as long as the
        // program, with the signature Windows expects (PHANDLER_ROUTINE); it reads
        // only a OnceLock, which is safe from any thread.
        if unsafe { SetConsoleCtrlHandler(Some(console_control), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Os; 3] = [Os::LINUX, Os::MACOS, Os::WINDOWS];

    #[test]
    fn every_firewall_command_names_the_port_or_the_program() {
        for os in ALL {
            let commands = os.firewall_commands(5000);
            assert!(!commands.is_empty(), "{}", os.name);
            for command in commands {
                assert!(
                    command.contains("5000") || command.contains("p2pchat"),
                    "{}: {command}",
                    os.name
                );
                assert!(!command.contains("{port}"), "{}: {command}", os.name);
            }
        }
        assert!(Os::WINDOWS.firewall_note.contains("Public"));
    }

    #[test]
    fn only_macos_needs_loopback_addresses_added() {
        let host = std::net::Ipv4Addr::new(127, 0, 0, 3);
        assert_eq!(Os::LINUX.add_loopback_command(host), None);
        assert_eq!(Os::WINDOWS.add_loopback_command(host), None);
        assert_eq!(
            Os::MACOS.add_loopback_command(host).as_deref(),
            Some("sudo ifconfig lo0 alias 127.0.0.3 up")
        );
    }

    #[test]
    fn every_one_machine_demo_starts_two_members_on_loopback() {
        for os in ALL {
            let members = os
                .one_machine_demo
                .lines()
                .filter(|line| line.trim_start().starts_with("p2pchat 127.0.0."))
                .count();
            assert_eq!(members, 2, "{}: {}", os.name, os.one_machine_demo);
        }
        // No broadcast on a Mac's loopback: the second member must be told the first.
        assert!(Os::MACOS.one_machine_demo.contains("lo0 alias 127.0.0.2"));
        assert!(Os::MACOS.one_machine_demo.contains("--peer 127.0.0.1"));
    }

    #[test]
    fn this_system_has_its_own_texts() {
        #[cfg(target_os = "linux")]
        assert_eq!(Os::HERE, Os::LINUX);
        assert!(!Os::HERE.end_of_input.is_empty());
        assert!(LINE_ENDING.ends_with('\n'));
    }
}
