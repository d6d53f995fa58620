//! Property tests of every decoder of on-disk bytes: pack header and trailer,
//! `.idx`, index file, snapshot manifest, group manifest, key file, config and
//! lock record. Inputs are arbitrary bytes and mutations of valid files (byte
//! edits; for JSON also edits of the value). For every input:
//! - no panic (proptest reports a panicking case with its input);
//! - memory proportional to the input: the decode call never holds more than
//!   `MEM_FACTOR` x input + `MEM_SLACK` bytes at once (counting allocator,
//!   `alloc.rs`); 64x leaves room for JSON strings becoming `String`s and
//!   vector doubling, 1 MiB for fixed costs; a reservation driven by a length
//!   field is what exceeds it;
//! - what is rejected has the right code (`ERR_CORRUPT`, or
//!   `ERR_UNSUPPORTED_FORMAT` for a version), and what is accepted is valid by
//!   the decoder's own rules (binary formats: it re-encodes to the same bytes).
//! Valid files also round-trip: decode(encode(x)) == x.
//!
//! Each property runs 10,000 cases; set CONTAINERARCHIVE_PROPTEST_CASES for
//! more (or fewer). Failures are not persisted to files: proptest prints the
//! minimal failing input.

mod alloc;
mod mutate;

use std::sync::OnceLock;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use containerarchive_core::codec::Compression;
use containerarchive_core::config::{ChunkingOptions, InitOptions, ParityConfig, RepoConfig, FORMAT_VERSION};
use containerarchive_core::crypto::{
    KdfParams, KeyFile, Keys, Sealer, WrappedKey, AAD_INDEX, AAD_PACK_HEADER, AAD_PARITY, AAD_SNAPSHOT,
};
use containerarchive_core::error::{Error, Result};
use containerarchive_core::index::{decode_index_file, encode_index_file};
use containerarchive_core::lock::{parse_lock_record, LockRecord};
use containerarchive_core::pack::{
    encode_entries, parse_idx, parse_pack_header, parse_pack_trailer, seal_header, PackEntry, PackId, PackRecord,
    ENTRY_LEN, IDX_MAGIC, PACK_MAGIC,
};
use containerarchive_core::parity::{parse_group, GroupManifest, Member, ParityFile, GROUP_VERSION};
use containerarchive_core::snapshot::{Manifest, ManifestItem, PLAIN_MANIFEST_VERSION};
use containerarchive_core::Repository;

use mutate::{apply, apply_json, byte_edits, json_edits, ByteEdit, JsonEdit};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const MEM_FACTOR: usize = 64;
const MEM_SLACK: usize = 1 << 20;
const CORRUPT: &[&str] = &["ERR_CORRUPT"];
const CORRUPT_OR_VERSION: &[&str] = &["ERR_CORRUPT", "ERR_UNSUPPORTED_FORMAT"];

fn cases() -> u32 {
    std::env::var("CONTAINERARCHIVE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn config_with(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn config() -> ProptestConfig {
    config_with(cases())
}

/// Runs `decode` on `input` under the memory bound and checks its outcome:
/// an error with one of the `allowed` codes, or a value `valid` accepts.
fn check<T>(
    input: &[u8],
    allowed: &[&str],
    decode: impl FnOnce(&[u8]) -> Result<T>,
    valid: impl FnOnce(&T) -> std::result::Result<(), TestCaseError>,
) -> std::result::Result<Option<T>, TestCaseError> {
    let (out, peak) = alloc::peak_during(|| decode(input));
    let limit = MEM_FACTOR * input.len() + MEM_SLACK;
    prop_assert!(
        peak <= limit,
        "decoding {} bytes held {peak} bytes at once (limit {limit})",
        input.len()
    );
    match out {
        Ok(v) => {
            valid(&v)?;
            Ok(Some(v))
        }
        Err(e) => {
            prop_assert!(
                allowed.contains(&e.code()),
                "{} ({e}) is not one of {allowed:?}",
                e.code()
            );
            Ok(None)
        }
    }
}

/// A String-error decoder as its load function reports it.
fn corrupt<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(|detail| Error::corrupt("the file", detail))
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::from_master(&[0x5a; 32]))
}

/// A plain and an encrypted repository, for the public seal/unseal path.
fn repos() -> &'static [Repository; 2] {
    static REPOS: OnceLock<[Repository; 2]> = OnceLock::new();
    REPOS.get_or_init(|| {
        let make = |passphrase: Option<&str>| {
            let dir = std::env::temp_dir().join(format!("ca-decoders-{}-{}", std::process::id(), passphrase.is_some()));
            let repo = Repository::init(
                &dir,
                &InitOptions {
                    passphrase: passphrase.map(str::to_string),
                    ..Default::default()
                },
            )
            .unwrap();
            // Sealing needs only the keys in memory.
            std::fs::remove_dir_all(&dir).unwrap();
            repo
        };
        [make(None), make(Some("decoders"))]
    })
}

// ---------------------------------------------------------------- generators

fn hex_id() -> impl Strategy<Value = String> {
    any::<[u8; 32]>().prop_map(hex::encode)
}

/// Any text, control and non-ASCII characters included (cheaper than a regex).
fn text(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        1970u32..10000,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        0u32..1000,
    )
        .prop_map(|(y, mo, d, h, mi, s, ms)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"))
}

fn entry(max_len: u32) -> impl Strategy<Value = PackEntry> {
    (any::<[u8; 32]>(), any::<u8>(), 0..=max_len, any::<u32>()).prop_map(|(id, encoding, length, raw_length)| {
        PackEntry {
            id,
            encoding,
            length,
            raw_length,
        }
    })
}

/// A pack's entries (short blobs, so whole packs stay small), its `sealer` mode and blob filler.
fn pack_case() -> impl Strategy<Value = (Vec<PackEntry>, u8, u8)> {
    (vec(entry(40), 0..8), 0u8..3, any::<u8>())
}

fn pack_record() -> impl Strategy<Value = PackRecord> {
    (any::<[u8; 32]>(), any::<u64>(), vec(entry(u32::MAX), 0..6)).prop_map(|(id, size, entries)| PackRecord {
        id,
        size,
        entries,
    })
}

fn manifest() -> impl Strategy<Value = Manifest> {
    // Valid by the decoder's rules: unique non-empty names, size 0 exactly
    // when there are no chunks, originalSize the sum of the sizes.
    let item = (
        text(10),
        "[a-z]{0,8}",
        1u64..u32::MAX as u64,
        vec(hex_id(), 0..4),
        hex_id(),
    )
        .prop_map(|(name, item_type, size, chunks, sha256)| ManifestItem {
            name,
            item_type,
            size: if chunks.is_empty() { 0 } else { size },
            chunks,
            sha256: Some(sha256),
            catalog_of: None,
            entries: None,
            catalog_error: None,
        });
    (
        hex_id(),
        timestamp(),
        btree_map(text(8), text(8), 0..3),
        vec(item, 1..4),
        any::<[u64; 3]>(),
        (text(8), text(8)),
    )
        .prop_map(|(id, created_at, tags, mut items, [a, b, d], (host, user))| {
            for (i, item) in items.iter_mut().enumerate() {
                item.name = format!("{i}{}", item.name);
            }
            Manifest {
                version: PLAIN_MANIFEST_VERSION,
                id,
                created_at,
                tags,
                host: Some(host),
                user: Some(user),
                original_size: items.iter().map(|i| i.size).sum(),
                items,
                new_chunks: a,
                reused_chunks: b,
                stored_size: d,
            }
        })
}

fn member(max_size: u64) -> impl Strategy<Value = Member> {
    (hex_id(), 1..=max_size).prop_map(|(pack, size)| Member {
        sha256: pack.clone(),
        pack,
        size,
    })
}

/// A group manifest `GroupManifest::validate` accepts: the shard size is the
/// largest member's size, parity files have that size.
fn group() -> impl Strategy<Value = GroupManifest> {
    (any::<[u8; 16]>(), 1u32..=20, 1u32..=3, 1u64..=1 << 31)
        .prop_flat_map(|(id, d, p, max_size)| {
            (
                Just((hex::encode(id), d, p)),
                vec(member(max_size), 1..=(d as usize).min(6)),
                vec(hex_id(), p as usize),
            )
        })
        .prop_map(|((id, data_shards, parity_shards), members, parity)| {
            let shard_size = members.iter().map(|m| m.size).max().expect("at least one member");
            GroupManifest {
                version: GROUP_VERSION,
                id,
                data_shards,
                parity_shards,
                shard_size,
                members,
                parity: parity
                    .into_iter()
                    .map(|sha256| ParityFile {
                        file: format!("{sha256}.par"),
                        size: shard_size,
                        sha256,
                    })
                    .collect(),
            }
        })
}

fn key_file() -> impl Strategy<Value = KeyFile> {
    (
        any::<[u8; 16]>(),
        timestamp(),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<[u8; 16]>()),
        (any::<[u8; 12]>(), vec(any::<u8>(), 0..64)),
        // Key file version 2 (host and mac) or 1.
        (
            any::<bool>(),
            prop::sample::select(vec!["", "db-1", "h\u{e9}te.example.org"]),
            any::<[u8; 32]>(),
        ),
    )
        .prop_map(
            |(id, created_at, (memory_kib, iterations, parallelism, salt), (nonce, ct), (v2, host, mac))| {
                let mut file = KeyFile {
                    version: if v2 { 2 } else { 1 },
                    id: hex::encode(id),
                    created_at,
                    host: v2.then(|| host.to_string()),
                    mac: v2.then(|| hex::encode(mac)),
                    kdf: KdfParams {
                        algorithm: "argon2id".into(),
                        version: 0x13,
                        memory_kib,
                        iterations,
                        parallelism,
                        salt: hex::encode(salt),
                    },
                    wrapped_key: WrappedKey {
                        algorithm: "aes-256-gcm".into(),
                        nonce: hex::encode(nonce),
                        ciphertext: hex::encode(ct),
                    },
                    checksum: String::new(),
                };
                file.checksum = file.compute_checksum();
                file
            },
        )
}

fn repo_config() -> impl Strategy<Value = RepoConfig> {
    let compression = prop_oneof![
        (0i32..=9).prop_map(|l| (Compression::Gzip, l)),
        (1i32..=22).prop_map(|l| (Compression::Zstd, l)),
        Just((Compression::None, 0)),
    ];
    let chunking = prop::sample::select(vec![
        (64u32, 256u32, 1024u32),
        (2048, 8192, 32768),
        (256 * 1024, 1024 * 1024, 4 * 1024 * 1024),
        (1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024),
    ]);
    (
        compression,
        chunking,
        64u64 * 1024..=1024 * 1024 * 1024,
        (1u32..=128, 1u32..=128),
        any::<bool>(),
    )
        .prop_map(
            |((algorithm, level), (min, avg, max), pack_target, (d, p), encrypted)| {
                InitOptions {
                    passphrase: encrypted.then(|| "x".to_string()),
                    compression: Some(algorithm),
                    compression_level: Some(level),
                    chunking: Some(ChunkingOptions {
                        min_size: min,
                        avg_size: avg,
                        max_size: max,
                    }),
                    pack_target_size: Some(pack_target),
                    parity: Some(ParityConfig {
                        data_shards: d,
                        parity_shards: p,
                    }),
                }
                .to_config()
                .expect("generated options are valid")
            },
        )
}

fn lock_record() -> impl Strategy<Value = LockRecord> {
    (
        any::<[u8; 16]>(),
        any::<bool>(),
        "[a-z0-9.-]{1,20}",
        1u32..=i32::MAX as u32,
        timestamp(),
        timestamp(),
    )
        .prop_map(|(id, exclusive, hostname, pid, created_at, refreshed_at)| {
            LockRecord {
                id: hex::encode(id),
                exclusive,
                hostname,
                pid,
                created_at,
                refreshed_at,
                checksum: None,
            }
            .sealed()
        })
}

/// Byte edits of the text, or edits of the JSON value.
#[derive(Debug, Clone)]
enum JsonMutation {
    Bytes(Vec<ByteEdit>),
    Value(Vec<JsonEdit>),
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        1 => byte_edits().prop_map(JsonMutation::Bytes),
        2 => json_edits().prop_map(JsonMutation::Value),
    ]
}

fn mutate_json(valid: &[u8], mutation: &JsonMutation) -> Vec<u8> {
    match mutation {
        JsonMutation::Bytes(edits) => {
            let mut bytes = valid.to_vec();
            apply(&mut bytes, &[], edits);
            bytes
        }
        JsonMutation::Value(edits) => {
            let mut value: Value = serde_json::from_slice(valid).expect("valid JSON");
            apply_json(&mut value, edits);
            serde_json::to_vec(&value).expect("serialises")
        }
    }
}

/// Arbitrary bytes, sometimes starting with `magic`, so decoders get past it.
fn bytes_after(magic: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), 0..1024), any::<bool>()).prop_map(
        move |(tail, with_magic)| {
            if with_magic {
                [magic, &tail].concat()
            } else {
                tail
            }
        },
    )
}

// ---------------------------------------------------------------- pack and .idx

/// Offsets of the count and length fields of `seal_header` output at `at`
/// (plain only; the checksum trailer comes after the entries).
fn header_fields(at: usize, entries: &[PackEntry], sealer: Sealer) -> Vec<usize> {
    if matches!(sealer, Sealer::Encrypted(_)) {
        return Vec::new();
    }
    let mut fields = vec![at];
    for i in 0..entries.len() {
        fields.extend([at + 4 + i * ENTRY_LEN + 33, at + 4 + i * ENTRY_LEN + 37]);
    }
    fields
}

/// A pack as `PackWriter` lays it out, and its field offsets.
fn build_pack(entries: &[PackEntry], sealer: Sealer, fill: u8) -> (Vec<u8>, Vec<usize>) {
    let mut bytes: Vec<u8> = entries.iter().flat_map(|e| vec![fill; e.length as usize]).collect();
    let header = seal_header(sealer, entries);
    let mut fields = header_fields(bytes.len(), entries, sealer);
    bytes.extend_from_slice(&header);
    fields.push(bytes.len());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(PACK_MAGIC);
    (bytes, fields)
}

/// What `read_pack_header` does, on the pack's bytes in memory.
fn decode_pack(bytes: &[u8], id: PackId, sealer: Sealer) -> std::result::Result<PackRecord, String> {
    let size = bytes.len() as u64;
    let header_len = parse_pack_trailer(&bytes[bytes.len().saturating_sub(12)..], size)? as usize;
    let end = bytes.len() - 12;
    parse_pack_header(&bytes[end - header_len..end], id, size, sealer)
}

/// A stored header that decoded to `r`: sealed, only the original opens;
/// plain, it is the canonical encoding of the entries (with its checksum,
/// or without one in a legacy repository).
fn valid_header(
    stored: &[u8],
    sealer: Sealer,
    original: &[PackEntry],
    r: &PackRecord,
) -> std::result::Result<(), TestCaseError> {
    match sealer {
        Sealer::Encrypted(_) => prop_assert_eq!(&r.entries[..], original),
        Sealer::Plain { legacy } => {
            let mut raw = Vec::new();
            encode_entries(&r.entries, &mut raw);
            let sealed = seal_header(sealer, &r.entries);
            prop_assert!(
                stored == &sealed[..] || (legacy && stored == &raw[..]),
                "a non-canonical header decoded"
            );
        }
    }
    prop_assert_eq!(r.blobs_len() + stored.len() as u64 + 12, r.size);
    Ok(())
}

fn valid_pack(
    bytes: &[u8],
    sealer: Sealer,
    original: &[PackEntry],
    r: &PackRecord,
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(r.size, bytes.len() as u64);
    let end = bytes.len() - 12;
    let header_len = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap()) as usize;
    valid_header(&bytes[end - header_len..end], sealer, original, r)
}

fn build_idx(entries: &[PackEntry], sealer: Sealer, size: u64) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = IDX_MAGIC.to_vec();
    bytes.extend_from_slice(&size.to_le_bytes());
    let mut fields = vec![8];
    fields.extend(header_fields(16, entries, sealer));
    bytes.extend_from_slice(&seal_header(sealer, entries));
    (bytes, fields)
}

fn valid_idx(
    bytes: &[u8],
    sealer: Sealer,
    original: &[PackEntry],
    r: &PackRecord,
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(&bytes[8..16], &r.size.to_le_bytes()[..]);
    valid_header(&bytes[16..], sealer, original, r)
}

/// 0: plain (checksummed), 1: plain in a legacy (version 1) repository, 2: encrypted.
fn sealer(mode: u8) -> Sealer<'static> {
    match mode {
        0 => Sealer::Plain { legacy: false },
        1 => Sealer::Plain { legacy: true },
        _ => Sealer::Encrypted(keys()),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pack_arbitrary_bytes(
        mut bytes in vec(any::<u8>(), 0..1024),
        header_len in prop_oneof![0u32..64, any::<u32>()],
        with_trailer: bool,
        mode in 0u8..3,
    ) {
        if with_trailer {
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(PACK_MAGIC);
        }
        let k = sealer(mode);
        check(&bytes, CORRUPT, |b| corrupt(decode_pack(b, [0; 32], k)), |r| valid_pack(&bytes, k, &[], r))?;
    }

    #[test]
    fn pack_mutated((entries, mode, fill) in pack_case(), edits in byte_edits()) {
        let k = sealer(mode);
        let (mut bytes, fields) = build_pack(&entries, k, fill);
        let id = [7; 32];
        let decoded = decode_pack(&bytes, id, k).unwrap();
        prop_assert_eq!(&decoded.entries, &entries, "round trip");
        prop_assert_eq!(decoded.size, bytes.len() as u64);
        apply(&mut bytes, &fields, &edits);
        check(&bytes, CORRUPT, |b| corrupt(decode_pack(b, id, k)), |r| valid_pack(&bytes, k, &entries, r))?;
    }

    #[test]
    fn idx_arbitrary_bytes(bytes in bytes_after(IDX_MAGIC), mode in 0u8..3) {
        let k = sealer(mode);
        check(&bytes, CORRUPT, |b| corrupt(parse_idx(b, [0; 32], k)), |r| valid_idx(&bytes, k, &[], r))?;
    }

    #[test]
    fn idx_mutated((entries, mode, fill) in pack_case(), edits in byte_edits()) {
        let k = sealer(mode);
        let (pack, _) = build_pack(&entries, k, fill);
        let (mut bytes, fields) = build_idx(&entries, k, pack.len() as u64);
        let decoded = parse_idx(&bytes, [7; 32], k).unwrap();
        prop_assert_eq!(decoded, decode_pack(&pack, [7; 32], k).unwrap(), "the .idx says what the pack says");
        apply(&mut bytes, &fields, &edits);
        check(&bytes, CORRUPT, |b| corrupt(parse_idx(b, [7; 32], k)), |r| valid_idx(&bytes, k, &entries, r))?;
    }
}

// ---------------------------------------------------------------- index file

fn index_fields(records: &[PackRecord]) -> Vec<usize> {
    let mut fields = vec![8];
    let mut at = 12;
    for r in records {
        fields.push(at + 32);
        fields.extend(header_fields(at + 40, &r.entries, sealer(0)));
        at += 40 + 4 + r.entries.len() * ENTRY_LEN;
    }
    fields
}

fn valid_index(bytes: &[u8], records: &Vec<PackRecord>) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(encode_index_file(records), bytes);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn index_file_arbitrary_bytes(bytes in bytes_after(b"CAINDEX1")) {
        check(&bytes, CORRUPT, |b| corrupt(decode_index_file(b)), |r| valid_index(&bytes, r))?;
    }

    #[test]
    fn index_file_mutated(records in vec(pack_record(), 0..4), edits in byte_edits()) {
        let mut bytes = encode_index_file(&records);
        prop_assert_eq!(&decode_index_file(&bytes).unwrap(), &records, "round trip");
        let fields = index_fields(&records);
        apply(&mut bytes, &fields, &edits);
        check(&bytes, CORRUPT, |b| corrupt(decode_index_file(b)), |r| valid_index(&bytes, r))?;
    }
}

// ---------------------------------------------------------------- JSON files

fn valid_manifest(id: &str, m: &Manifest) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(&m.id, id);
    for item in &m.items {
        prop_assert!(item.chunk_ids().is_ok());
    }
    let again = Repository::parse_snapshot(&serde_json::to_vec(m).unwrap(), id, "again").unwrap();
    prop_assert_eq!(&again, m);
    Ok(())
}

fn valid_group(name: &str, g: &GroupManifest) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(g.file_name(), name);
    prop_assert!(g.validate(name).is_ok());
    prop_assert!(!g.members.is_empty() && g.members.len() <= g.data_shards as usize);
    prop_assert_eq!(g.parity.len(), g.parity_shards as usize);
    prop_assert_eq!(g.members.iter().map(|m| m.size).max(), Some(g.shard_size));
    Ok(())
}

fn valid_key_file(k: &KeyFile) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(&k.checksum, &k.compute_checksum());
    Ok(())
}

/// An accepted config is one `init()` could have written.
fn valid_config(c: &RepoConfig) -> std::result::Result<(), TestCaseError> {
    prop_assert!((1..=FORMAT_VERSION).contains(&c.version));
    prop_assert_eq!(&c.chunking.algorithm, "fastcdc-2020");
    prop_assert_eq!(c.chunking.normalization, 1);
    let options = InitOptions {
        passphrase: c.encryption.as_ref().map(|_| "x".to_string()),
        compression: Some(c.compression.algorithm),
        compression_level: Some(c.compression.level),
        chunking: Some(ChunkingOptions {
            min_size: c.chunking.min_size,
            avg_size: c.chunking.avg_size,
            max_size: c.chunking.max_size,
        }),
        pack_target_size: Some(c.pack_target_size),
        parity: Some(c.parity),
    };
    let rebuilt = options.to_config();
    prop_assert!(rebuilt.is_ok(), "accepted a config init() refuses: {:?}", rebuilt.err());
    let rebuilt = rebuilt.unwrap();
    prop_assert_eq!(&rebuilt.encryption, &c.encryption);
    prop_assert_eq!(rebuilt.chunking.seeded, c.chunking.seeded);
    Ok(())
}

fn valid_lock(l: &LockRecord) -> std::result::Result<(), TestCaseError> {
    prop_assert!((1..=i32::MAX as u32).contains(&l.pid));
    let _ = l.is_stale(i64::MAX / 2, "not-this-host");
    let _ = l.is_stale(0, "not-this-host");
    Ok(())
}

const SNAPSHOT_ID: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_decoders_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        check(&bytes, CORRUPT_OR_VERSION, |b| Repository::parse_snapshot(b, SNAPSHOT_ID, "m"), |m| valid_manifest(SNAPSHOT_ID, m))?;
        check(&bytes, CORRUPT, |b| parse_group(b, "g.group", "g"), |g| valid_group("g.group", g))?;
        check(&bytes, CORRUPT, |b| KeyFile::parse(b, "k"), valid_key_file)?;
        check(&bytes, CORRUPT_OR_VERSION, RepoConfig::parse, valid_config)?;
        check(&bytes, CORRUPT, |b| parse_lock_record(b, "l.json"), valid_lock)?;
    }

    #[test]
    fn snapshot_manifest_mutated(m in manifest(), mutation in json_mutation()) {
        let valid = serde_json::to_vec(&m).unwrap();
        prop_assert_eq!(&Repository::parse_snapshot(&valid, &m.id, "m").unwrap(), &m, "round trip");
        let bytes = mutate_json(&valid, &mutation);
        check(&bytes, CORRUPT_OR_VERSION, |b| Repository::parse_snapshot(b, &m.id, "m"), |x| valid_manifest(&m.id, x))?;
    }

    #[test]
    fn group_manifest_mutated(g in group(), mutation in json_mutation()) {
        let valid = serde_json::to_vec(&g).unwrap();
        let name = g.file_name();
        prop_assert_eq!(&parse_group(&valid, &name, "g").unwrap(), &g, "round trip");
        let bytes = mutate_json(&valid, &mutation);
        check(&bytes, CORRUPT, |b| parse_group(b, &name, "g"), |x| valid_group(&name, x))?;
    }

    #[test]
    fn key_file_mutated(k in key_file(), mutation in json_mutation()) {
        let valid = serde_json::to_vec_pretty(&k).unwrap();
        let parsed = KeyFile::parse(&valid, "k").unwrap();
        prop_assert_eq!(serde_json::to_value(&parsed).unwrap(), serde_json::to_value(&k).unwrap(), "round trip");
        let bytes = mutate_json(&valid, &mutation);
        check(&bytes, CORRUPT, |b| KeyFile::parse(b, "k"), valid_key_file)?;
    }

    #[test]
    fn config_mutated(c in repo_config(), mutation in json_mutation()) {
        let valid = serde_json::to_vec_pretty(&c).unwrap();
        prop_assert_eq!(&RepoConfig::parse(&valid).unwrap(), &c, "round trip");
        let bytes = mutate_json(&valid, &mutation);
        check(&bytes, CORRUPT_OR_VERSION, RepoConfig::parse, valid_config)?;
    }

    #[test]
    fn lock_record_mutated(l in lock_record(), mutation in json_mutation()) {
        let valid = serde_json::to_vec_pretty(&l).unwrap();
        prop_assert_eq!(&parse_lock_record(&valid, "l.json").unwrap(), &l, "round trip");
        let bytes = mutate_json(&valid, &mutation);
        check(&bytes, CORRUPT, |b| parse_lock_record(b, "l.json"), valid_lock)?;
    }
}

// ---------------------------------------------------------------- sealed files via the public API

/// One sealed file kind: its associated data and plaintext.
#[derive(Debug, Clone)]
enum Sealed {
    Index(Vec<PackRecord>),
    Snapshot(Manifest),
    Group(GroupManifest),
}

fn sealed() -> impl Strategy<Value = Sealed> {
    prop_oneof![
        vec(pack_record(), 0..3).prop_map(Sealed::Index),
        manifest().prop_map(Sealed::Snapshot),
        group().prop_map(Sealed::Group),
    ]
}

impl Sealed {
    fn aad(&self) -> &'static [u8] {
        match self {
            Sealed::Index(_) => AAD_INDEX,
            Sealed::Snapshot(_) => AAD_SNAPSHOT,
            Sealed::Group(_) => AAD_PARITY,
        }
    }

    fn plain(&self) -> Vec<u8> {
        match self {
            Sealed::Index(r) => encode_index_file(r),
            Sealed::Snapshot(m) => serde_json::to_vec(m).unwrap(),
            Sealed::Group(g) => serde_json::to_vec(g).unwrap(),
        }
    }

    /// Unseals and decodes like the load functions; true when it equals `self`.
    fn load(&self, repo: &Repository, stored: &[u8]) -> Result<bool> {
        let plain = repo.unseal(self.aad(), stored.to_vec(), "the file")?;
        Ok(match self {
            Sealed::Index(r) => corrupt(decode_index_file(&plain))? == *r,
            Sealed::Snapshot(m) => Repository::parse_snapshot(&plain, &m.id, "m")? == *m,
            Sealed::Group(g) => parse_group(&plain, &g.file_name(), "g")? == *g,
        })
    }
}

proptest! {
    #![proptest_config(config())]

    /// Mutated sealed files through `Repository::unseal` and the decoder: only
    /// the untouched file may open (AES-GCM, or the plain checksum envelope).
    #[test]
    fn sealed_files_mutated(file in sealed(), encrypted: bool, edits in byte_edits()) {
        let repo = &repos()[encrypted as usize];
        let stored = repo.seal(file.aad(), file.plain());
        prop_assert!(file.load(repo, &stored).unwrap(), "round trip");
        let mut bytes = stored.clone();
        apply(&mut bytes, &[], &edits);
        let allowed = if matches!(file, Sealed::Snapshot(_)) { CORRUPT_OR_VERSION } else { CORRUPT };
        check(&bytes, allowed, |b| file.load(repo, b), |same| {
            // Authenticated (encrypted) or checksummed (plain, format 2).
            prop_assert!(*same && bytes == stored, "a modified sealed file opened");
            Ok(())
        })?;
    }

    /// AES-GCM opening of arbitrary bytes fails cleanly, for every kind of file.
    #[test]
    fn sealed_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512), aad in prop::sample::select(vec![AAD_INDEX, AAD_SNAPSHOT, AAD_PARITY, AAD_PACK_HEADER])) {
        let (opened, peak) = alloc::peak_during(|| keys().open(aad, &bytes));
        prop_assert!(opened.is_none());
        prop_assert!(peak <= MEM_FACTOR * bytes.len() + MEM_SLACK);
        let err = repos()[1].unseal(aad, bytes.clone(), "the file").unwrap_err();
        prop_assert_eq!(err.code(), "ERR_CORRUPT");
    }
}

// ---------------------------------------------------------------- the file-reading load functions

proptest! {
    // Real files: fewer cases, the decoding itself is covered above.
    #![proptest_config(config_with((cases() / 50).max(20)))]

    #[test]
    fn pack_and_idx_files_mutated((entries, mode, fill) in pack_case(), edits in byte_edits(), idx_edits in byte_edits()) {
        use containerarchive_core::pack::{read_idx, read_pack_header};
        let k = sealer(mode);
        let dir = std::env::temp_dir().join(format!("ca-decoders-files-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut pack, fields) = build_pack(&entries, k, fill);
        let (mut idx, idx_fields) = build_idx(&entries, k, pack.len() as u64);
        apply(&mut pack, &fields, &edits);
        apply(&mut idx, &idx_fields, &idx_edits);
        std::fs::write(dir.join("p.pack"), &pack).unwrap();
        std::fs::write(dir.join("p.idx"), &idx).unwrap();
        let storage = containerarchive_core::storage::LocalStorage::new(&dir);
        let from_file = read_pack_header(&storage, "p.pack", [1; 32], k);
        let in_memory = decode_pack(&pack, [1; 32], k);
        match (&from_file, &in_memory) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(e), Err(_)) => prop_assert_eq!(e.code(), "ERR_CORRUPT"),
            _ => prop_assert!(false, "file {:?} vs memory {:?}", from_file, in_memory),
        }
        let from_file = read_idx(&storage, "p.idx", [1; 32], k);
        match (&from_file, parse_idx(&idx, [1; 32], k)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
            (Err(e), Err(_)) => prop_assert_eq!(e.code(), "ERR_CORRUPT"),
            (a, b) => prop_assert!(false, "file {:?} vs memory {:?}", a, b),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

// ---------------------------------------------------------------- stored chunks

proptest! {
    #![proptest_config(config())]

    /// A stored blob decodes to its chunk or fails as corrupt; the length
    /// recorded for it never sizes a buffer beyond the maximum chunk size.
    #[test]
    fn blobs_decode_or_fail(
        // Repetitive, so that it compresses and the codecs get used.
        data in (vec(any::<u8>(), 0..32), 0usize..64).prop_map(|(unit, n)| unit.repeat(n)),
        algorithm in prop::sample::select(vec![Compression::Gzip, Compression::Zstd, Compression::None]),
        raw_length in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        edits in prop_oneof![Just(Vec::new()), byte_edits()],
    ) {
        use containerarchive_core::codec::compress;
        use containerarchive_core::crypto::sha256;
        use containerarchive_core::restore::decode_blob;
        let repo = &repos()[0];
        let (encoding, mut blob) = compress(algorithm, 3, &data).map_or((0, data.clone()), |(e, b)| (e as u8, b));
        let length = raw_length.unwrap_or(data.len() as u32);
        apply(&mut blob, &[], &edits);
        let id = sha256(&data);
        let limit_extra = repo.config.chunking.max_size as usize;
        let (out, peak) = alloc::peak_during(|| decode_blob(repo, &id, &[0; 32], encoding, length, blob.clone()));
        let limit = MEM_FACTOR * blob.len() + MEM_SLACK + limit_extra;
        prop_assert!(peak <= limit, "decoding a {}-byte blob held {peak} bytes (limit {limit})", blob.len());
        match out {
            Ok(chunk) => prop_assert_eq!(chunk, data),
            Err(e) => {
                prop_assert_eq!(e.code(), "ERR_CORRUPT");
                prop_assert!(!edits.is_empty() || raw_length.is_some_and(|l| l != data.len() as u32), "{}", e);
            }
        }
    }
}
