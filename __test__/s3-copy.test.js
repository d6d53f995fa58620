'use strict';

// Copying snapshots off-site and back (issue 10, the 3-2-1 rule): from a local
// repository to a bucket of a real Garage server and from there into a second
// local repository. Every snapshot restores byte-identical at each step, and
// a second copy uploads nothing new (the bucket's object listing is unchanged).

const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Readable } = require('node:stream');

const { MiB, tmpFor, randomBytes, textishBytes, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');
const { bucketFiles, s3Env } = require('./backends');
const { cli, baseEnv, ok } = require('./cli-helpers');

const { ContainerArchive } = loadPackage();
const T = { timeout: 300000 };

it('copies local -> bucket -> local: byte-identical everywhere, and a repeated copy uploads nothing', T, async (t) => {
  if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
  const g = await startGarage();
  t.after(() => g.stop());
  const dir = tmpFor(t);
  const storage = { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey };
  const where = { storage, cacheDir: path.join(dir, 'cache') };

  const local = await ContainerArchive.init(path.join(dir, 'local'), { compression: 'zstd' });
  t.after(() => local.close());
  const a = randomBytes(3 * MiB, 91);
  const b = Buffer.concat([a.subarray(0, 2 * MiB), textishBytes(MiB, 92)]);
  const s1 = await local.ingest(Readable.from([a]), { tags: { app: 'db' } });
  const s2 = await local.ingestMulti([
    { name: 'dump.sql', type: 'database-dump', stream: Readable.from([b]) },
    { name: 'etc', type: 'config', stream: Readable.from([Buffer.from('x = 1\n')]) },
  ], { tags: { app: 'db', kind: 'daily' } });

  const offsite = await ContainerArchive.init(`s3://${g.bucket}/offsite`, { ...where, passphrase: 'offsite', ...F.SMALL_REPO });
  t.after(() => offsite.close());
  const first = await local.copySnapshots(offsite);
  assert.deepEqual(first.copied, [s1.id, s2.id]);
  await assertRestores(offsite, s1.id, a);
  await assertRestores(offsite, s2.id, b, { item: 'dump.sql' });
  assert.deepEqual((await offsite.getSnapshot(s2.id)).tags, { app: 'db', kind: 'daily' });
  await F.assertHealthy(offsite, 'full', 'the off-site copy');

  const objects = bucketFiles(g, 'offsite');
  const before = await objects.all();
  const again = await local.copySnapshots(offsite);
  assert.deepEqual(again.copied, []);
  assert.deepEqual(again.skipped, [s1.id, s2.id]);
  assert.deepEqual(await objects.all(), before, 'a second copy uploads nothing');

  // Back from the bucket, through the CLI, as an operator restoring after losing the host.
  const env = baseEnv({ ...s3Env(g), CONTAINERARCHIVE_PASSPHRASE: 'offsite' });
  const back = path.join(dir, 'back');
  ok(cli(['init', back], { env: baseEnv() }), 'init the local target');
  ok(cli(['copy', `s3://${g.bucket}/offsite`, back, '--tag', 'kind=daily', '--cache-dir', where.cacheDir], { env }), 'copy back');
  const restored = await ContainerArchive.open(back);
  t.after(() => restored.close());
  assert.deepEqual((await restored.listSnapshots()).map((s) => s.id), [s2.id], 'only the tagged snapshot came back');
  await assertRestores(restored, s2.id, b, { item: 'dump.sql' });
  await F.assertHealthy(restored, 'full', 'the copy back');
});
