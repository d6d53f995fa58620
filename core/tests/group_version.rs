//! A parity group manifest of a version this engine does not know is not
//! trusted: verify reports it and repair replaces it with fresh parity
//! (docs/FORMAT.md, Strictness).

use std::fs;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use containerarchive_core::check::{verify, Level};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::parity::{load_groups, GROUP_VERSION};
use containerarchive_core::repair::repair;
use containerarchive_core::{InitOptions, Repository};

mod common;

#[test]
fn a_group_of_an_unknown_version_is_reported_and_replaced_by_repair() {
    let dir = std::env::temp_dir().join(format!(
        "ca-group-version-{}",
        containerarchive_core::fsutil::random_hex(6)
    ));
    let repo = Repository::init(&dir, &InitOptions::default()).unwrap();
    let bytes = common::data(1, 300_000);
    let item = IngestItem {
        name: "data".into(),
        item_type: "file".into(),
        size_hint: None,
        reader: &bytes[..],
    };
    ingest(
        &repo,
        vec![item],
        &IngestOptions::default(),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let (groups, damaged) = load_groups(&repo).unwrap();
    assert_eq!((groups.len(), damaged.len()), (1, 0));

    // Same manifest, another version (an unencrypted v1 manifest is plain JSON).
    let path = dir.join("packs/parity").join(groups[0].file_name());
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["version"] = (GROUP_VERSION + 1).into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    let (groups, damaged) = load_groups(&repo).unwrap();
    assert_eq!((groups.len(), damaged.len()), (0, 1));
    let report = verify(&repo, Level::Standard, &|_| {}, &|_| {}, Duration::ZERO).unwrap();
    assert!(!report.ok, "verify must report the group");

    repair(&repo, Duration::ZERO).unwrap();
    let (groups, damaged) = load_groups(&repo).unwrap();
    assert_eq!((groups.len(), damaged.len()), (1, 0));
    assert_eq!(groups[0].version, GROUP_VERSION);
    assert!(verify(&repo, Level::Full, &|_| {}, &|_| {}, Duration::ZERO).unwrap().ok);
    fs::remove_dir_all(&dir).unwrap();
}
