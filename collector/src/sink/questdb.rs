//! QuestDB, an optional second sink for SQL analytics, spoken to by `questdb-rs` (ILP over
//! HTTP, configured by QuestDB's own configuration string, e.g. `http::addr=host:9000;`).
//!
//! The log holds line protocol, so each batch is parsed back and written through the
//! client's buffer: tags become symbols, fields keep their types. The client connects on
//! first use, so QuestDB being down at start-up only delays this sink.

use std::sync::{Arc, Mutex};

use questdb::ingress::{Buffer, Sender, SenderBuilder, TimestampNanos};
use questdb::ErrorCode;
use velometry_core::lineproto::parse::{parse_line, Line, Value};

use super::SinkError;

/// Writes batches to QuestDB.
pub struct QuestDb {
    builder: SenderBuilder,
    sender: Arc<Mutex<Option<Sender>>>,
}

impl QuestDb {
    /// A sink configured by a QuestDB client configuration string.
    ///
    /// # Errors
    /// The client's message when the string is invalid.
    pub fn new(conf: &str) -> Result<QuestDb, String> {
        let builder =
            SenderBuilder::from_conf(conf).map_err(|e| format!("invalid --questdb {conf:?}: {}", e.msg()))?;
        Ok(QuestDb { builder, sender: Arc::new(Mutex::new(None)) })
    }

    /// Writes a batch of lines.
    ///
    /// # Errors
    /// [`SinkError::Rejected`] for lines QuestDB or the client refuses, [`SinkError::Retry`]
    /// for network, authentication and server errors.
    pub async fn write(&self, body: &[u8]) -> Result<(), SinkError> {
        let (sender, builder) = (self.sender.clone(), self.builder.clone());
        let body = body.to_vec();
        tokio::task::spawn_blocking(move || {
            // A panic while flushing leaves the sender as usable as before it.
            let mut slot = sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(builder.build().map_err(classify)?);
            }
            let Some(sender) = slot.as_mut() else { return Ok(()) };
            let mut buffer = sender.new_buffer();
            fill(&mut buffer, &body)?;
            let flushed = sender.flush(&mut buffer).map_err(classify);
            if matches!(flushed, Err(SinkError::Retry { .. })) {
                // Start afresh next time: the connection or the server may have changed.
                *slot = None;
            }
            flushed
        })
        .await
        .map_err(|e| SinkError::Retry { kind: "internal", message: e.to_string() })?
    }
}

fn fill(buffer: &mut Buffer, body: &[u8]) -> Result<(), SinkError> {
    let text = std::str::from_utf8(body).map_err(|e| SinkError::Rejected(e.to_string()))?;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let line = parse_line(line).map_err(|e| SinkError::Rejected(e.to_string()))?;
        write_row(buffer, &line).map_err(classify)?;
    }
    Ok(())
}

fn write_row(buffer: &mut Buffer, line: &Line<'_>) -> questdb::Result<()> {
    buffer.table(line.measurement.as_ref())?;
    for (key, value) in &line.tags {
        buffer.symbol(key.as_ref(), value.as_ref())?;
    }
    for (key, value) in &line.fields {
        match value {
            Value::Float(v, _) => buffer.column_f64(key.as_ref(), *v)?,
            Value::Int(v) => buffer.column_i64(key.as_ref(), *v)?,
            Value::UInt(v) => buffer.column_i64(key.as_ref(), i64::try_from(*v).unwrap_or(i64::MAX))?,
            Value::Bool(v) => buffer.column_bool(key.as_ref(), *v)?,
            Value::Str(v) => buffer.column_str(key.as_ref(), v.as_ref())?,
        };
    }
    // Every line in the log carries the timestamp fixed at ingest.
    buffer.at(TimestampNanos::new(line.timestamp.unwrap_or_default()))
}

fn classify(e: questdb::Error) -> SinkError {
    let message = e.msg().to_owned();
    match e.code() {
        ErrorCode::SocketError
        | ErrorCode::CouldNotResolveAddr
        | ErrorCode::ConnectTimeout
        | ErrorCode::TlsError => SinkError::Retry { kind: "network", message },
        ErrorCode::AuthError => SinkError::Retry { kind: "auth", message },
        ErrorCode::ProtocolVersionError | ErrorCode::HttpNotSupported => SinkError::Retry {
            kind: "server",
            message: format!("{message} (is it QuestDB? protocol_version=1; in --questdb skips the probe)"),
        },
        // QuestDB names the refused line ("[id: …, code: …, line: N]") only when it refuses
        // content; anything else (5xx after the client's own retries) may pass later.
        ErrorCode::ServerFlushError if message.contains("line:") || message.contains("[id:") => {
            SinkError::Rejected(message)
        }
        ErrorCode::InvalidName
        | ErrorCode::InvalidTimestamp
        | ErrorCode::InvalidUtf8
        | ErrorCode::InvalidApiCall => SinkError::Rejected(message),
        _ => SinkError::Retry { kind: "server", message },
    }
}
