'use strict';

// Faults from the hardening campaign (issue 8): finished source streams, a
// lost pack healed by re-ingest, symlinked packs, stray pack-named files,
// missing directories, a lost config, verify's skipped checks and a full disk.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { PassThrough, Readable } = require('node:stream');
const { once } = require('node:events');

const { ContainerArchive } = require('..');
const { KiB, MiB, makeTmp, removeTmp, tmpFor, randomBytes, chunkedStream, assertRestores, rejectsWithCode } = require('./helpers');

const SMALL_REPO = {
  packTargetSize: 65536,
  chunking: { minSize: 4096, avgSize: 16384, maxSize: 65536 },
  parity: { dataShards: 4, parityShards: 1 },
};

const packsIn = (dir) => fs.readdirSync(path.join(dir, 'packs/data')).filter((n) => /^[0-9a-f]{64}\.pack$/.test(n));
const lockRecords = (dir) => fs.readdirSync(path.join(dir, 'locks')).filter((n) => n.endsWith('.json'));

/** A parity group manifest (plain JSON, possibly followed by a 32-byte checksum trailer). */
function readGroup(file) {
  const bytes = fs.readFileSync(file);
  try {
    return JSON.parse(bytes);
  } catch {
    return JSON.parse(bytes.subarray(0, bytes.length - 32));
  }
}

function groupOf(dir, pack) {
  const parityDir = path.join(dir, 'packs/parity');
  for (const name of fs.readdirSync(parityDir).filter((n) => n.endsWith('.group'))) {
    const group = readGroup(path.join(parityDir, name));
    if (group.members.some((m) => `${m.pack}.pack` === pack)) return group;
  }
  throw new Error(`no parity group holds ${pack}`);
}

describe('a finished source stream is refused before anything is locked', () => {
  const cases = {
    destroyed: () => { const s = new PassThrough(); s.destroy(); return s; },
    errored: () => { const s = new PassThrough(); s.on('error', () => {}); s.destroy(new Error('boom')); return s; },
    closed: async () => {
      const s = Readable.from([Buffer.from('x')]);
      s.resume();
      await once(s, 'close');
      return s;
    },
    'ended and consumed': async () => {
      const s = new Readable({ read() {}, autoDestroy: false });
      s.push('x');
      s.push(null);
      s.resume();
      await once(s, 'end');
      assert.ok(!s.destroyed && !s.closed && s.readableEnded);
      return s;
    },
  };
  for (const [state, make] of Object.entries(cases)) {
    it(`rejects a ${state} stream with ERR_INVALID_ARGUMENT, and close() and maintenance still work`, async (t) => {
      const dir = path.join(tmpFor(t), 'repo');
      const repo = await ContainerArchive.init(dir, SMALL_REPO);
      const err = await rejectsWithCode(repo.ingest(await make()), 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /^stream /, err.message);
      const multi = await rejectsWithCode(
        repo.ingestMulti([
          { name: 'a', stream: chunkedStream(randomBytes(KiB, 1)) },
          { name: 'b', stream: await make() },
        ]),
        'ERR_INVALID_ARGUMENT',
      );
      assert.match(multi.message, /^items\[1\]\.stream /, multi.message);
      assert.deepEqual(lockRecords(dir), [], 'nothing holds a lock');
      await repo.close();
      const again = await ContainerArchive.open(dir, { lockTimeoutMs: 0 });
      await again.repair();
      await again.prune({ keepLast: 1 });
      await again.close();
      assert.deepEqual(lockRecords(dir), []);
    });
  }
});

describe('ingest never dedups against a lost pack', () => {
  for (const alsoParity of [false, true]) {
    it(`re-ingesting heals a deleted pack${alsoParity ? ' and its group parity' : ''}`, async (t) => {
      const dir = path.join(tmpFor(t), 'repo');
      const data = randomBytes(600 * KiB, alsoParity ? 12 : 11);
      const repo = await ContainerArchive.init(dir, SMALL_REPO);
      t.after(() => repo.close());
      const old = await repo.ingest(chunkedStream(data));
      const victim = packsIn(dir)[0];
      if (alsoParity) {
        for (const p of groupOf(dir, victim).parity) fs.rmSync(path.join(dir, 'packs/parity', p.file));
      }
      fs.rmSync(path.join(dir, 'packs/data', victim));

      const healed = await repo.ingest(chunkedStream(data));
      assert.ok(healed.newChunks > 0, 'the lost chunks are stored anew');
      await assertRestores(repo, healed.id, data);
      const fresh = await ContainerArchive.open(dir);
      t.after(() => fresh.close());
      await assertRestores(fresh, healed.id, data);
      // The old snapshot's chunks all exist again, so it restores too.
      await assertRestores(fresh, old.id, data);
      // Packs are deterministic, so the healing ingest may write the lost pack again under its own name.
      const report = await fresh.verify();
      if (!fs.existsSync(path.join(dir, 'packs/data', victim))) {
        assert.ok(report.errors.some((e) => e.kind === 'missing-pack' && `${e.pack}.pack` === victim), JSON.stringify(report.errors));
      }
      if (alsoParity) assert.ok(report.errors.some((e) => e.kind === 'parity'), 'the lost parity is still reported');
      for (const e of report.errors) {
        assert.ok(['missing-pack', 'parity'].includes(e.kind), JSON.stringify(e));
        assert.equal(e.snapshot, undefined, 'no snapshot is reported damaged');
      }
    });
  }
});

describe('symbolic links', () => {
  it('a pack that is a symlink to a copy elsewhere is followed: verify is clean, repair changes nothing', async (t) => {
    const tmp = tmpFor(t);
    const dir = path.join(tmp, 'repo');
    const elsewhere = path.join(tmp, 'other-disk');
    fs.mkdirSync(elsewhere);
    const a = randomBytes(300 * KiB, 21);
    const b = randomBytes(300 * KiB, 22);
    const repo = await ContainerArchive.init(dir, SMALL_REPO);
    t.after(() => repo.close());
    const sa = await repo.ingest(chunkedStream(a));
    const sb = await repo.ingest(chunkedStream(b));
    for (const pack of packsIn(dir).slice(0, 2)) {
      const link = path.join(dir, 'packs/data', pack);
      fs.copyFileSync(link, path.join(elsewhere, pack));
      fs.rmSync(link);
      fs.symlinkSync(path.join(elsewhere, pack), link);
    }
    const report = await repo.verify({ level: 'full' });
    assert.ok(report.ok, JSON.stringify(report.errors));
    const repaired = await repo.repair();
    assert.equal(repaired.indexRebuilt, false);
    assert.equal(repaired.packsRepaired, 0);
    assert.deepEqual(repaired.errors, []);
    assert.deepEqual(repaired.unrecoverable, []);
    assert.deepEqual(repaired.quarantined, []);
    await assertRestores(repo, sa.id, a);
    await assertRestores(repo, sb.id, b);
    assert.ok((await repo.verify({ level: 'full' })).ok);
  });
});

describe('repair and odd files', () => {
  it('quarantines an empty e3b0….pack and goes on', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const data = randomBytes(200 * KiB, 31);
    const repo = await ContainerArchive.init(dir, SMALL_REPO);
    t.after(() => repo.close());
    const snap = await repo.ingest(chunkedStream(data));
    const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.pack';
    fs.writeFileSync(path.join(dir, 'packs/data', empty), '');
    fs.rmSync(path.join(dir, 'packs/data', packsIn(dir)[0].replace(/\.pack$/, '.idx')));
    const report = await repo.repair();
    assert.equal(report.quarantined.length, 1, JSON.stringify(report));
    assert.equal(report.quarantined[0].file, `packs/data/${empty}`);
    assert.ok(fs.existsSync(path.join(dir, report.quarantined[0].movedTo)));
    assert.ok(report.packsRepaired >= 1, 'the lost .idx was rewritten too');
    assert.ok((await repo.verify({ level: 'full' })).ok);
    await assertRestores(repo, snap.id, data);
  });

  for (const lost of ['locks', 'index']) {
    it(`open(), unlock() and repair() recreate a missing ${lost}/`, async (t) => {
      const dir = path.join(tmpFor(t), 'repo');
      const data = randomBytes(200 * KiB, 41);
      const repo = await ContainerArchive.init(dir, SMALL_REPO);
      const snap = await repo.ingest(chunkedStream(data));
      await repo.close();
      fs.rmSync(path.join(dir, lost), { recursive: true });
      const again = await ContainerArchive.open(dir);
      t.after(() => again.close());
      fs.rmSync(path.join(dir, lost), { recursive: true });
      assert.equal(await again.unlock(), 0);
      fs.rmSync(path.join(dir, lost), { recursive: true });
      await again.repair();
      await assertRestores(again, snap.id, data);
      assert.ok((await again.verify({ level: 'full' })).ok);
    });
  }

  it('with both config copies gone, open() and init() give the same message, pointing at neither', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir, SMALL_REPO);
    await repo.ingest(chunkedStream(randomBytes(50 * KiB, 51)));
    await repo.close();
    fs.rmSync(path.join(dir, 'config.json'));
    fs.rmSync(path.join(dir, 'packs/parity/config.json'));
    const opened = await rejectsWithCode(() => ContainerArchive.open(dir), 'ERR_CORRUPT');
    const inited = await rejectsWithCode(() => ContainerArchive.init(dir), 'ERR_CORRUPT');
    assert.equal(opened.message, inited.message);
    assert.match(opened.message, /config\.json is missing and its copy packs\/parity\/config\.json is missing too/);
    assert.match(opened.message, /from a backup/);
    assert.doesNotMatch(opened.message, /create one with|init\(\) it|repair\(\)/);
  });
});

describe('verify', () => {
  it('says which checks a live lock of another handle made it skip', async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir, SMALL_REPO);
    t.after(() => repo.close());
    const snap = await repo.ingest(chunkedStream(randomBytes(12 * MiB, 61)));
    assert.deepEqual((await repo.verify({ level: 'quick' })).skipped, []);

    // A restore that is not consumed parks, holding its shared lock; its first
    // bytes prove the lock is held.
    const other = await ContainerArchive.open(dir);
    const stream = await other.restore(snap.id);
    await once(stream, 'readable');
    const report = await repo.verify({ level: 'quick' });
    assert.deepEqual(report.skipped.map((s) => s.check), ['unindexed-pack', 'parity-coverage']);
    for (const s of report.skipped) assert.match(s.reason, /lock/);
    stream.destroy();
    await other.close();
    assert.deepEqual((await repo.verify({ level: 'quick' })).skipped, []);
  });
});

describe('a full disk', () => {
  it('fails ingest clearly, keeps earlier snapshots, and prune and repair reclaim the space', async (t) => {
    const mnt = makeTmp();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      removeTmp(mnt);
      t.skip(`mounting a small tmpfs is not permitted here (${String(e.stderr || e.message).trim()}); run as root to test a full disk`);
      return;
    }
    try {
      const dir = path.join(mnt, 'repo');
      const free = () => fs.statfsSync(mnt).bavail * fs.statfsSync(mnt).bsize;
      const repo = await ContainerArchive.init(dir, {
        compression: 'none',
        packTargetSize: 256 * KiB,
        chunking: { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB },
        parity: { dataShards: 4, parityShards: 1 },
      });
      try {
        const first = randomBytes(2 * MiB, 71);
        const kept = await repo.ingest(chunkedStream(first));
        const err = await rejectsWithCode(repo.ingest(chunkedStream(randomBytes(16 * MiB, 72))), 'ERR_IO');
        assert.match(err.message, /No space left on device/);
        assert.match(err.message, /free space/);
        await assertRestores(repo, kept.id, first);

        const before = free();
        const pruned = await repo.prune({ keepLast: 10 });
        assert.deepEqual(pruned.removedSnapshots, []);
        assert.ok(pruned.removedPacks > 0, JSON.stringify(pruned));
        assert.ok(pruned.freedBytes > MiB, JSON.stringify(pruned));
        assert.ok(free() > before + MiB, `prune freed space: ${before} -> ${free()}`);
        const repaired = await repo.repair();
        assert.deepEqual(repaired.errors, []);
        assert.ok((await repo.verify({ level: 'full' })).ok);
        await assertRestores(repo, kept.id, first);
        const more = randomBytes(MiB, 73);
        const next = await repo.ingest(chunkedStream(more));
        await assertRestores(repo, next.id, more);
      } finally {
        await repo.close();
      }
    } finally {
      execFileSync('umount', [mnt]);
      removeTmp(mnt);
    }
  });
});
