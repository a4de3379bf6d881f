//! Starting the whole stack: InfluxDB, NATS, and the four services as their real binaries.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use velometry_core::testkit::{workspace_binary, InfluxServer, NatsServer, RidersToml, Service};

pub const ALICE_PHONE: &str = "velo_e2e_alice_phone";
const PROGRESS_SERVICE: &str = "velo_e2e_progress_service";

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Everything running, on free ports.
pub struct Stack {
    // Held: dropping them stops them.
    pub influx: InfluxServer,
    _nats: NatsServer,
    _dir: TempDir,
    pub collector: Service,
    pub query: Service,
    pub stream: Service,
    pub progress: Service,
}

impl Stack {
    /// Alice, public, in an event of an 80 km out-and-back that began an hour ago.
    pub async fn start() -> Stack {
        Stack::start_with(|dir| {
            // Alice rides an event, so that the progress service has an entrant to follow.
            let course = velometry_core::testkit::courses::out_and_back(1);
            let points: Vec<_> = course.points().iter().map(|p| (p.lat, p.lon, p.ele)).collect();
            velometry_core::testkit::write_course_gpx(&dir.join("course.gpx"), "Out and back", &points, &[])
                .expect("course file");
            RidersToml::new().rider("alice", "Alice", true).max_hr(190).device("phone", ALICE_PHONE).raw(
                &format!(
                "[[event]]\nid = \"e2e\"\ncourse = \"course.gpx\"\nstart = \"{}\"\nriders = [\"alice\"]\n",
                velometry_core::time::format_rfc3339(velometry_core::time::now_nanos() - 3_600_000_000_000)
            ),
            )
        })
        .await
    }

    /// The stack with the riders file `riders` gives (the progress service's token added),
    /// after it has written the files the riders file names into the folder it is given. The
    /// stream hub and the query service listen on ports of their own for their whole life (a
    /// restarted one is where its pages were); the hub serves the spectator page pointing at
    /// the query service, with no map tiles.
    pub async fn start_with(riders: impl FnOnce(&Path) -> RidersToml) -> Stack {
        let influx = InfluxServer::start().await.expect("influxd");
        let nats = NatsServer::start().await.expect("nats");
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = riders(dir.path()).service("progress", PROGRESS_SERVICE, &["*"]).build();
        let riders = dir.path().join("riders.toml");
        std::fs::write(&riders, toml).expect("riders file");
        let riders = format!("--riders={}", riders.display());
        let common = |extra: Vec<String>| {
            let mut args = vec![
                "serve".to_owned(),
                "--listen=127.0.0.1:0".into(),
                "--metrics-listen=127.0.0.1:0".into(),
                riders.clone(),
            ];
            args.extend(extra);
            args
        };
        let collector = Service::start(
            workspace_binary("velometry-collector", "collector").expect("collector"),
            common(vec![
                format!("--influx-url={}", influx.url),
                format!("--nats-url={}", nats.url),
                format!("--wal-dir={}", dir.path().join("wal").display()),
                // The types InfluxDB holds are asked for once, at start: a test that changes
                // them behind the collector's back (a dead letter) must not race a refresh.
                "--field-types-refresh=1h".into(),
            ]),
        )
        .await
        .expect("the collector starts");
        let mut query_args =
            common(vec![format!("--influx-url={}", influx.url), "--rollup-interval=1s".into()]);
        query_args[1] = format!("--listen=127.0.0.1:{}", velometry_core::testkit::free_port().expect("port"));
        let query = Service::start(workspace_binary("velometry-query", "query").expect("query"), query_args)
            .await
            .expect("the query service starts");
        let hub_port = velometry_core::testkit::free_port().expect("port");
        let mut hub_args = common(vec![
            format!("--nats-url={}", nats.url),
            format!("--query-url={}", query.url),
            "--tile-url=none".into(),
        ]);
        hub_args[1] = format!("--listen=127.0.0.1:{hub_port}");
        let stream =
            Service::start(workspace_binary("velometry-stream", "stream").expect("stream"), hub_args)
                .await
                .expect("the stream hub starts");
        // Readings published before the hub follows NATS would miss the live stream.
        stream.wait_ready().await.expect("the stream hub follows NATS");
        collector.wait_ready().await.expect("the collector is ready");
        let progress = Service::start(
            workspace_binary("velometry-progress", "progress").expect("progress"),
            common(vec![
                format!("--influx-url={}", influx.url),
                format!("--nats-url={}", nats.url),
                format!("--collector={}", collector.url),
                format!("--token={PROGRESS_SERVICE}"),
                "--sync-every=1s".into(),
            ]),
        )
        .await
        .expect("the progress service starts");
        progress.wait_ready().await.expect("the progress service is ready");
        Stack { influx, _nats: nats, _dir: dir, collector, query, stream, progress }
    }

    /// host:port of each service's metrics listener, by job.
    pub fn metrics_targets(&self) -> [(&'static str, String); 4] {
        let host =
            |s: &Service| s.metrics_url.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
        [
            ("velometry-collector", host(&self.collector)),
            ("velometry-query", host(&self.query)),
            ("velometry-stream", host(&self.stream)),
            ("velometry-progress", host(&self.progress)),
        ]
    }
}
