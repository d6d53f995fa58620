//! Removing named snapshots on purpose. Every id is resolved before anything
//! is removed, so one unknown or ambiguous id changes nothing. Without
//! `prune`, only the manifests go (a later prune reclaims their data); with
//! it, garbage collection runs in the same exclusive-lock session.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gc;
use crate::progress::ProgressFn;
use crate::repo::Repository;
use crate::select::{resolve_snapshot, SnapshotFilter, MIN_PREFIX};
use crate::snapshot::Manifest;

#[derive(Debug, Clone, Copy, Default)]
pub struct ForgetOptions {
    pub dry_run: bool,
    /// Reclaim the data only the forgotten snapshots referenced, at once.
    pub prune: bool,
    pub lock_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForgetReport {
    pub dry_run: bool,
    /// Full ids, oldest first, each once.
    pub removed_snapshots: Vec<String>,
    /// Whether garbage was collected (or, in a dry run, estimated).
    pub pruned: bool,
    /// The garbage collection's figures: present only when `pruned`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_packs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repacked_packs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freed_bytes: Option<i64>,
}

pub fn forget(
    repo: &Repository,
    ids: &[String],
    options: &ForgetOptions,
    progress: ProgressFn<'_>,
) -> Result<ForgetReport> {
    check_specs(ids)?;
    repo.ensure_layout()?;
    let _lock = crate::lock::acquire(repo.storage(), true, options.lock_timeout)?;
    let targets = resolve_all(repo, ids)?;
    let removed: Vec<String> = targets.iter().map(|m| m.id.clone()).collect();
    let mut report = ForgetReport {
        dry_run: options.dry_run,
        removed_snapshots: removed.clone(),
        pruned: options.prune,
        removed_packs: None,
        repacked_packs: None,
        freed_bytes: None,
    };
    if options.prune {
        // The collection removes the manifests itself, in prune's crash-safe order.
        let snapshots = gc::load_snapshots(repo, "forget() with prune")?;
        let outcome = gc::collect(
            repo,
            &snapshots,
            &removed,
            gc::DEFAULT_MAX_UNUSED,
            options.dry_run,
            progress,
            &crate::cancel::NEVER,
        )?;
        report.removed_packs = Some(outcome.removed_packs);
        report.repacked_packs = Some(outcome.repacked_packs);
        report.freed_bytes = Some(outcome.freed_bytes);
    } else if !options.dry_run {
        for id in &removed {
            repo.remove_snapshot(id)?;
        }
    }
    Ok(report)
}

/// Argument checks that need no repository: a non-empty list, no 'latest'.
fn check_specs(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::invalid(
            "forget() needs at least one snapshot id; see listSnapshots() for the ids",
        ));
    }
    if let Some(spec) = ids.iter().find(|s| s.as_str() == "latest") {
        return Err(Error::invalid(format!(
            "{spec:?} names whichever snapshot is newest, which changes with every backup, so forget does not take it; name the snapshot by its full id or a unique prefix of at least {MIN_PREFIX} hex digits (see listSnapshots())"
        )));
    }
    Ok(())
}

/// Every spec's snapshot, each once, oldest first; the first spec that names
/// no snapshot, or more than one, is the error.
fn resolve_all(repo: &Repository, ids: &[String]) -> Result<Vec<Manifest>> {
    let any = SnapshotFilter::default();
    let mut found: BTreeMap<String, Manifest> = BTreeMap::new();
    for spec in ids {
        let m = resolve_snapshot(repo, spec, &any)?;
        found.entry(m.id.clone()).or_insert(m);
    }
    let mut out: Vec<Manifest> = found.into_values().collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}
