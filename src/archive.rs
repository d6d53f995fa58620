//! `NativeArchive`: the thin `#[napi]` surface `index.js` wraps. Options and
//! results cross as JSON strings; the engine work runs on napi's tokio
//! runtime (blocking pool), never on the JS thread.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::json;
use tokio::sync::mpsc;

use containerarchive_core::check::{verify_with, Level, VerifyOptions};
use containerarchive_core::copy::{copy_snapshots, CopyFilter, CopyOptions};
use containerarchive_core::forget::{forget, ForgetOptions};
use containerarchive_core::ingest::{ingest, IngestItem, IngestOptions};
use containerarchive_core::keys;
use containerarchive_core::prune::{prune_with, Retention};
use containerarchive_core::range::{restore_ranges, RangeRequest};
use containerarchive_core::repair::{reindex, repair_with};
use containerarchive_core::restore::{restore_item, select_item};
use containerarchive_core::select::{resolve_snapshot, SnapshotFilter};
use containerarchive_core::subset::Subset;
use containerarchive_core::{Error, InitOptions, ProgressUpdate, Repository};

use crate::cancel::Cancels;
use crate::error::{closed, invalid, run_blocking};
use crate::events::{emit, progress_payload, EventSink};
use crate::file_source::{FileReader, FileSpec, PipeReader, PipeSpec, ReadFailure};
use crate::ingest_bridge::{self, FeedReader, ItemReader, PullFn};
use crate::location::open_storage;
use crate::restore_bridge::{self, PushFn};

#[napi]
pub struct NativeArchive {
    repo: Mutex<Option<Arc<Repository>>>,
    events: Mutex<Option<Arc<EventSink>>>,
    /// Cancel flags of running operations, by the token `index.js` chose.
    cancels: Cancels,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemSpec {
    name: String,
    #[serde(rename = "type")]
    item_type: String,
    size: Option<u64>,
    /// Read this item natively from the caller's open file (see `file_source`).
    file: Option<FileSpec>,
    /// Read this item's pipe natively after its buffered bytes (see `file_source`).
    pipe: Option<PipeSpec>,
    /// Whether to make a tar catalog; unset: by type (`IngestOptions::catalogs`).
    catalog: Option<bool>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IngestSpec {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    created_at: Option<String>,
    host: Option<String>,
    #[serde(default)]
    lock_timeout_ms: u64,
    /// Names this ingest for `cancel`.
    #[serde(default)]
    cancel_token: u32,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RangeSpec {
    item: Option<String>,
    #[serde(default)]
    catalog: bool,
    ranges: Vec<(u64, u64)>,
    #[serde(default)]
    lock_timeout_ms: u64,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MaintenanceSpec {
    level: Option<String>,
    /// verify: "n/of" or "p%".
    subset: Option<String>,
    #[serde(default)]
    lock_timeout_ms: u64,
    #[serde(default)]
    force: bool,
    /// Names this operation for `cancel` (0: it cannot be cancelled).
    #[serde(default)]
    cancel_token: u32,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LockSpec {
    #[serde(default)]
    lock_timeout_ms: u64,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForgetSpec {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    lock_timeout_ms: u64,
}

/// copySnapshots' filter (as listSnapshots', with `after`/`before` as epoch
/// milliseconds, exclusive) and lock timeout.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CopySpec {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    host: Option<String>,
    after: Option<i64>,
    before: Option<i64>,
    #[serde(default)]
    lock_timeout_ms: u64,
    #[serde(default)]
    cancel_token: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenSpec {
    passphrase: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| invalid(&format!("{what} are invalid: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[napi]
impl NativeArchive {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> NativeArchive {
        NativeArchive {
            repo: Mutex::new(None),
            events: Mutex::new(None),
            cancels: Cancels::default(),
        }
    }

    fn repo(&self) -> Result<Arc<Repository>> {
        lock(&self.repo).clone().ok_or_else(closed)
    }

    #[napi]
    pub async fn init(
        &self,
        path: String,
        options_json: String,
        storage_json: Option<String>,
        threads: Option<u32>,
    ) -> Result<String> {
        let options: InitOptions = parse(&options_json, "init options")?;
        let storage = open_storage(&path, storage_json.as_deref())?;
        let repo = run_blocking(move || Repository::init_in(storage, &options)).await?;
        Ok(self.hold(repo, threads))
    }

    #[napi]
    pub async fn open(
        &self,
        path: String,
        options_json: String,
        storage_json: Option<String>,
        threads: Option<u32>,
    ) -> Result<String> {
        let spec: OpenSpec = parse(&options_json, "open options")?;
        let storage = open_storage(&path, storage_json.as_deref())?;
        let repo = run_blocking(move || Repository::open_in(storage, spec.passphrase.as_deref())).await?;
        Ok(self.hold(repo, threads))
    }

    /// Keeps the repository init or open made, with its thread cap; resolves its config.
    fn hold(&self, mut repo: Repository, threads: Option<u32>) -> String {
        repo.set_threads(threads.map(|n| n as usize));
        let config = serde_json::to_string(&repo.config).expect("config serialises");
        *lock(&self.repo) = Some(Arc::new(repo));
        config
    }

    /// Registers the JS dispatcher for progress events (held weakly).
    #[napi]
    pub fn set_event_sink(&self, sink: EventSink) {
        *lock(&self.events) = Some(Arc::new(sink));
    }

    /// Stores the items as one snapshot: each either pulled from JS through
    /// `pull` or read natively from its file; resolves its summary as JSON.
    /// Not `async`: file sources' fds are duplicated here, on the JS thread,
    /// while the caller's streams certainly hold them open.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn ingest<'env>(
        &self,
        env: &'env Env,
        items_json: String,
        options_json: String,
        pull: PullFn,
    ) -> Result<PromiseRaw<'env, String>> {
        let repo = self.repo()?;
        let specs: Vec<ItemSpec> = parse(&items_json, "items")?;
        let options: IngestSpec = parse(&options_json, "ingest options")?;
        let events = lock(&self.events).clone();
        let failure = ReadFailure::default();
        let (feed_tx, feed_rx) = ingest_bridge::channel();
        let mut fed = Vec::new();
        let mut items = Vec::with_capacity(specs.len());
        let mut catalog = BTreeMap::new();
        let registered = self.cancels.register(options.cancel_token);
        for (index, spec) in specs.into_iter().enumerate() {
            if let Some(c) = spec.catalog {
                catalog.insert(spec.name.clone(), c);
            }
            let index = index as u32;
            let (reader, size_hint) = match (spec.file, spec.pipe) {
                (Some(file), _) => {
                    let mut reader = FileReader::new(file, index, failure.clone())?;
                    let hint = spec.size.or_else(|| reader.size_hint());
                    (ItemReader::File(reader), hint)
                }
                (None, Some(pipe)) => {
                    fed.push(index);
                    let reader = ItemReader::Pipe {
                        buffered: Some(FeedReader::new(feed_rx.clone())),
                        pipe: PipeReader::new(pipe, index, failure.clone(), registered.flag.clone())?,
                    };
                    (reader, spec.size)
                }
                (None, None) => {
                    fed.push(index);
                    (ItemReader::Fed(FeedReader::new(feed_rx.clone())), spec.size)
                }
            };
            items.push(IngestItem {
                name: spec.name,
                item_type: spec.item_type,
                size_hint,
                reader,
            });
        }
        env.spawn_future(async move {
            let pump = tokio::spawn(ingest_bridge::pump(pull, fed, feed_tx));
            let flag = registered.flag.clone();
            let outcome = run_blocking(move || {
                let options = IngestOptions {
                    tags: options.tags,
                    created_at: options.created_at,
                    host: options.host,
                    lock_timeout: Duration::from_millis(options.lock_timeout_ms),
                    catalog,
                };
                let progress = move |update: ProgressUpdate| {
                    if let Some(sink) = &events {
                        emit(sink, "ingest:progress", progress_payload("ingest", &update));
                    }
                };
                ingest(&repo, items, &options, &progress, &flag)
            })
            .await;
            // Releases the pull function even if a read is still parked in JS.
            pump.abort();
            drop(registered);
            match (outcome, failure.get()) {
                (Ok(manifest), _) => Ok(manifest.summary().to_string()),
                // index.js turns this into the error the stream itself would have emitted.
                (Err(_), Some((item, errno, message))) => Err(crate::error::coded(
                    "ERR_SOURCE_READ",
                    &json!({ "item": item, "errno": errno, "message": message }).to_string(),
                )),
                (Err(e), None) => Err(e),
            }
        })
    }

    /// Stops the operation started with `token` at its next cancel point (it
    /// then rejects with ERR_CANCELLED): its AbortSignal fired, or a native
    /// file source's stream was destroyed by its caller.
    #[napi]
    pub fn cancel(&self, token: u32) {
        self.cancels.cancel(token);
    }

    /// `spec` is 'latest', an id or a unique id prefix, narrowed by the filter.
    #[napi]
    pub async fn get_snapshot(&self, spec: String, filter_json: String) -> Result<String> {
        let repo = self.repo()?;
        let filter: SnapshotFilter = parse(&filter_json, "snapshot filters")?;
        let manifest = run_blocking(move || resolve_snapshot(&repo, &spec, &filter)).await?;
        Ok(manifest.summary().to_string())
    }

    /// Every snapshot matching the filter's tags and host, oldest first.
    #[napi]
    pub async fn list_snapshots(&self, filter_json: String) -> Result<String> {
        let repo = self.repo()?;
        let filter: SnapshotFilter = parse(&filter_json, "snapshot filters")?;
        let manifests = run_blocking(move || repo.list_snapshots()).await?;
        let listed = manifests.iter().filter(|m| filter.matches(m)).map(|m| m.summary());
        Ok(serde_json::Value::Array(listed.collect()).to_string())
    }

    /// Resolves the snapshot and checks the item exists before a stream is
    /// handed out; the restore then uses the resolved full id.
    #[napi]
    pub async fn prepare_restore(&self, spec: String, filter_json: String, item: Option<String>) -> Result<String> {
        let repo = self.repo()?;
        let filter: SnapshotFilter = parse(&filter_json, "snapshot filters")?;
        run_blocking(move || {
            let manifest = resolve_snapshot(&repo, &spec, &filter)?;
            let item = select_item(&manifest, item.as_deref())?;
            let catalog = manifest.catalog_of(&item.name);
            Ok(json!({
                "id": manifest.id,
                "item": item.name,
                "type": item.item_type,
                "size": item.size,
                "chunks": item.chunks.len(),
                "catalog": catalog.map(|c| json!({ "size": c.size, "entries": c.entries })),
                "catalogError": item.catalog_error,
            })
            .to_string())
        })
        .await
    }

    /// Repository statistics from the index and the files on disk, as JSON.
    #[napi]
    pub async fn stats(&self, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: MaintenanceSpec = parse(&options_json, "stats options")?;
        let stats = run_blocking(move || {
            containerarchive_core::stats::stats(&repo, Duration::from_millis(spec.lock_timeout_ms))
        })
        .await?;
        Ok(serde_json::to_string(&stats).expect("stats serialise"))
    }

    /// Pushes the item's bytes into `push`; resolves when all were accepted.
    #[napi]
    pub async fn restore(&self, id: String, item: Option<String>, lock_timeout_ms: u32, push: PushFn) -> Result<()> {
        let repo = self.repo()?;
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Vec<u8>>(2);
        let forward = tokio::spawn(restore_bridge::forward(push, rx, cancel.clone()));
        let restored = run_blocking(move || {
            let mut sink = |data: Vec<u8>| {
                tx.blocking_send(data)
                    .map_err(|_| Error::Cancelled("the restore stream was destroyed".into()))
            };
            let timeout = Duration::from_millis(lock_timeout_ms as u64);
            restore_item(&repo, &id, item.as_deref(), &mut sink, &cancel, timeout)
        })
        .await;
        let forwarded = forward.await.map_err(crate::error::internal)?;
        restored?;
        forwarded.map_err(|reason| crate::error::coded("ERR_CANCELLED", &reason))
    }

    /// Pushes byte ranges of an item, or of its tar catalog, into `push`;
    /// resolves `{ chunksRead, bytes }` as JSON once all were accepted.
    #[napi]
    pub async fn restore_ranges(&self, id: String, spec_json: String, push: PushFn) -> Result<String> {
        let repo = self.repo()?;
        let spec: RangeSpec = parse(&spec_json, "range options")?;
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Vec<u8>>(2);
        let forward = tokio::spawn(restore_bridge::forward(push, rx, cancel.clone()));
        let restored = run_blocking(move || {
            let mut sink = |data: Vec<u8>| {
                tx.blocking_send(data)
                    .map_err(|_| Error::Cancelled("the restore stream was destroyed".into()))
            };
            let request = RangeRequest {
                item: spec.item,
                catalog: spec.catalog,
                ranges: spec.ranges,
            };
            let timeout = Duration::from_millis(spec.lock_timeout_ms);
            restore_ranges(&repo, &id, &request, &mut sink, &cancel, timeout)
        })
        .await;
        let forwarded = forward.await.map_err(crate::error::internal)?;
        let read = restored?;
        forwarded.map_err(|reason| crate::error::coded("ERR_CANCELLED", &reason))?;
        Ok(json!({ "chunksRead": read.chunks_read, "bytes": read.bytes }).to_string())
    }

    /// Checks the repository at `level`; resolves the report as JSON.
    #[napi]
    pub async fn verify(&self, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: MaintenanceSpec = parse(&options_json, "verify options")?;
        let events = lock(&self.events).clone();
        let registered = self.cancels.register(spec.cancel_token);
        let report = run_blocking(move || {
            let subset = spec.subset.as_deref().map(Subset::parse).transpose()?;
            let level = Level::parse(spec.level.as_deref().unwrap_or("standard"))?;
            let on_issue = |issue: &containerarchive_core::check::Issue| {
                if let Some(sink) = &events {
                    let payload = json!({ "pack": issue.pack, "chunk": issue.chunk, "error": issue.error });
                    emit(sink, "verify:error", payload);
                }
            };
            let progress = |update: ProgressUpdate| {
                if let Some(sink) = &events {
                    emit(sink, "verify:progress", progress_payload("verify", &update));
                }
            };
            let options = VerifyOptions {
                level,
                subset,
                lock_timeout: Duration::from_millis(spec.lock_timeout_ms),
            };
            verify_with(&repo, &options, &on_issue, &progress, &registered.flag)
        })
        .await?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    }

    #[napi]
    pub async fn repair(&self, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: MaintenanceSpec = parse(&options_json, "repair options")?;
        let registered = self.cancels.register(spec.cancel_token);
        let timeout = Duration::from_millis(spec.lock_timeout_ms);
        let report = run_blocking(move || repair_with(&repo, timeout, &registered.flag)).await?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    }

    #[napi]
    pub async fn reindex(&self, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: MaintenanceSpec = parse(&options_json, "reindex options")?;
        let report = run_blocking(move || reindex(&repo, Duration::from_millis(spec.lock_timeout_ms))).await?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    }

    /// Applies a retention policy and collects garbage; resolves the report as JSON.
    #[napi]
    pub async fn prune(
        &self,
        retention_json: String,
        dry_run: bool,
        lock_timeout_ms: u32,
        cancel_token: u32,
    ) -> Result<String> {
        let repo = self.repo()?;
        let registered = self.cancels.register(cancel_token);
        let retention: Retention = parse(&retention_json, "retention rules")?;
        let events = lock(&self.events).clone();
        let report = run_blocking(move || {
            let progress = |update: ProgressUpdate| {
                if let Some(sink) = &events {
                    emit(sink, "prune:progress", progress_payload("prune", &update));
                }
            };
            prune_with(
                &repo,
                &retention,
                dry_run,
                &progress,
                Duration::from_millis(lock_timeout_ms as u64),
                &registered.flag,
            )
        })
        .await?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    }

    /// Removes the named snapshots (and with `prune` their data); resolves the report as JSON.
    #[napi]
    pub async fn forget(&self, ids_json: String, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let ids: Vec<String> = parse(&ids_json, "snapshot ids")?;
        let spec: ForgetSpec = parse(&options_json, "forget options")?;
        let events = lock(&self.events).clone();
        let report = run_blocking(move || {
            // The collection is prune's, so it reports as prune does.
            let progress = |update: ProgressUpdate| {
                if let Some(sink) = &events {
                    emit(sink, "prune:progress", progress_payload("prune", &update));
                }
            };
            let options = ForgetOptions {
                dry_run: spec.dry_run,
                prune: spec.prune,
                lock_timeout: Duration::from_millis(spec.lock_timeout_ms),
            };
            forget(&repo, &ids, &options, &progress)
        })
        .await?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    }

    /// Removes stale locks, or all with `force`; resolves the number removed.
    #[napi]
    pub async fn unlock(&self, options_json: String) -> Result<u32> {
        let repo = self.repo()?;
        let spec: MaintenanceSpec = parse(&options_json, "unlock options")?;
        let removed = run_blocking(move || {
            repo.ensure_layout()?;
            containerarchive_core::lock::remove_locks(&**repo.storage(), spec.force)
        })
        .await?;
        Ok(removed as u32)
    }

    /// The repository's keys as JSON: `[{ id, createdAt, host, current }]`.
    #[napi]
    pub async fn list_keys(&self) -> Result<String> {
        let repo = self.repo()?;
        let list = run_blocking(move || keys::list_keys(&repo)).await?;
        Ok(serde_json::to_string(&list).expect("keys serialise"))
    }

    /// Adds a key for `passphrase`; resolves its summary as JSON.
    #[napi]
    pub async fn add_key(&self, passphrase: String, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: LockSpec = parse(&options_json, "addKey options")?;
        let timeout = Duration::from_millis(spec.lock_timeout_ms);
        let key = run_blocking(move || keys::add_key(&repo, &passphrase, timeout)).await?;
        Ok(serde_json::to_string(&key).expect("key serialises"))
    }

    /// Removes key `id` (or a unique prefix); resolves the full id.
    #[napi]
    pub async fn remove_key(&self, id: String, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: LockSpec = parse(&options_json, "removeKey options")?;
        let timeout = Duration::from_millis(spec.lock_timeout_ms);
        run_blocking(move || keys::remove_key(&repo, &id, timeout)).await
    }

    /// Replaces the key in use by one for `passphrase`; resolves its summary as JSON.
    #[napi]
    pub async fn change_passphrase(&self, passphrase: String, options_json: String) -> Result<String> {
        let repo = self.repo()?;
        let spec: LockSpec = parse(&options_json, "changePassphrase options")?;
        let timeout = Duration::from_millis(spec.lock_timeout_ms);
        let key = run_blocking(move || keys::change_passphrase(&repo, &passphrase, timeout)).await?;
        Ok(serde_json::to_string(&key).expect("key serialises"))
    }

    /// Copies the snapshots matching the filter into `target` (another open
    /// archive); resolves the report as JSON. Progress goes to this archive's
    /// listeners as `copy:progress`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn copy_snapshots<'env>(
        &self,
        env: &'env Env,
        target: &NativeArchive,
        options_json: String,
    ) -> Result<PromiseRaw<'env, String>> {
        let source = self.repo()?;
        let target = target.repo()?;
        let spec: CopySpec = parse(&options_json, "copySnapshots options")?;
        let events = lock(&self.events).clone();
        let registered = self.cancels.register(spec.cancel_token);
        env.spawn_future(async move {
            let report = run_blocking(move || {
                let options = CopyOptions {
                    filter: CopyFilter {
                        snapshots: SnapshotFilter {
                            tags: spec.tags,
                            host: spec.host,
                        },
                        after: spec.after,
                        before: spec.before,
                    },
                    lock_timeout: Duration::from_millis(spec.lock_timeout_ms),
                };
                let progress = |update: ProgressUpdate| {
                    if let Some(sink) = &events {
                        emit(sink, "copy:progress", progress_payload("copy", &update));
                    }
                };
                copy_snapshots(&source, &target, &options, &progress, &registered.flag)
            })
            .await?;
            Ok(serde_json::to_string(&report).expect("report serialises"))
        })
    }

    /// Sends a marker behind every event queued so far; the facade waits for it
    /// so that an operation's events all arrive before its promise resolves.
    #[napi]
    pub fn barrier(&self, token: u32) -> bool {
        match lock(&self.events).as_ref() {
            Some(sink) => {
                emit(sink, "__barrier", json!({ "token": token }));
                true
            }
            None => false,
        }
    }

    /// Drops the repository handle and the event sink; later calls get ERR_CLOSED.
    #[napi]
    pub fn close(&self) {
        lock(&self.repo).take();
        lock(&self.events).take();
    }
}
