//! Keys, chunk IDs and AEAD sealing.
//!
//! A random 256-bit master key is wrapped under an Argon2id key in
//! `keys/<id>.json`. Three subkeys are derived from it with HMAC-SHA256:
//! the AES-256-GCM data key, the chunk-ID key (so no plaintext hash is ever
//! stored) and the chunker seed (so chunk sizes do not fingerprint data).

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::{now_iso8601, random_bytes, random_hex};

pub type ChunkId = [u8; 32];
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Associated data that binds a sealed metadata file to its kind.
pub const AAD_MASTER_KEY: &[u8] = b"containerarchive:master-key";
pub const AAD_PACK_HEADER: &[u8] = b"containerarchive:pack-header";
pub const AAD_INDEX: &[u8] = b"containerarchive:index";
pub const AAD_SNAPSHOT: &[u8] = b"containerarchive:snapshot";
pub const AAD_PARITY: &[u8] = b"containerarchive:parity";

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The keys of an unlocked encrypted repository.
pub struct Keys {
    cipher: Aes256Gcm,
    id_mac: Hmac<Sha256>,
    pub chunker_seed: u64,
}

impl Keys {
    pub fn from_master(master: &[u8; 32]) -> Keys {
        let data_key = hmac_sha256(master, b"containerarchive:v1:data-key");
        let id_key = hmac_sha256(master, b"containerarchive:v1:chunk-id-key");
        let seed = hmac_sha256(master, b"containerarchive:v1:chunker-seed");
        Keys {
            cipher: Aes256Gcm::new_from_slice(&data_key).expect("32-byte key"),
            id_mac: <Hmac<Sha256> as Mac>::new_from_slice(&id_key).expect("HMAC takes any key length"),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
        }
    }

    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        let mut mac = self.id_mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// `nonce || ciphertext || tag`, with a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher, aad, plaintext)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, aad, sealed)
    }

    /// `open` without a copy: decrypts `sealed` where it lies and returns
    /// where in it the plaintext is, or None when it does not authenticate
    /// (then `sealed` holds garbage).
    pub fn open_in_place(&self, aad: &[u8], sealed: &mut [u8]) -> Option<std::ops::Range<usize>> {
        let end = sealed.len().checked_sub(TAG_LEN).filter(|&end| end >= NONCE_LEN)?;
        let (head, tag) = sealed.split_at_mut(end);
        let (nonce, ct) = head.split_at_mut(NONCE_LEN);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, ct, aes_gcm::Tag::from_slice(tag))
            .ok()?;
        Some(NONCE_LEN..end)
    }
}

fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_with(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).ok()
}

/// Length of the SHA-256 trailer that seals metadata in a plain repository.
pub const CHECKSUM_LEN: usize = 32;

/// How metadata files are sealed: AES-256-GCM in an encrypted repository; in a
/// plain one, a trailer `SHA-256(aad || plain)` that catches damage (not tampering).
#[derive(Clone, Copy)]
pub enum Sealer<'a> {
    Encrypted(&'a Keys),
    /// `legacy`: also accept a file without a valid trailer (format version 1 wrote none).
    Plain {
        legacy: bool,
    },
}

impl Sealer<'_> {
    pub fn seal(&self, aad: &[u8], plain: Vec<u8>) -> Vec<u8> {
        match self {
            Sealer::Encrypted(k) => k.seal(aad, &plain),
            Sealer::Plain { .. } => {
                let trailer = plain_checksum(aad, &plain);
                let mut out = plain;
                out.extend_from_slice(&trailer);
                out
            }
        }
    }

    /// The plaintext, or `None` when the bytes do not authenticate / match their checksum.
    pub fn open(&self, aad: &[u8], stored: &[u8]) -> Option<Vec<u8>> {
        match self {
            Sealer::Encrypted(k) => k.open(aad, stored),
            Sealer::Plain { legacy } => match stored.len().checked_sub(CHECKSUM_LEN) {
                Some(n) if plain_checksum(aad, &stored[..n]) == stored[n..] => Some(stored[..n].to_vec()),
                _ if *legacy => Some(stored.to_vec()),
                _ => None,
            },
        }
    }

    /// Bytes a sealed file has beyond its plaintext.
    pub fn overhead(&self) -> usize {
        match self {
            Sealer::Encrypted(_) => NONCE_LEN + TAG_LEN,
            Sealer::Plain { .. } => CHECKSUM_LEN,
        }
    }
}

fn plain_checksum(aad: &[u8], plain: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(aad);
    h.update(plain);
    h.finalize().into()
}

/// Chunk ID: SHA-256 of the plaintext, or HMAC-SHA256 under the chunk-ID key.
pub fn chunk_id(keys: Option<&Keys>, data: &[u8]) -> ChunkId {
    match keys {
        Some(k) => k.chunk_id(data),
        None => sha256(data),
    }
}

/// The key-file version `init` and `addKey` write. Version 1 (no `host`, no
/// `mac`) stays readable: it is authenticated only by unwrapping it.
pub const KEY_FILE_VERSION: u32 = 2;
/// Longest host name a key file may carry (bytes), as in snapshot manifests.
pub const MAX_KEY_HOST_LEN: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyFile {
    pub version: u32,
    pub id: String,
    pub created_at: String,
    /// The host that created the key (version 2 on; "" when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub kdf: KdfParams,
    pub wrapped_key: WrappedKey,
    /// Version 2: hex HMAC-SHA256 of `canonical()` under the key-file MAC key,
    /// which proves the file was written by someone holding the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Hex SHA-256 of `canonical()` (version 2: `canonical() ":" mac`): tells
    /// a damaged key file from a wrong passphrase or a forged one.
    pub checksum: String,
}

impl KeyFile {
    /// The fields the checksum and MAC cover, joined by ':'. Version 2 adds
    /// `version`, `createdAt` and `host`; `check_form` keeps it unambiguous.
    pub fn canonical(&self) -> String {
        let (k, w) = (&self.kdf, &self.wrapped_key);
        let tail = format!(
            "{}:{}:{}:{}:{}:{}:{}:{}:{}",
            k.algorithm,
            k.version,
            k.memory_kib,
            k.iterations,
            k.parallelism,
            k.salt,
            w.algorithm,
            w.nonce,
            w.ciphertext
        );
        match self.version {
            1 => format!("{}:{tail}", self.id),
            v => format!(
                "{v}:{}:{}:{}:{tail}",
                self.id,
                self.created_at,
                self.host.as_deref().unwrap_or("")
            ),
        }
    }

    pub fn compute_checksum(&self) -> String {
        let covered = match (self.version, &self.mac) {
            (1, _) | (_, None) => self.canonical(),
            (_, Some(mac)) => format!("{}:{mac}", self.canonical()),
        };
        hex::encode(sha256(covered.as_bytes()))
    }

    /// The MAC a genuine version-2 file carries under `master`.
    pub fn compute_mac(&self, master: &[u8; 32]) -> String {
        let mac_key = hmac_sha256(master, b"containerarchive:v1:key-file-mac");
        hex::encode(hmac_sha256(&mac_key, self.canonical().as_bytes()))
    }

    /// Whether this is a version-2 file whose MAC verifies under `master`.
    pub fn mac_verifies(&self, master: &[u8; 32]) -> bool {
        let Some(mac) = &self.mac else { return false };
        let expected = self.compute_mac(master);
        // Constant time: the comparison must not leak how much of a forged MAC matched.
        mac.len() == expected.len() && mac.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// This (version-1) key re-issued as version 2: the same id, creation
    /// time and wrapped key, host "" (unknown), and a MAC under `master`.
    pub fn upgraded(&self, master: &[u8; 32]) -> KeyFile {
        let mut file = KeyFile {
            version: KEY_FILE_VERSION,
            host: Some(self.host.clone().unwrap_or_default()),
            mac: None,
            ..self.clone()
        };
        file.seal(master);
        file
    }

    fn seal(&mut self, master: &[u8; 32]) {
        self.mac = Some(self.compute_mac(master));
        self.checksum = self.compute_checksum();
    }

    /// Why the fields do not fit this version, if they do not. In version 2 no
    /// field but `createdAt` may hold ':' and `createdAt` has the one form the
    /// engine writes, so the ':'-joined canonical string names exactly one file.
    fn check_form(&self) -> Result<(), String> {
        match (self.version, &self.host, &self.mac) {
            (1, None, None) => return Ok(()),
            (1, ..) => return Err("a version-1 key file has no host or mac".into()),
            (2, Some(_), Some(_)) => {}
            (2, ..) => return Err("a version-2 key file needs host and mac".into()),
            (v, ..) => return Err(format!("unsupported key file version {v}")),
        }
        let host = self.host.as_deref().unwrap_or("");
        if host.len() > MAX_KEY_HOST_LEN || host.chars().any(char::is_control) {
            return Err("its host is longer than 255 bytes or holds control characters".into());
        }
        let (k, w) = (&self.kdf, &self.wrapped_key);
        let fields = [
            &self.id,
            host,
            &k.algorithm,
            &k.salt,
            &w.algorithm,
            &w.nonce,
            &w.ciphertext,
        ];
        if fields.iter().any(|f| f.contains(':')) {
            return Err("a field other than createdAt holds ':'".into());
        }
        let canonical_time =
            crate::fsutil::parse_iso8601_millis(&self.created_at).map(crate::fsutil::iso8601_from_millis);
        if canonical_time.as_deref() != Some(self.created_at.as_str()) {
            return Err("createdAt is not of the form 2026-01-31T12:00:00.000Z".into());
        }
        Ok(())
    }

    /// Parses a key file and checks its form and checksum.
    pub fn parse(bytes: &[u8], what: &str) -> Result<KeyFile> {
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what, e))?;
        file.check_form().map_err(|why| Error::corrupt(what, why))?;
        if file.checksum != file.compute_checksum() {
            return Err(Error::corrupt(what, "its checksum does not match its content"));
        }
        Ok(file)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KdfParams {
    /// "argon2id"
    pub algorithm: String,
    /// Argon2 version, 19 (0x13).
    pub version: u32,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WrappedKey {
    /// "aes-256-gcm"
    pub algorithm: String,
    /// hex
    pub nonce: String,
    /// hex of AES-256-GCM(kek, nonce, master key, aad = "containerarchive:master-key"), tag included.
    pub ciphertext: String,
}

pub const KDF_MEMORY_KIB: u32 = 64 * 1024;
pub const KDF_ITERATIONS: u32 = 3;
pub const KDF_PARALLELISM: u32 = 1;
/// Caps on what a key file may ask for: exactly what `init` writes (parallelism
/// up to 4), so a planted key file cannot make `open()` slower or hungrier.
pub const KDF_MAX_MEMORY_KIB: u32 = KDF_MEMORY_KIB;
pub const KDF_MAX_ITERATIONS: u32 = KDF_ITERATIONS;
pub const KDF_MAX_PARALLELISM: u32 = 4;

impl KdfParams {
    /// Why these parameters are refused, if they are.
    pub fn out_of_range(&self) -> Option<String> {
        let ok = self.algorithm == "argon2id"
            && self.version == 0x13
            && (8 * self.parallelism.max(1)..=KDF_MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (1..=KDF_MAX_ITERATIONS).contains(&self.iterations)
            && (1..=KDF_MAX_PARALLELISM).contains(&self.parallelism)
            && self.salt.len() >= 16
            && self.salt.len() <= 128;
        (!ok).then(|| {
            format!(
                "its KDF parameters ({} v{}, {} KiB, {} iterations, parallelism {}) are outside what this engine writes (argon2id v19, at most {KDF_MAX_MEMORY_KIB} KiB, {KDF_MAX_ITERATIONS} iterations, parallelism {KDF_MAX_PARALLELISM})",
                self.algorithm, self.version, self.memory_kib, self.iterations, self.parallelism
            )
        })
    }

    /// Relative cost of deriving a key: unlock tries the cheapest key files first.
    pub fn cost(&self) -> u64 {
        self.memory_kib as u64 * self.iterations as u64
    }
}

fn derive_kek(passphrase: &str, kdf: &KdfParams) -> Result<Aes256Gcm> {
    // Bound the parameters so a crafted key file cannot exhaust memory or time.
    if let Some(why) = kdf.out_of_range() {
        return Err(Error::corrupt("key file", why));
    }
    let salt = hex::decode(&kdf.salt).map_err(|e| Error::corrupt("key file salt", e))?;
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| Error::corrupt("key file", e))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), &salt, &mut kek)
        .map_err(|e| Error::Internal(format!("argon2: {e}")))?;
    Ok(Aes256Gcm::new_from_slice(&kek).expect("32-byte key"))
}

/// Wraps `master` under a key derived from `passphrase`: a new version-2
/// key file, made on `host`.
pub fn wrap_master_key(passphrase: &str, master: &[u8; 32], host: &str) -> Result<KeyFile> {
    let salt: [u8; 16] = random_bytes();
    let kdf = KdfParams {
        algorithm: "argon2id".into(),
        version: 0x13,
        memory_kib: KDF_MEMORY_KIB,
        iterations: KDF_ITERATIONS,
        parallelism: KDF_PARALLELISM,
        salt: hex::encode(salt),
    };
    let kek = derive_kek(passphrase, &kdf)?;
    let sealed = seal_with(&kek, AAD_MASTER_KEY, master);
    let mut file = KeyFile {
        version: KEY_FILE_VERSION,
        id: random_hex(16),
        created_at: now_iso8601(),
        host: Some(key_host(host)),
        kdf,
        wrapped_key: WrappedKey {
            algorithm: "aes-256-gcm".into(),
            nonce: hex::encode(&sealed[..NONCE_LEN]),
            ciphertext: hex::encode(&sealed[NONCE_LEN..]),
        },
        mac: None,
        checksum: String::new(),
    };
    file.seal(master);
    Ok(file)
}

/// `host` as a key file may record it: ':' and control characters become '_'
/// and it is cut to 255 bytes (host names never have them; this keeps the
/// canonical string unambiguous whatever the OS reports).
pub fn key_host(host: &str) -> String {
    let mut out = String::new();
    for c in host.chars() {
        let c = if c == ':' || c.is_control() { '_' } else { c };
        if out.len() + c.len_utf8() > MAX_KEY_HOST_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// The master key, or `ERR_WRONG_PASSPHRASE` when the tag does not verify.
pub fn unwrap_master_key(passphrase: &str, key_file: &KeyFile) -> Result<[u8; 32]> {
    if !(1..=KEY_FILE_VERSION).contains(&key_file.version) || key_file.wrapped_key.algorithm != "aes-256-gcm" {
        return Err(Error::corrupt("key file", "unsupported key file version"));
    }
    let kek = derive_kek(passphrase, &key_file.kdf)?;
    let mut sealed = hex::decode(&key_file.wrapped_key.nonce).map_err(|e| Error::corrupt("key file nonce", e))?;
    if sealed.len() != NONCE_LEN {
        return Err(Error::corrupt("key file", "nonce must be 12 bytes"));
    }
    sealed.extend(hex::decode(&key_file.wrapped_key.ciphertext).map_err(|e| Error::corrupt("key file ciphertext", e))?);
    let master = open_with(&kek, AAD_MASTER_KEY, &sealed).ok_or(Error::WrongPassphrase)?;
    let master: [u8; 32] = master
        .try_into()
        .map_err(|_| Error::corrupt("key file", "the wrapped key is not 32 bytes"))?;
    // A version-2 file must also carry the MAC of the key it wraps: one that
    // does not was not written by this repository's engine (planted).
    if key_file.version >= 2 && !key_file.mac_verifies(&master) {
        return Err(Error::corrupt(
            "key file",
            "its mac does not verify under the key it wraps",
        ));
    }
    Ok(master)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_round_trips_and_rejects_wrong_key_or_aad() {
        let keys = Keys::from_master(&[7u8; 32]);
        let other = Keys::from_master(&[8u8; 32]);
        let sealed = keys.seal(b"aad-1", b"secret payload");
        assert_eq!(keys.open(b"aad-1", &sealed).unwrap(), b"secret payload");
        assert!(
            keys.open(b"aad-2", &sealed).is_none(),
            "wrong associated data must fail"
        );
        assert!(other.open(b"aad-1", &sealed).is_none(), "wrong key must fail");
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN + 2] ^= 1;
        assert!(keys.open(b"aad-1", &flipped).is_none(), "tampered ciphertext must fail");
        assert!(keys.open(b"aad-1", &sealed[..10]).is_none());
        let mut in_place = sealed.clone();
        let plain = keys.open_in_place(b"aad-1", &mut in_place).unwrap();
        assert_eq!(&in_place[plain], b"secret payload");
        for mut bad in [flipped.clone(), sealed[..10].to_vec(), sealed.clone()] {
            let aad: &[u8] = if bad == sealed { b"aad-2" } else { b"aad-1" };
            assert!(keys.open_in_place(aad, &mut bad).is_none());
        }
    }

    #[test]
    fn nonces_are_fresh() {
        let keys = Keys::from_master(&[1u8; 32]);
        assert_ne!(keys.seal(b"", b"same"), keys.seal(b"", b"same"));
    }

    #[test]
    fn chunk_ids_are_keyed_when_encrypted() {
        let keys = Keys::from_master(&[3u8; 32]);
        let plain = chunk_id(None, b"data");
        assert_eq!(plain, sha256(b"data"));
        let keyed = chunk_id(Some(&keys), b"data");
        assert_ne!(keyed, plain);
        assert_eq!(keyed, chunk_id(Some(&keys), b"data"));
        assert_ne!(keyed, chunk_id(Some(&Keys::from_master(&[4u8; 32])), b"data"));
    }

    #[test]
    fn master_key_unwraps_only_with_the_right_passphrase() {
        let master = [9u8; 32];
        let file = wrap_master_key("correct horse", &master, "host-1").unwrap();
        assert_eq!(unwrap_master_key("correct horse", &file).unwrap(), master);
        assert_eq!(
            unwrap_master_key("wrong", &file).unwrap_err().code(),
            "ERR_WRONG_PASSPHRASE"
        );
        let json = serde_json::to_string(&file).unwrap();
        assert!(!json.contains(&hex::encode(master)));
        assert!(KeyFile::parse(json.as_bytes(), "key").is_ok());
        let other_salt = if file.kdf.salt.starts_with('0') { "1" } else { "0" };
        let damaged = json.replacen(
            &format!("\"salt\":\"{}", &file.kdf.salt[..1]),
            &format!("\"salt\":\"{other_salt}"),
            1,
        );
        assert_ne!(damaged, json);
        assert_eq!(
            KeyFile::parse(damaged.as_bytes(), "key").unwrap_err().code(),
            "ERR_CORRUPT"
        );
    }

    /// Re-seals `file` after `change` as a writer holding the master key would.
    fn resealed(master: &[u8; 32], file: &KeyFile, change: impl Fn(&mut KeyFile)) -> Vec<u8> {
        let mut f = file.clone();
        change(&mut f);
        f.seal(master);
        serde_json::to_vec(&f).unwrap()
    }

    #[test]
    fn version_2_key_files_are_authenticated_and_unambiguous() {
        let master = [5u8; 32];
        let file = wrap_master_key("pw", &master, "db:1\n").unwrap();
        assert_eq!(
            file.host.as_deref(),
            Some("db_1_"),
            "':' and control characters are replaced"
        );
        assert!(file.mac_verifies(&master));
        assert!(!file.mac_verifies(&[6u8; 32]));
        let ok = resealed(&master, &file, |_| {});
        assert!(KeyFile::parse(&ok, "key").is_ok());
        // Fields that would make the ':'-joined string ambiguous, or a version mix-up, are damage.
        let bad: Vec<Box<dyn Fn(&mut KeyFile)>> = vec![
            Box::new(|f| f.host = Some("a:b".into())),
            Box::new(|f| f.created_at = "2026-01-01T00:00:00Z".into()),
            Box::new(|f| f.host = None),
            Box::new(|f| f.version = 1),
            Box::new(|f| f.version = 3),
            Box::new(|f| f.kdf.salt = format!("{}:00", f.kdf.salt)),
        ];
        for change in bad {
            let bytes = resealed(&master, &file, change);
            assert_eq!(KeyFile::parse(&bytes, "key").unwrap_err().code(), "ERR_CORRUPT");
        }
        let mut no_mac = file.clone();
        no_mac.mac = None;
        no_mac.checksum = no_mac.compute_checksum();
        assert_eq!(
            KeyFile::parse(&serde_json::to_vec(&no_mac).unwrap(), "key")
                .unwrap_err()
                .code(),
            "ERR_CORRUPT"
        );
        // The MAC covers the host and createdAt: changing them without the master key shows.
        let mut moved = file.clone();
        moved.host = Some("elsewhere".into());
        moved.checksum = moved.compute_checksum();
        assert!(KeyFile::parse(&serde_json::to_vec(&moved).unwrap(), "key").is_ok());
        assert!(!moved.mac_verifies(&master));
        assert_eq!(unwrap_master_key("pw", &moved).unwrap_err().code(), "ERR_CORRUPT");
        // An upgraded version-1 file keeps id, time and wrapped key, and opens with its passphrase.
        let mut v1 = file.clone();
        (v1.version, v1.host, v1.mac) = (1, None, None);
        v1.checksum = v1.compute_checksum();
        assert!(KeyFile::parse(&serde_json::to_vec(&v1).unwrap(), "key").is_ok());
        let up = v1.upgraded(&master);
        assert_eq!((up.version, up.host.as_deref(), &up.id), (2, Some(""), &file.id));
        assert_eq!(unwrap_master_key("pw", &up).unwrap(), master);
    }
}
