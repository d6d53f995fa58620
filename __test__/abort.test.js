'use strict';

// `signal: AbortSignal` on ingest, ingestMulti, restore, verify, repair and
// prune: an abort rejects with an AbortError (name 'AbortError', code
// 'ABORT_ERR', cause = the signal's reason), leaves nothing partial and no
// lock behind; and verify's `subset` reads a slice of the packs.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');

const { tmpFor, randomBytes, KiB, MiB, rejectsWithCode, assertRestores, loadPackage } = require('./helpers');

const { ContainerArchive, AbortError } = loadPackage();

const SMALL_PACKS = {
  packTargetSize: 64 * KiB,
  chunking: { minSize: 16 * KiB, avgSize: 32 * KiB, maxSize: 64 * KiB },
  parity: { dataShards: 3, parityShards: 1 },
};

async function fresh(t, options) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, options);
  t.after(() => repo.close());
  return { repo, dir };
}

const locksIn = (dir) => fs.readdirSync(path.join(dir, 'locks'));

/** A source that never ends; `onBytes(total)` hears how much it has given. */
function endless(onBytes = () => {}) {
  let seed = 1;
  let total = 0;
  return new Readable({
    read() {
      const piece = randomBytes(64 * KiB, seed++);
      total += piece.length;
      this.push(piece);
      onBytes(total);
    },
  });
}

function assertAbortError(err, reason) {
  assert.ok(err instanceof Error, 'an Error');
  assert.equal(err.name, 'AbortError');
  assert.equal(err.code, 'ABORT_ERR');
  assert.equal(err.cause, reason, 'cause is the signal reason');
  return true;
}

/** Resolves once `condition()` holds, polling; fails after 30 s. */
async function until(condition, what) {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Holds a shared lock (an ingest whose source waits) until `release()`. */
async function holdSharedLock(repo, dir) {
  const source = new Readable({ read() {} });
  const ingest = repo.ingest(source, { tags: { held: 'yes' } });
  await until(() => locksIn(dir).some((f) => f.endsWith('.json')), 'the ingest to take its lock');
  return { ingest, release: () => source.push(null) };
}

describe('AbortSignal', () => {
  it('an aborted ingest of an endless source rejects with an AbortError and leaves no snapshot and no lock', async (t) => {
    const { repo, dir } = await fresh(t);
    const controller = new AbortController();
    const reason = new Error('operator pressed Ctrl-C');
    const source = endless((total) => {
      if (total >= 4 * MiB && !controller.signal.aborted) controller.abort(reason);
    });
    await assert.rejects(repo.ingest(source, { signal: controller.signal }), (err) => assertAbortError(err, reason));
    assert.ok(source.destroyed, 'the source is closed, so a producer such as pg_dump stops');
    assert.deepEqual(await repo.listSnapshots(), []);
    assert.deepEqual(locksIn(dir), [], 'the lock is released');
    const report = await repo.verify({ level: 'full' });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    // The repository goes on working.
    const data = randomBytes(300 * KiB, 9);
    const snap = await repo.ingest(Readable.from([data]));
    await assertRestores(repo, snap.id, data);
  });

  it('ingestMulti under an aborted signal stores none of its items', async (t) => {
    const { repo, dir } = await fresh(t);
    const controller = new AbortController();
    const items = [
      { name: 'a', stream: Readable.from([randomBytes(200 * KiB, 2)]) },
      { name: 'b', stream: endless((total) => total >= 2 * MiB && controller.abort('stop')) },
    ];
    await assert.rejects(repo.ingestMulti(items, { signal: controller.signal }), (err) => assertAbortError(err, 'stop'));
    assert.deepEqual(await repo.listSnapshots(), []);
    assert.deepEqual(locksIn(dir), []);
  });

  it('a signal aborted before the call reads nothing', async (t) => {
    const { repo } = await fresh(t);
    let reads = 0;
    const source = new Readable({
      read() {
        reads++;
        this.push(null);
      },
    });
    const signal = AbortSignal.abort('too late');
    await assert.rejects(repo.ingest(source, { signal }), (err) => assertAbortError(err, 'too late'));
    assert.equal(reads, 0);
    await assert.rejects(repo.verify({ signal }), (err) => assertAbortError(err, 'too late'));
    await assert.rejects(repo.restore('latest', { signal }), (err) => assertAbortError(err, 'too late'));
    assert.ok(new AbortError('x') instanceof Error, 'AbortError is exported');
  });

  it('an aborted restore errors its stream with an AbortError and releases its lock', async (t) => {
    const { repo, dir } = await fresh(t);
    const data = randomBytes(6 * MiB, 3);
    const snap = await repo.ingest(Readable.from([data]));
    const controller = new AbortController();
    const stream = await repo.restore(snap.id, { signal: controller.signal });
    const failed = new Promise((resolve, reject) => {
      stream.once('error', resolve);
      stream.once('end', () => reject(new Error('the stream ended despite the abort')));
    });
    stream.once('data', () => controller.abort('enough'));
    const err = await failed;
    assertAbortError(err, 'enough');
    // An exclusive operation can start only once the restore's shared lock is gone
    // (a left-behind lock would make it wait until it goes stale, 30 minutes).
    await repo.repair({ lockTimeoutMs: 60_000 });
    assert.deepEqual(locksIn(dir), []);
    await assertRestores(repo, snap.id, data);
  });

  it('verify, repair and prune aborted while they run reject with an AbortError and change nothing', async (t) => {
    const { repo, dir } = await fresh(t, SMALL_PACKS);
    const first = await repo.ingest(Readable.from([randomBytes(1 * MiB, 4)]));
    const second = await repo.ingest(Readable.from([randomBytes(1 * MiB, 5)]));
    const live = new AbortController().signal;
    assert.equal((await repo.verify({ level: 'full', signal: live })).ok, true, 'a signal that never fires changes nothing');
    assert.deepEqual((await repo.repair({ signal: live })).errors, []);
    assert.equal((await repo.prune({ keepLast: 2, signal: live })).removedSnapshots.length, 0);
    for (const run of [
      (signal) => repo.verify({ level: 'full', signal }),
      (signal) => repo.repair({ signal }),
      (signal) => repo.prune({ keepLast: 1, signal }),
    ]) {
      const controller = new AbortController();
      const call = run(controller.signal);
      controller.abort('cancelled by test');
      await assert.rejects(call, (err) => assertAbortError(err, 'cancelled by test'));
      assert.deepEqual(locksIn(dir), []);
    }
    const ids = (await repo.listSnapshots()).map((s) => s.id).sort();
    assert.deepEqual(ids, [first.id, second.id].sort(), 'the aborted prune forgot nothing');
    const report = await repo.verify({ level: 'full' });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
  });

  it('an abort ends a long wait for a lock', { timeout: 60_000 }, async (t) => {
    const { repo, dir } = await fresh(t);
    const held = await holdSharedLock(repo, dir);
    const started = Date.now();
    const reason = new Error('gave up');
    const controller = new AbortController();
    // An exclusive prune waits (up to 10 minutes) for the ingest's shared lock.
    const waiting = repo.prune({ keepLast: 1, lockTimeoutMs: 600_000, signal: controller.signal });
    const timer = setTimeout(() => controller.abort(reason), 300);
    await assert.rejects(waiting, (err) => assertAbortError(err, reason));
    clearTimeout(timer);
    assert.ok(Date.now() - started < 10_000, 'the wait ended at the abort, not at lockTimeoutMs');
    held.release();
    const snap = await held.ingest;
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [snap.id]);
    assert.deepEqual(locksIn(dir), []);
  });

  it('a signal that is not an AbortSignal is an argument error', async (t) => {
    const { repo } = await fresh(t);
    const snap = await repo.ingest(Readable.from([Buffer.from('x')]));
    for (const signal of [{}, 'abort', 1, null]) {
      await rejectsWithCode(repo.ingest(Readable.from([Buffer.from('y')]), { signal }), 'ERR_INVALID_ARGUMENT', /signal/);
      await rejectsWithCode(repo.restore(snap.id, { signal }), 'ERR_INVALID_ARGUMENT', /signal/);
      await rejectsWithCode(repo.verify({ signal }), 'ERR_INVALID_ARGUMENT', /signal/);
      await rejectsWithCode(repo.repair({ signal }), 'ERR_INVALID_ARGUMENT', /signal/);
      await rejectsWithCode(repo.prune({ keepLast: 1, signal }), 'ERR_INVALID_ARGUMENT', /signal/);
    }
    assert.equal((await repo.listSnapshots()).length, 1);
  });
});

describe('verify subset', () => {
  it('the slices of a cycle together read every pack once', async (t) => {
    const { repo } = await fresh(t, SMALL_PACKS);
    await repo.ingest(Readable.from([randomBytes(3 * MiB, 6)]));
    const full = await repo.verify({ level: 'full' });
    assert.equal(full.subset, undefined, 'a whole verify reports no subset');
    let read = 0;
    let total;
    for (const subset of ['1/3', { n: 2, of: 3 }, '3/3']) {
      const report = await repo.verify({ level: 'full', subset });
      assert.equal(report.ok, true, JSON.stringify(report.errors));
      assert.match(report.subset.subset, /^[123]\/3$/);
      total ??= report.subset.packsTotal;
      assert.equal(report.subset.packsTotal, total);
      read += report.subset.packsRead;
    }
    assert.ok(total > 10, `enough packs to slice (${total})`);
    assert.equal(read, total, 'every pack in exactly one slice');
    const sample = await repo.verify({ subset: '100%' });
    assert.equal(sample.subset.packsRead, total, "subset alone implies level 'full'; 100% reads all");
  });

  it('a pack damaged in one slice is found by that slice', async (t) => {
    const { repo, dir } = await fresh(t, { ...SMALL_PACKS, parity: { dataShards: 3, parityShards: 1 } });
    await repo.ingest(Readable.from([randomBytes(2 * MiB, 7)]));
    const packDir = path.join(dir, 'packs', 'data');
    const packs = fs.readdirSync(packDir).filter((f) => f.endsWith('.pack')).map((f) => path.join(packDir, f));
    assert.ok(packs.length > 3);
    const victim = packs[0];
    const bytes = fs.readFileSync(victim);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(victim, bytes);
    const found = [];
    for (let n = 1; n <= 4; n++) {
      const report = await repo.verify({ subset: { n, of: 4 } });
      if (!report.ok) found.push(n);
    }
    assert.equal(found.length, 1, `exactly one slice finds the damage (found by ${found})`);
  });

  it('bad subsets are argument errors', async (t) => {
    const { repo } = await fresh(t);
    for (const subset of ['0/3', '4/3', '1/0', '1/257', '0%', '101%', 'half', { n: 1 }, { n: 1, of: 2, x: 1 }, 3]) {
      await rejectsWithCode(repo.verify({ level: 'full', subset }), 'ERR_INVALID_ARGUMENT', /subset/);
    }
    await rejectsWithCode(repo.verify({ level: 'standard', subset: '1/2' }), 'ERR_INVALID_ARGUMENT', /level 'full'/);
  });
});
