//! `collector import`: ride files (FIT, GPX, TCX, gzipped or not) into a running collector.
//!
//! The files are read here ([`files`]), every value checked as the collector would check
//! it, then posted to the collector's line-protocol endpoint in large batches with the
//! device's token, like any device: the rider comes from the token and the readings take
//! the same durable path (log, then InfluxDB). Timestamps come from the file, so importing a
//! file twice writes the same points again and leaves the same data.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use velometry_core::reading::Reading;
use velometry_core::time::{format_rfc3339, now_nanos};

pub mod files;

/// Flags of `collector import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The collector to send to (its ingest listener).
    #[arg(long, env = "VELOMETRY_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The device token the readings are sent with; it names the rider and the device.
    #[arg(long, env = "VELOMETRY_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Readings per request.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Read and check the files, say what they hold, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// FIT, GPX or TCX files, optionally gzipped (`ride.fit.gz`). A FIT file cut short (a
    /// bike computer that crashed mid-ride) is imported up to the cut, with a warning saying
    /// what was lost; a corrupt one is refused, and nothing of it is sent.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Imports every file; returns whether all of them went in whole.
///
/// # Errors
/// When the HTTP client cannot be built.
pub async fn run(args: ImportArgs) -> anyhow::Result<bool> {
    let sender = Sender::new(&args.target, &args.token)?;
    let mut all_ok = true;
    for path in &args.files {
        let name = path.display().to_string();
        let file = match files::read(path, now_nanos()) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("error: {e}");
                all_ok = false;
                continue;
            }
        };
        let span = match (file.first, file.last) {
            (Some(a), Some(b)) => format!("{} … {}", format_rfc3339(a), format_rfc3339(b)),
            _ => "no timed records".to_owned(),
        };
        println!("{name} ({:?}): {} records, {span}", file.format, file.records);
        if let Some(damage) = &file.damage {
            eprintln!("warning: {name}: {damage}; the {} records before it are imported", file.records);
        }
        let written = if args.dry_run {
            println!("  {} readings to write (dry run: nothing sent)", file.readings.len());
            Ok(0)
        } else {
            sender.send(&file.readings, args.batch as usize).await
        };
        match written {
            Ok(n) if !args.dry_run => println!("  {n} readings written"),
            Ok(_) => {}
            Err(e) => {
                all_ok = false;
                eprintln!("error: {name}: {e:#}");
            }
        }
        for (reason, count) in &file.skipped {
            println!("  skipped {count} × {reason}");
        }
    }
    Ok(all_ok)
}

/// Posts line protocol to a collector, retrying what can be retried.
struct Sender {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// Attempts per batch before giving up on a collector that keeps failing.
const ATTEMPTS: u32 = 8;

impl Sender {
    fn new(target: &str, token: &str) -> anyhow::Result<Sender> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let url = format!("{}/write?precision=ns&source=import", target.trim_end_matches('/'));
        Ok(Sender { http, url, token: token.to_owned() })
    }

    /// Sends `readings` in batches with a progress bar; returns how many went in.
    async fn send(&self, readings: &[Reading], batch: usize) -> anyhow::Result<usize> {
        let bar = indicatif::ProgressBar::new(readings.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("  [{bar:40}] {pos}/{len} readings {per_sec} {eta}")
                .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
                .progress_chars("=> "),
        );
        let mut written = 0;
        for chunk in readings.chunks(batch) {
            let mut body = Vec::with_capacity(chunk.len() * 64);
            for reading in chunk {
                encode(reading, &mut body);
            }
            self.post(body).await.with_context(|| {
                format!(
                    "stopped after {written} of {} readings (the ones before went in; importing the \
                     file again writes them again, harmlessly)",
                    readings.len()
                )
            })?;
            written += chunk.len();
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(written)
    }

    async fn post(&self, body: Vec<u8>) -> anyhow::Result<()> {
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let response = self
                .http
                .post(&self.url)
                .header(reqwest::header::AUTHORIZATION, format!("Token {}", self.token))
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            let retry_after = match response {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map(Duration::from_secs),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    let hint = match status.as_u16() {
                        401 => " (check --token: it must be a device token from the riders file)",
                        _ => "",
                    };
                    anyhow::bail!("the collector refused a batch with {status}{hint}: {}", text.trim());
                }
                Err(e) if attempt == ATTEMPTS => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot reach the collector at {}", self.url))
                    )
                }
                Err(_) => None,
            };
            tokio::time::sleep(retry_after.unwrap_or(delay)).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        anyhow::bail!("the collector stayed busy (429/503) through {ATTEMPTS} attempts; try again later")
    }
}

/// One line of line protocol for `reading`: its measurement, fields and time (the collector
/// adds the rider, device and source).
fn encode(reading: &Reading, out: &mut Vec<u8>) {
    let mut f = ryu::Buffer::new();
    out.extend_from_slice(reading.metric().name().as_bytes());
    for (i, (name, value)) in reading.fields().enumerate() {
        out.push(if i == 0 { b' ' } else { b',' });
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(f.format(value).as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(reading.time()).as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use velometry_core::reading::Metric;

    use super::*;

    #[test]
    fn readings_become_lines_without_tags() {
        let now = 1_764_237_600_000_000_000;
        let reading = Reading::known(Metric::Gps, now, now, [("lat", 45.5), ("lon", 7.25), ("alt", 300.0)])
            .expect("valid");
        let mut out = Vec::new();
        encode(&reading, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!("gps lat=45.5,lon=7.25,alt=300.0 {now}\n")
        );
    }
}
