//! Restore bridge: the blocking restore loop hands buffers to an async task
//! that pushes them into the Node `Readable` through a ThreadsafeFunction and
//! waits whenever `push()` returned false. A destroyed stream rejects the
//! push, which cancels the Rust side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use tokio::sync::mpsc;

/// `push(buffer)` resolves once the stream wants more; rejects if destroyed.
pub type PushFn = ThreadsafeFunction<Buffer, Promise<bool>, Buffer, Status, false>;

/// Forwards buffers to JS; on a rejected push, sets `cancel` and stops.
pub async fn forward(
    push: PushFn,
    mut buffers: mpsc::Receiver<Vec<u8>>,
    cancel: Arc<AtomicBool>,
) -> Result<(), String> {
    while let Some(data) = buffers.recv().await {
        let pushed = match push.call_async_catch(Buffer::from(data)).await {
            Ok(promise) => promise.await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = pushed {
            cancel.store(true, Ordering::Relaxed);
            return Err(e.reason.clone());
        }
    }
    Ok(())
}
