'use strict';

// Crash safety on a bucket (issue 10, the kill test on the S3 backend): a
// child process ingests into a repository in Garage and is SIGKILLed at
// several instants of a second ingest. Afterwards the completed snapshot
// restores before any repair; the dead process's lock is live-looking (no
// process id check on object storage), so the operator forces unlock, runs
// repair, and full verify is clean; a new ingest works.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { Readable } = require('node:stream');

const { MiB, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');

const { ContainerArchive } = loadPackage();
const T = { timeout: 300000 };
const BIG = 8 * MiB;

// argv: <package dir> <fault-helpers> <location> <markAt or 'end'>; TEST_OPEN: the open options (JSON).
const CHILD = `
const [pkg, fh, location, markAt] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
const F = require(fh);
const { Readable } = require('node:stream');
(async () => {
  const repo = await ContainerArchive.open(location, JSON.parse(process.env.TEST_OPEN));
  let marked = false;
  const mark = () => { if (!marked) { marked = true; process.stdout.write('MARK\\n'); } };
  const gen = F.genPieces(2, ${BIG}, 256 * 1024, {
    onPiece: (i, offset) => { if (markAt !== 'end' && offset >= Number(markAt)) mark(); },
    onEnd: () => { if (markAt === 'end') mark(); },
  });
  await repo.ingest(Readable.from(gen));
  process.stdout.write('SNAP\\n');
  await repo.close();
})().catch((e) => { process.stderr.write(String(e && e.stack) + '\\n'); process.exit(1); });
`;

/** Runs the child and SIGKILLs it at its MARK line; resolves once it is dead. */
function runAndKill(location, markAt, open) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, path.resolve(__dirname, '..'), F.FAULT_HELPERS, location, String(markAt)], {
      env: { ...process.env, TEST_OPEN: JSON.stringify(open) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'MARK') child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, err }));
  });
}

it('a process killed at any point of an ingest into a bucket leaves a repository that repairs, verifies and restores', T, async (t) => {
  if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
  const g = await startGarage();
  t.after(() => g.stop());
  const open = { cache: false, storage: { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey } };
  const first = Buffer.concat([...F.genPieces(1, 2 * MiB)]);
  for (const markAt of [256 * 1024, BIG / 2, 'end']) {
    const location = `s3://${g.bucket}/kill-${markAt}`;
    const repo = await ContainerArchive.init(location, { ...open, ...F.SMALL_REPO });
    const done = await repo.ingest(Readable.from([first]));
    await repo.close();

    const { signal, err } = await runAndKill(location, markAt, open);
    assert.equal(signal, 'SIGKILL', `the child was killed at ${markAt}, not ended: ${err}`);

    const after = await ContainerArchive.open(location, open);
    await assertRestores(after, done.id, first);
    assert.ok((await after.unlock({ force: true })) >= 1, 'the dead process left its lock');
    const repaired = await after.repair();
    assert.deepEqual(repaired.unrecoverable, [], `at ${markAt}`);
    await F.assertHealthy(after, 'full', `after a kill at ${markAt} and repair`);
    for (const s of await after.listSnapshots()) {
      const expected = s.id === done.id ? first : Buffer.concat([...F.genPieces(2, BIG)]);
      await assertRestores(after, s.id, expected);
    }
    const next = await after.ingest(Readable.from([Buffer.from('after the crash')]));
    await assertRestores(after, next.id, Buffer.from('after the crash'));
    await after.close();
  }
});
