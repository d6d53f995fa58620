//! Parity drafted while an ingest writes its packs, so that covering them
//! (`parity::cover`) need not read them back: on a bucket that was a GET of
//! every byte just uploaded, which cost time and egress.
//!
//! Parity is linear: member `i` of a group adds `c(k, i) x pack` to parity
//! shard `k` (zero-padded to the group's shard size), so each pack's share
//! can be added as its bytes stream into the pack writer. The ingest plans
//! which group and slot each of its packs will take (the open group's free
//! slots first, then new groups, as `cover_packs` lays them out) and drafts
//! those groups. `cover_packs` uses a draft only when it lays the packs out
//! exactly so; otherwise it reads them, as it always did. At most
//! `MAX_DRAFTS` groups are drafted per ingest, so memory does not grow with
//! the input: packs past them are read back.

use std::sync::{Arc, Mutex};

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::pack::PackId;
use crate::parity::GroupManifest;

/// Groups drafted per ingest, each `parityShards` buffers of its largest pack
/// (32 MiB with the defaults). Four cover 80 packs, about 650 MB stored: a
/// 1 GiB ingest into a local Garage then reads nothing back, and took
/// 6.46-6.77 s instead of 6.67-7.06 s with two (peak RSS 170-197 MiB either way).
pub const MAX_DRAFTS: usize = 4;
/// Larger packs (a `packTargetSize` far above the default 8 MB) are not drafted.
const MAX_PACK_DRAFTED: usize = 64 << 20;

/// The group a draft extends: its id and member count when planned; `None`
/// for a new group.
pub type Base = Option<(String, usize)>;

/// The parity share of the members of one planned group.
#[derive(Debug)]
pub struct Draft {
    pub base: Base,
    /// The packs in slot order, from the group's first free slot.
    pub packs: Vec<PackId>,
    /// `c(k, slot) x pack` summed over `packs`, one buffer per parity shard;
    /// each as long as the longest pack (the rest is zero).
    pub parity: Vec<Vec<u8>>,
}

impl Draft {
    /// Whether `additions` to `group` start with exactly this draft's packs, in its slots.
    pub fn fits(&self, group: &GroupManifest, additions: &[PackId]) -> bool {
        let base: Base = (!group.members.is_empty()).then(|| (group.id.clone(), group.members.len()));
        !self.packs.is_empty() && self.base == base && additions.starts_with(&self.packs)
    }
}

/// Adds one pack's bytes, as they are written, to its group's draft.
pub struct ParityShare {
    rs: Arc<ReedSolomon>,
    slot: usize,
    into: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ParityShare {
    /// `bytes` written at `offset` of the pack.
    pub fn add(&self, offset: u64, bytes: &[u8]) {
        let mut parity = self.into.lock().unwrap_or_else(|p| p.into_inner());
        let (from, to) = (offset as usize, offset as usize + bytes.len());
        for buf in parity.iter_mut() {
            if buf.len() < to {
                buf.resize(to, 0);
            }
        }
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|b| &mut b[from..to]).collect();
        // Slot 0 overwrites instead of adding: the buffer there is still zero,
        // as every offset of a pack is written once.
        self.rs
            .encode_single_sep(self.slot, bytes, &mut outs)
            .expect("the slot is inside the group and the lengths agree");
    }
}

/// One ingest's plan, filled pack by pack on the thread that writes packs.
pub struct Drafting {
    rs: Arc<ReedSolomon>,
    pack_size: usize,
    data_shards: usize,
    parity_shards: usize,
    /// The next group's base and the slot its first pack takes.
    base: Base,
    next_slot: usize,
    current: Option<(Draft, Arc<Mutex<Vec<Vec<u8>>>>)>,
    done: Vec<Draft>,
    drafted: usize,
    /// A pack got its share and is not complete: its bytes are in the
    /// current draft but it is not listed there.
    pack_open: bool,
}

impl Drafting {
    /// Plans from the groups as they are now: the first group with room (the
    /// one `cover_packs` extends if it is still sound then), else a new one.
    /// `pack_size` bounds a pack (target plus a chunk and the header): each
    /// draft buffer is reserved at once, not grown by doubling.
    pub fn plan(groups: &[GroupManifest], data_shards: u32, parity_shards: u32, pack_size: usize) -> Option<Drafting> {
        if pack_size > MAX_PACK_DRAFTED {
            return None;
        }
        let rs = ReedSolomon::new(data_shards as usize, parity_shards as usize).ok()?;
        let superseded = crate::supersede::superseded_ids(groups);
        let open = groups.iter().find(|g| {
            g.members.len() < g.data_shards as usize
                && !superseded.contains(&g.id)
                && (g.data_shards, g.parity_shards) == (data_shards, parity_shards)
        });
        Some(Drafting {
            rs: Arc::new(rs),
            pack_size,
            data_shards: data_shards as usize,
            parity_shards: parity_shards as usize,
            base: open.map(|g| (g.id.clone(), g.members.len())),
            next_slot: open.map_or(0, |g| g.members.len()),
            current: None,
            done: Vec::new(),
            drafted: 0,
            pack_open: false,
        })
    }

    /// The share of the next pack, or None once `MAX_DRAFTS` groups are drafted.
    pub fn next_pack(&mut self) -> Option<ParityShare> {
        if self.current.is_none() {
            if self.drafted == MAX_DRAFTS {
                return None;
            }
            self.drafted += 1;
            let draft = Draft {
                base: self.base.clone(),
                packs: Vec::new(),
                parity: Vec::new(),
            };
            let buffers = (0..self.parity_shards)
                .map(|_| Vec::with_capacity(self.pack_size))
                .collect();
            self.current = Some((draft, Arc::new(Mutex::new(buffers))));
        }
        let (_, into) = self.current.as_ref().expect("a draft is open");
        self.pack_open = true;
        Some(ParityShare {
            rs: self.rs.clone(),
            slot: self.next_slot,
            into: into.clone(),
        })
    }

    /// The pack whose share `next_pack` gave is complete under `id`.
    pub fn pack_done(&mut self, id: PackId) {
        let Some((draft, _)) = self.current.as_mut() else {
            return;
        };
        self.pack_open = false;
        draft.packs.push(id);
        self.next_slot += 1;
        if self.next_slot == self.data_shards {
            self.close_group();
            self.base = None;
            self.next_slot = 0;
        }
    }

    fn close_group(&mut self) {
        if let Some((mut draft, into)) = self.current.take() {
            draft.parity = std::mem::take(&mut *into.lock().unwrap_or_else(|p| p.into_inner()));
            self.done.push(draft);
        }
    }

    /// The drafts, for `cover_packs`. A draft holding part of a pack that
    /// was never completed (the ingest failed) is dropped: its sum is wrong.
    pub fn finish(mut self) -> Vec<Draft> {
        if self.pack_open {
            self.current = None;
        }
        self.close_group();
        self.done.retain(|d| !d.packs.is_empty());
        self.done
    }
}
