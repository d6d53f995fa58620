'use strict';

// Two Node processes ingest into the same repository at the same time (started together
// through a READY/GO handshake, no sleeps). Both must succeed; afterwards every snapshot
// restores byte-identical and verify(full) is ok.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');

const { KiB, MiB, tmpFor, randomBytes, chunkedStream, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };

// argv: <package dir> <fault-helpers path> <repo dir> <jobs JSON>
// jobs: [{ name, parts: [[seed, size], ...] }]: each job is one ingest of the parts' bytes.
const CHILD = `
const [pkg, fh, dir, jobsJson] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
const F = require(fh);
const { Readable } = require('node:stream');
const readline = require('node:readline');
(async () => {
  const jobs = JSON.parse(jobsJson);
  const repo = await ContainerArchive.open(dir);
  process.stdout.write('READY\\n');
  await new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', () => { rl.close(); resolve(); });
  });
  for (const job of jobs) {
    function* all() { for (const [seed, size] of job.parts) yield* F.genPieces(seed, size, 64 * 1024); }
    const snap = await repo.ingest(Readable.from(all()), { tags: { job: job.name } });
    process.stdout.write('SNAP ' + job.name + ' ' + snap.id + '\\n');
  }
  await repo.close();
  process.stdout.write('DONE\\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\\ncode=' + (e && e.code) + '\\n');
  process.exit(1);
});
`;

function partsDigest(parts) {
  const h = crypto.createHash('sha256');
  let length = 0;
  for (const [seed, size] of parts) {
    for (const b of F.genPieces(seed, size, 64 * KiB)) {
      h.update(b);
      length += b.length;
    }
  }
  return { sha256: h.digest('hex'), length };
}

function startChild(t, dir, jobs) {
  const c = F.spawnNode(CHILD, [F.PKG_DIR, F.FAULT_HELPERS, dir, JSON.stringify(jobs)]);
  t.after(() => {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  return c;
}

describe('two processes, one repository', () => {
  it('concurrent ingests from two processes both succeed and restore', T, async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const init = await ContainerArchive.init(dir, F.SMALL_REPO);
    const before = randomBytes(512 * KiB + 7, 77);
    const beforeSnap = await init.ingest(chunkedStream(before, 1));
    await init.close();

    const SHARED = [4242, 1 * MiB];
    const jobs1 = [
      { name: 'p1a', parts: [[1001, 2 * MiB + 4], SHARED, [1002, 512 * KiB]] },
      { name: 'p1b', parts: [[1003, 1 * MiB + 8]] },
    ];
    const jobs2 = [
      { name: 'p2a', parts: [[2001, 1 * MiB + 512 * KiB], SHARED] },
      { name: 'p2b', parts: [SHARED, [2003, 1 * MiB + 12]] },
    ];
    const c1 = startChild(t, dir, jobs1);
    const c2 = startChild(t, dir, jobs2);
    await Promise.all([c1.waitLine(/^READY$/), c2.waitLine(/^READY$/)]);
    c1.child.stdin.end('GO\n');
    c2.child.stdin.end('GO\n');
    const [e1, e2] = await Promise.all([c1.exit, c2.exit]);
    assert.deepEqual(e1, { code: 0, signal: null }, `child 1 failed:\n${c1.stderr()}`);
    assert.deepEqual(e2, { code: 0, signal: null }, `child 2 failed:\n${c2.stderr()}`);

    const ids = new Map();
    for (const line of [...c1.lines, ...c2.lines]) {
      const m = /^SNAP (\S+) ([0-9a-f]{64})$/.exec(line);
      if (m) ids.set(m[1], m[2]);
    }
    assert.equal(ids.size, 4, `four snapshots expected, got ${JSON.stringify([...ids])}`);

    const repo = await ContainerArchive.open(dir);
    t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
    const listed = (await repo.listSnapshots()).map((s) => s.id).sort();
    assert.deepEqual(listed, [beforeSnap.id, ...ids.values()].sort());
    await assertRestores(repo, beforeSnap.id, before);
    for (const job of [...jobs1, ...jobs2]) {
      await F.assertRestoresDigest(repo, ids.get(job.name), partsDigest(job.parts));
    }
    await F.assertHealthy(repo, 'full', 'after two concurrent writer processes');
    assert.deepEqual(F.lockFiles(dir), [], 'both processes removed their lock records');
    assert.deepEqual(F.tmpLeftovers(dir), []);

    // what the other processes stored is deduplicated against from now on
    const { Readable } = require('node:stream');
    for (const job of [jobs1[1], jobs2[1]]) {
      function* all() { for (const [seed, size] of job.parts) yield* F.genPieces(seed, size, 64 * KiB); }
      const again = await repo.ingest(Readable.from(all()));
      assert.equal(again.newChunks, 0, `re-ingesting ${job.name}'s data must store no new chunk`);
    }
  });
});
