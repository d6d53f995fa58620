//! `verify`: three depths of checking, each a superset of the one before.
//!
//! - quick: manifests decode and have their copies, item lengths agree with
//!   the index, referenced chunks are indexed, indexed packs
//!   exist with their recorded sizes, `.idx` files agree with the index,
//!   every pack has parity. Reads no pack bodies.
//! - standard: hashes every pack and parity file and checks pack headers.
//! - full: also streams each distinct item through the restore pipeline,
//!   which decrypts, decompresses and re-hashes every referenced chunk once,
//!   and checks the item's length and SHA-256. A chunk that does not decode
//!   is then found by decoding that item's chunks one by one. Each pack is
//!   still read once: the item pass checks the packs it reads whole
//!   (`check_packs`), and the pack pass reads only the rest.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cancel::check_cancel;
use crate::check_packs::{read_packs, PackReads, WholePacks};
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::index::IdMap;
use crate::pack::{idx_key, pack_key, parse_file_name, read_idx, PackId, PackRecord};
use crate::parity::{self, GroupManifest};
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::{Repository, CONFIG_COPY};
use crate::repo::{DATA_DIR, INDEX_DIR, PARITY_DIR, SNAPSHOTS_DIR};
use crate::restore::{decode_blob, IdCheck};
use crate::snapshot::is_valid_snapshot_id;
use crate::subset::Subset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quick,
    Standard,
    Full,
}

impl Level {
    pub fn parse(s: &str) -> Result<Level> {
        match s {
            "quick" => Ok(Level::Quick),
            "standard" => Ok(Level::Standard),
            "full" => Ok(Level::Full),
            other => Err(Error::invalid(format!(
                "verify level {other:?} is unknown; use 'quick', 'standard' or 'full'"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::Quick => "quick",
            Level::Standard => "standard",
            Level::Full => "full",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Issue {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    pub error: String,
}

impl Issue {
    pub fn new(kind: &'static str, error: impl Into<String>) -> Issue {
        Issue {
            kind,
            pack: None,
            chunk: None,
            snapshot: None,
            error: error.into(),
        }
    }
    pub fn pack(mut self, pack: impl Into<String>) -> Issue {
        self.pack = Some(pack.into());
        self
    }
    pub fn chunk(mut self, chunk: &ChunkId) -> Issue {
        self.chunk = Some(hex::encode(chunk));
        self
    }
    pub fn snapshot(mut self, id: impl Into<String>) -> Issue {
        self.snapshot = Some(id.into());
        self
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Checked {
    pub snapshots: u64,
    pub packs: u64,
    pub chunks: u64,
    pub bytes: u64,
}

/// A check verify did not run, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skipped {
    pub check: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub level: &'static str,
    pub errors: Vec<Issue>,
    pub checked: Checked,
    /// Checks left out, e.g. while another process may be writing.
    pub skipped: Vec<Skipped>,
    /// Present for a subset verify: which slice, and how many packs it read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<SubsetReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubsetReport {
    pub subset: String,
    pub packs_read: u64,
    pub packs_total: u64,
    pub parity_groups_read: u64,
    pub parity_groups_total: u64,
}

/// What `verify_with` checks, and how long it waits for a lock.
pub struct VerifyOptions {
    pub level: Level,
    /// Only these packs and parity groups are read (level full only).
    pub subset: Option<Subset>,
    pub lock_timeout: Duration,
}

/// The checks that would mistake a concurrent ingest's packs for problems.
fn skipped_while_others_active() -> Vec<Skipped> {
    let reason = "another process holds a live lock on the repository (for example a running ingest), \
                  whose packs may not be indexed or protected by parity yet; run verify() again when it is alone";
    ["unindexed-pack", "parity-coverage"]
        .into_iter()
        .map(|check| Skipped {
            check,
            reason: reason.to_string(),
        })
        .collect()
}

/// How many issues of one kind are listed before they are summarised.
const MAX_PER_KIND: usize = 1000;

/// Collects issues, reports each as it is found, and summarises floods.
pub struct Findings<'a> {
    issues: Mutex<(Vec<Issue>, HashMap<&'static str, usize>)>,
    on_issue: &'a (dyn Fn(&Issue) + Sync),
}

impl<'a> Findings<'a> {
    pub fn new(on_issue: &'a (dyn Fn(&Issue) + Sync)) -> Findings<'a> {
        Findings {
            issues: Mutex::new((Vec::new(), HashMap::new())),
            on_issue,
        }
    }

    pub fn add(&self, issue: Issue) {
        let mut guard = self.issues.lock().unwrap_or_else(|p| p.into_inner());
        let count = guard.1.entry(issue.kind).or_default();
        *count += 1;
        if *count <= MAX_PER_KIND {
            (self.on_issue)(&issue);
            guard.0.push(issue);
        }
    }

    pub fn into_issues(self) -> Vec<Issue> {
        let (mut issues, counts) = self.issues.into_inner().unwrap_or_else(|p| p.into_inner());
        for (kind, count) in counts {
            if count > MAX_PER_KIND {
                issues.push(Issue::new(
                    kind,
                    format!("{} more problems of this kind are not listed", count - MAX_PER_KIND),
                ));
            }
        }
        issues
    }
}

/// What the index files on disk say: pack records by pack id, and chunk locations.
pub struct DiskIndex {
    pub records: IdMap<PackRecord>,
    /// chunk id -> (pack id, offset, entry)
    pub chunks: IdMap<(PackId, u64, usize)>,
    pub file_bytes: u64,
    /// The listing of `packs/data`, made after every index file was read (so
    /// a pack those files name was there, if it exists at all).
    pub data_listing: Vec<crate::storage::Entry>,
}

pub fn read_disk_index(repo: &Repository, findings: Option<&Findings>) -> Result<DiskIndex> {
    let mut records: IdMap<PackRecord> = IdMap::default();
    let mut chunks: IdMap<(PackId, u64, usize)> = IdMap::default();
    let mut file_bytes = 0;
    let mut lists = Vec::new();
    let entries = repo.storage().list(INDEX_DIR)?;
    let read = crate::fetch::map_parallel(repo.parallelism(), &entries, |e| repo.read_index_file(&e.name));
    for (entry, read) in entries.into_iter().zip(read) {
        file_bytes += entry.size;
        match read {
            Ok(list) => lists.push(list),
            Err(e) => {
                if let Some(f) = findings {
                    f.add(Issue::new("index", e.to_string()));
                }
            }
        }
    }
    let data_listing = repo.storage().list(DATA_DIR)?;
    let present = present_packs(&data_listing, lists.iter().flatten());
    for record in lists.into_iter().flatten() {
        let mut offset = 0;
        for (i, e) in record.entries.iter().enumerate() {
            match chunks.entry(e.id) {
                Entry::Vacant(v) => {
                    v.insert((record.id, offset, i));
                }
                // A chunk stored anew after its pack was lost resolves to the copy that exists.
                Entry::Occupied(mut o) if !present.contains(&o.get().0) && present.contains(&record.id) => {
                    o.insert((record.id, offset, i));
                }
                Entry::Occupied(_) => {}
            }
            offset += e.length as u64;
        }
        records.entry(record.id).or_insert(record);
    }
    Ok(DiskIndex {
        records,
        chunks,
        file_bytes,
        data_listing,
    })
}

/// The packs that exist with their recorded size (symbolic links followed):
/// one listing, not a request per pack.
fn present_packs<'r>(
    listing: &[crate::storage::Entry],
    records: impl Iterator<Item = &'r PackRecord>,
) -> HashSet<PackId> {
    let sizes: IdMap<u64> = listing
        .iter()
        .filter_map(|e| Some((parse_file_name(&e.name, "pack")?, e.size)))
        .collect();
    records
        .filter(|r| sizes.get(&r.id) == Some(&r.size))
        .map(|r| r.id)
        .collect()
}

pub fn verify(
    repo: &Repository,
    level: Level,
    on_issue: &(dyn Fn(&Issue) + Sync),
    progress: ProgressFn<'_>,
    lock_timeout: Duration,
) -> Result<VerifyReport> {
    let options = VerifyOptions {
        level,
        subset: None,
        lock_timeout,
    };
    verify_with(repo, &options, on_issue, progress, &crate::cancel::NEVER)
}

/// `verify` with a subset and a cancel flag, checked at its loop points
/// (it changes nothing, so any point is a safe one).
pub fn verify_with(
    repo: &Repository,
    options: &VerifyOptions,
    on_issue: &(dyn Fn(&Issue) + Sync),
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<VerifyReport> {
    let level = options.level;
    if options.subset.is_some() && level != Level::Full {
        return Err(Error::invalid("a subset verify reads pack data: it needs level 'full'"));
    }
    // The bucket is the truth: a cached copy must not hide damage there.
    if let Some(truth) = repo.bypassing_cache() {
        return verify_with(&truth, options, on_issue, progress, cancel);
    }
    let lock = crate::lock::acquire_until(repo.storage(), false, options.lock_timeout, cancel)?;
    // Packs of a concurrent ingest are briefly on disk before the index lists them.
    let writers_active = crate::lock::others_active(&**repo.storage(), &lock)?;
    let findings = Findings::new(on_issue);
    let mut checked = Checked::default();

    check_config_and_keys(repo, &findings);
    // The item pass restores through the repository's own index: load it
    // alongside, and every manifest and its copy (read once, in parallel, for
    // the copies check and for what the snapshots reference), so that their
    // round trips overlap.
    let (index, loaded, surveyed) = std::thread::scope(|s| {
        let loading = s.spawn(|| repo.sync_index());
        let surveying = s.spawn(|| crate::manifests::survey(repo));
        let index = read_disk_index(repo, Some(&findings));
        (index, loading.join(), surveying.join())
    });
    let panicked = |what: &str, p: Box<dyn std::any::Any + Send>| {
        Error::Internal(format!("{what} panicked: {}", crate::ingest::panic_text(&p)))
    };
    let mut index = index?;
    loaded.map_err(|p| panicked("loading the index", p))??;
    let survey = surveyed.map_err(|p| panicked("reading the manifests", p))??;
    checked.bytes += index.file_bytes;

    // The snapshots are listed, and the parity groups listed and read (under
    // the parity lock: a local parity writer rewrites groups), at once: on a
    // bucket each is a round trip. Both come after the index files were read.
    let parity_lock = parity::lock(repo, false)?;
    let (snapshot_listing, parity_listed) = std::thread::scope(|s| {
        let parity = s.spawn(|| -> Result<_> {
            let listing = repo.storage().list(PARITY_DIR)?;
            let names = listing.iter().map(|e| e.name.clone()).collect();
            Ok((listing, parity::load_listed_groups(repo, names)))
        });
        (repo.storage().list(SNAPSHOTS_DIR), parity.join())
    });
    let (parity_listing, (groups, damaged)) = parity_listed.map_err(|p| panicked("reading the parity groups", p))??;

    // Snapshots and the chunks they reference.
    let mut referenced: IdMap<()> = IdMap::default();
    let mut items_to_hash = Vec::new();
    let entries: Vec<_> = snapshot_listing?
        .into_iter()
        .filter(|e| is_valid_snapshot_id(&e.name))
        .collect();
    for entry in entries {
        check_cancel(cancel, "verify")?;
        let loaded = match survey.intact_primary(&entry.name) {
            Some(m) => Ok(m.clone()),
            // Damaged, newer, or changed since the listing: as restores read it.
            None => repo.load_snapshot(&entry.name),
        };
        let name = entry.name;
        checked.snapshots += 1;
        checked.bytes += entry.size;
        let manifest = match loaded {
            Ok(m) => m,
            Err(e) => {
                findings.add(Issue::new("snapshot", e.to_string()).snapshot(&name));
                continue;
            }
        };
        for item in &manifest.items {
            match item.chunk_ids() {
                Ok(ids) => {
                    check_item_length(&index, &name, item, &ids, &findings);
                    // Without a SHA-256 (version-1 manifests) the stream still decodes every chunk.
                    if level == Level::Full && options.subset.is_none() {
                        items_to_hash.push((name.clone(), item.clone()));
                    }
                    for id in ids {
                        if referenced.insert(id, ()).is_none() && !index.chunks.contains_key(&id) {
                            findings.add(
                                Issue::new(
                                    "missing-chunk",
                                    format!(
                                        "chunk {} of snapshots/{name} (item {:?}) is in no index file",
                                        hex::encode(id),
                                        item.name
                                    ),
                                )
                                .chunk(&id)
                                .snapshot(&name),
                            );
                        }
                    }
                }
                Err(e) => findings.add(Issue::new("snapshot", e.to_string()).snapshot(&name)),
            }
        }
    }
    checked.chunks = referenced.len() as u64;
    crate::manifests::check_copies(&survey, &findings)?;
    drop(survey);

    // Packs on disk against the index, and their sidecars.
    let mut on_disk: IdMap<u64> = IdMap::default();
    let mut idx_files: IdMap<u64> = IdMap::default();
    // Sizes of packs (immutable) and parity files by key, from listings: no request per file.
    let mut listed: HashMap<String, u64> = HashMap::new();
    for entry in std::mem::take(&mut index.data_listing) {
        listed.insert(format!("{DATA_DIR}/{}", entry.name), entry.size);
        if let Some(id) = parse_file_name(&entry.name, "pack") {
            on_disk.insert(id, entry.size);
        } else if let Some(id) = parse_file_name(&entry.name, "idx") {
            idx_files.insert(id, entry.size);
        }
    }
    let mut packs_to_read = Vec::new();
    let mut idx_to_read = Vec::new();
    for (id, record) in &index.records {
        let hex_id = hex::encode(id);
        checked.packs += 1;
        match on_disk.get(id) {
            None => findings.add(
                Issue::new(
                    "missing-pack",
                    format!("packs/data/{hex_id}.pack is missing; repair() can rebuild it from parity"),
                )
                .pack(&hex_id),
            ),
            Some(&size) if size != record.size => findings.add(
                Issue::new(
                    "pack-size",
                    format!(
                        "packs/data/{hex_id}.pack is {size} bytes, the index says {}",
                        record.size
                    ),
                )
                .pack(&hex_id),
            ),
            Some(_) => packs_to_read.push(*id),
        }
        if let Some(size) = idx_files.get(id) {
            checked.bytes += size;
            idx_to_read.push(record);
        } else {
            findings.add(Issue::new("missing-idx", format!("packs/data/{hex_id}.idx is missing")).pack(&hex_id));
        }
    }
    if !writers_active {
        for id in on_disk.keys().filter(|id| !index.records.contains_key(*id)) {
            let hex_id = hex::encode(id);
            findings.add(
                Issue::new(
                    "unindexed-pack",
                    format!("packs/data/{hex_id}.pack is in no index file; run repair()"),
                )
                .pack(&hex_id),
            );
            if !idx_files.contains_key(id) {
                findings.add(Issue::new("missing-idx", format!("packs/data/{hex_id}.idx is missing")).pack(&hex_id));
            }
        }
    }

    // A subset reads only its packs; every other check covers everything.
    let mut subset_report = SubsetReport {
        subset: options.subset.as_ref().map(Subset::name).unwrap_or_default(),
        packs_read: 0,
        packs_total: packs_to_read.len() as u64,
        parity_groups_read: 0,
        parity_groups_total: 0,
    };
    if let Some(subset) = &options.subset {
        packs_to_read = subset.select(&packs_to_read, |id| id.to_vec());
    }
    subset_report.packs_read = packs_to_read.len() as u64;

    // Parity coverage (and, from standard on, parity file hashes).
    let (groups, parity_to_hash) = {
        for entry in parity_listing {
            listed.insert(format!("{PARITY_DIR}/{}", entry.name), entry.size);
        }
        for (name, e) in damaged {
            findings
                .add(Issue::new("parity", format!("{e}; repair() rebuilds it from the packs and parity")).pack(name));
        }
        // Fields against the files they describe. Quick reads no pack: a pack
        // whose size the index confirms is sound, so the manifest is wrong.
        let sizes_agree = |_: &dyn crate::storage::Storage, key: &str, sha: &str, size: u64| {
            let is_pack = key.ends_with(".pack");
            !is_pack
                || hex::decode(sha)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .and_then(|id| index.records.get(&id))
                    .is_none_or(|r| r.size == size)
        };
        let witness: &dyn Fn(&dyn crate::storage::Storage, &str, &str, u64) -> bool = if level >= Level::Standard {
            &parity::hash_matches
        } else {
            &sizes_agree
        };
        for group in &groups {
            let size_of = |key: &str| listed.get(key).copied();
            if let Some(why) = parity::disagreement_with_sizes(repo, group, witness, &size_of) {
                findings.add(
                    Issue::new(
                        "parity",
                        format!(
                            "parity manifest packs/parity/{}: {why}; repair() rebuilds it from the packs and parity",
                            group.file_name()
                        ),
                    )
                    .pack(group.file_name()),
                );
            }
        }
        let mut read = Vec::new();
        if level >= Level::Standard {
            read = match &options.subset {
                Some(subset) => subset.select(&groups, |g| hex::decode(&g.id).unwrap_or_default()),
                None => groups.clone(),
            };
            subset_report.parity_groups_read = read.len() as u64;
            subset_report.parity_groups_total = groups.len() as u64;
        }
        (groups, read)
    };
    let covered: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.pack.clone()))
        .collect();
    if !writers_active {
        for id in index.records.keys() {
            let hex_id = hex::encode(id);
            if !covered.contains(&hex_id) {
                findings.add(
                    Issue::new(
                        "parity",
                        format!("packs/data/{hex_id}.pack has no parity; run repair()"),
                    )
                    .pack(&hex_id),
                );
            }
        }
    }

    // The sidecars, then the parity files (under the parity lock), are read
    // here while another thread reads the packs: on a bucket neither waits
    // for the other's GETs, and the data pass starts without waiting for them.
    let readable: HashSet<PackId> = packs_to_read.iter().copied().collect();
    let (data, parity_checked) = std::thread::scope(|s| {
        let pass = DataPass {
            level,
            subset: options.subset.is_some(),
            index: &index,
            referenced: &referenced,
            readable: &readable,
            base: checked.bytes,
        };
        let found = &findings;
        let data = s.spawn(move || read_data(repo, &pass, items_to_hash, packs_to_read, found, progress, cancel));
        check_idx_files(repo, &idx_to_read, &findings);
        let mut parity_checked = Checked::default();
        for group in &parity_to_hash {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            check_parity_files(repo, group, &findings, &mut parity_checked);
        }
        drop(parity_lock);
        let data = data.join().unwrap_or_else(|p| Err(panicked("verify's data pass", p)));
        (data, parity_checked)
    });
    checked.bytes += data?;
    check_cancel(cancel, "verify")?;
    checked.bytes += parity_checked.bytes;

    progress(ProgressUpdate {
        bytes_processed: checked.bytes,
        total_bytes: Some(checked.bytes),
        message: format!("verify ({}) complete", level.name()),
    });
    let errors = findings.into_issues();
    Ok(VerifyReport {
        ok: errors.is_empty(),
        level: level.name(),
        errors,
        checked,
        skipped: if writers_active {
            skipped_while_others_active()
        } else {
            Vec::new()
        },
        subset: options.subset.is_some().then_some(subset_report),
    })
}

/// What verify's data pass works from (`read_data`).
struct DataPass<'a> {
    level: Level,
    subset: bool,
    index: &'a DiskIndex,
    referenced: &'a IdMap<()>,
    /// Packs that exist with their recorded size.
    readable: &'a HashSet<PackId>,
    /// Bytes checked before it, for progress.
    base: u64,
}

/// Reads pack data as the level asks; returns the bytes it checked.
fn read_data(
    repo: &Repository,
    pass: &DataPass,
    items_to_hash: Vec<(String, crate::snapshot::ManifestItem)>,
    packs_to_read: Vec<PackId>,
    findings: &Findings,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<u64> {
    let (level, index, readable) = (pass.level, pass.index, pass.readable);
    if pass.subset {
        // No item pass (items span slices): the slice's packs are hashed and
        // every referenced chunk in them decoded as they are read.
        let reads = PackReads {
            level,
            decode: Some(pass.referenced),
            cancel,
        };
        return Ok(read_packs(repo, &reads, index, packs_to_read, findings, progress, pass.base)?.0);
    }
    let reads = PackReads {
        level,
        decode: None,
        cancel,
    };
    match level {
        Level::Quick => Ok(0),
        Level::Standard => Ok(read_packs(repo, &reads, index, packs_to_read, findings, progress, 0)?.0),
        Level::Full => {
            // The item pass reads each pack it needs once, whole, and checks it
            // there; the pack pass then reads only the packs no item touched.
            let whole = WholePacks::new(repo, index, readable, findings);
            let packs = PackState {
                index,
                readable,
                whole: &whole,
            };
            let (hashed, examined) =
                check_item_hashes(repo, items_to_hash, &packs, findings, progress, pass.base, cancel)?;
            let (rest, bytes, mut damaged) = whole.finish(&packs_to_read);
            let reported = pass.base + hashed;
            let (rest_bytes, rest_damaged) = read_packs(repo, &reads, index, rest, findings, progress, reported)?;
            damaged.extend(rest_damaged);
            // A damaged pack may be found after the items that reference it
            // streamed (from another copy): name those chunks as the item pass would.
            for id in pass.referenced.keys().filter(|id| !examined.contains_key(*id)) {
                if index.chunks.get(id).is_some_and(|(p, ..)| damaged.contains(p)) {
                    check_chunk(repo, index, readable, id, findings)?;
                }
            }
            Ok(hashed + bytes + rest_bytes)
        }
    }
}

fn check_config_and_keys(repo: &Repository, findings: &Findings) {
    match crate::repo::choose_config(&**repo.storage()) {
        Err(e) => findings.add(Issue::new("config", format!("config.json and {CONFIG_COPY}: {e}"))),
        Ok(choice) => {
            for (file, why) in &choice.bad {
                findings.add(Issue::new("config", format!("{file}: {why}; repair() rewrites it")));
            }
            if choice.config != repo.config {
                findings.add(Issue::new(
                    "config",
                    "config.json changed since the repository was opened; close and reopen it",
                ));
            }
        }
    }
    if repo.config.is_encrypted() {
        let files = crate::repo::read_key_files(&**repo.storage()).unwrap_or_default();
        let mut judge = crate::repo::KeyJudge::new(repo);
        let mut intact: HashMap<String, usize> = HashMap::new();
        for (rel, parsed) in &files {
            match parsed {
                Ok(k) => match judge.unknown(rel, k) {
                    Some(why) => findings.add(Issue::new(
                        "key",
                        format!(
                            "{rel} is an unknown key file: {why}; remove it (removeKey() with id {}) if nobody you trust added it",
                            crate::repo::key_id_of(rel)
                        ),
                    )),
                    None => *intact.entry(k.id.clone()).or_default() += 1,
                },
                Err(e) => findings.add(Issue::new("key", format!("{e}; repair() restores it from its copy"))),
            }
        }
        for (id, count) in intact {
            if count < 2 {
                findings.add(Issue::new(
                    "key",
                    format!(
                        "key {id} has no intact copy (keys/{id}.json and {})",
                        crate::repo::key_copy_path(&id)
                    ),
                ));
            }
        }
    }
    for (name, record) in crate::lock::read_locks(&**repo.storage()).unwrap_or_default() {
        if record.is_none() {
            findings.add(Issue::new(
                "lock",
                format!("locks/{name} cannot be read; unlock() removes it"),
            ));
        }
    }
}

/// Each sidecar against its pack's record in the index files: a request
/// each, in parallel, so latency does not add up.
fn check_idx_files(repo: &Repository, records: &[&PackRecord], findings: &Findings) {
    crate::fetch::for_each_parallel(repo.parallelism(), records, |record| {
        let hex_id = hex::encode(record.id);
        match read_idx(&**repo.storage(), &idx_key(&record.id), record.id, repo.sealer()) {
            Ok(idx) if idx == **record => {}
            Ok(_) => findings
                .add(Issue::new("idx", format!("packs/data/{hex_id}.idx disagrees with the index")).pack(&hex_id)),
            Err(e) => findings.add(Issue::new("idx", e.to_string()).pack(&hex_id)),
        }
    });
}

fn check_parity_files(repo: &Repository, group: &GroupManifest, findings: &Findings, checked: &mut Checked) {
    for p in &group.parity {
        checked.bytes += p.size;
        let problem = match parity::hash_file(&**repo.storage(), &parity::parity_key(&p.file)) {
            Err(e) => Some(e.to_string()),
            Ok((n, _)) if n != p.size => Some(format!("it is {n} bytes, expected {}", p.size)),
            Ok((_, hash)) if hex::encode(hash) != p.sha256 => Some("its content does not match its hash".into()),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            findings.add(
                Issue::new(
                    "parity",
                    format!("packs/parity/{} (group {}): {problem}", p.file, group.id),
                )
                .pack(&p.file),
            );
        }
    }
}

/// An item's length must be the sum of its chunks' lengths (from the index).
fn check_item_length(
    index: &DiskIndex,
    snapshot: &str,
    item: &crate::snapshot::ManifestItem,
    ids: &[ChunkId],
    findings: &Findings,
) {
    let total: Option<u64> = ids
        .iter()
        .map(|id| {
            let (pack, _, i) = index.chunks.get(id)?;
            Some(index.records[pack].entries[*i].raw_length as u64)
        })
        .sum();
    // A chunk missing from the index is reported as missing-chunk.
    if let Some(total) = total.filter(|t| *t != item.size) {
        findings.add(
            Issue::new(
                "snapshot",
                format!(
                    "item {:?} of snapshots/{snapshot}: its chunks hold {total} bytes but the manifest says {}",
                    item.name, item.size
                ),
            )
            .snapshot(snapshot),
        );
    }
}

/// What the item pass knows of the packs.
struct PackState<'a> {
    index: &'a DiskIndex,
    /// Packs that exist with their recorded size: missing and short ones are reported already.
    readable: &'a HashSet<PackId>,
    /// Packs read whole and checked; knows which are damaged.
    whole: &'a WholePacks<'a>,
}

/// Full level: streams every item through the restore pipeline into SHA-256
/// and compares it with the manifest; this decodes every referenced chunk
/// once. Items with the same chunk list, size and hash (unchanged across
/// snapshots) are streamed once. When an item does not stream, or has a chunk
/// in a damaged pack (restore may have read another copy), its chunks are
/// decoded one by one to name each bad one, as a "chunk" issue, once per chunk.
fn check_item_hashes(
    repo: &Repository,
    items: Vec<(String, crate::snapshot::ManifestItem)>,
    packs: &PackState,
    findings: &Findings,
    progress: ProgressFn<'_>,
    base: u64,
    cancel: &AtomicBool,
) -> Result<(u64, IdMap<()>)> {
    repo.sync_index()?;
    // Every chunk is decoded into a buffer, hashed and handed back.
    let _recycling = crate::bufpool::scope();
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let distinct: Vec<_> = items
        .into_iter()
        .filter(|(_, item)| {
            let mut key = Sha256::new();
            key.update(item.sha256.as_deref().unwrap_or_default());
            key.update(item.size.to_le_bytes());
            item.chunks.iter().for_each(|c| key.update(c));
            seen.insert(key.finalize().into())
        })
        .collect();
    let total: u64 = distinct.iter().map(|(_, i)| i.size).sum();
    packs.whole.plan(first_needed_packs(repo, &distinct, packs.readable));
    std::thread::scope(|s| {
        for _ in 0..packs.whole.prefetchers() {
            s.spawn(|| packs.whole.prefetch());
        }
        let hashed = hash_items(repo, distinct, packs, findings, progress, (base, total), cancel);
        packs.whole.stop();
        hashed
    })
}

/// The readable packs the items' chunks are in, in the order the items need them first.
fn first_needed_packs(
    repo: &Repository,
    items: &[(String, crate::snapshot::ManifestItem)],
    readable: &HashSet<PackId>,
) -> Vec<PackId> {
    let index = repo.index();
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    for (_, item) in items {
        for id in item.chunk_ids().unwrap_or_default() {
            let Some(loc) = index.get(&id) else { continue };
            let pack = index.pack(loc.pack).id;
            if readable.contains(&pack) && seen.insert(pack) {
                order.push(pack);
            }
        }
    }
    order
}

fn hash_items(
    repo: &Repository,
    distinct: Vec<(String, crate::snapshot::ManifestItem)>,
    packs: &PackState,
    findings: &Findings,
    progress: ProgressFn<'_>,
    (base, total): (u64, u64),
    cancel: &AtomicBool,
) -> Result<(u64, IdMap<()>)> {
    let mut done = 0u64;
    let mut throttle = Throttle::new();
    let mut examined: IdMap<()> = IdMap::default();
    for (snapshot, item) in distinct {
        let mut stream = |ids_check| {
            let mut bytes = 0u64;
            let restored = crate::restore::restore_checked_from(
                repo,
                &snapshot,
                &item,
                &mut |data| {
                    bytes += data.len() as u64;
                    crate::bufpool::give(data);
                    if throttle.ready() {
                        progress(ProgressUpdate {
                            bytes_processed: base + done + bytes,
                            total_bytes: Some(base + total),
                            message: "verifying item hashes (full level)".into(),
                        });
                    }
                    Ok(())
                },
                cancel,
                Some(packs.whole),
                ids_check,
            );
            (restored, bytes)
        };
        // The item's SHA-256 proves every byte of it; only when it fails does
        // each chunk need its own hash, to find (or read past) the bad one.
        let (mut restored, mut bytes) = stream(IdCheck::ByItemHash);
        if matches!(restored, Err(Error::Corrupt { .. })) {
            (restored, bytes) = stream(IdCheck::EachChunk);
        }
        done += bytes;
        // Whether every chunk of the item was decoded.
        let streamed = match restored {
            Ok(()) => true,
            // restore_checked names the item when the item itself is wrong.
            Err(e @ Error::Corrupt { .. }) if matches!(&e, Error::Corrupt { what, .. } if what.starts_with("item ")) => {
                findings.add(Issue::new("snapshot", e.to_string()).snapshot(&snapshot));
                bytes == item.size
            }
            // A chunk that cannot be read or decoded.
            Err(Error::Corrupt { .. }) => false,
            Err(e) => return Err(e),
        };
        let ids = item.chunk_ids()?;
        let in_damaged_pack = |id: &ChunkId| {
            packs
                .index
                .chunks
                .get(id)
                .is_some_and(|(p, ..)| packs.whole.is_damaged(p))
        };
        for id in ids.iter().filter(|id| !streamed || in_damaged_pack(id)) {
            if examined.insert(*id, ()).is_none() {
                check_chunk(repo, packs.index, packs.readable, id, findings)?;
            }
        }
    }
    Ok((done, examined))
}

/// Decodes the copy of a chunk the index files point at, as restores read it.
/// A chunk in no index file or in a missing or short pack is reported already.
fn check_chunk(
    repo: &Repository,
    index: &DiskIndex,
    readable: &HashSet<PackId>,
    id: &ChunkId,
    findings: &Findings,
) -> Result<()> {
    let Some(&(pack, offset, i)) = index.chunks.get(id) else {
        return Ok(());
    };
    if !readable.contains(&pack) {
        return Ok(());
    }
    let entry = &index.records[&pack].entries[i];
    let decoded = repo
        .storage()
        .read_range(&pack_key(&pack), offset, entry.length as usize)
        .and_then(|blob| decode_blob(repo, id, &pack, entry.encoding, entry.raw_length, blob));
    match decoded {
        Ok(_) => Ok(()),
        Err(e @ Error::Corrupt { .. }) => {
            findings.add(Issue::new("chunk", e.to_string()).pack(hex::encode(pack)).chunk(id));
            Ok(())
        }
        Err(e) => Err(e),
    }
}
