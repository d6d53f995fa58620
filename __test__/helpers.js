'use strict';

// Shared helpers for the Node.js test suite. Only Node built-ins.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');
const { after } = require('node:test');
const { walkFiles, xorshift32, sha256 } = require('./common');

const KiB = 1024;
const MiB = 1024 * 1024;

const PKG_DIR = path.resolve(__dirname, '..');

// Hang guard (a watchdog, not synchronisation): once all tests of a file are done, the
// process must be able to exit. If a leaked native handle keeps it alive, node --test would
// wait forever; instead fail the file after 20 s. The timer is unref'd, so it never delays a
// healthy exit.
after(() => {
  const timer = setTimeout(() => {
    process.stderr.write('hang guard: process still alive 20 s after its tests finished (leaked handle or un-cancelled native work?)\n');
    process.exit(1);
  }, 20000);
  timer.unref();
});

// ---------------------------------------------------------------------------
// Temp dirs
// ---------------------------------------------------------------------------

function makeTmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ca-'));
}

function removeTmp(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** A fresh temp dir removed after test `t` finishes. */
function tmpFor(t) {
  const dir = makeTmp();
  t.after(() => removeTmp(dir));
  return dir;
}

// ---------------------------------------------------------------------------
// Deterministic pseudo-random data (xorshift32)
// ---------------------------------------------------------------------------

/** `size` bytes of full-entropy pseudo-random data (incompressible). */
function randomBytes(size, seed = 1) {
  const words = new Uint32Array(Math.ceil(size / 4));
  const next = xorshift32(seed);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return Buffer.from(words.buffer, 0, size);
}

/**
 * `size` bytes of pseudo-random but compressible-ish data: printable 6-bit
 * alphabet, and about half of the 4 KiB blocks repeat an earlier block (gives
 * an LZ compressor something to find, like a dump/log would).
 */
function textishBytes(size, seed = 1) {
  const words = new Uint32Array(Math.ceil(size / 4));
  const next = xorshift32(seed);
  for (let i = 0; i < words.length; i++) words[i] = (next() & 0x3f3f3f3f) | 0x40404040;
  const buf = Buffer.from(words.buffer, 0, size);
  const block = 4 * KiB;
  const blocks = Math.floor(size / block);
  for (let b = 2; b < blocks; b++) {
    const r = next();
    if (r & 1) {
      const src = (r >>> 1) % b;
      buf.copy(buf, b * block, src * block, src * block + block);
    }
  }
  return buf;
}

/**
 * A Readable.from() over one buffer or a list of buffers, yielding slices of
 * varied (deterministic) sizes between 1 byte and `maxPiece`.
 */
function chunkedStream(bufs, seed = 7, { maxPiece = 256 * KiB, objectMode } = {}) {
  const list = Buffer.isBuffer(bufs) ? [bufs] : bufs;
  const next = xorshift32(seed);
  function* gen() {
    for (const buf of list) {
      let off = 0;
      while (off < buf.length) {
        const r = next();
        // mostly large pieces, sometimes tiny ones
        const n = (r & 7) === 0 ? 1 + (r >>> 3) % 64 : 1 + (r >>> 3) % maxPiece;
        const end = Math.min(buf.length, off + n);
        yield buf.subarray(off, end);
        off = end;
      }
    }
  }
  return objectMode === undefined ? Readable.from(gen()) : Readable.from(gen(), { objectMode });
}

// ---------------------------------------------------------------------------
// Streams and hashes
// ---------------------------------------------------------------------------

function sha256Many(bufs) {
  const h = crypto.createHash('sha256');
  for (const b of bufs) h.update(b);
  return h.digest('hex');
}

async function collect(stream) {
  const parts = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Consumes a stream, returning { sha256, length } without keeping the data. */
async function hashStream(stream) {
  const h = crypto.createHash('sha256');
  let length = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    length += chunk.length;
  }
  return { sha256: h.digest('hex'), length };
}

/** Asserts that `actual` (Buffer) equals `expected` without dumping megabytes on failure. */
function assertSameBytes(actual, expected, what = 'restored data') {
  assert.ok(Buffer.isBuffer(actual), `${what} is not a Buffer`);
  assert.equal(actual.length, expected.length, `${what}: length differs`);
  if (!actual.equals(expected)) {
    let i = 0;
    while (i < actual.length && actual[i] === expected[i]) i++;
    assert.fail(`${what}: bytes differ first at offset ${i}`);
  }
}

/** Restores `id` (optionally one item) and asserts it equals `expected` (Buffer or array of Buffers). */
async function assertRestores(repo, id, expected, options) {
  const stream = options === undefined ? await repo.restore(id) : await repo.restore(id, options);
  assertIsReadable(stream);
  const list = Buffer.isBuffer(expected) ? [expected] : expected;
  const want = { sha256: sha256Many(list), length: list.reduce((n, b) => n + b.length, 0) };
  const got = await hashStream(stream);
  assert.equal(got.length, want.length, `restore of ${id} ${JSON.stringify(options || {})}: length differs`);
  assert.equal(got.sha256, want.sha256, `restore of ${id} ${JSON.stringify(options || {})}: content differs`);
}

function assertIsReadable(stream) {
  assert.ok(stream instanceof Readable, 'restore() must resolve to a node:stream Readable');
}

// ---------------------------------------------------------------------------
// Error assertions
// ---------------------------------------------------------------------------

/**
 * Calls `fn` (a function returning a promise, or a promise) and asserts that it
 * REJECTS (not throws synchronously) with an Error carrying `code`.
 * Returns the error.
 */
async function rejectsWithCode(fn, code) {
  let promise;
  if (typeof fn === 'function') {
    try {
      promise = fn();
    } catch (e) {
      assert.fail(`expected a rejected promise with ${code}, but the call threw synchronously: ${e && e.code} ${e && e.message}`);
    }
  } else {
    promise = fn;
  }
  assert.ok(promise && typeof promise.then === 'function', `expected a promise (for ${code})`);
  let err;
  let resolved = false;
  let value;
  try {
    value = await promise;
    resolved = true;
  } catch (e) {
    err = e;
  }
  if (resolved) {
    // don't leave a live Readable behind
    if (value && typeof value.destroy === 'function') value.destroy();
    assert.fail(`expected rejection with ${code}, but it resolved`);
  }
  assertArchiveError(err, code);
  return err;
}

function assertArchiveError(err, code) {
  assert.ok(err instanceof Error, `rejection must be an Error, got ${typeof err}: ${err}`);
  assert.equal(typeof err.code, 'string', `error must have a string code (message: ${err.message})`);
  assert.match(err.code, /^ERR_/, `error code must start with ERR_ (message: ${err.message})`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, 'error message must be non-empty');
  const { ArchiveError } = require(PKG_DIR);
  if (typeof ArchiveError === 'function') {
    assert.ok(err instanceof ArchiveError, `error ${err.code} must be an ArchiveError`);
  }
  if (code !== undefined) assert.equal(err.code, code, `wrong code, message: ${err.message}`);
}

// ---------------------------------------------------------------------------
// File tree helpers
// ---------------------------------------------------------------------------


/** { relativePath: 'dir' | 'file:<sha256>' | 'other' } for everything under `dir`. */
function treeState(dir) {
  const state = {};
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      const rel = path.relative(dir, p);
      if (ent.isDirectory()) {
        state[rel] = 'dir';
        stack.push(p);
      } else if (ent.isFile()) {
        state[rel] = 'file:' + sha256(fs.readFileSync(p));
      } else {
        state[rel] = 'other';
      }
    }
  }
  return state;
}

const SNAPSHOT_KEYS = ['id', 'createdAt', 'tags', 'items', 'newChunks', 'reusedChunks', 'originalSize', 'storedSize'];

/** Checks the documented shape of a Snapshot. */
function assertSnapshotShape(snap) {
  assert.ok(snap && typeof snap === 'object', 'snapshot must be an object');
  for (const k of SNAPSHOT_KEYS) assert.ok(k in snap, `snapshot lacks "${k}"`);
  assert.match(snap.id, /^[0-9a-f]{64}$/, 'snapshot id must be 64 lowercase hex chars');
  assert.equal(typeof snap.createdAt, 'string');
  assert.match(snap.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$/, `createdAt not ISO-8601 UTC: ${snap.createdAt}`);
  assert.ok(Number.isFinite(Date.parse(snap.createdAt)), 'createdAt must parse with Date');
  assert.ok(snap.tags && typeof snap.tags === 'object' && !Array.isArray(snap.tags), 'tags must be an object');
  assert.ok(Array.isArray(snap.items), 'items must be an array');
  for (const item of snap.items) {
    assert.equal(typeof item.name, 'string');
    assert.equal(typeof item.type, 'string');
    assert.ok(Number.isInteger(item.size) && item.size >= 0, 'item.size must be a non-negative integer');
    assert.ok(Number.isInteger(item.chunks) && item.chunks >= 0, 'item.chunks must be a non-negative integer');
  }
  for (const k of ['newChunks', 'reusedChunks', 'originalSize', 'storedSize']) {
    assert.ok(Number.isInteger(snap[k]) && snap[k] >= 0, `${k} must be a non-negative integer, got ${snap[k]}`);
  }
}

function loadPackage() {
  return require(PKG_DIR);
}

/**
 * A fresh repository in a temporary directory, beside `input.bin` holding
 * `size` seeded random bytes: { root, repo, file, data }. `closeRepoWithFile`
 * closes and removes it.
 */
async function repoWithFile(size, seed) {
  const root = makeTmp();
  const repo = await loadPackage().ContainerArchive.init(path.join(root, 'repo'));
  const data = randomBytes(size, seed);
  const file = path.join(root, 'input.bin');
  fs.writeFileSync(file, data);
  return { root, repo, file, data };
}

async function closeRepoWithFile(fixture) {
  if (!fixture) return;
  try {
    await fixture.repo.close();
  } finally {
    removeTmp(fixture.root);
  }
}

module.exports = {
  KiB,
  MiB,
  PKG_DIR,
  makeTmp,
  removeTmp,
  tmpFor,
  xorshift32,
  randomBytes,
  textishBytes,
  chunkedStream,
  sha256,
  sha256Many,
  collect,
  hashStream,
  assertSameBytes,
  assertRestores,
  assertIsReadable,
  rejectsWithCode,
  assertArchiveError,
  walkFiles,
  treeState,
  assertSnapshotShape,
  loadPackage,
  repoWithFile,
  closeRepoWithFile,
};
