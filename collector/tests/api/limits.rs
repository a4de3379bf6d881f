//! Listener limits: a cap on open connections and a header timeout (no slowloris).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use velometry_core::testkit::PATIENCE;

use crate::helpers::Env;

/// Reads until the server closes the connection; `true` if it did within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// Whether a connection sending a whole request is closed unanswered.
async fn refused(addr: &str) -> bool {
    let mut third = TcpStream::connect(addr).await.expect("the kernel accepts");
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.ok();
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(PATIENCE, third.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_slow_headers_time_out() {
    let env = Env::start(&["--max-connections=2", "--header-timeout=5s"]).await;
    let addr = env.collector.url.trim_start_matches("http://").to_owned();
    // Two connections take the two places: one sends half a request, one nothing. A third
    // is closed unanswered once the collector has accepted both; until then (a busy
    // machine) it may still be served, so try again with a fresh pair.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut slow, mut idle) = loop {
        let mut slow = TcpStream::connect(&addr).await.expect("connect");
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("half a request");
        let idle = TcpStream::connect(&addr).await.expect("connect");
        if refused(&addr).await {
            break (slow, idle);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {} s for a connection past the cap to be closed",
            PATIENCE.as_secs()
        );
    };

    assert!(closed_by_server(&mut slow, PATIENCE).await, "headers that never finish time out");
    assert!(closed_by_server(&mut idle, PATIENCE).await, "an idle connection times out");
    let ok = env.http.get(env.url("/healthz")).send().await.expect("room again");
    assert_eq!(ok.status(), 200);
}
