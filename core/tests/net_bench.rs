//! Timings for network efficiency (issue 10): restore and full verify of a
//! default-configured repository, on a local directory and, when Garage is
//! installed, on a bucket, with the requests each made. Ignored by default:
//! `cargo test --release -p containerarchive-core --test net_bench -- --ignored --nocapture`
//! (`NET_BENCH_MIB`, default 200, sets the size).

mod common;
#[path = "common/garage.rs"]
mod garage;
#[path = "common/wire.rs"]
mod wire;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerarchive_core::check::{verify, Level};
use containerarchive_core::fsutil::random_hex;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::storage::{self, Storage};
use containerarchive_core::InitOptions;
use containerarchive_core::Repository;
use wire::Wire;

/// Incompressible bytes (xorshift64), fast enough not to bound the ingest.
struct Noise {
    left: u64,
    x: u64,
}

impl std::io::Read for Noise {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (out.len().min(self.left as usize)) & !7;
        let n = if n == 0 { out.len().min(self.left as usize) } else { n };
        for word in out[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            word.copy_from_slice(&self.x.to_le_bytes()[..word.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn mib() -> u64 {
    std::env::var("NET_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Ingest, restore and full verify through `wire`; prints times and requests.
pub fn run(label: &str, wire: Arc<Wire>) {
    let s: Arc<dyn Storage> = wire.clone();
    let repo = Repository::init_in(s.clone(), &InitOptions::default()).unwrap();
    let size = mib();
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: Noise {
            left: size << 20,
            x: 0x9E37_79B9_7F4A_7C15,
        },
    };
    wire.counts.reset();
    let t = Instant::now();
    let cancel = AtomicBool::new(false);
    let m = ingest(&repo, vec![item], &IngestOptions::default(), &|_| {}, &cancel).unwrap();
    let ingest_s = t.elapsed().as_secs_f64();
    println!(
        "{label}: ingest {size} MiB: {ingest_s:.2} s ({:.0} MiB/s); {}",
        size as f64 / ingest_s,
        wire.counts.summary()
    );
    let repo = Repository::open_in(s.clone(), None).unwrap();
    wire.counts.reset();
    let t = Instant::now();
    let mut n = 0u64;
    let mut sink = |b: Vec<u8>| {
        n += b.len() as u64;
        Ok(())
    };
    restore_item(&repo, &m.id, None, &mut sink, &cancel, Duration::ZERO).unwrap();
    let restore_s = t.elapsed().as_secs_f64();
    assert_eq!(n, size << 20);
    println!(
        "{label}: restore: {restore_s:.2} s ({:.0} MiB/s); {}",
        size as f64 / restore_s,
        wire.counts.summary()
    );
    wire.counts.reset();
    let t = Instant::now();
    let report = verify(&repo, Level::Full, &|_| {}, &|_| {}, Duration::ZERO).unwrap();
    let verify_s = t.elapsed().as_secs_f64();
    assert!(report.ok, "{:?}", report.errors);
    println!(
        "{label}: verify full: {verify_s:.2} s ({:.0} MiB/s); {}",
        size as f64 / verify_s,
        wire.counts.summary()
    );
}

#[test]
#[ignore]
fn bench_local() {
    let dir = std::env::temp_dir().join(format!("ca-netbench-{}", random_hex(6)));
    run("local", Wire::new(storage::local(&dir), false, None));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A local directory behind 10 ms of latency per request, taken as object
/// storage (buffered pack PUTs, ranged reads): what latency costs.
#[test]
#[ignore]
fn bench_simulated_remote() {
    let dir = std::env::temp_dir().join(format!("ca-netbench-{}", random_hex(6)));
    let wire = Wire::new(storage::local(&dir), true, Some(8));
    *wire.latency.lock().unwrap() = Duration::from_millis(10);
    run("10 ms away", wire);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same on a local Garage server, with `storage.concurrency` 8.
#[test]
#[ignore]
fn bench_garage() {
    let Some(garage) = garage::Garage::start("bench_garage") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 =
        containerarchive_core::storage::s3::S3Storage::new(garage.s3_config("bench"), rt.handle().clone()).unwrap();
    run("garage", Wire::new(Arc::new(s3), true, Some(8)));
}
