//! The spectator page in a real browser against the real stack: three riders of a race on
//! a simulated course (one of them private) and one on a solo ride, their fixes sent through
//! the real collector, their progress derived by the real progress service, the page served
//! by the real stream hub and reading the real query service.
//!
//! A test binary of its own: cargo runs test binaries one after another, so these two (each
//! a whole stack and a Chromium) never share the machine with the dashboards' tests.

#[path = "../e2e/helpers.rs"]
#[allow(dead_code, reason = "shared with tests/e2e, which uses the rest")]
mod helpers;

use serde_json::{json, Value};
use velometry_collector::simulate::course::{ride, RideOptions, SimFix};
use velometry_core::testkit::{courses, post_readings, wait_until, write_course_gpx, RidersToml};
use velometry_core::time::{now_nanos, Nanos};

use helpers::Stack;
use velometry_core::testkit::browser::{Browser, Page, Screen};

const S: Nanos = 1_000_000_000;
const MINUTE: Nanos = 60 * S;
const TOKENS: [(&str, &str); 4] = [
    ("alice", "velo_web_alice"),
    ("bob", "velo_web_bob"),
    ("carol", "velo_web_carol"),
    ("dave", "velo_web_dave"),
];
const VIEWER: &str = "velo_web_viewer_of_carol";
/// Alice's last heart rate, sent a few seconds before the page opens.
const LAST_BPM: u32 = 151;

fn token(rider: &str) -> &'static str {
    TOKENS.iter().find(|(r, _)| *r == rider).map(|(_, t)| *t).expect("a rider of the test")
}

/// A race two hours old: Alice, Bob and Carol (private) ride the event; Dave rides alone.
struct Race {
    stack: Stack,
    http: reqwest::Client,
    /// Each entrant's fixes not sent yet (the rest of their ride), by rider.
    rest: Vec<(&'static str, Vec<SimFix>)>,
}

impl Race {
    async fn start() -> Race {
        let now = now_nanos() / S * S;
        let starts =
            [("alice", now - 120 * MINUTE), ("bob", now - 110 * MINUTE), ("carol", now - 100 * MINUTE)];
        let course = courses::out_and_back(1);
        let stack = Stack::start_with(|dir| {
            let points: Vec<_> = course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
            write_course_gpx(&dir.join("course.gpx"), "Out and back", &points, &[]).expect("course file");
            let mut riders = RidersToml::new();
            for (rider, name, public) in [
                ("alice", "Alice", true),
                ("bob", "Bob", true),
                ("carol", "Carol", false),
                ("dave", "Dave", true),
            ] {
                riders = riders.rider(rider, name, public).max_hr(190).device("phone", token(rider));
            }
            let starts: String = starts
                .iter()
                .map(|(r, t)| format!("{r} = \"{}\"\n", velometry_core::time::format_rfc3339(*t)))
                .collect();
            riders.viewer("carol's family", VIEWER, &["carol"]).raw(&format!(
                "[[event]]\nid = \"tour\"\nname = \"The Tour\"\npublic = true\ncourse = \"course.gpx\"\n\
                 riders = [\"alice\", \"bob\", \"carol\"]\n[event.starts]\n{starts}\
                 [[event.checkpoint]]\nname = \"Col\"\ndistance_km = 20\n\
                 [[event.checkpoint]]\nname = \"Turn\"\ndistance_km = 40\n"
            ))
        })
        .await;
        let http = reqwest::Client::new();
        let mut rest = Vec::new();
        let mut expected = Vec::new();
        for (i, (rider, start)) in starts.into_iter().enumerate() {
            let mut options = RideOptions::new(10 + i as u64, start);
            (options.dropouts, options.detours, options.stops) = (false, false, false);
            let fixes = ride(&course, &options).fixes;
            let (sent, later): (Vec<SimFix>, Vec<SimFix>) =
                fixes.into_iter().partition(|f| f.time < now - MINUTE);
            // Alice's sensors too, beside each fix: heart rate, power and cadence.
            let readings: Vec<Value> = sent
                .iter()
                .flat_map(|f| {
                    let (t, wave) = (f.time / 1_000_000, (f.time as f64 / 6e11).sin());
                    let mut r = vec![f.reading_at(f.time)];
                    if rider == "alice" {
                        r.push(
                            json!({"metric": "heart_rate", "time": t, "bpm": (135.0 + 12.0 * wave).round()}),
                        );
                        r.push(json!({"metric": "power", "time": t, "watts": (190.0 + 40.0 * wave).round()}));
                        r.push(json!({"metric": "cadence", "time": t, "rpm": (84.0 + 6.0 * wave).round()}));
                    }
                    r
                })
                .collect();
            post_readings(&http, &stack.collector.url, token(rider), &readings).await;
            expected.push((rider, sent.len()));
            rest.push((rider, later));
        }
        // Dave's solo ride: the last half hour, with heart rate.
        let mut options = RideOptions::new(20, now - 30 * MINUTE);
        (options.dropouts, options.detours, options.stops) = (false, false, false);
        let dave: Vec<Value> = ride(&courses::loop_course(2), &options)
            .fixes
            .iter()
            .take_while(|f| f.time < now)
            .flat_map(|f| {
                [
                    f.reading_at(f.time),
                    json!({"metric": "heart_rate", "time": f.time / 1_000_000, "bpm": 130}),
                ]
            })
            .collect();
        post_readings(&http, &stack.collector.url, token("dave"), &dave).await;
        let influx = &stack.influx;
        wait_until("the progress of every fix sent", std::time::Duration::from_millis(500), || async {
            for (rider, fixes) in &expected {
                let q = format!(
                    "SELECT count(\"progress_m\") FROM \"course_progress\" WHERE \"rider\" = '{rider}'"
                );
                let rows = influx.rows("velometry", &q).await.unwrap_or_default();
                let n = rows.first().and_then(|r| r["count"].as_u64()).unwrap_or(0) as usize;
                if n < *fixes {
                    return Err(format!("{rider}: {n} of {fixes}"));
                }
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\nprogress: {}", stack.progress.logs()));
        Race { stack, http, rest }
    }

    /// Sends the next fix of `rider`'s ride, stamped now; gives its time in epoch ms.
    async fn next_fix(&mut self, rider: &str) -> i64 {
        let (_, rest) = self.rest.iter_mut().find(|(r, _)| *r == rider).expect("an entrant");
        let fix = rest.remove(0);
        let now = now_nanos() / 1_000_000 * 1_000_000;
        post_readings(&self.http, &self.stack.collector.url, token(rider), &[fix.reading_at(now)]).await;
        now / 1_000_000
    }

    async fn api(&self, path: &str, token: Option<&str>) -> Value {
        let mut request = self.http.get(format!("{}{path}", self.stack.query.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("the query service answers");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.expect("JSON")
    }

    fn page(&self, query: &str) -> String {
        format!("{}/?{query}", self.stack.stream.url)
    }
}

/// Where the screenshots go, for review.
fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// Kilometres as the page writes them.
fn km(m: f64) -> String {
    if m >= 100_000.0 {
        format!("{:.0} km", m / 1000.0)
    } else {
        format!("{:.1} km", m / 1000.0)
    }
}

/// The standings as the page shows them: (rider, distance text), top to bottom.
async fn shown(page: &mut Page) -> Vec<(String, String)> {
    let rows = page
        .eval("[...document.querySelectorAll('#standings tbody tr')].map(r => [r.dataset.rider, r.querySelector('.distance').textContent])")
        .await;
    serde_json::from_value(rows).expect("rows")
}

/// The standings an API answer holds, as the page would write them.
fn expected(answer: &Value) -> Vec<(String, String)> {
    answer["standings"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (r["rider"].as_str().expect("rider").to_owned(), km(r["distance_m"].as_f64().unwrap_or(0.0)))
        })
        .collect()
}

/// axe-core's serious and critical findings on the page as it is.
async fn accessibility(page: &mut Page) -> Vec<Value> {
    let axe = std::fs::read_to_string(
        std::path::Path::new(velometry_stream::page::NODE_MODULES).join("axe-core/axe.min.js"),
    )
    .expect("axe-core, installed by the stream hub's build");
    page.eval(&axe).await;
    let found = page
        .eval("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.html)})))")
        .await;
    found.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_view_shows_the_race_live_and_back_in_time_on_a_phone_and_a_desktop() {
    let mut race = Race::start().await;
    let browser = Browser::start().await;

    // The standings are what the query service answers, with nothing of the private rider.
    let mut page = browser.open(&race.page("event=tour"), Screen::Desktop).await;
    page.ready().await;
    page.wait_for("two rows", "document.querySelectorAll('#standings tbody tr').length === 2").await;
    let answer = race.api("/v1/events/tour/standings", None).await;
    assert_eq!(shown(&mut page).await, expected(&answer));
    let text = page.eval("document.body.innerText").await;
    assert!(!text.as_str().expect("text").contains("Carol"), "a private rider on a public page: {text}");
    assert_eq!(page.eval("document.querySelectorAll('#checkpoints tbody tr').length").await, json!(3));
    assert_eq!(
        page.eval("document.querySelector('#checkpoints tbody tr td').textContent").await,
        json!("Col")
    );
    assert!(page.eval("!!document.querySelector('#map canvas')").await == json!(true), "the map is drawn");
    page.wait_for("the live feed", "document.getElementById('status').textContent === 'live'").await;

    // Clicking a rider selects them everywhere, and the URL keeps the choice.
    page.eval("document.querySelector('#standings tr[data-rider=\"bob\"]').click()").await;
    assert_eq!(page.eval("document.querySelector('#standings tr.on').dataset.rider").await, json!("bob"));
    assert!(page
        .eval("document.getElementById('selected').textContent")
        .await
        .as_str()
        .is_some_and(|t| t.starts_with("Bob")));
    assert!(page.eval("location.search").await.as_str().is_some_and(|s| s.contains("select=bob")));
    let findings = accessibility(&mut page).await;
    assert!(findings.is_empty(), "accessibility: {findings:#?}");
    page.screenshot(&screenshots(), "event").await;

    // A fix reaches the page through the hub alone: the query service is down meanwhile.
    race.stack.query.kill().await;
    let at = race.next_fix("alice").await;
    let row = "document.querySelector('#standings tr[data-rider=\"alice\"]')";
    page.wait_for("Alice's new fix, live", &format!("{row}.dataset.fix === '{at}'")).await;

    // A restarted hub: the page reconnects by itself, subscribes again, and follows on.
    race.stack.stream.restart().await.expect("the hub restarts");
    page.wait_for("a second connection", "document.body.dataset.connects === '2'").await;
    page.wait_for("the live feed again", "document.getElementById('status').textContent === 'live'").await;
    let at = race.next_fix("bob").await;
    page.wait_for(
        "Bob's new fix, after the restart",
        &format!("document.querySelector('#standings tr[data-rider=\"bob\"]').dataset.fix === '{at}'"),
    )
    .await;
    race.stack.query.restart().await.expect("the query service restarts");

    // The start page lists what a visitor may follow, and nothing private.
    page.goto(&race.page("")).await;
    page.ready().await;
    let listed = page.eval("[...document.querySelectorAll('#view li a')].map(a => a.textContent)").await;
    assert_eq!(listed, json!(["The Tour", "Alice", "Bob", "Dave"]));

    // A viewer of Carol sees her too.
    page.goto(&race.page(&format!("event=tour&token={VIEWER}"))).await;
    page.ready().await;
    page.wait_for("three rows", "document.querySelectorAll('#standings tbody tr').length === 3").await;
    assert!(page.eval("document.body.innerText").await.as_str().is_some_and(|t| t.contains("Carol")));

    // The replay: an hour ago, as history held it.
    let then = now_nanos() / 1_000_000 - 3_600_000;
    page.goto(&race.page(&format!("event=tour&at={then}"))).await;
    page.ready().await;
    let answer = race.api(&format!("/v1/events/tour/standings?at={then}"), None).await;
    page.wait_for(
        "the standings of an hour ago",
        "document.querySelector('.asof').textContent.startsWith('Replay')",
    )
    .await;
    assert_eq!(shown(&mut page).await, expected(&answer));
    assert!(page.requests.iter().any(|u| u.contains(&format!("standings?at={then}"))), "{:?}", page.requests);
    page.screenshot(&screenshots(), "replay").await;

    // On a phone.
    let mut phone = browser.open(&race.page("event=tour&select=alice"), Screen::Phone).await;
    phone.ready().await;
    phone.wait_for("two rows", "document.querySelectorAll('#standings tbody tr').length === 2").await;
    let width = phone.eval("document.documentElement.scrollWidth").await;
    assert_eq!(width, json!(360), "nothing wider than the phone's screen");
    let findings = accessibility(&mut phone).await;
    assert!(findings.is_empty(), "accessibility on a phone: {findings:#?}");
    phone.screenshot(&screenshots(), "event").await;
    assert!(page.errors.is_empty() && phone.errors.is_empty(), "{:?} {:?}", page.errors, phone.errors);

    // On a 4K wall screen: the same view, filling it.
    let mut wall = browser.open(&race.page("event=tour&select=alice"), Screen::Wall).await;
    wall.ready().await;
    wall.wait_for("two rows", "document.querySelectorAll('#standings tbody tr').length === 2").await;
    let (scroll, client) = (
        wall.eval("document.documentElement.scrollWidth").await,
        wall.eval("document.documentElement.clientWidth").await,
    );
    assert!(
        scroll.as_f64() <= client.as_f64() && client.as_f64() > Some(3_800.0),
        "nothing wider than the wall screen: {scroll} of {client} pixels"
    );
    let map = wall.eval("document.getElementById('map').getBoundingClientRect().width").await;
    assert!(map.as_f64().is_some_and(|w| w > 1_500.0), "the map uses the wall's width: {map}");
    wall.screenshot(&screenshots(), "event").await;
    assert!(wall.errors.is_empty(), "{:?}", wall.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rider_view_shows_live_values_and_charts_that_ask_again_at_every_zoom() {
    let race = Race::start().await;
    let browser = Browser::start().await;
    // Alice's last minute: heart rate, power and cadence, live.
    let now = now_nanos() / 1_000_000;
    let readings: Vec<Value> = (0..6)
        .flat_map(|i| {
            let t = now - 50_000 + i * 10_000;
            [
                json!({"metric": "heart_rate", "time": t, "bpm": LAST_BPM - 5 + i as u32}),
                json!({"metric": "power", "time": t, "watts": 200 + i}),
                json!({"metric": "cadence", "time": t, "rpm": 85}),
            ]
        })
        .collect();
    post_readings(&race.http, &race.stack.collector.url, token("alice"), &readings).await;

    let mut page = browser.open(&race.page("event=tour&rider=alice"), Screen::Desktop).await;
    page.ready().await;
    page.wait_for(
        "the last heart rate",
        &format!("document.querySelector('b.hr').textContent === '{LAST_BPM}'"),
    )
    .await;
    page.wait_for("the last power", "document.querySelector('b.power').textContent === '205'").await;
    let answer = race.api("/v1/events/tour/standings", None).await;
    let alice =
        answer["standings"].as_array().expect("rows").iter().find(|r| r["rider"] == "alice").expect("Alice");
    let distance = km(alice["distance_m"].as_f64().expect("distance"));
    page.wait_for(
        "her distance",
        &format!("document.querySelector('b.distance').textContent === '{distance}'"),
    )
    .await;

    // The heart-rate chart asked for as many points as it is wide.
    let chart = "document.querySelector('.series[data-metric=\"heart_rate\"] .u-over')";
    let (_, first) = settled(&mut page, chart, |_| true).await;

    // Drag across the middle of the chart: the page asks again, for the new range, at the
    // chart's width.
    let rect = page
        .eval(&format!(
            "{chart}.scrollIntoView({{block: 'center'}}); (r => [r.left, r.top, r.width, r.height])({chart}.getBoundingClientRect())"
        ))
        .await;
    let rect: Vec<f64> = serde_json::from_value(rect).expect("a rectangle");
    page.drag(rect[0] + rect[2] * 0.25, rect[0] + rect[2] * 0.5, rect[1] + rect[3] / 2.0).await;
    let whole = first.1 - first.0;
    let (_, zoomed) =
        settled(&mut page, chart, |(from, to, _)| to - from < whole / 3 && *from > first.0).await;
    page.wait_for("the range in the URL", &format!("location.search.includes('from={}')", zoomed.0)).await;
    assert!(page.eval("!!document.querySelector('.exports a[href*=\"export.gpx\"]')").await == json!(true));
    let findings = accessibility(&mut page).await;
    assert!(findings.is_empty(), "accessibility: {findings:#?}");
    page.screenshot(&screenshots(), "rider").await;

    // A solo ride has the rider view alone; a private rider needs the viewer's token.
    page.goto(&race.page("rider=dave")).await;
    page.ready().await;
    page.wait_for("Dave's heart rate", "document.querySelector('b.hr').textContent === '130'").await;
    assert_eq!(page.eval("document.getElementById('title').textContent").await, json!("Dave"));
    page.goto(&race.page("rider=carol")).await;
    let state = page.wait_for("the page to say", "document.body.dataset.ready ?? null").await;
    assert_eq!(state, json!("error"));
    let said = page.eval("document.getElementById('view').textContent").await;
    assert!(said.as_str().is_some_and(|s| s.contains("viewer token") && !s.contains("Carol")), "{said}");
    page.goto(&race.page(&format!("rider=carol&event=tour&token={VIEWER}"))).await;
    page.ready().await;
    assert_eq!(page.eval("document.getElementById('title').textContent").await, json!("Carol"));

    let mut phone = browser.open(&race.page("event=tour&rider=alice"), Screen::Phone).await;
    phone.ready().await;
    phone
        .wait_for(
            "the last heart rate",
            &format!("document.querySelector('b.hr').textContent === '{LAST_BPM}'"),
        )
        .await;
    assert_eq!(phone.eval("document.documentElement.scrollWidth").await, json!(360));
    let findings = accessibility(&mut phone).await;
    assert!(findings.is_empty(), "accessibility of the rider view on a phone: {findings:#?}");
    phone.screenshot(&screenshots(), "rider").await;
    assert!(page.errors.is_empty() && phone.errors.is_empty(), "{:?} {:?}", page.errors, phone.errors);
}

/// The heart-rate series the page asked for: (from, to, max_points).
fn series_requests(page: &Page) -> Vec<(i64, i64, i64)> {
    page.requests
        .iter()
        .filter(|u| u.contains("/series/heart_rate?"))
        .map(|u| {
            let q = url_query(u);
            let n = |k: &str| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(-1);
            (n("from"), n("to"), n("max_points"))
        })
        .collect()
}

/// Waits until the page's latest heart-rate series request is one `wanted` accepts and asks
/// for as many points as `chart` is wide (a chart that changes width asks again); gives the
/// width and that request.
async fn settled(
    page: &mut Page,
    chart: &str,
    wanted: impl Fn(&(i64, i64, i64)) -> bool,
) -> (i64, (i64, i64, i64)) {
    let width_now = format!("{chart} && Math.round({chart}.getBoundingClientRect().width)");
    let deadline = std::time::Instant::now() + velometry_core::testkit::PATIENCE;
    loop {
        let width = page.eval(&width_now).await.as_i64().unwrap_or(0);
        let asked = series_requests(page);
        if let Some(last) = asked.last().filter(|r| wanted(r) && width > 0 && (r.2 - width).abs() <= 1) {
            return (width, *last);
        }
        assert!(std::time::Instant::now() < deadline, "never asked for {width} points: {asked:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The query string of a URL, decoded.
fn url_query(url: &str) -> std::collections::HashMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
                .collect()
        })
        .unwrap_or_default()
}
