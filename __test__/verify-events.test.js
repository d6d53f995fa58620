'use strict';

// verify() events and counters: 'verify:progress' ({ operation: 'verify', percentage,
// bytesProcessed, message }) and 'verify:error' ({ pack, chunk, error }, one per error, as it is
// found); checked counts; checked.bytes grows quick < standard <= full.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, MiB, makeTmp, removeTmp, tmpFor, randomBytes, textishBytes, chunkedStream, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };

/** Records verify events and whether each arrived before `pending` settled. */
function recordVerify(repo) {
  const progress = [];
  const errors = [];
  const state = { settled: false };
  const subs = [
    repo.on('verify:progress', (e) => progress.push({ ...e, afterSettle: state.settled })),
    repo.on('verify:error', (e) => errors.push({ ...e, afterSettle: state.settled })),
  ];
  return {
    progress,
    errors,
    async run(options) {
      state.settled = false;
      progress.length = 0;
      errors.length = 0;
      const p = repo.verify(options);
      p.then(() => { state.settled = true; }, () => { state.settled = true; });
      return p;
    },
    stop() {
      for (const s of subs) s.unsubscribe();
    },
  };
}

function checkProgress(events, level) {
  assert.ok(events.length >= 1, `verify(${level}) must emit at least one verify:progress event (progress is sent "always once at the end")`);
  let prev = -1;
  for (const e of events) {
    assert.equal(e.operation, 'verify');
    assert.equal(typeof e.message, 'string');
    assert.ok(e.percentage === null || (typeof e.percentage === 'number' && e.percentage >= 0 && e.percentage <= 100), `bad percentage ${e.percentage}`);
    assert.ok(Number.isSafeInteger(e.bytesProcessed) && e.bytesProcessed >= 0, `bad bytesProcessed ${e.bytesProcessed}`);
    assert.ok(e.bytesProcessed >= prev, `bytesProcessed went backwards: ${prev} -> ${e.bytesProcessed}`);
    prev = e.bytesProcessed;
    assert.equal(e.afterSettle, false, 'progress events must arrive before verify() resolves');
  }
}

describe('verify events and counters', () => {
  let root;
  let template;
  let snapshots = 0;

  before(async () => {
    root = makeTmp();
    template = path.join(root, 'template');
    const repo = await ContainerArchive.init(template, F.SMALL_REPO);
    try {
      for (const [i, data] of [randomBytes(1 * MiB + 5, 1), textishBytes(1 * MiB, 2), randomBytes(512 * KiB, 3)].entries()) {
        await repo.ingest(chunkedStream(data, i));
        snapshots++;
      }
    } finally {
      await repo.close();
    }
  }, T);
  after(() => removeTmp(root));

  function copy(t) {
    const dir = path.join(tmpFor(t), 'repo');
    fs.cpSync(template, dir, { recursive: true });
    return dir;
  }

  it('a healthy repository: progress events, no error events, checked counts, bytes by level', T, async (t) => {
    const dir = copy(t);
    const repo = await ContainerArchive.open(dir);
    t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
    const rec = recordVerify(repo);
    const packs = F.packIds(dir).length;
    const checked = {};
    try {
      for (const level of ['quick', 'standard', 'full']) {
        const r = await rec.run({ level });
        F.assertVerifyShape(r, level);
        assert.equal(r.ok, true, `${level}: ${F.fmt(r.errors)}`);
        checkProgress(rec.progress, level);
        assert.deepEqual(rec.errors, [], `${level}: no verify:error on a healthy repository`);
        assert.equal(r.checked.snapshots, snapshots, `${level}: checked.snapshots`);
        assert.ok(r.checked.packs > 0, `${level}: checked.packs > 0`);
        assert.ok(r.checked.chunks > 0, `${level}: checked.chunks > 0`);
        assert.ok(r.checked.bytes > 0, `${level}: checked.bytes > 0`);
        checked[level] = r.checked;
      }
      t.diagnostic(`checked: ${JSON.stringify(checked)}`);
      assert.ok(checked.quick.bytes < checked.standard.bytes, 'standard reads more bytes than quick');
      assert.ok(checked.standard.bytes <= checked.full.bytes, 'full reads at least as many bytes as standard');
      const packBytes = F.packIds(dir).reduce((n, id) => n + fs.statSync(path.join(dir, F.rel.pack(id))).size, 0);
      assert.ok(checked.standard.bytes >= packBytes, `standard hashes every pack (${packBytes} bytes), checked ${checked.standard.bytes}`);
      assert.equal(checked.standard.packs, packs, 'standard checks every pack');

      const def = await rec.run();
      assert.equal(def.level, 'standard', 'the default level is standard');
    } finally {
      rec.stop();
    }
  });

  it('a damaged repository: one verify:error per error, as found', T, async (t) => {
    const dir = copy(t);
    const ids = F.packIds(dir);
    const [gone, flipped, noIdx, short] = [ids[1], ids[Math.floor(ids.length / 3)], ids[Math.floor(ids.length / 2)], ids[ids.length - 2]];
    fs.unlinkSync(path.join(dir, F.rel.pack(gone)));
    F.flipByte(path.join(dir, F.rel.pack(flipped)), 100);
    fs.unlinkSync(path.join(dir, F.rel.idx(noIdx)));
    F.truncateBy(path.join(dir, F.rel.pack(short)), 10);

    const repo = await ContainerArchive.open(dir);
    t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
    const rec = recordVerify(repo);
    try {
      for (const level of ['quick', 'standard', 'full']) {
        const r = await rec.run({ level });
        F.assertVerifyShape(r, level);
        assert.equal(r.ok, false);
        const min = level === 'quick' ? 3 : 4;
        assert.ok(r.errors.length >= min, `${level}: at least ${min} errors expected, got ${F.fmt(r.errors)}`);
        assert.equal(rec.errors.length, r.errors.length, `${level}: one verify:error per reported error`);
        for (const e of rec.errors) {
          assert.ok(e.pack === null || typeof e.pack === 'string', 'verify:error pack is a string or null');
          assert.ok(e.chunk === null || typeof e.chunk === 'string', 'verify:error chunk is a string or null');
          assert.equal(typeof e.error, 'string');
          assert.equal(e.afterSettle, false, 'verify:error events arrive while verify runs, before it resolves');
        }
        const fromEvents = rec.errors.map((e) => e.error).sort();
        const fromResult = r.errors.map((e) => e.error).sort();
        assert.deepEqual(fromEvents, fromResult, `${level}: the events carry the same errors as the result`);
        for (const issue of r.errors) {
          const ev = rec.errors.find((e) => e.error === issue.error);
          assert.equal(ev.pack, issue.pack ?? null, `${level}: event.pack matches the issue's pack`);
          assert.equal(ev.chunk, issue.chunk ?? null, `${level}: event.chunk matches the issue's chunk`);
        }
        checkProgress(rec.progress, level);

        F.assertIssue(r, { kind: 'missing-pack', mentions: [gone], pack: gone });
        F.assertIssue(r, { kind: 'missing-idx', mentions: [noIdx], pack: noIdx });
        F.assertIssue(r, { kind: 'pack-size', mentions: [short], pack: short });
        if (level !== 'quick') F.assertIssue(r, { kind: 'pack', mentions: [flipped], pack: flipped });
        else assert.ok(!r.errors.some((e) => e.pack === flipped), 'quick must not see a flipped bit inside a pack body');
      }
    } finally {
      rec.stop();
    }

    // unsubscribed handlers are not called again
    const late = [];
    const sub = repo.on('verify:error', (e) => late.push(e));
    sub.unsubscribe();
    await repo.verify({ level: 'quick' });
    assert.deepEqual(late, []);
  });
});
