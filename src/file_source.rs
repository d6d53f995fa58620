//! Native fast path for an `fs.ReadStream` nobody has read yet: the engine
//! reads the stream's file itself, so no bytes cross into JS. `index.js`
//! waits for the stream to open, hands over its fd with the stream's
//! `start`/`end`, and destroys the stream once the ingest settles.
//!
//! The fd is duplicated on the JS thread before `ingest` returns, so the
//! reader owns its own descriptor: the caller's fd is never closed here,
//! and nothing breaks if the caller destroys the stream mid-ingest.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};

use napi::Result;

use crate::error::invalid;

/// An item `index.js` asks the engine to read natively.
#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSpec {
    /// The open fd of the caller's stream (borrowed, duplicated here).
    pub fd: i32,
    /// As `fs.ReadStream`: absent means "from the fd's current position".
    pub start: Option<u64>,
    /// As `fs.ReadStream`: inclusive; absent means "to the end of the file".
    pub end: Option<u64>,
}

/// The first native read failure of an ingest: (item index, errno, text).
pub type ReadFailure = Arc<OnceLock<(u32, i32, String)>>;

/// Reads exactly the bytes `fs.ReadStream` would: positioned reads from
/// `start` when it is set (the fd's offset is left alone), otherwise plain
/// reads from the shared offset. The chunker above asks for large blocks,
/// so no extra buffering is needed.
pub struct FileReader {
    file: File,
    position: Option<u64>,
    remaining: u64,
    index: u32,
    failure: ReadFailure,
}

impl FileReader {
    /// Must run on the JS thread, while the caller's fd is certainly open.
    pub fn new(spec: FileSpec, index: u32, failure: ReadFailure) -> Result<FileReader> {
        let file = duplicate(spec.fd)?;
        let limit = spec.end.map_or(u64::MAX, |end| end.saturating_add(1));
        let remaining = limit.saturating_sub(spec.start.unwrap_or(0));
        Ok(FileReader {
            file,
            position: spec.start,
            remaining,
            index,
            failure,
        })
    }

    /// The byte length this reader will produce, for progress percentages.
    pub fn size_hint(&mut self) -> Option<u64> {
        use std::io::Seek;
        let meta = self.file.metadata().ok().filter(|m| m.is_file())?;
        let from = match self.position {
            Some(p) => p,
            None => self.file.stream_position().ok()?,
        };
        Some(meta.len().saturating_sub(from).min(self.remaining))
    }

    fn read_at_position(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.position {
            Some(position) => read_at(&self.file, out, position),
            None => self.file.read(out),
        }
    }
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = out.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        match self.read_at_position(&mut out[..want]) {
            Ok(n) => {
                self.remaining -= n as u64;
                if let Some(p) = self.position.as_mut() {
                    *p += n as u64;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                // Kept so index.js can reject as the stream would have (code, errno, syscall).
                let _ = self
                    .failure
                    .set((self.index, e.raw_os_error().unwrap_or(0), e.to_string()));
                Err(e)
            }
        }
    }
}

#[cfg(unix)]
fn duplicate(fd: i32) -> Result<File> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err(invalid("a file source needs a non-negative fd"));
    }
    // SAFETY: the caller's stream holds `fd` open for the duration of this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed
        .try_clone_to_owned()
        .map_err(|e| invalid(&format!("cannot duplicate fd {fd}: {e}")))?;
    Ok(File::from(owned))
}

#[cfg(not(unix))]
fn duplicate(_fd: i32) -> Result<File> {
    // index.js takes the fast path only on unix: a Windows CRT fd is not a handle.
    Err(invalid("native file sources are supported on unix only"))
}

#[cfg(unix)]
fn read_at(file: &File, out: &mut [u8], position: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, out, position)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _out: &mut [u8], _position: u64) -> io::Result<usize> {
    Err(io::Error::other("native file sources are supported on unix only"))
}

/// An item `index.js` hands over as a pipe (a child process's stdout, a
/// piped stdin): the stream's buffered bytes come first through `pull`,
/// then the engine reads the pipe itself until its writer closes it.
#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipeSpec {
    /// The pipe's fd (borrowed from the stream's handle, duplicated here).
    pub fd: i32,
}

/// How long one wait for the pipe lasts before the cancel flag is looked at again.
#[cfg(unix)]
const PIPE_WAIT_MS: i32 = 100;

/// Reads a pipe libuv set non-blocking: on EAGAIN it waits for data (or
/// the writer's close), looking at the ingest's cancel flag between waits,
/// so a stalled producer never holds a cancelled ingest.
pub struct PipeReader {
    file: File,
    index: u32,
    failure: ReadFailure,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl PipeReader {
    /// Must run on the JS thread, while the stream's handle holds the fd open.
    pub fn new(
        spec: PipeSpec,
        index: u32,
        failure: ReadFailure,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<PipeReader> {
        Ok(PipeReader {
            file: duplicate(spec.fd)?,
            index,
            failure,
            cancel,
        })
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(io::Error::other("the ingest was cancelled"));
            }
            match self.file.read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(&self.file)?,
                Err(e) => {
                    let _ = self
                        .failure
                        .set((self.index, e.raw_os_error().unwrap_or(0), e.to_string()));
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(unix)]
fn wait_readable(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    match unsafe { libc::poll(&mut poll, 1, PIPE_WAIT_MS) } {
        -1 if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted => Err(io::Error::last_os_error()),
        // Data, the writer's close (POLLHUP), an error (the read reports it), or a timeout.
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn wait_readable(_file: &File) -> io::Result<()> {
    Err(io::Error::other("native pipe sources are supported on unix only"))
}
