//! `config.json`: the repository's parameters, written once at init.

use serde::{Deserialize, Serialize};

use crate::codec::Compression;
use crate::error::{Error, Result};

/// The on-disk format version this engine writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

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
    /// Hex SHA-256 of `canonical()` (version 2 on; absent in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
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
            (_, Some(l)) => l,
        };
        validate_compression(algorithm, level).map_err(Error::invalid)?;

        let pack_target_size = self.pack_target_size.unwrap_or(DEFAULT_PACK_TARGET);
        validate_pack_target(pack_target_size).map_err(Error::invalid)?;

        let parity = self.parity.unwrap_or(ParityConfig {
            data_shards: 20,
            parity_shards: 1,
        });
        validate_parity(&parity).map_err(Error::invalid)?;

        if let Some(p) = &self.passphrase {
            if p.is_empty() {
                return Err(Error::invalid(
                    "passphrase is empty; pass a non-empty passphrase, or leave it out for an unencrypted repository",
                ));
            }
        }
        let encrypted = self.passphrase.is_some();

        let mut config = RepoConfig {
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
            checksum: None,
        };
        config.checksum = Some(config.compute_checksum());
        Ok(config)
    }
}

fn validate_compression(algorithm: Compression, level: i32) -> std::result::Result<(), String> {
    let ok = match algorithm {
        Compression::Gzip => (0..=9).contains(&level),
        Compression::Zstd => (1..=22).contains(&level),
        Compression::None => level == 0,
    };
    if ok {
        return Ok(());
    }
    Err(format!(
        "compressionLevel {level} is out of range for {}; use 0..9 for gzip, 1..22 for zstd, nothing for none",
        algorithm.name()
    ))
}

fn validate_pack_target(size: u64) -> std::result::Result<(), String> {
    if (64 * 1024..=1024 * 1024 * 1024).contains(&size) {
        return Ok(());
    }
    Err(format!(
        "packTargetSize {size} is out of range; use 64 KiB .. 1 GiB (default 8 MiB)"
    ))
}

/// Reed-Solomon over GF(2^8) allows at most 256 shards in all.
pub fn validate_parity(parity: &ParityConfig) -> std::result::Result<(), String> {
    let (d, p) = (parity.data_shards as u64, parity.parity_shards as u64);
    if d >= 1 && p >= 1 && d + p <= 256 {
        return Ok(());
    }
    Err(format!(
        "parity {{ dataShards: {d}, parityShards: {p} }} is invalid; both must be at least 1 and their sum at most 256"
    ))
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

/// What one copy of config.json turned out to be.
#[derive(Debug)]
pub enum ConfigCopy {
    /// Intact: parses, in range, and (version 2 on) its checksum verifies.
    Valid(RepoConfig),
    /// Claims a version newer than this engine knows. `damaged` when it has
    /// exactly the fields this engine knows but a checksum that does not
    /// verify: a damaged version number, not a newer engine's file.
    Newer { version: u64, damaged: bool },
    /// Unreadable or failing a check.
    Damaged(Error),
}

impl ConfigCopy {
    pub fn valid(&self) -> Option<&RepoConfig> {
        match self {
            ConfigCopy::Valid(c) => Some(c),
            _ => None,
        }
    }
}

impl RepoConfig {
    /// The string the checksum covers: every field, `:`-joined (see FORMAT.md).
    pub fn canonical(&self) -> String {
        let c = &self.chunking;
        let (ea, ec, ek) = match &self.encryption {
            Some(e) => (e.algorithm.as_str(), e.chunk_id.as_str(), e.key_derivation.as_str()),
            None => ("", "", ""),
        };
        format!(
            "{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{ea}:{ec}:{ek}:{}:{}:{}",
            self.version,
            self.id,
            self.created_at,
            c.algorithm,
            c.normalization,
            c.min_size,
            c.avg_size,
            c.max_size,
            c.seeded,
            self.compression.algorithm.name(),
            self.compression.level,
            self.pack_target_size,
            self.parity.data_shards,
            self.parity.parity_shards
        )
    }

    pub fn compute_checksum(&self) -> String {
        hex::encode(crate::crypto::sha256(self.canonical().as_bytes()))
    }

    /// Parses one copy and classifies it (never fails).
    pub fn examine(bytes: &[u8]) -> ConfigCopy {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u64,
        }
        let version = match serde_json::from_slice::<VersionOnly>(bytes) {
            Ok(v) => v.version,
            Err(e) => return ConfigCopy::Damaged(Error::corrupt("config.json", e)),
        };
        let parsed = serde_json::from_slice::<RepoConfig>(bytes);
        if version > FORMAT_VERSION as u64 {
            // Only a file of a known shape can be recognised as damaged; anything
            // else may be a newer engine's and must never be "repaired".
            let damaged = parsed.is_ok_and(|c| c.checksum.as_ref() != Some(&c.compute_checksum()));
            return ConfigCopy::Newer { version, damaged };
        }
        let config = match parsed {
            Ok(c) => c,
            Err(e) => return ConfigCopy::Damaged(Error::corrupt("config.json", e)),
        };
        match config.check() {
            Ok(()) => ConfigCopy::Valid(config),
            Err(why) => ConfigCopy::Damaged(Error::corrupt("config.json", why)),
        }
    }

    /// Parses one copy on its own: a newer version is `ERR_UNSUPPORTED_FORMAT`.
    pub fn parse(bytes: &[u8]) -> Result<RepoConfig> {
        match RepoConfig::examine(bytes) {
            ConfigCopy::Valid(c) => Ok(c),
            ConfigCopy::Newer {
                version,
                damaged: false,
            } => Err(unsupported(version)),
            ConfigCopy::Newer { version, damaged: true } => Err(Error::corrupt(
                "config.json",
                format!("it claims format version {version} but its checksum does not match"),
            )),
            ConfigCopy::Damaged(e) => Err(e),
        }
    }

    /// Range-checks every field (and the checksum), as init's validation does.
    fn check(&self) -> std::result::Result<(), String> {
        match (self.version, &self.checksum) {
            (0, _) => return Err("format version 0 does not exist".into()),
            (1, None) => {}
            (_, Some(sum)) if *sum == self.compute_checksum() => {}
            (_, Some(_)) => return Err("its checksum does not match its content".into()),
            (_, None) => return Err("its checksum is missing".into()),
        }
        let id_ok = self.id.len() == 64 && self.id.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok {
            return Err("id is not 64 hex characters".into());
        }
        if self.chunking.algorithm != "fastcdc-2020" || self.chunking.normalization != 1 {
            return Err("unknown chunking algorithm".into());
        }
        validate_chunking(&ChunkingOptions {
            min_size: self.chunking.min_size,
            avg_size: self.chunking.avg_size,
            max_size: self.chunking.max_size,
        })
        .map_err(|e| e.to_string())?;
        validate_compression(self.compression.algorithm, self.compression.level)?;
        validate_pack_target(self.pack_target_size)?;
        validate_parity(&self.parity)?;
        if let Some(e) = &self.encryption {
            if e.algorithm != "aes-256-gcm" || e.chunk_id != "hmac-sha256" || e.key_derivation != "argon2id" {
                return Err("unknown encryption scheme".into());
            }
        }
        if self.chunking.seeded != self.encryption.is_some() {
            return Err("chunking.seeded must be true exactly when the repository is encrypted".into());
        }
        Ok(())
    }

    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }
}

pub fn unsupported(version: u64) -> Error {
    Error::UnsupportedFormat(format!(
        "this repository uses format version {version}, but this engine reads versions 1..{FORMAT_VERSION}; upgrade @serve.zone/containerarchive"
    ))
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
        config.checksum = Some(config.compute_checksum());
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(RepoConfig::parse(&json).unwrap_err().code(), "ERR_UNSUPPORTED_FORMAT");
        assert_eq!(RepoConfig::parse(b"{not json").unwrap_err().code(), "ERR_CORRUPT");
        // A damaged version number (the checksum no longer matches) is damage, not a newer format.
        config.checksum = Some("0".repeat(64));
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(RepoConfig::parse(&json).unwrap_err().code(), "ERR_CORRUPT");
    }

    #[test]
    fn every_value_is_range_checked_and_checksummed() {
        let good = InitOptions::default().to_config().unwrap();
        let edits: Vec<fn(&mut RepoConfig)> = vec![
            |c| c.compression.level = 1000,
            |c| c.parity.data_shards = 300,
            |c| c.parity.parity_shards = 0,
            |c| c.pack_target_size = 1,
            |c| c.chunking.min_size = 2,
            |c| c.version = 0,
            |c| c.chunking.seeded = true,
            |c| c.id = "zz".into(),
        ];
        for edit in edits {
            let mut bad = good.clone();
            edit(&mut bad);
            // Caught with the checksum recomputed (range check) and without it.
            for resum in [true, false] {
                if resum {
                    bad.checksum = Some(bad.compute_checksum());
                }
                let json = serde_json::to_vec(&bad).unwrap();
                assert_eq!(RepoConfig::parse(&json).unwrap_err().code(), "ERR_CORRUPT", "{bad:?}");
            }
        }
        // Version 1 has no checksum; a version-2 file must have one.
        let mut v1 = good.clone();
        v1.version = 1;
        v1.checksum = None;
        assert!(RepoConfig::parse(&serde_json::to_vec(&v1).unwrap()).is_ok());
        let mut unsummed = good.clone();
        unsummed.checksum = None;
        assert!(RepoConfig::parse(&serde_json::to_vec(&unsummed).unwrap()).is_err());
    }
}
