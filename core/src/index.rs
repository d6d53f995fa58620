//! The global chunk index: chunk ID -> (pack, offset, lengths), shared by
//! every snapshot. On disk it is the set of files in `index/`, each a list of
//! pack records; in memory it is one hash map.
//!
//! ```text
//! index file (plain) = "CAINDEX1" u32le(pack_count) (pack_id[32] u64le(pack_size) entries)*
//! index file (encrypted) = nonce || AES-GCM(plain, aad "containerarchive:index")
//! file name = hex SHA-256 of the stored file bytes
//! ```

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::crypto::ChunkId;
use crate::pack::{decode_entries, encode_entries, PackId, PackRecord};

pub const INDEX_MAGIC: &[u8; 8] = b"CAINDEX1";

/// Chunk and pack IDs are already uniform hashes: use their first 8 bytes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= (*b as u64) << (8 * i);
        }
    }
}

pub type IdMap<V> = HashMap<[u8; 32], V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    pub pack: u32,
    pub offset: u64,
    pub length: u32,
    pub raw_length: u32,
    pub encoding: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackInfo {
    pub id: PackId,
    pub size: u64,
}

const SHARDS: usize = 4;

fn shard(id: &ChunkId) -> usize {
    id[31] as usize % SHARDS
}

/// Inserts the chunks of `records` that fall in `maps` (the shards from
/// `first` on); returns the further copies, for `others`.
fn fill_shards(
    maps: &mut [IdMap<ChunkLocation>],
    first: usize,
    records: &[(u32, &PackRecord)],
    unusable: &HashSet<u32>,
) -> Vec<(ChunkId, ChunkLocation)> {
    let mut others = Vec::new();
    for (slot, record) in records {
        let mut offset = 0u64;
        for e in &record.entries {
            let location = ChunkLocation {
                pack: *slot,
                offset,
                length: e.length,
                raw_length: e.raw_length,
                encoding: e.encoding,
            };
            offset += e.length as u64;
            let Some(map) = shard(&e.id).checked_sub(first).and_then(|i| maps.get_mut(i)) else {
                continue;
            };
            match map.entry(e.id) {
                Entry::Vacant(v) => {
                    v.insert(location);
                }
                // A copy in a pack known to be unusable gives way to the new one.
                Entry::Occupied(mut o) if unusable.contains(&o.get().pack) => {
                    let old = o.insert(location);
                    others.push((e.id, old));
                }
                Entry::Occupied(_) => others.push((e.id, location)),
            }
        }
    }
    others
}

#[derive(Default)]
pub struct ChunkIndex {
    packs: Vec<PackInfo>,
    pack_slots: IdMap<u32>,
    /// Split by the id's last byte, so a large index loads on several threads.
    chunks: [IdMap<ChunkLocation>; SHARDS],
    /// Index files already merged into memory.
    pub loaded_files: HashSet<String>,
    /// Packs written by this process that no index file lists yet.
    unpersisted: Vec<PackRecord>,
    /// Further copies of chunks stored more than once (concurrent ingests, or
    /// a chunk stored anew because its pack was lost). Rare, so kept apart.
    others: IdMap<Vec<ChunkLocation>>,
    /// Slots of packs an ingest found missing or of the wrong size.
    unusable: HashSet<u32>,
}

impl ChunkIndex {
    /// Adds a pack's chunks; a chunk already indexed keeps its first location.
    pub fn add_pack(&mut self, record: &PackRecord) {
        self.add_packs(&[record], 1);
    }

    /// Adds packs in order, as `add_pack` one by one would, with the chunk
    /// maps filled by up to `threads` threads (loading a 1 TB index is
    /// mostly inserting a million chunks).
    pub fn add_packs(&mut self, records: &[&PackRecord], threads: usize) {
        let mut new = Vec::with_capacity(records.len());
        for record in records {
            if self.pack_slots.contains_key(&record.id) {
                continue;
            }
            let slot = self.packs.len() as u32;
            self.packs.push(PackInfo {
                id: record.id,
                size: record.size,
            });
            self.pack_slots.insert(record.id, slot);
            new.push((slot, *record));
        }
        let chunks: usize = new.iter().map(|(_, r)| r.entries.len()).sum();
        self.chunks.iter_mut().for_each(|m| m.reserve(chunks / SHARDS + 1));
        let unusable = &self.unusable;
        let per_thread = SHARDS.div_ceil(threads.clamp(1, SHARDS));
        let others: Vec<Vec<(ChunkId, ChunkLocation)>> = if per_thread == SHARDS || chunks < 4096 {
            vec![fill_shards(&mut self.chunks, 0, &new, unusable)]
        } else {
            let new = &new;
            std::thread::scope(|s| {
                let workers: Vec<_> = self
                    .chunks
                    .chunks_mut(per_thread)
                    .enumerate()
                    .map(|(i, maps)| s.spawn(move || fill_shards(maps, i * per_thread, new, unusable)))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        for (id, location) in others.into_iter().flatten() {
            self.others.entry(id).or_default().push(location);
        }
    }

    /// Every location of a chunk, the preferred one first.
    pub fn locations(&self, id: &ChunkId) -> Vec<ChunkLocation> {
        let mut out: Vec<ChunkLocation> = self.chunks[shard(id)].get(id).copied().into_iter().collect();
        if let Some(more) = self.others.get(id) {
            out.extend_from_slice(more);
        }
        out
    }

    /// Makes `location` (one of the chunk's copies) the one reads and dedup use.
    pub fn prefer(&mut self, id: &ChunkId, location: ChunkLocation) {
        let (Some(primary), Some(more)) = (self.chunks[shard(id)].get_mut(id), self.others.get_mut(id)) else {
            return;
        };
        if let Some(i) = more.iter().position(|l| *l == location) {
            more[i] = std::mem::replace(primary, location);
        }
    }

    /// Records whether a pack is usable, as an ingest found it on disk.
    pub fn set_usable(&mut self, pack: &PackId, usable: bool) {
        if let Some(&slot) = self.pack_slots.get(pack) {
            if usable {
                self.unusable.remove(&slot);
            } else {
                self.unusable.insert(slot);
            }
        }
    }

    /// Whether the chunk's preferred copy is in a pack not known to be unusable.
    pub fn usable(&self, id: &ChunkId) -> bool {
        self.chunks[shard(id)]
            .get(id)
            .is_some_and(|l| !self.unusable.contains(&l.pack))
    }

    /// Adds a freshly written pack that still has to be listed in an index file.
    pub fn add_unpersisted(&mut self, record: PackRecord) {
        // Just written: usable, even if it replaced a lost pack of the same name.
        if let Some(slot) = self.pack_slots.get(&record.id) {
            self.unusable.remove(slot);
        }
        self.add_pack(&record);
        self.unpersisted.push(record);
    }

    pub fn take_unpersisted(&mut self) -> Vec<PackRecord> {
        std::mem::take(&mut self.unpersisted)
    }

    pub fn return_unpersisted(&mut self, mut records: Vec<PackRecord>) {
        records.append(&mut self.unpersisted);
        self.unpersisted = records;
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.chunks[shard(id)].contains_key(id)
    }

    pub fn get(&self, id: &ChunkId) -> Option<ChunkLocation> {
        self.chunks[shard(id)].get(id).copied()
    }

    pub fn pack(&self, slot: u32) -> PackInfo {
        self.packs[slot as usize]
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.iter().map(|m| m.len()).sum()
    }
}

pub fn encode_index_file(records: &[PackRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.id);
        out.extend_from_slice(&r.size.to_le_bytes());
        encode_entries(&r.entries, &mut out);
    }
    out
}

pub fn decode_index_file(bytes: &[u8]) -> Result<Vec<PackRecord>, String> {
    if bytes.len() < 12 || &bytes[..8] != INDEX_MAGIC {
        return Err("the magic is missing".into());
    }
    let count = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let mut rest = &bytes[12..];
    // A record takes at least 44 bytes: never reserve more than the input can hold.
    let mut records = Vec::with_capacity(count.min(rest.len() / 44));
    for _ in 0..count {
        if rest.len() < 40 {
            return Err("a pack record is truncated".into());
        }
        let id: PackId = rest[..32].try_into().expect("32 bytes");
        let size = u64::from_le_bytes(rest[32..40].try_into().expect("8 bytes"));
        let (entries, tail) = decode_entries(&rest[40..])?;
        records.push(PackRecord { id, size, entries });
        rest = tail;
    }
    if !rest.is_empty() {
        return Err("trailing bytes after the last pack record".into());
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::PackEntry;

    fn record(seed: u8, chunks: &[u8]) -> PackRecord {
        PackRecord {
            id: [seed; 32],
            size: 1000 + seed as u64,
            entries: chunks
                .iter()
                .map(|c| PackEntry {
                    id: [*c; 32],
                    encoding: 1,
                    length: 10 * *c as u32 + 1,
                    raw_length: 99,
                })
                .collect(),
        }
    }

    #[test]
    fn index_file_round_trips_and_rejects_damage() {
        let records = vec![record(1, &[1, 2, 3]), record(2, &[4]), record(3, &[])];
        let bytes = encode_index_file(&records);
        assert_eq!(decode_index_file(&bytes).unwrap(), records);
        assert!(decode_index_file(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_index_file(&extra).is_err());
        assert!(decode_index_file(b"CAINDEX0\0\0\0\0").is_err());
    }

    #[test]
    fn locations_follow_entry_order_and_first_copy_wins() {
        let mut index = ChunkIndex::default();
        index.add_pack(&record(1, &[1, 2, 3]));
        index.add_pack(&record(2, &[2, 5]));
        let loc = index.get(&[3; 32]).unwrap();
        assert_eq!((loc.pack, loc.offset), (0, 11 + 21));
        assert_eq!(index.get(&[2; 32]).unwrap().pack, 0);
        assert_eq!(index.get(&[5; 32]).unwrap().offset, 21);
        assert_eq!(index.chunk_count(), 4);
        assert!(!index.contains(&[9; 32]));
    }

    #[test]
    fn loading_on_several_threads_gives_what_one_by_one_gives() {
        // Overlapping packs, one listed twice, and one copy in an unusable pack.
        let id = |n: u32| -> ChunkId {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            id[31] = (n % 7) as u8;
            id
        };
        let records: Vec<PackRecord> = (0..800u32)
            .map(|p| PackRecord {
                id: id(1_000_000 + p % 790),
                size: 0,
                entries: (0..8)
                    .map(|c| PackEntry {
                        id: id(p * 5 + c),
                        encoding: 0,
                        length: 10 + c,
                        raw_length: 20 + c,
                    })
                    .collect(),
            })
            .collect();
        let mut one = ChunkIndex::default();
        let mut many = ChunkIndex::default();
        for index in [&mut one, &mut many] {
            index.add_pack(&records[0]);
            index.set_usable(&records[0].id, false);
        }
        records.iter().for_each(|r| one.add_pack(r));
        many.add_packs(&records.iter().collect::<Vec<_>>(), 4);
        assert_eq!(one.packs(), many.packs());
        assert_eq!(one.chunk_count(), many.chunk_count());
        for n in 0..800 * 5 + 8 {
            assert_eq!(one.locations(&id(n)), many.locations(&id(n)), "chunk {n}");
        }
    }
}
