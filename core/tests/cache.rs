//! The local metadata cache of object-storage repositories (issue 10): it
//! saves GETs of index files, `.idx` sidecars, snapshot and group manifests,
//! and never changes a result. The "remote" is a local directory seen as an
//! object store (no `local_root`), wrapped to count the GETs of every key.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{check, data, ingest_bytes, small_options};
use containerarchive_core::check::Level;
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::storage::cache::{cached, default_cache_dir, is_cacheable, CachedStorage};
use containerarchive_core::storage::{Entry, LocalStorage, Storage};
use containerarchive_core::{Manifest, Repository};

/// A directory behaving as an object store, counting GETs (whole and ranged) per key.
#[derive(Debug)]
struct Remote {
    dir: LocalStorage,
    gets: Mutex<HashMap<String, u64>>,
}

impl Remote {
    fn new(root: &Path) -> Arc<Remote> {
        Arc::new(Remote {
            dir: LocalStorage::new(root),
            gets: Mutex::new(HashMap::new()),
        })
    }
    fn count(&self, key: &str) {
        *self.gets.lock().unwrap().entry(key.to_string()).or_default() += 1;
    }
    /// GETs so far of keys the cache keeps, and forgets them.
    fn take_metadata_gets(&self) -> Vec<String> {
        let mut gets = self.gets.lock().unwrap();
        let mut out: Vec<String> = gets.keys().filter(|k| is_cacheable(k)).cloned().collect();
        out.sort();
        gets.clear();
        out
    }
    fn gets_of(&self, key: &str) -> u64 {
        self.gets.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl Storage for Remote {
    fn location(&self) -> String {
        "s3://counting/test".into()
    }
    fn read(&self, key: &str) -> containerarchive_core::Result<Option<Vec<u8>>> {
        self.count(key);
        self.dir.read(key)
    }
    fn read_range(&self, key: &str, offset: u64, len: usize) -> containerarchive_core::Result<Vec<u8>> {
        self.count(key);
        self.dir.read_range(key, offset, len)
    }
    fn size(&self, key: &str) -> containerarchive_core::Result<Option<u64>> {
        self.dir.size(key)
    }
    fn write(&self, key: &str, data: &[u8]) -> containerarchive_core::Result<()> {
        self.dir.write(key, data)
    }
    fn delete(&self, key: &str) -> containerarchive_core::Result<()> {
        self.dir.delete(key)
    }
    fn list(&self, dir: &str) -> containerarchive_core::Result<Vec<Entry>> {
        self.dir.list(dir)
    }
    fn local_root(&self) -> Option<&Path> {
        None
    }
}

struct Setup {
    base: PathBuf,
    bucket: PathBuf,
    cache: PathBuf,
    remote: Arc<Remote>,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let base = std::env::temp_dir().join(format!("ca-cache-{tag}-{}", random_hex(6)));
        let bucket = base.join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        Setup {
            base: base.clone(),
            remote: Remote::new(&bucket),
            cache: base.join("cache"),
            bucket,
        }
    }
    /// A new handle on the repository, cached in `self.cache`, as a new process would open it.
    fn open(&self) -> Repository {
        Repository::open_in(cached(self.remote.clone(), self.cache.clone()).unwrap(), None).unwrap()
    }
    /// The repository without a cache.
    fn open_uncached(&self) -> Repository {
        self.open_uncached_with(None)
    }
    fn open_uncached_with(&self, passphrase: Option<&str>) -> Repository {
        Repository::open_in(self.remote.clone(), passphrase).unwrap()
    }
    /// Every file in the cache directory, relative to its repository-id directory.
    fn cache_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.cache, &mut out);
        out.iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(&self.cache)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                // <repo id>/<key>
                rel.split_once('/').unwrap().1.to_string()
            })
            .collect()
    }
    fn cache_file(&self, key: &str) -> PathBuf {
        let ids: Vec<_> = std::fs::read_dir(&self.cache).unwrap().collect();
        assert_eq!(ids.len(), 1, "one repository id directory");
        ids.into_iter().next().unwrap().unwrap().path().join(key)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn ids(snapshots: &[Manifest]) -> Vec<String> {
    snapshots.iter().map(|m| m.id.clone()).collect()
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

/// A repository of `n` snapshots of the same small data, written without a
/// cache: one ingest, then its manifest under new ids (an ingest each would
/// take a minute in a debug build).
fn repository(tag: &str, n: usize) -> Setup {
    let setup = Setup::new(tag);
    let repo = Repository::init_in(setup.remote.clone(), &small_options(None)).unwrap();
    let first = ingest_bytes(&repo, &data(7, 200_000));
    for i in 1..n {
        let mut copy = first.clone();
        copy.id = random_hex(32);
        // One millisecond apart, so the order is known.
        copy.created_at = format!("2026-01-01T00:{:02}:{:02}.{:03}Z", i / 60_000, i / 1000 % 60, i % 1000);
        repo.write_snapshot(&copy).unwrap();
    }
    setup.remote.take_metadata_gets();
    setup
}

#[test]
fn a_second_open_and_list_of_1000_snapshots_gets_no_metadata() {
    let setup = repository("thousand", 1000);
    let truth = ids(&setup.open_uncached().list_snapshots().unwrap());
    assert_eq!(truth.len(), 1000);
    setup.remote.take_metadata_gets();

    // Cold cache: every manifest and index file is fetched once.
    let first = setup.open().list_snapshots().unwrap();
    let fetched = setup.remote.take_metadata_gets();
    assert!(
        fetched.iter().filter(|k| k.starts_with("snapshots/")).count() == 1000,
        "cold: {}",
        fetched.len()
    );
    assert!(fetched.iter().any(|k| k.starts_with("index/")));

    // Warm cache, new handle: nothing the cache keeps is fetched again.
    let second = setup.open().list_snapshots().unwrap();
    assert_eq!(setup.remote.take_metadata_gets(), Vec::<String>::new());
    assert_eq!(ids(&first), truth);
    assert_eq!(ids(&second), truth);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = setup.cache_file("index");
        let mode = std::fs::metadata(dir.parent().unwrap()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the repository's cache is private");
    }
    // Only metadata is cached: never packs, parity shards, config, keys or locks.
    let files = setup.cache_files();
    assert!(files.len() > 1000, "{}", files.len());
    let stray: Vec<_> = files.iter().filter(|k| !is_cacheable(k)).collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_damaged_cache_file_is_refetched_and_results_are_equal() {
    let setup = repository("damaged", 5);
    let truth = setup.open_uncached().list_snapshots().unwrap();
    setup.open().list_snapshots().unwrap();
    setup.remote.take_metadata_gets();

    // One cache file with a flipped byte, one truncated, one emptied.
    let mut keys: Vec<String> = truth[..3].iter().map(|m| format!("snapshots/{}", m.id)).collect();
    keys.sort();
    flip_last_byte(&setup.cache_file(&keys[0]));
    let path = setup.cache_file(&keys[1]);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    std::fs::write(setup.cache_file(&keys[2]), b"").unwrap();

    let listed = setup.open().list_snapshots().unwrap();
    assert_eq!(listed, truth);
    assert_eq!(
        setup.remote.take_metadata_gets(),
        keys,
        "exactly the damaged files are fetched"
    );
    // ... and cached again, whole.
    assert_eq!(setup.open().list_snapshots().unwrap(), truth);
    assert_eq!(setup.remote.take_metadata_gets(), Vec::<String>::new());
}

#[test]
fn snapshots_deleted_or_added_remotely_are_noticed() {
    let setup = repository("stale", 4);
    let cached = setup.open();
    let before = cached.list_snapshots().unwrap();

    // Another host (no cache) forgets one snapshot and adds one.
    let other = setup.open_uncached();
    let gone = &before[1].id;
    other
        .storage()
        .delete(&format!("packs/parity/snapshots/{gone}"))
        .unwrap();
    other.storage().delete(&format!("snapshots/{gone}")).unwrap();
    let added = ingest_bytes(&other, &data(8, 50_000));

    let truth = ids(&setup.open_uncached().list_snapshots().unwrap());
    assert!(!truth.contains(gone) && truth.contains(&added.id));
    assert_eq!(ids(&cached.list_snapshots().unwrap()), truth, "the open handle");
    assert_eq!(ids(&setup.open().list_snapshots().unwrap()), truth, "a new handle");
    // The cache file of the deleted snapshot went with the listing that no longer shows it.
    assert!(!setup.cache_file(&format!("snapshots/{gone}")).exists());
    assert!(setup.cache_file(&format!("snapshots/{}", added.id)).exists());
}

/// A cache over a bare remote, with `config.json` giving it a repository id.
fn bare(tag: &str, ttl: Duration) -> (Setup, CachedStorage) {
    let setup = Setup::new(tag);
    let cache = CachedStorage::new(setup.remote.clone(), setup.cache.clone(), ttl).unwrap();
    let config = format!("{{\"id\":\"{}\"}}", "ab".repeat(32));
    cache.write("config.json", config.as_bytes()).unwrap();
    (setup, cache)
}

#[test]
fn a_file_replaced_remotely_is_fetched_again() {
    let (setup, cache) = bare("replaced", Duration::from_secs(600));
    let key = "packs/parity/g1.group";
    setup.remote.write(key, b"version one").unwrap();
    cache.list("packs/parity").unwrap();
    assert_eq!(cache.read(key).unwrap().unwrap(), b"version one");
    cache.list("packs/parity").unwrap();
    assert_eq!(cache.read(key).unwrap().unwrap(), b"version one");
    assert_eq!(setup.remote.gets_of(key), 1, "the second read is served by the cache");

    // Replaced by another writer: the listing shows another size.
    setup.remote.write(key, b"version two, longer").unwrap();
    cache.list("packs/parity").unwrap();
    assert_eq!(cache.read(key).unwrap().unwrap(), b"version two, longer");
    assert_eq!(setup.remote.gets_of(key), 2);
    // Deleted by another writer: missing, as the remote says.
    setup.remote.delete(key).unwrap();
    cache.list("packs/parity").unwrap();
    assert_eq!(cache.read(key).unwrap(), None);
}

#[test]
fn only_a_fresh_listing_vouches_for_a_cached_file() {
    let (setup, cache) = bare("ttl", Duration::ZERO);
    let key = "index/00aa";
    cache.write(key, b"index bytes").unwrap();
    for _ in 0..3 {
        cache.list("index").unwrap();
        assert_eq!(cache.read(key).unwrap().unwrap(), b"index bytes");
    }
    assert_eq!(setup.remote.gets_of(key), 3, "an expired listing vouches for nothing");

    // Without any listing the remote is asked, even with a long window.
    let (setup, cache) = bare("nolist", Duration::from_secs(600));
    cache.write(key, b"index bytes").unwrap();
    let again = CachedStorage::new(setup.remote.clone(), setup.cache.clone(), Duration::from_secs(600)).unwrap();
    again.read("config.json").unwrap();
    assert_eq!(again.read(key).unwrap().unwrap(), b"index bytes");
    assert_eq!(setup.remote.gets_of(key), 1);
    again.list("index").unwrap();
    assert_eq!(again.read(key).unwrap().unwrap(), b"index bytes");
    assert_eq!(setup.remote.gets_of(key), 1, "listed now, so served by the cache");
}

#[test]
fn nothing_is_cached_before_the_repository_id_is_known_nor_outside_metadata() {
    let setup = Setup::new("noid");
    let cache = CachedStorage::new(setup.remote.clone(), setup.cache.clone(), Duration::from_secs(600)).unwrap();
    cache.write("snapshots/aa", b"manifest").unwrap();
    assert!(setup.cache_files().is_empty(), "no id, no cache");
    let config = format!("{{\"id\":\"{}\"}}", "cd".repeat(32));
    cache.write("config.json", config.as_bytes()).unwrap();
    for key in [
        "packs/data/aa.pack",
        "packs/parity/aa.par",
        "keys/k.json",
        "locks/l",
        "snapshots/x.damaged",
    ] {
        cache.write(key, b"not metadata").unwrap();
    }
    cache.write("packs/data/aa.idx", b"sidecar").unwrap();
    cache.write("packs/parity/snapshots/aa", b"copy").unwrap();
    assert_eq!(
        {
            let mut f = setup.cache_files();
            f.sort();
            f
        },
        vec!["packs/data/aa.idx".to_string(), "packs/parity/snapshots/aa".to_string()]
    );
    // Deleting removes both.
    cache.delete("packs/data/aa.idx").unwrap();
    assert_eq!(setup.cache_files(), vec!["packs/parity/snapshots/aa".to_string()]);
    assert_eq!(setup.remote.size("packs/data/aa.idx").unwrap(), None);
}

#[test]
fn verify_reads_the_bucket_and_repair_fixes_it() {
    let setup = repository("verify", 3);
    let repo = setup.open();
    let before = repo.list_snapshots().unwrap();
    assert!(check(&repo, Level::Standard).ok);

    // Damage a manifest in the bucket; the cache holds the good copy.
    let key = format!("snapshots/{}", before[0].id);
    flip_last_byte(&setup.bucket.join(&key));
    assert!(setup.cache_file(&key).exists());
    setup.remote.take_metadata_gets();
    let report = check(&repo, Level::Standard);
    assert!(!report.ok, "verify must see the damaged object in the bucket");
    assert!(
        report.errors.iter().any(|e| e.error.contains(&key)),
        "{:?}",
        report.errors
    );
    assert!(setup.remote.gets_of(&key) >= 1, "verify fetched it");
    // Results never change: the manifest is still read through its intact copy.
    assert_eq!(setup.open().list_snapshots().unwrap(), before);

    // Repair decides from the bucket too, and leaves the cache coherent.
    repair(&repo, Duration::ZERO).unwrap();
    assert!(check(&repo, Level::Full).ok);
    assert!(check(&setup.open_uncached(), Level::Full).ok);
    assert_eq!(setup.open().list_snapshots().unwrap(), before);
}

#[test]
fn the_engine_works_through_the_cache() {
    let setup = Setup::new("engine");
    let storage = cached(setup.remote.clone(), setup.cache.clone()).unwrap();
    let repo = Repository::init_in(storage, &small_options(Some("pw"))).unwrap();
    let a = ingest_bytes(&repo, &data(1, 400_000));
    let b = ingest_bytes(&repo, &data(2, 400_000));
    assert!(check(&repo, Level::Full).ok);
    // Written through: a new handle lists without GETs of manifests or index files.
    setup.remote.take_metadata_gets();
    let reopened = Repository::open_in(cached(setup.remote.clone(), setup.cache.clone()).unwrap(), Some("pw")).unwrap();
    assert_eq!(
        ids(&reopened.list_snapshots().unwrap()),
        vec![a.id.clone(), b.id.clone()]
    );
    assert_eq!(setup.remote.take_metadata_gets(), Vec::<String>::new());
    let repo2 = Repository::open_in(setup.remote.clone(), Some("pw")).unwrap();
    assert!(check(&repo2, Level::Full).ok);

    // Prune through the cache: what it deletes leaves the cache too.
    let pruned = prune(
        &reopened,
        &Retention {
            keep_last: Some(1),
            ..Default::default()
        },
        false,
        &|_| {},
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(pruned.kept_snapshots, vec![b.id.clone()]);
    assert!(check(&repo, Level::Full).ok);
    assert!(check(&setup.open_uncached_with(Some("pw")), Level::Full).ok);
    let files = setup.cache_files();
    assert!(!files.iter().any(|f| f.contains(&a.id)), "{files:?}");
    for file in files {
        assert!(
            setup.remote.size(&file).unwrap().is_some(),
            "{file} is cached but not in the bucket"
        );
    }
}

#[test]
fn the_default_directory_is_per_location() {
    let Some(a) = default_cache_dir("s3://bucket/a@http://127.0.0.1:3900") else {
        return; // no HOME: nothing to check
    };
    let b = default_cache_dir("s3://bucket/b@http://127.0.0.1:3900").unwrap();
    assert_ne!(a, b);
    assert_eq!(a, default_cache_dir("s3://bucket/a@http://127.0.0.1:3900").unwrap());
    assert_eq!(a.parent().unwrap().file_name().unwrap(), "containerarchive");
    assert_eq!(a.file_name().unwrap().len(), 32);
}

#[test]
fn handles_and_repositories_can_share_a_cache_directory() {
    let setup = repository("shared", 40);
    let truth = setup.open_uncached().list_snapshots().unwrap();
    // Several handles (as several processes would) fill and read one cache at once.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..3 {
                    assert_eq!(setup.open().list_snapshots().unwrap(), truth);
                }
            });
        }
    });
    let leftovers: Vec<_> = setup
        .cache_files()
        .into_iter()
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Another repository in the same cache directory keeps its own entries.
    let other = repository("shared-other", 3);
    let other_truth = other.open_uncached().list_snapshots().unwrap();
    let open_other = || Repository::open_in(cached(other.remote.clone(), setup.cache.clone()).unwrap(), None).unwrap();
    assert_eq!(open_other().list_snapshots().unwrap(), other_truth);
    assert_eq!(open_other().list_snapshots().unwrap(), other_truth);
    assert_eq!(setup.open().list_snapshots().unwrap(), truth);
    assert_eq!(
        std::fs::read_dir(&setup.cache).unwrap().count(),
        2,
        "one directory per repository id"
    );
}
