//! Where a repository lives: a local path, or an `s3://` URL whose
//! connection settings `index.js` resolved (options, then AWS_* variables).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerarchive_core::storage::s3::{S3Config, S3Storage};
use containerarchive_core::storage::{self, cache, Storage};

use crate::error::invalid;

/// `options.storage` and the cache options of an S3 repository, as index.js passes them.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    force_path_style: Option<bool>,
    concurrency: Option<usize>,
    timeout_ms: Option<u64>,
    retries: Option<usize>,
    #[serde(default = "yes")]
    cache: bool,
    cache_dir: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

/// The storage `location` names. Must run inside napi's tokio runtime (an
/// async `#[napi]` fn or its blocking pool): S3 requests are driven by it.
pub fn open_storage(location: &str, spec_json: Option<&str>) -> napi::Result<Arc<dyn Storage>> {
    let Some(json) = spec_json else {
        if location.starts_with("s3://") {
            return Err(invalid("an s3:// location needs its storage settings"));
        }
        return Ok(storage::local(PathBuf::from(location)));
    };
    // The JSON carries credentials: a parse error must not echo it.
    let spec: StorageSpec = serde_json::from_str(json).map_err(|_| invalid("the storage settings are malformed"))?;
    let mut config = S3Config::from_url(location).map_err(crate::error::to_js)?;
    config.endpoint = spec.endpoint;
    config.region = spec.region;
    config.access_key_id = spec.access_key_id;
    config.secret_access_key = spec.secret_access_key;
    config.session_token = spec.session_token;
    config.force_path_style = spec.force_path_style;
    if let Some(ms) = spec.timeout_ms {
        // One bound for every attempt, whatever kind of request.
        config.retry.timeout = Duration::from_millis(ms);
        config.retry.io_timeout = Duration::from_millis(ms);
    }
    if let Some(retries) = spec.retries {
        config.retry.max_retries = retries;
    }
    // 0: the engine's default (8).
    config.concurrency = spec.concurrency.unwrap_or(0);
    // The default cache is per location *and* endpoint: one bucket name on two servers is two repositories.
    let location_key = format!(
        "{} at {}",
        config.location(),
        config.endpoint.as_deref().unwrap_or("aws")
    );
    let handle = tokio::runtime::Handle::current();
    let s3: Arc<dyn Storage> = Arc::new(S3Storage::new(config, handle).map_err(crate::error::to_js)?);
    if !spec.cache {
        return Ok(s3);
    }
    match spec.cache_dir.or_else(|| cache::default_cache_dir(&location_key)) {
        Some(dir) => cache::cached(s3, dir).map_err(crate::error::to_js),
        // No HOME and no cacheDir: work uncached rather than fail.
        None => Ok(s3),
    }
}
