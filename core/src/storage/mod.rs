//! The one seam through which every repository file is read, written, listed
//! and deleted (issue 10). Keys are the relative, `/`-separated paths of the
//! repository layout (`config.json`, `packs/data/<id>.pack`, `snapshots/<id>`,
//! ...), the same on every backend, so an object store holds exactly the files
//! a local repository holds.
//!
//! Two implementations: [`local::LocalStorage`] (today's durability protocol:
//! tmp, fsync, rename, fsync of the directory) and [`s3::S3Storage`], object
//! storage through OpenDAL's S3 service, where a PUT is atomic and there is no rename.
//! [`cache::CachedStorage`] wraps the latter with a local metadata cache.

use std::path::Path;

use crate::error::Result;

pub mod cache;
pub mod local;
pub mod objects;
pub mod s3;

pub use local::LocalStorage;

/// A local repository's storage, shared as the engine holds it.
pub fn local(root: impl Into<std::path::PathBuf>) -> std::sync::Arc<dyn Storage> {
    std::sync::Arc::new(LocalStorage::new(root))
}

/// Whether `key` is a relative repository path: not empty, no leading `/`,
/// no empty, `.` or `..` component. Keys never leave the repository root.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// One object (file) in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name within the listed directory (no `/`).
    pub name: String,
    pub size: u64,
}

/// What the engine needs from where a repository lives. Every method is
/// blocking and safe to call from several threads at once.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Where the repository is, for messages: a path or `s3://bucket/prefix`.
    /// Never holds credentials.
    fn location(&self) -> String;

    /// The whole object, or `None` when it does not exist.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Exactly `len` bytes at `offset`; an object that is missing or too
    /// short is an error (`ERR_CORRUPT` when it is short, as a truncated file is).
    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// `read_range` into `out` (replacing what it held): a caller that reads
    /// many packs reuses one buffer instead of faulting in fresh pages each time.
    fn read_range_into(&self, key: &str, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        *out = self.read_range(key, offset, len)?;
        Ok(())
    }

    /// The object's size, or `None` when it does not exist.
    fn size(&self, key: &str) -> Result<Option<u64>>;

    /// Stores `data` under `key`, replacing any object there. Atomic and
    /// durable: once it returns, a crash leaves the whole new object; before,
    /// the old one (or none). Local: tmp, fsync, rename, fsync of the directory.
    fn write(&self, key: &str, data: &[u8]) -> Result<()>;

    /// `write` of bytes the caller gives up: object storage sends them
    /// without a copy (a pack buffered for its PUT is not held twice).
    fn write_owned(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.write(key, &data)
    }

    /// Removes the object durably. A missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// The objects directly in directory `dir` (no trailing `/`), sorted by
    /// name, without temporary files (`.tmp-*`). A missing directory is empty.
    fn list(&self, dir: &str) -> Result<Vec<Entry>>;

    /// The repository's directory when it is on a local filesystem: what only
    /// a filesystem offers (advisory `flock`, a PID check on a lock holder on
    /// this host) is used only when this is `Some`.
    fn local_root(&self) -> Option<&Path>;

    /// The same repository with every read going to where it lives, past any
    /// local cache (writes and deletes still keep that cache coherent).
    /// Verify, repair and reindex use it: they treat the remote as the truth.
    /// `None` for a storage without a cache, which is its own truth.
    fn uncached(&self) -> Option<std::sync::Arc<dyn Storage>> {
        None
    }

    /// How many requests the engine keeps in flight at once against this
    /// storage (`storage.concurrency`), or `None` on a local disk, where
    /// reads are cheap and the number of cores decides.
    fn concurrency(&self) -> Option<usize> {
        None
    }
}
