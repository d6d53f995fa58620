//! A repository: its config, keys, global index and snapshots. Every file
//! is read and written through its `Storage` (see `storage/`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::{ConfigCopy, InitOptions, RepoConfig};
use crate::crypto::{self, ChunkId, KeyFile, Keys, Sealer, AAD_INDEX, AAD_SNAPSHOT};
use crate::error::{Error, Result};
use crate::fsutil::random_bytes;
use crate::index::{decode_index_file, encode_index_file, ChunkIndex, PackInfo};
use crate::pack::PackRecord;
use crate::snapshot::{check_snapshot_id, decode_manifest, is_valid_snapshot_id, Manifest};
use crate::storage::objects::{names, read_required};
use crate::storage::{self, local, Storage};

/// The directories of a repository, relative to its root.
pub const LAYOUT: [&str; 7] = [
    "packs/data",
    "packs/parity",
    "packs/parity/snapshots",
    "snapshots",
    "index",
    "keys",
    "locks",
];
pub const CONFIG_FILE: &str = "config.json";
/// A second copy of config.json, so a damaged config can be repaired.
pub const CONFIG_COPY: &str = "packs/parity/config.json";
/// Where the copy of each snapshot manifest lives (same bytes, same name).
pub const SNAPSHOT_COPIES: &str = "packs/parity/snapshots";
/// Where packs and their `.idx` sidecars live.
pub const DATA_DIR: &str = "packs/data";
/// Where parity files and group manifests live.
pub const PARITY_DIR: &str = "packs/parity";
pub const INDEX_DIR: &str = "index";
pub const SNAPSHOTS_DIR: &str = "snapshots";

pub struct Repository {
    storage: Arc<dyn Storage>,
    /// The local directory, or the location (tests and messages only).
    root: PathBuf,
    pub config: RepoConfig,
    keys: Option<Keys>,
    index: RwLock<ChunkIndex>,
    /// Serialises index flushes, so a flush that returns means every pack
    /// indexed in memory before it is listed in a durable index file.
    index_flush: Mutex<()>,
    /// Index files that could not be read at open or refresh.
    pub index_problems: Mutex<Vec<String>>,
    /// The master key (encrypted only): verify and the key operations
    /// authenticate key files with it.
    master: Option<[u8; 32]>,
    /// The passphrase and the key file that unlocked the repository; the key
    /// operations change them (changePassphrase) or clear the key (removeKey).
    unlocked_by: Mutex<Option<UnlockedBy>>,
    /// Packs this process wrote that may still need parity.
    own_packs: Mutex<Vec<PackInfo>>,
    /// Their parity, drafted as they were written (`parity_draft`).
    drafts: Mutex<Vec<crate::parity_draft::Draft>>,
    /// An ingest is drafting (one at a time).
    drafting: std::sync::atomic::AtomicBool,
    /// Packs whose parity share came from a draft, not from reading them.
    drafted_members: std::sync::atomic::AtomicU64,
    /// The most worker threads an operation runs (`threads`); None: one per core.
    threads: Option<usize>,
}

/// How an encrypted repository was unlocked.
#[derive(Clone)]
pub struct UnlockedBy {
    pub passphrase: String,
    /// The key in use; `None` once removeKey removed it (the handle keeps the master key).
    pub key_id: Option<String>,
}

impl Repository {
    /// Creates a repository in the local directory `path`.
    pub fn init(path: &Path, options: &InitOptions) -> Result<Repository> {
        Repository::init_in(storage::local(path), options)
    }

    /// Creates a repository in `storage`.
    pub fn init_in(storage: Arc<dyn Storage>, options: &InitOptions) -> Result<Repository> {
        let config = options.to_config()?;
        check_init_target(&*storage)?;
        // Object stores have no directories; a local repository keeps its layout.
        if let Some(root) = storage.local_root() {
            local::ensure_dirs(root, &LAYOUT, true)?;
        }
        let mut unlocked = None;
        let keys = match &options.passphrase {
            Some(passphrase) => {
                let master: [u8; 32] = random_bytes();
                let key_file = crypto::wrap_master_key(passphrase, &master, &crate::fsutil::hostname())?;
                unlocked = Some((
                    master,
                    UnlockedBy {
                        passphrase: passphrase.clone(),
                        key_id: Some(key_file.id.clone()),
                    },
                ));
                let json = serde_json::to_vec_pretty(&key_file).expect("key file serialises");
                storage.write(&key_copy_path(&key_file.id), &json)?;
                storage.write(&format!("keys/{}.json", key_file.id), &json)?;
                Some(Keys::from_master(&master))
            }
            None => None,
        };
        // config.json last: until it exists, the directory is not a repository.
        let json = serde_json::to_vec_pretty(&config).expect("config serialises");
        storage.write(CONFIG_COPY, &json)?;
        storage.write(CONFIG_FILE, &json)?;
        let repo = Repository::assemble(storage, config, keys, unlocked);
        Ok(repo)
    }

    /// Opens the repository in the local directory `path`.
    pub fn open(path: &Path, passphrase: Option<&str>) -> Result<Repository> {
        Repository::open_in(storage::local(path), passphrase)
    }

    /// Opens the repository in `storage`.
    pub fn open_in(storage: Arc<dyn Storage>, passphrase: Option<&str>) -> Result<Repository> {
        let config = choose_config(&*storage)?.config;
        let mut unlocked = None;
        let mut prefetched = None;
        let keys = match (config.is_encrypted(), passphrase) {
            (true, None) => return Err(Error::PassphraseRequired),
            (true, Some(p)) => {
                // Argon2id keeps one core busy: read the index files meanwhile.
                let (unlocking, raw) = std::thread::scope(|s| {
                    let raw = s.spawn(|| prefetch_index_files(&*storage));
                    (unlock(&*storage, p), raw.join())
                });
                let (master, key_id) = unlocking?;
                prefetched = raw.ok().and_then(|r| r.ok());
                unlocked = Some((
                    master,
                    UnlockedBy {
                        passphrase: p.to_string(),
                        key_id: Some(key_id),
                    },
                ));
                Some(Keys::from_master(&master))
            }
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "this repository is not encrypted, but a passphrase was given; leave passphrase out to open it",
                ))
            }
            (false, None) => None,
        };
        let repo = Repository::assemble(storage, config, keys, unlocked);
        repo.ensure_layout()?;
        match prefetched {
            Some(files) => repo.merge_index_files(files),
            None => repo.refresh_index()?,
        }
        Ok(repo)
    }

    fn assemble(
        storage: Arc<dyn Storage>,
        config: RepoConfig,
        keys: Option<Keys>,
        unlocked: Option<([u8; 32], UnlockedBy)>,
    ) -> Repository {
        let (master, unlocked_by) = unlocked.unzip();
        let root = match storage.local_root() {
            Some(root) => root.to_path_buf(),
            None => PathBuf::from(storage.location()),
        };
        Repository {
            storage,
            root,
            config,
            keys,
            index: RwLock::new(ChunkIndex::default()),
            index_flush: Mutex::new(()),
            index_problems: Mutex::new(Vec::new()),
            master,
            unlocked_by: Mutex::new(unlocked_by),
            own_packs: Mutex::new(Vec::new()),
            drafts: Mutex::new(Vec::new()),
            drafting: std::sync::atomic::AtomicBool::new(false),
            drafted_members: std::sync::atomic::AtomicU64::new(0),
            threads: None,
        }
    }

    /// Caps the worker threads of every operation (`threads` on init and
    /// open), so a backup leaves cores to the service it runs in.
    pub fn set_threads(&mut self, threads: Option<usize>) {
        self.threads = threads.map(|n| n.max(1));
    }

    /// Threads that compress, encrypt, hash and decode: one per core, at most `threads`.
    pub fn workers(&self) -> usize {
        let cores = crate::ingest::worker_count();
        self.threads.map_or(cores, |n| n.min(cores))
    }

    /// Threads of an operation that reads or writes packs, each with at most
    /// one request in flight: on object storage `storage.concurrency`, since
    /// they mostly wait on the network; on a local disk `workers()`.
    pub fn parallelism(&self) -> usize {
        self.storage.concurrency().map_or_else(|| self.workers(), |c| c.max(1))
    }

    /// Recreates layout directories that are missing: sync tools drop empty
    /// ones. Only called once config.json has proved this is a repository.
    pub fn ensure_layout(&self) -> Result<()> {
        if let Some(root) = self.storage.local_root() {
            local::ensure_dirs(root, &LAYOUT, false)?;
        }
        Ok(())
    }

    /// Where every repository file is read, written, listed and deleted.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// This repository read past its local metadata cache (see
    /// `Storage::uncached`), for verify, repair and reindex, which treat the
    /// remote as the truth; `None` when the storage has no cache. Same config
    /// and keys; its index starts empty (`reload_index` or `sync_index` loads it).
    pub fn bypassing_cache(&self) -> Option<Repository> {
        let storage = self.storage.uncached()?;
        let keys = self.master.as_ref().map(Keys::from_master);
        let unlocked_by = self.unlocked_by.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let unlocked = self.master.zip(unlocked_by);
        let mut repo = Repository::assemble(storage, self.config.clone(), keys, unlocked);
        repo.threads = self.threads;
        Some(repo)
    }

    /// The repository's directory (its location when it is not local). The
    /// engine itself goes through `storage()`; these paths are for tests and
    /// tools that inspect a local repository on disk.
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("packs/data")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    pub fn snapshot_copies_dir(&self) -> PathBuf {
        self.root.join(SNAPSHOT_COPIES)
    }
    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }
    pub fn chunker_seed(&self) -> u64 {
        self.keys.as_ref().map_or(0, |k| k.chunker_seed)
    }

    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        crypto::chunk_id(self.keys.as_ref(), data)
    }

    pub fn index(&self) -> RwLockReadGuard<'_, ChunkIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn index_mut(&self) -> RwLockWriteGuard<'_, ChunkIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The master key (encrypted only).
    pub fn master(&self) -> Option<&[u8; 32]> {
        self.master.as_ref()
    }

    /// The passphrase and key this handle was unlocked with (encrypted only).
    pub fn unlocked_by(&self) -> Option<UnlockedBy> {
        self.unlocked_by.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records that the handle now counts as unlocked by `by` (key operations).
    pub(crate) fn set_unlocked_by(&self, by: UnlockedBy) {
        *self.unlocked_by.lock().unwrap_or_else(|p| p.into_inner()) = Some(by);
    }

    /// How metadata is sealed here: AES-GCM, or a SHA-256 trailer in plain
    /// repositories (format version 1 also accepts files without one).
    pub fn sealer(&self) -> Sealer<'_> {
        match &self.keys {
            Some(k) => Sealer::Encrypted(k),
            None => Sealer::Plain {
                legacy: self.config.version < 2,
            },
        }
    }

    /// Seals a metadata file: encrypted, or plain with a checksum trailer.
    pub fn seal(&self, aad: &[u8], plain: Vec<u8>) -> Vec<u8> {
        self.sealer().seal(aad, plain)
    }

    pub fn unseal(&self, aad: &[u8], stored: Vec<u8>, what: &str) -> Result<Vec<u8>> {
        self.unseal_slice(aad, &stored, what)
    }

    fn unseal_slice(&self, aad: &[u8], stored: &[u8], what: &str) -> Result<Vec<u8>> {
        let why = match &self.keys {
            Some(_) => "it does not authenticate",
            None => "its checksum does not match its content",
        };
        self.sealer().open(aad, stored).ok_or_else(|| Error::corrupt(what, why))
    }

    /// Reads one index file.
    pub fn read_index_file(&self, name: &str) -> Result<Vec<PackRecord>> {
        self.decode_index_file(name, &read_stored_index_file(&*self.storage, name)?)
    }

    /// Opens an index file as stored (its name already checked).
    fn decode_index_file(&self, name: &str, stored: &[u8]) -> Result<Vec<PackRecord>> {
        let what = format!("index file index/{name}");
        let plain = self.unseal_slice(AAD_INDEX, stored, &what)?;
        decode_index_file(&plain).map_err(|e| Error::corrupt(&what, e))
    }

    /// The index as the files on disk describe it now, and the unreadable files.
    pub fn load_index_from_disk(&self) -> Result<(ChunkIndex, Vec<(String, Error)>)> {
        let mut index = ChunkIndex::default();
        let mut problems = Vec::new();
        let names = names(&*self.storage, INDEX_DIR)?;
        let read = crate::fetch::map_parallel(self.parallelism(), &names, |name| self.read_index_file(name));
        let records: Vec<&PackRecord> = read.iter().flatten().flatten().collect();
        index.add_packs(&records, self.parallelism());
        drop(records);
        for (name, read) in names.into_iter().zip(read) {
            match read {
                Ok(_) => {
                    index.loaded_files.insert(name);
                }
                Err(e) => problems.push((name, e)),
            }
        }
        Ok((index, problems))
    }

    /// Replaces the in-memory index with what is on disk (after repair or reindex).
    pub fn reload_index(&self) -> Result<()> {
        let (fresh, problems) = self.load_index_from_disk()?;
        *self.index_mut() = fresh;
        *self.index_problems.lock().unwrap_or_else(|p| p.into_inner()) =
            problems.into_iter().map(|(_, e)| e.to_string()).collect();
        Ok(())
    }

    /// Remembers a pack this process wrote, for `cover_parity`.
    pub fn note_written_pack(&self, info: PackInfo) {
        self.own_packs.lock().unwrap_or_else(|p| p.into_inner()).push(info);
    }

    /// A plan to draft the parity of the packs the calling ingest writes,
    /// unless another ingest drafts or packs written earlier still wait for
    /// parity (they would take the slots planned). Hand the drafts back with
    /// `keep_drafts`.
    pub fn start_drafting(&self) -> Option<crate::parity_draft::Drafting> {
        use std::sync::atomic::Ordering;
        if self.drafting.swap(true, Ordering::AcqRel) {
            return None;
        }
        let idle = self.own_packs.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            && self.drafts.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        let planned = idle
            .then(|| crate::parity::load_groups(self).ok())
            .flatten()
            .and_then(|(groups, _)| {
                let parity = &self.config.parity;
                let pack_size =
                    self.config.pack_target_size as usize + self.config.chunking.max_size as usize + (1 << 16);
                crate::parity_draft::Drafting::plan(&groups, parity.data_shards, parity.parity_shards, pack_size)
            });
        if planned.is_none() {
            self.drafting.store(false, Ordering::Release);
        }
        planned
    }

    /// How many packs so far had their parity share from a draft (tests, bench).
    pub fn drafted_members(&self) -> u64 {
        self.drafted_members.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_drafted(&self, packs: usize) {
        self.drafted_members
            .fetch_add(packs as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ends `start_drafting`: `cover_parity` uses the drafts.
    pub fn keep_drafts(&self, drafting: crate::parity_draft::Drafting) {
        self.drafts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(drafting.finish());
        self.drafting.store(false, std::sync::atomic::Ordering::Release);
    }

    /// Forgets packs prune deleted: they need no parity, and nothing may dedup against them.
    pub fn forget_packs(&self, gone: &std::collections::HashSet<crate::pack::PackId>) {
        self.own_packs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| !gone.contains(&p.id));
        let mut index = self.index_mut();
        for id in gone {
            index.set_usable(id, false);
        }
    }

    /// Gives every indexed pack without parity its parity (packs written here first).
    pub fn cover_parity(&self) -> Result<()> {
        let mut own = std::mem::take(&mut *self.own_packs.lock().unwrap_or_else(|p| p.into_inner()));
        let drafts = std::mem::take(&mut *self.drafts.lock().unwrap_or_else(|p| p.into_inner()));
        // Uploads finish in any order: drafted packs go first, in the order drafted.
        let place: std::collections::HashMap<crate::pack::PackId, usize> = drafts
            .iter()
            .flat_map(|d| &d.packs)
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        own.sort_by_key(|p| place.get(&p.id).copied().unwrap_or(usize::MAX));
        crate::parity::cover(self, &own, &drafts).map(|_| ()).inspect_err(|_| {
            self.own_packs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(own.iter().copied());
        })
    }

    /// Brings the in-memory index up to date with disk. If an index file it
    /// loaded is gone (another process pruned or reindexed), it reloads
    /// everything, so nothing dedups against or reads from deleted packs.
    /// Callers hold at least a shared lock, so no deletion runs meanwhile.
    pub fn sync_index(&self) -> Result<()> {
        let names: std::collections::HashSet<String> = names(&*self.storage, INDEX_DIR)?.into_iter().collect();
        let vanished = self.index().loaded_files.iter().any(|f| !names.contains(f));
        if vanished {
            // Packs this process wrote but has not listed yet stay listed.
            let pending = self.index_mut().take_unpersisted();
            self.reload_index()?;
            let mut index = self.index_mut();
            for record in pending {
                index.add_unpersisted(record);
            }
            Ok(())
        } else {
            self.refresh_index()
        }
    }

    /// Merges index files written since the last look (by this or another process).
    pub fn refresh_index(&self) -> Result<()> {
        let names = names(&*self.storage, INDEX_DIR)?;
        let unseen: Vec<String> = {
            let index = self.index();
            names.into_iter().filter(|n| !index.loaded_files.contains(n)).collect()
        };
        // A request each: in parallel, merged in name order as before.
        let read = crate::fetch::map_parallel(self.parallelism(), &unseen, |name| self.read_index_file(name));
        self.merge_records(unseen.into_iter().zip(read).collect());
        Ok(())
    }

    /// Merges index files `prefetch_index_files` read before the keys were known.
    fn merge_index_files(&self, files: Vec<(String, Result<Vec<u8>>)>) {
        let (read, failed): (Vec<_>, Vec<_>) = files.into_iter().partition(|(_, stored)| stored.is_ok());
        let read: Vec<(String, Vec<u8>)> = read.into_iter().filter_map(|(n, s)| Some((n, s.ok()?))).collect();
        let decoded = crate::fetch::map_parallel(self.parallelism(), &read, |(name, stored)| {
            self.decode_index_file(name, stored)
        });
        let decoded = read.into_iter().map(|(name, _)| name).zip(decoded);
        let failed = failed.into_iter().filter_map(|(n, s)| Some((n, Err(s.err()?))));
        self.merge_records(decoded.chain(failed).collect());
    }

    fn merge_records(&self, read: Vec<(String, Result<Vec<PackRecord>>)>) {
        let mut index = self.index_mut();
        let records: Vec<&PackRecord> = read.iter().flat_map(|(_, r)| r.iter().flatten()).collect();
        index.add_packs(&records, self.parallelism());
        drop(records);
        for (name, read) in read {
            match read {
                Ok(_) => {
                    index.loaded_files.insert(name);
                }
                // A damaged index file must not lock the user out: verify reports
                // it and repair rebuilds it from the packs.
                Err(e) => self
                    .index_problems
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string()),
            }
        }
    }

    /// Writes one index file listing every pack that no index file lists yet.
    pub fn flush_index(&self) -> Result<()> {
        let _serial = self.index_flush.lock().unwrap_or_else(|p| p.into_inner());
        let records = self.index_mut().take_unpersisted();
        if records.is_empty() {
            return Ok(());
        }
        let stored = self.seal(AAD_INDEX, encode_index_file(&records));
        let name = hex::encode(crypto::sha256(&stored));
        match self.storage.write(&format!("{INDEX_DIR}/{name}"), &stored) {
            Ok(()) => {
                self.index_mut().loaded_files.insert(name);
                Ok(())
            }
            Err(e) => {
                self.index_mut().return_unpersisted(records);
                Err(e)
            }
        }
    }

    /// Writes the copy, then the manifest: a manifest in `snapshots/` is
    /// the commit point and implies that its copy is durable too.
    pub fn write_snapshot(&self, manifest: &Manifest) -> Result<()> {
        check_snapshot_id(&manifest.id)?;
        let json = serde_json::to_vec(manifest).expect("manifest serialises");
        let stored = self.seal(AAD_SNAPSHOT, json);
        self.write_snapshot_file(SNAPSHOT_COPIES, &manifest.id, &stored)?;
        self.write_snapshot_file(SNAPSHOTS_DIR, &manifest.id, &stored)
    }

    /// Writes one manifest file (stored bytes) as `dir/<id>` (`dir` is
    /// `SNAPSHOTS_DIR` or `SNAPSHOT_COPIES`). Local storage creates the copies
    /// directory that repositories made before version 2 lack.
    pub fn write_snapshot_file(&self, dir: &str, id: &str, stored: &[u8]) -> Result<()> {
        check_snapshot_id(id)?;
        self.storage.write(&format!("{dir}/{id}"), stored)
    }

    /// Removes a snapshot: its copy first, then the manifest, both durably,
    /// so a crash in between leaves the snapshot listed (with its copy
    /// missing, which repair rewrites) rather than a copy that looks like
    /// a lost manifest.
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        check_snapshot_id(id)?;
        self.storage.delete(&format!("{SNAPSHOT_COPIES}/{id}"))?;
        self.storage.delete(&format!("{SNAPSHOTS_DIR}/{id}"))
    }

    /// Decodes stored manifest bytes that should be snapshot `id`.
    pub fn decode_snapshot(&self, stored: Vec<u8>, id: &str, what: &str) -> Result<Manifest> {
        let plain = self.unseal(AAD_SNAPSHOT, stored, what)?;
        Repository::parse_snapshot(&plain, id, what)
    }

    /// Decodes the (unsealed) manifest of snapshot `id`; `what` names it in errors.
    pub fn parse_snapshot(plain: &[u8], id: &str, what: &str) -> Result<Manifest> {
        let manifest = decode_manifest(plain, what)?;
        if manifest.id != id {
            return Err(Error::corrupt(what, "it carries another snapshot's id"));
        }
        Ok(manifest)
    }

    /// Reads snapshot `id`. `snapshots/<id>` decides whether it exists; when
    /// that file is damaged, its copy is used (verify reports the damage and
    /// repair rewrites the file).
    pub fn load_snapshot(&self, id: &str) -> Result<Manifest> {
        check_snapshot_id(id)?;
        let stored = self
            .storage
            .read(&format!("{SNAPSHOTS_DIR}/{id}"))?
            .ok_or_else(|| Error::SnapshotNotFound(id.to_string()))?;
        let what = format!("snapshot manifest snapshots/{id}");
        match self.decode_snapshot(stored, id, &what) {
            Ok(m) => Ok(m),
            // A newer format is not damage: never fall back past it.
            Err(e @ Error::UnsupportedFormat(_)) => Err(e),
            Err(e) => {
                let what = format!("snapshot manifest copy {SNAPSHOT_COPIES}/{id}");
                match self.storage.read(&format!("{SNAPSHOT_COPIES}/{id}")) {
                    Ok(Some(stored)) => self.decode_snapshot(stored, id, &what).map_err(|_| e),
                    _ => Err(e),
                }
            }
        }
    }

    /// Every snapshot, oldest first. A manifest that cannot be read fails the call.
    pub fn list_snapshots(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for name in names(&*self.storage, SNAPSHOTS_DIR)? {
            if is_valid_snapshot_id(&name) {
                match self.load_snapshot(&name) {
                    Ok(m) => out.push(m),
                    // Removed by a concurrent prune between listing and reading.
                    Err(Error::SnapshotNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }
}

/// The config a repository is opened with, and the copies that are wrong.
pub struct ConfigChoice {
    pub config: RepoConfig,
    /// `(file, why)` for each of config.json and its copy that is missing,
    /// damaged or disagrees with `config`; repair rewrites exactly these.
    pub bad: Vec<(&'static str, String)>,
}

/// Reads config.json and its copy and decides which one holds: the one that
/// is intact (its checksum verifies, from version 2 on). When both are intact
/// but differ (only possible by hand, or in version 1 without checksums),
/// config.json wins. A copy claiming a newer version is a newer engine's
/// unless it is recognisably damaged (see `ConfigCopy::Newer`).
pub fn choose_config(storage: &dyn Storage) -> Result<ConfigChoice> {
    let read = |rel: &str| -> Result<Option<ConfigCopy>> {
        match storage.read(rel) {
            Ok(bytes) => Ok(bytes.map(|b| RepoConfig::examine(&b))),
            // A path through a file: no repository here.
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(20) => Ok(None),
            Err(e) if rel == CONFIG_FILE => Err(e),
            Err(e) => Ok(Some(ConfigCopy::Damaged(e))),
        }
    };
    let (primary, copy) = (read(CONFIG_FILE)?, read(CONFIG_COPY)?);
    let why = |c: &Option<ConfigCopy>| match c {
        None => "it is missing".to_string(),
        Some(ConfigCopy::Damaged(e)) => e.to_string(),
        Some(ConfigCopy::Newer { version, .. }) => {
            format!("it claims format version {version} but its checksum does not match (a damaged version number)")
        }
        Some(ConfigCopy::Valid(_)) => "it disagrees with config.json".to_string(),
    };
    let genuinely_newer = |c: &Option<ConfigCopy>| match c {
        Some(ConfigCopy::Newer {
            version,
            damaged: false,
        }) => Some(*version),
        _ => None,
    };
    let valid = |c: &Option<ConfigCopy>| c.as_ref().and_then(|c| c.valid()).cloned();
    // A newer engine's file is never "damage": refuse rather than repair it.
    if let Some(v) = genuinely_newer(&primary).or(genuinely_newer(&copy)) {
        return Err(crate::config::unsupported(v));
    }
    match (valid(&primary), valid(&copy)) {
        (Some(a), Some(b)) if a == b => Ok(ConfigChoice { config: a, bad: vec![] }),
        (Some(a), Some(_)) => Ok(ConfigChoice {
            config: a,
            bad: vec![(CONFIG_COPY, why(&copy))],
        }),
        (Some(a), None) => Ok(ConfigChoice {
            config: a,
            bad: vec![(CONFIG_COPY, why(&copy))],
        }),
        (None, Some(b)) => Ok(ConfigChoice {
            config: b,
            bad: vec![(CONFIG_FILE, why(&primary))],
        }),
        (None, None) => Err(match primary {
            // config.json gone and no usable copy: not a repository, unless data says it was one.
            None => match &copy {
                Some(ConfigCopy::Damaged(e)) => {
                    config_lost(storage, &format!("its copy {CONFIG_COPY} is damaged ({e})"))
                }
                Some(_) => config_lost(storage, &format!("its copy {CONFIG_COPY} is damaged")),
                None if holds_repository_data(storage) => {
                    config_lost(storage, &format!("its copy {CONFIG_COPY} is missing too"))
                }
                None => Error::RepoNotFound(storage.location()),
            },
            Some(ConfigCopy::Damaged(e)) => e,
            Some(_) => Error::corrupt("config.json", why(&primary)),
        }),
    }
}

fn check_init_target(storage: &dyn Storage) -> Result<()> {
    // As Path::exists: an error (a path through a file) counts as absent.
    let exists = |key: &str| storage.size(key).is_ok_and(|s| s.is_some());
    if exists(CONFIG_FILE) || exists(CONFIG_COPY) {
        return Err(Error::RepoExists(storage.location()));
    }
    // A repository whose config.json was lost still has its data: never init over it.
    if holds_repository_data(storage) {
        return Err(config_lost(storage, &format!("its copy {CONFIG_COPY} is missing too")));
    }
    // An empty directory, or the skeleton an interrupted init left behind.
    let not_empty = || {
        Error::invalid(format!(
            "{} is not empty; init() needs an empty or new directory",
            storage.location()
        ))
    };
    match storage.local_root() {
        Some(root) => {
            let top: Vec<&str> = LAYOUT.iter().filter_map(|d| d.split('/').next()).collect();
            local::check_init_dir(root, &top)
        }
        None if !storage.list("")?.is_empty() => Err(not_empty()),
        None => Ok(()),
    }
}

/// Whether the repository holds snapshots, packs, index files or keys. Local:
/// any entry counts (a tmp file too), as it may be all that is left.
fn holds_repository_data(storage: &dyn Storage) -> bool {
    ["keys", "snapshots", "packs/data", "index"]
        .iter()
        .any(|dir| match storage.local_root() {
            Some(root) => local::dir_has_entries(root, dir),
            None => storage.list(dir).is_ok_and(|e| !e.is_empty()),
        })
}

/// The one message for repository data whose config.json and copy are both
/// unusable: open() and init() both give it, and it names the only fix.
fn config_lost(storage: &dyn Storage, copy_state: &str) -> Error {
    Error::ConfigLost(format!(
        "{} holds repository data, but its config.json is missing and {copy_state}; the data cannot be read \
         without the parameters they record (chunking, compression, encryption), and init() will not \
         overwrite it. Restore config.json (or {CONFIG_COPY}, the same bytes) from a backup of this \
         repository, then open it again",
        storage.location()
    ))
}

/// Where the copy of key file `keys/<id>.json` lives.
pub fn key_copy_path(id: &str) -> String {
    format!("packs/parity/key-{id}.json")
}

/// Every key file and key copy: `(relative path, parsed or why not)`.
pub fn read_key_files(storage: &dyn Storage) -> Result<Vec<(String, Result<KeyFile>)>> {
    let mut out = Vec::new();
    for (dir, prefix) in [("keys", ""), (PARITY_DIR, "key-")] {
        for name in names(storage, dir)? {
            if name.starts_with(prefix) && name.ends_with(".json") && name != CONFIG_FILE {
                let rel = format!("{dir}/{name}");
                let parsed = read_required(storage, &rel).and_then(|b| KeyFile::parse(&b, &rel));
                out.push((rel, parsed));
            }
        }
    }
    Ok(out)
}

/// The key id a key file's path names: `keys/<id>.json` or `packs/parity/key-<id>.json`.
pub fn key_id_of(rel: &str) -> &str {
    let name = rel.rsplit('/').next().unwrap_or("");
    let name = name.strip_suffix(".json").unwrap_or(name);
    if rel.starts_with("keys/") {
        name
    } else {
        name.strip_prefix("key-").unwrap_or(name)
    }
}

/// Tells the repository's own key files from unknown (planted or foreign) ones.
pub struct KeyJudge<'a> {
    repo: &'a Repository,
    /// Verdict per key-file checksum, so a key file and its copy cost one derivation.
    seen: std::collections::HashMap<String, Option<String>>,
}

impl<'a> KeyJudge<'a> {
    pub fn new(repo: &'a Repository) -> KeyJudge<'a> {
        KeyJudge {
            repo,
            seen: Default::default(),
        }
    }

    /// Why the intact key file at `rel` is not one of this repository's, if it
    /// is not: another id than its name, parameters beyond the caps, or not
    /// authenticated by this repository's master key. Version 2 carries a MAC
    /// under the master key (checked without any derivation); version 1 has
    /// none, so it must unwrap, with the passphrase this handle was opened
    /// with, to the master key.
    pub fn unknown(&mut self, rel: &str, key: &KeyFile) -> Option<String> {
        if key_id_of(rel) != key.id {
            return Some(format!(
                "it carries key id {} instead of the one its name gives",
                key.id
            ));
        }
        if let Some(verdict) = self.seen.get(&key.checksum) {
            return verdict.clone();
        }
        let verdict = key.kdf.out_of_range().or_else(|| {
            let master = self.repo.master()?;
            if key.version >= 2 {
                return (!key.mac_verifies(master)).then(|| "its mac does not verify under this repository's master key".to_string());
            }
            let passphrase = self.repo.unlocked_by()?.passphrase;
            match crypto::unwrap_master_key(&passphrase, key) {
                Ok(m) if m == *master => None,
                Ok(_) => Some("it wraps another master key".to_string()),
                Err(e) => Some(format!(
                    "it is a version-1 key file and does not open with the passphrase this repository was opened with ({})",
                    e.code()
                )),
            }
        });
        self.seen.insert(key.checksum.clone(), verdict.clone());
        verdict
    }
}

/// Unlocks with any intact key file or copy, cheapest KDF first, so a planted
/// expensive key file costs nothing when a normal one unlocks. A passphrase is
/// wrong only when an intact key file rejects it; damaged ones alone give ERR_CORRUPT.
/// Returns the master key and the id of the key that opened.
/// An index file as stored, checked against its name (the SHA-256 of its bytes).
fn read_stored_index_file(storage: &dyn Storage, name: &str) -> Result<Vec<u8>> {
    let stored = read_required(storage, &format!("{INDEX_DIR}/{name}"))?;
    if hex::encode(crypto::sha256(&stored)) != name {
        return Err(Error::corrupt(
            format!("index file index/{name}"),
            "its content does not match its name",
        ));
    }
    Ok(stored)
}

/// Every index file as stored, read while `unlock` derives the key: with
/// a bucket's request concurrency, as `refresh_index` reads them, or on a
/// local disk with one reader, since Argon2id has the other core.
fn prefetch_index_files(storage: &dyn Storage) -> Result<Vec<(String, Result<Vec<u8>>)>> {
    let names = names(storage, INDEX_DIR)?;
    let readers = storage.concurrency().unwrap_or(1).max(1);
    let stored = crate::fetch::map_parallel(readers, &names, |name| read_stored_index_file(storage, name));
    Ok(names.into_iter().zip(stored).collect())
}

fn unlock(storage: &dyn Storage, passphrase: &str) -> Result<([u8; 32], String)> {
    let mut first_error = None;
    let mut rejected = false;
    let mut files = read_key_files(storage)?;
    files.sort_by_key(|(rel, parsed)| (parsed.as_ref().map_or(u64::MAX, |k| k.kdf.cost()), rel.clone()));
    let mut tried = std::collections::HashSet::new();
    for (rel, parsed) in files {
        // A key file and its copy are the same bytes: derive once.
        if let Ok(k) = &parsed {
            if !tried.insert(k.checksum.clone()) {
                continue;
            }
        }
        match parsed.and_then(|k| crypto::unwrap_master_key(passphrase, &k)) {
            Ok(master) => return Ok((master, key_id_of(&rel).to_string())),
            Err(Error::WrongPassphrase) => rejected = true,
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if rejected {
        return Err(Error::WrongPassphrase);
    }
    Err(first_error.unwrap_or_else(|| Error::corrupt("keys/", "the repository is encrypted but has no key file")))
}
