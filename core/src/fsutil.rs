//! Durable file operations. Every file the engine writes goes through
//! `atomic_write` or `DurableFile`: tmp file, fsync, rename, fsync of the
//! directory. A crash leaves either the old state or the new one, plus at
//! worst a `.tmp-*` file that repair removes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

pub const TMP_PREFIX: &str = ".tmp-";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all.
    getrandom::getrandom(&mut out).expect("the operating system's random source failed");
    out
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the operating system's random source failed");
    hex::encode(buf)
}

/// A fresh tmp path beside `final_name` in `dir`.
pub fn tmp_path(dir: &Path, final_name: &str) -> PathBuf {
    dir.join(format!("{TMP_PREFIX}{}-{final_name}", random_hex(8)))
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Writes `data` to `path` so that a crash leaves either no file or the whole file.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent directory", path.display())))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Internal(format!("{} has no file name", path.display())))?;
    let tmp = tmp_path(dir, name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at(&tmp)?;
        file.write_all(data).at(&tmp)?;
        file.sync_all().at(&tmp)?;
        drop(file);
        fs::rename(&tmp, path).at(path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole file, mapping "not found" to `None`.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

/// Names of the regular, non-temporary files in `dir`, sorted.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP_PREFIX) || !entry.file_type().at(dir)?.is_file() {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The current time as ISO-8601 UTC with milliseconds, e.g. `2026-05-01T12:00:00.000Z`.
pub fn now_iso8601() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso8601_from_millis(now.as_millis() as i64)
}

pub fn iso8601_from_millis(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_from_millis(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(
            iso8601_from_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        let dir = std::env::temp_dir().join(format!("ca-fsutil-{}", random_hex(6)));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(list_files(&dir).unwrap(), vec!["file".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
