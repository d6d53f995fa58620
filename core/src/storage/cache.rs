//! A local metadata cache in front of an object-storage repository (issue 10).
//!
//! Index files, `.idx` sidecars, snapshot manifests (and their copies) and
//! parity-group manifests are kept on local disk, so opening a repository and
//! listing its snapshots does not GET them again. Packs, parity shards,
//! config.json, keys and locks always go to the remote.
//!
//! The remote is the truth; the cache only saves requests:
//! - a cached file is used only when a listing of its directory taken within
//!   `LISTING_TTL` shows it with the cached size (a file deleted or replaced
//!   remotely is fetched again, or reported missing);
//! - every cache file carries the SHA-256 of its content: a damaged one is
//!   ignored and refetched;
//! - writes go to the remote first, then the cache; deletes remove both;
//! - entries live under the repository id (learnt from config.json as the
//!   engine reads or writes it), so two repositories never share entries;
//! - cache files are written tmp + rename, so processes sharing a cache
//!   directory see whole files or none; any cache error only costs a GET.
//!
//! Verify, repair and reindex read through [`Storage::uncached`]: the same
//! cache, but every read goes to the remote (and refreshes the cache).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::{Entry, Storage};
use crate::error::{Error, Result};
use crate::fsutil::{random_hex, TMP_PREFIX};

/// How long a listing vouches for the files it shows. Operations list a
/// directory and then read its files, so a short window serves them; a later
/// operation lists again (or reads the remote).
pub const LISTING_TTL: Duration = Duration::from_secs(60);

/// First bytes of every cache file, then the SHA-256 of the content, then the content.
const MAGIC: &[u8; 8] = b"CAMDC\x001\n";
const HEADER: usize = 8 + 32;

/// Leftover tmp files (of a process that died mid-write) older than this are removed.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// `inner` with a metadata cache in `dir`: the napi layer's constructor.
/// `dir` is created if missing; it may be shared with other processes and
/// other repositories (entries are kept per repository id).
pub fn cached(inner: Arc<dyn Storage>, dir: PathBuf) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(CachedStorage::new(inner, dir, LISTING_TTL)?))
}

/// The default cache directory of the repository at `location_key` (for
/// example `s3://bucket/prefix` plus the endpoint): the OS cache directory +
/// `containerarchive/<first 32 hex of sha256(location_key)>`. `None` when the
/// OS cache directory is unknown (no HOME / LOCALAPPDATA).
pub fn default_cache_dir(location_key: &str) -> Option<PathBuf> {
    let base = os_cache_dir()?;
    let hash = hex::encode(Sha256::digest(location_key.as_bytes()));
    Some(base.join("containerarchive").join(&hash[..32]))
}

fn os_cache_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if cfg!(windows) {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Caches"))
    } else {
        // XDG: a relative XDG_CACHE_HOME is invalid and ignored.
        env("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|h| h.join(".cache")))
    }
}

/// Whether `key` is metadata the cache keeps: index files, `.idx` sidecars,
/// snapshot manifests and their copies, parity-group manifests.
pub fn is_cacheable(key: &str) -> bool {
    let Some((dir, name)) = key.rsplit_once('/') else {
        return false;
    };
    if name.is_empty() || name.starts_with(TMP_PREFIX) {
        return false;
    }
    match dir {
        // Hex names only: `.damaged` copies and the like are not metadata reads.
        "index" | "snapshots" | "packs/parity/snapshots" => !name.contains('.'),
        "packs/data" => name.ends_with(".idx"),
        "packs/parity" => name.ends_with(".group"),
        _ => false,
    }
}

/// Whether listing `dir` yields cacheable names (the listing is remembered).
fn is_cached_dir(dir: &str) -> bool {
    matches!(
        dir,
        "index" | "snapshots" | "packs/parity/snapshots" | "packs/data" | "packs/parity"
    )
}

/// A directory's listing: the cacheable names and their sizes, and when it was taken.
struct Listing {
    at: Instant,
    sizes: HashMap<String, u64>,
}

#[derive(Default)]
struct State {
    /// The repository id, once config.json has been seen; until then nothing is cached.
    repo_id: Option<String>,
    /// Two different ids were seen (the location was re-initialised under us):
    /// the cache stays off for this handle.
    conflict: bool,
    listings: HashMap<String, Listing>,
}

/// What a cached handle and its uncached view share.
struct Shared {
    inner: Arc<dyn Storage>,
    root: PathBuf,
    ttl: Duration,
    state: Mutex<State>,
}

/// A `Storage` that keeps repository metadata on local disk (see the module docs).
pub struct CachedStorage {
    shared: Arc<Shared>,
    /// The uncached view: reads always go to the remote.
    read_through: bool,
}

impl std::fmt::Debug for CachedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStorage")
            .field("inner", &self.shared.inner)
            .field("root", &self.shared.root)
            .field("read_through", &self.read_through)
            .finish()
    }
}

impl CachedStorage {
    /// `ttl`: how long a listing vouches for cached files (`LISTING_TTL`
    /// unless a test wants another).
    pub fn new(inner: Arc<dyn Storage>, dir: PathBuf, ttl: Duration) -> Result<CachedStorage> {
        fs::create_dir_all(&dir).map_err(|e| Error::Io {
            path: format!(
                "metadata cache directory {} (choose another with cacheDir, or turn it off with cache: false)",
                dir.display()
            ),
            source: e,
        })?;
        Ok(CachedStorage {
            shared: Arc::new(Shared {
                inner,
                root: dir,
                ttl,
                state: Mutex::new(State::default()),
            }),
            read_through: false,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cache file of `key`, when the key is cached and the repository id known.
    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        if !is_cacheable(key) || !super::is_valid_key(key) {
            return None;
        }
        let state = self.state();
        match (&state.repo_id, state.conflict) {
            (Some(id), false) => Some(self.shared.root.join(id).join(key)),
            _ => None,
        }
    }

    /// The size a fresh listing shows for `key`; `None` when no fresh
    /// listing of its directory shows it.
    fn listed_size(&self, key: &str) -> Option<u64> {
        let (dir, name) = key.rsplit_once('/')?;
        let state = self.state();
        let listing = state.listings.get(dir)?;
        if listing.at.elapsed() >= self.shared.ttl {
            return None;
        }
        listing.sizes.get(name).copied()
    }

    /// Records what this handle learnt about `key` since the listing:
    /// its size now, or `None` when it is gone or unknown.
    fn note(&self, key: &str, size: Option<u64>) {
        let Some((dir, name)) = key.rsplit_once('/') else {
            return;
        };
        if let Some(listing) = self.state().listings.get_mut(dir) {
            match size {
                Some(size) => listing.sizes.insert(name.to_string(), size),
                None => listing.sizes.remove(name),
            };
        }
    }

    /// Learns the repository id from config.json (or its copy) as the engine reads or writes it.
    fn observe_config(&self, key: &str, bytes: &[u8]) {
        if key != crate::repo::CONFIG_FILE && key != crate::repo::CONFIG_COPY {
            return;
        }
        let id = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(id) = id.map(|id| id.to_ascii_lowercase()) else {
            return;
        };
        let mut state = self.state();
        match &state.repo_id {
            None => {
                private_dir(&self.shared.root.join(&id));
                state.repo_id = Some(id);
            }
            Some(known) if *known != id => state.conflict = true,
            Some(_) => {}
        }
    }

    /// Keeps the cache equal to what the remote just returned for `key`.
    fn refresh(&self, key: &str, remote: Option<&[u8]>) {
        if let Some(path) = self.cache_path(key) {
            match remote {
                Some(bytes) => store(&path, bytes),
                None => forget(&path),
            }
            self.note(key, remote.map(|b| b.len() as u64));
        }
    }

    /// Remembers a listing of a cached directory and drops cache files it no longer shows.
    fn remember_listing(&self, dir: &str, entries: &[Entry]) {
        if !is_cached_dir(dir) {
            return;
        }
        let sizes: HashMap<String, u64> = entries
            .iter()
            .filter(|e| is_cacheable(&format!("{dir}/{}", e.name)))
            .map(|e| (e.name.clone(), e.size))
            .collect();
        let cache_dir = {
            let mut state = self.state();
            let Some(id) = state.repo_id.clone().filter(|_| !state.conflict) else {
                return;
            };
            state.listings.insert(
                dir.to_string(),
                Listing {
                    at: Instant::now(),
                    sizes: sizes.clone(),
                },
            );
            self.shared.root.join(id).join(dir)
        };
        prune_dir(&cache_dir, dir, &sizes);
    }
}

impl Storage for CachedStorage {
    fn location(&self) -> String {
        self.shared.inner.location()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if !self.read_through {
            if let (Some(path), Some(size)) = (self.cache_path(key), self.listed_size(key)) {
                if let Some(bytes) = load(&path, size) {
                    return Ok(Some(bytes));
                }
            }
        }
        let remote = self.shared.inner.read(key)?;
        if let Some(bytes) = &remote {
            self.observe_config(key, bytes);
        }
        self.refresh(key, remote.as_deref());
        Ok(remote)
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        // Ranges are read from packs and parity shards, which are never cached.
        self.shared.inner.read_range(key, offset, len)
    }

    fn read_range_into(&self, key: &str, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        self.shared.inner.read_range_into(key, offset, len, out)
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.shared.inner.size(key)
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        let written = self.shared.inner.write(key, data);
        match &written {
            Ok(()) => {
                self.observe_config(key, data);
                self.refresh(key, Some(data));
            }
            // The remote may or may not hold the new object: the cache holds neither.
            Err(_) => {
                if let Some(path) = self.cache_path(key) {
                    forget(&path);
                    self.note(key, None);
                }
            }
        }
        written
    }

    /// Packs (never cached) go out without a copy; metadata takes the cached path.
    fn write_owned(&self, key: &str, data: Vec<u8>) -> Result<()> {
        if is_cacheable(key) {
            self.write(key, &data)
        } else {
            self.shared.inner.write_owned(key, data)
        }
    }

    fn concurrency(&self) -> Option<usize> {
        self.shared.inner.concurrency()
    }

    fn delete(&self, key: &str) -> Result<()> {
        // Whether or not the remote delete succeeds, the cache no longer vouches for the file.
        if let Some(path) = self.cache_path(key) {
            forget(&path);
            self.note(key, None);
        }
        self.shared.inner.delete(key)
    }

    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let entries = self.shared.inner.list(dir)?;
        self.remember_listing(dir, &entries);
        Ok(entries)
    }

    fn local_root(&self) -> Option<&Path> {
        self.shared.inner.local_root()
    }

    fn uncached(&self) -> Option<Arc<dyn Storage>> {
        // The view already reads past the cache.
        if self.read_through {
            return None;
        }
        Some(Arc::new(CachedStorage {
            shared: self.shared.clone(),
            read_through: true,
        }))
    }
}

/// The cached content of `path` when it is whole and `size` bytes long; any
/// problem (missing, short, damaged) is a miss.
fn load(path: &Path, size: u64) -> Option<Vec<u8>> {
    // A file of another size is not read at all.
    if fs::metadata(path).ok()?.len() != HEADER as u64 + size {
        return None;
    }
    let stored = fs::read(path).ok()?;
    if stored.len() as u64 != HEADER as u64 + size || &stored[..8] != MAGIC {
        return None;
    }
    let content = &stored[HEADER..];
    if Sha256::digest(content).as_slice() != &stored[8..HEADER] {
        return None;
    }
    Some(content.to_vec())
}

/// Writes the cache file for `bytes`: tmp + rename, so a reader in any
/// process sees a whole file or none. No fsync: a torn file after a crash
/// fails its checksum and is refetched. Failures are ignored (a miss later).
fn store(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    let tmp = dir.join(format!("{TMP_PREFIX}{}", random_hex(8)));
    let mut stored = Vec::with_capacity(HEADER + bytes.len());
    stored.extend_from_slice(MAGIC);
    stored.extend_from_slice(&Sha256::digest(bytes));
    stored.extend_from_slice(bytes);
    let written = fs::create_dir_all(dir)
        .and_then(|()| fs::write(&tmp, &stored))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Creates a repository's cache directory readable by its owner only: an
/// unencrypted repository's manifests name the files it holds.
fn private_dir(dir: &Path) {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let _ = builder.create(dir);
}

fn forget(path: &Path) {
    let _ = fs::remove_file(path);
}

/// Removes the cache files of `dir` (repository directory `repo_dir`) that
/// the remote listing `sizes` no longer shows, and stale tmp files. Another
/// process may just have cached a file newer than this listing: removing it
/// costs that process one GET, nothing more.
fn prune_dir(cache_dir: &Path, repo_dir: &str, sizes: &HashMap<String, u64>) {
    let Ok(entries) = fs::read_dir(cache_dir) else { return };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file {
            continue;
        }
        let remove = if name.starts_with(TMP_PREFIX) {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TMP)
        } else {
            is_cacheable(&format!("{repo_dir}/{name}")) && !sizes.contains_key(&name)
        };
        if remove {
            forget(&entry.path());
        }
    }
}
