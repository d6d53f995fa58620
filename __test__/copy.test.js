'use strict';

// copySnapshots(target, filter) between two local repositories with different
// keys, compression and parity, and the `copy` CLI command. (The S3 variants
// live with the off-site tests.)

process.env.CONTAINERARCHIVE_TEST_CREATED_AT = '1';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');

const { tmpFor, randomBytes, textishBytes, assertRestores, rejectsWithCode, loadPackage } = require('./helpers');
const { cli, baseEnv, ok, expectFailure, EXIT, snapshotsJson } = require('./cli-helpers');

const { ContainerArchive } = loadPackage();

const packFiles = (repo) => fs.readdirSync(path.join(repo, 'packs', 'data')).filter((n) => n.endsWith('.pack')).sort();

async function twoRepos(t) {
  const dir = tmpFor(t);
  const from = path.join(dir, 'from');
  const to = path.join(dir, 'to');
  const source = await ContainerArchive.init(from, { passphrase: 'source pass', compression: 'gzip' });
  const target = await ContainerArchive.init(to, {
    passphrase: 'target pass',
    compression: 'zstd',
    parity: { dataShards: 2, parityShards: 2 },
  });
  t.after(() => Promise.all([source.close(), target.close()]));
  return { from, to, source, target };
}

describe('copySnapshots', () => {
  it('copies snapshots with their metadata; they restore byte-identical; a second copy writes nothing', async (t) => {
    const { to, source, target } = await twoRepos(t);
    // The shared prefix is longer than the largest chunk (4 MiB), so it holds at
    // least one whole chunk whatever the target's keyed chunker cuts (with 2 MiB,
    // a fresh-clone run once had its first cut past the shared part).
    const a = randomBytes(6 * 1024 * 1024, 11);
    const b = Buffer.concat([a.subarray(0, 5 * 1024 * 1024), textishBytes(1024 * 1024, 12)]);
    const s1 = await source.ingest(Readable.from([a]), {
      tags: { service: 'db' },
      host: 'db-1',
      items: [{ name: 'dump.sql', type: 'database-dump' }],
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    const s2 = await source.ingestMulti(
      [
        { name: 'dump.sql', type: 'database-dump', stream: Readable.from([b]) },
        { name: 'conf', type: 'config', stream: Readable.from([Buffer.from('key = value\n')]) },
      ],
      { tags: { service: 'db', kind: 'daily' }, host: 'db-1', createdAt: '2026-02-01T00:00:00.000Z' },
    );

    const progress = [];
    source.on('copy:progress', (e) => progress.push(e));
    const result = await source.copySnapshots(target);
    assert.deepEqual(result.copied, [s1.id, s2.id]);
    assert.deepEqual(result.skipped, []);
    assert.equal(result.bytesCopied, a.length + b.length + 12);
    assert.ok(result.reusedChunks > 0, 'the shared 5 MiB is stored once');
    assert.ok(progress.length > 0 && progress.every((e) => e.operation === 'copy'));
    assert.equal(progress.at(-1).bytesProcessed, result.bytesCopied);

    const copies = await target.listSnapshots();
    const keep = (s) => ({
      id: s.id, createdAt: s.createdAt, tags: s.tags, host: s.host, user: s.user, originalSize: s.originalSize,
      items: s.items.map((i) => ({ name: i.name, type: i.type, size: i.size, sha256: i.sha256 })),
    });
    assert.deepEqual(copies.map(keep), [s1, s2].map(keep));
    await assertRestores(target, s1.id, a);
    await assertRestores(target, s2.id, b, { item: 'dump.sql' });
    const report = await target.verify({ level: 'full' });
    assert.equal(report.ok, true, JSON.stringify(report.errors));

    const packs = packFiles(to);
    const again = await source.copySnapshots(target);
    assert.deepEqual(again.copied, []);
    assert.deepEqual(again.skipped, [s1.id, s2.id]);
    assert.equal(again.storedSize, 0);
    assert.deepEqual(packFiles(to), packs, 'no new pack');
  });

  it('filters by tags, host and time, and checks its arguments', async (t) => {
    const { source, target } = await twoRepos(t);
    const mk = (tags, createdAt) => source.ingest(Readable.from([Buffer.from(`x ${createdAt}`)]), { tags, createdAt });
    const s1 = await mk({ k: 'a' }, '2026-01-01T00:00:00.000Z');
    const s2 = await mk({ k: 'b' }, '2026-01-02T00:00:00.000Z');
    const s3 = await mk({ k: 'a' }, '2026-01-03T00:00:00.000Z');
    assert.deepEqual((await source.copySnapshots(target, { tags: { k: 'a' } })).copied, [s1.id, s3.id]);
    assert.deepEqual((await source.copySnapshots(target, { host: 'nowhere' })).copied, []);
    const window = { after: '2026-01-01T00:00:00.000Z', before: new Date('2026-01-03T00:00:00.000Z') };
    assert.deepEqual((await source.copySnapshots(target, window)).copied, [s2.id]);
    assert.deepEqual((await target.listSnapshots()).map((s) => s.id), [s1.id, s2.id, s3.id]);

    await rejectsWithCode(() => source.copySnapshots({}), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => source.copySnapshots(target, { after: 'not a date' }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => source.copySnapshots(target, { unknown: 1 }), 'ERR_INVALID_ARGUMENT');
    const closed = await ContainerArchive.open(target.path, { passphrase: 'target pass' });
    await closed.close();
    await rejectsWithCode(() => source.copySnapshots(closed), 'ERR_CLOSED');
  });
});

describe('containerarchive copy', () => {
  it('copies into another repository, then finds nothing left to copy', async (t) => {
    const dir = tmpFor(t);
    const from = path.join(dir, 'from');
    const to = path.join(dir, 'to');
    const passFile = path.join(dir, 'to-pass');
    fs.writeFileSync(passFile, 'target pass\n');
    const env = baseEnv({ CONTAINERARCHIVE_PASSPHRASE: 'source pass' });
    ok(cli(['init', from, '--encrypt'], { env }), 'init from');
    ok(cli(['init', to, '--encrypt', '--compression', 'zstd'], { env: baseEnv({ CONTAINERARCHIVE_PASSPHRASE: 'target pass' }) }), 'init to');
    const data = randomBytes(512 * 1024, 5);
    ok(cli(['backup', from, '-', '--tag', 'app=web'], { env, input: data }), 'backup');
    ok(cli(['backup', from, '-', '--tag', 'app=cron'], { env, input: Buffer.from('other') }), 'backup 2');

    // <to>'s passphrase differs: without --to-passphrase-file the copy stops and says how to give it.
    expectFailure(cli(['copy', from, to], { env }), EXIT.PASSPHRASE, [/to-passphrase-file/], 'copy without the target passphrase');

    const first = ok(cli(['copy', from, to, '--tag', 'app=web', '--to-passphrase-file', passFile, '--json'], { env }), 'copy');
    const result = JSON.parse(first.out);
    assert.equal(result.copied.length, 1);
    const copied = snapshotsJson(to, baseEnv({ CONTAINERARCHIVE_PASSPHRASE: 'target pass' }));
    assert.deepEqual(copied.map((s) => s.tags), [{ app: 'web' }]);
    const restored = ok(cli(['restore', to, 'latest'], { env: baseEnv({ CONTAINERARCHIVE_PASSPHRASE: 'target pass' }) }), 'restore');
    assert.ok(restored.stdout.equals(data), 'restored byte-identical from the copy');

    const second = ok(cli(['copy', from, to, '--tag', 'app=web', '--to-passphrase-file', passFile], { env }), 'copy again');
    assert.match(second.out, /0 snapshots copied, 1 already in/);
  });
});
