//! What the fuzz targets share: a fixed clock, an origin for line protocol, and the checks
//! that hold for every reading a parser lets through.

use velometry_core::ids::{DeviceId, RiderId};
use velometry_core::lineproto::parse::parse_line;
use velometry_core::lineproto::{encode, Origin};
use velometry_core::reading::Reading;
use velometry_core::time::Nanos;

/// The clock every target reads: 2026-11-27T10:00:00Z, so that runs repeat.
pub const NOW: Nanos = 1_795_773_600_000_000_000;

/// The rider and device readings are tagged with.
pub struct Tagged {
    rider: RiderId,
    device: DeviceId,
}

impl Tagged {
    /// Alice's phone.
    ///
    /// # Panics
    /// Never: the ids are valid.
    pub fn new() -> Tagged {
        Tagged {
            rider: RiderId::parse("alice").expect("a valid rider id"),
            device: DeviceId::parse("phone").expect("a valid device id"),
        }
    }

    /// The origin of a reading sent over `source`.
    pub fn origin<'a>(&'a self, source: &'a str) -> Origin<'a> {
        Origin { rider: &self.rider, device: &self.device, source }
    }
}

impl Default for Tagged {
    fn default() -> Self {
        Tagged::new()
    }
}

/// Checks what every accepted reading must be: encoded, it is one line of line protocol
/// that parses back, with every field it had.
///
/// # Panics
/// When it is not: that is a finding.
pub fn check_reading(reading: &Reading, tagged: &Tagged) {
    let mut line = Vec::new();
    encode(reading, tagged.origin("fuzz"), &mut line);
    let text = std::str::from_utf8(&line).expect("an encoded reading is UTF-8");
    let text = text.strip_suffix('\n').expect("an encoded reading ends its line");
    assert!(!text.contains('\n'), "an encoded reading is one line: {text:?}");
    let parsed = parse_line(text).unwrap_or_else(|e| panic!("{text:?} does not parse back: {e}"));
    assert_eq!(parsed.fields.len(), reading.fields().count(), "{text:?}");
    assert_eq!(parsed.timestamp, Some(reading.time()), "{text:?}");
}

/// Ride files, as `collector import` reads them.
pub mod ride {
    use velometry_collector::import::files::read_bytes;

    use super::{check_reading, Tagged, NOW};

    /// Reads `data` as the file `name`, or as `name.gz` when it starts as gzip does, as
    /// `collector import` would: every reading must be valid and the readings sorted by time.
    ///
    /// # Panics
    /// On a finding.
    pub fn check_file(name: &str, data: &[u8]) {
        let name = if data.starts_with(&[0x1f, 0x8b]) { format!("{name}.gz") } else { name.to_owned() };
        let Ok(file) = read_bytes(&name, data, NOW) else { return };
        let tagged = Tagged::new();
        for reading in &file.readings {
            check_reading(reading, &tagged);
        }
        assert!(file.readings.windows(2).all(|w| w[0].time() <= w[1].time()), "sorted by time");
        assert_eq!(file.first, file.readings.first().map(|r| r.time()));
        assert_eq!(file.last, file.readings.last().map(|r| r.time()));
    }
}

/// The fixes of a device protocol (OsmAnd, OwnTracks).
pub mod device {
    use velometry_collector::ingest::device::Fixes;
    use velometry_core::ids::{DeviceId, RiderId};
    use velometry_core::riders::{DeviceIdentity, OwnTracksKey, Registry};

    use super::{check_reading, Tagged};

    /// The OwnTracks secret of Alice's phone in [`registry`]; the seeds encrypt with it.
    pub const SECRET: &str = "fuzz secret of alice's phone";

    /// A riders file with Alice's phone and its OwnTracks secret.
    ///
    /// # Panics
    /// Never: the file is valid.
    pub fn registry() -> Registry {
        let hash = velometry_core::riders::TokenHash::of("velo_fuzz").to_hex();
        Registry::parse(&format!(
            "[[rider]]\nid = \"alice\"\npublic = true\n[[rider.device]]\nid = \"phone\"\n\
             token_sha256 = \"{hash}\"\nowntracks_key = \"{SECRET}\"\n"
        ))
        .expect("a valid riders file")
    }

    /// Alice's phone's OwnTracks key in `registry`.
    pub fn key(registry: &Registry) -> Option<&OwnTracksKey> {
        let phone =
            DeviceIdentity { rider: RiderId::parse("alice").ok()?, device: DeviceId::parse("phone").ok()? };
        registry.owntracks_key(&phone)
    }

    /// Checks the fixes of one request: every reading valid, every dead letter with its
    /// reason said.
    ///
    /// # Panics
    /// On a finding.
    pub fn check_fixes(fixes: &Fixes) {
        let tagged = Tagged::new();
        for reading in &fixes.readings {
            check_reading(reading, &tagged);
        }
        assert!(fixes.dead.iter().all(|d| !d.error.is_empty()), "{:?}", fixes.dead);
        assert!(fixes.retimed.iter().all(|r| r.kept_at < r.device_time), "{:?}", fixes.retimed);
    }
}
