//! Snapshot manifests: immutable JSON (sealed) in `snapshots/<id>`, with an
//! identical copy in `packs/parity/snapshots/<id>`, listing each item's
//! chunks in order and the SHA-256 of its whole byte stream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::ChunkId;
use crate::error::{Error, Result};

/// The newest version this engine reads and writes. Version 3 adds tar
/// catalogs (`catalogOf`, `entries`, `catalogError`) and is written only by
/// snapshots that use them; others stay version 2, so older engines read
/// them. Version 1 (no item `sha256`, no `host` and `user`) is still read.
pub const MANIFEST_VERSION: u32 = 3;
/// What a snapshot without catalogs is written as.
pub const PLAIN_MANIFEST_VERSION: u32 = 2;
/// Longest host or user name a manifest may carry (bytes).
pub const MAX_HOST_LEN: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub id: String,
    pub created_at: String,
    pub tags: BTreeMap<String, String>,
    /// The host and user that made the snapshot (version 2 on; older ones read as "").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub items: Vec<ManifestItem>,
    pub new_chunks: u64,
    pub reused_chunks: u64,
    pub original_size: u64,
    pub stored_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestItem {
    pub name: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub size: u64,
    /// Chunk IDs in stream order, lowercase hex.
    pub chunks: Vec<String>,
    /// SHA-256 of the item's whole byte stream, lowercase hex (version 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Set on a hidden catalog item (version 3): the item it lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_of: Option<String>,
    /// How many members a catalog item lists (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// Why an item that was to be catalogued has no catalog (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_error: Option<String>,
}

impl ManifestItem {
    /// An item of the caller's stream (not a hidden catalog).
    pub fn is_user_item(&self) -> bool {
        self.catalog_of.is_none()
    }

    pub fn chunk_ids(&self) -> Result<Vec<ChunkId>> {
        self.chunks
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| Error::corrupt(format!("item {:?}", self.name), format!("bad chunk id {h:?}")))
            })
            .collect()
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses and checks a manifest's plaintext. A newer version than this engine
/// knows is `ERR_UNSUPPORTED_FORMAT`, never damage; anything inconsistent is
/// `ERR_CORRUPT`.
pub fn decode_manifest(plain: &[u8], what: &str) -> Result<Manifest> {
    let value: serde_json::Value = serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e))?;
    let version = value.get("version").and_then(|v| v.as_u64());
    if let Some(v) = version.filter(|v| *v > MANIFEST_VERSION as u64) {
        return Err(Error::UnsupportedFormat(format!(
            "{what} has manifest version {v}; this engine reads versions 1 to {MANIFEST_VERSION}; upgrade containerarchive"
        )));
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| Error::corrupt(what, e))?;
    manifest.validate().map_err(|detail| Error::corrupt(what, detail))?;
    Ok(manifest)
}

impl Manifest {
    /// Internal consistency: everything that can be checked without the index.
    fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=MANIFEST_VERSION).contains(&self.version) {
            return Err(format!("unknown manifest version {}", self.version));
        }
        if !is_valid_snapshot_id(&self.id) {
            return Err(format!("bad snapshot id {:?}", self.id));
        }
        if crate::fsutil::parse_iso8601_millis(&self.created_at).is_none() {
            return Err(format!("bad createdAt {:?}", self.created_at));
        }
        match (&self.host, &self.user, self.version) {
            (Some(h), Some(u), 2..) if h.len() <= MAX_HOST_LEN && u.len() <= MAX_HOST_LEN => {}
            (None, None, 1) => {}
            _ => return Err("a missing, unexpected or overlong host or user".into()),
        }
        let mut names = std::collections::HashSet::new();
        let mut catalogued = std::collections::HashSet::new();
        let mut total = 0u64;
        for item in &self.items {
            self.validate_catalog_fields(item, &mut catalogued)?;
            if item.name.is_empty() || !names.insert(item.name.as_str()) {
                return Err(format!("item name {:?} is empty or repeated", item.name));
            }
            if item.chunks.iter().any(|c| !is_hex(c, 64)) {
                return Err(format!("item {:?} has a bad chunk id", item.name));
            }
            if (item.size == 0) != item.chunks.is_empty() {
                return Err(format!(
                    "item {:?} has {} bytes in {} chunks",
                    item.name,
                    item.size,
                    item.chunks.len()
                ));
            }
            match (&item.sha256, self.version) {
                (Some(h), 2..) if is_hex(h, 64) => {}
                (None, 1) => {}
                _ => return Err(format!("item {:?} has a missing or bad sha256", item.name)),
            }
            if item.is_user_item() {
                total = total.checked_add(item.size).ok_or("item sizes overflow")?;
            }
        }
        if self.user_items().next().is_none() || total != self.original_size {
            return Err(format!(
                "originalSize {} is not the sum of {} item sizes",
                self.original_size,
                self.items.len()
            ));
        }
        Ok(())
    }

    /// Catalog fields belong to version 3; a catalog item names a user item
    /// listed before it, and no item has two catalogs.
    fn validate_catalog_fields<'a>(
        &'a self,
        item: &'a ManifestItem,
        catalogued: &mut std::collections::HashSet<&'a str>,
    ) -> std::result::Result<(), String> {
        let has_fields = item.catalog_of.is_some() || item.entries.is_some() || item.catalog_error.is_some();
        if has_fields && self.version < 3 {
            return Err(format!(
                "item {:?} has catalog fields in a version {} manifest",
                item.name, self.version
            ));
        }
        let Some(of) = &item.catalog_of else {
            return match item.entries {
                Some(_) => Err(format!("item {:?} has entries but is no catalog", item.name)),
                None => Ok(()),
            };
        };
        let target = self.items.iter().position(|i| i.is_user_item() && i.name == *of);
        let ok = item.item_type == crate::catalog::CATALOG_ITEM_TYPE
            && item.entries.is_some()
            && item.catalog_error.is_none()
            && target.is_some_and(|t| self.items[t].catalog_error.is_none())
            && catalogued.insert(of.as_str());
        match ok {
            true => Ok(()),
            false => Err(format!("catalog item {:?} is inconsistent", item.name)),
        }
    }

    /// The items of the caller's streams, in ingest order (hidden catalogs left out).
    pub fn user_items(&self) -> impl Iterator<Item = &ManifestItem> {
        self.items.iter().filter(|i| i.is_user_item())
    }

    /// The hidden catalog item of the user item `name`, if it has one.
    pub fn catalog_of(&self, name: &str) -> Option<&ManifestItem> {
        self.items.iter().find(|i| i.catalog_of.as_deref() == Some(name))
    }

    /// The lowest version that can hold this manifest.
    pub fn needed_version(&self) -> u32 {
        let catalogs = self
            .items
            .iter()
            .any(|i| i.catalog_of.is_some() || i.catalog_error.is_some());
        if catalogs {
            MANIFEST_VERSION
        } else {
            PLAIN_MANIFEST_VERSION
        }
    }

    /// The host that made the snapshot; "" for version-1 manifests, which
    /// did not record it (grouping and filters go through here).
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("")
    }

    /// The API shape: like the manifest, but each item's chunk list is a count.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "createdAt": self.created_at,
            "tags": self.tags,
            "host": self.host(),
            "user": self.user.as_deref().unwrap_or(""),
            "items": self.user_items().map(|i| {
                let mut summary = json!({
                    "name": i.name,
                    "type": i.item_type,
                    "size": i.size,
                    "chunks": i.chunks.len(),
                    "sha256": i.sha256,
                    "catalog": self.catalog_of(&i.name).map(|c| json!({
                        "format": "tar",
                        "entries": c.entries,
                        "size": c.size,
                    })),
                });
                if let Some(why) = &i.catalog_error {
                    summary["catalogError"] = json!(why);
                }
                summary
            }).collect::<Vec<_>>(),
            "newChunks": self.new_chunks,
            "reusedChunks": self.reused_chunks,
            "originalSize": self.original_size,
            "storedSize": self.stored_size,
        })
    }
}

/// Snapshot IDs are 64 lowercase hex characters; nothing else reaches the filesystem.
pub fn is_valid_snapshot_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn check_snapshot_id(id: &str) -> Result<()> {
    if is_valid_snapshot_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{id:?} is not a snapshot id; ids are 64 lowercase hex characters, as returned by ingest() and listSnapshots()"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_are_strict() {
        assert!(is_valid_snapshot_id(&"a1".repeat(32)));
        for bad in [
            "../../x",
            "",
            &"A1".repeat(32),
            &"a".repeat(63),
            &format!("{}/", "a".repeat(63)),
        ] {
            assert!(!is_valid_snapshot_id(bad), "{bad}");
            assert_eq!(check_snapshot_id(bad).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        }
    }

    fn manifest_json(version: u32, host: Option<&str>) -> serde_json::Value {
        let mut v = json!({
            "version": version,
            "id": "ab".repeat(32),
            "createdAt": "2026-11-25T03:00:00.000Z",
            "tags": {},
            "items": [{ "name": "d", "type": "t", "size": 0, "chunks": [] }],
            "newChunks": 0, "reusedChunks": 0, "originalSize": 0, "storedSize": 0
        });
        if version >= 2 {
            v["items"][0]["sha256"] = json!("e3".repeat(32));
        }
        if let Some(h) = host {
            v["host"] = json!(h);
            v["user"] = json!("me");
        }
        v
    }

    #[test]
    fn host_and_user_belong_to_version_2_only() {
        let decode = |v: serde_json::Value| decode_manifest(&serde_json::to_vec(&v).unwrap(), "m");
        let v2 = decode(manifest_json(2, Some("db-1"))).unwrap();
        assert_eq!((v2.host(), v2.user.as_deref()), ("db-1", Some("me")));
        let v1 = decode(manifest_json(1, None)).unwrap();
        assert_eq!(v1.host(), "", "version 1 reads as host ''");
        for bad in [manifest_json(2, None), manifest_json(1, Some("db-1"))] {
            assert_eq!(decode(bad).unwrap_err().code(), "ERR_CORRUPT");
        }
        let long = manifest_json(2, Some(&"h".repeat(MAX_HOST_LEN + 1)));
        assert_eq!(decode(long).unwrap_err().code(), "ERR_CORRUPT");
    }
}
