'use strict';

// Crash safety of prune: a child process runs a real prune (deleting pure-garbage packs and
// repacking mixed ones) on a copy of a prepared repository and prints every 'prune:progress'
// message as a line; the parent SIGKILLs it right after its 'ready' line, and upon the k-th
// progress line for k = 1, 2, ... until a run completes without reaching line k. Every kill
// point runs REPEATS times, each on a fresh copy (fs.cpSync) of a different prepared repository
// (same shape, different data).
// After every kill, in the parent: repair() succeeds with nothing unrecoverable, verify(full)
// is ok, every snapshot the policy keeps is still listed, EVERY listed snapshot restores
// byte-identical, the same prune then completes (and everything still verifies and restores),
// and a new ingest works.

process.env.CONTAINERARCHIVE_TEST_CREATED_AT = '1';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, makeTmp, removeTmp, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const P = require('./prune-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
// The template snapshots carry different role tags: one policy across all of them.
const POLICY = { keepLast: 1, groupBy: false };
const MAX_POINTS = 12;
// Each kill point is run several times: where exactly the native prune is when the signal lands
// varies from run to run.
const REPEATS = 3;

// argv: <package dir> <repo dir> <policy JSON>
const CHILD = `
const [pkg, dir, policyJson] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
(async () => {
  const repo = await ContainerArchive.open(dir);
  repo.on('prune:progress', (e) => process.stdout.write('EVENT ' + e.message + '\\n'));
  process.stdout.write('ready\\n');
  const r = await repo.prune(JSON.parse(policyJson));
  process.stdout.write('RESULT ' + JSON.stringify(r) + '\\n');
  await repo.close();
  process.stdout.write('done\\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\\ncode=' + (e && e.code) + '\\n');
  process.exit(1);
});
`;

let root;
// One prepared repository per repetition, each with different data: pack ids, and so the
// names and order of index files, differ between them.
const templates = [];

before(async () => {
  root = makeTmp();
  for (let rep = 1; rep <= REPEATS; rep++) {
    const dir = path.join(root, `template-${rep}`);
    templates[rep] = { dir, ...(await P.buildGcScenario(ContainerArchive, dir, rep)) };
  }
});

after(() => removeTmp(root));

/**
 * Copies the template, runs the child, kills it at `killAt` ('ready' or k: the k-th EVENT
 * line). Returns { dir, ex, events, killed }.
 */
async function runChild(t, rep, name, killAt) {
  const dir = path.join(root, name);
  fs.cpSync(templates[rep].dir, dir, { recursive: true });
  t.after(() => removeTmp(dir));
  const c = F.spawnNode(CHILD, [F.PKG_DIR, dir, JSON.stringify(POLICY)]);
  t.after(() => {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  let events = 0;
  let sent = false;
  c.onLine((line) => {
    if (line.startsWith('EVENT ')) events++;
    if (sent) return;
    if ((killAt === 'ready' && line === 'ready') || (typeof killAt === 'number' && line.startsWith('EVENT ') && events === killAt)) {
      sent = true;
      c.child.kill('SIGKILL');
    }
  });
  const ex = await c.exit;
  assert.ok(
    ex.signal === 'SIGKILL' || ex.code === 0,
    `the child must be killed or finish cleanly, got ${JSON.stringify(ex)}; stdout: ${c.lines.join(' | ')}; stderr:\n${c.stderr()}`,
  );
  assert.ok(c.lines.includes('ready'), `the child never got ready; stderr:\n${c.stderr()}`);
  if (ex.code === 0) assert.ok(c.lines.includes('done'), 'a child that exited 0 finished its prune');
  t.diagnostic(`kill at ${killAt}: ${JSON.stringify(ex)}, stdout: ${c.lines.map((l) => l.slice(0, 60)).join(' | ')}`);
  return { dir, ex, events, killed: ex.signal === 'SIGKILL', lines: c.lines };
}

/** Everything that must hold after a (possibly killed) prune of the template. */
async function checkAfter(t, rep, dir) {
  const { ids, data } = templates[rep];
  const repo = await ContainerArchive.open(dir);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });

  const pre = await F.verify(repo, 'standard');
  const r = await repo.repair();
  t.diagnostic(
    `before repair: ${F.packIds(dir).length} packs, ${F.lockFiles(dir).length} lock records, ${F.tmpLeftovers(dir).length} .tmp files, ` +
      `issues: ${[...new Set(pre.errors.map((e) => e.kind))].join(',') || 'none'}; repair: ${JSON.stringify({ ...r, errors: r.errors.length })}`,
  );
  F.assertRepairShape(r);
  assert.deepEqual(r.unrecoverable, [], `a killed prune must leave nothing unrecoverable: ${F.fmt(r.unrecoverable)}`);
  assert.deepEqual(r.errors, [], `repair must fix what a killed prune left: ${F.fmt(r.errors)}`);
  assert.deepEqual(F.lockFiles(dir), [], 'repair removes the dead child\'s lock record');
  assert.deepEqual(F.tmpLeftovers(dir), [], 'repair removes .tmp- files');
  await F.assertHealthy(repo, 'full', 'after a killed prune and repair');

  const listed = (await repo.listSnapshots()).map((s) => s.id);
  assert.ok(listed.includes(ids.new), 'the snapshot the policy keeps is still listed');
  for (const id of listed) {
    assert.ok(data.has(id), `unexpected snapshot ${id}`);
    await P.assertRestoresBuffer(repo, id, data.get(id), `listed snapshot ${id}`);
  }
  t.diagnostic(`snapshots left: ${listed.map((id) => Object.keys(ids).find((k) => ids[k] === id)).join(', ')}`);

  // the interrupted prune can simply be run again, and completes
  const again = await repo.prune(POLICY);
  assert.deepEqual(again.keptSnapshots, [ids.new]);
  assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [ids.new]);
  await P.assertRestoresBuffer(repo, ids.new, data.get(ids.new), 'kept snapshot after the second prune');
  assert.deepEqual(F.idxIds(dir), F.packIds(dir), 'every pack has its .idx, no orphan .idx');

  // and a new ingest works (the pruned data again: no dedup against deleted chunks)
  const old = data.get(ids.old);
  const snap = await repo.ingest(F.streamOf(old, 32 * KiB));
  await P.assertRestoresBuffer(repo, snap.id, old, 'ingest after the killed prune');
  await F.assertHealthy(repo, 'full', 'after prune again and a new ingest');
  await repo.close();
}

describe('SIGKILL during prune', () => {
  it('the template really needs repacking, and an uninterrupted child prune works', T, async (t) => {
    let dry;
    for (let rep = 1; rep <= REPEATS; rep++) {
      const repo = await ContainerArchive.open(templates[rep].dir);
      dry = await repo.prune(POLICY, true);
      await repo.close();
      assert.ok(dry.repackedPacks >= 1 && dry.removedPacks > dry.repackedPacks, `template ${rep}: ${JSON.stringify(dry)}`);
    }
    const run = await runChild(t, REPEATS, 'complete', null);
    assert.equal(run.killed, false);
    assert.ok(run.events >= 2, `a real prune reports its stages (got ${run.events} events)`);
    const result = JSON.parse(run.lines.find((l) => l.startsWith('RESULT ')).slice(7));
    assert.equal(result.removedPacks, dry.removedPacks);
    await checkAfter(t, REPEATS, run.dir);
  });

  it('killed right after the child is ready', T, async (t) => {
    for (let rep = 1; rep <= REPEATS; rep++) {
      await t.test(`run ${rep}`, T, async (tt) => {
        const run = await runChild(tt, rep, `ready-${rep}`, 'ready');
        await checkAfter(tt, rep, run.dir);
      });
    }
  });

  it('killed upon the k-th progress line, for every k', T, async (t) => {
    let killedRuns = 0;
    const points = new Set();
    for (let k = 1; k <= MAX_POINTS; k++) {
      let finished = false;
      for (let rep = 1; rep <= REPEATS && !finished; rep++) {
        await t.test(`killed upon progress line ${k} (run ${rep})`, T, async (tt) => {
          const run = await runChild(tt, rep, `event-${k}-${rep}`, k);
          if (run.events < k) {
            // the prune finished before printing k lines: no more kill points
            assert.equal(run.killed, false);
            finished = true;
          } else if (run.killed) {
            killedRuns++;
            points.add(k);
          }
          await checkAfter(tt, rep, run.dir);
        });
      }
      if (finished) break;
      assert.ok(k < MAX_POINTS, `the child printed ${MAX_POINTS} progress lines: more than expected for this small repository`);
    }
    t.diagnostic(`kill runs: ${killedRuns}, at progress lines ${[...points].join(', ')}`);
    assert.ok(points.size >= 2, `at least two progress lines must be kill points, got ${[...points]}`);
  });
});
