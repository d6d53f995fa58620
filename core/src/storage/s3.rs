//! A repository in an S3-compatible bucket, through OpenDAL's S3 service.
//! Object keys are `<prefix>/<key>`: the relative paths of the local layout.
//!
//! A PUT is atomic (readers see the old object or the whole new one), so
//! `write` is one PUT and there is no tmp file or rename; `list` therefore
//! never meets a `.tmp-*` object written by this engine, but skips them
//! anyway so a repository copied from disk lists the same.
//!
//! OpenDAL is async. The engine's threads are plain std threads, so every
//! call blocks on the multi-thread tokio runtime whose handle `S3Storage` is
//! given (napi's own runtime in the addon). The future is spawned on that
//! runtime, never polled on the caller, and see [`S3Storage::new`] for the
//! rule that makes calls from inside a runtime safe.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;

use super::{is_valid_key, Entry, Storage};
use crate::error::{Error, Result};
use crate::fsutil::TMP_PREFIX;

/// How persistently a request is retried. Retries cover what OpenDAL marks
/// temporary: 5xx, 429, timeouts, connection resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: one attempt only).
    pub max_retries: usize,
    /// First backoff; each next one doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Bound on one request that opens a body (read, write, list); a stalled
    /// connection fails after this and is retried.
    pub io_timeout: Duration,
    /// Bound on one metadata request (stat, delete).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// Long enough for a server restart or a throttling burst, short enough
    /// that a dead endpoint is reported: a request that stalls on every
    /// attempt fails after `worst_case()`, about 1 min 45 s (it was ~7 min).
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            io_timeout: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The longest one request can take before it fails: every attempt
    /// stalls until `io_timeout`, with the longest backoffs in between
    /// (jitter only shortens them).
    pub fn worst_case(&self) -> Duration {
        let attempts = self.max_retries as u32 + 1;
        let mut backoff = Duration::ZERO;
        let mut delay = self.min_delay;
        for _ in 0..self.max_retries {
            backoff += delay.min(self.max_delay);
            delay = delay.saturating_mul(2);
        }
        self.io_timeout.max(self.timeout) * attempts + backoff
    }
}

/// Requests in flight at once when `storage.concurrency` is not set.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Where a bucket is and how to sign requests for it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// The repository's root inside the bucket, without leading or trailing
    /// `/`; empty for the bucket's root.
    pub prefix: String,
    /// e.g. `http://127.0.0.1:3900`; `None` for Amazon S3.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Path-style (`endpoint/bucket/key`) instead of virtual-host-style
    /// (`bucket.endpoint/key`) addressing. `None`: path style when an
    /// endpoint is given (MinIO, Garage, Ceph need it), virtual host on AWS.
    pub force_path_style: Option<bool>,
    pub retry: RetryPolicy,
    /// Requests in flight at once (`storage.concurrency`): restore and verify
    /// read with this many, ingest uploads this many packs while it chunks.
    /// 0 means `DEFAULT_CONCURRENCY`.
    pub concurrency: usize,
}

/// Credentials are never printed, not even in debug output.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("force_path_style", &self.force_path_style)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Whether `location` names an object-store repository rather than a path.
pub fn is_s3_url(location: &str) -> bool {
    location.starts_with("s3://")
}

impl S3Config {
    /// Parses `s3://bucket` or `s3://bucket/prefix/...`. Messages never echo
    /// the URL: a mistyped one may carry a secret.
    pub fn from_url(url: &str) -> Result<S3Config> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::invalid("an S3 repository location starts with s3:// (s3://bucket/prefix)"))?;
        if rest.contains(['@', '?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "an S3 location is s3://bucket/prefix, without credentials, query or spaces; \
                 pass credentials in options.storage or the AWS_* environment variables",
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(':') {
            return Err(Error::invalid(
                "the S3 location names no bucket; write it as s3://bucket/prefix",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !is_valid_key(prefix) {
            return Err(Error::invalid(
                "the prefix of an S3 location must not contain empty, '.' or '..' segments (s3://bucket/a/b)",
            ));
        }
        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            ..Default::default()
        })
    }

    /// Fills every unset field from the standard AWS variables: `AWS_ENDPOINT_URL`,
    /// `AWS_REGION` (then `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. `var` is `std::env::var`
    /// in use and a map in tests.
    pub fn with_env_defaults(mut self, var: impl Fn(&str) -> Option<String>) -> S3Config {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        self.endpoint = self.endpoint.or_else(|| get("AWS_ENDPOINT_URL"));
        self.region = self
            .region
            .or_else(|| get("AWS_REGION"))
            .or_else(|| get("AWS_DEFAULT_REGION"));
        self.access_key_id = self.access_key_id.or_else(|| get("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self.secret_access_key.or_else(|| get("AWS_SECRET_ACCESS_KEY"));
        self.session_token = self.session_token.or_else(|| get("AWS_SESSION_TOKEN"));
        self
    }

    /// `s3://bucket/prefix`: for messages, never with the endpoint's credentials.
    pub fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A repository in a bucket. Cheap to clone (the operator is shared).
#[derive(Clone)]
pub struct S3Storage {
    op: Operator,
    handle: Handle,
    location: String,
    /// Credentials to strip from any message the server or the client makes.
    secrets: Vec<String>,
    /// One permit per request in flight: `concurrency` is a hard bound,
    /// however many engine threads call at once.
    permits: Arc<Semaphore>,
    concurrency: usize,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage").field("location", &self.location).finish()
    }
}

impl S3Storage {
    /// Builds the client; contacts no server. `handle` must belong to a
    /// multi-thread runtime with IO and time enabled (`enable_all`): requests
    /// run on its workers. Calls may come from any thread: a plain thread
    /// blocks on the request; a worker of a multi-thread runtime first hands
    /// its other tasks away (`block_in_place`), so even a one-worker runtime
    /// cannot deadlock; a current-thread runtime's thread waits on a helper thread.
    pub fn new(config: S3Config, handle: Handle) -> Result<S3Storage> {
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(Error::Internal(
                "S3Storage needs a multi-thread tokio runtime: a current-thread one cannot drive requests \
                 while its only thread waits for them"
                    .into(),
            ));
        }
        // Credentials belong in their fields: an endpoint with `user:pass@`
        // would reach messages (HTTP errors name the URL). Not echoed here.
        if config.endpoint.as_deref().is_some_and(|e| e.contains('@')) {
            return Err(Error::invalid(
                "the S3 endpoint must not contain credentials (user:password@); \
                 pass them as storage.accessKeyId and storage.secretAccessKey",
            ));
        }
        if config.bucket.is_empty() {
            return Err(Error::invalid("no S3 bucket given; use s3://bucket/prefix"));
        }
        let (Some(key_id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) else {
            return Err(Error::invalid(format!(
                "no credentials for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 or pass storage.accessKeyId and storage.secretAccessKey",
                config.location()
            )));
        };
        // Builds with the default features register the HTTP transport from a
        // process constructor; calling it again is a no-op, and covers builds
        // where constructors do not run.
        opendal::install_default();

        let mut builder = opendal::services::S3::default()
            .bucket(&config.bucket)
            .root(&format!("/{}", config.prefix))
            // What the AWS SDKs assume; servers with their own region
            // (Garage: "garage") refuse requests signed for another.
            .region(config.region.as_deref().unwrap_or("us-east-1"))
            .access_key_id(key_id)
            .secret_access_key(secret)
            // Only what the config says: no ~/.aws files, no instance metadata
            // probe (which stalls for seconds off EC2).
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(token) = &config.session_token {
            builder = builder.session_token(token);
        }
        if !config.force_path_style.unwrap_or(config.endpoint.is_some()) {
            builder = builder.enable_virtual_host_style();
        }
        let retry = &config.retry;
        let secrets: Vec<String> = [&config.access_key_id, &config.secret_access_key, &config.session_token]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let location = config.location();
        let op = Operator::new(builder)
            .map_err(|e| {
                Error::invalid(format!(
                    "S3 settings for {location} are invalid: {}",
                    redact(&e, &secrets)
                ))
            })?
            // Timeout inside retry: each attempt is bounded, and a timed-out
            // attempt is retried (OpenDAL's documented order).
            .layer(
                TimeoutLayer::new()
                    .with_timeout(retry.timeout)
                    .with_io_timeout(retry.io_timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(retry.max_retries)
                    .with_min_delay(retry.min_delay)
                    .with_max_delay(retry.max_delay)
                    .with_factor(2.0)
                    .with_jitter(),
            );
        let concurrency = match config.concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => n,
        };
        Ok(S3Storage {
            op,
            handle,
            location,
            secrets,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
        })
    }

    /// Runs `fut` on the runtime and waits for it (see [`S3Storage::new`]).
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = opendal::Result<T>> + Send + 'static,
    ) -> Result<opendal::Result<T>> {
        let handle = &self.handle;
        let permits = self.permits.clone();
        let fut = async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await;
            fut.await
        };
        let wait = move || handle.block_on(handle.spawn(fut));
        let joined = match Handle::try_current() {
            Err(_) => wait(),
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
            // block_on would panic on this thread, and block_in_place is not
            // allowed on a current-thread runtime: wait on a helper thread.
            Ok(_) => std::thread::scope(|s| s.spawn(wait).join())
                .map_err(|_| Error::Internal("an object storage request panicked".into()))?,
        };
        joined.map_err(|e| Error::Internal(format!("an object storage request did not finish: {e}")))
    }

    /// A validated key, as OpenDAL expects it (relative to the prefix).
    fn key<'a>(&self, key: &'a str) -> Result<&'a str> {
        if is_valid_key(key) {
            Ok(key)
        } else {
            Err(Error::Internal(format!(
                "storage key {key:?} is not a relative repository path"
            )))
        }
    }

    /// A failed request as `ERR_IO`, naming the object and the server's
    /// message, with any credential removed.
    fn error(&self, key: &str, e: opendal::Error) -> Error {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::Other,
        };
        Error::Io {
            path: format!("{}/{key}", self.location),
            source: io::Error::new(kind, redact(&e, &self.secrets)),
        }
    }
}

/// The error's text without any of `secrets` (a server may echo the key id).
fn redact(e: &opendal::Error, secrets: &[String]) -> String {
    let mut text = e.to_string();
    for secret in secrets {
        text = text.replace(secret.as_str(), "<redacted>");
    }
    text
}

impl S3Storage {
    /// Exactly `len` bytes at `offset`, as the response's pieces (None for
    /// `len` 0, after checking the object is there).
    fn ranged(&self, key: &str, offset: u64, len: usize) -> Result<Option<opendal::Buffer>> {
        let key = self.key(key)?;
        if len == 0 {
            // A zero-length Range header is invalid HTTP; the object must still exist.
            return match self.size(key)? {
                Some(size) if size >= offset => Ok(None),
                Some(size) => Err(short(key, offset, len, size)),
                None => Err(self.error(
                    key,
                    opendal::Error::new(ErrorKind::NotFound, "the object does not exist"),
                )),
            };
        }
        let (op, path) = (self.op.clone(), key.to_string());
        let end = offset + len as u64;
        match self.block(async move { op.read_with(&path).range(offset..end).await })? {
            Ok(buf) if buf.len() == len => Ok(Some(buf)),
            Ok(buf) => Err(short(key, offset, len, offset + buf.len() as u64)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(self.error(key, e)),
            // A range past the end comes back as "range not satisfiable" or as
            // a short body, which OpenDAL (rightly: it is usually a dropped
            // connection) retries before giving up. Only the object's size
            // tells a truncated object from a failing network.
            Err(e) => match self.size(key)? {
                Some(size) if size < end => Err(short(key, offset, len, size)),
                _ => Err(self.error(key, e)),
            },
        }
    }
}

impl Storage for S3Storage {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(key)?;
        let (op, path) = (self.op.clone(), key.to_string());
        match self.block(async move { op.read(&path).await })? {
            Ok(buf) => Ok(Some(buf.to_vec())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn read_range(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        Ok(self.ranged(key, offset, len)?.map_or_else(Vec::new, |buf| buf.to_vec()))
    }

    fn read_range_into(&self, key: &str, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        if let Some(buf) = self.ranged(key, offset, len)? {
            out.reserve(len);
            for piece in buf {
                out.extend_from_slice(&piece);
            }
        }
        Ok(())
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let key = self.key(key)?;
        let (op, path) = (self.op.clone(), key.to_string());
        match self.block(async move { op.stat(&path).await })? {
            Ok(meta) if meta.mode().is_file() => Ok(Some(meta.content_length())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        self.write_owned(key, data.to_vec())
    }

    fn write_owned(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let key = self.key(key)?;
        let (op, path) = (self.op.clone(), key.to_string());
        // One PUT: S3 makes it visible whole or not at all.
        match self.block(async move { op.write(&path, body).await })? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let key = self.key(key)?;
        let (op, path) = (self.op.clone(), key.to_string());
        match self.block(async move { op.delete(&path).await })? {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let path = if dir.is_empty() {
            "/".to_string()
        } else {
            format!("{}/", self.key(dir)?)
        };
        let op = self.op.clone();
        let listed = self.block(async move { op.list(&path).await })?;
        let entries = listed.map_err(|e| self.error(if dir.is_empty() { "" } else { dir }, e))?;
        let mut out: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.metadata().mode().is_file())
            .map(|e| Entry {
                name: e.name().to_string(),
                size: e.metadata().content_length(),
            })
            .filter(|e| !e.name.is_empty() && !e.name.contains('/') && !e.name.starts_with(TMP_PREFIX))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.concurrency)
    }
}

fn short(key: &str, offset: u64, len: usize, size: u64) -> Error {
    Error::corrupt(
        key,
        format!(
            "it ends at byte {size}, before byte {} (wanted {len} bytes at offset {offset})",
            offset + len as u64
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let c = S3Config::from_url("s3://bucket/a/b/").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", "a/b"));
        assert_eq!(c.location(), "s3://bucket/a/b");
        let c = S3Config::from_url("s3://bucket").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", ""));
        assert_eq!(c.location(), "s3://bucket");
        assert_eq!(S3Config::from_url("s3://bucket/").unwrap().prefix, "");
        assert!(is_s3_url("s3://x") && !is_s3_url("/srv/s3://x"));
        for bad in [
            "bucket/prefix",
            "s3:/bucket",
            "s3://",
            "s3:///prefix",
            "s3://b/a//b",
            "s3://b/../x",
            "s3://b/a/./x",
            "s3://b/a b",
            "s3://host:9000/b",
            "s3://b/p?region=x",
        ] {
            let e = S3Config::from_url(bad).unwrap_err();
            assert_eq!(e.code(), "ERR_INVALID_ARGUMENT", "{bad}");
        }
        let e = S3Config::from_url("s3://AKIAKEY:topsecret@bucket/p").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }

    #[test]
    fn env_fills_only_unset_fields() {
        let env = |name: &str| {
            Some(
                match name {
                    "AWS_ACCESS_KEY_ID" => "env-id",
                    "AWS_SECRET_ACCESS_KEY" => "env-secret",
                    "AWS_SESSION_TOKEN" => "",
                    "AWS_DEFAULT_REGION" => "eu-west-1",
                    "AWS_ENDPOINT_URL" => "http://127.0.0.1:1",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = S3Config {
            access_key_id: Some("given".into()),
            ..S3Config::from_url("s3://b/p").unwrap()
        }
        .with_env_defaults(env);
        assert_eq!(c.access_key_id.as_deref(), Some("given"));
        assert_eq!(c.secret_access_key.as_deref(), Some("env-secret"));
        assert_eq!(c.session_token, None, "an empty variable is unset");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        let with_region = S3Config::default().with_env_defaults(|n| (n == "AWS_REGION").then(|| "us-west-2".into()));
        assert_eq!(with_region.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn debug_output_hides_credentials() {
        let c = S3Config {
            access_key_id: Some("GK-the-key-id".into()),
            secret_access_key: Some("the-secret".into()),
            session_token: Some("the-token".into()),
            ..S3Config::from_url("s3://b/p").unwrap()
        };
        let text = format!("{c:?}");
        for secret in ["GK-the-key-id", "the-secret", "the-token"] {
            assert!(!text.contains(secret), "{text}");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s = S3Storage::new(c, rt.handle().clone()).unwrap();
        assert_eq!(format!("{s:?}"), "S3Storage { location: \"s3://b/p\" }");
        // A server may echo the key id (Garage: "no such key"): it is removed from the error.
        let server = opendal::Error::new(ErrorKind::PermissionDenied, "Forbidden: no such key: GK-the-key-id")
            .with_context("token", "the-token");
        let e = s.error("snapshots/a", server);
        let shown = format!("{e} {e:?}");
        assert_eq!(e.code(), "ERR_IO");
        assert!(
            shown.contains("s3://b/p/snapshots/a") && shown.contains("<redacted>"),
            "{shown}"
        );
        for secret in ["GK-the-key-id", "the-secret", "the-token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(s.location(), "s3://b/p");
        assert!(s.local_root().is_none());
    }

    #[test]
    fn refuses_missing_credentials_and_current_thread_runtimes() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = S3Storage::new(S3Config::from_url("s3://b/p").unwrap(), multi.handle().clone()).unwrap_err();
        assert_eq!(e.code(), "ERR_INVALID_ARGUMENT");
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = S3Config {
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            ..S3Config::from_url("s3://b/p").unwrap()
        };
        assert_eq!(
            S3Storage::new(config.clone(), single.handle().clone())
                .unwrap_err()
                .code(),
            "ERR_INTERNAL"
        );
        let with_userinfo = S3Config {
            endpoint: Some("http://user:hunter2@127.0.0.1:9000".into()),
            ..config
        };
        let e = S3Storage::new(with_userinfo, multi.handle().clone()).unwrap_err();
        assert_eq!(e.code(), "ERR_INVALID_ARGUMENT");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_dead_endpoint_fails_within_two_minutes() {
        let old = RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(15),
            io_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        };
        assert!(old.worst_case() > Duration::from_secs(420), "{:?}", old.worst_case());
        let new = RetryPolicy::default().worst_case();
        assert!(
            new >= Duration::from_secs(60) && new <= Duration::from_secs(120),
            "{new:?}"
        );
    }

    /// A server that accepts connections and never answers: each attempt
    /// times out, and the error is ERR_IO naming the object and the cause.
    #[test]
    fn a_stalled_server_is_err_io_naming_the_object() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Holds every accepted connection open, silent, until the test ends.
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().map_while(|c| c.ok()).collect();
            drop(held);
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret-never-shown".into()),
            retry: RetryPolicy {
                max_retries: 1,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                io_timeout: Duration::from_millis(300),
                timeout: Duration::from_millis(300),
            },
            concurrency: 3,
            ..S3Config::from_url("s3://b/p").unwrap()
        };
        let s = S3Storage::new(config, rt.handle().clone()).unwrap();
        assert_eq!(s.concurrency(), Some(3));
        let started = std::time::Instant::now();
        let e = s.read("snapshots/abc").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        let shown = e.to_string();
        assert_eq!(e.code(), "ERR_IO", "{shown}");
        assert!(shown.contains("s3://b/p/snapshots/abc"), "{shown}");
        assert!(
            shown.to_lowercase().contains("timeout") || shown.to_lowercase().contains("timed out"),
            "{shown}"
        );
        assert!(!shown.contains("secret-never-shown"), "{shown}");
        let default = S3Config {
            access_key_id: Some("id".into()),
            secret_access_key: Some("s".into()),
            ..S3Config::from_url("s3://b/p").unwrap()
        };
        let s = S3Storage::new(default, rt.handle().clone()).unwrap();
        assert_eq!(s.concurrency(), Some(DEFAULT_CONCURRENCY));
    }
}
