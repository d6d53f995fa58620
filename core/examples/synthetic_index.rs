//! Writes an encrypted repository whose index lists `<terabytes>` TB of
//! chunks (1 MiB each, the default average, 8 chunks per pack) with no pack
//! bodies, so `npm run bench` can time `open()` against a large index.
//! Usage: cargo run --release --example synthetic_index -- <dir> <terabytes>

use std::path::Path;

use containerarchive_core::codec::Compression;
use containerarchive_core::pack::{PackEntry, PackRecord};
use containerarchive_core::{InitOptions, Repository};
use sha2::{Digest, Sha256};

const CHUNK: u64 = 1 << 20;
const CHUNKS_PER_PACK: u64 = 8;
/// Packs per index file: one file per ~80 GB ingested, as a few large backups leave.
const PACKS_PER_FILE: u64 = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(tb)) = (args.get(1), args.get(2)) else {
        return Err("usage: synthetic_index <dir> <terabytes>".into());
    };
    let chunks = (tb.parse::<f64>()? * 1e12 / CHUNK as f64) as u64;
    let repo = Repository::init(
        Path::new(dir),
        &InitOptions {
            compression: Some(Compression::Zstd),
            passphrase: Some("bench".into()),
            ..Default::default()
        },
    )?;
    let id = |kind: &str, n: u64| -> [u8; 32] { Sha256::digest(format!("{kind}{n}")).into() };
    let packs = chunks.div_ceil(CHUNKS_PER_PACK);
    for p in 0..packs {
        let entries: Vec<PackEntry> = (p * CHUNKS_PER_PACK..((p + 1) * CHUNKS_PER_PACK).min(chunks))
            .map(|c| PackEntry {
                id: id("chunk", c),
                encoding: 2,
                length: (CHUNK / 2) as u32,
                raw_length: CHUNK as u32,
            })
            .collect();
        let size = entries.iter().map(|e| e.length as u64).sum::<u64>() + 1024;
        repo.index_mut().add_unpersisted(PackRecord {
            id: id("pack", p),
            size,
            entries,
        });
        if (p + 1) % PACKS_PER_FILE == 0 || p + 1 == packs {
            repo.flush_index()?;
        }
    }
    drop(repo);
    // Where open()'s time goes, for the bench's report.
    let start = std::time::Instant::now();
    let repo = Repository::open(Path::new(dir), Some("bench"))?;
    let open = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let (index, _) = repo.load_index_from_disk()?;
    let load = start.elapsed().as_secs_f64();
    assert_eq!(index.chunk_count() as u64, chunks);
    println!(
        "{{\"chunks\":{chunks},\"packs\":{packs},\"engineOpenSeconds\":{open:.3},\"indexLoadSeconds\":{load:.3}}}"
    );
    Ok(())
}
