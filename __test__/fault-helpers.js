'use strict';

// Fault-injection helpers for the integrity suite (corruption, locks, kill, multi-process).
// Node built-ins only. This file does NOT require node:test (or ./helpers), because child
// processes spawned by the tests require it too.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { Readable } = require('node:stream');
const { walkFiles, xorshift32, sha256 } = require('./common');

const KiB = 1024;
const MiB = 1024 * 1024;
const PKG_DIR = path.resolve(__dirname, '..');
const FAULT_HELPERS = __filename;

/** Small packs, small chunks, small parity groups: a few MiB make many packs and groups. */
const SMALL_REPO = Object.freeze({
  packTargetSize: 65536,
  chunking: { minSize: 4096, avgSize: 16384, maxSize: 65536 },
  parity: { dataShards: 4, parityShards: 1 },
});

const ISSUE_KINDS = [
  'config', 'key', 'snapshot', 'index', 'missing-chunk', 'missing-pack', 'pack-size',
  'missing-idx', 'idx', 'unindexed-pack', 'pack', 'parity', 'chunk', 'lock',
];

const HEX64 = /^[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------
// Deterministic data (xorshift32), usable in children and the parent alike
// ---------------------------------------------------------------------------

/**
 * Yields `total` bytes of incompressible pseudo-random data in pieces of `piece` bytes (a
 * multiple of 4). `onPiece(index, offset)` is called before each piece is yielded and
 * `onEnd()` after the last one was consumed (when the reader asks for more).
 */
function* genPieces(seed, total, piece = 256 * KiB, { onPiece, onEnd } = {}) {
  assert.equal(piece % 4, 0);
  const next = xorshift32(seed);
  let offset = 0;
  let index = 0;
  while (offset < total) {
    const n = Math.min(piece, total - offset);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = next();
    if (onPiece) onPiece(index, offset);
    yield Buffer.from(words.buffer, 0, n);
    offset += n;
    index++;
  }
  if (onEnd) onEnd();
}

/** { sha256, length } of genPieces(seed, total, piece) without keeping the data. */
function genDigest(seed, total, piece = 256 * KiB) {
  const h = crypto.createHash('sha256');
  let length = 0;
  for (const b of genPieces(seed, total, piece)) {
    h.update(b);
    length += b.length;
  }
  return { sha256: h.digest('hex'), length };
}

/** A byte stream over a buffer (or list of buffers) in `piece`-sized slices. */
function streamOf(bufs, piece = 64 * KiB) {
  const list = Buffer.isBuffer(bufs) ? [bufs] : bufs;
  function* gen() {
    for (const b of list) for (let o = 0; o < b.length; o += piece) yield b.subarray(o, Math.min(b.length, o + piece));
  }
  return Readable.from(gen());
}

function randomHex(bytes) {
  return crypto.randomBytes(bytes).toString('hex');
}

// ---------------------------------------------------------------------------
// Repository layout
// ---------------------------------------------------------------------------

function names(dir) {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.tmp-')).sort();
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
}

const rel = {
  pack: (id) => path.join('packs', 'data', `${id}.pack`),
  idx: (id) => path.join('packs', 'data', `${id}.idx`),
  index: (name) => path.join('index', name),
  snapshot: (id) => path.join('snapshots', id),
  parity: (name) => path.join('packs', 'parity', name),
  lock: (name) => path.join('locks', name),
};

function packIds(dir) {
  return names(path.join(dir, 'packs', 'data')).filter((n) => n.endsWith('.pack')).map((n) => n.slice(0, -5));
}
function idxIds(dir) {
  return names(path.join(dir, 'packs', 'data')).filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4));
}
function indexFiles(dir) {
  return names(path.join(dir, 'index'));
}
function snapshotFiles(dir) {
  return names(path.join(dir, 'snapshots')).filter((n) => HEX64.test(n));
}
function groupFiles(dir) {
  return names(path.join(dir, 'packs', 'parity')).filter((n) => n.endsWith('.group'));
}
function shardFiles(dir) {
  return names(path.join(dir, 'packs', 'parity')).filter((n) => n.endsWith('.par'));
}
function lockFiles(dir) {
  return names(path.join(dir, 'locks')).filter((n) => n.endsWith('.json'));
}

/** Every `.tmp-*` file anywhere in the repository (relative paths). */
function tmpLeftovers(dir) {
  return walkFiles(dir)
    .filter((p) => path.basename(p).startsWith('.tmp-'))
    .map((p) => path.relative(dir, p))
    .sort();
}

// ---------------------------------------------------------------------------
// Unencrypted format parsing (docs/FORMAT.md), to know which chunk lives where
// ---------------------------------------------------------------------------

/** Associated data of each sealed kind of metadata (FORMAT.md, Sealing). */
const AAD = Object.freeze({
  packHeader: 'containerarchive:pack-header',
  index: 'containerarchive:index',
  snapshot: 'containerarchive:snapshot',
  parity: 'containerarchive:parity',
});

/** `plain || SHA-256(aad || plain)`: how an unencrypted repository seals metadata. */
function sealPlain(aad, plain) {
  const sum = crypto.createHash('sha256').update(aad).update(plain).digest();
  return Buffer.concat([plain, sum]);
}

/** The plaintext of a file sealed by `sealPlain`; throws if its checksum does not match. */
function unsealPlain(aad, stored) {
  const plain = stored.subarray(0, stored.length - 32);
  assert.ok(sealPlain(aad, plain).equals(stored), `the ${aad} checksum trailer does not match`);
  return plain;
}

function parseEntries(buf, off) {
  const n = buf.readUInt32LE(off);
  const entries = [];
  let p = off + 4;
  for (let i = 0; i < n; i++) {
    entries.push({
      chunk: buf.subarray(p, p + 32).toString('hex'),
      encoding: buf[p + 32],
      length: buf.readUInt32LE(p + 33),
      rawLength: buf.readUInt32LE(p + 37),
    });
    p += 41;
  }
  assert.equal(p, buf.length, 'pack header entries must fill the header exactly');
  return entries;
}

/** Entries of an unencrypted pack, read from the pack file's own header. */
function readPackHeader(dir, id) {
  const buf = fs.readFileSync(path.join(dir, rel.pack(id)));
  assert.equal(buf.subarray(buf.length - 8).toString('latin1'), 'CAPACK01');
  const hlen = buf.readUInt32LE(buf.length - 12);
  return parseEntries(unsealPlain(AAD.packHeader, buf.subarray(buf.length - 12 - hlen, buf.length - 12)), 0);
}

/** Map packId -> [chunk ids] for an unencrypted repository (from the pack headers). */
function packChunkMap(dir) {
  const map = new Map();
  for (const id of packIds(dir)) map.set(id, readPackHeader(dir, id).map((e) => e.chunk));
  return map;
}

/** Map snapshotId -> Set(chunk ids) for an unencrypted repository. */
function snapshotChunkMap(dir) {
  const map = new Map();
  for (const id of snapshotFiles(dir)) {
    const m = JSON.parse(unsealPlain(AAD.snapshot, fs.readFileSync(path.join(dir, rel.snapshot(id)))).toString('utf8'));
    const set = new Set();
    for (const item of m.items) for (const c of item.chunks) set.add(c);
    map.set(id, set);
  }
  return map;
}

/** Snapshot ids (sorted) that reference at least one chunk stored in one of `packs`. */
function snapshotsUsingPacks(dir, packs) {
  const pc = packChunkMap(dir);
  const lost = new Set();
  for (const p of packs) for (const c of pc.get(p) || []) lost.add(c);
  const out = [];
  for (const [sid, chunks] of snapshotChunkMap(dir)) {
    for (const c of chunks) {
      if (lost.has(c)) {
        out.push(sid);
        break;
      }
    }
  }
  return out.sort();
}

/**
 * Parity groups of an UNENCRYPTED repository: [{ name, packs }], where `packs` are the
 * pack ids a `.group` manifest names (as 64-hex text or as raw 32-byte ids).
 */
function parityGroups(dir) {
  const packs = packIds(dir);
  return groupFiles(dir).map((name) => {
    const buf = fs.readFileSync(path.join(dir, rel.parity(name)));
    const text = buf.toString('latin1');
    const members = packs.filter((p) => text.includes(p) || buf.includes(Buffer.from(p, 'hex')));
    return { name, packs: members };
  });
}

// ---------------------------------------------------------------------------
// Damage
// ---------------------------------------------------------------------------

function flipByte(file, offset, mask = 0x01) {
  const buf = fs.readFileSync(file);
  assert.ok(offset < buf.length, `flipByte: ${file} has only ${buf.length} bytes`);
  buf[offset] ^= mask;
  fs.writeFileSync(file, buf);
}

function truncateBy(file, n) {
  const size = fs.statSync(file).size;
  assert.ok(size > n);
  fs.truncateSync(file, size - n);
}

function overwrite(file, offset, bytes) {
  const buf = fs.readFileSync(file);
  assert.ok(offset + bytes.length <= buf.length, `overwrite: ${file} too short`);
  const before = Buffer.from(buf);
  bytes.copy(buf, offset);
  assert.ok(!buf.equals(before), `overwrite of ${file} changed nothing`);
  fs.writeFileSync(file, buf);
}

function emptyDir(dir) {
  for (const n of fs.readdirSync(dir)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------

/** Writes a lock record by hand; returns its absolute path. */
function writeLock(dir, { id = randomHex(16), exclusive, pid = process.pid, hostname = os.hostname(), createdAt, refreshedAt } = {}) {
  const now = new Date().toISOString();
  const record = {
    id,
    exclusive: Boolean(exclusive),
    hostname,
    pid,
    createdAt: createdAt || now,
    refreshedAt: refreshedAt || createdAt || now,
  };
  const file = path.join(dir, 'locks', `${id}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(record, null, 2));
  return file;
}

/** The pid of a process that has already exited (a child `node -e ""`, awaited). */
function deadPid() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid;
    child.on('error', reject);
    child.on('exit', () => resolve(pid));
  });
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/**
 * Spawns `node -e script ...args`. Returns { child, exit, stderr(), lines, onLine(fn) }:
 * `exit` resolves { code, signal } (never rejects), `lines` collects stdout lines.
 */
function spawnNode(script, args = [], { env } = {}) {
  const childEnv = { ...process.env, ...(env || {}) };
  delete childEnv.NODE_TEST_CONTEXT; // the child is a plain script, not a test file
  const child = spawn(process.execPath, ['-e', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: childEnv,
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { err += d; });
  const lines = [];
  const listeners = [];
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    for (const fn of listeners) fn(line);
  });
  const stdoutDone = new Promise((resolve) => rl.on('close', resolve));
  const exit = new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: null, signal: null, error: e }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  }).then(async (r) => {
    await stdoutDone; // every line has been delivered
    return r;
  });
  child.stdin.on('error', () => {}); // EPIPE after a kill must not crash the test process
  return {
    child,
    exit,
    lines,
    stderr: () => err,
    onLine(fn) {
      listeners.push(fn);
    },
    /** Resolves with the first stdout line matching `re` (rejects if the child exits first). */
    waitLine(re) {
      const found = lines.find((l) => re.test(l));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        listeners.push((l) => { if (re.test(l)) resolve(l); });
        exit.then((r) => reject(new Error(`child exited (${JSON.stringify(r)}) before printing ${re}; stderr:\n${err}`)));
      });
    },
  };
}

// ---------------------------------------------------------------------------
// Results and assertions
// ---------------------------------------------------------------------------

function fmt(errors) {
  return JSON.stringify(errors, null, 1);
}

function assertIssueShape(issue) {
  assert.ok(issue && typeof issue === 'object', 'an issue must be an object');
  assert.ok(ISSUE_KINDS.includes(issue.kind), `unknown issue kind ${JSON.stringify(issue.kind)}`);
  assert.equal(typeof issue.error, 'string', 'issue.error must be a string');
  assert.ok(issue.error.length > 0, 'issue.error must not be empty');
  for (const k of ['pack', 'chunk', 'snapshot']) {
    if (issue[k] !== undefined && issue[k] !== null) assert.equal(typeof issue[k], 'string', `issue.${k} must be a string`);
  }
}

function assertVerifyShape(result, level) {
  assert.ok(result && typeof result === 'object', 'verify must resolve to an object');
  assert.equal(typeof result.ok, 'boolean', 'verify().ok must be a boolean');
  assert.equal(result.level, level, 'verify().level');
  assert.ok(Array.isArray(result.errors), 'verify().errors must be an array');
  for (const e of result.errors) assertIssueShape(e);
  assert.equal(result.ok, result.errors.length === 0, `ok must be true exactly when there are no errors: ${fmt(result.errors)}`);
  const c = result.checked;
  assert.ok(c && typeof c === 'object', 'verify().checked must be an object');
  for (const k of ['snapshots', 'packs', 'chunks', 'bytes']) {
    assert.ok(Number.isSafeInteger(c[k]) && c[k] >= 0, `checked.${k} must be a non-negative integer, got ${c[k]}`);
  }
}

function assertRepairShape(r) {
  assert.ok(r && typeof r === 'object', 'repair must resolve to an object');
  assert.equal(typeof r.indexRebuilt, 'boolean', 'repair().indexRebuilt');
  for (const k of ['packsRepaired', 'parityRewritten', 'locksRemoved']) {
    assert.ok(Number.isSafeInteger(r[k]) && r[k] >= 0, `repair().${k} must be a non-negative integer, got ${r[k]}`);
  }
  assert.ok(Array.isArray(r.errors), 'repair().errors must be an array');
  for (const e of r.errors) assertIssueShape(e);
  assert.ok(Array.isArray(r.unrecoverable), 'repair().unrecoverable must be an array');
  for (const u of r.unrecoverable) {
    assert.ok(u.pack === null || typeof u.pack === 'string', 'unrecoverable[].pack must be a string or null');
    assert.ok(Array.isArray(u.snapshots), 'unrecoverable[].snapshots must be an array');
    for (const s of u.snapshots) assert.match(s, HEX64);
  }
}

async function verify(repo, level) {
  const result = await repo.verify({ level });
  assertVerifyShape(result, level);
  return result;
}

/** verify at `level` and assert it is clean. */
async function assertHealthy(repo, level = 'full', what = '') {
  const result = await verify(repo, level);
  assert.equal(result.ok, true, `verify(${level}) ${what} must be ok, errors: ${fmt(result.errors)}`);
  assert.deepEqual(result.errors, []);
  return result;
}

/**
 * Asserts that `result` has an issue of `kind` whose error text contains every string of
 * `mentions` (and whose `pack` is `pack`, when given). Returns the matching issues.
 */
function assertIssue(result, { kind, mentions = [], pack, snapshot }) {
  const kinds = Array.isArray(kind) ? kind : [kind];
  const matching = result.errors.filter((e) => kinds.includes(e.kind));
  assert.ok(matching.length > 0, `expected an issue of kind ${kinds.join('|')}, got: ${fmt(result.errors)}`);
  const named = matching.filter((e) => mentions.every((m) => e.error.includes(m)));
  assert.ok(named.length > 0, `an issue of kind ${kinds.join('|')} must name ${mentions.join(', ')} in its error text, got: ${fmt(matching)}`);
  if (pack !== undefined) {
    assert.ok(named.some((e) => e.pack === pack), `an issue of kind ${kinds.join('|')} must have pack === ${pack}, got: ${fmt(named)}`);
  }
  if (snapshot !== undefined) {
    assert.ok(named.some((e) => e.snapshot === snapshot), `an issue of kind ${kinds.join('|')} must have snapshot === ${snapshot}, got: ${fmt(named)}`);
  }
  return named;
}

/** Restoring `id` must fail (rejection or stream error) with an ArchiveError, not hang or succeed. */
async function assertRestoreFails(repo, id, ArchiveError) {
  let err;
  try {
    const stream = await repo.restore(id);
    for await (const chunk of stream) void chunk; // eslint-disable-line no-unused-vars
  } catch (e) {
    err = e;
  }
  assert.ok(err, `restoring snapshot ${id} must fail: its data is lost`);
  if (ArchiveError) assert.ok(err instanceof ArchiveError, `restore failure must be an ArchiveError, got ${err && err.stack}`);
  assert.match(String(err.code), /^ERR_/);
  return err;
}

/** Consumes a restore of `id` and compares with a { sha256, length } digest. */
async function assertRestoresDigest(repo, id, want, options) {
  const stream = options === undefined ? await repo.restore(id) : await repo.restore(id, options);
  const h = crypto.createHash('sha256');
  let length = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    length += chunk.length;
  }
  assert.equal(length, want.length, `restore of ${id}: length differs`);
  assert.equal(h.digest('hex'), want.sha256, `restore of ${id}: content differs`);
}

module.exports = {
  KiB,
  MiB,
  PKG_DIR,
  FAULT_HELPERS,
  SMALL_REPO,
  ISSUE_KINDS,
  HEX64,
  xorshift32,
  genPieces,
  genDigest,
  streamOf,
  sha256,
  randomHex,
  rel,
  packIds,
  idxIds,
  indexFiles,
  snapshotFiles,
  groupFiles,
  shardFiles,
  lockFiles,
  tmpLeftovers,
  AAD,
  sealPlain,
  unsealPlain,
  readPackHeader,
  packChunkMap,
  snapshotChunkMap,
  snapshotsUsingPacks,
  parityGroups,
  flipByte,
  truncateBy,
  overwrite,
  emptyDir,
  writeLock,
  deadPid,
  spawnNode,
  fmt,
  assertIssueShape,
  assertVerifyShape,
  assertRepairShape,
  verify,
  assertHealthy,
  assertIssue,
  assertRestoreFails,
  assertRestoresDigest,
};
