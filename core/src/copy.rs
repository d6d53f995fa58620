//! Copying snapshots into another repository (3-2-1: a local repository to
//! an off-site bucket, or back).
//!
//! A copy keeps the snapshot's id, so a snapshot the target already lists
//! under that id is skipped and a repeated copy reads and writes nothing.
//! Ids are random (not derived from content), so an equal id means "a copy
//! of the same snapshot". Chunk ids may be keyed per repository, so every
//! chunk is read as plaintext from the source (decrypted, decompressed,
//! checked), re-identified, compressed and sealed for the target by the
//! ingest pipeline, with the source's chunk boundaries: copies of snapshots
//! that share data share chunks in the target too. Each item's SHA-256 is
//! checked against the source manifest before the copy is committed.
//!
//! Per snapshot, the target gets packs -> idx -> index -> parity ->
//! manifest, as in ingest: a failure leaves no manifest for the snapshot
//! being copied (snapshots copied before it stay, and a rerun skips them).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil::parse_iso8601_millis;
use crate::ingest::{store_chunks, ChunkFeed};
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::{Repository, SNAPSHOTS_DIR};
use crate::restore::restore_checked;
use crate::select::SnapshotFilter;
use crate::snapshot::{Manifest, ManifestItem};
use crate::storage::objects::names;

/// Which source snapshots to copy: tags and host as in `listSnapshots`,
/// and `createdAt` strictly after `after` and strictly before `before`
/// (milliseconds since the epoch).
#[derive(Debug, Clone, Default)]
pub struct CopyFilter {
    pub snapshots: SnapshotFilter,
    pub after: Option<i64>,
    pub before: Option<i64>,
}

impl CopyFilter {
    pub fn matches(&self, m: &Manifest) -> bool {
        let at = parse_iso8601_millis(&m.created_at);
        self.snapshots.matches(m)
            && self.after.is_none_or(|a| at.is_some_and(|t| t > a))
            && self.before.is_none_or(|b| at.is_some_and(|t| t < b))
    }
}

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    pub filter: CopyFilter,
    /// How long to wait for a conflicting lock, on each repository.
    pub lock_timeout: Duration,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// Ids of the snapshots copied, oldest first.
    pub copied: Vec<String>,
    /// Ids of matching snapshots the target already had.
    pub skipped: Vec<String>,
    /// Chunks the target stored anew, and chunks it already held.
    pub new_chunks: u64,
    pub reused_chunks: u64,
    /// Bytes of the new blobs in the target's packs (compressed, sealed).
    pub stored_size: u64,
    /// Item bytes read from the source (the copied snapshots' sizes).
    pub bytes_copied: u64,
}

/// Copies every source snapshot matching the filter that the target does
/// not have (by id) into `target`. Holds a shared lock on both, so no prune
/// deletes what is read or what the copies dedup against.
pub fn copy_snapshots(
    source: &Repository,
    target: &Repository,
    options: &CopyOptions,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<CopyReport> {
    let _source_lock = crate::lock::acquire_until(source.storage(), false, options.lock_timeout, cancel)?;
    let _target_lock = crate::lock::acquire_until(target.storage(), false, options.lock_timeout, cancel)?;
    source.sync_index()?;
    target.sync_index()?;
    let present: HashSet<String> = names(&**target.storage(), SNAPSHOTS_DIR)?.into_iter().collect();
    let mut report = CopyReport::default();
    let mut todo = Vec::new();
    for m in source.list_snapshots()? {
        if !options.filter.matches(&m) {
            continue;
        }
        if present.contains(&m.id) {
            report.skipped.push(m.id);
        } else {
            todo.push(m);
        }
    }
    let mut meter = Meter {
        done: 0,
        // Every item is read, hidden catalogs included.
        total: todo.iter().flat_map(|m| &m.items).map(|i| i.size).sum(),
        throttle: Throttle::new(),
        progress,
    };
    for m in todo {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled("the copy was cancelled".into()));
        }
        let copy = copy_one(source, target, &m, &mut meter, cancel)?;
        report.new_chunks += copy.new_chunks;
        report.reused_chunks += copy.reused_chunks;
        report.stored_size += copy.stored_size;
        report.bytes_copied += copy.original_size;
        report.copied.push(copy.id);
    }
    progress(ProgressUpdate {
        bytes_processed: meter.done,
        total_bytes: Some(meter.total),
        message: "copy complete".into(),
    });
    Ok(report)
}

struct Meter<'p> {
    done: u64,
    total: u64,
    throttle: Throttle,
    progress: ProgressFn<'p>,
}

impl Meter<'_> {
    fn add(&mut self, bytes: u64, id: &str, item: &str) {
        self.done += bytes;
        if self.throttle.ready() {
            (self.progress)(ProgressUpdate {
                bytes_processed: self.done,
                total_bytes: Some(self.total),
                message: format!("copying {item} of snapshot {}", &id[..8]),
            });
        }
    }
}

/// Copies one snapshot: its chunks, then (after index and parity) its manifest.
fn copy_one(
    source: &Repository,
    target: &Repository,
    m: &Manifest,
    meter: &mut Meter,
    cancel: &AtomicBool,
) -> Result<Manifest> {
    let max = target.config.chunking.max_size as usize;
    let outcome = store_chunks(target, |feed| {
        let mut ranges = Vec::with_capacity(m.items.len());
        for item in &m.items {
            let first = feed.position();
            let mut sink = |data: Vec<u8>| {
                meter.add(data.len() as u64, &m.id, &item.name);
                push_within(feed, data, max)
            };
            // Checks the item's length and SHA-256 against the source manifest.
            restore_checked(source, &m.id, item, &mut sink, cancel)?;
            ranges.push(first..feed.position());
        }
        Ok(ranges)
    });
    // As ingest: index and protect every pack written, even on failure.
    let protected = target.flush_index().and_then(|()| target.cover_parity());
    let (ranges, stats) = outcome?;
    protected?;
    let items = m
        .items
        .iter()
        .zip(ranges)
        .map(|(item, range)| ManifestItem {
            chunks: stats.ids[range].iter().map(hex::encode).collect(),
            ..item.clone()
        })
        .collect();
    let copy = Manifest {
        items,
        new_chunks: stats.new_chunks,
        reused_chunks: stats.reused_chunks,
        stored_size: stats.stored_size,
        ..m.clone()
    };
    target.write_snapshot(&copy)?;
    Ok(copy)
}

/// Keeps the source's chunk boundaries, except that a chunk longer than the
/// target's maximum chunk size (a target made with a smaller `maxSize`) is
/// cut into pieces the target accepts.
fn push_within(feed: &mut ChunkFeed, data: Vec<u8>, max: usize) -> Result<()> {
    if data.len() <= max {
        return feed.push(Arc::new(data));
    }
    for piece in data.chunks(max) {
        feed.push(Arc::new(piece.to_vec()))?;
    }
    Ok(())
}
