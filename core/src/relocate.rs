//! Repair of packs stored under another pack's name. A pack is named by its
//! SHA-256, so a pack file whose content hashes to another expected pack id
//! (two packs of a group swapped, say) is renamed into place instead of
//! being rebuilt from parity or declared lost.
//!
//! Each such file is first renamed to `<its hash>.pack.moving`, then every
//! `.moving` file is renamed to `<id>.pack` unless an intact pack is already
//! there. So a cycle of swaps never overwrites a file that is still needed,
//! and a crash leaves `.moving` files that the next repair finishes moving.

use std::collections::HashSet;

use crate::error::Result;
use crate::pack::{pack_key, PackId};
use crate::parity::hash_file;
use crate::repo::{Repository, DATA_DIR};
use crate::storage::objects::{exists, names, rename};

pub const MOVING_SUFFIX: &str = ".pack.moving";

/// Moves each of `suspects` (pack ids whose file does not match its name)
/// whose content is one of `expected` to its own name; returns how many
/// packs were put in place.
pub fn relocate_packs(repo: &Repository, suspects: &[PackId], expected: &HashSet<PackId>) -> Result<u64> {
    let storage = &**repo.storage();
    for id in suspects {
        let key = pack_key(id);
        let Ok((_, hash)) = hash_file(storage, &key) else {
            continue;
        };
        if hash == *id || !expected.contains(&hash) {
            continue;
        }
        let moving = format!("{DATA_DIR}/{}{MOVING_SUFFIX}", hex::encode(hash));
        // Two files with the same content: the one already moving suffices.
        if !exists(storage, &moving)? {
            rename(storage, &key, &moving)?;
        }
    }
    let mut placed = 0;
    for name in names(storage, DATA_DIR)? {
        let Some(id) = name
            .strip_suffix(MOVING_SUFFIX)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| PackId::try_from(b).ok())
        else {
            continue;
        };
        let moving = format!("{DATA_DIR}/{name}");
        // Checked again: the file may be left over from an interrupted repair.
        if !hash_file(storage, &moving).is_ok_and(|(_, h)| h == id) {
            continue;
        }
        let target = pack_key(&id);
        if hash_file(storage, &target).is_ok_and(|(_, h)| h == id) {
            storage.delete(&moving)?;
        } else {
            rename(storage, &moving, &target)?;
            placed += 1;
        }
    }
    Ok(placed)
}
