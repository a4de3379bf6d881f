//! Hand-written edge cases, each class of the issue's list and more, a measurement (or a
//! few) of their own so that cases do not meet: `{t}` stands for the line's timestamp.

use super::generate::{multiplier, Generator, Request, Sent};

/// A line that InfluxDB and the collector must treat alike.
fn same(g: &mut Generator, precision: &'static str, template: &str) -> Sent {
    lenient(g, precision, template, template)
}

/// A line the collector takes as InfluxDB takes `direct`.
fn lenient(g: &mut Generator, precision: &'static str, sent: &str, direct: &str) -> Sent {
    let time = g.time();
    let ts = (time / multiplier(precision)).to_string();
    let mut line = Sent::same(sent.replace("{t}", &ts), time);
    line.direct = direct.replace("{t}", &ts).into_bytes();
    line
}

fn request(g: &mut Generator, templates: &[&str]) -> Request {
    Request { precision: "ns", lines: templates.iter().map(|t| same(g, "ns", t)).collect() }
}

/// The cases, in the order they are sent.
pub fn cases(g: &mut Generator) -> Vec<Request> {
    let mut requests = vec![
        // Acknowledged, then refused by InfluxDB, before.
        request(g, &["c1,t=a,t=b f=1 {t}", "c1,u=a,t=b,u=c f=1 {t}", "c1,t=a f=1 {t}"]),
        request(
            g,
            &[
                "c2,time=a f=1 {t}",
                "c2 time=1 {t}",
                "c2 time=1,f=2 {t}",
                "c2 f=3,time=4 {t}",
                "c2 time=1,time=2 {t}",
            ],
        ),
        request(
            g,
            &[
                r"c3,t=\\ f=1 {t}",
                r"c3,t=a\\,u=b f=1 {t}",
                r"c3 f\\=1 {t}",
                r"c3 g=1,f\\=1 {t}",
                r"c3,k\\=v f=1 {t}",
                "c3 ok=1 {t}",
            ],
        ),
        request(g, &["c4 f=1i,f=2.5 {t}", "c4 a=1,g=1i,g=t {t}"]),
        request(g, &["c4 f=2.5 {t}", "c4 f=3i {t}", "c4 g=t {t}", "c4 g=2i {t}", "c4 a=\"x\" {t}"]),
        request(g, &["c5 u=1u {t}", "c5 v=18446744073709551615u {t}", "c5 w=1 {t}"]),
        request(g, &["c6 f=1i {t}", "c6 f=2.5 {t}", "c6 f=2i {t}", "c6 g=t,f=1.5 {t}", "c6 g=f {t}"]),
        request(g, &["c7 f=\"s\" {t}", "c7,t=a g=1 {t}"]),
        request(g, &["c7 f=1 {t}", "c7 f=\"t\" {t}", "c7,t=b g=\"x\" {t}", "c7 g=2 {t}"]),
        // Refused, though InfluxDB stores them, before.
        request(g, &["c8 s=\"line1\nline2\" {t}", "   c8 g=1 {t}", "\tc8 h=1 {t}", "c8 s=\"a\n,b=c\n\" {t}"]),
        // Stored differently, before.
        request(g, &["c10 f=-0 {t}", "c10 g=-0.0 {t}", "c10 h=-0i {t}", "c10 k=-0e3 {t}"]),
        // The collector's leniencies: InfluxDB would refuse the line as sent.
        Request {
            precision: "ns",
            lines: vec![
                lenient(g, "ns", "c11 f=+1 {t}", "c11 f=1 {t}"),
                lenient(g, "ns", "c11 g=+1i,h=+.5 {t}", "c11 g=1i,h=.5 {t}"),
                lenient(g, "ns", "c11 k=1 +{t}", "c11 k=1 {t}"),
                lenient(g, "ns", "c11 m=1 {t}\r", "c11 m=1 {t}"),
                same(g, "ns", "c11,t=a=b f=1 {t}"),
            ],
        },
        // Escapes, quotes, whitespace and names InfluxDB reads its own way.
        request(
            g,
            &[
                r"c12\ x,t\ k=v\ 1 f\ k=1 {t}",
                r"c12\,y f=1 {t}",
                r#"c12\"z f=1 {t}"#,
                r"c12\=w f=1 {t}",
                r#"c12,t\"k=v\"x f=1 {t}"#,
                r#"c12 f\"k=1 {t}"#,
                r#"c12 s="a\\" {t}"#,
                r#"c12 s2="x"y {t}"#,
                r#"c12 s3="a\"b\\c\d" {t}"#,
                "c12  f=1   {t}  ",
                "c12 \t\tf=2 {t}",
                "c13 \t=1 {t}",
                "c14,rider=bob,host=h f=1 {t}",
                "c15,é=ü ö=1,ø=\"å\" {t}",
                "c16 f=1 {t} x",
                "c16 f=1 {t}x",
                "c16 f=1e400 {t}",
                "c16 f=9223372036854775808i {t}",
                "c16,=a f=1 {t}",
                "c16 =1 {t}",
                "c16 f=1,=2 {t}",
                "c16 f {t}",
                "c16 f=tRUE {t}",
                // Last: InfluxDB reads on to the end of the body for the closing quote.
                "c16 f=\"open {t}",
            ],
        ),
    ];
    // Found by fuzzing (the parser panicked on them): a field with a second `=`, a comma
    // before the first field.
    requests.push(request(
        g,
        &[
            "c18 a=\"\"=1,o {t}",
            "c18 ,o=\"=9 {t}",
            "c18 a=\"\"=1,o=2 {t}",
            "c18 x=1,,o=2 {t}",
            "c18 ok=1 {t}",
        ],
    ));
    // Keys over 64 KiB: the client's (refused by both), and one InfluxDB would take that
    // the collector's own tags push over.
    let long = "x".repeat(65_536);
    let near = "y".repeat(65_500);
    let mut keys = request(
        g,
        &[&format!("{long} f=1 {{t}}"), &format!("c17,t={long} f=1 {{t}}"), &format!("c17 {long}=1 {{t}}")],
    );
    let mut stricter = same(g, "ns", &format!("{near} f=1 {{t}}"));
    stricter.stricter = Some("max key length exceeded");
    keys.lines.push(stricter);
    requests.push(keys);
    // A string that is not UTF-8 costs only its line.
    let mut utf8 = request(g, &["c9 g=1 {t}"]);
    let time = g.time();
    let mut bad = Sent::same([b"c9 s=\"a\xffb\" ".as_slice(), time.to_string().as_bytes()].concat(), time);
    bad.stricter = Some("invalid UTF-8");
    utf8.lines.push(bad);
    let trailing = same(g, "ns", "c9 h=2 {t}");
    utf8.lines.push(trailing);
    requests.push(utf8);
    requests
}
