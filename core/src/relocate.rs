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
use std::fs;

use crate::error::{IoContext, Result};
use crate::fsutil::{fsync_dir, list_files, remove_durably};
use crate::pack::{pack_file_name, PackId};
use crate::parity::hash_file;
use crate::repo::Repository;

pub const MOVING_SUFFIX: &str = ".pack.moving";

/// Moves each of `suspects` (pack ids whose file does not match its name)
/// whose content is one of `expected` to its own name; returns how many
/// packs were put in place.
pub fn relocate_packs(repo: &Repository, suspects: &[PackId], expected: &HashSet<PackId>) -> Result<u64> {
    let dir = repo.data_dir();
    let mut moved_any = false;
    for id in suspects {
        let path = dir.join(pack_file_name(id));
        let Ok((_, hash)) = hash_file(&path) else { continue };
        if hash == *id || !expected.contains(&hash) {
            continue;
        }
        let moving = dir.join(format!("{}{MOVING_SUFFIX}", hex::encode(hash)));
        // Two files with the same content: the one already moving suffices.
        if !moving.exists() {
            fs::rename(&path, &moving).at(&moving)?;
            moved_any = true;
        }
    }
    if moved_any {
        fsync_dir(&dir)?;
    }
    let mut placed = 0;
    for name in list_files(&dir)? {
        let Some(id) = name
            .strip_suffix(MOVING_SUFFIX)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| PackId::try_from(b).ok())
        else {
            continue;
        };
        let moving = dir.join(&name);
        // Checked again: the file may be left over from an interrupted repair.
        if !hash_file(&moving).is_ok_and(|(_, h)| h == id) {
            continue;
        }
        let target = dir.join(pack_file_name(&id));
        if hash_file(&target).is_ok_and(|(_, h)| h == id) {
            remove_durably(&moving)?;
        } else {
            fs::rename(&moving, &target).at(&target)?;
            fsync_dir(&dir)?;
            placed += 1;
        }
    }
    Ok(placed)
}
