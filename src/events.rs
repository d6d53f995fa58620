//! Progress events to JS through a weak ThreadsafeFunction, so a listener
//! never keeps the Node process alive.

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use serde_json::json;

use containerarchive_core::ProgressUpdate;

/// Receives one JSON string per event: `{"event": name, "payload": {...}}`.
pub type EventSink = ThreadsafeFunction<String, napi::bindgen_prelude::Unknown<'static>, String, Status, false, true>;

pub fn emit(sink: &EventSink, event: &str, payload: serde_json::Value) {
    let message = json!({ "event": event, "payload": payload }).to_string();
    // NonBlocking: a slow listener must never stall the pipeline.
    sink.call(message, ThreadsafeFunctionCallMode::NonBlocking);
}

pub fn progress_payload(operation: &str, update: &ProgressUpdate) -> serde_json::Value {
    json!({
        "operation": operation,
        "percentage": update.percentage(),
        "bytesProcessed": update.bytes_processed,
        "message": update.message,
    })
}
