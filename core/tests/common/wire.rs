//! A storage wrapper for tests of network behaviour: it counts requests by
//! kind, records the most requests ever in flight at once, and can hold every
//! write until the test releases it (a slow upload without sleeping).
//!
//! Include with `#[path = "common/wire.rs"] mod wire;`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use containerarchive_core::error::{Error, Result};
use containerarchive_core::storage::{Entry, Storage};

#[derive(Debug, Default)]
pub struct Counts {
    pub reads: AtomicUsize,
    pub ranged_reads: AtomicUsize,
    pub writes: AtomicUsize,
    pub stats: AtomicUsize,
    pub lists: AtomicUsize,
    pub deletes: AtomicUsize,
    /// Bytes returned by `read` and `read_range`.
    pub bytes_read: AtomicUsize,
    /// Bytes held by writes in progress now, and the most ever.
    pub writing_bytes: AtomicUsize,
    pub max_writing_bytes: AtomicUsize,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Counts {
    pub fn requests(&self) -> usize {
        [
            &self.reads,
            &self.ranged_reads,
            &self.writes,
            &self.stats,
            &self.lists,
            &self.deletes,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
    pub fn reset(&self) {
        for c in [
            &self.reads,
            &self.ranged_reads,
            &self.writes,
            &self.stats,
            &self.lists,
            &self.deletes,
            &self.bytes_read,
            &self.max_in_flight,
            &self.max_writing_bytes,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
    pub fn summary(&self) -> String {
        format!(
            "{} requests ({} GET, {} ranged GET, {} PUT, {} HEAD, {} LIST, {} DELETE), {} MiB read, max {} in flight",
            self.requests(),
            Self::get(&self.reads),
            Self::get(&self.ranged_reads),
            Self::get(&self.writes),
            Self::get(&self.stats),
            Self::get(&self.lists),
            Self::get(&self.deletes),
            Self::get(&self.bytes_read) >> 20,
            Self::get(&self.max_in_flight),
        )
    }
}

/// A gate writes wait at while it is closed; bounded so no test can hang.
#[derive(Debug, Default)]
pub struct Gate {
    closed: Mutex<bool>,
    changed: Condvar,
    /// Writes waiting at the gate now.
    pub waiting: AtomicUsize,
}

impl Gate {
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.changed.notify_all();
    }
    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_all();
        while *closed {
            let (c, timeout) = self.changed.wait_timeout(closed, Duration::from_secs(60)).unwrap();
            closed = c;
            assert!(!timeout.timed_out(), "a test left the write gate closed for 60 s");
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
    /// Waits (bounded) until `n` writes wait at the gate.
    pub fn wait_for_waiting(&self, n: usize) -> bool {
        let mut closed = self.closed.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.waiting.load(Ordering::SeqCst) < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            closed = self.changed.wait_timeout(closed, left).unwrap().0;
        }
        true
    }
}

/// Wraps another storage. `remote: true` hides the local root, so the engine
/// takes its object-store paths (buffered pack uploads, merged ranged reads).
#[derive(Debug)]
pub struct Wire {
    inner: Arc<dyn Storage>,
    remote: bool,
    concurrency: Option<usize>,
    pub counts: Counts,
    /// Writes to keys containing `gate_filter` wait at `gate`.
    pub gate: Gate,
    pub gate_filter: Mutex<String>,
    pub gated: AtomicBool,
    /// Keys written, in the order their writes completed.
    pub log: Mutex<Vec<String>>,
    /// Pack writes after this many fail with an I/O error.
    pub fail_packs_after: AtomicUsize,
    pack_writes: AtomicUsize,
    /// Added to every request (a round trip to a distant server), for benches.
    pub latency: Mutex<Duration>,
}

impl Wire {
    pub fn new(inner: Arc<dyn Storage>, remote: bool, concurrency: Option<usize>) -> Arc<Wire> {
        Arc::new(Wire {
            inner,
            remote,
            concurrency,
            counts: Counts::default(),
            gate: Gate::default(),
            gate_filter: Mutex::new(String::new()),
            gated: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            fail_packs_after: AtomicUsize::new(usize::MAX),
            pack_writes: AtomicUsize::new(0),
            latency: Mutex::new(Duration::ZERO),
        })
    }

    fn request<T>(&self, counter: &AtomicUsize, f: impl FnOnce() -> T) -> T {
        counter.fetch_add(1, Ordering::SeqCst);
        let now = self.counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let out = f();
        self.counts.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

impl Storage for Wire {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let out = self.request(&self.counts.reads, || self.inner.read(key))?;
        let n = out.as_ref().map_or(0, |b| b.len());
        self.counts.bytes_read.fetch_add(n, Ordering::SeqCst);
        Ok(out)
    }
    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let out = self.request(&self.counts.ranged_reads, || self.inner.read_range(key, offset, len))?;
        self.counts.bytes_read.fetch_add(out.len(), Ordering::SeqCst);
        Ok(out)
    }
    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.request(&self.counts.stats, || self.inner.size(key))
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        let now = self.counts.writing_bytes.fetch_add(data.len(), Ordering::SeqCst) + data.len();
        self.counts.max_writing_bytes.fetch_max(now, Ordering::SeqCst);
        let out = self.request(&self.counts.writes, || {
            if self.gated.load(Ordering::SeqCst) && key.contains(self.gate_filter.lock().unwrap().as_str()) {
                self.gate.pass();
            }
            if key.ends_with(".pack")
                && self.pack_writes.fetch_add(1, Ordering::SeqCst) >= self.fail_packs_after.load(Ordering::SeqCst)
            {
                return Err(Error::Io {
                    path: key.to_string(),
                    source: std::io::Error::other("injected: the server went away"),
                });
            }
            self.inner.write(key, data)
        });
        self.counts.writing_bytes.fetch_sub(data.len(), Ordering::SeqCst);
        if out.is_ok() {
            self.log.lock().unwrap().push(key.to_string());
        }
        out
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.request(&self.counts.deletes, || self.inner.delete(key))
    }
    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        self.request(&self.counts.lists, || self.inner.list(dir))
    }
    fn concurrency(&self) -> Option<usize> {
        self.concurrency
    }
    fn local_root(&self) -> Option<&Path> {
        if self.remote {
            None
        } else {
            self.inner.local_root()
        }
    }
}
