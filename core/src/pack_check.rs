//! Which packs an ingest found intact, so that it never dedups against a
//! chunk whose pack is lost.
//!
//! A local disk answers each pack with a stat. On a bucket a stat is a HEAD
//! request, and a re-ingest of 1 GiB touched every one of its ~130 packs, one
//! round trip each, on the threads that hash chunks. A listing returns up to
//! 1,000 packs per request, so once the HEADs made reach the requests a full
//! listing of `packs/data` would take, the rest come from one listing: never
//! more than twice the requests of the cheaper way, whatever the sizes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::crypto::ChunkId;
use crate::index::{ChunkLocation, PackInfo};
use crate::pack::{pack_key, parse_file_name, PackId};
use crate::repo::Repository;
use crate::repo::DATA_DIR;

/// Objects a listing request returns (S3's page size).
const LISTED_PER_REQUEST: usize = 1000;

#[derive(Default)]
pub struct PackCheck {
    verdicts: Mutex<HashMap<PackId, bool>>,
    /// HEAD requests made so far (object storage only).
    stats: AtomicUsize,
    /// Every pack's size from one listing of `packs/data`, once taken;
    /// `None` when the listing failed (stats go on).
    listed: OnceLock<Option<HashMap<PackId, u64>>>,
}

impl PackCheck {
    /// Whether some copy of the chunk is in a pack that exists with its
    /// indexed size; that copy becomes the one the index prefers.
    pub fn has_usable_copy(&self, repo: &Repository, id: &ChunkId) -> bool {
        let candidates: Vec<(ChunkLocation, PackInfo)> = {
            let index = repo.index();
            index
                .locations(id)
                .into_iter()
                .map(|l| (l, index.pack(l.pack)))
                .collect()
        };
        for (i, (location, pack)) in candidates.into_iter().enumerate() {
            if self.pack_ok(repo, pack) {
                if i > 0 {
                    repo.index_mut().prefer(id, location);
                }
                return true;
            }
        }
        false
    }

    /// This ingest stored the pack (it may have the name and bytes of a lost
    /// pack it replaces): it is intact whatever a listing said.
    pub fn note_stored(&self, id: PackId) {
        self.verdicts.lock().unwrap_or_else(|p| p.into_inner()).insert(id, true);
    }

    fn pack_ok(&self, repo: &Repository, pack: PackInfo) -> bool {
        if let Some(&ok) = self.verdicts.lock().unwrap_or_else(|p| p.into_inner()).get(&pack.id) {
            return ok;
        }
        // No lock is held across the request; two workers may both ask about a pack once.
        let found = match self.listing(repo) {
            Some(sizes) => sizes.get(&pack.id) == Some(&pack.size),
            None => repo
                .storage()
                .size(&pack_key(&pack.id))
                .is_ok_and(|size| size == Some(pack.size)),
        };
        // A verdict recorded meanwhile (the writer just wrote this pack) wins.
        let ok = *self
            .verdicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pack.id)
            .or_insert(found);
        repo.index_mut().set_usable(&pack.id, ok);
        ok
    }

    /// The listing, when it is (or now becomes) cheaper than further stats.
    fn listing(&self, repo: &Repository) -> Option<&HashMap<PackId, u64>> {
        repo.storage().concurrency()?;
        if let Some(listed) = self.listed.get() {
            return listed.as_ref();
        }
        let requests_to_list = repo.index().packs().len().div_ceil(LISTED_PER_REQUEST);
        if self.stats.fetch_add(1, Ordering::Relaxed) < requests_to_list {
            return None;
        }
        // One thread lists; the others wait for it here.
        self.listed.get_or_init(|| list_packs(repo)).as_ref()
    }
}

/// Every pack in `packs/data` with its size.
fn list_packs(repo: &Repository) -> Option<HashMap<PackId, u64>> {
    let entries = repo.storage().list(DATA_DIR).ok()?;
    Some(
        entries
            .into_iter()
            .filter_map(|e| Some((parse_file_name(&e.name, "pack")?, e.size)))
            .collect(),
    )
}
