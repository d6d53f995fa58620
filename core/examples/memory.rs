//! Peak memory of the engine alone (no Node) for a synthetic stream of N MiB:
//! ingest, then restore. Usage: cargo run --release --example memory -- <MiB>

use std::sync::atomic::AtomicBool;

use containerarchive_core::codec::Compression;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::{InitOptions, Repository};

#[path = "../tests/common/mod.rs"]
mod common;
use common::Synthetic;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = std::env::args().nth(1).ok_or("usage: memory <MiB>")?.parse()?;
    let dir = std::env::temp_dir().join(format!("ca-memory-{}", std::process::id()));
    let repo = Repository::init(
        &dir,
        &InitOptions {
            compression: Some(Compression::None),
            ..Default::default()
        },
    )?;
    let reader = Synthetic::new(mib);
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader,
    };
    let cancel = AtomicBool::new(false);
    let m = ingest(&repo, vec![item], &IngestOptions::default(), &|_| {}, &cancel)?;
    let after_ingest = peak_rss_mib();
    let mut bytes = 0u64;
    restore_item(
        &repo,
        &m.id,
        None,
        &mut |d| Ok(bytes += d.len() as u64),
        &cancel,
        Default::default(),
    )?;
    println!(
        "{mib} MiB: peak RSS after ingest {after_ingest} MiB, after restore {} MiB ({bytes} bytes)",
        peak_rss_mib()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
