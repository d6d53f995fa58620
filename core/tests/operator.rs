//! Operator safety: choosing snapshots by 'latest' or prefix with filters, and
//! statistics that stay true across ingest, forget, prune and repair.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::config::{ChunkingOptions, ParityConfig};
use containerarchive_core::forget::{forget, ForgetOptions};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::repair::repair;
use containerarchive_core::select::{resolve_snapshot, SnapshotFilter};
use containerarchive_core::stats::stats;
use containerarchive_core::{InitOptions, Manifest, Repository};

mod common;
use common::data;

fn small_repo(dir: &Path) -> Repository {
    let options = InitOptions {
        compression: Some(containerarchive_core::codec::Compression::Zstd),
        chunking: Some(ChunkingOptions {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
        }),
        pack_target_size: Some(128 * 1024),
        parity: Some(ParityConfig {
            data_shards: 3,
            parity_shards: 1,
        }),
        ..Default::default()
    };
    Repository::init(dir, &options).unwrap()
}

fn backup(repo: &Repository, bytes: &[u8], tags: &[(&str, &str)], at: &str) -> Manifest {
    let items = vec![IngestItem {
        name: "data".to_string(),
        item_type: "data".to_string(),
        size_hint: None,
        reader: bytes,
    }];
    let options = IngestOptions {
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        created_at: Some(at.to_string()),
        ..Default::default()
    };
    ingest(repo, items, &options, &|_| {}, &AtomicBool::new(false)).unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> SnapshotFilter {
    SnapshotFilter {
        tags: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        host: None,
    }
}

#[test]
fn latest_and_prefixes_resolve_with_filters() {
    let dir = tempdir("select");
    let repo = small_repo(&dir);
    let none = SnapshotFilter::default();
    assert_eq!(
        resolve_snapshot(&repo, "latest", &none).unwrap_err().code(),
        "ERR_SNAPSHOT_NOT_FOUND"
    );
    let pg = backup(
        &repo,
        &data(1, 1000),
        &[("service", "postgres")],
        "2026-01-01T00:00:00.000Z",
    );
    let nc = backup(
        &repo,
        &data(2, 1000),
        &[("service", "nextcloud")],
        "2026-01-02T00:00:00.000Z",
    );

    assert_eq!(resolve_snapshot(&repo, "latest", &none).unwrap().id, nc.id);
    // The reproduction: 'latest' for postgres is not nextcloud's snapshot.
    let latest_pg = resolve_snapshot(&repo, "latest", &tags(&[("service", "postgres")])).unwrap();
    assert_eq!(latest_pg.id, pg.id);
    let err = resolve_snapshot(&repo, "latest", &tags(&[("service", "mysql")])).unwrap_err();
    assert_eq!(err.code(), "ERR_SNAPSHOT_NOT_FOUND");
    assert!(err.to_string().contains("service=mysql"), "{err}");
    // Snapshots record this machine's name unless told otherwise.
    let host = |h: &str| SnapshotFilter {
        tags: Default::default(),
        host: Some(h.into()),
    };
    let here = containerarchive_core::fsutil::hostname();
    assert_eq!(resolve_snapshot(&repo, "latest", &host(&here)).unwrap().id, nc.id);
    assert!(resolve_snapshot(&repo, "latest", &host("db1")).is_err());

    // Full ids, prefixes of 8+ digits (any case), and the filter applies to them too.
    assert_eq!(resolve_snapshot(&repo, &pg.id, &none).unwrap().id, pg.id);
    assert_eq!(resolve_snapshot(&repo, &pg.id[..8], &none).unwrap().id, pg.id);
    assert_eq!(resolve_snapshot(&repo, &pg.id[..12], &none).unwrap().id, pg.id);
    let wrong = resolve_snapshot(&repo, &pg.id, &tags(&[("service", "nextcloud")])).unwrap_err();
    assert_eq!(wrong.code(), "ERR_SNAPSHOT_NOT_FOUND");
    // Ids are lowercase as listed (an all-digit prefix has no upper case).
    let upper = format!("{}A", &pg.id[..11]);
    for bad in [
        "",
        "abc",
        &pg.id[..7],
        "latest2",
        "zzzzzzzzzz",
        "../../../etc",
        upper.as_str(),
    ] {
        let err = resolve_snapshot(&repo, bad, &none).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "{bad}");
    }
    assert_eq!(
        resolve_snapshot(&repo, "00000000", &none)
            .map(|m| m.id)
            .unwrap_err()
            .code(),
        if pg.id.starts_with("00000000") || nc.id.starts_with("00000000") {
            "ERR_INVALID_ARGUMENT"
        } else {
            "ERR_SNAPSHOT_NOT_FOUND"
        }
    );

    // An ambiguous prefix: copy a manifest under an id sharing 8 digits with pg.
    let twin_id = format!("{}{}", &pg.id[..8], "f".repeat(56));
    let twin_id = if twin_id == pg.id {
        format!("{}{}", &pg.id[..8], "e".repeat(56))
    } else {
        twin_id
    };
    let mut twin = pg.clone();
    twin.id = twin_id.clone();
    repo.write_snapshot(&twin).unwrap();
    let err = resolve_snapshot(&repo, &pg.id[..8], &none).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    assert!(
        err.to_string().contains(&pg.id) && err.to_string().contains(&twin_id),
        "{err}"
    );
    assert_eq!(resolve_snapshot(&repo, &pg.id[..40], &none).unwrap().id, pg.id);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stats_stay_true_after_ingest_forget_prune_and_repair() {
    let dir = tempdir("stats");
    let repo = small_repo(&dir);
    let empty = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(
        (empty.snapshots, empty.logical_bytes, empty.unique_chunks.count),
        (0, 0, 0)
    );
    assert_eq!(
        (empty.dedup_ratio, empty.compression_ratio, empty.parity_overhead),
        (None, None, None)
    );

    // Incompressible data: zstd stores every chunk raw, so stored = raw.
    let bytes = data(7, 600 * 1024);
    let len = bytes.len() as u64;
    backup(&repo, &bytes, &[], "2026-01-01T00:00:00.000Z");
    let one = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!((one.snapshots, one.logical_bytes), (1, len));
    assert_eq!(one.unique_chunks.raw_bytes, len);
    assert_eq!(one.unique_chunks.stored_bytes, len);
    assert_eq!(one.dedup_ratio, Some(1.0));
    assert_eq!(one.compression_ratio, Some(1.0));
    assert_on_disk(&repo, &one);

    // The reproduction: two identical backups, then keep the last.
    backup(&repo, &bytes, &[], "2026-01-02T00:00:00.000Z");
    let two = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!((two.snapshots, two.logical_bytes), (2, 2 * len));
    assert_eq!(two.unique_chunks, one.unique_chunks);
    assert_eq!(two.dedup_ratio, Some(2.0));
    assert_eq!(two.packs, one.packs, "nothing new was stored");
    let keep_last = Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    prune(&repo, &keep_last, false, &|_| {}, Duration::ZERO).unwrap();
    let pruned = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!((pruned.snapshots, pruned.logical_bytes), (1, len));
    assert_eq!(
        pruned.unique_chunks, one.unique_chunks,
        "the kept snapshot's chunks are all still stored"
    );
    assert!(
        pruned.packs.bytes > len,
        "packs on disk hold the data: {:?}",
        pruned.packs
    );
    assert_eq!(pruned.dedup_ratio, Some(1.0));
    assert_on_disk(&repo, &pruned);

    // Compressible data in a second snapshot, then prune it away again.
    let text: Vec<u8> = b"all work and no play makes a dull backup\n".repeat(20_000);
    backup(&repo, &text, &[("kind", "text")], "2026-01-03T00:00:00.000Z");
    let mixed = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(mixed.logical_bytes, len + text.len() as u64);
    assert!(mixed.compression_ratio.unwrap() > 1.0);
    assert!(mixed.unique_chunks.raw_bytes > len && mixed.unique_chunks.raw_bytes <= len + text.len() as u64);
    assert_on_disk(&repo, &mixed);
    let only_untagged = Retention {
        keep_last: Some(1),
        group_by: Some(vec![]),
        max_unused: Some(0.0),
        ..Default::default()
    };
    prune(&repo, &only_untagged, false, &|_| {}, Duration::ZERO).unwrap();
    let after = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!((after.snapshots, after.logical_bytes), (1, text.len() as u64));
    assert_eq!(
        after.unreferenced_chunks.count, 0,
        "maxUnused 0 reclaims every unreferenced chunk"
    );
    assert_on_disk(&repo, &after);

    // Lose a pack; repair rebuilds it from parity and the figures are as before.
    let pack = fs::read_dir(repo.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    fs::remove_file(&pack).unwrap();
    let damaged = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(damaged.packs.files, after.packs.files - 1);
    assert_on_disk(&repo, &damaged);
    repair(&repo, Duration::ZERO).unwrap();
    let repaired = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(repaired.packs, after.packs);
    assert!(repaired.unique_chunks.stored_bytes + repaired.unreferenced_chunks.stored_bytes <= repaired.packs.bytes);
    assert_eq!(repaired.unique_chunks, after.unique_chunks);
    assert_eq!(repaired.logical_bytes, after.logical_bytes);
    assert_on_disk(&repo, &repaired);

    // A new snapshot, forgotten without prune: its data stays, unreferenced.
    let extra = data(9, 300 * 1024);
    let extra_id = backup(&repo, &extra, &[], "2026-01-04T00:00:00.000Z").id;
    let grown = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(
        (grown.snapshots, grown.logical_bytes),
        (2, repaired.logical_bytes + extra.len() as u64)
    );
    assert_eq!(
        grown.unique_chunks.raw_bytes,
        repaired.unique_chunks.raw_bytes + extra.len() as u64
    );
    assert_on_disk(&repo, &grown);
    let options = |prune| ForgetOptions {
        dry_run: false,
        prune,
        lock_timeout: Duration::ZERO,
    };
    forget(&repo, &[extra_id[..8].to_string()], &options(false), &|_| {}).unwrap();
    let forgotten = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(
        (forgotten.snapshots, forgotten.logical_bytes),
        (1, repaired.logical_bytes)
    );
    assert_eq!(forgotten.unique_chunks, repaired.unique_chunks);
    assert_eq!(
        forgotten.unreferenced_chunks.count,
        (grown.unreferenced_chunks.count + grown.unique_chunks.count) - forgotten.unique_chunks.count,
        "the forgotten snapshot's own chunks are unreferenced now"
    );
    assert_eq!(
        forgotten.unreferenced_chunks.stored_bytes,
        (grown.unreferenced_chunks.stored_bytes + grown.unique_chunks.stored_bytes)
            - forgotten.unique_chunks.stored_bytes
    );
    assert_eq!(
        (forgotten.packs, forgotten.parity),
        (grown.packs, grown.parity),
        "no data was removed"
    );
    assert_eq!(forgotten.dedup_ratio, repaired.dedup_ratio);
    assert_eq!(forgotten.compression_ratio, repaired.compression_ratio);
    assert!(
        forgotten.repository_bytes < grown.repository_bytes,
        "the manifests are gone"
    );
    assert_on_disk(&repo, &forgotten);

    // Another one, forgotten with prune: both snapshots' data is reclaimed.
    let extra2 = data(10, 300 * 1024);
    let extra2_id = backup(&repo, &extra2, &[], "2026-01-05T00:00:00.000Z").id;
    let grown2 = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(grown2.snapshots, 2);
    assert_on_disk(&repo, &grown2);
    let report = forget(&repo, &[extra2_id], &options(true), &|_| {}).unwrap();
    let reclaimed = stats(&repo, Duration::ZERO).unwrap();
    assert_eq!(
        (reclaimed.snapshots, reclaimed.logical_bytes),
        (1, repaired.logical_bytes)
    );
    assert_eq!(reclaimed.unique_chunks, repaired.unique_chunks);
    assert!(
        reclaimed.unreferenced_chunks.stored_bytes <= reclaimed.packs.bytes / 10,
        "at most maxUnused (10%) garbage stays: {reclaimed:?}"
    );
    assert_eq!(
        report.freed_bytes,
        Some(grown2.packs.bytes as i64 - reclaimed.packs.bytes as i64)
    );
    assert!(reclaimed.packs.bytes < forgotten.packs.bytes, "{reclaimed:?}");
    assert_eq!(reclaimed.dedup_ratio, repaired.dedup_ratio);
    assert_eq!(reclaimed.compression_ratio, repaired.compression_ratio);
    assert!(reclaimed.repository_bytes < grown2.repository_bytes);
    assert_on_disk(&repo, &reclaimed);
    fs::remove_dir_all(&dir).unwrap();
}

/// Pack and parity totals equal what a directory listing says, and every
/// stored byte the index counts lies in a pack.
fn assert_on_disk(repo: &Repository, s: &containerarchive_core::stats::Stats) {
    let sum = |dir: &Path, exts: &[&str]| {
        let mut out = (0u64, 0u64);
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                out.0 += 1;
                out.1 += fs::metadata(&p).unwrap().len();
            }
        }
        out
    };
    assert_eq!((s.packs.files, s.packs.bytes), sum(&repo.data_dir(), &["pack"]));
    assert_eq!(
        (s.parity.files, s.parity.bytes),
        sum(&repo.root().join("packs/parity"), &["par", "group"])
    );
    assert_eq!(s.missing_chunks, 0);
    assert!(s.repository_bytes >= s.packs.bytes + s.parity.bytes);
    if s.packs.bytes > 0 {
        assert_eq!(s.parity_overhead, Some(s.parity.bytes as f64 / s.packs.bytes as f64));
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ca-operator-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}
