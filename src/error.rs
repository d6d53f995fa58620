//! Maps engine errors to JS. The reason carries the stable code as a
//! `ERR_*: ` prefix; `index.js` moves it to `error.code`.

use containerarchive_core::Error;

pub fn to_js(err: Error) -> napi::Error {
    coded(err.code(), &err.to_string())
}

pub fn coded(code: &str, message: &str) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{code}: {message}"))
}

/// A Rust panic or a lost task must never escape as anything but ERR_INTERNAL.
pub fn internal(what: impl std::fmt::Display) -> napi::Error {
    coded(
        "ERR_INTERNAL",
        &format!("internal error: {what}; this is a bug, please report it"),
    )
}

pub fn closed() -> napi::Error {
    coded(
        "ERR_CLOSED",
        "the repository is closed; open it again with ContainerArchive.open()",
    )
}

pub fn invalid(message: &str) -> napi::Error {
    coded("ERR_INVALID_ARGUMENT", message)
}

/// Runs blocking engine work on napi's tokio runtime, turning panics into ERR_INTERNAL.
pub async fn run_blocking<T, F>(work: F) -> napi::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> containerarchive_core::Result<T> + Send + 'static,
{
    let joined =
        tokio::task::spawn_blocking(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))).await;
    match joined {
        Ok(Ok(result)) => result.map_err(to_js),
        Ok(Err(panic)) => Err(internal(containerarchive_core::ingest::panic_text(&panic))),
        Err(join_error) => Err(internal(join_error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_engine_work_becomes_err_internal() {
        let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
        let err = runtime
            .block_on(run_blocking(|| -> containerarchive_core::Result<()> {
                panic!("deliberate test panic")
            }))
            .unwrap_err();
        assert!(err.reason.starts_with("ERR_INTERNAL: "), "{}", err.reason);
        assert!(err.reason.contains("deliberate test panic"), "{}", err.reason);
    }

    #[test]
    fn engine_errors_keep_their_code() {
        let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
        let err = runtime
            .block_on(run_blocking(|| -> containerarchive_core::Result<()> {
                Err(containerarchive_core::Error::WrongPassphrase)
            }))
            .unwrap_err();
        assert!(err.reason.starts_with("ERR_WRONG_PASSPHRASE: "), "{}", err.reason);
    }
}
