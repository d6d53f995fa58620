//! Key management: addKey, listKeys, removeKey, changePassphrase, and how
//! verify and repair treat keys with other passphrases, planted keys and
//! version-1 key files. Crash safety is tested by stopping a key change after
//! each of its file operations (the step hook) and checking what opens.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::Level;
use containerarchive_core::crypto::{sha256, KeyFile};
use containerarchive_core::error::Error;
use containerarchive_core::keys::{
    add_key, add_key_with, change_passphrase, change_passphrase_with, list_keys, remove_key, remove_key_with,
};
use containerarchive_core::repair::repair;
use containerarchive_core::restore::restore_item;
use containerarchive_core::Repository;

mod common;
use common::{check, data, ingest_bytes, small_options};

const T: Duration = Duration::ZERO;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Dir {
    Dir(std::env::temp_dir().join(format!(
        "ca-keys-{name}-{}",
        containerarchive_core::fsutil::random_hex(6)
    )))
}

/// An encrypted repository with passphrase "old" and one snapshot; returns its id and bytes.
fn fixture(name: &str) -> (Dir, Repository, String, Vec<u8>) {
    let dir = tmp(name);
    let repo = Repository::init(&dir.0, &small_options(Some("old"))).unwrap();
    let bytes = data(7, 200_000);
    let id = ingest_bytes(&repo, &bytes).id;
    (dir, repo, id, bytes)
}

fn restore(repo: &Repository, id: &str) -> Vec<u8> {
    restore_named(repo, id, None)
}

fn restore_named(repo: &Repository, id: &str, item: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    restore_item(
        repo,
        id,
        item,
        &mut |d| Ok(out.extend_from_slice(&d)),
        &AtomicBool::new(false),
        T,
    )
    .unwrap();
    out
}

fn open_code(dir: &Path, passphrase: &str) -> Result<Repository, &'static str> {
    Repository::open(dir, Some(passphrase)).map_err(|e| e.code())
}

fn assert_clean(repo: &Repository, when: &str) {
    let report = check(repo, Level::Full);
    assert!(report.ok, "verify(full) {when}: {:#?}", report.errors);
}

/// sha256 of every file, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, [u8; 32]> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, [u8; 32]>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256(&fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The tree without key files, their copies and lock records.
fn tree_but_keys(dir: &Path) -> BTreeMap<String, [u8; 32]> {
    tree(dir)
        .into_iter()
        .filter(|(rel, _)| {
            !rel.starts_with("keys/") && !rel.starts_with("packs/parity/key-") && !rel.starts_with("locks/")
        })
        .collect()
}

fn key_files(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_keys()
        .filter(|rel| rel.starts_with("keys/") || rel.starts_with("packs/parity/key-"))
        .collect()
}

fn read_key(dir: &Path, rel: &str) -> KeyFile {
    KeyFile::parse(&fs::read(dir.join(rel)).unwrap(), rel).unwrap()
}

fn current_id(repo: &Repository) -> String {
    list_keys(repo).unwrap().into_iter().find(|k| k.current).unwrap().id
}

#[test]
fn an_added_key_opens_the_same_repository() {
    let (dir, repo, snap, bytes) = fixture("add");
    let first = current_id(&repo);
    let before = tree_but_keys(&dir.0);
    let added = add_key(&repo, "new", T).unwrap();
    assert!(!added.current);
    assert_eq!(added.host, containerarchive_core::fsutil::hostname());
    assert_eq!(tree_but_keys(&dir.0), before, "adding a key rewrites nothing else");
    assert!(dir.0.join(format!("keys/{}.json", added.id)).is_file());
    assert!(dir.0.join(format!("packs/parity/key-{}.json", added.id)).is_file());

    let keys = list_keys(&repo).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys.iter().filter(|k| k.current).map(|k| &k.id).collect::<Vec<_>>(),
        [&first]
    );

    for passphrase in ["old", "new"] {
        let other = Repository::open(&dir.0, Some(passphrase)).unwrap();
        assert_eq!(restore(&other, &snap), bytes, "restore with {passphrase}");
        // The key the handle did not open with is no unknown key file to it.
        assert_clean(&other, &format!("opened with {passphrase}"));
        let listed = list_keys(&other).unwrap();
        let current: Vec<_> = listed.iter().filter(|k| k.current).map(|k| k.id.clone()).collect();
        let expected = if passphrase == "old" { &first } else { &added.id };
        assert_eq!(current, [expected.clone()]);
    }
    assert_eq!(open_code(&dir.0, "neither").err(), Some("ERR_WRONG_PASSPHRASE"));
}

#[test]
fn removing_a_key_removes_its_passphrase_and_both_files() {
    let (dir, repo, snap, bytes) = fixture("remove");
    let added = add_key(&repo, "new", T).unwrap();
    // A unique prefix of at least 8 characters names it too.
    let removed = remove_key(&repo, &added.id[..8], T).unwrap();
    assert_eq!(removed, added.id);
    assert_eq!(open_code(&dir.0, "new").err(), Some("ERR_WRONG_PASSPHRASE"));
    assert!(!dir.0.join(format!("keys/{}.json", added.id)).exists());
    assert!(!dir.0.join(format!("packs/parity/key-{}.json", added.id)).exists());
    assert_eq!(list_keys(&repo).unwrap().len(), 1);
    let reopened = Repository::open(&dir.0, Some("old")).unwrap();
    assert_eq!(restore(&reopened, &snap), bytes);
    assert_clean(&reopened, "after removing a key");
}

#[test]
fn the_last_key_is_never_removed() {
    let (dir, repo, _, _) = fixture("last");
    let only = current_id(&repo);
    let before = tree(&dir.0);
    let err = remove_key(&repo, &only, T).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    assert!(err.to_string().contains("last key"), "{err}");
    assert_eq!(tree(&dir.0), before, "a refused removal changes nothing");

    // Nor is the last one once the others are gone, whichever it is.
    let added = add_key(&repo, "new", T).unwrap();
    remove_key(&repo, &only, T).unwrap();
    assert_eq!(
        remove_key(&repo, &added.id, T).unwrap_err().code(),
        "ERR_INVALID_ARGUMENT"
    );
    assert!(Repository::open(&dir.0, Some("new")).is_ok());
}

#[test]
fn the_key_in_use_goes_only_when_another_remains_and_the_handle_keeps_working() {
    let (dir, repo, snap, bytes) = fixture("current");
    let first = current_id(&repo);
    add_key(&repo, "new", T).unwrap();
    remove_key(&repo, &first, T).unwrap();
    assert_eq!(open_code(&dir.0, "old").err(), Some("ERR_WRONG_PASSPHRASE"));
    let keys = list_keys(&repo).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].current, "the key in use is gone");
    // It holds the master key: it still reads and writes.
    assert_eq!(restore(&repo, &snap), bytes);
    let more = data(8, 100_000);
    let snap2 = ingest_bytes(&repo, &more).id;
    assert_clean(&repo, "after removing the key in use");
    let reopened = Repository::open(&dir.0, Some("new")).unwrap();
    assert_eq!(restore(&reopened, &snap2), more);
}

#[test]
fn change_passphrase_rewraps_only_the_key() {
    let (dir, repo, snap, bytes) = fixture("passwd");
    let first = current_id(&repo);
    let before = tree_but_keys(&dir.0);
    let new = change_passphrase(&repo, "new", T).unwrap();
    assert!(new.current);
    assert_eq!(
        tree_but_keys(&dir.0),
        before,
        "no data, index, snapshot or config file changed"
    );
    assert_eq!(
        key_files(&dir.0),
        [
            format!("keys/{}.json", new.id),
            format!("packs/parity/key-{}.json", new.id)
        ]
    );
    assert_eq!(open_code(&dir.0, "old").err(), Some("ERR_WRONG_PASSPHRASE"));
    let keys = list_keys(&repo).unwrap();
    assert_eq!((keys.len(), keys[0].id != first, keys[0].current), (1, true, true));
    assert_clean(&repo, "after changePassphrase, same handle");
    let reopened = Repository::open(&dir.0, Some("new")).unwrap();
    assert_eq!(restore(&reopened, &snap), bytes);
    assert_clean(&reopened, "after changePassphrase, reopened");
    // And again from the same handle: its current key is the new one now.
    change_passphrase(&repo, "newer", T).unwrap();
    assert_eq!(open_code(&dir.0, "new").err(), Some("ERR_WRONG_PASSPHRASE"));
    assert!(Repository::open(&dir.0, Some("newer")).is_ok());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let (dir, repo, _, _) = fixture("bad");
    let added = add_key(&repo, "new", T).unwrap();
    let before = tree(&dir.0);
    for result in [
        add_key(&repo, "", T).map(|_| ()),
        change_passphrase(&repo, "", T).map(|_| ()),
        remove_key(&repo, "0123456789abcdef", T).map(|_| ()),
        remove_key(&repo, &added.id[..7], T).map(|_| ()),
        remove_key(&repo, "../config", T).map(|_| ()),
        remove_key(&repo, "", T).map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    }
    let err = remove_key(&repo, "nope", T).unwrap_err().to_string();
    assert!(err.contains(&added.id), "names the key files: {err}");
    assert_eq!(tree(&dir.0), before);

    let plain = tmp("plain");
    let repo = Repository::init(&plain.0, &small_options(None)).unwrap();
    for err in [
        list_keys(&repo).map(|_| ()).unwrap_err(),
        add_key(&repo, "x", T).map(|_| ()).unwrap_err(),
        remove_key(&repo, "x", T).map(|_| ()).unwrap_err(),
        change_passphrase(&repo, "x", T).map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
        assert!(err.to_string().contains("not encrypted"), "{err}");
    }
}

#[test]
fn repair_restores_both_files_of_a_key_with_another_passphrase() {
    let (dir, repo, _, _) = fixture("repair");
    let added = add_key(&repo, "new", T).unwrap();
    let copy = format!("packs/parity/key-{}.json", added.id);
    let primary = format!("keys/{}.json", added.id);
    let original = fs::read(dir.0.join(&primary)).unwrap();
    // The handle was opened with "old": it cannot unwrap the new key, the MAC proves it is the repository's.
    let repo = Repository::open(&dir.0, Some("old")).unwrap();
    for lost in [&copy, &primary] {
        fs::remove_file(dir.0.join(lost)).unwrap();
        let report = check(&repo, Level::Quick);
        assert!(!report.ok);
        assert!(
            report.errors.iter().all(|e| !e.error.contains("unknown key file")),
            "{:#?}",
            report.errors
        );
        let r = repair(&repo, T).unwrap();
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        assert_eq!(fs::read(dir.0.join(lost)).unwrap(), original, "{lost} restored");
        assert_clean(&repo, &format!("after restoring {lost}"));
    }
    assert!(Repository::open(&dir.0, Some("new")).is_ok());
}

#[test]
fn a_planted_key_with_a_forged_mac_is_unknown_and_never_restored() {
    let (dir, repo, _, _) = fixture("forged");
    let genuine = add_key(&repo, "new", T).unwrap();
    let mut forged = read_key(&dir.0, &format!("keys/{}.json", genuine.id));
    forged.id = "abcdef01".repeat(4);
    forged.host = Some("attacker".into());
    forged.mac = Some("00".repeat(32));
    forged.checksum = forged.compute_checksum();
    let rel = format!("packs/parity/key-{}.json", forged.id);
    fs::write(dir.0.join(&rel), serde_json::to_vec(&forged).unwrap()).unwrap();

    let report = check(&repo, Level::Quick);
    let unknown: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.error.contains("unknown key file"))
        .collect();
    assert_eq!(unknown.len(), 1, "{:#?}", report.errors);
    assert!(
        unknown[0].error.contains(&rel) && unknown[0].error.contains("mac"),
        "{}",
        unknown[0].error
    );
    let r = repair(&repo, T).unwrap();
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(
        !dir.0.join(format!("keys/{}.json", forged.id)).exists(),
        "never restored"
    );
    assert!(
        list_keys(&repo).unwrap().iter().all(|k| k.id != forged.id),
        "not listed"
    );
    // Its own passphrase does not open through it either: its MAC does not match the key it wraps.
    assert_eq!(list_keys(&repo).unwrap().len(), 2);
    // An unknown key file is removed by id, and never counts as "another key".
    assert_eq!(remove_key(&repo, &forged.id, T).unwrap(), forged.id);
    assert!(!dir.0.join(&rel).exists());
    assert_clean(&repo, "after removing the planted key");
}

#[test]
fn a_damaged_mac_is_damage_that_repair_fixes() {
    let (dir, repo, _, _) = fixture("flip");
    let id = current_id(&repo);
    let rel = format!("keys/{id}.json");
    let text = fs::read_to_string(dir.0.join(&rel)).unwrap();
    let key = read_key(&dir.0, &rel);
    let mac = key.mac.clone().unwrap();
    let flipped = format!("{}{}", if mac.starts_with('0') { "1" } else { "0" }, &mac[1..]);
    fs::write(dir.0.join(&rel), text.replace(&mac, &flipped)).unwrap();
    let report = check(&repo, Level::Quick);
    assert!(
        report.errors.iter().any(|e| e.error.contains("checksum")),
        "{:#?}",
        report.errors
    );
    repair(&repo, T).unwrap();
    assert_eq!(fs::read_to_string(dir.0.join(&rel)).unwrap(), text);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A snapshot item to restore: (snapshot id, item name, hex sha256).
type Expected = Vec<(String, String, String)>;

/// A copy of the golden version-1 encrypted zstd repository, and its items.
fn golden_v1() -> (Dir, Expected) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../__test__/golden/v1/zstd-encrypted");
    let dir = tmp("golden");
    copy_dir(&src.join("repo"), &dir.0);
    let expected: serde_json::Value = serde_json::from_slice(&fs::read(src.join("expected.json")).unwrap()).unwrap();
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let snaps = expected["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let items = s["items"].as_array().unwrap();
            items
                .iter()
                .map(|i| (text(&s["id"]), text(&i["name"]), text(&i["sha256"])))
        })
        .collect();
    (dir, snaps)
}

fn assert_restores(repo: &Repository, expected: &Expected) {
    for (id, item, digest) in expected {
        let bytes = restore_named(repo, id, Some(item));
        assert_eq!(&hex::encode(sha256(&bytes)), digest, "snapshot {id} item {item}");
    }
}

#[test]
fn adding_a_key_to_a_version_1_key_upgrades_it() {
    let (dir, snaps) = golden_v1();
    let repo = Repository::open(&dir.0, Some("golden-passphrase")).unwrap();
    let old = current_id(&repo);
    let primary = format!("keys/{old}.json");
    let v1 = read_key(&dir.0, &primary);
    assert_eq!(v1.version, 1);
    let before = tree_but_keys(&dir.0);
    let added = add_key(&repo, "new", T).unwrap();
    assert_eq!(tree_but_keys(&dir.0), before);
    for rel in [primary.clone(), format!("packs/parity/key-{old}.json")] {
        let upgraded = read_key(&dir.0, &rel);
        assert_eq!(upgraded.version, 2, "{rel}");
        assert_eq!(
            (upgraded.host.as_deref(), &upgraded.created_at),
            (Some(""), &v1.created_at)
        );
        assert_eq!(
            upgraded.wrapped_key.ciphertext, v1.wrapped_key.ciphertext,
            "the same wrapped key"
        );
        assert!(upgraded.mac_verifies(repo.master().unwrap()));
    }
    assert_eq!(list_keys(&repo).unwrap().iter().find(|k| k.id == old).unwrap().host, "");
    for passphrase in ["golden-passphrase", "new"] {
        let other = Repository::open(&dir.0, Some(passphrase)).unwrap();
        assert_eq!(list_keys(&other).unwrap().len(), 2);
        assert_restores(&other, &snaps);
        assert_clean(&other, &format!("v1 repository after addKey, opened with {passphrase}"));
    }
    assert_eq!(added.id.len(), 32);
}

/// Runs `op` on a fresh copy of a repository, stopped after its `n`-th file
/// operation; returns whether it completed.
fn crash_at_every_step(
    name: &str,
    make: &dyn Fn(&Path) -> Expected,
    op: &dyn Fn(
        &Repository,
        &mut dyn FnMut(&str) -> containerarchive_core::Result<()>,
    ) -> containerarchive_core::Result<()>,
    passphrases: (&str, &str),
) {
    let (old, new) = passphrases;
    let mut steps_seen = 0;
    for n in 1.. {
        let dir = tmp(&format!("{name}-{n}"));
        let snaps = make(&dir.0);
        let repo = Repository::open(&dir.0, Some(old)).unwrap();
        let mut done = 0;
        let mut log = Vec::new();
        let result = op(&repo, &mut |what: &str| {
            done += 1;
            log.push(what.to_string());
            if done == n {
                return Err(Error::Internal(format!("stopped after step {n}")));
            }
            Ok(())
        });
        drop(repo);
        let completed = result.is_ok();
        if !completed {
            assert!(matches!(result, Err(Error::Internal(_))), "{result:?}");
        }
        // The old or the new passphrase opens, before any repair.
        let opens: Vec<&str> = [old, new]
            .into_iter()
            .filter(|p| Repository::open(&dir.0, Some(p)).is_ok())
            .collect();
        assert!(
            !opens.is_empty(),
            "{name}: after step {n} ({log:?}) neither passphrase opens"
        );
        let repo = Repository::open(&dir.0, Some(opens[0])).unwrap();
        let r = repair(&repo, T).unwrap();
        assert!(r.errors.is_empty(), "{name} step {n}: {:#?}", r.errors);
        for p in &opens {
            let repo = Repository::open(&dir.0, Some(p)).unwrap();
            assert_clean(
                &repo,
                &format!("{name}: stopped after step {n} ({log:?}), repaired, opened with {p}"),
            );
            assert_restores(&repo, &snaps);
        }
        // Repair changed nothing about which passphrases open.
        let after: Vec<&str> = [old, new]
            .into_iter()
            .filter(|p| Repository::open(&dir.0, Some(p)).is_ok())
            .collect();
        assert_eq!(after, opens, "{name} step {n}");
        if completed {
            assert_eq!(opens, [new], "{name}: the completed change");
            assert!(steps_seen >= 2, "{name}: a key change is several file operations");
            return;
        }
        steps_seen = n;
    }
}

fn make_fixture(dir: &Path) -> Expected {
    let repo = Repository::init(dir, &small_options(Some("old"))).unwrap();
    let bytes = data(9, 150_000);
    vec![(
        ingest_bytes(&repo, &bytes).id,
        "data".into(),
        hex::encode(sha256(&bytes)),
    )]
}

#[test]
fn change_passphrase_stopped_after_any_step_leaves_old_or_new() {
    crash_at_every_step(
        "passwd",
        &make_fixture,
        &|repo, hook| change_passphrase_with(repo, "new", T, hook).map(|_| ()),
        ("old", "new"),
    );
}

#[test]
fn change_passphrase_of_a_version_1_repository_stopped_after_any_step() {
    crash_at_every_step(
        "passwd-v1",
        &|dir| {
            let (golden, snaps) = golden_v1();
            copy_dir(&golden.0, dir);
            snaps
        },
        &|repo, hook| change_passphrase_with(repo, "new", T, hook).map(|_| ()),
        ("golden-passphrase", "new"),
    );
}

#[test]
fn add_then_remove_stopped_after_any_step() {
    // Add "new", then remove the old key: the same end state by two calls.
    crash_at_every_step(
        "add-remove",
        &make_fixture,
        &|repo, hook| {
            let old = list_keys(repo)?.into_iter().find(|k| k.current).unwrap().id;
            add_key_with(repo, "new", T, hook)?;
            remove_key_with(repo, &old, T, hook).map(|_| ())
        },
        ("old", "new"),
    );
}

/// FORMAT.md's definition of the version-2 canonical string, checksum and
/// MAC, computed from the document's field list, matches the engine's files.
#[test]
fn format_md_defines_the_version_2_key_file() {
    let doc = include_str!("../../docs/FORMAT.md");
    let at = doc
        .find("**Key file version 2.**")
        .expect("FORMAT.md documents key file version 2");
    let rest = &doc[at..];
    let open = rest.find("```").unwrap() + 3;
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let block = &body[..body.find("```").unwrap()];
    let line = |prefix: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line"))
            .trim()
            .to_string()
    };
    let canonical_fields = line("canonical =");
    let mac_label = line("macKey    =");

    let (dir, repo, _, _) = fixture("doc");
    let id = current_id(&repo);
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.0.join(format!("keys/{id}.json"))).unwrap()).unwrap();
    let canonical = canonical_fields
        .split(':')
        .map(|path| {
            let v = path.split('.').fold(&json, |v, k| &v[k]);
            match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                other => panic!("{path} is {other:?}"),
            }
        })
        .collect::<Vec<_>>()
        .join(":");
    use hmac::{Hmac, Mac};
    let hmac = |key: &[u8], msg: &[u8]| {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    };
    let label = mac_label.split('"').nth(1).expect("the MAC key label is quoted");
    let mac_key = hmac(repo.master().unwrap(), label.as_bytes());
    let mac = hex::encode(hmac(&mac_key, canonical.as_bytes()));
    assert_eq!(json["mac"].as_str().unwrap(), mac);
    let checksum = hex::encode(sha256(format!("{canonical}:{mac}").as_bytes()));
    assert_eq!(json["checksum"].as_str().unwrap(), checksum);
    assert_eq!(json["version"], 2);
}

#[test]
fn a_genuine_key_file_under_another_name_is_unknown_and_removable_by_that_name() {
    let (dir, repo, _, _) = fixture("renamed");
    let id = current_id(&repo);
    let planted = "keys/planted.json.json";
    fs::copy(dir.0.join(format!("keys/{id}.json")), dir.0.join(planted)).unwrap();
    let report = check(&repo, Level::Quick);
    let unknown: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.error.contains("unknown key file"))
        .collect();
    assert_eq!(unknown.len(), 1, "{:#?}", report.errors);
    assert!(
        unknown[0].error.contains(planted) && unknown[0].error.contains("planted.json"),
        "{}",
        unknown[0].error
    );
    assert_eq!(list_keys(&repo).unwrap().len(), 1, "listed once, under its own name");
    let r = repair(&repo, T).unwrap();
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(
        !dir.0.join("packs/parity/key-planted.json.json").exists(),
        "never copied"
    );
    assert_eq!(remove_key(&repo, "planted.json", T).unwrap(), "planted.json");
    assert!(!dir.0.join(planted).exists());
    assert!(dir.0.join(format!("keys/{id}.json")).exists(), "the genuine key stays");
    assert_clean(&repo, "after removing the renamed copy");
}
