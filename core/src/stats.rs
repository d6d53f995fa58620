//! Repository statistics, computed from what is there now (manifests, index
//! files, files on disk) rather than summed from per-snapshot counters, so
//! they stay true after prune, repair or a failed ingest.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::check::read_disk_index;
use crate::crypto::ChunkId;
use crate::error::{IoContext, Result};
use crate::parity::parity_dir;
use crate::repo::Repository;

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

/// Regular files directly in `dir` whose name `accept`s; zeros when it is absent.
fn files_in(dir: &Path, accept: impl Fn(&str) -> bool) -> Result<FileTotals> {
    let mut totals = FileTotals::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(totals),
        Err(e) => return Err(e).at(dir),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A file can vanish between listing and stat (an ingest renaming its tmp file).
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() && accept(&name) {
                totals.files += 1;
                totals.bytes += meta.len();
            }
        }
    }
    Ok(totals)
}

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// Computes the statistics under a shared lock, so no prune runs meanwhile.
pub fn stats(repo: &Repository, lock_timeout: Duration) -> Result<Stats> {
    let _lock = crate::lock::acquire(repo.root(), false, lock_timeout)?;
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
    let packs = files_in(&repo.data_dir(), |n| n.ends_with(".pack"))?;
    let parity = files_in(&parity_dir(repo), |n| n.ends_with(".par") || n.ends_with(".group"))?;
    Ok(Stats {
        snapshots: snapshots.len() as u64,
        logical_bytes,
        unique_chunks: unique,
        unreferenced_chunks: unreferenced,
        missing_chunks: referenced.len() as u64 - unique.count,
        packs,
        parity,
        repository_bytes: tree_bytes(repo.root()),
        dedup_ratio: ratio(logical_bytes, unique.raw_bytes),
        compression_ratio: ratio(unique.raw_bytes, unique.stored_bytes),
        parity_overhead: ratio(parity.bytes, packs.bytes),
    })
}
