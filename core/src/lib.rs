//! The containerarchive engine: content-addressed, deduplicated, compressed,
//! optionally encrypted snapshots of byte streams. Pure Rust, no Node:
//! `cargo test` exercises all of it. The N-API crate at the repository root
//! only converts types, bridges streams and maps errors.
//!
//! Pipeline stages, one module each:
//! `chunker` -> `crypto` (ids, sealing) -> `codec` -> `pack` -> `index` -> `snapshot`,
//! driven by `ingest` and `restore` over a `repo::Repository`. Every
//! repository file is reached through `storage` (`Repository::storage()`).

pub mod bufpool;
pub mod cancel;
pub mod catalog;
pub mod check;
pub mod check_packs;
pub mod chunker;
pub mod codec;
pub mod config;
pub mod copy;
pub mod crypto;
pub mod error;
pub mod fetch;
pub mod forget;
pub mod fsutil;
pub mod gc;
pub mod index;
pub mod ingest;
pub mod keys;
pub mod lock;
pub mod manifests;
pub mod pack;
pub mod pack_check;
pub mod parity;
pub mod parity_draft;
pub mod progress;
pub mod prune;
pub mod range;
pub mod reclaim;
pub mod regroup;
pub mod relocate;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod select;
pub mod snapshot;
pub mod stats;
pub mod storage;
pub mod subset;
pub mod supersede;

pub use config::{InitOptions, RepoConfig, FORMAT_VERSION};
pub use error::{Error, Result};
pub use ingest::{ingest, IngestItem, IngestOptions};
pub use progress::ProgressUpdate;
pub use repo::Repository;
pub use snapshot::Manifest;
