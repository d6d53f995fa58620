'use strict';

// The README Quick Start (and "Open an Existing Repository"), run as written against a temp
// dir, a temp input file and a passphrase taken from the environment.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createReadStream, createWriteStream } = require('node:fs');
const fs = require('node:fs');
const path = require('node:path');
const { finished } = require('node:stream/promises');

const { tmpFor, sha256, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

function sqlDump(rows, seed) {
  const lines = ['BEGIN;', 'CREATE TABLE users (id integer primary key, name text, email text, note text);'];
  let x = seed;
  for (let i = 0; i < rows; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    lines.push(
      `INSERT INTO users VALUES (${i}, 'user_${x.toString(36)}', 'u${i}@example.org', 'note ${(x >>> 7).toString(16)} ${i % 97}');`,
    );
  }
  lines.push('COMMIT;', '');
  return Buffer.from(lines.join('\n'));
}

function withPassphrase(t, value) {
  const had = Object.prototype.hasOwnProperty.call(process.env, 'ARCHIVE_PASSPHRASE');
  const old = process.env.ARCHIVE_PASSPHRASE;
  process.env.ARCHIVE_PASSPHRASE = value;
  t.after(() => {
    if (had) process.env.ARCHIVE_PASSPHRASE = old;
    else delete process.env.ARCHIVE_PASSPHRASE;
  });
}

describe('README', () => {
  it('Quick Start: init, ingest a file, restore it to a file, close; then open and list', { timeout: 120000 }, async (t) => {
    const tmp = tmpFor(t);
    const repoDir = path.join(tmp, 'backups', 'my-service');
    const input = path.join(tmp, 'database.sql');
    const output = path.join(tmp, 'restored-database.sql');
    const dump = sqlDump(40000, 1);
    fs.writeFileSync(input, dump);
    withPassphrase(t, 'readme-passphrase-' + process.pid);

    // --- Quick Start ---
    const repo = await ContainerArchive.init(repoDir, {
      passphrase: process.env.ARCHIVE_PASSPHRASE,
    });
    const snapshot = await repo.ingest(createReadStream(input), {
      tags: {
        service: 'postgres',
        environment: 'production',
      },
      items: [{ name: 'database.sql', type: 'database-dump' }],
    });
    assert.match(snapshot.id, /^[0-9a-f]{64}$/);
    assert.equal(typeof snapshot.newChunks, 'number');
    assert.equal(typeof snapshot.reusedChunks, 'number');
    assert.ok(snapshot.newChunks >= 1);
    assert.equal(snapshot.reusedChunks, 0);

    const restored = await repo.restore(snapshot.id, { item: 'database.sql' });
    const out = restored.pipe(createWriteStream(output));
    await Promise.all([finished(restored), finished(out)]);
    assert.equal(sha256(fs.readFileSync(output)), sha256(dump), 'restored file differs from the input');
    await repo.close();

    // --- Open an Existing Repository ---
    const again = await ContainerArchive.open(repoDir, {
      passphrase: process.env.ARCHIVE_PASSPHRASE,
    });
    try {
      const snapshots = await again.listSnapshots({
        tags: { service: 'postgres' },
      });
      assert.deepEqual(snapshots.map((s) => s.id), [snapshot.id]);
      assert.deepEqual(snapshots[0].tags, { service: 'postgres', environment: 'production' });
      assert.deepEqual(snapshots[0].items.map((i) => [i.name, i.type, i.size]), [['database.sql', 'database-dump', dump.length]]);
    } finally {
      await again.close();
    }
  });

  it('Quick Start in its literal order: close() right after pipe() still yields the whole file', { timeout: 120000 }, async (t) => {
    const tmp = tmpFor(t);
    const repoDir = path.join(tmp, 'my-service');
    const input = path.join(tmp, 'database.sql');
    const output = path.join(tmp, 'restored-database.sql');
    const dump = sqlDump(60000, 2);
    fs.writeFileSync(input, dump);
    withPassphrase(t, 'another-passphrase');

    const repo = await ContainerArchive.init(repoDir, {
      passphrase: process.env.ARCHIVE_PASSPHRASE,
    });
    const snapshot = await repo.ingest(createReadStream(input), {
      tags: { service: 'postgres', environment: 'production' },
      items: [{ name: 'database.sql', type: 'database-dump' }],
    });
    const restored = await repo.restore(snapshot.id, { item: 'database.sql' });
    const out = restored.pipe(createWriteStream(output));
    const done = Promise.all([finished(restored), finished(out)]);
    done.catch(() => {}); // observed below; avoid an unhandled rejection while close() runs
    await repo.close();
    await done;
    assert.equal(fs.statSync(output).size, dump.length, 'close() after pipe() truncated the restored file');
    assert.equal(sha256(fs.readFileSync(output)), sha256(dump));
  });
});
