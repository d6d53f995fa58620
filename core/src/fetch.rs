//! Few requests for many chunks: chunks that lie near each other in one pack
//! are read with one ranged read (issue 10, network efficiency). On object
//! storage every request costs a round trip, so a few unneeded bytes between
//! two chunks are cheaper than a second request. On a local disk each chunk
//! stays its own read, as before: reads are cheap there and a merged read
//! would cost one more copy.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;
use crate::index::ChunkLocation;
use crate::storage::Storage;

/// Unneeded bytes between two chunks worth reading to save a request: at a
/// few tens of MB/s per connection, about what one round trip costs.
pub const MERGE_GAP: u64 = 256 * 1024;
/// The most bytes one merged request covers, so that `concurrency` requests
/// in flight hold a bounded amount of memory (8 x 4 MiB by default).
pub const MERGE_SPAN: u64 = 4 * 1024 * 1024;
/// The most chunks one request serves (bounds the restore window in chunks).
pub const MERGE_CHUNKS: usize = 256;

/// How far reads of one pack may be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeLimits {
    pub gap: u64,
    pub span: u64,
    pub chunks: usize,
}

impl MergeLimits {
    /// One read per chunk.
    pub const NONE: MergeLimits = MergeLimits {
        gap: 0,
        span: 0,
        chunks: 1,
    };

    /// Merged reads on object storage, one read per chunk locally.
    pub fn for_storage(storage: &dyn Storage) -> MergeLimits {
        match storage.local_root() {
            Some(_) => MergeLimits::NONE,
            None => MergeLimits {
                gap: MERGE_GAP,
                span: MERGE_SPAN,
                chunks: MERGE_CHUNKS,
            },
        }
    }
}

/// How many of `next` (the following chunks in the order they are needed,
/// `None` when not indexed) one read serves, starting with the first: those
/// in the same pack at or after the first one's offset, each at most `gap`
/// bytes past the previous end, all within `span` bytes. Always at least 1;
/// a chunk repeated inside the range is served without reading it again.
pub fn run_length(next: &[Option<ChunkLocation>], limits: &MergeLimits) -> usize {
    let Some(Some(first)) = next.first() else {
        return next.len().min(1);
    };
    let start = first.offset;
    let mut end = first.offset + first.length as u64;
    let mut n = 1;
    for loc in next.iter().skip(1).take(limits.chunks.saturating_sub(1)) {
        let Some(loc) = loc else { break };
        let loc_end = loc.offset + loc.length as u64;
        let new_end = end.max(loc_end);
        if loc.pack != first.pack
            || loc.offset < start
            || loc.offset > end + limits.gap
            || new_end - start > limits.span
        {
            break;
        }
        end = new_end;
        n += 1;
    }
    n
}

/// Runs `f` on every one of `items` on `threads` threads: for many small
/// requests (one per `.idx`, say), whose round trips would otherwise add up.
pub fn for_each_parallel<T: Sync>(threads: usize, items: &[T], f: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(item);
                }
            });
        }
    });
}

/// `f` of every one of `items`, in their order, computed on `threads` threads.
pub fn map_parallel<T: Sync, R: Send>(threads: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let out: Vec<std::sync::Mutex<Option<R>>> = items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *out[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item was mapped")
        })
        .collect()
}

/// The stored bytes of each of `locs` (all in the pack stored as `key`),
/// read with one ranged read from the first one's offset to the furthest end.
pub fn read_run(storage: &dyn Storage, key: &str, locs: &[ChunkLocation]) -> Result<Vec<Vec<u8>>> {
    let Some(start) = locs.iter().map(|l| l.offset).min() else {
        return Ok(Vec::new());
    };
    let end = locs.iter().map(|l| l.offset + l.length as u64).max().unwrap_or(start);
    let bytes = storage.read_range(key, start, (end - start) as usize)?;
    // read_range returns exactly the bytes asked for, so every slice is inside.
    Ok(locs
        .iter()
        .map(|l| {
            let at = (l.offset - start) as usize;
            bytes[at..at + l.length as usize].to_vec()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::random_hex;
    use crate::storage::LocalStorage;

    const LIMITS: MergeLimits = MergeLimits {
        gap: 10,
        span: 100,
        chunks: 4,
    };

    fn loc(pack: u32, offset: u64, length: u32) -> Option<ChunkLocation> {
        Some(ChunkLocation {
            pack,
            offset,
            length,
            raw_length: length,
            encoding: 0,
        })
    }

    #[test]
    fn runs_stop_at_pack_boundaries_gaps_span_and_count() {
        // Back to back in one pack, then the next pack.
        assert_eq!(run_length(&[loc(0, 0, 10), loc(0, 10, 10), loc(1, 20, 10)], &LIMITS), 2);
        // A gap of exactly `gap` joins; one byte more does not.
        assert_eq!(run_length(&[loc(0, 0, 10), loc(0, 20, 10)], &LIMITS), 2);
        assert_eq!(run_length(&[loc(0, 0, 10), loc(0, 21, 10)], &LIMITS), 1);
        // Backwards (before the start) never joins; inside the range does.
        assert_eq!(run_length(&[loc(0, 50, 10), loc(0, 40, 10)], &LIMITS), 1);
        assert_eq!(
            run_length(&[loc(0, 50, 10), loc(0, 60, 10), loc(0, 50, 10)], &LIMITS),
            3
        );
        // The span: 100 bytes at most.
        assert_eq!(run_length(&[loc(0, 0, 50), loc(0, 50, 50), loc(0, 100, 1)], &LIMITS), 2);
        // The count.
        let many: Vec<_> = (0..10).map(|i| loc(0, i * 5, 5)).collect();
        assert_eq!(run_length(&many, &LIMITS), 4);
        // An unindexed chunk is a run of its own, and ends a run.
        assert_eq!(run_length(&[None, loc(0, 0, 1)], &LIMITS), 1);
        assert_eq!(run_length(&[loc(0, 0, 1), None], &LIMITS), 1);
        assert_eq!(run_length(&[], &LIMITS), 0);
        // No merging at all: one chunk per read.
        assert_eq!(run_length(&[loc(0, 0, 10), loc(0, 10, 10)], &MergeLimits::NONE), 1);
    }

    #[test]
    fn merged_reads_return_exactly_each_chunk() {
        let root = std::env::temp_dir().join(format!("ca-fetch-{}", random_hex(6)));
        let storage = LocalStorage::new(&root);
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        storage.write("packs/data/p.pack", &bytes).unwrap();
        let locs: Vec<ChunkLocation> = [(0, 10), (10, 5), (30, 20), (35, 5), (180, 20)]
            .into_iter()
            .map(|(o, l)| loc(0, o, l).unwrap())
            .collect();
        let blobs = read_run(&storage, "packs/data/p.pack", &locs).unwrap();
        for (l, blob) in locs.iter().zip(&blobs) {
            assert_eq!(
                blob[..],
                bytes[l.offset as usize..(l.offset + l.length as u64) as usize]
            );
        }
        // The last byte of the object is reachable; one byte past it is ERR_CORRUPT.
        let past = [loc(0, 190, 11).unwrap()];
        assert_eq!(
            read_run(&storage, "packs/data/p.pack", &past).unwrap_err().code(),
            "ERR_CORRUPT"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
