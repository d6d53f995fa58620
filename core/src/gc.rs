//! Garbage collection: removes the manifests of the snapshots being dropped
//! and reclaims what no remaining snapshot references. Packs holding only
//! garbage are deleted; packs whose unused share exceeds `maxUnused` are
//! repacked (their live blobs copied unchanged). `prune()` runs it after its
//! retention policy, `forget(ids, { prune: true })` with the named snapshots.
//!
//! Order, so a crash at any point loses no remaining snapshot: new packs ->
//! their parity -> a complete new index -> remove manifests -> remove old
//! index files -> new parity groups for survivors of changed groups ->
//! delete the old groups -> delete dead packs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;

use crate::cancel::check_cancel;
use crate::check::read_disk_index;
use crate::crypto::{ChunkId, AAD_INDEX};
use crate::error::{Error, Result};
use crate::index::{encode_index_file, PackInfo};
use crate::pack::{idx_key, pack_file_name, pack_key, PackId, PackRecord, PackWriter, ENTRY_LEN};
use crate::parity;
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::{Repository, INDEX_DIR, SNAPSHOTS_DIR};
use crate::snapshot::{is_valid_snapshot_id, Manifest};
use crate::storage::objects::names;

/// The share of a pack's bytes that may be garbage before it is repacked,
/// when the caller does not choose one.
pub const DEFAULT_MAX_UNUSED: f64 = 0.1;

/// What garbage collection did or, in a dry run, would do.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GcOutcome {
    pub removed_packs: u64,
    pub repacked_packs: u64,
    /// Bytes deleted less bytes written by repacking (an estimate in a dry run).
    pub freed_bytes: i64,
}

/// Every manifest in `snapshots/`, oldest first. `caller` names the
/// operation in the error for a manifest that cannot be read.
pub fn load_snapshots(repo: &Repository, caller: &str) -> Result<Vec<Manifest>> {
    let mut snapshots = Vec::new();
    for name in names(&**repo.storage(), SNAPSHOTS_DIR)? {
        if is_valid_snapshot_id(&name) {
            // A manifest that cannot be read might reference anything: refuse to guess.
            snapshots.push(repo.load_snapshot(&name).map_err(|e| {
                Error::corrupt(
                    format!("snapshots/{name}"),
                    format!("{e}; {caller} cannot know what it references"),
                )
            })?);
        }
    }
    snapshots.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(snapshots)
}

/// Removes the manifests of `removed` (ids among `snapshots`) and reclaims
/// every chunk no other snapshot references. The caller holds the exclusive
/// lock and passes every snapshot in the repository ([`load_snapshots`]).
/// With `dry_run` nothing is written and the outcome is an estimate.
/// `cancel` is honoured at the start and before the rewrite: what lies
/// between (deleting garbage nothing references) leaves a sound repository.
pub fn collect(
    repo: &Repository,
    snapshots: &[Manifest],
    removed: &[String],
    max_unused: f64,
    dry_run: bool,
    progress: ProgressFn<'_>,
    cancel: &AtomicBool,
) -> Result<GcOutcome> {
    check_cancel(cancel, "prune")?;
    let removed_set: HashSet<&String> = removed.iter().collect();
    // 0. Space first: garbage no snapshot references and no parity protects.
    let any_referenced: HashSet<ChunkId> = snapshots
        .iter()
        .flat_map(|s| &s.items)
        .map(|i| i.chunk_ids())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let reclaimed = crate::reclaim::reclaim_unprotected_garbage(repo, &any_referenced, dry_run)?;
    // Indexed ones are in the plan below (as dead packs); these are not.
    let (unindexed_packs, unindexed_bytes) = reclaimed
        .iter()
        .filter(|r| !r.indexed)
        .fold((0u64, 0u64), |(n, b), r| (n + 1, b + r.size));
    let mut live: HashSet<ChunkId> = HashSet::new();
    for s in snapshots.iter().filter(|s| !removed_set.contains(&s.id)) {
        for item in &s.items {
            live.extend(item.chunk_ids()?);
        }
    }
    // A copy whose manifest is gone may be a manifest lost to damage that
    // repair() can restore: keep what it references.
    for orphan in crate::manifests::orphan_copies(repo)? {
        for item in &orphan.items {
            live.extend(item.chunk_ids()?);
        }
    }
    let plan = plan_gc(repo, &live, max_unused)?;
    let dead: Vec<PackId> = plan
        .delete
        .iter()
        .copied()
        .chain(plan.repack.iter().map(|(id, _)| *id))
        .collect();
    check_survivors(repo, &dead)?;
    let dead_bytes: u64 = dead.iter().map(|id| plan.records[id].size).sum();
    let estimate = GcOutcome {
        removed_packs: dead.len() as u64 + unindexed_packs,
        repacked_packs: plan.repack.len() as u64,
        freed_bytes: (dead_bytes + unindexed_bytes) as i64 - plan.estimated_new_bytes as i64,
    };
    if dry_run {
        return Ok(estimate);
    }
    // The last point where stopping changes nothing. From here on every step
    // runs to its end: a half-done rewrite leaves packs no index lists.
    check_cancel(cancel, "prune")?;

    // 1-2. New packs with the live blobs of the repacked packs, and their parity.
    let new_records = repack(repo, &plan, progress)?;
    // Repacking is deterministic: after an interrupted prune it can rewrite a
    // pack that is on the dead list, byte for byte. What this run wrote stays.
    let written: HashSet<PackId> = new_records.iter().map(|r| r.id).collect();
    let dead: Vec<PackId> = dead.into_iter().filter(|id| !written.contains(id)).collect();
    let dead_bytes: u64 = dead.iter().map(|id| plan.records[id].size).sum();
    let new_bytes: u64 = new_records
        .iter()
        .filter(|r| !plan.records.contains_key(&r.id))
        .map(|r| r.size)
        .sum();
    repo.cover_parity()?;
    // 3. One index file listing every pack that stays.
    let dead_set: HashSet<PackId> = dead.iter().copied().collect();
    let mut keep_records: Vec<PackRecord> = plan
        .records
        .values()
        .filter(|r| !dead_set.contains(&r.id))
        .cloned()
        .collect();
    keep_records.extend(new_records.into_iter().filter(|r| !plan.records.contains_key(&r.id)));
    keep_records.sort_by(|a, b| a.id.cmp(&b.id));
    let old_index_files = names(&**repo.storage(), INDEX_DIR)?;
    let stored = repo.seal(AAD_INDEX, encode_index_file(&keep_records));
    let new_index = hex::encode(crate::crypto::sha256(&stored));
    repo.storage().write(&format!("{INDEX_DIR}/{new_index}"), &stored)?;
    report_stage(progress, "index written");
    // 4. Manifests of removed snapshots.
    for id in removed {
        repo.remove_snapshot(id)?;
    }
    // 5. Old index files: everything they list that stays is in the new one.
    for name in old_index_files.into_iter().filter(|n| *n != new_index) {
        repo.storage().delete(&format!("{INDEX_DIR}/{name}"))?;
    }
    // 6. Parity: survivors of groups that lose a member get new groups first.
    regroup_parity(repo, &dead_set)?;
    // 7. The dead packs themselves.
    for id in &dead {
        repo.storage().delete(&pack_key(id))?;
        repo.storage().delete(&idx_key(id))?;
    }
    repo.reload_index()?;
    report_stage(progress, "prune complete");
    Ok(GcOutcome {
        removed_packs: dead.len() as u64 + unindexed_packs,
        freed_bytes: (dead_bytes + unindexed_bytes) as i64 - new_bytes as i64,
        ..estimate
    })
}

/// What garbage collection will do, computed without writing anything.
struct GcPlan {
    records: HashMap<PackId, PackRecord>,
    /// Packs with no live chunk.
    delete: Vec<PackId>,
    /// Packs to repack, with the indexes of their live entries.
    repack: Vec<(PackId, Vec<usize>)>,
    repack_bytes: u64,
    estimated_new_bytes: u64,
}

fn plan_gc(repo: &Repository, live: &HashSet<ChunkId>, max_unused: f64) -> Result<GcPlan> {
    // An unreadable index file hides which packs hold what: repair first.
    let ignore = |_: &crate::check::Issue| {};
    let findings = crate::check::Findings::new(&ignore);
    let index = read_disk_index(repo, Some(&findings))?;
    if let Some(problem) = findings.into_issues().into_iter().next() {
        return Err(Error::corrupt(
            "index/",
            format!("{}; run repair() before prune()", problem.error),
        ));
    }
    // Live chunks the index lacks are already lost (repair names them); prune
    // only ever deletes indexed packs, so it can go on without them.
    let seal_overhead = repo.sealer().overhead() as u64;
    let target = repo.config.pack_target_size;
    let mut plan = GcPlan {
        records: HashMap::new(),
        delete: Vec::new(),
        repack: Vec::new(),
        repack_bytes: 0,
        estimated_new_bytes: 0,
    };
    let mut live_repack_bytes = 0u64;
    let mut live_repack_entries = 0u64;
    for (pack_id, record) in &index.records {
        let mut offset = 0u64;
        let mut live_entries = Vec::new();
        let mut live_bytes = 0u64;
        for (i, e) in record.entries.iter().enumerate() {
            // Only the copy the index resolves to is live; other copies are garbage.
            let resolved = index
                .chunks
                .get(&e.id)
                .is_some_and(|(p, o, _)| p == pack_id && *o == offset);
            if resolved && live.contains(&e.id) {
                live_entries.push(i);
                live_bytes += e.length as u64;
            }
            offset += e.length as u64;
        }
        let total = record.blobs_len().max(1);
        if live_entries.is_empty() {
            plan.delete.push(*pack_id);
        } else if (total - live_bytes) as f64 / total as f64 > max_unused {
            live_repack_bytes += live_bytes;
            live_repack_entries += live_entries.len() as u64;
            plan.repack_bytes += record.size;
            plan.repack.push((*pack_id, live_entries));
        }
        plan.records.insert(*pack_id, record.clone());
    }
    if live_repack_entries > 0 {
        let packs = live_repack_bytes.div_ceil(target).max(1);
        let per_pack_overhead = 4 + 12 + seal_overhead;
        plan.estimated_new_bytes =
            live_repack_bytes + live_repack_entries * ENTRY_LEN as u64 + packs * per_pack_overhead;
    }
    plan.delete.sort();
    plan.repack.sort();
    Ok(plan)
}

fn report_stage(progress: ProgressFn<'_>, message: &str) {
    progress(ProgressUpdate {
        bytes_processed: 0,
        total_bytes: None,
        message: message.into(),
    });
}

/// Copies the live blobs of the packs to repack into new packs, after
/// checking each old pack against its hash so damage is never copied.
fn repack(repo: &Repository, plan: &GcPlan, progress: ProgressFn<'_>) -> Result<Vec<PackRecord>> {
    let target = repo.config.pack_target_size;
    let mut written = Vec::new();
    let mut writer: Option<PackWriter> = None;
    let mut done = 0u64;
    let mut throttle = Throttle::new();
    for (pack_id, live_entries) in &plan.repack {
        let record = &plan.records[pack_id];
        let key = pack_key(pack_id);
        let (size, hash) = parity::hash_file(&**repo.storage(), &key)?;
        if size != record.size || hash != *pack_id {
            return Err(Error::corrupt(
                format!("packs/data/{}", pack_file_name(pack_id)),
                "it does not match its hash; run repair() before prune()",
            ));
        }
        let offsets: Vec<u64> = record
            .entries
            .iter()
            .scan(0u64, |acc, e| {
                let at = *acc;
                *acc += e.length as u64;
                Some(at)
            })
            .collect();
        for &i in live_entries {
            let e = &record.entries[i];
            let blob = repo.storage().read_range(&key, offsets[i], e.length as usize)?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(PackWriter::create(&**repo.storage())?),
            };
            // Sealed blobs are bound to their chunk id, not their place: copy them as they are.
            w.add(e.id, e.encoding, e.raw_length, &blob)?;
            if w.data_len() >= target {
                written.push(finish(repo, writer.take().expect("open"))?);
            }
        }
        done += record.size;
        if throttle.ready() {
            progress(ProgressUpdate {
                bytes_processed: done,
                total_bytes: Some(plan.repack_bytes),
                message: "repacking partly used packs".into(),
            });
        }
    }
    if let Some(w) = writer.filter(|w| !w.is_empty()) {
        written.push(finish(repo, w)?);
    }
    Ok(written)
}

fn finish(repo: &Repository, writer: PackWriter) -> Result<PackRecord> {
    let record = writer.finish(repo.sealer())?;
    repo.note_written_pack(PackInfo {
        id: record.id,
        size: record.size,
    });
    Ok(record)
}

/// Refuses to start when a pack that stays is damaged and its parity group is
/// about to be dissolved: its new parity would protect the damage, and the old
/// parity that could rebuild it would be gone. `repair()` first.
fn check_survivors(repo: &Repository, dead: &[PackId]) -> Result<()> {
    let dead_hex: HashSet<String> = dead.iter().map(hex::encode).collect();
    let _lock = parity::lock(repo, false)?;
    let (groups, _) = parity::load_groups(repo)?;
    for group in groups
        .iter()
        .filter(|g| g.members.iter().any(|m| dead_hex.contains(&m.pack)))
    {
        let health = parity::group_health(repo, group);
        for (member, problem) in group.members.iter().zip(&health.members) {
            if let (false, Some(problem)) = (dead_hex.contains(&member.pack), problem) {
                return Err(Error::corrupt(
                    format!("packs/data/{}.pack", member.pack),
                    format!("{problem}; run repair() before prune(), which would otherwise regroup its parity"),
                ));
            }
        }
    }
    Ok(())
}

/// Removes superseded groups (object storage leaves them; see `supersede`),
/// then gives the surviving members of every group that loses a member a new
/// group, unless another group already covers them, then deletes the old
/// group and its parity.
fn regroup_parity(repo: &Repository, dead: &HashSet<PackId>) -> Result<()> {
    let _lock = parity::lock(repo, true)?;
    let (mut groups, _) = parity::load_groups(repo)?;
    crate::supersede::remove_superseded(repo, &mut groups, &HashSet::new())?;
    let dead_hex: HashSet<String> = dead.iter().map(hex::encode).collect();
    let (affected, mut unaffected): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|g| g.members.iter().any(|m| dead_hex.contains(&m.pack)));
    if affected.is_empty() {
        return Ok(());
    }
    // A pack may be in several groups (object storage): one that stays covers it.
    let mut seen: HashSet<String> = unaffected
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.pack.clone()))
        .collect();
    let mut survivors = Vec::new();
    for g in &affected {
        for m in g.members.iter().filter(|m| !dead_hex.contains(&m.pack)) {
            if !seen.insert(m.pack.clone()) {
                continue;
            }
            let id: PackId = hex::decode(&m.pack)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Error::corrupt(format!("parity group {}", g.id), "bad pack id"))?;
            survivors.push(PackInfo { id, size: m.size });
        }
    }
    // Survivors join open or new groups before the old groups disappear.
    parity::cover_packs(repo, &mut unaffected, survivors, &[])?;
    // Extending an open group on object storage leaves the old version: it goes now.
    crate::supersede::remove_superseded(repo, &mut unaffected, &HashSet::new())?;
    let still_used: HashSet<String> = unaffected
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.clone()))
        .collect();
    for g in &affected {
        repo.storage().delete(&parity::parity_key(&g.file_name()))?;
        for p in g.parity.iter().filter(|p| !still_used.contains(&p.file)) {
            repo.storage().delete(&parity::parity_key(&p.file))?;
        }
    }
    Ok(())
}
