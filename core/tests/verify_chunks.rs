//! Full verify names every referenced chunk that does not decode, once, with
//! its pack: the findings are those of decoding the indexed copy of every
//! referenced chunk in every pack that exists with its recorded size (the
//! oracle below), whichever pass finds them.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::{read_disk_index, verify_with, Issue, Level, VerifyOptions, VerifyReport};
use containerarchive_core::codec::Compression;
use containerarchive_core::config::InitOptions;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::decode_blob;
use containerarchive_core::subset::Subset;
use containerarchive_core::Repository;

mod common;
use common::{check, data, small_options};

struct Fixture {
    dir: PathBuf,
    repo: Repository,
    snapshots: Vec<String>,
    a: Vec<u8>,
}

fn ingest_items(repo: &Repository, items: &[(&str, &[u8])]) -> String {
    let items = items
        .iter()
        .map(|(name, bytes)| IngestItem {
            name: name.to_string(),
            item_type: "file".into(),
            size_hint: None,
            reader: *bytes,
        })
        .collect();
    ingest(repo, items, &IngestOptions::default(), &|_| {}, &AtomicBool::new(false))
        .unwrap()
        .id
}

/// Sealed, compressed, and neither: in the last, a flipped byte still
/// decodes, so only a hash (the item's, then the chunk's) finds it.
const SETUPS: [(Option<&str>, Compression); 3] = [
    (None, Compression::Gzip),
    (Some("pw"), Compression::Zstd),
    (None, Compression::None),
];

/// Three snapshots sharing chunks: {a, b}, {a+b}, {a} (the same item twice).
fn fixture((passphrase, compression): (Option<&str>, Compression)) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ca-vchunks-{}", containerarchive_core::fsutil::random_hex(6)));
    let options = InitOptions {
        compression: Some(compression),
        ..small_options(passphrase)
    };
    let repo = Repository::init(&dir, &options).unwrap();
    let (a, b) = (data(11, 300_000), data(12, 300_000));
    let ab = [a.clone(), b.clone()].concat();
    let snapshots = vec![
        ingest_items(&repo, &[("a", &a), ("b", &b)]),
        ingest_items(&repo, &[("ab", &ab)]),
        ingest_items(&repo, &[("a", &a)]),
    ];
    Fixture {
        dir,
        repo,
        snapshots,
        a,
    }
}

type Key = (&'static str, Option<String>, Option<String>, Option<String>, String);

fn keys(issues: &[Issue], keep: impl Fn(&Issue) -> bool) -> BTreeSet<Key> {
    let v: Vec<Key> = issues
        .iter()
        .filter(|i| keep(i))
        .map(|i| {
            (
                i.kind,
                i.pack.clone(),
                i.chunk.clone(),
                i.snapshot.clone(),
                i.error.clone(),
            )
        })
        .collect();
    let set: BTreeSet<Key> = v.iter().cloned().collect();
    assert_eq!(set.len(), v.len(), "an issue is reported twice: {issues:#?}");
    set
}

/// The chunk issues of decoding each referenced chunk's indexed copy in a sound-sized pack.
fn oracle(f: &Fixture) -> BTreeSet<Key> {
    let index = read_disk_index(&f.repo, None).unwrap();
    let mut referenced = HashSet::new();
    for s in &f.snapshots {
        let Ok(m) = f.repo.load_snapshot(s) else { continue };
        for item in &m.items {
            referenced.extend(item.chunk_ids().unwrap());
        }
    }
    let mut out = Vec::new();
    for id in referenced {
        let Some(&(pack, offset, i)) = index.chunks.get(&id) else {
            continue;
        };
        let path = f.dir.join(format!("packs/data/{}.pack", hex::encode(pack)));
        let record = &index.records[&pack];
        let Ok(bytes) = fs::read(&path) else { continue };
        if bytes.len() as u64 != record.size {
            continue;
        }
        let e = &record.entries[i];
        let blob = bytes[offset as usize..][..e.length as usize].to_vec();
        if let Err(err) = decode_blob(&f.repo, &id, &pack, e.encoding, e.raw_length, blob) {
            out.push(Issue::new("chunk", err.to_string()).pack(hex::encode(pack)).chunk(&id));
        }
    }
    keys(&out, |_| true)
}

/// Full = standard + the oracle's chunk issues + item (snapshot) issues.
fn assert_findings(f: &Fixture, expect_chunks: usize) {
    let standard = check(&f.repo, Level::Standard);
    let full = check(&f.repo, Level::Full);
    let chunks = keys(&full.errors, |i| i.kind == "chunk");
    assert_eq!(chunks, oracle(f), "{:#?}", full.errors);
    assert_eq!(chunks.len(), expect_chunks, "{:#?}", full.errors);
    let not_item = |i: &Issue| i.kind != "chunk" && i.kind != "snapshot";
    assert_eq!(keys(&full.errors, not_item), keys(&standard.errors, not_item));
    let snap = |i: &Issue| i.kind == "snapshot";
    assert!(keys(&standard.errors, snap).is_subset(&keys(&full.errors, snap)));
    assert_eq!(full.ok, full.errors.is_empty());
}

/// The pack, offset and length of the indexed copy of one chunk of a snapshot's first item.
fn chunk_of(f: &Fixture, snapshot: usize, nth: usize) -> (PathBuf, u64, u32) {
    let index = read_disk_index(&f.repo, None).unwrap();
    let m = f.repo.load_snapshot(&f.snapshots[snapshot]).unwrap();
    let ids = m.items[0].chunk_ids().unwrap();
    let id = ids[nth % ids.len()];
    let (pack, offset, i) = index.chunks[&id];
    let path = f.dir.join(format!("packs/data/{}.pack", hex::encode(pack)));
    (path, offset, index.records[&pack].entries[i].length)
}

fn flip(path: &PathBuf, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_shared_chunk_is_named_once() {
    for setup in SETUPS {
        let f = fixture(setup);
        assert_findings(&f, 0);
        let (pack, offset, len) = chunk_of(&f, 0, 3);
        flip(&pack, offset + len as u64 / 2);
        assert_findings(&f, 1);
        fs::remove_dir_all(&f.dir).unwrap();
    }
}

#[test]
fn damaged_chunks_headers_and_lost_packs_together() {
    for setup in SETUPS {
        let f = fixture(setup);
        let (p1, o1, l1) = chunk_of(&f, 0, 1);
        let (p2, o2, _) = (2..).map(|n| chunk_of(&f, 0, n)).find(|c| c.0 != p1).unwrap();
        flip(&p1, o1 + l1 as u64 / 2);
        flip(&p2, o2);
        // Another pack's header, then one pack lost, one short, one long, one garbage.
        let header = chunk_of(&f, 1, 30).0;
        let size = fs::metadata(&header).unwrap().len();
        flip(&header, size - 20);
        let mut others: Vec<PathBuf> = fs::read_dir(f.dir.join("packs/data"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pack") && ![&header, &p1, &p2].contains(&p))
            .collect();
        others.sort();
        assert!(others.len() >= 4, "{others:?}");
        fs::remove_file(&others[0]).unwrap();
        let bytes = fs::read(&others[1]).unwrap();
        fs::write(&others[1], &bytes[..bytes.len() - 10]).unwrap();
        let bytes = fs::read(&others[2]).unwrap();
        fs::write(&others[2], [bytes, vec![0; 10]].concat()).unwrap();
        let size = fs::metadata(&others[3]).unwrap().len() as usize;
        fs::write(&others[3], data(99, size)).unwrap();
        let expected = oracle(&f).len();
        assert!(expected >= 3, "garbage fails its chunks: {:#?}", oracle(&f));
        assert_findings(&f, expected);
        fs::remove_dir_all(&f.dir).unwrap();
    }
}

#[test]
fn a_damaged_copy_is_named_though_restore_reads_another() {
    for setup in SETUPS {
        let f = fixture(setup);
        let (pack, offset, len) = chunk_of(&f, 0, 3);
        let saved = fs::read(&pack).unwrap();
        fs::remove_file(&pack).unwrap();
        // Stored anew while its pack is lost; then the lost pack comes back, damaged.
        let again = ingest_items(&f.repo, &[("a", &f.a)]);
        fs::write(&pack, &saved).unwrap();
        flip(&pack, offset + len as u64 / 2);
        let mut f = f;
        f.snapshots.push(again);
        assert_findings(&f, oracle(&f).len());
        // Every item restores from the sound copy: none is reported.
        let full = check(&f.repo, Level::Full);
        assert!(full.errors.iter().all(|i| i.kind != "snapshot"), "{:#?}", full.errors);
        fs::remove_dir_all(&f.dir).unwrap();
    }
}

fn verify_subset(f: &Fixture, subset: &str, cancel: bool) -> containerarchive_core::error::Result<VerifyReport> {
    let options = VerifyOptions {
        level: Level::Full,
        subset: Some(Subset::parse(subset).unwrap()),
        lock_timeout: Duration::ZERO,
    };
    verify_with(&f.repo, &options, &|_| {}, &|_| {}, &AtomicBool::new(cancel))
}

/// The slices 1/3..3/3 read every pack and group once between them, and
/// together find exactly the chunk and pack damage a full verify finds, each
/// in the slice its pack's id selects.
#[test]
fn the_slices_of_a_cycle_find_what_full_verify_finds() {
    let f = fixture(SETUPS[1]);
    let (p1, o1, l1) = chunk_of(&f, 0, 1);
    let (p2, o2, l2) = (2..).map(|n| chunk_of(&f, 0, n)).find(|c| c.0 != p1).unwrap();
    flip(&p1, o1 + l1 as u64 / 2);
    flip(&p2, o2 + l2 as u64 / 2);
    let full = check(&f.repo, Level::Full);
    let damage = |i: &Issue| i.kind == "chunk" || i.kind == "pack";
    let expected = keys(&full.errors, damage);
    assert!(expected.iter().filter(|k| k.0 == "chunk").count() == 2, "{expected:#?}");

    let (mut found, mut packs, mut groups) = (BTreeSet::new(), 0, 0);
    let mut totals = None;
    for n in 1..=3 {
        let report = verify_subset(&f, &format!("{n}/3"), false).unwrap();
        let s = report.subset.clone().unwrap();
        assert_eq!(s.subset, format!("{n}/3"));
        totals.get_or_insert((s.packs_total, s.parity_groups_total));
        assert_eq!(totals, Some((s.packs_total, s.parity_groups_total)));
        assert!(s.packs_read < s.packs_total, "a slice reads part: {s:?}");
        packs += s.packs_read;
        groups += s.parity_groups_read;
        for k in keys(&report.errors, damage) {
            let pack = hex::decode(k.1.as_ref().unwrap()).unwrap();
            assert_eq!(pack[0] as u32 % 3, n - 1, "found in its own slice: {k:?}");
            assert!(found.insert(k), "found twice");
        }
        assert_eq!(report.ok, report.errors.is_empty());
    }
    let (packs_total, groups_total) = totals.unwrap();
    assert_eq!((packs, groups), (packs_total, groups_total));
    assert!(packs_total >= 6, "enough packs to split: {packs_total}");
    assert_eq!(found, expected);

    // 100% reads everything; a percentage picks its share, rounded up.
    let all = verify_subset(&f, "100%", false).unwrap();
    assert_eq!(keys(&all.errors, damage), expected);
    let s = all.subset.unwrap();
    assert_eq!(s.packs_read, s.packs_total);
    let some = verify_subset(&f, "10%", false).unwrap().subset.unwrap();
    assert_eq!(some.packs_read, (s.packs_total as f64 / 10.0).ceil() as u64);
    fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn a_subset_needs_level_full_and_a_cancelled_verify_stops() {
    let f = fixture(SETUPS[0]);
    let options = VerifyOptions {
        level: Level::Standard,
        subset: Some(Subset::parse("1/2").unwrap()),
        lock_timeout: Duration::ZERO,
    };
    let err = verify_with(&f.repo, &options, &|_| {}, &|_| {}, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    assert_eq!(verify_subset(&f, "1/2", true).unwrap_err().code(), "ERR_CANCELLED");
    // Cancelling leaves no lock behind: an exclusive operation proceeds at once.
    containerarchive_core::repair::repair(&f.repo, Duration::ZERO).unwrap();
    fs::remove_dir_all(&f.dir).unwrap();
}
