//! Parity across concurrent writers on object storage (FORMAT.md, Parity:
//! "Several writers"). Two writers that extend the same open group each write
//! a new version of it; both versions stay, every pack stays covered, readers
//! take a pack that is in several groups in their stride, and only prune and
//! repair remove the superseded version. Driven on a local directory that
//! presents itself as object storage, with the interleaving forced.

mod common;
#[path = "common/garage.rs"]
mod garage;
#[path = "common/objectlike.rs"]
mod objectlike;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{check, data, ingest_bytes, restored, small_options};
use containerarchive_core::check::Level;
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::parity::{group_health, load_groups, parity_intact, GroupManifest};
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::storage::s3::S3Storage;
use containerarchive_core::storage::Storage;
use containerarchive_core::{Manifest, Repository};
use objectlike::ObjectLike;

fn members(g: &GroupManifest) -> HashSet<String> {
    g.members.iter().map(|m| m.pack.clone()).collect()
}

fn groups(repo: &Repository) -> Vec<GroupManifest> {
    let (groups, damaged) = load_groups(repo).unwrap();
    assert!(damaged.is_empty(), "{damaged:?}");
    groups
}

fn ids(groups: &[GroupManifest]) -> HashSet<String> {
    groups.iter().map(|g| g.id.clone()).collect()
}

/// The ids of the groups an exclusive operation should keep: those whose
/// members are not a strict subset of another group's. That removes the base
/// group, and also a group a writer made of the other writer's pack: a writer
/// covers every indexed pack no group lists, and the other's may be indexed
/// before its version is written (the interleaving is the scheduler's).
fn maximal(groups: &[GroupManifest]) -> HashSet<String> {
    let sets: Vec<HashSet<String>> = groups.iter().map(members).collect();
    groups
        .iter()
        .zip(&sets)
        .filter(|(_, s)| !sets.iter().any(|t| s.len() < t.len() && s.is_subset(t)))
        .map(|(g, _)| g.id.clone())
        .collect()
}

/// Every indexed pack is a member of a group whose members and parity all match their hashes.
fn assert_every_pack_covered(s: &Arc<ObjectLike>) {
    assert_covered(s.clone());
}

fn assert_covered(s: Arc<dyn Storage>) {
    let repo = Repository::open_in(s, None).unwrap();
    let intact: Vec<GroupManifest> = groups(&repo)
        .into_iter()
        .filter(|g| {
            let h = group_health(&repo, g);
            h.members.iter().chain(&h.parity).all(Option::is_none)
        })
        .collect();
    let covered: HashSet<String> = intact.iter().flat_map(members).collect();
    let packs = repo.index().packs().to_vec();
    assert!(!packs.is_empty());
    for p in packs {
        assert!(
            covered.contains(&hex::encode(p.id)),
            "pack {} has no intact group",
            hex::encode(p.id)
        );
    }
}

/// Parity files in `packs/parity` that no group lists, and listed ones that are missing.
fn parity_mismatch(s: &dyn Storage, groups: &[GroupManifest]) -> (Vec<String>, Vec<String>) {
    let listed: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.parity.iter().map(|p| p.file.clone()))
        .collect();
    let present: HashSet<String> = s
        .list("packs/parity")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".par"))
        .collect();
    (
        present.difference(&listed).cloned().collect(),
        listed.difference(&present).cloned().collect(),
    )
}

struct Raced {
    storage: Arc<ObjectLike>,
    /// The open group both writers extended.
    base: GroupManifest,
    /// Its two new versions, one per writer.
    versions: Vec<GroupManifest>,
    /// (snapshot, bytes): the first ingest's, then each writer's.
    snapshots: Vec<(Manifest, Vec<u8>)>,
}

impl Drop for Raced {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.storage.root());
    }
}

impl Raced {
    fn repo(&self) -> Repository {
        Repository::open_in(self.storage.clone(), None).unwrap()
    }

    fn assert_restores(&self, repo: &Repository) {
        for (m, bytes) in &self.snapshots {
            assert!(
                restored(repo, &m.id) == *bytes,
                "snapshot {} restores byte-identical",
                m.id
            );
        }
    }
}

/// One ingest leaves an open group; then two writers (separate handles, as
/// two hosts) ingest at once, both loading the groups before either writes
/// one, and the index before either writes to it.
fn race(name: &str) -> Raced {
    race_with(name, false)
}

/// `race`; when `late`, writer `a` starts only once `b` waits to write its
/// group, so `a` finds `b`'s pack indexed and no group listing it, and covers
/// it too: in a group of its own when the base group has no room left for it.
fn race_with(name: &str, late: bool) -> Raced {
    let dir = std::env::temp_dir().join(format!("ca-parity-writers-{name}-{}", random_hex(6)));
    let storage = Arc::new(ObjectLike::new(&dir));
    let repo = Repository::init_in(storage.clone(), &small_options(None)).unwrap();
    let first = data(1, 130_000);
    let m0 = ingest_bytes(&repo, &first);
    let before = groups(&repo);
    assert_eq!(before.len(), 1);
    let base = before[0].clone();
    assert!(
        base.members.len() < base.data_shards as usize,
        "the group has room: {base:?}"
    );

    let (a, b) = (repo, Repository::open_in(storage.clone(), None).unwrap());
    let (bytes_a, bytes_b) = (data(2, 100_000), data(3, 100_000));
    storage.arm_gate(2);
    if !late {
        storage.arm_index_gate(2);
    }
    let (ma, mb) = std::thread::scope(|s| {
        let tb = s.spawn(|| ingest_bytes(&b, &bytes_b));
        if late {
            // Not a sleep: `b` is then held at the gate, its pack indexed.
            while storage.waiting() == 0 {
                std::thread::yield_now();
            }
        }
        let ta = s.spawn(|| ingest_bytes(&a, &bytes_a));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    storage.disarm_gate();

    let after = groups(&a);
    assert!(
        ids(&after).contains(&base.id),
        "the base group is never overwritten or deleted"
    );
    let versions: Vec<GroupManifest> = after
        .iter()
        .filter(|g| g.id != base.id && members(&base).is_subset(&members(g)))
        .cloned()
        .collect();
    assert_eq!(versions.len(), 2, "each writer extended the base group: {after:?}");
    let (va, vb) = (members(&versions[0]), members(&versions[1]));
    // A late writer may list the other's pack in its version too.
    assert!(
        late || (!va.is_subset(&vb) && !vb.is_subset(&va)),
        "both writers extended the base group itself, neither the other's version: {after:?}"
    );
    Raced {
        storage,
        base,
        versions,
        snapshots: vec![(m0, first), (ma, bytes_a), (mb, bytes_b)],
    }
}

#[test]
fn two_writers_extending_one_group_leave_every_pack_covered() {
    let raced = race("cover");
    assert_every_pack_covered(&raced.storage);
    let repo = raced.repo();
    // Overlapping groups are no error, at any level, and nothing is orphaned.
    for level in [Level::Quick, Level::Standard, Level::Full] {
        let report = check(&repo, level);
        assert!(report.ok, "{level:?}: {:?}", report.errors);
    }
    let all = groups(&repo);
    assert_eq!(parity_mismatch(&*raced.storage, &all), (vec![], vec![]));
    assert!(all.iter().all(|g| parity_intact(&repo, g)));
    raced.assert_restores(&repo);

    // A later ingest never extends the superseded base group: its members are
    // covered already, so that would only cover them once more.
    let later = data(4, 100_000);
    let m = ingest_bytes(&repo, &later);
    let known = ids(&all);
    let base = members(&raced.base);
    for g in groups(&repo).iter().filter(|g| !known.contains(&g.id)) {
        assert!(
            members(g).is_disjoint(&base) || raced.versions.iter().any(|v| members(v).is_subset(&members(g))),
            "{g:?} extends the superseded base group"
        );
    }
    assert!(restored(&repo, &m.id) == later);
    assert!(check(&repo, Level::Full).ok);
}

#[test]
fn repair_removes_the_superseded_group_and_nothing_else() {
    assert_repair_removes_only_superseded_groups(race("repair"));
}

#[test]
fn repair_removes_a_writers_cover_of_a_pack_the_other_covered_too() {
    let raced = race_with("repair-late", true);
    let all = groups(&raced.repo());
    assert!(
        maximal(&all).len() < all.len() - 1,
        "a redundant group beyond the base: {all:?}"
    );
    assert_repair_removes_only_superseded_groups(raced);
}

fn assert_repair_removes_only_superseded_groups(raced: Raced) {
    let repo = raced.repo();
    let expected = maximal(&groups(&repo));
    assert!(!expected.contains(&raced.base.id));
    let report = repair(&repo, Duration::ZERO).unwrap();
    assert!(
        report.errors.is_empty() && report.unrecoverable.is_empty(),
        "{report:?}"
    );
    let after = groups(&repo);
    assert_eq!(ids(&after), expected);
    assert_eq!(parity_mismatch(&*raced.storage, &after), (vec![], vec![]));
    assert_every_pack_covered(&raced.storage);
    assert!(check(&repo, Level::Full).ok);
    raced.assert_restores(&repo);
}

#[test]
fn prune_removes_the_superseded_group_then_regroups_overlapping_survivors() {
    let raced = race("prune");
    let repo = raced.repo();
    let expected = maximal(&groups(&repo));
    assert!(!expected.contains(&raced.base.id) && ids(&raced.versions).is_subset(&expected));
    let keep_all = Retention {
        keep_last: Some(10),
        group_by: Some(vec![]),
        ..Default::default()
    };
    prune(&repo, &keep_all, false, &|_| {}, Duration::ZERO).unwrap();
    let after = groups(&repo);
    assert_eq!(ids(&after), expected, "only superseded groups go");
    assert_eq!(parity_mismatch(&*raced.storage, &after), (vec![], vec![]));
    assert!(check(&repo, Level::Full).ok);

    // Dropping the first snapshot kills the base group's packs, which both
    // versions hold: the writers' packs (survivors of both) are covered once more.
    let dead = members(&raced.base);
    let keep_two = Retention {
        keep_last: Some(2),
        group_by: Some(vec![]),
        ..Default::default()
    };
    let pruned = prune(&repo, &keep_two, false, &|_| {}, Duration::ZERO).unwrap();
    assert_eq!(pruned.kept_snapshots.len(), 2);
    let after = groups(&repo);
    assert!(after.iter().all(|g| members(g).is_disjoint(&dead)), "{after:?}");
    assert!(after.iter().all(|g| !raced.versions.iter().any(|v| v.id == g.id)));
    assert_eq!(parity_mismatch(&*raced.storage, &after), (vec![], vec![]));
    assert_every_pack_covered(&raced.storage);
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    for (m, bytes) in &raced.snapshots[1..] {
        assert!(restored(&repo, &m.id) == *bytes);
    }
}

#[test]
fn a_deleted_pack_in_several_groups_is_rebuilt() {
    let raced = race("rebuild");
    let repo = raced.repo();
    let victim = raced.base.members[0].pack.clone();
    raced.storage.delete(&format!("packs/data/{victim}.pack")).unwrap();
    assert!(!check(&repo, Level::Standard).ok);
    let report = repair(&repo, Duration::ZERO).unwrap();
    assert!(report.packs_repaired >= 1, "{report:?}");
    assert!(
        report.errors.is_empty() && report.unrecoverable.is_empty(),
        "{report:?}"
    );
    let verified = check(&repo, Level::Full);
    assert!(verified.ok, "{:?}", verified.errors);
    raced.assert_restores(&repo);
}

#[test]
fn a_group_that_cannot_rebuild_alone_succeeds_after_an_overlapping_one_does() {
    let raced = race("retry");
    let repo = raced.repo();
    // Without the base group, the two versions are the only groups.
    repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(ids(&groups(&repo)), ids(&raced.versions));
    let mut versions = raced.versions.clone();
    versions.sort_by(|a, b| a.id.cmp(&b.id));
    let (first, second) = (&versions[0], &versions[1]);
    // Repair visits the first version first (groups load in name order): with
    // one parity shard it cannot rebuild two packs; the second version rebuilds
    // the shared one, and then the first can rebuild its own.
    let shared = raced.base.members[0].pack.clone();
    assert!(members(second).contains(&shared));
    let own = members(first)
        .difference(&members(second))
        .next()
        .cloned()
        .expect("the first version has a pack of its own");
    for pack in [&shared, &own] {
        raced.storage.delete(&format!("packs/data/{pack}.pack")).unwrap();
    }
    let report = repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(report.packs_repaired, 2, "{report:?}");
    assert!(
        report.errors.is_empty() && report.unrecoverable.is_empty(),
        "{report:?}"
    );
    let verified = check(&repo, Level::Full);
    assert!(verified.ok, "{:?}", verified.errors);
    raced.assert_restores(&repo);
}

#[test]
fn parity_that_vanishes_while_a_group_is_extended_starts_a_new_group() {
    let dir = std::env::temp_dir().join(format!("ca-parity-vanish-{}", random_hex(6)));
    let storage = Arc::new(ObjectLike::new(&dir));
    let repo = Repository::init_in(storage.clone(), &small_options(None)).unwrap();
    let first = data(1, 130_000);
    ingest_bytes(&repo, &first);
    let base = groups(&repo).remove(0);

    // As if an exclusive prune elsewhere removed the group's parity just after
    // this writer checked it: the ingest still succeeds.
    storage.vanish_parity_when_extended(true);
    let second = data(2, 100_000);
    let m = ingest_bytes(&repo, &second);
    storage.vanish_parity_when_extended(false);
    assert!(!storage.vanished().is_empty(), "the hook fired");

    let after = groups(&repo);
    assert_eq!(after.len(), 2, "{after:?}");
    let fresh = after.iter().find(|g| g.id != base.id).unwrap();
    assert!(
        members(fresh).is_disjoint(&members(&base)),
        "the additions start a group of their own"
    );
    assert!(parity_intact(&repo, fresh));
    // Repair recomputes the parity the old group lost.
    assert!(!check(&repo, Level::Standard).ok);
    let report = repair(&repo, Duration::ZERO).unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_every_pack_covered(&storage);
    assert!(check(&repo, Level::Full).ok);
    assert!(restored(&repo, &m.id) == second);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_handles_ingest_into_one_garage_bucket_at_once() {
    let Some(garage) = garage::Garage::start("two_handles_ingest_into_one_garage_bucket_at_once") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3: Arc<dyn Storage> = Arc::new(S3Storage::new(garage.s3_config("repos/parity"), rt.handle().clone()).unwrap());
    let repo = Repository::init_in(s3.clone(), &small_options(None)).unwrap();
    let first = data(1, 130_000);
    let mut snapshots = vec![(ingest_bytes(&repo, &first), first)];
    // Two handles, as two hosts: in each round both ingest at the same moment.
    let (a, b) = (
        Repository::open_in(s3.clone(), None).unwrap(),
        Repository::open_in(s3.clone(), None).unwrap(),
    );
    for round in 0..3u64 {
        let (bytes_a, bytes_b) = (data(10 + 2 * round, 150_000), data(11 + 2 * round, 150_000));
        let barrier = std::sync::Barrier::new(2);
        let (ma, mb) = std::thread::scope(|s| {
            let ta = s.spawn(|| {
                barrier.wait();
                ingest_bytes(&a, &bytes_a)
            });
            let tb = s.spawn(|| {
                barrier.wait();
                ingest_bytes(&b, &bytes_b)
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        snapshots.push((ma, bytes_a));
        snapshots.push((mb, bytes_b));
    }
    assert_covered(s3.clone());
    let repo = Repository::open_in(s3.clone(), None).unwrap();
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    for (m, bytes) in &snapshots {
        assert!(
            restored(&repo, &m.id) == *bytes,
            "snapshot {} restores byte-identical",
            m.id
        );
    }
    let all = groups(&repo);
    assert_eq!(parity_mismatch(&*s3, &all), (vec![], vec![]));

    // Prune keeping everything removes exactly the superseded versions.
    let superseded = containerarchive_core::supersede::superseded_ids(&all);
    let keep_all = Retention {
        keep_last: Some(100),
        group_by: Some(vec![]),
        ..Default::default()
    };
    prune(&repo, &keep_all, false, &|_| {}, Duration::ZERO).unwrap();
    let after = groups(&repo);
    let expected: HashSet<String> = ids(&all).difference(&superseded).cloned().collect();
    assert_eq!(ids(&after), expected);
    assert!(containerarchive_core::supersede::superseded_ids(&after).is_empty());
    assert_eq!(parity_mismatch(&*s3, &after), (vec![], vec![]));
    assert_covered(s3.clone());
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
}
