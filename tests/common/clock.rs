//! Times as the chat prints them (`hh:mm:ss`, the sender's time on the reader's clock
//! face) and as the library stamps them (milliseconds since the Unix epoch).

use std::process::Command;

pub const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Milliseconds since the Unix epoch, the clock `sent_at_ms` is read from: the
/// library's own, so a test and a member never disagree about "now".
pub fn now_ms() -> i64 {
    p2pchat::clock::now_ms()
}

/// `hh:mm:ss` as seconds since midnight; `None` for anything else.
pub fn seconds_of_day(clock: &str) -> Option<i64> {
    let bytes = clock.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<i64> {
        let text = clock.get(range)?;
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    let (h, m, s) = (field(0..2)?, field(3..5)?, field(6..8)?);
    // 60 is a leap second, which a clock may show.
    (h < 24 && m < 60 && s <= 60).then_some(h * 3600 + m * 60 + s)
}

/// Splits a message line `hh:mm:ss Name: text` into its time (seconds since midnight)
/// and the rest, `Name: text`.
pub fn split_message_line(line: &str) -> Option<(i64, &str)> {
    let clock = line.get(..8)?;
    let rest = line.get(8..)?.strip_prefix(' ')?;
    Some((seconds_of_day(clock)?, rest))
}

/// The local time now in time zone `tz` (this machine's when `None`), as `date` sees
/// it: read rather than computed here, so a test cannot share a time-zone mistake with
/// the chat.
pub fn local_seconds_of_day(tz: Option<&str>) -> i64 {
    let mut date = Command::new("date");
    date.arg("+%H:%M:%S");
    if let Some(tz) = tz {
        date.env("TZ", tz);
    }
    let output = date
        .output()
        .unwrap_or_else(|error| panic!("could not run `date`: {error}"));
    let text = String::from_utf8_lossy(&output.stdout);
    seconds_of_day(text.trim()).unwrap_or_else(|| panic!("`date +%H:%M:%S` printed {text:?}"))
}

/// `later - earlier` on a 24-hour clock face, in (-12 h, 12 h]: 23:59:59 to 00:00:01
/// is +2 s, not almost a day back.
pub fn clock_difference(later: i64, earlier: i64) -> i64 {
    let difference = (later - earlier).rem_euclid(SECONDS_PER_DAY);
    if difference > SECONDS_PER_DAY / 2 {
        difference - SECONDS_PER_DAY
    } else {
        difference
    }
}

/// `seconds` since midnight as `hh:mm:ss`.
pub fn clock_text(seconds: i64) -> String {
    let seconds = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}
