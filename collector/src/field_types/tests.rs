use std::cell::Cell;
use std::collections::HashMap;

use velometry_core::lineproto::parse::{parse_line, FieldType};
use velometry_core::reading::Metric;

use super::*;

/// The result of checking one line against `types`, as one request.
fn check(types: &FieldTypes, line: &str) -> Result<(), Conflict> {
    let line = parse_line(line).expect("line protocol");
    let (result, claimed) = types.check(|checker| checker.line(&line.measurement, &line.fields));
    types.written(claimed, 10);
    result
}

fn answer(entries: &[(&str, &str, FieldType)]) -> learn::Answer {
    let mut answer = learn::Answer::new();
    for (m, f, t) in entries {
        let types = answer.entry((*m).to_owned()).or_default().entry((*f).to_owned()).or_default();
        *types = types.with(*t);
    }
    answer
}

#[test]
fn a_field_keeps_the_type_it_was_first_written_with() {
    let types = FieldTypes::in_memory();
    assert_eq!(check(&types, "m f=1i"), Ok(()));
    let conflict = check(&types, "m f=2.5").expect_err("a float after an integer");
    assert_eq!(
        conflict.to_string(),
        "field type conflict: input field \"f\" on measurement \"m\" is type float, already exists as type integer"
    );
    assert_eq!(check(&types, "m time=\"x\",f=3i,g=t"), Ok(()), "a time field is not stored, so not checked");
    assert_eq!(
        types.of("m"),
        [("f".into(), TypeSet::of(FieldType::Integer)), ("g".into(), TypeSet::of(FieldType::Boolean))]
    );
}

#[test]
fn the_database_wins_and_what_it_forgot_is_forgotten_once_stored() {
    let types = FieldTypes::in_memory();
    check(&types, "m f=1i,g=1").expect("new fields");
    check(&types, "n f=1").expect("new fields");
    // Lines of `n` are stored (written at 10, stored up to 10); `m` is in the database.
    types.refreshed(answer(&[("m", "f", FieldType::String)]), 10, None);
    assert_eq!(types.of("m"), [("f".into(), TypeSet::of(FieldType::String))]);
    assert!(types.of("n").is_empty(), "a measurement dropped behind the collector's back");
    assert_eq!(check(&types, "n f=\"now a string\""), Ok(()));
    // Lines not stored yet keep their types through a refresh that does not list them.
    types.refreshed(answer(&[]), 9, None);
    assert_eq!(types.of("n"), [("f".into(), TypeSet::of(FieldType::String))]);
}

#[test]
fn a_field_the_database_holds_with_two_types_takes_either() {
    let types = FieldTypes::in_memory();
    types.refreshed(answer(&[("m", "f", FieldType::Float), ("m", "f", FieldType::Integer)]), 0, None);
    assert_eq!(check(&types, "m f=1i"), Ok(()));
    assert_eq!(check(&types, "m f=1"), Ok(()));
    assert!(check(&types, "m f=t").is_err());
}

#[test]
fn known_measurements_are_checked_against_the_database_only() {
    let types = FieldTypes::in_memory();
    assert_eq!(types.checker().known(Metric::HeartRate, 0), Ok(()));
    types.refreshed(answer(&[("heart_rate", "bpm", FieldType::Integer)]), 0, None);
    let conflict = types.checker().known(Metric::HeartRate, 0).expect_err("bpm is an integer there");
    assert_eq!((conflict.input, conflict.existing), (FieldType::Float, FieldType::Integer));
    assert_eq!(types.checker().known(Metric::Gps, 0), Ok(()));
}

#[test]
fn unsigned_integers_follow_the_version_the_sink_reported() {
    let types = FieldTypes::in_memory();
    assert!(!types.checker().unsigned(), "unknown: refused, as 1.x would");
    types.refreshed(answer(&[]), 0, Some("v2.7.4".into()));
    assert!(types.checker().unsigned());
    types.refreshed(answer(&[]), 0, None);
    assert!(types.checker().unsigned(), "a refresh without /ping keeps what was known");
    types.refreshed(answer(&[]), 0, Some("1.6.7~rc0".into()));
    assert!(!types.checker().unsigned());
}

#[test]
fn the_second_of_two_requests_claiming_one_field_is_checked_against_the_first() {
    let types = FieldTypes::in_memory();
    let second = parse_line("m f=2.5").expect("valid");
    let runs = Cell::new(0);
    let (result, claimed) = types.check(|checker| {
        runs.set(runs.get() + 1);
        if runs.get() == 1 {
            // Another request claims the same new field meanwhile, with another type.
            assert_eq!(check(&types, "m f=1i"), Ok(()));
        }
        checker.line(&second.measurement, &second.fields)
    });
    types.written(claimed, 20);
    assert_eq!(runs.get(), 2, "the stale parse ran again");
    assert!(result.is_err(), "{result:?}");
    assert_eq!(types.of("m"), [("f".into(), TypeSet::of(FieldType::Integer))]);
}

#[test]
fn what_was_learned_from_lines_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("field-types.jsonl");
    {
        let types = FieldTypes::open(path.clone(), 0, false);
        check(&types, "m f=1i").expect("new");
        types.refreshed(
            answer(&[("m", "f", FieldType::Integer), ("db", "x", FieldType::String)]),
            0,
            Some("1.6.7".into()),
        );
        let line = parse_line("m g=t").expect("valid");
        // A crash before the append returned: the journal says the claim is pending.
        let (_, claimed) = types.check(|checker| checker.line(&line.measurement, &line.fields));
        drop(claimed);
    }
    let types = FieldTypes::open(path, 50, false);
    assert_eq!(
        types.of("m"),
        [("f".into(), TypeSet::of(FieldType::Integer)), ("g".into(), TypeSet::of(FieldType::Boolean))]
    );
    assert_eq!(types.of("db"), [("x".into(), TypeSet::of(FieldType::String))]);
    assert!(check(&types, "m g=1").is_err());
    // The pending claim lies below the WAL's end at start-up: forgotten once that is stored.
    types.refreshed(HashMap::new(), 49, None);
    assert_eq!(types.of("m").len(), 1, "kept while the log may hold its lines");
    types.refreshed(HashMap::new(), 50, None);
    assert!(types.of("m").is_empty());
}
