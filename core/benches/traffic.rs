//! The line-protocol batch the benchmarks of the core and the collector share: a quarter
//! each `heart_rate`, `power`, four-field and six-field `gps` lines, every one with two
//! client tags and a nanosecond timestamp, as Telegraf or an import sends them.

/// 2026-11-27T10:00:00Z in nanoseconds: the first line's time.
pub const T0: i64 = 1_795_773_600_000_000_000;

/// Line `n` of the batch, without its newline; four lines a second from [`T0`].
pub fn line(n: usize) -> String {
    let lat = 45.0 + (n % 1000) as f64 * 1e-5;
    let lon = 7.0 + (n % 777) as f64 * 1e-5;
    let tags = if n.is_multiple_of(2) { "host=edge530,sport=ride" } else { "host=phone-7,sport=run" };
    let ts = T0 + n as i64 * 250_000_000;
    let (measurement, fields) = match n % 4 {
        0 => ("heart_rate", format!("bpm={}", 100 + n % 80)),
        1 => ("power", format!("watts={}", 150 + n % 200)),
        2 => ("gps", format!("lat={lat},lon={lon},alt={},speed={}", 200 + n % 50, 8.5)),
        _ => (
            "gps",
            format!(
                "lat={lat},lon={lon},alt={},speed={},heading={},accuracy={}",
                200.0 + (n % 500) as f64 * 0.1,
                8.0 + (n % 40) as f64 * 0.05,
                n % 360,
                3 + n % 7
            ),
        ),
    };
    format!("{measurement},{tags} {fields} {ts}")
}
