//! Faults from the hardening campaign: lost packs healed by re-ingest,
//! symlinked packs, stray files, missing directories, a lost config and
//! verify's skipped checks. (A full disk is tested from Node, which mounts a tmpfs.)

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::Level;
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::restore::{restore_chunks, select_item};
use containerarchive_core::{InitOptions, Manifest, Repository};

mod common;
use common::{check, data, ingest_bytes, small_options};

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ca-hardening-{tag}-{}",
        containerarchive_core::fsutil::random_hex(6)
    ))
}

fn init(dir: &Path) -> Repository {
    let options = small_options(None);
    Repository::init(dir, &options).unwrap()
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

/// The pack that holds the first chunk of a snapshot.
fn pack_of_first_chunk(repo: &Repository, m: &Manifest) -> String {
    let id = m.items[0].chunk_ids().unwrap()[0];
    let index = repo.index();
    hex::encode(index.pack(index.get(&id).unwrap().pack).id)
}

fn heal_by_reingest(also_parity: bool) {
    let dir = scratch("heal");
    let repo = init(&dir);
    let bytes = data(11, 600_000);
    let old = ingest_bytes(&repo, &bytes);
    let victim = pack_of_first_chunk(&repo, &old);
    fs::remove_file(dir.join(format!("packs/data/{victim}.pack"))).unwrap();
    if also_parity {
        let (groups, _) = containerarchive_core::parity::load_groups(&repo).unwrap();
        let group = groups
            .iter()
            .find(|g| g.members.iter().any(|m| m.pack == victim))
            .unwrap();
        for p in &group.parity {
            fs::remove_file(dir.join("packs/parity").join(&p.file)).unwrap();
        }
    }

    // The same handle (whose index still lists the lost pack) and a fresh one both heal.
    let healed = ingest_bytes(&repo, &bytes);
    assert!(healed.new_chunks > 0, "the lost chunks are stored anew: {healed:?}");
    assert_eq!(restored(&repo, &healed.id).unwrap(), bytes);
    let reopened = Repository::open(&dir, None).unwrap();
    let again = ingest_bytes(&reopened, &bytes);
    assert_eq!(again.new_chunks, 0, "the healed copies are deduplicated against");
    for id in [&old.id, &healed.id, &again.id] {
        assert_eq!(
            restored(&reopened, id).unwrap(),
            bytes,
            "snapshot {id} restores after healing"
        );
    }

    // verify still names the lost pack (and its lost parity), but no snapshot. Packs
    // are deterministic: the healing ingest may have written the lost pack again.
    let report = check(&reopened, Level::Standard);
    if !dir.join(format!("packs/data/{victim}.pack")).exists() {
        assert!(report
            .errors
            .iter()
            .any(|e| e.kind == "missing-pack" && e.pack.as_deref() == Some(victim.as_str())));
    }
    if also_parity {
        assert!(report.errors.iter().any(|e| e.kind == "parity"), "{:#?}", report.errors);
    }
    for e in &report.errors {
        assert!(matches!(e.kind, "missing-pack" | "parity"), "{e:?}");
        assert!(e.snapshot.is_none(), "{e:?}");
    }
    // repair (and prune) tidy the index; everything restores and verifies.
    let r = repair(&reopened, Duration::ZERO).unwrap();
    assert!(r.unrecoverable.iter().all(|u| u.snapshots.is_empty()), "{r:#?}");
    let retention = Retention {
        keep_last: Some(10),
        ..Default::default()
    };
    prune(&reopened, &retention, false, &|_| {}, Duration::ZERO).unwrap();
    let full = check(&reopened, Level::Full);
    if also_parity {
        // The lost pack's group keeps naming what it lost (verify never pretends health),
        // but nothing a snapshot needs is missing.
        assert!(
            full.errors.iter().all(|e| e.kind == "parity" && e.snapshot.is_none()),
            "{:#?}",
            full.errors
        );
    } else {
        assert!(full.ok, "{:#?}", full.errors);
    }
    for id in [&old.id, &healed.id, &again.id] {
        assert_eq!(restored(&reopened, id).unwrap(), bytes);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reingest_heals_a_deleted_pack() {
    heal_by_reingest(false);
}

#[test]
fn reingest_heals_a_deleted_pack_and_its_parity() {
    heal_by_reingest(true);
}

#[cfg(unix)]
#[test]
fn a_symlinked_pack_is_followed_everywhere() {
    let dir = scratch("symlink");
    let elsewhere = scratch("symlink-target");
    fs::create_dir_all(&elsewhere).unwrap();
    let repo = init(&dir);
    let a = data(21, 300_000);
    let b = data(22, 300_000);
    let ma = ingest_bytes(&repo, &a);
    let mb = ingest_bytes(&repo, &b);
    let pack = pack_of_first_chunk(&repo, &ma);
    let path = dir.join(format!("packs/data/{pack}.pack"));
    let target = elsewhere.join(format!("{pack}.pack"));
    fs::copy(&path, &target).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();

    let repo = Repository::open(&dir, None).unwrap();
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    let r = repair(&repo, Duration::ZERO).unwrap();
    assert!(
        !r.index_rebuilt && r.packs_repaired == 0 && r.errors.is_empty(),
        "{r:#?}"
    );
    assert!(r.unrecoverable.is_empty() && r.quarantined.is_empty(), "{r:#?}");
    assert!(
        fs::symlink_metadata(&path).unwrap().file_type().is_symlink(),
        "the link is left as it is"
    );
    assert_eq!(restored(&repo, &ma.id).unwrap(), a);
    assert_eq!(restored(&repo, &mb.id).unwrap(), b);
    assert!(check(&repo, Level::Full).ok);

    // A dangling link is a missing pack, which repair rebuilds from parity.
    fs::remove_file(&target).unwrap();
    let quick = check(&repo, Level::Quick);
    assert!(
        quick.errors.iter().any(|e| e.kind == "missing-pack"),
        "{:#?}",
        quick.errors
    );
    let r = repair(&repo, Duration::ZERO).unwrap();
    assert!(r.packs_repaired >= 1, "{r:#?}");
    assert_eq!(restored(&repo, &ma.id).unwrap(), a);
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&elsewhere).unwrap();
}

#[test]
fn repair_quarantines_stray_pack_named_files_and_goes_on() {
    use sha2::{Digest, Sha256};
    let dir = scratch("stray");
    let repo = init(&dir);
    let bytes = data(31, 400_000);
    let m = ingest_bytes(&repo, &bytes);
    let data_dir = dir.join("packs/data");
    // Empty, named by its hash; garbage named by its hash; garbage under another name.
    let garbage = b"not a pack at all".to_vec();
    let strays = [
        (format!("{}.pack", hex::encode(Sha256::digest(b""))), Vec::new()),
        (
            format!("{}.pack", hex::encode(Sha256::digest(&garbage))),
            garbage.clone(),
        ),
        (format!("{}.pack", "ab".repeat(32)), garbage),
    ];
    for (name, content) in &strays {
        fs::write(data_dir.join(name), content).unwrap();
    }
    // ...and a real fault repair must still fix: a lost .idx.
    let pack = pack_of_first_chunk(&repo, &m);
    fs::remove_file(data_dir.join(format!("{pack}.idx"))).unwrap();

    let r = repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(r.quarantined.len(), 3, "{r:#?}");
    for (name, content) in &strays {
        assert!(!data_dir.join(name).exists());
        let q = r
            .quarantined
            .iter()
            .find(|q| q.file == format!("packs/data/{name}"))
            .unwrap();
        assert_eq!(
            &fs::read(dir.join(&q.moved_to)).unwrap(),
            content,
            "kept for inspection"
        );
    }
    assert!(data_dir.join(format!("{pack}.idx")).exists(), "repair went on");
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    // A second stray of the same name does not overwrite the first one's quarantine.
    fs::write(data_dir.join(&strays[0].0), b"").unwrap();
    let r = repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(
        r.quarantined[0].moved_to,
        format!("packs/data/{}.1.quarantined", strays[0].0)
    );
    assert_eq!(restored(&repo, &m.id).unwrap(), bytes);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_layout_directories_are_recreated() {
    for lost in ["locks", "index", "snapshots", "packs/parity", "keys"] {
        let dir = scratch("layout");
        let repo = init(&dir);
        let bytes = data(41, 200_000);
        let before = if lost == "snapshots" {
            None
        } else {
            Some(ingest_bytes(&repo, &bytes))
        };
        drop(repo);
        fs::remove_dir_all(dir.join(lost)).unwrap();
        let repo = Repository::open(&dir, None).unwrap_or_else(|e| panic!("open without {lost}/: {e}"));
        assert!(dir.join(lost).is_dir(), "{lost}/ is recreated");
        repair(&repo, Duration::ZERO).unwrap_or_else(|e| panic!("repair without {lost}/: {e}"));
        if let Some(m) = before {
            assert_eq!(restored(&repo, &m.id).unwrap(), bytes, "without {lost}/");
        }
        let after = ingest_bytes(&repo, &data(42, 100_000));
        assert_eq!(restored(&repo, &after.id).unwrap(), data(42, 100_000));
        let report = check(&repo, Level::Full);
        assert!(report.ok, "without {lost}/: {:#?}", report.errors);
        // Dropped while the repository is open: repair recreates it too.
        fs::remove_dir_all(dir.join("locks")).unwrap();
        repair(&repo, Duration::ZERO).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_repository_without_any_config_gets_one_true_message() {
    let dir = scratch("noconfig");
    let repo = init(&dir);
    ingest_bytes(&repo, &data(51, 100_000));
    drop(repo);
    fs::remove_file(dir.join("config.json")).unwrap();
    fs::remove_file(dir.join("packs/parity/config.json")).unwrap();
    let opened = Repository::open(&dir, None).err().unwrap();
    let inited = Repository::init(&dir, &InitOptions::default()).err().unwrap();
    assert_eq!(opened.code(), "ERR_CORRUPT");
    assert_eq!(inited.code(), "ERR_CORRUPT");
    assert_eq!(opened.to_string(), inited.to_string());
    let message = opened.to_string();
    assert!(message.contains("config.json is missing and its copy"), "{message}");
    assert!(message.contains("backup"), "{message}");
    assert!(!message.contains("create one with"), "{message}");
    assert!(!message.contains("repair()"), "{message}");
    assert!(
        dir.join("snapshots").read_dir().unwrap().next().is_some(),
        "init touched nothing"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_says_which_checks_a_live_lock_made_it_skip() {
    let dir = scratch("skipped");
    let repo = init(&dir);
    ingest_bytes(&repo, &data(61, 100_000));
    assert!(check(&repo, Level::Quick).skipped.is_empty());
    let other =
        containerarchive_core::lock::acquire(&containerarchive_core::storage::local(&dir), false, Duration::ZERO)
            .unwrap();
    let report = check(&repo, Level::Quick);
    let checks: Vec<&str> = report.skipped.iter().map(|s| s.check).collect();
    assert_eq!(checks, ["unindexed-pack", "parity-coverage"]);
    assert!(report.skipped.iter().all(|s| s.reason.contains("lock")));
    drop(other);
    assert!(check(&repo, Level::Quick).skipped.is_empty());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn repair_removes_a_killed_writers_lock_tmp_file_and_locks_still_work() {
    // A process killed while writing its lock record leaves `locks/.tmp-*`.
    let dir = scratch("lock-tmp");
    let repo = init(&dir);
    let leftover = dir.join("locks/.tmp-0123456789abcdef-0123456789abcdef0123456789abcdef.json");
    fs::write(&leftover, b"{\"id\":").unwrap();
    repair(&repo, Duration::ZERO).unwrap();
    assert!(!leftover.exists(), "repair removes the half-written lock record");
    assert_eq!(
        fs::read_dir(dir.join("locks")).unwrap().count(),
        0,
        "and leaves no lock behind"
    );
    ingest_bytes(&repo, &data(7, 100_000));
    let _ = fs::remove_dir_all(&dir);
}
