//! Peak memory of the engine alone (no Node) for a synthetic stream of N MiB:
//! ingest, then restore. Usage: cargo run --release --example memory -- <MiB>

use std::io::Read;
use std::sync::atomic::AtomicBool;

use containerarchive_core::codec::Compression;
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::{InitOptions, Repository};

/// Unique data without a per-byte RNG: a block re-stamped with a counter every 64 KiB.
struct Synthetic {
    left: u64,
    block: Vec<u8>,
    counter: u64,
    pos: usize,
}

impl Read for Synthetic {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.pos == self.block.len() {
            for at in (0..self.block.len()).step_by(65536) {
                self.counter += 1;
                self.block[at..at + 8].copy_from_slice(&self.counter.to_le_bytes());
            }
            self.pos = 0;
        }
        let n = out.len().min(self.block.len() - self.pos).min(self.left as usize);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}

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
    let mut block = vec![0u8; 1 << 20];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) as u8;
    }
    let reader = Synthetic {
        left: mib << 20,
        block,
        counter: 0,
        pos: 1 << 20,
    };
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
