'use strict';

// Crash safety: a child process ingests a generated 24 MiB stream into a repository that
// already has a completed snapshot; it prints a marker line once a given number of bytes was
// pulled from its source and the parent SIGKILLs it right then. Afterwards, in the parent:
// completed snapshots restore (even before repair), repair() succeeds with nothing
// unrecoverable, verify(full) is ok, every listed snapshot restores byte-identical, and a new
// ingest works.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { KiB, MiB, tmpFor, randomBytes, chunkedStream, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
const PIECE = 256 * KiB;
const BIG = 24 * MiB;
const REPO_OPTIONS = {
  packTargetSize: 256 * KiB,
  chunking: { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB },
  parity: { dataShards: 4, parityShards: 1 },
};

// argv: <package dir> <fault-helpers path> <repo dir> <jobs JSON>
// jobs: [{ name, seed, size, markAt }]: one ingest each, in order. markAt: a byte offset (the
// marker is printed before the first piece at or beyond it is handed to the stream), 'end'
// (printed after the last piece was consumed), or null.
const CHILD = `
const [pkg, fh, dir, jobsJson] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
const F = require(fh);
const { Readable } = require('node:stream');
(async () => {
  const jobs = JSON.parse(jobsJson);
  const repo = await ContainerArchive.open(dir);
  for (const job of jobs) {
    let marked = false;
    const mark = (where) => {
      if (marked) return;
      marked = true;
      process.stdout.write('MARK ' + job.name + ' ' + where + '\\n');
    };
    const gen = F.genPieces(job.seed, job.size, ${PIECE}, {
      onPiece: (i, offset) => { if (typeof job.markAt === 'number' && offset >= job.markAt) mark(offset); },
      onEnd: () => { if (job.markAt === 'end') mark('end'); },
    });
    const snap = await repo.ingest(Readable.from(gen), { tags: { job: job.name } });
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

async function killRun(t, jobs) {
  const dir = path.join(tmpFor(t), 'repo');
  const base = randomBytes(1 * MiB + 333, 4711);
  const init = await ContainerArchive.init(dir, REPO_OPTIONS);
  const baseSnap = await init.ingest(chunkedStream(base, 3), { tags: { job: 'base' } });
  await init.close();

  const c = F.spawnNode(CHILD, [F.PKG_DIR, F.FAULT_HELPERS, dir, JSON.stringify(jobs)]);
  t.after(() => {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  c.onLine((line) => {
    if (line.startsWith('MARK ')) c.child.kill('SIGKILL');
  });
  const ex = await c.exit;
  assert.ok(
    ex.signal === 'SIGKILL' || ex.code === 0,
    `the child must either be killed or finish cleanly, got ${JSON.stringify(ex)}; stderr:\n${c.stderr()}`,
  );
  assert.ok(c.lines.some((l) => l.startsWith('MARK ')), `the child never printed its marker; stdout: ${c.lines.join('|')}; stderr:\n${c.stderr()}`);
  t.diagnostic(`child: ${JSON.stringify(ex)}, stdout: ${c.lines.join(' | ')}`);

  const completed = new Map(); // job name -> snapshot id, as reported by the child
  for (const line of c.lines) {
    const m = /^SNAP (\S+) ([0-9a-f]{64})$/.exec(line);
    if (m) completed.set(m[1], m[2]);
  }
  const digests = new Map(jobs.map((j) => [j.name, F.genDigest(j.seed, j.size, PIECE)]));

  const repo = await ContainerArchive.open(dir);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });

  // Completed snapshots restore even before repair: a crash must not damage them.
  await assertRestores(repo, baseSnap.id, base);
  for (const [name, id] of completed) await F.assertRestoresDigest(repo, id, digests.get(name));

  const staleLocks = F.lockFiles(dir);
  const pre = await F.verify(repo, 'standard');
  t.diagnostic(
    `before repair: ${F.packIds(dir).length} packs, ${F.tmpLeftovers(dir).length} .tmp- files, ` +
      `${staleLocks.length} lock records, issues: ${[...new Set(pre.errors.map((e) => e.kind))].join(',') || 'none'}`,
  );
  const r = await repo.repair();
  t.diagnostic(`repair: ${JSON.stringify({ ...r, errors: r.errors.length })}`);
  F.assertRepairShape(r);
  assert.deepEqual(r.unrecoverable, [], `a killed ingest must leave nothing unrecoverable: ${F.fmt(r.unrecoverable)}`);
  assert.deepEqual(r.errors, [], `repair must fix what a killed ingest left: ${F.fmt(r.errors)}`);
  assert.ok(r.locksRemoved >= staleLocks.length, `repair must remove the dead child's lock records (${staleLocks.length}), removed ${r.locksRemoved}`);
  assert.deepEqual(F.lockFiles(dir), [], 'no lock record left after repair');
  assert.deepEqual(F.tmpLeftovers(dir), [], 'repair removes .tmp- files');
  await F.assertHealthy(repo, 'full', 'after killing an ingest and repairing');

  // Every listed snapshot restores: the base one, those the child reported, and the killed
  // one if its manifest made it to disk before the kill.
  const listed = await repo.listSnapshots();
  const listedIds = listed.map((s) => s.id);
  assert.ok(listedIds.includes(baseSnap.id), 'the snapshot completed before the kill is still listed');
  for (const id of completed.values()) assert.ok(listedIds.includes(id), `completed snapshot ${id} is still listed`);
  for (const s of listed) {
    if (s.id === baseSnap.id) continue;
    assert.ok(digests.has(s.tags.job), `unexpected snapshot ${JSON.stringify(s)}`);
    await F.assertRestoresDigest(repo, s.id, digests.get(s.tags.job));
  }
  t.diagnostic(`snapshots after the kill: ${listed.map((s) => s.tags.job).join(', ')}`);

  // a new ingest works and everything stays healthy
  const fresh = randomBytes(2 * MiB + 1, 99);
  const snap = await repo.ingest(chunkedStream(fresh, 4));
  await assertRestores(repo, snap.id, fresh);
  await F.assertHealthy(repo, 'full', 'after a new ingest');
  await assertRestores(repo, baseSnap.id, base);
  return { ex, completed, listed };
}

describe('SIGKILL during ingest', () => {
  const points = [
    ['very early (before the first byte is handed out)', 0],
    ['after 4 MiB', 4 * MiB],
    ['after 9 MiB', 9 * MiB],
    ['after 15 MiB', 15 * MiB],
    ['after 21 MiB', 21 * MiB],
    ['right at the end of the stream', 'end'],
  ];
  for (const [label, markAt] of points) {
    it(`killed ${label}: repair, verify full, completed snapshots restore`, T, async (t) => {
      await killRun(t, [{ name: 'big', seed: 1234, size: BIG, markAt }]);
    });
  }

  it('killed during the second of two sequential ingests: the first one restores', T, async (t) => {
    const { completed, listed } = await killRun(t, [
      { name: 'first', seed: 555, size: 3 * MiB + 12, markAt: null },
      { name: 'second', seed: 556, size: BIG, markAt: 6 * MiB },
    ]);
    assert.ok(completed.has('first'), 'the child reported the first snapshot before being killed');
    assert.ok(listed.some((s) => s.id === completed.get('first')), 'the first snapshot survives the kill');
  });
});
