//! One contract for every `Storage`: the same assertions run against a local
//! directory and against a real Garage server (S3) that the test starts.

#[path = "common/garage.rs"]
mod garage;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use containerarchive_core::fsutil::random_hex;
use containerarchive_core::storage::local::LocalStorage;
use containerarchive_core::storage::s3::{RetryPolicy, S3Config, S3Storage};
use containerarchive_core::storage::{Entry, Storage};
use garage::Garage;
use tokio::runtime::Runtime;

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

fn names(entries: Vec<Entry>) -> Vec<(String, u64)> {
    entries.into_iter().map(|e| (e.name, e.size)).collect()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// What every backend must do; `s` is empty when called.
fn contract(s: &Arc<dyn Storage>) {
    // Missing objects.
    assert_eq!(s.read("snapshots/a").unwrap(), None);
    assert_eq!(s.size("snapshots/a").unwrap(), None);
    assert_eq!(s.list("snapshots").unwrap(), vec![]);
    let e = s.read_range("snapshots/a", 0, 4).unwrap_err();
    assert_eq!(e.code(), "ERR_IO", "{e}");
    assert!(e.to_string().contains("snapshots/a"), "{e}");

    // Write, read, overwrite.
    s.write("snapshots/a", b"hello world").unwrap();
    assert_eq!(s.read("snapshots/a").unwrap().unwrap(), b"hello world");
    s.write("snapshots/a", b"hello again!").unwrap();
    assert_eq!(s.read("snapshots/a").unwrap().unwrap(), b"hello again!");
    assert_eq!(s.size("snapshots/a").unwrap(), Some(12));
    s.write("snapshots/empty", b"").unwrap();
    assert_eq!(s.read("snapshots/empty").unwrap().unwrap(), b"");

    // Ranges: exact bytes; past the end is damage, not a short answer.
    assert_eq!(s.read_range("snapshots/a", 6, 5).unwrap(), b"again");
    assert_eq!(s.read_range("snapshots/a", 0, 12).unwrap(), b"hello again!");
    assert_eq!(s.read_range("snapshots/a", 12, 0).unwrap(), b"");
    for (offset, len) in [(6, 7), (12, 1), (100, 5)] {
        let e = s.read_range("snapshots/a", offset, len).unwrap_err();
        assert_eq!(e.code(), "ERR_CORRUPT", "{offset}+{len}: {e}");
        assert!(e.to_string().contains("snapshots/a"), "{e}");
    }

    // Listing: sorted, direct children only, no temporary files.
    s.write("snapshots/c", b"ccc").unwrap();
    s.write("snapshots/b", b"b").unwrap();
    s.write("snapshots/.tmp-123-x", b"partial").unwrap();
    s.write("snapshots/sub/deeper", b"nested").unwrap();
    s.write("packs/data/0a/0a11.pack", b"pack").unwrap();
    s.write("config.json", b"{}").unwrap();
    let listed = names(s.list("snapshots").unwrap());
    let want: Vec<(String, u64)> = [("a", 12), ("b", 1), ("c", 3), ("empty", 0)]
        .iter()
        .map(|(n, l)| (n.to_string(), *l))
        .collect();
    assert_eq!(listed, want);
    assert_eq!(names(s.list("snapshots/sub").unwrap()), vec![("deeper".into(), 6)]);
    assert_eq!(names(s.list("packs").unwrap()), vec![]);
    assert_eq!(names(s.list("packs/data/0a").unwrap()), vec![("0a11.pack".into(), 4)]);
    assert_eq!(names(s.list("").unwrap()), vec![("config.json".into(), 2)]);
    assert_eq!(s.read("packs/data/0a/0a11.pack").unwrap().unwrap(), b"pack");

    // Delete: durable and idempotent.
    s.delete("snapshots/b").unwrap();
    s.delete("snapshots/b").unwrap();
    s.delete("never/was").unwrap();
    assert_eq!(s.read("snapshots/b").unwrap(), None);
    assert!(!names(s.list("snapshots").unwrap()).iter().any(|(n, _)| n == "b"));

    // A pack-sized object, whole and in ranges.
    let big = pattern(7, 8 << 20);
    s.write("packs/data/ff/big.pack", &big).unwrap();
    assert_eq!(s.size("packs/data/ff/big.pack").unwrap(), Some(big.len() as u64));
    assert!(s.read("packs/data/ff/big.pack").unwrap().unwrap() == big);
    let mid = (5 << 20) + 3;
    assert!(s.read_range("packs/data/ff/big.pack", mid as u64, 70_000).unwrap() == big[mid..mid + 70_000]);

    // Several threads at once: distinct keys and one contended key.
    let workers: Vec<_> = (0..8u8)
        .map(|t| {
            let s = Arc::clone(s);
            thread::spawn(move || {
                for i in 0..5u8 {
                    s.write(&format!("index/t{t}-{i}"), &pattern(t ^ i, 1000 + t as usize))
                        .unwrap();
                    s.write("index/shared", &pattern(t, 4096)).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let listed = names(s.list("index").unwrap());
    assert_eq!(listed.len(), 41);
    for t in 0..8u8 {
        for i in 0..5u8 {
            let got = s.read(&format!("index/t{t}-{i}")).unwrap().unwrap();
            assert_eq!(got, pattern(t ^ i, 1000 + t as usize));
        }
    }
    // The contended key holds one writer's whole object, never a mix.
    let shared = s.read("index/shared").unwrap().unwrap();
    assert!((0..8u8).any(|t| shared == pattern(t, 4096)));

    // Keys that leave the repository are refused before any request.
    for bad in ["", "/etc/passwd", "../x", "a//b", "a/./b", "a/"] {
        assert!(s.read(bad).is_err(), "{bad:?} must be refused");
        assert!(s.write(bad, b"x").is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn local_storage_meets_the_contract() {
    let dir = std::env::temp_dir().join(format!("ca-contract-{}", random_hex(6)));
    let s: Arc<dyn Storage> = Arc::new(LocalStorage::new(&dir));
    contract(&s);
    assert!(s.local_root().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn s3_storage_on_garage_meets_the_contract() {
    let Some(garage) = Garage::start("s3_storage_on_garage_meets_the_contract") else {
        return;
    };
    let rt = runtime(2);
    let config = garage.s3_config("repos/contract");
    let s3 = S3Storage::new(config.clone(), rt.handle().clone()).unwrap();
    let s: Arc<dyn Storage> = Arc::new(s3.clone());
    contract(&s);
    assert_eq!(s.location(), "s3://ca-test/repos/contract");
    assert!(s.local_root().is_none());

    // Keys live under the prefix: another prefix in the same bucket is another repository.
    let other = S3Storage::new(garage.s3_config("repos/other"), rt.handle().clone()).unwrap();
    assert_eq!(other.read("snapshots/a").unwrap(), None);
    let parent = S3Storage::new(garage.s3_config("repos"), rt.handle().clone()).unwrap();
    assert_eq!(parent.read("contract/snapshots/a").unwrap().unwrap(), b"hello again!");

    // Wrong credentials: ERR_IO naming the object, never a credential.
    let wrong_secret = "wrong-secret-0123456789abcdef";
    let denied = S3Storage::new(
        S3Config {
            secret_access_key: Some(wrong_secret.into()),
            ..config.clone()
        },
        rt.handle().clone(),
    )
    .unwrap();
    let e = denied.read("snapshots/a").unwrap_err();
    assert_eq!(e.code(), "ERR_IO", "{e}");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("s3://ca-test/repos/contract/snapshots/a"), "{shown}");
    assert!(shown.contains("credentials"), "the message says what to check: {shown}");
    for secret in [wrong_secret, &garage.access_key_id, &garage.secret_access_key] {
        assert!(!shown.contains(secret), "a credential leaked: {shown}");
    }
    let e = s.read_range("snapshots/missing", 0, 1).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(&garage.secret_access_key));

    // Calls from inside async code: a worker of the storage's own one-worker
    // runtime (must not deadlock), and a current-thread runtime (must not panic).
    let rt1 = runtime(1);
    let inner = S3Storage::new(config.clone(), rt1.handle().clone()).unwrap();
    let got = rt1
        .block_on(async move { tokio::spawn(async move { inner.read("snapshots/a") }).await })
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap(), b"hello again!");
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner = s3.clone();
    assert_eq!(
        single.block_on(async move { inner.size("snapshots/a") }).unwrap(),
        Some(12)
    );
}

#[test]
fn s3_storage_fails_in_bounded_time_when_the_server_is_down() {
    let Some(mut garage) = Garage::start("s3_storage_fails_in_bounded_time_when_the_server_is_down") else {
        return;
    };
    let rt = runtime(2);
    let config = S3Config {
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            io_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        },
        ..garage.s3_config("down")
    };
    let s = S3Storage::new(config, rt.handle().clone()).unwrap();
    s.write("config.json", b"{}").unwrap();
    garage.kill_all();
    for op in ["read", "write", "list", "size", "delete"] {
        let started = Instant::now();
        let result = match op {
            "read" => s.read("config.json").map(drop),
            "write" => s.write("config.json", b"{}"),
            "list" => s.list("snapshots").map(drop),
            "size" => s.size("config.json").map(drop),
            _ => s.delete("config.json"),
        };
        let e = result.unwrap_err();
        assert_eq!(e.code(), "ERR_IO", "{op}: {e}");
        assert!(e.to_string().contains("s3://ca-test/down/"), "{op}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{op} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn s3_storage_on_a_three_node_cluster_survives_one_node_and_fails_cleanly_without_two() {
    let test = "s3_storage_on_a_three_node_cluster_survives_one_node_and_fails_cleanly_without_two";
    let Some(mut garage) = Garage::start_cluster(test, 3) else {
        return;
    };
    let rt = runtime(2);
    let config = S3Config {
        retry: RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            io_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(3),
        },
        ..garage.s3_config("cluster")
    };
    let s = S3Storage::new(config, rt.handle().clone()).unwrap();
    let before = pattern(1, 3 << 20);
    s.write("packs/data/00/before.pack", &before).unwrap();

    // Replication factor 3: with one node of three gone, a quorum of two remains.
    garage.nodes[2].kill();
    let after = pattern(2, 3 << 20);
    s.write("packs/data/00/after.pack", &after).unwrap();
    assert!(s.read("packs/data/00/before.pack").unwrap().unwrap() == before);
    assert!(s.read("packs/data/00/after.pack").unwrap().unwrap() == after);
    assert_eq!(names(s.list("packs/data/00").unwrap()).len(), 2);

    // Without a quorum, requests fail with ERR_IO within the retry budget.
    garage.nodes[1].kill();
    let started = Instant::now();
    let e = s.write("packs/data/00/lost.pack", b"no quorum").unwrap_err();
    assert_eq!(e.code(), "ERR_IO", "{e}");
    assert!(e.to_string().contains("packs/data/00/lost.pack"), "{e}");
    let e = s.read("packs/data/00/before.pack").unwrap_err();
    assert_eq!(e.code(), "ERR_IO", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
