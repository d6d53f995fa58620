//! Repository statistics, computed from what is there now (manifests, index
//! files, files on disk) rather than summed from per-snapshot counters, so
//! they stay true after prune, repair or a failed ingest.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::check::read_disk_index;
use crate::crypto::ChunkId;
use crate::error::Result;
use crate::repo::{Repository, DATA_DIR, LAYOUT, PARITY_DIR};
use crate::storage::{local, Storage};

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChunkTotals {
    pub count: u64,
    /// Bytes before compression and encryption.
    pub raw_bytes: u64,
    /// Bytes of the blobs in their packs (compressed, sealed).
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileTotals {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub snapshots: u64,
    /// The sum of every snapshot's item sizes.
    pub logical_bytes: u64,
    /// Distinct chunks the snapshots reference, each counted once (sizes from the index).
    pub unique_chunks: ChunkTotals,
    /// Indexed chunks no snapshot references: what prune would reclaim.
    pub unreferenced_chunks: ChunkTotals,
    /// Referenced chunks the index does not list (verify and repair name them).
    pub missing_chunks: u64,
    /// `.pack` files in packs/data.
    pub packs: FileTotals,
    /// Parity shards (`.par`) and group manifests (`.group`) in packs/parity.
    pub parity: FileTotals,
    /// Every file under the repository root.
    pub repository_bytes: u64,
    /// logicalBytes / uniqueChunks.rawBytes; null when nothing is stored.
    pub dedup_ratio: Option<f64>,
    /// uniqueChunks.rawBytes / uniqueChunks.storedBytes.
    pub compression_ratio: Option<f64>,
    /// parity.bytes / packs.bytes.
    pub parity_overhead: Option<f64>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The objects directly in `dir` whose name `accept`s; zeros when it is absent.
fn files_in(storage: &dyn Storage, dir: &str, accept: impl Fn(&str) -> bool) -> Result<FileTotals> {
    let mut totals = FileTotals::default();
    for entry in storage.list(dir)?.into_iter().filter(|e| accept(&e.name)) {
        totals.files += 1;
        totals.bytes += entry.size;
    }
    Ok(totals)
}

/// Every byte the repository occupies. Locally that is the whole tree (tmp
/// files and anything else in it included); elsewhere, the listed objects.
fn repository_bytes(storage: &dyn Storage) -> Result<u64> {
    if let Some(root) = storage.local_root() {
        return Ok(local::tree_bytes(root));
    }
    let mut total = 0;
    for dir in std::iter::once("").chain(LAYOUT) {
        total += storage.list(dir)?.iter().map(|e| e.size).sum::<u64>();
    }
    Ok(total)
}

/// Computes the statistics under a shared lock, so no prune runs meanwhile.
pub fn stats(repo: &Repository, lock_timeout: Duration) -> Result<Stats> {
    let _lock = crate::lock::acquire(repo.storage(), false, lock_timeout)?;
    let snapshots = repo.list_snapshots()?;
    let mut referenced: HashSet<ChunkId> = HashSet::new();
    let mut logical_bytes = 0u64;
    for s in &snapshots {
        for item in &s.items {
            logical_bytes += item.size;
            referenced.extend(item.chunk_ids()?);
        }
    }
    // Unreadable index files are skipped: their chunks then count as missing.
    let index = read_disk_index(repo, None)?;
    let mut unique = ChunkTotals::default();
    let mut unreferenced = ChunkTotals::default();
    for (id, (pack, _, entry)) in &index.chunks {
        let e = &index.records[pack].entries[*entry];
        let t = if referenced.contains(id) {
            &mut unique
        } else {
            &mut unreferenced
        };
        t.count += 1;
        t.raw_bytes += e.raw_length as u64;
        t.stored_bytes += e.length as u64;
    }
    let storage = &**repo.storage();
    let packs = files_in(storage, DATA_DIR, |n| n.ends_with(".pack"))?;
    let parity = files_in(storage, PARITY_DIR, |n| n.ends_with(".par") || n.ends_with(".group"))?;
    Ok(Stats {
        snapshots: snapshots.len() as u64,
        logical_bytes,
        unique_chunks: unique,
        unreferenced_chunks: unreferenced,
        missing_chunks: referenced.len() as u64 - unique.count,
        packs,
        parity,
        repository_bytes: repository_bytes(storage)?,
        dedup_ratio: ratio(logical_bytes, unique.raw_bytes),
        compression_ratio: ratio(unique.raw_bytes, unique.stored_bytes),
        parity_overhead: ratio(parity.bytes, packs.bytes),
    })
}
