//! Reed-Solomon parity across packs.
//!
//! Data packs form groups of `dataShards` packs; each group has
//! `parityShards` parity files, computed over the packs' stored bytes, each
//! pack zero-padded to the group's largest pack (`shardSize`). A group
//! manifest `packs/parity/<groupId>.group` lists the members and parity files
//! with their sizes and SHA-256 hashes.
//!
//! Parity is linear, so a group grows one pack at a time: adding member `i`
//! adds `coefficient(i) x pack` to each parity shard, reading only the new
//! pack and the old parity. Everything is processed in 1 MiB stripes, so
//! memory does not depend on pack sizes.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use reed_solomon_erasure::galois_8::ReedSolomon;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::AAD_PARITY;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{atomic_write, fsync_dir, list_files, random_hex, read_exact_at, remove_durably, tmp_path};
use crate::index::PackInfo;
use crate::pack::{pack_file_name, PackId};
use crate::repo::Repository;

const STRIPE: u64 = 1 << 20;
/// Largest shard a group may declare: packs stay far below (1 GiB target plus one chunk).
pub const MAX_SHARD_SIZE: u64 = 1 << 31;

/// The group manifest version this engine writes and reads; any other is unreadable.
pub const GROUP_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupManifest {
    pub version: u32,
    pub id: String,
    pub data_shards: u32,
    pub parity_shards: u32,
    pub shard_size: u64,
    /// Data shard `i` is `members[i]`; slots past the end are all zeros.
    pub members: Vec<Member>,
    pub parity: Vec<ParityFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// Pack id (hex); the file is `packs/data/<pack>.pack`.
    pub pack: String,
    pub size: u64,
    /// SHA-256 of the pack file (equal to the pack id).
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParityFile {
    /// `<sha256>.par` in `packs/parity`.
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

impl GroupManifest {
    pub fn file_name(&self) -> String {
        format!("{}.group", self.id)
    }

    /// Range-checks every field before any is used (FORMAT.md, Parity).
    pub fn validate(&self, name: &str) -> std::result::Result<(), String> {
        let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let (d, p) = (self.data_shards as u64, self.parity_shards as u64);
        if self.version != GROUP_VERSION {
            return Err(format!("unknown group manifest version {}", self.version));
        }
        if !is_hex(&self.id, 32) || self.file_name() != name {
            return Err("its id does not match its file name".into());
        }
        if !(1..=255).contains(&d) || p < 1 || d + p > 256 {
            return Err(format!(
                "dataShards {d} / parityShards {p} are out of range (1..255, 1.., sum at most 256)"
            ));
        }
        if self.members.is_empty() || self.members.len() as u64 > d {
            return Err(format!("it has {} members for {d} data shards", self.members.len()));
        }
        if self.parity.len() as u64 != p {
            return Err(format!(
                "it lists {} parity files for {p} parity shards",
                self.parity.len()
            ));
        }
        if !(1..=MAX_SHARD_SIZE).contains(&self.shard_size) {
            return Err(format!("shardSize {} is out of range", self.shard_size));
        }
        let mut seen = HashSet::new();
        for m in &self.members {
            if !is_hex(&m.pack, 64) || m.sha256 != m.pack || !seen.insert(&m.pack) {
                return Err(format!("member {:?} has a bad or repeated pack id or sha256", m.pack));
            }
            if !(1..=self.shard_size).contains(&m.size) {
                return Err(format!(
                    "member {} has size {} (shardSize {})",
                    m.pack, m.size, self.shard_size
                ));
            }
        }
        if self.members.iter().map(|m| m.size).max() != Some(self.shard_size) {
            return Err("shardSize is not the largest member's size".into());
        }
        for f in &self.parity {
            if !is_hex(&f.sha256, 64) || f.file != format!("{}.par", f.sha256) || f.size != self.shard_size {
                return Err(format!("parity file {:?} has a bad name, hash or size", f.file));
            }
        }
        Ok(())
    }

    fn codec(&self) -> Result<ReedSolomon> {
        ReedSolomon::new(self.data_shards as usize, self.parity_shards as usize)
            .map_err(|e| Error::corrupt(format!("parity group {}", self.id), format!("{e:?}")))
    }
}

pub fn parity_dir(repo: &Repository) -> PathBuf {
    repo.root().join("packs/parity")
}

/// Excludes other parity writers, in this process and in others.
pub struct ParityLock {
    _file: File,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static PARITY_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lock(repo: &Repository, exclusive: bool) -> Result<ParityLock> {
    let serial = PARITY_SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let path = parity_dir(repo).join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    if exclusive { file.lock() } else { file.lock_shared() }.at(&path)?;
    Ok(ParityLock {
        _file: file,
        _serial: serial,
    })
}

/// Every readable group manifest, and the names of those that are not.
pub fn load_groups(repo: &Repository) -> Result<(Vec<GroupManifest>, Vec<(String, Error)>)> {
    let dir = parity_dir(repo);
    let mut groups = Vec::new();
    let mut damaged = Vec::new();
    for name in list_files(&dir)? {
        if !name.ends_with(".group") {
            continue;
        }
        let what = format!("parity manifest packs/parity/{name}");
        let loaded = fs::read(dir.join(&name))
            .at(&dir.join(&name))
            .and_then(|b| repo.unseal(AAD_PARITY, b, &what))
            .and_then(|plain| parse_group(&plain, &name, &what));
        match loaded {
            Ok(g) => groups.push(g),
            Err(e) => damaged.push((name, e)),
        }
    }
    Ok((groups, damaged))
}

/// Decodes the (unsealed) group manifest stored as `packs/parity/<name>`.
pub fn parse_group(plain: &[u8], name: &str, what: &str) -> Result<GroupManifest> {
    serde_json::from_slice::<GroupManifest>(plain)
        .map_err(|e| Error::corrupt(what, e))
        .and_then(|g| g.validate(name).map(|()| g).map_err(|why| Error::corrupt(what, why)))
}

/// Where a (valid) manifest disagrees with what is on disk, cheaply: the
/// repository's parity layout, and the sizes of the member packs and parity
/// files that exist. A size mismatch only counts when `intact(path, sha256,
/// size on disk)` says the file is sound (so the manifest is what is wrong).
pub fn disk_disagreement(
    repo: &Repository,
    group: &GroupManifest,
    intact: &dyn Fn(&Path, &str, u64) -> bool,
) -> Option<String> {
    let config = repo.config.parity;
    if group.data_shards != config.data_shards || group.parity_shards != config.parity_shards {
        return Some(format!(
            "it has {} data + {} parity shards, config.json says {} + {}",
            group.data_shards, group.parity_shards, config.data_shards, config.parity_shards
        ));
    }
    let data_dir = repo.data_dir();
    for m in &group.members {
        let path = data_dir.join(format!("{}.pack", m.pack));
        if let Ok(meta) = fs::metadata(&path) {
            if meta.len() != m.size && intact(&path, &m.pack, meta.len()) {
                return Some(format!(
                    "member {} is {} bytes on disk, the manifest says {}",
                    m.pack,
                    meta.len(),
                    m.size
                ));
            }
        }
    }
    let dir = parity_dir(repo);
    for f in &group.parity {
        let path = dir.join(&f.file);
        if let Ok(meta) = fs::metadata(&path) {
            if meta.len() != group.shard_size && intact(&path, &f.sha256, meta.len()) {
                return Some(format!(
                    "parity file {} is {} bytes on disk, shardSize is {}",
                    f.file,
                    meta.len(),
                    group.shard_size
                ));
            }
        }
    }
    None
}

/// `disk_disagreement`'s witness when files may be read: the file matches its hash.
pub fn hash_matches(path: &Path, sha256: &str, _size: u64) -> bool {
    hash_file(path).is_ok_and(|(_, h)| hex::encode(h) == sha256)
}

pub fn save_group(repo: &Repository, group: &GroupManifest) -> Result<()> {
    let json = serde_json::to_vec(group).expect("group manifest serialises");
    atomic_write(&parity_dir(repo).join(group.file_name()), &repo.seal(AAD_PARITY, json))
}

/// Reads `len` bytes of `file` at `offset`, zero-filled past `size`.
fn read_padded(file: &File, path: &Path, size: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
    buf.fill(0);
    if offset < size {
        let n = (size - offset).min(buf.len() as u64) as usize;
        read_exact_at(file, &mut buf[..n], offset).at(path)?;
    }
    Ok(())
}

fn open(path: &Path) -> Result<File> {
    File::open(path).at(path)
}

/// SHA-256 of a whole file, streamed.
pub fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut file = open(path)?;
    let mut hasher = Sha256::new();
    let n = std::io::copy(&mut file, &mut hasher).at(path)?;
    Ok((n, hasher.finalize().into()))
}

/// Adds packs to groups: first the open group, then new ones. Packs of other
/// processes are hashed first, so parity never protects a damaged pack.
pub fn cover(repo: &Repository, own: &[PackInfo]) -> Result<usize> {
    let _lock = lock(repo, true)?;
    let (mut groups, _) = load_groups(repo)?;
    let covered: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.pack.clone()))
        .collect();
    let own_ids: HashSet<PackId> = own.iter().map(|p| p.id).collect();
    let data_dir = repo.data_dir();
    let mut candidates = Vec::new();
    let mut seen = HashSet::new();
    for info in own.iter().copied().chain(repo.index().packs().iter().copied()) {
        let hex_id = hex::encode(info.id);
        if covered.contains(&hex_id) || !seen.insert(info.id) {
            continue;
        }
        let path = data_dir.join(pack_file_name(&info.id));
        let healthy = if own_ids.contains(&info.id) {
            true
        } else {
            matches!(hash_file(&path), Ok((size, hash)) if size == info.size && hash == info.id)
        };
        if healthy {
            candidates.push(info);
        }
    }
    cover_packs(repo, &mut groups, candidates)
}

/// Appends `packs` to open groups and new groups; returns the groups written.
pub fn cover_packs(repo: &Repository, groups: &mut Vec<GroupManifest>, packs: Vec<PackInfo>) -> Result<usize> {
    let (data_shards, parity_shards) = (repo.config.parity.data_shards, repo.config.parity.parity_shards);
    let mut pending = packs.into_iter().peekable();
    let mut written = 0;
    // A group is extended from its old parity, so that parity must be intact:
    // otherwise new packs start a new group and repair deals with the old one.
    // Nor is a group extended whose fields disagree with config.json or the file
    // sizes (a legacy manifest edited by damage): its parity would be computed wrong.
    let mut open_group = groups.iter().position(|g| {
        g.members.len() < g.data_shards as usize
            && disk_disagreement(repo, g, &|_, _, _| true).is_none()
            && parity_intact(repo, g)
    });
    while pending.peek().is_some() {
        let group = match open_group.take() {
            Some(i) => groups[i].clone(),
            None => GroupManifest {
                version: GROUP_VERSION,
                id: random_hex(16),
                data_shards,
                parity_shards,
                shard_size: 0,
                members: Vec::new(),
                parity: Vec::new(),
            },
        };
        let room = group.data_shards as usize - group.members.len();
        let additions: Vec<PackInfo> = pending.by_ref().take(room).collect();
        let updated = extend_group(repo, &group, &additions)?;
        match groups.iter().position(|g| g.id == updated.id) {
            Some(i) => groups[i] = updated,
            None => groups.push(updated),
        }
        written += 1;
    }
    Ok(written)
}

/// Writes the group with `additions` appended (or, with none, recomputes its parity from all members).
pub fn extend_group(repo: &Repository, group: &GroupManifest, additions: &[PackInfo]) -> Result<GroupManifest> {
    let rs = group.codec()?;
    let dir = parity_dir(repo);
    let data_dir = repo.data_dir();
    let recompute = additions.is_empty();
    let mut updated = group.clone();
    updated.members.extend(additions.iter().map(|p| Member {
        pack: hex::encode(p.id),
        size: p.size,
        sha256: hex::encode(p.id),
    }));
    let first_new = if recompute { 0 } else { group.members.len() };
    let new_members = &updated.members[first_new..];
    updated.shard_size = updated.members.iter().map(|m| m.size).max().unwrap_or(0);

    let old_parity: Vec<(File, PathBuf, u64)> = if recompute || group.parity.is_empty() {
        Vec::new()
    } else {
        group
            .parity
            .iter()
            .map(|p| {
                let path = dir.join(&p.file);
                open(&path).map(|f| (f, path, p.size))
            })
            .collect::<Result<_>>()?
    };
    let inputs: Vec<(File, PathBuf, u64)> = new_members
        .iter()
        .map(|m| {
            let path = data_dir.join(format!("{}.pack", m.pack));
            open(&path).map(|f| (f, path, m.size))
        })
        .collect::<Result<_>>()?;

    let mut outputs: Vec<(PathBuf, File, Sha256)> = (0..group.parity_shards)
        .map(|_| {
            let tmp = tmp_path(&dir, "par");
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .at(&tmp)
                .map(|f| (tmp, f, Sha256::new()))
        })
        .collect::<Result<_>>()?;
    let result = (|| {
        let mut parity_bufs = vec![vec![0u8; STRIPE as usize]; group.parity_shards as usize];
        let mut data_buf = vec![0u8; STRIPE as usize];
        let mut offset = 0;
        while offset < updated.shard_size {
            let len = STRIPE.min(updated.shard_size - offset) as usize;
            for (k, buf) in parity_bufs.iter_mut().enumerate() {
                let buf = &mut buf[..len];
                match old_parity.get(k) {
                    Some((file, path, size)) => read_padded(file, path, *size, offset, buf)?,
                    None => buf.fill(0),
                }
            }
            let mut stripes: Vec<&mut [u8]> = parity_bufs.iter_mut().map(|b| &mut b[..len]).collect();
            for (j, (file, path, size)) in inputs.iter().enumerate() {
                read_padded(file, path, *size, offset, &mut data_buf[..len])?;
                // Index 0 overwrites the parity stripe, later ones add to it.
                rs.encode_single_sep(first_new + j, &data_buf[..len], &mut stripes)
                    .map_err(|e| Error::Internal(format!("parity encoding: {e:?}")))?;
            }
            for ((tmp, file, hasher), stripe) in outputs.iter_mut().zip(&stripes) {
                file.write_all(stripe).at(tmp)?;
                hasher.update(&stripe[..]);
            }
            offset += len as u64;
        }
        let mut parity = Vec::new();
        for (tmp, file, hasher) in outputs.drain(..) {
            file.sync_all().at(&tmp)?;
            let sha = hex::encode(hasher.finalize());
            let name = format!("{sha}.par");
            fs::rename(&tmp, dir.join(&name)).at(&dir.join(&name))?;
            parity.push(ParityFile {
                file: name,
                size: updated.shard_size,
                sha256: sha,
            });
        }
        fsync_dir(&dir)?;
        Ok(parity)
    })();
    let parity = match result {
        Ok(p) => p,
        Err(e) => {
            for (tmp, _, _) in &outputs {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
    };
    updated.parity = parity;
    save_group(repo, &updated)?;
    // The old parity is unreferenced once the new manifest is durable.
    for old in &group.parity {
        if !updated.parity.iter().any(|p| p.file == old.file) {
            remove_durably(&dir.join(&old.file))?;
        }
    }
    Ok(updated)
}

/// Whether every parity file of the group has its recorded size and hash.
pub fn parity_intact(repo: &Repository, group: &GroupManifest) -> bool {
    let dir = parity_dir(repo);
    group
        .parity
        .iter()
        .all(|p| file_problem(&dir.join(&p.file), p.size, &p.sha256).is_none())
}

/// Health of a group's files, as hashed from disk.
pub struct GroupHealth {
    /// Per member: `None` when healthy, otherwise what is wrong.
    pub members: Vec<Option<String>>,
    pub parity: Vec<Option<String>>,
}

impl GroupHealth {
    pub fn damaged_members(&self) -> Vec<usize> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|_| i))
            .collect()
    }
    pub fn healthy_parity(&self) -> usize {
        self.parity.iter().filter(|p| p.is_none()).count()
    }
}

fn file_problem(path: &Path, size: u64, sha256: &str) -> Option<String> {
    match hash_file(path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Some("it is missing".into()),
        Err(e) => Some(e.to_string()),
        Ok((n, _)) if n != size => Some(format!("it is {n} bytes, expected {size}")),
        Ok((_, hash)) if hex::encode(hash) != sha256 => Some("its content does not match its hash".into()),
        Ok(_) => None,
    }
}

pub fn group_health(repo: &Repository, group: &GroupManifest) -> GroupHealth {
    let data_dir = repo.data_dir();
    let dir = parity_dir(repo);
    GroupHealth {
        members: group
            .members
            .iter()
            .map(|m| file_problem(&data_dir.join(format!("{}.pack", m.pack)), m.size, &m.sha256))
            .collect(),
        parity: group
            .parity
            .iter()
            .map(|p| file_problem(&dir.join(&p.file), p.size, &p.sha256))
            .collect(),
    }
}

/// Rebuilds the damaged members from the healthy ones and the parity; each
/// rebuilt pack is checked against its hash before it is renamed into place.
pub fn rebuild_members(repo: &Repository, group: &GroupManifest, health: &GroupHealth) -> Result<Vec<usize>> {
    let damaged = health.damaged_members();
    if damaged.is_empty() {
        return Ok(Vec::new());
    }
    if damaged.len() > health.healthy_parity() {
        return Err(Error::corrupt(
            format!("parity group {}", group.id),
            format!(
                "{} packs are damaged but only {} parity shards are intact",
                damaged.len(),
                health.healthy_parity()
            ),
        ));
    }
    let rs = group.codec()?;
    let (d, p) = (group.data_shards as usize, group.parity_shards as usize);
    let data_dir = repo.data_dir();
    let dir = parity_dir(repo);
    let mut sources: Vec<Option<(File, PathBuf, u64)>> = Vec::with_capacity(d + p);
    for i in 0..d {
        sources.push(match group.members.get(i) {
            Some(m) if health.members[i].is_none() => {
                let path = data_dir.join(format!("{}.pack", m.pack));
                Some((open(&path)?, path, m.size))
            }
            _ => None,
        });
    }
    for (k, pf) in group.parity.iter().enumerate() {
        sources.push(if health.parity[k].is_none() {
            let path = dir.join(&pf.file);
            Some((open(&path)?, path, pf.size))
        } else {
            None
        });
    }
    let mut outputs: Vec<(usize, PathBuf, File, Sha256)> = damaged
        .iter()
        .map(|&i| {
            let tmp = tmp_path(&data_dir, "pack");
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .at(&tmp)
                .map(|f| (i, tmp, f, Sha256::new()))
        })
        .collect::<Result<_>>()?;
    let result = (|| {
        let mut offset = 0;
        while offset < group.shard_size {
            let len = STRIPE.min(group.shard_size - offset) as usize;
            let mut shards: Vec<Option<Vec<u8>>> = Vec::with_capacity(d + p);
            for (i, source) in sources.iter().enumerate() {
                shards.push(match source {
                    Some((file, path, size)) => {
                        let mut buf = vec![0u8; len];
                        read_padded(file, path, *size, offset, &mut buf)?;
                        Some(buf)
                    }
                    // Unused slots of a partial group are zeros.
                    None if i < d && i >= group.members.len() => Some(vec![0u8; len]),
                    None => None,
                });
            }
            rs.reconstruct_data(&mut shards)
                .map_err(|e| Error::corrupt(format!("parity group {}", group.id), format!("{e:?}")))?;
            for (i, tmp, file, hasher) in outputs.iter_mut() {
                let size = group.members[*i].size;
                if offset < size {
                    let take = (size - offset).min(len as u64) as usize;
                    let stripe = &shards[*i].as_ref().expect("reconstructed")[..take];
                    file.write_all(stripe).at(tmp)?;
                    hasher.update(stripe);
                }
            }
            offset += len as u64;
        }
        let mut rebuilt = Vec::new();
        for (i, tmp, file, hasher) in outputs.drain(..) {
            let member = &group.members[i];
            let hash = hex::encode(hasher.finalize());
            // Never rename a rebuilt pack into place under a name it does not hash to.
            if hash != member.sha256 || hash != member.pack {
                let _ = fs::remove_file(&tmp);
                return Err(Error::corrupt(
                    format!("pack {}", member.pack),
                    "the pack rebuilt from parity does not match its hash",
                ));
            }
            file.sync_all().at(&tmp)?;
            let path = data_dir.join(format!("{}.pack", member.pack));
            fs::rename(&tmp, &path).at(&path)?;
            rebuilt.push(i);
        }
        fsync_dir(&data_dir)?;
        Ok(rebuilt)
    })();
    if result.is_err() {
        for (_, tmp, _, _) in &outputs {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}
