//! Retention (`forget`) and garbage collection.
//!
//! The policy works like restic's: a snapshot is kept when any rule keeps it;
//! calendar rules keep the newest snapshot of each of the last N periods (in
//! UTC) that have snapshots. Then chunks no kept snapshot references are
//! garbage: packs holding only garbage are deleted, packs whose unused share
//! exceeds `maxUnused` are repacked (their live blobs copied unchanged).
//!
//! Order, so a crash at any point loses no kept snapshot: new packs -> their
//! parity -> a complete new index -> remove manifests -> remove old index
//! files -> new parity groups for survivors of changed groups -> delete the
//! old groups -> delete dead packs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::read_disk_index;
use crate::crypto::{ChunkId, AAD_INDEX};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{list_files, parse_iso8601_millis, read_exact_at, remove_durably};
use crate::index::{encode_index_file, PackInfo};
use crate::pack::{idx_file_name, pack_file_name, PackId, PackRecord, PackWriter, ENTRY_LEN};
use crate::parity;
use crate::progress::{ProgressFn, ProgressUpdate, Throttle};
use crate::repo::Repository;
use crate::snapshot::{is_valid_snapshot_id, Manifest};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_days: Option<u32>,
    pub keep_weeks: Option<u32>,
    pub keep_months: Option<u32>,
    pub keep_years: Option<u32>,
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub filter: Filter,
    /// Keys that split the snapshots into groups, each getting the policy on
    /// its own: "host" is the snapshot's host, any other name a tag key.
    /// `None`: the host and the whole tag set. `Some([])`: one group.
    pub group_by: Option<Vec<String>>,
    /// Fraction 0..1 of a pack's bytes that may be garbage before it is repacked.
    pub max_unused: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    pub kept_snapshots: Vec<String>,
    pub removed_snapshots: Vec<String>,
    pub removed_packs: u64,
    pub repacked_packs: u64,
    pub freed_bytes: i64,
    pub reasons: BTreeMap<String, Vec<String>>,
    /// The policy's outcome per group, in group-key order.
    pub groups: Vec<PruneGroup>,
}

/// What identifies a group: the values of the `groupBy` keys (a tag a
/// snapshot lacks is absent from `tags`; `host` only when grouping by it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl GroupKey {
    fn of(m: &Manifest, group_by: Option<&[String]>) -> GroupKey {
        match group_by {
            None => GroupKey {
                host: Some(m.host().to_string()),
                tags: m.tags.clone(),
            },
            Some(keys) => GroupKey {
                host: keys.iter().any(|k| k == "host").then(|| m.host().to_string()),
                tags: keys
                    .iter()
                    .filter(|k| *k != "host")
                    .filter_map(|k| m.tags.get(k).map(|v| (k.clone(), v.clone())))
                    .collect(),
            },
        }
    }
}

/// One group's snapshots the policy keeps (oldest first, with reasons) and removes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PruneGroup {
    #[serde(flatten)]
    pub key: GroupKey,
    pub kept_snapshots: Vec<String>,
    pub removed_snapshots: Vec<String>,
    pub reasons: BTreeMap<String, Vec<String>>,
}

/// Parses `1y6m2w3d12h` (y = 365 d, m = 30 d, w = 7 d) to milliseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let bad = || {
        Error::invalid(format!(
            "keepWithin {s:?} is not a duration; use e.g. '30d', '12h', '2w', '1y6m'"
        ))
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let hours = match c {
            'y' => 365 * 24,
            'm' => 30 * 24,
            'w' => 7 * 24,
            'd' => 24,
            'h' => 1,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(hours * 3_600_000).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || s.trim().is_empty() {
        return Err(bad());
    }
    Ok(total)
}

impl Retention {
    fn has_keep_rule(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_days,
            self.keep_weeks,
            self.keep_months,
            self.keep_years,
        ]
        .iter()
        .any(|n| n.unwrap_or(0) > 0)
            || self.keep_within.is_some()
            || !self.keep_tags.is_empty()
    }

    pub fn validate(&self) -> Result<()> {
        if !self.has_keep_rule() {
            return Err(Error::invalid(
                "the retention policy has no keep rule, so it would remove every snapshot; give at least one of keepLast, keepHourly, keepDays, keepWeeks, keepMonths, keepYears (> 0), keepWithin or keepTags",
            ));
        }
        if let Some(w) = &self.keep_within {
            parse_duration(w)?;
        }
        if let Some(keys) = &self.group_by {
            let mut seen = std::collections::BTreeSet::new();
            for k in keys {
                if k.is_empty() || !seen.insert(k) {
                    return Err(Error::invalid(format!(
                        "groupBy lists {k:?} {}; give distinct names: 'host' or tag keys",
                        if k.is_empty() { "as a key" } else { "twice" }
                    )));
                }
            }
        }
        if let Some(m) = self.max_unused {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::invalid(format!(
                    "maxUnused {m} must be a fraction between 0 and 1 (or a percentage string)"
                )));
            }
        }
        Ok(())
    }
}

fn civil(ms: i64) -> (i64, u32) {
    let date = crate::fsutil::iso8601_from_millis(ms);
    (date[0..4].parse().unwrap_or(0), date[5..7].parse().unwrap_or(1))
}

/// Applies the policy to each group of in-scope snapshots (`filter` first,
/// then `groupBy`): which it keeps (with reasons) and removes.
pub fn apply_policy(snapshots: &[Manifest], r: &Retention) -> Result<Vec<PruneGroup>> {
    r.validate()?;
    let mut groups: BTreeMap<GroupKey, Vec<(&Manifest, i64)>> = BTreeMap::new();
    for s in snapshots
        .iter()
        .filter(|s| r.filter.tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)))
    {
        let t = parse_iso8601_millis(&s.created_at)
            .ok_or_else(|| Error::corrupt(format!("snapshot {}", s.id), "createdAt is not a timestamp"))?;
        groups
            .entry(GroupKey::of(s, r.group_by.as_deref()))
            .or_default()
            .push((s, t));
    }
    groups
        .into_iter()
        .map(|(key, scope)| {
            let (reasons, kept, removed) = policy_for_group(scope, r)?;
            Ok(PruneGroup {
                key,
                kept_snapshots: kept,
                removed_snapshots: removed,
                reasons,
            })
        })
        .collect()
}

type GroupOutcome = (BTreeMap<String, Vec<String>>, Vec<String>, Vec<String>);

/// The policy on one group: reasons per kept id, kept and removed ids (oldest first).
fn policy_for_group(mut scope: Vec<(&Manifest, i64)>, r: &Retention) -> Result<GroupOutcome> {
    // Newest first: the first snapshot met in a period is that period's newest.
    scope.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.id.cmp(&a.0.id)));
    let mut reasons: HashMap<String, Vec<String>> = HashMap::new();
    let mut keep = |id: &str, why: &str| reasons.entry(id.to_string()).or_default().push(why.to_string());

    let day = |t: i64| t.div_euclid(86_400_000);
    type Bucket<'a> = (&'a str, Option<u32>, Box<dyn Fn(i64) -> i64>);
    let rules: Vec<Bucket> = vec![
        ("last", r.keep_last, Box::new(|_| 0)),
        ("hourly", r.keep_hourly, Box::new(|t: i64| t.div_euclid(3_600_000))),
        ("daily", r.keep_days, Box::new(move |t| day(t))),
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        ("weekly", r.keep_weeks, Box::new(move |t| (day(t) + 3).div_euclid(7))),
        (
            "monthly",
            r.keep_months,
            Box::new(|t| {
                let (y, m) = civil(t);
                y * 12 + m as i64
            }),
        ),
        ("yearly", r.keep_years, Box::new(|t| civil(t).0)),
    ];
    for (name, count, bucket) in rules {
        let mut left = count.unwrap_or(0);
        let mut last_bucket = None;
        for (i, (s, t)) in scope.iter().enumerate() {
            if left == 0 {
                break;
            }
            // keepLast: every snapshot is its own period.
            let b = if name == "last" { i as i64 } else { bucket(*t) };
            if last_bucket != Some(b) {
                keep(&s.id, name);
                left -= 1;
                last_bucket = Some(b);
            }
        }
    }
    if let (Some(within), Some((_, newest))) = (&r.keep_within, scope.first()) {
        let cutoff = newest - parse_duration(within)?;
        for (s, t) in &scope {
            if *t >= cutoff {
                keep(&s.id, "within");
            }
        }
    }
    for (s, _) in &scope {
        if s.tags.iter().any(|(k, v)| r.keep_tags.get(k) == Some(v)) {
            keep(&s.id, "tags");
        }
    }
    let mut why_kept = BTreeMap::new();
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for (s, _) in scope.iter().rev() {
        match reasons.remove(&s.id) {
            Some(why) => {
                why_kept.insert(s.id.clone(), why);
                kept.push(s.id.clone());
            }
            None => removed.push(s.id.clone()),
        }
    }
    Ok((why_kept, kept, removed))
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

pub fn prune(
    repo: &Repository,
    retention: &Retention,
    dry_run: bool,
    progress: ProgressFn<'_>,
    lock_timeout: Duration,
) -> Result<PruneReport> {
    retention.validate()?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.root(), true, lock_timeout)?;
    let mut snapshots = Vec::new();
    for name in list_files(&repo.snapshots_dir())? {
        if is_valid_snapshot_id(&name) {
            // A manifest that cannot be read might reference anything: refuse to guess.
            snapshots.push(repo.load_snapshot(&name).map_err(|e| {
                Error::corrupt(
                    format!("snapshots/{name}"),
                    format!("{e}; prune() cannot know what it references"),
                )
            })?);
        }
    }
    snapshots.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    let groups = apply_policy(&snapshots, retention)?;
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut removed_set: HashSet<String> = HashSet::new();
    for g in &groups {
        kept.extend(g.reasons.iter().map(|(id, why)| (id.clone(), why.clone())));
        removed_set.extend(g.removed_snapshots.iter().cloned());
    }
    // Oldest first across groups, like the snapshot list.
    let removed: Vec<String> = snapshots
        .iter()
        .filter(|s| removed_set.contains(&s.id))
        .map(|s| s.id.clone())
        .collect();
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
    let plan = plan_gc(repo, &live, retention.max_unused.unwrap_or(0.1))?;
    let dead: Vec<PackId> = plan
        .delete
        .iter()
        .copied()
        .chain(plan.repack.iter().map(|(id, _)| *id))
        .collect();
    check_survivors(repo, &dead)?;
    let dead_bytes: u64 = dead.iter().map(|id| plan.records[id].size).sum();
    let kept_ids: Vec<String> = snapshots
        .iter()
        .filter(|s| kept.contains_key(&s.id))
        .map(|s| s.id.clone())
        .collect();
    let mut report = PruneReport {
        dry_run,
        kept_snapshots: kept_ids,
        removed_snapshots: removed.clone(),
        removed_packs: dead.len() as u64 + unindexed_packs,
        repacked_packs: plan.repack.len() as u64,
        freed_bytes: (dead_bytes + unindexed_bytes) as i64 - plan.estimated_new_bytes as i64,
        reasons: kept,
        groups,
    };
    if dry_run {
        return Ok(report);
    }

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
    let old_index_files = list_files(&repo.index_dir())?;
    let stored = repo.seal(AAD_INDEX, encode_index_file(&keep_records));
    let new_index = hex::encode(crate::crypto::sha256(&stored));
    crate::fsutil::atomic_write(&repo.index_dir().join(&new_index), &stored)?;
    report_stage(progress, "index written");
    // 4. Manifests of removed snapshots.
    for id in &removed {
        repo.remove_snapshot(id)?;
    }
    // 5. Old index files: everything they list that stays is in the new one.
    for name in old_index_files.into_iter().filter(|n| *n != new_index) {
        remove_durably(&repo.index_dir().join(name))?;
    }
    // 6. Parity: survivors of groups that lose a member get new groups first.
    regroup_parity(repo, &dead_set)?;
    // 7. The dead packs themselves.
    for id in &dead {
        remove_durably(&repo.data_dir().join(pack_file_name(id)))?;
        remove_durably(&repo.data_dir().join(idx_file_name(id)))?;
    }
    repo.reload_index()?;
    report_stage(progress, "prune complete");
    report.removed_packs = dead.len() as u64 + unindexed_packs;
    report.freed_bytes = (dead_bytes + unindexed_bytes) as i64 - new_bytes as i64;
    Ok(report)
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
        let path = repo.data_dir().join(pack_file_name(pack_id));
        let (size, hash) = parity::hash_file(&path)?;
        if size != record.size || hash != *pack_id {
            return Err(Error::corrupt(
                format!("packs/data/{}", pack_file_name(pack_id)),
                "it does not match its hash; run repair() before prune()",
            ));
        }
        let file = fs::File::open(&path).at(&path)?;
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
            let mut blob = vec![0u8; e.length as usize];
            read_exact_at(&file, &mut blob, offsets[i]).at(&path)?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(PackWriter::create(&repo.data_dir())?),
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

/// Gives the surviving members of every group that loses a member a new
/// group, then deletes the old group and its parity.
fn regroup_parity(repo: &Repository, dead: &HashSet<PackId>) -> Result<()> {
    let _lock = parity::lock(repo, true)?;
    let (groups, _) = parity::load_groups(repo)?;
    let dead_hex: HashSet<String> = dead.iter().map(hex::encode).collect();
    let (affected, mut unaffected): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .partition(|g| g.members.iter().any(|m| dead_hex.contains(&m.pack)));
    if affected.is_empty() {
        return Ok(());
    }
    let mut survivors = Vec::new();
    for g in &affected {
        for m in g.members.iter().filter(|m| !dead_hex.contains(&m.pack)) {
            let id: PackId = hex::decode(&m.pack)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Error::corrupt(format!("parity group {}", g.id), "bad pack id"))?;
            survivors.push(PackInfo { id, size: m.size });
        }
    }
    // Survivors join open or new groups before the old groups disappear.
    let mut seen = HashSet::new();
    survivors.retain(|p| seen.insert(p.id));
    parity::cover_packs(repo, &mut unaffected, survivors)?;
    let dir = parity::parity_dir(repo);
    let still_used: HashSet<String> = unaffected
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.clone()))
        .collect();
    for g in &affected {
        remove_durably(&dir.join(g.file_name()))?;
        for p in g.parity.iter().filter(|p| !still_used.contains(&p.file)) {
            remove_durably(&dir.join(&p.file))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::iso8601_from_millis;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    /// 2026-01-05 00:00 UTC, a Monday.
    const T0: i64 = 1_767_571_200_000;

    fn snap(n: usize, at: i64, tags: &[(&str, &str)]) -> Manifest {
        Manifest {
            version: 1,
            id: format!("{n:064x}"),
            created_at: iso8601_from_millis(at),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            host: None,
            user: None,
            items: vec![],
            new_chunks: 0,
            reused_chunks: 0,
            original_size: 0,
            stored_size: 0,
        }
    }

    /// The groups' outcomes merged: reasons per kept id, removed ids.
    fn merged(snaps: &[Manifest], r: &Retention) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
        let mut reasons = BTreeMap::new();
        let mut removed = Vec::new();
        for g in apply_policy(snaps, r).unwrap() {
            reasons.extend(g.reasons);
            removed.extend(g.removed_snapshots);
        }
        (reasons, removed)
    }

    fn kept(snaps: &[Manifest], r: Retention) -> Vec<usize> {
        let (kept, _) = merged(snaps, &r);
        snaps
            .iter()
            .enumerate()
            .filter(|(_, s)| kept.contains_key(&s.id))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn an_empty_policy_is_refused() {
        let snaps = vec![snap(1, T0, &[])];
        for r in [
            Retention::default(),
            Retention {
                keep_last: Some(0),
                ..Default::default()
            },
        ] {
            assert_eq!(apply_policy(&snaps, &r).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        }
    }

    #[test]
    fn keep_last_and_calendar_rules_pick_the_newest_per_period() {
        // Two snapshots a day for 10 days, at 01:00 and 13:00.
        let snaps: Vec<Manifest> = (0..20)
            .map(|i| snap(i, T0 + (i as i64 / 2) * DAY + HOUR + (i as i64 % 2) * 12 * HOUR, &[]))
            .collect();
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_last: Some(3),
                    ..Default::default()
                }
            ),
            vec![17, 18, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_days: Some(3),
                    ..Default::default()
                }
            ),
            vec![15, 17, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_hourly: Some(2),
                    ..Default::default()
                }
            ),
            vec![18, 19]
        );
        // Days 0..6 are one week (Mon..Sun), days 7..9 the next.
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_weeks: Some(5),
                    ..Default::default()
                }
            ),
            vec![13, 19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_months: Some(2),
                    ..Default::default()
                }
            ),
            vec![19]
        );
        assert_eq!(
            kept(
                &snaps,
                Retention {
                    keep_years: Some(1),
                    ..Default::default()
                }
            ),
            vec![19]
        );
        let both = Retention {
            keep_last: Some(1),
            keep_days: Some(2),
            ..Default::default()
        };
        let (reasons, removed) = merged(&snaps, &both);
        assert_eq!(reasons[&snaps[19].id], vec!["last", "daily"]);
        assert_eq!(reasons[&snaps[17].id], vec!["daily"]);
        assert_eq!(removed.len(), 18);
    }

    #[test]
    fn within_tags_and_filter() {
        let snaps = vec![
            snap(1, T0, &[("kind", "full")]),
            snap(2, T0 + 10 * DAY, &[("svc", "db")]),
            snap(3, T0 + 20 * DAY, &[("svc", "db")]),
            snap(4, T0 + 29 * DAY, &[("svc", "web")]),
        ];
        // One policy across the repository (groupBy: false).
        let within = Retention {
            keep_within: Some("10d".into()),
            group_by: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(kept(&snaps, within), vec![2, 3]);
        let tags = Retention {
            keep_last: Some(1),
            keep_tags: [("kind".to_string(), "full".to_string())].into(),
            group_by: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(kept(&snaps, tags), vec![0, 3]);
        let scoped = Retention {
            keep_last: Some(1),
            filter: Filter {
                tags: [("svc".to_string(), "db".to_string())].into(),
            },
            ..Default::default()
        };
        let (reasons, removed) = merged(&snaps, &scoped);
        assert_eq!(
            removed,
            vec![snaps[1].id.clone()],
            "only in-scope snapshots are removed"
        );
        assert_eq!(reasons.keys().cloned().collect::<Vec<_>>(), vec![snaps[2].id.clone()]);
    }

    #[test]
    fn each_group_gets_the_policy_on_its_own() {
        // The issue's reproduction: postgres x2 and nextcloud x1, keepDays 1.
        let snaps = vec![
            snap(1, T0, &[("service", "postgres")]),
            snap(2, T0 + DAY, &[("service", "postgres")]),
            snap(3, T0 + HOUR, &[("service", "nextcloud")]),
        ];
        let daily = |group_by: Option<Vec<String>>| Retention {
            keep_days: Some(1),
            group_by,
            ..Default::default()
        };
        assert_eq!(kept(&snaps, daily(None)), vec![1, 2], "nextcloud's only snapshot stays");
        let groups = apply_policy(&snaps, &daily(None)).unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].key.host.as_deref(), Some(""), "old manifests read as host ''");
        assert_eq!(groups[0].key.tags["service"], "nextcloud");
        assert_eq!(groups[1].kept_snapshots, vec![snaps[1].id.clone()]);
        assert_eq!(groups[1].removed_snapshots, vec![snaps[0].id.clone()]);
        assert_eq!(groups[1].reasons[&snaps[1].id], vec!["daily"]);
        // groupBy: false -> one policy for the whole repository.
        assert_eq!(kept(&snaps, daily(Some(vec![]))), vec![1]);
        // groupBy ['host'] -> all share host '' -> one group, keyed by host only.
        let by_host = apply_policy(&snaps, &daily(Some(vec!["host".into()]))).unwrap();
        assert_eq!(by_host.len(), 1);
        assert_eq!(by_host[0].key.host.as_deref(), Some(""));
        assert!(by_host[0].key.tags.is_empty());

        // groupBy ['service'] ignores other tags; a snapshot without the tag forms its own group.
        let more = vec![
            snap(1, T0, &[("service", "db"), ("run", "a")]),
            snap(2, T0 + DAY, &[("service", "db"), ("run", "b")]),
            snap(3, T0 + 2 * DAY, &[("run", "c")]),
        ];
        assert_eq!(
            kept(&more, daily(None)),
            vec![0, 1, 2],
            "default: every tag set is a group"
        );
        let by_service = apply_policy(&more, &daily(Some(vec!["service".into()]))).unwrap();
        assert_eq!(by_service.len(), 2);
        assert!(by_service[0].key.tags.is_empty() && by_service[0].key.host.is_none());
        assert_eq!(by_service[1].key.tags["service"], "db");
        assert_eq!(by_service[1].kept_snapshots, vec![more[1].id.clone()]);

        for bad in [vec!["".to_string()], vec!["host".into(), "host".into()]] {
            let err = apply_policy(&snaps, &daily(Some(bad))).unwrap_err();
            assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("12h").unwrap(), 12 * HOUR);
        assert_eq!(parse_duration("1y6m").unwrap(), (365 + 180) * DAY);
        assert_eq!(parse_duration("2w3d").unwrap(), 17 * DAY);
        for bad in ["", "12", "3x", "d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
