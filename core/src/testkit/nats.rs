//! A real `nats-server` with JetStream, alone or in a cluster.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{free_port, require, sigkill, Result, PATIENCE};

/// A running `nats-server` with JetStream enabled.
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server -js` and waits until it accepts connections.
    ///
    /// # Errors
    /// When `nats-server` is missing or does not come up.
    pub async fn start() -> Result<NatsServer> {
        NatsServer::start_with(free_port()?, "", "").await
    }

    /// Starts one whose JetStream store holds at most `bytes` (`max_file_store`), as on a
    /// small disk.
    ///
    /// # Errors
    /// When `nats-server` is missing or does not come up.
    pub async fn start_with_file_store(bytes: u64) -> Result<NatsServer> {
        NatsServer::start_with(free_port()?, &format!("max_file_store: {bytes}"), "").await
    }

    /// Starts a cluster of `size` servers, each with JetStream, routed to one another as in
    /// production; JetStream then elects its leader within a few seconds.
    ///
    /// # Errors
    /// When `nats-server` is missing or a server does not come up.
    pub async fn start_cluster(size: usize) -> Result<Vec<NatsServer>> {
        let client_ports = (0..size).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let route_ports = (0..size).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let routes: Vec<String> = route_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let mut servers = Vec::new();
        for (i, (&port, route_port)) in client_ports.iter().zip(&route_ports).enumerate() {
            let cluster = format!(
                "server_name: n{i}\ncluster {{ name: velometry, listen: \"127.0.0.1:{route_port}\", routes: [{}] }}\n",
                routes.join(", ")
            );
            servers.push(NatsServer::start_with(port, "", &cluster).await?);
        }
        Ok(servers)
    }

    /// Starts a server on `port`, with `jetstream` added to its JetStream block and
    /// `rest` to its configuration.
    async fn start_with(port: u16, jetstream: &str, rest: &str) -> Result<NatsServer> {
        require("nats-server")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = dir.path().join("js").display().to_string();
        std::fs::write(
            dir.path().join("nats.conf"),
            format!("jetstream {{ store_dir: {store:?}\n{jetstream} }}\n{rest}"),
        )
        .map_err(|e| e.to_string())?;
        let mut server = NatsServer { child: None, dir, port, url: format!("nats://127.0.0.1:{port}") };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<()> {
        let config = self.dir.path().join("nats.conf");
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            // A server that lost its port to another process exits: say so, rather than
            // take the other process for it.
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server exited with {status} (port {})", self.port));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("waited {} s for nats-server to accept connections", PATIENCE.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the server, keeping its JetStream store.
    pub async fn kill(&mut self) {
        sigkill(&mut self.child).await;
    }

    /// Starts the server again on the same port and store.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn().await
    }
}
