//! Chunk buffers recycled while a full verify runs.
//!
//! A full verify decodes every chunk into a buffer it hashes and drops. With
//! glibc, a freed megabyte buffer goes back to the kernel and the next one is
//! faulted in again 4 KiB at a time: page faults were a sixth of a bucket
//! verify's CPU. While a [`Scope`] is alive, [`give`] keeps such buffers and
//! [`take`] hands them out again. Outside a scope both do what a plain `Vec`
//! does, so restores (whose buffers go to JS) are unchanged; when the last
//! scope ends the pool is emptied, so nothing stays held after a verify.

use std::sync::{Mutex, MutexGuard};

/// The capacity of a pooled buffer: a default maximum chunk, and room for its
/// stored form (compression overhead, nonce and tag). Pages are touched only
/// as far as a chunk fills them, so a small chunk costs no more.
const SLAB: usize = crate::config::DEFAULT_MAX_CHUNK as usize + (64 << 10);

/// At most this many idle buffers are kept: what verify's workers and its
/// reordering window hand back between two takes, not the whole window.
const MAX_IDLE: usize = 16;

#[derive(Default)]
struct Pool {
    scopes: usize,
    idle: Vec<Vec<u8>>,
}

impl Pool {
    fn enter(&mut self) {
        self.scopes += 1;
    }

    /// The idle buffers to free once the last scope is left.
    fn leave(&mut self) -> Vec<Vec<u8>> {
        self.scopes -= 1;
        match self.scopes {
            0 => std::mem::take(&mut self.idle),
            _ => Vec::new(),
        }
    }

    /// An idle buffer with room for `len` bytes, or the capacity of a new one.
    fn take(&mut self, len: usize) -> Result<Vec<u8>, usize> {
        if self.scopes == 0 {
            return Err(len);
        }
        match self.idle.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => Ok(self.idle.swap_remove(i)),
            None => Err(len.max(SLAB)),
        }
    }

    /// The buffer back, unless it is kept.
    fn give(&mut self, mut buffer: Vec<u8>) -> Option<Vec<u8>> {
        if self.scopes > 0 && self.idle.len() < MAX_IDLE && buffer.capacity() >= SLAB {
            buffer.clear();
            self.idle.push(buffer);
            return None;
        }
        Some(buffer)
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    scopes: 0,
    idle: Vec::new(),
});

fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Recycling is on while one is alive (several may be, from concurrent verifies).
pub struct Scope(());

pub fn scope() -> Scope {
    pool().enter();
    Scope(())
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Freed outside the lock.
        let idle = pool().leave();
        drop(idle);
    }
}

/// An empty buffer with room for `len` bytes: an idle one when a scope is
/// alive and one is large enough, else a new one.
pub fn take(len: usize) -> Vec<u8> {
    let taken = pool().take(len);
    taken.unwrap_or_else(Vec::with_capacity)
}

/// Hands a buffer back: kept for `take` while a scope is alive and fewer than
/// `MAX_IDLE` are idle, else freed.
pub fn give(buffer: Vec<u8>) {
    let refused = pool().give(buffer);
    drop(refused);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_from(pool: &mut Pool, len: usize) -> Vec<u8> {
        pool.take(len).unwrap_or_else(Vec::with_capacity)
    }

    #[test]
    fn recycles_only_inside_a_scope_and_empties_when_the_last_ends() {
        let mut pool = Pool::default();
        let plain = take_from(&mut pool, 10);
        assert!(plain.capacity() < SLAB, "outside a scope, a plain Vec");
        assert!(pool.give(plain).is_some());
        assert!(pool.idle.is_empty());

        pool.enter();
        pool.enter();
        let mut b = take_from(&mut pool, 100);
        assert!(b.capacity() >= SLAB);
        b.extend_from_slice(&[7; 100]);
        let at = b.as_ptr();
        assert!(pool.give(b).is_none());
        let again = take_from(&mut pool, 5000);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer again");
        assert!(pool.give(again).is_none());
        let big = take_from(&mut pool, SLAB * 2);
        assert!(big.capacity() >= SLAB * 2, "too large for any idle buffer");
        assert_eq!(pool.idle.len(), 1, "the idle one stays");
        assert!(pool.give(Vec::with_capacity(10)).is_some(), "too small to keep");
        for _ in 0..MAX_IDLE + 4 {
            let _ = pool.give(Vec::with_capacity(SLAB));
        }
        assert_eq!(pool.idle.len(), MAX_IDLE);
        assert!(pool.leave().is_empty(), "still one scope");
        assert_eq!(pool.idle.len(), MAX_IDLE);
        assert_eq!(pool.leave().len(), MAX_IDLE);
        assert!(pool.idle.is_empty());
        assert!(pool.give(Vec::with_capacity(SLAB)).is_some(), "no scope: freed");
    }
}
