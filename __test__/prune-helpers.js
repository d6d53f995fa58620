'use strict';

// Helpers for the retention/prune suites (prune.test.js, prune-kill.test.js). Node built-ins
// only; does not require node:test.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { walkFiles } = require('./common');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Readable } = require('node:stream');

const F = require('./fault-helpers');

const KiB = 1024;

/** Small packs and small chunks: a megabyte of data makes a few dozen packs. */
const GC_REPO = Object.freeze({
  packTargetSize: 65536,
  chunking: { minSize: 4096, avgSize: 16384, maxSize: 65536 },
  parity: { dataShards: 4, parityShards: 1 },
});

// ---------------------------------------------------------------------------
// Repository state
// ---------------------------------------------------------------------------

/**
 * { relativePath: 'size:mtimeNs:sha256' } for every regular file under `dir` (directories
 * themselves are not included: their mtime changes when a lock record comes and goes).
 */
function fingerprint(dir) {
  const out = {};
  for (const p of walkFiles(dir)) {
    const st = fs.statSync(p, { bigint: true });
    const hash = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    out[path.relative(dir, p)] = `${st.size}:${st.mtimeNs}:${hash}`;
  }
  return out;
}

/** Asserts two fingerprints are identical, naming the first differences. */
function assertSameFingerprint(after, before, what) {
  const diffs = [];
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (before[k] !== after[k]) diffs.push(`${k}: ${before[k] || '(absent)'} -> ${after[k] || '(absent)'}`);
  }
  assert.deepEqual(diffs, [], `${what}: the repository changed:\n${diffs.slice(0, 20).join('\n')}`);
}

/** Sum of file sizes under `dir` whose name ends with `suffix` ('' = all files). */
function bytesUnder(dir, suffix = '') {
  return walkFiles(dir)
    .filter((p) => p.endsWith(suffix))
    .reduce((total, p) => total + fs.statSync(p).size, 0);
}

// ---------------------------------------------------------------------------
// Result checks
// ---------------------------------------------------------------------------

const RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'within', 'tags'];
const HEX64 = /^[0-9a-f]{64}$/;

/** Checks the documented PruneResult shape. */
function assertPruneShape(r, dryRun) {
  assert.ok(r && typeof r === 'object', 'prune must resolve to an object');
  assert.deepEqual(
    Object.keys(r).sort(),
    ['dryRun', 'freedBytes', 'groups', 'keptSnapshots', 'reasons', 'removedPacks', 'removedSnapshots', 'repackedPacks'],
    'PruneResult keys',
  );
  // The groups partition the top-level lists and reasons.
  assert.ok(Array.isArray(r.groups), 'groups must be an array');
  for (const k of ['keptSnapshots', 'removedSnapshots']) {
    assert.deepEqual(r.groups.flatMap((g) => g[k]).sort(), [...r[k]].sort(), `groups partition ${k}`);
  }
  assert.deepEqual(Object.assign({}, ...r.groups.map((g) => g.reasons)), r.reasons, 'groups carry the reasons');
  assert.equal(r.dryRun, dryRun, 'result.dryRun');
  for (const k of ['keptSnapshots', 'removedSnapshots']) {
    assert.ok(Array.isArray(r[k]), `${k} must be an array`);
    for (const id of r[k]) assert.match(id, HEX64, `${k} entries are snapshot ids`);
    assert.equal(new Set(r[k]).size, r[k].length, `${k} has no duplicates`);
  }
  for (const id of r.keptSnapshots) assert.ok(!r.removedSnapshots.includes(id), `${id} both kept and removed`);
  for (const k of ['removedPacks', 'repackedPacks']) {
    assert.ok(Number.isSafeInteger(r[k]) && r[k] >= 0, `${k} must be a non-negative integer, got ${r[k]}`);
  }
  assert.ok(r.repackedPacks <= r.removedPacks, 'repacked packs are counted in removedPacks');
  assert.ok(Number.isSafeInteger(r.freedBytes), `freedBytes must be an integer, got ${r.freedBytes}`);
  assert.ok(r.reasons && typeof r.reasons === 'object' && !Array.isArray(r.reasons), 'reasons must be an object');
  assert.deepEqual(Object.keys(r.reasons).sort(), [...r.keptSnapshots].sort(), 'reasons has exactly one entry per kept snapshot');
  for (const [id, why] of Object.entries(r.reasons)) {
    assert.ok(Array.isArray(why) && why.length > 0, `reasons[${id}] must be a non-empty array`);
    for (const w of why) assert.ok(RULES.includes(w), `unknown reason ${JSON.stringify(w)}`);
    const order = why.map((w) => RULES.indexOf(w));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `reasons[${id}] must follow the rule order: ${why}`);
    assert.equal(new Set(why).size, why.length, `reasons[${id}] has duplicates: ${why}`);
  }
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/** A live helper process (its pid goes into hand-written lock records). Killed by kill(). */
function liveChild() {
  const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.on('error', () => {});
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    pid: child.pid,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Watches `locks/` for a lock record (`<32 hex>.json`) other than `except` appearing and calls
 * `fn(name)` once. Returns { close(), fired() }.
 */
function onNewLockRecord(dir, except, fn) {
  let fired = false;
  const watcher = fs.watch(path.join(dir, 'locks'), (event, name) => {
    if (fired || !name || name === except || !/^[0-9a-f]{32}\.json$/.test(String(name))) return;
    fired = true;
    fn(String(name));
  });
  return { close: () => watcher.close(), fired: () => fired };
}

/** A settle-tracking wrapper. */
function track(promise) {
  const state = { settled: false };
  promise.then(() => { state.settled = true; }, () => { state.settled = true; });
  return state;
}

// ---------------------------------------------------------------------------
// The garbage-collection scenario
// ---------------------------------------------------------------------------

/**
 * Builds, in an empty repository at `dir` (GC_REPO options), three snapshots:
 * - `lone` (2024-01-01): 256 KiB nobody else shares -> its packs become pure garbage;
 * - `old` (2024-01-02): a1 b1 a2 b2 ... a8 b8 (64 KiB each) -> its packs mix a- and b-chunks;
 * - `new` (2024-01-03): a1 a2 ... a8 -> keeps the a-chunks of `old`'s packs alive.
 * With keepLast 1 only `new` survives: `lone`'s packs are deleted, `old`'s are repacked.
 * `initOptions` are added to GC_REPO (e.g. a passphrase). `variant` changes the data seeds (variant 0: a_i = seed 100+i, b_i = 200+i, lone = 300).
 * Needs CONTAINERARCHIVE_TEST_CREATED_AT=1. Returns { ids: {lone, old, new}, data: Map id -> Buffer }.
 */
async function buildGcScenario(ContainerArchive, dir, variant = 0, initOptions = {}) {
  const a = [];
  const b = [];
  const base = variant * 1000;
  for (let i = 0; i < 8; i++) {
    a.push(F_random(64 * KiB, base + 100 + i));
    b.push(F_random(64 * KiB, base + 200 + i));
  }
  const loneData = F_random(256 * KiB + 12, base + 300);
  const oldData = Buffer.concat(a.flatMap((x, i) => [x, b[i]]));
  const newData = Buffer.concat(a);
  const repo = await ContainerArchive.init(dir, { ...GC_REPO, ...initOptions });
  try {
    const lone = await repo.ingest(F.streamOf(loneData, 32 * KiB), { createdAt: '2024-01-01T00:00:00Z', tags: { role: 'lone' } });
    const old = await repo.ingest(F.streamOf(oldData, 32 * KiB), { createdAt: '2024-01-02T00:00:00Z', tags: { role: 'old' } });
    const neu = await repo.ingest(F.streamOf(newData, 32 * KiB), { createdAt: '2024-01-03T00:00:00Z', tags: { role: 'new' } });
    assert.ok(neu.reusedChunks > 0, `the scenario needs "new" to share chunks with "old" (reused ${neu.reusedChunks})`);
    const data = new Map([[lone.id, loneData], [old.id, oldData], [neu.id, newData]]);
    return { ids: { lone: lone.id, old: old.id, new: neu.id }, data, parts: { a, b } };
  } finally {
    await repo.close();
  }
}

function F_random(size, seed) {
  const parts = [];
  for (const p of F.genPieces(seed, size + ((4 - (size % 4)) % 4), 64 * KiB)) parts.push(p);
  return Buffer.concat(parts).subarray(0, size);
}

/** Restores `id` and compares it with `expected` (Buffer) by length and sha256. */
async function assertRestoresBuffer(repo, id, expected, what = '') {
  await F.assertRestoresDigest(repo, id, { sha256: F.sha256(expected), length: expected.length }).catch((e) => {
    e.message = `${what} ${e.message}`;
    throw e;
  });
}

/** A tiny stream of a few bytes (one piece). */
function tiny(text) {
  return Readable.from([Buffer.from(text)]);
}

module.exports = {
  GC_REPO,
  RULES,
  fingerprint,
  assertSameFingerprint,
  bytesUnder,
  assertPruneShape,
  liveChild,
  onNewLockRecord,
  track,
  buildGcScenario,
  randomBuffer: F_random,
  assertRestoresBuffer,
  tiny,
};
