//! Snapshot manifests: immutable JSON (sealed in encrypted repositories) in
//! `snapshots/<id>`, listing each item's chunks in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::ChunkId;
use crate::error::{Error, Result};

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub id: String,
    pub created_at: String,
    pub tags: BTreeMap<String, String>,
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
}

impl ManifestItem {
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

impl Manifest {
    /// The API shape: like the manifest, but each item's chunk list is a count.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "createdAt": self.created_at,
            "tags": self.tags,
            "items": self.items.iter().map(|i| json!({
                "name": i.name,
                "type": i.item_type,
                "size": i.size,
                "chunks": i.chunks.len(),
            })).collect::<Vec<_>>(),
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
}
