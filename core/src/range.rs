//! Byte ranges of an item (issue 13): only the chunks that overlap the
//! ranges are read. Every chunk's plaintext length is in the index, so the
//! offset of each chunk within the item is known without reading any data.
//! Each chunk read is still checked against its id; the item's whole-stream
//! SHA-256 cannot be, since only part of the stream is read.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::restore::{restore_chunks_from, select_catalog, select_item};
use crate::snapshot::ManifestItem;

/// What a ranged restore did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RangeRead {
    /// Chunks read and decoded.
    pub chunks_read: u64,
    /// Bytes handed to the sink.
    pub bytes: u64,
}

/// Which part of a snapshot to read: an item (or its catalog) and byte ranges of it.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest {
    pub item: Option<String>,
    /// Read the item's hidden tar catalog instead of the item.
    pub catalog: bool,
    /// `[start, end)` pairs in ascending order, not overlapping; `end` is clamped to the item's size.
    pub ranges: Vec<(u64, u64)>,
}

/// Checks ranges before anything is read: each `start <= end`, ascending, not overlapping.
pub fn check_ranges(ranges: &[(u64, u64)]) -> Result<()> {
    let mut last_end = 0u64;
    for (i, &(start, end)) in ranges.iter().enumerate() {
        if start > end {
            return Err(Error::invalid(format!(
                "range {start}..{end} is reversed; start must not be greater than end"
            )));
        }
        if i > 0 && start < last_end {
            return Err(Error::invalid("ranges must be in ascending order and must not overlap"));
        }
        last_end = end;
    }
    Ok(())
}

/// Reads `request` from snapshot `snapshot_id` under a shared lock, so no
/// prune deletes what it reads.
pub fn restore_ranges(
    repo: &Repository,
    snapshot_id: &str,
    request: &RangeRequest,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<()>,
    cancel: &AtomicBool,
    lock_timeout: Duration,
) -> Result<RangeRead> {
    check_ranges(&request.ranges)?;
    let _lock = crate::lock::acquire_until(repo.storage(), false, lock_timeout, cancel)?;
    repo.sync_index()?;
    let manifest = repo.load_snapshot(snapshot_id)?;
    let item = match request.catalog {
        true => select_catalog(&manifest, request.item.as_deref())?,
        false => select_item(&manifest, request.item.as_deref())?,
    };
    read_ranges(repo, &manifest.id, item, &request.ranges, sink, cancel)
}

/// One chunk to read and the slices of its plaintext to emit.
struct Piece {
    chunk: usize,
    slices: Vec<(usize, usize)>,
}

/// Streams `ranges` of `item` into `sink`, reading each overlapping chunk once.
pub fn read_ranges(
    repo: &Repository,
    snapshot_id: &str,
    item: &ManifestItem,
    ranges: &[(u64, u64)],
    sink: &mut dyn FnMut(Vec<u8>) -> Result<()>,
    cancel: &AtomicBool,
) -> Result<RangeRead> {
    check_ranges(ranges)?;
    let what = || format!("item {:?} of snapshot {snapshot_id}", item.name);
    let ids = item.chunk_ids()?;
    // starts[i] is chunk i's offset in the item; starts[n] its size.
    let mut starts = Vec::with_capacity(ids.len() + 1);
    starts.push(0u64);
    {
        let index = repo.index();
        for id in &ids {
            let loc = index
                .get(id)
                .ok_or_else(|| Error::corrupt(what(), format!("chunk {} is not in the index", hex::encode(id))))?;
            starts.push(starts[starts.len() - 1] + loc.raw_length as u64);
        }
    }
    if starts[ids.len()] != item.size {
        return Err(Error::corrupt(
            what(),
            format!(
                "its chunks hold {} bytes but the manifest says {}",
                starts[ids.len()],
                item.size
            ),
        ));
    }
    let plan = plan(&starts, ranges, item.size);
    let wanted: Vec<_> = plan.iter().map(|p| ids[p.chunk]).collect();
    let mut next = 0usize;
    let mut bytes = 0u64;
    restore_chunks_from(
        repo,
        &wanted,
        &mut |mut data| {
            let piece = plan
                .get(next)
                .ok_or_else(|| Error::Internal("restore emitted an extra chunk".into()))?;
            next += 1;
            let expected = (starts[piece.chunk + 1] - starts[piece.chunk]) as usize;
            if data.len() != expected {
                return Err(Error::corrupt(what(), "a chunk's length differs from the index"));
            }
            match piece.slices.as_slice() {
                // One slice: trim in place rather than copy.
                [(from, to)] => {
                    data.truncate(*to);
                    data.drain(..*from);
                    bytes += data.len() as u64;
                    sink(data)
                }
                slices => slices.iter().try_for_each(|(from, to)| {
                    bytes += (to - from) as u64;
                    sink(data[*from..*to].to_vec())
                }),
            }
        },
        cancel,
        None,
        crate::restore::IdCheck::EachChunk,
    )?;
    Ok(RangeRead {
        chunks_read: wanted.len() as u64,
        bytes,
    })
}

/// The chunks overlapping `ranges` (clamped to `size`), in order, each once,
/// with the slices of it that the ranges cover.
fn plan(starts: &[u64], ranges: &[(u64, u64)], size: u64) -> Vec<Piece> {
    let mut plan: Vec<Piece> = Vec::new();
    for &(start, end) in ranges {
        let end = end.min(size);
        if start >= end {
            continue;
        }
        // The chunk holding `start`: the last one starting at or before it.
        let mut i = starts.partition_point(|&s| s <= start) - 1;
        while i + 1 < starts.len() && starts[i] < end {
            let from = (start.max(starts[i]) - starts[i]) as usize;
            let to = (end.min(starts[i + 1]) - starts[i]) as usize;
            match plan.last_mut() {
                Some(last) if last.chunk == i => last.slices.push((from, to)),
                _ => plan.push(Piece {
                    chunk: i,
                    slices: vec![(from, to)],
                }),
            }
            i += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(starts: &[u64], ranges: &[(u64, u64)]) -> Vec<(usize, Vec<(usize, usize)>)> {
        let size = *starts.last().unwrap();
        plan(starts, ranges, size)
            .into_iter()
            .map(|p| (p.chunk, p.slices))
            .collect()
    }

    #[test]
    fn plans_only_overlapping_chunks() {
        let starts = [0, 10, 20, 30];
        assert_eq!(slices(&starts, &[(12, 15)]), vec![(1, vec![(2, 5)])]);
        assert_eq!(
            slices(&starts, &[(5, 25)]),
            vec![(0, vec![(5, 10)]), (1, vec![(0, 10)]), (2, vec![(0, 5)])]
        );
        // Two ranges in one chunk read it once.
        assert_eq!(
            slices(&starts, &[(1, 2), (4, 12)]),
            vec![(0, vec![(1, 2), (4, 10)]), (1, vec![(0, 2)])]
        );
        // Clamped, empty and past-the-end ranges.
        assert_eq!(slices(&starts, &[(25, 99)]), vec![(2, vec![(5, 10)])]);
        assert!(slices(&starts, &[(7, 7), (30, 40), (50, 60)]).is_empty());
        assert_eq!(slices(&starts, &[(10, 20)]), vec![(1, vec![(0, 10)])]);
    }

    #[test]
    fn reversed_or_overlapping_ranges_are_refused() {
        assert_eq!(check_ranges(&[(5, 4)]).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        assert_eq!(
            check_ranges(&[(0, 10), (5, 12)]).unwrap_err().code(),
            "ERR_INVALID_ARGUMENT"
        );
        assert!(check_ranges(&[(0, 10), (10, 12), (20, 20)]).is_ok());
    }
}
