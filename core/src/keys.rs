//! Key management: `addKey`, `listKeys`, `removeKey`, `changePassphrase`.
//!
//! A key is a key file `keys/<id>.json` plus its copy `packs/parity/key-<id>.json`,
//! both wrapping the one master key. These operations re-wrap the master key
//! and add or delete key files; nothing else is ever rewritten.
//!
//! Crash safety comes from the order of single durable file operations: a key
//! is written copy first, then primary, and removed copy first, then primary.
//! So a crash leaves at worst a key with one of its two files, which is still a
//! whole key (unlock reads both places) and which `repair` completes: a lone
//! copy becomes the added key, a lone primary the kept one. Between adding the
//! new key and removing the old one, both passphrases open the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::crypto::{self, KeyFile};
use crate::error::{Error, Result};
use crate::repo::{key_copy_path, key_id_of, read_key_files, KeyJudge, Repository, UnlockedBy};

/// One key of the repository, as `listKeys` reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub id: String,
    pub created_at: String,
    /// The host that created the key; "" when unknown (keys made before key files recorded it).
    pub host: String,
    /// Whether this handle was unlocked with this key.
    pub current: bool,
}

/// Called after each file operation of a key change with what was done; an
/// error stops the change right there (the crash tests use it).
pub type StepHook<'a> = &'a mut dyn FnMut(&str) -> Result<()>;

/// A key file or copy on disk and what it is.
struct Found {
    rel: String,
    /// The id its name gives.
    id: String,
    file: Option<KeyFile>,
    /// Intact and authenticated as the repository's own.
    genuine: bool,
}

fn survey(repo: &Repository) -> Result<Vec<Found>> {
    let mut judge = KeyJudge::new(repo);
    let mut out = Vec::new();
    for (rel, parsed) in read_key_files(&**repo.storage())? {
        let file = parsed.ok();
        let genuine = file.as_ref().is_some_and(|k| judge.unknown(&rel, k).is_none());
        let id = key_id_of(&rel).to_string();
        out.push(Found { rel, id, file, genuine });
    }
    Ok(out)
}

fn master(repo: &Repository) -> Result<[u8; 32]> {
    repo.master().copied().ok_or_else(|| {
        Error::invalid(
            "this repository is not encrypted, so it has no keys or passphrase; key operations need an encrypted \
             repository",
        )
    })
}

fn check_new_passphrase(passphrase: &str) -> Result<()> {
    if passphrase.is_empty() {
        return Err(Error::invalid(
            "the new passphrase is empty; pass a non-empty passphrase",
        ));
    }
    Ok(())
}

/// The repository's keys (those authenticated as its own), oldest first.
pub fn list_keys(repo: &Repository) -> Result<Vec<KeyInfo>> {
    master(repo)?;
    let current = repo.unlocked_by().and_then(|u| u.key_id);
    let mut keys: BTreeMap<String, KeyInfo> = BTreeMap::new();
    for found in survey(repo)? {
        if let (true, Some(k)) = (found.genuine, found.file) {
            keys.entry(found.id.clone()).or_insert_with(|| KeyInfo {
                current: current.as_deref() == Some(found.id.as_str()),
                id: found.id,
                created_at: k.created_at,
                host: k.host.unwrap_or_default(),
            });
        }
    }
    let mut out: Vec<KeyInfo> = keys.into_values().collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Adds a key that opens the repository with `passphrase`.
pub fn add_key(repo: &Repository, passphrase: &str, lock_timeout: Duration) -> Result<KeyInfo> {
    add_key_with(repo, passphrase, lock_timeout, &mut crash_hook_from_env())
}

pub fn add_key_with(repo: &Repository, passphrase: &str, lock_timeout: Duration, hook: StepHook) -> Result<KeyInfo> {
    let master = master(repo)?;
    check_new_passphrase(passphrase)?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.storage(), true, lock_timeout)?;
    let file = add_locked(repo, &master, passphrase, hook)?;
    Ok(info(&file, false))
}

/// Removes key `id` (or a unique prefix of at least 8 characters of it);
/// returns the full id. Refuses to remove the repository's last key.
pub fn remove_key(repo: &Repository, id: &str, lock_timeout: Duration) -> Result<String> {
    remove_key_with(repo, id, lock_timeout, &mut crash_hook_from_env())
}

pub fn remove_key_with(repo: &Repository, id: &str, lock_timeout: Duration, hook: StepHook) -> Result<String> {
    master(repo)?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.storage(), true, lock_timeout)?;
    let found = survey(repo)?;
    let id = resolve(&found, id)?;
    remove_locked(repo, &found, &id, hook)?;
    Ok(id)
}

/// Replaces the key this handle was unlocked with by a new one for
/// `passphrase` (added first, then the old one removed); other keys stay.
pub fn change_passphrase(repo: &Repository, passphrase: &str, lock_timeout: Duration) -> Result<KeyInfo> {
    change_passphrase_with(repo, passphrase, lock_timeout, &mut crash_hook_from_env())
}

pub fn change_passphrase_with(
    repo: &Repository,
    passphrase: &str,
    lock_timeout: Duration,
    hook: StepHook,
) -> Result<KeyInfo> {
    let master = master(repo)?;
    check_new_passphrase(passphrase)?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.storage(), true, lock_timeout)?;
    let old = repo.unlocked_by().and_then(|u| u.key_id);
    let file = add_locked(repo, &master, passphrase, hook)?;
    let found = survey(repo)?;
    // The old key may be gone already (removed by removeKey, here or elsewhere).
    if let Some(old) = old.filter(|old| found.iter().any(|f| f.id == *old)) {
        remove_locked(repo, &found, &old, hook)?;
    }
    repo.set_unlocked_by(UnlockedBy {
        passphrase: passphrase.to_string(),
        key_id: Some(file.id.clone()),
    });
    Ok(info(&file, true))
}

fn info(file: &KeyFile, current: bool) -> KeyInfo {
    KeyInfo {
        id: file.id.clone(),
        created_at: file.created_at.clone(),
        host: file.host.clone().unwrap_or_default(),
        current,
    }
}

/// Under the exclusive lock: upgrades the genuine version-1 keys, then writes
/// a new key for `passphrase`.
fn add_locked(repo: &Repository, master: &[u8; 32], passphrase: &str, hook: StepHook) -> Result<KeyFile> {
    upgrade_v1_keys(repo, master, hook)?;
    let file = crypto::wrap_master_key(passphrase, master, &crate::fsutil::hostname())?;
    write_key(repo, &file, hook)?;
    Ok(file)
}

/// Re-issues every genuine version-1 key as version 2 (same id, same wrapped
/// key, so the same passphrase opens it). Version 1 can only be judged with
/// its own passphrase; once keys with other passphrases exist, only a MAC
/// tells the repository's keys from planted ones.
fn upgrade_v1_keys(repo: &Repository, master: &[u8; 32], hook: StepHook) -> Result<()> {
    let v1: BTreeMap<String, KeyFile> = survey(repo)?
        .into_iter()
        .filter(|f| f.genuine)
        .filter_map(|f| f.file.filter(|k| k.version == 1))
        .map(|k| (k.id.clone(), k))
        .collect();
    for key in v1.values() {
        write_key(repo, &key.upgraded(master), hook)?;
    }
    Ok(())
}

/// The copy first, then the primary: a lone copy is a whole key already.
fn write_key(repo: &Repository, file: &KeyFile, hook: StepHook) -> Result<()> {
    let json = serde_json::to_vec_pretty(file).expect("key file serialises");
    for rel in [key_copy_path(&file.id), format!("keys/{}.json", file.id)] {
        repo.storage().write(&rel, &json)?;
        hook(&format!("wrote {rel}"))?;
    }
    Ok(())
}

/// The copy first, then the primary: a lone primary is a whole key that
/// repair gives its copy back, i.e. the state before the removal.
fn remove_locked(repo: &Repository, found: &[Found], id: &str, hook: StepHook) -> Result<()> {
    let genuine: BTreeSet<&str> = found.iter().filter(|f| f.genuine).map(|f| f.id.as_str()).collect();
    if genuine.contains(id) && genuine.len() == 1 {
        return Err(Error::invalid(format!(
            "key {id} is the repository's last key; removing it would leave nothing that opens the repository. \
             Add another key first with addKey(), or replace it with changePassphrase()"
        )));
    }
    for rel in [key_copy_path(id), format!("keys/{id}.json")] {
        // Only names that were listed on disk: `id` never builds a path by itself.
        if found.iter().any(|f| f.rel == rel) {
            repo.storage().delete(&rel)?;
            hook(&format!("removed {rel}"))?;
        }
    }
    if let Some(by) = repo.unlocked_by().filter(|by| by.key_id.as_deref() == Some(id)) {
        // The handle keeps working: it holds the master key in memory.
        repo.set_unlocked_by(UnlockedBy { key_id: None, ..by });
    }
    Ok(())
}

/// The full id of the key file(s) `spec` names: an id found on disk, or a
/// unique prefix of at least 8 characters of one.
fn resolve(found: &[Found], spec: &str) -> Result<String> {
    let ids: BTreeSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
    if ids.contains(spec) {
        return Ok(spec.to_string());
    }
    let matches: Vec<&str> = if spec.len() >= 8 {
        ids.iter().copied().filter(|id| id.starts_with(spec)).collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::invalid(format!(
            "no key {spec:?} in this repository (give a key id, or a unique prefix of at least 8 characters, as listKeys() shows them); its key files: {}",
            ids.iter().copied().collect::<Vec<_>>().join(", ")
        ))),
        several => Err(Error::invalid(format!(
            "key id prefix {spec:?} matches several keys ({}); give more of the id",
            several.join(", ")
        ))),
    }
}

/// With `CONTAINERARCHIVE_TEST_KEY_CRASH_AFTER=<n>` in the environment, the
/// process kills itself (SIGKILL) right after its n-th file operation of key
/// changes (counted across calls): the crash tests stop it at every step.
/// Never set otherwise.
fn crash_hook_from_env() -> impl FnMut(&str) -> Result<()> {
    static DONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at: Option<u64> = std::env::var("CONTAINERARCHIVE_TEST_KEY_CRASH_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    move |_| {
        let done = DONE.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if at == Some(done) {
            crash();
        }
        Ok(())
    }
}

fn crash() -> ! {
    #[cfg(unix)]
    // SAFETY: kill(2) on this process' own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
