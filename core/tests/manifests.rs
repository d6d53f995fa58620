//! Snapshot manifests end to end: item SHA-256, length and hash checks on
//! restore and verify, the manifest copies, and repair of misnamed files.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::{Level, VerifyReport};
use containerarchive_core::crypto::{sha256, AAD_SNAPSHOT};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::restore::{restore_chunks, restore_item};
use containerarchive_core::snapshot::Manifest;
use containerarchive_core::Repository;

mod common;
use common::{check, data, ingest_bytes, small_options};

struct Fixture {
    dir: PathBuf,
    repo: Repository,
    snapshots: Vec<(String, Vec<u8>)>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fixture(passphrase: Option<&str>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ca-manifests-{}", containerarchive_core::fsutil::random_hex(6)));
    let options = small_options(passphrase);
    let repo = Repository::init(&dir, &options).unwrap();
    let mut f = Fixture {
        dir,
        repo,
        snapshots: Vec::new(),
    };
    for seed in 1..=3 {
        let bytes = data(seed, 300_000);
        let id = ingest_bytes(&f.repo, &bytes).id;
        f.snapshots.push((id, bytes));
    }
    f
}

/// Restores through the same path as the API; returns the bytes handed over and the outcome.
fn restore(repo: &Repository, id: &str) -> (Vec<u8>, containerarchive_core::Result<()>) {
    let mut out = Vec::new();
    let result = restore_item(
        repo,
        id,
        None,
        &mut |d| Ok(out.extend_from_slice(&d)),
        &AtomicBool::new(false),
        Duration::ZERO,
    );
    (out, result)
}

fn assert_healthy(f: &Fixture) {
    let report = check(&f.repo, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    let listed: Vec<String> = f.repo.list_snapshots().unwrap().into_iter().map(|m| m.id).collect();
    for (id, bytes) in &f.snapshots {
        assert!(listed.contains(id), "{id} is listed");
        let (out, result) = restore(&f.repo, id);
        result.unwrap();
        assert_eq!(&out, bytes, "snapshot {id} restores");
    }
}

fn primary(f: &Fixture, id: &str) -> PathBuf {
    f.dir.join("snapshots").join(id)
}
fn copy(f: &Fixture, id: &str) -> PathBuf {
    f.dir.join("packs/parity/snapshots").join(id)
}

fn mentions(report: &VerifyReport, id: &str, text: &str) -> bool {
    report
        .errors
        .iter()
        .any(|e| e.kind == "snapshot" && e.snapshot.as_deref() == Some(id) && e.error.contains(text))
}

#[test]
fn items_record_the_sha256_of_their_stream_and_manifests_have_identical_copies() {
    let f = fixture(None);
    for (id, bytes) in &f.snapshots {
        let m = f.repo.load_snapshot(id).unwrap();
        assert_eq!(m.version, 2);
        assert_eq!(m.items[0].sha256.as_deref(), Some(hex::encode(sha256(bytes)).as_str()));
        assert_eq!(m.summary()["items"][0]["sha256"], hex::encode(sha256(bytes)));
        assert_eq!(fs::read(primary(&f, id)).unwrap(), fs::read(copy(&f, id)).unwrap());
    }
    // Several items, one empty: each gets the hash of its own stream.
    let (a, b) = (data(9, 70_000), Vec::new());
    let items = vec![
        IngestItem {
            name: "a".into(),
            item_type: "t".into(),
            size_hint: None,
            reader: &a[..],
        },
        IngestItem {
            name: "b".into(),
            item_type: "t".into(),
            size_hint: None,
            reader: &b[..],
        },
    ];
    let m = ingest(
        &f.repo,
        items,
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(m.items[0].sha256, Some(hex::encode(sha256(&a))));
    assert_eq!(m.items[1].sha256, Some(hex::encode(sha256(&b))));
    assert_healthy(&f);
}

/// A manifest written through the repository's own (sealed) write path
/// with one chunk reference dropped: the envelope cannot catch it, the
/// end-to-end checks must.
#[test]
fn a_dropped_chunk_reference_fails_restore_and_verify_with_corrupt() {
    for passphrase in [None, Some("pw")] {
        let f = fixture(passphrase);
        let id = &f.snapshots[0].0;
        let original = f.repo.load_snapshot(id).unwrap();
        assert!(original.items[0].chunks.len() > 3);

        // Size unchanged: the length check fails before the first byte.
        let mut short = original.clone();
        short.id = "1".repeat(64);
        short.items[0].chunks.remove(1);
        f.repo.write_snapshot(&short).unwrap();
        let (out, result) = restore(&f.repo, &short.id);
        let err = result.unwrap_err();
        assert_eq!(err.code(), "ERR_CORRUPT", "{err}");
        assert!(out.is_empty(), "nothing is handed over before the length check");
        assert!(mentions(
            &check(&f.repo, Level::Quick),
            &short.id,
            "bytes but the manifest says"
        ));

        // Size adjusted too: only the SHA-256 can tell, after the last byte.
        let mut consistent = short.clone();
        consistent.id = "2".repeat(64);
        let mut probe = Vec::new();
        let ids = short.items[0].chunk_ids().unwrap();
        restore_chunks(
            &f.repo,
            &ids,
            &mut |d| Ok(probe.extend_from_slice(&d)),
            &AtomicBool::new(false),
        )
        .unwrap();
        let out_len = probe.len() as u64;
        consistent.items[0].size = out_len;
        consistent.original_size = out_len;
        f.repo.write_snapshot(&consistent).unwrap();
        let (out, result) = restore(&f.repo, &consistent.id);
        let err = result.unwrap_err();
        assert_eq!(err.code(), "ERR_CORRUPT");
        assert!(err.to_string().contains("sha256"), "{err}");
        assert_eq!(out, probe, "every byte was handed over before the hash check failed");
        assert!(
            check(&f.repo, Level::Quick)
                .errors
                .iter()
                .all(|e| e.snapshot.as_deref() != Some(&consistent.id)),
            "quick cannot see it"
        );
        assert!(mentions(&check(&f.repo, Level::Full), &consistent.id, "sha256"));

        // The honest snapshots are untouched.
        for (id, bytes) in &f.snapshots {
            let (out, result) = restore(&f.repo, id);
            result.unwrap();
            assert_eq!(&out, bytes);
        }
    }
}

#[test]
fn a_version_1_manifest_still_restores_and_a_newer_version_is_unsupported() {
    let f = fixture(Some("pw"));
    let (id, bytes) = &f.snapshots[1];
    let mut m = f.repo.load_snapshot(id).unwrap();
    m.version = 1;
    m.items[0].sha256 = None;
    (m.host, m.user) = (None, None);
    // Version 1 repositories had no copies.
    fs::remove_file(copy(&f, id)).unwrap();
    let json = serde_json::to_vec(&m).unwrap();
    fs::write(primary(&f, id), f.repo.seal(AAD_SNAPSHOT, json)).unwrap();
    let (out, result) = restore(&f.repo, id);
    result.unwrap();
    assert_eq!(&out, bytes);
    assert!(f.repo.load_snapshot(id).unwrap().summary()["items"][0]["sha256"].is_null());
    let report = check(&f.repo, Level::Full);
    assert!(
        report.ok,
        "a version 1 manifest without a copy is healthy: {:#?}",
        report.errors
    );
    // Repair gives it a copy all the same.
    repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(fs::read(primary(&f, id)).unwrap(), fs::read(copy(&f, id)).unwrap());

    let mut newer: serde_json::Value = serde_json::to_value(&m).unwrap();
    newer["version"] = (containerarchive_core::snapshot::MANIFEST_VERSION + 1).into();
    newer["futureField"] = true.into();
    let stored = f.repo.seal(AAD_SNAPSHOT, serde_json::to_vec(&newer).unwrap());
    fs::write(primary(&f, id), &stored).unwrap();
    fs::write(copy(&f, id), &stored).unwrap();
    assert_eq!(f.repo.load_snapshot(id).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
    // Repair never treats a newer manifest as damage.
    repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(fs::read(primary(&f, id)).unwrap(), stored);
}

#[test]
fn a_deleted_manifest_is_reported_and_restored_from_its_copy() {
    let f = fixture(None);
    let id = f.snapshots[2].0.clone();
    fs::remove_file(primary(&f, &id)).unwrap();
    assert!(f.repo.list_snapshots().unwrap().iter().all(|m| m.id != id));
    assert!(mentions(&check(&f.repo, Level::Quick), &id, "is missing"));
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(report.snapshots_repaired, 1, "{report:#?}");
    assert!(report.unrecoverable.is_empty(), "{report:#?}");
    assert_healthy(&f);
}

#[test]
fn a_damaged_manifest_reads_from_its_copy_and_repair_restores_it() {
    let f = fixture(Some("pw"));
    let id = f.snapshots[0].0.clone();
    let mut bytes = fs::read(primary(&f, &id)).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(primary(&f, &id), &bytes).unwrap();
    // Restores and lists straight away, from the copy.
    assert_eq!(restore(&f.repo, &id).0, f.snapshots[0].1);
    assert!(mentions(&check(&f.repo, Level::Quick), &id, "its copy"));
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report.unrecoverable.is_empty(), "{report:#?}");
    assert_eq!(fs::read(primary(&f, &id)).unwrap(), fs::read(copy(&f, &id)).unwrap());
    assert_healthy(&f);
}

#[test]
fn a_missing_or_damaged_copy_is_reported_and_rewritten() {
    let f = fixture(None);
    let (a, b) = (f.snapshots[0].0.clone(), f.snapshots[1].0.clone());
    fs::remove_file(copy(&f, &a)).unwrap();
    fs::write(copy(&f, &b), b"{}").unwrap();
    let q = check(&f.repo, Level::Quick);
    assert!(mentions(&q, &a, "is missing"), "{q:#?}");
    assert!(mentions(&q, &b, "is damaged"), "{q:#?}");
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert_eq!(report.snapshots_repaired, 2);
    assert_healthy(&f);
}

#[test]
fn both_manifest_files_damaged_is_named_unrecoverable_and_set_aside() {
    let f = fixture(None);
    let id = f.snapshots[1].0.clone();
    fs::write(primary(&f, &id), b"not json").unwrap();
    fs::remove_file(copy(&f, &id)).unwrap();
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report
        .unrecoverable
        .iter()
        .any(|u| u.pack.is_none() && u.snapshots.contains(&id)));
    assert!(f.dir.join(format!("snapshots/{id}.damaged")).exists());
    assert!(f.repo.list_snapshots().unwrap().iter().all(|m| m.id != id));
    assert!(check(&f.repo, Level::Full).ok);
}

#[test]
fn swapped_manifests_are_put_back_under_their_names() {
    for with_copies in [true, false] {
        let f = fixture(None);
        let (a, b) = (f.snapshots[0].0.clone(), f.snapshots[1].0.clone());
        let (pa, pb) = (fs::read(primary(&f, &a)).unwrap(), fs::read(primary(&f, &b)).unwrap());
        fs::write(primary(&f, &a), &pb).unwrap();
        fs::write(primary(&f, &b), &pa).unwrap();
        if !with_copies {
            fs::remove_file(copy(&f, &a)).unwrap();
            fs::remove_file(copy(&f, &b)).unwrap();
        }
        assert!(!check(&f.repo, Level::Quick).ok);
        let report = repair(&f.repo, Duration::ZERO).unwrap();
        assert!(report.unrecoverable.is_empty(), "{report:#?}");
        assert!(report.errors.is_empty(), "{report:#?}");
        assert_eq!(fs::read(primary(&f, &a)).unwrap(), pa);
        assert_eq!(fs::read(primary(&f, &b)).unwrap(), pb);
        assert_healthy(&f);
    }
}

#[test]
fn a_manifest_under_a_wrong_name_is_renamed() {
    let f = fixture(None);
    let a = f.snapshots[0].0.clone();
    let stray = "e".repeat(64);
    fs::rename(primary(&f, &a), primary(&f, &stray)).unwrap();
    fs::remove_file(copy(&f, &a)).unwrap();
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report.unrecoverable.is_empty(), "{report:#?}");
    assert!(!primary(&f, &stray).exists());
    assert_healthy(&f);
}

#[test]
fn two_swapped_packs_of_one_group_are_renamed_not_lost() {
    let f = fixture(Some("pw"));
    let (groups, _) = containerarchive_core::parity::load_groups(&f.repo).unwrap();
    let group = groups.iter().find(|g| g.members.len() >= 2).unwrap();
    let path = |i: usize| f.dir.join(format!("packs/data/{}.pack", group.members[i].pack));
    let tmp = f.dir.join("swap");
    fs::rename(path(0), &tmp).unwrap();
    fs::rename(path(1), path(0)).unwrap();
    fs::rename(&tmp, path(1)).unwrap();
    assert!(!check(&f.repo, Level::Standard).ok);
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(report.unrecoverable.is_empty(), "{report:#?}");
    assert!(report.packs_repaired >= 2, "{report:#?}");
    assert_healthy(&f);
}

#[test]
fn prune_removes_both_files_and_keeps_what_an_orphan_copy_references() {
    let f = fixture(None);
    let (gone, kept_orphan) = (f.snapshots[0].0.clone(), f.snapshots[1].0.clone());
    // A manifest lost to damage: only its copy is left.
    fs::remove_file(primary(&f, &kept_orphan)).unwrap();
    let retention = Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    let report = prune(&f.repo, &retention, false, &|_| {}, Duration::ZERO).unwrap();
    assert_eq!(report.removed_snapshots, vec![gone.clone()]);
    assert!(!primary(&f, &gone).exists() && !copy(&f, &gone).exists());
    // The orphan copy's chunks survived, so repair can still bring it back.
    let r = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(r.unrecoverable.is_empty(), "{r:#?}");
    let (out, result) = restore(&f.repo, &kept_orphan);
    result.unwrap();
    assert_eq!(out, f.snapshots[1].1);
}

#[test]
fn a_copy_whose_chunks_are_gone_is_never_resurrected() {
    let f = fixture(None);
    let mut m: Manifest = f.repo.load_snapshot(&f.snapshots[0].0).unwrap();
    m.id = "c".repeat(64);
    m.items[0].chunks[0] = "0".repeat(64);
    let stored = f.repo.seal(AAD_SNAPSHOT, serde_json::to_vec(&m).unwrap());
    f.repo
        .write_snapshot_file("packs/parity/snapshots", &m.id, &stored)
        .unwrap();
    assert!(mentions(&check(&f.repo, Level::Quick), &m.id, "is missing"));
    let report = repair(&f.repo, Duration::ZERO).unwrap();
    assert!(
        report.unrecoverable.iter().any(|u| u.snapshots.contains(&m.id)),
        "{report:#?}"
    );
    assert!(!primary(&f, &m.id).exists());
    assert!(f.repo.list_snapshots().unwrap().iter().all(|s| s.id != m.id));
    assert_healthy(&f);
}
