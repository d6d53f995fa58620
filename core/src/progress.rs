//! Progress reporting, throttled to about ten updates a second per operation.

use std::time::{Duration, Instant};

pub const INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub bytes_processed: u64,
    /// Known when every item's size is known.
    pub total_bytes: Option<u64>,
    pub message: String,
}

impl ProgressUpdate {
    pub fn percentage(&self) -> Option<f64> {
        self.total_bytes.map(|total| {
            if total == 0 {
                100.0
            } else {
                (self.bytes_processed as f64 * 100.0 / total as f64).min(100.0)
            }
        })
    }
}

pub type ProgressFn<'a> = &'a (dyn Fn(ProgressUpdate) + Sync);

pub struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle { last: None }
    }

    /// True when an update may be sent now.
    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < INTERVAL => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}
