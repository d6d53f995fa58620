'use strict';

// Crash safety of key changes. A child process opens a copy of a prepared encrypted repository
// with the passphrase 'old' and runs changePassphrase('new') (or addKey('new') then
// removeKey(<old key>)); it is SIGKILLed
//   - right after the k-th file operation of the change, for k = 1, 2, ... until a run completes
//     (CONTAINERARCHIVE_TEST_KEY_CRASH_AFTER=k: the engine kills its own process there), and
//   - at spread-out instants of a complete run's duration, measured first (the parent's SIGKILL
//     then lands anywhere: during the Argon2 derivation, inside a tmp-write-rename-fsync ...).
// After every kill, in the parent: the old or the new passphrase opens the repository, repair()
// succeeds with no errors, verify(full) is clean with every passphrase that opens, the snapshot
// restores byte-identical, and a completed change leaves exactly the new passphrase.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, makeTmp, removeTmp, randomBytes, chunkedStream, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 180000 };
const MAX_STEPS = 12;
const DELAY_RUNS = 6;

// argv: <package dir> <repo dir> <op>
const CHILD = `
const [pkg, dir, op] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
(async () => {
  const repo = await ContainerArchive.open(dir, { passphrase: 'old' });
  const old = (await repo.listKeys()).find((k) => k.current).id;
  process.stdout.write('ready\\n');
  if (op === 'passwd') {
    await repo.changePassphrase('new');
  } else {
    await repo.addKey('new');
    await repo.removeKey(old);
  }
  await repo.close();
  process.stdout.write('done\\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\\ncode=' + (e && e.code) + '\\n');
  process.exit(1);
});
`;

let root;
let template;
const data = randomBytes(300 * KiB + 17, 31);
let snapId;

before(async () => {
  root = makeTmp();
  template = path.join(root, 'template');
  const repo = await ContainerArchive.init(template, { ...F.SMALL_REPO, passphrase: 'old' });
  snapId = (await repo.ingest(chunkedStream(data, 5))).id;
  await repo.close();
});

after(() => removeTmp(root));

/** Runs the child on a fresh copy; kills it after `crashAfter` steps or `delayMs` after 'ready'. */
async function runChild(t, name, op, { crashAfter, delayMs } = {}) {
  const dir = path.join(root, name);
  fs.cpSync(template, dir, { recursive: true });
  t.after(() => removeTmp(dir));
  const env = crashAfter ? { CONTAINERARCHIVE_TEST_KEY_CRASH_AFTER: String(crashAfter) } : {};
  const c = F.spawnNode(CHILD, [F.PKG_DIR, dir, op], { env });
  let timer;
  t.after(() => {
    clearTimeout(timer);
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  let readyAt;
  let doneAt;
  c.onLine((line) => {
    if (line === 'ready') {
      readyAt = process.hrtime.bigint();
      if (delayMs !== undefined) timer = setTimeout(() => c.child.kill('SIGKILL'), delayMs);
    }
    if (line === 'done') doneAt = process.hrtime.bigint();
  });
  const ex = await c.exit;
  clearTimeout(timer);
  assert.ok(
    ex.signal === 'SIGKILL' || ex.code === 0,
    `the child must be killed or finish cleanly, got ${JSON.stringify(ex)}; stdout: ${c.lines.join(' | ')}; stderr:\n${c.stderr()}`,
  );
  assert.ok(c.lines.includes('ready'), `the child never got ready; stderr:\n${c.stderr()}`);
  const completed = ex.code === 0;
  if (completed) assert.ok(c.lines.includes('done'));
  const ms = completed ? Number(doneAt - readyAt) / 1e6 : undefined;
  return { dir, completed, ms };
}

async function opensWith(dir, passphrase) {
  try {
    const repo = await ContainerArchive.open(dir, { passphrase });
    await repo.close();
    return true;
  } catch (e) {
    assert.equal(e.code, 'ERR_WRONG_PASSPHRASE', `opening with ${passphrase}: ${e.message}`);
    return false;
  }
}

async function whichOpen(dir) {
  const out = [];
  for (const p of ['old', 'new']) if (await opensWith(dir, p)) out.push(p);
  return out;
}

/** Everything that must hold after a (possibly killed) key change. Returns the passphrases that open. */
async function checkAfter(t, dir, completed, what) {
  const opens = await whichOpen(dir);
  assert.ok(opens.length > 0, `${what}: neither the old nor the new passphrase opens`);
  if (completed) assert.deepEqual(opens, ['new'], `${what}: a completed change leaves only the new passphrase`);
  const repo = await ContainerArchive.open(dir, { passphrase: opens[0] });
  const r = await repo.repair();
  await repo.close();
  F.assertRepairShape(r);
  assert.deepEqual(r.errors, [], `${what}: repair must fix what a killed key change left: ${F.fmt(r.errors)}`);
  assert.deepEqual(F.tmpLeftovers(dir), [], 'repair removes .tmp- files');
  assert.deepEqual(await whichOpen(dir), opens, `${what}: repair changes nothing about which passphrases open`);
  for (const p of opens) {
    const h = await ContainerArchive.open(dir, { passphrase: p });
    await F.assertHealthy(h, 'full', `${what}, repaired, opened with '${p}'`);
    await assertRestores(h, snapId, data);
    const keys = await h.listKeys();
    assert.ok(keys.length >= 1 && keys.length <= 2, `${what}: ${JSON.stringify(keys)}`);
    await h.close();
  }
  t.diagnostic(`${what}: opens with ${opens.join(' and ')}`);
  return opens;
}

for (const op of ['passwd', 'add-remove']) {
  describe(`SIGKILL during a key change (${op})`, () => {
    it('killed right after each file operation, until the change completes', T, async (t) => {
      const seen = new Set();
      for (let k = 1; k <= MAX_STEPS; k++) {
        const run = await runChild(t, `${op}-step-${k}`, op, { crashAfter: k });
        const opens = await checkAfter(t, run.dir, run.completed, `${op}, killed after step ${k}`);
        seen.add(opens.join('+'));
        if (run.completed) {
          assert.ok(k >= 4, `a key change is at least 4 file operations (2 writes, 2 removals), completed at ${k}`);
          // Killed after the new key's first file, both open; after the old key's last, only the new.
          assert.deepEqual([...seen].sort(), ['new', 'old+new'], `states seen: ${[...seen]}`);
          return;
        }
      }
      assert.fail(`the change did not complete within ${MAX_STEPS} file operations`);
    });

    it('killed at spread-out instants of its run', T, async (t) => {
      const full = await runChild(t, `${op}-timed`, op);
      assert.ok(full.completed);
      await checkAfter(t, full.dir, true, `${op}, uninterrupted`);
      const kinds = new Set();
      const opened = new Set();
      for (let i = 0; i < DELAY_RUNS; i++) {
        // Spread over the measured duration, plus a little jitter, and once beyond its end.
        const delayMs = Math.round((full.ms * (i + Math.random())) / (DELAY_RUNS - 1));
        const run = await runChild(t, `${op}-delay-${i}`, op, { delayMs });
        kinds.add(run.completed ? 'completed' : 'killed');
        const opens = await checkAfter(t, run.dir, run.completed, `${op}, SIGKILL ${delayMs} ms after ready (${run.completed ? 'completed first' : 'killed'})`);
        opened.add(opens.join('+'));
      }
      t.diagnostic(`complete run: ${full.ms.toFixed(0)} ms; outcomes: ${[...kinds]}`);
      assert.ok(kinds.has('killed'), 'at least one run was killed mid-change');
      assert.ok(opened.has('old'), 'a kill before the new key was written leaves the old passphrase');
    });
  });
}
