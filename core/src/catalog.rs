//! Tar catalogs (issue 13): a scan of an item's bytes as they stream through
//! ingest, listing each tar member and where its data lies in the item, so
//! that one file can later be restored as a byte range of the item.
//!
//! The scanner sees the same chunk buffers as the item hasher and looks only
//! at header blocks; member data is skipped by arithmetic, never copied or
//! buffered. Header fields are decoded by the `tar` crate (`Header`,
//! `PaxExtensions`); the block framing is ours, because `tar::Archive` pulls
//! from a reader and would need the whole stream handed to it.
//!
//! A catalog is JSON lines, one [`Entry`] per member in archive order, stored
//! as a hidden item of the snapshot (`catalogOf`, type `tar-catalog`): chunked,
//! deduplicated, compressed, sealed and covered by parity like any item.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tar::{EntryType, Header, PaxExtensions};

/// The `type` of a catalog's hidden item.
pub const CATALOG_ITEM_TYPE: &str = "tar-catalog";
/// A catalog above this size is not kept (about 1.2 million members): it is
/// held in memory until the item ends.
pub const MAX_CATALOG_BYTES: usize = 256 * 1024 * 1024;
/// Largest pax or GNU long-name payload accepted.
const MAX_META: u64 = 1024 * 1024;
const BLOCK: u64 = 512;

/// One member of a tar, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    /// file, dir, symlink, hardlink, chardev, blockdev, fifo or other.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file's length (for a sparse member, its expanded length).
    pub size: u64,
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub uid: u64,
    pub gid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gname: Option<String>,
    /// The target of a symlink or hardlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Where the member's data starts within the item.
    pub offset: u64,
    /// Where its first header block starts (pax and GNU long-name blocks included).
    pub header: u64,
    /// Where its data, padded to 512 bytes, ends: `header..end` is the whole member.
    pub end: u64,
    /// A GNU sparse member: its stored data is not the file's bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
}

/// A finished catalog: JSON lines and how many members they hold.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Catalog {
    pub lines: Vec<u8>,
    pub entries: u64,
}

enum Meta {
    Pax,
    GlobalPax,
    LongName,
    LongLink,
}

enum State {
    /// Collecting a header block into `block`.
    Header,
    /// Collecting a GNU extended sparse block; then the data of `pending_entry`.
    SparseExt {
        data: u64,
    },
    /// Collecting an extended-header payload into `meta`, then skipping `pad`.
    Meta {
        kind: Meta,
        left: u64,
        pad: u64,
    },
    /// Skipping member data and padding.
    Skip {
        left: u64,
    },
    /// After the end-of-archive block: the rest is ignored.
    Done,
    Failed(String),
}

/// What the extended headers before a member said about it.
#[derive(Default)]
struct Pending {
    first_header: Option<u64>,
    pax: Vec<(String, Vec<u8>)>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// Scans a tar stream fed in arbitrary pieces.
pub struct TarScanner {
    pos: u64,
    state: State,
    block: Vec<u8>,
    meta: Vec<u8>,
    pending: Pending,
    sparse_entry: Option<Entry>,
    out: Catalog,
}

impl Default for TarScanner {
    fn default() -> Self {
        TarScanner {
            pos: 0,
            state: State::Header,
            block: Vec::with_capacity(BLOCK as usize),
            meta: Vec::new(),
            pending: Pending::default(),
            sparse_entry: None,
            out: Catalog::default(),
        }
    }
}

fn round_up(n: u64) -> Option<u64> {
    n.checked_add(BLOCK - 1).map(|v| v / BLOCK * BLOCK)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl TarScanner {
    pub fn new() -> TarScanner {
        TarScanner::default()
    }

    /// Takes the next bytes of the item.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Done | State::Failed(_) => return,
                State::Skip { left } => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    self.pos += n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Meta { left, .. } => {
                    let n = (*left).min(data.len() as u64);
                    self.meta.extend_from_slice(&data[..n as usize]);
                    *left -= n;
                    self.pos += n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        self.finish_meta();
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let n = (BLOCK as usize - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..n]);
                    self.pos += n as u64;
                    data = &data[n..];
                    if self.block.len() == BLOCK as usize {
                        let outcome = match self.state {
                            State::SparseExt { data } => self.sparse_block(data),
                            _ => self.header_block(),
                        };
                        self.block.clear();
                        if let Err(why) = outcome {
                            self.state = State::Failed(why);
                        }
                    }
                }
            }
        }
    }

    /// The catalog, or why the item is not a tar this engine catalogs.
    pub fn finish(self) -> Result<Catalog, String> {
        match self.state {
            State::Failed(why) => Err(why),
            _ if self.pos == 0 => Err("the item is empty".into()),
            State::Done => Ok(self.out),
            // A tar without its end blocks still lists, if it stops between members.
            State::Header if self.block.is_empty() && self.pending.first_header.is_none() => Ok(self.out),
            _ => Err(format!(
                "the tar is truncated: it ends inside a member, at byte {}",
                self.pos
            )),
        }
    }

    fn header_block(&mut self) -> Result<(), String> {
        let at = self.pos - BLOCK;
        if self.block.iter().all(|b| *b == 0) {
            if self.pending.first_header.is_some() {
                return Err(format!(
                    "an end-of-archive block at byte {at} follows an extended header"
                ));
            }
            self.state = State::Done;
            return Ok(());
        }
        let mut raw = [0u8; 512];
        raw.copy_from_slice(&self.block);
        let header = Header::from_byte_slice(&raw);
        check_checksum(header, &raw, at)?;
        let bad = |field: &str, e: std::io::Error| format!("the header at byte {at} has a bad {field}: {e}");
        let stored = header.entry_size().map_err(|e| bad("size", e))?;
        let meta_kind = match header.entry_type() {
            EntryType::XHeader => Some(Meta::Pax),
            EntryType::XGlobalHeader => Some(Meta::GlobalPax),
            EntryType::GNULongName => Some(Meta::LongName),
            EntryType::GNULongLink => Some(Meta::LongLink),
            _ => None,
        };
        if let Some(kind) = meta_kind {
            if stored > MAX_META {
                return Err(format!(
                    "the extended header at byte {at} holds {stored} bytes; at most {MAX_META} are read"
                ));
            }
            if !matches!(kind, Meta::GlobalPax) {
                self.pending.first_header.get_or_insert(at);
            }
            self.meta.clear();
            let pad = round_up(stored).ok_or("size overflow")? - stored;
            self.state = State::Meta {
                kind,
                left: stored,
                pad,
            };
            if stored == 0 {
                self.finish_meta();
            }
            return Ok(());
        }
        let entry = self.entry(header, at).map_err(|e| bad("field", e))?;
        let data = round_up(stored).ok_or_else(|| format!("the header at byte {at} has an impossible size"))?;
        if header.entry_type().is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended()) {
            self.sparse_entry = Some(entry);
            self.state = State::SparseExt { data };
            return Ok(());
        }
        let end = self.pos.checked_add(data).ok_or("size overflow")?;
        self.push(Entry {
            offset: self.pos,
            end,
            ..entry
        })?;
        self.skip(data);
        Ok(())
    }

    /// A GNU extended sparse block: more of the sparse map, which the catalog does not keep.
    fn sparse_block(&mut self, data: u64) -> Result<(), String> {
        let mut raw = [0u8; 512];
        raw.copy_from_slice(&self.block);
        // The `isextended` flag is the block's byte 504.
        if raw[504] != 0 {
            return Ok(());
        }
        let entry = self.sparse_entry.take().ok_or("a sparse block without its member")?;
        let end = self.pos.checked_add(data).ok_or("size overflow")?;
        self.push(Entry {
            offset: self.pos,
            end,
            ..entry
        })?;
        self.skip(data);
        Ok(())
    }

    fn skip(&mut self, left: u64) {
        self.state = match left {
            0 => State::Header,
            left => State::Skip { left },
        };
    }

    fn finish_meta(&mut self) {
        let State::Meta { kind, pad, .. } = std::mem::replace(&mut self.state, State::Header) else {
            return;
        };
        let payload = std::mem::take(&mut self.meta);
        let trimmed = || {
            let end = payload.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            payload[..end].to_vec()
        };
        match kind {
            Meta::LongName => self.pending.long_name = Some(trimmed()),
            Meta::LongLink => self.pending.long_link = Some(trimmed()),
            Meta::GlobalPax => {}
            Meta::Pax => {
                for ext in PaxExtensions::new(&payload) {
                    match ext {
                        Ok(ext) => match ext.key() {
                            Ok(key) => self.pending.pax.push((key.to_string(), ext.value_bytes().to_vec())),
                            Err(_) => continue,
                        },
                        Err(e) => {
                            self.state =
                                State::Failed(format!("a pax header before byte {} is malformed: {e}", self.pos));
                            return;
                        }
                    }
                }
            }
        }
        self.skip(pad);
    }

    fn pax(&self, key: &str) -> Option<&[u8]> {
        self.pending
            .pax
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn pax_number(&self, key: &str) -> Result<Option<f64>, std::io::Error> {
        let Some(v) = self.pax(key) else { return Ok(None) };
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| std::io::Error::other(format!("pax {key} {:?} is not a number", text(v))))
    }

    fn entry(&self, header: &Header, at: u64) -> Result<Entry, std::io::Error> {
        let kind = match header.entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => "file",
            EntryType::Directory => "dir",
            // A GNU dump directory ('D'): a directory whose data lists its names.
            t if t.as_byte() == b'D' => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Link => "hardlink",
            EntryType::Char => "chardev",
            EntryType::Block => "blockdev",
            EntryType::Fifo => "fifo",
            _ => "other",
        };
        let pax_sparse = self.pending.pax.iter().any(|(k, _)| k.starts_with("GNU.sparse."));
        let path: Cow<[u8]> = match (self.pax("GNU.sparse.name"), self.pax("path"), &self.pending.long_name) {
            (Some(p), ..) | (None, Some(p), _) => Cow::Borrowed(p),
            (None, None, Some(p)) => Cow::Borrowed(p.as_slice()),
            (None, None, None) => header.path_bytes(),
        };
        let link = match (self.pax("linkpath"), &self.pending.long_link) {
            (Some(l), _) => Some(text(l)),
            (None, Some(l)) => Some(text(l)),
            (None, None) => header.link_name_bytes().map(|l| text(&l)),
        }
        .filter(|_| matches!(kind, "symlink" | "hardlink"));
        let size = match (
            self.pax_number("GNU.sparse.realsize")?,
            self.pax_number("GNU.sparse.size")?,
            self.pax_number("size")?,
        ) {
            (Some(n), ..) | (None, Some(n), _) | (None, None, Some(n)) => n as u64,
            // For a GNU sparse member this is its real size.
            (None, None, None) => header.size()?,
        };
        let name = |pax: Option<&[u8]>, field: Option<&[u8]>| pax.or(field).filter(|v| !v.is_empty()).map(text);
        Ok(Entry {
            path: text(&path),
            kind: kind.to_string(),
            size,
            // Some writers leave these fields empty; 0 loses nothing the catalog needs.
            mode: header.mode().unwrap_or(0) & 0o7777,
            mtime: match self.pax_number("mtime")? {
                Some(t) => t.floor() as i64,
                None => header.mtime().unwrap_or(0) as i64,
            },
            uid: self
                .pax_number("uid")?
                .map_or_else(|| header.uid().unwrap_or(0), |n| n as u64),
            gid: self
                .pax_number("gid")?
                .map_or_else(|| header.gid().unwrap_or(0), |n| n as u64),
            uname: name(self.pax("uname"), header.username_bytes()),
            gname: name(self.pax("gname"), header.groupname_bytes()),
            link,
            offset: 0,
            end: 0,
            header: self.pending.first_header.unwrap_or(at),
            sparse: header.entry_type().is_gnu_sparse() || pax_sparse,
        })
    }

    fn push(&mut self, entry: Entry) -> Result<(), String> {
        self.pending = Pending::default();
        serde_json::to_writer(&mut self.out.lines, &entry).map_err(|e| e.to_string())?;
        self.out.lines.push(b'\n');
        self.out.entries += 1;
        if self.out.lines.len() > MAX_CATALOG_BYTES {
            return Err(format!(
                "its catalog passed {} MiB after {} members; catalogs are kept up to that size",
                MAX_CATALOG_BYTES >> 20,
                self.out.entries
            ));
        }
        Ok(())
    }
}

/// The header checksum: the byte sum with the checksum field read as spaces.
/// A stream that is not a tar fails here at its first block.
fn check_checksum(header: &Header, raw: &[u8; 512], at: u64) -> Result<(), String> {
    let stored = header
        .cksum()
        .map_err(|_| format!("it is not a tar: the block at byte {at} has no valid header checksum"))?;
    let sum: u32 = raw
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { 32 } else { *b as u32 })
        .sum();
    if sum != stored {
        return Err(format!(
            "it is not a tar: the header checksum at byte {at} does not match"
        ));
    }
    Ok(())
}

/// Parses one catalog line and checks it against the item it describes.
pub fn parse_entry(line: &[u8], item_size: u64) -> Option<Entry> {
    let e: Entry = serde_json::from_slice(line).ok()?;
    let data_end = e.offset.checked_add(if e.sparse { 0 } else { e.size })?;
    let fits = e.header <= e.offset && e.offset <= e.end && e.end <= item_size;
    (fits && (e.kind != "file" || data_end <= e.end)).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ustar(name: &str, kind: EntryType, data: &[u8]) -> Vec<u8> {
        let mut h = Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(round_up(out.len() as u64).unwrap() as usize, 0);
        out
    }

    fn scan(bytes: &[u8], piece: usize) -> Result<Vec<Entry>, String> {
        let mut s = TarScanner::new();
        bytes.chunks(piece).for_each(|p| s.feed(p));
        let c = s.finish()?;
        let lines: Vec<_> = c.lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len() as u64, c.entries);
        Ok(lines
            .iter()
            .map(|l| parse_entry(l, bytes.len() as u64).unwrap())
            .collect())
    }

    #[test]
    fn members_and_offsets_whatever_the_feed_sizes() {
        let mut tar = ustar("a/", EntryType::Directory, b"");
        tar.extend(ustar("a/one.txt", EntryType::Regular, b"hello"));
        tar.extend(ustar("a/two.bin", EntryType::Regular, &[7u8; 1300]));
        tar.extend([0u8; 1024]);
        for piece in [1, 7, 512, 513, 100_000] {
            let entries = scan(&tar, piece).unwrap();
            assert_eq!(entries.len(), 3);
            assert_eq!((entries[0].kind.as_str(), entries[0].path.as_str()), ("dir", "a/"));
            let two = &entries[2];
            assert_eq!((two.size, two.mode, two.mtime), (1300, 0o640, 1_700_000_000));
            assert_eq!(&tar[two.offset as usize..][..1300], &[7u8; 1300][..]);
            assert_eq!(two.header + 512, two.offset);
            assert_eq!(two.end, two.offset + 1536);
        }
    }

    #[test]
    fn not_a_tar_empty_and_truncated_are_reasons_not_errors() {
        assert!(scan(b"", 1).unwrap_err().contains("empty"));
        assert!(scan(&[b'x'; 4096], 512).unwrap_err().contains("not a tar"));
        let tar = ustar("f", EntryType::Regular, &[1u8; 2000]);
        assert!(scan(&tar[..1500], 100).unwrap_err().contains("truncated"));
        // Ends between members without end blocks: still a catalog.
        assert_eq!(scan(&tar, 64).unwrap().len(), 1);
    }

    #[test]
    fn pax_path_and_size_override_the_header() {
        let long = format!("{}/file", "d".repeat(150));
        let record = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            format!("{len}{body}")
        };
        let pax = record("path", &long) + &record("mtime", "1700000123.25");
        let mut tar = ustar("PaxHeaders/x", EntryType::XHeader, pax.as_bytes());
        let pax_len = tar.len() as u64;
        tar.extend(ustar("short", EntryType::Regular, b"data"));
        tar.extend([0u8; 1024]);
        let e = &scan(&tar, 300).unwrap()[0];
        assert_eq!((e.path.as_str(), e.mtime, e.header), (long.as_str(), 1_700_000_123, 0));
        assert_eq!(e.offset, pax_len + 512);
    }
}
