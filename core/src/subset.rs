//! `verify` subsets (restic's `check --read-data-subset`): which packs and
//! parity groups one run reads.
//!
//! `n/of` selects the packs and groups whose id's first byte, modulo `of`,
//! is `n - 1`: fixed by the id, so the runs 1/of .. of/of together read
//! every pack exactly once. `p%` selects a fresh random p percent (rounded
//! up) on every run, as restic does.

use crate::error::{Error, Result};

/// The largest `of`: slices are decided by one byte of the id.
pub const MAX_SLICES: u32 = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum Subset {
    Slice { n: u32, of: u32 },
    Percent(f64),
}

impl Subset {
    /// "n/of" (1 <= n <= of <= 256) or "p%" (0 < p <= 100).
    pub fn parse(text: &str) -> Result<Subset> {
        let bad = || {
            Error::invalid(format!(
                "subset {text:?} is not n/of (1 <= n <= of <= {MAX_SLICES}, e.g. 1/7) or a percentage above 0 and at most 100 (e.g. 10%)"
            ))
        };
        if let Some(p) = text.strip_suffix('%') {
            let digits = p.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !p.is_empty();
            let p: f64 = p.parse().map_err(|_| bad())?;
            return if digits && p > 0.0 && p <= 100.0 {
                Ok(Subset::Percent(p))
            } else {
                Err(bad())
            };
        }
        let (n, of) = text.split_once('/').ok_or_else(bad)?;
        let number =
            |s: &str| -> Option<u32> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten() };
        match (number(n), number(of)) {
            (Some(n), Some(of)) if n >= 1 && n <= of && of <= MAX_SLICES => Ok(Subset::Slice { n, of }),
            _ => Err(bad()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Subset::Slice { n, of } => format!("{n}/{of}"),
            Subset::Percent(p) => format!("{p}%"),
        }
    }

    /// The ids this run reads, from all of them (pack ids, group ids as bytes).
    pub fn select<T: Clone>(&self, all: &[T], id: impl Fn(&T) -> Vec<u8>) -> Vec<T> {
        match *self {
            Subset::Slice { n, of } => all
                .iter()
                .filter(|t| id(t).first().is_some_and(|b| *b as u32 % of == n - 1))
                .cloned()
                .collect(),
            Subset::Percent(p) => {
                let want = ((all.len() as f64) * p / 100.0).ceil() as usize;
                // A random order: each id's hash under a seed drawn for this run.
                let seed = crate::fsutil::random_bytes::<32>();
                let mut keyed: Vec<([u8; 32], &T)> = all
                    .iter()
                    .map(|t| (crate::crypto::sha256(&[&seed[..], &id(t)].concat()), t))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                keyed.into_iter().take(want).map(|(_, t)| t.clone()).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slices_and_percentages_and_refuses_the_rest() {
        assert_eq!(Subset::parse("1/7").unwrap(), Subset::Slice { n: 1, of: 7 });
        assert_eq!(Subset::parse("256/256").unwrap(), Subset::Slice { n: 256, of: 256 });
        assert_eq!(Subset::parse("10%").unwrap(), Subset::Percent(10.0));
        assert_eq!(Subset::parse("2.5%").unwrap(), Subset::Percent(2.5));
        for bad in [
            "0/7", "8/7", "1/0", "1/257", "0%", "101%", "-1%", "x", "1/7/2", "+1/7", "1 /7", "%", "1e1%", "",
        ] {
            assert_eq!(Subset::parse(bad).unwrap_err().code(), "ERR_INVALID_ARGUMENT", "{bad}");
        }
    }

    #[test]
    fn the_slices_of_a_cycle_partition_the_ids() {
        let ids: Vec<[u8; 32]> = (0..=255u8).map(|b| [b; 32]).collect();
        let mut seen = std::collections::HashSet::new();
        for n in 1..=7 {
            for id in (Subset::Slice { n, of: 7 }).select(&ids, |i| i.to_vec()) {
                assert_eq!(id[0] as u32 % 7, n - 1);
                assert!(seen.insert(id), "a pack in two slices");
            }
        }
        assert_eq!(seen.len(), ids.len());
        assert_eq!(Subset::Percent(10.0).select(&ids, |i| i.to_vec()).len(), 26);
    }
}
