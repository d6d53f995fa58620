//! Times ingest and restore of a file with the engine alone (no Node), to
//! separate engine speed from the N-API bridge in `npm run bench`.
//! Usage: cargo run --release --example ingest_file -- <file> [gzip|zstd|none] [level|-] [encrypt] [re-ingest source]
//! The re-ingest reads `re-ingest source` when given (`/dev/stdin` fed by
//! `cat <file> |`: the engine reading a pipe, as a `pg_dump` source).

use std::fs::File;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use containerarchive_core::codec::Compression;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::{restore_checked, select_item};
use containerarchive_core::{InitOptions, Repository};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .ok_or("usage: ingest_file <file> [gzip|zstd|none] [level] [encrypt]")?;
    let compression = match args.get(2).map(String::as_str) {
        Some("zstd") => Compression::Zstd,
        Some("none") => Compression::None,
        _ => Compression::Gzip,
    };
    let level = args.get(3).filter(|l| *l != "-").map(|l| l.parse()).transpose()?;
    let passphrase = (args.get(4).map(String::as_str) == Some("encrypt")).then(|| "bench".to_string());
    let dir = std::env::temp_dir().join(format!("ca-example-{}", std::process::id()));
    let repo = Repository::init(
        &dir,
        &InitOptions {
            compression: Some(compression),
            compression_level: level,
            passphrase,
            ..Default::default()
        },
    )?;
    let size = std::fs::metadata(file)?.len() as f64 / 1e6;
    let cancel = AtomicBool::new(false);
    let mut id = String::new();
    let second = args.get(5).unwrap_or(file);
    for (label, source) in [("ingest", file), ("re-ingest", second)] {
        let start = Instant::now();
        let item = IngestItem {
            name: "data".into(),
            item_type: "file".into(),
            size_hint: None,
            reader: File::open(source)?,
        };
        let m = ingest(&repo, vec![item], &IngestOptions::default(), &|_| {}, &cancel)?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label:10} {secs:.2}s {:.0} MB/s  new {} reused {} stored {:.1} MB",
            size / secs,
            m.new_chunks,
            m.reused_chunks,
            m.stored_size as f64 / 1e6
        );
        if id.is_empty() {
            id = m.id;
        }
    }
    let start = Instant::now();
    let manifest = repo.load_snapshot(&id)?;
    let item = select_item(&manifest, None)?;
    let mut bytes = 0usize;
    // The API's path: checks the item's length and SHA-256 as it streams.
    restore_checked(
        &repo,
        &id,
        item,
        &mut |d| {
            bytes += d.len();
            Ok(())
        },
        &cancel,
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!("{:10} {secs:.2}s {:.0} MB/s ({bytes} bytes)", "restore", size / secs);
    if std::env::var_os("VERIFY_FULL").is_some() {
        let start = Instant::now();
        let level = containerarchive_core::check::Level::Full;
        let report = containerarchive_core::check::verify(&repo, level, &|_| {}, &|_| {}, Default::default())?;
        let secs = start.elapsed().as_secs_f64();
        println!("{:10} {secs:.2}s ok={}", "verify full", report.ok);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
