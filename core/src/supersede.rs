//! Superseded parity groups (FORMAT.md, Parity: "Several writers").
//!
//! On object storage a group is never extended in place: extending it writes
//! a new version under a fresh id, and two writers that extend the same group
//! at once leave two versions. Every version is a valid group, so a pack may
//! be a member of several. A group is *superseded* when another group with
//! the same shard counts has all of its members and more, or the same members
//! and a smaller id. Only an exclusive operation (prune, repair) removes a
//! superseded group, and only when a superset that is kept is intact: then
//! the superset protects everything the removed group did.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::parity::{self, parity_key, GroupManifest};
use crate::repo::Repository;

/// For each group, the groups that supersede it and are themselves kept
/// (superseded by none); empty for a group that is kept. The relation is a
/// strict order, so every superseded group has at least one kept superset.
pub fn supersessions(groups: &[GroupManifest]) -> Vec<Vec<usize>> {
    let sets: Vec<HashSet<&str>> = groups
        .iter()
        .map(|g| g.members.iter().map(|m| m.pack.as_str()).collect())
        .collect();
    // A superset holds every member, the first one included: only groups
    // sharing that pack are candidates, so this stays near-linear.
    let mut by_pack: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        for m in &g.members {
            by_pack.entry(m.pack.as_str()).or_default().push(i);
        }
    }
    let beats = |y: usize, x: usize| {
        let (gx, gy) = (&groups[x], &groups[y]);
        y != x
            && gx.data_shards == gy.data_shards
            && gx.parity_shards == gy.parity_shards
            && sets[x].is_subset(&sets[y])
            && (sets[y].len() > sets[x].len() || gy.id < gx.id)
    };
    let supersets: Vec<Vec<usize>> = groups
        .iter()
        .enumerate()
        .map(|(x, g)| match g.members.first() {
            Some(m) => by_pack[m.pack.as_str()]
                .iter()
                .copied()
                .filter(|&y| beats(y, x))
                .collect(),
            None => Vec::new(),
        })
        .collect();
    let kept: Vec<bool> = supersets.iter().map(Vec::is_empty).collect();
    supersets
        .into_iter()
        .map(|s| s.into_iter().filter(|&y| kept[y]).collect())
        .collect()
}

/// The ids of the superseded groups.
pub fn superseded_ids(groups: &[GroupManifest]) -> HashSet<String> {
    supersessions(groups)
        .iter()
        .zip(groups)
        .filter(|(s, _)| !s.is_empty())
        .map(|(_, g)| g.id.clone())
        .collect()
}

/// Whether the group agrees with config.json and every member and parity
/// file matches its size and hash.
fn intact(repo: &Repository, group: &GroupManifest) -> bool {
    if parity::disk_disagreement(repo, group, &|_, _, _, _| true).is_some() {
        return false;
    }
    let health = parity::group_health(repo, group);
    health.members.iter().chain(&health.parity).all(Option::is_none)
}

/// Deletes every superseded group that has an intact kept superset: its
/// manifest, then its parity files that no remaining group lists and that are
/// not in `keep_parity`. Removes them from `groups`; returns how many.
/// The caller holds the exclusive repository lock and the parity lock.
pub fn remove_superseded(
    repo: &Repository,
    groups: &mut Vec<GroupManifest>,
    keep_parity: &HashSet<String>,
) -> Result<usize> {
    let supersets = supersessions(groups);
    // Each superset is hashed at most once, and only when something needs it.
    let mut checked: HashMap<usize, bool> = HashMap::new();
    let mut remove = vec![false; groups.len()];
    for (x, witnesses) in supersets.iter().enumerate() {
        remove[x] = witnesses
            .iter()
            .any(|&y| *checked.entry(y).or_insert_with(|| intact(repo, &groups[y])));
    }
    let mut removed = Vec::new();
    let mut flags = remove.into_iter();
    groups.retain_mut(|g| {
        let go = flags.next().unwrap_or(false);
        if go {
            removed.push(g.clone());
        }
        !go
    });
    let still_used: HashSet<&str> = groups
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.as_str()))
        .chain(keep_parity.iter().map(String::as_str))
        .collect();
    let storage = repo.storage();
    for g in &removed {
        // Manifest first: a crash then leaves parity files no manifest lists,
        // which repair deletes, and never a manifest without its parity.
        storage.delete(&parity_key(&g.file_name()))?;
        for p in g.parity.iter().filter(|p| !still_used.contains(p.file.as_str())) {
            storage.delete(&parity_key(&p.file))?;
        }
    }
    Ok(removed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{Member, GROUP_VERSION};

    fn group(id: &str, members: &[&str]) -> GroupManifest {
        GroupManifest {
            version: GROUP_VERSION,
            id: id.repeat(32),
            data_shards: 4,
            parity_shards: 1,
            shard_size: 1,
            members: members
                .iter()
                .map(|m| Member {
                    pack: m.repeat(64),
                    size: 1,
                    sha256: m.repeat(64),
                })
                .collect(),
            parity: Vec::new(),
        }
    }

    #[test]
    fn a_subset_is_superseded_by_every_kept_superset() {
        // 1 ⊂ 2 ⊂ 3, 1 ⊂ 4; 5 overlaps 3 without being a subset.
        let groups = vec![
            group("1", &["a"]),
            group("2", &["a", "b"]),
            group("3", &["a", "b", "c"]),
            group("4", &["a", "d"]),
            group("5", &["c", "e"]),
        ];
        let s = supersessions(&groups);
        assert_eq!(s, vec![vec![2, 3], vec![2], vec![], vec![], vec![]]);
    }

    #[test]
    fn of_equal_groups_the_smallest_id_is_kept() {
        let groups = vec![
            group("b", &["a", "c"]),
            group("a", &["c", "a"]),
            group("c", &["a", "c"]),
        ];
        assert_eq!(supersessions(&groups), vec![vec![1], vec![], vec![1]]);
    }

    #[test]
    fn other_shard_counts_never_supersede() {
        let mut big = group("2", &["a", "b"]);
        big.parity_shards = 2;
        let groups = vec![group("1", &["a"]), big];
        assert!(supersessions(&groups).iter().all(Vec::is_empty));
    }
}
