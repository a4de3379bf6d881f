//! The live-tracking page scraper: for tracking sites that show a rider's position on a web
//! page and offer no API. CSS selectors name where the position, the time, the speed and
//! the heart rate are on the page:
//!
//! ```toml
//! [[source]]
//! name = "tracker"
//! kind = "scraper"
//! rider = "alice"
//! every = "1m"
//! url = "https://tracking.example/riders/42"
//! position = "#position"        # text holding "lat, lon"; or lat = "…" and lon = "…"
//! time = "#updated"             # text holding the fix's time
//! time_format = "%d/%m/%Y %H:%M:%S"   # or "rfc3339"; patterns are read as UTC
//! speed = ".speed"              # optional; the first number in its text
//! speed_unit = "kmh"            # kmh (default), ms, knots
//! heart_rate = ".hr"            # optional
//! ```
//!
//! A page whose fix has not changed writes nothing. A selector that no longer matches (the
//! site changed its layout) fails the run with the selector named, rather than writing
//! zeros; so does a page whose text no longer reads as numbers or a time.

use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::Value;
use velometry_core::reading::{Metric, Reading};
use velometry_core::time::{now_nanos, Nanos};

use super::Failure;

/// The `source` tag of its readings.
pub const KIND: &str = "scraper";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    position: Option<String>,
    lat: Option<String>,
    lon: Option<String>,
    time: String,
    #[serde(default = "rfc3339")]
    time_format: String,
    speed: Option<String>,
    #[serde(default = "kmh")]
    speed_unit: String,
    heart_rate: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

fn rfc3339() -> String {
    "rfc3339".into()
}

fn kmh() -> String {
    "kmh".into()
}

/// A selector with the text it was written as, for messages.
#[derive(Debug)]
struct Named {
    text: String,
    selector: Selector,
}

impl Named {
    fn parse(key: &str, text: &str) -> Result<Named, String> {
        let selector =
            Selector::parse(text).map_err(|e| format!("{key} {text:?} is not a CSS selector: {e}"))?;
        Ok(Named { text: text.to_owned(), selector })
    }

    /// The text of the first element it matches.
    fn text(&self, page: &Html) -> Result<String, Failure> {
        page.select(&self.selector).next().map(|e| e.text().collect::<String>().trim().to_owned()).ok_or_else(
            || {
                Failure::BadResponse(format!(
                    "the page layout changed: selector {:?} matches nothing",
                    self.text
                ))
            },
        )
    }
}

/// Where the position is.
#[derive(Debug)]
enum Position {
    /// One element with "lat, lon".
    Together(Named),
    /// Two elements.
    Apart(Named, Named),
}

/// A configured scraper.
#[derive(Debug)]
pub struct Scraper {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    position: Position,
    time: Named,
    time_format: Option<String>,
    speed: Option<(Named, f64)>,
    heart_rate: Option<Named>,
}

/// What a page says.
#[derive(Debug, Clone, PartialEq)]
struct Fix {
    time: Nanos,
    lat: f64,
    lon: f64,
    speed: Option<f64>,
    bpm: Option<f64>,
}

impl Scraper {
    /// Reads the kind's settings.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_config(value: toml::Value) -> Result<Scraper, String> {
        let c: Config = value.try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
        reqwest::Url::parse(&c.url).map_err(|e| format!("url {:?}: {e}", c.url))?;
        let position = match (&c.position, &c.lat, &c.lon) {
            (Some(p), None, None) => Position::Together(Named::parse("position", p)?),
            (None, Some(lat), Some(lon)) => {
                Position::Apart(Named::parse("lat", lat)?, Named::parse("lon", lon)?)
            }
            _ => {
                return Err("give either position (one element with \"lat, lon\") or both lat and lon".into())
            }
        };
        let factor = match c.speed_unit.as_str() {
            "kmh" => 1.0 / 3.6,
            "ms" => 1.0,
            "knots" => 0.514_444,
            other => return Err(format!("speed_unit {other:?} is not kmh, ms or knots")),
        };
        let time_format = match c.time_format.as_str() {
            "rfc3339" => None,
            pattern if pattern.contains('%') => Some(pattern.to_owned()),
            other => return Err(format!("time_format {other:?} is not rfc3339 or a strftime pattern")),
        };
        let http = super::http_client()?;
        Ok(Scraper {
            http,
            url: c.url,
            headers: c.headers.into_iter().collect(),
            position,
            time: Named::parse("time", &c.time)?,
            time_format,
            speed: c.speed.map(|s| Named::parse("speed", &s).map(|n| (n, factor))).transpose()?,
            heart_rate: c.heart_rate.map(|s| Named::parse("heart_rate", &s)).transpose()?,
        })
    }

    /// One run.
    pub(super) async fn run(&self, state: &mut Value) -> Result<Vec<Reading>, Failure> {
        let mut request = self.http.get(&self.url);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| Failure::Network(e.to_string()))?;
        if let Some(failure) = Failure::of_status(&response) {
            return Err(failure);
        }
        let body = response.text().await.map_err(|e| Failure::Network(e.to_string()))?;
        let fix = self.read(&body)?;
        let last = state.get("time").and_then(Value::as_i64);
        if last.is_some_and(|t| fix.time <= t) {
            return Ok(Vec::new());
        }
        let now = now_nanos();
        let invalid =
            |e: velometry_core::reading::ReadingError| Failure::BadResponse(format!("the page says: {e}"));
        let mut gps = vec![("lat", fix.lat), ("lon", fix.lon)];
        gps.extend(fix.speed.map(|s| ("speed", s)));
        let mut readings = vec![Reading::known(Metric::Gps, fix.time, now, gps).map_err(invalid)?];
        if let Some(bpm) = fix.bpm {
            readings.push(Reading::known(Metric::HeartRate, fix.time, now, [("bpm", bpm)]).map_err(invalid)?);
        }
        *state = serde_json::json!({ "time": fix.time });
        Ok(readings)
    }

    /// The fix on a page.
    fn read(&self, body: &str) -> Result<Fix, Failure> {
        let page = Html::parse_document(body);
        let numbers = |named: &Named| -> Result<Vec<f64>, Failure> {
            let text = named.text(&page)?;
            let found = numbers_in(&text);
            if found.is_empty() {
                Err(Failure::BadResponse(format!("selector {:?} holds no number: {text:?}", named.text)))
            } else {
                Ok(found)
            }
        };
        let (lat, lon) = match &self.position {
            Position::Together(named) => match numbers(named)?.as_slice() {
                [lat, lon, ..] => (*lat, *lon),
                _ => {
                    return Err(Failure::BadResponse(format!(
                        "selector {:?} holds one number, not \"lat, lon\"",
                        named.text
                    )))
                }
            },
            Position::Apart(lat, lon) => (numbers(lat)?[0], numbers(lon)?[0]),
        };
        let text = self.time.text(&page)?;
        let time = match &self.time_format {
            None => velometry_core::time::parse_rfc3339(&text).ok(),
            Some(pattern) => chrono::NaiveDateTime::parse_from_str(&text, pattern)
                .ok()
                .and_then(|t| t.and_utc().timestamp_nanos_opt()),
        }
        .ok_or_else(|| {
            Failure::BadResponse(format!("selector {:?} holds no readable time: {text:?}", self.time.text))
        })?;
        let speed = match &self.speed {
            Some((named, factor)) => Some(numbers(named)?[0] * factor),
            None => None,
        };
        let bpm = match &self.heart_rate {
            Some(named) => Some(numbers(named)?[0]),
            None => None,
        };
        Ok(Fix { time, lat, lon, speed, bpm })
    }
}

/// The decimal numbers in `text`, in order ("45.07, 7.68" → [45.07, 7.68]; "27 km/h" → [27]).
fn numbers_in(text: &str) -> Vec<f64> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let negative = bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if bytes[i].is_ascii_digit() || negative {
            let start = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            if let Ok(v) = text[start..i].parse() {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraper(extra: &str) -> Result<Scraper, String> {
        let text = format!("url = \"http://127.0.0.1:9/r/42\"\ntime = \"#updated\"\n{extra}");
        Scraper::from_config(toml::from_str::<toml::Value>(&text).expect("toml"))
    }

    const PAGE: &str = r#"<html><body><div class="rider">
        <span id="position">45.0703, 7.6869</span>
        <p>Last fix: <time id="updated">2026-11-27T10:00:00Z</time></p>
        <span class="speed">Speed: 27.0 km/h</span><span class="hr">HR 142 bpm</span>
        </div></body></html>"#;

    #[test]
    fn a_page_is_read_through_its_selectors() {
        let s = scraper("position = \"#position\"\nspeed = \".speed\"\nheart_rate = \".hr\"").expect("valid");
        let fix = s.read(PAGE).expect("reads");
        assert_eq!(
            fix,
            Fix {
                time: 1_795_773_600_000_000_000,
                lat: 45.0703,
                lon: 7.6869,
                speed: Some(7.5),
                bpm: Some(142.0)
            }
        );
    }

    #[test]
    fn a_changed_layout_is_a_failure_naming_the_selector_not_zeros() {
        let s = scraper("position = \"#position\"\nheart_rate = \".heart\"").expect("valid");
        let error = s.read(PAGE).expect_err("no .heart on the page").to_string();
        assert!(error.contains("\".heart\" matches nothing"), "{error}");
        let s = scraper("lat = \"#updated\"\nlon = \"#position\"").expect("valid");
        assert!(s.read(&PAGE.replace("2026-11-27T10:00:00Z", "soon")).is_err());
    }

    #[test]
    fn settings_are_checked() {
        assert!(scraper("lat = \"#a\"").expect_err("no lon").contains("both lat and lon"));
        assert!(scraper("position = \"##\"").expect_err("bad css").contains("not a CSS selector"));
        assert!(scraper("position = \"#p\"\nspeed_unit = \"mph\"").expect_err("unit").contains("speed_unit"));
    }

    #[test]
    fn numbers_are_found_in_text() {
        assert_eq!(numbers_in("45.07, -7.68"), vec![45.07, -7.68]);
        assert_eq!(numbers_in("Speed: 27 km/h."), vec![27.0]);
        assert_eq!(numbers_in("none - here"), Vec::<f64>::new());
    }
}
