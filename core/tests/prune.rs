//! Garbage collection end to end: dry run equals real run, repacking frees
//! space, parity covers every remaining pack, kept snapshots restore.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::{verify, Level};
use containerarchive_core::config::{ChunkingOptions, ParityConfig};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::restore::{restore_chunks, select_item};
use containerarchive_core::{InitOptions, Repository};

mod common;
use common::data;

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn restored(repo: &Repository, id: &str) -> Vec<u8> {
    let manifest = repo.load_snapshot(id).unwrap();
    let ids = select_item(&manifest, None).unwrap().chunk_ids().unwrap();
    let mut out = Vec::new();
    restore_chunks(
        repo,
        &ids,
        &mut |d| Ok(out.extend_from_slice(&d)),
        &AtomicBool::new(false),
    )
    .unwrap();
    out
}

/// Four snapshots. The third interleaves segments the fourth shares with
/// segments nobody keeps, so its packs are partly live after pruning.
fn setup(dir: &Path) -> (Repository, Vec<(String, Vec<u8>)>) {
    let options = InitOptions {
        passphrase: Some("pw".into()),
        chunking: Some(ChunkingOptions {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
        }),
        pack_target_size: Some(256 * 1024),
        parity: Some(ParityConfig {
            data_shards: 3,
            parity_shards: 1,
        }),
        ..Default::default()
    };
    let repo = Repository::init(dir, &options).unwrap();
    let shared: Vec<Vec<u8>> = (0..8).map(|i| data(100 + i, 64 * 1024)).collect();
    let mixed: Vec<u8> = (0..8)
        .flat_map(|i| [shared[i].clone(), data(200 + i as u64, 64 * 1024)].concat())
        .collect();
    let streams = [data(1, 500_000), data(2, 500_000), mixed, shared.concat()];
    let mut snaps = Vec::new();
    for (i, bytes) in streams.into_iter().enumerate() {
        let opts = IngestOptions {
            created_at: Some(format!("2026-0{}-01T00:00:00.000Z", i + 1)),
            ..Default::default()
        };
        let item = IngestItem {
            name: "d".into(),
            item_type: "f".into(),
            size_hint: None,
            reader: &bytes[..],
        };
        let m = ingest(&repo, vec![item], &opts, &|_| {}, &AtomicBool::new(false)).unwrap();
        snaps.push((m.id, bytes));
    }
    (repo, snaps)
}

#[test]
fn dry_run_predicts_the_real_run_and_space_is_freed() {
    let dir = std::env::temp_dir().join(format!("ca-prune-{}", containerarchive_core::fsutil::random_hex(6)));
    let (repo, snaps) = setup(&dir);
    let policy = Retention {
        keep_last: Some(1),
        max_unused: Some(0.1),
        ..Default::default()
    };
    let before = dir_bytes(&dir.join("packs/data"));
    let dry = prune(&repo, &policy, true, &|_| {}, Duration::ZERO).unwrap();
    assert_eq!(dir_bytes(&dir.join("packs/data")), before, "a dry run changes nothing");
    assert_eq!(repo.list_snapshots().unwrap().len(), 4);
    let real = prune(&repo, &policy, false, &|_| {}, Duration::ZERO).unwrap();
    assert_eq!(dry.removed_snapshots, real.removed_snapshots);
    assert_eq!(dry.removed_packs, real.removed_packs);
    assert!(real.repacked_packs >= 1, "{real:?}");
    let diff = (dry.freed_bytes - real.freed_bytes).abs() as f64;
    assert!(
        diff <= real.freed_bytes as f64 * 0.01,
        "dry {} real {}",
        dry.freed_bytes,
        real.freed_bytes
    );
    let after = dir_bytes(&dir.join("packs/data"));
    assert!(
        before - after >= real.freed_bytes as u64,
        "space really freed: {before} -> {after}"
    );
    assert_eq!(real.removed_snapshots.len(), 3);
    let report = verify(&repo, Level::Full, &|_| {}, &|_| {}, Duration::ZERO).unwrap();
    assert!(report.ok, "{:#?}", report.errors);
    let (last_id, last_bytes) = &snaps[3];
    assert_eq!(&restored(&repo, last_id), last_bytes);
    // Reopened from disk, the repository still verifies and restores.
    let reopened = Repository::open(&dir, Some("pw")).unwrap();
    assert!(
        verify(&reopened, Level::Full, &|_| {}, &|_| {}, Duration::ZERO)
            .unwrap()
            .ok
    );
    assert_eq!(&restored(&reopened, last_id), last_bytes);
    fs::remove_dir_all(&dir).unwrap();
}
