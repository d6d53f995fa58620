//! Advisory repository locks in `locks/<id>.json`, shared by processes.
//!
//! Ingest and verify hold a shared lock; repair, reindex and prune an
//! exclusive one. A holder rewrites `refreshedAt` every few minutes; a lock
//! is stale when its pid is dead on this host or it was not refreshed for
//! 30 minutes. Stale locks are ignored and removed by `unlock`/`repair`.
//!
//! The PID check needs the repository on a filesystem of this host
//! (`Storage::local_root`); elsewhere a lock is stale only by age.
//!
//! Acquiring writes our record first and then looks for conflicts, so two
//! processes racing for conflicting locks both see each other and back off.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{hostname, now_iso8601, now_millis, parse_iso8601_millis, pid_alive, random_hex};
use crate::storage::objects::names;
use crate::storage::Storage;

pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const STALE_AFTER_MILLIS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LockRecord {
    pub id: String,
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    pub created_at: String,
    pub refreshed_at: String,
    /// Hex SHA-256 of `canonical()`. Records written before format version 2
    /// have none and are taken as they are (a live lock must never be ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl LockRecord {
    fn canonical(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}",
            self.id, self.exclusive, self.hostname, self.pid, self.created_at, self.refreshed_at
        )
    }

    /// The record with its checksum set.
    pub fn sealed(mut self) -> LockRecord {
        self.checksum = Some(hex::encode(crate::crypto::sha256(self.canonical().as_bytes())));
        self
    }

    fn checksum_ok(&self) -> bool {
        self.checksum
            .as_ref()
            .is_none_or(|c| *c == hex::encode(crate::crypto::sha256(self.canonical().as_bytes())))
    }

    pub fn is_stale(&self, now_ms: i64, this_host: &str) -> bool {
        self.is_stale_for(now_ms, Some(this_host))
    }

    /// `is_stale`, where `pid_host` is the host whose pids can be checked
    /// (none when the repository is not on a local filesystem).
    pub fn is_stale_for(&self, now_ms: i64, pid_host: Option<&str>) -> bool {
        let refreshed = parse_iso8601_millis(&self.refreshed_at).unwrap_or(0);
        now_ms - refreshed > STALE_AFTER_MILLIS || (pid_host == Some(self.hostname.as_str()) && !pid_alive(self.pid))
    }

    fn describe(&self) -> String {
        format!(
            "{} lock held by pid {} on {} since {}",
            if self.exclusive { "an exclusive" } else { "a shared" },
            self.pid,
            self.hostname,
            self.created_at
        )
    }
}

const LOCKS_DIR: &str = "locks";

/// This host, when the pids of lock holders on it can be checked: only for a
/// repository on a local filesystem (a bucket is shared by hosts that may
/// share a name, and its records say nothing about this machine's processes).
fn pid_host(storage: &dyn Storage) -> Option<String> {
    storage.local_root().map(|_| hostname())
}

/// Every lock record: `(file name, parsed record or None if unreadable)`.
pub fn read_locks(storage: &dyn Storage) -> Result<Vec<(String, Option<LockRecord>)>> {
    let mut out = Vec::new();
    for name in names(storage, LOCKS_DIR)? {
        if !name.ends_with(".json") {
            continue;
        }
        // A record whose checksum fails is unreadable, so stale (as a garbled one always was).
        let record = storage
            .read(&format!("{LOCKS_DIR}/{name}"))
            .ok()
            .flatten()
            .and_then(|b| parse_lock_record(&b, &name).ok());
        out.push((name, record));
    }
    Ok(out)
}

/// Decodes `locks/<name>`. A pid outside 1..=i32::MAX would make `kill(pid, 0)`
/// probe a process group (always "alive"), so such a record is damaged.
pub fn parse_lock_record(bytes: &[u8], name: &str) -> Result<LockRecord> {
    let what = format!("lock record locks/{name}");
    let record: LockRecord = serde_json::from_slice(bytes).map_err(|e| Error::corrupt(&what, e))?;
    if !record.checksum_ok() {
        return Err(Error::corrupt(&what, "its checksum does not match its content"));
    }
    if record.pid == 0 || record.pid > i32::MAX as u32 {
        return Err(Error::corrupt(&what, format!("pid {} is out of range", record.pid)));
    }
    if parse_iso8601_millis(&record.created_at).is_none() || parse_iso8601_millis(&record.refreshed_at).is_none() {
        return Err(Error::corrupt(&what, "a timestamp cannot be read"));
    }
    Ok(record)
}

/// A held lock; dropping it stops the refresher and removes the record.
pub struct LockGuard {
    pub id: String,
    storage: Arc<dyn Storage>,
    key: String,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.storage.delete(&self.key);
    }
}

/// Takes a lock, waiting up to `timeout` for conflicting live locks to go.
pub fn acquire(storage: &Arc<dyn Storage>, exclusive: bool, timeout: Duration) -> Result<LockGuard> {
    acquire_with_refresh(
        storage,
        exclusive,
        timeout,
        REFRESH_INTERVAL,
        None,
        &crate::cancel::NEVER,
    )
}

/// `acquire` whose wait ends early, with Err(Cancelled), once `cancel` is set:
/// an operator's Ctrl-C must not sit out a `--lock-wait 10m`.
pub fn acquire_until(
    storage: &Arc<dyn Storage>,
    exclusive: bool,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<LockGuard> {
    acquire_with_refresh(storage, exclusive, timeout, REFRESH_INTERVAL, None, cancel)
}

/// `acquire` with a chosen refresh interval; `refreshed` hears of each refresh (for tests).
fn acquire_with_refresh(
    storage: &Arc<dyn Storage>,
    exclusive: bool,
    timeout: Duration,
    interval: Duration,
    refreshed_tx: Option<Sender<()>>,
    cancel: &AtomicBool,
) -> Result<LockGuard> {
    let host = hostname();
    let checkable = pid_host(&**storage);
    let id = random_hex(16);
    let key = format!("{LOCKS_DIR}/{id}.json");
    let created_at = now_iso8601();
    let record = LockRecord {
        id: id.clone(),
        exclusive,
        hostname: host.clone(),
        pid: std::process::id(),
        created_at: created_at.clone(),
        refreshed_at: created_at,
        checksum: None,
    };
    let started = Instant::now();
    let mut backoff = Duration::from_millis(20);
    loop {
        crate::cancel::check_cancel(cancel, "wait for the lock")?;
        write_new_record(&**storage, &key, &record)?;
        let conflict = read_locks(&**storage)?.into_iter().find_map(|(name, other)| {
            let other = other?;
            let conflicts = name != format!("{id}.json")
                && (exclusive || other.exclusive)
                && !other.is_stale_for(now_millis(), checkable.as_deref());
            conflicts.then_some(other)
        });
        let Some(holder) = conflict else {
            let (stop, stopped) = channel::<()>();
            let (refresh_storage, refresh_key) = (Arc::clone(storage), key.clone());
            let mut refreshed = record.clone();
            let refresher = std::thread::Builder::new()
                .name("containerarchive-lock-refresh".into())
                .spawn(move || loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {
                            refreshed.refreshed_at = now_iso8601();
                            let _ = write_record(&*refresh_storage, &refresh_key, &refreshed);
                            if let Some(tx) = &refreshed_tx {
                                let _ = tx.send(());
                            }
                        }
                        _ => return,
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start the lock refresher: {e}")))?;
            return Ok(LockGuard {
                id,
                storage: Arc::clone(storage),
                key,
                stop: Some(stop),
                refresher: Some(refresher),
            });
        };
        storage.delete(&key)?;
        if started.elapsed() >= timeout {
            return Err(Error::Locked(format!(
                "the repository is locked: {}; wait for it to finish, pass {{ lockTimeoutMs }} to wait, or run unlock() if that process is gone",
                holder.describe()
            )));
        }
        // Backing off with jitter lets two racing processes settle who goes first.
        let jitter = Duration::from_millis(u64::from(crate::fsutil::random_bytes::<1>()[0]) % 20);
        std::thread::sleep((backoff + jitter).min(timeout.saturating_sub(started.elapsed())));
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Writes our record; repair removes every `.tmp-*` file in `locks/` (a killed
/// process leaves its half-written record there), so a tmp file that vanished
/// before its rename is written again.
fn write_new_record(storage: &dyn Storage, key: &str, record: &LockRecord) -> Result<()> {
    let mut attempts = 0;
    loop {
        match write_record(storage, key, record) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

fn write_record(storage: &dyn Storage, key: &str, record: &LockRecord) -> Result<()> {
    let record = record.clone().sealed();
    storage.write(
        key,
        &serde_json::to_vec_pretty(&record).expect("lock record serialises"),
    )
}

/// Removes stale (or, with `force`, all) locks; unreadable records count as stale.
pub fn remove_locks(storage: &dyn Storage, force: bool) -> Result<usize> {
    let host = pid_host(storage);
    let now = now_millis();
    let mut removed = 0;
    for (name, record) in read_locks(storage)? {
        let stale = record.as_ref().is_none_or(|r| r.is_stale_for(now, host.as_deref()));
        if (force || stale) && storage.delete(&format!("{LOCKS_DIR}/{name}")).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether any live lock other than `ours` exists: "is anyone else writing?".
pub fn others_active(storage: &dyn Storage, ours: &LockGuard) -> Result<bool> {
    let host = pid_host(storage);
    let now = now_millis();
    Ok(read_locks(storage)?
        .into_iter()
        .filter_map(|(_, r)| r)
        .any(|r| r.id != ours.id && !r.is_stale_for(now, host.as_deref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    struct Scratch {
        root: PathBuf,
        storage: Arc<dyn Storage>,
    }

    fn scratch() -> Scratch {
        let root = std::env::temp_dir().join(format!("ca-lock-{}", random_hex(6)));
        fs::create_dir_all(root.join("locks")).unwrap();
        let storage = crate::storage::local(&root);
        Scratch { root, storage }
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_conflicts() {
        let s = scratch();
        let (root, st) = (&s.root, &s.storage);
        let a = acquire(st, false, Duration::ZERO).unwrap();
        let b = acquire(st, false, Duration::ZERO).unwrap();
        let err = acquire(st, true, Duration::ZERO).err().unwrap();
        assert_eq!(err.code(), "ERR_LOCKED");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())));
        drop((a, b));
        assert!(
            read_locks(&**st).unwrap().is_empty(),
            "dropped guards remove their records"
        );
        let x = acquire(st, true, Duration::ZERO).unwrap();
        assert_eq!(acquire(st, false, Duration::ZERO).err().unwrap().code(), "ERR_LOCKED");
        drop(x);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_cancelled_wait_ends_early_and_leaves_no_record() {
        let s = scratch();
        let st = &s.storage;
        let holder = acquire(st, true, Duration::ZERO).unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let (waiter_storage, waiter_cancel) = (Arc::clone(st), Arc::clone(&cancel));
        let started = Instant::now();
        let waiter = std::thread::spawn(move || {
            acquire_until(&waiter_storage, false, Duration::from_secs(600), &waiter_cancel).map(|_| ())
        });
        // The waiter must be inside its backoff loop before the flag is set;
        // one observed conflict is not visible, so a sure bound is simply time
        // passing while the holder still holds.
        while started.elapsed() < Duration::from_millis(100) {
            std::thread::yield_now();
        }
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = waiter.join().unwrap().err().unwrap();
        assert_eq!(err.code(), "ERR_CANCELLED");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wait ended at the cancel, not at the timeout"
        );
        let records = read_locks(&**st).unwrap();
        assert_eq!(records.len(), 1, "only the holder's record is left");
        drop(holder);
        fs::remove_dir_all(&s.root).unwrap();
    }

    #[test]
    fn a_held_lock_is_refreshed_and_never_goes_stale() {
        let s = scratch();
        let (root, st) = (&s.root, &s.storage);
        let (tx, refreshes) = channel();
        let guard = acquire_with_refresh(
            st,
            true,
            Duration::ZERO,
            Duration::from_millis(20),
            Some(tx),
            &crate::cancel::NEVER,
        )
        .unwrap();
        // Wait for two refreshes (an event from the refresher thread, not a timer).
        for _ in 0..2 {
            refreshes
                .recv_timeout(Duration::from_secs(30))
                .expect("the holder refreshes its record");
        }
        let (_, record) = read_locks(&**st).unwrap().pop().unwrap();
        let record = record.unwrap();
        let created = parse_iso8601_millis(&record.created_at).unwrap();
        let refreshed = parse_iso8601_millis(&record.refreshed_at).unwrap();
        assert!(refreshed > created, "{record:?}");
        assert!(
            record.checksum.is_some() && record.checksum_ok(),
            "every record is checksummed"
        );
        // Judged an hour later, the refreshed record is stale only by its last refresh.
        assert!(!record.is_stale(refreshed + STALE_AFTER_MILLIS - 1, "elsewhere"));
        assert!(record.is_stale(refreshed + STALE_AFTER_MILLIS + 1, "elsewhere"));
        drop(guard);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_record_whose_checksum_fails_is_unreadable_and_a_legacy_one_counts() {
        let s = scratch();
        let (root, st) = (&s.root, &s.storage);
        let guard = acquire(st, true, Duration::ZERO).unwrap();
        let path = root.join(format!("locks/{}.json", guard.id));
        let text = fs::read_to_string(&path).unwrap();
        // A pid changed by damage: the record no longer matches its checksum.
        let damaged = text.replace(&format!("\"pid\": {}", std::process::id()), "\"pid\": 1");
        assert_ne!(damaged, text);
        fs::write(&path, &damaged).unwrap();
        assert_eq!(read_locks(&**st).unwrap()[0].1, None);
        // A record without a checksum (format version 1) still holds the repository.
        let mut legacy: serde_json::Value = serde_json::from_str(&text).unwrap();
        legacy.as_object_mut().unwrap().remove("checksum");
        fs::write(&path, serde_json::to_vec(&legacy).unwrap()).unwrap();
        assert!(read_locks(&**st).unwrap()[0].1.is_some());
        assert_eq!(acquire(st, false, Duration::ZERO).err().unwrap().code(), "ERR_LOCKED");
        drop(guard);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn stale_locks_are_ignored_and_removed() {
        let s = scratch();
        let (root, st) = (&s.root, &s.storage);
        let old = LockRecord {
            id: "old".into(),
            exclusive: true,
            hostname: "elsewhere".into(),
            pid: 1,
            created_at: "2020-01-01T00:00:00.000Z".into(),
            refreshed_at: "2020-01-01T00:00:00.000Z".into(),
            checksum: None,
        };
        write_record(&**st, "locks/old.json", &old).unwrap();
        fs::write(root.join("locks/garbage.json"), b"{not json").unwrap();
        let guard = acquire(st, true, Duration::ZERO).unwrap();
        assert_eq!(remove_locks(&**st, false).unwrap(), 2);
        assert_eq!(read_locks(&**st).unwrap().len(), 1, "our live lock stays");
        assert_eq!(remove_locks(&**st, true).unwrap(), 1);
        drop(guard);
        fs::remove_dir_all(root).unwrap();
    }
}
