//! A local directory that presents itself as object storage (`local_root()`
//! is `None`), so the engine takes its object-store paths (no `flock`,
//! immutable parity group versions) quickly and deterministically, with hooks
//! that drive the interleavings a test needs.
//!
//! Include with `#[path = "common/objectlike.rs"] mod objectlike;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use containerarchive_core::error::Result;
use containerarchive_core::storage::{Entry, LocalStorage, Storage};

/// How long a gated write waits for the other writers before going on (the
/// test then fails on what it finds, instead of hanging).
const GATE_DEADLINE: Duration = Duration::from_secs(30);

/// While `need` is `Some(n)`, a gated write waits until `n` gated writes
/// are waiting, then all go on and the gate opens for good.
#[derive(Debug, Default)]
struct Gate {
    need: Option<usize>,
    waiting: usize,
}

#[derive(Debug, Default)]
struct Hooks {
    /// Gates group manifest writes. Each writer has loaded the groups before
    /// it writes one, so every writer has seen only the groups that existed
    /// before any of them wrote. (Counting listings of `packs/parity` instead
    /// let one writer that listed twice release itself early, and the other
    /// then extended its version.)
    groups: Gate,
    /// Gates index file writes. Each writer loads the index as its ingest
    /// starts, so none of them sees another's packs indexed.
    index: Gate,
    /// Deletes a parity file when it is read by range other than front to
    /// back after `size()` (as hashing does): as extending a group reads it.
    vanish_parity: bool,
    /// Per parity key: bytes a hashing reader has still to read.
    hashing: HashMap<String, u64>,
    vanished: Vec<String>,
}

#[derive(Debug)]
pub struct ObjectLike {
    inner: LocalStorage,
    root: PathBuf,
    hooks: Mutex<Hooks>,
    changed: Condvar,
}

impl ObjectLike {
    pub fn new(root: &Path) -> ObjectLike {
        ObjectLike {
            inner: LocalStorage::new(root),
            root: root.to_path_buf(),
            hooks: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, group manifests are written only once `writers` of them
    /// wait: all writers load the groups before any writes one.
    pub fn arm_gate(&self, writers: usize) {
        self.hooks().groups = Gate {
            need: Some(writers),
            waiting: 0,
        };
    }

    /// From now on, index files are written only once `writers` of them wait.
    pub fn arm_index_gate(&self, writers: usize) {
        self.hooks().index = Gate {
            need: Some(writers),
            waiting: 0,
        };
    }

    /// How many group manifest writes the gate holds now.
    pub fn waiting(&self) -> usize {
        self.hooks().groups.waiting
    }

    pub fn disarm_gate(&self) {
        let mut h = self.hooks();
        h.groups.need = None;
        h.index.need = None;
        self.changed.notify_all();
    }

    /// Holds a write behind the gate `pick` selects, if it is armed.
    fn pass(&self, pick: fn(&mut Hooks) -> &mut Gate) {
        let deadline = Instant::now() + GATE_DEADLINE;
        let mut h = self.hooks();
        let gate = pick(&mut h);
        if let Some(n) = gate.need {
            gate.waiting += 1;
            if gate.waiting >= n {
                gate.need = None;
                self.changed.notify_all();
            }
        }
        while pick(&mut h).need.is_some() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            h = self
                .changed
                .wait_timeout(h, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn vanish_parity_when_extended(&self, on: bool) {
        self.hooks().vanish_parity = on;
    }

    /// The parity files the vanish hook deleted.
    pub fn vanished(&self) -> Vec<String> {
        self.hooks().vanished.clone()
    }
}

fn is_parity(key: &str) -> bool {
    key.starts_with("packs/parity/") && key.ends_with(".par")
}

impl Storage for ObjectLike {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read(key)
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        if is_parity(key) {
            let mut h = self.hooks();
            let vanish = h.vanish_parity;
            match h.hashing.get_mut(key) {
                Some(left) if *left >= len as u64 => *left -= len as u64,
                _ if vanish => {
                    self.inner.delete(key)?;
                    h.vanished.push(key.to_string());
                }
                _ => {}
            }
        }
        self.inner.read_range(key, offset, len)
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let size = self.inner.size(key)?;
        if let (true, Some(n)) = (is_parity(key), size) {
            self.hooks().hashing.insert(key.to_string(), n);
        }
        Ok(size)
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        if key.starts_with("packs/parity/") && key.ends_with(".group") {
            self.pass(|h| &mut h.groups);
        } else if key.starts_with("index/") {
            self.pass(|h| &mut h.index);
        }
        self.inner.write(key, data)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }

    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        self.inner.list(dir)
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }
}
