//! The whole engine through the storage seam: the same scenario (ingest,
//! dedup, restore, verify, damage then repair from parity, prune, reopen)
//! on a local directory and on a bucket of a real Garage server. That the
//! bucket behaves like the directory shows no operation needs a path.

mod common;
#[path = "common/garage.rs"]
mod garage;

use std::sync::Arc;
use std::time::Duration;

use common::{check, data, ingest_bytes, restored, small_options};
use containerarchive_core::check::Level;
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::storage::s3::S3Storage;
use containerarchive_core::storage::{self, Storage};
use containerarchive_core::Repository;
use garage::Garage;

fn packs(s: &dyn Storage) -> Vec<String> {
    s.list("packs/data")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.ends_with(".pack"))
        .collect()
}

/// The scenario; `s` is empty when called.
fn scenario(s: Arc<dyn Storage>) {
    let repo = Repository::init_in(s.clone(), &small_options(None)).unwrap();
    let first = data(1, 600_000);
    let mut second = first[..300_000].to_vec();
    second.extend_from_slice(&data(2, 300_000));
    let m1 = ingest_bytes(&repo, &first);
    let m2 = ingest_bytes(&repo, &second);
    assert_eq!(restored(&repo, &m1.id), first);
    assert_eq!(restored(&repo, &m2.id), second);
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);

    // Deduplication: the same bytes again store no new pack.
    let before = packs(&*s);
    assert!(before.len() > 4, "several packs, so parity groups: {before:?}");
    let m3 = ingest_bytes(&repo, &first);
    assert_eq!(packs(&*s), before);

    // Damage one pack object in place: verify names it, repair rebuilds it from parity.
    let victim = format!("packs/data/{}", before[0]);
    let mut bytes = s.read(&victim).unwrap().unwrap();
    bytes[10] ^= 0xff;
    s.write(&victim, &bytes).unwrap();
    let report = check(&repo, Level::Standard);
    assert!(!report.ok);
    assert!(
        report.errors.iter().any(|e| e.error.contains(&before[0])),
        "{:?}",
        report.errors
    );
    let repaired = repair(&repo, Duration::ZERO).unwrap();
    assert!(repaired.packs_repaired >= 1, "{repaired:?}");
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(restored(&repo, &m1.id), first);

    // Prune to the newest snapshot: what it needs stays, the rest goes.
    let kept = prune(
        &repo,
        &Retention {
            keep_last: Some(1),
            ..Default::default()
        },
        false,
        &|_| {},
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(kept.kept_snapshots, vec![m3.id.clone()]);
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(restored(&repo, &m3.id), first);
    assert!(s.list("locks").unwrap().is_empty(), "every lock was released");
    drop(repo);

    // Another handle sees the same repository.
    let reopened = Repository::open_in(s.clone(), None).unwrap();
    let ids: Vec<String> = reopened.list_snapshots().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![m3.id.clone()]);
    assert_eq!(restored(&reopened, &m3.id), first);
    assert_eq!(
        Repository::init_in(s, &small_options(None)).err().unwrap().code(),
        "ERR_REPO_EXISTS"
    );
}

#[test]
fn the_engine_runs_on_a_local_directory() {
    let dir = std::env::temp_dir().join(format!("ca-engine-local-{}", random_hex(6)));
    scenario(storage::local(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_engine_runs_on_a_garage_bucket() {
    let Some(garage) = Garage::start("the_engine_runs_on_a_garage_bucket") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = S3Storage::new(garage.s3_config("repos/engine"), rt.handle().clone()).unwrap();
    assert!(s3.local_root().is_none());
    scenario(Arc::new(s3));
}

#[test]
fn the_engine_runs_on_a_garage_bucket_through_the_metadata_cache() {
    let Some(garage) = Garage::start("the_engine_runs_on_a_garage_bucket_through_the_metadata_cache") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = S3Storage::new(garage.s3_config("repos/cached"), rt.handle().clone()).unwrap();
    let cache = std::env::temp_dir().join(format!("ca-engine-cache-{}", random_hex(6)));
    scenario(storage::cache::cached(Arc::new(s3), cache.clone()).unwrap());
    std::fs::remove_dir_all(&cache).unwrap();
}
