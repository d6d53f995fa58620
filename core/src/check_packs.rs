//! Verify's pack reads: every pack's SHA-256 and header, checked once.
//!
//! A full verify needs each pack twice: whole, for its hash, and chunk by
//! chunk, for the item hashes. On object storage each read is a request and
//! the bytes cross the network, so reading everything twice cost as much as
//! the decoding itself. `WholePacks` serves the item pass from packs read
//! whole, the first time an item needs one: the pack is hashed as it arrives
//! and its chunks are sliced from memory. Only the packs no item touched are
//! read afterwards, by `read_packs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use crate::check::{DiskIndex, Findings, Issue, Level};
use crate::error::{Error, Result};
use crate::index::{ChunkLocation, IdMap};
use crate::pack::{pack_key, PackId, PackRecord, PACK_MAGIC};
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::Repository;
use crate::restore::BlobSource;
use crate::storage::objects::ObjectReader;

/// How `read_packs` reads: the level it reports, the chunks it also decodes
/// (a subset verify's data check), and the flag that stops it between packs.
pub struct PackReads<'a> {
    pub level: Level,
    pub decode: Option<&'a IdMap<()>>,
    pub cancel: &'a AtomicBool,
}

/// Reads every pack once, in parallel: hash and header. Returns the bytes
/// read and the packs whose bytes or header are not what the index says.
/// Progress counts on from `base`, the bytes earlier passes reported.
pub fn read_packs(
    repo: &Repository,
    reads: &PackReads,
    index: &DiskIndex,
    packs: Vec<PackId>,
    findings: &Findings,
    progress: ProgressFn<'_>,
    base: u64,
) -> Result<(u64, HashSet<PackId>)> {
    let total: u64 = packs.iter().map(|id| index.records[id].size).sum();
    let done = AtomicU64::new(0);
    let damaged = Mutex::new(HashSet::new());
    let throttle = Mutex::new(Throttle::new());
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<PackId>();
    for id in packs {
        jobs_tx.send(id).expect("receiver alive");
    }
    drop(jobs_tx);
    let report = |bytes: u64, last: bool| {
        let ready = throttle.lock().unwrap_or_else(|p| p.into_inner()).ready();
        if ready || last {
            progress(ProgressUpdate {
                bytes_processed: base + bytes,
                total_bytes: Some(base + total),
                message: format!("verifying packs ({} level)", reads.level.name()),
            });
        }
    };
    std::thread::scope(|s| {
        // One thread per request in flight: on object storage, `concurrency`.
        for _ in 0..repo.parallelism() {
            let jobs = jobs_rx.clone();
            let (done, report, damaged) = (&done, &report, &damaged);
            s.spawn(move || {
                for id in jobs {
                    if reads.cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let record = &index.records[&id];
                    match check_pack(repo, record, reads.decode, findings) {
                        Ok(true) => {}
                        Ok(false) => {
                            damaged.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                        }
                        Err(e) => findings.add(Issue::new("pack", e.to_string()).pack(hex::encode(id))),
                    }
                    let now = done.fetch_add(record.size, Ordering::Relaxed) + record.size;
                    report(now, false);
                }
            });
        }
    });
    crate::cancel::check_cancel(reads.cancel, "verify")?;
    report(done.load(Ordering::Relaxed), true);
    Ok((total, damaged.into_inner().unwrap_or_else(|p| p.into_inner())))
}

/// Hashes one pack as it streams and checks its header; false when either is
/// wrong. Chunks in `decode` are decoded on the way and reported when bad.
fn check_pack(repo: &Repository, record: &PackRecord, decode: Option<&IdMap<()>>, findings: &Findings) -> Result<bool> {
    let key = pack_key(&record.id);
    let mut reader = ObjectReader::open(&**repo.storage(), &key)?.ok_or_else(|| Error::Io {
        path: crate::storage::objects::describe(&**repo.storage(), &key),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let mut hasher = Sha256::new();
    for entry in &record.entries {
        let mut blob = vec![0u8; entry.length as usize];
        reader.read_exact(&mut blob)?;
        hasher.update(&blob);
        if decode.is_some_and(|d| d.contains_key(&entry.id)) {
            let decoded =
                crate::restore::decode_blob(repo, &entry.id, &record.id, entry.encoding, entry.raw_length, blob);
            if let Err(e @ Error::Corrupt { .. }) = decoded {
                findings.add(
                    Issue::new("chunk", e.to_string())
                        .pack(hex::encode(record.id))
                        .chunk(&entry.id),
                );
            }
        }
    }
    let tail = reader.read_to_end()?;
    hasher.update(&tail);
    Ok(judge_pack(repo, record, hasher.finalize().into(), &tail, findings))
}

/// The pack's verdict from its hash and the bytes after its last blob
/// (header, header length, magic); reports what is wrong.
fn judge_pack(repo: &Repository, record: &PackRecord, hash: [u8; 32], tail: &[u8], findings: &Findings) -> bool {
    let hex_id = hex::encode(record.id);
    if hash != record.id {
        findings.add(
            Issue::new("pack", format!("packs/data/{hex_id}.pack does not match its hash (bit rot or tampering); repair() rebuilds it from parity"))
                .pack(&hex_id),
        );
        return false;
    }
    // The hash matched, so the header is as written; check that it agrees with the index.
    let header_ok = tail.len() >= 12 && &tail[tail.len() - 8..] == PACK_MAGIC && {
        let header = &tail[..tail.len() - 12];
        crate::pack::open_header(repo.sealer(), header).ok().as_ref() == Some(&record.entries)
    };
    if !header_ok {
        findings.add(
            Issue::new(
                "pack",
                format!("the header of packs/data/{hex_id}.pack disagrees with the index"),
            )
            .pack(&hex_id),
        );
    }
    header_ok
}

/// What a spare buffer holds beyond its first pack: packs pass their target
/// size by up to a chunk.
const PACK_HEADROOM: usize = 4 << 20;

/// A pack's place in `WholePacks`.
enum Slot {
    /// One thread is reading it; the others wait.
    Loading,
    /// Checked and intact, held for the chunks still to come.
    Held { bytes: Arc<Vec<u8>>, used: u64 },
    /// Checked, and no longer held (evicted, damaged or unreadable).
    Done,
}

#[derive(Default)]
struct State {
    slots: HashMap<PackId, Slot>,
    held: usize,
    clock: u64,
    damaged: HashSet<PackId>,
    bytes: u64,
    /// The packs in the order the item pass first needs them, and each one's place.
    plan: Vec<PackId>,
    place: HashMap<PackId, usize>,
    /// Places below this one were asked for by the item pass.
    frontier: usize,
    /// The next place the prefetchers read.
    next_prefetch: usize,
    stopped: bool,
}

/// Threads that read packs ahead of the item pass, and how many packs past
/// its newest they read: enough that decoding never waits for a download, few
/// enough to bound memory. A local disk keeps up with two; a bucket answers
/// each GET after a delay, so half its requests in flight read ahead (with
/// 8, a full verify of 268 MB on a local Garage took 0.87 s instead of
/// 1.1 s, timed as a whole process).
fn read_ahead(repo: &Repository) -> (usize, usize) {
    match repo.storage().concurrency() {
        None => (2, 3),
        Some(requests) => {
            let readers = (requests / 2).max(2);
            (readers, readers + 2)
        }
    }
}

/// Packs read whole, checked, and held (at most `capacity` at once, least
/// recently used first out) to serve the item pass; see the module comment.
pub struct WholePacks<'a> {
    repo: &'a Repository,
    index: &'a DiskIndex,
    /// Packs that exist with their recorded size; others are left to ranged reads.
    readable: &'a HashSet<PackId>,
    findings: &'a Findings<'a>,
    capacity: usize,
    /// See `read_ahead`.
    prefetchers: usize,
    ahead: usize,
    state: Mutex<State>,
    loaded: Condvar,
    /// Buffers of evicted packs, read into again: a fresh 8 MB buffer is
    /// faulted in 4 KiB at a time (page faults were a sixth of a bucket
    /// verify's CPU, though most come from per-chunk buffers).
    spare: Mutex<Vec<Vec<u8>>>,
}

impl<'a> WholePacks<'a> {
    pub fn new(
        repo: &'a Repository,
        index: &'a DiskIndex,
        readable: &'a HashSet<PackId>,
        findings: &'a Findings<'a>,
    ) -> WholePacks<'a> {
        let (prefetchers, ahead) = read_ahead(repo);
        WholePacks {
            repo,
            index,
            readable,
            findings,
            // One pack per reader, those read ahead, and a little for packs
            // shared by neighbouring runs.
            capacity: repo.parallelism() + ahead + 2,
            prefetchers,
            ahead,
            state: Mutex::new(State::default()),
            loaded: Condvar::new(),
            spare: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the pack was checked and found damaged.
    pub fn is_damaged(&self, pack: &PackId) -> bool {
        self.lock().damaged.contains(pack)
    }

    /// The packs not checked yet, the bytes checked so far, and the damaged ones.
    pub fn finish(self, packs: &[PackId]) -> (Vec<PackId>, u64, HashSet<PackId>) {
        let state = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let rest = packs
            .iter()
            .filter(|p| !state.slots.contains_key(*p))
            .copied()
            .collect();
        (rest, state.bytes, state.damaged)
    }

    /// The packs in the order the item pass will first need them: the
    /// prefetchers read them ahead of it.
    pub fn plan(&self, packs: Vec<PackId>) {
        let mut state = self.lock();
        state.place = packs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        state.plan = packs;
        state.frontier = 0;
        state.next_prefetch = 0;
        state.stopped = false;
    }

    /// How many threads should run `prefetch`.
    pub fn prefetchers(&self) -> usize {
        self.prefetchers
    }

    /// A prefetcher: reads the planned packs, at most `ahead` past the item
    /// pass, until the plan is done or `stop`.
    pub fn prefetch(&self) {
        loop {
            let id = {
                let mut state = self.lock();
                loop {
                    if state.stopped || state.next_prefetch >= state.plan.len() {
                        return;
                    }
                    // Packs the item pass already reached were read by it.
                    state.next_prefetch = state.next_prefetch.max(state.frontier);
                    if state.next_prefetch < state.frontier + self.ahead {
                        break;
                    }
                    state = self.loaded.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                if state.next_prefetch >= state.plan.len() {
                    return;
                }
                state.next_prefetch += 1;
                state.plan[state.next_prefetch - 1]
            };
            self.obtain(&id);
        }
    }

    /// Ends the prefetchers (the item pass is over).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.loaded.notify_all();
    }

    /// The item pass needs `id`: moves the frontier the prefetchers follow.
    fn pack(&self, id: &PackId) -> Option<Arc<Vec<u8>>> {
        {
            let mut state = self.lock();
            if let Some(&place) = state.place.get(id) {
                if place >= state.frontier {
                    state.frontier = place + 1;
                    drop(state);
                    self.loaded.notify_all();
                }
            }
        }
        self.obtain(id)
    }

    /// The whole pack when it is held or read now for the first time; None
    /// once it was checked and let go, or when it is damaged or unreadable.
    fn obtain(&self, id: &PackId) -> Option<Arc<Vec<u8>>> {
        let mut state = self.lock();
        loop {
            state.clock += 1;
            let now = state.clock;
            match state.slots.get_mut(id) {
                Some(Slot::Held { bytes, used }) => {
                    *used = now;
                    return Some(bytes.clone());
                }
                Some(Slot::Done) => return None,
                Some(Slot::Loading) => {
                    state = self.loaded.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                None if !self.readable.contains(id) => return None,
                None => break,
            }
        }
        state.slots.insert(*id, Slot::Loading);
        drop(state);
        let record = &self.index.records[id];
        let checked = self.read_and_judge(record);
        let mut state = self.lock();
        state.bytes += record.size;
        let slot = match &checked {
            Some(bytes) => {
                state.held += 1;
                state.clock += 1;
                Slot::Held {
                    bytes: bytes.clone(),
                    used: state.clock,
                }
            }
            None => Slot::Done,
        };
        state.slots.insert(*id, slot);
        self.evict(&mut state);
        drop(state);
        self.loaded.notify_all();
        checked
    }

    /// One request for the whole pack, then its hash and header.
    fn read_and_judge(&self, record: &PackRecord) -> Option<Arc<Vec<u8>>> {
        let mut bytes = self.spare().pop().unwrap_or_default();
        if bytes.capacity() < record.size as usize {
            // Room for the larger packs that follow, so that the buffer is not moved (and faulted in) again.
            bytes = Vec::with_capacity(record.size as usize + PACK_HEADROOM);
        }
        let read = self
            .repo
            .storage()
            .read_range_into(&pack_key(&record.id), 0, record.size as usize, &mut bytes);
        match read {
            Ok(()) => {}
            Err(e) => {
                // As the pack pass reports it; the item pass then reads ranges and reports its own error.
                self.findings
                    .add(Issue::new("pack", e.to_string()).pack(hex::encode(record.id)));
                return None;
            }
        };
        let blobs: u64 = record.entries.iter().map(|e| e.length as u64).sum();
        let tail = bytes.get(blobs as usize..).unwrap_or_default();
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if judge_pack(self.repo, record, hash, tail, self.findings) {
            Some(Arc::new(bytes))
        } else {
            self.lock().damaged.insert(record.id);
            self.spare().push(bytes);
            None
        }
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn evict(&self, state: &mut State) {
        while state.held > self.capacity {
            let oldest = state
                .slots
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Held { used, .. } => Some((*used, *id)),
                    _ => None,
                })
                .min();
            let Some((_, id)) = oldest else { break };
            if let Some(Slot::Held { bytes, .. }) = state.slots.insert(id, Slot::Done) {
                // Unless a reader still slices it; then it is freed when that reader is done.
                if let Ok(buffer) = Arc::try_unwrap(bytes) {
                    let mut spare = self.spare();
                    if spare.len() < self.capacity {
                        spare.push(buffer);
                    }
                }
            }
            state.held -= 1;
        }
    }
}

impl BlobSource for WholePacks<'_> {
    fn blobs(&self, pack: &PackId, locs: &[ChunkLocation]) -> Option<Vec<Vec<u8>>> {
        let bytes = self.pack(pack)?;
        locs.iter()
            .map(|l| {
                let start = usize::try_from(l.offset).ok()?;
                let stored = bytes.get(start..start.checked_add(l.length as usize)?)?;
                let mut blob = crate::bufpool::take(stored.len());
                blob.extend_from_slice(stored);
                Some(blob)
            })
            .collect()
    }
}
