//! Listener limits: a cap on open connections and a header timeout (no slowloris).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_slow_headers_time_out() {
    let env = Env::start(&["--max-connections=2", "--header-timeout=1s"]).await;
    let addr = env.collector.url.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("half a request");
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut third = TcpStream::connect(&addr).await.expect("the kernel accepts");
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.ok();
    assert!(
        closed_by_server(&mut third, Duration::from_secs(2)).await,
        "a third connection is closed at once"
    );

    assert!(closed_by_server(&mut slow, Duration::from_secs(5)).await, "headers that never finish time out");
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)).await, "an idle connection times out");
    let ok = env.http.get(env.url("/healthz")).send().await.expect("room again");
    assert_eq!(ok.status(), 200);
}
