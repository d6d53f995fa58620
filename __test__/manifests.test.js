'use strict';

// Snapshot manifests v2 through the API: items[].sha256 equals sha256sum of the source; a
// restore whose manifest lost a chunk reference errors with ERR_CORRUPT instead of ending;
// a version 1 manifest still restores; every manifest has a copy in packs/parity/snapshots,
// and verify/repair use it (deleted, damaged, swapped manifests; swapped packs).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, tmpFor, randomBytes, textishBytes, chunkedStream, sha256, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive, ArchiveError } = loadPackage();

const T = { timeout: 120000 };
const AAD_SNAPSHOT = Buffer.from('containerarchive:snapshot');

const primary = (dir, id) => path.join(dir, 'snapshots', id);
const copy = (dir, id) => path.join(dir, 'packs', 'parity', 'snapshots', id);

/** An unencrypted repository with three snapshots of distinct data. */
async function fixture(t) {
  const dir = tmpFor(t);
  const repo = await ContainerArchive.init(dir, F.SMALL_REPO);
  t.after(() => repo.close().catch(() => {}));
  const snaps = [];
  const sets = [randomBytes(300 * KiB + 5, 21), textishBytes(400 * KiB, 22), randomBytes(250 * KiB, 23)];
  for (const [i, data] of sets.entries()) snaps.push({ id: (await repo.ingest(chunkedStream(data, i + 1))).id, data });
  return { dir, repo, snaps };
}

/** Every snapshot lists and restores byte for byte, and verify full is clean. */
async function assertAllRestore(repo, snaps) {
  await F.assertHealthy(repo, 'full');
  const listed = (await repo.listSnapshots()).map((s) => s.id).sort();
  assert.deepEqual(listed, snaps.map((s) => s.id).sort());
  for (const s of snaps) await assertRestores(repo, s.id, s.data);
}

/**
 * Writes manifest JSON `m` as snapshot `m.id` (primary and copy), the way the engine stores
 * it in an unencrypted repository: plain, or with the checksum envelope (plain || SHA-256(aad
 * || plain)) when the repository refuses the plain form.
 */
async function writeManifest(dir, repo, m) {
  const plain = Buffer.from(JSON.stringify(m));
  const forms = [plain, Buffer.concat([plain, crypto.createHash('sha256').update(AAD_SNAPSHOT).update(plain).digest()])];
  for (const bytes of forms) {
    fs.mkdirSync(path.dirname(copy(dir, m.id)), { recursive: true });
    fs.writeFileSync(copy(dir, m.id), bytes);
    fs.writeFileSync(primary(dir, m.id), bytes);
    try {
      await repo.getSnapshot(m.id);
      return;
    } catch (e) {
      if (e.code !== 'ERR_CORRUPT') throw e;
    }
  }
  throw new Error('the repository accepts neither manifest form');
}

/** Reads an unencrypted manifest's JSON (with or without the checksum envelope). */
function readManifest(dir, id) {
  const bytes = fs.readFileSync(primary(dir, id));
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return JSON.parse(bytes.subarray(0, bytes.length - 32).toString('utf8'));
  }
}

/** Consumes a restore stream; resolves { bytes, err }. */
async function drain(repo, id) {
  const parts = [];
  try {
    const stream = await repo.restore(id);
    for await (const part of stream) parts.push(part);
    return { bytes: Buffer.concat(parts), err: null };
  } catch (err) {
    return { bytes: Buffer.concat(parts), err };
  }
}

describe('manifests: item sha256 and end-to-end restore checks', () => {
  it('items[].sha256 equals sha256sum of the source, in ingest, getSnapshot and listSnapshots', T, async (t) => {
    const dir = tmpFor(t);
    for (const passphrase of [undefined, 'pw']) {
      const repo = await ContainerArchive.init(path.join(dir, String(passphrase)), { ...F.SMALL_REPO, ...(passphrase ? { passphrase } : {}) });
      t.after(() => repo.close().catch(() => {}));
      const a = randomBytes(200 * KiB + 3, 5);
      const b = Buffer.alloc(0);
      const one = await repo.ingest(chunkedStream(a, 1));
      assert.equal(one.items[0].sha256, sha256(a));
      const multi = await repo.ingestMulti([
        { name: 'a', type: 'x', stream: chunkedStream(a, 2) },
        { name: 'b', type: 'x', stream: chunkedStream(b, 3) },
      ]);
      assert.deepEqual(multi.items.map((i) => i.sha256), [sha256(a), sha256(b)]);
      assert.equal((await repo.getSnapshot(one.id)).items[0].sha256, sha256(a));
      const listed = await repo.listSnapshots();
      assert.deepEqual(listed.find((s) => s.id === multi.id).items.map((i) => i.sha256), [sha256(a), sha256(b)]);
    }
  });

  it('a manifest missing a chunk reference: the restore stream errors with ERR_CORRUPT, never ends short', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const m = readManifest(dir, snaps[0].id);
    assert.ok(m.items[0].chunks.length > 4, 'fixture: several chunks');

    // The size still says the whole item: refused before any byte.
    const short = { ...m, id: '1'.repeat(64), items: [{ ...m.items[0], chunks: m.items[0].chunks.filter((_, i) => i !== 2) }] };
    await writeManifest(dir, repo, short);
    const r1 = await drain(repo, short.id);
    assert.ok(r1.err instanceof ArchiveError, `must fail: ${r1.err}`);
    assert.equal(r1.err.code, 'ERR_CORRUPT');
    assert.ok(r1.bytes.length < snaps[0].data.length);

    // Size and originalSize adjusted too: every byte flows, then the SHA-256 check fails.
    const quick = await F.verify(repo, 'quick');
    F.assertIssue(quick, { kind: 'snapshot', snapshot: short.id, mentions: ['bytes'] });
    const removedLength = quick.errors.find((e) => e.snapshot === short.id).error.match(/hold (\d+) bytes/)[1];
    const size = Number(removedLength);
    const consistent = { ...short, id: '2'.repeat(64), originalSize: size, items: [{ ...short.items[0], size }] };
    await writeManifest(dir, repo, consistent);
    const r2 = await drain(repo, consistent.id);
    assert.ok(r2.err instanceof ArchiveError, 'a stream whose bytes do not match the sha256 must error');
    assert.equal(r2.err.code, 'ERR_CORRUPT');
    assert.match(r2.err.message, /sha256/);
    assert.equal(r2.bytes.length, size, 'the bytes were streamed before the check failed');
    const full = await F.verify(repo, 'full');
    F.assertIssue(full, { kind: 'snapshot', snapshot: consistent.id, mentions: ['sha256'] });
    for (const s of snaps) await assertRestores(repo, s.id, s.data);
  });

  it('a version 1 manifest (no sha256, no copy) still restores; sha256 is null', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const m = readManifest(dir, snaps[1].id);
    const { host: _h, user: _u, ...rest } = m;
    const v1 = { ...rest, version: 1, items: m.items.map(({ sha256: _, ...item }) => item) };
    await writeManifest(dir, repo, v1);
    fs.rmSync(copy(dir, v1.id));
    assert.equal((await repo.getSnapshot(v1.id)).items[0].sha256, null);
    await assertAllRestore(repo, snaps);
  });
});

describe('manifests: copies, verify and repair', () => {
  it('every manifest has an identical copy; prune removes both', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    for (const s of snaps) assert.deepEqual(fs.readFileSync(copy(dir, s.id)), fs.readFileSync(primary(dir, s.id)));
    const r = await repo.prune({ keepLast: 1 });
    assert.equal(r.removedSnapshots.length, 2);
    for (const id of r.removedSnapshots) {
      assert.ok(!fs.existsSync(primary(dir, id)) && !fs.existsSync(copy(dir, id)), `${id}: both files removed`);
    }
    await assertAllRestore(repo, snaps.slice(2));
  });

  it('a deleted manifest: verify quick reports it, repair restores it from the copy', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const victim = snaps[1].id;
    fs.rmSync(primary(dir, victim));
    F.assertIssue(await F.verify(repo, 'quick'), { kind: 'snapshot', snapshot: victim, mentions: ['missing'] });
    const r = await repo.repair();
    F.assertRepairShape(r);
    assert.deepEqual(r.unrecoverable, []);
    assert.equal(r.snapshotsRepaired, 1);
    await assertAllRestore(repo, snaps);
  });

  it('a damaged manifest restores from its copy at once; repair rewrites it', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const victim = snaps[0].id;
    F.overwrite(primary(dir, victim), 20, Buffer.from('garbage'));
    await assertRestores(repo, victim, snaps[0].data);
    F.assertIssue(await F.verify(repo, 'quick'), { kind: 'snapshot', snapshot: victim });
    const r = await repo.repair();
    assert.deepEqual(r.unrecoverable, []);
    assert.deepEqual(fs.readFileSync(primary(dir, victim)), fs.readFileSync(copy(dir, victim)));
    await assertAllRestore(repo, snaps);
  });

  it('a missing copy is reported and rewritten', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    fs.rmSync(copy(dir, snaps[2].id));
    F.assertIssue(await F.verify(repo, 'quick'), { kind: 'snapshot', snapshot: snaps[2].id, mentions: ['copy'] });
    const r = await repo.repair();
    assert.equal(r.snapshotsRepaired, 1);
    await assertAllRestore(repo, snaps);
  });

  it('two manifests swapped (copies too): repair puts them back, nothing is lost', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const [a, b] = [snaps[0].id, snaps[2].id];
    for (const file of [primary, copy]) {
      const [fa, fb] = [fs.readFileSync(file(dir, a)), fs.readFileSync(file(dir, b))];
      fs.writeFileSync(file(dir, a), fb);
      fs.writeFileSync(file(dir, b), fa);
    }
    assert.equal((await F.verify(repo, 'quick')).ok, false);
    const r = await repo.repair();
    assert.deepEqual(r.unrecoverable, [], F.fmt(r.unrecoverable));
    assert.deepEqual(r.errors, []);
    await assertAllRestore(repo, snaps);
  });

  it('two packs of one parity group swapped: repair renames them, nothing is lost', T, async (t) => {
    const { dir, repo, snaps } = await fixture(t);
    const group = F.parityGroups(dir).find((g) => g.packs.length >= 2);
    assert.ok(group, 'fixture: a group with two packs');
    const [p, q] = group.packs.map((id) => path.join(dir, F.rel.pack(id)));
    const tmp = path.join(dir, 'swap');
    fs.renameSync(p, tmp);
    fs.renameSync(q, p);
    fs.renameSync(tmp, q);
    assert.equal((await F.verify(repo, 'standard')).ok, false);
    const r = await repo.repair();
    F.assertRepairShape(r);
    assert.deepEqual(r.unrecoverable, [], F.fmt(r.unrecoverable));
    await assertAllRestore(repo, snaps);
  });
});
