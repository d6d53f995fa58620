'use strict';

// Issue 9 point 7, API level: listKeys, addKey, removeKey, changePassphrase through the JS
// facade (shapes, validation, ERR_CLOSED, unencrypted repositories). The engine's behaviour in
// depth is in core/tests/keys.rs; crash safety in keys-kill.test.js.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');

const { KiB, tmpFor, randomBytes, chunkedStream, assertRestores, rejectsWithCode, treeState, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 60000 };

async function encrypted(t) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, { passphrase: 'one' });
  t.after(() => repo.close().catch(() => {}));
  const data = randomBytes(100 * KiB, 5);
  const snap = await repo.ingest(chunkedStream(data, 2));
  return { dir, repo, data, snap };
}

describe('keys API', () => {
  it('listKeys, addKey, removeKey, changePassphrase: shapes and effect', T, async (t) => {
    const { dir, repo, data, snap } = await encrypted(t);
    const [first] = await repo.listKeys();
    assert.deepEqual(Object.keys(first).sort(), ['createdAt', 'current', 'host', 'id']);
    assert.match(first.id, /^[0-9a-f]{32}$/);
    assert.equal(first.host, os.hostname());
    assert.equal(first.current, true);
    assert.ok(!Number.isNaN(Date.parse(first.createdAt)));

    const added = await repo.addKey('two', { lockTimeoutMs: 0 });
    assert.equal(added.current, false);
    assert.equal((await repo.listKeys()).length, 2);
    const other = await ContainerArchive.open(dir, { passphrase: 'two' });
    assert.deepEqual((await other.listKeys()).filter((k) => k.current).map((k) => k.id), [added.id]);
    await assertRestores(other, snap.id, data);
    assert.equal((await other.verify({ level: 'quick' })).ok, true);
    await other.close();

    assert.equal(await repo.removeKey(added.id.slice(0, 10)), added.id);
    await rejectsWithCode(() => ContainerArchive.open(dir, { passphrase: 'two' }), 'ERR_WRONG_PASSPHRASE');

    const changed = await repo.changePassphrase('three');
    assert.equal(changed.current, true);
    assert.deepEqual((await repo.listKeys()).map((k) => k.id), [changed.id]);
    await rejectsWithCode(() => ContainerArchive.open(dir, { passphrase: 'one' }), 'ERR_WRONG_PASSPHRASE');
    const reopened = await ContainerArchive.open(dir, { passphrase: 'three' });
    await assertRestores(reopened, snap.id, data);
    await reopened.close();
  });

  it('bad arguments reject ERR_INVALID_ARGUMENT and change nothing', T, async (t) => {
    const { dir, repo } = await encrypted(t);
    const before = treeState(dir);
    for (const bad of [undefined, null, '', 42, {}]) {
      await rejectsWithCode(() => repo.addKey(bad), 'ERR_INVALID_ARGUMENT');
      await rejectsWithCode(() => repo.changePassphrase(bad), 'ERR_INVALID_ARGUMENT');
    }
    for (const bad of [undefined, '', 7]) await rejectsWithCode(() => repo.removeKey(bad), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.addKey('x', { lockTimeout: 5 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.addKey('x', { lockTimeoutMs: -1 }), 'ERR_INVALID_ARGUMENT');
    const [only] = await repo.listKeys();
    const last = await rejectsWithCode(() => repo.removeKey(only.id), 'ERR_INVALID_ARGUMENT');
    assert.match(last.message, /last key/);
    const unknown = await rejectsWithCode(() => repo.removeKey('0123456789abcdef'), 'ERR_INVALID_ARGUMENT');
    assert.ok(unknown.message.includes(only.id), unknown.message);
    assert.deepEqual(treeState(dir), before);
  });

  it('an unencrypted repository has no keys; a closed one rejects ERR_CLOSED', T, async (t) => {
    const plain = await ContainerArchive.init(path.join(tmpFor(t), 'plain'));
    for (const call of [() => plain.listKeys(), () => plain.addKey('x'), () => plain.removeKey('x'), () => plain.changePassphrase('x')]) {
      const err = await rejectsWithCode(call, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /not encrypted/);
    }
    await plain.close();
    for (const call of [() => plain.listKeys(), () => plain.addKey('x'), () => plain.removeKey('x'), () => plain.changePassphrase('x')]) {
      await rejectsWithCode(call, 'ERR_CLOSED');
    }
  });
});
