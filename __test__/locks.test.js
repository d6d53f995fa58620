'use strict';

// Advisory locks: locks/<id>.json = { id, exclusive, hostname, pid, createdAt, refreshedAt }.
// Ingest holds a shared lock; repair/reindex need an exclusive one. A live conflicting lock
// rejects ERR_LOCKED (naming the holder) unless lockTimeoutMs lets the operation wait. Stale
// locks (dead pid on this host, or a foreign host not refreshed for 30 minutes) are ignored,
// and removed by unlock() and repair().

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');

const {
  KiB,
  MiB,
  tmpFor,
  randomBytes,
  chunkedStream,
  assertRestores,
  rejectsWithCode,
  loadPackage,
} = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
const MINUTE = 60 * 1000;

async function emptyRepo(t) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, F.SMALL_REPO);
  await repo.close();
  return dir;
}

async function openRepo(t, dir, options) {
  const repo = await ContainerArchive.open(dir, options);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
  return repo;
}

function readLock(dir, name) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'locks', name), 'utf8'));
}

function assertNamesHolder(err, { pid = process.pid, hostname = os.hostname() } = {}) {
  assert.ok(err.message.includes(String(pid)), `ERR_LOCKED must name the holder's pid ${pid}: ${err.message}`);
  assert.ok(err.message.includes(hostname), `ERR_LOCKED must name the holder's hostname ${hostname}: ${err.message}`);
}

/** A settle-tracking wrapper: `state.settled` turns true once `promise` settles. */
function track(promise) {
  const state = { settled: false };
  promise.then(() => { state.settled = true; }, () => { state.settled = true; });
  return state;
}

/**
 * A byte stream of `total` pseudo-random bytes that stops producing once `stallAt` bytes were
 * handed out and waits until resume(). `stalled` resolves when it is waiting.
 */
function pausingSource(seed, total, stallAt) {
  const it = F.genPieces(seed, total, 64 * KiB);
  let delivered = 0;
  let released = false;
  let waiting = false;
  let onStall;
  const stalled = new Promise((resolve) => { onStall = resolve; });
  const pushNext = (stream) => {
    const { value, done } = it.next();
    if (done) stream.push(null);
    else {
      delivered += value.length;
      stream.push(value);
    }
  };
  const stream = new Readable({
    read() {
      if (!released && delivered >= stallAt) {
        waiting = true;
        onStall();
        return;
      }
      pushNext(this);
    },
  });
  return {
    stream,
    stalled,
    digest: F.genDigest(seed, total, 64 * KiB),
    resume() {
      released = true;
      if (waiting) {
        waiting = false;
        pushNext(stream);
      }
    },
  };
}

describe('lock records', () => {
  it('an ingest holds a shared lock record while it runs and removes it afterwards', T, async (t) => {
    const dir = await emptyRepo(t);
    const repo = await openRepo(t, dir);
    assert.deepEqual(F.lockFiles(dir), [], 'an idle open repository holds no lock record');

    // Without the pipeline consuming anything, at most ~5 MiB can leave the source: the JS
    // read-ahead (1 MiB) plus the bridge's feed channel (4 pulls of up to 1 MiB each). Once
    // 8 MiB were handed out, the pipeline has consumed data, which it does only after taking
    // its lock; the source then waits for us.
    const src = pausingSource(7, 10 * MiB + 5, 8 * MiB);
    const ingest = repo.ingest(src.stream);
    await Promise.race([
      src.stalled,
      ingest.then(() => { throw new Error('ingest finished although its source never ended'); }),
    ]);

    const locks = F.lockFiles(dir);
    assert.equal(locks.length, 1, `exactly one lock record while the ingest runs, got ${JSON.stringify(locks)}`);
    const rec = readLock(dir, locks[0]);
    assert.equal(locks[0], `${rec.id}.json`, 'the record is named after its id');
    assert.equal(rec.exclusive, false, 'ingest takes a shared lock');
    assert.equal(rec.pid, process.pid);
    assert.equal(rec.hostname, os.hostname());
    for (const k of ['createdAt', 'refreshedAt']) {
      assert.equal(typeof rec[k], 'string');
      assert.ok(Number.isFinite(Date.parse(rec[k])), `${k} must be an ISO date: ${rec[k]}`);
    }
    assert.ok(Date.parse(rec.refreshedAt) >= Date.parse(rec.createdAt), 'refreshedAt >= createdAt');

    src.resume();
    const snap = await ingest;
    assert.deepEqual(F.lockFiles(dir), [], 'no lock record may remain after the ingest');
    await F.assertRestoresDigest(repo, snap.id, src.digest);
    assert.deepEqual(F.lockFiles(dir), [], 'restore leaves no lock record');
    await repo.verify({ level: 'quick' });
    await repo.repair();
    assert.deepEqual(F.lockFiles(dir), [], 'verify and repair leave no lock record');
  });

  it('a live foreign exclusive lock makes ingest reject ERR_LOCKED at once, naming the holder', T, async (t) => {
    const dir = await emptyRepo(t);
    const foreign = F.writeLock(dir, { exclusive: true });
    const repo = await openRepo(t, dir);

    const t0 = Date.now();
    const err = await rejectsWithCode(() => repo.ingest(chunkedStream(randomBytes(64 * KiB, 1), 1)), 'ERR_LOCKED');
    assert.ok(Date.now() - t0 < 10000, 'the default lockTimeoutMs is 0: fail at once');
    assertNamesHolder(err);
    await rejectsWithCode(
      () => repo.ingestMulti([{ name: 'x', type: 'x', stream: chunkedStream(randomBytes(64 * KiB, 2), 2) }]),
      'ERR_LOCKED',
    );
    assert.deepEqual(await repo.listSnapshots(), [], 'no snapshot was written');
    assert.deepEqual(F.lockFiles(dir), [path.basename(foreign)], 'the rejected ingest leaves no record of its own');

    // a live exclusive lock from another host (refreshed just now) blocks as well
    fs.unlinkSync(foreign);
    F.writeLock(dir, { exclusive: true, hostname: 'another-host.invalid', pid: 4242 });
    const err2 = await rejectsWithCode(() => repo.ingest(chunkedStream(randomBytes(64 * KiB, 3), 3)), 'ERR_LOCKED');
    assertNamesHolder(err2, { pid: 4242, hostname: 'another-host.invalid' });
  });

  it('lockTimeoutMs: the ingest waits for the foreign lock and then succeeds', T, async (t) => {
    const dir = await emptyRepo(t);
    const foreign = F.writeLock(dir, { exclusive: true });
    const repo = await openRepo(t, dir);
    const probe = await openRepo(t, dir);

    // a short timeout expires: it really waited, then rejected
    const t0 = Date.now();
    await rejectsWithCode(() => repo.ingest(chunkedStream(randomBytes(64 * KiB, 4), 4), { lockTimeoutMs: 600 }), 'ERR_LOCKED');
    const waited = Date.now() - t0;
    assert.ok(waited >= 500, `with lockTimeoutMs 600 the ingest must wait before rejecting, waited ${waited} ms`);

    const data = randomBytes(512 * KiB + 3, 5);
    const waiting = repo.ingest(chunkedStream(data, 5), { lockTimeoutMs: 20000 });
    const state = track(waiting);
    // Evidence that lock checks are running now: an ingest without timeout is refused.
    await rejectsWithCode(() => probe.ingest(chunkedStream(randomBytes(1 * KiB, 6), 6)), 'ERR_LOCKED');
    assert.equal(state.settled, false, 'the ingest with lockTimeoutMs must still be waiting while the foreign lock exists');
    fs.unlinkSync(foreign);
    const snap = await waiting;
    await assertRestores(repo, snap.id, data);
    assert.deepEqual(F.lockFiles(dir), []);
  });

  it('open({ lockTimeoutMs }) sets the default; a per-call lockTimeoutMs overrides it', T, async (t) => {
    const dir = await emptyRepo(t);
    const foreign = F.writeLock(dir, { exclusive: false }); // shared: blocks repair/reindex only
    const repo = await openRepo(t, dir, { lockTimeoutMs: 20000 });
    const probe = await openRepo(t, dir);

    const t0 = Date.now();
    await rejectsWithCode(() => repo.repair({ lockTimeoutMs: 0 }), 'ERR_LOCKED');
    assert.ok(Date.now() - t0 < 10000, 'lockTimeoutMs: 0 on the call must override the instance default of 20 s');

    const waiting = repo.repair();
    const state = track(waiting);
    await rejectsWithCode(() => probe.reindex(), 'ERR_LOCKED');
    assert.equal(state.settled, false, 'repair() must wait (instance lockTimeoutMs) while the foreign shared lock exists');
    fs.unlinkSync(foreign);
    const r = await waiting;
    F.assertRepairShape(r);
    assert.deepEqual(r.unrecoverable, []);
    assert.deepEqual(F.lockFiles(dir), []);
  });

  it('verify takes a shared lock: a live exclusive lock blocks it; verify/reindex honour lockTimeoutMs', T, async (t) => {
    const dir = await emptyRepo(t);
    const setup = await openRepo(t, dir);
    await setup.ingest(chunkedStream(randomBytes(200 * KiB, 13), 13));
    await setup.close();

    const exclusive = F.writeLock(dir, { exclusive: true });
    const repo = await openRepo(t, dir);
    assertNamesHolder(await rejectsWithCode(() => repo.verify({ level: 'quick' }), 'ERR_LOCKED'));
    let t0 = Date.now();
    await rejectsWithCode(() => repo.verify({ level: 'quick', lockTimeoutMs: 400 }), 'ERR_LOCKED');
    assert.ok(Date.now() - t0 >= 300, 'verify({ lockTimeoutMs: 400 }) must wait before rejecting');

    const probe = await openRepo(t, dir);
    const waiting = repo.verify({ level: 'full', lockTimeoutMs: 20000 });
    const state = track(waiting);
    await rejectsWithCode(() => probe.verify({ level: 'quick' }), 'ERR_LOCKED');
    assert.equal(state.settled, false, 'verify with lockTimeoutMs must still be waiting');
    fs.unlinkSync(exclusive);
    const v = await waiting;
    assert.equal(v.ok, true, F.fmt(v.errors));

    // a shared foreign lock: verify runs, reindex waits for it
    const shared = F.writeLock(dir, { exclusive: false });
    assert.equal((await repo.verify({ level: 'quick' })).ok, true, 'a shared lock does not block verify');
    t0 = Date.now();
    await rejectsWithCode(() => repo.reindex({ lockTimeoutMs: 400 }), 'ERR_LOCKED');
    assert.ok(Date.now() - t0 >= 300, 'reindex({ lockTimeoutMs: 400 }) must wait before rejecting');
    const reindexing = repo.reindex({ lockTimeoutMs: 20000 });
    const rstate = track(reindexing);
    await rejectsWithCode(() => probe.repair(), 'ERR_LOCKED');
    assert.equal(rstate.settled, false, 'reindex with lockTimeoutMs must still be waiting');
    fs.unlinkSync(shared);
    assert.ok((await reindexing).packs > 0);
    assert.deepEqual(F.lockFiles(dir), []);
  });

  it('stale locks (dead pid on this host; foreign host not refreshed for 31 min) do not block', T, async (t) => {
    const dir = await emptyRepo(t);
    const pid = await F.deadPid();
    F.writeLock(dir, { exclusive: true, pid });
    F.writeLock(dir, {
      exclusive: true,
      hostname: 'gone-host.invalid',
      pid: 4242,
      createdAt: new Date(Date.now() - 40 * MINUTE).toISOString(),
      refreshedAt: new Date(Date.now() - 31 * MINUTE).toISOString(),
    });
    const repo = await openRepo(t, dir);
    const data = randomBytes(300 * KiB + 9, 8);
    const snap = await repo.ingest(chunkedStream(data, 8));
    await assertRestores(repo, snap.id, data);
    const r = await repo.reindex(); // exclusive: stale exclusive locks do not block it either
    assert.ok(r.packs > 0);
  });

  it('unlock() removes stale locks and returns the count; unlock({ force: true }) removes live ones too', T, async (t) => {
    const dir = await emptyRepo(t);
    const pid = await F.deadPid();
    const staleA = F.writeLock(dir, { exclusive: true, pid });
    const staleB = F.writeLock(dir, {
      exclusive: false,
      hostname: 'gone-host.invalid',
      pid: 4242,
      createdAt: new Date(Date.now() - 40 * MINUTE).toISOString(),
      refreshedAt: new Date(Date.now() - 31 * MINUTE).toISOString(),
    });
    const live = F.writeLock(dir, { exclusive: true });
    const repo = await openRepo(t, dir);

    assert.equal(await repo.unlock(), 2, 'unlock() removes exactly the two stale locks');
    assert.ok(!fs.existsSync(staleA) && !fs.existsSync(staleB), 'the stale records are gone');
    assert.ok(fs.existsSync(live), 'unlock() without force keeps a live lock');
    assert.equal(await repo.unlock(), 0, 'nothing stale is left');
    assert.equal(await repo.unlock({ force: true }), 1, 'unlock({ force: true }) removes the live lock');
    assert.deepEqual(F.lockFiles(dir), []);

    const data = randomBytes(100 * KiB, 9);
    const snap = await repo.ingest(chunkedStream(data, 9));
    await assertRestores(repo, snap.id, data);
  });

  it('repair() removes stale locks and counts them in locksRemoved', T, async (t) => {
    const dir = await emptyRepo(t);
    const setup = await openRepo(t, dir);
    const data = randomBytes(300 * KiB, 10);
    const snap = await setup.ingest(chunkedStream(data, 10));
    await setup.close();

    const pid = await F.deadPid();
    F.writeLock(dir, { exclusive: false, pid });
    F.writeLock(dir, {
      exclusive: true,
      hostname: 'gone-host.invalid',
      pid: 4242,
      createdAt: new Date(Date.now() - 40 * MINUTE).toISOString(),
      refreshedAt: new Date(Date.now() - 31 * MINUTE).toISOString(),
    });
    const repo = await openRepo(t, dir);
    const r = await repo.repair();
    F.assertRepairShape(r);
    assert.equal(r.locksRemoved, 2, 'repair must remove both stale locks');
    assert.deepEqual(r.unrecoverable, []);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(F.lockFiles(dir), []);
    await assertRestores(repo, snap.id, data);
  });

  it('a live foreign shared lock allows ingest but blocks repair and reindex', T, async (t) => {
    const dir = await emptyRepo(t);
    const foreign = F.writeLock(dir, { exclusive: false });
    const repo = await openRepo(t, dir);

    const data = randomBytes(300 * KiB + 1, 11);
    const snap = await repo.ingest(chunkedStream(data, 11));
    await assertRestores(repo, snap.id, data);

    assertNamesHolder(await rejectsWithCode(() => repo.repair(), 'ERR_LOCKED'));
    assertNamesHolder(await rejectsWithCode(() => repo.reindex(), 'ERR_LOCKED'));
    assert.deepEqual(F.lockFiles(dir), [path.basename(foreign)], 'the foreign lock is untouched, no own record is left');
    assert.equal(await repo.unlock(), 0, 'a live lock is not stale');
    assert.ok(fs.existsSync(foreign));

    fs.unlinkSync(foreign);
    const r = await repo.repair();
    assert.deepEqual(r.unrecoverable, []);
    assert.ok((await repo.reindex()).packs > 0);
  });

  it('an unreadable lock record is reported by verify as kind "lock"', T, async (t) => {
    const dir = await emptyRepo(t);
    const repo = await openRepo(t, dir);
    const data = randomBytes(100 * KiB, 12);
    await repo.ingest(chunkedStream(data, 12));
    const id = F.randomHex(16);
    fs.writeFileSync(path.join(dir, 'locks', `${id}.json`), '{ not a lock');
    const v = await repo.verify();
    F.assertVerifyShape(v, 'standard');
    assert.equal(v.ok, false);
    F.assertIssue(v, { kind: 'lock', mentions: [id] });
  });
});
