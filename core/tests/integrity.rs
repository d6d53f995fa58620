//! Parity, verify, repair and reindex against real damage, without Node.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::Level;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::repair::{reindex, repair};
use containerarchive_core::restore::{restore_chunks, select_item};
use containerarchive_core::{InitOptions, Repository};

mod common;
use common::{check, data, ingest_bytes, small_options};

struct Fixture {
    dir: PathBuf,
    repo: Repository,
    snapshots: Vec<(String, Vec<u8>)>,
}

fn fixture(passphrase: Option<&str>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ca-integrity-{}", containerarchive_core::fsutil::random_hex(6)));
    let options = small_options(passphrase);
    let repo = Repository::init(&dir, &options).unwrap();
    let mut snapshots = Vec::new();
    for seed in 1..=3 {
        let bytes = data(seed, 600_000);
        let item = IngestItem {
            name: "data".into(),
            item_type: "file".into(),
            size_hint: None,
            reader: &bytes[..],
        };
        let m = ingest(
            &repo,
            vec![item],
            &IngestOptions::default(),
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        snapshots.push((m.id, bytes));
    }
    Fixture { dir, repo, snapshots }
}

fn restored(repo: &Repository, id: &str) -> containerarchive_core::Result<Vec<u8>> {
    let manifest = repo.load_snapshot(id)?;
    let ids = select_item(&manifest, None)?.chunk_ids()?;
    let mut out = Vec::new();
    restore_chunks(
        repo,
        &ids,
        &mut |d| Ok(out.extend_from_slice(&d)),
        &AtomicBool::new(false),
    )?;
    Ok(out)
}

fn packs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("packs/data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    v.sort();
    v
}

fn assert_healthy(f: &Fixture) {
    let report = check(&f.repo, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    for (id, bytes) in &f.snapshots {
        assert_eq!(&restored(&f.repo, id).unwrap(), bytes, "snapshot {id} restores");
    }
}

#[test]
fn a_fresh_repository_verifies_at_every_level() {
    let f = fixture(None);
    for level in [Level::Quick, Level::Standard, Level::Full] {
        let r = check(&f.repo, level);
        assert!(r.ok, "{level:?}: {:#?}", r.errors);
        assert!(r.checked.packs > 4 && r.checked.chunks > 0 && r.checked.snapshots == 3);
    }
    assert!(
        fs::read_dir(f.dir.join("packs/parity")).unwrap().count() > 2,
        "parity was written"
    );
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn bit_rot_is_found_by_standard_and_rebuilt_from_parity() {
    for passphrase in [None, Some("pw")] {
        let f = fixture(passphrase);
        let victim = packs(&f.dir)[2].clone();
        let mut bytes = fs::read(&victim).unwrap();
        bytes[100] ^= 0x40;
        fs::write(&victim, &bytes).unwrap();
        assert!(check(&f.repo, Level::Quick).ok, "quick reads no pack bodies");
        let standard = check(&f.repo, Level::Standard);
        assert!(!standard.ok);
        let name = victim.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            standard
                .errors
                .iter()
                .any(|e| e.kind == "pack" && e.error.contains(&name)),
            "{:#?}",
            standard.errors
        );
        let report = repair(&f.repo, Duration::ZERO).unwrap();
        assert_eq!(report.packs_repaired, 1, "{report:#?}");
        assert!(report.unrecoverable.is_empty(), "{report:#?}");
        assert_healthy(&f);
        fs::remove_dir_all(&f.dir).unwrap();
    }
}

#[test]
fn deleted_and_truncated_packs_are_rebuilt() {
    let f = fixture(None);
    // One victim in each of two groups: a group with one parity shard rebuilds one pack.
    let (groups, _) = containerarchive_core::parity::load_groups(&f.repo).unwrap();
    let victim = |g: usize| f.dir.join(format!("packs/data/{}.pack", groups[g].members[0].pack));
    fs::remove_file(victim(0)).unwrap();
    let truncated = &victim(1);
    let bytes = fs::read(truncated).unwrap();
    fs::write(truncated, &bytes[..bytes.len() - 100]).unwrap();
    let quick = check(&f.repo, Level::Quick);
    assert!(quick.errors.iter().any(|e| e.kind == "missing-pack"));
    assert!(quick.errors.iter().any(|e| e.kind == "pack-size"));
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report.packs_repaired >= 2, "{report:#?}");
    assert_healthy(&f);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn two_lost_packs_in_one_group_are_named_not_hidden() {
    let f = fixture(None);
    let (groups, _) = containerarchive_core::parity::load_groups(&f.repo).unwrap();
    let group = groups.iter().find(|g| g.members.len() >= 2).unwrap();
    for m in &group.members[..2] {
        fs::remove_file(f.dir.join(format!("packs/data/{}.pack", m.pack))).unwrap();
    }
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    let named: Vec<&str> = report.unrecoverable.iter().filter_map(|u| u.pack.as_deref()).collect();
    for m in &group.members[..2] {
        assert!(named.contains(&m.pack.as_str()), "{report:#?}");
    }
    assert!(report.unrecoverable.iter().any(|u| !u.snapshots.is_empty()));
    assert!(!check(&f.repo, Level::Quick).ok, "verify must not pretend health");
    let lost: Vec<&String> = report.unrecoverable.iter().flat_map(|u| &u.snapshots).collect();
    for (id, bytes) in &f.snapshots {
        if !lost.contains(&id) {
            assert_eq!(&restored(&f.repo, id).unwrap(), bytes);
        }
    }
    // Backing the lost data up again must store it again, not dedup against the lost packs.
    let (lost_id, lost_bytes) = f.snapshots.iter().find(|(id, _)| lost.contains(&id)).unwrap();
    assert_eq!(restored(&f.repo, lost_id).unwrap_err().code(), "ERR_CORRUPT");
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: &lost_bytes[..],
    };
    let again = ingest(
        &f.repo,
        vec![item],
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(again.new_chunks > 0);
    assert_eq!(&restored(&f.repo, &again.id).unwrap(), lost_bytes);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn lost_index_idx_and_parity_are_rebuilt() {
    let f = fixture(Some("pw"));
    fs::remove_dir_all(f.dir.join("index")).unwrap();
    fs::create_dir(f.dir.join("index")).unwrap();
    fs::remove_file(packs(&f.dir)[1].with_extension("idx")).unwrap();
    let par = fs::read_dir(f.dir.join("packs/parity"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "par"))
        .unwrap();
    let mut bytes = fs::read(&par).unwrap();
    bytes[10] ^= 1;
    fs::write(&par, bytes).unwrap();
    let quick = check(&f.repo, Level::Quick);
    assert!(quick.errors.iter().any(|e| e.kind == "missing-chunk"));
    assert!(quick.errors.iter().any(|e| e.kind == "missing-idx"));
    assert!(check(&f.repo, Level::Standard)
        .errors
        .iter()
        .any(|e| e.kind == "parity"));
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report.index_rebuilt && report.parity_rewritten >= 1, "{report:#?}");
    assert_healthy(&f);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn reindex_rebuilds_from_idx_and_headers() {
    let f = fixture(None);
    fs::remove_dir_all(f.dir.join("index")).unwrap();
    fs::create_dir(f.dir.join("index")).unwrap();
    fs::remove_file(packs(&f.dir)[0].with_extension("idx")).unwrap();
    let report = reindex(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(report.packs as usize, packs(&f.dir).len());
    assert_healthy(&f);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn a_damaged_config_opens_from_its_copy_and_is_repaired() {
    let f = fixture(None);
    fs::write(f.dir.join("config.json"), b"{garbage").unwrap();
    let repo = Repository::open(&f.dir, None).unwrap();
    assert!(check(&repo, Level::Quick).errors.iter().any(|e| e.kind == "config"));
    repair(&repo, Duration::ZERO).unwrap();
    assert!(check(&Repository::open(&f.dir, None).unwrap(), Level::Full).ok);
    fs::write(f.dir.join("config.json"), b"{garbage").unwrap();
    fs::write(f.dir.join("packs/parity/config.json"), b"{garbage").unwrap();
    assert_eq!(Repository::open(&f.dir, None).err().unwrap().code(), "ERR_CORRUPT");
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn damaged_parity_is_never_extended_so_the_group_stays_repairable() {
    let f = fixture(None);
    // Pack boundaries depend on worker timing: add one-pack snapshots until a group is open.
    let open = (0..5)
        .find_map(|i| {
            let (groups, _) = containerarchive_core::parity::load_groups(&f.repo).unwrap();
            let open = groups
                .into_iter()
                .find(|g| g.members.len() < g.data_shards as usize && !g.members.is_empty());
            if open.is_none() {
                ingest_bytes(&f.repo, &data(300 + i, 40_000));
            }
            open
        })
        .expect("an open group");
    let par = f.dir.join("packs/parity").join(&open.parity[0].file);
    let mut bytes = fs::read(&par).unwrap();
    bytes[7] ^= 0x10;
    fs::write(&par, bytes).unwrap();
    ingest_bytes(&f.repo, &data(77, 200_000));
    let standard = check(&f.repo, Level::Standard);
    assert!(
        standard.errors.iter().any(|e| e.kind == "parity"),
        "the damage stays visible: {:#?}",
        standard.errors
    );
    repair(&f.repo, Duration::ZERO).unwrap();
    fs::remove_file(f.dir.join(format!("packs/data/{}.pack", open.members[0].pack))).unwrap();
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(report.packs_repaired, 1, "{report:#?}");
    assert_healthy(&f);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn prune_refuses_to_regroup_a_damaged_kept_pack_and_changes_nothing() {
    use containerarchive_core::prune::{prune, Retention};
    let f = fixture(None);
    // Add one-pack snapshots until the newest one's pack shares a group with
    // packs that keepLast 1 drops (pack boundaries depend on worker timing).
    let mut found = None;
    for i in 0..5 {
        let last = data(400 + i, 40_000);
        let last_id = ingest_bytes(&f.repo, &last).id;
        let kept = f.repo.load_snapshot(&last_id).unwrap();
        let index = containerarchive_core::check::read_disk_index(&f.repo, None).unwrap();
        let kept_packs: std::collections::HashSet<String> = kept.items[0]
            .chunk_ids()
            .unwrap()
            .iter()
            .map(|c| hex::encode(index.chunks[c].0))
            .collect();
        let (groups, _) = containerarchive_core::parity::load_groups(&f.repo).unwrap();
        let mixed = groups.into_iter().find(|g| {
            g.members.iter().any(|m| kept_packs.contains(&m.pack))
                && g.members.iter().any(|m| !kept_packs.contains(&m.pack))
        });
        if let Some(group) = mixed {
            found = Some((last_id, last, kept_packs, group));
            break;
        }
    }
    let (last_id, last, kept_packs, group) = found.expect("a group mixing kept and dropped packs");
    let victim = group.members.iter().find(|m| kept_packs.contains(&m.pack)).unwrap();
    let path = f.dir.join(format!("packs/data/{}.pack", victim.pack));
    let mut bytes = fs::read(&path).unwrap();
    bytes[50] ^= 1;
    fs::write(&path, bytes).unwrap();
    let policy = Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    let before = f.repo.list_snapshots().unwrap().len();
    let err = prune(&f.repo, &policy, false, &|_| {}, Duration::ZERO).unwrap_err();
    assert_eq!(err.code(), "ERR_CORRUPT");
    assert_eq!(f.repo.list_snapshots().unwrap().len(), before, "nothing was removed");
    let fixed = repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(
        fixed.packs_repaired, 1,
        "the old parity still rebuilds the damaged pack: {fixed:#?}"
    );
    prune(&f.repo, &policy, false, &|_| {}, Duration::ZERO).unwrap();
    assert!(check(&f.repo, Level::Full).ok);
    assert_eq!(restored(&f.repo, &last_id).unwrap(), last);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn a_damaged_key_file_is_corrupt_not_a_wrong_passphrase_and_is_restored_from_its_copy() {
    let f = fixture(Some("pw"));
    let key = fs::read_dir(f.dir.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let original = fs::read_to_string(&key).unwrap();
    let damaged = original
        .replacen("\"salt\": \"", "\"salt\": \"f", 1)
        .replacen("\"salt\": \"ff", "\"salt\": \"0f", 1);
    assert_ne!(damaged, original);
    fs::write(&key, &damaged).unwrap();
    let repo = Repository::open(&f.dir, Some("pw")).expect("the copy unlocks it");
    assert!(check(&repo, Level::Quick).errors.iter().any(|e| e.kind == "key"));
    repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(fs::read_to_string(&key).unwrap(), original);
    assert!(check(&repo, Level::Quick).ok);
    assert_eq!(
        Repository::open(&f.dir, Some("wrong")).err().unwrap().code(),
        "ERR_WRONG_PASSPHRASE"
    );
    let copy = f
        .dir
        .join("packs/parity")
        .join(format!("key-{}", key.file_name().unwrap().to_string_lossy()));
    fs::write(&key, &damaged).unwrap();
    fs::write(&copy, &damaged).unwrap();
    assert_eq!(
        Repository::open(&f.dir, Some("pw")).err().unwrap().code(),
        "ERR_CORRUPT"
    );
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn init_never_overwrites_a_repository_that_lost_its_config() {
    let f = fixture(Some("pw"));
    fs::remove_file(f.dir.join("config.json")).unwrap();
    let options = InitOptions {
        passphrase: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(
        Repository::init(&f.dir, &options).err().unwrap().code(),
        "ERR_REPO_EXISTS"
    );
    let repo = Repository::open(&f.dir, Some("pw")).expect("opens from the config copy");
    assert!(check(&repo, Level::Quick).errors.iter().any(|e| e.kind == "config"));
    repair(&repo, Duration::ZERO).unwrap();
    assert!(check(&repo, Level::Full).ok);
    fs::remove_dir_all(&f.dir).unwrap();
}
