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
//! memory does not depend on pack sizes. An ingest's own packs are not even
//! read: their share was drafted as they were written (`parity_draft`).

use std::collections::HashSet;

use reed_solomon_erasure::galois_8::ReedSolomon;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::AAD_PARITY;
use crate::error::{Error, Result};
use crate::fsutil::random_hex;
use crate::index::PackInfo;
use crate::pack::{pack_key, PackId};
use crate::parity_draft::Draft;
use crate::repo::{Repository, DATA_DIR, PARITY_DIR};
use crate::storage::objects::{
    describe, hash_object, names, read_padded, read_padded_owned, read_required, writer, ObjectWriter,
};
use crate::storage::{local, Storage};

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

/// The storage key of the parity file or group manifest `name`.
pub fn parity_key(name: &str) -> String {
    format!("{PARITY_DIR}/{name}")
}

/// The storage key of the member pack `hex_id`.
fn member_key(hex_id: &str) -> String {
    format!("{DATA_DIR}/{hex_id}.pack")
}

/// Excludes other parity writers of a local repository, in this process and
/// in others. On object storage it is empty: groups are immutable versions
/// there (see `cover_packs`), so writers need no exclusion, and readers see no
/// file disappear except under the exclusive repository lock.
pub struct ParityLock {
    /// The `flock` on `packs/parity/.lock`.
    _file: Option<local::FileLock>,
    _serial: Option<std::sync::MutexGuard<'static, ()>>,
}

static PARITY_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lock(repo: &Repository, exclusive: bool) -> Result<ParityLock> {
    let Some(root) = repo.storage().local_root() else {
        return Ok(ParityLock {
            _file: None,
            _serial: None,
        });
    };
    let serial = PARITY_SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    Ok(ParityLock {
        _file: Some(local::flock(root, &parity_key(".lock"), exclusive)?),
        _serial: Some(serial),
    })
}

/// Every readable group manifest, and the names of those that are not.
pub fn load_groups(repo: &Repository) -> Result<(Vec<GroupManifest>, Vec<(String, Error)>)> {
    Ok(load_listed_groups(repo, names(&**repo.storage(), PARITY_DIR)?))
}

/// `load_groups` for the names of a listing of `packs/parity` the caller made.
pub fn load_listed_groups(repo: &Repository, names: Vec<String>) -> (Vec<GroupManifest>, Vec<(String, Error)>) {
    let storage = &**repo.storage();
    let mut groups = Vec::new();
    let mut damaged = Vec::new();
    let names: Vec<String> = names.into_iter().filter(|n| n.ends_with(".group")).collect();
    let loaded = crate::fetch::map_parallel(repo.parallelism(), &names, |name| {
        let what = format!("parity manifest packs/parity/{name}");
        read_required(storage, &parity_key(name))
            .and_then(|b| repo.unseal(AAD_PARITY, b, &what))
            .and_then(|plain| parse_group(&plain, name, &what))
    });
    for (name, loaded) in names.into_iter().zip(loaded) {
        match loaded {
            Ok(g) => groups.push(g),
            Err(e) => damaged.push((name, e)),
        }
    }
    (groups, damaged)
}

/// Decodes the (unsealed) group manifest stored as `packs/parity/<name>`.
pub fn parse_group(plain: &[u8], name: &str, what: &str) -> Result<GroupManifest> {
    serde_json::from_slice::<GroupManifest>(plain)
        .map_err(|e| Error::corrupt(what, e))
        .and_then(|g| g.validate(name).map(|()| g).map_err(|why| Error::corrupt(what, why)))
}

/// Where a (valid) manifest disagrees with what is on disk, cheaply: the
/// repository's parity layout, and the sizes of the member packs and parity
/// files that exist. A size mismatch only counts when `intact(storage, key,
/// sha256, size stored)` says the file is sound (so the manifest is what is wrong).
pub fn disk_disagreement(
    repo: &Repository,
    group: &GroupManifest,
    intact: &dyn Fn(&dyn Storage, &str, &str, u64) -> bool,
) -> Option<String> {
    let storage = &**repo.storage();
    disagreement_with_sizes(repo, group, intact, &|key| storage.size(key).ok().flatten())
}

/// `disk_disagreement` with the sizes of files taken from `size_of` (a
/// listing, say: one request for every group instead of one per file).
pub fn disagreement_with_sizes(
    repo: &Repository,
    group: &GroupManifest,
    intact: &dyn Fn(&dyn Storage, &str, &str, u64) -> bool,
    size_of: &dyn Fn(&str) -> Option<u64>,
) -> Option<String> {
    let storage = &**repo.storage();
    let config = repo.config.parity;
    if group.data_shards != config.data_shards || group.parity_shards != config.parity_shards {
        return Some(format!(
            "it has {} data + {} parity shards, config.json says {} + {}",
            group.data_shards, group.parity_shards, config.data_shards, config.parity_shards
        ));
    }
    for m in &group.members {
        let key = member_key(&m.pack);
        if let Some(size) = size_of(&key) {
            if size != m.size && intact(storage, &key, &m.pack, size) {
                return Some(format!(
                    "member {} is {size} bytes on disk, the manifest says {}",
                    m.pack, m.size
                ));
            }
        }
    }
    for f in &group.parity {
        let key = parity_key(&f.file);
        if let Some(size) = size_of(&key) {
            if size != group.shard_size && intact(storage, &key, &f.sha256, size) {
                return Some(format!(
                    "parity file {} is {size} bytes on disk, shardSize is {}",
                    f.file, group.shard_size
                ));
            }
        }
    }
    None
}

/// `disk_disagreement`'s witness when files may be read: the file matches its hash.
pub fn hash_matches(storage: &dyn Storage, key: &str, sha256: &str, _size: u64) -> bool {
    hash_file(storage, key).is_ok_and(|(_, h)| hex::encode(h) == sha256)
}

pub fn save_group(repo: &Repository, group: &GroupManifest) -> Result<()> {
    let json = serde_json::to_vec(group).expect("group manifest serialises");
    repo.storage()
        .write(&parity_key(&group.file_name()), &repo.seal(AAD_PARITY, json))
}

/// Size and SHA-256 of a whole object, streamed; a missing one is the I/O
/// error "not found".
pub fn hash_file(storage: &dyn Storage, key: &str) -> Result<(u64, [u8; 32])> {
    hash_object(storage, key)?.ok_or_else(|| Error::Io {
        path: describe(storage, key),
        source: std::io::ErrorKind::NotFound.into(),
    })
}

/// Adds packs to groups: first the open group, then new ones. Packs of other
/// processes are hashed first, so parity never protects a damaged pack.
pub fn cover(repo: &Repository, own: &[PackInfo], drafts: &[Draft]) -> Result<usize> {
    let _lock = lock(repo, true)?;
    let (mut groups, _) = load_groups(repo)?;
    let covered: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.pack.clone()))
        .collect();
    let own_ids: HashSet<PackId> = own.iter().map(|p| p.id).collect();
    let mut candidates = Vec::new();
    let mut seen = HashSet::new();
    for info in own.iter().copied().chain(repo.index().packs().iter().copied()) {
        let hex_id = hex::encode(info.id);
        if covered.contains(&hex_id) || !seen.insert(info.id) {
            continue;
        }
        let healthy = if own_ids.contains(&info.id) {
            true
        } else {
            matches!(hash_file(&**repo.storage(), &pack_key(&info.id)), Ok((size, hash)) if size == info.size && hash == info.id)
        };
        if healthy {
            candidates.push(info);
        }
    }
    cover_packs(repo, &mut groups, candidates, drafts)
}

/// Whether groups are written as immutable versions (object storage, where no
/// `flock` serialises writers; FORMAT.md, Parity) rather than extended in place.
fn versioned(repo: &Repository) -> bool {
    repo.storage().local_root().is_none()
}

/// Appends `packs` to open groups and new groups; returns the groups written.
///
/// On object storage an extended group is written as a new version under a
/// fresh id and the old one is left alone: a concurrent writer may be
/// extending it too. Only an exclusive operation removes the superseded
/// version ([`crate::supersede`]).
///
/// A group whose additions begin with the packs of one of `drafts`, in its
/// slots, takes their parity share from the draft instead of reading them.
pub fn cover_packs(
    repo: &Repository,
    groups: &mut Vec<GroupManifest>,
    packs: Vec<PackInfo>,
    drafts: &[Draft],
) -> Result<usize> {
    let (data_shards, parity_shards) = (repo.config.parity.data_shards, repo.config.parity.parity_shards);
    let new_group = || GroupManifest {
        version: GROUP_VERSION,
        id: random_hex(16),
        data_shards,
        parity_shards,
        shard_size: 0,
        members: Vec::new(),
        parity: Vec::new(),
    };
    let versioned = versioned(repo);
    let mut pending = packs.into_iter().peekable();
    let mut written = 0;
    // A group is extended from its old parity, so that parity must be intact:
    // otherwise new packs start a new group and repair deals with the old one.
    // Nor is a group extended whose fields disagree with config.json or the file
    // sizes (a legacy manifest edited by damage): its parity would be computed wrong.
    // Nor is a superseded group (object storage): a group that lists all its
    // members already exists, so extending it would only cover them again.
    let mut open_group = if pending.peek().is_none() {
        None
    } else {
        let superseded = crate::supersede::superseded_ids(groups);
        groups.iter().position(|g| {
            g.members.len() < g.data_shards as usize
                && !superseded.contains(&g.id)
                && disk_disagreement(repo, g, &|_, _, _, _| true).is_none()
                && parity_intact(repo, g)
        })
    };
    while pending.peek().is_some() {
        let base = open_group.take().map(|i| groups[i].clone());
        let group = base.clone().unwrap_or_else(new_group);
        let room = group.data_shards as usize - group.members.len();
        let additions: Vec<PackInfo> = pending.by_ref().take(room).collect();
        let ids: Vec<PackId> = additions.iter().map(|p| p.id).collect();
        let draft_for = |group: &GroupManifest| drafts.iter().find(|d| d.fits(group, &ids));
        let updated = match extend(repo, &group, &additions, versioned, draft_for(&group)) {
            // Its old parity was removed meanwhile (an exclusive prune or repair
            // by a process that judged this process gone): the additions start
            // a group of their own instead of failing the ingest.
            Err(e) if base.is_some() && parity_vanished(repo, &group, &e) => {
                let fresh = new_group();
                extend(repo, &fresh, &additions, versioned, draft_for(&fresh))?
            }
            result => result?,
        };
        match groups.iter().position(|g| g.id == updated.id) {
            Some(i) => groups[i] = updated,
            None => groups.push(updated),
        }
        written += 1;
    }
    Ok(written)
}

/// Whether `e` is a "not found" and one of the group's parity files is gone.
fn parity_vanished(repo: &Repository, group: &GroupManifest, e: &Error) -> bool {
    let not_found = matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
    not_found
        && group
            .parity
            .iter()
            .any(|p| matches!(repo.storage().size(&parity_key(&p.file)), Ok(None)))
}

/// Writes the group with `additions` appended (or, with none, recomputes its
/// parity from all members), in place: the manifest keeps its id and the old
/// parity files are deleted. Only where nothing else writes the group: under
/// the parity `flock` (local) or the exclusive repository lock.
pub fn extend_group(repo: &Repository, group: &GroupManifest, additions: &[PackInfo]) -> Result<GroupManifest> {
    extend(repo, group, additions, false, None)
}

/// `extend_group`; with `new_version`, a group that has members is written
/// under a fresh id and neither its manifest nor its parity is touched. The
/// first additions' share comes from `draft` (it `fits`), the rest is read.
fn extend(
    repo: &Repository,
    group: &GroupManifest,
    additions: &[PackInfo],
    new_version: bool,
    draft: Option<&Draft>,
) -> Result<GroupManifest> {
    let rs = group.codec()?;
    let storage = &**repo.storage();
    let recompute = additions.is_empty();
    let mut updated = group.clone();
    if new_version && !group.members.is_empty() {
        updated.id = random_hex(16);
    }
    updated.members.extend(additions.iter().map(|p| Member {
        pack: hex::encode(p.id),
        size: p.size,
        sha256: hex::encode(p.id),
    }));
    let first_new = if recompute { 0 } else { group.members.len() };
    let new_members = &updated.members[first_new..];
    updated.shard_size = updated.members.iter().map(|m| m.size).max().unwrap_or(0);

    // (key, size) of every object read; each is read in stripes by range.
    let old_parity: Vec<(String, u64)> = if recompute || group.parity.is_empty() {
        Vec::new()
    } else {
        group.parity.iter().map(|p| (parity_key(&p.file), p.size)).collect()
    };
    let drafted = draft.map_or(0, |d| d.packs.len());
    let inputs: Vec<(String, u64)> = new_members[drafted..]
        .iter()
        .map(|m| (member_key(&m.pack), m.size))
        .collect();
    let first_read = first_new + drafted;
    // Dropped uncommitted (on an error), a writer leaves nothing behind.
    let mut outputs: Vec<(Box<dyn ObjectWriter + '_>, Sha256)> = (0..group.parity_shards)
        .map(|_| writer(storage, PARITY_DIR).map(|w| (w, Sha256::new())))
        .collect::<Result<_>>()?;
    let parity = (|| {
        let mut parity_bufs = vec![vec![0u8; STRIPE as usize]; group.parity_shards as usize];
        let readers = repo.parallelism().max(1);
        let mut offset = 0;
        while offset < updated.shard_size {
            let len = STRIPE.min(updated.shard_size - offset) as usize;
            for (k, buf) in parity_bufs.iter_mut().enumerate() {
                let buf = &mut buf[..len];
                match old_parity.get(k) {
                    Some((key, size)) => read_padded(storage, key, *size, offset, buf)?,
                    None => buf.fill(0),
                }
                // Adding in GF(2^8) is XOR; past a draft's end its share is zero.
                if let Some(share) = draft.and_then(|d| d.parity.get(k)) {
                    let from = (offset as usize).min(share.len());
                    let to = (offset as usize + len).min(share.len());
                    buf.iter_mut().zip(&share[from..to]).for_each(|(b, s)| *b ^= s);
                }
            }
            let mut stripes: Vec<&mut [u8]> = parity_bufs.iter_mut().map(|b| &mut b[..len]).collect();
            // The members' stripes are read `readers` at a time: on a bucket
            // each is a GET, and one after another they cost a round trip each.
            for (batch, members) in inputs.chunks(readers).enumerate() {
                let read = crate::fetch::map_parallel(readers, members, |(key, size)| {
                    read_padded_owned(storage, key, *size, offset, len)
                });
                for (j, data) in read.into_iter().enumerate() {
                    // Index 0 overwrites the parity stripe, later ones add to it.
                    rs.encode_single_sep(first_read + batch * readers + j, &data?, &mut stripes)
                        .map_err(|e| Error::Internal(format!("parity encoding: {e:?}")))?;
                }
            }
            for ((out, hasher), stripe) in outputs.iter_mut().zip(&stripes) {
                out.write(stripe)?;
                hasher.update(&stripe[..]);
            }
            offset += len as u64;
        }
        let mut parity = Vec::new();
        for (out, hasher) in outputs.drain(..) {
            let sha = hex::encode(hasher.finalize());
            let name = format!("{sha}.par");
            out.commit(&name)?;
            parity.push(ParityFile {
                file: name,
                size: updated.shard_size,
                sha256: sha,
            });
        }
        Ok(parity)
    })()?;
    updated.parity = parity;
    save_group(repo, &updated)?;
    repo.count_drafted(drafted);
    if updated.id != group.id {
        return Ok(updated);
    }
    // The old parity is unreferenced once the new manifest is durable.
    for old in &group.parity {
        if !updated.parity.iter().any(|p| p.file == old.file) {
            storage.delete(&parity_key(&old.file))?;
        }
    }
    Ok(updated)
}

/// Whether every parity file of the group has its recorded size and hash.
pub fn parity_intact(repo: &Repository, group: &GroupManifest) -> bool {
    group
        .parity
        .iter()
        .all(|p| file_problem(&**repo.storage(), &parity_key(&p.file), p.size, &p.sha256).is_none())
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

fn file_problem(storage: &dyn Storage, key: &str, size: u64, sha256: &str) -> Option<String> {
    match hash_file(storage, key) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Some("it is missing".into()),
        Err(e) => Some(e.to_string()),
        Ok((n, _)) if n != size => Some(format!("it is {n} bytes, expected {size}")),
        Ok((_, hash)) if hex::encode(hash) != sha256 => Some("its content does not match its hash".into()),
        Ok(_) => None,
    }
}

pub fn group_health(repo: &Repository, group: &GroupManifest) -> GroupHealth {
    let storage = &**repo.storage();
    GroupHealth {
        members: group
            .members
            .iter()
            .map(|m| file_problem(storage, &member_key(&m.pack), m.size, &m.sha256))
            .collect(),
        parity: group
            .parity
            .iter()
            .map(|p| file_problem(storage, &parity_key(&p.file), p.size, &p.sha256))
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
    let storage = &**repo.storage();
    let mut sources: Vec<Option<(String, u64)>> = Vec::with_capacity(d + p);
    for i in 0..d {
        sources.push(match group.members.get(i) {
            Some(m) if health.members[i].is_none() => Some((member_key(&m.pack), m.size)),
            _ => None,
        });
    }
    for (k, pf) in group.parity.iter().enumerate() {
        sources.push(health.parity[k].is_none().then(|| (parity_key(&pf.file), pf.size)));
    }
    // Dropped uncommitted (on an error or a hash mismatch), a writer leaves nothing behind.
    let mut outputs: Vec<(usize, Box<dyn ObjectWriter + '_>, Sha256)> = damaged
        .iter()
        .map(|&i| writer(storage, DATA_DIR).map(|w| (i, w, Sha256::new())))
        .collect::<Result<_>>()?;
    let result = (|| {
        let mut offset = 0;
        while offset < group.shard_size {
            let len = STRIPE.min(group.shard_size - offset) as usize;
            let mut shards: Vec<Option<Vec<u8>>> = Vec::with_capacity(d + p);
            for (i, source) in sources.iter().enumerate() {
                shards.push(match source {
                    Some((key, size)) => {
                        let mut buf = vec![0u8; len];
                        read_padded(storage, key, *size, offset, &mut buf)?;
                        Some(buf)
                    }
                    // Unused slots of a partial group are zeros.
                    None if i < d && i >= group.members.len() => Some(vec![0u8; len]),
                    None => None,
                });
            }
            rs.reconstruct_data(&mut shards)
                .map_err(|e| Error::corrupt(format!("parity group {}", group.id), format!("{e:?}")))?;
            for (i, out, hasher) in outputs.iter_mut() {
                let size = group.members[*i].size;
                if offset < size {
                    let take = (size - offset).min(len as u64) as usize;
                    let stripe = &shards[*i].as_ref().expect("reconstructed")[..take];
                    out.write(stripe)?;
                    hasher.update(stripe);
                }
            }
            offset += len as u64;
        }
        let mut rebuilt = Vec::new();
        for (i, out, hasher) in outputs.drain(..) {
            let member = &group.members[i];
            let hash = hex::encode(hasher.finalize());
            // Never put a rebuilt pack in place under a name it does not hash to.
            if hash != member.sha256 || hash != member.pack {
                return Err(Error::corrupt(
                    format!("pack {}", member.pack),
                    "the pack rebuilt from parity does not match its hash",
                ));
            }
            out.commit(&format!("{}.pack", member.pack))?;
            rebuilt.push(i);
        }
        Ok(rebuilt)
    })();
    result
}
