//! Where in a range an export's data is, as windows of at most [`WINDOW`] that each hold
//! some of it.
//!
//! Reading a range six hours at a time costs one request per six hours whether or not they
//! hold data: a decade of range around one ride was 16,000 requests and 11 seconds. Instead
//! InfluxDB is asked first for the data's own first and last reading, then, coarse to fine,
//! for the counts of what lies between: at most [`MAX_BUCKETS`] buckets per request, and only
//! the buckets that hold something are looked at again, more finely, until they are no wider
//! than a window. A request covers every measurement of the export at once. A long ride
//! costs a request per level (two at most over the widest range the API accepts) plus one per
//! non-empty coarse bucket wider than a window; an empty stretch, however long, costs nothing
//! more.

use std::collections::BTreeSet;

use crate::api::TimeRange;
use crate::influx::{ident, literal, Cell, Influx, InfluxError};

/// The widest window an export reads in one request (six hours: 21,600 rows per 1 Hz
/// measurement).
pub const WINDOW: i64 = 6 * 3_600 * 1_000_000_000;

/// The most buckets one counting request asks for.
pub const MAX_BUCKETS: i64 = 1_000;

/// One measurement an export reads: a field every reading of it has, and the device it is
/// read from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The measurement.
    pub measurement: &'static str,
    /// A field every reading of it has.
    pub field: &'static str,
    /// The device it is read from.
    pub device: String,
}

/// A half-open window `[from, to)` (ns) that holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive start.
    pub from: i64,
    /// Exclusive end.
    pub to: i64,
}

/// The windows of `range` that hold readings of `sources`, in time order, each at most
/// [`WINDOW`] wide, from the first reading to the last.
///
/// # Errors
/// InfluxDB failing.
pub async fn windows(
    influx: &Influx,
    rider: &str,
    sources: &[Source],
    range: TimeRange,
) -> Result<Vec<Window>, InfluxError> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let Some(data) = extent(influx, rider, sources, range).await? else { return Ok(Vec::new()) };
    let mut done = Vec::new();
    let mut todo = vec![data];
    while !todo.is_empty() {
        let mut finer = Vec::new();
        for w in todo {
            if w.to - w.from <= WINDOW {
                done.push(w);
                continue;
            }
            // Buckets as wide as a window, or as wide as it takes to need no more than
            // MAX_BUCKETS; always a whole number of windows, so the next level ends there.
            let width = ceil_div(ceil_div(w.to - w.from, MAX_BUCKETS), WINDOW) * WINDOW;
            for start in occupied(influx, rider, sources, w, width).await? {
                finer.push(Window { from: start.max(w.from), to: (start + width).min(w.to) });
            }
        }
        todo = finer;
    }
    done.sort_unstable();
    Ok(done)
}

/// From the first reading of `sources` in `range` to just past the last, if there is one.
async fn extent(
    influx: &Influx,
    rider: &str,
    sources: &[Source],
    range: TimeRange,
) -> Result<Option<Window>, InfluxError> {
    let mut statements = Vec::new();
    for selector in ["first", "last"] {
        for s in sources {
            statements.push(format!(
                "SELECT {selector}({}) FROM {} WHERE {} AND time >= {} AND time < {}",
                ident(s.field),
                ident(s.measurement),
                only(rider, s),
                range.from(),
                range.to()
            ));
        }
    }
    let times: Vec<i64> = influx
        .query(&statements.join("; "))
        .await?
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|row| row.first().and_then(Cell::as_i64))
        .collect();
    let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else { return Ok(None) };
    // `last` is inside the range, so one past it is at most its end.
    Ok(Some(Window { from: first, to: last + 1 }))
}

/// The starts of the buckets of `width` (aligned to multiples of it) that hold a reading of
/// `sources` within `w`.
async fn occupied(
    influx: &Influx,
    rider: &str,
    sources: &[Source],
    w: Window,
    width: i64,
) -> Result<BTreeSet<i64>, InfluxError> {
    // InfluxQL takes durations in whole units; a width is a whole number of windows, so of
    // hours.
    let hours = width / (3_600 * 1_000_000_000);
    let statements: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "SELECT count({}) FROM {} WHERE {} AND time >= {} AND time < {} GROUP BY time({hours}h) fill(none)",
                ident(s.field),
                ident(s.measurement),
                only(rider, s),
                w.from,
                w.to
            )
        })
        .collect();
    Ok(influx
        .query(&statements.join("; "))
        .await?
        .iter()
        .flat_map(|s| s.values.iter())
        .filter(|row| row.get(1).and_then(Cell::as_i64).is_some_and(|n| n > 0))
        .filter_map(|row| row.first().and_then(Cell::as_i64))
        .collect())
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

fn only(rider: &str, s: &Source) -> String {
    format!("\"rider\" = {} AND \"device\" = {}", literal(rider), literal(&s.device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_levels_reach_windows_over_the_widest_range() {
        let widest = crate::api::LATEST - crate::api::EARLIEST;
        let first = ceil_div(ceil_div(widest, MAX_BUCKETS), WINDOW) * WINDOW;
        assert!(first % WINDOW == 0 && widest / first <= MAX_BUCKETS);
        let second = ceil_div(ceil_div(first, MAX_BUCKETS), WINDOW) * WINDOW;
        assert_eq!(second, WINDOW, "the second level's buckets are windows");
    }
}
