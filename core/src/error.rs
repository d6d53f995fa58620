//! The engine's error type. Every variant maps to one stable `ERR_*` code that
//! the JS layer exposes as `error.code`; messages say what the user can do.

use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} already holds a repository; open it with ContainerArchive.open() or choose another path")]
    RepoExists(String),
    #[error("no repository at {0}; create one with ContainerArchive.init() or check the path")]
    RepoNotFound(String),
    #[error("this repository is encrypted; pass {{ passphrase }} to open()")]
    PassphraseRequired,
    #[error("the passphrase does not unlock this repository; check the passphrase")]
    WrongPassphrase,
    #[error("snapshot {0} does not exist; see listSnapshots() for the snapshots in this repository")]
    SnapshotNotFound(String),
    #[error("{0}")]
    ItemNotFound(String),
    #[error("{0}")]
    UnsupportedFormat(String),
    /// The item has no tar catalog (never catalogued, or the scan failed).
    #[error("{0}")]
    NoCatalog(String),
    #[error("{what} is damaged ({detail}); run verify() to see the extent and repair() to fix what can be fixed")]
    Corrupt { what: String, detail: String },
    #[error("{0}")]
    Locked(String),
    #[error("I/O error on {path}: {source}; {}", io_hint(path))]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Cancelled(String),
    /// The source stream failed; the JS layer rethrows the stream's own error.
    #[error("the source stream failed: {0}")]
    Source(String),
    #[error("internal error: {0}; this is a bug, please report it")]
    Internal(String),
    /// Repository data without any readable config.json: neither open() nor
    /// init() can help, so the message says what can (code ERR_CORRUPT).
    #[error("{0}")]
    ConfigLost(String),
}

impl Error {
    /// The stable code the JS layer exposes as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::RepoExists(_) => "ERR_REPO_EXISTS",
            Error::RepoNotFound(_) => "ERR_REPO_NOT_FOUND",
            Error::PassphraseRequired => "ERR_PASSPHRASE_REQUIRED",
            Error::WrongPassphrase => "ERR_WRONG_PASSPHRASE",
            Error::SnapshotNotFound(_) => "ERR_SNAPSHOT_NOT_FOUND",
            Error::ItemNotFound(_) => "ERR_ITEM_NOT_FOUND",
            Error::UnsupportedFormat(_) => "ERR_UNSUPPORTED_FORMAT",
            Error::NoCatalog(_) => "ERR_NO_CATALOG",
            Error::Corrupt { .. } | Error::ConfigLost(_) => "ERR_CORRUPT",
            Error::Locked(_) => "ERR_LOCKED",
            Error::Io { .. } => "ERR_IO",
            Error::Cancelled(_) => "ERR_CANCELLED",
            Error::Source(_) => "ERR_SOURCE",
            Error::Internal(_) => "ERR_INTERNAL",
        }
    }

    /// Whether this is a full disk (or an exhausted quota).
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }

    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }

    pub fn corrupt(what: impl Into<String>, detail: impl ToString) -> Error {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// What to check after an I/O error: the disk, or, for an object in a bucket, the connection to it.
fn io_hint(path: &str) -> &'static str {
    if path.starts_with("s3://") {
        "check the endpoint, the network, the credentials and the bucket's permissions"
    } else {
        "check the disk, its free space and permissions"
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the path an I/O error happened on.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
