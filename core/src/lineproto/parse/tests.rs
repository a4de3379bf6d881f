use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn ok(line: &str) -> Line<'_> {
    parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn reads_every_part_of_a_line() {
    let l = ok("gps,host=a,region=eu lat=45.1,lon=-7.5e0,n=3i,u=4u,ok=t,name=\"x y\" 1700000000");
    assert_eq!(l.measurement, "gps");
    assert_eq!(l.tags, vec![("host".into(), "a".into()), ("region".into(), "eu".into())]);
    assert_eq!(
        l.fields,
        vec![
            ("lat".into(), Value::Float(45.1, "45.1")),
            ("lon".into(), Value::Float(-7.5, "-7.5e0")),
            ("n".into(), Value::Int(3)),
            ("u".into(), Value::UInt(4)),
            ("ok".into(), Value::Bool(true)),
            ("name".into(), Value::Str("x y".into())),
        ]
    );
    assert_eq!(l.fields_text, "lat=45.1,lon=-7.5e0,n=3i,u=4u,ok=t,name=\"x y\"");
    assert_eq!(l.timestamp, Some(1_700_000_000));
    assert_eq!(ok("m  a=1,b=2").fields_text, "a=1,b=2", "from the first key to the end of the line");
}

#[test]
fn unescapes_what_influxdb_escapes() {
    let l = ok(r#"my\ meas,ta\,g=v\=1\ 2 f\ k="say \"hi\" \\ back\slash" -5"#);
    assert_eq!(l.measurement, "my meas");
    assert_eq!(l.tags, vec![("ta,g".into(), "v=1 2".into())]);
    assert_eq!(l.fields, vec![("f k".into(), Value::Str(r#"say "hi" \ back\slash"#.into()))]);
    assert_eq!(l.timestamp, Some(-5));
    assert!(matches!(ok("m f=1").measurement, Cow::Borrowed(_)), "nothing to unescape, nothing copied");
}

#[test]
fn says_what_is_wrong() {
    for (line, error) in [
        ("", ParseError::MissingMeasurement),
        (",t=1 f=1", ParseError::MissingMeasurement),
        ("m", ParseError::MissingFields),
        ("m ", ParseError::MissingFields),
        ("m,t f=1", ParseError::BadTag),
        ("m,t= f=1", ParseError::BadTag),
        ("m f", ParseError::BadField),
        ("m f=", ParseError::BadField),
        ("m =1", ParseError::BadField),
        ("m f=\"open", ParseError::UnbalancedQuotes),
        ("m f=NaN", ParseError::BadValue("NaN".into())),
        ("m f=inf", ParseError::BadValue("inf".into())),
        ("m f=1x", ParseError::BadValue("1x".into())),
        ("m f=1.5i", ParseError::BadValue("1.5i".into())),
        ("m f=1 12ab", ParseError::BadTimestamp("12ab".into())),
        ("m f=1 1 2", ParseError::BadTimestamp("1 2".into())),
    ] {
        assert_eq!(parse_line(line), Err(error), "{line:?}");
    }
}

/// A random line from the grammar, with the characters that need escaping.
fn random_line(rng: &mut StdRng) -> String {
    const ALPHABET: &[&str] = &["a", "b", "z", "0", "_", "-", "é", " ", ",", "=", "\"", "\\"];
    let ident = |rng: &mut StdRng, escape: &[char]| -> String {
        let len = rng.random_range(1..6);
        let mut s = String::new();
        for i in 0..len {
            let c = ALPHABET[rng.random_range(0..ALPHABET.len())];
            let c = if i == 0 && c == "\\" { "a" } else { c };
            let ch = c.chars().next().unwrap_or('a');
            if c == "\\" {
                // A lone backslash before a plain letter stays literal in both parsers.
                s.push_str("\\q");
            } else if escape.contains(&ch) {
                s.push('\\');
                s.push(ch);
            } else if ch == '"' || ch == '=' && escape.is_empty() {
                s.push('x');
            } else {
                s.push(ch);
            }
        }
        s
    };
    let mut line = ident(rng, &[',', ' ']).replace(['=', '"'], "x");
    for _ in 0..rng.random_range(0..3) {
        line.push(',');
        line.push_str(&ident(rng, &[',', '=', ' ']).replace('"', "x"));
        line.push('=');
        line.push_str(&ident(rng, &[',', '=', ' ']).replace('"', "x"));
    }
    line.push(' ');
    for f in 0..rng.random_range(1..4) {
        if f > 0 {
            line.push(',');
        }
        line.push_str(&ident(rng, &[',', '=', ' ']).replace('"', "x"));
        line.push('=');
        match rng.random_range(0..5) {
            0 => line.push_str(&format!("{}", rng.random_range(-1e6..1e6_f64))),
            1 => line.push_str(&format!("{}i", rng.random_range(i64::MIN / 2..i64::MAX / 2))),
            2 => line.push_str(["t", "true", "F", "false"][rng.random_range(0..4)]),
            3 => line.push_str(&format!("\"{}\"", ident(rng, &[]).replace('\\', "").replace('"', "\\\""))),
            _ => line.push_str(&format!("{}", rng.random_range(0..1000))),
        }
    }
    if rng.random_bool(0.7) {
        line.push_str(&format!(" {}", rng.random_range(0..i64::MAX)));
    }
    line
}

#[test]
fn agrees_with_the_influxdata_parser_on_generated_lines() {
    use influxdb_line_protocol::FieldValue;
    let mut rng = StdRng::seed_from_u64(7);
    let mut compared = 0;
    for _ in 0..20_000 {
        let line = random_line(&mut rng);
        let theirs = influxdb_line_protocol::parse_lines(&line).next().expect("a line");
        let Ok(theirs) = theirs else { continue };
        compared += 1;
        let ours = ok(&line);
        assert_eq!(ours.measurement, theirs.series.measurement.to_string(), "{line:?}");
        let their_tags: Vec<(String, String)> =
            theirs.series.tag_set.iter().flatten().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let our_tags: Vec<(String, String)> =
            ours.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(our_tags, their_tags, "{line:?}");
        assert_eq!(ours.fields.len(), theirs.field_set.len(), "{line:?}");
        for ((k, v), (tk, tv)) in ours.fields.iter().zip(theirs.field_set.iter()) {
            assert_eq!(k, &tk.to_string(), "{line:?}");
            let same = match (v, tv) {
                (Value::Float(a, _), FieldValue::F64(b)) => a == b,
                (Value::Int(a), FieldValue::I64(b)) => a == b,
                (Value::UInt(a), FieldValue::U64(b)) => a == b,
                (Value::Bool(a), FieldValue::Boolean(b)) => a == b,
                (Value::Str(a), FieldValue::String(b)) => a == &b.to_string(),
                _ => false,
            };
            assert!(same, "{line:?}: {v:?} vs {tv:?}");
        }
        assert_eq!(ours.timestamp, theirs.timestamp, "{line:?}");
    }
    assert!(compared > 15_000, "the generator mostly made lines the reference refuses: {compared}");
}

#[test]
fn never_panics_on_mangled_lines() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20_000 {
        let mut bytes = random_line(&mut rng).into_bytes();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = b" ,=\"\\it0."[rng.random_range(0..9)];
        }
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = parse_line(&text);
        }
    }
}
