//! Ingest: source -> chunk -> (hash, compress, encrypt) x N threads -> pack -> index -> snapshot.
//!
//! The calling thread chunks; worker threads hash, look up, compress and
//! seal chunks in parallel; one writer thread appends new chunks to packs,
//! which uploader threads store while the next pack fills;
//! one hasher thread computes each item's SHA-256 from the same (shared)
//! chunk buffers, in stream order, so it costs no second read and no copy.
//! Bounded channels between the stages keep memory flat for any stream length.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, TarScanner, CATALOG_ITEM_TYPE};
use crate::chunker::{ChunkParams, Chunker};
use crate::codec::{compress, BlobEncoding};
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::fsutil::{now_iso8601, random_hex};
use crate::index::PackInfo;
use crate::pack::{PackWriter, SealedPack};
use crate::pack_check::PackCheck;
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::Repository;
use crate::snapshot::{Manifest, ManifestItem, PLAIN_MANIFEST_VERSION};

pub struct IngestItem<R> {
    pub name: String,
    pub item_type: String,
    /// Expected length, for progress percentages only.
    pub size_hint: Option<u64>,
    pub reader: R,
}

#[derive(Debug, Default, Clone)]
pub struct IngestOptions {
    pub tags: BTreeMap<String, String>,
    /// Overrides `createdAt`; only the documented test hook sets it.
    pub created_at: Option<String>,
    /// Overrides the host recorded in the manifest (default: this machine's name).
    pub host: Option<String>,
    /// How long to wait for a conflicting lock.
    pub lock_timeout: std::time::Duration,
    /// Per item name: whether to make a tar catalog, overriding the default
    /// (items of type `volume-tar` or `tar` are catalogued).
    pub catalog: BTreeMap<String, bool>,
}

impl IngestOptions {
    /// Whether the item gets a tar catalog.
    pub fn catalogs(&self, name: &str, item_type: &str) -> bool {
        self.catalog
            .get(name)
            .copied()
            .unwrap_or(matches!(item_type, "volume-tar" | "tar"))
    }
}

/// Checks item names before anything is read or written.
pub fn validate_items<R>(items: &[IngestItem<R>]) -> Result<()> {
    if items.is_empty() {
        return Err(Error::invalid("a snapshot needs at least one item"));
    }
    let mut seen = HashSet::new();
    for item in items {
        if item.name.is_empty() {
            return Err(Error::invalid("item names must be non-empty strings"));
        }
        if !seen.insert(item.name.as_str()) {
            return Err(Error::invalid(format!(
                "item name {:?} is used twice; item names in a snapshot must be unique",
                item.name
            )));
        }
    }
    Ok(())
}

/// One worker per core (at most 16): the default of `Repository::workers`.
pub fn worker_count() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16)
}

/// Stores `items` as one snapshot. On any failure no snapshot is written;
/// packs already completed stay indexed and are reclaimed by prune.
pub fn ingest<R: Read + Send>(
    repo: &Repository,
    items: Vec<IngestItem<R>>,
    options: &IngestOptions,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<Manifest> {
    validate_items(&items)?;
    if options
        .host
        .as_ref()
        .is_some_and(|h| h.len() > crate::snapshot::MAX_HOST_LEN)
    {
        return Err(Error::invalid(format!(
            "host is longer than {} bytes; pass a shorter host name",
            crate::snapshot::MAX_HOST_LEN
        )));
    }
    let _lock = crate::lock::acquire_until(repo.storage(), false, options.lock_timeout, cancel)?;
    repo.sync_index()?;
    let outcome = run_pipeline(repo, items, options, progress, cancel);
    // Index and protect every pack written, even when the ingest failed:
    // packs -> idx -> index -> parity -> snapshot.
    let protected = repo.flush_index().and_then(|()| repo.cover_parity());
    let (items, stats) = outcome?;
    protected?;
    let mut manifest = Manifest {
        version: PLAIN_MANIFEST_VERSION,
        id: random_hex(32),
        created_at: options.created_at.clone().unwrap_or_else(now_iso8601),
        tags: options.tags.clone(),
        host: Some(options.host.clone().unwrap_or_else(crate::fsutil::hostname)),
        user: Some(crate::fsutil::username()),
        original_size: items.iter().filter(|i| i.is_user_item()).map(|i| i.size).sum(),
        items,
        new_chunks: stats.new_chunks,
        reused_chunks: stats.reused_chunks,
        stored_size: stats.stored_size,
    };
    manifest.version = manifest.needed_version();
    repo.write_snapshot(&manifest)?;
    Ok(manifest)
}

/// What storing a chunk stream did: the target chunk id of every chunk, in
/// the order pushed, and what was new.
#[derive(Default)]
pub struct WriteStats {
    pub ids: Vec<ChunkId>,
    pub new_chunks: u64,
    pub reused_chunks: u64,
    pub stored_size: u64,
}

/// A chunk's plaintext, shared by the worker and the item hasher.
pub type ChunkData = Arc<Vec<u8>>;

struct Job {
    seq: usize,
    data: ChunkData,
}

/// What the item hasher receives: a chunk, or `None` at the end of an item.
type HashFeed = Option<ChunkData>;

/// A chunk after the worker stage; `blob` is `None` when the index already has it.
struct Processed {
    seq: usize,
    id: ChunkId,
    raw_len: u32,
    blob: Option<(BlobEncoding, ChunkData)>,
}

struct ItemShape {
    name: String,
    item_type: String,
    size: u64,
    chunk_range: std::ops::Range<usize>,
}

/// Where a producer hands plaintext chunks to [`store_chunks`], in stream order.
pub struct ChunkFeed {
    jobs: Sender<Job>,
    seq: usize,
}

impl ChunkFeed {
    /// Queues one chunk (blocks while the pipeline is full, so memory stays bounded).
    pub fn push(&mut self, data: ChunkData) -> Result<()> {
        self.jobs
            .send(Job { seq: self.seq, data })
            .map_err(|_| Error::Internal("the ingest pipeline stopped early".into()))?;
        self.seq += 1;
        Ok(())
    }

    /// How many chunks were pushed so far: the index the next one gets in `WriteStats::ids`.
    pub fn position(&self) -> usize {
        self.seq
    }
}

/// Stores the chunks `produce` pushes, with the boundaries it gives them:
/// worker threads id, look up, compress and seal them; one writer appends
/// new ones to packs. Returns what `produce` returned and the write stats.
/// Packs completed are in the index as unpersisted records; the caller
/// flushes the index and covers parity, even on failure.
pub fn store_chunks<T>(
    repo: &Repository,
    produce: impl FnOnce(&mut ChunkFeed) -> Result<T>,
) -> Result<(T, WriteStats)> {
    let workers = repo.workers();
    let (job_tx, job_rx) = bounded::<Job>(workers * 2);
    let (done_tx, done_rx) = bounded::<Processed>(workers * 2);
    let packs = PackCheck::default();
    let (produced, stats) = thread::scope(|s| {
        for _ in 0..workers {
            let (jobs, done, packs) = (job_rx.clone(), done_tx.clone(), &packs);
            // Named, so the `threads` cap can be seen from outside (`ps -L`, /proc).
            thread::Builder::new()
                .name("ca-worker".into())
                .spawn_scoped(s, move || process_chunks(repo, packs, jobs, done))
                .expect("an ingest worker thread starts");
        }
        drop((job_rx, done_tx));
        let packs = &packs;
        let writer = s.spawn(move || write_chunks(repo, packs, done_rx));
        let mut feed = ChunkFeed { jobs: job_tx, seq: 0 };
        let produced = produce(&mut feed);
        // Closing the feed lets the workers and the writer finish.
        drop(feed);
        let stats = writer
            .join()
            .unwrap_or_else(|p| Err(Error::Internal(format!("pack writer panicked: {}", panic_text(&p)))));
        (produced, stats)
    });
    // A writer failure explains a producer that found the pipeline closed.
    let stats = stats?;
    Ok((produced?, stats))
}

fn run_pipeline<R: Read + Send>(
    repo: &Repository,
    items: Vec<IngestItem<R>>,
    options: &IngestOptions,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<(Vec<ManifestItem>, WriteStats)> {
    let (hash_tx, hash_rx) = bounded::<HashFeed>(repo.workers() * 2 + 2);
    let (digest_tx, digest_rx) = bounded::<Vec<ItemDigest>>(1);
    let total = items.iter().map(|i| i.size_hint).sum::<Option<u64>>();
    let scan: Vec<bool> = items.iter().map(|i| options.catalogs(&i.name, &i.item_type)).collect();
    let (stored, hashed) = thread::scope(|s| {
        let hasher = s.spawn(move || {
            // Bounded(1) and sent once: never blocks, even if nobody receives.
            let _ = digest_tx.send(hash_items(hash_rx, &scan));
        });
        let stored = store_chunks(repo, move |feed| {
            let shapes = chunk_items(repo, items, total, feed, hash_tx, progress, cancel)?;
            // The hasher has all it needs once the items are chunked; its
            // catalogs go into the same pipeline as hidden items.
            let digests = digest_rx
                .recv()
                .map_err(|_| Error::Internal("the item hasher stopped early".into()))?;
            let catalogs = store_catalogs(repo, feed, &shapes, &digests, cancel)?;
            Ok((shapes, digests, catalogs))
        });
        let hashed = hasher
            .join()
            .map_err(|p| Error::Internal(format!("item hasher panicked: {}", panic_text(&p))));
        (stored, hashed)
    });
    let ((shapes, digests, catalogs), stats) = stored?;
    hashed?;
    if digests.len() != shapes.len() {
        return Err(Error::Internal("the item hasher missed an item".into()));
    }
    let chunks = |range: std::ops::Range<usize>| stats.ids[range].iter().map(hex::encode).collect();
    let mut manifest_items: Vec<ManifestItem> = shapes
        .iter()
        .zip(&digests)
        .map(|(s, d)| ManifestItem {
            name: s.name.clone(),
            item_type: s.item_type.clone(),
            size: s.size,
            chunks: chunks(s.chunk_range.clone()),
            sha256: Some(hex::encode(d.sha256)),
            catalog_of: None,
            entries: None,
            catalog_error: match &d.catalog {
                Some(Err(why)) => Some(why.clone()),
                _ => None,
            },
        })
        .collect();
    let mut names: HashSet<String> = shapes.iter().map(|s| s.name.clone()).collect();
    for c in catalogs {
        let mut name = format!("{} (tar catalog)", c.of);
        while !names.insert(name.clone()) {
            name.push('~');
        }
        manifest_items.push(ManifestItem {
            name,
            item_type: CATALOG_ITEM_TYPE.into(),
            size: c.size,
            chunks: chunks(c.chunk_range),
            sha256: Some(hex::encode(c.sha256)),
            catalog_of: Some(c.of),
            entries: Some(c.entries),
            catalog_error: None,
        });
    }
    Ok((manifest_items, stats))
}

/// A hidden catalog item as stored.
struct CatalogShape {
    of: String,
    entries: u64,
    size: u64,
    sha256: [u8; 32],
    chunk_range: std::ops::Range<usize>,
}

/// Chunks each item's catalog into the feed, with the repository's chunker,
/// so an unchanged catalog deduplicates against the last snapshot's.
fn store_catalogs(
    repo: &Repository,
    feed: &mut ChunkFeed,
    shapes: &[ItemShape],
    digests: &[ItemDigest],
    cancel: &AtomicBool,
) -> Result<Vec<CatalogShape>> {
    let params = ChunkParams::new(&repo.config.chunking, repo.chunker_seed());
    let mut out = Vec::new();
    for (shape, digest) in shapes.iter().zip(digests) {
        let Some(Ok(catalog)) = &digest.catalog else { continue };
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled("the ingest was cancelled".into()));
        }
        let first = feed.position();
        let mut chunker = Chunker::new(catalog.lines.as_slice(), &params);
        while let Some(data) = chunker.next_chunk().map_err(|e| Error::Internal(e.to_string()))? {
            feed.push(Arc::new(data))?;
        }
        out.push(CatalogShape {
            of: shape.name.clone(),
            entries: catalog.entries,
            size: catalog.lines.len() as u64,
            sha256: Sha256::digest(&catalog.lines).into(),
            chunk_range: first..feed.position(),
        });
    }
    Ok(out)
}

pub fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// One item's SHA-256, and its tar catalog when it was scanned for one.
struct ItemDigest {
    sha256: [u8; 32],
    catalog: Option<std::result::Result<Catalog, String>>,
}

/// Hashes each item's chunks in order, and scans those flagged in `scan` as
/// tar streams; one digest per item end marker.
fn hash_items(feed: Receiver<HashFeed>, scan: &[bool]) -> Vec<ItemDigest> {
    let mut digests = Vec::new();
    let mut hasher = Sha256::new();
    let new_scanner = |i: usize| scan.get(i).copied().unwrap_or(false).then(TarScanner::new);
    let mut scanner = new_scanner(0);
    for message in feed {
        match message {
            Some(data) => {
                hasher.update(&*data);
                if let Some(s) = scanner.as_mut() {
                    s.feed(&data);
                }
            }
            None => {
                digests.push(ItemDigest {
                    sha256: hasher.finalize_reset().into(),
                    catalog: scanner.take().map(TarScanner::finish),
                });
                scanner = new_scanner(digests.len());
            }
        }
    }
    digests
}

fn chunk_items<R: Read>(
    repo: &Repository,
    items: Vec<IngestItem<R>>,
    total: Option<u64>,
    feed: &mut ChunkFeed,
    hashes: Sender<HashFeed>,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<Vec<ItemShape>> {
    let params = ChunkParams::new(&repo.config.chunking, repo.chunker_seed());
    let mut throttle = Throttle::new();
    let mut processed = 0u64;
    let mut shapes = Vec::with_capacity(items.len());
    let report = |processed: u64, name: &str| ProgressUpdate {
        bytes_processed: processed,
        total_bytes: total,
        message: format!("ingesting {name}"),
    };
    for item in items {
        let first = feed.position();
        let mut size = 0u64;
        let mut chunker = Chunker::new(item.reader, &params);
        while let Some(data) = chunker.next_chunk().map_err(|e| Error::Source(e.to_string()))? {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled("the ingest was cancelled".into()));
            }
            size += data.len() as u64;
            processed += data.len() as u64;
            let data = Arc::new(data);
            hashes
                .send(Some(data.clone()))
                .map_err(|_| Error::Internal("the item hasher stopped early".into()))?;
            feed.push(data)?;
            if throttle.ready() {
                progress(report(processed, &item.name));
            }
        }
        hashes
            .send(None)
            .map_err(|_| Error::Internal("the item hasher stopped early".into()))?;
        shapes.push(ItemShape {
            name: item.name,
            item_type: item.item_type,
            size,
            chunk_range: first..feed.position(),
        });
    }
    drop(hashes);
    progress(ProgressUpdate {
        message: "ingest complete".into(),
        ..report(processed, "")
    });
    Ok(shapes)
}

fn process_chunks(repo: &Repository, packs: &PackCheck, jobs: Receiver<Job>, done: Sender<Processed>) {
    let compression = &repo.config.compression;
    for Job { seq, data } in jobs {
        let id = repo.chunk_id(&data);
        let raw_len = data.len() as u32;
        let blob = if packs.has_usable_copy(repo, &id) {
            None
        } else {
            let (encoding, payload) = match compress(compression.algorithm, compression.level, &data) {
                Some((encoding, out)) => (encoding, Arc::new(out)),
                // Raw: the shared plaintext itself, no copy.
                None => (BlobEncoding::Raw, data),
            };
            let stored = match repo.keys() {
                // The chunk ID is the associated data: a blob cannot be moved to another ID.
                Some(keys) => Arc::new(keys.seal(&id, &payload)),
                None => payload,
            };
            Some((encoding, stored))
        };
        if done.send(Processed { seq, id, raw_len, blob }).is_err() {
            return;
        }
    }
}

/// At most this many bytes of finished packs wait for or are in upload on
/// object storage, where a pack is held in memory until its PUT (with the
/// default 8 MiB packs, `concurrency` of them; with 1 GiB packs, one).
const UPLOAD_MEMORY: u64 = 256 * 1024 * 1024;

/// How many threads store finished packs while chunking goes on: locally
/// one (the fsyncs leave the writer thread); on object storage one per
/// request in flight, within `UPLOAD_MEMORY`.
fn upload_threads(repo: &Repository) -> usize {
    let storage = &**repo.storage();
    match storage.concurrency() {
        None => 1,
        Some(c) => (UPLOAD_MEMORY / repo.config.pack_target_size.max(1)).clamp(1, c.max(1) as u64) as usize,
    }
}

/// What the pack writer and the uploaders share.
struct Uploads {
    /// Chunks in packs not in the index yet (open, or finished and being
    /// stored): such a chunk arriving again is not stored twice.
    pending: Mutex<HashSet<ChunkId>>,
    /// The first upload that failed; the writer stops when it sees one.
    failure: Mutex<Option<Error>>,
}

impl Uploads {
    fn failed(&self) -> bool {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}

/// Packs are stored by `upload_threads` threads while the writer fills the
/// next one; a rendezvous channel bounds the memory: the open pack, one
/// waiting to be handed over, one per uploader. Returns once every pack is
/// stored (pack, then `.idx`) and in the index, so the caller's index flush
/// and snapshot come after them.
fn write_chunks(repo: &Repository, packs: &PackCheck, done: Receiver<Processed>) -> Result<WriteStats> {
    let uploads = Uploads {
        pending: Mutex::new(HashSet::new()),
        failure: Mutex::new(None),
    };
    let (sealed_tx, sealed_rx) = bounded::<SealedPack>(0);
    thread::scope(|s| {
        let handles: Vec<_> = (0..upload_threads(repo))
            .map(|_| {
                let (rx, uploads) = (sealed_rx.clone(), &uploads);
                s.spawn(move || upload_packs(repo, packs, uploads, rx))
            })
            .collect();
        drop(sealed_rx);
        let filled = fill_packs(repo, &uploads, done, &sealed_tx);
        drop(sealed_tx);
        let mut panicked = None;
        for h in handles {
            if let Err(p) = h.join() {
                panicked.get_or_insert_with(|| Error::Internal(format!("pack uploader panicked: {}", panic_text(&p))));
            }
        }
        // A failed upload explains a writer that stopped early.
        if let Some(e) = uploads.failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        match panicked {
            Some(e) => Err(e),
            None => filled,
        }
    })
}

fn upload_packs(repo: &Repository, packs: &PackCheck, uploads: &Uploads, sealed: Receiver<SealedPack>) {
    for pack in sealed {
        // After a failure the rest are dropped unstored (leaving nothing).
        if uploads.failed() {
            continue;
        }
        match pack.store() {
            Ok(record) => {
                packs.note_stored(record.id);
                repo.note_written_pack(PackInfo {
                    id: record.id,
                    size: record.size,
                });
                let ids: Vec<ChunkId> = record.entries.iter().map(|e| e.id).collect();
                // In the index before it leaves `pending`: the writer always finds it in one.
                repo.index_mut().add_unpersisted(record);
                let mut pending = uploads.pending.lock().unwrap_or_else(|p| p.into_inner());
                for id in ids {
                    pending.remove(&id);
                }
            }
            Err(e) => {
                uploads
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        }
    }
}

/// The ingest's parity drafts (`parity_draft`), handed to the repository
/// however `fill_packs` ends: `cover_parity` runs on failure too.
struct Drafts<'r> {
    repo: &'r Repository,
    plan: Option<crate::parity_draft::Drafting>,
}

impl Drop for Drafts<'_> {
    fn drop(&mut self) {
        if let Some(plan) = self.plan.take() {
            self.repo.keep_drafts(plan);
        }
    }
}

fn fill_packs<'r>(
    repo: &'r Repository,
    uploads: &Uploads,
    done: Receiver<Processed>,
    sealed: &Sender<SealedPack<'r>>,
) -> Result<WriteStats> {
    let target = repo.config.pack_target_size;
    let mut stats = WriteStats::default();
    let mut pack: Option<PackWriter> = None;
    let mut drafting = Drafts {
        repo,
        plan: repo.start_drafting(),
    };
    let hand_over = |writer: PackWriter<'r>, drafting: &mut Drafts| -> Result<()> {
        let pack = writer.seal(repo.sealer())?;
        if let Some(plan) = drafting.plan.as_mut() {
            plan.pack_done(pack.record().id);
        }
        sealed
            .send(pack)
            .map_err(|_| Error::Internal("the pack uploaders stopped early".into()))
    };
    let stopped = || Error::Internal("a pack upload failed".into());
    for p in done {
        if uploads.failed() {
            return Err(stopped());
        }
        if stats.ids.len() <= p.seq {
            stats.ids.resize(p.seq + 1, [0; 32]);
        }
        stats.ids[p.seq] = p.id;
        let Some((encoding, blob)) = p.blob else {
            stats.reused_chunks += 1;
            continue;
        };
        // Another worker may have stored it meanwhile; a copy in a lost pack does not count.
        let pending = uploads
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&p.id);
        if pending || repo.index().usable(&p.id) {
            stats.reused_chunks += 1;
            continue;
        }
        let writer = match &mut pack {
            Some(w) => w,
            None => {
                let mut writer = PackWriter::create(&**repo.storage())?;
                writer.share_parity(drafting.plan.as_mut().and_then(|p| p.next_pack()));
                pack.insert(writer)
            }
        };
        writer.add(p.id, encoding as u8, p.raw_len, &blob)?;
        uploads.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(p.id);
        stats.new_chunks += 1;
        stats.stored_size += blob.len() as u64;
        if writer.data_len() >= target {
            hand_over(pack.take().expect("pack is open"), &mut drafting)?;
        }
    }
    if let Some(writer) = pack.take().filter(|w| !w.is_empty()) {
        hand_over(writer, &mut drafting)?;
    }
    if uploads.failed() {
        return Err(stopped());
    }
    Ok(stats)
}
