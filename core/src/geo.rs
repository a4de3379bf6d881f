//! Distances on the Earth, as every service measures them: great circles on a sphere of
//! the mean Earth radius.
//!
//! Our own few lines rather than the `geo` crate: `geo` would bring a large dependency tree
//! into every service for these formulas. Haversine rather than the spherical law of
//! cosines because it stays accurate for the few metres between 1 Hz fixes.

/// The mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres in one degree of latitude (and of longitude on the equator).
pub const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance in metres between two points given in degrees.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let a = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    // min(1): rounding can push `a` a hair above 1 for antipodal points, and asin would
    // return NaN.
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// The initial bearing from the first point to the second, degrees clockwise from north in
/// `[0, 360)`.
pub fn bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let dlambda = (lon2 - lon1).to_radians();
    let y = dlambda.sin() * phi2.cos();
    let x = phi1.cos() * phi2.sin() - phi1.sin() * phi2.cos() * dlambda.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

/// The point `metres` north and `east_m` east of a point, on a plane tangent to it: exact
/// enough for the few kilometres a simulated ride or a test course spans at a time.
pub fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> (f64, f64) {
    (lat + north_m / METRES_PER_DEGREE, lon + east_m / (METRES_PER_DEGREE * lat.to_radians().cos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degree_of_longitude_on_the_equator() {
        assert!((haversine_m(0.0, 10.0, 0.0, 11.0) - METRES_PER_DEGREE).abs() < 1e-6);
    }

    #[test]
    fn bearings_point_the_right_way() {
        assert!((bearing_deg(45.0, 7.0, 46.0, 7.0) - 0.0).abs() < 1e-9);
        assert!((bearing_deg(45.0, 7.0, 45.0, 8.0) - 89.6).abs() < 0.1);
        assert!((bearing_deg(45.0, 7.0, 44.0, 7.0) - 180.0).abs() < 1e-9);
    }

    #[test]
    fn an_offset_is_as_far_as_asked() {
        let (lat, lon) = offset(45.0, 7.0, 300.0, 400.0);
        assert!((haversine_m(45.0, 7.0, lat, lon) - 500.0).abs() < 0.5);
    }
}
