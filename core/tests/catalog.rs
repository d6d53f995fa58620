//! Tar catalogs and byte ranges end to end (issue 13): a tar ingested as
//! `volume-tar` gets a hidden catalog item; every member restores as a byte
//! range reading only its chunks; prune keeps the catalog's chunks, full
//! verify checks them, and a copy carries the catalog to another repository.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{check, data, small_options};
use containerarchive_core::catalog::{parse_entry, Entry, CATALOG_ITEM_TYPE};
use containerarchive_core::check::Level;
use containerarchive_core::copy::{copy_snapshots, CopyOptions};
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::prune::{prune, Retention};
use containerarchive_core::range::{restore_ranges, RangeRead, RangeRequest};
use containerarchive_core::{InitOptions, Manifest, Repository};

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(format!("ca-catalog-{}", random_hex(6))))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A GNU-format tar of `files` (path, bytes), with a directory and a long name.
fn make_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "top/", std::io::empty()).unwrap();
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, bytes.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn store(repo: &Repository, name: &str, item_type: &str, bytes: &[u8], created_at: Option<&str>) -> Manifest {
    let item = IngestItem {
        name: name.into(),
        item_type: item_type.into(),
        size_hint: None,
        reader: bytes,
    };
    let options = IngestOptions {
        created_at: created_at.map(String::from),
        ..Default::default()
    };
    ingest(repo, vec![item], &options, &|_| {}, &AtomicBool::new(false)).unwrap()
}

fn read(repo: &Repository, id: &str, catalog: bool, ranges: Vec<(u64, u64)>) -> (Vec<u8>, RangeRead) {
    let mut out = Vec::new();
    let request = RangeRequest {
        item: None,
        catalog,
        ranges,
    };
    let mut sink = |b: Vec<u8>| {
        out.extend_from_slice(&b);
        Ok(())
    };
    let read = restore_ranges(repo, id, &request, &mut sink, &AtomicBool::new(false), Duration::ZERO).unwrap();
    (out, read)
}

fn catalog(repo: &Repository, m: &Manifest) -> Vec<Entry> {
    let size = m.items[0].size;
    let (lines, _) = read(repo, &m.id, true, vec![(0, u64::MAX)]);
    lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_entry(l, size).expect("a valid catalog line"))
        .collect()
}

fn files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (0..12u64)
        .map(|i| {
            (
                format!("top/file-{i}.bin"),
                data(i + 1, 1000 + (i as usize * 37_919) % 300_000),
            )
        })
        .collect();
    files.push((format!("top/{}/tiny.txt", "long".repeat(40)), b"tiny".to_vec()));
    files
}

#[test]
fn members_restore_as_ranges_and_survive_prune_verify_and_copy() {
    let dir = TempDir::new();
    let repo = Repository::init(&dir.0.join("repo"), &small_options(Some("pw"))).unwrap();
    let files = files();
    let tar = make_tar(&files);
    let old = store(
        &repo,
        "junk",
        "file",
        &data(99, 400_000),
        Some("2020-01-01T00:00:00.000Z"),
    );
    let m = store(&repo, "volume.tar", "volume-tar", &tar, None);
    assert_eq!(m.version, 3);
    assert_eq!(m.items.len(), 2);
    let hidden = &m.items[1];
    assert_eq!(
        (hidden.item_type.as_str(), hidden.catalog_of.as_deref()),
        (CATALOG_ITEM_TYPE, Some("volume.tar"))
    );
    assert_eq!(hidden.entries, Some(files.len() as u64 + 1));
    assert_eq!(
        m.original_size,
        tar.len() as u64,
        "originalSize counts the caller's bytes only"
    );
    assert_eq!(
        m.summary()["items"].as_array().unwrap().len(),
        1,
        "the catalog is hidden from summaries"
    );
    assert_eq!(
        old.version, 2,
        "a snapshot without catalogs stays readable by older engines"
    );

    // Prune removes the older snapshot's chunks, not the catalog's.
    let keep_one = Retention {
        keep_last: Some(1),
        ..Default::default()
    };
    prune(&repo, &keep_one, false, &|_| {}, Duration::ZERO).unwrap();
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);

    let entries = catalog(&repo, &m);
    assert_eq!(entries.len(), files.len() + 1);
    assert_eq!(entries[0].kind, "dir");
    for (entry, (path, bytes)) in entries[1..].iter().zip(&files) {
        assert_eq!((&entry.path, entry.size), (path, bytes.len() as u64));
        let (got, read) = read(&repo, &m.id, false, vec![(entry.offset, entry.offset + entry.size)]);
        assert_eq!(&got, bytes, "{path}");
        // 16 KiB average chunks: a member reads its own chunks, plus at most one at each end.
        assert!(read.chunks_read <= entry.size / 4096 + 2, "{path}: {read:?}");
    }
    let tiny = entries.last().unwrap();
    assert!(
        read(&repo, &m.id, false, vec![(tiny.offset, tiny.offset + 4)])
            .1
            .chunks_read
            <= 2
    );

    // Several ranges at once, one chunk read once, end clamped.
    let ranges = vec![(10, 20), (20, 600), (tar.len() as u64 - 5, u64::MAX)];
    let (got, _) = read(&repo, &m.id, false, ranges);
    assert_eq!(got, [&tar[10..600], &tar[tar.len() - 5..]].concat());

    // The same tar again: its catalog deduplicates too.
    let again = store(&repo, "volume.tar", "volume-tar", &tar, None);
    assert_eq!(again.new_chunks, 0);

    // A copy into a repository with other keys and chunk sizes keeps a working catalog.
    let target = Repository::init(&dir.0.join("target"), &InitOptions::default()).unwrap();
    let options = CopyOptions {
        filter: Default::default(),
        lock_timeout: Duration::ZERO,
    };
    copy_snapshots(&repo, &target, &options, &|_| {}, &AtomicBool::new(false)).unwrap();
    let copied = target.load_snapshot(&m.id).unwrap();
    assert_eq!(catalog(&target, &copied), entries);
    assert!(check(&target, Level::Full).ok);
}

#[test]
fn a_stream_that_is_not_a_tar_is_stored_byte_exact_with_the_reason() {
    let dir = TempDir::new();
    let repo = Repository::init(&dir.0.join("repo"), &small_options(None)).unwrap();
    let bytes = data(5, 200_000);
    let m = store(&repo, "v", "volume-tar", &bytes, None);
    assert_eq!(m.items.len(), 1);
    assert!(m.items[0].catalog_error.as_deref().unwrap().contains("not a tar"));
    assert_eq!(read(&repo, &m.id, false, vec![(0, u64::MAX)]).0, bytes);
    let mut sink = |_: Vec<u8>| Ok(());
    let request = RangeRequest {
        item: None,
        catalog: true,
        ranges: vec![],
    };
    let err = restore_ranges(
        &repo,
        &m.id,
        &request,
        &mut sink,
        &AtomicBool::new(false),
        Duration::ZERO,
    )
    .unwrap_err();
    assert_eq!(err.code(), "ERR_NO_CATALOG");
    assert!(err.to_string().contains("not a tar"), "{err}");

    // Other types are not catalogued unless asked; `catalog` overrides both ways.
    let tar = make_tar(&files());
    assert_eq!(store(&repo, "d", "database-dump", &tar, None).items.len(), 1);
    let asked = IngestOptions {
        catalog: BTreeMap::from([("d".to_string(), true)]),
        ..Default::default()
    };
    let item = IngestItem {
        name: "d".into(),
        item_type: "database-dump".into(),
        size_hint: None,
        reader: tar.as_slice(),
    };
    let m = ingest(&repo, vec![item], &asked, &|_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(m.items.len(), 2);
}
