//! A repository in a local directory. Writes keep the durability protocol of
//! `fsutil::atomic_write`: tmp file, fsync, rename, fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::objects::ObjectWriter;
use super::{Entry, Storage};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{atomic_write, fsync_dir, read_exact_at, read_optional, remove_durably, tmp_path, TMP_PREFIX};

#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> LocalStorage {
        LocalStorage { root: root.into() }
    }

    /// The file behind `key`; keys never leave the repository directory.
    fn path(&self, key: &str) -> Result<PathBuf> {
        path_in(&self.root, key)
    }
}

/// The file behind `key` under `root`; keys never leave the repository directory.
fn path_in(root: &Path, key: &str) -> Result<PathBuf> {
    if !super::is_valid_key(key) {
        return Err(Error::Internal(format!(
            "storage key {key:?} is not a relative repository path"
        )));
    }
    Ok(root.join(key))
}

/// Creates `dir` if it is missing and fsyncs its parent, so a file renamed
/// into it survives a crash with its directory.
fn create_dir_durably(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).at(dir)?;
    match dir.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

/// A new file streamed into a tmp file in its directory; `commit` fsyncs it,
/// renames it to its name and fsyncs the directory (as `atomic_write`).
pub(crate) struct FileWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl FileWriter {
    pub(crate) fn create(root: &Path, dir: &str) -> Result<FileWriter> {
        let dir = path_in(root, dir)?;
        create_dir_durably(&dir)?;
        let tmp = tmp_path(&dir, "new");
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp).at(&tmp)?;
        Ok(FileWriter {
            dir,
            tmp,
            file: Some(file),
        })
    }
}

impl ObjectWriter for FileWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self.file.as_mut().expect("file writer used after commit");
        file.write_all(bytes).at(&self.tmp)
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let target = path_in(&self.dir, name)?;
        let file = self.file.as_ref().expect("file writer used after commit");
        file.sync_all().at(&self.tmp)?;
        fs::rename(&self.tmp, &target).at(&target)?;
        // Renamed: nothing for Drop to remove, even if the fsync below fails.
        self.file = None;
        fsync_dir(&self.dir)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // An uncommitted object is referenced by nothing.
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Renames `from` to `to` (replacing it) and fsyncs the directories involved.
pub(crate) fn rename(root: &Path, from: &str, to: &str) -> Result<()> {
    let (src, dst) = (path_in(root, from)?, path_in(root, to)?);
    fs::rename(&src, &dst).at(&dst)?;
    let (a, b) = (src.parent().unwrap_or(root), dst.parent().unwrap_or(root));
    fsync_dir(b)?;
    if a != b {
        fsync_dir(a)?;
    }
    Ok(())
}

/// A held advisory `flock`; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// An advisory `flock` on the file `key` (created if missing), held until the
/// returned guard is dropped. Only a filesystem has this.
pub fn flock(root: &Path, key: &str, exclusive: bool) -> Result<FileLock> {
    let path = path_in(root, key)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    if exclusive { file.lock() } else { file.lock_shared() }.at(&path)?;
    Ok(FileLock { _file: file })
}

/// Creates the directories in `dirs` that are missing and fsyncs the parents
/// of the ones it created (with `sync_all`, the parents of every one: init
/// makes sure a skeleton left by an interrupted init is durable too).
/// Returns whether it created any.
pub fn ensure_dirs(root: &Path, dirs: &[&str], sync_all: bool) -> Result<bool> {
    let mut parents = std::collections::BTreeSet::new();
    let mut created = false;
    for dir in dirs {
        let path = path_in(root, dir)?;
        let missing = !path.is_dir();
        if missing {
            fs::create_dir_all(&path).at(&path)?;
            created = true;
        }
        if missing || sync_all {
            let mut rel = Path::new(dir);
            // Every directory on the way may be new: fsync each parent.
            while let Some(parent) = rel.parent() {
                parents.insert(root.join(parent));
                rel = parent;
            }
        }
    }
    for parent in parents.iter().rev() {
        fsync_dir(parent)?;
    }
    Ok(created)
}

/// Whether `root` may receive a new repository: missing, empty, or holding
/// only (empty) layout directories an interrupted init left behind.
pub fn check_init_dir(root: &Path, allowed: &[&str]) -> Result<()> {
    match fs::read_dir(root) {
        Ok(entries) => {
            for entry in entries {
                let name = entry.at(root)?.file_name().to_string_lossy().into_owned();
                if !allowed.contains(&name.as_str()) {
                    return Err(Error::invalid(format!(
                        "{} is not empty; init() needs an empty or new directory",
                        root.display()
                    )));
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(20) => Err(Error::invalid(format!(
            "{} is a file; init() needs a directory path",
            root.display()
        ))),
        Err(e) => Err(e).at(root),
    }
}

/// Whether directory `key` has any entry at all (files, tmp files, subdirectories).
pub fn dir_has_entries(root: &Path, key: &str) -> bool {
    path_in(root, key).is_ok_and(|p| fs::read_dir(p).is_ok_and(|mut e| e.next().is_some()))
}

/// Whether anything (a file, a directory, a dangling link) has the name `key`.
pub fn name_taken(root: &Path, key: &str) -> bool {
    path_in(root, key).is_ok_and(|p| p.symlink_metadata().is_ok())
}

/// Removes every `.tmp-*` file in `dirs` and in `root` itself: what a killed
/// writer left. Best effort: one that cannot be removed is left for next time.
pub fn remove_tmp_files(root: &Path, dirs: &[&str]) {
    let paths = dirs.iter().filter_map(|d| path_in(root, d).ok());
    for dir in paths.chain([root.to_path_buf()]) {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Bytes of every file under `root`, tmp files and subdirectories included.
pub fn tree_bytes(root: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(root) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read_optional(&self.path(key)?)
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        // Zeroed by calloc: fresh pages come zeroed, so no pass of memset.
        let mut buf = vec![0u8; len];
        self.read_exact_into(key, offset, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, key: &str, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(len, 0);
        self.read_exact_into(key, offset, buf)
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            create_dir_durably(dir)?;
        }
        atomic_write(&path, data)
    }

    fn delete(&self, key: &str) -> Result<()> {
        remove_durably(&self.path(key)?)
    }

    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let path = if dir.is_empty() {
            self.root.clone()
        } else {
            self.path(dir)?
        };
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(&path),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.at(&path)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            // Symbolic links are followed (packs may live on another disk); a dangling one is no file.
            if let Ok(meta) = fs::metadata(entry.path()) {
                if meta.is_file() {
                    out.push(Entry { name, size: meta.len() });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

impl LocalStorage {
    /// Fills `buf` from `offset`; a file that ends first is `ERR_CORRUPT`.
    fn read_exact_into(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let path = self.path(key)?;
        let file = File::open(&path).at(&path)?;
        let len = buf.len();
        match read_exact_at(&file, buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::corrupt(
                key,
                format!(
                    "it ends before byte {} (wanted {len} bytes at offset {offset})",
                    offset + len as u64
                ),
            )),
            Err(e) => Err(e).at(&path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_contract() {
        let dir = std::env::temp_dir().join(format!("ca-storage-{}", crate::fsutil::random_hex(6)));
        let s = LocalStorage::new(&dir);
        assert_eq!(s.read("snapshots/a").unwrap(), None);
        assert_eq!(s.list("snapshots").unwrap(), vec![]);
        s.write("snapshots/a", b"hello world").unwrap();
        s.write("snapshots/b", b"x").unwrap();
        assert_eq!(s.read("snapshots/a").unwrap().unwrap(), b"hello world");
        assert_eq!(s.read_range("snapshots/a", 6, 5).unwrap(), b"world");
        assert_eq!(s.read_range("snapshots/a", 6, 6).unwrap_err().code(), "ERR_CORRUPT");
        assert_eq!(s.size("snapshots/a").unwrap(), Some(11));
        fs::write(dir.join("snapshots/.tmp-1-c"), b"partial").unwrap();
        let names: Vec<_> = s
            .list("snapshots")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.size))
            .collect();
        assert_eq!(names, vec![("a".to_string(), 11), ("b".to_string(), 1)]);
        s.delete("snapshots/a").unwrap();
        s.delete("snapshots/a").unwrap();
        assert_eq!(s.size("snapshots/a").unwrap(), None);
        for bad in ["", "/etc/passwd", "../x", "a//b", "a/./b"] {
            assert!(s.read(bad).is_err(), "{bad:?} must be refused");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
