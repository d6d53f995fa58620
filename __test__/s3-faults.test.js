'use strict';

// Faults on the wire (issue 10): a fault-injecting proxy between the engine
// and Garage drops connections, answers 503 and stalls. Faults that retries
// can absorb leave every result correct; faults beyond the retry budget fail
// the operation with a clear ERR_IO, leave no snapshot, and the repository
// still verifies.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { MiB, randomBytes, chunkedStream, assertRestores, rejectsWithCode, hashStream, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');
const { startFaultProxy } = require('./fault-proxy');

const { ContainerArchive } = loadPackage();
const T = { timeout: 300000 };

describe('S3 through a faulty network', () => {
  let g;
  let proxy;
  before(async () => {
    if (s3Skipped()) return;
    g = await startGarage();
    proxy = await startFaultProxy(g.endpoint);
  });
  after(async () => {
    if (proxy) await proxy.close();
    if (g) await g.stop();
  });

  const options = (prefix, storage = {}) => ({
    location: `s3://ca-test/${prefix}`,
    open: {
      cache: false,
      // Short attempts, so a stalled request costs two seconds, not a minute.
      storage: { endpoint: proxy.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey, timeoutMs: 2000, ...storage },
    },
  });

  it('absorbs dropped connections, 503s and stalls: ingest, restore and verify stay correct', T, async (t) => {
    if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
    const { location, open } = options('absorbed');
    proxy.setPlan(() => 'pass');
    const repo = await ContainerArchive.init(location, { ...open, ...F.SMALL_REPO, passphrase: 'faults' });
    t.after(() => repo.close());
    // Every 5th request fails, rotating through the faults; a retry is a later request, so it passes.
    proxy.setPlan(({ index }) => (index % 5 !== 4 ? 'pass' : ['drop', '503', 'drop', '503', 'drop', '503', 'drop', '503', 'stall'][Math.floor(index / 5) % 9]));
    const before = { ...proxy.counts };
    const data = randomBytes(MiB + 99, 71);
    const snap = await repo.ingest(chunkedStream(data, 8));
    await assertRestores(repo, snap.id, data);
    await F.assertHealthy(repo, 'full', 'through the faulty proxy');
    for (const fault of ['drop', '503', 'stall']) {
      assert.ok(proxy.counts[fault] > before[fault], `the proxy injected ${fault} faults: ${JSON.stringify(proxy.counts)}`);
    }
  });

  it('fails clearly beyond the retry budget, writes no snapshot, and the repository still verifies', T, async (t) => {
    if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
    const { location, open } = options('beyond', { retries: 2 });
    proxy.setPlan(() => 'pass');
    const repo = await ContainerArchive.init(location, { ...open, ...F.SMALL_REPO });
    t.after(() => repo.close());
    const kept = randomBytes(MiB, 81);
    const first = await repo.ingest(chunkedStream(kept, 9));

    // Every upload of a pack fails: no number of retries gets one through.
    proxy.setPlan(({ method, path }) => (method === 'PUT' && path.includes('/packs/data/') ? '503' : 'pass'));
    const err = await rejectsWithCode(() => repo.ingest(chunkedStream(randomBytes(MiB, 82), 10)), 'ERR_IO');
    assert.match(err.message, /s3:\/\/ca-test\/beyond\/packs\/data\//, 'the message names the object');
    assert.match(err.message, /503|SlowDown|injected by the test/, 'the message carries what the server said');
    assert.doesNotMatch(err.message, new RegExp(g.secretAccessKey), 'no credential in the message');

    // Reads of packs fail the same way: a restore errors, it does not hang or return wrong bytes.
    proxy.setPlan(({ method, path }) => (method === 'GET' && path.includes('/packs/data/') ? '503' : 'pass'));
    const stream = await repo.restore(first.id);
    await assert.rejects(hashStream(stream), (e) => e.code === 'ERR_IO');

    proxy.setPlan(() => 'pass');
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [first.id], 'the failed ingest left no snapshot');
    await F.assertHealthy(repo, 'full', 'after the failed ingest');
    await assertRestores(repo, first.id, kept);
  });
});
