//! Recovery of parity groups whose manifest repair cannot trust: it fails its
//! checksum or seal, or its fields are out of range or disagree with the packs.
//!
//! Such a manifest is never used as it is. When all the packs it named are
//! intact, nothing is needed: repair gives them fresh parity in a new group.
//! When some are missing or damaged, the manifest's readable remains serve as
//! hints (member ids, sizes, parity file names) for candidate manifests built
//! from what is on disk (pack and parity files are named by their SHA-256, the
//! index knows pack sizes, config.json the shard counts). A candidate is
//! accepted only when Reed-Solomon reconstruction from it yields packs whose
//! SHA-256 equals their names: so a wrong guess can never produce a pack.

use std::collections::HashSet;

use serde_json::Value;

use crate::crypto::AAD_PARITY;
use crate::error::{Error, Result};
use crate::fsutil::random_hex;
use crate::index::IdMap;
use crate::parity::{self, hash_matches, GroupManifest, Member, ParityFile};
use crate::repo::{Repository, PARITY_DIR};

/// At most this many candidate manifests are tried per group (each costs a pass over the group).
const MAX_TRIES: usize = 8;

/// What recovery did.
#[derive(Default)]
pub struct Recovery {
    /// Rebuilt, verified and saved manifests (new ids), with their packs restored.
    pub groups: Vec<GroupManifest>,
    pub packs_rebuilt: u64,
    /// Untrusted manifests that still name lost packs: kept, with the parity
    /// files they name, so that nothing a later repair could use is deleted.
    pub keep_manifests: HashSet<String>,
    pub keep_parity: HashSet<String>,
}

/// The readable remains of an untrusted manifest.
#[derive(Default)]
struct Hint {
    /// Per member: candidate pack ids (`pack` and `sha256`, when they differ) and the recorded size.
    members: Vec<(Vec<String>, Option<u64>)>,
    parity: Vec<String>,
    shard_size: Option<u64>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn read_hint(repo: &Repository, name: &str) -> Option<Hint> {
    let bytes = repo.storage().read(&parity::parity_key(name)).ok()??;
    let mut texts = Vec::new();
    if let Some(plain) = repo.sealer().open(AAD_PARITY, &bytes) {
        texts.push(plain);
    } else if repo.keys().is_none() {
        // A plain manifest whose checksum failed: its JSON may still be readable.
        if let Some(n) = bytes.len().checked_sub(crate::crypto::CHECKSUM_LEN) {
            texts.push(bytes[..n].to_vec());
        }
        texts.push(bytes);
    }
    let json: Value = texts.iter().find_map(|t| serde_json::from_slice(t).ok())?;
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let members = json
        .get("members")?
        .as_array()?
        .iter()
        .map(|m| {
            let mut ids: Vec<String> = Vec::new();
            for id in [str_of(m, "pack"), str_of(m, "sha256")].into_iter().flatten() {
                if is_hex64(&id) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
            (ids, m.get("size").and_then(Value::as_u64))
        })
        .collect();
    let parity = json
        .get("parity")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| str_of(p, "file")).collect())
        .unwrap_or_default();
    Some(Hint {
        members,
        parity,
        shard_size: json.get("shardSize").and_then(Value::as_u64),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum PackState {
    Intact(u64),
    Damaged,
    Missing,
}

fn pack_state(repo: &Repository, id: &str) -> PackState {
    match parity::hash_file(&**repo.storage(), &format!("packs/data/{id}.pack")) {
        Ok((size, hash)) if hex::encode(hash) == id => PackState::Intact(size),
        Ok(_) => PackState::Damaged,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => PackState::Missing,
        Err(_) => PackState::Damaged,
    }
}

/// Tries to recover each untrusted manifest that protected packs now missing or damaged.
/// `trusted` are the manifests repair trusts; `pack_sizes` the sizes the index records.
pub fn recover(
    repo: &Repository,
    trusted: &[GroupManifest],
    untrusted: &[String],
    pack_sizes: &IdMap<u64>,
) -> Result<Recovery> {
    let mut out = Recovery::default();
    if untrusted.is_empty() {
        return Ok(out);
    }
    let storage = &**repo.storage();
    let listed: HashSet<&str> = trusted
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.as_str()))
        .collect();
    // Parity files no trusted manifest lists and that match their names.
    let mut orphans: Vec<(String, u64)> = Vec::new();
    for entry in storage.list(PARITY_DIR)? {
        let name = entry.name;
        if let Some(sha) = name.strip_suffix(".par") {
            if !listed.contains(name.as_str())
                && is_hex64(sha)
                && hash_matches(storage, &parity::parity_key(&name), sha, 0)
            {
                orphans.push((name, entry.size));
            }
        }
    }
    let mut used_parity: HashSet<String> = HashSet::new();
    for name in untrusted {
        let Some(hint) = read_hint(repo, name) else { continue };
        // Per member: the candidate ids, narrowed to a pack on disk when one exists.
        let mut members: Vec<Vec<(String, PackState)>> = Vec::new();
        for (ids, _) in &hint.members {
            let states: Vec<(String, PackState)> = ids.iter().map(|id| (id.clone(), pack_state(repo, id))).collect();
            let intact: Vec<_> = states
                .iter()
                .filter(|(_, s)| matches!(s, PackState::Intact(_)))
                .cloned()
                .collect();
            let damaged: Vec<_> = states
                .iter()
                .filter(|(_, s)| *s == PackState::Damaged)
                .cloned()
                .collect();
            members.push(if !intact.is_empty() {
                intact
            } else if !damaged.is_empty() {
                damaged
            } else {
                states
            });
        }
        let needs_rebuild = members
            .iter()
            .any(|opts| !matches!(opts.first(), Some((_, PackState::Intact(_)))));
        if members.is_empty() || !needs_rebuild {
            continue;
        }
        match try_candidates(repo, &hint, &members, &orphans, &used_parity, pack_sizes)? {
            Some((group, rebuilt)) => {
                used_parity.extend(group.parity.iter().map(|p| p.file.clone()));
                out.packs_rebuilt += rebuilt;
                out.groups.push(group);
            }
            None => {
                out.keep_manifests.insert(name.clone());
                out.keep_parity.extend(hint.parity.iter().cloned());
            }
        }
    }
    Ok(out)
}

/// Builds candidate manifests and returns the first that rebuilds every
/// damaged member to its hash (saved under a new id), with the number rebuilt.
fn try_candidates(
    repo: &Repository,
    hint: &Hint,
    members: &[Vec<(String, PackState)>],
    orphans: &[(String, u64)],
    used_parity: &HashSet<String>,
    pack_sizes: &IdMap<u64>,
) -> Result<Option<(GroupManifest, u64)>> {
    let config = repo.config.parity;
    let (d, p) = (config.data_shards as usize, config.parity_shards as usize);
    if members.len() > d {
        return Ok(None);
    }
    let usable = |file: &str| !used_parity.contains(file) && orphans.iter().any(|(n, _)| n == file);
    // The shard size is the size of the surviving parity files.
    let hinted: Vec<&(String, u64)> = orphans
        .iter()
        .filter(|(n, _)| hint.parity.contains(n) && usable(n))
        .collect();
    let Some(shard_size) = hinted
        .first()
        .map(|(_, s)| *s)
        .or(hint.shard_size)
        .filter(|s| (1..=parity::MAX_SHARD_SIZE).contains(s))
    else {
        return Ok(None);
    };
    // Parity slots: the hint's order; with one parity shard, any orphan of the right size.
    let mut slot_choices: Vec<Vec<Option<String>>> = Vec::new();
    let hinted_slots: Vec<Option<String>> = (0..p)
        .map(|k| hint.parity.get(k).filter(|f| usable(f)).cloned())
        .collect();
    if hinted_slots.iter().any(Option::is_some) {
        slot_choices.push(hinted_slots);
    }
    if p == 1 {
        for (n, size) in orphans {
            if *size == shard_size && usable(n) && !hint.parity.contains(n) {
                slot_choices.push(vec![Some(n.clone())]);
            }
        }
    }
    // Member choices: (id, size) options per member.
    let options: Vec<Vec<(String, u64)>> = members
        .iter()
        .zip(&hint.members)
        .map(|(opts, (_, hinted_size))| {
            let mut out = Vec::new();
            for (id, state) in opts {
                let sizes = match state {
                    PackState::Intact(size) => vec![*size],
                    _ => {
                        let indexed = hex::decode(id)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .and_then(|k| pack_sizes.get(&k).copied());
                        let mut s: Vec<u64> = [indexed, *hinted_size, Some(shard_size)]
                            .into_iter()
                            .flatten()
                            .collect();
                        s.dedup();
                        s
                    }
                };
                for size in sizes.into_iter().filter(|s| (1..=shard_size).contains(s)) {
                    if !out.contains(&(id.clone(), size)) {
                        out.push((id.clone(), size));
                    }
                }
            }
            out
        })
        .collect();
    let mut tries = 0;
    let mut combo = vec![0usize; options.len()];
    if options.iter().any(Vec::is_empty) {
        return Ok(None);
    }
    loop {
        for slots in &slot_choices {
            if tries == MAX_TRIES {
                return Ok(None);
            }
            let picked: Vec<(String, u64)> = combo.iter().zip(&options).map(|(&i, o)| o[i].clone()).collect();
            let group = GroupManifest {
                version: 1,
                id: random_hex(16),
                data_shards: d as u32,
                parity_shards: p as u32,
                shard_size,
                members: picked
                    .iter()
                    .map(|(id, size)| Member {
                        pack: id.clone(),
                        size: *size,
                        sha256: id.clone(),
                    })
                    .collect(),
                // Unknown slots name a file that does not exist: read as damaged parity.
                parity: slots
                    .iter()
                    .map(|f| {
                        let name = f.clone().unwrap_or_else(|| format!("{}.par", "0".repeat(64)));
                        ParityFile {
                            sha256: name.trim_end_matches(".par").to_string(),
                            file: name,
                            size: shard_size,
                        }
                    })
                    .collect(),
            };
            if group.validate(&group.file_name()).is_err() {
                continue;
            }
            tries += 1;
            let health = parity::group_health(repo, &group);
            if let Ok(rebuilt) = parity::rebuild_members(repo, &group, &health) {
                if parity::group_health(repo, &group).damaged_members().is_empty() {
                    parity::save_group(repo, &group)?;
                    return Ok(Some((group, rebuilt.len() as u64)));
                }
            }
        }
        // Next combination of member options (odometer).
        let mut i = 0;
        loop {
            if i == combo.len() {
                return Ok(None);
            }
            combo[i] += 1;
            if combo[i] < options[i].len() {
                break;
            }
            combo[i] = 0;
            i += 1;
        }
    }
}
