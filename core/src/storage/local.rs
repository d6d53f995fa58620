//! A repository in a local directory. Writes keep the durability protocol of
//! `fsutil::atomic_write`: tmp file, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::{Entry, Storage};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{atomic_write, read_exact_at, read_optional, remove_durably, TMP_PREFIX};

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
        if !super::is_valid_key(key) {
            return Err(Error::Internal(format!(
                "storage key {key:?} is not a relative repository path"
            )));
        }
        Ok(self.root.join(key))
    }
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read_optional(&self.path(key)?)
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        let file = File::open(&path).at(&path)?;
        let mut buf = vec![0u8; len];
        match read_exact_at(&file, &mut buf, offset) {
            Ok(()) => Ok(buf),
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
            if !dir.is_dir() {
                fs::create_dir_all(dir).at(dir)?;
            }
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
