//! `config.json`: the repository's parameters, written once at init.

use serde::{Deserialize, Serialize};

use crate::codec::Compression;
use crate::error::{Error, Result};

/// The on-disk format version this engine writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

pub const DEFAULT_MIN_CHUNK: u32 = 256 * 1024;
pub const DEFAULT_AVG_CHUNK: u32 = 1024 * 1024;
pub const DEFAULT_MAX_CHUNK: u32 = 4 * 1024 * 1024;
pub const DEFAULT_PACK_TARGET: u64 = 8 * 1024 * 1024;
// Level 1: measured on a 1 GiB tar of /usr, gzip-1 ingests at ~250 MB/s on 2
// cores, gzip-6 at ~120 MB/s for 18% less space (see README, Compression).
pub const DEFAULT_GZIP_LEVEL: i32 = 1;
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoConfig {
    pub version: u32,
    pub id: String,
    pub created_at: String,
    pub chunking: ChunkingConfig,
    pub compression: CompressionConfig,
    pub encryption: Option<EncryptionConfig>,
    pub pack_target_size: u64,
    pub parity: ParityConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Always "fastcdc-2020" (the `fastcdc` crate's v2020 cut-point function).
    pub algorithm: String,
    /// FastCDC normalization level (always 1).
    pub normalization: u32,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// True when the gear table is XORed with a secret seed derived from the master key.
    pub seeded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompressionConfig {
    pub algorithm: Compression,
    pub level: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionConfig {
    /// "aes-256-gcm"
    pub algorithm: String,
    /// "hmac-sha256"
    pub chunk_id: String,
    /// "argon2id"
    pub key_derivation: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParityConfig {
    pub data_shards: u32,
    pub parity_shards: u32,
}

/// What `ContainerArchive.init()` accepts, after the JS layer's type checks.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitOptions {
    pub passphrase: Option<String>,
    pub compression: Option<Compression>,
    pub compression_level: Option<i32>,
    pub chunking: Option<ChunkingOptions>,
    pub pack_target_size: Option<u64>,
    pub parity: Option<ParityConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChunkingOptions {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl InitOptions {
    /// Validates every option and builds the config; touches nothing on disk.
    pub fn to_config(&self) -> Result<RepoConfig> {
        let chunking = self.chunking.unwrap_or(ChunkingOptions {
            min_size: DEFAULT_MIN_CHUNK,
            avg_size: DEFAULT_AVG_CHUNK,
            max_size: DEFAULT_MAX_CHUNK,
        });
        validate_chunking(&chunking)?;

        let algorithm = self.compression.unwrap_or(Compression::Gzip);
        let level = match (algorithm, self.compression_level) {
            (Compression::Gzip, None) => DEFAULT_GZIP_LEVEL,
            (Compression::Zstd, None) => DEFAULT_ZSTD_LEVEL,
            (Compression::None, None) => 0,
            (Compression::Gzip, Some(l)) if (0..=9).contains(&l) => l,
            (Compression::Zstd, Some(l)) if (1..=22).contains(&l) => l,
            (Compression::None, Some(0)) => 0,
            (alg, Some(l)) => {
                return Err(Error::invalid(format!(
                    "compressionLevel {l} is out of range for {}; use 0..9 for gzip, 1..22 for zstd, nothing for none",
                    alg.name()
                )))
            }
        };

        let pack_target_size = self.pack_target_size.unwrap_or(DEFAULT_PACK_TARGET);
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&pack_target_size) {
            return Err(Error::invalid(format!(
                "packTargetSize {pack_target_size} is out of range; use 64 KiB .. 1 GiB (default 8 MiB)"
            )));
        }

        let parity = self.parity.unwrap_or(ParityConfig {
            data_shards: 20,
            parity_shards: 1,
        });
        if parity.data_shards == 0
            || parity.parity_shards == 0
            || parity.data_shards as u64 + parity.parity_shards as u64 > 256
        {
            return Err(Error::invalid(format!(
                "parity {{ dataShards: {}, parityShards: {} }} is invalid; both must be at least 1 and their sum at most 256",
                parity.data_shards, parity.parity_shards
            )));
        }

        if let Some(p) = &self.passphrase {
            if p.is_empty() {
                return Err(Error::invalid(
                    "passphrase is empty; pass a non-empty passphrase, or leave it out for an unencrypted repository",
                ));
            }
        }
        let encrypted = self.passphrase.is_some();

        Ok(RepoConfig {
            version: FORMAT_VERSION,
            id: crate::fsutil::random_hex(32),
            created_at: crate::fsutil::now_iso8601(),
            chunking: ChunkingConfig {
                algorithm: "fastcdc-2020".into(),
                normalization: 1,
                min_size: chunking.min_size,
                avg_size: chunking.avg_size,
                max_size: chunking.max_size,
                seeded: encrypted,
            },
            compression: CompressionConfig { algorithm, level },
            encryption: encrypted.then(|| EncryptionConfig {
                algorithm: "aes-256-gcm".into(),
                chunk_id: "hmac-sha256".into(),
                key_derivation: "argon2id".into(),
            }),
            pack_target_size,
            parity,
        })
    }
}

fn validate_chunking(c: &ChunkingOptions) -> Result<()> {
    use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
    let (min, avg, max) = (c.min_size as usize, c.avg_size as usize, c.max_size as usize);
    let fail = |why: String| {
        Err(Error::invalid(format!(
            "chunking {{ minSize: {min}, avgSize: {avg}, maxSize: {max} }} is invalid: {why}"
        )))
    };
    if min % 2 != 0 || avg % 2 != 0 || max % 2 != 0 {
        return fail("every size must be even".into());
    }
    if !(MINIMUM_MIN..=MINIMUM_MAX).contains(&min) {
        return fail(format!("minSize must be {MINIMUM_MIN}..{MINIMUM_MAX}"));
    }
    if !(AVERAGE_MIN..=AVERAGE_MAX).contains(&avg) {
        return fail(format!("avgSize must be {AVERAGE_MIN}..{AVERAGE_MAX}"));
    }
    if !(MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max) {
        return fail(format!("maxSize must be {MAXIMUM_MIN}..{MAXIMUM_MAX}"));
    }
    if !(min < avg && avg < max) {
        return fail("sizes must satisfy minSize < avgSize < maxSize".into());
    }
    Ok(())
}

impl RepoConfig {
    pub fn parse(bytes: &[u8]) -> Result<RepoConfig> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config.json", e))?;
        if version.version > FORMAT_VERSION || version.version == 0 {
            return Err(Error::UnsupportedFormat(format!(
                "this repository uses format version {}, but this engine reads versions 1..{FORMAT_VERSION}; upgrade @serve.zone/containerarchive",
                version.version
            )));
        }
        let config: RepoConfig = serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config.json", e))?;
        let chunking = ChunkingOptions {
            min_size: config.chunking.min_size,
            avg_size: config.chunking.avg_size,
            max_size: config.chunking.max_size,
        };
        if config.chunking.algorithm != "fastcdc-2020" || config.chunking.normalization != 1 {
            return Err(Error::corrupt("config.json", "unknown chunking algorithm"));
        }
        validate_chunking(&chunking).map_err(|e| Error::corrupt("config.json", e))?;
        config.check_ranges().map_err(|e| Error::corrupt("config.json", e))?;
        Ok(config)
    }

    /// The ranges `InitOptions::to_config` enforces, checked again on read:
    /// e.g. a gzip level above 9 would panic in the compressor.
    fn check_ranges(&self) -> Result<(), String> {
        let level = self.compression.level;
        let level_ok = match self.compression.algorithm {
            Compression::Gzip => (0..=9).contains(&level),
            Compression::Zstd => (1..=22).contains(&level),
            Compression::None => level == 0,
        };
        if !level_ok {
            return Err(format!("compression level {level} is out of range"));
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.pack_target_size) {
            return Err(format!("packTargetSize {} is out of range", self.pack_target_size));
        }
        let p = self.parity;
        if p.data_shards == 0 || p.parity_shards == 0 || p.data_shards as u64 + p.parity_shards as u64 > 256 {
            return Err("the parity shard counts are out of range".into());
        }
        let known_encryption = self.encryption.as_ref().is_none_or(|e| {
            e.algorithm == "aes-256-gcm" && e.chunk_id == "hmac-sha256" && e.key_derivation == "argon2id"
        });
        if !known_encryption || self.chunking.seeded != self.encryption.is_some() {
            return Err("the encryption settings are unknown or inconsistent".into());
        }
        Ok(())
    }

    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_recorded() {
        let config = InitOptions::default().to_config().unwrap();
        assert_eq!(config.version, FORMAT_VERSION);
        assert_eq!(config.parity.data_shards, 20);
        assert_eq!(config.parity.parity_shards, 1);
        assert_eq!(config.compression.algorithm, Compression::Gzip);
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(RepoConfig::parse(&json).unwrap(), config);
    }

    #[test]
    fn rejects_odd_and_out_of_order_chunk_sizes() {
        for (min, avg, max) in [(1001, 4096, 16384), (8192, 4096, 16384), (512, 4096, 2048)] {
            let opts = InitOptions {
                chunking: Some(ChunkingOptions {
                    min_size: min,
                    avg_size: avg,
                    max_size: max,
                }),
                ..Default::default()
            };
            assert_eq!(opts.to_config().unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        }
    }

    #[test]
    fn rejects_newer_format_versions() {
        let mut config = InitOptions::default().to_config().unwrap();
        config.version = FORMAT_VERSION + 1;
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(RepoConfig::parse(&json).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
        assert_eq!(RepoConfig::parse(b"{not json").unwrap_err().code(), "ERR_CORRUPT");
    }
}
