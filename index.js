'use strict';
// The public API of @serve.zone/containerarchive: a hand-written facade over
// the generated loader (binding.js). It validates arguments, bridges Node
// streams to the native pull/push functions and turns native errors into
// ArchiveErrors with a stable `code`.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const util = require('node:util');
const { Readable, PassThrough, addAbortSignal } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const { storageSpec } = require('./lib/location.js');
const { normalise, entryFilter, catalogEntries, memberRange, addRange, TAR_END } = require('./lib/catalog.js');
const { AbortError, checkSignal, underSignal } = require('./lib/abort.js');

class ArchiveError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ArchiveError';
    this.code = code;
  }
}

const { NativeArchive } = loadNative();

/** This machine as napi-rs names platform packages: linux-x64-gnu, darwin-arm64, win32-x64-msvc, ... */
function platformName() {
  if (process.platform === 'linux') {
    const glibc = typeof process.report?.getReport === 'function' && process.report.getReport().header?.glibcVersionRuntime;
    return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (process.platform === 'win32') return `win32-${process.arch}-msvc`;
  return `${process.platform}-${process.arch}`;
}

/**
 * The generated loader, or our own message when this platform's prebuilt
 * engine is missing: napi-rs's generic text (with a wasm32-wasi cause chain)
 * does not say what to install.
 */
function loadNative() {
  try {
    return require('./binding.js');
  } catch (err) {
    const { name, version, napi } = require('./package.json');
    const platform = platformName();
    const pkg = `${name}-${platform}`;
    const prebuilt = napi.targets.map(platformOfTriple);
    const message = prebuilt.includes(platform)
      ? `the native engine of ${name} for ${platform} is not installed: the optional package ${pkg} is missing ` +
        `(npm install --omit=optional, or a lockfile made on another platform, leaves it out). ` +
        `Install it with: npm install ${pkg}@${version} (or reinstall ${name} without --omit=optional)`
      : `${name} has no prebuilt native engine for ${platform} (Node ${process.version}); ` +
        `prebuilt platforms: ${prebuilt.join(', ')}. Building it needs a Rust toolchain: see the README's Development section`;
    const missing = new ArchiveError('ERR_NATIVE_MISSING', message);
    missing.cause = err; // the loader's own errors, for a bug report
    throw missing;
  }
}

/** napi-rs platform name of a Rust target triple (as scripts/pack.js does). */
function platformOfTriple(triple) {
  const [cpu, , sys, abi] = triple.split('-');
  const arch = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }[cpu] ?? cpu;
  if (sys === 'linux') return `linux-${arch}-${abi}`;
  if (sys === 'darwin') return `darwin-${arch}`;
  if (sys === 'windows') return `win32-${arch}-${abi}`;
  return triple;
}

const CODED = /^(ERR_[A-Z_]+): ([\s\S]*)$/;

/** Errors that reach the caller unchanged: a source stream's own error. */
const passThrough = new WeakSet();

/** Native rejections carry "ERR_CODE: message"; anything else is a bug. */
function toArchiveError(err) {
  if (err instanceof ArchiveError || err instanceof AbortError || passThrough.has(err)) return err;
  const match = CODED.exec(err && err.message ? err.message : String(err));
  if (match) return new ArchiveError(match[1], match[2]);
  return new ArchiveError('ERR_INTERNAL', `internal error: ${err && err.message ? err.message : err}`);
}

function invalid(message) {
  return new ArchiveError('ERR_INVALID_ARGUMENT', message);
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function checkOptions(value, name, allowed) {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw invalid(`${name} must be an object`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalid(`${name}.${key} is not a known option; known: ${allowed.join(', ')}`);
  }
  return value;
}

function checkTags(tags) {
  if (tags === undefined) return {};
  if (!isPlainObject(tags)) throw invalid('tags must be an object of string values');
  for (const [key, value] of Object.entries(tags)) {
    if (typeof value !== 'string') throw invalid(`tag ${JSON.stringify(key)} must have a string value`);
  }
  return tags;
}

function checkSafeInteger(value, name) {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be a non-negative integer`);
}

/**
 * `passphrase` present but undefined, null or '' is refused: it is almost
 * always an unset environment variable, and must not silently mean "no
 * encryption". Returns the passphrase, or undefined when the key is absent.
 */
function checkPassphrase(o, call) {
  if (!Object.hasOwn(o, 'passphrase')) return undefined;
  const p = o.passphrase;
  if (p === undefined || p === null || p === '') {
    const what = p === '' ? 'an empty string' : String(p);
    const unencrypted = call === 'init' ? 'create an unencrypted repository' : 'open an unencrypted repository';
    throw invalid(`passphrase is ${what} (an unset environment variable?); pass the passphrase, or leave the passphrase option out to ${unencrypted}`);
  }
  if (typeof p !== 'string') throw invalid('passphrase must be a string');
  return p;
}

/** A new passphrase for addKey/changePassphrase: a non-empty string (undefined, null and '' are refused like in open()). */
function checkNewPassphrase(p, call) {
  if (p === undefined || p === null || p === '') {
    const what = p === '' ? 'an empty string' : String(p);
    throw invalid(`${call}() needs a new passphrase, got ${what} (an unset environment variable?)`);
  }
  if (typeof p !== 'string') throw invalid(`${call}(): the new passphrase must be a string`);
}

function checkInitOptions(options) {
  const o = checkOptions(options, 'options', ['passphrase', 'compression', 'compressionLevel', 'chunking', 'packTargetSize', 'parity', 'threads', ...WHERE_OPTIONS]);
  const out = {};
  const passphrase = checkPassphrase(o, 'init');
  if (passphrase !== undefined) out.passphrase = passphrase;
  if (o.compression !== undefined) {
    if (!['gzip', 'zstd', 'none'].includes(o.compression)) throw invalid(`compression must be 'gzip', 'zstd' or 'none', not ${JSON.stringify(o.compression)}`);
    out.compression = o.compression;
  }
  if (o.compressionLevel !== undefined) {
    if (!Number.isInteger(o.compressionLevel)) throw invalid('compressionLevel must be an integer');
    out.compressionLevel = o.compressionLevel;
  }
  if (o.chunking !== undefined) {
    const c = checkOptions(o.chunking, 'chunking', ['minSize', 'avgSize', 'maxSize']);
    for (const key of ['minSize', 'avgSize', 'maxSize']) checkSafeInteger(c[key], `chunking.${key}`);
    out.chunking = { minSize: c.minSize, avgSize: c.avgSize, maxSize: c.maxSize };
  }
  if (o.packTargetSize !== undefined) {
    checkSafeInteger(o.packTargetSize, 'packTargetSize');
    out.packTargetSize = o.packTargetSize;
  }
  if (o.parity !== undefined) {
    const p = checkOptions(o.parity, 'parity', ['dataShards', 'parityShards']);
    checkSafeInteger(p.dataShards, 'parity.dataShards');
    checkSafeInteger(p.parityShards, 'parity.parityShards');
    out.parity = { dataShards: p.dataShards, parityShards: p.parityShards };
  }
  return out;
}

/** Options of init() and open() that say how to reach the repository (lib/location.js). */
const WHERE_OPTIONS = ['storage', 'cacheDir', 'cache'];

/** `threads`: the most worker threads the engine runs for this repository (default: one per core). */
function checkThreads(threads) {
  if (threads === undefined) return undefined;
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 1024) throw invalid(`threads must be an integer from 1 to 1024, not ${describeThreads(threads)}`);
  return threads;
}

function describeThreads(v) {
  return typeof v === 'number' ? String(v) : describeValue(v);
}

/** The native storage argument: undefined for a local path, JSON for s3://. */
function storageArgument(path, o) {
  const spec = storageSpec(path, o, invalid);
  return spec === undefined ? undefined : JSON.stringify(spec);
}

function checkPath(path) {
  if (typeof path !== 'string' || path.length === 0) throw invalid('path must be a non-empty string');
  return path;
}

const isNodeReadable = (s) => Boolean(s) && typeof s.read === 'function' && typeof s.on === 'function';
const isWebReadable = (s) => Boolean(s) && typeof s.getReader === 'function' && typeof s.locked === 'boolean';

/**
 * Checks a source the API takes and returns how to read it as a Node Readable:
 * a Node Readable as it is, a web ReadableStream through Readable.fromWeb, an
 * (async) iterable of Buffers, Uint8Arrays or strings through Readable.from.
 * Nothing is converted until every argument is checked, so bad input leaves
 * every source untouched (a web stream unlocked). Destroying the Readable
 * cancels the web stream or returns the iterator.
 */
function checkSource(source, name) {
  if (isNodeReadable(source)) {
    checkStream(source, name);
    return () => source;
  }
  if (isWebReadable(source)) {
    if (source.locked) throw invalid(`${name} is a web ReadableStream that is locked to a reader; pass one nobody reads yet`);
    return () => Readable.fromWeb(source);
  }
  const bytesLike = typeof source === 'string' || source instanceof Uint8Array || source instanceof ArrayBuffer;
  const iterable = source != null && (typeof source[Symbol.asyncIterator] === 'function' || typeof source[Symbol.iterator] === 'function');
  if (iterable && !bytesLike) return () => Readable.from(source, { objectMode: true });
  const hint = bytesLike ? ' (to store bytes you already hold, pass Readable.from([bytes]))' : '';
  throw invalid(`${name} must be a Node Readable, a web ReadableStream or an async iterable of Buffers, Uint8Arrays or strings, not ${describeValue(source)}${hint}`);
}

function describeValue(v) {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (v instanceof Uint8Array) return 'a Uint8Array';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? `an object (${v.constructor?.name ?? 'no prototype'})` : `a ${typeof v}`;
}

function checkStream(stream, name) {
  // A stream in any of these states never emits again: ingesting it would wait forever.
  if (stream.errored) throw invalid(`${name} has already failed (${stream.errored.message ?? stream.errored}); pass a fresh stream`);
  if (stream.destroyed) throw invalid(`${name} is already destroyed; pass a fresh stream`);
  if (stream.closed) throw invalid(`${name} is already closed; pass a fresh stream`);
  if (stream.readableEnded) throw invalid(`${name} has already ended and its data was consumed; pass a fresh stream`);
}

/** Object-mode streams (e.g. Readable.from) may carry Buffers, Uint8Arrays or strings. */
function toBytes(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  return null;
}

/** The byte length a stream will produce, when it can be known up front. */
function knownSize(stream) {
  if (!(stream instanceof fs.ReadStream) || typeof stream.path !== 'string') return undefined;
  try {
    const size = fs.statSync(stream.path).size;
    const start = stream.start ?? 0;
    const end = stream.end === undefined || stream.end === Infinity ? size - 1 : Math.min(stream.end, size - 1);
    return Math.max(0, end - start + 1);
  } catch {
    return undefined;
  }
}

/** The fs module a ReadStream reads through: not `fs` when the caller passed its own `fs` option. */
function streamFs(stream) {
  const key = Object.getOwnPropertySymbols(stream).find((symbol) => symbol.description === 'kFs');
  return key === undefined ? undefined : stream[key];
}

/**
 * Whether the engine can read this source's file itself (no bytes through
 * JS): an fs.ReadStream nobody has touched, reading through Node's own fs
 * with its stock methods, that closes its fd when done (autoClose) and
 * emits 'close'. Anything else, e.g. a partly read or flowing stream, keeps
 * the JS path, which hands over exactly the bytes the stream still has.
 * Windows fds are CRT descriptors the engine cannot use, so not there.
 */
function isNativeFileSource(stream) {
  if (process.platform === 'win32' || !(stream instanceof fs.ReadStream)) return false;
  const proto = fs.ReadStream.prototype;
  const state = stream._readableState;
  return (
    streamFs(stream) === fs &&
    stream._read === proto._read &&
    stream.open === proto.open &&
    stream.autoClose === true &&
    state.emitClose === true &&
    (typeof stream.fd === 'number' || (stream.pending && stream.path != null)) &&
    stream.bytesRead === 0 &&
    stream.readableLength === 0 &&
    stream.readableFlowing !== true &&
    !state.reading &&
    !state.needReadable &&
    stream.listenerCount('data') === 0 &&
    stream.listenerCount('readable') === 0
  );
}

/**
 * Hands a native file source's fd over once the stream has opened it.
 * Waiting for the stream's own open (instead of opening the path natively)
 * keeps its 'open'/'ready' events and its open errors (ENOENT, EACCES, ...)
 * exactly what they were; the stream stays paused with no 'data' or
 * 'readable' listener and no read() call, so it never reads a byte itself.
 */
function openedFile(stream) {
  const file = () => ({ fd: stream.fd, start: stream.start, end: stream.end === Infinity ? undefined : stream.end });
  if (!stream.pending) return Promise.resolve(file());
  return new Promise((resolve, reject) => {
    const settle = (err) => {
      stream.removeListener('ready', onReady);
      stream.removeListener('error', onError);
      stream.removeListener('close', onClose);
      if (err) reject(err);
      else resolve(file());
    };
    const onReady = () => settle();
    const onError = (err) => {
      passThrough.add(err);
      settle(err);
    };
    const onClose = () => settle(new ArchiveError('ERR_CANCELLED', 'the source stream was closed before its end'));
    stream.on('ready', onReady);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/**
 * While the engine reads a file source, its stream still belongs to the
 * caller: destroying it (with or without an error) cancels the ingest, as
 * it does for a stream read through JS, and the ingest rejects with that
 * error or ERR_CANCELLED.
 */
function watchFileSource(stream, cancel) {
  const watcher = { failure: null };
  const onError = (err) => {
    if (!watcher.failure) watcher.failure = err;
    passThrough.add(err);
    cancel();
  };
  const onClose = () => {
    if (!watcher.failure) watcher.failure = new ArchiveError('ERR_CANCELLED', 'the source stream was closed before its end');
    cancel();
  };
  stream.on('error', onError);
  stream.on('close', onClose);
  if (stream.destroyed) onClose();
  watcher.detach = () => {
    stream.removeListener('error', onError);
    stream.removeListener('close', onClose);
  };
  return watcher;
}

/**
 * Closes a source the engine read itself as reading it in JS would have.
 * Read to its end (the ingest succeeded), it ends: 'end', then 'close' (its
 * fd closed by autoClose), so `finished(stream)` resolves as after a JS read.
 * Otherwise destroy() closes it, with 'close' alone. Resolves after 'close',
 * so the caller sees a closed stream when the ingest settles.
 */
function closeFileSource(stream, readToEnd) {
  return new Promise((resolve) => {
    if (stream.closed) return resolve();
    stream.once('close', () => resolve());
    // A failed fd close must not become an uncaught 'error' event.
    stream.on('error', () => {});
    if (readToEnd && !stream.destroyed && !stream.readableEnded) {
      // Nothing is left to read: the engine read it all, and nothing may read the fd again.
      stream._read = () => {};
      // Both kinds destroy themselves after 'end' (a socket once its write side
      // finished: destroying it before that makes finished() fail).
      const selfDestroys = stream._readableState.autoDestroy && !stream.allowHalfOpen;
      if (!selfDestroys) stream.once('end', () => stream.destroy());
      stream.push(null);
      stream.resume();
    } else {
      stream.destroy();
    }
  });
}

/** The error fs.ReadStream emits for a failed read, from the engine's errno. */
function fileReadError(detail) {
  const { errno, message } = JSON.parse(detail);
  const [code, text] = util.getSystemErrorMap().get(-errno) ?? ['EIO', message];
  const err = new Error(`${code}: ${text}, read`);
  Object.assign(err, { errno: -errno, code, syscall: 'read' });
  passThrough.add(err);
  return err;
}

/**
 * Claims a pipe the engine can read itself: a net.Socket over a libuv Pipe
 * (a child process's stdout, a piped process.stdin) that nobody reads yet.
 * Its handle stops reading at once, and what its stream had already
 * buffered is taken out (`buffered`, handed over first), so every byte
 * reaches the engine exactly once. Returns null for anything else, which
 * keeps the JS path. Node and libuv never read the pipe again; the stream
 * is destroyed when the ingest settles, as a file source is.
 */
function claimPipe(stream) {
  if (process.platform === 'win32' || !(stream instanceof net.Socket)) return null;
  const handle = stream._handle;
  const state = stream._readableState;
  const untouched =
    handle != null &&
    handle.constructor && handle.constructor.name === 'Pipe' &&
    typeof handle.fd === 'number' && handle.fd >= 0 &&
    typeof handle.readStop === 'function' &&
    stream._read === net.Socket.prototype._read &&
    !stream.destroyed && !state.ended && !state.objectMode &&
    stream.readableFlowing !== true &&
    stream.listenerCount('data') === 0 &&
    stream.listenerCount('readable') === 0;
  if (!untouched) return null;
  handle.readStop();
  handle.reading = false;
  // Draining must not start the handle reading again.
  stream._read = () => {};
  const buffered = [];
  for (let chunk = stream.read(); chunk !== null; chunk = stream.read()) {
    const bytes = toBytes(chunk);
    if (bytes && bytes.length > 0) buffered.push(bytes);
  }
  return { fd: handle.fd, buffered };
}

/** A puller (as makePuller's) of the bytes a claimed pipe's stream had buffered. */
function bufferedPuller(buffers) {
  const pull = () => Promise.resolve(buffers.length > 0 ? Buffer.concat(buffers.splice(0)) : null);
  return { pull, detach() {}, state: { error: null }, wake() {} };
}

/** How much a puller reads ahead of the native side: bounds memory, saves round trips. */
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Hands a stream's data to the native side: pull() resolves the bytes read
 * so far (up to about READ_AHEAD_BYTES), null at the end, or rejects with the
 * stream's own error. Only one pull is ever outstanding; once the read-ahead
 * is full the stream's own backpressure pauses it.
 */
function makePuller(stream) {
  const state = { ended: false, error: null, wake: null, queue: [], queued: 0, gate: null, holdEnd: false };
  const fill = () => {
    while (!state.error && state.queued < READ_AHEAD_BYTES) {
      const chunk = stream.read();
      if (chunk === null) return;
      const bytes = toBytes(chunk);
      if (!bytes) {
        state.error = invalid(`the stream yielded a ${typeof chunk} chunk; streams must yield Buffers, Uint8Arrays or strings`);
        return;
      }
      if (bytes.length > 0) {
        state.queue.push(bytes);
        state.queued += bytes.length;
      }
    }
  };
  const wake = () => {
    const w = state.wake;
    state.wake = null;
    if (w) w();
  };
  const onReadable = () => { fill(); wake(); };
  const onEnd = () => { state.ended = true; wake(); };
  const onError = (err) => { state.error = err; wake(); };
  const onClose = () => {
    if (!state.ended && !state.error) {
      state.error = new ArchiveError('ERR_CANCELLED', 'the source stream was closed before its end');
    }
    wake();
  };
  stream.on('readable', onReadable);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.on('close', onClose);
  if (stream.readableEnded) state.ended = true;
  if (stream.errored) state.error = stream.errored;
  const pull = () => new Promise((resolve, reject) => {
    const attempt = () => {
      fill();
      if (state.error) return reject(state.error);
      if (state.queued > 0) {
        const out = state.queue.length === 1 ? state.queue[0] : Buffer.concat(state.queue, state.queued);
        state.queue = [];
        state.queued = 0;
        fill(); // restart the stream while the native side works
        return resolve(out);
      }
      if (state.ended && !(state.holdEnd && !state.gate.open)) return resolve(null);
      state.wake = attempt;
    };
    attempt();
  });
  const detach = () => {
    stream.removeListener('readable', onReadable);
    stream.removeListener('end', onEnd);
    stream.removeListener('error', onError);
    stream.removeListener('close', onClose);
  };
  return { pull, detach, state, wake };
}

/** { tags, host } that narrow which snapshots 'latest', a prefix or a listing consider. */
function checkFilter(o) {
  const out = { tags: checkTags(o.tags) };
  if (o.host !== undefined) {
    if (typeof o.host !== 'string') throw invalid('host must be a string');
    out.host = o.host;
  }
  return out;
}

function checkSnapshotSpec(spec, name) {
  if (typeof spec !== 'string') throw invalid(`${name} must be a string: 'latest', a snapshot id or a unique prefix of at least 8 hex digits`);
  return spec;
}

/** `until`: a promise the snapshot depends on (e.g. the producer's exit). */
function checkUntil(until) {
  if (until === undefined) return undefined;
  if (until === null || typeof until.then !== 'function') throw invalid('until must be a promise (or thenable)');
  return until;
}

/**
 * Holds an ingest's final end-of-stream back until `until` settles: resolved,
 * the ingest completes; rejected (at any time before that), every puller
 * fails with its reason, so the native side writes no snapshot.
 */
function makeGate(until, pullers) {
  if (until === undefined) return;
  const gate = { open: false };
  for (const p of pullers) p.state.gate = gate;
  const settle = (error) => {
    gate.open = true;
    for (const p of pullers) {
      if (error !== undefined && !p.state.error) p.state.error = error;
      p.wake();
    }
  };
  Promise.resolve(until).then(
    () => settle(undefined),
    (reason) => settle(reason instanceof Error ? reason : new ArchiveError('ERR_CANCELLED', `the until promise rejected: ${String(reason)}`)),
  );
  // Only the last item's end is held back: earlier items must end so the engine reads on.
  pullers[pullers.length - 1].state.holdEnd = true;
}

/** The host a snapshot records: os.hostname() unless the caller names one. */
function checkHost(value) {
  if (value === undefined) return os.hostname();
  if (typeof value !== 'string' || Buffer.byteLength(value) > 255) {
    throw invalid('options.host must be a string of at most 255 bytes (the default is os.hostname())');
  }
  return value;
}

/** createdAt is a test-only hook (retention tests need controlled timestamps). */
function checkTestCreatedAt(value) {
  if (value === undefined) return undefined;
  if (process.env.CONTAINERARCHIVE_TEST_CREATED_AT !== '1') {
    throw invalid('createdAt is a test-only option; it is accepted only with CONTAINERARCHIVE_TEST_CREATED_AT=1 in the environment');
  }
  const ms = parseDate(value, 'createdAt');
  return new Date(ms).toISOString();
}

const RETENTION_KEYS = ['keepLast', 'keepHourly', 'keepDays', 'keepWeeks', 'keepMonths', 'keepYears', 'keepWithin', 'keepTags', 'filter', 'groupBy', 'maxUnused', 'lockTimeoutMs', 'signal'];

function checkRetention(retention) {
  if (!isPlainObject(retention)) throw invalid('prune() needs a retention policy object, e.g. { keepLast: 7 }');
  const r = checkOptions(retention, 'retention', RETENTION_KEYS);
  const out = {};
  for (const key of ['keepLast', 'keepHourly', 'keepDays', 'keepWeeks', 'keepMonths', 'keepYears']) {
    if (r[key] !== undefined) {
      checkSafeInteger(r[key], key);
      out[key] = r[key];
    }
  }
  if (r.keepWithin !== undefined) {
    if (typeof r.keepWithin !== 'string') throw invalid("keepWithin must be a duration string such as '30d' or '12h'");
    out.keepWithin = r.keepWithin;
  }
  if (r.keepTags !== undefined) out.keepTags = checkTags(r.keepTags);
  if (r.filter !== undefined) {
    const f = checkOptions(r.filter, 'filter', ['tags']);
    out.filter = { tags: checkTags(f.tags) };
  }
  if (r.groupBy !== undefined) {
    // false: one policy for the whole repository, i.e. a single group.
    if (r.groupBy === false) out.groupBy = [];
    else if (Array.isArray(r.groupBy) && r.groupBy.every((k) => typeof k === 'string' && k.length > 0)) out.groupBy = r.groupBy;
    else throw invalid("groupBy must be false or an array of keys: 'host' or tag keys, e.g. ['host', 'service']");
  }
  if (r.maxUnused !== undefined) {
    let m = r.maxUnused;
    if (typeof m === 'string' && /^\d+(\.\d+)?%$/.test(m)) m = Number(m.slice(0, -1)) / 100;
    if (typeof m !== 'number' || !(m >= 0 && m <= 1)) throw invalid("maxUnused must be a fraction from 0 to 1 or a percentage string such as '10%'");
    out.maxUnused = m;
  }
  return out;
}

/** forget()'s ids: one string or a non-empty array of strings. */
function checkForgetIds(ids) {
  const list = typeof ids === 'string' ? [ids] : ids;
  if (!Array.isArray(list) || list.length === 0 || !list.every((id) => typeof id === 'string')) {
    throw invalid('forget() needs a snapshot id or a non-empty array of them: full ids or unique prefixes of at least 8 hex digits');
  }
  return list;
}

/**
 * verify's `subset`: { n, of } or 'n/of' (slice n of a cycle of `of` runs,
 * by pack id, as restic's --read-data-subset), or 'p%' (a fresh random
 * p percent). Passed on as the engine's text form, which it checks again.
 */
function checkSubset(subset) {
  if (subset === undefined) return undefined;
  const hint = "subset must be { n, of } with 1 <= n <= of <= 256 (e.g. { n: 1, of: 7 } or '1/7') or a percentage such as '10%'";
  if (isPlainObject(subset)) {
    checkOptions(subset, 'subset', ['n', 'of']);
    const { n, of } = subset;
    if (!Number.isSafeInteger(n) || !Number.isSafeInteger(of) || n < 1 || n > of || of > 256) throw invalid(hint);
    return `${n}/${of}`;
  }
  if (typeof subset !== 'string' || !/^(\d+\/\d+|\d+(\.\d+)?%)$/.test(subset)) throw invalid(hint);
  return subset;
}

function checkLockTimeout(value, fallback) {
  if (value === undefined) return fallback;
  checkSafeInteger(value, 'lockTimeoutMs');
  return value;
}

function parseDate(value, name) {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw invalid(`${name} must be an ISO-8601 string or a Date`);
  return ms;
}

const EVENTS = ['ingest:progress', 'ingest:complete', 'verify:progress', 'verify:error', 'prune:progress', 'restore:progress', 'copy:progress'];
/** As the engine's own progress events: at most about ten a second. */
const PROGRESS_INTERVAL_MS = 100;
const LEVELS = ['quick', 'standard', 'full'];

/** Reads a catalog through once, calling `visit` on each entry. */
async function eachEntry(entries, visit) {
  const { stream, list } = entries();
  try {
    for await (const e of list) visit(e);
  } finally {
    stream.destroy();
  }
}

/**
 * The byte ranges of the members `wanted` picks, in archive order. A hard
 * link whose target is not picked brings the target along (a second pass:
 * the target comes earlier in the tar), so that `tar -x` can create it.
 */
async function chooseMembers(entries, wanted) {
  const chosen = [];
  const picked = new Set();
  const targets = new Set();
  await eachEntry(entries, (e) => {
    if (!wanted(e)) return;
    chosen.push(memberRange(e));
    picked.add(normalise(e.path));
    if (e.type === 'hardlink' && e.link !== undefined) targets.add(normalise(e.link));
  });
  for (const p of picked) targets.delete(p);
  if (targets.size > 0) {
    const found = new Map();
    await eachEntry(entries, (e) => {
      const p = normalise(e.path);
      if (targets.has(p) && e.type !== 'hardlink') found.set(p, memberRange(e));
    });
    chosen.push(...found.values());
    chosen.sort((a, b) => a[0] - b[0]);
  }
  return chosen;
}

/** A catalog entry as callers see it. */
function publicEntry(e) {
  return { ...e };
}

/**
 * The member `path` of a catalog, as `tar -x` would leave it: the last
 * member of that path wins, and a hard link resolves to the member it
 * names (a second pass, since that member comes earlier in the tar).
 */
async function findMember(entries, path, prepared) {
  const lastOf = async (wanted) => {
    const { stream, list } = entries();
    let found = null;
    try {
      for await (const e of list) if (normalise(e.path) === wanted) found = e;
    } finally {
      stream.destroy();
    }
    return found;
  };
  const where = `item ${JSON.stringify(prepared.item)} of snapshot ${prepared.id}`;
  let entry = await lastOf(normalise(path));
  if (!entry) {
    throw new ArchiveError('ERR_FILE_NOT_FOUND', `${where} has no member ${JSON.stringify(path)}; see listFiles() for its members`);
  }
  for (let hops = 0; entry.type === 'hardlink' && hops < 8; hops++) {
    const target = entry.link === undefined ? null : await lastOf(normalise(entry.link));
    if (!target) throw new ArchiveError('ERR_FILE_NOT_FOUND', `${JSON.stringify(entry.path)} in ${where} is a hard link to ${JSON.stringify(entry.link)}, which the tar does not hold`);
    entry = target;
  }
  if (entry.sparse) {
    throw new ArchiveError('ERR_UNSUPPORTED_FORMAT', `${JSON.stringify(entry.path)} in ${where} is a GNU sparse file, which restoreFile() cannot expand; restore the whole item and extract it with tar`);
  }
  if (entry.type !== 'file' && entry.type !== 'other') {
    throw invalid(`${JSON.stringify(entry.path)} in ${where} is a ${entry.type}, not a file; restoreFiles() restores it with its header`);
  }
  return entry;
}

class ContainerArchive {
  #native;
  #lockTimeoutMs;
  #closed = false;
  #inflight = new Set();
  #listeners = new Map();
  #barriers = new Map();
  #nextBarrier = 1;
  #nextCancel = 1;

  constructor(native, path, lockTimeoutMs, token) {
    if (token !== CONSTRUCT) throw new TypeError('use ContainerArchive.init() or ContainerArchive.open()');
    this.#native = native;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.path = path;
    native.setEventSink((message) => {
      const { event, payload } = JSON.parse(message);
      if (event === '__barrier') {
        const resolve = this.#barriers.get(payload.token);
        this.#barriers.delete(payload.token);
        if (resolve) resolve();
        return;
      }
      this.#emit(event, payload);
    });
  }

  static async init(path, options) {
    checkPath(path);
    const native = new NativeArchive();
    const opts = checkInitOptions(options);
    const where = storageArgument(path, options ?? {});
    const threads = checkThreads(options?.threads);
    await native.init(path, JSON.stringify(opts), where, threads).catch((e) => { throw toArchiveError(e); });
    return new ContainerArchive(native, path, 0, CONSTRUCT);
  }

  static async open(path, options) {
    checkPath(path);
    const o = checkOptions(options, 'options', ['passphrase', 'lockTimeoutMs', 'threads', ...WHERE_OPTIONS]);
    const passphrase = checkPassphrase(o, 'open');
    const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, 0);
    const where = storageArgument(path, o);
    const threads = checkThreads(o.threads);
    const native = new NativeArchive();
    await native.open(path, JSON.stringify({ passphrase }), where, threads).catch((e) => { throw toArchiveError(e); });
    return new ContainerArchive(native, path, lockTimeoutMs, CONSTRUCT);
  }

  /** Runs a native call, tracked so close() can wait for it. */
  #track(fn) {
    if (this.#closed) return Promise.reject(new ArchiveError('ERR_CLOSED', 'the repository is closed; open it again with ContainerArchive.open()'));
    let promise;
    try {
      promise = Promise.resolve(fn());
    } catch (e) {
      promise = Promise.reject(e);
    }
    const settled = promise.catch((e) => { throw toArchiveError(e); });
    const marker = settled.catch(() => {});
    this.#inflight.add(marker);
    marker.then(() => this.#inflight.delete(marker));
    return settled;
  }

  /** Resolves once every event the native side queued before this call was dispatched. */
  #eventsDelivered() {
    const token = this.#nextBarrier++;
    return new Promise((resolve) => {
      // The event sink is weak (it never keeps the process alive), so hold the
      // loop open just until the barrier comes through the queue behind the events.
      const keepAlive = setInterval(() => {}, 0x7fffffff);
      const done = () => {
        clearInterval(keepAlive);
        resolve();
      };
      this.#barriers.set(token, done);
      if (!this.#native.barrier(token)) {
        this.#barriers.delete(token);
        done();
      }
    });
  }

  #emit(event, payload) {
    const handlers = this.#listeners.get(event);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(payload);
      } catch (err) {
        // A throwing listener must not break the operation; surface it like EventEmitter would.
        process.nextTick(() => { throw err; });
      }
    }
  }

  on(event, handler) {
    if (this.#closed) throw new ArchiveError('ERR_CLOSED', 'the repository is closed; open it again with ContainerArchive.open()');
    if (!EVENTS.includes(event)) throw invalid(`unknown event ${JSON.stringify(event)}; known: ${EVENTS.join(', ')}`);
    if (typeof handler !== 'function') throw invalid('handler must be a function');
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    const entry = (payload) => handler(payload);
    this.#listeners.get(event).add(entry);
    return { unsubscribe: () => { this.#listeners.get(event)?.delete(entry); } };
  }

  ingest(stream, options) {
    return this.#track(() => {
      const o = checkOptions(options, 'options', ['tags', 'host', 'items', 'until', 'lockTimeoutMs', 'createdAt', 'signal']);
      if (o.items !== undefined && (!Array.isArray(o.items) || o.items.length > 1)) {
        throw invalid('ingest() takes at most one entry in items; use ingestMulti() for several streams');
      }
      const spec = o.items && o.items[0] ? checkOptions(o.items[0], 'items[0]', ['name', 'type', 'size', 'catalog']) : {};
      const item = { name: spec.name ?? 'data', type: spec.type ?? 'data', size: spec.size, stream };
      if (spec.catalog !== undefined) item.catalog = spec.catalog;
      return this.#ingest([item], o, () => 'stream');
    });
  }

  ingestMulti(items, options) {
    return this.#track(() => {
      const o = checkOptions(options, 'options', ['tags', 'host', 'until', 'lockTimeoutMs', 'createdAt', 'signal']);
      if (!Array.isArray(items) || items.length === 0) throw invalid('ingestMulti() needs a non-empty array of { name, type, stream }');
      return this.#ingest(items, o, (i) => `items[${i}].stream`);
    });
  }

  async #ingest(items, options, streamName) {
    const specs = [];
    const opens = [];
    const names = new Set();
    items.forEach((item, i) => {
      if (!isPlainObject(item)) throw invalid(`items[${i}] must be an object { name, type, stream }`);
      checkOptions(item, `items[${i}]`, ['name', 'type', 'size', 'stream', 'catalog']);
      if (typeof item.name !== 'string' || item.name.length === 0) throw invalid(`items[${i}].name must be a non-empty string`);
      if (names.has(item.name)) throw invalid(`item name ${JSON.stringify(item.name)} is used twice; item names must be unique`);
      names.add(item.name);
      if (item.type !== undefined && typeof item.type !== 'string') throw invalid(`items[${i}].type must be a string`);
      if (item.size !== undefined) checkSafeInteger(item.size, `items[${i}].size`);
      opens.push(checkSource(item.stream, streamName(i)));
      if (item.catalog !== undefined && item.catalog !== 'tar' && item.catalog !== false) {
        throw invalid(`items[${i}].catalog must be 'tar' or false`);
      }
      const spec = { name: item.name, type: item.type ?? 'data', size: item.size ?? knownSize(item.stream) };
      if (item.catalog !== undefined) spec.catalog = item.catalog === 'tar';
      specs.push(spec);
    });
    const tagMap = checkTags(options.tags);
    const lockTimeoutMs = checkLockTimeout(options.lockTimeoutMs, this.#lockTimeoutMs);
    const createdAt = checkTestCreatedAt(options.createdAt);
    const host = checkHost(options.host);
    const until = checkUntil(options.until);
    const signal = checkSignal(options.signal, invalid);
    if (signal && signal.aborted) throw new AbortError(signal.reason);
    const sources = opens.map((open) => open());
    const cancelToken = this.#nextCancel++;
    // Claimed now, before anything else can start them reading. The last item
    // stays on the JS path when `until` holds its end back (makeGate).
    const files = sources.map((stream, i) => {
      const held = until !== undefined && i === sources.length - 1;
      if (held || stream !== items[i].stream || !isNativeFileSource(stream)) return null;
      stream.pause();
      return stream;
    });
    const pipes = sources.map((stream, i) => {
      const held = until !== undefined && i === sources.length - 1;
      return held || files[i] || stream !== items[i].stream ? null : claimPipe(stream);
    });
    let pullers = [];
    let watchers = [];
    // An abort stops the engine and every pending pull, and closes the
    // sources (without an error, as leaving a for-await loop does), so a
    // producer such as pg_dump sees its pipe close and stops.
    const onAbort = () => {
      this.#native.cancel(cancelToken);
      for (const p of pullers) {
        if (p && !p.state.error) {
          p.state.error = new AbortError(signal.reason);
          p.wake();
        }
      }
      for (const stream of sources) if (typeof stream.destroy === 'function' && !stream.destroyed) stream.destroy();
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    // Whether the engine read every source to its end (the ingest succeeded).
    let readToEnd = false;
    try {
      const opened = await Promise.all(files.map((stream) => stream && openedFile(stream)));
      opened.forEach((file, i) => {
        if (file) specs[i] = { ...specs[i], size: items[i].size, file };
      });
      pipes.forEach((pipe, i) => {
        if (pipe) specs[i] = { ...specs[i], pipe: { fd: pipe.fd } };
      });
      pullers = sources.map((stream, i) => {
        if (files[i]) return null;
        return pipes[i] ? bufferedPuller(pipes[i].buffered) : makePuller(stream);
      });
      makeGate(until, pullers.filter(Boolean));
      watchers = sources.map((stream, i) => (files[i] || pipes[i]) && watchFileSource(stream, () => this.#native.cancel(cancelToken)));
      if (watchers.some((w) => w && w.failure)) throw new Error('a file source closed before the ingest started');
      const spec = JSON.stringify({ tags: tagMap, lockTimeoutMs, createdAt, host, cancelToken });
      const json = await this.#native.ingest(JSON.stringify(specs), spec, (index) => pullers[index].pull());
      readToEnd = true;
      await this.#eventsDelivered();
      const snapshot = JSON.parse(json);
      this.#emit('ingest:complete', { snapshotId: snapshot.id });
      return snapshot;
    } catch (err) {
      if (signal && signal.aborted) throw new AbortError(signal.reason);
      if (passThrough.has(err)) throw err; // a file source's own open error
      const fileFailure = watchers.map((w) => w && w.failure).find((e) => e);
      if (fileFailure) throw fileFailure;
      // A failed source rejects with its own error (or our ArchiveError about it, e.g. a closed stream).
      const sourceError = pullers.map((p) => p && p.state.error).find((e) => e);
      if (sourceError !== undefined && typeof sourceError === 'object') passThrough.add(sourceError);
      if (sourceError !== undefined) throw sourceError;
      const mapped = toArchiveError(err);
      if (mapped.code === 'ERR_SOURCE_READ') throw fileReadError(mapped.message);
      throw mapped.code === 'ERR_SOURCE' ? new ArchiveError('ERR_CANCELLED', mapped.message) : mapped;
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
      for (const p of pullers) if (p) p.detach();
      for (const w of watchers) if (w) w.detach();
      // Wrappers we made (web streams, iterables) are ours to stop: that cancels the web stream or returns the iterator.
      sources.forEach((stream, i) => {
        if (stream !== items[i].stream && !stream.readableEnded) stream.destroy();
      });
      await Promise.all(sources.map((stream, i) => (files[i] || pipes[i]) && closeFileSource(stream, readToEnd)));
    }
  }

  restore(snapshotId, options) {
    return this.#track(async () => {
      checkSnapshotSpec(snapshotId, 'snapshotId');
      const o = checkOptions(options, 'options', ['item', 'tags', 'host', 'lockTimeoutMs', 'start', 'end', 'signal']);
      const { item, filter, lockTimeoutMs, signal } = this.#restoreTarget(o);
      const ranged = o.start !== undefined || o.end !== undefined;
      const start = o.start ?? 0;
      if (o.start !== undefined) checkSafeInteger(o.start, 'start');
      if (o.end !== undefined) checkSafeInteger(o.end, 'end');
      if (o.end !== undefined && start > o.end) throw invalid(`start (${start}) must not be greater than end (${o.end})`);
      return this.#abortable(signal, async () => {
        // 'latest' or a prefix is resolved once; the stream reads that snapshot even if a newer one appears.
        const prepared = JSON.parse(await this.#native.prepareRestore(snapshotId, JSON.stringify(filter), item));
        if (!ranged) {
          const run = (push) => this.#native.restore(prepared.id, item, lockTimeoutMs, push).then(() => ({ chunksRead: prepared.chunks }));
          return this.#restoreStream(prepared, prepared.size, run);
        }
        const end = Math.min(o.end ?? prepared.size, prepared.size);
        return this.#rangeStream(prepared, [[Math.min(start, end), end]], lockTimeoutMs);
      });
    });
  }

  /**
   * A restore stream under `signal`: an abort before it exists rejects with
   * an AbortError; after, it destroys the stream with one (stream.addAbortSignal),
   * which stops the engine's side and releases its lock.
   */
  async #abortable(signal, makeStream) {
    const stream = await underSignal(signal, () => {}, makeStream);
    if (!signal) return stream;
    if (signal.aborted) {
      stream.destroy();
      throw new AbortError(signal.reason);
    }
    return addAbortSignal(signal, stream);
  }

  /** Checks the options every restore form shares. */
  #restoreTarget(o) {
    if (o.item !== undefined && typeof o.item !== 'string') throw invalid('item must be a string');
    const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
    if (lockTimeoutMs > 0xffffffff) throw invalid('lockTimeoutMs is too large');
    const signal = checkSignal(o.signal, invalid);
    return { item: o.item ?? null, filter: checkFilter(o), lockTimeoutMs, signal };
  }

  /** A Readable of byte ranges of the prepared item (or, with `catalog`, of its tar catalog). */
  #rangeStream(prepared, ranges, lockTimeoutMs, catalog = false) {
    const total = ranges.reduce((sum, [a, b]) => sum + (b - a), 0);
    const spec = JSON.stringify({ item: prepared.item, catalog, ranges, lockTimeoutMs });
    const run = async (push) => JSON.parse(await this.#native.restoreRanges(prepared.id, spec, push));
    return this.#restoreStream(prepared, total, run);
  }

  /** The prepared item's catalog, or the ERR_NO_CATALOG the engine gives for it. */
  async #prepareCatalog(snapshotId, options, allowed) {
    checkSnapshotSpec(snapshotId, 'snapshotId');
    const o = checkOptions(options, 'options', ['item', 'tags', 'host', 'lockTimeoutMs', 'signal', ...allowed]);
    const { item, filter, lockTimeoutMs, signal } = this.#restoreTarget(o);
    for (const key of ['prefix', 'glob', 'path']) {
      if (o[key] !== undefined && typeof o[key] !== 'string') throw invalid(`${key} must be a string`);
    }
    if (o.paths !== undefined && (!Array.isArray(o.paths) || o.paths.some((p) => typeof p !== 'string'))) {
      throw invalid('paths must be an array of strings');
    }
    const prepared = JSON.parse(await this.#native.prepareRestore(snapshotId, JSON.stringify(filter), item));
    if (!prepared.catalog) {
      // The engine words the reason (never catalogued, or why the scan failed).
      await this.#native.restoreRanges(prepared.id, JSON.stringify({ item: prepared.item, catalog: true, ranges: [] }), () => Promise.resolve(true));
      throw new ArchiveError('ERR_INTERNAL', 'internal error: the engine found a catalog that prepareRestore did not; this is a bug, please report it');
    }
    const entries = () => {
      const stream = this.#rangeStream(prepared, [[0, prepared.catalog.size]], lockTimeoutMs, true);
      const damaged = () => new ArchiveError('ERR_CORRUPT', `the file catalog of item ${JSON.stringify(prepared.item)} of snapshot ${prepared.id} is damaged; run verify() to see the extent and repair() to fix what can be fixed`);
      return { stream, list: catalogEntries(stream, prepared.size, damaged) };
    };
    return { o, prepared, lockTimeoutMs, entries, signal };
  }

  /**
   * The members of a tar item's catalog, as an async iterable: `for await
   * (const entry of repo.listFiles(id, { item, prefix, glob }))`.
   */
  listFiles(snapshotId, options) {
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        let stream;
        try {
          const { o, entries } = await self.#prepareCatalog(snapshotId, options, ['prefix', 'glob']);
          const wanted = entryFilter(o);
          const opened = entries();
          stream = opened.stream;
          for await (const entry of opened.list) if (wanted(entry)) yield publicEntry(entry);
        } catch (e) {
          throw toArchiveError(e);
        } finally {
          if (stream) stream.destroy();
        }
      },
    };
  }

  /** One member of a tar item, as a Readable of its bytes (a hard link gives its target's). */
  restoreFile(snapshotId, options) {
    return this.#track(async () => {
      const { o, prepared, lockTimeoutMs, entries, signal } = await this.#prepareCatalog(snapshotId, options, ['path']);
      if (typeof o.path !== 'string' || o.path === '') throw invalid('path must be a non-empty string: the member to restore');
      return this.#abortable(signal, async () => {
        const entry = await findMember(entries, o.path, prepared);
        return this.#rangeStream(prepared, [[entry.offset, entry.offset + entry.size]], lockTimeoutMs);
      });
    });
  }

  /** A tar of some members of a tar item, with their original headers, by `paths`, `prefix` or `glob`. */
  restoreFiles(snapshotId, options) {
    return this.#track(async () => {
      const { o, prepared, lockTimeoutMs, entries, signal } = await this.#prepareCatalog(snapshotId, options, ['paths', 'prefix', 'glob']);
      if (o.paths === undefined && o.prefix === undefined && o.glob === undefined) {
        throw invalid('restoreFiles() needs paths, prefix or glob to choose the members');
      }
      return this.#abortable(signal, async () => {
        const chosen = await chooseMembers(entries, entryFilter(o));
        const ranges = [];
        for (const range of chosen) addRange(ranges, range);
        const members = ranges.length === 0 ? Readable.from([]) : this.#rangeStream(prepared, ranges, lockTimeoutMs);
        const out = new PassThrough();
        pipeline(members, out, { end: false }).then(() => out.end(TAR_END), (err) => out.destroy(err));
        return out;
      });
    });
  }

  #restoreStream(prepared, total, run) {
    let parked = null;
    let chunksRead;
    let destroyed = false;
    // restore:progress, shaped like ingest:progress; the manifest gives the total.
    let restored = 0;
    let lastEvent = -Infinity;
    const progress = (final) => {
      const now = performance.now();
      if (!final && now - lastEvent < PROGRESS_INTERVAL_MS) return;
      lastEvent = now;
      const event = {
        operation: 'restore',
        percentage: total === 0 ? 100 : Math.min(100, (restored * 100) / total),
        bytesProcessed: restored,
        message: `restoring ${prepared.item}`,
      };
      if (final) event.chunksRead = chunksRead;
      this.#emit('restore:progress', event);
    };
    const stream = new Readable({
      highWaterMark: 4 * 1024 * 1024,
      read() {
        const p = parked;
        parked = null;
        if (p) p.resolve(true);
      },
      destroy(err, callback) {
        destroyed = true;
        const p = parked;
        parked = null;
        if (p) p.reject(new ArchiveError('ERR_CANCELLED', 'the restore stream was destroyed'));
        callback(err);
      },
    });
    const push = (buffer) => {
      if (destroyed) return Promise.reject(new ArchiveError('ERR_CANCELLED', 'the restore stream was destroyed'));
      restored += buffer.length;
      progress(false);
      if (stream.push(buffer)) return Promise.resolve(true);
      return new Promise((resolve, reject) => { parked = { resolve, reject }; });
    };
    // Tracked, so close() waits until the native side has stopped.
    this.#track(() => run(push)).then(
      (outcome) => {
        if (destroyed) return;
        chunksRead = outcome.chunksRead;
        progress(true);
        stream.push(null);
      },
      (err) => { if (!destroyed) stream.destroy(err); },
    );
    return stream;
  }

  listSnapshots(filter) {
    return this.#track(async () => {
      const f = checkOptions(filter, 'filter', ['tags', 'host', 'after', 'before']);
      const tagsAndHost = checkFilter(f);
      const after = parseDate(f.after, 'after');
      const before = parseDate(f.before, 'before');
      const all = JSON.parse(await this.#native.listSnapshots(JSON.stringify(tagsAndHost)));
      return all.filter((s) => {
        const at = Date.parse(s.createdAt);
        if (after !== undefined && !(at > after)) return false;
        if (before !== undefined && !(at < before)) return false;
        return true;
      });
    });
  }

  getSnapshot(id, filter) {
    return this.#track(async () => {
      checkSnapshotSpec(id, 'id');
      const f = checkFilter(checkOptions(filter, 'filter', ['tags', 'host']));
      return JSON.parse(await this.#native.getSnapshot(id, JSON.stringify(f)));
    });
  }

  stats(options) {
    return this.#track(async () => {
      const o = checkOptions(options, 'options', ['lockTimeoutMs']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      return JSON.parse(await this.#native.stats(JSON.stringify({ lockTimeoutMs })));
    });
  }

  verify(options) {
    return this.#track(async () => {
      const o = checkOptions(options, 'options', ['level', 'subset', 'lockTimeoutMs', 'signal']);
      const subset = checkSubset(o.subset);
      // A subset is a sample of the data read: it implies level 'full'.
      const level = o.level ?? (subset === undefined ? 'standard' : 'full');
      if (!LEVELS.includes(level)) throw invalid(`level must be one of ${LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
      if (subset !== undefined && level !== 'full') throw invalid(`subset reads a part of the pack data, so it needs level 'full', not ${JSON.stringify(level)}`);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      const signal = checkSignal(o.signal, invalid);
      const cancelToken = this.#nextCancel++;
      const json = await underSignal(signal, () => this.#native.cancel(cancelToken), () =>
        this.#native.verify(JSON.stringify({ level, subset, lockTimeoutMs, cancelToken })));
      await this.#eventsDelivered();
      return JSON.parse(json);
    });
  }

  repair(options) {
    return this.#track(async () => {
      const o = checkOptions(options, 'options', ['lockTimeoutMs', 'signal']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      const signal = checkSignal(o.signal, invalid);
      const cancelToken = this.#nextCancel++;
      return JSON.parse(await underSignal(signal, () => this.#native.cancel(cancelToken), () =>
        this.#native.repair(JSON.stringify({ lockTimeoutMs, cancelToken }))));
    });
  }

  reindex(options) {
    return this.#track(async () => {
      const o = checkOptions(options, 'options', ['lockTimeoutMs']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      return JSON.parse(await this.#native.reindex(JSON.stringify({ lockTimeoutMs })));
    });
  }

  unlock(options) {
    return this.#track(async () => {
      const o = checkOptions(options, 'options', ['force']);
      if (o.force !== undefined && typeof o.force !== 'boolean') throw invalid('force must be a boolean');
      return this.#native.unlock(JSON.stringify({ force: o.force === true }));
    });
  }

  prune(retention, dryRun = false) {
    return this.#track(async () => {
      const rules = checkRetention(retention);
      if (typeof dryRun !== 'boolean') throw invalid('dryRun must be a boolean');
      const lockTimeoutMs = checkLockTimeout(retention.lockTimeoutMs, this.#lockTimeoutMs);
      if (lockTimeoutMs > 0xffffffff) throw invalid('lockTimeoutMs is too large');
      const signal = checkSignal(retention.signal, invalid);
      const cancelToken = this.#nextCancel++;
      const json = await underSignal(signal, () => this.#native.cancel(cancelToken), () =>
        this.#native.prune(JSON.stringify(rules), dryRun, lockTimeoutMs, cancelToken));
      await this.#eventsDelivered();
      return JSON.parse(json);
    });
  }

  listKeys() {
    return this.#track(async () => JSON.parse(await this.#native.listKeys()));
  }

  addKey(passphrase, options) {
    return this.#track(async () => {
      checkNewPassphrase(passphrase, 'addKey');
      const o = checkOptions(options, 'options', ['lockTimeoutMs']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      return JSON.parse(await this.#native.addKey(passphrase, JSON.stringify({ lockTimeoutMs })));
    });
  }

  removeKey(id, options) {
    return this.#track(async () => {
      if (typeof id !== 'string' || id.length === 0) throw invalid('removeKey() needs a key id (a string; see listKeys()), or a unique prefix of at least 8 characters');
      const o = checkOptions(options, 'options', ['lockTimeoutMs']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      return this.#native.removeKey(id, JSON.stringify({ lockTimeoutMs }));
    });
  }

  changePassphrase(newPassphrase, options) {
    return this.#track(async () => {
      checkNewPassphrase(newPassphrase, 'changePassphrase');
      const o = checkOptions(options, 'options', ['lockTimeoutMs']);
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      return JSON.parse(await this.#native.changePassphrase(newPassphrase, JSON.stringify({ lockTimeoutMs })));
    });
  }

  forget(ids, options) {
    return this.#track(async () => {
      const list = checkForgetIds(ids);
      const o = checkOptions(options, 'options', ['dryRun', 'prune', 'lockTimeoutMs']);
      for (const key of ['dryRun', 'prune']) {
        if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalid(`${key} must be a boolean`);
      }
      const lockTimeoutMs = checkLockTimeout(o.lockTimeoutMs, this.#lockTimeoutMs);
      const spec = { dryRun: o.dryRun === true, prune: o.prune === true, lockTimeoutMs };
      const json = await this.#native.forget(JSON.stringify(list), JSON.stringify(spec));
      await this.#eventsDelivered();
      return JSON.parse(json);
    });
  }

  /**
   * Copies the snapshots matching `filter` into `target`, another open
   * archive (skipping those it already has, by id); resolves what was done.
   */
  copySnapshots(target, filter) {
    return this.#track(async () => {
      if (!(target instanceof ContainerArchive)) {
        throw invalid('target must be a ContainerArchive from ContainerArchive.init() or ContainerArchive.open()');
      }
      if (target.#closed) throw new ArchiveError('ERR_CLOSED', 'the target repository is closed; open it again with ContainerArchive.open()');
      const f = checkOptions(filter, 'filter', ['tags', 'host', 'after', 'before', 'lockTimeoutMs', 'signal']);
      const signal = checkSignal(f.signal, invalid);
      const spec = {
        ...checkFilter(f),
        after: parseDate(f.after, 'after'),
        before: parseDate(f.before, 'before'),
        lockTimeoutMs: checkLockTimeout(f.lockTimeoutMs, this.#lockTimeoutMs),
        cancelToken: this.#nextCancel++,
      };
      const run = underSignal(signal, () => this.#native.cancel(spec.cancelToken), () =>
        this.#native.copySnapshots(target.#native, JSON.stringify(spec)));
      // target.close() waits for the copy too.
      const marker = run.catch(() => {});
      target.#inflight.add(marker);
      marker.then(() => target.#inflight.delete(marker));
      const json = await run;
      await this.#eventsDelivered();
      return JSON.parse(json);
    });
  }

  /** Waits for running operations, then releases the native repository. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#inflight]);
    this.#native.close();
    this.#listeners.clear();
  }
}

const CONSTRUCT = Symbol('construct');

module.exports = { ContainerArchive, ArchiveError, AbortError };
