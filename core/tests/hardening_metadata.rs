//! Issue 8, points 2, 8 and 12: checksummed metadata in plain repositories,
//! config.json decided by its checksum, and range checks on every value read.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use containerarchive_core::check::{Level, VerifyReport};
use containerarchive_core::crypto::{Sealer, AAD_PARITY};
use containerarchive_core::repair::repair;
use containerarchive_core::restore::{restore_chunks, select_item};
use containerarchive_core::{InitOptions, Repository};
use serde_json::{json, Value};

mod common;
use common::{check, data, ingest_bytes, small_options};

struct Fixture {
    dir: PathBuf,
    snapshots: Vec<(String, Vec<u8>)>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn options(passphrase: Option<&str>) -> InitOptions {
    small_options(passphrase)
}

fn fixture(passphrase: Option<&str>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ca-hardening-{}", containerarchive_core::fsutil::random_hex(6)));
    let repo = Repository::init(&dir, &options(passphrase)).unwrap();
    let mut snapshots = Vec::new();
    for seed in 1..=2 {
        let bytes = data(seed, 500_000);
        snapshots.push((ingest_bytes(&repo, &bytes).id, bytes));
    }
    Fixture { dir, snapshots }
}

fn restored(repo: &Repository, id: &str) -> containerarchive_core::Result<Vec<u8>> {
    let manifest = repo.load_snapshot(id)?;
    let ids = select_item(&manifest, None)?.chunk_ids()?;
    let mut out = Vec::new();
    restore_chunks(
        repo,
        &ids,
        &mut |d| Ok(out.extend_from_slice(&d)),
        &AtomicBool::new(false),
    )?;
    Ok(out)
}

fn assert_healthy(f: &Fixture, repo: &Repository) {
    let report = check(repo, Level::Full);
    assert!(report.ok, "{:#?}", report.errors);
    for (id, bytes) in &f.snapshots {
        assert_eq!(&restored(repo, id).unwrap(), bytes, "snapshot {id} restores");
    }
}

fn has_issue(report: &VerifyReport, kind: &str, mention: &str) -> bool {
    report
        .errors
        .iter()
        .any(|e| e.kind == kind && e.error.contains(mention))
}

/// The group manifests: (file name, JSON with the checksum trailer stripped).
fn groups(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fs::read_dir(dir.join("packs/parity"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".group"))
        .map(|n| {
            let bytes = fs::read(dir.join("packs/parity").join(&n)).unwrap();
            let plain = Sealer::Plain { legacy: false }
                .open(AAD_PARITY, &bytes)
                .expect("intact manifest");
            (n, serde_json::from_slice(&plain).unwrap())
        })
        .collect();
    out.sort_by_key(|(_, g)| std::cmp::Reverse(g["members"].as_array().unwrap().len()));
    out
}

/// Writes a group manifest, with a valid checksum trailer (`reseal`) or with the old one.
fn write_group(dir: &Path, name: &str, group: &Value, reseal: bool) {
    let path = dir.join("packs/parity").join(name);
    let json = serde_json::to_vec(group).unwrap();
    let bytes = if reseal {
        Sealer::Plain { legacy: false }.seal(AAD_PARITY, json)
    } else {
        let old = fs::read(&path).unwrap();
        let mut b = json;
        b.extend_from_slice(&old[old.len() - 32..]);
        b
    };
    fs::write(path, bytes).unwrap();
}

fn other_hex(s: &str) -> String {
    let first = if s.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &s[1..])
}

#[test]
fn every_group_field_edit_is_found_by_quick_verify_and_repair_keeps_the_data_repairable() {
    type Edit = fn(&mut Value);
    let edits: Vec<(&str, Edit)> = vec![
        ("member sha256", |g| {
            let v = other_hex(g["members"][1]["sha256"].as_str().unwrap());
            g["members"][1]["sha256"] = json!(v);
        }),
        ("member size", |g| {
            let v = g["members"][1]["size"].as_u64().unwrap() - 1;
            g["members"][1]["size"] = json!(v);
        }),
        ("member pack id", |g| {
            let v = other_hex(g["members"][0]["pack"].as_str().unwrap());
            g["members"][0]["pack"] = json!(v);
        }),
        ("shardSize", |g| {
            let v = g["shardSize"].as_u64().unwrap() + 1;
            g["shardSize"] = json!(v);
        }),
        ("dataShards 5", |g| g["dataShards"] = json!(5)),
        ("dataShards 300", |g| g["dataShards"] = json!(300)),
        ("parityShards 0", |g| g["parityShards"] = json!(0)),
    ];
    for reseal in [false, true] {
        for (what, edit) in &edits {
            let f = fixture(None);
            let (name, mut group) = groups(&f.dir).remove(0);
            assert!(
                group["members"].as_array().unwrap().len() >= 2,
                "fixture: a group of two packs"
            );
            edit(&mut group);
            write_group(&f.dir, &name, &group, reseal);
            let repo = Repository::open(&f.dir, None).unwrap();
            let quick = check(&repo, Level::Quick);
            assert!(
                has_issue(&quick, "parity", &name),
                "{what} (resealed: {reseal}): quick verify must report the manifest: {:#?}",
                quick.errors
            );
            let report = repair(&repo, Duration::ZERO).unwrap();
            assert!(report.unrecoverable.is_empty(), "{what}: nothing is lost: {report:#?}");
            assert_healthy(&f, &repo);

            // A single pack fault afterwards is still repairable.
            let (_, after) = groups(&f.dir).remove(0);
            let victim = f.dir.join(format!(
                "packs/data/{}.pack",
                after["members"][0]["pack"].as_str().unwrap()
            ));
            let original = fs::read(&victim).unwrap();
            fs::remove_file(&victim).unwrap();
            let report = repair(&repo, Duration::ZERO).unwrap();
            assert!(report.unrecoverable.is_empty(), "{what}: {report:#?}");
            assert_eq!(fs::read(&victim).unwrap(), original, "{what}: rebuilt byte for byte");
            assert_healthy(&f, &repo);
        }
    }
}

#[test]
fn a_damaged_manifest_and_a_lost_member_together_are_rebuilt_from_parity() {
    let edits: Vec<(&str, fn(&mut Value))> = vec![
        ("a flipped checksum", |_| {}),
        ("the lost member's sha256", |g| {
            let v = other_hex(g["members"][0]["sha256"].as_str().unwrap());
            g["members"][0]["sha256"] = json!(v);
        }),
        ("the lost member's size", |g| g["members"][0]["size"] = json!(7)),
        ("dataShards", |g| g["dataShards"] = json!(300)),
    ];
    for (what, edit) in edits {
        let f = fixture(None);
        let (name, mut group) = groups(&f.dir).remove(0);
        let pack = group["members"][0]["pack"].as_str().unwrap().to_string();
        edit(&mut group);
        write_group(&f.dir, &name, &group, false);
        let path = f.dir.join("packs/parity").join(&name);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the checksum never matches
        fs::write(&path, bytes).unwrap();
        let victim = f.dir.join(format!("packs/data/{pack}.pack"));
        let original = fs::read(&victim).unwrap();
        fs::remove_file(&victim).unwrap();

        let repo = Repository::open(&f.dir, None).unwrap();
        assert!(has_issue(&check(&repo, Level::Quick), "parity", &name), "{what}");
        let report = repair(&repo, Duration::ZERO).unwrap();
        assert!(report.unrecoverable.is_empty(), "{what}: {report:#?}");
        assert_eq!(fs::read(&victim).unwrap(), original, "{what}: rebuilt byte for byte");
        assert!(
            !f.dir.join("packs/parity").join(&name).exists(),
            "{what}: the bad manifest is replaced"
        );
        assert_healthy(&f, &repo);
    }
}

#[test]
fn a_wrong_guess_never_writes_a_pack_and_a_lost_group_is_named_not_thrown() {
    let f = fixture(None);
    let (name, group) = groups(&f.dir).remove(0);
    let members: Vec<String> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pack"].as_str().unwrap().to_string())
        .collect();
    // Manifest unreadable and two members lost: more than one parity shard can rebuild.
    fs::write(f.dir.join("packs/parity").join(&name), b"{garbage").unwrap();
    for p in &members[..2] {
        fs::remove_file(f.dir.join(format!("packs/data/{p}.pack"))).unwrap();
    }
    let repo = Repository::open(&f.dir, None).unwrap();
    for call in 0..2 {
        let report = repair(&repo, Duration::ZERO).expect("repair never throws on every call");
        let lost: Vec<String> = report.unrecoverable.iter().filter_map(|u| u.pack.clone()).collect();
        for p in members[..2].iter().filter(|_| call == 0) {
            assert!(lost.contains(p), "{p} is named as lost: {report:#?}");
        }
        for p in &members[2..] {
            assert!(!lost.contains(p), "a healthy pack is never declared lost: {report:#?}");
        }
    }
    // Every pack file on disk is named by its hash.
    for entry in fs::read_dir(f.dir.join("packs/data")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pack") {
            let hash = hex::encode(containerarchive_core::crypto::sha256(&fs::read(&path).unwrap()));
            assert_eq!(path.file_stem().unwrap().to_string_lossy(), hash);
        }
    }
}

#[test]
fn data_shards_300_is_reported_and_ingest_and_repair_still_work() {
    let f = fixture(None);
    let (name, mut group) = groups(&f.dir).remove(0);
    group["dataShards"] = json!(300);
    write_group(&f.dir, &name, &group, true);
    let repo = Repository::open(&f.dir, None).unwrap();
    assert!(has_issue(&check(&repo, Level::Quick), "parity", &name));
    let more = data(9, 200_000);
    let id = ingest_bytes(&repo, &more).id;
    assert_eq!(restored(&repo, &id).unwrap(), more);
    repair(&repo, Duration::ZERO).unwrap();
    assert_healthy(&f, &repo);
}

#[test]
fn other_metadata_files_carry_a_checksum_that_quick_verify_checks() {
    let f = fixture(None);
    let flip_last = |path: &Path| {
        let mut b = fs::read(path).unwrap();
        let n = b.len() - 1;
        b[n] ^= 0x10;
        fs::write(path, b).unwrap();
    };
    let first = |dir: &str, ext: &str| -> PathBuf {
        fs::read_dir(f.dir.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(ext))
            .unwrap()
    };
    flip_last(&first("packs/data", ".idx"));
    flip_last(&f.dir.join("snapshots").join(&f.snapshots[0].0));
    let repo = Repository::open(&f.dir, None).unwrap();
    let quick = check(&repo, Level::Quick);
    assert!(quick.errors.iter().any(|e| e.kind == "idx"), "{:#?}", quick.errors);
    assert!(quick.errors.iter().any(|e| e.kind == "snapshot"), "{:#?}", quick.errors);
    // A plain manifest without its trailer is the legacy form: accepted only in a version-1 repository.
    let manifest = first("packs/parity", ".group");
    let bytes = fs::read(&manifest).unwrap();
    fs::write(&manifest, &bytes[..bytes.len() - 32]).unwrap();
    let (_, damaged) = containerarchive_core::parity::load_groups(&repo).unwrap();
    assert_eq!(damaged.len(), 1, "no trailer in a version-2 repository is damage");
}

fn set_config_field(path: &Path, pointer: &str, value: Value, resum: bool) {
    let mut config: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    *config.pointer_mut(pointer).unwrap() = value;
    if resum {
        let parsed: containerarchive_core::RepoConfig = serde_json::from_value(config.clone()).unwrap();
        config["checksum"] = json!(parsed.compute_checksum());
    }
    fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

#[test]
fn a_damaged_version_opens_from_the_intact_copy_and_repair_fixes_only_the_bad_file() {
    for (bad, good) in [
        ("config.json", "packs/parity/config.json"),
        ("packs/parity/config.json", "config.json"),
    ] {
        for version in [0, 3, 9] {
            let f = fixture(None);
            let (bad_path, good_path) = (f.dir.join(bad), f.dir.join(good));
            let original = fs::read(&good_path).unwrap();
            set_config_field(&bad_path, "/version", json!(version), false);
            let repo = Repository::open(&f.dir, None).expect("the intact copy opens it");
            assert!(
                has_issue(&check(&repo, Level::Quick), "config", bad),
                "{bad} version {version}"
            );
            let before = fs::metadata(&good_path).unwrap().modified().unwrap();
            repair(&repo, Duration::ZERO).unwrap();
            assert_eq!(fs::read(&bad_path).unwrap(), original, "{bad} is rewritten");
            assert_eq!(fs::read(&good_path).unwrap(), original, "{good} is left alone");
            assert_eq!(fs::metadata(&good_path).unwrap().modified().unwrap(), before);
            assert!(check(&repo, Level::Quick).ok);
        }
    }
}

#[test]
fn a_version_newer_in_both_copies_with_valid_checksums_is_unsupported() {
    let f = fixture(None);
    for file in ["config.json", "packs/parity/config.json"] {
        set_config_field(&f.dir.join(file), "/version", json!(3), true);
    }
    assert_eq!(
        Repository::open(&f.dir, None).err().unwrap().code(),
        "ERR_UNSUPPORTED_FORMAT"
    );
    // One copy of a genuinely newer engine is enough to refuse (it is never "repaired").
    let f = fixture(None);
    set_config_field(&f.dir.join("packs/parity/config.json"), "/version", json!(3), true);
    assert_eq!(
        Repository::open(&f.dir, None).err().unwrap().code(),
        "ERR_UNSUPPORTED_FORMAT"
    );
}

#[test]
fn an_edited_value_that_still_parses_is_blamed_on_the_edited_file() {
    let f = fixture(None);
    let original = fs::read(f.dir.join("config.json")).unwrap();
    set_config_field(&f.dir.join("config.json"), "/packTargetSize", json!(131072), false);
    let repo = Repository::open(&f.dir, None).unwrap();
    assert_eq!(repo.config.pack_target_size, 65536, "the copy's value is used");
    let quick = check(&repo, Level::Quick);
    assert!(has_issue(&quick, "config", "config.json"), "{:#?}", quick.errors);
    assert!(
        !has_issue(&quick, "config", "packs/parity/config.json"),
        "{:#?}",
        quick.errors
    );
    repair(&repo, Duration::ZERO).unwrap();
    assert_eq!(fs::read(f.dir.join("config.json")).unwrap(), original);
    assert_eq!(fs::read(f.dir.join("packs/parity/config.json")).unwrap(), original);
}

#[test]
fn compression_level_1000_is_corrupt_not_internal() {
    let f = fixture(None);
    set_config_field(&f.dir.join("config.json"), "/compression/level", json!(1000), false);
    let repo = Repository::open(&f.dir, None).expect("falls back to the intact copy");
    let more = data(5, 100_000);
    let id = ingest_bytes(&repo, &more).id;
    assert_eq!(restored(&repo, &id).unwrap(), more);
    drop(repo);
    // Both copies out of range, even with checksums that match: ERR_CORRUPT, never a panic.
    for file in ["config.json", "packs/parity/config.json"] {
        set_config_field(&f.dir.join(file), "/compression/level", json!(1000), true);
    }
    let err = Repository::open(&f.dir, None).err().unwrap();
    assert_eq!(err.code(), "ERR_CORRUPT", "{err}");
}

#[test]
fn a_version_1_repository_without_checksums_still_opens() {
    let f = fixture(None);
    for file in ["config.json", "packs/parity/config.json"] {
        let path = f.dir.join(file);
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["version"] = json!(1);
        config.as_object_mut().unwrap().remove("checksum");
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }
    // A legacy (trailer-less) manifest is accepted in version 1.
    let (name, group) = groups(&f.dir).remove(0);
    fs::write(
        f.dir.join("packs/parity").join(&name),
        serde_json::to_vec(&group).unwrap(),
    )
    .unwrap();
    let repo = Repository::open(&f.dir, None).unwrap();
    assert_eq!(repo.config.version, 1);
    assert_healthy(&f, &repo);
    // Both copies parse but differ: config.json is kept and the copy reported.
    set_config_field(
        &f.dir.join("packs/parity/config.json"),
        "/packTargetSize",
        json!(131072),
        false,
    );
    let repo = Repository::open(&f.dir, None).unwrap();
    assert_eq!(repo.config.pack_target_size, 65536);
    assert!(has_issue(
        &check(&repo, Level::Quick),
        "config",
        "packs/parity/config.json"
    ));
    repair(&repo, Duration::ZERO).unwrap();
    assert!(check(&repo, Level::Quick).ok);
    assert_eq!(repo.config.version, 1, "repair keeps the version");
}

fn plant_key(dir: &Path, memory_kib: u32, iterations: u32, passphrase: &str) -> String {
    let mut key = containerarchive_core::crypto::wrap_master_key(passphrase, &[42u8; 32], "planter").unwrap();
    key.kdf.memory_kib = memory_kib;
    key.kdf.iterations = iterations;
    key.id = "f".repeat(32);
    key.checksum = key.compute_checksum();
    let rel = format!("keys/{}.json", key.id);
    fs::write(dir.join(&rel), serde_json::to_vec_pretty(&key).unwrap()).unwrap();
    rel
}

#[test]
fn a_planted_heavy_key_file_costs_nothing_and_is_reported() {
    let f = fixture(Some("pw"));
    let planted = plant_key(&f.dir, 2 * 1024 * 1024, 2, "pw");
    let started = Instant::now();
    let repo = Repository::open(&f.dir, Some("pw")).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "open took {:?}",
        started.elapsed()
    );
    assert_eq!(
        Repository::open(&f.dir, Some("wrong")).err().unwrap().code(),
        "ERR_WRONG_PASSPHRASE"
    );
    let quick = check(&repo, Level::Quick);
    assert!(has_issue(&quick, "key", &planted), "{:#?}", quick.errors);
    assert!(has_issue(&quick, "key", "unknown key file"));
    repair(&repo, Duration::ZERO).unwrap();
    assert!(
        !f.dir
            .join("packs/parity/key-ffffffffffffffffffffffffffffffff.json")
            .exists(),
        "never copied"
    );
    fs::remove_file(f.dir.join(&planted)).unwrap();
    assert_healthy(&f, &repo);
}

#[test]
fn a_key_file_for_another_master_key_is_reported() {
    let f = fixture(Some("pw"));
    let planted = plant_key(&f.dir, 64 * 1024, 3, "pw");
    // The repository's own key file still unlocks it, whatever the order.
    let repo = Repository::open(&f.dir, Some("pw")).unwrap();
    let quick = check(&repo, Level::Quick);
    assert!(has_issue(&quick, "key", &planted), "{:#?}", quick.errors);
}
