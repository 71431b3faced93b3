//! The one clock every send time is read from.
//!
//! A message carries the time its sender sent it, as milliseconds since the Unix epoch
//! by the sender's clock (UTC, so members in different time zones agree on the number;
//! each reader shows it in its own zone). Machines on a LAN are usually synchronised by
//! NTP to within milliseconds, but nothing guarantees it, so a time from a peer is shown
//! as it is and never trusted for anything but display and ordering.

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How long to wait, at most, for a moment in the future; zero if it has passed.
pub fn until(moment: std::time::Instant) -> std::time::Duration {
    moment.saturating_duration_since(std::time::Instant::now())
}
