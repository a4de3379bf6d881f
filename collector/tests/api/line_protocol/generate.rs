//! Generated lines: every token drawn from valid and invalid fragments (escapes, quotes,
//! backslashes, `time`, duplicates, bad numbers, leniencies, bytes that are not UTF-8),
//! from a seeded RNG, in requests of a few to a few dozen lines.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use velometry_core::lineproto::lines;

/// One line as the test sends it.
#[derive(Debug, Clone)]
pub struct Sent {
    /// What the collector gets.
    pub sent: Vec<u8>,
    /// What InfluxDB gets directly: the same, except where the collector is lenient (a `+`
    /// before a number, a CR before the newline), written as InfluxDB takes it.
    pub direct: Vec<u8>,
    /// The time the line is stored at, if it is: unique to the line.
    pub time: i64,
    /// Why the collector may refuse the line though InfluxDB stores it (a part of its reason).
    pub stricter: Option<&'static str>,
}

impl Sent {
    /// A line the collector must treat as InfluxDB does.
    pub fn same(line: impl Into<Vec<u8>>, time: i64) -> Sent {
        let line = line.into();
        Sent { direct: line.clone(), sent: line, time, stricter: None }
    }
}

/// One request: its precision and its lines.
#[derive(Debug, Clone)]
pub struct Request {
    /// `precision` of the request.
    pub precision: &'static str,
    /// The lines, in order.
    pub lines: Vec<Sent>,
}

/// Nanoseconds per unit of a precision.
pub fn multiplier(precision: &str) -> i64 {
    match precision {
        "u" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => 1,
    }
}

/// Hands out unique times a second apart from `base` (a whole second), and lines.
pub struct Generator {
    rng: StdRng,
    base: i64,
    next: i64,
}

/// A fragment: what the collector gets, and what InfluxDB gets.
type Fragment = (&'static [u8], &'static [u8]);

const fn same(s: &'static str) -> Fragment {
    (s.as_bytes(), s.as_bytes())
}

/// The fragments of one token: those InfluxDB takes, and those it refuses (or reads as
/// another token), drawn one time in sixteen.
struct Pool {
    valid: &'static [Fragment],
    invalid: &'static [Fragment],
}

const MEASUREMENTS: Pool = Pool {
    valid: &[
        same("gm0"),
        same("gm0"),
        same("gm1"),
        same("gm1"),
        same("gm2"),
        same("gm3"),
        same("gm\\ 1"),
        same("gm\\,2"),
        same("gm\\\"3"),
        same("gm\\=4"),
        same("gmé5"),
        same("gm\\\\6"),
        same("gm\"7"),
        same("gm=8"),
        same(" gm0"),
        same("\tgm1"),
    ],
    invalid: &[same(",gm"), same("gm\\"), same("")],
};
const TAG_KEYS: Pool = Pool {
    valid: &[
        same("t"),
        same("t"),
        same("host"),
        same("k\\ 1"),
        same("k\\,2"),
        same("k\\=3"),
        same("k\"4"),
        same("ké"),
    ],
    invalid: &[same("time"), same(""), same("k\\"), same("a=b")],
};
const TAG_VALUES: Pool = Pool {
    valid: &[same("a"), same("b"), same("v\\ 1"), same("v\\,2"), same("v\\=3"), same("v\"4"), same("vé")],
    invalid: &[same("\\\\"), same("a=b"), same(""), same("a\\\\"), same("x y")],
};
const FIELD_KEYS: Pool = Pool {
    valid: &[
        same("f"),
        same("f"),
        same("g"),
        same("g"),
        same("h"),
        same("f\\ k"),
        same("f\\,k"),
        same("f\\=k"),
        same("f\\\"k"),
        same("fé"),
        same("f\"q"),
        same("time"),
    ],
    invalid: &[same("f\\\\"), same("")],
};
const VALUES: Pool = Pool {
    valid: &[
        same("1.5"),
        same("-0"),
        same("-0.0"),
        same(".5"),
        same("5."),
        same("1e5"),
        same("1E+5"),
        same("-1e-320"),
        same("1e-400"),
        same("123456789012345678901234567890"),
        (b"+1", b"1"),
        (b"+1.5", b"1.5"),
        (b"+2i", b"2i"),
        (b"+.5", b".5"),
        same("1i"),
        same("-0i"),
        same("9223372036854775807i"),
        same("-9223372036854775808i"),
        same("t"),
        same("T"),
        same("true"),
        same("True"),
        same("TRUE"),
        same("f"),
        same("False"),
        same("FALSE"),
        same("\"x\""),
        same("\"\""),
        same("\"a b,c=d\""),
        same("\"a\\\"b\""),
        same("\"a\\\\\""),
        same("\"a\\b\""),
        same("\"line1\nline2\""),
        same("\"x\"y"),
        same("\"é\""),
    ],
    invalid: &[
        same("1e400"),
        same("0x10"),
        same("NaN"),
        same("-"),
        same("1.5.5"),
        same("9223372036854775808i"),
        same("1.0i"),
        same("1u"),
        same("tRUE"),
        same("tru"),
        same("\"open"),
        same("1x"),
        same("i"),
        same("abc"),
    ],
};
/// A string value that is not UTF-8: InfluxDB stores it, the collector refuses the line.
/// Such lines get a measurement of their own, so that the fields InfluxDB creates for
/// them meet no other line.
const NOT_UTF8: Fragment = (b"\"x\xffy\"", b"\"x\xffy\"");
/// Their measurement.
pub const NOT_UTF8_MEASUREMENT: &str = "gutf8";

impl Generator {
    /// A generator from `seed`, handing out times from `base`.
    pub fn new(seed: u64, base: i64) -> Generator {
        Generator { rng: StdRng::seed_from_u64(seed), base, next: 0 }
    }

    /// The next unique time.
    pub fn time(&mut self) -> i64 {
        self.next += 1;
        self.base + self.next * 1_000_000_000
    }

    fn pick(&mut self, pool: &Pool) -> Fragment {
        let fragments = if self.rng.random_bool(1.0 / 16.0) { pool.invalid } else { pool.valid };
        fragments[self.rng.random_range(0..fragments.len())]
    }

    fn value(&mut self) -> (Vec<u8>, Vec<u8>) {
        match self.rng.random_range(0..4) {
            0 => {
                let v = format!("{}", self.rng.random_range(-1e9..1e9_f64));
                (v.clone().into_bytes(), v.into_bytes())
            }
            1 => {
                let v = format!("{}i", self.rng.random_range(i64::MIN / 2..i64::MAX / 2));
                (v.clone().into_bytes(), v.into_bytes())
            }
            _ => {
                let (sent, direct) = self.pick(&VALUES);
                (sent.to_vec(), direct.to_vec())
            }
        }
    }

    /// One request of generated lines, each of which InfluxDB reads as one line, ended by
    /// its newline (an open quote or a last backslash would take the next line in).
    pub fn request(&mut self) -> Request {
        let precision = ["ns", "u", "ms", "s"][self.rng.random_range(0..4)];
        let count = self.rng.random_range(1..40);
        let lines = (0..count).map(|_| self.line(precision)).collect();
        Request { precision, lines }
    }

    fn line(&mut self, precision: &str) -> Sent {
        loop {
            let candidate = self.candidate(precision);
            let one = |b: &[u8]| lines(&[b, b"\nnext f=1"].concat()).count() == 2;
            if one(&candidate.sent) && one(&candidate.direct) {
                return candidate;
            }
        }
    }

    fn candidate(&mut self, precision: &str) -> Sent {
        let (mut sent, mut direct) = (Vec::new(), Vec::new());
        let mut push = |(s, d): (&[u8], &[u8])| {
            sent.extend_from_slice(s);
            direct.extend_from_slice(d);
        };
        let utf8 = !self.rng.random_bool(0.03);
        if !utf8 {
            push(same(NOT_UTF8_MEASUREMENT));
        } else if self.rng.random_bool(0.5) {
            // One of many measurements, whose fields are new more often.
            let name = format!("gn{}", self.rng.random_range(0..300));
            push((name.as_bytes(), name.as_bytes()));
        } else {
            push(self.pick(&MEASUREMENTS));
        }
        for _ in 0..self.rng.random_range(0..3) {
            push((b",", b","));
            push(self.pick(&TAG_KEYS));
            push((b"=", b"="));
            push(self.pick(&TAG_VALUES));
        }
        push(if self.rng.random_bool(0.1) { (b"  ", b"  ") } else { (b" ", b" ") });
        for i in 0..self.rng.random_range(1..5) {
            if i > 0 {
                push((b",", b","));
            }
            let key = self.pick(&FIELD_KEYS);
            push(key);
            push((b"=", b"="));
            let (s, d) = if i == 0 && !utf8 {
                (NOT_UTF8.0.to_vec(), NOT_UTF8.1.to_vec())
            } else {
                let (s, d) = self.value();
                // After a key ending in a backslash InfluxDB reads no value at the `=`: a
                // `+` there is refused by both, so InfluxDB gets it as sent.
                if key.0.ends_with(b"\\") {
                    (s.clone(), s)
                } else {
                    (s, d)
                }
            };
            push((s.as_slice(), d.as_slice()));
        }
        let time = self.time();
        let mult = multiplier(precision);
        // A sub-second part the precision keeps, so the timestamps are not all round.
        let sub = self.rng.random_range(0..1_000_000_000 / mult) * mult;
        let ts = ((time + sub) / mult).to_string();
        match self.rng.random_range(0..20) {
            0 => push((format!(" +{ts}").as_bytes(), format!(" {ts}").as_bytes())),
            1 => push((format!(" {ts}x").as_bytes(), format!(" {ts}x").as_bytes())),
            2 => push((format!(" {ts} x").as_bytes(), format!(" {ts} x").as_bytes())),
            3 => push((format!("  {ts}  ").as_bytes(), format!("  {ts}  ").as_bytes())),
            _ => push((format!(" {ts}").as_bytes(), format!(" {ts}").as_bytes())),
        }
        if self.rng.random_bool(0.05) {
            sent.push(b'\r');
        }
        let stricter = std::str::from_utf8(&sent).is_err().then_some("invalid UTF-8");
        Sent { sent, direct, time: time + sub, stricter }
    }
}
