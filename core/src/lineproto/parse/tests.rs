use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn ok(line: &str) -> Line<'_> {
    parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn reads_every_part_of_a_line() {
    let l = ok("gps,host=a,region=eu lat=45.1,lon=-7.5e0,n=3i,u=4u,ok=t,name=\"x y\" 1700000000");
    assert_eq!((l.measurement.as_ref(), l.raw_measurement), ("gps", "gps"));
    let tags: Vec<(String, String)> = l.tags.iter().map(|t| (t.key().into(), t.value().into())).collect();
    assert_eq!(tags, [("host".to_owned(), "a".to_owned()), ("region".to_owned(), "eu".to_owned())]);
    assert_eq!(l.tags[1].raw(), "region=eu");
    assert_eq!(
        values(&l),
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
    assert!(l.fields_verbatim);
    assert_eq!(l.timestamp, Some(1_700_000_000));
    assert_eq!(ok("m  a=1,b=2").fields_text, "a=1,b=2", "from the first key to the end of the line");
    assert_eq!(ok("  \tm f=1").measurement, "m", "InfluxDB skips spaces and tabs before a line");
    let precise = parse_line_with("m f=1 5", Options { unsigned: true, multiplier: 1_000 }).expect("valid");
    assert_eq!(precise.timestamp, Some(5_000), "the timestamp in nanoseconds");
}

fn values<'a>(l: &Line<'a>) -> Vec<(String, Value<'a>)> {
    l.fields.iter().map(|f| (f.key.to_string(), f.value.clone())).collect()
}

#[test]
fn unescapes_what_influxdb_escapes() {
    let l = ok(r#"my\ meas,ta\,g=v\=1\ 2 f\ k="say \"hi\" \\ back\slash" -5"#);
    assert_eq!(l.measurement, "my meas");
    assert_eq!((l.tags[0].key(), l.tags[0].value()), ("ta,g".into(), "v=1 2".into()));
    assert_eq!(values(&l), vec![("f k".into(), Value::Str(r#"say "hi" \ back\slash"#.into()))]);
    assert_eq!(l.timestamp, Some(-5));
    assert!(matches!(ok("m f=1").measurement, Cow::Borrowed(_)), "nothing to unescape, nothing copied");
}

/// What InfluxDB 1.6.7 showed for each line (measurement, then the first tag or field as
/// it lists them), checked by hand against the real server.
#[test]
fn reads_each_token_as_influxdb_1_6_does() {
    let name = |line: &str| ok(line).measurement.into_owned();
    let tag = |line: &str| {
        let l = ok(line);
        (l.tags[0].key().into_owned(), l.tags[0].value().into_owned())
    };
    fn field(line: &str) -> (String, Value<'_>) {
        values(&ok(line)).remove(0)
    }
    assert_eq!(name(r"a\=b f=1"), "a=b");
    assert_eq!(name(r#"a\"b f=1"#), "a\"b");
    assert_eq!(name(r"a\\b f=1"), r"a\\b");
    assert_eq!(name(r"a\\,b f=1"), r"a\,b", "after a backslash, a comma is escaped");
    assert_eq!(tag(r"m,t\=k=v f=1"), ("t=k".into(), "v".into()));
    assert_eq!(
        tag(r#"m,t\"k=v\"x f=1"#),
        (r#"t\"k"#.into(), r#"v\"x"#.into()),
        "quotes stay escaped in tags"
    );
    assert_eq!(tag(r"m,t=v\\\ x f=1"), ("t".into(), r"v\\ x".into()));
    assert_eq!(field(r#"m f\"k=1"#), (r#"f"k"#.into(), Value::Float(1.0, "1")));
    assert_eq!(field(r"m f\\k=1"), (r"f\\k".into(), Value::Float(1.0, "1")));
    assert_eq!(field(r#"m s="a\nb""#).1, Value::Str(r"a\nb".into()));
    assert_eq!(field(r#"m s="a\\""#).1, Value::Str(r"a\".into()));
    assert_eq!(field(r#"m s="a\\\"""#).1, Value::Str(r#"a\""#.into()));
    assert_eq!(
        field(r#"m f="x"y 1"#).1,
        Value::Str(r#"x""#.into()),
        "InfluxDB keeps what lies between the ends"
    );
    assert_eq!(field("m f=.5").1, Value::Float(0.5, ".5"));
    assert_eq!(field("m f=5.").1, Value::Float(5.0, "5."));
    assert_eq!(field("m f=1e-400").1, Value::Float(0.0, "1e-400"));
    assert_eq!(field("m f=-0i").1, Value::Int(0));
    assert_eq!(field("m f=True").1, Value::Bool(true));
    assert_eq!(ok("m f=1 01").timestamp, Some(1));
    assert_eq!(ok("m f=1 9223372036854775806").timestamp, Some(i64::MAX - 1));
    assert_eq!(ok("m f=1 1  ").timestamp, Some(1), "spaces may follow the timestamp");
    assert_eq!(ok("m time=1,f=2").fields.len(), 2, "the collector drops `time` when it writes the line");
    assert!(!ok("m time=1,f=2").fields_verbatim);
}

#[test]
fn lets_a_plus_through_and_says_the_text_cannot_be_copied() {
    let l = ok("m a=+1,b=+1.5,c=+2i,d=3 +5");
    assert_eq!(
        values(&l).into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        [Value::Float(1.0, "+1"), Value::Float(1.5, "+1.5"), Value::Int(2), Value::Float(3.0, "3")]
    );
    assert_eq!(l.fields.iter().map(|f| f.verbatim).collect::<Vec<_>>(), [false, false, false, true]);
    assert!(!l.fields_verbatim);
    assert_eq!(l.timestamp, Some(5));
    assert_eq!(parse_line("m f=1 +"), Err(ParseError::BadTimestamp));
    assert_eq!(parse_line("m f=++1"), Err(ParseError::InvalidBoolean));
    assert_eq!(
        parse_line(r"m f\\=+1,f=1i"),
        Err(ParseError::InvalidBoolean),
        "InfluxDB reads no value after `\\=`"
    );
}

#[test]
fn says_what_is_wrong_in_influxdb_s_words() {
    let unsigned_off = |line| parse_line_with(line, Options { unsigned: false, multiplier: 1 });
    assert_eq!(unsigned_off("m f=1u"), Err(ParseError::InvalidNumber), "InfluxDB 1.x has no unsigned type");
    let long = "m".repeat(MAX_KEY_LENGTH + 1);
    assert_eq!(parse_line(&format!("{long} f=1")), Err(ParseError::MaxKeyLength(MAX_KEY_LENGTH + 1)));
    let near = "m".repeat(MAX_KEY_LENGTH - 5);
    assert_eq!(parse_line(&format!("{near} ff=1")), Err(ParseError::MaxKeyLength(MAX_KEY_LENGTH + 1)));
    for (line, error) in [
        ("", ParseError::MissingMeasurement),
        (",t=1 f=1", ParseError::MissingMeasurement),
        ("m", ParseError::MissingFields),
        ("m ", ParseError::InvalidFieldFormat),
        ("m,t f=1", ParseError::MissingTagValue),
        ("m,t= f=1", ParseError::MissingTagValue),
        ("m,=1 f=1", ParseError::MissingTagKey),
        ("m,t=a", ParseError::MissingFields),
        ("m,t=a,t=b f=1", ParseError::DuplicateTags),
        ("m,u=a,t=b,u=c f=1", ParseError::DuplicateTags),
        ("m,t=a=b f=1", ParseError::InvalidTagFormat),
        (r"m,t=\\ f=1", ParseError::InvalidTagFormat),
        (r"m,t=a\\,u=b f=1", ParseError::InvalidTagFormat),
        ("m,t=a\tf=1 1", ParseError::InvalidTagFormat),
        ("m f", ParseError::InvalidFieldFormat),
        ("m f=", ParseError::MissingFieldValue),
        ("m =1", ParseError::MissingFieldKey),
        ("m f=1,=2", ParseError::MissingFieldKey),
        ("m ,f=1 1", ParseError::InvalidFieldFormat),
        ("m f=1,,g=1 1", ParseError::InvalidFieldFormat),
        ("m f=1, 1", ParseError::InvalidFieldFormat),
        ("m\tf=1 1", ParseError::InvalidFieldFormat),
        (r"m fk\=1 1", ParseError::InvalidFieldFormat),
        (r"m f\\=1", ParseError::InvalidFieldKey(r"f\\=1".into())),
        ("m f=\"open", ParseError::UnbalancedQuotes),
        (r#"m s="a\" 1"#, ParseError::UnbalancedQuotes),
        ("m f=NaN", ParseError::InvalidNumber),
        ("m f=inf", ParseError::InvalidBoolean),
        ("m f=1x", ParseError::InvalidNumber),
        ("m f=1.5i", ParseError::InvalidNumber),
        ("m f=1.0i", ParseError::InvalidNumber),
        ("m f=0x10", ParseError::InvalidNumber),
        ("m f=1_0", ParseError::InvalidNumber),
        ("m f=-", ParseError::InvalidNumber),
        ("m f=-i", ParseError::InvalidNumber),
        ("m f=1\t1", ParseError::InvalidNumber),
        ("m f=i", ParseError::InvalidBoolean),
        ("m f=tRUE", ParseError::InvalidBoolean),
        ("m f=tru", ParseError::InvalidBoolean),
        ("m f=1e400", ParseError::InvalidFloat),
        ("m f=1.5e", ParseError::InvalidFloat),
        ("m f=9223372036854775808i", ParseError::IntegerOutOfRange("9223372036854775808".into())),
        ("m f=-9223372036854775809i", ParseError::IntegerOutOfRange("-9223372036854775809".into())),
        ("m f=1 12ab", ParseError::BadTimestamp),
        ("m f=1 1\t", ParseError::BadTimestamp),
        ("m f=1 1 2", ParseError::InvalidPoint),
        ("m f=\"x\" 1 1", ParseError::InvalidPoint),
        ("m f=1 -", ParseError::TimestampSyntax("-".into())),
        ("m f=1 9223372036854775808", ParseError::TimestampOutOfRange("9223372036854775808".into())),
        ("m f=1 9223372036854775807", ParseError::TimeOutOfRange),
        ("m f=1 -9223372036854775807", ParseError::TimeOutOfRange),
    ] {
        assert_eq!(parse_line(line), Err(error), "{line:?}");
    }
    assert_eq!(
        ParseError::IntegerOutOfRange("9223372036854775808".into()).to_string(),
        "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \"9223372036854775808\": value out of range"
    );
    assert_eq!(ParseError::InvalidFieldKey(r"f\\=1".into()).to_string(), r"invalid value: field-key=f\\=1");
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
        let ours = match parse_line(&line) {
            Ok(ours) => ours,
            // InfluxDB 1.x refuses what the crate (InfluxDB 3's grammar) takes.
            Err(ParseError::DuplicateTags) => continue,
            Err(e) => panic!("{line:?}: {e}"),
        };
        compared += 1;
        assert_eq!(ours.measurement, theirs.series.measurement.to_string(), "{line:?}");
        let their_tags: Vec<(String, String)> =
            theirs.series.tag_set.iter().flatten().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let our_tags: Vec<(String, String)> =
            ours.tags.iter().map(|t| (t.key().into_owned(), t.value().into_owned())).collect();
        assert_eq!(our_tags, their_tags, "{line:?}");
        assert_eq!(ours.fields.len(), theirs.field_set.len(), "{line:?}");
        for ((k, v), (tk, tv)) in values(&ours).iter().zip(theirs.field_set.iter()) {
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

/// Found by the `lineproto_line` and `lineproto_body` fuzz targets: the places of the fields
/// taken from the first pass crossed, and slicing them panicked.
#[test]
fn a_field_with_two_equals_or_a_comma_first_is_read_as_influxdb_reads_it() {
    assert_eq!(parse_line("n a=\"\"=1,o").err(), Some(ParseError::InvalidFieldKey("o".into())));
    assert_eq!(parse_line("n a=\"\"=1,o=2").err(), Some(ParseError::InvalidFieldFormat));
    let stored = ok("ws ,o=\"=9 1700000000000000000");
    assert_eq!(
        values(&stored),
        vec![(",o".to_owned(), Value::Str("=".into()))],
        "InfluxDB 1.6.7 stores this"
    );
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
