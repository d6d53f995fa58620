//! Per-chunk compression. A chunk that does not shrink is stored raw, so
//! already-compressed data costs nothing on restore.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

/// How one stored chunk is encoded; the byte in pack headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BlobEncoding {
    Raw = 0,
    Gzip = 1,
    Zstd = 2,
}

impl BlobEncoding {
    pub fn from_byte(b: u8) -> Option<BlobEncoding> {
        match b {
            0 => Some(BlobEncoding::Raw),
            1 => Some(BlobEncoding::Gzip),
            2 => Some(BlobEncoding::Zstd),
            _ => None,
        }
    }
}

/// Compresses `data`; `None` means "store it raw" (no codec, or it did not shrink).
pub fn compress(algorithm: Compression, level: i32, data: &[u8]) -> Option<(BlobEncoding, Vec<u8>)> {
    let (encoding, out) = match algorithm {
        Compression::None => return None,
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::new(level as u32),
            );
            enc.write_all(data).ok()?;
            (BlobEncoding::Gzip, enc.finish().ok()?)
        }
        Compression::Zstd => (BlobEncoding::Zstd, zstd::bulk::compress(data, level).ok()?),
    };
    (out.len() < data.len()).then_some((encoding, out))
}

/// Decodes a stored chunk back to exactly `raw_len` bytes.
pub fn decompress(encoding: BlobEncoding, data: Vec<u8>, raw_len: usize) -> Result<Vec<u8>> {
    let whole = 0..data.len();
    decompress_part(encoding, data, whole, raw_len)
}

/// `decompress` of `data[payload]` (a blob decrypted in place): raw bytes
/// keep their buffer, compressed ones are read where they lie.
pub fn decompress_part(
    encoding: BlobEncoding,
    mut data: Vec<u8>,
    payload: std::ops::Range<usize>,
    raw_len: usize,
) -> Result<Vec<u8>> {
    let out = match encoding {
        BlobEncoding::Raw => {
            data.truncate(payload.end);
            data.drain(..payload.start);
            data
        }
        BlobEncoding::Gzip => {
            let mut out = crate::bufpool::take(raw_len);
            flate2::read::GzDecoder::new(&data[payload])
                .take(raw_len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Error::corrupt("a gzip chunk", e))?;
            crate::bufpool::give(data);
            out
        }
        BlobEncoding::Zstd => {
            let out = zstd_decompress(&data[payload], raw_len)?;
            crate::bufpool::give(data);
            out
        }
    };
    if out.len() != raw_len {
        return Err(Error::corrupt(
            "a chunk",
            format!("decoded to {} bytes, expected {raw_len}", out.len()),
        ));
    }
    Ok(out)
}

/// With one decompression context per thread, kept, not one made per chunk.
fn zstd_decompress(data: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| Error::corrupt("a zstd chunk", e))?);
        }
        let context = slot.as_mut().expect("made above");
        let mut out = crate::bufpool::take(raw_len);
        context
            .decompress_to_buffer(data, &mut out)
            .map_err(|e| Error::corrupt("a zstd chunk", e))?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn round_trips_every_codec() {
        let data = sample();
        for (alg, level) in [(Compression::Gzip, 6), (Compression::Zstd, 3), (Compression::Gzip, 1)] {
            let (enc, packed) = compress(alg, level, &data).expect("sample compresses");
            assert!(packed.len() < data.len());
            assert_eq!(decompress(enc, packed, data.len()).unwrap(), data);
        }
        assert!(compress(Compression::None, 0, &data).is_none());
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut noise = Vec::new();
        let mut block = [0u8; 32];
        while noise.len() < 65536 {
            block = crate::crypto::sha256(&block);
            noise.extend_from_slice(&block);
        }
        assert!(compress(Compression::Zstd, 3, &noise).is_none());
        assert!(compress(Compression::Gzip, 6, &noise).is_none());
    }

    #[test]
    fn wrong_length_or_garbage_is_corrupt() {
        let data = sample();
        let (enc, packed) = compress(Compression::Zstd, 3, &data).unwrap();
        assert_eq!(
            decompress(enc, packed, data.len() - 1).unwrap_err().code(),
            "ERR_CORRUPT"
        );
        assert_eq!(
            decompress(BlobEncoding::Gzip, vec![1, 2, 3], 10).unwrap_err().code(),
            "ERR_CORRUPT"
        );
    }
}
