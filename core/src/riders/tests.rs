use super::*;

fn file(alice_token: &str, coach_token: &str) -> String {
    format!(
        r#"
[[rider]]
id = "alice"
name = "Alice"
public = true
  [[rider.device]]
  id = "edge530"
  token_sha256 = "{}"

[[rider]]
id = "bob"
max_hr = 190

[[viewer]]
name = "coach"
token_sha256 = "{}"
riders = ["bob"]
"#,
        TokenHash::of(alice_token).to_hex(),
        TokenHash::of(coach_token).to_hex()
    )
}

#[test]
fn authenticates_devices_and_viewers_by_token() {
    let registry = Registry::parse(&file("t1", "t2")).expect("valid");
    let id = registry.authenticate_device("t1").expect("known token");
    assert_eq!((id.rider.as_str(), id.device.as_str()), ("alice", "edge530"));
    assert!(registry.authenticate_device("t2").is_none(), "a viewer token is no device token");
    assert!(registry.authenticate_device("nope").is_none());
    let coach = registry.authenticate_viewer("t2").expect("viewer");
    let bob = registry.rider(&RiderId::parse("bob").expect("valid")).expect("bob");
    assert!(registry.may_see(Some(coach), bob));
    assert!(!registry.may_see(None, bob));
    assert_eq!(bob.name, "bob");
    assert_eq!(bob.max_hr, Some(190.0));
}

#[test]
fn rejects_contradictions_with_a_message_naming_them() {
    let err = Registry::parse(&file("same", "same")).unwrap_err().to_string();
    assert!(err.contains("share one token"), "{err}");
    let err = Registry::parse("[[rider]]\nid = \"Alice\"\n").unwrap_err().to_string();
    assert!(err.contains("invalid id \"Alice\""), "{err}");
    let err =
        Registry::parse("[[rider]]\nid = \"a\"\n[[rider.device]]\nid = \"d\"\ntoken_sha256 = \"xyz\"\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("not 64 hex digits"), "{err}");
    let err = Registry::parse("[[viewer]]\nname = \"c\"\ntoken_sha256 = \"{}\"\nriders = [\"zed\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not 64 hex digits") || err.contains("unknown rider"), "{err}");
}

#[test]
fn finds_every_device_among_many() {
    let mut file = String::new();
    for i in 0..1000 {
        file.push_str(&format!(
            "[[rider]]\nid = \"r{i}\"\n[[rider.device]]\nid = \"d\"\ntoken_sha256 = \"{}\"\n",
            TokenHash::of(&format!("token-{i}")).to_hex()
        ));
    }
    let registry = Registry::parse(&file).expect("valid");
    for i in [0, 1, 499, 999] {
        let id = registry.authenticate_device(&format!("token-{i}")).expect("known");
        assert_eq!(id.rider.as_str(), format!("r{i}"));
    }
    assert!(registry.authenticate_device("token-1000").is_none());
}

#[test]
fn an_owntracks_key_is_kept_per_device_and_padded_or_cut_as_the_apps_do() {
    let file = format!(
        "[[rider]]\nid = \"a\"\n[[rider.device]]\nid = \"phone\"\ntoken_sha256 = \"{}\"\nowntracks_key = \"s3cret\"\n\
         [[rider.device]]\nid = \"edge\"\ntoken_sha256 = \"{}\"\n",
        TokenHash::of("t1").to_hex(),
        TokenHash::of("t2").to_hex()
    );
    let registry = Registry::parse(&file).expect("valid");
    let phone = registry.authenticate_device("t1").expect("known").clone();
    let key = registry.owntracks_key(&phone).expect("a key");
    assert_eq!(&key.secretbox_key()[..7], b"s3cret\0");
    assert_eq!(format!("{key:?}"), "OwnTracksKey(…)", "never in a log");
    let edge = registry.authenticate_device("t2").expect("known");
    assert!(registry.owntracks_key(edge).is_none());
    let long = OwnTracksKey("x".repeat(40));
    assert_eq!(long.secretbox_key(), [b'x'; 32]);
    let empty = file.replace("s3cret", "");
    assert!(Registry::parse(&empty).unwrap_err().to_string().contains("owntracks_key is empty"));
}

#[test]
fn generated_tokens_are_distinct_and_prefixed() {
    let (a, b) = (generate_token(), generate_token());
    assert_ne!(a, b);
    assert!(a.starts_with("velo_") && a.len() == 69);
}

// Events, organisers and who sees what.

use crate::course::files::{CourseFile, Waypoint};
use crate::course::Course;
use crate::event::Cutoff;
use crate::files::Format;
use crate::geo::offset;

/// A 20 km course due north from 45° N 7° E, with waypoints at km 5 ("Town") and km 15
/// ("Pass"), as if read from `course.gpx`.
fn course_file(path: &Path) -> Result<CourseFile, String> {
    if !path.ends_with("course.gpx") {
        return Err(format!("{}: cannot read the course file: No such file", path.display()));
    }
    let points = (0..=200).map(|i| {
        let (lat, lon) = offset(45.0, 7.0, f64::from(i) * 100.0, 0.0);
        (lat, lon, Some(100.0))
    });
    let at = |km: f64, name: &str| {
        let (lat, lon) = offset(45.0, 7.0, km * 1_000.0, 50.0);
        Waypoint { name: name.into(), lat, lon }
    };
    Ok(CourseFile {
        format: Format::Gpx,
        name: None,
        course: Course::new(points).map_err(|e| e.to_string())?,
        waypoints: vec![at(5.0, "Town"), at(15.0, "Pass")],
    })
}

fn parse_event(text: &str) -> Result<Registry, String> {
    Registry::parse_with(text, Path::new("/races"), &course_file).map_err(|e| e.to_string())
}

const RIDERS: &str = r#"
[[rider]]
id = "alice"
public = true
[[rider]]
id = "bob"
[[rider]]
id = "carol"
"#;

fn hash(token: &str) -> String {
    TokenHash::of(token).to_hex()
}

#[test]
fn an_event_is_checked_into_starts_checkpoints_and_cutoffs() {
    let text = format!(
        r#"{RIDERS}
[[event]]
id = "tcr"
name = "Transcontinental"
course = "course.gpx"
start = 2026-07-26T22:00:00+02:00
riders = ["alice", "bob"]
cutoff_after = "10d"
[event.starts]
bob = "2026-07-26T20:30:00Z"
  [[event.checkpoint]]
  waypoint = "Town"
  cutoff = 2026-07-27T12:00:00Z
  [[event.checkpoint]]
  name = "CP2"
  distance_km = 10
  cutoff_after = "36h"
  [[event.checkpoint]]
  name = "Summit"
  lat = 45.1349
  lon = 7.0

[[viewer]]
name = "followers"
token_sha256 = "{}"
events = ["tcr"]

[[organiser]]
id = "race-hq"
name = "Race HQ"
token_sha256 = "{}"
events = ["tcr"]
"#,
        hash("viewer"),
        hash("organiser")
    );
    let registry = parse_event(&text).unwrap_or_else(|e| panic!("{e}"));
    let tcr = registry.event(&EventId::parse("tcr").expect("an id")).expect("the event");
    assert_eq!(tcr.name, "Transcontinental");
    assert_eq!(tcr.course_file, Path::new("/races/course.gpx"));
    let start = crate::time::parse_rfc3339("2026-07-26T20:00:00Z").expect("a time");
    let alice = RiderId::parse("alice").expect("an id");
    let bob = RiderId::parse("bob").expect("an id");
    assert_eq!(tcr.entrant(&alice).map(|e| e.start), Some(start));
    assert_eq!(tcr.entrant(&bob).map(|e| e.start), Some(start + 1_800_000_000_000));
    assert_eq!(tcr.finish_cutoff, Some(Cutoff::AfterStart(std::time::Duration::from_secs(864_000))));
    let names: Vec<&str> = tcr.checkpoints.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Town", "CP2", "Summit"]);
    let km: Vec<f64> = tcr.checkpoints.iter().map(|c| (c.distance_m / 10.0).round() / 100.0).collect();
    assert_eq!(km, [5.0, 10.0, 15.0]);
    assert!((tcr.checkpoints[0].off_course_m - 50.0).abs() < 0.5);
    let town_cutoff = crate::time::parse_rfc3339("2026-07-27T12:00:00Z").expect("a time");
    assert_eq!(tcr.checkpoints[0].cutoff, Some(Cutoff::At(town_cutoff)));
    assert_eq!(tcr.checkpoints[1].cutoff.map(|c| c.for_start(start)), Some(start + 36 * 3_600_000_000_000));
    assert_eq!(tcr.checkpoints[2].cutoff, None);

    // The event is private: its viewers see it and its entrants, private or not; nobody else.
    let followers = registry.authenticate_viewer("viewer").expect("a viewer");
    let rider = |id: &str| registry.rider(&RiderId::parse(id).expect("an id")).expect("a rider");
    assert!(registry.may_see_event(Some(followers), tcr) && !registry.may_see_event(None, tcr));
    assert!(registry.may_see(Some(followers), rider("bob")), "an entrant");
    assert!(!registry.may_see(Some(followers), rider("carol")), "not an entrant");
    assert!(registry.may_see(None, rider("alice")) && !registry.may_see(None, rider("bob")));
    let hq = registry.authenticate_organiser("organiser").expect("an organiser");
    assert_eq!((hq.id.as_str(), hq.name.as_str()), ("race-hq", "Race HQ"));
    assert!(hq.events.covers(&tcr.id));
    assert!(registry.authenticate_viewer("organiser").is_none(), "an organiser token is no viewer token");
    assert!(registry.authenticate_organiser("viewer").is_none());
}

#[test]
fn checkpoints_may_be_every_waypoint_of_the_course_file() {
    let text = format!(
        "{RIDERS}[[event]]\nid = \"e\"\ncourse = \"course.gpx\"\nstart = \"2026-07-26T22:00:00Z\"\n\
         riders = [\"alice\"]\npublic = true\ncheckpoints = \"waypoints\"\n"
    );
    let registry = parse_event(&text).unwrap_or_else(|e| panic!("{e}"));
    let event = &registry.events()[0];
    let names: Vec<&str> = event.checkpoints.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Town", "Pass"]);
    assert!(event.public && registry.may_see_event(None, event));
    assert_eq!(event.name, "e");
}

#[test]
fn what_is_wrong_in_an_event_is_said_with_the_event_and_the_field() {
    let event = |body: &str| {
        format!("{RIDERS}[[event]]\nid = \"tcr\"\ncourse = \"course.gpx\"\nstart = \"2026-07-26T22:00:00Z\"\n{body}\n")
    };
    let cases = [
        (event("riders = [\"zed\"]"), "event \"tcr\": riders: \"zed\" is not a rider of this file"),
        (event("riders = [\"bob\", \"bob\"]"), "\"bob\" is entered twice"),
        (event("riders = [\"bob\"]\n[event.starts]\ncarol = \"2026-07-26T22:00:00Z\""), "starts: \"carol\" is not in riders"),
        (
            event("riders = [\"bob\"]\ncutoff = 2026-07-30T12:00:00").replace("start = \"2026-07-26T22:00:00Z\"\n", ""),
            "event \"tcr\": start: rider \"bob\" has no start",
        ),
        (event("riders = []\ncutoff = 2026-07-30T12:00:00"), "finish: cutoff: 2026-07-30T12:00:00 has no UTC offset"),
        (event("riders = []\ncheckpoints = \"all\""), "checkpoints: \"all\": the only value is \"waypoints\""),
        (
            event("riders = []\ncheckpoints = \"waypoints\"\n[[event.checkpoint]]\nwaypoint = \"Town\""),
            "drop checkpoints = \"waypoints\"",
        ),
        (event("riders = []\n[[event.checkpoint]]\nwaypoint = \"Nowhere\""), "has no waypoint \"Nowhere\" (it has [\"Town\", \"Pass\"])"),
        (
            event("riders = []\n[[event.checkpoint]]\nname = \"Far\"\nlat = 45.05\nlon = 7.2"),
            "checkpoint \"Far\": the position is 15.7 km from the course",
        ),
        (
            event("riders = []\n[[event.checkpoint]]\nwaypoint = \"Pass\"\n[[event.checkpoint]]\nname = \"Back\"\ndistance_km = 2"),
            "checkpoint \"Back\": at km 2.000, it is not after checkpoint \"Pass\" (km 15.000)",
        ),
        (event("riders = []\n[[event.checkpoint]]\nname = \"X\"\ndistance_km = 25"), "distance_km 25 is not on the course (0 to 20.000 km)"),
        (
            event("riders = []\n[[event.checkpoint]]\nname = \"X\"\ndistance_km = 2\nlat = 45.0\nlon = 7.0"),
            "give exactly one of waypoint, distance_km, or lat and lon",
        ),
        (
            event("riders = []\n[[event.checkpoint]]\nname = \"X\"\ndistance_km = 2\ncutoff_after = \"soon\""),
            "cutoff_after: \"soon\" is not a duration",
        ),
        (event("riders = []").replace("course.gpx", "missing.gpx"), "event \"tcr\": course: /races/missing.gpx: cannot read"),
        (format!("{}{}", event("riders = []"), "[[event]]\nid = \"tcr\"\ncourse = \"course.gpx\"\nriders = []\n"), "event \"tcr\" appears twice"),
        (
            format!("{}[[organiser]]\nid = \"hq\"\ntoken_sha256 = \"{}\"\nevents = [\"other\"]\n", event("riders = []"), hash("o")),
            "organiser \"hq\": events: \"other\" is not an event of this file",
        ),
        (
            format!("{}[[viewer]]\nname = \"v\"\ntoken_sha256 = \"{}\"\nevents = [\"other\"]\n", event("riders = []"), hash("v")),
            "viewer \"v\": events: \"other\" is not in this file",
        ),
        (format!("{}[[viewer]]\nname = \"v\"\ntoken_sha256 = \"{}\"\n", event("riders = []"), hash("v")), "viewer \"v\" sees nothing"),
        (
            format!(
                "{}[[viewer]]\nname = \"v\"\ntoken_sha256 = \"{}\"\nevents = [\"*\"]\n[[organiser]]\nid = \"hq\"\ntoken_sha256 = \"{}\"\nevents = [\"*\"]\n",
                event("riders = []"),
                hash("same"),
                hash("same")
            ),
            "share one token",
        ),
    ];
    for (text, want) in cases {
        let err = parse_event(&text).map(|_| ()).unwrap_err();
        assert!(err.contains(want), "{err}\n  does not say: {want}");
    }
}

#[test]
fn a_riders_file_reads_its_course_beside_it() {
    let dir = std::env::temp_dir().join(format!("velometry-riders-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("courses")).expect("a folder");
    let course = course_file(Path::new("course.gpx")).expect("a course");
    let gpx = crate::course::files::to_gpx("Test", &course.course, &course.waypoints).expect("GPX");
    std::fs::write(dir.join("courses/test.gpx"), gpx).expect("written");
    let riders = dir.join("riders.toml");
    std::fs::write(
        &riders,
        format!("{RIDERS}[[event]]\nid = \"e\"\ncourse = \"courses/test.gpx\"\nstart = \"2026-07-26T22:00:00Z\"\nriders = [\"alice\"]\ncheckpoints = \"waypoints\"\n"),
    )
    .expect("written");
    let registry = Registry::load(&riders).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.events()[0].checkpoints.len(), 2);
    assert!((registry.events()[0].length_m() - 20_000.0).abs() < 1.0);
    let _ = std::fs::remove_dir_all(&dir);
}
