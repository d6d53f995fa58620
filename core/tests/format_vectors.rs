//! The numbers docs/FORMAT.md gives for an independent implementation
//! (parity matrices, FastCDC masks and gear table) are read back from the
//! document and checked against the pinned crates, so the two cannot drift.

use fastcdc::v2020::{get_gear_with_seed, select_masks, Normalization};
use reed_solomon_erasure::galois_8::ReedSolomon;

const FORMAT_MD: &str = include_str!("../../docs/FORMAT.md");

/// GF(2^8) multiplication modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11D), as FORMAT.md states it.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1D;
        }
        b >>= 1;
    }
    p
}

fn gf_pow(a: u8, n: usize) -> u8 {
    (0..n).fold(1u8, |acc, _| gf_mul(acc, a))
}

fn gf_inv(a: u8) -> u8 {
    (1..=255u8)
        .find(|&x| gf_mul(a, x) == 1)
        .expect("nonzero element has an inverse")
}

/// Inverts a square matrix over GF(2^8) by Gauss-Jordan elimination.
fn invert(m: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let n = m.len();
    let mut a: Vec<Vec<u8>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| u8::from(i == j)));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r][col] != 0).expect("invertible");
        a.swap(col, pivot);
        let inv = gf_inv(a[col][col]);
        for x in a[col].iter_mut() {
            *x = gf_mul(*x, inv);
        }
        for r in 0..n {
            if r != col && a[r][col] != 0 {
                let f = a[r][col];
                let pivot_row = a[col].clone();
                for (x, p) in a[r].iter_mut().zip(pivot_row) {
                    *x ^= gf_mul(f, p);
                }
            }
        }
    }
    a.into_iter().map(|r| r[n..].to_vec()).collect()
}

/// The parity rows of the encoding matrix, computed from FORMAT.md's description.
fn parity_rows_from_definition(d: usize, p: usize) -> Vec<Vec<u8>> {
    let v: Vec<Vec<u8>> = (0..d + p)
        .map(|r| (0..d).map(|c| gf_pow(r as u8, c)).collect())
        .collect();
    let top_inv = invert(&v[..d]);
    v[d..]
        .iter()
        .map(|row| {
            (0..d)
                .map(|c| (0..d).fold(0u8, |acc, k| acc ^ gf_mul(row[k], top_inv[k][c])))
                .collect()
        })
        .collect()
}

/// The parity rows as the crate computes them: parity of unit-vector data shards.
fn parity_rows_from_crate(d: usize, p: usize) -> Vec<Vec<u8>> {
    let rs = ReedSolomon::new(d, p).unwrap();
    let mut rows = vec![vec![0u8; d]; p];
    for i in 0..d {
        let mut shards: Vec<Vec<u8>> = (0..d + p).map(|j| vec![u8::from(j == i)]).collect();
        rs.encode(&mut shards).unwrap();
        for k in 0..p {
            rows[k][i] = shards[d + k][0];
        }
    }
    rows
}

fn hex_bytes(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// The lines of the fenced block that follows `heading` in FORMAT.md.
fn doc_block(heading: &str) -> Vec<&'static str> {
    let start = FORMAT_MD
        .find(heading)
        .unwrap_or_else(|| panic!("FORMAT.md has no {heading:?}"));
    let rest = &FORMAT_MD[start..];
    let open = rest.find("```").expect("a fenced block follows") + 3;
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let close = body.find("```").expect("the block ends");
    body[..close].lines().collect()
}

fn hex_u64(token: &str) -> u64 {
    u64::from_str_radix(token.trim_start_matches("0x"), 16).expect("hex u64")
}

#[test]
fn parity_rows_in_format_md_are_the_crates() {
    let lines = doc_block("Parity test vectors");
    assert!(!lines.is_empty());
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        // "RS(3,2) parity 1: 0f 08 06"
        let (head, bytes) = line.split_once(':').expect("RS(d,p) parity k: bytes");
        let head = head.trim().strip_prefix("RS(").expect("RS(");
        let (dp, k) = head.split_once(") parity ").expect(") parity k");
        let (d, p) = dp.split_once(',').unwrap();
        let (d, p, k): (usize, usize, usize) = (d.parse().unwrap(), p.parse().unwrap(), k.parse().unwrap());
        let documented = hex_bytes(bytes);
        assert_eq!(documented, parity_rows_from_crate(d, p)[k], "{line}");
        assert_eq!(documented, parity_rows_from_definition(d, p)[k], "{line}");
        seen.insert((d, p));
    }
    assert!(seen.contains(&(3, 2)) && seen.contains(&(20, 1)));
}

#[test]
fn the_documented_matrix_construction_is_the_crates_for_every_shape() {
    for d in 1..=24 {
        for p in 1..=4 {
            assert_eq!(
                parity_rows_from_crate(d, p),
                parity_rows_from_definition(d, p),
                "RS({d},{p})"
            );
        }
    }
    assert_eq!(parity_rows_from_crate(200, 56), parity_rows_from_definition(200, 56));
}

/// `b = round(log2(avg))` without floating point, as FORMAT.md states it:
/// the b with 2^(2b-1) < avg^2 < 2^(2b+1).
fn bucket(avg: u64) -> usize {
    let sq = avg * avg;
    (0..64).find(|&b| sq < 1u64 << (2 * b + 1)).unwrap()
}

#[test]
fn masks_in_format_md_are_the_crates_for_every_valid_average() {
    let mut masks = std::collections::HashMap::new();
    for line in doc_block("**Masks.**") {
        // "MASKS[13] = 0x0000d90303530000"
        let (k, v) = line.split_once('=').unwrap();
        let k: usize = k
            .trim()
            .strip_prefix("MASKS[")
            .unwrap()
            .trim_end_matches(']')
            .parse()
            .unwrap();
        masks.insert(k, hex_u64(v.trim()));
    }
    for avg in (fastcdc::v2020::AVERAGE_MIN..=fastcdc::v2020::AVERAGE_MAX).step_by(2) {
        let b = bucket(avg as u64);
        let documented = (masks[&(b + 1)], masks[&(b - 1)]);
        assert_eq!(documented, select_masks(avg, Normalization::Level1), "avgSize {avg}");
    }
}

#[test]
fn gear_appendix_is_the_crates_table_and_gear_ls_and_seeding_follow_the_document() {
    let start = FORMAT_MD.find("## Appendix: GEAR table").expect("appendix");
    let appendix = &FORMAT_MD[start..];
    let appendix = &appendix[..appendix[3..].find("\n## ").map_or(appendix.len(), |i| i + 3)];
    let documented: Vec<u64> = appendix
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 18 && t.starts_with("0x"))
        .map(hex_u64)
        .collect();
    let (gear, gear_ls) = get_gear_with_seed(0);
    assert_eq!(documented, gear.to_vec());
    for seed in [0u64, 1, 0x8000_0000_0000_0001, 0x0123_4567_89ab_cdef] {
        let (g, gl) = get_gear_with_seed(seed);
        for i in 0..256 {
            assert_eq!(g[i], gear[i] ^ seed);
            assert_eq!(gl[i], g[i] << 1, "GEAR_LS[i] = GEAR[i] << 1, seeded or not");
            assert_eq!(gear_ls[i], gear[i] << 1);
        }
    }
}

/// FORMAT.md's sample stream: x <- x * 6364136223846793005 + 1442695040888963407
/// (mod 2^64) from x = 0, one byte (x >> 56) per step.
fn sample_stream(len: usize) -> Vec<u8> {
    let mut x: u64 = 0;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// The cut-point function exactly as FORMAT.md's pseudo-code writes it.
fn documented_cut(src: &[u8], min: usize, avg: usize, max: usize, masks: (u64, u64), gear: &[u64]) -> usize {
    let (mask_s, mask_l) = masks;
    let gear_ls = |b: u8| gear[b as usize] << 1;
    let mut n = src.len();
    if n <= min {
        return n;
    }
    let mut center = avg;
    if n > max {
        n = max;
    } else if n < center {
        center = n;
    }
    let mut hash: u64 = 0;
    let mut j = min / 2;
    while j < n / 2 {
        let a = 2 * j;
        let mask = if j < center / 2 { mask_s } else { mask_l };
        hash = (hash << 2).wrapping_add(gear_ls(src[a]));
        if hash & (mask << 1) == 0 {
            return a;
        }
        hash = hash.wrapping_add(gear[src[a + 1] as usize]);
        if hash & mask == 0 {
            return a + 1;
        }
        j += 1;
    }
    n
}

#[test]
fn chunk_vectors_in_format_md_match_the_crate_and_the_pseudo_code() {
    let lines = doc_block("Chunking test vectors");
    let input = sample_stream(100_000);
    let mut checked = 0;
    for line in lines {
        // "seed 0x0000000000000000: 9311 6853 ..."
        let (seed, lengths) = line.split_once(':').unwrap();
        let seed = hex_u64(seed.trim().strip_prefix("seed ").unwrap());
        let documented: Vec<usize> = lengths.split_whitespace().map(|t| t.parse().unwrap()).collect();
        let (min, avg, max) = (2048, 8192, 32768);
        let crate_lengths: Vec<usize> =
            fastcdc::v2020::FastCDC::with_level_and_seed(&input, min, avg, max, Normalization::Level1, seed)
                .map(|c| c.length)
                .collect();
        assert_eq!(documented, crate_lengths, "seed {seed:#x}");
        let (gear, _) = get_gear_with_seed(seed);
        let masks = select_masks(avg, Normalization::Level1);
        let mut pos = 0;
        let mut ours = Vec::new();
        while pos < input.len() {
            let len = documented_cut(&input[pos..], min, avg, max, masks, &gear);
            ours.push(len);
            pos += len;
        }
        assert_eq!(documented, ours, "pseudo-code, seed {seed:#x}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
#[ignore = "prints the values FORMAT.md lists; run with --ignored --nocapture"]
fn print_vectors() {
    for (d, p) in [(3, 2), (20, 1)] {
        for (k, row) in parity_rows_from_crate(d, p).iter().enumerate() {
            let row: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            println!("RS({d},{p}) parity {k}: {}", row.join(" "));
        }
    }
    for k in 7..=23 {
        println!("MASKS[{k}] = {:#018x}", fastcdc::v2020::MASKS[k]);
    }
    let input = sample_stream(100_000);
    for seed in [0u64, 0x0123_4567_89ab_cdef] {
        let lengths: Vec<String> =
            fastcdc::v2020::FastCDC::with_level_and_seed(&input, 2048, 8192, 32768, Normalization::Level1, seed)
                .map(|c| c.length.to_string())
                .collect();
        println!("seed {seed:#018x}: {}", lengths.join(" "));
    }
    let (gear, _) = get_gear_with_seed(0);
    for (i, row) in gear.chunks(4).enumerate() {
        let row: Vec<String> = row.iter().map(|g| format!("{g:#018x}")).collect();
        println!("{:3}: {}", i * 4, row.join(" "));
    }
}
