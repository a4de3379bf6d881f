//! Messages a WebSocket client sends the stream hub (`GET /v1/live`): any text is either
//! one of the three operations or an error message for the client, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use velometry_stream::protocol::ClientMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(message) = ClientMessage::parse(text) {
        assert!(!message.is_empty());
    }
});
