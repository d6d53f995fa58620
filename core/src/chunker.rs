//! Content-defined chunking of a byte stream with FastCDC (2020).
//!
//! The cut points are exactly those of `fastcdc::v2020::StreamCDC` with the
//! same parameters and seed; this driver keeps a buffer of several maximum
//! chunk lengths so that the remainder is moved once per refill, not once
//! per chunk.

use std::borrow::Cow;
use std::io::{self, Read};

use fastcdc::v2020::{cut_gear, get_gear_with_seed, select_masks, Normalization};

use crate::config::ChunkingConfig;

pub struct ChunkParams {
    pub min_size: usize,
    pub avg_size: usize,
    pub max_size: usize,
    pub seed: u64,
}

impl ChunkParams {
    pub fn new(config: &ChunkingConfig, seed: u64) -> ChunkParams {
        ChunkParams {
            min_size: config.min_size as usize,
            avg_size: config.avg_size as usize,
            max_size: config.max_size as usize,
            seed: if config.seeded { seed } else { 0 },
        }
    }
}

pub struct Chunker<R> {
    source: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    min_size: usize,
    avg_size: usize,
    max_size: usize,
    masks: (u64, u64),
    gear: (Cow<'static, [u64]>, Cow<'static, [u64]>),
}

impl<R: Read> Chunker<R> {
    pub fn new(source: R, params: &ChunkParams) -> Chunker<R> {
        Chunker {
            source,
            buf: vec![0; params.max_size * 4],
            start: 0,
            end: 0,
            eof: false,
            min_size: params.min_size,
            avg_size: params.avg_size,
            max_size: params.max_size,
            masks: select_masks(params.avg_size, Normalization::Level1),
            gear: get_gear_with_seed(params.seed),
        }
    }

    /// Ensures at least `max_size` bytes are buffered, unless the source ended.
    fn fill(&mut self) -> io::Result<()> {
        if self.eof || self.end - self.start >= self.max_size {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while !self.eof && self.end < self.buf.len() {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill()?;
        let available = &self.buf[self.start..self.end];
        if available.is_empty() {
            return Ok(None);
        }
        let (mask_s, mask_l) = self.masks;
        let (_, len) = cut_gear(
            available,
            self.min_size,
            self.avg_size,
            self.max_size,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
            &self.gear.0,
            &self.gear.1,
        );
        let chunk = available[..len].to_vec();
        self.start += len;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastcdc::v2020::StreamCDC;

    fn data(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Runs of repeated bytes make the data partly compressible.
                if (i / 4096) % 3 == 0 {
                    b'a'
                } else {
                    x as u8
                }
            })
            .collect()
    }

    fn params(seed: u64) -> ChunkParams {
        ChunkParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 32768,
            seed,
        }
    }

    fn chunks(input: &[u8], p: &ChunkParams) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(input, p);
        let mut out = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    /// A reader that returns at most 1000 bytes per call, like a socket.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1000).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn cut_points_match_fastcdc_stream_cdc() {
        let input = data(1_000_003);
        for seed in [0u64, 0xDEAD_BEEF] {
            let p = params(seed);
            let ours: Vec<usize> = chunks(&input, &p).iter().map(Vec::len).collect();
            let reference: Vec<usize> = StreamCDC::with_level_and_seed(
                &input[..],
                p.min_size,
                p.avg_size,
                p.max_size,
                Normalization::Level1,
                seed,
            )
            .map(|c| c.unwrap().length)
            .collect();
            assert_eq!(ours, reference);
        }
    }

    #[test]
    fn chunking_is_deterministic_and_independent_of_read_sizes() {
        let input = data(700_001);
        let p = params(0);
        let whole = chunks(&input, &p);
        let mut trickled = Vec::new();
        let mut c = Chunker::new(Trickle(&input), &p);
        while let Some(chunk) = c.next_chunk().unwrap() {
            trickled.push(chunk);
        }
        assert_eq!(whole, trickled);
        assert_eq!(whole.concat(), input);
        assert!(whole.iter().all(|c| c.len() <= p.max_size));
    }

    #[test]
    fn an_insert_changes_only_nearby_chunks() {
        let input = data(2_000_000);
        let mut edited = input.clone();
        edited.splice(1_000_000..1_000_000, b"inserted bytes".iter().copied());
        let p = params(0);
        let before: std::collections::HashSet<Vec<u8>> = chunks(&input, &p).into_iter().collect();
        let new = chunks(&edited, &p).into_iter().filter(|c| !before.contains(c)).count();
        assert!(new <= 3, "{new} chunks changed");
    }

    #[test]
    fn seeds_change_boundaries_and_empty_input_has_no_chunks() {
        let input = data(500_000);
        assert_ne!(chunks(&input, &params(0)), chunks(&input, &params(42)));
        assert!(chunks(&[], &params(0)).is_empty());
    }
}
