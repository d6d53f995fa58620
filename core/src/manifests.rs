//! Snapshot manifests as files: each `snapshots/<id>` has an identical copy
//! in `packs/parity/snapshots/<id>`. This module is what verify and repair
//! see of them: which file holds which manifest, and what to rewrite.
//!
//! `snapshots/<id>` is the commit point: ingest writes the copy first, prune
//! and forget remove the copy first, so a copy alone is an ingest that
//! stopped between the two writes or a manifest lost to damage. Either way every chunk it
//! references was durable when it was written, so repair restores it as a
//! snapshot when all those chunks are still indexed, and prune keeps them.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::{Findings, Issue};
use crate::crypto::AAD_SNAPSHOT;
use crate::error::{Error, Result};
use crate::repo::{Repository, SNAPSHOTS_DIR, SNAPSHOT_COPIES};
use crate::snapshot::{decode_manifest, is_valid_snapshot_id, Manifest};
use crate::storage::objects::{exists, names, read_required, rename};

/// One manifest file, decoded without assuming its name is right.
pub enum Decoded {
    Valid {
        manifest: Manifest,
        stored: Vec<u8>,
    },
    /// A newer manifest version: not damage, and never touched.
    Newer(Error),
    Damaged(Error),
}

impl Decoded {
    /// The manifest, when the file is intact and named after it.
    fn valid_as(&self, name: &str) -> Option<(&Manifest, &[u8])> {
        match self {
            Decoded::Valid { manifest, stored } if manifest.id == name => Some((manifest, stored)),
            _ => None,
        }
    }
}

fn decode_file(repo: &Repository, key: &str, what: &str) -> Decoded {
    let decoded = read_required(&**repo.storage(), key).and_then(|stored| {
        let plain = repo.unseal(AAD_SNAPSHOT, stored.clone(), what)?;
        Ok((decode_manifest(&plain, what)?, stored))
    });
    match decoded {
        Ok((manifest, stored)) => Decoded::Valid { manifest, stored },
        Err(e @ Error::UnsupportedFormat(_)) => Decoded::Newer(e),
        Err(e) => Decoded::Damaged(e),
    }
}

/// Every file named like a snapshot id in `dir` (a missing directory is empty).
fn read_manifests(repo: &Repository, dir: &str) -> Result<BTreeMap<String, Decoded>> {
    let mut read = read_manifest_dirs(repo, &[dir])?;
    Ok(read.pop().unwrap_or_default())
}

/// `read_manifests` of each of `dirs`, all files read in one parallel batch:
/// a request each, so a thousand snapshots cost no thousand round trips.
fn read_manifest_dirs(repo: &Repository, dirs: &[&str]) -> Result<Vec<BTreeMap<String, Decoded>>> {
    let mut files = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        for name in names(&**repo.storage(), dir)?
            .into_iter()
            .filter(|n| is_valid_snapshot_id(n))
        {
            files.push((i, name));
        }
    }
    let decoded = crate::fetch::map_parallel(repo.parallelism(), &files, |(i, name)| {
        let dir = dirs[*i];
        decode_file(
            repo,
            &format!("{dir}/{name}"),
            &format!("snapshot manifest {dir}/{name}"),
        )
    });
    let mut out: Vec<BTreeMap<String, Decoded>> = dirs.iter().map(|_| BTreeMap::new()).collect();
    for ((i, name), d) in files.into_iter().zip(decoded) {
        out[i].insert(name, d);
    }
    Ok(out)
}

pub struct Survey {
    pub primaries: BTreeMap<String, Decoded>,
    pub copies: BTreeMap<String, Decoded>,
}

impl Survey {
    /// The manifest `snapshots/<name>` holds, when it is intact and named after it.
    pub fn intact_primary(&self, name: &str) -> Option<&Manifest> {
        self.primaries.get(name)?.valid_as(name).map(|(m, _)| m)
    }
}

pub fn survey(repo: &Repository) -> Result<Survey> {
    let mut read = read_manifest_dirs(repo, &[SNAPSHOTS_DIR, SNAPSHOT_COPIES])?;
    let copies = read.pop().unwrap_or_default();
    let primaries = read.pop().unwrap_or_default();
    Ok(Survey { primaries, copies })
}

/// Intact copies whose `snapshots/<id>` is gone (not merely damaged).
pub fn orphan_copies(repo: &Repository) -> Result<Vec<Manifest>> {
    let copies = read_manifests(repo, SNAPSHOT_COPIES)?;
    let mut orphans = Vec::new();
    for (name, d) in copies {
        if !exists(&**repo.storage(), &format!("{SNAPSHOTS_DIR}/{name}"))? {
            orphans.push((name, d));
        }
    }
    Ok(orphans
        .into_iter()
        .filter_map(|(name, d)| match d {
            Decoded::Valid { manifest, .. } if manifest.id == name => Some(manifest),
            _ => None,
        })
        .collect())
}

/// Verify (quick): copies that are missing, damaged or different, manifests
/// that are damaged but have an intact copy, and copies without a manifest.
/// A manifest that is unreadable with no intact copy is reported by the caller.
pub fn check_copies(survey: &Survey, findings: &Findings) -> Result<()> {
    let Survey { primaries, copies } = survey;
    let issue = |name: &str, text: String| findings.add(Issue::new("snapshot", text).snapshot(name));
    for (name, primary) in primaries {
        let copy = copies.get(name);
        match (primary, primary.valid_as(name)) {
            (Decoded::Newer(_), _) => {}
            (_, Some((manifest, stored))) => match copy.map(|c| (c, c.valid_as(name))) {
                // Version 1 repositories had no copies; repair() adds them.
                None if manifest.version < 2 => {}
                None => issue(
                    name,
                    format!("{SNAPSHOT_COPIES}/{name}, the copy of snapshots/{name}, is missing; repair() rewrites it"),
                ),
                Some((_, Some((_, copy_bytes)))) if copy_bytes == stored => {}
                Some((_, Some(_))) => issue(
                    name,
                    format!("{SNAPSHOT_COPIES}/{name} differs from snapshots/{name}; repair() rewrites it"),
                ),
                Some((c, None)) => issue(
                    name,
                    format!(
                        "{SNAPSHOT_COPIES}/{name} is damaged ({}); repair() rewrites it",
                        problem(c)
                    ),
                ),
            },
            (_, None) => {
                if copy.and_then(|c| c.valid_as(name)).is_some() {
                    issue(
                        name,
                        format!(
                            "snapshots/{name} is damaged ({}); its copy in {SNAPSHOT_COPIES} is intact and is used; repair() restores it",
                            problem(primary)
                        ),
                    );
                }
            }
        }
    }
    for (name, copy) in copies.iter().filter(|(n, _)| !primaries.contains_key(*n)) {
        let state = match copy.valid_as(name) {
            Some(_) => "is intact; repair() restores the manifest from it if every chunk it references is still stored"
                .to_string(),
            None => format!("is damaged too ({})", problem(copy)),
        };
        issue(
            name,
            format!("snapshots/{name} is missing; its copy {SNAPSHOT_COPIES}/{name} {state}"),
        );
    }
    Ok(())
}

fn problem(d: &Decoded) -> String {
    match d {
        Decoded::Valid { manifest, .. } => format!("it holds snapshot {}", manifest.id),
        Decoded::Newer(e) | Decoded::Damaged(e) => e.to_string(),
    }
}

/// What repair did with the manifests.
#[derive(Default)]
pub struct ManifestRepair {
    /// Manifest files and copies rewritten or renamed into place.
    pub rewritten: u64,
    /// Snapshots that could not be restored: set aside as `<id>.damaged`.
    pub lost: Vec<String>,
    pub errors: Vec<Issue>,
}

/// Repair: rewrites every manifest and copy that is missing, damaged or
/// misnamed from an intact file holding that snapshot (wherever it lies),
/// copies first, so the bytes are always durable under their own name
/// before any other file is replaced. Call it once the index is repaired:
/// a copy alone is restored only when every chunk it references is indexed.
pub fn repair(repo: &Repository) -> Result<ManifestRepair> {
    let Survey { primaries, copies } = survey(repo)?;
    let mut out = ManifestRepair::default();
    // An intact source for each snapshot id: a file under its own name first.
    let mut source: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifests: BTreeMap<String, &Manifest> = BTreeMap::new();
    let own_name_first = primaries
        .iter()
        .chain(&copies)
        .map(|(n, d)| (d.valid_as(n).is_none(), d))
        .collect::<Vec<_>>();
    let mut ordered = own_name_first;
    ordered.sort_by_key(|(misnamed, _)| *misnamed);
    for (_, d) in ordered {
        if let Decoded::Valid { manifest, stored } = d {
            source.entry(manifest.id.clone()).or_insert_with(|| stored.clone());
            manifests.entry(manifest.id.clone()).or_insert(manifest);
        }
    }
    // Snapshots that exist: named by a file in snapshots/, or held by one.
    let newer: BTreeSet<String> = primaries
        .iter()
        .filter(|(_, d)| matches!(d, Decoded::Newer(_)))
        .map(|(n, _)| n.clone())
        .collect();
    let mut wanted: BTreeSet<String> = primaries
        .iter()
        .flat_map(|(n, d)| match d {
            Decoded::Valid { manifest, .. } => vec![n.clone(), manifest.id.clone()],
            _ => vec![n.clone()],
        })
        .filter(|id| source.contains_key(id) && !newer.contains(id))
        .collect();
    // A copy alone: restored only if nothing it references was lost since.
    let mut unrestorable: BTreeSet<String> = BTreeSet::new();
    let alone: Vec<String> = source
        .keys()
        .filter(|id| !wanted.contains(*id) && !newer.contains(*id))
        .cloned()
        .collect();
    for id in alone {
        let indexed = {
            let index = repo.index();
            manifests[&id]
                .items
                .iter()
                .all(|item| item.chunk_ids().is_ok_and(|ids| ids.iter().all(|c| index.contains(c))))
        };
        if indexed {
            wanted.insert(id);
        } else {
            unrestorable.insert(id);
        }
    }
    let (snap_dir, copy_dir) = (SNAPSHOTS_DIR, SNAPSHOT_COPIES);
    // 1. Copies: afterwards every wanted manifest is durable under its own name.
    for id in &wanted {
        let ok = copies
            .get(id)
            .and_then(|c| c.valid_as(id))
            .is_some_and(|(_, b)| b == source[id]);
        if !ok {
            repo.write_snapshot_file(copy_dir, id, &source[id])?;
            out.rewritten += 1;
        }
    }
    // 2. Manifests. A misnamed file whose own name is needed by nothing is
    //    renamed into place; otherwise the file is written from the source.
    let mut moved: BTreeSet<String> = BTreeSet::new();
    for id in &wanted {
        if primaries.get(id).and_then(|d| d.valid_as(id)).is_some() {
            continue;
        }
        let stray = primaries.iter().find(|(n, d)| {
            !wanted.contains(*n)
                && !newer.contains(*n)
                && !moved.contains(*n)
                && matches!(d, Decoded::Valid { manifest, stored } if manifest.id == *id && *stored == source[id])
        });
        match stray {
            Some((name, _)) if !primaries.contains_key(id) => {
                rename(
                    &**repo.storage(),
                    &format!("{snap_dir}/{name}"),
                    &format!("{snap_dir}/{id}"),
                )?;
                moved.insert(name.clone());
            }
            _ => repo.write_snapshot_file(snap_dir, id, &source[id])?,
        }
        out.rewritten += 1;
    }
    // 3. What is left holds no snapshot of its own name: drop it when it is
    //    an exact duplicate of a manifest now in place, else set it aside.
    let is_duplicate = |d: &Decoded| matches!(d, Decoded::Valid { manifest, stored } if wanted.contains(&manifest.id) && *stored == source[&manifest.id]);
    let mut lost = |name: &str, text: String| {
        out.lost.push(name.to_string());
        out.errors.push(Issue::new("snapshot", text).snapshot(name));
    };
    for (name, d) in &primaries {
        if wanted.contains(name) || newer.contains(name) || moved.contains(name) {
            continue;
        }
        if is_duplicate(d) {
            // Only a wrong name, unless a copy says a snapshot of this name existed.
            if copies.contains_key(name) {
                lost(
                    name,
                    format!("snapshots/{name} held another snapshot and no intact copy of its own exists"),
                );
            }
            repo.storage().delete(&format!("{snap_dir}/{name}"))?;
        } else {
            lost(
                name,
                format!(
                    "snapshots/{name} is damaged ({}) and no intact copy exists; it was moved to snapshots/{name}.damaged",
                    problem(d)
                ),
            );
            set_aside(repo, snap_dir, name)?;
        }
    }
    for (name, d) in &copies {
        if wanted.contains(name) || newer.contains(name) || matches!(d, Decoded::Newer(_)) {
            continue;
        }
        if is_duplicate(d) {
            repo.storage().delete(&format!("{copy_dir}/{name}"))?;
            continue;
        }
        if unrestorable.contains(name) {
            lost(
                name,
                format!("snapshots/{name} is missing and its copy references chunks that are no longer stored; the copy was moved to {SNAPSHOT_COPIES}/{name}.damaged"),
            );
        } else if !primaries.contains_key(name) {
            lost(
                name,
                format!("snapshots/{name} is missing and its copy is damaged ({}); the copy was moved to {SNAPSHOT_COPIES}/{name}.damaged", problem(d)),
            );
        }
        set_aside(repo, copy_dir, name)?;
    }
    out.lost.sort();
    out.lost.dedup();
    Ok(out)
}

fn set_aside(repo: &Repository, dir: &str, name: &str) -> Result<()> {
    rename(
        &**repo.storage(),
        &format!("{dir}/{name}"),
        &format!("{dir}/{name}.damaged"),
    )
}
