//! Export → import gives the same points: any ride the query service exports as GPX, read
//! back by `collector import`, is the same readings (property-based, proptest). GPX keeps
//! heart rate and cadence as whole numbers (the TrackPointExtension's types) and power as a
//! whole number of watts (PowerExtension), so rides with whole values there come back
//! exactly; positions, elevations, temperatures and times come back bit for bit.

use proptest::prelude::*;
use velometry_collector::import::files::read_bytes;
use velometry_core::reading::Reading;
use velometry_query::export::{GpxWriter, Row};

/// 2026-11-27T10:00:00Z.
const START_NS: i64 = 1_795_773_600_000_000_000;

/// One instant of a ride: a position, and any of the other values.
fn row() -> impl Strategy<Value = (i64, Row)> {
    (
        // Gaps from a millisecond to a minute, at any precision the devices give.
        prop_oneof![1i64..60_000, (1i64..60).prop_map(|s| s * 1_000)].prop_map(|ms| ms * 1_000_000),
        // Most devices stamp whole seconds or milliseconds; some the nanosecond.
        prop_oneof![Just(0i64), 0i64..1_000_000],
        -90.0..=90.0f64,
        -180.0..180.0f64,
        proptest::option::of(-400.0..8_800.0f64),
        proptest::option::of(20u32..=250),
        proptest::option::of(0u32..=254),
        proptest::option::of(0u32..=3_000),
        proptest::option::of(-50.0..60.0f64),
    )
        .prop_map(|(gap, within_ms, lat, lon, alt, hr, cad, watts, celsius)| {
            let row = Row {
                time_ns: within_ms,
                lat: Some(lat),
                lon: Some(lon),
                alt,
                heart_rate: hr.map(f64::from),
                cadence: cad.map(f64::from),
                power: watts.map(f64::from),
                temperature: celsius,
                ..Row::default()
            };
            (gap, row)
        })
}

/// A ride: rows at increasing times (each gap is at least the millisecond its row's time
/// may reach into).
fn ride() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(row(), 1..60).prop_map(|rows| {
        let mut time = START_NS;
        rows.into_iter()
            .map(|(gap, mut row)| {
                time += gap;
                row.time_ns += time;
                row
            })
            .collect()
    })
}

/// `(time, measurement, field, value)` of every reading, sorted.
type Values = Vec<(i64, String, String, u64)>;

fn of_rows(rows: &[Row]) -> Values {
    let mut out = Values::new();
    for row in rows {
        let mut put = |measurement: &str, field: &str, value: Option<f64>| {
            if let Some(v) = value {
                out.push((row.time_ns, measurement.to_owned(), field.to_owned(), v.to_bits()));
            }
        };
        put("gps", "lat", row.lat);
        put("gps", "lon", row.lon);
        put("gps", "alt", row.alt);
        put("heart_rate", "bpm", row.heart_rate);
        put("cadence", "rpm", row.cadence);
        put("power", "watts", row.power);
        put("temperature", "celsius", row.temperature);
    }
    out.sort();
    out
}

fn of_readings(readings: &[Reading]) -> Values {
    let mut out: Values = readings
        .iter()
        .flat_map(|r| {
            r.fields().map(move |(field, value)| {
                (r.time(), r.metric().name().to_owned(), field.to_owned(), value.to_bits())
            })
        })
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_gpx_export_imports_as_the_same_readings(rows in ride()) {
        let mut writer = GpxWriter::new();
        let mut gpx = writer.header("a ride");
        gpx.extend(writer.rows(&rows));
        gpx.extend(writer.footer());
        let now = rows.last().map_or(START_NS, |r| r.time_ns);
        let file = read_bytes("export.gpx", &gpx, now)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&gpx))))?;
        prop_assert_eq!(file.records, rows.len());
        prop_assert!(file.skipped.is_empty(), "skipped: {:?}", file.skipped);
        prop_assert_eq!(of_readings(&file.readings), of_rows(&rows));
    }
}
