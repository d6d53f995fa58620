//! Memory is bounded whatever the stream length: the engine's peak RSS for a
//! 1 GiB ingest + restore stays within a small margin of a 256 MiB one.
//! (Its own test binary, so no other test shares the process.)
#![cfg(target_os = "linux")]

use std::sync::atomic::AtomicBool;

use containerarchive_core::codec::Compression;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::{InitOptions, Repository};

mod common;
use common::Synthetic;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn round_trip(mib: u64) -> u64 {
    let dir = std::env::temp_dir().join(format!("ca-mem-{}-{mib}", std::process::id()));
    let repo = Repository::init(
        &dir,
        &InitOptions {
            compression: Some(Compression::None),
            ..Default::default()
        },
    )
    .unwrap();
    reset_peak();
    let reader = Synthetic::new(mib);
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader,
    };
    let cancel = AtomicBool::new(false);
    let m = ingest(&repo, vec![item], &IngestOptions::default(), &|_| {}, &cancel).unwrap();
    let mut bytes = 0u64;
    restore_item(
        &repo,
        &m.id,
        None,
        &mut |d| Ok(bytes += d.len() as u64),
        &cancel,
        Default::default(),
    )
    .unwrap();
    assert_eq!(bytes, mib << 20);
    let peak = peak_rss_kib();
    std::fs::remove_dir_all(&dir).unwrap();
    peak
}

/// glibc adapts its mmap threshold upwards after large frees, after which
/// freed chunk buffers stay in the heap and the peak depends on timing, not on
/// what is live. A fixed threshold makes RSS track live memory (as the Node
/// memory test does with MALLOC_MMAP_THRESHOLD_).
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any worker thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[test]
fn peak_memory_does_not_grow_with_stream_length() {
    fix_mmap_threshold();
    round_trip(16); // warm up allocator arenas and thread stacks
                    // 256 MiB already runs the pipeline at its steady state (every queue,
                    // pack buffer and parity stripe in use), so only growth with length remains.
    let small = round_trip(256);
    let large = round_trip(1024);
    eprintln!(
        "peak RSS: 256 MiB -> {} MiB, 1 GiB -> {} MiB",
        small / 1024,
        large / 1024
    );
    // At most ~10 chunks (<= 4 MiB each, raw plus encoded) are in flight, so a
    // longer stream can raise the peak by a bounded amount, never in proportion.
    assert!(
        large <= small + 32 * 1024,
        "1 GiB peaked at {} MiB, 256 MiB at {} MiB",
        large / 1024,
        small / 1024
    );
}
