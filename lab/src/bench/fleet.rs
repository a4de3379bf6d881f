//! The event's entrants riding, as the progress service reports them: every entrant's
//! progress every 10 s (a tenth of them each second), and one followed rider's every second.

use anyhow::Context;
use futures::StreamExt;
use serde_json::{json, Value};

use super::k6::Target;
use crate::stack::{EVENT, EVENT_STARTED_AGO, SERVICE_TOKEN};

/// Posts the entrants' progress to the collector (`POST …/derived`, as the progress service
/// sends it).
pub(super) struct Fleet<'a> {
    http: reqwest::Client,
    target: &'a Target,
    riders: &'a [String],
    code: f64,
    started: i64,
}

/// A progress reading of an entrant `index` riding at their own speed, at `t` (s).
fn progress(index: usize, t: i64, started: i64, code: f64) -> Value {
    let speed = 5.0 + 5.0 * (index as f64 * 0.618_034).fract();
    let along = (t - started) as f64 * speed;
    json!([{
        "metric": "course_progress", "time": t * 1_000, "event": code,
        "current_m": along, "progress_m": along, "to_go_m": 1_000_000.0 - along,
        "from_course_m": 5.0, "off_course": 0, "status": 0, "next_checkpoint": 0,
        "eta_next_p50": t + ((250_000.0 - along) / speed) as i64,
        "eta_finish_p50": t + ((1_000_000.0 - along) / speed * 1.4) as i64,
    }])
}

impl<'a> Fleet<'a> {
    /// The entrants `riders` of the started stack's event.
    ///
    /// # Errors
    /// Never in practice: the event's id is valid.
    pub(super) fn new(target: &'a Target, riders: &'a [String]) -> anyhow::Result<Fleet<'a>> {
        let code = velometry_core::event::status::event_code(
            &velometry_core::ids::EventId::parse(EVENT).context("the fleet's event id")?,
        );
        let now = velometry_core::time::now_nanos() / 1_000_000_000;
        let started = now - EVENT_STARTED_AGO.as_secs() as i64;
        Ok(Fleet { http: reqwest::Client::new(), target, riders, code, started })
    }

    /// Second `second` of the ride: the progress of the tenth of the entrants whose turn it
    /// is, and of `followed` (the first entrant's pace). Returns the readings' time (s).
    ///
    /// # Errors
    /// When the collector refuses any of them.
    pub(super) async fn second(&self, second: usize, followed: Option<&str>) -> anyhow::Result<i64> {
        let t = velometry_core::time::now_nanos() / 1_000_000_000;
        let share = self.riders.len().div_ceil(10);
        let mut posts: Vec<(usize, &str)> = self
            .riders
            .iter()
            .enumerate()
            .skip((second % 10) * share)
            .take(share)
            .map(|(index, r)| (index, r.as_str()))
            .filter(|(_, r)| Some(*r) != followed)
            .collect();
        if let Some(followed) = followed {
            posts.push((0, followed));
        }
        let requests = posts.into_iter().map(|(index, rider)| {
            let request = self
                .http
                .post(format!("{}/v1/events/{EVENT}/riders/{rider}/derived", self.target.collector))
                .header("Authorization", format!("Token {SERVICE_TOKEN}"))
                .json(&progress(index, t, self.started, self.code));
            async move { request.send().await.map(|r| r.status().is_success()).unwrap_or(false) }
        });
        let sent: Vec<bool> = futures::stream::iter(requests).buffer_unordered(16).collect().await;
        anyhow::ensure!(sent.iter().all(|ok| *ok), "the collector refused progress");
        Ok(t)
    }
}
