'use strict';

// Each snapshot records the host (default os.hostname(), overridable per
// ingest) and the user; listSnapshots, 'latest' and retention groups use the
// host. Manifests written before version 2 read as host ''.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Readable } = require('node:stream');

const { tmpFor, collect, rejectsWithCode, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();
const T = { timeout: 60000 };
const BIN = path.join(__dirname, '..', 'bin', 'containerarchive.js');

async function fresh(t) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir);
  t.after(() => repo.close().catch(() => {}));
  return { dir, repo };
}

const put = (repo, text, options) => repo.ingest(Readable.from([Buffer.from(text)]), { items: [{ name: 'dump' }], ...options });

describe('host and user in each snapshot', () => {
  it('records os.hostname() and the user by default, and a host given per ingest', T, async (t) => {
    const { repo } = await fresh(t);
    const mine = await put(repo, 'here');
    assert.equal(mine.host, os.hostname());
    assert.equal(typeof mine.user, 'string');
    assert.ok(mine.user.length > 0, 'the user is recorded');
    const other = await put(repo, 'there', { host: 'db-1' });
    assert.equal(other.host, 'db-1');
    assert.equal((await repo.getSnapshot(other.id)).host, 'db-1', 'the host is stored, not just returned');

    assert.deepEqual((await repo.listSnapshots({ host: 'db-1' })).map((s) => s.id), [other.id]);
    assert.deepEqual((await repo.listSnapshots({ host: os.hostname() })).map((s) => s.id), [mine.id]);
    const latestOther = await repo.restore('latest', { host: 'db-1' });
    assert.equal((await collect(latestOther)).toString(), 'there', "'latest' honours the host filter");
  });

  it('groups retention by host by default', T, async (t) => {
    const { repo } = await fresh(t);
    const a = await put(repo, 'a', { host: 'host-a', tags: { service: 'pg' } });
    const b = await put(repo, 'b', { host: 'host-b', tags: { service: 'pg' } });
    const r = await repo.prune({ keepLast: 1 }, true);
    assert.deepEqual(r.removedSnapshots, [], 'one snapshot per host survives keepLast 1');
    assert.deepEqual(r.groups.map((g) => g.host).sort(), ['host-a', 'host-b']);
    const merged = await repo.prune({ keepLast: 1, groupBy: ['service'] }, true);
    assert.deepEqual(merged.removedSnapshots, [a.id], 'grouping by service alone merges the hosts');
    assert.ok(b.id);
  });

  it('rejects a host that is not a short string, before anything is written', T, async (t) => {
    const { repo } = await fresh(t);
    await rejectsWithCode(put(repo, 'x', { host: 42 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(put(repo, 'x', { host: 'h'.repeat(256) }), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(await repo.listSnapshots(), []);
  });

  it('CLI: backup --host records it and snapshots shows a HOST column', T, (t) => {
    const dir = path.join(tmpFor(t), 'cli-repo');
    const run = (args, input) => spawnSync(process.execPath, [BIN, ...args], { input: input ?? '', encoding: 'utf8', timeout: 60000 });
    assert.equal(run(['init', dir]).status, 0);
    const backup = run(['backup', dir, '-', '--item', 'dump', '--host', 'web-7'], 'payload');
    assert.equal(backup.status, 0, backup.stderr);
    const table = run(['snapshots', dir]);
    assert.equal(table.status, 0, table.stderr);
    const [header, row] = table.stdout.split('\n');
    assert.match(header, /\bHOST\b/);
    assert.match(row, /\bweb-7\b/);
    const json = JSON.parse(run(['snapshots', dir, '--json', '--host', 'web-7']).stdout);
    assert.equal(json.length, 1);
    assert.equal(json[0].host, 'web-7');
  });
});
