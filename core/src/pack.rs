//! Pack files: stored chunks back to back, then a header that lists them,
//! so the index can be rebuilt from a pack alone. A sidecar `.idx` carries
//! the same header.
//!
//! ```text
//! pack = blob* header u32le(header_len) "CAPACK01"
//! idx  = "CAIDX001" u64le(pack_len) header
//! header (plain) = u32le(count) entry*        entry = id[32] enc u32le(len) u32le(raw_len)
//! header (encrypted) = nonce || AES-GCM(plain header, aad "containerarchive:pack-header")
//! header (plain, v2) = plain header || SHA-256("containerarchive:pack-header" || plain header)
//! ```

use sha2::{Digest, Sha256};

use crate::crypto::{ChunkId, Sealer, AAD_PACK_HEADER};
use crate::error::{Error, Result};
use crate::parity_draft::ParityShare;
use crate::repo::DATA_DIR;
use crate::storage::objects::{describe, read_required, writer, ObjectWriter};
use crate::storage::Storage;

pub type PackId = [u8; 32];
pub const PACK_MAGIC: &[u8; 8] = b"CAPACK01";
pub const IDX_MAGIC: &[u8; 8] = b"CAIDX001";
pub const ENTRY_LEN: usize = 41;
const TRAILER_LEN: u64 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    pub id: ChunkId,
    /// A `codec::BlobEncoding` byte.
    pub encoding: u8,
    /// Stored length in the pack (after compression and encryption).
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// Everything the index needs to know about one pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRecord {
    pub id: PackId,
    pub size: u64,
    pub entries: Vec<PackEntry>,
}

impl PackRecord {
    /// Sum of the stored blob lengths; blobs start at offset 0, back to back.
    pub fn blobs_len(&self) -> u64 {
        self.entries.iter().map(|e| e.length as u64).sum()
    }
}

pub fn encode_entries(entries: &[PackEntry], out: &mut Vec<u8>) {
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.id);
        out.push(e.encoding);
        out.extend_from_slice(&e.length.to_le_bytes());
        out.extend_from_slice(&e.raw_length.to_le_bytes());
    }
}

/// Decodes `u32le(count) entry*` from the front of `bytes`; returns the entries and the rest.
pub fn decode_entries(bytes: &[u8]) -> Result<(Vec<PackEntry>, &[u8]), String> {
    let count = read_u32(bytes, 0).ok_or("entry list is truncated")? as usize;
    let body = &bytes[4..];
    let need = count.checked_mul(ENTRY_LEN).ok_or("entry count overflows")?;
    if body.len() < need {
        return Err(format!(
            "entry list declares {count} entries but holds {} bytes",
            body.len()
        ));
    }
    let entries = body[..need]
        .chunks_exact(ENTRY_LEN)
        .map(|e| PackEntry {
            id: e[..32].try_into().expect("32 bytes"),
            encoding: e[32],
            length: u32::from_le_bytes(e[33..37].try_into().expect("4 bytes")),
            raw_length: u32::from_le_bytes(e[37..41].try_into().expect("4 bytes")),
        })
        .collect();
    Ok((entries, &body[need..]))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The stored form of a header: sealed like every metadata file.
pub fn seal_header(sealer: Sealer, entries: &[PackEntry]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(4 + entries.len() * ENTRY_LEN);
    encode_entries(entries, &mut plain);
    sealer.seal(AAD_PACK_HEADER, plain)
}

/// The entries of a sealed header (as stored in a pack or an `.idx`).
pub fn open_header(sealer: Sealer, header: &[u8]) -> Result<Vec<PackEntry>, String> {
    let plain = sealer
        .open(AAD_PACK_HEADER, header)
        .ok_or("header does not authenticate (or its checksum does not match)")?;
    let (entries, rest) = decode_entries(&plain)?;
    if !rest.is_empty() {
        return Err("header has trailing bytes".into());
    }
    Ok(entries)
}

pub fn pack_file_name(id: &PackId) -> String {
    format!("{}.pack", hex::encode(id))
}

pub fn idx_file_name(id: &PackId) -> String {
    format!("{}.idx", hex::encode(id))
}

/// The storage key of a pack: `packs/data/<id>.pack`.
pub fn pack_key(id: &PackId) -> String {
    format!("{DATA_DIR}/{}", pack_file_name(id))
}

/// The storage key of a pack's sidecar: `packs/data/<id>.idx`.
pub fn idx_key(id: &PackId) -> String {
    format!("{DATA_DIR}/{}", idx_file_name(id))
}

/// Streams one pack into `packs/data` (a tmp file, locally); `finish` makes
/// it durable under its content hash. Dropped unfinished, it leaves nothing.
pub struct PackWriter<'a> {
    storage: &'a dyn Storage,
    out: Option<Box<dyn ObjectWriter + 'a>>,
    hasher: Sha256,
    entries: Vec<PackEntry>,
    len: u64,
    /// Where this pack's parity share goes as it is written (an ingest's draft).
    parity: Option<ParityShare>,
}

impl<'a> PackWriter<'a> {
    pub fn create(storage: &'a dyn Storage) -> Result<PackWriter<'a>> {
        Ok(PackWriter {
            storage,
            out: Some(writer(storage, DATA_DIR)?),
            hasher: Sha256::new(),
            entries: Vec::new(),
            len: 0,
            parity: None,
        })
    }

    /// Drafts this pack's parity share from its bytes as they are written.
    pub fn share_parity(&mut self, share: Option<ParityShare>) {
        self.parity = share;
    }

    pub fn add(&mut self, id: ChunkId, encoding: u8, raw_length: u32, blob: &[u8]) -> Result<()> {
        self.write(blob)?;
        self.entries.push(PackEntry {
            id,
            encoding,
            length: blob.len() as u32,
            raw_length,
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("pack writer used after finish");
        out.write(bytes)?;
        self.hasher.update(bytes);
        if let Some(share) = &self.parity {
            share.add(self.len, bytes);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub fn data_len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the header, makes the pack durable under its hash (locally:
    /// fsync, rename, fsync of the directory), then writes its `.idx`.
    pub fn finish(self, sealer: Sealer) -> Result<PackRecord> {
        self.seal(sealer)?.store()
    }

    /// Appends the header: the pack is complete and named, not yet stored.
    /// `SealedPack::store` (on another thread, if need be) stores it.
    pub fn seal(mut self, sealer: Sealer) -> Result<SealedPack<'a>> {
        let header = seal_header(sealer, &self.entries);
        self.write(&header)?;
        self.write(&(header.len() as u32).to_le_bytes())?;
        self.write(PACK_MAGIC)?;
        let out = self.out.take().expect("pack writer used after finish");
        let id: PackId = std::mem::take(&mut self.hasher).finalize().into();
        Ok(SealedPack {
            storage: self.storage,
            out,
            header,
            record: PackRecord {
                id,
                size: self.len,
                entries: std::mem::take(&mut self.entries),
            },
        })
    }
}

/// A complete pack waiting to be stored. Dropped unstored, it leaves nothing.
pub struct SealedPack<'a> {
    storage: &'a dyn Storage,
    out: Box<dyn ObjectWriter + 'a>,
    header: Vec<u8>,
    record: PackRecord,
}

impl SealedPack<'_> {
    pub fn record(&self) -> &PackRecord {
        &self.record
    }

    /// Makes the pack durable under its hash, then writes its `.idx`: an
    /// `.idx` never names a pack that is not stored.
    pub fn store(self) -> Result<PackRecord> {
        self.out.commit(&pack_file_name(&self.record.id))?;
        write_idx(self.storage, &self.record, &self.header)?;
        Ok(self.record)
    }
}

fn write_idx(storage: &dyn Storage, record: &PackRecord, header: &[u8]) -> Result<()> {
    let mut idx = Vec::with_capacity(16 + header.len());
    idx.extend_from_slice(IDX_MAGIC);
    idx.extend_from_slice(&record.size.to_le_bytes());
    idx.extend_from_slice(header);
    storage.write(&format!("{DATA_DIR}/{}", idx_file_name(&record.id)), &idx)
}

/// Reads the header from the end of the pack stored as `key`: the trailer
/// and the header only, never the whole pack.
pub fn read_pack_header(storage: &dyn Storage, key: &str, id: PackId, sealer: Sealer) -> Result<PackRecord> {
    let damaged = |detail: String| Error::corrupt(format!("pack {}", describe(storage, key)), detail);
    let size = storage.size(key)?.ok_or_else(|| Error::Io {
        path: describe(storage, key),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    if size < TRAILER_LEN {
        return Err(damaged(format!("{size} bytes is too short for a pack")));
    }
    let trailer = storage.read_range(key, size - TRAILER_LEN, TRAILER_LEN as usize)?;
    let header_len = parse_pack_trailer(&trailer, size).map_err(damaged)?;
    let header = storage.read_range(key, size - TRAILER_LEN - header_len, header_len as usize)?;
    parse_pack_header(&header, id, size, sealer).map_err(damaged)
}

/// The header length from the last 12 bytes of a pack of `size` bytes.
pub fn parse_pack_trailer(trailer: &[u8], size: u64) -> Result<u64, String> {
    if trailer.len() != TRAILER_LEN as usize || size < TRAILER_LEN {
        return Err(format!("{size} bytes is too short for a pack"));
    }
    if &trailer[4..] != PACK_MAGIC {
        return Err("the trailer magic is missing (truncated or overwritten)".into());
    }
    let header_len = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as u64;
    if header_len + TRAILER_LEN > size {
        return Err("the header length exceeds the file".into());
    }
    Ok(header_len)
}

/// The record of a pack of `size` bytes from its (sealed) header, which must
/// account for every byte before it.
pub fn parse_pack_header(header: &[u8], id: PackId, size: u64, sealer: Sealer) -> Result<PackRecord, String> {
    let entries = open_header(sealer, header)?;
    let record = PackRecord { id, size, entries };
    if record.blobs_len() + header.len() as u64 + TRAILER_LEN != size {
        return Err("the header does not account for the pack's bytes".into());
    }
    Ok(record)
}

/// Reads the `.idx` sidecar stored as `key`.
pub fn read_idx(storage: &dyn Storage, key: &str, id: PackId, sealer: Sealer) -> Result<PackRecord> {
    let damaged = |detail: String| Error::corrupt(format!("index sidecar {}", describe(storage, key)), detail);
    let bytes = read_required(storage, key)?;
    parse_idx(&bytes, id, sealer).map_err(damaged)
}

/// Decodes a `.idx` sidecar's bytes.
pub fn parse_idx(bytes: &[u8], id: PackId, sealer: Sealer) -> Result<PackRecord, String> {
    if bytes.len() < 16 || &bytes[..8] != IDX_MAGIC {
        return Err("the magic is missing".into());
    }
    let size = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    // The sidecar carries the pack's own header, so the same sum must hold.
    parse_pack_header(&bytes[16..], id, size, sealer)
}

/// Parses `<64 hex>.pack` / `<64 hex>.idx` names.
pub fn parse_file_name(name: &str, extension: &str) -> Option<PackId> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 64 {
        return None;
    }
    hex::decode(stem).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keys;
    use crate::fsutil::random_hex;
    use crate::storage::LocalStorage;
    use std::fs;
    use std::path::PathBuf;

    fn sealer(keys: Option<&Keys>) -> Sealer<'_> {
        keys.map_or(Sealer::Plain { legacy: false }, Sealer::Encrypted)
    }

    /// A repository root, its storage, and its `packs/data`.
    fn scratch() -> (PathBuf, LocalStorage, PathBuf) {
        let root = std::env::temp_dir().join(format!("ca-pack-{}", random_hex(6)));
        fs::create_dir_all(root.join(DATA_DIR)).unwrap();
        let dir = root.join(DATA_DIR);
        (root.clone(), LocalStorage::new(root), dir)
    }

    fn key(name: String) -> String {
        format!("{DATA_DIR}/{name}")
    }

    fn write_pack(storage: &LocalStorage, keys: Option<&Keys>) -> PackRecord {
        let mut w = PackWriter::create(storage).unwrap();
        for i in 0..5u8 {
            let blob = vec![i; 100 + i as usize];
            w.add([i; 32], 0, blob.len() as u32, &blob).unwrap();
        }
        w.finish(sealer(keys)).unwrap()
    }

    #[test]
    fn entries_round_trip() {
        let entries = vec![
            PackEntry {
                id: [1; 32],
                encoding: 2,
                length: 10,
                raw_length: 20,
            },
            PackEntry {
                id: [2; 32],
                encoding: 0,
                length: u32::MAX,
                raw_length: 0,
            },
        ];
        let mut buf = Vec::new();
        encode_entries(&entries, &mut buf);
        assert_eq!(buf.len(), 4 + 2 * ENTRY_LEN);
        let (decoded, rest) = decode_entries(&buf).unwrap();
        assert_eq!(decoded, entries);
        assert!(rest.is_empty());
        assert!(decode_entries(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn pack_header_idx_and_name_agree() {
        for keys in [None, Some(Keys::from_master(&[5; 32]))] {
            let (root, st, dir) = scratch();
            let record = write_pack(&st, keys.as_ref());
            let pack = dir.join(pack_file_name(&record.id));
            let bytes = fs::read(&pack).unwrap();
            assert_eq!(crate::crypto::sha256(&bytes), record.id, "named by content hash");
            assert_eq!(
                read_pack_header(&st, &key(pack_file_name(&record.id)), record.id, sealer(keys.as_ref())).unwrap(),
                record
            );
            let idx = key(idx_file_name(&record.id));
            assert_eq!(read_idx(&st, &idx, record.id, sealer(keys.as_ref())).unwrap(), record);
            assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "no tmp left");
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn damaged_packs_are_reported_not_misread() {
        let (root, st, dir) = scratch();
        let record = write_pack(&st, None);
        let pack = dir.join(pack_file_name(&record.id));
        let bytes = fs::read(&pack).unwrap();
        fs::write(&pack, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(
            read_pack_header(&st, &key(pack_file_name(&record.id)), record.id, sealer(None))
                .unwrap_err()
                .code(),
            "ERR_CORRUPT"
        );
        let keys = Keys::from_master(&[6; 32]);
        let enc = write_pack(&st, Some(&keys));
        let enc_key = key(pack_file_name(&enc.id));
        let other = Keys::from_master(&[7; 32]);
        assert_eq!(
            read_pack_header(&st, &enc_key, enc.id, sealer(Some(&other)))
                .unwrap_err()
                .code(),
            "ERR_CORRUPT"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (root, st, dir) = scratch();
        let mut w = PackWriter::create(&st).unwrap();
        w.add([0; 32], 0, 3, b"abc").unwrap();
        drop(w);
        assert!(fs::read_dir(&dir).unwrap().next().is_none());
        fs::remove_dir_all(&root).unwrap();
    }
}
