//! forget(ids): removes exactly the named snapshots, resolves every id
//! before removing anything, changes nothing in a dry run, and with `prune`
//! reclaims the data at once, as a later prune would.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::Level;
use containerarchive_core::forget::{forget, ForgetOptions, ForgetReport};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::lock;
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::restore::restore_item;
use containerarchive_core::stats::stats;
use containerarchive_core::{Manifest, Repository};

mod common;
use common::{check, data, small_options};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ca-forget-{name}-{}",
        containerarchive_core::fsutil::random_hex(6)
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn backup(repo: &Repository, bytes: &[u8], at: &str) -> Manifest {
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: bytes,
    };
    let options = IngestOptions {
        created_at: Some(at.into()),
        ..Default::default()
    };
    ingest(repo, vec![item], &options, &|_| {}, &AtomicBool::new(false)).unwrap()
}

fn restored(repo: &Repository, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = |d: Vec<u8>| {
        out.extend_from_slice(&d);
        Ok(())
    };
    restore_item(repo, id, None, &mut sink, &AtomicBool::new(false), Duration::ZERO).unwrap();
    out
}

/// Three snapshots, oldest first: A, B, and C, which shares A's first half.
fn setup(dir: &Path, passphrase: Option<&str>) -> (Repository, Vec<(Manifest, Vec<u8>)>) {
    let repo = Repository::init(dir, &small_options(passphrase)).unwrap();
    let a = data(1, 400_000);
    let b = data(2, 400_000);
    let c = [&a[..200_000], &data(3, 200_000)[..]].concat();
    let snaps = [a, b, c]
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            (
                backup(&repo, &bytes, &format!("2026-01-0{}T00:00:00.000Z", i + 1)),
                bytes,
            )
        })
        .collect();
    (repo, snaps)
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn run(repo: &Repository, specs: &[&str], dry_run: bool, prune: bool) -> containerarchive_core::Result<ForgetReport> {
    let options = ForgetOptions {
        dry_run,
        prune,
        lock_timeout: Duration::ZERO,
    };
    forget(repo, &ids(specs), &options, &|_| {})
}

/// Every file under `dir` with its bytes: a dry run must leave this unchanged.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            fs::copy(&p, &target).unwrap();
        }
    }
}

fn manifest_files(repo: &Repository, id: &str) -> (bool, bool) {
    (
        repo.snapshots_dir().join(id).exists(),
        repo.snapshot_copies_dir().join(id).exists(),
    )
}

#[test]
fn forget_removes_exactly_the_named_snapshots() {
    let dir = tempdir("exact");
    let (repo, snaps) = setup(&dir, Some("pw"));
    let (a, b, c) = (&snaps[0].0.id, &snaps[1].0.id, &snaps[2].0.id);
    let packs_before = tree(&repo.data_dir());
    // C before A, by prefix and in full, A twice: removed once each, oldest first.
    let report = run(&repo, &[&c[..8], a, &a[..12]], false, false).unwrap();
    assert_eq!(report.removed_snapshots, vec![a.clone(), c.clone()]);
    assert!(!report.dry_run && !report.pruned);
    assert_eq!(
        (report.removed_packs, report.repacked_packs, report.freed_bytes),
        (None, None, None)
    );
    for id in [a, c] {
        assert_eq!(
            manifest_files(&repo, id),
            (false, false),
            "both manifest files of {id} are gone"
        );
    }
    assert_eq!(manifest_files(&repo, b), (true, true));
    let listed: Vec<String> = repo.list_snapshots().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![b.clone()]);
    assert_eq!(
        restored(&repo, b),
        snaps[1].1,
        "the remaining snapshot restores byte for byte"
    );
    assert_eq!(
        tree(&repo.data_dir()),
        packs_before,
        "without prune, no pack is touched"
    );
    // The data is garbage now, for a later prune.
    let s = stats(&repo, Duration::ZERO).unwrap();
    assert!(s.unreferenced_chunks.count > 0, "{s:?}");
    assert!(check(&repo, Level::Full).ok);
    // Forgotten ids are unknown from now on.
    assert_eq!(
        run(&repo, &[a], false, false).unwrap_err().code(),
        "ERR_SNAPSHOT_NOT_FOUND"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn any_bad_id_rejects_before_anything_is_removed() {
    let dir = tempdir("reject");
    let (repo, snaps) = setup(&dir, None);
    let (a, b) = (&snaps[0].0.id, &snaps[1].0.id);
    let unknown = if a.starts_with("ffffffff") {
        "eeeeeeee"
    } else {
        "ffffffff"
    };
    let full_unknown = "0".repeat(64);
    // A twin sharing A's first 8 digits makes that prefix ambiguous.
    let mut twin = snaps[0].0.clone();
    twin.id = format!("{}{}", &a[..8], if a.ends_with('f') { "e" } else { "f" }.repeat(56));
    repo.write_snapshot(&twin).unwrap();
    let before = tree(&dir);
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec![b, unknown], "ERR_SNAPSHOT_NOT_FOUND", unknown),
        (vec![a, &full_unknown], "ERR_SNAPSHOT_NOT_FOUND", &full_unknown),
        (vec![b, &a[..8]], "ERR_INVALID_ARGUMENT", &twin.id),
        (vec![b, "latest"], "ERR_INVALID_ARGUMENT", "latest"),
        (vec![b, "abc"], "ERR_INVALID_ARGUMENT", "abc"),
        (vec![b, "../../config.json"], "ERR_INVALID_ARGUMENT", "config.json"),
        (vec![], "ERR_INVALID_ARGUMENT", "at least one"),
    ];
    for (specs, code, named) in cases {
        for prune in [false, true] {
            let err = run(&repo, &specs, false, prune).unwrap_err();
            assert_eq!(err.code(), code, "{specs:?}: {err}");
            assert!(err.to_string().contains(named), "{specs:?}: {err}");
            assert_eq!(tree(&dir), before, "{specs:?} changed nothing");
        }
    }
    for id in [a, b] {
        assert_eq!(manifest_files(&repo, id), (true, true));
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dry_run_changes_nothing_and_predicts_the_real_run() {
    let dir = tempdir("dry");
    let (repo, snaps) = setup(&dir, Some("pw"));
    let (a, b) = (&snaps[0].0.id, &snaps[1].0.id);
    let before = tree(&dir);
    let dry = run(&repo, &[a], true, false).unwrap();
    assert_eq!(tree(&dir), before);
    assert_eq!((dry.dry_run, dry.removed_snapshots.clone()), (true, vec![a.clone()]));
    let dry_prune = run(&repo, &[&b[..10], a], true, true).unwrap();
    assert_eq!(tree(&dir), before, "a dry run with prune changes nothing either");
    assert_eq!(dry_prune.removed_snapshots, vec![a.clone(), b.clone()]);
    assert!(
        dry_prune.pruned && dry_prune.removed_packs.unwrap() > 0,
        "{dry_prune:?}"
    );
    let real = run(&repo, &[&b[..10], a], false, true).unwrap();
    assert_eq!(real.removed_snapshots, dry_prune.removed_snapshots);
    assert_eq!(real.removed_packs, dry_prune.removed_packs);
    assert_eq!(real.repacked_packs, dry_prune.repacked_packs);
    let (dry_freed, real_freed) = (dry_prune.freed_bytes.unwrap(), real.freed_bytes.unwrap());
    assert!(
        (dry_freed - real_freed).abs() as f64 <= real_freed as f64 * 0.01,
        "dry {dry_freed} real {real_freed}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forget_with_prune_reclaims_what_a_later_prune_would() {
    // Two byte-identical repositories: one forgets with prune, one forgets, then prunes.
    let (dir1, dir2) = (tempdir("now"), tempdir("later"));
    let (now, snaps) = setup(&dir1, None);
    copy_tree(&dir1, &dir2);
    let later = Repository::open(&dir2, None).unwrap();
    let (a, b, c) = (&snaps[0].0.id, &snaps[1].0.id, &snaps[2].0.id);
    let before = stats(&now, Duration::ZERO).unwrap();

    let at_once = run(&now, &[a, b], false, true).unwrap();
    assert!(at_once.pruned && !at_once.dry_run);
    let after = stats(&now, Duration::ZERO).unwrap();
    assert_eq!(after.snapshots, 1);
    assert!(after.packs.bytes < before.packs.bytes, "{before:?} -> {after:?}");
    assert!(after.packs.files < before.packs.files);
    assert_eq!(
        at_once.freed_bytes.unwrap(),
        before.packs.bytes as i64 - after.packs.bytes as i64,
        "freedBytes is what left packs/data"
    );
    assert!(
        after.unreferenced_chunks.stored_bytes <= after.packs.bytes / 10,
        "at most maxUnused (10%) garbage stays: {after:?}"
    );
    assert!(check(&now, Level::Full).ok);
    assert_eq!(restored(&now, c), snaps[2].1);

    // The same in two steps: forget, then prune keeping everything that remains.
    let forgotten = run(&later, &[a, b], false, false).unwrap();
    assert_eq!(forgotten.removed_snapshots, at_once.removed_snapshots);
    let keep_all = Retention {
        keep_last: Some(1000),
        group_by: Some(vec![]),
        ..Default::default()
    };
    let pruned = prune(&later, &keep_all, false, &|_| {}, Duration::ZERO).unwrap();
    assert!(pruned.removed_snapshots.is_empty());
    assert_eq!(Some(pruned.removed_packs), at_once.removed_packs);
    assert_eq!(Some(pruned.repacked_packs), at_once.repacked_packs);
    assert_eq!(Some(pruned.freed_bytes), at_once.freed_bytes);
    assert_eq!(tree(&later.data_dir()), tree(&now.data_dir()), "the same packs remain");
    assert_eq!(stats(&later, Duration::ZERO).unwrap(), after);
    assert!(check(&later, Level::Full).ok);
    fs::remove_dir_all(&dir1).unwrap();
    fs::remove_dir_all(&dir2).unwrap();
}

#[test]
fn a_crash_between_copy_and_manifest_leaves_the_snapshot_whole() {
    let dir = tempdir("crash");
    let (repo, snaps) = setup(&dir, Some("pw"));
    let a = &snaps[0].0.id;
    // forget removes the copy first: a crash right after leaves the manifest alone.
    fs::remove_file(repo.snapshot_copies_dir().join(a)).unwrap();
    assert_eq!(manifest_files(&repo, a), (true, false));
    assert!(repo.list_snapshots().unwrap().iter().any(|m| &m.id == a));
    assert_eq!(restored(&repo, a), snaps[0].1, "still restorable");
    let report = check(&repo, Level::Quick);
    assert!(!report.ok, "verify names the missing copy");
    repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(manifest_files(&repo, a), (true, true), "repair rewrote the copy");
    assert!(check(&repo, Level::Full).ok);
    assert_eq!(restored(&repo, a), snaps[0].1);
    // Forgetting it again (as the interrupted call would be retried) completes.
    fs::remove_file(repo.snapshot_copies_dir().join(a)).unwrap();
    assert_eq!(
        run(&repo, &[a], false, false).unwrap().removed_snapshots,
        vec![a.clone()]
    );
    assert_eq!(manifest_files(&repo, a), (false, false));
    assert!(check(&repo, Level::Full).ok);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forget_waits_for_no_one_and_fails_locked() {
    let dir = tempdir("locked");
    let (repo, snaps) = setup(&dir, None);
    let a = &snaps[0].0.id;
    {
        // A restore (shared lock) is running.
        let _held = lock::acquire(repo.storage(), false, Duration::ZERO).unwrap();
        for prune in [false, true] {
            let err = run(&repo, &[a], false, prune).unwrap_err();
            assert_eq!(err.code(), "ERR_LOCKED", "{err}");
        }
        assert_eq!(manifest_files(&repo, a), (true, true));
    }
    assert_eq!(
        run(&repo, &[a], false, false).unwrap().removed_snapshots,
        vec![a.clone()]
    );
    fs::remove_dir_all(&dir).unwrap();
}
