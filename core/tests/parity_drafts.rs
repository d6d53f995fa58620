//! Parity drafted as an ingest writes its packs (`parity_draft`) is the
//! parity of the packs on disk, byte for byte: every group's parity files
//! are checked against Reed-Solomon computed here from the member files.
//! Covered: new groups, extending the open group, groups past the drafting
//! limit (read back), a failed ingest, and object storage (versioned groups).

mod common;
#[path = "common/objectlike.rs"]
mod objectlike;

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{check, data, ingest_bytes, restored, small_options};
use containerarchive_core::check::Level;
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::parity::load_groups;
use containerarchive_core::parity_draft::MAX_DRAFTS;
use containerarchive_core::storage::local::LocalStorage;
use containerarchive_core::storage::Storage;
use containerarchive_core::Repository;
use objectlike::ObjectLike;
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Every parity file of every group equals RS parity of its members, zero-padded.
fn assert_parity_exact(repo: &Repository) {
    let (groups, damaged) = load_groups(repo).unwrap();
    assert!(damaged.is_empty(), "{damaged:?}");
    assert!(!groups.is_empty());
    let storage = repo.storage();
    for g in &groups {
        let size = g.shard_size as usize;
        let mut shards: Vec<Vec<u8>> = (0..g.data_shards as usize)
            .map(|i| {
                let mut bytes = match g.members.get(i) {
                    Some(m) => storage.read(&format!("packs/data/{}.pack", m.pack)).unwrap().unwrap(),
                    None => Vec::new(),
                };
                assert!(bytes.len() <= size);
                bytes.resize(size, 0);
                bytes
            })
            .collect();
        shards.extend((0..g.parity_shards).map(|_| vec![0u8; size]));
        ReedSolomon::new(g.data_shards as usize, g.parity_shards as usize)
            .unwrap()
            .encode(&mut shards)
            .unwrap();
        for (k, p) in g.parity.iter().enumerate() {
            let stored = storage.read(&format!("packs/parity/{}", p.file)).unwrap().unwrap();
            assert!(
                stored == shards[g.data_shards as usize + k],
                "parity {k} of group {} ({} members) differs from its members' parity",
                g.id,
                g.members.len()
            );
        }
    }
}

/// A source that fails after `after` bytes.
struct Failing {
    bytes: Vec<u8>,
    at: usize,
    after: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.after {
            return Err(std::io::Error::other("the source failed"));
        }
        let n = buf.len().min(self.after - self.at).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn scenario(storage: Arc<dyn Storage>) {
    let repo = Repository::init_in(storage.clone(), &small_options(None)).unwrap();
    // About 40 packs of 64 KiB: ten RS(4,1) groups, MAX_DRAFTS drafted, the rest read back.
    let first = data(1, 2_600_000);
    let before = repo.drafted_members();
    let a = ingest_bytes(&repo, &first);
    assert_eq!(
        repo.drafted_members() - before,
        4 * MAX_DRAFTS as u64,
        "MAX_DRAFTS groups of four are drafted"
    );
    assert_parity_exact(&repo);

    // A little new data: it extends the open group, from the draft. Chunks
    // join packs in the order the workers finish them, so the pack count
    // varies by a few; when it fills every group, one more pack opens one.
    let has_room = |repo: &Repository| load_groups(repo).unwrap().0.iter().any(|g| g.members.len() < 4);
    if !has_room(&repo) {
        ingest_bytes(&repo, &data(5, 40_000));
        assert_parity_exact(&repo);
    }
    assert!(has_room(&repo), "a group has room");
    let before = repo.drafted_members();
    let b = ingest_bytes(&repo, &data(2, 70_000));
    assert!(
        repo.drafted_members() > before,
        "the open group's new members are drafted"
    );
    assert_parity_exact(&repo);

    // A failed ingest: its packs are covered, from drafts where they fit.
    let failing = Failing {
        bytes: data(3, 900_000),
        at: 0,
        after: 700_000,
    };
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: failing,
    };
    let failed = ingest(
        &repo,
        vec![item],
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    );
    assert!(failed.is_err());
    assert_parity_exact(&repo);

    // Reopened (no drafts): more data, read back as before.
    let reopened = Repository::open_in(storage, None).unwrap();
    let c = ingest_bytes(&reopened, &data(4, 300_000));
    assert_parity_exact(&reopened);
    let report = check(&reopened, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    assert_eq!(restored(&reopened, &a.id), first);
    assert_eq!(restored(&reopened, &b.id), data(2, 70_000));
    assert_eq!(restored(&reopened, &c.id), data(4, 300_000));
}

#[test]
fn drafted_parity_is_the_parity_of_the_packs_on_disk() {
    let dir = std::env::temp_dir().join(format!("ca-drafts-{}", random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(Arc::new(LocalStorage::new(&dir)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn drafted_parity_on_object_storage_is_exact_too() {
    let dir = std::env::temp_dir().join(format!("ca-drafts-obj-{}", random_hex(6)));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(Arc::new(ObjectLike::new(&dir)));
    std::fs::remove_dir_all(&dir).unwrap();
}
