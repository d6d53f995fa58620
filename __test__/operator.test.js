'use strict';

// Operator safety at the API: retention per group, `until` (a failed producer
// never becomes a snapshot), 'latest' and id prefixes with filters, the
// passphrase rule, and stats() that stay true after ingest, forget, prune and repair.
// Each "today" reproduction of the issue is a regression test here.

process.env.CONTAINERARCHIVE_TEST_CREATED_AT = '1';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Readable, PassThrough } = require('node:stream');

const { KiB, MiB, tmpFor, randomBytes, collect, rejectsWithCode, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();
const T = { timeout: 120000 };
const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-03-02T10:00:00Z');

async function fresh(t, options) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, options);
  t.after(() => repo.close().catch(() => {}));
  return { dir, repo };
}

const put = (repo, bytes, tags, at) =>
  repo.ingest(Readable.from([Buffer.from(bytes)]), { tags, items: [{ name: 'database.sql' }], ...(at ? { createdAt: new Date(at) } : {}) });

describe('retention applies per backup source', () => {
  it('keeps nextcloud\'s only snapshot when postgres has two (keepDays 1)', T, async (t) => {
    const { repo } = await fresh(t);
    const pg1 = await put(repo, 'pg1', { service: 'postgres' }, T0);
    const pg2 = await put(repo, 'pg2', { service: 'postgres' }, T0 + DAY);
    const nc = await put(repo, 'nc', { service: 'nextcloud' }, T0 + 1000);

    const dry = await repo.prune({ keepDays: 1 }, true);
    assert.deepEqual(dry.removedSnapshots, [pg1.id]);
    assert.deepEqual(dry.keptSnapshots.sort(), [pg2.id, nc.id].sort());
    assert.equal(dry.groups.length, 2);
    const byService = Object.fromEntries(dry.groups.map((g) => [g.tags.service, g]));
    assert.deepEqual(byService.nextcloud, { host: os.hostname(), tags: { service: 'nextcloud' }, keptSnapshots: [nc.id], removedSnapshots: [], reasons: { [nc.id]: ['daily'] } });
    assert.deepEqual(byService.postgres.keptSnapshots, [pg2.id]);
    assert.deepEqual(byService.postgres.removedSnapshots, [pg1.id]);

    // groupBy false: one policy over the repository (the old behaviour).
    const whole = await repo.prune({ keepDays: 1, groupBy: false }, true);
    assert.deepEqual(whole.keptSnapshots, [pg2.id]);
    assert.deepEqual(whole.groups, [{ tags: {}, keptSnapshots: [pg2.id], removedSnapshots: [pg1.id, nc.id], reasons: { [pg2.id]: ['daily'] } }]);

    // groupBy ['host', 'service'] ignores other tags; filter applies before grouping.
    await put(repo, 'pg3', { service: 'postgres', run: 'manual' }, T0 + 2 * DAY);
    const keyed = await repo.prune({ keepDays: 1, groupBy: ['host', 'service'], filter: { tags: { service: 'postgres' } } }, true);
    assert.equal(keyed.groups.length, 1);
    assert.deepEqual(keyed.groups[0].tags, { service: 'postgres' });
    assert.equal(keyed.groups[0].host, os.hostname());
    assert.deepEqual(keyed.removedSnapshots, [pg1.id, pg2.id]);

    for (const groupBy of [true, 'host', [''], [1], ['host', 'host']]) {
      await rejectsWithCode(repo.prune({ keepDays: 1, groupBy }, true), 'ERR_INVALID_ARGUMENT');
    }
    // The real run removes what the dry run said.
    const real = await repo.prune({ keepDays: 1 });
    // Groups come in key order: {run, service} sorts before {service}.
    assert.deepEqual(real.groups.map((g) => g.removedSnapshots), [[], [], [pg1.id]]);
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id).sort(), [pg2.id, nc.id, (await repo.getSnapshot('latest')).id].sort());
  });
});

describe('a failed producer never becomes a snapshot (until)', () => {
  it('writes the snapshot only when until resolves, also after the stream ended', T, async (t) => {
    const { repo } = await fresh(t);
    const data = randomBytes(300 * KiB, 3);
    let release;
    const until = new Promise((resolve) => { release = resolve; });
    let settled = false;
    const ingest = repo.ingest(Readable.from([data]), { until }).then((s) => { settled = true; return s; });
    // The stream ends at once, but the snapshot waits for until.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(settled, false, 'the ingest waits for until');
    assert.equal((await repo.listSnapshots()).length, 0);
    release();
    const snap = await ingest;
    assert.equal(snap.originalSize, data.length);
    assert.ok((await collect(await repo.restore(snap.id))).equals(data));
  });

  it('rejects with until\'s own error and writes nothing, before or after the stream ended', T, async (t) => {
    const { repo } = await fresh(t);
    // After the end: the stream is fully read, the producer then reports failure.
    const failure = new Error('pg_dump: connection refused');
    await assert.rejects(repo.ingest(Readable.from([randomBytes(200 * KiB, 4)]), { until: Promise.reject(failure) }), (e) => e === failure);
    // Before the end: a stream that never ends is failed by the rejection.
    const endless = new PassThrough();
    endless.write(randomBytes(64 * KiB, 5));
    const boom = new Error('producer died');
    const pending = repo.ingestMulti([{ name: 'a', stream: Readable.from([Buffer.from('x')]) }, { name: 'b', stream: endless }], {
      until: new Promise((_, reject) => setTimeout(() => reject(boom), 100)),
    });
    await assert.rejects(pending, (e) => e === boom);
    assert.equal((await repo.listSnapshots()).length, 0, 'no snapshot was written');
    await rejectsWithCode(repo.ingest(Readable.from([Buffer.from('x')]), { until: 42 }), 'ERR_INVALID_ARGUMENT');
  });

  it('pg_dump through child_process.spawn: a failing producer leaves no snapshot, a good one does', T, async (t) => {
    const { repo } = await fresh(t);
    const run = (script) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump exited with ${code}`))));
      });
      return repo.ingest(child.stdout, { until: exited, items: [{ name: 'database.sql', type: 'database-dump' }] });
    };
    // Today: `pg_dump_fail | backup -` stored an empty snapshot that became latest.
    await assert.rejects(run('process.exit(1)'), /pg_dump exited with 1/);
    await assert.rejects(run("process.stdout.write('partial dump'); process.exitCode = 2"), /exited with 2/);
    assert.equal((await repo.listSnapshots()).length, 0);
    await rejectsWithCode(repo.getSnapshot('latest'), 'ERR_SNAPSHOT_NOT_FOUND');
    const good = await run("process.stdout.write('CREATE TABLE t();')");
    assert.equal((await repo.getSnapshot('latest')).id, good.id);
    assert.equal((await collect(await repo.restore('latest'))).toString(), 'CREATE TABLE t();');
  });
});

describe("'latest', id prefixes and filters", () => {
  it('restore(\'latest\', { tags }) never restores another service\'s item', T, async (t) => {
    const { repo } = await fresh(t);
    const pg = await put(repo, 'postgres dump', { service: 'postgres' }, T0);
    const nc = await put(repo, 'nextcloud dump', { service: 'nextcloud' }, T0 + DAY);
    const text = async (s) => (await collect(s)).toString();
    // Today the API rejected 'latest' and short ids.
    assert.equal((await repo.getSnapshot('latest')).id, nc.id);
    assert.equal(await text(await repo.restore('latest', { item: 'database.sql', tags: { service: 'postgres' } })), 'postgres dump');
    assert.equal((await repo.getSnapshot('latest', { tags: { service: 'postgres' } })).id, pg.id);
    assert.equal((await repo.getSnapshot('latest', { host: os.hostname() })).id, nc.id, 'snapshots record this host');
    await rejectsWithCode(repo.getSnapshot('latest', { host: 'db1' }), 'ERR_SNAPSHOT_NOT_FOUND');
    await rejectsWithCode(repo.restore('latest', { tags: { service: 'mysql' } }), 'ERR_SNAPSHOT_NOT_FOUND');

    assert.equal((await repo.getSnapshot(pg.id.slice(0, 8))).id, pg.id);
    assert.equal(await text(await repo.restore(nc.id.slice(0, 12))), 'nextcloud dump');
    await rejectsWithCode(repo.restore(nc.id, { tags: { service: 'postgres' } }), 'ERR_SNAPSHOT_NOT_FOUND');
    for (const bad of [pg.id.slice(0, 7), 'latest ', 'nope', '']) {
      await rejectsWithCode(repo.getSnapshot(bad), 'ERR_INVALID_ARGUMENT');
    }
    await rejectsWithCode(repo.getSnapshot(pg.id, { tag: {} }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(repo.restore('latest', { host: 7 }), 'ERR_INVALID_ARGUMENT');

    assert.deepEqual((await repo.listSnapshots({ host: os.hostname() })).map((s) => s.id), [pg.id, nc.id]);
    assert.deepEqual(await repo.listSnapshots({ host: 'db1' }), []);
    assert.deepEqual((await repo.listSnapshots({ tags: { service: 'nextcloud' } })).map((s) => s.id), [nc.id]);
  });
});

describe('no repository is unencrypted by accident', () => {
  it('rejects a passphrase key that is undefined, null or empty, naming both ways out', T, async (t) => {
    const dir = tmpFor(t);
    for (const passphrase of [undefined, null, '']) {
      const target = path.join(dir, `r${String(passphrase)}`);
      // Today: init(path, { passphrase: process.env.UNSET }) made an unencrypted repository.
      const err = await rejectsWithCode(ContainerArchive.init(target, { passphrase }), 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /pass the passphrase/);
      assert.match(err.message, /leave the passphrase option out/);
      assert.equal(fs.existsSync(target), false, 'nothing was created');
    }
    const plain = path.join(dir, 'plain');
    await (await ContainerArchive.init(plain)).close();
    for (const passphrase of [undefined, null, '']) {
      await rejectsWithCode(ContainerArchive.open(plain, { passphrase }), 'ERR_INVALID_ARGUMENT');
    }
    await (await ContainerArchive.open(plain, {})).close();
  });
});

describe('stats() stay true', () => {
  function onDisk(dir) {
    const sum = (sub, re) => {
      const files = fs.readdirSync(path.join(dir, sub)).filter((f) => re.test(f));
      return { files: files.length, bytes: files.reduce((n, f) => n + fs.statSync(path.join(dir, sub, f)).size, 0) };
    };
    return { packs: sum('packs/data', /\.pack$/), parity: sum('packs/parity', /\.(par|group)$/) };
  }

  function assertTrue(stats, dir, expected) {
    const disk = onDisk(dir);
    assert.deepEqual(stats.packs, disk.packs);
    assert.deepEqual(stats.parity, disk.parity);
    assert.equal(stats.snapshots, expected.snapshots);
    assert.equal(stats.logicalBytes, expected.logical);
    assert.equal(stats.uniqueChunks.rawBytes, expected.uniqueRaw);
    assert.equal(stats.missingChunks, 0);
    const ratio = (a, b) => (b > 0 ? a / b : null);
    assert.equal(stats.dedupRatio, ratio(stats.logicalBytes, stats.uniqueChunks.rawBytes));
    assert.equal(stats.compressionRatio, ratio(stats.uniqueChunks.rawBytes, stats.uniqueChunks.storedBytes));
    assert.equal(stats.parityOverhead, ratio(stats.parity.bytes, stats.packs.bytes));
  }

  it('after ingest, prune, repair and forget', T, async (t) => {
    const { dir, repo } = await fresh(t, { compression: 'zstd', packTargetSize: 256 * KiB, parity: { dataShards: 3, parityShards: 1 } });
    assertTrue(await repo.stats(), dir, { snapshots: 0, logical: 0, uniqueRaw: 0 });
    const a = randomBytes(MiB, 11);
    await repo.ingest(Readable.from([a]));
    assertTrue(await repo.stats(), dir, { snapshots: 1, logical: a.length, uniqueRaw: a.length });
    await repo.ingest(Readable.from([a]));
    const two = await repo.stats();
    assertTrue(two, dir, { snapshots: 2, logical: 2 * a.length, uniqueRaw: a.length });
    assert.equal(two.dedupRatio, 2);

    // Today: after prune keepLast 1 the figures read 0 B stored, 0 chunks, dedup '-'.
    await repo.prune({ keepLast: 1 });
    const pruned = await repo.stats();
    assertTrue(pruned, dir, { snapshots: 1, logical: a.length, uniqueRaw: a.length });
    assert.deepEqual(pruned.uniqueChunks, two.uniqueChunks);
    assert.ok(pruned.uniqueChunks.storedBytes > 0 && pruned.packs.bytes > 0);

    // A second source, then prune it away with a policy for the whole repository.
    const b = randomBytes(700 * KiB, 12);
    await repo.ingest(Readable.from([b]), { tags: { service: 'other' } });
    assertTrue(await repo.stats(), dir, { snapshots: 2, logical: a.length + b.length, uniqueRaw: a.length + b.length });
    await repo.prune({ keepLast: 1, groupBy: false, maxUnused: 0 });
    const after = await repo.stats();
    assertTrue(after, dir, { snapshots: 1, logical: b.length, uniqueRaw: b.length });
    assert.equal(after.unreferencedChunks.count, 0);

    // Delete a pack: stats reports what is on disk; repair rebuilds it and the figures return.
    const pack = fs.readdirSync(path.join(dir, 'packs/data')).find((f) => f.endsWith('.pack'));
    fs.rmSync(path.join(dir, 'packs/data', pack));
    assert.equal((await repo.stats()).packs.files, after.packs.files - 1);
    await repo.repair();
    const repaired = await repo.stats();
    assertTrue(repaired, dir, { snapshots: 1, logical: b.length, uniqueRaw: b.length });
    assert.deepEqual(repaired.packs, after.packs);
    await rejectsWithCode(repo.stats({ json: true }), 'ERR_INVALID_ARGUMENT');

    // forget without prune: the snapshot's data stays on disk, unreferenced.
    const c = randomBytes(500 * KiB, 13);
    const sc = await repo.ingest(Readable.from([c]));
    const grown = await repo.stats();
    assertTrue(grown, dir, { snapshots: 2, logical: b.length + c.length, uniqueRaw: b.length + c.length });
    await repo.forget(sc.id.slice(0, 8));
    const forgotten = await repo.stats();
    assertTrue(forgotten, dir, { snapshots: 1, logical: b.length, uniqueRaw: b.length });
    assert.deepEqual(forgotten.packs, grown.packs);
    assert.equal(forgotten.unreferencedChunks.rawBytes, grown.unreferencedChunks.rawBytes + c.length);

    // forget with prune: reclaimed at once, and what stays is what forget left.
    const d = randomBytes(500 * KiB, 14);
    const sd = await repo.ingest(Readable.from([d]));
    const before = await repo.stats();
    const report = await repo.forget([sd.id], { prune: true });
    const reclaimed = await repo.stats();
    assertTrue(reclaimed, dir, { snapshots: 1, logical: b.length, uniqueRaw: b.length });
    assert.equal(report.freedBytes, before.packs.bytes - reclaimed.packs.bytes);
    assert.ok(reclaimed.packs.bytes < forgotten.packs.bytes, JSON.stringify(reclaimed));
    assert.ok(reclaimed.unreferencedChunks.storedBytes <= reclaimed.packs.bytes / 10, 'at most maxUnused (10%) garbage stays');
  });
});
