//! Test data shared by the integration tests and the examples.
#![allow(dead_code)]

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::{verify, Level, VerifyReport};
use containerarchive_core::config::{ChunkingOptions, ParityConfig};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::restore::restore_item;
use containerarchive_core::{InitOptions, Manifest, Repository};

/// Small chunks, 64 KiB packs and RS(4,1) groups: several packs and groups from a few MB.
pub fn small_options(passphrase: Option<&str>) -> InitOptions {
    InitOptions {
        passphrase: passphrase.map(String::from),
        chunking: Some(ChunkingOptions {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
        }),
        pack_target_size: Some(65536),
        parity: Some(ParityConfig {
            data_shards: 4,
            parity_shards: 1,
        }),
        ..Default::default()
    }
}

/// Ingests `bytes` as one item named "data" with default options.
pub fn ingest_bytes(repo: &Repository, bytes: &[u8]) -> Manifest {
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: bytes,
    };
    ingest(
        repo,
        vec![item],
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// Verifies at `level`, without waiting for locks.
pub fn check(repo: &Repository, level: Level) -> VerifyReport {
    verify(repo, level, &|_| {}, &|_| {}, Duration::ZERO).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Unique data without a per-byte RNG: a block re-stamped with a counter every 64 KiB.
pub struct Synthetic {
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

impl Synthetic {
    /// `mib` MiB of data in which no chunk repeats.
    pub fn new(mib: u64) -> Synthetic {
        let mut block = vec![0u8; 1 << 20];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) as u8;
        }
        Synthetic {
            left: mib << 20,
            block,
            counter: 0,
            pos: 1 << 20,
        }
    }
}

/// The bytes of single-item snapshot `id`, restored (panics on an error).
pub fn restored(repo: &Repository, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = |bytes: Vec<u8>| {
        out.extend_from_slice(&bytes);
        Ok(())
    };
    restore_item(repo, id, None, &mut sink, &AtomicBool::new(false), Duration::ZERO).unwrap();
    out
}
