'use strict';

// Several hosts, one bucket (issue 10): two processes with different host
// identities ingest into one repository at the same moment, then a third
// prunes. Every pack must end up covered by parity (verify full checks
// that), nothing either host wrote may be lost, and every kept snapshot
// restores byte-identical.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { MiB, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');
const { s3Env } = require('./backends');

const { ContainerArchive } = loadPackage();
const T = { timeout: 300000 };
const PASSPHRASE = 'two hosts, one bucket';

// argv: <package dir> <fault-helpers> <location> <host> <jobs JSON: [{ seed, size }]>
const CHILD = `
const [pkg, fh, location, host, jobsJson] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
const F = require(fh);
const { Readable } = require('node:stream');
(async () => {
  const repo = await ContainerArchive.open(location, { passphrase: process.env.TEST_PASSPHRASE, cache: false, lockTimeoutMs: 120000 });
  for (const job of JSON.parse(jobsJson)) {
    const snap = await repo.ingest(Readable.from(F.genPieces(job.seed, job.size)), { host, tags: { seed: String(job.seed) } });
    process.stdout.write('SNAP ' + snap.id + ' ' + job.seed + '\\n');
  }
  await repo.close();
})().catch((e) => { process.stderr.write(String(e && e.stack) + ' code=' + (e && e.code) + '\\n'); process.exit(1); });
`;

function runChild(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, path.resolve(__dirname, '..'), F.FAULT_HELPERS, ...args], {
      env: { ...process.env, ...env, TEST_PASSPHRASE: PASSPHRASE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${args[1]} exited ${code}: ${err}`))));
  });
}

it('two hosts ingest into one bucket at once, a third prunes: everything verifies and restores', T, async (t) => {
  if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
  const g = await startGarage();
  t.after(() => g.stop());
  const location = `s3://${g.bucket}/shared`;
  const env = s3Env(g);
  const init = await ContainerArchive.init(location, { passphrase: PASSPHRASE, cache: false, storage: { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey }, ...F.SMALL_REPO });
  await init.close();

  // Seeds 1 and 2 are ingested by both hosts: they race to store the same chunks.
  const jobs = {
    'host-a': [{ seed: 1, size: 3 * MiB }, { seed: 10, size: 2 * MiB }, { seed: 2, size: 2 * MiB }],
    'host-b': [{ seed: 2, size: 2 * MiB }, { seed: 20, size: 3 * MiB }, { seed: 1, size: 3 * MiB }],
  };
  const outputs = await Promise.all(Object.entries(jobs).map(([host, list]) => runChild([location, host, JSON.stringify(list)], env)));
  const made = outputs.flatMap((out) => out.trim().split('\n').map((line) => line.split(' ')));
  assert.equal(made.length, 6, outputs.join('\n'));

  const sizeOf = Object.fromEntries(Object.values(jobs).flat().map((j) => [j.seed, j.size]));
  const repo = await ContainerArchive.open(location, { passphrase: PASSPHRASE, cache: false, storage: { accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey, endpoint: g.endpoint, region: g.region } });
  t.after(() => repo.close());
  const snaps = await repo.listSnapshots();
  assert.deepEqual(snaps.map((s) => s.host).sort(), ['host-a', 'host-a', 'host-a', 'host-b', 'host-b', 'host-b']);
  await F.assertHealthy(repo, 'full', 'after two hosts wrote at once (every pack has parity)');
  for (const [, id, seed] of made) {
    await assertRestores(repo, id, Buffer.concat([...F.genPieces(Number(seed), sizeOf[seed])]));
  }

  // A third process prunes: the last snapshot of each host stays.
  const pruned = await repo.prune({ keepLast: 1, groupBy: ['host'] });
  assert.equal(pruned.removedSnapshots.length, 4, JSON.stringify(pruned));
  const kept = await repo.listSnapshots();
  assert.deepEqual(kept.map((s) => s.host).sort(), ['host-a', 'host-b']);
  await F.assertHealthy(repo, 'full', 'after the prune');
  for (const s of kept) {
    const seed = Number(s.tags.seed);
    await assertRestores(repo, s.id, Buffer.concat([...F.genPieces(seed, sizeOf[seed])]));
  }
});
