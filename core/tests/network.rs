//! Network efficiency on object storage (issue 10): merged ranged reads,
//! the bound on requests in flight, and pack uploads that overlap chunking
//! with bounded memory and in the durable order packs -> idx -> index ->
//! snapshot. A local directory behind a wrapper that hides its path stands
//! for the bucket, so the engine takes its object-store paths.

mod common;
#[path = "common/wire.rs"]
mod wire;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{check, data, ingest_bytes, restored, small_options};
use containerarchive_core::check::Level;
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::storage::{self, Storage};
use containerarchive_core::{InitOptions, Repository};
use wire::Wire;

fn scratch() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ca-network-{}", random_hex(6)))
}

/// Old data in a new order, with new data and a repeated run between:
/// chunks come from several packs, with gaps, backwards, and twice.
fn shuffled(old: &[u8]) -> Vec<u8> {
    let mut out = old[400_000..].to_vec();
    out.extend_from_slice(&data(9, 100_000));
    out.extend_from_slice(&old[..250_000]);
    out.extend_from_slice(&vec![0u8; 200_000]);
    out.extend_from_slice(&old[100_000..300_000]);
    out
}

#[test]
fn merged_ranged_reads_restore_exactly_the_bytes() {
    for passphrase in [None, Some("pw")] {
        let dir = scratch();
        let wire = Wire::new(storage::local(&dir), true, Some(4));
        let s: Arc<dyn Storage> = wire.clone();
        let options = InitOptions {
            // Several packs, each holding many chunks.
            pack_target_size: Some(256 * 1024),
            ..small_options(passphrase)
        };
        let mut repo = Repository::init_in(s, &options).unwrap();
        // One worker: chunks join packs in stream order, so the layout (and
        // how far reads merge) does not depend on thread timing.
        repo.set_threads(Some(1));
        let first = data(1, 800_000);
        let second = shuffled(&first);
        let m1 = ingest_bytes(&repo, &first);
        let m2 = ingest_bytes(&repo, &second);
        let repo = Repository::open_in(wire.clone(), passphrase).unwrap();
        for (m, bytes) in [(&m1, &first), (&m2, &second)] {
            wire.counts.reset();
            assert!(restored(&repo, &m.id) == *bytes, "restore of {} differs", m.id);
            let chunks = m.items[0].chunks.len();
            let reads = wire::Counts::get(&wire.counts.ranged_reads);
            assert!(
                reads * 3 < chunks,
                "{reads} ranged reads for {chunks} chunks: reads were not merged"
            );
            assert!(
                wire::Counts::get(&wire.counts.max_in_flight) <= 4,
                "{}",
                wire.counts.summary()
            );
        }
        // The same repository read one chunk at a time agrees.
        let plain = Repository::open(&dir, passphrase).unwrap();
        assert!(restored(&plain, &m2.id) == second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_lost_pack_is_reported_as_before_when_reads_are_merged() {
    // A merged read of a lost pack falls back to reading chunk by chunk,
    // which reports the pack as restore always has.
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(2));
    let repo = Repository::init_in(wire.clone(), &small_options(None)).unwrap();
    let bytes = data(3, 300_000);
    let m = ingest_bytes(&repo, &bytes);
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    // Lose one pack: the restore fails with ERR_CORRUPT naming it, as before.
    let packs: Vec<String> = storage::objects::names(&*wire, "packs/data")
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".pack"))
        .collect();
    wire.delete(&format!("packs/data/{}", packs[0])).unwrap();
    let repo = Repository::open_in(wire.clone(), None).unwrap();
    let mut sink = |_: Vec<u8>| Ok(());
    let e = restore_item(&repo, &m.id, None, &mut sink, &AtomicBool::new(false), Duration::ZERO).unwrap_err();
    assert_eq!(e.code(), "ERR_CORRUPT", "{e}");
    assert!(e.to_string().contains(&packs[0]), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_reads_with_at_most_concurrency_requests_in_flight() {
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(3));
    let repo = Repository::init_in(wire.clone(), &small_options(Some("pw"))).unwrap();
    ingest_bytes(&repo, &data(4, 1_500_000));
    wire.counts.reset();
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    let max = wire::Counts::get(&wire.counts.max_in_flight);
    assert!((1..=3).contains(&max), "{}", wire.counts.summary());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The bytes of every object under `dir` whose name ends with `suffix`.
fn stored_bytes(s: &dyn Storage, dir: &str, suffix: &str) -> usize {
    s.list(dir)
        .unwrap()
        .iter()
        .filter(|e| e.name.ends_with(suffix))
        .map(|e| e.size as usize)
        .sum()
}

#[test]
fn full_verify_reads_each_pack_once() {
    // Before, the pack pass read every pack and the item pass read the
    // referenced chunks again: about twice the packs' bytes.
    for passphrase in [None, Some("pw")] {
        let dir = scratch();
        let wire = Wire::new(storage::local(&dir), true, Some(3));
        let repo = Repository::init_in(wire.clone(), &small_options(passphrase)).unwrap();
        // The same data twice: one item to hash, its packs read once.
        let first = data(5, 1_200_000);
        ingest_bytes(&repo, &first);
        ingest_bytes(&repo, &first);
        let packs = stored_bytes(&*wire, "packs/data", ".pack");
        let parity = stored_bytes(&*wire, "packs/parity", "");
        wire.counts.reset();
        let report = check(&repo, Level::Full);
        assert!(report.ok, "{:?}", report.errors);
        let read = wire::Counts::get(&wire.counts.bytes_read);
        // Metadata (index, .idx, manifests) is small next to the packs.
        assert!(
            read < packs + parity + packs / 4,
            "full verify read {read} bytes for {packs} bytes of packs and {parity} of parity: {}",
            wire.counts.summary()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_reingest_checks_its_packs_with_a_listing_and_still_finds_a_lost_one() {
    // A HEAD per pack was a round trip per pack on the hashing threads.
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(4));
    let options = InitOptions {
        pack_target_size: Some(64 * 1024),
        ..small_options(Some("pw"))
    };
    let repo = Repository::init_in(wire.clone(), &options).unwrap();
    let bytes = data(12, 2_000_000);
    let first = ingest_bytes(&repo, &bytes);
    let packs = std::fs::read_dir(dir.join("packs/data")).unwrap().count();
    assert!(packs > 10, "the data fills many packs: {packs}");

    let repo = Repository::open_in(wire.clone(), Some("pw")).unwrap();
    wire.counts.reset();
    let again = ingest_bytes(&repo, &bytes);
    assert_eq!(again.new_chunks, 0);
    let stats = wire::Counts::get(&wire.counts.stats);
    assert!(stats <= 2, "{stats} stats for {packs} packs: {}", wire.counts.summary());

    // A pack lost behind the index's back is seen in the listing: its chunks are stored anew.
    let index = repo.index();
    let chunk = first.items[0].chunk_ids().unwrap()[3];
    let lost = hex::encode(index.pack(index.get(&chunk).unwrap().pack).id);
    drop(index);
    std::fs::remove_file(dir.join(format!("packs/data/{lost}.pack"))).unwrap();
    let repo = Repository::open_in(wire.clone(), Some("pw")).unwrap();
    let healed = ingest_bytes(&repo, &bytes);
    assert!(
        healed.new_chunks > 0,
        "the lost pack's chunks are stored again: {healed:?}"
    );
    assert!(restored(&repo, &healed.id) == bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn full_verify_still_reads_the_packs_no_item_needs() {
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(3));
    let repo = Repository::init_in(wire.clone(), &small_options(Some("pw"))).unwrap();
    let gone = ingest_bytes(&repo, &data(6, 300_000));
    let packs_before = storage::objects::names(&*wire, "packs/data").unwrap();
    ingest_bytes(&repo, &data(7, 300_000));
    let options = containerarchive_core::forget::ForgetOptions {
        dry_run: false,
        prune: false,
        lock_timeout: Duration::ZERO,
    };
    containerarchive_core::forget::forget(&repo, &[gone.id.clone()], &options, &|_| {}).unwrap();
    // Damage a pack only the forgotten snapshot referenced.
    let orphan = packs_before.iter().find(|n| n.ends_with(".pack")).unwrap();
    let key = format!("packs/data/{orphan}");
    let mut bytes = wire.read(&key).unwrap().unwrap();
    bytes[10] ^= 0x40;
    wire.write(&key, &bytes).unwrap();
    let report = check(&Repository::open_in(wire.clone(), Some("pw")).unwrap(), Level::Full);
    let named: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.pack.as_deref() == orphan.strip_suffix(".pack"))
        .collect();
    assert!(
        named.len() == 1 && named[0].error.contains("does not match its hash"),
        "{:?}",
        report.errors
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A source that counts what the ingest has taken from it, and flags
/// taking more than `limit` while `watch` is set.
struct Source {
    inner: common::Synthetic,
    taken: Arc<AtomicUsize>,
    limit: usize,
    watch: Arc<AtomicBool>,
    over: Arc<(Mutex<bool>, Condvar)>,
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        let taken = self.taken.fetch_add(n, Ordering::SeqCst) + n;
        if self.watch.load(Ordering::SeqCst) && taken > self.limit {
            *self.over.0.lock().unwrap() = true;
            self.over.1.notify_all();
        }
        Ok(n)
    }
}

#[test]
fn slow_uploads_keep_memory_bounded_and_commit_in_order() {
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(2));
    let repo = Repository::init_in(wire.clone(), &small_options(Some("pw"))).unwrap();
    let pack_target = repo.config.pack_target_size as usize; // 64 KiB
    let max_chunk = repo.config.chunking.max_size as usize; // 64 KiB
    let largest_pack = pack_target + max_chunk + 64 * 1024;
    // Two uploads, one pack handed over, one open, the channels between the
    // stages (a few chunks each) and the chunker's buffer: well under 3 MiB.
    let limit = 3 << 20;
    let total_mib = 12;
    let taken = Arc::new(AtomicUsize::new(0));
    let watch = Arc::new(AtomicBool::new(false));
    let over = Arc::new((Mutex::new(false), Condvar::new()));
    let source = Source {
        inner: common::Synthetic::new(total_mib),
        taken: taken.clone(),
        limit,
        watch: watch.clone(),
        over: over.clone(),
    };
    *wire.gate_filter.lock().unwrap() = ".pack".into();
    wire.gate.close();
    wire.gated.store(true, Ordering::SeqCst);
    let manifest = std::thread::scope(|s| {
        let ingesting = s.spawn(|| {
            let item = IngestItem {
                name: "data".into(),
                item_type: "file".into(),
                size_hint: None,
                reader: source,
            };
            ingest(
                &repo,
                vec![item],
                &IngestOptions::default(),
                &|_| {},
                &AtomicBool::new(false),
            )
        });
        // Both uploaders hold a pack at the closed gate.
        assert!(wire.gate.wait_for_waiting(2), "the uploads never started");
        watch.store(true, Ordering::SeqCst);
        // Everything stalls behind the two uploads: watch the source for a
        // second (an observation window, not synchronisation) for more reads.
        let (flag, changed) = &*over;
        let guard = flag.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, Duration::from_secs(1), |over| !*over)
            .unwrap();
        let overran = *guard;
        drop(guard);
        let taken_while_stalled = taken.load(Ordering::SeqCst);
        assert!(storage::objects::names(&*wire, "snapshots").unwrap().is_empty());
        wire.gate.open();
        let manifest = ingesting.join().unwrap().unwrap();
        assert!(
            !overran,
            "the ingest read {taken_while_stalled} bytes while its uploads were stalled (limit {limit})"
        );
        manifest
    });
    assert_eq!(taken.load(Ordering::SeqCst), (total_mib as usize) << 20);
    let max_writing = wire::Counts::get(&wire.counts.max_writing_bytes);
    assert!(
        max_writing <= 2 * largest_pack,
        "{max_writing} bytes were being written at once"
    );

    // packs -> their idx -> index -> snapshot.
    let log = wire.log.lock().unwrap().clone();
    let at = |key: &str| log.iter().position(|k| k == key);
    let last_pack = log.iter().rposition(|k| k.ends_with(".pack")).unwrap();
    let first_index = log.iter().position(|k| k.starts_with("index/")).unwrap();
    let snapshot = log.iter().position(|k| k.starts_with("snapshots/")).unwrap();
    for (i, key) in log.iter().enumerate().filter(|(_, k)| k.ends_with(".idx")) {
        let pack = at(&key.replace(".idx", ".pack")).expect("an idx names a stored pack");
        assert!(pack < i, "{key} was written before its pack");
    }
    assert!(last_pack < first_index && first_index < snapshot, "{log:?}");

    let repo = Repository::open_in(wire.clone(), Some("pw")).unwrap();
    let mut expected = Vec::new();
    common::Synthetic::new(total_mib).read_to_end(&mut expected).unwrap();
    assert!(restored(&repo, &manifest.id) == expected);
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_upload_writes_no_snapshot_and_the_repository_verifies() {
    let dir = scratch();
    let wire = Wire::new(storage::local(&dir), true, Some(3));
    let repo = Repository::init_in(wire.clone(), &small_options(None)).unwrap();
    wire.fail_packs_after.store(5, Ordering::SeqCst);
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: &data(5, 2_000_000)[..],
    };
    let e = ingest(
        &repo,
        vec![item],
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert_eq!(e.code(), "ERR_IO", "{e}");
    assert!(e.to_string().contains("server went away"), "{e}");
    assert!(storage::objects::names(&*wire, "snapshots").unwrap().is_empty());
    wire.fail_packs_after.store(usize::MAX, Ordering::SeqCst);
    let repo = Repository::open_in(wire.clone(), None).unwrap();
    let report = check(&repo, Level::Full);
    assert!(report.ok, "{:?}", report.errors);
    // Packs stored before the failure are indexed and reused by the next ingest.
    let m = ingest_bytes(&repo, &data(5, 2_000_000));
    assert!(m.reused_chunks > 0, "{m:?}");
    assert!(restored(&repo, &m.id) == data(5, 2_000_000));
    std::fs::remove_dir_all(&dir).unwrap();
}
