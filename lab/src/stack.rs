//! The stack a run works on: InfluxDB, NATS and the three services as real processes, on
//! free ports, with every data directory under one temporary folder.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use tempfile::TempDir;
use velometry_core::testkit::{InfluxServer, NatsServer, RidersToml, Service};

/// Who rides: `riders` public riders named `r0`, `r1`, …, each with `devices` devices, all
/// of them entrants of the event [`EVENT`] (a 1,000 km course with three checkpoints,
/// started an hour before the stack), whose progress the service [`SERVICE_TOKEN`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    pub riders: usize,
    pub devices: usize,
}

impl Fleet {
    /// The rider ids.
    pub fn riders(self) -> Vec<String> {
        (0..self.riders).map(|r| format!("r{r}")).collect()
    }

    /// Every device's token, rider by rider. Tokens of a throwaway stack, made up here.
    pub fn tokens(self) -> Vec<String> {
        (0..self.riders).flat_map(|r| (0..self.devices).map(move |d| token(r, d))).collect()
    }

    /// The token of the first device of each rider.
    pub fn first_tokens(self) -> Vec<String> {
        (0..self.riders).map(|r| token(r, 0)).collect()
    }

    fn riders_file(self, start: velometry_core::time::Nanos) -> String {
        let mut file = RidersToml::new()
            .service("progress", SERVICE_TOKEN, &[EVENT])
            .raw(&event_toml(self.riders, start));
        for r in 0..self.riders {
            file = file.rider(&format!("r{r}"), &format!("Rider {r}"), true).max_hr(185);
            for d in 0..self.devices {
                file = file.device(&format!("d{d}"), &token(r, d));
            }
        }
        file.build()
    }
}

/// The event every rider of the fleet rides.
pub const EVENT: &str = "bench";

/// The token of the fleet's progress service (`[[service]]`), made up here like the others.
pub const SERVICE_TOKEN: &str = "velo_lab_progress";

/// The start of [`EVENT`], relative to when the stack starts.
pub const EVENT_STARTED_AGO: std::time::Duration = std::time::Duration::from_secs(3_600);

fn event_toml(riders: usize, start: velometry_core::time::Nanos) -> String {
    let entrants: Vec<String> = (0..riders).map(|r| format!("\"r{r}\"")).collect();
    format!(
        "[[event]]\nid = \"{EVENT}\"\nname = \"Benchmark race\"\ncourse = \"course.gpx\"\npublic = true\n\
         start = \"{}\"\nriders = [{}]\n\
         [[event.checkpoint]]\nname = \"CP1\"\ndistance_km = 250\n\
         [[event.checkpoint]]\nname = \"CP2\"\ndistance_km = 500\n\
         [[event.checkpoint]]\nname = \"CP3\"\ndistance_km = 750\n",
        velometry_core::time::format_rfc3339(start),
        entrants.join(", ")
    )
}

fn token(rider: usize, device: usize) -> String {
    format!("velo_lab_r{rider}_d{device}")
}

/// A service binary of this workspace, from the folder this program runs from.
///
/// # Errors
/// When it is not there.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let path =
        exe.parent().map(|dir| dir.join(name)).ok_or_else(|| anyhow!("no folder for {}", exe.display()))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(anyhow!(
            "{} is missing: build the services next to velometry-lab first (cargo build --release --bins)",
            path.display()
        ))
    }
}

/// Everything running. Dropping it stops every process.
pub struct Stack {
    pub influx: InfluxServer,
    pub nats: NatsServer,
    pub collector: Service,
    pub query: Service,
    pub streams: Vec<Service>,
    pub fleet: Fleet,
    dir: TempDir,
}

impl Stack {
    /// Starts InfluxDB (with `cache-snapshot-memory-size` = `influx_cache_snapshot`), NATS,
    /// the collector, the query service and `stream_replicas` hubs.
    ///
    /// # Errors
    /// When a binary is missing or a process does not come up.
    pub async fn start(
        fleet: Fleet,
        stream_replicas: usize,
        influx_cache_snapshot: &str,
    ) -> anyhow::Result<Stack> {
        let influx =
            InfluxServer::start_with_cache_snapshot(influx_cache_snapshot).await.map_err(|e| anyhow!(e))?;
        let nats = NatsServer::start().await.map_err(|e| anyhow!(e))?;
        let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
        let riders = dir.path().join("riders.toml");
        let course = velometry_core::testkit::courses::winding(5, 1_000_000.0);
        let points: Vec<(f64, f64, Option<f64>)> =
            course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
        velometry_core::testkit::courses::write_course_gpx(
            &dir.path().join("course.gpx"),
            "bench",
            &points,
            &[],
        )
        .map_err(|e| anyhow!(e))?;
        let start = velometry_core::time::now_nanos()
            - i64::try_from(EVENT_STARTED_AGO.as_nanos()).unwrap_or(i64::MAX);
        std::fs::write(&riders, fleet.riders_file(start)).context("cannot write the riders file")?;
        let serve = |extra: Vec<String>| {
            let mut args = vec![
                "serve".to_owned(),
                "--listen=127.0.0.1:0".into(),
                "--metrics-listen=127.0.0.1:0".into(),
                format!("--riders={}", riders.display()),
            ];
            args.extend(extra);
            args
        };
        let start = |name: &'static str, args: Vec<String>| async move {
            Service::start(binary(name)?, args).await.map_err(|e| anyhow!("{name}: {e}"))
        };
        let collector = start(
            "collector",
            serve(vec![
                format!("--influx-url={}", influx.url),
                format!("--nats-url={}", nats.url),
                format!("--wal-dir={}", wal_dir(dir.path()).display()),
                // InfluxDB runs on this host: compressing for it only costs CPU.
                "--influx-gzip=false".into(),
            ]),
        )
        .await?;
        // Thousands of spectators hold thousands of keep-alive connections (the spectators
        // scenario); a deployment for them raises the cap the same way.
        let query = start(
            "query",
            serve(vec![format!("--influx-url={}", influx.url), "--max-connections=16384".into()]),
        )
        .await?;
        let mut streams = Vec::new();
        for _ in 0..stream_replicas {
            let hub = start(
                "stream",
                serve(vec![
                    format!("--nats-url={}", nats.url),
                    format!("--query-url={}", query.url),
                    "--tile-url=none".into(),
                ]),
            )
            .await?;
            hub.wait_ready().await.map_err(|e| anyhow!("stream: {e}"))?;
            streams.push(hub);
        }
        Ok(Stack { influx, nats, collector, query, streams, fleet, dir })
    }

    /// The collector's write-ahead log folder.
    pub fn wal_dir(&self) -> PathBuf {
        wal_dir(self.dir.path())
    }
}

fn wal_dir(root: &Path) -> PathBuf {
    root.join("wal")
}
