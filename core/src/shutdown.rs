//! The one shutdown signal of every service: Ctrl-C or SIGTERM, and the `watch` flag that
//! carries it to background tasks.

use tokio::sync::watch;

/// Resolves when the process receives Ctrl-C (SIGINT) or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        // If the handler cannot be installed the process still stops on the default action.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("Shutdown signal received.");
}

/// Resolves once `stop` is true (or its sender is gone). Holds no borrow of the flag across
/// an await, so futures using it stay `Send`.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}
