//! `repair` and `reindex`, both under the exclusive lock.
//!
//! Repair never deletes a pack: damaged packs are replaced only by a rebuilt
//! copy that matches their hash. It removes only what nothing references:
//! stale locks, `.tmp-*` leftovers, unreadable index files once their packs
//! are indexed again, unreadable parity manifests once their packs have new
//! parity, and parity files no manifest lists. A pack under another pack's
//! name is renamed into place (`relocate`). Snapshot manifests and their
//! copies are restored from each other (`manifests`); one with no intact
//! twin is renamed to `<id>.damaged` (kept, but no longer a snapshot).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use crate::cancel::check_cancel;
use crate::check::{read_disk_index, Issue};
use crate::crypto::{self, AAD_INDEX};
use crate::error::{Error, Result};
use crate::index::{encode_index_file, IdMap, PackInfo};
use crate::pack::{idx_key, pack_key, parse_file_name, read_idx, read_pack_header, PackId, PackRecord};
use crate::parity::{self, hash_file, parity_key};
use crate::repo::{Repository, CONFIG_COPY, CONFIG_FILE, DATA_DIR, INDEX_DIR, LAYOUT, PARITY_DIR, SNAPSHOTS_DIR};
use crate::snapshot::is_valid_snapshot_id;
use crate::storage::local;
use crate::storage::objects::{exists, names, rename};

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    pub index_rebuilt: bool,
    pub packs_repaired: u64,
    pub parity_rewritten: u64,
    pub locks_removed: u64,
    /// Snapshot manifests and manifest copies rewritten or renamed into place.
    pub snapshots_repaired: u64,
    pub errors: Vec<Issue>,
    pub unrecoverable: Vec<Unrecoverable>,
    /// Files named like packs that are none and that nothing references, moved aside.
    pub quarantined: Vec<Quarantined>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantined {
    /// Where the file was, relative to the repository.
    pub file: String,
    /// Where it is now, relative to the repository.
    pub moved_to: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unrecoverable {
    pub pack: Option<String>,
    pub snapshots: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReindexReport {
    pub packs: u64,
    pub chunks: u64,
}

pub fn repair(repo: &Repository, lock_timeout: Duration) -> Result<RepairReport> {
    repair_with(repo, lock_timeout, &crate::cancel::NEVER)
}

/// `repair` that stops with `Error::Cancelled` between its phases once
/// `cancel` is set. Each phase leaves the repository no worse than it found
/// it, so a stop there is as safe as one after the last.
pub fn repair_with(repo: &Repository, lock_timeout: Duration, cancel: &AtomicBool) -> Result<RepairReport> {
    // Repair decides from what the bucket holds, not from cached copies; the
    // cache is kept coherent by the writes, and this handle's index reloaded.
    if let Some(truth) = repo.bypassing_cache() {
        truth.reload_index()?;
        let report = repair_with(&truth, lock_timeout, cancel)?;
        repo.reload_index()?;
        return Ok(report);
    }
    repo.ensure_layout()?;
    let mut report = RepairReport {
        locks_removed: crate::lock::remove_locks(&**repo.storage(), false)? as u64,
        ..Default::default()
    };
    let _lock = crate::lock::acquire_until(repo.storage(), true, lock_timeout, cancel)?;
    check_cancel(cancel, "repair")?;
    // Leftovers of killed writers exist only where writes go through tmp files.
    // locks/ too: a process that is writing its record there when its tmp file
    // goes writes it again (lock::write_new_record).
    if let Some(root) = repo.storage().local_root() {
        local::remove_tmp_files(root, &LAYOUT);
    }
    repair_config(repo)?;
    repair_keys(repo, &mut report)?;

    check_cancel(cancel, "repair")?;
    // 1. Rebuild damaged packs from parity; note which packs are healthy.
    let _parity = parity::lock(repo, true)?;
    let (loaded, mut damaged_groups) = parity::load_groups(repo)?;
    // A manifest whose fields disagree with intact files is as untrusted as an unreadable one.
    let mut groups = Vec::new();
    for group in loaded {
        match parity::disk_disagreement(repo, &group, &parity::hash_matches) {
            Some(why) => {
                let name = group.file_name();
                let e = Error::corrupt(format!("parity manifest packs/parity/{name}"), why);
                damaged_groups.push((name, e));
            }
            None => groups.push(group),
        }
    }
    // 0. A pack stored under another pack's name is renamed, not rebuilt.
    let suspects: Vec<PackId> = groups
        .iter()
        .flat_map(|g| {
            let h = parity::group_health(repo, g);
            h.damaged_members()
                .into_iter()
                .map(|i| g.members[i].pack.clone())
                .collect::<Vec<_>>()
        })
        .filter_map(|hex_id| parse_hex_id(&hex_id).ok())
        .filter(|id| data_dir_has(repo, id))
        .collect();
    if !suspects.is_empty() {
        let mut expected: HashSet<PackId> = read_disk_index(repo, None)?.records.keys().copied().collect();
        for m in groups.iter().flat_map(|g| &g.members) {
            expected.extend(parse_hex_id(&m.pack));
        }
        report.packs_repaired += crate::relocate::relocate_packs(repo, &suspects, &expected)?;
    }
    // Untrusted manifests: rebuild what they protected where parity confirms a candidate.
    let untrusted: Vec<String> = damaged_groups.iter().map(|(n, _)| n.clone()).collect();
    let pack_sizes: IdMap<u64> = read_disk_index(repo, None)?
        .records
        .values()
        .map(|r| (r.id, r.size))
        .collect();
    let recovery = crate::regroup::recover(repo, &groups, &untrusted, &pack_sizes)?;
    report.packs_repaired += recovery.packs_rebuilt;
    report.parity_rewritten += recovery.groups.len() as u64;
    groups.extend(recovery.groups);
    let (mut healthy, mut lost) = rebuild_from_groups(repo, &mut groups, &mut report)?;

    check_cancel(cancel, "repair")?;
    // 2. Every pack file: healthy ones get a correct .idx; damaged, unprotected ones are reported,
    //    and files that are no pack and that nothing references are quarantined.
    let storage = &**repo.storage();
    let referenced = referenced_packs(repo, &groups)?;
    let mut records: IdMap<PackRecord> = IdMap::default();
    for name in names(storage, DATA_DIR)? {
        let Some(id) = parse_file_name(&name, "pack") else {
            continue;
        };
        let key = pack_key(&id);
        if !healthy.contains_key(&id) {
            match hash_file(storage, &key) {
                Ok((size, hash)) if hash == id => {
                    healthy.insert(id, size);
                }
                hashed => {
                    if lost.contains(&id) {
                        continue;
                    }
                    // Only a file whose bytes were read and are wrong is set aside.
                    if hashed.is_ok() && !referenced.contains(&id) {
                        quarantine(repo, &name, "its content does not match its name", &mut report)?;
                        continue;
                    }
                    report.errors.push(
                        Issue::new("pack", format!("packs/data/{name} is damaged and no parity covers it"))
                            .pack(hex::encode(id)),
                    );
                    lost.insert(id);
                    continue;
                }
            }
        }
        let record = match read_pack_header(storage, &key, id, repo.sealer()) {
            Ok(record) => record,
            // Its bytes match its name, yet it is no pack: a stray file (an empty
            // `e3b0…pack`), or one written with another key.
            Err(e @ Error::Io { .. }) => return Err(e),
            Err(e) if !referenced.contains(&id) => {
                quarantine(repo, &name, &e.to_string(), &mut report)?;
                continue;
            }
            Err(e) => {
                report
                    .errors
                    .push(Issue::new("pack", e.to_string()).pack(hex::encode(id)));
                continue;
            }
        };
        if read_idx(storage, &idx_key(&id), id, repo.sealer()).ok().as_ref() != Some(&record) {
            rewrite_idx(repo, &record)?;
            report.packs_repaired += 1;
        }
        records.insert(id, record);
    }

    check_cancel(cancel, "repair")?;
    // 3. Index: list every healthy pack no readable index file lists; then drop unreadable index files.
    let disk = read_disk_index(repo, None)?;
    let unlisted: Vec<PackRecord> = records
        .values()
        .filter(|r| !disk.records.contains_key(&r.id))
        .cloned()
        .collect();
    if !unlisted.is_empty() {
        write_index_file(repo, &unlisted)?;
        report.index_rebuilt = true;
    }
    for name in names(storage, INDEX_DIR)? {
        if repo.read_index_file(&name).is_err() {
            storage.delete(&format!("{INDEX_DIR}/{name}"))?;
            report.index_rebuilt = true;
        }
    }

    check_cancel(cancel, "repair")?;
    // 4. Parity for every healthy pack that has none; then drop unreadable manifests and orphan parity files.
    let covered: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.pack.clone()))
        .collect();
    let uncovered: Vec<PackInfo> = records
        .values()
        .filter(|r| !covered.contains(&hex::encode(r.id)))
        .map(|r| PackInfo { id: r.id, size: r.size })
        .collect();
    // Untrusted manifests go once their packs have new parity, except those
    // still naming lost packs (and their parity).
    let covered_all = cover_without_space(repo, &mut groups, uncovered, &mut report)?;
    for (name, _) in damaged_groups {
        if covered_all && !recovery.keep_manifests.contains(&name) {
            storage.delete(&parity_key(&name))?;
        }
    }
    // Versions a concurrent writer on object storage superseded (or that
    // covering just now superseded) go once an intact superset is kept.
    if covered_all {
        crate::supersede::remove_superseded(repo, &mut groups, &recovery.keep_parity)?;
    }
    let referenced: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.clone()))
        .chain(recovery.keep_parity.iter().cloned())
        .collect();
    for name in names(storage, PARITY_DIR)? {
        if name.ends_with(".par") && !referenced.contains(&name) {
            storage.delete(&parity_key(&name))?;
        }
    }

    check_cancel(cancel, "repair")?;
    // 5. Drop packs that are gone for good from the index, so that no ingest
    //    dedups against them; remember where their chunks were, to name them.
    let disk = read_disk_index(repo, None)?;
    let mut lost_chunks: IdMap<PackId> = IdMap::default();
    for record in disk.records.values().filter(|r| !records.contains_key(&r.id)) {
        lost.insert(record.id);
        for e in &record.entries {
            lost_chunks.entry(e.id).or_insert(record.id);
        }
    }
    if disk.records.keys().any(|id| !records.contains_key(id)) {
        let mut keep: Vec<PackRecord> = records.values().cloned().collect();
        keep.sort_by(|a, b| a.id.cmp(&b.id));
        let old = names(storage, INDEX_DIR)?;
        let written = write_index_file(repo, &keep)?;
        for name in old.into_iter().filter(|n| *n != written) {
            storage.delete(&format!("{INDEX_DIR}/{name}"))?;
        }
        report.index_rebuilt = true;
    }
    repo.reload_index()?;

    check_cancel(cancel, "repair")?;
    // 6. Snapshots: every manifest and copy rewritten from an intact twin,
    //    or set aside; then name what can no longer be restored.
    let manifests = crate::manifests::repair(repo)?;
    report.snapshots_repaired = manifests.rewritten;
    report.errors.extend(manifests.errors);
    let mut by_pack: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    if !manifests.lost.is_empty() {
        by_pack.insert(None, manifests.lost);
    }
    for name in names(storage, SNAPSHOTS_DIR)? {
        if !is_valid_snapshot_id(&name) {
            continue;
        }
        let manifest = match repo.load_snapshot(&name) {
            Ok(m) => m,
            // A newer manifest version (or damage left in place): reported, never moved.
            Err(e) => {
                report
                    .errors
                    .push(Issue::new("snapshot", e.to_string()).snapshot(&name));
                continue;
            }
        };
        let mut lost_packs: HashSet<Option<String>> = HashSet::new();
        for item in &manifest.items {
            for id in item.chunk_ids()? {
                if !repo.index().contains(&id) {
                    lost_packs.insert(lost_chunks.get(&id).map(hex::encode));
                }
            }
        }
        for pack in lost_packs {
            by_pack.entry(pack).or_default().push(manifest.id.clone());
        }
    }
    for id in &lost {
        by_pack.entry(Some(hex::encode(id))).or_default();
    }
    report.unrecoverable = by_pack
        .into_iter()
        .map(|(pack, mut snapshots)| {
            snapshots.sort();
            Unrecoverable { pack, snapshots }
        })
        .collect();
    Ok(report)
}

/// Rebuilds damaged members from their groups. A pack may be a member of
/// several groups (object storage): it is lost only when none can rebuild it,
/// and a pack one group rebuilds can let another group rebuild the rest, so
/// groups that failed are tried again while any rebuild succeeds. Groups whose
/// members are all intact get damaged parity recomputed. Returns the healthy
/// packs (with sizes) and the lost ones.
fn rebuild_from_groups(
    repo: &Repository,
    groups: &mut [parity::GroupManifest],
    report: &mut RepairReport,
) -> Result<(IdMap<u64>, HashSet<PackId>)> {
    let mut healths: Vec<parity::GroupHealth> = Vec::with_capacity(groups.len());
    let mut failed: Vec<(usize, Error)> = Vec::new();
    // Health is taken when a group's turn comes, so rebuilds by earlier groups count.
    for (i, group) in groups.iter().enumerate() {
        let health = parity::group_health(repo, group);
        if !health.damaged_members().is_empty() {
            match parity::rebuild_members(repo, group, &health) {
                Ok(rebuilt) => {
                    report.packs_repaired += rebuilt.len() as u64;
                    healths.push(parity::group_health(repo, group));
                    continue;
                }
                Err(e) => failed.push((i, e)),
            }
        }
        healths.push(health);
    }
    // Each pass that makes progress repairs a pack, so this is bounded anyway;
    // the cap only guards against storage that answers differently each time.
    for _ in 0..=groups.len() {
        if failed.is_empty() {
            break;
        }
        let mut progress = false;
        let mut still_failed = Vec::new();
        for (i, e) in failed {
            let health = parity::group_health(repo, &groups[i]);
            if health.damaged_members().len() < healths[i].damaged_members().len() {
                progress = true;
            }
            let outcome = if health.damaged_members().is_empty() {
                Ok(Vec::new())
            } else {
                parity::rebuild_members(repo, &groups[i], &health)
            };
            match outcome {
                Ok(rebuilt) => {
                    progress |= !rebuilt.is_empty();
                    report.packs_repaired += rebuilt.len() as u64;
                    healths[i] = parity::group_health(repo, &groups[i]);
                }
                Err(_) => {
                    healths[i] = health;
                    still_failed.push((i, e));
                }
            }
        }
        failed = still_failed;
        if !progress {
            break;
        }
    }
    let mut healthy: IdMap<u64> = IdMap::default();
    for (group, health) in groups.iter().zip(&healths) {
        for (m, problem) in group.members.iter().zip(&health.members) {
            if problem.is_none() {
                healthy.insert(parse_hex_id(&m.pack)?, m.size);
            }
        }
    }
    let mut lost: HashSet<PackId> = HashSet::new();
    for (i, e) in &failed {
        for j in healths[*i].damaged_members() {
            let m = &groups[*i].members[j];
            let id = parse_hex_id(&m.pack)?;
            if !healthy.contains_key(&id) && lost.insert(id) {
                report
                    .errors
                    .push(Issue::new("pack", format!("packs/data/{}.pack: {e}", m.pack)).pack(&m.pack));
            }
        }
    }
    for (group, health) in groups.iter_mut().zip(&healths) {
        if health.healthy_parity() < health.parity.len() && health.damaged_members().is_empty() {
            *group = parity::extend_group(repo, group, &[])?;
            report.parity_rewritten += 1;
        }
    }
    Ok((healthy, lost))
}

/// Gives uncovered packs parity. A full disk does not stop repair: it is
/// reported, and the fixes that need no space still run. Returns whether every pack is covered.
fn cover_without_space(
    repo: &Repository,
    groups: &mut Vec<parity::GroupManifest>,
    uncovered: Vec<PackInfo>,
    report: &mut RepairReport,
) -> Result<bool> {
    let count = uncovered.len();
    match parity::cover_packs(repo, groups, uncovered, &[]) {
        Ok(written) => {
            report.parity_rewritten += written as u64;
            Ok(true)
        }
        Err(e) if e.is_out_of_space() => {
            report.errors.push(Issue::new(
                "parity",
                format!(
                    "{e}; {count} packs still have no parity: free space (prune() deletes what no snapshot \
                     references) and run repair() again"
                ),
            ));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Packs something references: the index files or a parity group. Only other
/// files named like packs may be quarantined.
fn referenced_packs(repo: &Repository, groups: &[parity::GroupManifest]) -> Result<HashSet<PackId>> {
    let mut referenced: HashSet<PackId> = read_disk_index(repo, None)?.records.into_keys().collect();
    for m in groups.iter().flat_map(|g| &g.members) {
        referenced.insert(parse_hex_id(&m.pack)?);
    }
    Ok(referenced)
}

/// Moves a file of `packs/data` that is named like a pack but is none, and
/// that nothing references, to `<name>.quarantined` beside it (kept for
/// inspection; nothing reads it), so that it stops every later check.
/// A name taken by an earlier quarantine gets a number: `<name>.<n>.quarantined`.
fn quarantine(repo: &Repository, name: &str, reason: &str, report: &mut RepairReport) -> Result<()> {
    let storage = &**repo.storage();
    // Locally, anything of that name (a dangling link, a directory) counts as taken.
    let taken = |key: &str| -> Result<bool> {
        match storage.local_root() {
            Some(root) => Ok(local::name_taken(root, key)),
            None => exists(storage, key),
        }
    };
    let mut aside = format!("{name}.quarantined");
    let mut n = 1;
    while taken(&format!("{DATA_DIR}/{aside}"))? {
        aside = format!("{name}.{n}.quarantined");
        n += 1;
    }
    rename(storage, &format!("{DATA_DIR}/{name}"), &format!("{DATA_DIR}/{aside}"))?;
    report.quarantined.push(Quarantined {
        file: format!("packs/data/{name}"),
        moved_to: format!("packs/data/{aside}"),
        reason: format!("it is named like a pack but is none ({reason}), and nothing references it"),
    });
    Ok(())
}

fn data_dir_has(repo: &Repository, id: &PackId) -> bool {
    exists(&**repo.storage(), &pack_key(id)).unwrap_or(false)
}

fn parse_hex_id(hex_id: &str) -> Result<PackId> {
    hex::decode(hex_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::corrupt("a parity manifest", format!("bad pack id {hex_id:?}")))
}

/// Rewrites exactly the copies of config.json that are missing, damaged or
/// outvoted, from the intact one.
fn repair_config(repo: &Repository) -> Result<()> {
    let (config, bad) = match crate::repo::choose_config(&**repo.storage()) {
        Ok(choice) => (choice.config, choice.bad.into_iter().map(|(f, _)| f).collect()),
        // A newer engine's config is never overwritten.
        Err(e @ Error::UnsupportedFormat(_)) => return Err(e),
        // Both damaged since open: the config this handle holds is the intact one.
        Err(_) => (repo.config.clone(), vec![CONFIG_FILE, CONFIG_COPY]),
    };
    let json = serde_json::to_vec_pretty(&config).expect("config serialises");
    // The copy first, like init: config.json stays the last file written.
    for file in [CONFIG_COPY, CONFIG_FILE] {
        if bad.contains(&file) {
            repo.storage().write(file, &json)?;
        }
    }
    Ok(())
}

/// Rewrites a damaged or missing key file, or key copy, from its intact twin.
fn repair_keys(repo: &Repository, report: &mut RepairReport) -> Result<()> {
    if !repo.config.is_encrypted() {
        return Ok(());
    }
    let files = crate::repo::read_key_files(&**repo.storage())?;
    let mut judge = crate::repo::KeyJudge::new(repo);
    // Unknown (planted) key files are neither copied nor removed: verify names them.
    // A key whose primary is still version 1 and whose copy is already
    // version 2 (an upgrade cut short) keeps both: each is intact and its own.
    let intact: BTreeMap<String, crate::crypto::KeyFile> = files
        .iter()
        .filter_map(|(rel, parsed)| Some((rel, parsed.as_ref().ok()?)))
        .filter(|(rel, k)| judge.unknown(rel, k).is_none())
        .map(|(_, k)| (k.id.clone(), k.clone()))
        .collect();
    for (id, key) in &intact {
        let json = serde_json::to_vec_pretty(key).expect("key file serialises");
        for rel in [format!("keys/{id}.json"), crate::repo::key_copy_path(id)] {
            let ok = files.iter().any(|(r, parsed)| *r == rel && parsed.is_ok());
            if !ok {
                repo.storage().write(&rel, &json)?;
            }
        }
    }
    for (rel, parsed) in &files {
        if let Err(e) = parsed {
            let id = crate::repo::key_id_of(rel);
            if !intact.contains_key(id) {
                report
                    .errors
                    .push(Issue::new("key", format!("{e}; no intact copy of it exists")));
            }
        }
    }
    Ok(())
}

fn rewrite_idx(repo: &Repository, record: &PackRecord) -> Result<()> {
    // The pack's own trailer holds the exact header bytes; copy them (read
    // by range: the record was read from this very pack, so they are there).
    let (storage, key) = (&**repo.storage(), pack_key(&record.id));
    let trailer = storage.read_range(&key, record.size - 12, 12)?;
    let header_len = crate::pack::parse_pack_trailer(&trailer, record.size)
        .map_err(|e| Error::corrupt(format!("packs/data/{}", crate::pack::pack_file_name(&record.id)), e))?;
    let header = storage.read_range(&key, record.size - 12 - header_len, header_len as usize)?;
    let mut idx = Vec::with_capacity(16 + header.len());
    idx.extend_from_slice(crate::pack::IDX_MAGIC);
    idx.extend_from_slice(&record.size.to_le_bytes());
    idx.extend_from_slice(&header);
    storage.write(&idx_key(&record.id), &idx)
}

fn write_index_file(repo: &Repository, records: &[PackRecord]) -> Result<String> {
    let stored = repo.seal(AAD_INDEX, encode_index_file(records));
    let name = hex::encode(crypto::sha256(&stored));
    repo.storage().write(&format!("{INDEX_DIR}/{name}"), &stored)?;
    Ok(name)
}

/// Rebuilds the global index from the `.idx` files, or the pack headers
/// where an `.idx` is missing or unreadable.
pub fn reindex(repo: &Repository, lock_timeout: Duration) -> Result<ReindexReport> {
    // As repair: rebuilt from what the bucket holds.
    if let Some(truth) = repo.bypassing_cache() {
        let report = reindex(&truth, lock_timeout)?;
        repo.reload_index()?;
        return Ok(report);
    }
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.storage(), true, lock_timeout)?;
    let storage = &**repo.storage();
    let mut records = Vec::new();
    for entry in storage.list(DATA_DIR)? {
        let Some(id) = parse_file_name(&entry.name, "pack") else {
            continue;
        };
        let from_idx = read_idx(storage, &idx_key(&id), id, repo.sealer())
            .ok()
            .filter(|r| r.size == entry.size);
        let record = match from_idx {
            Some(r) => r,
            None => match read_pack_header(storage, &pack_key(&id), id, repo.sealer()) {
                Ok(r) => {
                    rewrite_idx(repo, &r)?;
                    r
                }
                // A pack whose header is unreadable is for repair() to rebuild.
                Err(_) => continue,
            },
        };
        records.push(record);
    }
    let old = names(storage, INDEX_DIR)?;
    let chunks = records.iter().map(|r| r.entries.len() as u64).sum();
    let written = write_index_file(repo, &records)?;
    for name in old.into_iter().filter(|n| *n != written) {
        storage.delete(&format!("{INDEX_DIR}/{name}"))?;
    }
    repo.reload_index()?;
    Ok(ReindexReport {
        packs: records.len() as u64,
        chunks,
    })
}
