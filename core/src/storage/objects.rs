//! What the engine builds on the `Storage` trait without widening it:
//! streaming writes of objects named after their content, sequential and
//! padded reads, content hashes, and moves. Each picks the filesystem's own
//! way when the storage is local (`local_root()` is `Some`) and a generic one
//! otherwise, so no module outside `storage/` needs a path.

use sha2::{Digest, Sha256};

use super::{local, Storage};
use crate::error::{Error, Result};

/// Pieces in which objects are read sequentially: memory stays bounded
/// however large a pack or parity file is.
pub const PIECE: usize = 1 << 20;
/// The piece on object storage, where each piece is a request: a default
/// 8 MiB pack takes three GETs, and `concurrency` readers hold 4 MiB each.
pub const REMOTE_PIECE: usize = 4 << 20;

/// An object being written whose name is known only at the end (packs and
/// parity files are named by their hash). Dropping it without `commit`
/// leaves nothing behind.
pub trait ObjectWriter: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Makes the bytes durable as `<dir>/<name>` (`dir` given to `writer`).
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

/// A writer for a new object in `dir`. Local: a tmp file beside its final
/// name, fsynced and renamed at commit (memory does not grow with the
/// object). Elsewhere: the bytes are kept in memory and stored with one
/// `write` at commit; packs are bounded by the pack target size.
pub fn writer<'a>(storage: &'a dyn Storage, dir: &str) -> Result<Box<dyn ObjectWriter + 'a>> {
    match storage.local_root() {
        Some(root) => Ok(Box::new(local::FileWriter::create(root, dir)?)),
        None => Ok(Box::new(MemoryWriter {
            storage,
            dir: dir.to_string(),
            bytes: Vec::new(),
        })),
    }
}

struct MemoryWriter<'a> {
    storage: &'a dyn Storage,
    dir: String,
    bytes: Vec<u8>,
}

impl ObjectWriter for MemoryWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        self.storage.write_owned(&format!("{}/{name}", self.dir), self.bytes)
    }
}

/// Whether an object exists.
pub fn exists(storage: &dyn Storage, key: &str) -> Result<bool> {
    Ok(storage.size(key)?.is_some())
}

/// Reads an object front to back in `PIECE`s.
pub struct ObjectReader<'a> {
    storage: &'a dyn Storage,
    key: String,
    size: u64,
    /// Offset of the next byte not yet in `buf`.
    next: u64,
    buf: Vec<u8>,
    at: usize,
    piece: usize,
}

impl<'a> ObjectReader<'a> {
    /// `None` when the object does not exist.
    pub fn open(storage: &'a dyn Storage, key: &str) -> Result<Option<ObjectReader<'a>>> {
        Ok(storage.size(key)?.map(|size| ObjectReader {
            storage,
            key: key.to_string(),
            size,
            next: 0,
            buf: Vec::new(),
            at: 0,
            piece: match storage.local_root() {
                Some(_) => PIECE,
                None => REMOTE_PIECE,
            },
        }))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn fill(&mut self) -> Result<bool> {
        if self.at < self.buf.len() {
            return Ok(true);
        }
        if self.next >= self.size {
            return Ok(false);
        }
        let len = (self.size - self.next).min(self.piece as u64) as usize;
        self.buf = self.storage.read_range(&self.key, self.next, len)?;
        self.next += len as u64;
        self.at = 0;
        Ok(true)
    }

    /// Exactly `out.len()` bytes; running out is `ERR_CORRUPT`, as with a truncated file.
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if !self.fill()? {
                return Err(Error::corrupt(&self.key, "it ends early"));
            }
            let n = (self.buf.len() - self.at).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            done += n;
        }
        Ok(())
    }

    /// Everything not read yet.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while self.fill()? {
            out.extend_from_slice(&self.buf[self.at..]);
            self.at = self.buf.len();
        }
        Ok(out)
    }

    /// Feeds every byte not read yet to `f`, piece by piece; returns how many.
    pub fn for_each_piece(&mut self, mut f: impl FnMut(&[u8])) -> Result<u64> {
        let mut n = 0;
        while self.fill()? {
            f(&self.buf[self.at..]);
            n += (self.buf.len() - self.at) as u64;
            self.at = self.buf.len();
        }
        Ok(n)
    }
}

/// The object's size and SHA-256, streamed; `None` when it does not exist.
pub fn hash_object(storage: &dyn Storage, key: &str) -> Result<Option<(u64, [u8; 32])>> {
    let Some(mut reader) = ObjectReader::open(storage, key)? else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    let n = reader.for_each_piece(|piece| hasher.update(piece))?;
    Ok(Some((n, hasher.finalize().into())))
}

/// Fills `buf` with the object's bytes at `offset`, zeros past `size` (the
/// size the caller knows the object has).
pub fn read_padded(storage: &dyn Storage, key: &str, size: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
    buf.fill(0);
    if offset < size {
        let n = (size - offset).min(buf.len() as u64) as usize;
        let bytes = storage.read_range(key, offset, n)?;
        buf[..n].copy_from_slice(&bytes);
    }
    Ok(())
}

/// `read_padded` into a buffer of its own, `len` bytes long.
pub fn read_padded_owned(storage: &dyn Storage, key: &str, size: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut bytes = match offset < size {
        true => storage.read_range(key, offset, (size - offset).min(len as u64) as usize)?,
        false => Vec::new(),
    };
    bytes.resize(len, 0);
    Ok(bytes)
}

/// Moves an object, replacing what is at `to`. Local: a rename and a
/// directory fsync, so the object exists under exactly one name at every
/// moment. Elsewhere (no rename): a copy, then the delete of the original.
pub fn rename(storage: &dyn Storage, from: &str, to: &str) -> Result<()> {
    if let Some(root) = storage.local_root() {
        return local::rename(root, from, to);
    }
    let bytes = storage
        .read(from)?
        .ok_or_else(|| Error::Internal(format!("{from} vanished before it could be moved to {to}")))?;
    storage.write(to, &bytes)?;
    storage.delete(from)
}

/// `location/key`, for messages that named the file by its path.
pub fn describe(storage: &dyn Storage, key: &str) -> String {
    format!("{}/{key}", storage.location().trim_end_matches('/'))
}

/// The names of the objects directly in `dir`, sorted (see `Storage::list`).
pub fn names(storage: &dyn Storage, dir: &str) -> Result<Vec<String>> {
    Ok(storage.list(dir)?.into_iter().map(|e| e.name).collect())
}

/// The whole object; a missing one is the I/O error "not found", naming it.
pub fn read_required(storage: &dyn Storage, key: &str) -> Result<Vec<u8>> {
    storage.read(key)?.ok_or_else(|| Error::Io {
        path: describe(storage, key),
        source: std::io::ErrorKind::NotFound.into(),
    })
}
