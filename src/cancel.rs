//! Cancel flags of running operations, by the token `index.js` chose for
//! each, so that an `AbortSignal` (or a destroyed file source) stops the Rust
//! side at its next cancel point.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default, Clone)]
pub struct Cancels(Arc<Mutex<HashMap<u32, Arc<AtomicBool>>>>);

/// An operation's flag; its token is forgotten when this drops.
pub struct Registered {
    cancels: Cancels,
    token: u32,
    pub flag: Arc<AtomicBool>,
}

impl Cancels {
    fn map(&self) -> MutexGuard<'_, HashMap<u32, Arc<AtomicBool>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The flag for `token` (0: none asked for, a flag nobody can set). A
    /// cancel that came first is kept: an async call registers on a worker
    /// thread, possibly after the caller has already aborted.
    pub fn register(&self, token: u32) -> Registered {
        let flag = if token == 0 {
            Arc::new(AtomicBool::new(false))
        } else {
            self.map().entry(token).or_default().clone()
        };
        Registered {
            cancels: self.clone(),
            token,
            flag,
        }
    }

    pub fn cancel(&self, token: u32) {
        if token != 0 {
            self.map().entry(token).or_default().store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.token != 0 {
            self.cancels.map().remove(&self.token);
        }
    }
}
