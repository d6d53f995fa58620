//! Space first: before prune writes anything, it deletes the packs that no
//! snapshot references at all (not even one it is about to remove) and that
//! no parity group protects. That is what a failed ingest leaves behind, for
//! instance on a full disk; writing parity for those packs first, as prune
//! otherwise would, needs the very space they hold.
//!
//! Safe under the exclusive lock: no ingest runs, and a pack no snapshot
//! references is garbage. An index file may still name such a pack until
//! prune writes its new index; until then ingest's pack check keeps anything
//! from deduplicating against it, and repair drops the line.

use std::collections::HashSet;

use crate::check::read_disk_index;
use crate::crypto::ChunkId;
use crate::error::Result;
use crate::pack::{idx_key, pack_key, parse_file_name, read_idx, read_pack_header, PackId};
use crate::parity;
use crate::repo::{Repository, DATA_DIR};

/// A pack reclaimed (or, in a dry run, reclaimable) before anything is written.
#[derive(Debug, Clone, Copy)]
pub struct Reclaimed {
    pub id: PackId,
    pub size: u64,
    /// Whether an index file lists it (then prune's plan counts it already).
    pub indexed: bool,
}

/// Deletes (unless `dry_run`) every unprotected pack whose chunks no snapshot
/// in `referenced` uses, with its `.idx`. A pack whose contents cannot be
/// read is kept: it might hold anything.
pub fn reclaim_unprotected_garbage(
    repo: &Repository,
    referenced: &HashSet<ChunkId>,
    dry_run: bool,
) -> Result<Vec<Reclaimed>> {
    let protected: HashSet<String> = {
        let _parity = parity::lock(repo, false)?;
        let (groups, damaged) = parity::load_groups(repo)?;
        // An unreadable group manifest hides which packs it protects: leave everything to repair.
        if !damaged.is_empty() {
            return Ok(Vec::new());
        }
        groups.into_iter().flat_map(|g| g.members).map(|m| m.pack).collect()
    };
    let index = read_disk_index(repo, None)?;
    let storage = &**repo.storage();
    let mut out = Vec::new();
    for entry in storage.list(DATA_DIR)? {
        let Some(id) = parse_file_name(&entry.name, "pack") else {
            continue;
        };
        if protected.contains(&hex::encode(id)) {
            continue;
        }
        let (key, size) = (pack_key(&id), entry.size);
        let indexed = index.records.contains_key(&id);
        let entries = match index.records.get(&id) {
            Some(record) => Some(record.entries.clone()),
            None => read_idx(storage, &idx_key(&id), id, repo.sealer())
                .ok()
                .filter(|r| r.size == size)
                .or_else(|| read_pack_header(storage, &key, id, repo.sealer()).ok())
                .map(|r| r.entries),
        };
        let Some(entries) = entries else { continue };
        if entries.iter().any(|e| referenced.contains(&e.id)) {
            continue;
        }
        if !dry_run {
            storage.delete(&key)?;
            storage.delete(&idx_key(&id))?;
        }
        out.push(Reclaimed { id, size, indexed });
    }
    if !dry_run {
        let gone: HashSet<PackId> = out.iter().map(|r| r.id).collect();
        repo.forget_packs(&gone);
    }
    Ok(out)
}
