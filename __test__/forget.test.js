'use strict';

// forget(ids) at the API: prefixes and full ids, every id resolved before
// anything is removed, dry runs that change nothing, and { prune: true }.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Readable } = require('node:stream');

const { KiB, tmpFor, randomBytes, rejectsWithCode, treeState, assertRestores, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();
const T = { timeout: 120000 };

/** Three snapshots of distinct data; packs small enough that each has its own. */
async function threeSnapshots(t) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, { packTargetSize: 64 * KiB, parity: { dataShards: 2, parityShards: 1 } });
  t.after(() => repo.close().catch(() => {}));
  const data = [1, 2, 3].map((seed) => randomBytes(300 * KiB, seed));
  const snaps = [];
  for (const bytes of data) snaps.push(await repo.ingest(Readable.from([bytes])));
  return { dir, repo, data, snaps };
}

const ids = async (repo) => (await repo.listSnapshots()).map((s) => s.id);

describe('forget()', () => {
  it('removes exactly the named snapshots, by prefix or full id, each once', T, async (t) => {
    const { repo, data, snaps } = await threeSnapshots(t);
    const [a, b, c] = snaps.map((s) => s.id);
    const report = await repo.forget([c.slice(0, 8), a, a.slice(0, 12)]);
    assert.deepEqual(report, { dryRun: false, removedSnapshots: [a, c], pruned: false });
    assert.deepEqual(await ids(repo), [b]);
    await assertRestores(repo, b, data[1]);
    // A single id works without an array.
    assert.deepEqual((await repo.forget(b)).removedSnapshots, [b]);
    assert.deepEqual(await ids(repo), []);
  });

  it('rejects unknown ids, latest and bad arguments before removing anything', T, async (t) => {
    const { dir, repo, snaps } = await threeSnapshots(t);
    const [a, b] = snaps.map((s) => s.id);
    const before = treeState(dir);
    const unknown = a.startsWith('ffffffff') ? 'eeeeeeee' : 'ffffffff';
    let err = await rejectsWithCode(repo.forget([a, unknown]), 'ERR_SNAPSHOT_NOT_FOUND');
    assert.match(err.message, new RegExp(unknown));
    await rejectsWithCode(repo.forget([a, '0'.repeat(64)], { prune: true }), 'ERR_SNAPSHOT_NOT_FOUND');
    err = await rejectsWithCode(repo.forget([b, 'latest']), 'ERR_INVALID_ARGUMENT');
    assert.match(err.message, /latest/);
    await rejectsWithCode(repo.forget([a, 'abc']), 'ERR_INVALID_ARGUMENT');
    for (const bad of [[], undefined, null, 42, [a, 7], { id: a }]) {
      await rejectsWithCode(() => repo.forget(bad), 'ERR_INVALID_ARGUMENT');
    }
    await rejectsWithCode(() => repo.forget(a, { dryRun: 'yes' }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.forget(a, { prune: 1 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.forget(a, { force: true }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.forget(a, { lockTimeoutMs: -1 }), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(treeState(dir), before, 'nothing changed');
    assert.equal((await ids(repo)).length, 3);
  });

  it('a dry run changes nothing and predicts the real run', T, async (t) => {
    const { dir, repo, snaps } = await threeSnapshots(t);
    const [a, b] = snaps.map((s) => s.id);
    const before = treeState(dir);
    const dry = await repo.forget([a], { dryRun: true });
    assert.deepEqual(dry, { dryRun: true, removedSnapshots: [a], pruned: false });
    const dryPrune = await repo.forget([b, a], { dryRun: true, prune: true });
    assert.deepEqual(treeState(dir), before, 'a dry run changes nothing');
    assert.deepEqual(Object.keys(dryPrune).sort(), ['dryRun', 'freedBytes', 'pruned', 'removedPacks', 'removedSnapshots', 'repackedPacks']);
    assert.ok(dryPrune.removedPacks > 0 && dryPrune.freedBytes > 0, JSON.stringify(dryPrune));
    const real = await repo.forget([b, a], { prune: true });
    assert.deepEqual(real.removedSnapshots, dryPrune.removedSnapshots);
    assert.equal(real.removedPacks, dryPrune.removedPacks);
    assert.equal(real.repackedPacks, dryPrune.repackedPacks);
  });

  it('{ prune: true } frees the space at once, sends prune:progress and leaves a sound repository', T, async (t) => {
    const { repo, data, snaps } = await threeSnapshots(t);
    const events = [];
    repo.on('prune:progress', (e) => events.push(e));
    const before = await repo.stats();
    const report = await repo.forget([snaps[0].id, snaps[1].id], { prune: true });
    const after = await repo.stats();
    assert.equal(report.pruned, true);
    assert.equal(report.freedBytes, before.packs.bytes - after.packs.bytes);
    assert.ok(after.packs.bytes < before.packs.bytes / 2, `${before.packs.bytes} -> ${after.packs.bytes}`);
    assert.ok(events.some((e) => e.operation === 'prune' && e.message === 'prune complete'), JSON.stringify(events));
    const verified = await repo.verify({ level: 'full' });
    assert.equal(verified.ok, true, JSON.stringify(verified.errors));
    await assertRestores(repo, snaps[2].id, data[2]);
  });
});
