//! Ingest bridge: Rust pulls buffers from the Node `Readable`s through a
//! ThreadsafeFunction (one read in flight) and feeds them over a bounded
//! channel to the blocking pipeline, which sees each item as a `Read`.
//! Items `index.js` hands over as files are read natively instead
//! (`file_source`); the pump skips them. Pipes are pulled for the bytes
//! their stream had buffered, then read natively.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;

use crate::file_source::{FileReader, PipeReader};
use tokio::sync::mpsc;

/// `pull(itemIndex)` resolves the item's next buffer, or null at its end.
pub type PullFn = ThreadsafeFunction<u32, Promise<Option<Buffer>>, u32, Status, false>;

pub enum Feed {
    Data(Buffer),
    End,
    Failed(String),
}

/// How many pulled buffers may wait for the chunker.
const FEED_DEPTH: usize = 4;

pub fn channel() -> (mpsc::Sender<Feed>, Arc<Mutex<mpsc::Receiver<Feed>>>) {
    let (tx, rx) = mpsc::channel(FEED_DEPTH);
    (tx, Arc::new(Mutex::new(rx)))
}

/// Pulls each of `items` (the indexes of JS-fed items) in order until its
/// end; stops when the pipeline hangs up.
pub async fn pump(pull: PullFn, items: Vec<u32>, feed: mpsc::Sender<Feed>) {
    for item in items {
        loop {
            let next = match pull.call_async_catch(item).await {
                Ok(promise) => promise.await,
                Err(e) => Err(e),
            };
            let message = match next {
                Ok(Some(buffer)) if buffer.is_empty() => continue,
                Ok(Some(buffer)) => Feed::Data(buffer),
                Ok(None) => Feed::End,
                Err(e) => Feed::Failed(e.reason.clone()),
            };
            let last = !matches!(message, Feed::Data(_));
            let failed = matches!(message, Feed::Failed(_));
            if feed.send(message).await.is_err() || failed {
                return;
            }
            if last {
                break;
            }
        }
    }
}

/// One item's bytes, read from the shared feed until its `End`.
pub struct FeedReader {
    feed: Arc<Mutex<mpsc::Receiver<Feed>>>,
    current: Option<Buffer>,
    offset: usize,
    ended: bool,
}

impl FeedReader {
    pub fn new(feed: Arc<Mutex<mpsc::Receiver<Feed>>>) -> FeedReader {
        FeedReader {
            feed,
            current: None,
            offset: 0,
            ended: false,
        }
    }
}

impl Read for FeedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(buffer) = &self.current {
                let bytes: &[u8] = buffer;
                let n = out.len().min(bytes.len() - self.offset);
                out[..n].copy_from_slice(&bytes[self.offset..self.offset + n]);
                self.offset += n;
                if self.offset == bytes.len() {
                    self.current = None;
                    self.offset = 0;
                }
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            let next = self.feed.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
            match next {
                Some(Feed::Data(buffer)) => self.current = Some(buffer),
                Some(Feed::End) => self.ended = true,
                Some(Feed::Failed(reason)) => return Err(io::Error::other(reason)),
                None => return Err(io::Error::other("the source stream went away")),
            }
        }
    }
}

/// An item's bytes: pulled from JS, read natively from its file, or a
/// pipe's: what its stream had buffered (pulled) and then the pipe itself.
pub enum ItemReader {
    Fed(FeedReader),
    File(FileReader),
    Pipe {
        buffered: Option<FeedReader>,
        pipe: PipeReader,
    },
}

impl Read for ItemReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            ItemReader::Fed(reader) => reader.read(out),
            ItemReader::File(reader) => reader.read(out),
            ItemReader::Pipe { buffered, pipe } => {
                if let Some(reader) = buffered {
                    match reader.read(out)? {
                        0 => *buffered = None,
                        n => return Ok(n),
                    }
                }
                pipe.read(out)
            }
        }
    }
}
