use velometry_core::geo::EARTH_RADIUS_M;

use super::*;

const NS: i64 = 1_000_000_000;
/// A ride's start: 2026-06-01T08:00:00Z.
const T0: i64 = 1_780_300_800 * NS;
const LAT0: f64 = 45.0;
const LON0: f64 = 7.0;

/// Metres along a meridian per degree of latitude on the sphere: the truth the
/// haversine distance is checked against, computed without it.
fn metres_per_degree() -> f64 {
    EARTH_RADIUS_M * std::f64::consts::PI / 180.0
}

/// The latitude `metres` north of the start.
fn north(metres: f64) -> f64 {
    LAT0 + metres / metres_per_degree()
}

fn at(seconds: i64) -> i64 {
    T0 + seconds * NS
}

/// Fixes at 1 Hz from `from_s` for `seconds` more seconds, going north at `speed`
/// from `start_m`; returns where the last one was.
fn ride(
    b: &mut SummaryBuilder,
    from_s: i64,
    seconds: i64,
    start_m: f64,
    speed: f64,
    record_speed: bool,
) -> f64 {
    let mut metres = start_m;
    for i in 0..=seconds {
        metres = start_m + speed * i as f64;
        b.gps(at(from_s + i), north(metres), LON0, None, record_speed.then_some(speed));
    }
    metres
}

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
}

#[test]
fn an_hour_north_at_5_mps_is_18_km_and_3599_s_moving() {
    let mut b = SummaryBuilder::new(None);

    let end_m = ride(&mut b, 0, 3599, 0.0, 5.0, true);
    let s = b.finish();

    assert_eq!(end_m, 17_995.0);
    assert_close(s.distance_m, 17_995.0, 17_995.0 * 0.001);
    assert_eq!(s.moving_time_s, 3599.0);
    assert_close(s.avg_speed_mps.unwrap(), 5.0, 0.005);
    assert_eq!(s.max_speed_mps, Some(5.0));
    assert_eq!((s.first_ns, s.last_ns), (Some(at(0)), Some(at(3599))));
}

#[test]
fn a_ten_minute_stop_is_not_moving_time() {
    for record_speed in [true, false] {
        let mut b = SummaryBuilder::new(None);

        let stop_m = ride(&mut b, 0, 600, 0.0, 5.0, record_speed);
        for t in 601..=1200 {
            b.gps(at(t), north(stop_m), LON0, None, record_speed.then_some(0.0));
        }
        ride(&mut b, 1201, 599, stop_m + 5.0, 5.0, record_speed);
        let s = b.finish();

        assert_eq!(s.moving_time_s, 1200.0, "record_speed {record_speed}");
        assert_close(s.distance_m, 6000.0, 6.0);
    }
}

#[test]
fn a_61_s_gap_is_not_moving_time_but_a_60_s_one_is() {
    let mut b = SummaryBuilder::new(None);

    let m = ride(&mut b, 0, 100, 0.0, 5.0, true);
    let m = ride(&mut b, 161, 100, m + 305.0, 5.0, true);
    ride(&mut b, 321, 100, m + 300.0, 5.0, true);
    let s = b.finish();

    assert_eq!(s.moving_time_s, 100.0 + 60.0 + 100.0 + 100.0);
    // The distance still crosses both gaps.
    assert_close(s.distance_m, 2105.0, 2.105);
}

#[test]
fn derived_max_speed_is_taken_over_five_seconds_so_one_wild_fix_does_not_set_it() {
    let mut b = SummaryBuilder::new(None);

    let m = ride(&mut b, 0, 100, 0.0, 5.0, false);
    // One interval of 20 m in a second, then 5 m/s again: 40 m in the 5 s ending there.
    ride(&mut b, 101, 100, m + 20.0, 5.0, false);
    let fast = b.finish();
    let mut b = SummaryBuilder::new(None);
    let m2 = ride(&mut b, 0, 100, 0.0, 5.0, false);
    ride(&mut b, 101, 30, m2 + 10.0, 10.0, false);
    let sprint = b.finish();

    assert_close(fast.max_speed_mps.unwrap(), 8.0, 0.01);
    assert_close(sprint.max_speed_mps.unwrap(), 10.0, 0.01);
}

#[test]
fn recorded_speed_wins_over_derived_speed() {
    let mut b = SummaryBuilder::new(None);

    b.gps(at(0), north(0.0), LON0, None, None);
    b.gps(at(10), north(500.0), LON0, None, Some(7.0));
    let s = b.finish();

    assert_eq!(s.max_speed_mps, Some(7.0));
}

#[test]
fn max_speed_is_derived_only_over_spans_of_five_seconds_without_a_pause() {
    let mut b = SummaryBuilder::new(None);

    b.gps(at(0), north(0.0), LON0, None, None);
    b.gps(at(4), north(100.0), LON0, None, None);
    b.gps(at(70), north(2000.0), LON0, None, None);
    let s = b.finish();

    assert_eq!(s.max_speed_mps, None);
}

/// A steady climb with deterministic noise of up to ±1 m.
fn climb(b: &mut SummaryBuilder, from_s: i64, seconds: i64, from_alt: f64, metres: f64) {
    const NOISE: [f64; 4] = [1.0, -1.0, 0.5, -0.5];
    for i in 0..=seconds {
        let alt = from_alt + metres * i as f64 / seconds as f64 + NOISE[i as usize % 4];
        b.gps(at(from_s + i), north(5.0 * (from_s + i) as f64), LON0, Some(alt), Some(5.0));
    }
}

#[test]
fn a_100_m_climb_with_noise_gains_about_100_m_and_loses_nothing() {
    let mut b = SummaryBuilder::new(None);

    climb(&mut b, 0, 1000, 200.0, 100.0);
    let s = b.finish();

    assert_close(s.elevation_gain_m.unwrap(), 100.0, ELEVATION_HYSTERESIS_M);
    assert_eq!(s.elevation_loss_m, Some(0.0));
}

#[test]
fn up_and_down_counts_both_ways() {
    let mut b = SummaryBuilder::new(None);

    climb(&mut b, 0, 1000, 200.0, 100.0);
    climb(&mut b, 1001, 1000, 300.0, -150.0);
    let s = b.finish();

    assert_close(s.elevation_gain_m.unwrap(), 100.0, ELEVATION_HYSTERESIS_M);
    assert_close(s.elevation_loss_m.unwrap(), 150.0, 2.0 * ELEVATION_HYSTERESIS_M);
}

#[test]
fn noise_alone_climbs_nothing() {
    let mut b = SummaryBuilder::new(None);

    climb(&mut b, 0, 3600, 200.0, 0.0);
    let s = b.finish();

    assert_eq!((s.elevation_gain_m, s.elevation_loss_m), (Some(0.0), Some(0.0)));
}

#[test]
fn without_altitudes_elevation_is_none() {
    let mut b = SummaryBuilder::new(None);

    ride(&mut b, 0, 100, 0.0, 5.0, true);
    let s = b.finish();

    assert_eq!((s.elevation_gain_m, s.elevation_loss_m), (None, None));
}

#[test]
fn heart_rate_lands_in_the_right_zones() {
    let mut b = SummaryBuilder::new(Some(200.0));
    // 100 s in each zone; 120 bpm is exactly 60 % of 200, the bottom of zone 2.
    let plan = [(110.0, 100), (120.0, 50), (139.0, 50), (150.0, 100), (175.0, 100), (190.0, 100)];
    let mut t = 0;
    for (bpm, seconds) in plan {
        for _ in 0..seconds {
            b.heart_rate(at(t), bpm);
            t += 1;
        }
    }
    // The 100th second of zone 5, then a 61 s gap, which credits nothing; nor does the
    // last sample, which has no next.
    b.heart_rate(at(t), 190.0);
    b.heart_rate(at(t + 61), 250.0);

    let hr = b.finish().heart_rate.unwrap();
    let zones = hr.zones.unwrap();

    let seconds: Vec<f64> = zones.iter().map(|z| z.seconds).collect();
    assert_eq!(seconds, [100.0, 100.0, 100.0, 100.0, 100.0]);
    assert_eq!(seconds.iter().sum::<f64>(), 500.0);
    let bounds: Vec<(u8, f64, Option<f64>)> = zones.iter().map(|z| (z.zone, z.min_bpm, z.max_bpm)).collect();
    assert_eq!(
        bounds,
        [
            (1, 0.0, Some(120.0)),
            (2, 120.0, Some(140.0)),
            (3, 140.0, Some(160.0)),
            (4, 160.0, Some(180.0)),
            (5, 180.0, None)
        ]
    );
    assert_eq!((hr.max_bpm, hr.samples), (250.0, 502));
}

#[test]
fn zones_are_none_without_max_hr() {
    let mut b = SummaryBuilder::new(None);

    b.heart_rate(at(0), 120.0);
    b.heart_rate(at(1), 130.0);
    let hr = b.finish().heart_rate.unwrap();

    assert_eq!(hr.zones, None);
    assert_eq!(hr.avg_bpm, 125.0);
}

#[test]
fn heart_rate_mean_is_exactly_the_mean_of_the_samples() {
    let bpm = [97.0, 143.0, 151.0, 151.0, 162.0, 171.0, 158.0, 133.0, 129.0, 144.0, 100.0];
    let mut b = SummaryBuilder::new(Some(190.0));

    for (i, &v) in bpm.iter().enumerate() {
        b.heart_rate(at(i as i64), v);
    }
    let hr = b.finish().heart_rate.unwrap();

    // 1539 / 11 = 139.909…, not a whole number.
    assert_eq!(hr.avg_bpm, 1539.0 / 11.0);
    assert_eq!(hr.max_bpm, 171.0);
    assert_eq!(hr.samples, 11);
}

#[test]
fn an_hour_at_200_w_is_719_8_kj() {
    let mut b = SummaryBuilder::new(None);

    for t in 0..3600 {
        b.power(at(t), 200.0);
    }
    let p = b.finish().power.unwrap();

    assert_close(p.work_kj, 719.8, 1e-9);
    assert_eq!((p.avg_watts, p.max_watts, p.samples), (200.0, 200.0, 3600));
}

#[test]
fn power_gaps_do_no_work() {
    let mut b = SummaryBuilder::new(None);

    b.power(at(0), 300.0);
    b.power(at(61), 100.0);
    b.power(at(121), 0.0);
    let p = b.finish().power.unwrap();

    assert_eq!(p.work_kj, 6.0);
    assert_close(p.avg_watts, 400.0 / 3.0, 1e-12);
}

#[test]
fn an_empty_builder_gives_zeros_and_nulls() {
    let s = SummaryBuilder::new(Some(190.0)).finish();

    assert_eq!(
        s,
        Summary {
            distance_m: 0.0,
            moving_time_s: 0.0,
            elevation_gain_m: None,
            elevation_loss_m: None,
            avg_speed_mps: None,
            max_speed_mps: None,
            heart_rate: None,
            power: None,
            first_ns: None,
            last_ns: None,
        }
    );
}

#[test]
fn first_and_last_span_every_kind_of_reading() {
    let mut b = SummaryBuilder::new(None);

    b.gps(at(10), LAT0, LON0, None, None);
    b.gps(at(20), LAT0, LON0, None, None);
    b.heart_rate(at(5), 120.0);
    b.power(at(30), 100.0);
    let s = b.finish();

    assert_eq!((s.first_ns, s.last_ns), (Some(at(5)), Some(at(30))));
}

#[test]
fn the_json_has_the_documented_shape() {
    let mut b = SummaryBuilder::new(Some(200.0));
    b.gps(at(0), LAT0, LON0, Some(100.0), Some(5.0));
    b.heart_rate(at(0), 130.0);

    let json = serde_json::to_value(b.finish()).unwrap();

    assert_eq!(
        json,
        serde_json::json!({
            "distance_m": 0.0, "moving_time_s": 0.0,
            "elevation_gain_m": 0.0, "elevation_loss_m": 0.0,
            "avg_speed_mps": null, "max_speed_mps": 5.0,
            "heart_rate": {"avg_bpm": 130.0, "max_bpm": 130.0, "samples": 1, "zones": [
                {"zone": 1, "min_bpm": 0.0, "max_bpm": 120.0, "seconds": 0.0},
                {"zone": 2, "min_bpm": 120.0, "max_bpm": 140.0, "seconds": 0.0},
                {"zone": 3, "min_bpm": 140.0, "max_bpm": 160.0, "seconds": 0.0},
                {"zone": 4, "min_bpm": 160.0, "max_bpm": 180.0, "seconds": 0.0},
                {"zone": 5, "min_bpm": 180.0, "max_bpm": null, "seconds": 0.0}
            ]},
            "power": null
        })
    );
}
