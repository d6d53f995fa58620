'use strict';

// The backend matrix (issue 10): the same scenarios on a local directory and
// on a bucket of a real Garage server. Round trip, dedup, encryption at rest
// (the stored objects are read directly), corruption then repair (objects
// damaged in the store itself), parity rebuild, prune, locks and the CLI.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { MiB, KiB, randomBytes, textishBytes, chunkedStream, assertRestores, rejectsWithCode, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { local, s3Backend } = require('./backends');
const { s3Skipped, SKIP_VAR } = require('./garage');
const { cli, baseEnv, ok, snapshotsJson } = require('./cli-helpers');

const { ContainerArchive } = loadPackage();
const T = { timeout: 180000 };
const PASSPHRASE = 'matrix passphrase';

const packsOf = async (files) => (await files.list('packs/data')).filter((n) => n.endsWith('.pack'));

for (const backend of [local, s3Backend()]) {
  describe(`backend: ${backend.name}`, () => {
    let skip = false;
    before(async () => {
      if (backend.name === 's3' && s3Skipped()) skip = true;
      else await backend.start();
    });
    after(() => backend.stop());
    const test = (name, fn) =>
      it(name, T, async (t) => {
        if (skip) return t.skip(`${SKIP_VAR}=1`);
        return fn(t, backend.fresh(t));
      });

    test('round trip: several items restore byte-identical; list and get agree', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO, passphrase: PASSPHRASE });
      const a = randomBytes(3 * MiB + 17, 11);
      const b = textishBytes(2 * MiB + 5, 12);
      const snap = await repo.ingestMulti([
        { name: 'db.sql', type: 'database-dump', stream: chunkedStream(a, 1) },
        { name: 'vol.tar', type: 'volume-tar', stream: chunkedStream(b, 2) },
      ], { tags: { app: 'matrix' } });
      await repo.close();
      const again = await ContainerArchive.open(r.location, { ...r.options, passphrase: PASSPHRASE });
      t.after(() => again.close());
      await assertRestores(again, snap.id, a, { item: 'db.sql' });
      await assertRestores(again, snap.id, b, { item: 'vol.tar' });
      const list = await again.listSnapshots();
      assert.deepEqual(list.map((s) => s.id), [snap.id]);
      assert.deepEqual((await again.getSnapshot('latest')).items.map((i) => i.name), ['db.sql', 'vol.tar']);
      await F.assertHealthy(again, 'full');
      assert.deepEqual(await r.files.list('locks'), [], 'close() removes every lock object');
    });

    test('dedup: the same data again stores no new pack', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO });
      t.after(() => repo.close());
      const data = randomBytes(2 * MiB, 21);
      await repo.ingest(chunkedStream(data, 3));
      const before = await packsOf(r.files);
      const second = await repo.ingest(chunkedStream(data, 4));
      assert.deepEqual(await packsOf(r.files), before, 'no pack was added');
      assert.equal(second.newChunks, 0);
      await assertRestores(repo, second.id, data);
    });

    test('encryption at rest: no stored object holds the plaintext', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO, passphrase: PASSPHRASE, compression: 'none' });
      t.after(() => repo.close());
      const marker = Buffer.from('CONTAINERARCHIVE-PLAINTEXT-MARKER-');
      const data = Buffer.concat(Array.from({ length: 20000 }, (_, i) => Buffer.concat([marker, Buffer.from(String(i))])));
      await repo.ingest(chunkedStream(data, 5), { tags: { secret: 'TAG-VALUE-SECRET' } });
      const keys = await r.files.all();
      assert.ok(keys.some((k) => k.endsWith('.pack')), `packs are stored: ${keys}`);
      for (const key of keys) {
        const bytes = await r.files.read(key);
        assert.equal(bytes.includes(marker), false, `${key} holds plaintext data`);
        assert.equal(bytes.includes(Buffer.from('TAG-VALUE-SECRET')), false, `${key} holds a plaintext tag`);
      }
    });

    test('corruption: a damaged pack object is found by full verify and rebuilt by repair', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO });
      t.after(() => repo.close());
      const data = randomBytes(1536 * KiB, 31);
      const snap = await repo.ingest(chunkedStream(data, 6));
      const [victim] = await packsOf(r.files);
      const bytes = await r.files.read(`packs/data/${victim}`);
      bytes[Math.floor(bytes.length / 2)] ^= 0x40;
      await r.files.write(`packs/data/${victim}`, bytes);
      const found = await F.verify(repo, 'full');
      assert.equal(found.ok, false);
      F.assertIssue(found, { kind: F.ISSUE_KINDS, pack: victim.replace('.pack', '') });
      const repaired = await repo.repair();
      assert.ok(repaired.packsRepaired >= 1, JSON.stringify(repaired));
      assert.deepEqual(repaired.unrecoverable, []);
      await F.assertHealthy(repo, 'full', 'after repair');
      await assertRestores(repo, snap.id, data);
    });

    test('parity rebuild: a deleted pack object comes back from parity', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO });
      t.after(() => repo.close());
      const data = randomBytes(1536 * KiB, 41);
      const snap = await repo.ingest(chunkedStream(data, 7));
      const packs = await packsOf(r.files);
      await r.files.del(`packs/data/${packs[1]}`);
      assert.equal((await F.verify(repo, 'quick')).ok, false, 'quick verify sees the missing pack');
      await repo.repair();
      assert.deepEqual(await packsOf(r.files), packs, 'the pack is back under its name');
      await F.assertHealthy(repo, 'full', 'after the rebuild');
      await assertRestores(repo, snap.id, data);
    });

    test('prune: old snapshots go, their data with them; the kept one restores', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO });
      t.after(() => repo.close());
      const olds = [randomBytes(MiB, 51), randomBytes(MiB, 52)];
      for (const [i, d] of olds.entries()) await repo.ingest(chunkedStream(d, i));
      const kept = randomBytes(MiB, 53);
      const last = await repo.ingest(chunkedStream(kept, 9));
      const before = (await packsOf(r.files)).length;
      const result = await repo.prune({ keepLast: 1 });
      assert.equal(result.removedSnapshots.length, 2, JSON.stringify(result));
      assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [last.id]);
      assert.ok((await packsOf(r.files)).length < before, 'packs only the pruned snapshots used are deleted');
      await F.assertHealthy(repo, 'full', 'after prune');
      await assertRestores(repo, last.id, kept);
    });

    test('locks: an exclusive operation waits out a live lock, and a stale one is cleared', async (t, r) => {
      const repo = await ContainerArchive.init(r.location, { ...r.options, ...F.SMALL_REPO });
      t.after(() => repo.close());
      // A live lock of another host: refreshed just now.
      const now = new Date().toISOString();
      const record = (id, at) => {
        const rec = { id, exclusive: false, hostname: 'other-host', pid: 4242, createdAt: at, refreshedAt: at };
        const canonical = `${rec.id}:${rec.exclusive}:${rec.hostname}:${rec.pid}:${rec.createdAt}:${rec.refreshedAt}`;
        return Buffer.from(JSON.stringify({ ...rec, checksum: crypto.createHash('sha256').update(canonical).digest('hex') }));
      };
      await r.files.write('locks/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json', record('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', now));
      await rejectsWithCode(() => repo.prune({ keepLast: 1 }), 'ERR_LOCKED');
      assert.equal(await repo.unlock(), 0, 'a live lock of another host is not removed');
      // Not refreshed for 31 minutes: stale, whatever host holds it.
      const old = new Date(Date.now() - 31 * 60 * 1000).toISOString();
      await r.files.write('locks/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json', record('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', old));
      await repo.prune({ keepLast: 1 });
      assert.equal(await repo.unlock(), 1, 'unlock removes the stale lock');
      assert.deepEqual(await r.files.list('locks'), []);
    });

    test('CLI: init, backup, snapshots, restore, verify, prune on the location', async (t, r) => {
      const env = baseEnv(r.env);
      ok(cli(['init', r.location], { env }), 'init');
      const data = randomBytes(MiB + 3, 61);
      ok(cli(['backup', r.location, '-', '--tag', 'app=cli'], { env, input: data }), 'backup');
      const snaps = snapshotsJson(r.location, env);
      assert.equal(snaps.length, 1);
      const restored = cli(['restore', r.location, 'latest'], { env });
      ok(restored, 'restore');
      assert.equal(Buffer.compare(restored.stdout, data), 0, "the restored bytes equal the backup's");
      ok(cli(['verify', r.location, '--level', 'full'], { env }), 'verify');
      ok(cli(['prune', r.location, '--keep-last', '1'], { env }), 'prune');
    });
  });
}
