//! QuestDB, an optional second sink for SQL analytics, spoken to by `questdb-rs` (ILP over
//! HTTP, configured by QuestDB's own configuration string, e.g. `http::addr=host:9000;`).
//!
//! The log holds line protocol, so each batch is parsed back and written through the
//! client's buffer: tags become symbols, fields keep their types. The client connects on
//! first use, so QuestDB being down at start-up only delays this sink.

use std::sync::{Arc, Mutex};

use questdb::ingress::{Buffer, ColumnName, Sender, SenderBuilder, TableName, TimestampNanos};
use questdb::ErrorCode;
use velometry_core::lineproto::lines;
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
    for line in lines(body).filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line).map_err(|e| SinkError::Rejected(e.to_string()))?;
        let line = parse_line(line).map_err(|e| SinkError::Rejected(e.to_string()))?;
        write_row(buffer, &line).map_err(classify)?;
    }
    Ok(())
}

fn write_row(buffer: &mut Buffer, line: &Line<'_>) -> questdb::Result<()> {
    buffer.table(line.measurement.as_ref())?;
    for tag in &line.tags {
        buffer.symbol(tag.key().as_ref(), tag.value().as_ref())?;
    }
    for field in &line.fields {
        let key = field.key.as_ref();
        match &field.value {
            Value::Float(v, _) => buffer.column_f64(key, *v)?,
            Value::Int(v) => buffer.column_i64(key, *v)?,
            // Ingest refuses what would not fit (`check_line`).
            Value::UInt(v) => buffer.column_i64(key, i64::try_from(*v).unwrap_or(i64::MAX))?,
            Value::Bool(v) => buffer.column_bool(key, *v)?,
            Value::Str(v) => buffer.column_str(key, v.as_ref())?,
        };
    }
    // Every line in the log carries the timestamp fixed at ingest.
    buffer.at(TimestampNanos::new(line.timestamp.unwrap_or_default()))
}

/// What QuestDB would refuse of a line InfluxDB takes, for ingest to refuse it first: a
/// table or column name its client refuses (a `.`, `-`, `:` in a column name, …), and an
/// unsigned integer beyond its 64-bit signed `long`.
///
/// # Errors
/// QuestDB's reason.
pub fn check_line(line: &Line<'_>) -> Result<(), String> {
    let refused = |e: questdb::Error| format!("QuestDB, the second sink, refuses it: {}", e.msg());
    TableName::new(line.measurement.as_ref()).map_err(refused)?;
    for tag in &line.tags {
        ColumnName::new(tag.key().as_ref()).map_err(refused)?;
    }
    for field in line.fields.iter().filter(|f| f.key != "time") {
        ColumnName::new(field.key.as_ref()).map_err(refused)?;
        if matches!(field.value, Value::UInt(v) if i64::try_from(v).is_err()) {
            return Err(format!(
                "QuestDB, the second sink, has no unsigned integers beyond {}: field {:?}",
                i64::MAX,
                field.key
            ));
        }
    }
    Ok(())
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
